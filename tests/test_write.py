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
@pytest.mark.parametrize("failing", ["verify", "down"])  # when forked, the child renders verify.sh, this process down.sh
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
