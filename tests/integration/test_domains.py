"""Per-domain upstreams (issue 16): [upstream:DOMAIN] sections, each its own IMAP cluster.

Two real Dovecots: A (plain IMAP) is [upstream]; B (implicit TLS, its own test CA) is
[upstream:b.test] with strip_domain = yes. A's passdb knows full names (alice@a.test,
carol@a.test, zed@other.test, dave); B's knows only bare names (bob, carol), so a login of
bob@b.test through popgate works only if popgate sends "bob". What a user would notice:

  - each user reaches his own mailbox: every message byte-exact as stored on his server, none
    of the other server's
  - strip_domain sends the bare name (B's passdb and B's own log say so)
  - carol@a.test and carol@b.test are two users: both logged in at once (no [IN-USE]), their
    UIDLs apart, the UIDL cache keyed on the full names, never on "carol"
  - DELE + QUIT deletes on the user's server only
  - a domain without a section, or a name without one, goes to [upstream]; the domain is
    matched in any case
  - the start line names the clusters; popgate -t refuses a bad domain section, naming its line
"""

import os
import poplib
import re
import sqlite3

import pytest

import messages
from dovecot import free_ports
from helpers import assert_same_bytes, wait_until
from popgate import Popgate, base_config, popgate_check_config, render_ini

pytestmark = pytest.mark.popgate_only

A_USERS = {"alice@a.test": "alice-a-pw", "carol@a.test": "carol-a-pw",
	"zed@other.test": "zed-pw", "dave": "dave-pw"}
B_USERS = {"bob": "bob-b-pw", "carol": "carol-b-pw"}


def seed(dov, user, tag, n=None):
	"""Seeds user's INBOX on dov with the (first n) seed messages made for `tag` (its own
	Message-IDs and To:), small ones only. Returns the message bytes in mailbox order."""
	return dov.seed_mailbox(user, include_big=False,
		msgs=messages.build(tag, include_big=False)[:n])


@pytest.fixture(scope="module")
def world(make_dovecot, tmp_path_factory):
	a = make_dovecot(ssl=False, users=A_USERS)
	b = make_dovecot(ssl=True, users=B_USERS)
	stored = {
		"alice@a.test": seed(a, "alice@a.test", "alice-on-a"),
		"carol@a.test": seed(a, "carol@a.test", "carol-on-a"),
		"zed@other.test": seed(a, "zed@other.test", "zed-on-a"),
		"dave": seed(a, "dave", "dave-on-a"),
		"bob@b.test": seed(b, "bob", "bob-on-b"),
		"carol@b.test": seed(b, "carol", "carol-on-b", n=4),	# not as many as carol@a.test
	}
	tmp = tmp_path_factory.mktemp("popgate-domains")
	port = free_ports(1)[0]
	cfg = base_config(tmp, a.imap_port, port)
	cfg["limits"] = {"auth_fail_delay_ms": "0"}
	cfg["upstream:b.test"] = {"host": "127.0.0.1", "port": str(b.imaps_port),
		"security": "tls", "ca_file": b.certs["ca.pem"], "strip_domain": "yes"}
	pg = Popgate(tmp, render_ini(cfg), port).start()
	yield {"a": a, "b": b, "pg": pg, "stored": stored, "db": os.path.join(str(tmp), "uidl.sqlite"),
		"passwords": dict(A_USERS, **{"bob@b.test": B_USERS["bob"],
			"carol@b.test": B_USERS["carol"]})}
	pg.stop()


@pytest.fixture
def show_logs(request, world):
	yield
	rep = getattr(request.node, "rep_call", None)
	if rep is not None and rep.failed:
		print("--- popgate log tail:\n" + world["pg"].log_tail(80))
		print("--- Dovecot B log tail:\n" + world["b"].log_tail(30))


def pop(world, user, password=None):
	c = poplib.POP3("127.0.0.1", world["pg"].port, timeout=60)
	c.user(user)
	c.pass_(world["passwords"][user.lower()] if password is None else password)
	return c


def retr_all(c):
	"""Every message of the maildrop, as RETR delivers it (unstuffed, CRLF lines)."""
	n = len(c.list()[1])
	return [b"".join(l + b"\r\n" for l in c.retr(i)[1]) for i in range(1, n + 1)]


def uidls(c):
	return [l.split()[1].decode() for l in c.uidl()[1]]


def cache_users(world):
	db = sqlite3.connect(world["db"])
	try:
		return {u: sorted(x for (x,) in db.execute("SELECT uidl FROM uidl WHERE user = ?", (u,)))
			for (u,) in db.execute("SELECT DISTINCT user FROM uidl")}
	finally:
		db.close()


def expect(world, user):
	return [messages.pop3_bytes(m) for m in world["stored"][user]]


