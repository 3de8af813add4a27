"""Running the lab file: broken files give one message at the user's line, and every object remembers its line."""

import re
import signal
import sys

import pytest

from netgen.loader import LoadError, load
from netgen.model import Loc
from netgen.pipeline import CompileError, compile_lab


def write_lab(tmp_path, source: str, name: str = "lab.py") -> str:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return str(path)


def load_error(path: str) -> str:
    """The one message loading `path` gives, as the user reads it."""
    with pytest.raises(LoadError) as e:
        load(path)
    assert len(e.value.diagnostics) == 1
    return str(e.value.diagnostics[0])


# (lab source, line of the message, how the message starts after "FILE:LINE: " [, and what else it says])
BROKEN = [
    pytest.param('from netgen import Lab\nlab = Lab("t")\nx = = 1\n', 3, "syntax error: invalid syntax",
                 id="syntax-error"),
    pytest.param('from netgen import Lab\nlab = Lab("t")\nlab.netns("a"\nlab.netns("b")\n', 3,
                 "syntax error: '(' was never closed", id="unclosed-paren"),
    pytest.param('from netgen import Lab\nlab = Lab("t")\n1 / 0\n', 3,
                 "the lab file raised ZeroDivisionError: division by zero", id="exception"),
    pytest.param('from netgen import Lab\n\ndef check(n):\n    if n > 1:\n        raise ValueError(f"too many: {n}")\n'
                 '\nlab = Lab("t")\ncheck(1)\ncheck(2)\n', 5, "the lab file raised ValueError: too many: 2",
                 id="exception-in-helper-function"),
    pytest.param('from netgen import Lab\nlab = Lab("t")\nd = {}\nd["missing"]\n', 4,
                 "the lab file raised KeyError: 'missing'", id="key-error"),
    pytest.param('from netgen import Lab\nlab = Lab("t")\nraise RuntimeError\n', 3, "the lab file raised RuntimeError",
                 id="exception-without-text"),
    pytest.param('from netgen import Lab\nlab = Lab("t")\nns = lab.netns("a")\nns.port("e0", mtuu=9000)\n', 4,
                 ("the lab file raised TypeError: ", "port() got an unexpected keyword argument 'mtuu'"),
                 id="wrong-call-into-netgen"),
    pytest.param('from netgen import Lab\nlab = Lab("t")\nimport netgen_no_such_module\n', 3,
                 "the lab file raised ModuleNotFoundError: No module named 'netgen_no_such_module'",
                 id="failing-import"),
    pytest.param('from netgen import Lab, Switch\nlab = Lab("t")\n', 1,
                 "the lab file raised ImportError: cannot import name 'Switch' from 'netgen'",
                 id="failing-from-import"),
    pytest.param('from netgen import Lab\n\nx = 1\n', 1,
                 'defines no lab: add `lab = Lab("name")` (from netgen import Lab)', id="no-lab"),
    pytest.param('from netgen import Lab\nlab = Lab("a")\n\nother = Lab("b")\n', 4,
                 "a lab file defines one lab, this one makes 2; the first is at line 2", id="two-labs"),
]


@pytest.mark.parametrize("source, line, message", BROKEN)
def test_broken_lab_file(tmp_path, source, line, message):
    start, *rest = (message,) if isinstance(message, str) else message
    path = write_lab(tmp_path, source)
    text = load_error(path)
    assert text.startswith(f"{path}:{line}: {start}"), text
    assert all(fragment in text for fragment in rest), text


def test_broken_lab_file_through_the_pipeline(tmp_path):
    path = write_lab(tmp_path, 'from netgen import Lab\nlab = Lab("t")\n1 / 0\n')
    with pytest.raises(CompileError) as e:
        compile_lab(path)
    assert [str(d) for d in e.value.diagnostics] == [
        f"{path}:3: the lab file raised ZeroDivisionError: division by zero"]


def test_missing_lab_file(tmp_path):
    path = str(tmp_path / "nope.py")
    assert load_error(path) == f"cannot read lab file {path}: No such file or directory"


def test_directory_instead_of_a_lab_file(tmp_path):
    assert load_error(str(tmp_path)) == f"cannot read lab file {tmp_path}: Is a directory"


def test_a_failed_load_does_not_leak_into_the_next(tmp_path):
    """A lab file that made a Lab and then raised leaves nothing behind for the next file loaded."""
    load_error(write_lab(tmp_path, 'from netgen import Lab\nlab = Lab("first")\n1 / 0\n', "bad.py"))
    lab = load(write_lab(tmp_path, 'from netgen import Lab\nlab = Lab("second")\n', "good.py"))
    assert lab.name == "second"


