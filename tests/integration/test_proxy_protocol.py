"""popgate behind a load balancer: the PROXY protocol, v1 and v2 (issue 16; HAProxy's
doc/proxy-protocol.txt), with headers written by hand and a real Dovecot upstream.

  [server] proxy_protocol = yes, trusted_proxies = 127.0.0.1 (the test's "load balancer")
  - the header's source address is the session's client: the session line, the ID sent
    upstream (Dovecot logs it as rip/rport), the failed-login delay, max_per_address
  - bytes after the header in the same packet are the client's (POP3, or STLS/POP3S)
  - a peer not in trusted_proxies, a malformed header, no header, a header too slow: closed
    with a log line, nothing sent
  - v1 UNKNOWN, v2 LOCAL (the balancer's health check) and v2 over a UNIX socket: the
    proxy's own address
  - a bad CIDR or proxy_protocol without trusted_proxies: the config is refused
  - HAProxy (Debian's package) in front with send-proxy-v2: POP3 and POP3S sessions through
    it show the real client in popgate's session line and in Dovecot's login
  - HAProxy in front of two popgate nodes (etc/haproxy-popgate.cfg.example, the file README
    quotes, with the test's ports): round robin reaches both, each logs the real client and
    Dovecot sees it in the ID, both give the same UIDLs, a header from a peer a node does not
    trust is refused
  - a flood of refused connections logs a burst, then one line a second with a count
"""

import os
import re
import shutil
import subprocess
import socket
import ssl
import struct
import time

import pytest

import dovecot as dovecot_mod
from helpers import wait_until
from pop3client import Pop3Raw
from popgate import popgate_check_config, popgate_ini, start_popgate

pytestmark = pytest.mark.popgate_only

V2_SIG = b"\r\n\r\n\0\r\nQUIT\n"
DELAY_MS = 300


def v1(src, sport, dst="127.0.0.1", dport=110):
	proto = "TCP6" if ":" in src else "TCP4"
	return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def v2(src, sport, dst="127.0.0.1", dport=110, tlvs=b""):
	"""A v2 PROXY command over TCP (IPv4 or IPv6), with optional raw TLV bytes."""
	if ":" in src:
		fam = 0x21
		body = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
	else:
		fam = 0x11
		body = socket.inet_aton(src) + socket.inet_aton(dst)
	body += struct.pack("!HH", sport, dport) + tlvs
	return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


V2_LOCAL = V2_SIG + b"\x20\x00\x00\x00"


class Proxied(Pop3Raw):
	"""A POP3 connection as a load balancer makes it: the header (and `extra`, in the same
	send) first, then the greeting is read."""

	def __init__(self, port, header, extra=b"", source=None, timeout=30):
		self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
			source_address=(source, 0) if source else None)
		self.sock.sendall(header + extra)
		self.file = self.sock.makefile("rb")
		self.greeting = self.readline()


def closed_without_a_word(port, data, source=None, timeout=10):
	"""Connects, sends data, and returns what came back before the server closed (b"" if
	nothing), or None if it did not close within timeout."""
	with socket.create_connection(("127.0.0.1", port), timeout=timeout,
			source_address=(source, 0) if source else None) as s:
		if data:
			s.sendall(data)
		got = b""
		try:
			while True:
				b = s.recv(4096)
				if not b:
					return got
				got += b
		except socket.timeout:
			return None
		except ConnectionResetError:
			return got


@pytest.fixture(scope="module")
def dc(make_dovecot):
	# Dovecot trusts popgate's ID (x-originating-ip/port) from loopback, and logs it.
	return make_dovecot(ssl=True, extra="login_trusted_networks = 127.0.0.0/8\n"
		"login_log_format_elements = user=<%u> method=%m rip=%r rport=%{rport} lip=%l\n")


