"""The core never imports a framework (docs/architecture.md, "Invariants")."""

import subprocess
import sys

FRAMEWORKS = ("torch", "mindspore")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_vdreid_loads_no_framework():
    assert _loaded_after("import vdreid") == set()


def test_cli_help_loads_no_framework():
    code = (
        "from typer.testing import CliRunner\n"
        "from vdreid.cli.app import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output"
    )
    assert _loaded_after(code) == set()


def test_probe_detects_a_leak():
    # the check itself must be able to fail: importing a backend loads its framework
    assert _loaded_after("import vdreid_torch") == {"torch"}