@pytest.mark.parametrize("user", ["alice@a.test", "carol@a.test", "bob@b.test", "carol@b.test"])
def test_each_user_reaches_his_own_mailbox(world, show_logs, user):
	c = pop(world, user)
	try:
		got = retr_all(c)
	finally:
		c.quit()
	want = expect(world, user)
	assert len(got) == len(want), "%s: %d messages, his server holds %d" % (user, len(got), len(want))
	for i, (g, w) in enumerate(zip(got, want)):
		assert_same_bytes(g, w, "%s message %d" % (user, i + 1))
	others = {m for u, ms in world["stored"].items() if u != user for m in ms}
	assert not others & set(m for m in world["stored"][user]), "seeds are not distinct"
	assert not {messages.pop3_bytes(m) for m in others} & set(got), \
		"%s got another user's message" % user


def test_strip_domain_sends_the_bare_name(world, show_logs):
	"""B's passdb has no "bob@b.test": the login works only with "bob"; B's log names bob."""
	c = pop(world, "bob@b.test")
	c.quit()
	log = wait_until(lambda: "user=<bob>" in world["b"].log_tail(400) and world["b"].log_tail(400),
		what="Dovecot B logged no login of user=<bob>")
	assert "user=<bob@b.test>" not in log
	# and the full name is what popgate logs for the session
	assert re.search(r" user=bob@b\.test ", world["pg"].log())


def test_same_local_part_two_users(world, show_logs):
	"""carol@a.test and carol@b.test at the same time: two users (no [IN-USE]), two mailboxes,
	two sets of UIDLs, cached under the two full names and never under "carol"."""
	ca = pop(world, "carol@a.test")
	cb = pop(world, "carol@b.test")	# raises on -ERR [IN-USE]
	try:
		ua, ub = uidls(ca), uidls(cb)
		ma, mb = retr_all(ca), retr_all(cb)
	finally:
		ca.quit()
		cb.quit()
	assert ma == expect(world, "carol@a.test") and mb == expect(world, "carol@b.test")
	assert len(ua) == len(ma) and len(ub) == len(mb)
	# The UIDLs themselves may coincide (both Dovecots started in the same second: the same
	# UIDVALIDITY and UIDs), which is fine for two maildrops; what must not be shared is
	# the cache's memory of them.
	assert ua != ub
	users = wait_until(lambda: (lambda u: u if len(u.get("carol@a.test", ())) == len(ua) and
		len(u.get("carol@b.test", ())) == len(ub) else None)(cache_users(world)),
		what=lambda: "the cache's rows of the carols: %r" % cache_users(world))
	assert users["carol@a.test"] == sorted(ua)
	assert users["carol@b.test"] == sorted(ub)
	assert "carol" not in users and "bob" not in users, sorted(users)


def count(dov, user):
	"""Messages in user's INBOX on dov, as IMAP says."""
	m = dov.imap(user)
	try:
		return int(m.select("INBOX")[1][0])
	finally:
		m.logout()


def test_dele_quit_deletes_on_the_right_server_only(world, show_logs):
	a, b = world["a"], world["b"]
	a_before, b_before = count(a, "carol@a.test"), count(b, "carol")
	c = pop(world, "carol@b.test")
	first = retr_all(c)[0]
	c.dele(1)
	c.quit()
	wait_until(lambda: count(b, "carol") == b_before - 1, what="B's carol still has %d" % b_before)
	assert count(a, "carol@a.test") == a_before, "carol@a.test lost a message on A"
	world["stored"]["carol@b.test"] = world["stored"]["carol@b.test"][1:]
	c = pop(world, "carol@b.test")
	try:
		assert first not in retr_all(c)
	finally:
		c.quit()
	c = pop(world, "carol@a.test")
	try:
		assert retr_all(c) == expect(world, "carol@a.test")
	finally:
		c.quit()


@pytest.mark.parametrize("user", ["zed@other.test", "dave"])
def test_no_section_goes_to_upstream(world, show_logs, user):
	c = pop(world, user)
	try:
		assert retr_all(c) == expect(world, user)
	finally:
		c.quit()


def test_domain_in_any_case(world, show_logs):
	c = pop(world, "bob@B.Test")
	try:
		assert retr_all(c) == expect(world, "bob@b.test")
	finally:
		c.quit()


def test_start_line_names_the_clusters(world):
	log = world["pg"].log()
	assert re.search(r"users @b\.test: upstream \[upstream:b\.test\] 127\.0\.0\.1:%d \(tls\), "
		r"domain stripped" % world["b"].imaps_port, log), log[:2000]


# --- popgate -t -----------------------------------------------------------------------------

def check_ini(tmp_path, tail):
	ini = render_ini(base_config(tmp_path, 143, 1100)) + tail
	return ini, popgate_check_config(ini, str(tmp_path))