@pytest.fixture(scope="module")
def pg(dc, tmp_path_factory):
	tls_port = dovecot_mod.free_ports(1)[0]
	p = start_popgate(tmp_path_factory.mktemp("pg"), dc.imap_port, **{
		"server.proxy_protocol": "yes", "server.trusted_proxies": "127.0.0.1/32, ::1",
		"server.listen_tls": "127.0.0.1:%d" % tls_port,
		"tls.cert_file": dc.certs["server.pem"], "tls.key_file": dc.certs["server.key"],
		"upstream.send_client_id": "yes",
		"limits.auth_fail_delay_ms": DELAY_MS, "limits.auth_fail_delay_max_ms": 10000,
		"limits.max_auth_failures": 10, "limits.max_per_address": 2})
	p.tls_port = tls_port
	yield p
	p.stop()


def dovecot_log(d):
	with open(d.log_path, errors="replace") as f:
		return f.read()


def session_line(pg, user, client):
	return wait_until(lambda: re.search(r"session=\w+ user=%s client=%s " % (
		re.escape(user), re.escape(client)), pg.log()), 5, "the session line of %s from %s" % (
		user, client))


def test_v2_header_makes_the_client_the_one_it_names(pg, dc):
	with Proxied(pg.port, v2("203.0.113.7", 4242)) as c:
		assert c.greeting.startswith(b"+OK")
		c.login("bob", dc.users["bob"])
		c.quit()
	session_line(pg, "bob", "203.0.113.7")
	# The ID upstream carries the header's address and port: Dovecot logs them.
	wait_until(lambda: re.search(r"Login: user=<bob>.* rip=203\.0\.113\.7, rport=4242\b",
		dovecot_log(dc)), 5, lambda: "Dovecot's login with rip=203.0.113.7 rport=4242:\n" +
		dovecot_log(dc)[-2000:])


def test_v1_header_ipv4_and_ipv6(pg, dc):
	with Proxied(pg.port, v1("198.51.100.9", 5555)) as c:
		c.login("carol", dc.users["carol"])
		c.quit()
	session_line(pg, "carol", "198.51.100.9")
	with Proxied(pg.port, v1("2001:db8::7", 6666, dst="2001:db8::1")) as c:
		c.login("carol", dc.users["carol"])
		c.quit()
	session_line(pg, "carol", "2001:db8::7")
	wait_until(lambda: re.search(r"Login: user=<carol>.* rip=2001:db8::7, rport=6666\b",
		dovecot_log(dc)), 5, lambda: dovecot_log(dc)[-2000:])


def test_v2_with_tlvs_and_ipv6(pg, dc):
	tlvs = b"\x01\x00\x04pop3" + b"\x05\x00\x03abc" + b"\x04\x00\x00"	# ALPN, unique id, NOOP
	with Proxied(pg.port, v2("2001:db8::42", 4343, dst="::1", tlvs=tlvs)) as c:
		c.login("bob", dc.users["bob"])
		c.quit()
	session_line(pg, "bob", "2001:db8::42")


def test_bytes_after_the_header_in_the_same_packet_are_the_clients(pg, dc):
	with Proxied(pg.port, v2("203.0.113.8", 4000), extra=b"CAPA\r\nUSER bob\r\n") as c:
		assert c.greeting.startswith(b"+OK")
		status, lines = c.readline(), c.read_multiline()
		assert status.startswith(b"+OK"), status
		assert b"USER\r\n" in lines, lines
		assert c.readline().startswith(b"+OK"), "USER's reply"
		assert c.cmd("PASS " + dc.users["bob"]).startswith(b"+OK")
		c.quit()
	session_line(pg, "bob", "203.0.113.8")
	# v1 too, with the header and a command in one send
	with Proxied(pg.port, v1("203.0.113.9", 4001), extra=b"USER carol\r\n") as c:
		assert c.readline().startswith(b"+OK"), "USER's reply"
		assert c.cmd("PASS " + dc.users["carol"]).startswith(b"+OK")
		assert c.cmd("QUIT").startswith(b"+OK")
	session_line(pg, "carol", "203.0.113.9")


