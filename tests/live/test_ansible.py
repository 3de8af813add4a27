"""Issue 19, a lab with nodes on real hosts: the inventory and playbook `netgen compile -o` writes, `netgen up|verify|
down --inventory`, and the proof, live: the nodes of examples/flannel_vxlan.py simulated (tests/nodes.py), an sshd in
each on its underlay address, driven by ansible-playbook from the outer sandbox."""

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import NODE_EXAMPLES, REPO, _can_sandbox, ok
from nodes import Cluster
from readme import COMPILE_NODES, PLAYBOOK, UP_ON_HOSTS
from typer.testing import CliRunner

from netgen import ansible, executor
from netgen.cli import app
from netgen.pipeline import compile_lab

runner = CliRunner()
FLANNEL = str(REPO / "examples" / "flannel_vxlan.py")
BIN = os.path.dirname(sys.executable)


def _ansible_playbook() -> str | None:
    try:
        return executor.ansible_playbook()
    except executor.ExecutorError:
        return None


# A lab with nodes and nothing on them that needs Python (no services), for nodes that have none.
PLAIN = """\
from netgen import Lab

lab = Lab("plain_pods")
bridges = []
for n in (1, 2):
    node = lab.node(f"node{n}", underlay=f"192.168.60.{10 + n}/24", dev="eth0")
    bridge = node.host.bridge("cni0", subnet=f"10.244.{n}.0/24")
    pod = node.netns(f"pod-{n}")
    lab.veth(pod.port("eth0"), bridge.port(f"veth-{n}"))
    pod.route("default", via=bridge)
    bridges.append(bridge)
lab.host_gw(*bridges, masquerade=False)
lab.expect("pod-1").reaches("pod-2")
"""


# --- what compile writes ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compiled_nodes():
    cwd = os.getcwd()
    os.chdir(REPO)  # the examples are named as a user in the repo root names them
    try:
        return {e: compile_lab(f"examples/{e}.py") for e in NODE_EXAMPLES}
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("example", NODE_EXAMPLES)
def test_out_holds_the_inventory_and_playbook_as_compiled_and_their_sums(compiled_nodes, example):
    lab = compiled_nodes[example].lab
    folder = REPO / "out" / example
    for name, text in ((ansible.INVENTORY, ansible.inventory(lab, "0.1.0")),
                       (ansible.PLAYBOOK, ansible.playbook(lab, "0.1.0"))):
        assert (folder / name).read_text() == text, \
            f"out/{example}/{name} is stale: run `python tools/regen.py` and review the diff"
    check = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=folder, capture_output=True,
                           text=True)
    assert check.returncode == 0 and check.stdout.split() == ["inventory.yml:", "OK", "site.yml:", "OK"], check


