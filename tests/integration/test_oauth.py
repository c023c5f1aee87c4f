"""SASL XOAUTH2 and OAUTHBEARER through popgate (RFC 5034 on the POP3 side, RFC 7628 and Google's
XOAUTH2 on the IMAP side), against the real Dovecot with its oauth2 passdb.

The tokens are checked by a small introspection server (RFC 7662) this module runs on 127.0.0.1:
Dovecot POSTs "token=..." and gets {"active": true, "username": ...} for a token it knows,
{"active": false} for any other. The server also counts how often each token was asked about,
which shows what reached the upstream. popgate learns at start (its capability probe) whether the
upstream offers the mechanisms, lists them in CAPA only then, and passes the client's response
through unchanged.
"""

import base64
import http.server
import json
import os
import threading
import urllib.parse

import pytest

from helpers import assert_same_bytes, capa, run, wait_until
from leaks import find_in_memory
from pop3client import Pop3Raw, unstuff
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only

GOOD = "ya29.good-token-for-alice"		# alice's
BOB = "ya29.good-token-for-bob"
LONG = "eyJ" + "x" * 2600 + ".sig"		# a Microsoft-sized token: its AUTH line is ~3.5 KB


class TokenServer:
	"""RFC 7662 introspection on 127.0.0.1: tokens {token: user}; asked {token: count}."""

	def __init__(self, tokens):
		self.tokens = dict(tokens)
		self.asked = {}
		self.lock = threading.Lock()
		server = self

		class Handler(http.server.BaseHTTPRequestHandler):
			def do_POST(self):
				n = int(self.headers.get("Content-Length") or 0)
				form = urllib.parse.parse_qs(self.rfile.read(n).decode("ascii", "replace"))
				token = form.get("token", [""])[0]
				with server.lock:
					server.asked[token] = server.asked.get(token, 0) + 1
				user = server.tokens.get(token)
				body = json.dumps({"active": True, "username": user} if user else
					{"active": False}).encode()
				self.send_response(200)
				self.send_header("Content-Type", "application/json")
				self.send_header("Content-Length", str(len(body)))
				self.end_headers()
				self.wfile.write(body)

			def log_message(self, *args):
				pass

		self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
		self.httpd.daemon_threads = True
		self.url = "http://127.0.0.1:%d/introspect" % self.httpd.server_address[1]
		self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
		self.thread.start()

	def count(self, token):
		with self.lock:
			return self.asked.get(token, 0)

	def stop(self):
		self.httpd.shutdown()
		self.httpd.server_close()
		self.thread.join(5)


@pytest.fixture(scope="module")
def tokens():
	t = TokenServer({GOOD: "alice", BOB: "bob", LONG: "alice"})
	yield t
	t.stop()


@pytest.fixture(scope="module")
def oauth_dovecot(make_dovecot, tokens):
	"""A Dovecot (TLS on) whose passdbs are the users file, then oauth2 against `tokens`."""
	d = make_dovecot(ssl=True, oauth2_url=tokens.url)
	d.seeded = {"alice": d.seed_mailbox("alice", include_big=False),
		"bob": d.seed_mailbox("bob", include_big=False)}
	return d


@pytest.fixture(scope="module")
def plain_dovecot(make_dovecot):
	"""A Dovecot offering PLAIN and LOGIN only."""
	return make_dovecot(ssl=False)


@pytest.fixture
def gate(request, tmp_path):
	"""start(dovecot_port, **overrides) -> a running popgate whose probe has answered; every one
	started is stopped at the end (which fails the test on a crash or a sanitizer report)."""
	started = []

	def start(port, wait_probe=True, **overrides):
		kw = {"limits.auth_fail_delay_ms": "50", "limits.auth_fail_delay_max_ms": "200"}
		kw.update(overrides)
		pg = start_popgate(tmp_path / ("pg%d" % len(started)), port, **kw)
		started.append(pg)
		if wait_probe:
			wait_log(pg, "SASL mechanisms:")
		return pg

	yield start
	if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
		for pg in started:
			print("--- popgate log tail (%s):\n%s" % (pg.log_path, pg.log_tail()))
	for pg in started:
		pg.stop()