def test_stls_after_the_header(pg, dc):
	ctx = ssl.create_default_context(cafile=dc.certs["ca.pem"])
	with Proxied(pg.port, v2("203.0.113.10", 4010)) as c:
		assert c.cmd("STLS").startswith(b"+OK")
		c.sock = ctx.wrap_socket(c.sock, server_hostname="127.0.0.1")
		c.file = c.sock.makefile("rb")
		c.login("bob", dc.users["bob"])
		c.quit()
	line = session_line(pg, "bob", "203.0.113.10")
	assert " tls=yes " in pg.log()[line.start():].splitlines()[0]


def test_pop3s_after_the_header(pg, dc):
	ctx = ssl.create_default_context(cafile=dc.certs["ca.pem"])
	raw = socket.create_connection(("127.0.0.1", pg.tls_port), timeout=30)
	raw.sendall(v2("203.0.113.11", 4011, dport=995))
	with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
		f = s.makefile("rb")
		assert f.readline().startswith(b"+OK")
		for line in (b"USER bob", b"PASS " + dc.users["bob"].encode(), b"QUIT"):
			s.sendall(line + b"\r\n")
			assert f.readline().startswith(b"+OK"), line
	session_line(pg, "bob", "203.0.113.11")


def test_failed_login_delay_counts_against_the_headers_address(pg, dc):
	def fail(client, port, n):
		with Proxied(pg.port, v2(client, port)) as c:
			t0 = time.monotonic()
			c.cmd("USER bob")
			r = c.cmd("PASS wrong-%d" % n)
			assert r.startswith(b"-ERR [AUTH]"), r
			return time.monotonic() - t0

	def delays():
		return [int(d) for d in re.findall(r"login of user=bob failed: .*\(delay (\d+) ms\)",
			pg.log())]

	before = len(delays())
	times = [fail("203.0.113.50", 5000, 1), fail("203.0.113.50", 5001, 2),
		fail("203.0.113.50", 5002, 3)]
	# Another client behind the same proxy starts from the first delay.
	times.append(fail("203.0.113.51", 5003, 4))
	got = delays()[before:]
	assert got == [DELAY_MS, 2 * DELAY_MS, 4 * DELAY_MS, DELAY_MS], (got, times, pg.log_tail(30))
	assert times[2] >= 4 * DELAY_MS / 1000 * 0.9, times
	assert times[3] < times[2], times


def test_max_per_address_counts_the_headers_address(pg, dc):
	a = Proxied(pg.port, v2("203.0.113.60", 6000))
	b = Proxied(pg.port, v2("203.0.113.60", 6001))
	try:
		with Proxied(pg.port, v2("203.0.113.60", 6002)) as c:
			assert c.greeting.startswith(b"-ERR [SYS/TEMP]"), c.greeting
		assert "client=203.0.113.60 has 2 connections" in pg.log()
		# Others behind the same proxy are not refused.
		with Proxied(pg.port, v2("203.0.113.61", 6003)) as d:
			assert d.greeting.startswith(b"+OK")
			d.quit()
	finally:
		a.close()
		b.close()


def test_untrusted_peer_is_closed(pg):
	got = closed_without_a_word(pg.port, v2("203.0.113.7", 4242), source="127.0.0.2")
	assert got == b"", got
	wait_until(lambda: "proxy=127.0.0.2: connection closed: not in [server] trusted_proxies"
		in pg.log(), 5, "the log line of the untrusted peer")
	# Not even a greeting on the TLS port.
	assert closed_without_a_word(pg.tls_port, b"", source="127.0.0.2") == b""