def test_compile_o_writes_them_byte_identical_each_time(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    for out in ("one", "two"):
        result = runner.invoke(app, ["compile", "examples/flannel_vxlan.py", "-o", str(tmp_path / out)])
        assert result.exit_code == 0, result.stderr
    for name in (ansible.INVENTORY, ansible.PLAYBOOK, "SHA256SUMS"):
        one, two = ((tmp_path / out / name).read_bytes() for out in ("one", "two"))
        assert one == two == (REPO / "out" / "flannel_vxlan" / name).read_bytes()
    sums = (tmp_path / "one" / "SHA256SUMS").read_text()
    assert sums == "".join(f"{hashlib.sha256((tmp_path / 'one' / n).read_bytes()).hexdigest()}  {n}\n"
                           for n in (ansible.INVENTORY, ansible.PLAYBOOK))


def test_a_lab_without_nodes_gets_no_playbook(tmp_path):
    result = runner.invoke(app, ["compile", str(REPO / "examples" / "docker0.py"), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ["SHA256SUMS", "down.sh", "up.sh", "verify.sh"]


def test_each_node_is_a_host_named_as_it_at_its_ssh_or_underlay_address(tmp_path):
    yaml = pytest.importorskip("yaml")  # Ansible's own YAML reader; it comes with the cluster extra
    lab = tmp_path / "lab.py"
    lab.write_text('from netgen import Lab\nlab = Lab("t")\n'
                   'lab.node("yes", underlay="10.0.0.1/24", dev="eth0", ssh="yes.example.org")\n'
                   'lab.node("1", underlay="10.0.0.2/24", dev="eth0")\n'
                   'lab.node("node3", underlay="10.0.0.3/24", dev="eth0", ssh="fd00::3")\n')
    text = ansible.inventory(compile_lab(str(lab)).lab, "0.1.0")
    # a name YAML would read as a boolean or a number stays a name
    assert yaml.safe_load(text) == {"all": {"hosts": {"yes": {"ansible_host": "yes.example.org"},
                                                      "1": {"ansible_host": "10.0.0.2"},
                                                      "node3": {"ansible_host": "fd00::3"}}}}
    assert f"from {lab}\n" in text and "group_vars/all.yml" in text


def test_the_playbook_runs_each_nodes_own_scripts_and_nothing_that_needs_python_there():
    yaml = pytest.importorskip("yaml")
    check, up, verify, down = yaml.safe_load((REPO / "out" / "flannel_vxlan" / "site.yml").read_text())
    modules = [next(iter(set(t) - {"name", "loop", "register", "vars"})) for t in check["tasks"]]
    assert (check["hosts"], check["connection"], check["gather_facts"], check["tags"], modules) == (
        "localhost", "local", False, ["always"],
        ["ansible.builtin.assert", "ansible.builtin.stat", "ansible.builtin.assert", "ansible.builtin.set_fact"])
    assert check["tasks"][1]["loop"] == ["inventory.yml", "site.yml"] + [
        f"node{n}/{v}.sh" for n in (1, 2) for v in ("up", "down", "verify")]  # every file the host plays read
    for play, tags in ((up, ["up"]), (verify, ["verify"]), (down, ["down", "never"])):
        assert play["hosts"] == ["node1", "node2"] and play["tags"] == tags
        assert play["gather_facts"] is False  # facts would need Python on the node
        modules = {key for task in play["tasks"] for key in task} - {
            "name", "register", "changed_when", "become", "when"}
        # each runs with the remote shell, or on the controller
        assert modules <= {"ansible.builtin.raw", "ansible.builtin.script", "ansible.builtin.fail",
                           "ansible.builtin.assert"}, modules
        # first, on the controller: the first play checked the scripts (a --limit without localhost skips it)
        assert play["tasks"][0]["ansible.builtin.assert"]["that"] == \
            "hostvars['localhost']['netgen_checked'] | default(false)"
        scripts = [t["ansible.builtin.script"] for t in play["tasks"] if "ansible.builtin.script" in t]
        assert all(re.fullmatch(r"\{\{ \(playbook_dir ~ '/' ~ inventory_hostname ~ '/(up|down|verify)\.sh'\) \| "
                                r"quote \}\}", s) for s in scripts), scripts
        assert all(t["become"] == "{{ netgen_uid.stdout | trim != '0' }}" for t in play["tasks"]
                   if "ansible.builtin.script" in t)
    assert "'up.sh: lab flannel_vxlan is already up; nothing changed' not in netgen_up.stdout_lines" in \
        up["tasks"][2]["changed_when"]


def test_ansible_reads_the_inventory_and_playbook_as_meant(tmp_path):
    program = _ansible_playbook()
    if program is None:
        pytest.skip(f"Ansible is not installed ({executor.CLUSTER_EXTRA})")
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}
    folder = REPO / "out" / "flannel_vxlan"
    listed = subprocess.run([os.path.join(os.path.dirname(program), "ansible-inventory"), "-i",
                             str(folder / "inventory.yml"), "--list"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    assert '"ansible_host": "192.168.60.12"' in listed.stdout
    tasks = {}
    for tags in ("up", "verify", "down", "all"):
        shown = subprocess.run([program, "-i", str(folder / "inventory.yml"), str(folder / "site.yml"), "--list-tasks",
                                "--tags", tags], capture_output=True, text=True, env=env)
        assert shown.returncode == 0, shown.stderr
        tasks[tags] = re.findall(r"^ {6}(\S.*?)\s+TAGS:", shown.stdout, re.M)
    check = ["node1, node2 are in the inventory", "the sha256 of each script, inventory.yml and site.yml",
             "each is as the SHA256SUMS beside it records", "checked"]
    root = ["the scripts were checked on this machine by the first play",
            "is the login root? (if not, the scripts run with sudo)"]
    rollback = ["down.sh, as up failed on another node (-e keep=true keeps this one up)",
                "fail, as the lab is not up on every node"]
    assert tasks == {"up": [*check, *root, "up.sh", *rollback], "verify": [*check, *root, "verify.sh"],
                     "down": [*check, *root, "down.sh"],
                     # without --tags: up, then verify; down only when asked for
                     "all": [*check, *root, "up.sh", *rollback, *root, "verify.sh"]}


def test_an_inventory_without_every_node_stops_the_playbook_before_any_host_is_touched(tmp_path):
    program = _ansible_playbook()
    if program is None:
        pytest.skip(f"Ansible is not installed ({executor.CLUSTER_EXTRA})")
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
           "ANSIBLE_NOCOLOR": "1"}
    inventory = tmp_path / "hosts.yml"  # node2 missing; node1 reached by a "ssh" that fails at once, were it tried
    inventory.write_text("all:\n  hosts:\n    node1:\n      ansible_ssh_executable: /bin/false\n")
    result = subprocess.run([program, "-i", str(inventory), str(REPO / "out" / "flannel_vxlan" / "site.yml"),
                             "--tags", "up"], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "the inventory has no host node2: name a host after each node of the lab" in result.stdout
    assert not re.search(r"^\w+: \[node1\]", result.stdout, re.M), result.stdout  # no task ran on node1
    assert list(recap(result)) == ["localhost"]


def _unreachable_nodes(tmp_path) -> tuple[str, dict, Path]:
    """ansible-playbook, its environment, and an inventory whose nodes are reached by an "ssh" that fails at once,
    were it tried: a task that touches a node fails it, and shows."""
    program = _ansible_playbook()
    if program is None:
        pytest.skip(f"Ansible is not installed ({executor.CLUSTER_EXTRA})")
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ansible"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
           "ANSIBLE_NOCOLOR": "1"}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n" + "".join(f"    node{n}:\n      ansible_ssh_executable: /bin/false\n"
                                                      for n in (1, 2)))
    return program, env, inventory


def _ran_on_a_node(result) -> list[str]:
    """The lines that say a task ran on (or failed on) node1 or node2."""
    return re.findall(r"^\w+: \[node\d\].*$", result.stdout, re.M)


@pytest.mark.parametrize("changed,tags", [("node1/up.sh", "up"), ("node2/down.sh", "down"), ("node1/SHA256SUMS", "up"),
                                          ("node2/verify.sh (gone)", "verify"), ("site.yml", "up"),
                                          ("inventory.yml", "down")])
def test_a_changed_script_stops_the_playbook_on_the_controller_before_any_host_is_touched(tmp_path, changed, tags):
    """Issue 23: site.yml ran a tampered node1/up.sh as root on node1. Its first play now checks every script a host
    play may run, and inventory.yml and site.yml, against the SHA256SUMS beside it, here, and names what differs."""
    program, env, inventory = _unreachable_nodes(tmp_path)
    folder = tmp_path / "a folder" / "flannel_vxlan"  # a space in its path, which the playbook quotes
    shutil.copytree(REPO / "out" / "flannel_vxlan", folder)
    name = changed.split(" ")[0]
    if changed.endswith("(gone)"):
        (folder / name).unlink()
    elif name.endswith("SHA256SUMS"):
        (folder / name).write_text((folder / name).read_text().replace("  up.sh", "  down.sh"))
    else:
        with open(folder / name, "a") as f:
            f.write("# changed\n" if name.endswith(".yml") else "touch /tmp/pwned\n")
    result = subprocess.run([program, "-i", str(inventory), str(folder / "site.yml"), "--tags", tags],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    said = re.search(r'^fatal: \[localhost\]: FAILED! => .*"msg": "not as compiled \(its sha256 is not the one the '
                     r'SHA256SUMS beside it records, or one of them is missing\): ([^;]*); no host was touched',
                     result.stdout, re.M)
    assert said, result.stdout
    named = {"node1/SHA256SUMS": f"{folder}/node1/up.sh"}.get(name, f"{folder}/{name}")
    assert said.group(1) == named
    assert _ran_on_a_node(result) == [], result.stdout
    assert list(recap(result)) == ["localhost"]


def test_the_compiled_folder_passes_the_controller_check_and_a_limit_without_localhost_is_refused(tmp_path):
    program, env, inventory = _unreachable_nodes(tmp_path)
    site = str(REPO / "out" / "flannel_vxlan" / "site.yml")
    passed = subprocess.run([program, "-i", str(inventory), site, "--tags", "verify"], capture_output=True, text=True,
                            env=env)
    # the controller's play passes; each node then fails on its first task that reaches it ("ssh" is /bin/false)
    assert recap(passed)["localhost"]["failed"] == 0 and recap(passed)["localhost"]["ok"] == 4, passed.stdout
    assert sorted(re.findall(r"^fatal: \[(node\d)\]", passed.stdout, re.M)) == ["node1", "node2"]
    assert "TASK [is the login root?" in passed.stdout
    # a --limit without localhost skips the controller's play: each host play's first task, which touches no host,
    # then refuses
    limited = subprocess.run([program, "-i", str(inventory), site, "--tags", "up", "--limit", "node1"],
                             capture_output=True, text=True, env=env)
    assert limited.returncode == 2
    assert "the scripts were not checked against their SHA256SUMS on this machine, as the first play did not run" \
        in limited.stdout and "e.g. --limit localhost,node1" in limited.stdout
    assert "TASK [is the login root?" not in limited.stdout, limited.stdout
    assert recap(limited) == {"node1": {"ok": 0, "changed": 0, "unreachable": 0, "failed": 1, "skipped": 0,
                                        "rescued": 0, "ignored": 0}}


# --- netgen up|verify|down --inventory, without hosts ----------------------------------------------------------------

def test_without_ansible_inventory_says_how_to_install_it_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # nothing beside netgen's Python
    monkeypatch.setenv("PATH", str(tmp_path))
    result = runner.invoke(app, ["up", FLANNEL, "--inventory", "hosts.yml", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "pip install 'netgen[cluster]'" in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,said", [
    (["up", str(REPO / "examples" / "docker0.py"), "--inventory", "h.yml"], "lab docker0 declares no nodes"),
    (["verify", FLANNEL, "--inventory", "h.yml", "--absent"], "--absent is not for --inventory"),
    (["down", FLANNEL, "--", "-e", "keep=true"], "-e keep=true: what follows the lab goes to ansible-playbook"),
])
def test_inventory_misuse_is_a_usage_error(tmp_path, args, said):
    result = runner.invoke(app, [args[0], "-o", str(tmp_path / "out"), *args[1:]])
    assert result.exit_code == 2 and said in result.stderr, result.stderr


def test_inventory_runs_the_playbook_streaming_its_output_and_passes_its_exit_code(tmp_path, monkeypatch):
    stub = tmp_path / "ansible-playbook"
    stub.write_text('#!/bin/bash\necho "ran with: $*"; echo "format: $ANSIBLE_CALLBACK_RESULT_FORMAT"\n'
                    'echo oops >&2; exit 4\n')
    stub.chmod(0o755)
    monkeypatch.setattr(executor, "ansible_playbook", lambda: str(stub))
    monkeypatch.delenv("ANSIBLE_CALLBACK_RESULT_FORMAT", raising=False)
    (tmp_path / "hosts.yml").write_text("")
    out = tmp_path / "out"
    dry = runner.invoke(app, ["verify", FLANNEL, "--inventory", str(tmp_path / "hosts.yml"), "-o", str(out),
                              "--dry-run", "--", "-e", "keep=true"])
    assert dry.exit_code == 0 and dry.stdout == ""
    assert f"netgen: would run: {stub} -i {tmp_path}/hosts.yml {out}/site.yml --tags verify -e keep=true" in dry.stderr
    result = runner.invoke(app, ["up", FLANNEL, "--inventory", str(tmp_path / "hosts.yml"), "-o", str(out), "--",
                                 "--limit", "node1"])
    assert result.exit_code == 4
    assert result.stdout == f"ran with: -i {tmp_path}/hosts.yml {out}/site.yml --tags up --limit node1\nformat: yaml\n"
    assert "oops" in result.stderr
    assert sorted(os.listdir(out)) == ["SHA256SUMS", "inventory.yml", "node1", "node2", "site.yml"]
    # the compiled inventory may be the one named: it is written before the playbook runs
    fresh = tmp_path / "fresh"
    result = runner.invoke(app, ["down", FLANNEL, "--inventory", str(fresh / "inventory.yml"), "-o", str(fresh)])
    assert result.exit_code == 4 and f"-i {fresh}/inventory.yml {fresh}/site.yml --tags down" in result.stdout
    missing = runner.invoke(app, ["down", FLANNEL, "--inventory", str(tmp_path / "nope.yml"), "-o", str(out)])
    assert missing.exit_code == 2 and f"--inventory {tmp_path}/nope.yml: no such file or folder" in missing.stderr


@pytest.mark.parametrize("how", ["lab part", "engine", "site.yml", "stale node"])
def test_inventory_audits_the_compiled_folder_and_refuses_before_ansible_playbook_runs(tmp_path, monkeypatch, how):
    """Issue 23: `netgen up|verify|down --inventory` runs `netgen audit DIR --lab LAB` on the folder it compiled
    into, and runs no ansible-playbook when it finds anything: here a folder changed between netgen's writing and
    its reading (SHA256SUMS made to match, so that only the audit can tell), or holding a node the lab lacks."""
    from netgen import pipeline

    ran = tmp_path / "ran"
    stub = tmp_path / "ansible-playbook"
    stub.write_text(f"#!/bin/bash\ntouch {ran}\n")
    stub.chmod(0o755)
    monkeypatch.setattr(executor, "ansible_playbook", lambda: str(stub))
    out = tmp_path / "out"
    if how == "stale node":  # left by an earlier compile of a lab that had a node3
        shutil.copytree(REPO / "out" / "flannel_vxlan" / "node2", out / "node3")
    written = pipeline.write_scripts

    def write_and_change(compiled, directory, *args):
        targets = written(compiled, directory, *args)
        path = {"lab part": "node1/up.sh", "engine": "node2/down.sh", "site.yml": "site.yml"}.get(how)
        if path is not None:
            file = out / path
            old = file.read_bytes()
            text = old.decode()
            if how == "lab part":  # the lab's lock made a no-op
                text = text.replace("set -euo pipefail\n", "set -euo pipefail\nflock() { :; }\n", 1)
            else:  # the engine's last line, or the playbook's
                text += "exit 0\n" if how == "engine" else "# edited\n"
            file.write_text(text)
            sums = file.parent / "SHA256SUMS"
            sums.write_text(sums.read_text().replace(hashlib.sha256(old).hexdigest(),
                                                     hashlib.sha256(file.read_bytes()).hexdigest()))
        return targets

    monkeypatch.setattr(pipeline, "write_scripts", write_and_change)
    (tmp_path / "hosts.yml").write_text("")
    for command in ("up", "verify", "down"):
        result = runner.invoke(app, [command, FLANNEL, "--inventory", str(tmp_path / "hosts.yml"), "-o", str(out)])
        assert result.exit_code == 1, result.stderr
        said = {"lab part": f"netgen audit: {out}/node1/up.sh:32: not data: defines a function flock",
                "engine": f"netgen audit: {out}/node2/down.sh:",
                "site.yml": f"netgen audit: {out}/site.yml:",
                "stale node": f"netgen audit: {out}/node3: {FLANNEL} has no node node3"}[how]
        assert said in result.stderr, result.stderr
        assert f"netgen: refused: {out} is not what netgen 0.1.0 compiles from {FLANNEL}" in result.stderr
        assert "so ansible-playbook was not run" in result.stderr and "netgen: running" not in result.stderr
        assert not ran.exists()
    # the same folder, as compiled: the playbook runs
    monkeypatch.setattr(pipeline, "write_scripts", written)
    shutil.rmtree(out / "node3", ignore_errors=True)
    result = runner.invoke(app, ["up", FLANNEL, "--inventory", str(tmp_path / "hosts.yml"), "-o", str(out)])
    assert result.exit_code == 0 and ran.exists(), result.stderr


# --- live: ansible-playbook against sshd on simulated nodes ----------------------------------------------------------

SSHD = "/usr/sbin/sshd"


class Hosts:
    """The lab's nodes simulated (Cluster), each with an sshd on its underlay address that lets root in with the
    test's key; the outer sandbox, where ansible-playbook runs, gets 192.168.60.1 on the underlay bridge. Everything
    it writes is under `tmp`: keys, sshd's config and login records (each node's /var/log is a folder of it), the
    nodes' Ansible temporary files, and Ansible's own folder (ANSIBLE_HOME, its ssh control sockets)."""

    def __init__(self, nodes, tmp, python: bool = True):
        self.tmp = tmp
        self.cluster = Cluster(nodes)
        try:
            self._start(nodes, python)
        except BaseException:
            self.cluster.close()
            raise
        self.env = {"ANSIBLE_HOME": f"{tmp}/ansible", "ANSIBLE_LOCAL_TEMP": f"{tmp}/ansible/tmp",
                    "ANSIBLE_SSH_CONTROL_PATH_DIR": f"{tmp}/ansible/cp", "ANSIBLE_REMOTE_TMP": f"{tmp}/remote",
                    "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1",
                    # ssh would otherwise add the nodes to ~/.ssh/known_hosts
                    "ANSIBLE_SSH_COMMON_ARGS": "-o UserKnownHostsFile=/dev/null"}

    def _start(self, nodes, python: bool) -> None:
        tmp = self.tmp
        for key in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "netgen-test", "-f", f"{tmp}/{key}"],
                           check=True)
        (tmp / "sshd_config").write_text(
            f"HostKey {tmp}/host_key\nAuthorizedKeysFile {tmp}/client_key.pub\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nPidFile none\n"
            "StrictModes no\nSubsystem sftp internal-sftp\n")  # StrictModes: tmp_path is under /tmp
        ok(self.cluster.run_outer("ip addr add 192.168.60.1/24 dev underlay"))
        # python=False, in the node's own mount namespace: the system's Pythons are empty, unrunnable files, and
        # root's home is empty (here it holds pyenv, whose shims its .bashrc puts on the PATH of an ssh login)
        mask = "" if python else ("for f in /usr/bin/python* /usr/local/bin/python*; do "
                                  "if [[ -f $f && ! -L $f ]]; then mount --bind /dev/null \"$f\"; fi; done; "
                                  "mount -t tmpfs -o mode=0700 netgen-test-home /root; ")
        for node in nodes:
            log = tmp / node.name / "log"
            log.mkdir(parents=True)
            for record in ("wtmp", "btmp", "lastlog"):  # sshd complains into the session when one is missing
                (log / record).touch()
            address = node.underlay.split("/")[0]
            self.cluster.start(node.name, f"{mask}mount --bind {log} /var/log && mkdir /run/sshd && "
                                          f"exec {SSHD} -D -e -f {tmp}/sshd_config -o ListenAddress={address}",
                               stdout=open(tmp / node.name / "sshd.log", "w"), stderr=subprocess.STDOUT)
        for node in nodes:
            address = node.underlay.split("/")[0]
            ok(self.cluster.run_outer(f"for i in $(seq 100); do (exec 3<>/dev/tcp/{address}/22) 2>/dev/null && exit; "
                                      f"sleep 0.1; done; exit 1"))

    def run(self, *command: str, cwd=None) -> subprocess.CompletedProcess:
        """A command (its words, or one line of bash) run in the outer sandbox in `cwd`, as an operator on another
        machine runs it."""
        line = command[0] if len(command) == 1 else shlex.join(command)
        return self.cluster.run(None, f"cd {shlex.quote(str(cwd or '/'))} && {line}", timeout=300, env=self.env)

    def close(self) -> None:
        self.cluster.close()