def wait_log(pg, text, timeout=10.0):
	wait_until(lambda: text in pg.log(), timeout,
		lambda: "%r not in popgate's log:\n%s" % (text, pg.log_tail()))


def xoauth2(user, token):
	return base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode()).decode()


def oauthbearer(user, token, host="127.0.0.1"):
	return base64.b64encode(("n,a=%s,\x01host=%s\x01port=110\x01auth=Bearer %s\x01\x01" % (
		user, host, token)).encode()).decode()


ENCODERS = {"XOAUTH2": xoauth2, "OAUTHBEARER": oauthbearer}


def sasl_line(c):
	return [x for x in capa(c) if x.startswith("SASL")]


def auth(c, mech, response, initial=True):
	"""AUTH with the response on the AUTH line, or after the server's "+ "."""
	if initial:
		return c.cmd("AUTH %s %s" % (mech, response))
	r = c.cmd("AUTH " + mech)
	assert r == b"+ \r\n", r
	return c.cmd(response)


def dovecot_logins(d, method):
	with open(d.log_path, errors="replace") as f:
		return [x for x in f if "Login: user=<" in x and "method=%s," % method in x]


# --- what is offered ---

def test_capa_lists_what_dovecot_offers(oauth_dovecot, gate):
	pg = gate(oauth_dovecot.imap_port)
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert sasl_line(c) == ["SASL PLAIN XOAUTH2 OAUTHBEARER"]
		status, lines = c.cmd_multi("AUTH")
		assert status.startswith(b"+OK") and lines == [b"PLAIN\r\n", b"XOAUTH2\r\n",
			b"OAUTHBEARER\r\n"], (status, lines)
	assert "SASL mechanisms: PLAIN XOAUTH2 OAUTHBEARER (from probe)" in pg.log()


def test_capa_without_oauth_upstream(plain_dovecot, gate):
	pg = gate(plain_dovecot.imap_port)
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert sasl_line(c) == ["SASL PLAIN"]
		status, lines = c.cmd_multi("AUTH")
		assert lines == [b"PLAIN\r\n"], (status, lines)
		for mech, enc in ENCODERS.items():
			r = c.cmd("AUTH %s %s" % (mech, enc("alice", GOOD)))
			assert r == b"-ERR Unsupported authentication mechanism.\r\n", r
			r = c.cmd("AUTH " + mech)
			assert r == b"-ERR Unsupported authentication mechanism.\r\n", r
		assert c.login("alice", plain_dovecot.users["alice"]).startswith(b"+OK")


def test_no_bearer_where_plaintext_is_refused(oauth_dovecot, gate):
	"""A bearer token is a credential: not offered, not taken, outside TLS when plaintext
	logins are refused there."""
	pg = gate(oauth_dovecot.imap_port, **{"pop3.allow_plaintext_auth": "no"})
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert sasl_line(c) == []
		status, lines = c.cmd_multi("AUTH")
		assert lines == [], (status, lines)
		r = c.cmd("AUTH XOAUTH2 " + xoauth2("alice", GOOD))
		assert r.startswith(b"-ERR [AUTH] Plaintext authentication disallowed"), r
	assert "Bearer" not in pg.log() and GOOD not in pg.log()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_probe_through_tls(oauth_dovecot, gate, security):
	"""The probe speaks TLS as configured; the caps it keeps are the post-TLS ones."""
	port = oauth_dovecot.imap_port if security == "starttls" else oauth_dovecot.imaps_port
	pg = gate(port, **{"upstream.security": security,
		"upstream.ca_file": oauth_dovecot.certs["ca.pem"]})
	assert "learning its capabilities failed" not in pg.log()
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert sasl_line(c) == ["SASL PLAIN XOAUTH2 OAUTHBEARER"]
		assert auth(c, "XOAUTH2", xoauth2("alice", GOOD)).startswith(b"+OK"), pg.log_tail()
		assert c.quit().startswith(b"+OK")


