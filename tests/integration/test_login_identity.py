"""Who is logging in, as the logs, the [IN-USE] check and the failure delay see it (issue 12
points 9 and 10), against a scripted fake IMAP server (fakeimap.py: any user logs in, and the
login_* scenarios refuse), which lets a test choose user names and refusals freely.

  - logs cannot be forged: a user name such as "x result=ok bytes_out=0" or a server's BYE
    text with quotes and key=value in it stays inside its own field of the session line
  - one canonical user name ([cache] username = lower by default, like Dovecot's %Lu): "ALICE"
    is [IN-USE] while "alice" holds the mailbox, and both use alice's UIDL cache rows
  - the failure delay cannot be reset by an attacker's own successful login from the address
"""

import re
import sqlite3
import time

import pytest

from helpers import plain_ir
from pop3client import Pop3Raw
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only

# key=value fields of a log line; a value is a bare word or a "quoted string" with \x escapes.
FIELD = re.compile(r'(?:^|\s)([A-Za-z_]+)=("(?:[^"\\]|\\.)*"|\S*)')


def session_lines(pg):
	"""The end-of-session lines of popgate's log that name a user (not start_popgate()'s
	readiness check, user=-): (raw line, [(key, value)])."""
	out = []
	for line in pg.log().splitlines():
		if " info: session=" in line and " duration_ms=" in line and " user=- " not in line:
			out.append((line, FIELD.findall(line.split(" info: ", 1)[1])))
	return out


@pytest.fixture
def gate(request, fake, tmp_path):
	started = []

	def make(**overrides):
		kw = {"limits.auth_fail_delay_ms": 0, "limits.upstream_timeout": 5}
		kw.update(overrides)
		p = start_popgate(tmp_path / ("pg%d" % len(started)), fake.port, **kw)
		started.append(p)
		return p
	yield make
	rep = getattr(request.node, "rep_call", None)
	for p in started:
		if rep is not None and rep.failed:
			print("--- popgate log tail:\n" + p.log_tail(80))
			print("--- fake IMAP transcript:\n" + fake.transcript())
		p.stop()


# --- point 9: logs cannot be forged --------------------------------------------------------

FORGING_USERS = ["x result=ok bytes_out=0", 'x" result="ok', "x\tresult=ok"]


@pytest.mark.parametrize("user", FORGING_USERS, ids=["spaces", "quote", "tab"])
def test_user_name_cannot_add_fields_to_the_session_line(gate, user):
	pg = gate()
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert c.cmd(b"USER " + user.encode()).startswith(b"+OK")
		assert c.cmd("PASS pw").startswith(b"+OK")
		assert c.cmd("STAT").startswith(b"+OK 3 ")
		assert c.quit().startswith(b"+OK")
	pg.stop()
	lines = session_lines(pg)
	assert len(lines) == 1, lines
	line, fields = lines[0]
	keys = [k for k, _ in fields]
	assert len(keys) == len(set(keys)), "fields repeated: %s" % line
	assert dict(fields)["result"] == "ok", line
	assert dict(fields)["bytes_out"] != "0", line
	assert "\t" not in line, line
	# No log line has the name raw (the login line, the session line: escaped, one word).
	assert user not in pg.log()
	assert "user=x\\x" in line, line


def test_server_words_cannot_add_fields_to_the_session_line(gate, fake):
	"""login_bye answers the login with '* BYE Going down" result=ok bytes_out=0 x=" (fake)'."""
	pg = gate()
	with Pop3Raw("127.0.0.1", pg.port) as c:
		assert c.cmd("AUTH PLAIN " + plain_ir("login_bye", "pw")).startswith(b"-ERR [SYS/TEMP]")
		assert c.quit().startswith(b"+OK")
	pg.stop()
	lines = session_lines(pg)
	assert len(lines) == 1, lines
	line, fields = lines[0]
	keys = [k for k, _ in fields]
	assert len(keys) == len(set(keys)), "fields repeated: %s" % line
	assert keys[-1] == "upstream_error" and "Going down" in dict(fields)["upstream_error"], line
	# And no other line of the log carries the server's quote raw.
	assert 'Going down" result=ok' not in pg.log()


# --- point 9: one canonical user name --------------------------------------------------------

def test_in_use_applies_to_the_same_user_in_other_case(gate, tmp_path):
	pg = gate()
	with Pop3Raw("127.0.0.1", pg.port) as first:
		first.login("alice", "pw")
		with Pop3Raw("127.0.0.1", pg.port) as second:
			assert second.cmd("USER ALICE").startswith(b"+OK")
			r = second.cmd("PASS pw")
			assert r.startswith(b"-ERR [IN-USE]"), r
		assert first.quit().startswith(b"+OK")
	# Once alice is gone, ALICE logs in, with alice's UIDL cache rows.
	with Pop3Raw("127.0.0.1", pg.port) as c:
		c.login("ALICE", "pw")
		assert c.quit().startswith(b"+OK")
	db = sqlite3.connect(str(tmp_path / "pg0" / "uidl.sqlite"))
	users = sorted(r[0] for r in db.execute("SELECT DISTINCT user FROM uidl"))
	db.close()
	assert users == ["alice"], users


def test_username_keep_tells_cases_apart(gate, tmp_path):
	pg = gate(**{"cache.username": "keep"})
	with Pop3Raw("127.0.0.1", pg.port) as first:
		first.login("alice", "pw")
		with Pop3Raw("127.0.0.1", pg.port) as second:
			second.login("ALICE", "pw")
			assert second.quit().startswith(b"+OK")
		assert first.quit().startswith(b"+OK")
	db = sqlite3.connect(str(tmp_path / "pg0" / "uidl.sqlite"))
	users = sorted(r[0] for r in db.execute("SELECT DISTINCT user FROM uidl"))
	db.close()
	assert users == ["ALICE", "alice"], users


# --- point 10: a delay an attacker cannot reset ------------------------------------------------

def test_own_success_from_the_address_does_not_reset_the_delay_for_other_users(gate, fake):
	"""Guesses at the victim, a login to the attacker's own account from the same address,
	more guesses: they wait longer and longer, the success notwithstanding."""
	fake.scenario_of_user["victim"] = "login_authfailed"
	pg = gate(**{"limits.auth_fail_delay_ms": 300, "limits.auth_fail_delay_max_ms": 5000,
		"limits.max_auth_failures": 10})
	src = "127.0.4.1"

	def guess(i):
		with Pop3Raw("127.0.0.1", pg.port, source=src) as c:
			t0 = time.monotonic()
			r = c.cmd("AUTH PLAIN " + plain_ir("victim", "guess-%d" % i))
			assert r.startswith(b"-ERR [AUTH]"), r
			return time.monotonic() - t0

	guess(1)	# waits 300 ms
	guess(2)	# waits 600 ms
	with Pop3Raw("127.0.0.1", pg.port, source=src) as c:
		c.login("mallory", "his-own-password")
		assert c.quit().startswith(b"+OK")
	took = guess(3)
	delays = [int(d) for d in re.findall(r"login of user=victim failed: .*\(delay (\d+) ms\)",
		pg.log())]
	assert delays == [300, 600, 1200], delays
	assert took >= 1.2, took
	# Another address is not delayed by them.
	with Pop3Raw("127.0.0.1", pg.port, source="127.0.4.2") as c:
		t0 = time.monotonic()
		assert c.cmd("AUTH PLAIN " + plain_ir("victim", "x")).startswith(b"-ERR [AUTH]")
		assert time.monotonic() - t0 < 1.2
