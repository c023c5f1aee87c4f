"""Real POP3 clients (curl, fetchmail, mpop, getmail6) against the server under test: what the
user gets on disk, what is upstream afterwards, and that a second run with the client's UIDL
memory fetches nothing new.

Each client talks through a recording relay (pop3proxy.Pop3Proxy); the conversation is printed
when a test fails. What each client sends, seen against Dovecot:
  curl      CAPA, AUTH PLAIN (no initial response: waits for "+ "), the response, then one of
            RETR n | LIST | UIDL | TOP n 0 | DELE n (with -X), QUIT
  fetchmail CAPA, USER, PASS, STAT, UIDL, then for each new message LIST n and
            TOP n 99999999 (never RETR), DELE n after each one without "keep", QUIT
  mpop      CAPA, USER, PASS, STAT, LIST, UIDL, RETR 1, then RETR 2..n in one write (pipelined),
            without keep DELE 1, then DELE 2..n pipelined, QUIT
  getmail   USER, PASS, UIDL, LIST, UIDL, LIST, RETR n one at a time, QUIT (no CAPA)
"""

import os
import sys
from urllib.parse import quote

import pytest

import messages
from helpers import (CLIENT_TIMEOUT, DELIVER, assert_same_bytes, client_env, fetchmail,
	fetchmail_setup, lf, mpop, mpop_messages, need, numbered_files, run, strip_fetchmail_received)
from messages import NAMES, pop3_bytes, message_ids
from pop3proxy import Pop3Proxy

N = len(NAMES)
NUMS = [pytest.param(n, id="%d-%s" % (n, name)) for n, name in enumerate(NAMES, 1)]

CURL_TIMEOUT = 120	# seconds curl may take (it is also given --max-time)


@pytest.fixture
def proxy(pop3):
	p = Pop3Proxy(pop3.port)
	yield p
	p.close()
	print("--- POP3 conversation through the recording relay:\n" + p.transcript())


def assert_same_messages(got, msgs):
	"""The files a client delivered are msgs, in order, with LF line endings."""
	assert len(got) == len(msgs), "%d messages delivered, %d in the mailbox" % (len(got), len(msgs))
	for n, (data, m) in enumerate(zip(got, msgs), 1):
		assert_same_bytes(data, lf(pop3_bytes(m)), "message %d (%s)" % (n, NAMES[n - 1]))


# --- curl ---------------------------------------------------------------------------------------

def curl_url(port, path="", user="alice", password=""):
	"""pop3://user:password@127.0.0.1:port/path, user and password percent-encoded."""
	return "pop3://%s:%s@127.0.0.1:%d/%s" % (quote(user, safe=""), quote(password, safe=""), port, path)


def curl(pop3, proxy, path="", user="alice", extra=()):
	need("curl")
	return run(["curl", "-sS", "--max-time", "120", *extra,
		curl_url(proxy.port, path, user, pop3.users[user])], CURL_TIMEOUT)


@pytest.mark.parametrize("n", NUMS)
def test_curl_retrieves_each_message_byte_exact(pop3, proxy, n):
	r = curl(pop3, proxy, str(n))
	assert r.returncode == 0
	# curl writes the message as received, unstuffed; for the message without a final newline
	# that includes the CRLF the server must add before the terminating dot.
	assert_same_bytes(r.stdout, pop3_bytes(pop3.messages[n - 1]), "curl's RETR %d" % n)


def test_curl_lists_messages(pop3, proxy):
	r = curl(pop3, proxy)
	assert r.returncode == 0
	assert r.stdout == b"".join(b"%d %d\r\n" % (n, len(m)) for n, m in enumerate(pop3.messages, 1))


def test_curl_uidl_matches_the_uidl_poplib_sees(pop3, proxy):
	r = curl(pop3, proxy, extra=("-X", "UIDL"))
	assert r.returncode == 0
	p = pop3.pop()
	want = b"".join(line + b"\r\n" for line in p.uidl()[1])
	p.quit()
	assert r.stdout == want
	assert len(r.stdout.splitlines()) == N


def test_curl_top_0(pop3, proxy):
	r = curl(pop3, proxy, extra=("-X", "TOP 2 0"))
	assert r.returncode == 0
	assert_same_bytes(r.stdout, messages.top_bytes(pop3.messages[1], 0), "curl's TOP 2 0")


def test_curl_dele_removes_the_message_upstream(pop3, proxy):
	u = pop3.fresh_user()
	r = curl(pop3, proxy, user=u.user, extra=("-X", "DELE 2", "-I"))
	assert r.returncode == 0
	ids = message_ids(u.messages)
	assert pop3.upstream_ids(u.user) == ids[:1] + ids[2:]


def test_curl_wrong_password_is_login_denied(pop3, proxy):
	need("curl")
	r = run(["curl", "-sS", "--max-time", "60", curl_url(proxy.port, "1", "alice",
		"wrong-password")], CURL_TIMEOUT)
	assert r.returncode == 67, "curl: expected 67 (login denied)"


@pytest.mark.parametrize("user", ["bob", "carol"])
def test_curl_with_awkward_passwords(pop3, proxy, user):
	# bob's has spaces, carol's  p a"ss\{5}wörd  (percent-encoded in the URL, sent as AUTH PLAIN).
	r = curl(pop3, proxy, user=user)
	assert r.returncode == 0
	assert len(r.stdout.splitlines()) == len(pop3.seeded[user])