def test_probe_fails_upstream_down(gate, tmp_path):
	"""No upstream: the probe failure is logged, CAPA lists PLAIN only, and an AUTH XOAUTH2 is
	let through (the upstream decides) and ends as the temporary failure it is."""
	import dovecot
	port = dovecot.free_ports(1)[0]
	pg = gate(port, wait_probe=False)
	wait_log(pg, "learning its capabilities failed: \"connect failed")
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert sasl_line(c) == ["SASL PLAIN"]
		r = c.cmd("AUTH XOAUTH2 " + xoauth2("alice", GOOD))
		assert r.startswith(b"-ERR [SYS/TEMP]"), r
		assert c.cmd("CAPA").startswith(b"+OK")


def test_probe_learns_nothing_from_a_capability_that_names_nothing(token_fake, gate):
	"""A server whose CAPABILITY answers OK without naming anything (and whose greeting has no
	[CAPABILITY] code) has not said it lacks XOAUTH2: the probe counts as failed and is
	retried, and a bearer AUTH is let through for the upstream to decide, never refused on
	a guess."""
	token_fake.caps = "IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN SASL-IR AUTH=XOAUTH2"
	token_fake.next_scenarios.append("capability_empty")
	pg = gate(token_fake.port, wait_probe=False)
	wait_log(pg, "learning its capabilities failed: \"CAPABILITY answered without capabilities")
	with Pop3Raw("127.0.0.1", pg.port) as c:
		r = c.cmd("AUTH XOAUTH2 " + xoauth2("alice", GOOD))
		assert r.startswith(b"+OK"), r
		assert c.quit().startswith(b"+OK")


def test_a_login_that_learns_no_capabilities_does_not_close_the_door_to_bearers(token_fake, gate):
	"""The probe and then a USER/PASS session's upstream connection both meet a server that
	names no capabilities: the password login works (LOGIN needs none), and that login must
	not record "no bearer mechanisms" for the next client's AUTH XOAUTH2 to be refused by."""
	token_fake.caps = "IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN SASL-IR AUTH=XOAUTH2"
	token_fake.next_scenarios += ["capability_empty", "capability_empty"]
	pg = gate(token_fake.port, wait_probe=False)
	wait_log(pg, "learning its capabilities failed")
	with Pop3Raw("127.0.0.1", pg.port) as c:
		c.login("alice", "pw")
		assert c.quit().startswith(b"+OK")
	with Pop3Raw("127.0.0.1", pg.port) as c:
		r = c.cmd("AUTH XOAUTH2 " + xoauth2("alice", GOOD))
		assert r.startswith(b"+OK"), r
		assert c.quit().startswith(b"+OK")


# --- logging in ---

@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
@pytest.mark.parametrize("initial", [True, False], ids=["initial-response", "continuation"])
def test_good_token_retr(oauth_dovecot, gate, mech, initial):
	d = oauth_dovecot
	pg = gate(d.imap_port)
	before = len(dovecot_logins(d, mech))
	with Pop3Raw("127.0.0.1", pg.port) as c:
		r = auth(c, mech, ENCODERS[mech]("alice", GOOD), initial)
		assert r.startswith(b"+OK Logged in, %d messages" % len(d.seeded["alice"])), r
		for i, msg in enumerate(d.seeded["alice"][:3], 1):
			status, lines = c.cmd_multi("RETR %d" % i)
			assert status.startswith(b"+OK"), status
			assert_same_bytes(unstuff(lines), msg, "RETR %d" % i)
		# A token is a password: once used, the gateway's memory no longer holds it.
		assert find_in_memory(pg.proc.pid, [GOOD, ENCODERS[mech]("alice", GOOD)]) == []
		assert c.quit().startswith(b"+OK")
	# Dovecot really saw the mechanism (not a password login), and alice is the user.
	logins = dovecot_logins(d, mech)
	assert len(logins) == before + 1 and "user=<alice>" in logins[-1], logins[-3:]
	assert "login user=alice " in pg.log()