def recap(result: subprocess.CompletedProcess) -> dict[str, dict[str, int]]:
    """PLAY RECAP: host -> {"ok": N, "changed": N, "failed": N, ...}."""
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
            for host, counts in re.findall(r"^(\S+)\s+: (ok=.*)$", result.stdout, re.M)}


def failure(result: subprocess.CompletedProcess, host: str) -> str:
    """What ansible-playbook printed for each task that failed on `host`."""
    return "\n".join(re.findall(rf"^fatal: \[{re.escape(host)}\]: FAILED! => (.*?)(?=^\S|\Z)", result.stdout,
                                re.M | re.S))


def _live() -> None:
    """Skip (in CI: fail) a live test that lacks root, an sshd or Ansible."""
    reason = _can_sandbox()
    if reason is None and not os.access(SSHD, os.X_OK):
        reason = f"the live Ansible tests need an sshd ({SSHD}: apt-get install openssh-server)"
    if reason is None and _ansible_playbook() is None:
        reason = f"the live Ansible tests need ansible-playbook ({executor.CLUSTER_EXTRA})"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason + " (and CI must run them)")
        pytest.skip(reason)


@pytest.fixture
def flannel(tmp_path):
    """examples/flannel_vxlan.py compiled by docs/nodes.md's command in a checkout, with the key and the login in
    group_vars/all.yml beside the inventory (where docs/nodes.md says they go), and its nodes up with sshd."""
    _live()
    checkout = tmp_path / "a checkout"  # a space in the scripts' path, which the playbook quotes
    checkout.mkdir()
    (checkout / "examples").symlink_to(REPO / "examples")
    ok(subprocess.run(["bash", "-c", COMPILE_NODES], cwd=checkout, capture_output=True, text=True))
    out = checkout / "out" / "flannel_vxlan"
    (out / "group_vars").mkdir()
    (out / "group_vars" / "all.yml").write_text(f"ansible_user: root\nansible_ssh_private_key_file: "
                                                f"{tmp_path}/client_key\n")
    hosts = Hosts(compile_lab(FLANNEL).lab.nodes, tmp_path)
    hosts.checkout, hosts.out = checkout, out
    yield hosts
    hosts.close()


