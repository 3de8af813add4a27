"""Hostile input: any name or address either compiles into scripts bash accepts, with every user value inside
quotes, or is refused with a diagnostic naming the lab line; never an exception."""

import re
import subprocess

from helpers import examples
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from netgen import dsl, plan, render, validate
from netgen.model import Diagnostic

NASTY = st.sampled_from(["a;reboot", "$(id)", "`id`", "a'b", 'a"b', "a\nb", "a b", "-rf", "..", ".", "", "ü", "x" * 300,
                         "\\", "#c", "a|b", "lo", "host", "eth0", "ns1", "10.0.0.1/24"])
NAMES = st.one_of(NASTY, st.text(min_size=0, max_size=20), st.from_regex(r"[A-Za-z0-9_.-]{1,16}", fullmatch=True))
ADDRESSES = st.one_of(
    st.sampled_from(["10.0.0.1/24", "10.0.0.0/24", "10.0.0.255/24", "0.0.0.0/0", "10.0.0.1/31", "10.0.0.1/32",
                     "2001:db8::1/64", "2001:db8::/64", "::1/128", "fe80::1/64", "::ffff:10.0.0.1/96", "ff02::1/64",
                     "10.0.0.1", "10.0.0.1/33", "300.1.1.1/8", "1.2.3.4/24; rm -rf /", "$(reboot)/24"]),
    st.text(max_size=30))


def mostly(valid: str, other):
    """Usually a valid value, so that the other inputs of one example get through validation and are exercised."""
    return st.one_of(st.just(valid), st.just(valid), other)


SETTINGS = settings(max_examples=examples(3000), deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def build(ns_name, if_name, peer_name, address, gateway):
    dsl.made.clear()
    lab = dsl.Lab("hostile")
    ns = lab.netns(ns_name)
    lab.veth(ns.port(if_name, address), lab.host.port(peer_name, "10.9.9.1/24"))
    ns.route("default", via=gateway)
    lab.expect(ns_name).reaches("10.9.9.1")
    dsl.made.clear()
    return lab.to_model("lab.py", "0" * 64)


def scripts_or_diagnostics(model):
    found = validate.validate(model)
    if validate.has_errors(found):
        return None, found
    built = plan.build(model, "test")
    return {v: render.render(built, v) for v in render.VARIANTS}, found


def bare_code(script: str) -> str:
    """The script without comments and without what is inside single quotes."""
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    return re.sub(r"'[^']*'", "''", code)


def words(text: str) -> set[str]:
    return set(re.findall(r"[\w.-]+", text))


# Words every script uses bare (keywords like up, veth, link, 0): a user value equal to one proves nothing.
SCRIPT_WORDS = set().union(*(words(bare_code(t)) for t in
                             (lambda m: {v: render.render(plan.build(m, "test"), v) for v in render.VARIANTS})(
                                 build("ns1", "eth0", "h0", "10.9.9.2/24", "10.9.9.1")).values()))


def safe_or_refused(model) -> dict[str, str]:
    """The scripts of `model`, each accepted by `bash -n`; or none, when it is refused with errors that name lines."""
    scripts, found = scripts_or_diagnostics(model)
    event("accepted" if scripts is not None else "refused")
    if scripts is None:
        errors = [d for d in found if d.level == "error"]
        assert errors and all(isinstance(d, Diagnostic) and d.loc and d.loc.line > 0 for d in errors)
        return {}
    for variant, text in scripts.items():
        check = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
        assert check.returncode == 0, (variant, check.stderr)
    return scripts


def unquoted(script: str, value: str) -> bool:
    return value not in SCRIPT_WORDS and re.search(rf"(?<![\w.-]){re.escape(value)}(?![\w.-])",
                                                    bare_code(script)) is not None


@SETTINGS
@given(ns_name=mostly("ns1", NAMES), if_name=mostly("eth0", NAMES), peer_name=mostly("h0", NAMES),
       address=mostly("10.9.9.2/24", ADDRESSES), gateway=mostly("10.9.9.1", ADDRESSES))
def test_any_input_compiles_safely_or_is_refused_with_its_line(ns_name, if_name, peer_name, address, gateway):
    for variant, text in safe_or_refused(build(ns_name, if_name, peer_name, address, gateway)).items():
        for value in (ns_name, if_name, peer_name):
            assert not unquoted(text, value), (variant, value)


@settings(max_examples=examples(15), deadline=None, derandomize=True)
@given(ns_name=st.from_regex(r"[A-Za-z0-9_.-]{1,16}", fullmatch=True),
       if_name=st.from_regex(r"[A-Za-z0-9_.-]{1,16}", fullmatch=True))
def test_accepted_names_give_shellcheck_clean_scripts(ns_name, if_name):
    scripts, _ = scripts_or_diagnostics(build(ns_name, if_name, "h0", "10.9.9.2/24", "10.9.9.1"))
    for text in (scripts or {}).values():
        result = subprocess.run(["shellcheck", "-"], input=text, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def build_nat(subnet, proto, address, port):
    """A pooled bridge, masqueraded, with a published port: the values pools and NAT read."""
    dsl.made.clear()
    lab = dsl.Lab("hostile")
    ns = lab.netns("ns1")
    br = lab.host.bridge("br0", subnet=subnet)
    lab.veth(ns.port("eth0"), br.port("p0"))
    br.masquerade()
    lab.host.publish(port, ns, 80, proto=proto, address=address)
    dsl.made.clear()
    return lab.to_model("lab.py", "0" * 64)


@settings(max_examples=examples(1000), deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(subnet=mostly("10.9.0.0/24", st.one_of(ADDRESSES, st.integers())),
       proto=mostly("tcp", st.one_of(NASTY, st.sampled_from(["udp", "TCP", "sctp"]))),
       address=st.one_of(st.none(), mostly("10.9.0.1", ADDRESSES)),
       port=mostly(8080, st.one_of(st.integers(), st.booleans(), NASTY)))
def test_any_pool_or_published_port_compiles_safely_or_is_refused_with_its_line(subnet, proto, address, port):
    safe_or_refused(build_nat(subnet, proto, address, port))