@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_bad_token_then_password(oauth_dovecot, gate, tokens, mech):
	d = oauth_dovecot
	pg = gate(d.imap_port)
	bad = "ya29.bad-%s-%d" % (mech.lower(), os.getpid())
	with Pop3Raw("127.0.0.1", pg.port) as c:
		r = auth(c, mech, ENCODERS[mech]("alice", bad))
		assert r == b"-ERR [AUTH] Authentication failed.\r\n", r
		# The session goes on, and a password still works.
		assert c.login("alice", d.users["alice"]).startswith(b"+OK Logged in")
		assert c.quit().startswith(b"+OK")
	assert tokens.count(bad) == 1
	# The upstream's NO [AUTHENTICATIONFAILED] counts as a refused credential (delay, -ERR [AUTH]).
	assert "failed: \"upstream login refused: NO Authentication failed.\"" in pg.log()


def test_wrong_user_for_token(oauth_dovecot, gate):
	"""alice's token with bob's name: the upstream refuses; popgate does not decide that."""
	pg = gate(oauth_dovecot.imap_port)
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert auth(c, "XOAUTH2", xoauth2("bob", GOOD)).startswith(b"-ERR [AUTH]")
		assert auth(c, "XOAUTH2", xoauth2("alice", GOOD)).startswith(b"+OK")


def test_refused_token_remembered(oauth_dovecot, gate, tokens):
	"""Like a refused password: a client's retry of the same token, by either mechanism, is not
	sent upstream again; another token is."""
	pg = gate(oauth_dovecot.imap_port)
	bad = "ya29.retried-%d" % os.getpid()
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert auth(c, "XOAUTH2", xoauth2("alice", bad)).startswith(b"-ERR [AUTH]")
		assert auth(c, "OAUTHBEARER", oauthbearer("alice", bad), False).startswith(b"-ERR [AUTH]")
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert auth(c, "XOAUTH2", xoauth2("alice", bad), False).startswith(b"-ERR [AUTH]")
		assert auth(c, "XOAUTH2", xoauth2("alice", bad + "2")).startswith(b"-ERR [AUTH]")
	assert tokens.count(bad) == 1
	assert tokens.count(bad + "2") == 1
	assert pg.log().count("credentials refused moments ago") == 2


def test_long_token_on_the_auth_line(oauth_dovecot, gate, tokens):
	"""RFC 5034 wants long initial responses in a continuation, but XOAUTH2 clients put them on
	the AUTH line; popgate takes up to a SASL line's length there, the upstream gets it whole."""
	pg = gate(oauth_dovecot.imap_port)
	before = tokens.count(LONG)
	resp = xoauth2("alice", LONG)
	assert len("AUTH XOAUTH2 " + resp) > 3000
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert auth(c, "XOAUTH2", resp).startswith(b"+OK Logged in"), pg.log_tail()
		assert c.quit().startswith(b"+OK")
	assert tokens.count(LONG) == before + 1
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert auth(c, "OAUTHBEARER", oauthbearer("alice", LONG), False).startswith(b"+OK")
	# Other commands keep RFC 2449's 255 octets.
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert c.cmd("USER " + "u" * 300) == b"-ERR Line too long.\r\n"
		assert c.cmd("CAPA").startswith(b"+OK")


def test_in_use_by_token_user(oauth_dovecot, gate):
	"""The name in the SASL message is the session's user: the [IN-USE] lock works on it."""
	pg = gate(oauth_dovecot.imap_port)
	with Pop3Raw("127.0.0.1", pg.port) as a, Pop3Raw("127.0.0.1", pg.port) as b:
		assert auth(a, "XOAUTH2", xoauth2("alice", GOOD)).startswith(b"+OK")
		r = auth(b, "OAUTHBEARER", oauthbearer("alice", GOOD))
		assert r.startswith(b"-ERR [IN-USE]"), r


# --- the exact IMAP conversation, against the scripted fake upstream (tests/integration/fakeimap.py) ---

