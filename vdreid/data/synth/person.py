"""Synthetic people: an identity's look, and a vectorised renderer of many views of it.

An identity is a body (height, build, head size, leg length), clothes
(top colour and pattern, top and sleeve length, trousers / shorts / skirt,
shoes, maybe a hat), hair (short or long) and maybe a bag (backpack or
shoulder bag). What survives the change of modality is the SHAPE (sleeves,
hems, bottoms, bag, hat, hair, proportions) and the top's weave: the infrared rendering gives each
clothing part its own emissivity, drawn independently of its colour, so an
infrared image is not a grey version of a visible one (warm skin is
bright, the background dark and noisy). Per image: position, scale, leg
spread, arm swing, front or back view, mirroring, lighting and background
clutter vary.

Everything is drawn in "person units": v runs 0 (top of the head) to 1
(soles), u is horizontal in the same unit, 0 on the body axis.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Part labels of the label map (painter's order decides overlaps).
BG, SKIN, HAIR, TOP, BOTTOM, SHOES, BAG, HAT = range(8)
N_PARTS = 8

PLAIN, HSTRIPES, VSTRIPES, CHECKS, DIAGONAL = range(5)
SLEEVE_ENDS = (0.27, 0.37, None)  # short, three-quarter, long (None: down to the wrist)
TROUSERS, SHORTS, SKIRT = range(3)
NO_BAG, BACKPACK, SHOULDER_BAG = range(3)


@dataclasses.dataclass(frozen=True)
class Appearance:
    height: float  # fraction of the image height the person fills
    build: float  # width multiplier
    head: float  # head size multiplier
    waist: float  # v of the waist (leg length)
    pattern: int
    period: float  # pattern period in person units
    sleeve: int  # index into SLEEVE_ENDS
    hem: float  # how far the top reaches below the waist (coats: to the knees)
    bottom: int
    bag: int
    bag_side: int  # +1 or -1
    hair_long: bool
    hat: bool
    colours: np.ndarray  # (N_PARTS, 3) visible RGB in [0, 1]; row BG unused
    top_second: np.ndarray  # (3,) colour of the pattern's second stripe
    emissivity: np.ndarray  # (N_PARTS,) infrared intensity in [0, 1]; row BG unused
    weave: float  # infrared contrast of the top's pattern (material change), signed


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _colour(rng: np.random.Generator) -> np.ndarray:
    sat = rng.uniform(0.5, 0.95) if rng.random() < 0.6 else rng.uniform(0.0, 0.25)
    return _hsv(rng.random(), sat, rng.uniform(0.15, 0.95))


def appearance(rng: np.random.Generator) -> Appearance:
    """A random identity. Colours and emissivities are drawn independently."""
    colours = np.zeros((N_PARTS, 3))
    skin_tone = rng.uniform(0.35, 0.95)
    colours[SKIN] = np.array([1.0, 0.78, 0.62]) * skin_tone
    colours[HAIR] = _hsv(rng.uniform(0.02, 0.12), rng.uniform(0.3, 0.8), rng.uniform(0.05, 0.45))
    for part in (TOP, BOTTOM, SHOES, BAG, HAT):
        colours[part] = _colour(rng)
    emissivity = np.zeros(N_PARTS)
    emissivity[SKIN] = rng.uniform(0.86, 0.97)
    emissivity[HAIR] = rng.uniform(0.3, 0.5)
    emissivity[TOP] = rng.uniform(0.25, 0.75)
    emissivity[BOTTOM] = rng.uniform(0.2, 0.7)
    emissivity[SHOES] = rng.uniform(0.15, 0.4)
    emissivity[BAG] = rng.uniform(0.1, 0.55)
    emissivity[HAT] = rng.uniform(0.2, 0.6)
    coat = rng.random() < 0.15
    return Appearance(
        height=rng.uniform(0.74, 0.94),
        build=rng.uniform(0.8, 1.25),
        head=rng.uniform(0.85, 1.15),
        waist=rng.uniform(0.47, 0.56),
        pattern=int(rng.integers(5)),
        period=rng.uniform(0.05, 0.12),
        sleeve=int(rng.integers(3)),
        hem=rng.uniform(0.25, 0.32) if coat else rng.uniform(0.0, 0.12),
        bottom=int(rng.choice(3, p=[0.5, 0.25, 0.25])),
        bag=int(rng.choice(3, p=[0.4, 0.3, 0.3])),
        bag_side=int(rng.choice([-1, 1])),
        hair_long=bool(rng.random() < 0.4),
        hat=bool(rng.random() < 0.2),
        colours=colours,
        top_second=_colour(rng),
        emissivity=emissivity,
        weave=rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.3),
    )


@dataclasses.dataclass(frozen=True)
class Poses:
    """Per-image view parameters, arrays of length N."""

    cx: np.ndarray  # body axis, fraction of the width
    top: np.ndarray  # top of the head, fraction of the height
    scale: np.ndarray
    spread: np.ndarray  # legs apart (walking)
    swing: np.ndarray  # arms out
    back: np.ndarray  # bool: seen from behind
    mirror: np.ndarray  # +1 / -1
    light: np.ndarray  # brightness gain
    clutter: np.ndarray  # x of a background pillar, fraction of the width (<0: none)

    def __len__(self) -> int:
        return len(self.cx)


def poses(rng: np.random.Generator, n: int, height: float) -> Poses:
    scale = rng.uniform(0.9, 1.05, n)
    spare = np.clip(1.0 - scale * height, 0.0, None)
    return Poses(
        cx=rng.uniform(0.42, 0.58, n),
        top=spare * rng.uniform(0.2, 0.8, n),
        scale=scale,
        spread=rng.uniform(0.0, 0.14, n),
        swing=rng.uniform(-0.05, 0.2, n),
        back=rng.random(n) < 0.5,
        mirror=rng.choice([-1.0, 1.0], n),
        light=rng.uniform(0.8, 1.15, n),
        clutter=np.where(rng.random(n) < 0.5, rng.uniform(0.0, 1.0, n), -1.0),
    )


@dataclasses.dataclass(frozen=True)
class CameraStyle:
    """How one camera sees the scene (background, colour cast, noise)."""

    background: np.ndarray  # (3,) visible wall colour, or its infrared level in [0]
    floor: np.ndarray  # (3,)
    pillar: np.ndarray  # (3,)
    gain: np.ndarray  # (3,) colour cast (infrared: the same value thrice)
    noise: float


def camera_style(rng: np.random.Generator, infrared: bool) -> CameraStyle:
    if infrared:
        level = rng.uniform(0.06, 0.22)
        return CameraStyle(
            background=np.full(3, level),
            floor=np.full(3, level + rng.uniform(-0.04, 0.08)),
            pillar=np.full(3, rng.uniform(0.2, 0.6)),  # a warm pipe or a lamp
            gain=np.full(3, rng.uniform(0.85, 1.1)),
            noise=rng.uniform(0.02, 0.045),
        )
    return CameraStyle(
        background=_colour(rng) * 0.6 + 0.2,
        floor=_colour(rng) * 0.5 + 0.2,
        pillar=_colour(rng),
        gain=rng.uniform(0.85, 1.15, 3),
        noise=rng.uniform(0.01, 0.03),
    )


def label_map(
    app: Appearance, pose: Poses, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels (N, H, W) uint8, u, v person coordinates (N, H, W)) for every pose."""
    h, w = size
    col = lambda a: np.asarray(a, dtype=np.float64)[:, None, None]  # noqa: E731
    person_px = col(pose.scale * app.height * h)
    ys = (np.arange(h, dtype=np.float64) + 0.5)[None, :, None]
    xs = (np.arange(w, dtype=np.float64) + 0.5)[None, None, :]
    v = (ys - col(pose.top * h)) / person_px
    u = (xs - col(pose.cx * w)) / person_px * col(pose.mirror)
    back = col(pose.back) > 0
    b, wv = app.build, app.waist
    sw, hw = 0.105 * b, 0.085 * b
    v, u = np.broadcast_arrays(v, u)
    au = np.abs(u)
    lab = np.zeros(v.shape, dtype=np.uint8)

    def paint(mask: np.ndarray, part: int | np.ndarray) -> None:
        np.copyto(lab, np.asarray(part, dtype=np.uint8), where=mask)

    # legs (skin), then what covers them, then shoes
    spread = col(pose.spread)
    for s in (-1.0, 1.0):
        leg_u = s * (0.045 * b + spread * np.clip(v - wv, 0.0, None))
        leg = (np.abs(u - leg_u) <= 0.042 * b) & (v >= wv) & (v <= 0.985)
        paint(leg, SKIN)
        if app.bottom == TROUSERS:
            paint(leg & (v <= 0.94), BOTTOM)
        elif app.bottom == SHORTS:
            paint(leg & (v <= wv + 0.16), BOTTOM)
        paint(leg & (v > 0.94), SHOES)
    if app.bottom == SKIRT:
        t = np.clip((v - wv) / 0.2, 0.0, 1.0)
        paint((v >= wv - 0.01) & (v <= wv + 0.2) & (au <= hw + 0.07 * t), BOTTOM)
    # torso, down to the hem (past the waist it widens over the hips)
    t = np.clip((v - 0.155) / (wv - 0.155), 0.0, 1.0)
    flare = 0.25 * np.clip(v - wv, 0.0, None)
    paint((v >= 0.155) & (v <= wv + 0.01 + app.hem) & (au <= sw + (hw - sw) * t + flare), TOP)
    # arms: sleeves, then hands
    swing = col(pose.swing)
    sleeve_end = SLEEVE_ENDS[app.sleeve] or wv - 0.02
    for s in (-1.0, 1.0):
        arm_u = s * (sw + 0.028 + swing * np.clip(v - 0.16, 0.0, None))
        arm = (np.abs(u - arm_u) <= 0.03 * b) & (v >= 0.16) & (v <= wv + 0.03)
        paint(arm, np.where(v <= sleeve_end, TOP, SKIN))
    # hair behind the head, neck, head, hair cap (all hair when seen from behind)
    hr_u, hr_v, hc = 0.052 * app.head, 0.068 * app.head, 0.075
    if app.hair_long:
        paint((au <= hr_u * 1.15) & (v >= hc) & (v <= 0.25), HAIR)
    paint((au <= 0.025) & (v >= 0.12) & (v <= 0.17), SKIN)
    head = (u / hr_u) ** 2 + ((v - hc) / hr_v) ** 2 <= 1.0
    paint(head, SKIN)
    paint(head & (back | (v <= hc - 0.35 * hr_v)), HAIR)
    if app.hat:
        paint(head & (v <= hc - 0.3 * hr_v), HAT)
        paint((au <= hr_u * 1.45) & (np.abs(v - (hc - 0.3 * hr_v)) <= 0.012), HAT)  # the brim
    # bag last: it hangs in front of everything
    if app.bag == BACKPACK:
        straps = (np.abs(au - 0.06 * b) <= 0.013) & (v >= 0.16) & (v <= 0.36)
        pack = (au <= 0.085 * b) & (v >= 0.18) & (v <= 0.43)
        paint(np.where(back, pack, straps), BAG)
        # the pack seen past the sides of the body
        paint(~back & (au >= sw) & (au <= sw + 0.03) & (v >= 0.2) & (v <= 0.4), BAG)
    elif app.bag == SHOULDER_BAG:
        side = float(app.bag_side)
        bag_u = side * (hw + 0.05)
        paint((np.abs(u - bag_u) <= 0.045) & (v >= wv - 0.1) & (v <= wv + 0.03), BAG)
        u0, v0, v1 = -side * 0.8 * sw, 0.16, wv - 0.1
        strap_u = u0 + (v - v0) * (bag_u - u0) / (v1 - v0)
        paint((np.abs(u - strap_u) <= 0.012) & (v >= v0) & (v <= v1), BAG)
    return lab, u, v


