"""TLS on both sides, POP3 SASL, and credentials that cannot be abused.

Client side: POP3S (implicit TLS, RFC 8314) with curl, mpop and fetchmail; STLS (RFC 2595) with
poplib, and bytes pipelined after STLS are thrown away. Plaintext logins are refused on a plain
connection unless allowed. Upstream: implicit TLS and STARTTLS against the real Dovecot with the
test CA; a wrong CA, a wrong host name, and a server without STARTTLS are refused, and the log
says why. Credentials: CR/LF/NUL smuggled in a user name or password never reach the upstream;
failed logins are delayed more and more, and too many close the connection; RFC 2971 ID tells
Dovecot the real client's address and port.

The certificates come from dovecot.make_certs(): ca.pem signs server.pem (127.0.0.1, localhost)
and wronghost.pem (wrong.example); wrong-ca.pem signs nothing we serve."""

import os
import poplib
import re
import socket
import ssl
import sys
import threading
import time

import pytest

import dovecot as dovecot_mod
from helpers import assert_same_bytes, b64, capa, client_env, lf, plain_ir, run, wait_until
from leaks import find_in_memory, secret_forms
from messages import pop3_bytes, message_ids
from pop3client import Pop3Raw
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only


def client_ctx(cafile):
	ctx = ssl.create_default_context(cafile=cafile)
	ctx.check_hostname = True
	return ctx


def tls_popgate(tmp, dovecot, imap_port=None, **kw):
	"""popgate with a plain listener (STLS) and a POP3S listener, both serving the test CA's
	server certificate; plaintext auth left at its default (no). Upstream: imap_port, by
	default Dovecot's plain IMAP port."""
	tls_port = dovecot_mod.free_ports(1)[0]
	cfg = {"server.listen_tls": "127.0.0.1:%d" % tls_port,
		"tls.cert_file": dovecot.certs["server.pem"], "tls.key_file": dovecot.certs["server.key"],
		"pop3.allow_plaintext_auth": None}
	cfg.update(kw)
	pg = start_popgate(tmp, imap_port or dovecot.imap_port, **cfg)
	pg.tls_port = tls_port
	return pg


@pytest.fixture
def pg(dovecot, tmp_path):
	p = tls_popgate(tmp_path / "pg", dovecot)
	yield p
	p.stop()


RUN_TIMEOUT = 180	# seconds a real client may take here


# --- POP3S and STLS with real clients ----------------------------------------------------------

def test_pop3s_curl_with_cacert_retrieves_byte_exact(pg, dovecot):
	msgs = dovecot.seeded["bob"]
	url = "pop3s://bob:%s@127.0.0.1:%d/" % (dovecot.users["bob"].replace(" ", "%20"), pg.tls_port)
	r = run(["curl", "-sS", "--max-time", "60", "--cacert", dovecot.certs["ca.pem"], url],
		RUN_TIMEOUT)
	assert r.returncode == 0
	assert [int(l.split()[1]) for l in r.stdout.splitlines()] == [len(m) for m in msgs]
	for n in (1, 2, len(msgs)):
		r = run(["curl", "-sS", "--max-time", "60", "--cacert", dovecot.certs["ca.pem"],
			url + str(n)], RUN_TIMEOUT)
		assert r.returncode == 0
		assert_same_bytes(r.stdout, pop3_bytes(msgs[n - 1]), "message %d" % n)


def test_pop3s_curl_refuses_a_gateway_it_cannot_verify(pg, dovecot):
	r = run(["curl", "-sS", "--max-time", "60", "--cacert", dovecot.certs["wrong-ca.pem"],
		"pop3s://bob:x@127.0.0.1:%d/" % pg.tls_port], RUN_TIMEOUT)
	assert r.returncode == 60, "curl: expected 60 (peer certificate cannot be authenticated)"


