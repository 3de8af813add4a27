"""Writing a lab's scripts with -o: every file or none, SHA256SUMS that of the bytes written."""

import hashlib
import os

import pytest
from helpers import REPO

from netgen import pipeline, render

DOCKER0 = str(REPO / "examples" / "docker0.py")


def _files(directory):
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


def test_written_scripts_are_the_rendered_ones_and_the_manifest_their_hashes(tmp_path):
    compiled = pipeline.compile_lab(DOCKER0)
    pipeline.write_scripts(compiled, str(tmp_path / "one"))
    one = _files(tmp_path / "one")
    assert list(one) == ["SHA256SUMS", "down.sh", "up.sh", "verify.sh"]
    for line in one["SHA256SUMS"].decode().splitlines():  # the manifest is that of the bytes written
        digest, name = line.split("  ")
        assert hashlib.sha256(one[name]).hexdigest() == digest
        assert one[name].decode() == compiled.script(name.removesuffix(".sh"))


def test_compile_into_writes_what_compile_then_write_does(tmp_path):
    pipeline.write_scripts(pipeline.compile_lab(DOCKER0), str(tmp_path / "apart"))
    compiled, written = pipeline.compile_into(DOCKER0, str(tmp_path / "one"))
    assert _files(tmp_path / "one") == _files(tmp_path / "apart")
    assert written == [str(tmp_path / "one" / name) for name in ("up.sh", "down.sh", "verify.sh", "SHA256SUMS")]
    assert compiled.lab.name == "docker0"


def test_an_invalid_lab_writes_nothing_and_makes_no_directory(tmp_path):
    lab = tmp_path / "bad.py"
    lab.write_text('from netgen import Lab\nlab = Lab("bad")\nlab.netns("ns 1")\n')
    with pytest.raises(pipeline.CompileError, match="namespace name"):
        pipeline.compile_into(str(lab), str(tmp_path / "new" / "dir"))
    assert sorted(os.listdir(tmp_path)) == ["bad.py"]


@pytest.mark.parametrize("failing", ["verify", "up"])
def test_a_script_that_fails_to_render_leaves_the_directory_as_it_was(tmp_path, monkeypatch, failing):
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
    with pytest.raises(ValueError, match="broken template"):
        pipeline.write_scripts(compiled, str(tmp_path))
    assert _files(tmp_path) == before  # nothing replaced, no temporary file left
