"""Bad labs: every mistake is reported as FILE:LINE: message, pointing at the lab line that made it."""

import pytest
from helpers import HEADER, assert_reports, compiles, errors_of, write_lab
from typer.testing import CliRunner

from netgen.cli import app
from netgen.pipeline import CompileError, compile_lab

# Lines 4-5 of the route cases: ns1/e0 and ns2/e0 on 10.0.0.0/24 and 2001:db8::/64; their routes start at line 6.
LINKED = ('ns2 = lab.netns("ns2")\n'
          'lab.veth(ns.port("e0", "10.0.0.1/24", "2001:db8::1/64"), ns2.port("e0", "10.0.0.2/24", "2001:db8::2/64"))\n')


INTERFACE_NAMES = [
    ("a" * 16, "'aaaaaaaaaaaaaaaa' is 16 bytes long; Linux allows at most 15"),
    ("é" * 8, "is 16 bytes long; Linux allows at most 15"),  # 8 characters, 16 bytes in UTF-8
    ("a/b", "contains '/', which Linux does not allow"),
    ("a:b", "contains ':', which Linux does not allow"),
    ("a b", "contains whitespace"),
    ("a\\tb", "contains whitespace"),
    ("a\\x07b", "contains the non-printable character '\\x07'"),
    (".", "interface name '.' is not allowed by Linux"),
    ("..", "interface name '..' is not allowed by Linux"),
    ("", "interface name is empty"),
    ("a+b", "contains '+'; netgen accepts letters, digits, '-', '_' and '.'"),
    ("eth€", "contains '€'; netgen accepts"),
    ("-eth0", "interface name '-eth0' starts with '-', which ip would read as an option"),
    ("lo", "ns1/lo: 'lo' is the loopback every namespace already has"),
]


@pytest.mark.parametrize("name, message", INTERFACE_NAMES)
def test_bad_bridge_name(tmp_path, name, message):
    assert_reports(tmp_path, HEADER + f'ns.bridge("{name}")\n', 4, message)


@pytest.mark.parametrize("name, message", INTERFACE_NAMES[:3] + INTERFACE_NAMES[-2:])
def test_bad_port_name(tmp_path, name, message):
    assert_reports(tmp_path, HEADER + f'lab.veth(ns.port("{name}"), lab.host.port("h0"))\n', 4, message)


def test_longest_names_are_accepted(tmp_path):
    compiles(tmp_path, HEADER + 'ns.bridge("a" * 15)\nlab.netns("n" * 255)\n')


@pytest.mark.parametrize("name, message", [
    ("a/b", "namespace name 'a/b' contains '/'; a safe file name has only letters, digits"),
    ("a b", "namespace name 'a b' contains ' '"),
    ("", "namespace name is empty"),
    (".", "namespace name '.' is not a file name"),
    ("..", "namespace name '..' is not a file name"),
    ("-n", "namespace name '-n' starts with '-'; start it with a letter or digit"),
    (".n", "namespace name '.n' starts with '.'"),
    ("n" * 256, "namespace name is longer than 255 bytes"),
    ("host", "namespace name 'host' is reserved for the root namespace: use lab.host"),
    ("ns1", "namespace 'ns1' is already defined at line 3"),
])
def test_bad_namespace_name(tmp_path, name, message):
    assert_reports(tmp_path, HEADER + f'lab.netns("{name}")\n', 4, message)


@pytest.mark.parametrize("name, message", [
    ("my lab", "lab name 'my lab' contains ' '"),
    ("../x", "lab name '../x' contains '/'"),
    ("", "lab name is empty"),
    ("-x", "lab name '-x' starts with '-'"),
])
def test_bad_lab_name(tmp_path, name, message):
    assert_reports(tmp_path, f'from netgen import Lab\n\nlab = Lab("{name}")\n', 3, message)


# (body after HEADER, line, message fragments)
BAD_LINKS = [
    pytest.param('lab.veth(ns.port("e0"), lab.host.port("h0"))\nlab.veth(ns.port("e0"), lab.host.port("h1"))\n',
                 5, ["ns1/e0 is already defined at line 4; names must be unique within a namespace"], id="two-ports"),
    pytest.param('ns.bridge("br0")\nlab.veth(ns.port("br0"), lab.host.port("h0"))\n',
                 5, ["ns1/br0 is already defined at line 4"], id="bridge-then-port"),
    pytest.param('lab.veth(ns.port("br0"), lab.host.port("h0"))\nns.bridge("br0")\n',
                 5, ["ns1/br0 is already defined at line 4"], id="port-then-bridge"),
    pytest.param('p = ns.port("e0")\nlab.veth(p, p)\n',
                 5, ["a veth pair needs two different ends; both ends are ns1/e0"], id="veth-to-itself"),
    pytest.param('ns.port("e0")\n', 4, ["port ns1/e0 is never joined: pass it to lab.veth(...)"], id="never-joined"),
    pytest.param('a, b, c = ns.port("a"), ns.port("b"), ns.port("c")\nlab.veth(a, b)\nlab.veth(c, a)\n',
                 6, ["port ns1/a is already one end of the veth pair made at line 5; make a new port for each pair"],
                 id="joined-twice"),
    pytest.param('lab.veth(ns.port("e0"), "h0")\n',
                 4, ["veth() takes two ports made with ns.port() or bridge.port(), got 'h0'"], id="veth-a-string"),
    pytest.param('br = lab.host.bridge("br0")\nlab.veth(ns.port("e0"), br)\n',
                 5, ["veth() takes two ports made with ns.port() or bridge.port(), got <bridge host/br0>"],
                 id="veth-a-bridge"),
    pytest.param('lab.veth(ns, lab.host)\n', 4, ["veth() takes two ports", "got <namespace ns1>"], id="veth-a-netns"),
    pytest.param('lab.host.bridge("br0", external=1)\n', 4, ["host/br0: external must be True or False, got 1"],
                 id="external-not-a-bool"),
]