def test_pop3s_mpop_and_fetchmail_in_tls_mode(pg, dovecot, tmp_path):
	if not (os.path.exists("/usr/bin/mpop") and os.path.exists("/usr/bin/fetchmail")):
		pytest.fail("mpop and fetchmail are installed by tests/deps.sh")
	u = "bob"
	msgs = dovecot.seeded[u]
	# mpop: implicit TLS, the test CA, keep everything.
	home = tmp_path / "mpop"
	md = home / "maildir"
	for sub in ("new", "cur", "tmp"):
		(md / sub).mkdir(parents=True)
	r = run(["mpop", "--host=127.0.0.1", "--port=%d" % pg.tls_port, "--tls=on",
		"--tls-starttls=off", "--tls-trust-file=" + dovecot.certs["ca.pem"], "--auth=user",
		"--user=" + u, "--passwordeval=printf '%%s' '%s'" % dovecot.users[u], "--keep=on",
		"--delivery=maildir," + str(md), "--uidls-file=" + str(home / "uidls"),
		"--received-header=off", "--timeout=60", "-Q"], RUN_TIMEOUT, env=client_env(home))
	assert r.returncode == 0
	got = sorted(open(md / "new" / f, "rb").read() for f in os.listdir(md / "new"))
	want = sorted(lf(pop3_bytes(m)) for m in msgs)
	assert len(got) == len(want), "mpop delivered %d messages of %d" % (len(got), len(want))
	for i, (data, m) in enumerate(zip(got, want)):
		assert_same_bytes(data, m, "mpop's message %d (sorted)" % i)
	# fetchmail: implicit TLS ("ssl"), certificate checked against the test CA.
	home = tmp_path / "fetchmail"
	out = home / "out"
	out.mkdir(parents=True)
	(home / "deliver.py").write_text(
		"import os, sys\nd = sys.argv[1]\nn = len(os.listdir(d)) + 1\n"
		"open(os.path.join(d, '%03d' % n), 'wb').write(sys.stdin.buffer.read())\n")
	rc = home / "fetchmailrc"
	rc.write_text(
		"set no bouncemail\nset no syslog\n"
		"poll 127.0.0.1 with proto POP3 port %d uidl no envelope\n"
		"  user \"%s\" there with password \"%s\" is \"root\" here\n"
		"  keep ssl sslcertck sslcertfile \"%s\" sslcommonname localhost no rewrite\n"
		"  mda \"%s %s %s\"\n" % (pg.tls_port, u, dovecot.users[u], dovecot.certs["ca.pem"],
			sys.executable, home / "deliver.py", out))
	rc.chmod(0o600)
	r = run(["fetchmail", "-f", str(rc), "--nodetach", "-v", "--pidfile", str(home / "pid")],
		RUN_TIMEOUT, env=client_env(home))
	assert r.returncode == 0	# the port speaks only TLS: success means fetchmail used it
	got = [open(out / f, "rb").read() for f in sorted(os.listdir(out))]
	assert len(got) == len(msgs)
	for data, m in zip(got, msgs):
		body = data.split(b"\n", 1)[1]
		while body[:1] in (b" ", b"\t"):	# fetchmail's Received: continuation lines
			body = body.split(b"\n", 1)[1]
		assert_same_bytes(body, lf(pop3_bytes(m)), "fetchmail's message")


def test_stls_with_poplib_then_login_and_retr(pg, dovecot):
	p = poplib.POP3("127.0.0.1", pg.port, timeout=30)
	caps = p.capa()
	assert "STLS" in caps
	assert "USER" not in caps, "USER offered where plaintext auth is refused"
	assert "PLAIN" not in caps.get("SASL", []), caps
	p.stls(client_ctx(dovecot.certs["ca.pem"]))
	caps = p.capa()
	assert "STLS" not in caps, "STLS offered again inside TLS"
	assert "USER" in caps and "PLAIN" in caps.get("SASL", []), caps
	p.user("bob")
	p.pass_(dovecot.users["bob"])
	_, lines, _ = p.retr(1)
	assert_same_bytes(b"\r\n".join(lines) + b"\r\n", pop3_bytes(dovecot.seeded["bob"][0]),
		"RETR 1")
	p.quit()


def stls(pg, dovecot, after=b""):
	"""A raw connection to pg's plain listener, upgraded with STLS (`after` sent in clear in
	the same packet as STLS): (TLS socket, its reader)."""
	s = socket.create_connection(("127.0.0.1", pg.port), timeout=30)
	f = s.makefile("rb")
	assert f.readline().startswith(b"+OK")
	s.sendall(b"STLS\r\n" + after)
	assert f.readline().startswith(b"+OK")
	t = client_ctx(dovecot.certs["ca.pem"]).wrap_socket(s, server_hostname="127.0.0.1")
	return t, t.makefile("rb")


