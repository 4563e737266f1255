"""`vdreid data synth` and `vdreid data check` through Typer's CliRunner."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from vdreid.cli.app import app

runner = CliRunner()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_full_shape_sysu_has_the_real_statistics(tmp_path):
    out = tmp_path / "sysu"
    made = _json(
        runner.invoke(
            app,
            [
                "data",
                "synth",
                "--layout",
                "sysu",
                "--full-shape",
                "--out",
                str(out),
                "--workers",
                "2",
                "--json",
            ],
        )
    )
    assert made["images"] == 22258 + 11909 + 6775 + 3803 and made["size"] == "16x8"
    report = _json(
        runner.invoke(app, ["data", "check", "--dataset", "sysu", "--root", str(out), "--json"])
    )
    train = report["splits"]["train"]
    assert (train["identities"], train["visible"], train["infrared"]) == (395, 22258, 11909)
    rows = {(r["mode"], r["shots"], r["sampler"]): r for r in report["protocols"]}
    for mode, shots, gallery, valid in (
        ("all", 1, 301, 3803),
        ("indoor", 1, 112, 2208),
        ("all", 10, 3010, 3803),
        ("indoor", 10, 1120, 2208),
    ):
        row = rows[(mode, shots, "official")]
        assert (row["queries"], row["gallery"], row["valid_queries"]) == (3803, gallery, valid), row
    assert report["ok"] and report["problems"] == []


def test_full_shape_regdb_has_ten_trials_of_2060_lines(tmp_path):
    out = tmp_path / "regdb"
    _json(
        runner.invoke(
            app, ["data", "synth", "--layout", "regdb", "--full-shape", "--out", str(out), "--json"]
        )
    )
    report = _json(
        runner.invoke(app, ["data", "check", "--dataset", "regdb", "--root", str(out), "--json"])
    )
    layout = report["regdb"]
    assert layout["identity_folders"] == {"Visible": 412, "Thermal": 412}
    assert layout["images_per_identity"] == {
        "Visible": {"min": 10, "max": 10},
        "Thermal": {"min": 10, "max": 10},
    }
    assert [t["trial"] for t in layout["trials"]] == list(range(1, 11))
    for trial in layout["trials"]:
        assert (
            set(trial["lines"].values()) == {2060}
            and trial["train_ids"] == trial["test_ids"] == 206
        )
    assert {r["direction"]: r["valid_queries"] for r in report["protocols"]} == {
        "v2t": 2060,
        "t2v": 2060,
    }


def test_table_output_and_layout_errors_exit_2_without_traceback(tmp_path):
    out = tmp_path / "llcm"
    r = runner.invoke(
        app,
        [
            "data",
            "synth",
            "--layout",
            "llcm",
            "--out",
            str(out),
            "--ids",
            "4",
            "--test-ids",
            "3",
            "--size",
            "16x8",
        ],
    )
    assert r.exit_code == 0 and "data check --dataset llcm" in r.output
    r = runner.invoke(app, ["data", "check", "--dataset", "llcm", "--root", str(out)])
    assert r.exit_code == 0 and "protocols (trial 1)" in r.output and "ok" in r.output
    shutil.rmtree(out / "test_vis" / "cam2")
    r = runner.invoke(app, ["data", "check", "--dataset", "llcm", "--root", str(out)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"camera folder {out / 'test_vis' / 'cam2'} does not exist" in r.output
    r = runner.invoke(app, ["data", "synth", "--layout", "llcm", "--out", str(out)])
    assert r.exit_code == 2 and "exists and is not an empty folder" in r.output
    r = runner.invoke(
        app, ["data", "synth", "--layout", "sysu", "--out", str(tmp_path / "x"), "--size", "64"]
    )
    assert r.exit_code == 2 and "--size '64' is not HxW" in r.output


def test_protocol_problems_are_reported_and_exit_2(tmp_path):
    out = tmp_path / "sysu"
    _json(
        runner.invoke(
            app,
            [
                "data",
                "synth",
                "--layout",
                "sysu",
                "--out",
                str(out),
                "--ids",
                "4",
                "--test-ids",
                "2",
                "--size",
                "16x8",
                "--json",
            ],
        )
    )
    test_id = int((out / "exp" / "test_id.txt").read_text().split(",")[0])
    folder = next(p for p in sorted(out.glob(f"cam[1245]/{test_id:04d}")))
    sorted(folder.iterdir())[-1].unlink()  # one gallery candidate short of the permutation file
    r = runner.invoke(app, ["data", "check", "--dataset", "sysu", "--root", str(out), "--json"])
    assert r.exit_code == 2, r.output
    report = json.loads(r.stdout)
    # the four official rows fail; agw still works
    assert not report["ok"] and len(report["problems"]) == 4
    assert f"person {test_id} camera {folder.parent.name[3:]}" in report["problems"][0]
    assert all("error" not in row for row in report["protocols"] if row["sampler"] == "agw")


def test_synth_and_check_report_the_same_split_counts(tmp_path):
    for layout in ("sysu", "regdb", "llcm"):
        out = tmp_path / layout
        args = ["--ids", "8", "--test-ids", "4", "--per-cam", "2", "--size", "32x16"]
        made = _json(
            runner.invoke(
                app, ["data", "synth", "--layout", layout, "--out", str(out), *args, "--json"]
            )
        )
        checked = _json(
            runner.invoke(app, ["data", "check", "--dataset", layout, "--root", str(out), "--json"])
        )
        splits = checked["splits"]
        assert set(splits) == {"train", "test"} | ({"val"} if layout == "sysu" else set())
        for split, counts in splits.items():
            assert made[f"{split}_images"] == counts["images"], (layout, split)
            assert made[f"{split}_identities"] == counts["identities"], (layout, split)
        # sysu: the val ids train too (the official recipe), and are counted in train
        assert made["train_identities"] == 8