def line_of(ini, text):
	return ini.splitlines().index(text) + 1


def test_check_accepts_domain_sections(tmp_path):
	_, (rc, out) = check_ini(tmp_path, "[upstream:b.test]\nhost = 127.0.0.1\nsecurity = none\n"
		"strip_domain = yes\n[upstream:C.Test]\nhost = localhost\nport = 1143\nsecurity = starttls\n")
	assert rc == 0, out
	assert "configuration OK" in out


@pytest.mark.parametrize("tail, header, why", [
	("[upstream:b..test]\nhost = 127.0.0.1\n", "[upstream:b..test]", "empty label"),
	("[upstream:b_test]\nhost = 127.0.0.1\n", "[upstream:b_test]", "only letters"),
	("[upstream:]\nhost = 127.0.0.1\n", "[upstream:]", "empty domain"),
	("[upstream:b.test]\nhost = 127.0.0.1\n[pop3]\nset_seen = no\n[upstream:B.TEST]\nhost = x\n",
		"[upstream:B.TEST]", "a second section for this domain (the first is at line"),
	("[upstream:b.test]\nport = 1143\n", "[upstream:b.test]", "host: missing"),
	("[upstream:b.test]\nhost = no-such-host.invalid\n", "[upstream:b.test]", "cannot resolve"),
	# an indented line after a key continues its value (inih), header or not
	("[upstream:b.test]\nhost = 127.0.0.1\nsend_client_id = no\n  [upstream:c.test]\n",
		"  [upstream:c.test]", "send_client_id: \"[upstream:c.test]\" is not yes or no"),
])
def test_check_refuses_a_bad_domain_section(tmp_path, tail, header, why):
	ini, (rc, out) = check_ini(tmp_path, tail)
	assert rc == 1, out
	assert ":%d: " % line_of(ini, header) in out, out
	assert why in out, out


@pytest.mark.parametrize("key, line", [("verify = maybe", "verify = maybe"),
	("listen = 127.0.0.1:1", "listen = 127.0.0.1:1")])
def test_check_refuses_a_bad_key_in_a_domain_section(tmp_path, key, line):
	ini, (rc, out) = check_ini(tmp_path, "[upstream:b.test]\nhost = 127.0.0.1\n%s\n" % key)
	assert rc == 1, out
	assert ":%d: [upstream:b.test]" % line_of(ini, line) in out, out


def test_check_refuses_an_unreadable_ca_file_naming_the_section(tmp_path):
	ini, (rc, out) = check_ini(tmp_path, "[upstream:b.test]\nhost = 127.0.0.1\nca_file = /nonexistent\n")
	assert rc == 1, out
	assert "line %d: [upstream:b.test] ca_file" % line_of(ini, "[upstream:b.test]") in out, out


def test_check_caps_the_domains(tmp_path):
	tail = "".join("[upstream:d%d.test]\nhost = 127.0.0.1\nsecurity = none\n" % i for i in range(65))
	ini, (rc, out) = check_ini(tmp_path, tail)
	assert rc == 1, out
	assert ":%d: " % line_of(ini, "[upstream:d64.test]") in out and "more than 64" in out, out


# --- bearer tokens: the name inside the SASL response is stripped too ------------------------

@pytest.fixture(scope="module")
def oauth_world(make_dovecot, tmp_path_factory):
	"""[upstream] -> a Dovecot offering PLAIN only (A: alice@a.test); [upstream:c.test] -> a
	Dovecot with the oauth2 passdb (C: bare names, its token server names "bob"), strip_domain
	= yes. Its probe must have answered for CAPA to list the bearer mechanisms."""
	from test_oauth import TokenServer, wait_log
	tokens = TokenServer({BOB_TOKEN: "bob"})
	a = make_dovecot(ssl=False, users={"alice@a.test": "alice-a-pw"})
	c = make_dovecot(ssl=True, oauth2_url=tokens.url)
	stored = {"alice@a.test": seed(a, "alice@a.test", "alice-on-a", n=2),
		"bob@c.test": seed(c, "bob", "bob-on-c", n=3)}
	tmp = tmp_path_factory.mktemp("popgate-domains-oauth")
	port = free_ports(1)[0]
	cfg = base_config(tmp, a.imap_port, port)
	cfg["limits"] = {"auth_fail_delay_ms": "0"}
	cfg["upstream:c.test"] = {"host": "127.0.0.1", "port": str(c.imaps_port), "security": "tls",
		"ca_file": c.certs["ca.pem"], "strip_domain": "yes"}
	pg = Popgate(tmp, render_ini(cfg), port).start()
	try:
		wait_until(lambda: pg.log().count("SASL mechanisms:") >= 2, 10,
			lambda: "both probes did not answer:\n" + pg.log_tail())
		yield {"a": a, "c": c, "pg": pg, "tokens": tokens, "stored": stored}
	finally:
		pg.stop()
		tokens.stop()