def test_bytes_pipelined_after_stls_are_discarded(pg, dovecot):
	# A man in the middle appends a command to the client's STLS: it must not run inside TLS.
	t, tf = stls(pg, dovecot, after=b"USER mallory\r\n")
	t.sendall(b"PASS %s\r\n" % dovecot.users["bob"].encode())
	r = tf.readline()
	assert r.startswith(b"-ERR"), "PASS after an injected USER: %r" % r
	t.sendall(b"USER bob\r\nPASS %s\r\nSTAT\r\n" % dovecot.users["bob"].encode())
	assert tf.readline().startswith(b"+OK")
	assert tf.readline().startswith(b"+OK")
	assert tf.readline().startswith(b"+OK %d " % len(dovecot.seeded["bob"]))
	t.sendall(b"STLS\r\n")
	assert tf.readline().startswith(b"-ERR"), "STLS inside TLS"
	t.close()


def test_stls_handshake_finished_in_one_go_then_commands_run(pg, dovecot):
	# A fast client's Finished can reach the gateway in the same call that sends the server's
	# flight (the handshake then ends inside a write, not a read); the session must still
	# leave the handshake and run the client's commands. A slow (sanitizer) build lost this
	# race about one time in three; repeating makes a regression show.
	for _ in range(15):
		t, tf = stls(pg, dovecot)
		t.sendall(b"USER bob\r\n")
		assert tf.readline().startswith(b"+OK")
		t.close()


def test_pipelined_commands_beyond_one_read_over_tls(pg, dovecot):
	# The session reads at most 16 KB of commands ahead. While a failed login's delay keeps it
	# busy, one pipelined command waits in that buffer; a 16 KB TLS record of USER commands then
	# arrives and only part of it fits: the rest stays decrypted inside OpenSSL, and the socket
	# will not signal it again. Once the delay ends every command must still be answered.
	line = b"USER " + b"u" * 240 + b"\r\n"
	n = 16384 // len(line)
	with client_ctx(dovecot.certs["ca.pem"]).wrap_socket(
			socket.create_connection(("127.0.0.1", pg.tls_port), timeout=20),
			server_hostname="127.0.0.1") as t:
		tf = t.makefile("rb")
		assert tf.readline().startswith(b"+OK")
		t.sendall(b"USER bob\r\nPASS wrong\r\n" + line)
		assert tf.readline().startswith(b"+OK")
		# PASS is now waiting out its delay (2 s); `line` waits in the buffer.
		wait_until(lambda: "login of user=bob failed" in pg.log(), 5,
			lambda: "PASS not refused yet:\n" + pg.log_tail())
		t.sendall(line * n)	# one TLS record
		assert tf.readline().startswith(b"-ERR [AUTH]")
		for i in range(n + 1):
			try:
				r = tf.readline()
			except socket.timeout:
				pytest.fail("%d of %d commands answered, then nothing" % (i, n + 1))
			assert r.startswith(b"+OK"), (i, r)


def test_chain_file_and_min_protocol(dovecot, tmp_path):
	# cert_file may hold the chain (leaf first); min_protocol = TLSv1.3 refuses TLS 1.2 clients.
	chain = tmp_path / "fullchain.pem"
	chain.write_bytes(open(dovecot.certs["server.pem"], "rb").read() +
		open(dovecot.certs["ca.pem"], "rb").read())
	pg = tls_popgate(tmp_path / "pg", dovecot, **{"tls.cert_file": str(chain),
		"tls.min_protocol": "TLSv1.3"})
	try:
		ctx = client_ctx(dovecot.certs["ca.pem"])
		with ctx.wrap_socket(socket.create_connection(("127.0.0.1", pg.tls_port), timeout=10),
				server_hostname="127.0.0.1") as t:
			assert t.version() == "TLSv1.3"
			assert len(t.getpeercert(binary_form=True)) > 0
			assert t.recv(100).startswith(b"+OK")
		old = client_ctx(dovecot.certs["ca.pem"])
		old.maximum_version = ssl.TLSVersion.TLSv1_2
		with pytest.raises(ssl.SSLError):
			with old.wrap_socket(socket.create_connection(("127.0.0.1", pg.tls_port), timeout=10),
					server_hostname="127.0.0.1") as t:
				t.recv(100)
	finally:
		pg.stop()