@pytest.fixture
def token_fake(fake):
	"""conftest's fake upstream, knowing GOOD as alice's token."""
	fake.tokens = {GOOD: "alice"}
	return fake


@pytest.mark.parametrize("sasl_ir", [True, False], ids=["sasl-ir", "no-sasl-ir"])
@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_fake_upstream_conversation(token_fake, gate, mech, sasl_ir):
	"""AUTHENTICATE with the client's response byte for byte, as an initial response when the
	upstream has SASL-IR, else after its "+"; SELECT only after the OK (a refused token's "+"
	must be answered before anything else); the error challenge answered with an empty
	response (XOAUTH2) or ^A (OAUTHBEARER, RFC 7628 §3.2.3), then -ERR [AUTH]."""
	fake = token_fake
	fake.caps = "IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN AUTH=%s%s" % (mech,
		" SASL-IR" if sasl_ir else "")
	pg = gate(fake.port)
	good, bad = ENCODERS[mech]("alice", GOOD), ENCODERS[mech]("alice", "ya29.fake-bad")
	with Pop3Raw("127.0.0.1", pg.port) as c:
		other = "OAUTHBEARER" if mech == "XOAUTH2" else "XOAUTH2"
		assert sasl_line(c) == ["SASL PLAIN " + mech]
		assert auth(c, other, ENCODERS[other]("alice", GOOD)) == \
			b"-ERR Unsupported authentication mechanism.\r\n"
		r = auth(c, mech, bad, initial=False)
		assert r == b"-ERR [AUTH] Authentication failed.\r\n", (r, fake.transcript())
		r = auth(c, mech, good)
		assert r.startswith(b"+OK Logged in, 3 messages"), (r, fake.transcript())
		status, lines = c.cmd_multi("RETR 1")
		assert_same_bytes(unstuff(lines), fake.messages[0], "RETR 1")
		assert c.quit().startswith(b"+OK")
	form = "ir" if sasl_ir else "continuation"
	ack = b"" if mech == "XOAUTH2" else b"AQ=="
	assert [x[1:] for x in fake.sasl] == [(mech, form, bad.encode(), ack),
		(mech, form, good.encode(), None)], fake.sasl
	# Per connection, ID aside: the refused one AUTHENTICATE then LOGOUT (had SELECT been
	# pipelined, it would have been read as the answer to the challenge: the ack above); the
	# good one AUTHENTICATE, then SELECT.
	want = "AUTHENTICATE %s%s" % (mech, " <hidden>" if sasl_ir else "")
	cmds = [[l.split(" ", 1)[1] for l in fake.lines(x[0]) if not l.endswith(" ID")]
		for x in fake.sasl]
	assert cmds[0] == [want, "LOGOUT"], fake.transcript()
	assert cmds[1][:2] == [want, 'SELECT "INBOX"'], fake.transcript()


def test_fake_upstream_drops_mechanism(token_fake, gate):
	"""Offered at the probe, gone at login: a temporary failure, not a wrong password."""
	fake = token_fake
	fake.caps = "IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN AUTH=XOAUTH2 SASL-IR"
	pg = gate(fake.port)
	fake.caps = "IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN SASL-IR"
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert sasl_line(c) == ["SASL PLAIN XOAUTH2"]
		r = auth(c, "XOAUTH2", xoauth2("alice", GOOD))
		assert r.startswith(b"-ERR [SYS/TEMP]"), r
		# That login taught popgate the new set: CAPA follows it.
		assert sasl_line(c) == ["SASL PLAIN"]
		assert c.login("alice", "any").startswith(b"+OK")
	assert not fake.sasl
	assert "upstream does not offer AUTH=XOAUTH2" in pg.log()


# --- what the client may get wrong ---