@pytest.mark.parametrize("data,why", [
	(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n", "v1: source port is not a number from 0 to 65535"),
	(b"PROXY TCP4 1.2.3.999 5.6.7.8 1 1\r\n", "v1: source is not an IPv4 address"),
	(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 1\n", "v1: LF without CR"),
	(b"PROXY UNKNOWN " + b"x" * 120, "v1: no CRLF within 107 bytes"),
	(V2_SIG + b"\x21\x51\x00\x00", "v2: unknown address family"),
	(V2_SIG + b"\x11\x11\x00\x0c", "v2: version is not 2"),
	(V2_SIG + b"\x21\x11\xff\xff", "v2: header longer than 2048 bytes"),
	(b"USER bob\r\n", "no PROXY header"),
])
def test_malformed_header_is_closed(pg, data, why):
	assert closed_without_a_word(pg.port, data) == b""
	wait_until(lambda: "proxy=127.0.0.1: connection closed: %s" % why in pg.log(), 5,
		"the log line: " + why)


def test_no_header_or_a_slow_one_is_closed_after_5_s(pg):
	t0 = time.monotonic()
	assert closed_without_a_word(pg.port, b"", timeout=15) == b""
	assert closed_without_a_word(pg.port, b"PROXY TCP4 1.2", timeout=15) == b""
	assert 4.5 <= time.monotonic() - t0 < 14
	assert "proxy=127.0.0.1: connection closed: no PROXY header within 5 s" in pg.log()
	assert "proxy=127.0.0.1: connection closed: PROXY header not complete within 5 s" in pg.log()


def test_local_and_unknown_use_the_proxys_own_address(pg, dc):
	unix = V2_SIG + b"\x21\x31\x00\xd8" + b"/run/client".ljust(108, b"\0") + \
		b"/run/lb".ljust(108, b"\0")
	for header in (V2_LOCAL, b"PROXY UNKNOWN\r\n", unix):
		with Proxied(pg.port, header) as c:
			c.login("carol", dc.users["carol"])
			c.quit()
		session_line(pg, "carol", "127.0.0.1")


def test_header_split_across_packets(pg, dc):
	h = v2("203.0.113.12", 4012)
	with socket.create_connection(("127.0.0.1", pg.port), timeout=30) as s:
		for i in range(0, len(h), 5):
			s.sendall(h[i:i + 5])
			time.sleep(0.02)
		f = s.makefile("rb")
		assert f.readline().startswith(b"+OK")
		s.sendall(b"QUIT\r\n")
		assert f.readline().startswith(b"+OK")
	wait_until(lambda: re.search(r"session=\w+ user=- client=203\.0\.113\.12 ", pg.log()), 5,
		"the session line of 203.0.113.12")


@pytest.mark.parametrize("trusted,error", [
	("10.0.0.1/8", r"trusted_proxies: \"10\.0\.0\.1/8\" is not a CIDR: address has bits set past "
		r"the prefix length"),
	("127.0.0.1, 300.0.0.0/8", r"\"300\.0\.0\.0/8\" is not a CIDR: not an IPv4 or IPv6 address"),
	("::1/129", r"\"::1/129\" is not a CIDR: prefix length over 128"),
	(None, r"proxy_protocol = yes needs trusted_proxies"),
])
def test_bad_trusted_proxies_refuse_the_config(tmp_path, trusted, error):
	ini = popgate_ini(tmp_path, 143, 1110, **{"server.proxy_protocol": "yes",
		"server.trusted_proxies": trusted})
	code, out = popgate_check_config(ini, str(tmp_path))
	assert code != 0, out
	assert re.search(error, out), out
	if trusted is not None:
		assert re.search(r"popgate\.ini:\d+: |check\.ini:\d+: ", out), "names the line: " + out


# --- a real load balancer: HAProxy (Debian's package) with send-proxy-v2 ----------------------

HAPROXY_CFG = """global
	log stderr format raw local0 info
defaults
	mode tcp
	log global
	option tcplog
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend pop3
	bind 127.0.0.1:%(front)d
	default_backend popgate
frontend pop3s
	bind 127.0.0.1:%(front_tls)d
	default_backend popgate_tls
backend popgate
	server pg1 127.0.0.1:%(pg)d send-proxy-v2
backend popgate_tls
	server pg1 127.0.0.1:%(pg_tls)d send-proxy-v2
"""


def run_haproxy(tmp_path, cfg_text, front):
	"""Starts Debian's HAProxy in the foreground on cfg_text (skips when it is not
	installed), waits until it accepts on `front`; yields the process, stopped by PID."""
	exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
	if not os.path.exists(exe):
		pytest.skip("haproxy is not installed (tests/deps.sh installs it)")
	cfg = tmp_path / "haproxy.cfg"
	cfg.write_text(cfg_text)
	log = open(tmp_path / "haproxy.log", "wb")
	proc = subprocess.Popen([exe, "-db", "-f", str(cfg)], stdin=subprocess.DEVNULL, stdout=log,
		stderr=subprocess.STDOUT, start_new_session=True)
	proc.log_path = tmp_path / "haproxy.log"
	try:
		assert dovecot_mod.wait_listening(front, proc, timeout=10), \
			(tmp_path / "haproxy.log").read_text(errors="replace")
		yield proc
	finally:
		proc.terminate()
		try:
			proc.wait(10)
		except subprocess.TimeoutExpired:
			proc.kill()
			proc.wait(5)
		log.close()


@pytest.fixture
def haproxy(pg, tmp_path):
	front, front_tls = dovecot_mod.free_ports(2)
	for proc in run_haproxy(tmp_path, HAPROXY_CFG % {"front": front, "front_tls": front_tls,
			"pg": pg.port, "pg_tls": pg.tls_port}, front):
		proc.front, proc.front_tls = front, front_tls
		yield proc


def test_through_haproxy_send_proxy_v2(pg, dc, haproxy):
	# The client connects to HAProxy from 127.0.0.5; popgate sees only HAProxy (127.0.0.1),
	# and the header tells it who the client is.
	with Pop3Raw("127.0.0.1", haproxy.front, source="127.0.0.5") as c:
		port = c.sock.getsockname()[1]
		assert c.greeting.startswith(b"+OK")
		c.login("bob", dc.users["bob"])
		status, lines = c.cmd_multi("UIDL")
		assert status.startswith(b"+OK"), status
		c.quit()
	session_line(pg, "bob", "127.0.0.5")
	wait_until(lambda: re.search(r"Login: user=<bob>.* rip=127\.0\.0\.5, rport=%d\b" % port,
		dovecot_log(dc)), 5, lambda: dovecot_log(dc)[-2000:])
	# POP3S through it: TLS end to end between the client and popgate.
	ctx = ssl.create_default_context(cafile=dc.certs["ca.pem"])
	raw = socket.create_connection(("127.0.0.1", haproxy.front_tls), timeout=30,
		source_address=("127.0.0.6", 0))
	with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
		f = s.makefile("rb")
		assert f.readline().startswith(b"+OK")
		for line in (b"USER carol", b"PASS " + dc.users["carol"].encode(), b"QUIT"):
			s.sendall(line + b"\r\n")
			assert f.readline().startswith(b"+OK"), line
	line = session_line(pg, "carol", "127.0.0.6")
	assert " tls=yes " in pg.log()[line.start():].splitlines()[0]


def test_connections_waiting_for_their_header_do_not_count_under_the_proxys_address(pg):
	"""max_per_address is 2 here. Connections from the balancer still waiting for their
	header must not count under its address: a v2 LOCAL health check (which takes the
	balancer's own address) is greeted while three of them wait."""
	waiting = [socket.create_connection(("127.0.0.1", pg.port), timeout=10) for _ in range(3)]
	try:
		time.sleep(0.2)		# accepted, each waiting for its header
		with Proxied(pg.port, V2_LOCAL) as c:
			assert c.greeting.startswith(b"+OK"), c.greeting
			c.quit()
	finally:
		for s in waiting:
			s.close()


# --- two popgate nodes behind one HAProxy, as etc/haproxy-popgate.cfg.example has it ----------

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
	__file__)))), "etc", "haproxy-popgate.cfg.example")