def test_bad_tls_settings_are_refused_at_start(dovecot, tmp_path):
	from popgate import popgate_check_config, popgate_ini
	base = {"server.listen_tls": "127.0.0.1:1995", "tls.cert_file": dovecot.certs["server.pem"],
		"tls.key_file": dovecot.certs["server.key"]}
	for key, value, says in (("tls.min_protocol", "SSLv3", "min_protocol"),
			("tls.key_file", dovecot.certs["wronghost.key"], "key"),
			("tls.cert_file", str(tmp_path / "missing.pem"), "cert_file"),
			("tls.ciphers", "NO-SUCH-CIPHER", "ciphers")):
		ini = popgate_ini(tmp_path, dovecot.imap_port, 1110, **dict(base, **{key: value}))
		code, out = popgate_check_config(ini, str(tmp_path))
		assert code == 1, (key, value, out)
		assert says in out, (key, out)
	ini = popgate_ini(tmp_path, dovecot.imap_port, 1110, **{"server.listen_tls": "127.0.0.1:1995"})
	code, out = popgate_check_config(ini, str(tmp_path))
	assert code == 1 and "cert_file" in out, out


def test_migration_settings_are_checked_at_start(dovecot, tmp_path):
	"""[migration]: popgate -t resolves the old server, builds its TLS context (ca_file read,
	verify = no said loudly) and names the key of a mistake."""
	from popgate import popgate_check_config, popgate_ini
	good = {"migration.pop3": "localhost:995", "migration.security": "tls",
		"migration.ca_file": dovecot.certs["ca.pem"], "migration.timeout": 30}
	for extra in ({}, {"migration.pop3": "127.0.0.1"}, {"migration.pop3": "[::1]:110",
			"migration.security": "stls"}, {"migration.security": "none"}):
		ini = popgate_ini(tmp_path, dovecot.imap_port, 1110, **dict(good, **extra))
		code, out = popgate_check_config(ini, str(tmp_path))
		assert code == 0, (extra, out)
	ini = popgate_ini(tmp_path, dovecot.imap_port, 1110, **dict(good, **{"migration.verify": "no"}))
	code, out = popgate_check_config(ini, str(tmp_path))
	assert code == 0 and re.search(r"warn: \[migration\] verify = no: .*NOT checked", out), out
	for key, value, says in (("migration.security", "starttls-please", "[migration] security"),
			("migration.ca_file", str(tmp_path / "missing.pem"), "[migration] ca_file"),
			("migration.pop3", "no-such-host.invalid:995", "[migration] pop3"),
			("migration.pop3", "127.0.0.1:99999", "[migration] pop3"),
			("migration.timeout", "0", "[migration] timeout")):
		ini = popgate_ini(tmp_path, dovecot.imap_port, 1110, **dict(good, **{key: value}))
		code, out = popgate_check_config(ini, str(tmp_path))
		assert code == 1, (key, value, out)
		assert says in out, (key, out)


def test_tls_handshake_timeout_closes_a_silent_client(dovecot, tmp_path):
	pg = tls_popgate(tmp_path / "pg", dovecot, **{"limits.tls_handshake_timeout": 1})
	try:
		s = socket.create_connection(("127.0.0.1", pg.tls_port), timeout=10)
		t0 = time.monotonic()
		assert s.recv(100) == b"", "the server should close a client that never says ClientHello"
		assert time.monotonic() - t0 < 5
		s.close()
		# The gateway still serves.
		with Pop3Raw("127.0.0.1", pg.port) as c:
			assert c.greeting.startswith(b"+OK")
	finally:
		pg.stop()


def test_plaintext_auth_refused_by_default_on_a_plain_connection(pg, dovecot):
	with Pop3Raw("127.0.0.1", pg.port) as c:
		r = c.cmd("USER bob")
		assert r.startswith(b"-ERR [AUTH] Plaintext authentication disallowed"), r
		r = c.cmd("AUTH PLAIN " + plain_ir("bob", dovecot.users["bob"]))
		assert r.startswith(b"-ERR [AUTH] Plaintext authentication disallowed"), r
		status, lines = c.cmd_multi("AUTH")
		assert status.startswith(b"+OK") and b"PLAIN\r\n" not in lines
		# The session goes on: STLS is still possible.
		assert c.cmd("STLS").startswith(b"+OK")


def test_no_stls_where_no_tls_is_configured(pop3):
	with Pop3Raw("127.0.0.1", pop3.port) as c:
		caps = capa(c)
		assert "STLS" not in caps and "USER" in caps, caps
		assert c.cmd("STLS").startswith(b"-ERR")
		c.login("bob", pop3.users["bob"])	# the session goes on