def _pattern(app: Appearance, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """0/1 weave of the top in person units (fixed to the body, so it moves with it)."""
    if app.pattern == PLAIN:
        return np.zeros(u.shape, dtype=bool)
    rows = np.floor((v - 0.155) / app.period * 2.0).astype(np.int64) % 2 == 1
    cols = np.floor(u / app.period * 2.0).astype(np.int64) % 2 == 1
    if app.pattern == DIAGONAL:
        return np.floor((u + v) / app.period * 2.0).astype(np.int64) % 2 == 1
    return {HSTRIPES: rows, VSTRIPES: cols, CHECKS: rows ^ cols}[app.pattern]


def _blur3(x: np.ndarray) -> np.ndarray:
    """3x3 box blur over the last two axes (edges repeated)."""
    p = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    rows = p[..., :-2, :] + p[..., 1:-1, :] + p[..., 2:, :]
    return (rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]) / 9.0


def _background(
    style: CameraStyle, pose: Poses, shape: tuple[int, int, int], channels: int
) -> np.ndarray:
    n, h, w = shape
    rows = (np.arange(h) + 0.5)[:, None] / h
    cols = (np.arange(w) + 0.5)[None, :] / w
    floor = (rows > 0.82)[None, :, :, None]
    shade = (1.0 - 0.25 * rows)[None, :, :, None]
    wall = style.background[:channels] * shade
    bg = np.where(floor, style.floor[:channels], wall) * np.ones((n, 1, 1, 1))
    pillar = (np.abs(cols[None] - pose.clutter[:, None, None]) < 0.07)[..., None] & ~floor
    return np.where(pillar, style.pillar[:channels], bg)


