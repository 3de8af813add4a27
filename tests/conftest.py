import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from sandbox import Sandbox  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# Tests that run `netgen` as a user does run the one installed beside the Python running the tests (.venv/bin when
# run as the README says), not one that comes first on PATH from elsewhere (a pyenv shim, another checkout's link).
_BIN = os.path.dirname(sys.executable)
if os.access(os.path.join(_BIN, "netgen"), os.X_OK):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")


def _spans_nodes(name: str) -> bool:
    from netgen.loader import load

    return bool(load(str(REPO / "examples" / f"{name}.py")).nodes)


_ALL_EXAMPLES = sorted(p.stem for p in (REPO / "examples").glob("*.py"))
EXAMPLES = [e for e in _ALL_EXAMPLES if not _spans_nodes(e)]  # one machine: out/NAME/{up,down,verify}.sh
NODE_EXAMPLES = [e for e in _ALL_EXAMPLES if _spans_nodes(e)]  # over nodes: out/NAME/NODE/{up,down,verify}.sh


def _machine_state() -> tuple[str, str]:
    def names(cmd):
        return subprocess.run(cmd, capture_output=True, text=True).stdout

    links = "\n".join(line.split(":")[1].strip() for line in names(["ip", "-o", "link", "show"]).splitlines())
    return names(["ip", "netns", "list"]), links


@pytest.fixture(scope="session", autouse=True)
def machine_left_as_found():
    """After the whole suite, the machine's own namespaces and links are exactly as before."""
    before = _machine_state()
    yield
    assert _machine_state() == before, "the test suite changed the machine's own root namespace"


def _can_sandbox() -> str | None:
    if os.geteuid() != 0:
        return "live tests need root (they create network namespaces inside an unshare sandbox)"
    for tool in ("unshare", "nsenter", "ip"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            return f"live tests need {tool}"
    return None


@pytest.fixture
def sandbox():
    reason = _can_sandbox()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason + " (and CI must run them)")
        pytest.skip(reason)
    box = Sandbox()
    yield box
    box.close()


def pytest_assertrepr_compare(op, left, right):
    """Sandbox snapshots that differ are shown as the paths that changed."""
    if op == "==" and isinstance(left, dict) and isinstance(right, dict) and "host" in left and "host" in right:
        from sandbox import differences

        return ["sandbox snapshots differ:"] + differences(left, right)[:20]


@pytest.fixture(scope="session", autouse=True)
def machine_run_left_as_found():
    """Sandboxes mount their own /run: the machine's /run gains no netns, lock or netgen files."""
    before = sorted(os.listdir("/run"))
    yield
    assert sorted(os.listdir("/run")) == before