def test_plaintext_loopback_exemption(dovecot, tmp_path):
	pg = tls_popgate(tmp_path / "pg", dovecot, **{"pop3.allow_plaintext_loopback": "yes"})
	try:
		with Pop3Raw("127.0.0.1", pg.port) as c:
			assert "USER" in capa(c)
			c.login("bob", dovecot.users["bob"])
			assert c.cmd("STAT").startswith(b"+OK")
	finally:
		pg.stop()


# --- upstream TLS -------------------------------------------------------------------------------

def retr1_via(pg, user, password):
	with Pop3Raw("127.0.0.1", pg.port) as c:
		r = c.cmd("USER " + user)
		if r.startswith(b"+OK"):
			r = c.cmd("PASS " + password)
		if not r.startswith(b"+OK"):
			return r, None
		status, lines = c.cmd_multi("RETR 1")
		return status, lines


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_upstream_tls_with_the_right_ca(dovecot, tmp_path, security):
	port = dovecot.imaps_port if security == "tls" else dovecot.imap_port
	log_from = os.path.getsize(dovecot.log_path)
	pg = start_popgate(tmp_path / "pg", port, **{"upstream.security": security,
		"upstream.ca_file": dovecot.certs["ca.pem"]})
	try:
		r, lines = retr1_via(pg, "bob", dovecot.users["bob"])
		assert r.startswith(b"+OK"), r
		assert_same_bytes(b"".join(l[1:] if l.startswith(b".") else l for l in lines),
			pop3_bytes(dovecot.seeded["bob"][0]), "RETR 1")
	finally:
		pg.stop()
	# Dovecot says the login came over TLS.
	with open(dovecot.log_path, errors="replace") as f:
		f.seek(log_from)
		log = f.read()
	assert re.search(r"imap-login: Info: Login: user=<bob>.*, TLS", log), log[-2000:]


def test_tls_on_both_sides_every_message_byte_exact_through_a_slow_reader(dovecot, tmp_path):
	# POP3S in front, IMAPS behind, the whole of alice's mailbox (the 20 MB message too),
	# with the client pausing so that backpressure stops and restarts the upstream many
	# times: what OpenSSL has decrypted but the socket no longer signals must not be lost.
	pg = tls_popgate(tmp_path / "pg", dovecot, imap_port=dovecot.imaps_port, **{
		"upstream.security": "tls", "upstream.ca_file": dovecot.certs["ca.pem"]})
	try:
		with client_ctx(dovecot.certs["ca.pem"]).wrap_socket(
				socket.create_connection(("127.0.0.1", pg.tls_port), timeout=60),
				server_hostname="127.0.0.1") as t:
			tf = t.makefile("rb")
			assert tf.readline().startswith(b"+OK")
			t.sendall(b"USER alice\r\nPASS %s\r\n" % dovecot.users["alice"].encode())
			assert tf.readline().startswith(b"+OK")
			assert tf.readline().startswith(b"+OK"), "login"
			msgs = dovecot.seeded["alice"]
			for i, m in enumerate(msgs, 1):
				t.sendall(b"RETR %d\r\n" % i)
				assert tf.readline().startswith(b"+OK")
				got, lines = 0, []
				for line in iter(tf.readline, b".\r\n"):
					assert line, "connection closed inside message %d" % i
					lines.append(line[1:] if line.startswith(b".") else line)
					got += len(line)
					if got > 256 * 1024:
						time.sleep(0.05)	# a slow reader, every 256 KB
						got = 0
				assert_same_bytes(b"".join(lines), pop3_bytes(m), "message %d" % i)
			t.sendall(b"QUIT\r\n")
			assert tf.readline().startswith(b"+OK")
	finally:
		pg.stop()


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_upstream_tls_with_a_wrong_ca_is_sys_temp_and_logged(dovecot, tmp_path, security):
	port = dovecot.imaps_port if security == "tls" else dovecot.imap_port
	pg = start_popgate(tmp_path / "pg", port, **{"upstream.security": security,
		"upstream.ca_file": dovecot.certs["wrong-ca.pem"]})
	try:
		r, _ = retr1_via(pg, "bob", dovecot.users["bob"])
		assert r.startswith(b"-ERR [SYS/TEMP]"), r
		assert re.search(r"certificate verify failed", pg.log()), pg.log_tail()
	finally:
		pg.stop()


