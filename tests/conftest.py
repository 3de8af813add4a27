import os
import sys

import pytest

# helpers.py's asserts (ok(), assert_reports()) say what they compared, as a test's own asserts do
pytest.register_assert_rewrite("helpers", "readme")

from helpers import EXAMPLES, NODE_EXAMPLES, PROFILE, REPO, _can_sandbox, _machine_state  # noqa: E402, F401
from hypothesis import settings  # noqa: E402
from sandbox import Sandbox  # noqa: E402

# helpers.examples(FULL) scales a test's own count; these are the counts of a test that states none (100 is
# Hypothesis's own default)
settings.register_profile("dev", max_examples=100)
settings.register_profile("ci", max_examples=1000)
settings.load_profile(PROFILE)

# Tests that run `netgen` as a user does run the one installed beside the Python running the tests (.venv/bin when
# run as the README says), not one that comes first on PATH from elsewhere (a pyenv shim, another checkout's link).
_BIN = os.path.dirname(sys.executable)
if os.access(os.path.join(_BIN, "netgen"), os.X_OK):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture(scope="session", autouse=True)
def machine_left_as_found():
    """After the whole suite, the machine's own namespaces and links are exactly as before."""
    before = _machine_state()
    yield
    assert _machine_state() == before, "the test suite changed the machine's own root namespace"


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


@pytest.fixture
def checkout(tmp_path):
    """A folder whose examples/ is the repository's, where the lines of README.md and docs/ run as written
    (tests/golden/test_readme.py, tests/live/test_readme_live.py)."""
    (tmp_path / "examples").symlink_to(REPO / "examples")
    return tmp_path


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