@pytest.mark.parametrize("body, line, fragments", BAD_LINKS)
def test_bad_link(tmp_path, body, line, fragments):
    assert_reports(tmp_path, HEADER + body, line, *fragments)


def test_a_failed_veth_does_not_call_its_other_end_unjoined(tmp_path):
    path, diagnostics = errors_of(tmp_path, HEADER + 'br = lab.host.bridge("br0")\nlab.veth(ns.port("e0"), br)\n')
    assert len(diagnostics) == 1, [str(d) for d in diagnostics]
    assert "never joined" not in str(diagnostics[0])


def test_same_interface_name_in_two_namespaces_is_fine(tmp_path):
    compiles(tmp_path, HEADER + 'lab.veth(ns.port("eth0"), lab.host.port("eth0"))\n')


@pytest.mark.parametrize("source, message", [
    ('from netgen import Lab\n\n\nlab = Lab(5)\n', "lab name must be a string, got 5"),
    (HEADER + 'lab.netns(5)\n', "namespace name must be a string, got 5"),
    (HEADER + 'lab.veth(ns.port(5), lab.host.port("h0"))\n', "interface name must be a string, got 5"),
    (HEADER + 'ns.bridge(None)\n', "bridge name must be a string, got None"),
    (HEADER + 'ns.bridge("br0", 10)\n', "address must be a string like '10.0.0.1/24', got 10"),
    (HEADER + 'ns.route(None, dev="e0")\n', "route destination must be a string, got None"),
    (HEADER + 'ns.route("default", via=10)\n', "gateway must be a string, got 10"),
    (HEADER + 'ns.route("default", dev=0)\n', "device must be a string, got 0"),
    (HEADER + 'lab.expect(5).reaches("10.0.0.1")\n', "namespace name must be a string, got 5"),
    (HEADER + 'lab.expect(ns).reaches(10)\n', "address must be a string, got 10"),
])
def test_non_string_value(tmp_path, source, message):
    assert_reports(tmp_path, source, 4, message)


@pytest.mark.parametrize("cidr, message", [
    ("10.0.0.1", "ns1/br0: address '10.0.0.1' has no prefix length; write it in CIDR form, e.g. 10.0.0.1/24"),
    ("10.0.0.300/24", "address '10.0.0.300/24' is not a valid IPv4 or IPv6 address"),
    ("10.0.0.1/33", "address '10.0.0.1/33' is not a valid"),
    ("10.0.0.0/24", "address 10.0.0.0/24 is the network address of 10.0.0.0/24; "
                    "use a host address such as 10.0.0.1/24"),
    ("10.0.0.255/24", "address 10.0.0.255/24 is the broadcast address of 10.0.0.0/24"),
    ("10.0.0.3/30", "is the broadcast address of 10.0.0.0/30"),
    ("2001:db8::/64", "address 2001:db8::/64 is the network (subnet-router anycast) address of 2001:db8::/64; "
                      "use 2001:db8::1/64"),
    ("224.0.0.1/24", "address 224.0.0.1/24 cannot be assigned to an interface (multicast)"),
    ("ff02::1/64", "cannot be assigned to an interface (multicast)"),
    ("0.0.0.0/8", "address 0.0.0.0/8 cannot be assigned to an interface (unspecified)"),
    ("::/64", "cannot be assigned to an interface (unspecified)"),
    # ipaddress takes any text after %, a newline too: it would become a second line of ip -batch
    ("fe80::1%x\\nlink del eth0/64", "address 'fe80::1%x\\nlink del eth0/64' has a zone (%...); netgen takes "
                                     "addresses without one"),
])
def test_bad_address(tmp_path, cidr, message):
    assert_reports(tmp_path, HEADER + f'ns.bridge("br0", "{cidr}")\n', 4, message)


def test_bad_address_added_later_points_at_the_addr_call(tmp_path):
    assert_reports(tmp_path, HEADER + 'br = ns.bridge("br0", "10.0.0.1/24")\nbr.addr("10.0.1.0/24")\n', 5,
                   "ns1/br0: address 10.0.1.0/24 is the network address")


def test_slash_31_and_32_use_every_address(tmp_path):
    compiles(tmp_path, HEADER + 'ns.bridge("br0", "10.0.0.0/31", "10.0.1.1/31", "10.0.2.0/32", "10.0.3.255/32",'
                                ' "2001:db8::/127", "2001:db8:1::/128")\n')