def haproxy_example_cfg(front, front_tls, nodes):
	"""The README's HAProxy example, its addresses replaced by the test's: HAProxy's ports on
	127.0.0.1, and the two nodes' (POP3, POP3S) ports. Each address must be in the file, so
	a change to it that the test cannot follow fails here instead of testing something else.
	A global section logging to stderr goes first (the example leaves that to the operator)."""
	with open(EXAMPLE) as f:
		text = f.read()
	swaps = {
		"bind :110\n": "bind 127.0.0.1:%d\n" % front,
		"bind :995\n": "bind 127.0.0.1:%d\n" % front_tls,
		" 10.0.0.5:110 ": " 127.0.0.1:%d " % nodes[0].port,
		" 10.0.0.6:110 ": " 127.0.0.1:%d " % nodes[1].port,
		" 10.0.0.5:995 ": " 127.0.0.1:%d " % nodes[0].tls_port,
		" 10.0.0.6:995 ": " 127.0.0.1:%d " % nodes[1].tls_port,
	}
	for old, new in swaps.items():
		assert old in text, "%s no longer has %r" % (EXAMPLE, old)
		text = text.replace(old, new)
	return "global\n\tlog stderr format raw local0 info\n\n" + text


def test_readme_quotes_the_example_as_it_is():
	"""README's HAProxy example is the file this test runs, byte for byte."""
	with open(EXAMPLE) as f:
		example = f.read()
	with open(os.path.join(os.path.dirname(EXAMPLE), "..", "README.md")) as f:
		readme = f.read()
	assert "```haproxy\n" + example + "```\n" in readme