def test_curl_retr_of_a_missing_message_fails(pop3, proxy):
	r = curl(pop3, proxy, "99")
	assert r.returncode != 0
	assert r.stdout == b""


# --- fetchmail ----------------------------------------------------------------------------------

def test_fetchmail_keep_gets_all_messages_and_second_run_nothing(pop3, proxy, tmp_path):
	home, out, rc = fetchmail_setup(tmp_path, proxy.port, "alice", pop3.password)
	r = fetchmail(home, rc)
	assert r.returncode == 0, "fetchmail's first run"
	got = numbered_files(out)
	assert len(got) == N
	for n, (data, m) in enumerate(zip(got, pop3.messages), 1):
		assert_same_bytes(strip_fetchmail_received(data), lf(pop3_bytes(m)), "message %d (%s)" % (
			n, NAMES[n - 1]))
	# .fetchids holds the server's UIDLs
	p = pop3.pop()
	uidls = [line.split()[1].decode() for line in p.uidl()[1]]
	p.quit()
	ids = (home / ".fetchids").read_text()
	assert all(u in ids for u in uidls), ids
	# Second run with the same .fetchids: nothing new (fetchmail exits 1: "no mail").
	r = fetchmail(home, rc)
	assert r.returncode == 1, "fetchmail's second run should find no new mail"
	assert len(os.listdir(out)) == N
	assert pop3.upstream_ids() == message_ids(pop3.messages), "keep: nothing deleted upstream"


def test_fetchmail_without_keep_deletes_upstream(pop3, proxy, tmp_path):
	u = pop3.fresh_user()
	home, out, rc = fetchmail_setup(tmp_path, proxy.port, u.user, u.password, keep=False)
	r = fetchmail(home, rc)
	assert r.returncode == 0
	got = numbered_files(out)
	assert_same_messages([strip_fetchmail_received(d) for d in got], u.messages)
	assert pop3.upstream(u.user) == []


# --- mpop ---------------------------------------------------------------------------------------

def test_mpop_keep_gets_all_messages_and_second_run_nothing(pop3, proxy, tmp_path):
	home = tmp_path / "mpop"
	r = mpop(home, proxy.port, "alice", pop3.password)
	assert r.returncode == 0
	# --received-header=off: mpop adds nothing; maildir files have LF line endings.
	got = mpop_messages(home)
	assert len(got) == N
	for n, (data, m) in enumerate(zip(got, pop3.messages), 1):
		assert_same_bytes(data, lf(pop3_bytes(m)), "message %d (%s)" % (n, NAMES[n - 1]))
	r = mpop(home, proxy.port, "alice", pop3.password)
	assert r.returncode == 0
	assert b"new: no messages" in r.stdout + r.stderr
	assert len(mpop_messages(home)) == N
	assert pop3.upstream_ids() == message_ids(pop3.messages)


def test_mpop_without_keep_deletes_upstream(pop3, proxy, tmp_path):
	u = pop3.fresh_user()
	home = tmp_path / "mpop"
	r = mpop(home, proxy.port, u.user, u.password, keep=False)
	assert r.returncode == 0
	assert_same_messages(mpop_messages(home), u.messages)
	assert pop3.upstream(u.user) == []


# --- getmail6 -----------------------------------------------------------------------------------

def getmail(home, port, user, password):
	need("getmail")
	out = home / "out"
	out.mkdir(parents=True, exist_ok=True)
	(home / "deliver.py").write_text(DELIVER)
	rc = home / "getmailrc"
	# MDA_external: getmail refuses to write a Maildir as root. read_all = false: only messages
	# whose UIDL is not in its oldmail file.
	rc.write_text(
		"[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\nport = %d\n"
		"username = %s\npassword = %s\n\n"
		"[destination]\ntype = MDA_external\npath = %s\narguments = (\"%s\", \"%s\")\n"
		"allow_root_commands = true\n\n"
		"[options]\nread_all = false\ndelete = false\nreceived = false\ndelivered_to = false\n"
		"verbose = 1\n" % (port, user, password, sys.executable, home / "deliver.py", out))
	return run(["getmail", "--getmaildir", str(home), "--rcfile", str(rc)],
		CLIENT_TIMEOUT, env=client_env(home))


def test_getmail_gets_all_messages_and_second_run_nothing(pop3, proxy, tmp_path):
	home = tmp_path / "getmail"
	r = getmail(home, proxy.port, "alice", pop3.password)
	assert r.returncode == 0
	got = numbered_files(home / "out")
	assert len(got) == N
	for n, (data, m) in enumerate(zip(got, pop3.messages), 1):
		# getmail prepends "Return-Path: <unknown>" (no envelope sender in POP3) and delivers LF.
		assert data.startswith(b"Return-Path: <unknown>\n"), data[:100]
		data = data[len(b"Return-Path: <unknown>\n"):]
		assert_same_bytes(data, lf(pop3_bytes(m)), "message %d (%s)" % (n, NAMES[n - 1]))
	r = getmail(home, proxy.port, "alice", pop3.password)
	assert r.returncode == 0
	assert b"0 messages (0 bytes) retrieved" in r.stdout + r.stderr
	assert len(os.listdir(home / "out")) == N
	assert pop3.upstream_ids() == message_ids(pop3.messages)