def test_objects_made_in_a_loop_record_the_loop_line(tmp_path):
    path = write_lab(tmp_path, """\
from netgen import Lab
lab = Lab("t")
br = lab.host.bridge("br0")
for i in (1, 2):
    ns = lab.netns(f"ns{i}")
    lab.veth(ns.port("eth0", f"10.0.0.{i}/24"),
             br.port(f"p{i}"))
    lab.expect(ns).reaches("10.0.0.9")
""")
    lab = load(path)
    assert {ns.name: (ns.loc.file, ns.loc.line) for ns in lab.namespaces} == {"ns1": (path, 5), "ns2": (path, 5)}
    assert {i.ref: i.loc.line for i in lab.interfaces} == {
        "host/br0": 3, "ns1/eth0": 6, "host/p1": 7, "ns2/eth0": 6, "host/p2": 7}
    assert [a.loc.line for i in lab.interfaces for a in i.addresses] == [6, 6]
    assert [v.loc.line for v in lab.veths] == [6, 6]
    assert [e.loc.line for e in lab.expectations] == [8, 8]
    assert lab.loc == Loc(path, 2)


def test_objects_made_in_a_helper_function_record_the_users_line_not_netgens(tmp_path):
    path = write_lab(tmp_path, """\
from netgen import Lab

def container(lab, name, address):
    ns = lab.netns(name)
    lab.veth(ns.port("eth0", address), lab.host.port("v" + name))
    ns.route("default", via="10.0.0.1")
    return ns

lab = Lab("t")
container(lab, "c1", "10.0.0.2/24").port("eth1").addr("10.1.0.2/24")
container(lab, "c2", "10.0.0.3/24")
""")
    lab = load(path)
    assert [(ns.name, ns.loc.file, ns.loc.line) for ns in lab.namespaces] == [("c1", path, 4), ("c2", path, 4)]
    assert [r.loc.line for r in lab.routes] == [6, 6]
    assert {i.ref: i.loc.line for i in lab.interfaces} == {"c1/eth0": 5, "host/vc1": 5, "c2/eth0": 5, "host/vc2": 5}
    # a port made on what the helper returns is the caller's: line 10
    assert [(p.loc.line, p.message) for p in lab.problems] == [
        (10, "port c1/eth1 is never joined: pass it to lab.veth(...)")]


def test_a_lab_file_can_import_a_helper_module_next_to_it(tmp_path):
    module = "netgen_test_helper_module"  # unique: a module imported once stays in sys.modules
    helper = write_lab(tmp_path, 'def pair(lab, name):\n    ns = lab.netns(name)\n    return ns\n', f"{module}.py")
    path = write_lab(tmp_path, f'from netgen import Lab\nfrom {module} import pair\nlab = Lab("t")\n'
                               'pair(lab, "a")\npair(lab, "b/c")\n')
    try:
        lab = load(path)
        with pytest.raises(CompileError) as e:
            compile_lab(path)
    finally:
        sys.modules.pop(module, None)
    assert [ns.name for ns in lab.namespaces] == ["a", "b/c"]
    # the namespace is made in the helper module, so that is where the message points
    assert [str(d) for d in e.value.diagnostics] == [
        f"{helper}:2: namespace name 'b/c' contains '/'; a safe file name has only letters, digits, '-', '_' and '.'"]


def test_each_lab_gets_its_own_helper_module_of_the_same_name(tmp_path):
    from netgen.loader import load

    for n in (1, 2):
        d = tmp_path / f"lab{n}"
        d.mkdir()
        (d / "shared_helper.py").write_text(f"NAME = 'from-{n}'\n")
        (d / "lab.py").write_text("from netgen import Lab\nfrom shared_helper import NAME\nlab = Lab(NAME)\n")
    assert [load(str(tmp_path / f"lab{n}" / "lab.py")).name for n in (1, 2)] == ["from-1", "from-2"]


def test_a_lab_that_never_finishes_is_stopped_at_its_line(tmp_path):
    path = write_lab(tmp_path, 'from netgen import Lab\nlab = Lab("t")\nwhile True:\n    pass\n')
    with pytest.raises(LoadError) as e:
        load(path, timeout=0.2)
    (message,) = map(str, e.value.diagnostics)
    assert re.fullmatch(rf"{re.escape(path)}:[34]: the lab file did not finish within 0.2 s "
                        r"\(it was running line [34]\)", message), message
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0, 0)


def test_the_timeout_names_the_helper_line_that_was_running_and_is_not_caught_by_except_exception(tmp_path):
    helper = write_lab(tmp_path, "import time\n\ndef wait():\n    time.sleep(30)\n", "netgen_test_slow_helper.py")
    path = write_lab(tmp_path, 'from netgen import Lab\nfrom netgen_test_slow_helper import wait\nlab = Lab("t")\n'
                               'try:\n    wait()\nexcept Exception:\n    pass\n')
    with pytest.raises(LoadError) as e:
        load(path, timeout=0.2)
    assert [str(d) for d in e.value.diagnostics] == [
        f"{path}:5: the lab file did not finish within 0.2 s (it was running {helper}:4)"]


def test_a_lab_that_finishes_in_time_leaves_no_alarm_behind(tmp_path):
    lab = load(write_lab(tmp_path, 'from netgen import Lab\nlab = Lab("t")\n'), timeout=5)
    assert lab.name == "t"
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0, 0)
