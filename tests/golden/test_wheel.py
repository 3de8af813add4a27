"""A wheel built from the repository works on its own: templates ship inside it."""

import shutil
import subprocess
import sys

import pytest
from helpers import EXAMPLES, REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """netgen installed from a freshly built wheel into a new virtual environment; returns its bin directory."""
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"),
                            str(REPO)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (wheel,) = (root / "dist").glob("netgen-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    pip = subprocess.run([str(root / "venv" / "bin" / "pip"), "install", "-q", str(wheel)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    return root / "venv" / "bin"


def test_wheel_compiles_every_example_outside_the_repo(installed, tmp_path):
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    for example in EXAMPLES:
        result = subprocess.run([str(installed / "netgen"), "compile", f"examples/{example}.py", "-o",
                                 f"out/{example}"], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        for variant in ("up", "down", "verify"):
            built = (tmp_path / "out" / example / f"{variant}.sh").read_text()
            assert built == (REPO / "out" / example / f"{variant}.sh").read_text()


def test_wheel_contains_the_templates(installed):
    listing = subprocess.run([str(installed / "python"), "-c",
                              "from importlib.resources import files; "
                              "print(sorted(p.name for p in files('netgen.templates').iterdir()))"],
                             capture_output=True, text=True, cwd="/")
    for name in ("up.sh.j2", "down.sh.j2", "verify.sh.j2", "macros.sh.j2"):
        assert name in listing.stdout
    assert str(REPO) not in subprocess.run([str(installed / "python"), "-c", "import netgen; print(netgen.__file__)"],
                                           capture_output=True, text=True, cwd="/").stdout


def test_wheel_ships_the_lab_schema(installed, tmp_path):
    result = subprocess.run([str(installed / "netgen"), "schema"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (REPO / "compiler" / "lab.schema.json").read_text()