def test_upstream_verify_no_logs_loudly_and_connects(dovecot, tmp_path):
	pg = start_popgate(tmp_path / "pg", dovecot.imaps_port, **{"upstream.security": "tls",
		"upstream.ca_file": dovecot.certs["wrong-ca.pem"], "upstream.verify": "no"})
	try:
		assert re.search(r"warn: \[upstream\] verify = no: .*NOT checked", pg.log()), pg.log_tail()
		r, _ = retr1_via(pg, "bob", dovecot.users["bob"])
		assert r.startswith(b"+OK"), r
	finally:
		pg.stop()


class TlsServer:
	"""A scripted TLS listener (a fake, not IMAP: it only completes handshakes) serving a given
	certificate on 127.0.0.1 and, where the machine has it, ::1; records the SNI it is sent."""

	def __init__(self, cert, key):
		self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
		self.ctx.load_cert_chain(cert, key)
		self.sni = []
		self.ctx.sni_callback = lambda sock, name, ctx: self.sni.append(name)
		self.socks = []
		port = dovecot_mod.free_ports(1)[0]
		for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
			try:
				s = socket.socket(fam)
				s.bind((addr, port))
				s.listen(4)
			except OSError:
				continue
			self.socks.append(s)
			threading.Thread(target=self._serve, args=(s,), daemon=True).start()
		self.port = port

	def _serve(self, lsock):
		while True:
			try:
				c, _ = lsock.accept()
			except OSError:
				return
			try:
				with self.ctx.wrap_socket(c, server_side=True) as t:
					t.sendall(b"* OK fake\r\n")
					t.recv(100)
			except (OSError, ssl.SSLError):
				pass

	def close(self):
		for s in self.socks:
			s.close()


def test_upstream_host_name_checked_and_sni_sent(dovecot, tmp_path):
	# wronghost.pem is signed by the right CA but names wrong.example, not localhost.
	srv = TlsServer(dovecot.certs["wronghost.pem"], dovecot.certs["wronghost.key"])
	pg = start_popgate(tmp_path / "pg", srv.port, **{"upstream.host": "localhost",
		"upstream.security": "tls", "upstream.ca_file": dovecot.certs["ca.pem"]})
	try:
		r, _ = retr1_via(pg, "bob", dovecot.users["bob"])
		assert r.startswith(b"-ERR [SYS/TEMP]"), r
		assert re.search(r"certificate verify failed: [Hh]ostname mismatch", pg.log()), pg.log_tail()
		# Each worker also probes the upstream at start (its SASL mechanisms): same SNI.
		assert srv.sni and set(srv.sni) == {"localhost"}, srv.sni
	finally:
		pg.stop()
		srv.close()


def test_starttls_required_but_not_offered_is_refused_before_login(make_dovecot, tmp_path):
	plain = make_dovecot(ssl=False)
	pg = start_popgate(tmp_path / "pg", plain.imap_port, **{"upstream.security": "starttls"})
	try:
		r, _ = retr1_via(pg, "alice", plain.users["alice"])
		assert r.startswith(b"-ERR [SYS/TEMP]"), r
		assert "upstream does not offer STARTTLS" in pg.log(), pg.log_tail()
	finally:
		pg.stop()
	# No silent downgrade: the password never went to the server in the clear.
	log = open(plain.log_path, errors="replace").read()
	assert "Login: user=<alice>" not in log, log[-2000:]


# --- credentials that cannot be abused ----------------------------------------------------------

INJECTIONS = [
	("alice\r\nA1 DELETE INBOX", "alice-secret-1"),
	("alice", "alice-secret-1\r\nA1 DELETE INBOX"),
	("alice\nA1 DELETE INBOX", "x"),
	("alice", "x\rA1 DELETE INBOX"),
	("alice\0A1", "x"),
	("alice", "x\0y"),
	("alice", '"\r\nA1 DELETE INBOX\r\n'),
	("alice {5}", "x\r\n12345"),
]