def test_cancel_and_malformed(oauth_dovecot, gate, tokens):
	pg = gate(oauth_dovecot.imap_port)
	with Pop3Raw("127.0.0.1", pg.port) as c:
		for mech in ("XOAUTH2", "OAUTHBEARER", "xoauth2"):
			assert c.cmd("AUTH " + mech) == b"+ \r\n"
			assert c.cmd("*") == b"-ERR Authentication aborted.\r\n"
		cases = [
			("XOAUTH2", "!!!!", b"-ERR Invalid base64 data.\r\n"),
			("XOAUTH2", "dXNlcj1h", b"-ERR Invalid SASL XOAUTH2 message.\r\n"),
			("XOAUTH2", "=", b"-ERR Invalid SASL XOAUTH2 message.\r\n"),
			("XOAUTH2", base64.b64encode(b"user=al\rice\x01auth=Bearer x\x01\x01").decode(),
				b"-ERR Invalid SASL XOAUTH2 message.\r\n"),
			("XOAUTH2", base64.b64encode(b"user=alice\x01auth=Basic eDp5\x01\x01").decode(),
				b"-ERR Invalid SASL XOAUTH2 message.\r\n"),
			("OAUTHBEARER", xoauth2("alice", GOOD), b"-ERR Invalid SASL OAUTHBEARER message.\r\n"),
			("OAUTHBEARER", base64.b64encode(b"p=tls-unique,a=alice,\x01auth=Bearer x\x01\x01")
				.decode(), b"-ERR Invalid SASL OAUTHBEARER message.\r\n"),
			("OAUTHBEARER", base64.b64encode(("n,,\x01auth=Bearer %s\x01\x01" % GOOD).encode())
				.decode(), b"-ERR [AUTH] OAUTHBEARER needs the user name (a=) in its GS2 header.\r\n"),
			("OAUTHBEARER", base64.b64encode(b"n,a=" + b"u" * 1100 + b",\x01auth=Bearer x\x01\x01")
				.decode(), b"-ERR Invalid SASL OAUTHBEARER message.\r\n"),
		]
		for mech, resp, want in cases:
			assert auth(c, mech, resp, True) == want, (mech, resp)
			assert auth(c, mech, resp, False) == want, (mech, resp)
		# A name with a space is fine for popgate; the upstream refuses the token.
		assert auth(c, "XOAUTH2", xoauth2("al ice", GOOD)).startswith(b"-ERR [AUTH]")
		# Nothing went upstream for the refused shapes; the session still logs in.
		assert auth(c, "XOAUTH2", xoauth2("alice", GOOD)).startswith(b"+OK Logged in")
		assert c.cmd("STAT").startswith(b"+OK")
	assert tokens.count("x") == 0


def test_token_never_logged(oauth_dovecot, gate):
	pg = gate(oauth_dovecot.imap_port, **{"log.level": "debug"})
	bad = "ya29.secret-bad-%d" % os.getpid()
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert auth(c, "XOAUTH2", xoauth2("alice", bad), False).startswith(b"-ERR [AUTH]")
		assert auth(c, "OAUTHBEARER", oauthbearer("alice", GOOD)).startswith(b"+OK")
		assert c.quit().startswith(b"+OK")
	log = pg.log()
	assert "command AUTH <hidden>" in log
	for secret in (GOOD, bad, xoauth2("alice", bad), oauthbearer("alice", GOOD), "Bearer"):
		assert secret not in log, secret
	for secret in (xoauth2("alice", bad), oauthbearer("alice", GOOD)):
		assert secret[:40] not in log


# --- a real client ---

@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_curl(oauth_dovecot, gate, mech):
	d = oauth_dovecot
	pg = gate(d.imap_port)
	base = ["curl", "-sS", "--max-time", "30", "--login-options", "AUTH=" + mech, "-u", "alice:"]
	r = run(base + ["--oauth2-bearer", GOOD, "pop3://127.0.0.1:%d/2" % pg.port], 60)
	assert r.returncode == 0, r.stderr
	assert_same_bytes(r.stdout, d.seeded["alice"][1], "curl's RETR 2")
	r = run(base + ["--oauth2-bearer", "ya29.curl-bad", "pop3://127.0.0.1:%d/" % pg.port], 60)
	assert r.returncode == 67, (r.returncode, r.stderr)	# CURLE_LOGIN_DENIED
	assert "ya29.curl-bad" not in pg.log()