def playbook(hosts: Hosts, tags: str, *more: str) -> subprocess.CompletedProcess:
    """docs/nodes.md's ansible-playbook command, with --tags TAGS and more arguments."""
    assert PLAYBOOK.endswith(" --tags up")
    return hosts.run(shlex.join([*shlex.split(PLAYBOOK.removesuffix("up")), tags, *more]), cwd=hosts.checkout)


NODE2_FDB = "bridge fdb del 02:01:c0:a8:3c:0b dev flannel.1 dst 192.168.60.11 self"  # node2's way to node1's VTEP


@pytest.mark.live
def test_ansible_builds_verifies_and_removes_flannel_vxlan_on_two_hosts_over_ssh(flannel):
    cluster = flannel.cluster
    before = {node: cluster.settled_snapshot(node) for node in cluster.nodes}
    up = playbook(flannel, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert {h: (c["changed"], c["failed"]) for h, c in recap(up).items()} == {
        "localhost": (0, 0), "node1": (1, 0), "node2": (1, 0)}
    # again, with docs/nodes.md's other command: nothing to change on any node
    again = flannel.run(UP_ON_HOSTS, cwd=flannel.checkout)
    assert again.returncode == 0 and "netgen: running " in again.stderr, again.stdout + again.stderr
    assert {h: (c["changed"], c["failed"]) for h, c in recap(again).items()} == {
        "localhost": (0, 0), "node1": (0, 0), "node2": (0, 0)}
    verify = playbook(flannel, "verify")
    assert verify.returncode == 0 and "changed: " not in verify.stdout, verify.stdout
    # across the nodes, through the overlay the playbook built
    assert ok(cluster.run("node1", "ip netns exec pod-1-1 curl -s -m 10 http://10.244.2.2/")).stdout == \
        "hello from pod-2-1\n"
    # node2 loses a forwarding entry: its verify names it, and fails node2
    ok(cluster.run("node2", NODE2_FDB))
    broken = playbook(flannel, "verify")
    assert broken.returncode == 2 and recap(broken)["node2"]["failed"] == 1, broken.stdout
    assert "FAIL host fdb flannel.1/02:01:c0:a8:3c:0b/192.168.60.11: want self permanent, have absent" in \
        failure(broken, "node2")
    # (node1's verify fails too, and rightly: its pod's request reaches pod-2-1, whose answer cannot come back)
    assert "FAIL host fdb" not in failure(broken, "node1")
    down = playbook(flannel, "down")
    assert down.returncode == 0 and {h: c["changed"] for h, c in recap(down).items()} == {
        "localhost": 0, "node1": 1, "node2": 1}, down.stdout
    gone = playbook(flannel, "down")
    assert gone.returncode == 0 and all(c["changed"] == 0 for c in recap(gone).values()), gone.stdout
    assert {node: cluster.settled_snapshot(node) for node in cluster.nodes} == before


@pytest.mark.live
def test_a_failed_up_on_one_host_is_undone_on_the_others_unless_kept(flannel):
    cluster = flannel.cluster
    before = {node: cluster.settled_snapshot(node) for node in cluster.nodes}
    ok(cluster.run("node2", "ip link add cni0 type veth peer name cni0-peer"))  # the lab's bridge name, taken
    failed = playbook(flannel, "up")
    assert failed.returncode == 2
    assert {h: (c["changed"], c["failed"]) for h, c in recap(failed).items() if h != "localhost"} == {
        "node1": (2, 1), "node2": (0, 1)}, failed.stdout  # node1: up, then down
    assert "up.sh: host/cni0: exists (veth), not made by this lab" in failure(failed, "node2")
    assert "up failed on node2, so lab flannel_vxlan is not up on every node; this node: down.sh removed what up " \
           "made" in failure(failed, "node1")
    assert cluster.settled_snapshot("node1") == before["node1"]
    # kept: node1 stays as up built it
    kept = playbook(flannel, "up", "-e", "keep=true")
    assert kept.returncode == 2 and "this node: left as up built it (keep=true)" in failure(kept, "node1")
    assert "nothing to do: lab flannel_vxlan is up as built" in \
        ok(cluster.run("node1", f"bash {shlex.quote(str(flannel.out))}/node1/up.sh --plan")).stdout
    # once node2 is fixed, up completes the cluster: node1 was up already
    ok(cluster.run("node2", "ip link del cni0"))
    fixed = playbook(flannel, "up")
    assert fixed.returncode == 0 and {h: c["changed"] for h, c in recap(fixed).items()} == {
        "localhost": 0, "node1": 0, "node2": 1}, fixed.stdout
    assert playbook(flannel, "down").returncode == 0
    assert {node: cluster.settled_snapshot(node) for node in cluster.nodes} == before


@pytest.mark.live
def test_a_tampered_node_script_is_refused_on_the_controller_and_no_host_is_reached(flannel):
    """Issue 23: a node1/up.sh changed after compiling ran as root on node1. Now docs/nodes.md's
    ansible-playbook command stops on the controller, naming the file, and sshd on the nodes sees no login."""
    cluster = flannel.cluster
    before = {node: cluster.settled_snapshot(node) for node in cluster.nodes}
    script = flannel.out / "node1" / "up.sh"
    script.write_text(script.read_text().replace("set -euo pipefail\n",
                                                 "set -euo pipefail\nmkdir /run/netgen-pwned\n", 1))
    for tags in ("up", "verify", "down"):
        refused = playbook(flannel, tags)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"or one of them is missing): {script}; no host was touched" in refused.stdout, refused.stdout
        assert list(recap(refused)) == ["localhost"]
    for node in cluster.nodes:
        assert "Accepted publickey" not in (flannel.tmp / node / "sshd.log").read_text()  # not one ssh login
        assert cluster.run(node, "test -e /run/netgen-pwned").returncode == 1
    assert {node: cluster.settled_snapshot(node) for node in cluster.nodes} == before


@pytest.mark.live
def test_netgen_up_verify_down_with_an_inventory_on_hosts_without_python(tmp_path):
    _live()
    lab = tmp_path / "plain_pods.py"
    lab.write_text(PLAIN)
    nodes = compile_lab(str(lab)).lab.nodes
    hosts = Hosts(nodes, tmp_path, python=False)
    try:
        cluster = hosts.cluster
        for node in nodes:  # no Python there for a login over ssh
            said = hosts.run("ssh", "-i", f"{tmp_path}/client_key", "-o", "UserKnownHostsFile=/dev/null", "-o",
                             "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", f"root@{node.underlay.split('/')[0]}",
                             "python3 -c 1 || /usr/bin/python3 -c 1")
            assert said.returncode == 126 and "python3: Permission denied" in said.stderr, said
        before = {node: cluster.settled_snapshot(node) for node in cluster.nodes}
        inventory = tmp_path / "hosts.yml"  # the operator's own
        inventory.write_text(f"all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: "
                             f"{tmp_path}/client_key\n  hosts:\n"
                             + "".join(f"    {n.name}:\n      ansible_host: {n.underlay.split('/')[0]}\n"
                                       for n in nodes))
        netgen = [os.path.join(BIN, "netgen")]
        where = ["--inventory", str(inventory), "-o", str(tmp_path / "out")]
        up = hosts.run(*netgen, "up", str(lab), *where)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"netgen: running {_ansible_playbook()} -i {inventory} {tmp_path}/out/site.yml --tags up" in up.stderr
        assert "changed: [node1]" in up.stdout and "changed: [node2]" in up.stdout
        ok(cluster.run("node1", "ip netns exec pod-1 ping -c1 -W2 10.244.2.2"))
        assert hosts.run(*netgen, "verify", str(lab), *where).returncode == 0
        ok(cluster.run("node2", "ip netns exec pod-2 ip route del default"))
        broken = hosts.run(*netgen, "verify", str(lab), *where)
        assert broken.returncode == 2  # ansible-playbook's: a host failed
        assert "fatal: [node2]: FAILED!" in broken.stdout and "FAIL pod-2 route default" in broken.stdout
        down = hosts.run(*netgen, "down", str(lab), *where)
        assert down.returncode == 0, down.stdout + down.stderr
        assert {node: cluster.settled_snapshot(node) for node in cluster.nodes} == before
    finally:
        hosts.close()