def test_crlf_in_credentials_is_refused_and_the_mailbox_untouched(pop3, dovecot):
	u = pop3.fresh_user()
	before = pop3.upstream(u.user)
	assert before
	for user, password in INJECTIONS:
		user = user.replace("alice", u.user)
		password = password.replace("alice-secret-1", u.password)
		with Pop3Raw("127.0.0.1", pop3.port) as c:
			r = c.cmd("AUTH PLAIN " + plain_ir(user, password))
			assert r.startswith(b"-ERR"), (user, password, r)
			# The session goes on after the refusal.
			c.login(u.user, u.password)
			assert c.cmd("STAT").startswith(b"+OK %d " % len(before))
			c.quit()
		# On the POP3 wire the CR/LF ends the command: what follows is a POP3 command.
		with Pop3Raw("127.0.0.1", pop3.port) as c:
			c.send(b"USER " + user.encode() + b"\r\n")
			first = c.readline()
			if b"\r" in user.encode() or b"\n" in user.encode():
				c.readline()	# the answer to the tail, "A1 DELETE INBOX" as a POP3 command
			elif b"\0" in user.encode():
				assert first.startswith(b"-ERR"), first
			c.cmd("QUIT")
	m = pop3.imap(u.user)
	typ, boxes = m.list()
	m.logout()
	assert typ == "OK" and any(b"INBOX" in b for b in boxes), boxes
	assert pop3.upstream(u.user) == before, "the mailbox changed"
	dlog = open(dovecot.log_path, errors="replace").read()
	assert "DELETE" not in dlog


def test_sasl_plain_raw(pop3, dovecot):
	pw = dovecot.users["carol"]
	with Pop3Raw("127.0.0.1", pop3.port) as c:
		status, lines = c.cmd_multi("AUTH")
		assert status.startswith(b"+OK") and b"PLAIN\r\n" in lines
		assert c.cmd("AUTH GSSAPI").startswith(b"-ERR")
		assert c.cmd("AUTH PLAIN !!notbase64!!").startswith(b"-ERR")
		assert c.cmd("AUTH PLAIN").startswith(b"+ ")
		assert c.cmd("*").startswith(b"-ERR"), "* cancels"
		assert c.cmd("AUTH PLAIN").startswith(b"+ ")
		assert c.cmd("%%%").startswith(b"-ERR"), "bad base64 in the continuation"
		assert c.cmd("AUTH PLAIN " + b64(b"carol\0carol")).startswith(b"-ERR"), "one NUL only"
		assert c.cmd("AUTH PLAIN " + plain_ir("carol", "wrong")).startswith(b"-ERR [AUTH]")
		assert c.cmd("AUTH PLAIN").startswith(b"+ ")
		assert c.cmd(plain_ir("carol", pw)).startswith(b"+OK")
		assert c.cmd("STAT").startswith(b"+OK %d " % len(dovecot.seeded["carol"]))
		assert c.cmd("AUTH PLAIN x").startswith(b"-ERR"), "AUTH after login"
		c.quit()


def test_sasl_plain_with_authzid_equal_to_authcid(pop3, dovecot):
	with Pop3Raw("127.0.0.1", pop3.port) as c:
		blob = b64(b"bob\0bob\0" + dovecot.users["bob"].encode())
		assert c.cmd("AUTH PLAIN " + blob).startswith(b"+OK")
	with Pop3Raw("127.0.0.1", pop3.port) as c:
		blob = b64(b"alice\0bob\0" + dovecot.users["bob"].encode())
		assert c.cmd("AUTH PLAIN " + blob).startswith(b"-ERR [AUTH]"), "acting as someone else"


def test_curl_auth_plain(pop3, dovecot):
	from urllib.parse import quote
	pw = dovecot.users["carol"]
	r = run(["curl", "-sS", "--max-time", "60", "--login-options", "AUTH=PLAIN",
		"pop3://%s:%s@127.0.0.1:%d/1" % ("carol", quote(pw, safe=""), pop3.port)], RUN_TIMEOUT)
	assert r.returncode == 0
	assert_same_bytes(r.stdout, pop3_bytes(dovecot.seeded["carol"][0]), "curl's RETR 1")
	r = run(["curl", "-sS", "--max-time", "60", "--login-options", "AUTH=PLAIN",
		"pop3://carol:wrong@127.0.0.1:%d/1" % pop3.port], RUN_TIMEOUT)
	assert r.returncode == 67