@pytest.mark.parametrize("body, line, fragments", [
    pytest.param('ns2 = lab.netns("ns2")\nlab.veth(ns.port("e0", "10.0.0.1/24"),\n'
                 '         ns2.port("e0", "10.0.0.1/16"))\n', 6,
                 ["ns2/e0: address 10.0.0.1 is already used on the same L2 segment by ns1/e0 (line 5)"], id="veth"),
    pytest.param('br = lab.host.bridge("br0")\nns2 = lab.netns("ns2")\n'
                 'lab.veth(ns.port("e0", "10.0.0.5/24"), br.port("p1"))\n'
                 'lab.veth(ns2.port("e0", "10.0.0.5/24"), br.port("p2"))\n', 7,
                 ["ns2/e0: address 10.0.0.5 is already used on the same L2 segment by ns1/e0 (line 6)"], id="bridge"),
    pytest.param('br = lab.host.bridge("br0", "2001:db8::1/64")\n'
                 'lab.veth(ns.port("e0", "2001:db8::1/64"), br.port("p1"))\n', 5,
                 ["ns1/e0: address 2001:db8::1 is already used on the same L2 segment by host/br0 (line 4)"],
                 id="bridge-itself-ipv6"),
])
def test_same_address_twice_on_one_segment(tmp_path, body, line, fragments):
    assert_reports(tmp_path, HEADER + body, line, *fragments)


def test_same_address_on_two_separate_segments_is_fine(tmp_path):
    compiles(tmp_path, HEADER + 'ns2, ns3, ns4 = lab.netns("ns2"), lab.netns("ns3"), lab.netns("ns4")\n'
             'lab.veth(ns.port("e0", "10.0.0.1/24"), ns2.port("e0", "10.0.0.2/24"))\n'
             'lab.veth(ns3.port("e0", "10.0.0.1/24"), ns4.port("e0", "10.0.0.2/24"))\n')


@pytest.mark.parametrize("setting, message", [
    ("mtu=67", "ns1/br0: mtu must be a whole number from 68 to 65535, got 67"),
    ("mtu=65536", "mtu must be a whole number from 68 to 65535, got 65536"),
    ("mtu='1500'", "mtu must be a whole number from 68 to 65535, got '1500'"),
    ("mtu=1500.0", "got 1500.0"),
    ("mtu=True", "mtu must be a whole number from 68 to 65535, got True"),
    ("mac='02:42:ac:11:00'", "ns1/br0: mac must look like 02:42:ac:11:00:02, got '02:42:ac:11:00'"),
    ("mac='02-42-ac-11-00-02'", "mac must look like 02:42:ac:11:00:02, got '02-42-ac-11-00-02'"),
    ("mac='02:42:ac:11:00:0g'", "mac must look like"),
    ("mac=42", "mac must look like 02:42:ac:11:00:02, got 42"),
    ("mac='01:00:5e:00:00:01'", "ns1/br0: mac 01:00:5e:00:00:01 is a multicast address; the first octet must be even"),
    ("mac='ff:ff:ff:ff:ff:ff'", "is a multicast address"),
    ("mac='00:00:00:00:00:00'", "ns1/br0: mac 00:00:00:00:00:00 cannot be assigned"),
])
def test_bad_link_setting(tmp_path, setting, message):
    assert_reports(tmp_path, HEADER + f'ns.bridge("br0", {setting})\n', 4, message)


def test_link_settings_at_their_limits_are_fine(tmp_path):
    compiles(tmp_path, HEADER + 'ns.bridge("br0", mtu=68, mac="02:42:AC:11:00:02")\nns.bridge("br1", mtu=65535)\n')


# Routes in ns1, after LINKED (lines 4-5): (routes from line 6, line, message fragments)
BAD_ROUTES = [
    pytest.param('ns.route("10.1.0.0/16")', 6,
                 ["route '10.1.0.0/16' in ns1 needs a gateway (via=) or a device (dev=)"], id="no-via-no-dev"),
    pytest.param('ns.route("10.1.0.0/16", dev="eth9")', 6,
                 ["route '10.1.0.0/16' in ns1 goes out of device 'eth9', which the lab does not define in ns1 "
                  "(its interfaces: e0)"], id="unknown-dev"),
    pytest.param('ns.route("10.1.0.0/16", via="10.0.0.256")', 6,
                 ["route '10.1.0.0/16' in ns1: gateway '10.0.0.256' is not an IP address"], id="bad-gateway"),
    pytest.param('ns.route("10.1.0.0/16", via="2001:db8::2")', 6,
                 ["gateway 2001:db8::2 is IPv6 but the destination is IPv4"], id="family-mismatch"),
    pytest.param('ns.route("2001:db8:9::/48", via="10.0.0.2")', 6,
                 ["gateway 10.0.0.2 is IPv4 but the destination is IPv6"], id="family-mismatch-6"),
    pytest.param('ns.route("10.1.2.3/16", via="10.0.0.2")', 6,
                 ["route '10.1.2.3/16' in ns1: 10.1.2.3/16 has host bits set; did you mean 10.1.0.0/16?"],
                 id="host-bits"),
    pytest.param('ns.route("nowhere", via="10.0.0.2")', 6,
                 ["route 'nowhere' in ns1: destination must be 'default' or a prefix like 10.1.0.0/16"],
                 id="bad-destination"),
    pytest.param('ns.route("10.1.0.0/33", dev="e0")', 6, ["destination must be 'default' or a prefix"],
                 id="bad-prefix-length"),
    pytest.param('ns.route("default", via="10.9.9.1")', 6,
                 ["route 'default' in ns1: gateway 10.9.9.1 is not on any connected subnet of ns1 "
                  "(connected: 10.0.0.0/24 on e0, 2001:db8::/64 on e0)"], id="gateway-off-link"),
    pytest.param('ns.bridge("br1", "10.5.0.1/24")\nns.route("default", via="10.0.0.2", dev="br1")', 7,
                 ["gateway 10.0.0.2 is not on any connected subnet on br1 of ns1",
                  "10.0.0.0/24 on e0", "10.5.0.0/24 on br1"], id="gateway-on-another-dev"),
    pytest.param('ns.route("default", via="fe80::1")', 6,
                 ["route 'default' in ns1: link-local gateway fe80::1 needs dev= to say which link"],
                 id="link-local-without-dev"),
    pytest.param('ns.route("default", via="10.0.0.2")\nns.route("default", dev="e0")', 7,
                 ["ns1 has a second IPv4 default route; the first is at line 6"], id="two-defaults"),
    pytest.param('ns.route("default", via="2001:db8::2")\nns.route("default", dev="e0", family=6)', 7,
                 ["ns1 has a second IPv6 default route; the first is at line 6"], id="two-defaults-6"),
    pytest.param('ns.route("10.1.0.0/16", via="10.0.0.2")\nns.route("10.1.0.0/16", dev="e0")', 7,
                 ["ns1 has a second route to 10.1.0.0/16; the first is at line 6"], id="same-destination"),
    pytest.param('ns.route("default", dev="e0", family=5)', 6,
                 ["route 'default' in ns1: family must be 4 or 6, got 5"], id="bad-family"),
    pytest.param('ns.route("default", via="fe80::1%e0 x", dev="e0")', 6,
                 ["route 'default' in ns1: 'fe80::1%e0 x' has a zone (%...); netgen takes addresses without one "
                  "(name the link with dev=)"], id="gateway-with-a-zone"),
    pytest.param('ns.route("fe80::%e0/64", dev="e0")', 6, ["'fe80::%e0/64' has a zone (%...)"],
                 id="destination-with-a-zone"),
    # 6.0 == 6, but JSON (netgen export) keeps the two apart: only the integer compiles
    pytest.param('ns.route("default", dev="e0", family=6.0)', 6,
                 ["route 'default' in ns1: family must be 4 or 6, got 6.0"], id="float-family"),
]


