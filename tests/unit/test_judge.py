"""verify.sh's judge, the awk program that compares each check with the live state, run on states made up here
(no root needed): what a mismatch says, what may settle, and when a peer's namespace must be read again."""

import subprocess

import pytest
from helpers import REPO


@pytest.fixture(scope="module")
def judge_awk(tmp_path_factory):
    """The judge as verify.sh writes it to its scratch directory: bash expands the script's own assignment."""
    path = tmp_path_factory.mktemp("judge") / "judge.awk"
    verify = REPO / "out" / "veth_pair" / "verify.sh"
    subprocess.run(["bash", "-c", f"""eval "$(sed -n "/^JUDGE_AWK='/,/^}}'$/p" {verify})"
                    printf '%s\\n' "$JUDGE_AWK" >{path}"""], check=True)
    return path


def judge(judge_awk, tmp_path, state: dict[str, str], checks: str, counts=()):
    """Report lines, the last line (passed failed settling), awk's exit status and its stderr for CHECKS against
    STATE."""
    facts = tmp_path / "facts"
    facts.write_text("".join(f"{k}\t{v}\n" for k, v in state.items())
                     + "".join(f"count\t{k}\n" for k in counts))
    (tmp_path / "checks").write_text(checks)
    run = subprocess.run(["awk", "-v", f"checks={tmp_path}/checks", "-v", f"names={tmp_path}/names", "-f",
                          str(judge_awk), str(facts), str(tmp_path / "checks")], capture_output=True, text=True)
    lines = run.stdout.splitlines()
    return lines[:-1], lines[-1] if lines else "", run.returncode, run.stderr


def test_each_check_words_its_result_and_counts_what_may_settle(judge_awk, tmp_path):
    state = {"netns/ns1/": "present", "state/ns1/eth0": "down", "oper/ns1/eth0": "down",
             "addr/ns1/10.0.0.1/24": "eth0 (tentative)", "addr/ns1/10.0.0.2/24": "eth1",
             "route4/ns1/default": "via 10.0.0.9 dev eth0", "sysctl/ns1/net.ipv4.ip_forward": "0"}
    checks = """  # ====== in ns1 (comments and blank lines are skipped)

  netns 'ns1' '' present
  state 'ns1' 'eth0' up
  oper 'ns1' 'eth0' up
  addr 'ns1' '10.0.0.1/24' 'eth0'
  addr 'ns1' '10.0.0.2/24' 'eth0'
  addr 'ns1' '10.0.0.3/24' 'eth0'
  route4 'ns1' 'default' 'via 10.0.0.1 dev eth0'
  sysctl 'ns1' 'net.ipv4.ip_forward' '1'
  link 'ns2' 'veth0' absent
"""
    report, counts, status, _ = judge(judge_awk, tmp_path, state, checks)
    assert status == 0
    assert report == [
        "ok   ns1 netns: present",
        "FAIL ns1/eth0 state: want up, have down",
        "FAIL ns1/eth0 carrier: want up, have down",
        "FAIL ns1/eth0 address 10.0.0.1/24: want present, have tentative",
        "FAIL ns1/eth0 address 10.0.0.2/24: want present, have on eth1",
        "FAIL ns1/eth0 address 10.0.0.3/24: want present, have absent",
        "FAIL ns1 route default: want via 10.0.0.1 dev eth0, have via 10.0.0.9 dev eth0",
        "FAIL ns1 sysctl net.ipv4.ip_forward: want 1, have 0",
        "ok   ns2/veth0 kind: absent",
    ]
    assert counts == "2 7 2"  # the carrier and the tentative address may settle


def test_quoted_words_are_read_as_the_script_quotes_them(judge_awk, tmp_path):
    state = {"sysctl/host/net.x": "it's a b", "state/host/lo": "up"}
    report, counts, _, _ = judge(judge_awk, tmp_path, state,
                              "sysctl 'host' 'net.x' 'it'\\''s a b'\nstate host lo up\n")
    assert report == ["ok   host sysctl net.x: it's a b", "ok   host/lo state: up"]
    assert counts == "2 0 0"


def test_a_peer_that_cannot_be_told_asks_for_its_namespace_to_be_read_again(judge_awk, tmp_path):
    # ns1's veth0 has its peer in a namespace ns1's reading cannot name, and ns2's veth1 does not point back.
    state = {"ifindex/ns1/veth0": "5", "iflink/ns1/veth0": "6", "peerns/ns1/veth0": "unnamed",
             "ifindex/ns2/veth1": "6", "iflink/ns2/veth1": "9", "peerns/ns2/veth1": "unnamed"}
    checks = "peer 'ns1' 'veth0' 'ns2/veth1'\n"
    _, _, status, _ = judge(judge_awk, tmp_path, state, checks)
    assert status == 3
    assert (tmp_path / "names").read_text() == "ns1\n"
    # read again, naming: still no name for the peer's namespace, and no second request
    report, counts, status, _ = judge(judge_awk, tmp_path, {**state, "named/ns1": "1"}, checks)
    assert status == 0
    assert report == ["FAIL ns1/veth0 peer: want ns2/veth1, have a link in another namespace"]
    # the two ends match both ways and no other veth between namespaces looks like them: no read needed
    state.update({"iflink/ns2/veth1": "5"})
    report, _, status, _ = judge(judge_awk, tmp_path, state, checks, counts=("cross/5/6", "cross/6/5"))
    assert (status, report) == (0, ["ok   ns1/veth0 peer: ns2/veth1"])


def test_a_line_that_is_not_a_check_stops_the_judge_instead_of_being_skipped(judge_awk, tmp_path):
    _, counts, status, stderr = judge(judge_awk, tmp_path, {"state/host/lo": "up"}, "state host lo up\nstate host lo\n")
    assert status == 4  # verify.sh then dies with exit 2 rather than report what it judged
    assert counts != "1 0 0"
    assert "not a check (ATTR NS OBJECT WANT): state host lo" in stderr