@pytest.mark.parametrize("login,upstream", [("USER/PASS", "none"), ("AUTH PLAIN", "tls")])
def test_no_password_left_in_the_gateways_memory(dovecot, tmp_path, login, upstream):
	# A core dump, a swapped page or a read of the process must not give away the passwords
	# of the sessions it serves: the POP3 input, the IMAP output and OpenSSL's record buffers
	# are wiped once a login line is handled or sent, while the session goes on.
	port = dovecot.imaps_port if upstream == "tls" else dovecot.imap_port
	pg = tls_popgate(tmp_path / "pg", dovecot, imap_port=port, **{"upstream.security": upstream,
		"upstream.ca_file": dovecot.certs["ca.pem"] if upstream == "tls" else None})
	try:
		forms = secret_forms("bob", dovecot.users["bob"])
		with client_ctx(dovecot.certs["ca.pem"]).wrap_socket(
				socket.create_connection(("127.0.0.1", pg.tls_port), timeout=30),
				server_hostname="127.0.0.1") as t:
			tf = t.makefile("rb")
			assert tf.readline().startswith(b"+OK")
			if login == "USER/PASS":
				t.sendall(b"USER bob\r\nPASS %s\r\n" % dovecot.users["bob"].encode())
				assert tf.readline().startswith(b"+OK")
			else:
				t.sendall(b"AUTH PLAIN %s\r\n" % plain_ir("bob", dovecot.users["bob"]).encode())
			assert tf.readline().startswith(b"+OK"), "login"
			t.sendall(b"STAT\r\n")
			assert tf.readline().startswith(b"+OK %d " % len(dovecot.seeded["bob"]))
			assert find_in_memory(pg.proc.pid, forms) == [], "while the session is open"
			t.sendall(b"QUIT\r\n")
			assert tf.readline().startswith(b"+OK")
		assert find_in_memory(pg.proc.pid, forms) == [], "after the session"
	finally:
		pg.stop()


def test_failed_logins_are_delayed_more_each_time_and_capped(dovecot, tmp_path):
	pg = start_popgate(tmp_path / "pg", dovecot.imap_port, **{
		"limits.auth_fail_delay_ms": 400, "limits.auth_fail_delay_max_ms": 1000,
		"limits.max_auth_failures": 10})
	try:
		took = []
		with Pop3Raw("127.0.0.1", pg.port) as c:
			for i in range(4):
				c.cmd("USER bob")
				t0 = time.monotonic()
				r = c.cmd("PASS wrong-%d" % i)
				took.append(time.monotonic() - t0)
				assert r.startswith(b"-ERR [AUTH]"), r
		# Dovecot itself takes 0.1 to 0.5 s to refuse a password, so the delays popgate added are
		# read from its log, and each wait must be at least that long: 400, 800, then the cap.
		delays = [int(d) for d in re.findall(r"login of user=bob failed: .*\(delay (\d+) ms\)", pg.log())]
		assert delays == [400, 800, 1000, 1000], delays
		assert all(t >= d / 1000 for t, d in zip(took, delays)), (took, delays)
		# The right password is answered at once.
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.cmd("USER bob")
			t0 = time.monotonic()
			assert c.cmd("PASS " + dovecot.users["bob"]).startswith(b"+OK")
			assert time.monotonic() - t0 < 0.4
	finally:
		pg.stop()


def test_too_many_failed_logins_close_the_connection(dovecot, tmp_path):
	pg = start_popgate(tmp_path / "pg", dovecot.imap_port, **{
		"limits.auth_fail_delay_ms": 0, "limits.max_auth_failures": 3})
	try:
		with Pop3Raw("127.0.0.1", pg.port) as c:
			for i in range(3):
				c.cmd("USER bob")
				assert c.cmd("PASS wrong-%d" % i).startswith(b"-ERR [AUTH]")
			assert c.file.readline() == b"", "the connection stays open after 3 failures"
	finally:
		pg.stop()


def test_send_client_id_shows_the_real_client_to_dovecot(make_dovecot, tmp_path):
	d = make_dovecot(ssl=False, extra="login_trusted_networks = 127.0.0.0/8\n"
		"login_log_format_elements = user=<%u> method=%m rip=%r rport=%{rport} lip=%l\n")
	pg = start_popgate(tmp_path / "pg", d.imap_port, **{"upstream.send_client_id": "yes"})
	try:
		with Pop3Raw("127.0.0.1", pg.port) as c:
			client_port = c.sock.getsockname()[1]
			c.login("bob", d.users["bob"])
			c.quit()
	finally:
		pg.stop()
	def dovecot_log():
		with open(d.log_path, errors="replace") as f:
			return f.read()
	wait_until(lambda: "Login: user=<bob>" in dovecot_log(), 5)
	log = dovecot_log()
	assert re.search(r"Login: user=<bob>.* rport=%d\b" % client_port, log), log[-2000:]