def start_node(tmp, dc, trusted):
	tls_port = dovecot_mod.free_ports(1)[0]
	p = start_popgate(tmp, dc.imap_port, **{
		"server.proxy_protocol": "yes", "server.trusted_proxies": trusted,
		"server.listen_tls": "127.0.0.1:%d" % tls_port,
		"tls.cert_file": dc.certs["server.pem"], "tls.key_file": dc.certs["server.key"],
		"upstream.send_client_id": "yes"})
	p.tls_port = tls_port
	return p


@pytest.fixture
def two_nodes(dc, tmp_path):
	nodes = []
	try:
		for i in (1, 2):
			nodes.append(start_node(tmp_path / ("node%d" % i), dc, "127.0.0.1/32"))
		yield nodes
	finally:
		for n in nodes:
			n.stop()


@pytest.fixture
def haproxy2(two_nodes, tmp_path):
	front, front_tls = dovecot_mod.free_ports(2)
	for proc in run_haproxy(tmp_path, haproxy_example_cfg(front, front_tls, two_nodes), front):
		proc.front, proc.front_tls = front, front_tls
		yield proc


def node_of(nodes, user, client):
	"""The index of the node whose log has the session of user from client (exactly one)."""
	pattern = r"session=\w+ user=%s client=%s " % (re.escape(user), re.escape(client))
	found = wait_until(lambda: [i for i, n in enumerate(nodes) if re.search(pattern, n.log())],
		5, "a session line of %s from %s on a node" % (user, client))
	assert len(found) == 1, found
	return found[0]