def render(
    app: Appearance,
    pose: Poses,
    style: CameraStyle,
    size: tuple[int, int],
    *,
    infrared: bool,
    rng: np.random.Generator,
) -> np.ndarray:
    """(N, H, W, 3) uint8 views of one identity (infrared: 3 equal channels)."""
    lab, u, v = label_map(app, pose, size)
    n, h, w = lab.shape
    weave = _pattern(app, u, v) & (lab == TOP)
    person = lab != BG
    if infrared:
        level = app.emissivity[lab] + np.where(weave, app.weave, 0.0)
        level = np.where(person, level, _background(style, pose, (n, h, w), 1)[..., 0])
        level = _blur3(level) * pose.light[:, None, None] * style.gain[0]
        level = level + rng.normal(0.0, style.noise, level.shape)
        img = np.repeat(level[..., None], 3, axis=-1)
    else:
        colour = app.colours[lab]
        colour = np.where(weave[..., None], app.top_second, colour)
        body_shade = 1.0 - 0.3 * np.clip(np.abs(u) / (0.14 * app.build), 0.0, 1.0) ** 2
        colour = colour * body_shade[..., None]
        img = np.where(person[..., None], colour, _background(style, pose, (n, h, w), 3))
        img = img * (pose.light[:, None, None, None] * style.gain)
        img = img + rng.normal(0.0, style.noise, img.shape)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def people(n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8: ``n`` different identities, one view each, visible
    and infrared in turn: real-looking images for checks that noise would
    not exercise (an exported model's verification)."""
    out = np.empty((n, *size, 3), np.uint8)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        look = appearance(rng)
        infrared = i % 2 == 1
        style = camera_style(rng, infrared)
        out[i] = render(look, poses(rng, 1, look.height), style, size, infrared=infrared, rng=rng)[
            0
        ]
    return out
