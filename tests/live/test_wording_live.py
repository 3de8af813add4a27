"""What the scripts say reads right, as they run: counts of one in the singular (the rest of
tests/golden/test_wording.py reads the compiled text)."""

import pytest
from helpers import ONES, ok
from typer.testing import CliRunner

from netgen.cli import app


@pytest.mark.live
def test_up_verify_down_say_counts_of_one_in_the_singular(sandbox, tmp_path):
    only = tmp_path / "only.py"
    only.write_text('from netgen import Lab\nlab = Lab("only")\nlab.netns("a")\n')
    for lab in (only, tmp_path / "ones.py"):
        lab.write_text(ONES) if lab.name == "ones.py" else None
        compiled = CliRunner().invoke(app, ["compile", str(lab), "-o", str(tmp_path / lab.stem)])
        assert compiled.exit_code == 0, compiled.stderr
    absent = ok(sandbox.run(f"bash {tmp_path}/only/verify.sh --absent"))
    assert absent.stdout.splitlines()[-1] == "verify.sh: lab only: 1 check passed, 0 failed"
    up = ok(sandbox.run(f"bash {tmp_path}/only/up.sh"))
    assert up.stdout.splitlines() == ["up.sh: host: 1 change", "up.sh: a: 1 change",
                                      "up.sh: lab only is up (2 changes)"]
    down = ok(sandbox.run(f"bash {tmp_path}/only/down.sh"))
    assert down.stdout.splitlines() == ["down.sh: host: removed 1 namespace",
                                        "down.sh: lab only is down (1 object removed)"]
    ok(sandbox.run(f"bash {tmp_path}/ones/up.sh"))
    down = ok(sandbox.run(f"bash {tmp_path}/ones/down.sh"))
    assert down.stdout.splitlines() == ["down.sh: host: removed 1 namespace", "down.sh: host: removed 1 link",
                                        "down.sh: lab ones is down (2 objects removed)"]