def test_haproxy_round_robin_over_two_nodes(two_nodes, haproxy2, dc):
	user, password, msgs = dc.fresh_user()
	assert msgs, "a seeded mailbox"
	# Four sessions of one user from four client addresses: round robin gives two to each
	# node; each node logs the client HAProxy saw, and Dovecot gets it in the ID.
	listings, served = {}, {}
	for k in range(4):
		src = "127.0.0.%d" % (21 + k)
		with Pop3Raw("127.0.0.1", haproxy2.front, source=src) as c:
			cport = c.sock.getsockname()[1]
			assert c.greeting.startswith(b"+OK"), c.greeting
			c.login(user, password)
			status, lines = c.cmd_multi("UIDL")
			assert status.startswith(b"+OK"), status
			assert c.cmd("QUIT").startswith(b"+OK")
		node = node_of(two_nodes, user, src)
		listings.setdefault(node, []).append(lines)
		served[src] = node
		wait_until(lambda: re.search(r"Login: user=<%s>.* rip=%s, rport=%d\b" % (
			re.escape(user), re.escape(src), cport), dovecot_log(dc)), 5,
			lambda: "Dovecot's login with rip=%s rport=%d:\n%s" % (src, cport,
			dovecot_log(dc)[-2000:]))
	assert sorted(listings) == [0, 1], ("both nodes served sessions", served)
	assert [len(v) for v in listings.values()] == [2, 2], served
	# Same mailbox, same UIDLs, whichever node answers (derived UIDLs need no shared state).
	first = listings[0][0]
	assert len(first) == len(msgs), first
	for node_lists in listings.values():
		for lines in node_lists:
			assert lines == first, (listings, served)
	# POP3S through the balancer: TLS end to end, the client's address on the node too.
	ctx = ssl.create_default_context(cafile=dc.certs["ca.pem"])
	raw = socket.create_connection(("127.0.0.1", haproxy2.front_tls), timeout=30,
		source_address=("127.0.0.29", 0))
	with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
		f = s.makefile("rb")
		assert f.readline().startswith(b"+OK")
		for line in (b"USER " + user.encode(), b"PASS " + password.encode(), b"QUIT"):
			s.sendall(line + b"\r\n")
			assert f.readline().startswith(b"+OK"), line
	n = node_of(two_nodes, user, "127.0.0.29")
	line = re.search(r"session=\w+ user=%s client=127\.0\.0\.29 .*" % re.escape(user),
		two_nodes[n].log()).group(0)
	assert " tls=yes " in line, line


def test_a_node_refuses_a_header_from_a_peer_it_does_not_trust(two_nodes, haproxy2, dc):
	"""HAProxy (127.0.0.1) is trusted; a client that reaches a node directly from
	127.0.0.3 and sends a header naming anyone is closed without a word, on both ports."""
	node = two_nodes[1]
	user, password = "bob", dc.users["bob"]
	for port in (node.port, node.tls_port):
		assert closed_without_a_word(port, v2("198.51.100.77", 4777), source="127.0.0.3") == b""
	wait_until(lambda: node.log().count("proxy=127.0.0.3: connection closed: not in [server] "
		"trusted_proxies") == 2, 5, lambda: "two refusals in the log:\n" + node.log_tail(20))
	assert "198.51.100.77" not in node.log()
	# The balancer's sessions on that node go on.
	for k in range(2):
		with Pop3Raw("127.0.0.1", haproxy2.front, source="127.0.0.31") as c:
			c.login(user, password)
			assert c.cmd("QUIT").startswith(b"+OK")
	node_of([node], user, "127.0.0.31")


def test_a_flood_of_refused_connections_is_logged_with_a_count(dc, tmp_path):
	"""Anyone who reaches the port can make popgate log: refused connections log a burst,
	then one line a second, and the next line logged says how many were left out."""
	node = start_node(tmp_path, dc, "127.0.0.1/32")
	try:
		n = 200
		for _ in range(n):
			with socket.create_connection(("127.0.0.1", node.port), timeout=10,
					source_address=("127.0.0.3", 0)) as s:
				s.sendall(v2("198.51.100.1", 1))
		pat = re.compile(r"proxy=127\.0\.0\.3: connection closed: not in \[server\] "
			r"trusted_proxies(?: \(and (\d+) more in the last (\d+) s\))?$", re.M)
		time.sleep(0.5)
		burst = pat.findall(node.log())
		assert 20 <= len(burst) < 40, (len(burst), node.log_tail(10))	# 20 and 1 a second
		time.sleep(1.1)
		assert closed_without_a_word(node.port, b"", source="127.0.0.3") == b""
		lines = wait_until(lambda: (lambda m: m if len(m) > len(burst) else None)(
			pat.findall(node.log())), 5, "a line after the flood")
		told = sum(int(c) for c, _ in lines if c)
		assert lines[-1][0], ("the last line counts the left-out ones", lines[-1])
		assert 1 <= int(lines[-1][1]) <= 5, lines[-1]
		assert len(lines) + told == n + 1, (len(lines), told)	# none lost, none twice
	finally:
		node.stop()