BOB_TOKEN = "ya29.token-of-bob-at-c"


@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_bearer_login_with_the_domain_stripped(oauth_world, mech):
	from test_oauth import ENCODERS, sasl_line
	from pop3client import Pop3Raw, unstuff
	w = oauth_world
	asked = w["tokens"].count(BOB_TOKEN)
	with Pop3Raw("127.0.0.1", w["pg"].port) as c:
		# CAPA comes before the user name: a mechanism some cluster offers is listed
		assert sasl_line(c) == ["SASL PLAIN XOAUTH2 OAUTHBEARER"]
		r = c.cmd("AUTH %s %s" % (mech, ENCODERS[mech]("bob@c.test", BOB_TOKEN)))
		assert r.startswith(b"+OK"), r
		got = []
		for i, want in enumerate(w["stored"]["bob@c.test"], 1):
			status, lines = c.cmd_multi("RETR %d" % i)
			assert status.startswith(b"+OK"), status
			got.append(unstuff(lines))
		assert got == [messages.pop3_bytes(m) for m in w["stored"]["bob@c.test"]]
		c.quit()
	assert w["tokens"].count(BOB_TOKEN) > asked, "the token never reached C's passdb"
	with open(w["c"].log_path, errors="replace") as f:
		logins = [x for x in f if "Login: user=<" in x and "method=%s," % mech in x]
	assert logins and all("user=<bob>" in x for x in logins), logins


def test_bearer_refused_where_the_cluster_lacks_it(oauth_world):
	"""alice@a.test's cluster offers no XOAUTH2: a plain -ERR (not [SYS/TEMP], which would make
	the client retry for ever), and nothing reaches A."""
	from test_oauth import xoauth2
	from pop3client import Pop3Raw
	w = oauth_world
	with Pop3Raw("127.0.0.1", w["pg"].port) as c:
		r = c.cmd("AUTH XOAUTH2 " + xoauth2("alice@a.test", BOB_TOKEN))
		assert r == b"-ERR AUTH XOAUTH2 is not available for this user, use another mechanism.\r\n", r
		assert c.login("alice@a.test", "alice-a-pw").startswith(b"+OK")
		c.quit()
	assert "XOAUTH2" not in w["a"].log_tail(200)


def test_one_mailbox_under_two_names_is_in_use(world, show_logs, tmp_path):
	"""With [cache] username = keep, "bob@b.test" and "bob@B.TEST" are two names; B strips the
	domain (matched in any case), so both reach bob's one mailbox upstream, and the second is
	[IN-USE] while the first holds it: the lock is on the cluster and the name its server
	gets, not on the name typed."""
	port = free_ports(1)[0]
	cfg = base_config(tmp_path, world["a"].imap_port, port)
	cfg["cache"]["username"] = "keep"
	cfg["upstream:b.test"] = {"host": "127.0.0.1", "port": str(world["b"].imaps_port),
		"security": "tls", "ca_file": world["b"].certs["ca.pem"], "strip_domain": "yes"}
	pg = Popgate(tmp_path, render_ini(cfg), port).start()
	try:
		first = poplib.POP3("127.0.0.1", port, timeout=60)
		first.user("bob@b.test")
		first.pass_(world["passwords"]["bob@b.test"])
		c = poplib.POP3("127.0.0.1", port, timeout=60)
		c.user("bob@B.TEST")
		with pytest.raises(poplib.error_proto) as e:
			c.pass_(world["passwords"]["bob@b.test"])
		assert b"[IN-USE]" in e.value.args[0], e.value.args
		c.quit()
		first.quit()
		# the lock went with the first session
		c = poplib.POP3("127.0.0.1", port, timeout=60)
		c.user("bob@B.TEST")
		c.pass_(world["passwords"]["bob@b.test"])
		c.quit()
	finally:
		pg.stop()


@pytest.mark.parametrize("name", ["bob@evil@b.test", "alice@x@a.test"])
def test_a_name_with_two_ats_is_refused_where_domains_route(world, show_logs, name):
	"""Which '@' ends the name is the server's choice (Dovecot: the first), popgate's the
	last: with domain sections such a name could reach a mailbox past its lock. -ERR, and
	nothing sent upstream."""
	c = poplib.POP3("127.0.0.1", world["pg"].port, timeout=60)
	c.user(name)
	with pytest.raises(poplib.error_proto) as e:
		c.pass_(world["passwords"]["bob@b.test"])
	assert e.value.args[0].startswith(b"-ERR"), e.value.args
	c.quit()
	assert wait_until(lambda: "more than one '@' is ambiguous" in world["pg"].log(), 5)
