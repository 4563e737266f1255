"""The documentation is complete inside the repository: nothing points at
the team's design files or folders beside the clone, and every repository
path the docs name exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(
    r"METHOD\.md|PROTOCOLS\.md|ARCHITECTURE\.md|\.\./shared|shared/(?:review|design|data)"
)
TEXT = (".md", ".py", ".toml", ".txt", ".cfg", "Makefile")


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [REPO / f for f in out.splitlines() if f.endswith(TEXT) and (REPO / f).is_file()]


def test_nothing_points_outside_the_repository():
    this = Path(__file__).resolve()
    hits = [
        f"{f.relative_to(REPO)}:{n}: {line.strip()}"
        for f in _tracked()
        if f != this
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert hits == []


def test_every_repository_path_the_docs_name_exists():
    named = re.compile(r"\b((?:docs|examples|benchmarks)/[\w./-]+\.(?:md|toml|py))")
    missing = [
        f"{f.relative_to(REPO)}: {m}"
        for f in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
        for m in named.findall(f.read_text(encoding="utf-8"))
        if not (REPO / m).exists()
    ]
    assert missing == []