@pytest.mark.parametrize("routes, line, fragments", BAD_ROUTES)
def test_bad_route(tmp_path, routes, line, fragments):
    assert_reports(tmp_path, HEADER + LINKED + routes + "\n", line, *fragments)


def test_good_routes(tmp_path):
    """One default per family, a link-local gateway with dev=, routes by gateway and by device."""
    compiles(tmp_path, HEADER + LINKED + 'ns.route("default", via="10.0.0.2")\n'
             'ns.route("default", via="2001:db8::2")\n'
             'ns2.route("default", via="fe80::1", dev="e0")\n'
             'ns2.route("10.1.0.0/16", dev="e0")\n'
             'ns2.route("2001:db8:9::/48", via="2001:db8::1", dev="e0")\n')


@pytest.mark.parametrize("call, message", [
    ('lab.expect("nope").reaches("10.0.0.1")',
     "expectation from namespace 'nope', which the lab does not define (known: host, ns1)"),
    ('lab.expect(ns).reaches("10.0.0.1/24")',
     "expectation target '10.0.0.1/24' must be an IP address without a prefix length"),
    ('lab.expect(ns).cannot_reach("example.com")', "expectation target 'example.com' must be an IP address"),
    ('lab.expect(ns).reaches("10.0.0.1", tcp=0)', "tcp port must be a whole number from 1 to 65535, got 0"),
    ('lab.expect(ns).reaches("10.0.0.1", tcp=65536)', "tcp port must be a whole number from 1 to 65535, got 65536"),
    ('lab.expect(ns).reaches("10.0.0.1", tcp="80")', "tcp port must be a whole number from 1 to 65535, got '80'"),
    ('lab.expect(ns).reaches("10.0.0.1", tcp=True)', "got True"),
    ('lab.expect(ns).reaches("fe80::1%eth0 x")', "expectation target 'fe80::1%eth0 x' has a zone (%...)"),
])
def test_bad_expectation(tmp_path, call, message):
    assert_reports(tmp_path, HEADER + call + "\n", 4, message)


def test_good_expectations(tmp_path):
    compiles(tmp_path, HEADER + 'lab.expect("host").reaches("10.0.0.1", tcp=1).cannot_reach("2001:db8::1", tcp=65535)\n'
             'lab.expect(ns).reaches("10.0.0.1")\n')


def test_bridge_port_with_an_address_is_a_warning(tmp_path):
    path = write_lab(tmp_path, HEADER + 'br = lab.host.bridge("br0")\n'
                                        'lab.veth(ns.port("e0", "10.0.0.2/24"), br.port("p0", "10.0.0.3/24"))\n')
    compiled = compile_lab(path)
    assert [str(w) for w in compiled.warnings] == [
        f"{path}:5: warning: host/p0 is a port of bridge br0 and also has an address; a bridge port does not "
        f"answer on its own address: put the address on br0"]


MANY_MISTAKES = HEADER + """\
lab.expect("nope").reaches("10.0.0.1")
ns.bridge("a/b")
ns.bridge("br0", "10.0.0.0/24")
ns.port("e0")
ns.route("default")
lab.netns("host")
ns.bridge("br1", mtu=0)
"""


