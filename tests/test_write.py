"""Writing a lab's scripts with -o: every file or none, the same bytes whether rendered in one process or several."""

import hashlib
import os

import pytest
from conftest import REPO

from netgen import pipeline, render

DOCKER0 = str(REPO / "examples" / "docker0.py")


def _files(directory):
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


def test_forked_rendering_writes_the_same_files_as_one_process(tmp_path):
    compiled = pipeline.compile_lab(DOCKER0)
    pipeline.write_scripts(compiled, str(tmp_path / "one"), parallel=False)
    pipeline.write_scripts(pipeline.compile_lab(DOCKER0), str(tmp_path / "forked"), parallel=True)  # each process plans
    one, forked = _files(tmp_path / "one"), _files(tmp_path / "forked")
    assert one == forked
    assert list(one) == ["SHA256SUMS", "down.sh", "up.sh", "verify.sh"]
    for line in one["SHA256SUMS"].decode().splitlines():  # the manifest is that of the bytes written
        digest, name = line.split("  ")
        assert hashlib.sha256(one[name]).hexdigest() == digest
        assert one[name].decode() == compiled.script(name.removesuffix(".sh"))


@pytest.mark.parametrize("parallel", [False, True])
def test_compile_into_writes_what_compile_then_write_does(tmp_path, parallel):
    pipeline.write_scripts(pipeline.compile_lab(DOCKER0), str(tmp_path / "apart"), parallel=False)
    compiled, written = pipeline.compile_into(DOCKER0, str(tmp_path / "one"), parallel=parallel)
    assert _files(tmp_path / "one") == _files(tmp_path / "apart")
    assert written == [str(tmp_path / "one" / name) for name in ("up.sh", "down.sh", "verify.sh", "SHA256SUMS")]
    assert compiled.lab.name == "docker0"


def test_an_invalid_lab_stops_the_child_and_writes_nothing(tmp_path, monkeypatch):
    """The child starts on verify.sh before validation; an invalid lab has it stopped, and makes no directory."""
    lab = tmp_path / "bad.py"
    lab.write_text('from netgen import Lab\nlab = Lab("bad")\nlab.netns("ns 1")\n')
    forked = []
    fork = os.fork

    def recorded():
        pid = fork()
        forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recorded)
    with pytest.raises(pipeline.CompileError, match="namespace name"):
        pipeline.compile_into(str(lab), str(tmp_path / "new" / "dir"), parallel=True)
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):  # already reaped: no child left running or unreaped
        os.waitpid(forked[0], 0)
    assert sorted(os.listdir(tmp_path)) == ["bad.py"]


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("failing", ["verify", "up"])  # when forked, the child renders verify.sh, this process up.sh
def test_a_script_that_fails_to_render_leaves_the_directory_as_it_was(tmp_path, monkeypatch, parallel, failing):
    compiled = pipeline.compile_lab(DOCKER0)
    pipeline.write_scripts(compiled, str(tmp_path))
    before = _files(tmp_path)
    (tmp_path / "up.sh").write_text("an older up.sh\n")
    before["up.sh"] = b"an older up.sh\n"
    stream = render.stream

    def broken(plan, variant, style="batched"):
        if variant == failing:
            raise ValueError("broken template")
        return stream(plan, variant, style)

    monkeypatch.setattr(render, "stream", broken)
    with pytest.raises((ValueError, RuntimeError), match="broken template"):
        pipeline.write_scripts(compiled, str(tmp_path), parallel=parallel)
    assert _files(tmp_path) == before  # nothing replaced, no temporary file left
