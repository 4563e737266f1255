"""The loss terms on TorchOps: same values as NumpyOps, and autograd through them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
from vdreid.losses import (  # noqa: E402
    cost_matrix,
    cross_entropy,
    l2_normalize,
    objective,
    official_kl_div,
    ranked_list_loss,
    sinkhorn_plan,
)
from vdreid.ops import NumpyOps  # noqa: E402
from vdreid.presets import RECIPES, recipe  # noqa: E402
from vdreid_torch.ops import TorchOps  # noqa: E402

tops, nops = TorchOps(), NumpyOps()
PATHS = ("V", "I", "Sx", "Sg")
LABELS = np.array([0, 0, 1, 1, 2, 2, 3, 3, 0, 1])
MODALITY = np.array([0, 1, 0, 1, 0, 1, 0, 1, 1, 0])


def _outputs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for p in PATHS:
        out[f"{p}.feat"] = rng.normal(size=(10, 6)).astype(np.float32)
        out[f"{p}.logits"] = (3 * rng.normal(size=(10, 5))).astype(np.float32)
        out[f"{p}.z"] = rng.normal(size=(10, 4)).astype(np.float32)
        out[f"{p}.z_logits"] = (3 * rng.normal(size=(10, 5))).astype(np.float32)
    return out


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_torch_gives_the_numpy_values(name: str) -> None:
    spec = recipe(name).loss
    outputs = _outputs()
    expected = objective(nops, spec, outputs, LABELS, MODALITY)
    tensors = {k: tops.asarray(v) for k, v in outputs.items()}
    got = objective(tops, spec, tensors, tops.asarray(LABELS), tops.asarray(MODALITY))
    assert set(got) == set(expected)
    for key in expected:
        assert float(got[key]) == pytest.approx(float(expected[key]), rel=2e-5, abs=1e-6), key


@pytest.mark.parametrize("name", ["official", "paper", "msport"])
def test_gradients_reach_every_output_the_loss_reads(name: str) -> None:
    spec = recipe(name).loss
    tensors = {k: tops.asarray(v).requires_grad_() for k, v in _outputs(1).items()}
    total = objective(tops, spec, tensors, tops.asarray(LABELS), tops.asarray(MODALITY))["total"]
    total.backward()
    for key, t in tensors.items():
        assert t.grad is not None and torch.isfinite(t.grad).all(), key
        assert t.grad.abs().sum() > 0, key


def test_l2_normalize_has_the_authors_gradient_at_a_zero_row() -> None:
    # the official code: x / (torch.norm(x, 2, 1, keepdim=True) + 1e-12);
    # sqrt(sum x^2) has an infinite derivative at 0, which made a NaN here
    rng = np.random.default_rng(5)
    x = torch.tensor(rng.normal(size=(4, 6)), dtype=torch.float32)
    x[2] = 0.0
    weights = torch.tensor(rng.normal(size=(4, 6)), dtype=torch.float32)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    got = l2_normalize(tops, ours)
    expected = theirs / (torch.norm(theirs, 2, 1, keepdim=True) + 1e-12)
    (got * weights).sum().backward()
    (expected * weights).sum().backward()
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)  # float rounding
    assert torch.isfinite(ours.grad).all()
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-5, atol=1e-6)


def test_ranked_list_loss_has_a_finite_gradient_with_a_zero_feature_row() -> None:
    x = torch.tensor(np.random.default_rng(6).normal(size=(10, 6)), dtype=torch.float32)
    x[3] = 0.0
    x.requires_grad_()
    ranked_list_loss(tops, x, tops.asarray(LABELS), tops.asarray(MODALITY)).backward()
    assert torch.isfinite(x.grad).all()


def test_cross_entropy_matches_torch_label_smoothing() -> None:
    rng = np.random.default_rng(2)
    logits = torch.tensor(rng.normal(size=(6, 4)), dtype=torch.float32)
    labels = torch.tensor([0, 3, 1, 1, 2, 0])
    for eps in (0.0, 0.1):
        expected = F.cross_entropy(logits, labels, label_smoothing=eps)
        assert float(cross_entropy(tops, logits, labels, eps)) == pytest.approx(
            float(expected), rel=1e-6
        )


def test_official_vsd_is_torch_kl_div_given_probabilities() -> None:
    # the authors' call: kl_div(input=softmax(teacher.detach()), target=softmax(student))
    rng = np.random.default_rng(3)
    teacher = torch.tensor(rng.normal(size=(6, 5)), dtype=torch.float32, requires_grad=True)
    student = torch.tensor(rng.normal(size=(6, 5)), dtype=torch.float32, requires_grad=True)
    with warnings.catch_warnings():  # torch warns that 'mean' is not the KL's batchmean
        warnings.simplefilter("ignore", UserWarning)
        expected = F.kl_div(
            input=F.softmax(teacher.detach(), dim=1),
            target=F.softmax(student, dim=1),
            reduction="mean",
        )
    (expected_grad,) = torch.autograd.grad(expected, student)
    got = official_kl_div(tops, teacher, student)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    got_student, got_teacher = torch.autograd.grad(got, (student, teacher), allow_unused=True)
    torch.testing.assert_close(got_student, expected_grad)
    assert got_teacher is None  # teacher detached


def _breaking_loop(cost, eps: float, max_iter: int, tol: float, detach_potentials: bool = False):
    """The official torch SinkhornDistance with a real break on err.item()."""
    n = cost.shape[0]
    log_mu = torch.log(torch.full((n,), 1.0 / n) + 1e-8)
    u = torch.zeros(n)
    v = torch.zeros(n)

    def big_m(u, v):
        return (-cost + u.unsqueeze(-1) + v.unsqueeze(-2)) / eps

    def lse(a):
        return torch.log(torch.exp(a).sum(-1) + 1e-6)

    for _ in range(max_iter):
        u1 = u
        u = eps * (log_mu - lse(big_m(u, v))) + u
        v = eps * (log_mu - lse(big_m(u, v).transpose(-2, -1))) + v
        if detach_potentials:
            u, v = u.detach(), v.detach()
        if (u - u1).abs().sum(-1).mean().item() < tol:
            break
    return torch.sum(torch.exp(big_m(u, v)) * cost)


@pytest.mark.parametrize(("scale", "tol"), [(3.0, 0.1), (3.0, 0.01)])
def test_cml_gradient_flows_through_the_unrolled_iterations(scale: float, tol: float) -> None:
    rng = np.random.default_rng(4)
    a = torch.tensor(scale * rng.normal(size=(8, 5)), dtype=torch.float32, requires_grad=True)
    b = torch.tensor(scale * rng.normal(size=(8, 5)), dtype=torch.float32, requires_grad=True)

    def masked(a, b):
        cost = cost_matrix(tops, F.softmax(a, dim=1), F.softmax(b, dim=1))
        pi, nits = sinkhorn_plan(tops, cost, eps=0.01, max_iter=100, tol=tol)
        return torch.sum(pi * cost), nits

    got, nits = masked(a, b)
    assert 1 < float(nits) < 100  # stopped early, after several updates
    got_grads = torch.autograd.grad(got, (a, b))

    cost = cost_matrix(tops, F.softmax(a, dim=1), F.softmax(b, dim=1))
    expected = _breaking_loop(cost, 0.01, 100, tol)
    expected_grads = torch.autograd.grad(expected, (a, b))
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    for g, e in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)

    # the gradient is not the one of a plan with frozen potentials
    cost = cost_matrix(tops, F.softmax(a, dim=1), F.softmax(b, dim=1))
    frozen_grads = torch.autograd.grad(_breaking_loop(cost, 0.01, 100, tol, True), (a, b))
    assert not torch.allclose(got_grads[0], frozen_grads[0], rtol=1e-2, atol=1e-6)