def test_every_mistake_is_reported_in_line_order(tmp_path):
    path, diagnostics = errors_of(tmp_path, MANY_MISTAKES)
    assert [(d.loc.file, d.loc.line) for d in diagnostics] == [(path, line) for line in range(4, 11)]
    fragments = ["namespace 'nope'", "'a/b' contains '/'", "network address", "never joined", "needs a gateway",
                 "reserved for the root namespace", "mtu must be"]
    for d, fragment in zip(diagnostics, fragments, strict=True):
        assert fragment in d.message


def test_cli_reports_every_mistake_on_stderr_and_exits_1(tmp_path):
    path = write_lab(tmp_path, MANY_MISTAKES)
    result = CliRunner().invoke(app, ["compile", path])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"{path}:4: expectation from namespace 'nope', which the lab does not define (known: host, ns1)"
    assert [line.split(": ", 1)[0] for line in lines[:7]] == [f"{path}:{n}" for n in range(4, 11)]
    assert lines[7:] == [f"netgen: {path}: 7 errors; nothing was written"]
    assert "Traceback" not in result.stderr


def test_zero_prefix_is_the_default_route_and_family_must_match_the_gateway(tmp_path):
    lab = tmp_path / "lab.py"
    lab.write_text('from netgen import Lab\nlab = Lab("x")\nns = lab.netns("n")\n'
                   'lab.veth(ns.port("e0", "10.0.0.2/24"), lab.host.port("h0", "10.0.0.1/24"))\n'
                   'ns.route("default", via="10.0.0.1")\nns.route("0.0.0.0/0", via="10.0.0.1")\n'
                   'ns.route("default", via="10.0.0.1", family=6)\n'
                   'for i in (1, 2):\n    lab.netns("twice")\n')
    with pytest.raises(CompileError) as e:
        compile_lab(str(lab))
    lines = [str(d) for d in e.value.diagnostics]
    assert f"{lab}:6: n has a second IPv4 default route; the first is at line 5" in lines
    assert f"{lab}:7: route 'default' in n: family=6 but gateway 10.0.0.1 is IPv4" in lines
    assert (f"{lab}:9: namespace 'twice' is already defined by this same line (in a loop, or a helper called twice)"
            in lines)


def test_a_lab_too_big_to_compile_is_refused_at_the_first_object_past_the_limit(tmp_path, monkeypatch):
    from netgen import validate

    monkeypatch.setattr(validate, "MAX_OBJECTS", 5)  # the real limit is 100,000: the same rule, quicker
    path = write_lab(tmp_path, HEADER + "for i in range(3):\n    lab.netns(f'n{i}')\n"
                     "lab.veth(ns.port('e0'), lab.host.port('h0'))\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["compile", path, "-o", str(out)])
    assert result.exit_code == 1 and not out.exists()
    assert f"{path}:6: the lab makes 6 objects" in result.stderr and "at most 5" in result.stderr


def test_the_ipv4_shortcut_agrees_with_ipaddress():
    """Plain IPv4 addresses skip ipaddress; the shortcut must say yes exactly where the full rules find nothing."""
    import ipaddress
    import random

    from netgen.validate import ipv4_host

    rng = random.Random(5)
    texts = ["10.0.0.1/24", "10.0.0.0/24", "10.0.0.255/24", "0.0.0.0/0", "224.0.0.1/24", "10.0.0.0/31",
             "255.255.255.255/32", "1.2.3.4/33", "01.2.3.4/8", "1.2.3.4/08", "256.1.1.1/8", "1.2.3/8", "::1/128"]
    texts += [f"{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 2)}.{rng.choice([0, 1, 255, 7])}"
              f"/{rng.randint(0, 32)}" for _ in range(3000)]
    for text in texts:
        try:
            i = ipaddress.ip_interface(text)
        except ValueError:
            assert not ipv4_host(text), text
            continue
        edge = i.network.prefixlen <= 30 and i.ip in (i.network.network_address, i.network.broadcast_address)
        usable = i.version == 4 and str(i) == text and not (i.ip.is_unspecified or i.ip.is_multicast or edge)
        assert ipv4_host(text) == usable, text


# external=True and adopt=True (issue 15): what may exist before up, and what the lab may then do with it.
TAKEN_OVER = [
    ('x = lab.netns("x", external=True, adopt=True)\n', 4, "namespace x: external=True (used as it is) and adopt=True"),
    ('x = lab.netns("x", adopt="yes")\n', 4, "namespace x: adopt must be True or False, got 'yes'"),
    ('x = lab.netns("x", external=1)\n', 4, "namespace x: external must be True or False, got 1"),
    ('lab.host.bridge("br0", external=True, adopt=True)\n', 4, "host/br0: external=True (used as it is) and adopt"),
    ('ns.bridge("br0", adopt=True)\n', 4, "ns1/br0: only a bridge in the host can be adopted"),
    ('x = lab.netns("x", external=True)\nx.bridge("br0")\n', 5, "namespace x is external, and down never enters it"),
    ('x = lab.netns("x", external=True)\ny = lab.netns("y", external=True)\n'
     'lab.veth(x.port("a"), y.port("b"))\n', 6, "has both ends in external namespaces"),
    ('x = lab.netns("x", external=True)\nx.sysctl("net.ipv4.ip_forward", 1)\n', 5,
     "sysctl net.ipv4.ip_forward in namespace x, which is external: the lab never changes it"),
]


@pytest.mark.parametrize("body, line, message", TAKEN_OVER, ids=[m[:40] for _, _, m in TAKEN_OVER])
def test_external_and_adopt_misuse_is_named_at_its_line(tmp_path, body, line, message):
    assert_reports(tmp_path, HEADER + body, line, message)


def test_external_and_adopted_objects_compile_into_the_scripts(tmp_path):
    compiled = compiles(tmp_path, HEADER + 'x = lab.netns("x", external=True)\n'
                        'br = lab.host.bridge("br0", "10.1.0.1/24", adopt=True)\n'
                        'a = lab.netns("a", adopt=True)\n'
                        'lab.veth(x.port("e1", "10.1.0.2/24"), br.port("v-x"))\n'
                        'lab.veth(a.port("e1", "10.1.0.3/24"), br.port("v-a"))\n')
    plan = compiled.plan
    assert plan.external == ("x",)
    adoptions = {a.key: a for a in plan.adoptions}
    assert set(adoptions) == {"netns/a/", "link/host/br0"}
    assert adoptions["link/host/br0"].links == ("v-x", "v-a")
    assert adoptions["link/host/br0"].addresses == ("10.1.0.1/24",)
    assert "10.1.0.0/24" in adoptions["netns/a/"].routes and adoptions["netns/a/"].links == ("lo", "e1")
    netns_steps = [s for s in plan.sections[0].steps if s.check[0] == "netns"]
    assert [(s.check[1], s.expect, bool(s.do)) for s in netns_steps] == [("ns1", False, True), ("x", True, False),
                                                                          ("a", False, True)]


# Nodes (issue 18): two nodes on one underlay subnet, each with a cni0 holding its pod subnet; a body starts at line 7.
NODES = ('from netgen import Lab\nlab = Lab("t")\n'
         'n1 = lab.node("node1", underlay="192.168.60.11/24", dev="eth0")\n'
         'n2 = lab.node("node2", underlay="192.168.60.12/24", dev="eth0")\n'
         'b1 = n1.host.bridge("cni0", subnet="10.244.1.0/24")\n'
         'b2 = n2.host.bridge("cni0", subnet="10.244.2.0/24")\n')

BAD_NODES = [
    # the nodes themselves
    pytest.param('lab.node("node1", underlay="192.168.60.13/24", dev="eth0")\n', 7,
                 ["node 'node1' is already defined at line 3"], id="duplicate-node-name"),
    pytest.param('lab.node("no/de", underlay="192.168.60.13/24", dev="eth0")\n', 7,
                 ["node name 'no/de' contains '/'"], id="bad-node-name"),
    pytest.param('lab.node("node3", underlay="192.168.60.11/16", dev="eth0")\n', 7,
                 ["node node3: underlay address 192.168.60.11 is already node node1's (line 3)"],
                 id="duplicate-underlay"),
    pytest.param('lab.node("node3", underlay="192.168.60.13", dev="eth0")\n', 7,
                 ["node node3: underlay '192.168.60.13' has no prefix length; write it in CIDR form, e.g. "
                  "192.168.60.13/24"], id="underlay-without-prefix"),
    pytest.param('lab.node("node3", underlay="2001:db8::3/64", dev="eth0")\n', 7,
                 ["node node3: underlay '2001:db8::3/64' is IPv6; a node's underlay is IPv4"], id="underlay-ipv6"),
    pytest.param('lab.node("node3", underlay="bogus", dev="eth0")\n', 7,
                 ["node node3: underlay 'bogus' is not an IPv4 address in CIDR form"], id="underlay-not-an-address"),
    pytest.param('lab.node("node3", underlay=5, dev="eth0")\n', 7,
                 ["node node3: underlay must be a string like '192.168.60.11/24', got 5"], id="underlay-not-a-string"),
    pytest.param('lab.node("node3", underlay="192.168.60.0/24", dev="eth0")\n', 7,
                 ["host/eth0: address 192.168.60.0/24 is the network address of 192.168.60.0/24"],
                 id="underlay-network-address"),
    pytest.param('lab.node("node3", underlay="192.168.60.13/24", dev="eth0:1")\n', 7,
                 ["node node3: underlay device: interface name 'eth0:1' contains ':'"], id="bad-underlay-device"),
    pytest.param('lab.node("node3", underlay="192.168.60.13/24", dev=None)\n', 7,
                 ["node node3: dev must be a string like 'eth0', got None"], id="underlay-device-not-a-string"),
    pytest.param('lab.node("node3", underlay="192.168.60.13/24", dev="eth0", ssh="a b")\n', 7,
                 ["node node3: ssh must be a host name or address like 192.168.60.11 or node1.example.org, got 'a b'"],
                 id="bad-ssh"),
    pytest.param('lab.node("node3", underlay="192.168.60.13/24", dev="eth0", mtu=10)\n', 7,
                 ["node node3: underlay mtu must be a whole number from 68 to 65535, got 10"], id="bad-underlay-mtu"),
    # what is on which node
    pytest.param('lab.veth(n1.netns("a").port("e0"),\n         n2.netns("b").port("e0"))\n', 7,
                 ["veth pair a/e0 <-> b/e0 joins two nodes (node1 and node2): a veth pair lives inside one machine"],
                 id="veth-between-nodes"),
    pytest.param('lab.netns("pod")\n', 7,
                 ["namespace pod is on no node: a lab with nodes (node1 at line 3) makes everything on one of them"],
                 id="lab-netns-with-nodes"),
    pytest.param('lab.host.bridge("br0")\n', 7, ["host/br0 is on no node"], id="lab-host-with-nodes"),
    pytest.param('n1.netns("x")\nn2.netns("x")\n', 8,
                 ["namespace 'x' is already on node node1 (line 7); a namespace's name is unique in the lab"],
                 id="namespace-on-two-nodes"),
    # routes over the underlay
    pytest.param('n1.host.route("10.9.0.0/16", via="192.168.70.1")\n', 7,
                 ["route '10.9.0.0/16' in host: gateway 192.168.70.1 is not on any connected subnet of host "
                  "(connected: 192.168.60.0/24 on eth0, 10.244.1.0/24 on cni0)"], id="route-via-unreachable"),
    pytest.param('n1.host.bridge("x", subnet="192.168.60.0/25")\n', 7,
                 ["host/x: subnet 192.168.60.0/25 overlaps 192.168.60.0/24 of host/eth0"],
                 id="pool-overlapping-the-underlay"),
    # overlays
    pytest.param('n3 = lab.node("node3", underlay="192.168.60.13/24", dev="eth0")\n'
                 'b3 = n3.host.bridge("cni0", subnet="10.244.0.0/16")\nlab.host_gw(b1, b2, b3)\n', 9,
                 ["host_gw: node node3's pod subnet 10.244.0.0/16 (bridge cni0) overlaps node node1's 10.244.1.0/24"],
                 id="overlapping-pod-subnets"),
    pytest.param('lab.vxlan_overlay(b1, b2, macs={n1: "02:00:00:00:00:01", "node2": "02:00:00:00:00:01"})\n', 7,
                 ["vxlan_overlay: node node2's VTEP MAC 02:00:00:00:00:01 (pinned) is already node node1's"],
                 id="duplicate-vtep-macs"),
    pytest.param('lab.vxlan_overlay(b1, b2, macs={n1: "02:01:c0:a8:3c:0c"})\n', 7,
                 ["vxlan_overlay: node node2's VTEP MAC 02:01:c0:a8:3c:0c (derived from its underlay address) is "
                  "already node node1's"], id="pinned-vtep-mac-of-another-node"),
    pytest.param('lab.vxlan_overlay(b1, b2, macs={n1: "01:00:00:00:00:01"})\n', 7,
                 ["vxlan_overlay: node node1's VTEP mac 01:00:00:00:00:01 is a multicast address"],
                 id="multicast-vtep-mac"),
    pytest.param('lab.vxlan_overlay(b1, b2, macs={"node9": "02:00:00:00:00:01"})\n', 7,
                 ["vxlan_overlay: macs= names node 'node9', which this overlay does not join"], id="mac-of-no-member"),
    pytest.param('lab.vxlan_overlay(b1, b2, macs=5)\n', 7,
                 ['macs= takes a dict of node to MAC, like {n1: "02:01:c0:a8:3c:0b"}, got 5'], id="macs-not-a-dict"),
    pytest.param('lab.host_gw(b1)\n', 7,
                 ["host_gw: joins nodes: it needs a bridge on each of two nodes or more, got 1"], id="overlay-of-one"),
    pytest.param('lab.host_gw(b1, n1.netns("x").bridge("br"))\n', 7,
                 ["host_gw() takes bridges in the nodes' hosts (node.host.bridge(...)), got <bridge node1/x/br>",
                  "host_gw: joins nodes: it needs a bridge on each of two nodes or more, got 1"],
                 id="bridge-not-in-a-host"),
    pytest.param('lab.host_gw(b1, b2, n1.host.bridge("cni1", subnet="10.244.3.0/24"))\n', 7,
                 ["host_gw: node node1 is joined twice (cni0 and cni1); one bridge per node"], id="node-joined-twice"),
    pytest.param('lab.host_gw(b1, n2.host.bridge("cni1"))\n', 7,
                 ["host_gw: node node2's bridge cni1 has no IPv4 subnet to be its pod subnet"], id="no-pod-subnet"),
    pytest.param('n3 = lab.node("node3", underlay="192.168.70.13/24", dev="eth0")\n'
                 'lab.host_gw(b1, b2, n3.host.bridge("cni0", "10.244.3.1/24"))\n', 8,
                 ["host_gw: node node3's underlay 192.168.70.13/24 is not on node node1's underlay subnet "
                  "192.168.60.0/24"], id="host-gw-across-subnets"),
    pytest.param('lab.vxlan_overlay(b1, b2, vni=1 << 24, port=0, device="flannel:1", mtu=20, masquerade="yes")\n', 7,
                 ["vxlan_overlay: vni must be a whole number from 0 to 16777215, got 16777216",
                  "vxlan_overlay: port must be a whole number from 1 to 65535, got 0",
                  "vxlan_overlay: device: interface name 'flannel:1' contains ':'",
                  "vxlan_overlay: mtu must be a whole number from 68 to 65535, got 20",
                  "vxlan_overlay: masquerade must be True or False, got 'yes'"], id="bad-vxlan-settings"),
    pytest.param('lab.vxlan_overlay(b1, b2)\nlab.l2_segment(b1, b2, vni=1, port=8472)\n', 8,
                 ["l2_segment: node node1 and node node2 already have a vxlan device with VNI 1 on UDP port 8472 "
                  "(line 7); give this one another VNI"],
                 id="same-vni-twice-on-a-node"),
    pytest.param('n3 = lab.node("node3", underlay="192.168.60.13/24", dev="eth0", mtu=100)\n'
                 'lab.vxlan_overlay(b1, n3.host.bridge("cni0", subnet="10.244.3.0/24"))\n', 8,
                 ["host/flannel.1: mtu must be a whole number from 68 to 65535, got 50"], id="underlay-mtu-too-small"),
    pytest.param('x1, x2 = n1.host.bridge("br0"), n2.host.bridge("br0")\nlab.l2_segment(x1, x2)\n'
                 'lab.veth(n1.netns("a").port("e0", "10.0.1.2/24"), x1.port("v1"))\n'
                 'lab.veth(n2.netns("b").port("e0", "10.0.1.2/24"), x2.port("v2"))\n', 10,
                 ["b/e0 on node node2: address 10.0.1.2 is already used on the L2 segment of line 8 by a/e0 on "
                  "node node1 (line 9)"], id="same-address-on-an-l2-segment"),
    pytest.param('lab.host_gw(b1, b2)\nlab.expect(n1.netns("a")).reaches(n2.netns("b"))\n', 8,
                 ["expectation: namespace b (on node node2) has no address to reach"], id="target-without-address"),
    pytest.param('b1.masquerade(not_to=["10.0.0.1", 5])\n', 7,
                 ["masquerade of host/cni0: not_to takes prefixes like 10.244.0.0/16, got '10.0.0.1'",
                  "got 5"], id="bad-not-to"),
]


@pytest.mark.parametrize("body, line, fragments", BAD_NODES)
def test_bad_nodes_are_named_at_their_line(tmp_path, body, line, fragments):
    path, diagnostics = errors_of(tmp_path, NODES + body)
    texts = [str(d) for d in diagnostics]
    for fragment in fragments:
        assert any(t.startswith(f"{path}:{line}: ") and fragment in t for t in texts), (fragment, texts)
    assert all(t.startswith(f"{path}:{line}: ") for t in texts), texts
    assert len(texts) == len(fragments), texts  # one mistake, one message: nothing repeated per node


def test_a_lab_with_nodes_compiles_and_the_underlay_is_a_gateway(tmp_path):
    compiled = compiles(tmp_path, NODES + 'n1.host.route("10.9.0.0/16", via="192.168.60.1")\n'
                        'lab.vxlan_overlay(b1, b2)\nlab.expect(n1.host).reaches("192.168.60.12")\n')
    from netgen.nodes import split

    assert set(split(compiled.lab)) == {"node1", "node2"}


# A lab read from JSON names nodes by itself: objects on nodes the lab does not define, or on none.
NODES_JSON = {"format": 1, "name": "t",
              "nodes": [{"name": "node1", "underlay": "192.168.60.11/24", "dev": "eth0", "at": "lab.json:2"}],
              "namespaces": [{"node": "node1", "name": "a", "at": "lab.json:3"}]}


@pytest.mark.parametrize("fields, message", [
    ({"namespaces": [{"node": "node9", "name": "a", "at": "lab.json:3"}]},
     "lab.json:3: namespace a is on node 'node9', which the lab does not define (its nodes: node1)"),
    ({"interfaces": [{"node": "node9", "ns": "host", "name": "br0", "kind": "bridge", "at": "lab.json:4"}]},
     "lab.json:4: host/br0 is on node 'node9', which the lab does not define"),
    ({"routes": [{"ns": "host", "dest": "default", "via": "192.168.60.1", "at": "lab.json:4"}]},
     "lab.json:4: route 'default' in host is on no node"),
    ({"sysctls": [{"ns": "nowhere", "key": "net.ipv4.ip_forward", "value": 1, "at": "lab.json:4"}]},
     "lab.json:4: sysctl net.ipv4.ip_forward in nowhere: namespace 'nowhere' is not one of the lab's"),
    ({"overlays": [{"kind": "host-gw", "bridges": [{"node": "node1", "name": "cni0"}, {"node": "node9",
                                                                                        "name": "cni0"}],
                    "at": "lab.json:4"}]},
     "lab.json:4: host_gw: node 'node9' is not one of the lab's"),
    ({"nodes": [], "namespaces": [], "overlays": [{"kind": "vxlan", "bridges": [], "vni": 1, "port": 8472,
                                                   "device": "flannel.1", "at": "lab.json:4"}]},
     "lab.json:4: vxlan_overlay: joins nodes, and the lab has none: declare them with lab.node()"),
])
def test_objects_on_unknown_nodes_are_named_at_their_line(tmp_path, monkeypatch, fields, message):
    import json

    (tmp_path / "lab.json").write_text(json.dumps(NODES_JSON | fields))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CompileError) as e:
        compile_lab("lab.json")
    texts = [str(d) for d in e.value.diagnostics]
    assert any(t.startswith(message) for t in texts), texts


def test_an_overlay_in_a_lab_without_nodes_is_named_at_its_line(tmp_path):
    path, diagnostics = errors_of(tmp_path, HEADER + 'lab.host_gw(lab.host.bridge("cni0", subnet="10.244.1.0/24"))\n')
    assert [str(d) for d in diagnostics] == [
        f"{path}:4: host_gw() takes bridges in the nodes' hosts (node.host.bridge(...)), got <bridge host/cni0>",
        f"{path}:4: host_gw: joins nodes, and the lab has none: declare them with lab.node()"]
