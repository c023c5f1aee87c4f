"""What an upstream's login refusal means to the POP3 user (issue 12 point 5; RFC 5530 codes,
RFC 3206 POP3 codes), against a scripted fake IMAP server (fakeimap.py, the login_* scenarios:
Dovecot cannot be made to answer LOGIN with UNAVAILABLE, INUSE, BAD or a BYE on demand).

  the credentials (AUTHENTICATIONFAILED, and a NO with no code: old servers send no codes)
      -> -ERR [AUTH] after the growing delay; the same password again is not sent upstream
  the server's trouble (UNAVAILABLE, SERVERBUG, LIMIT, OVERQUOTA, a BAD, a BYE)
      -> -ERR [SYS/TEMP] at once; the same password retried reaches the upstream again, and
         the delay does not grow
  INUSE -> -ERR [IN-USE] at once, nothing remembered, no delay

Each test's client connects from its own 127.0.0.x address, so that delays do not mix.
"""

import re
import time

import pytest

from helpers import plain_ir
from pop3client import Pop3Raw
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only

DELAY_MS = 400		# limits.auth_fail_delay_ms of these tests


@pytest.fixture
def pg(request, fake, tmp_path):
	p = start_popgate(tmp_path / "pg", fake.port, **{
		"limits.auth_fail_delay_ms": DELAY_MS, "limits.auth_fail_delay_max_ms": 10000,
		"limits.max_auth_failures": 10, "limits.upstream_timeout": 5})
	yield p
	rep = getattr(request.node, "rep_call", None)
	if rep is not None and rep.failed:
		print("--- popgate log tail:\n" + p.log_tail(80))
		print("--- fake IMAP transcript:\n" + fake.transcript())
	p.stop()


_source = [10]


@pytest.fixture
def source():
	"""A 127.0.0.x address of this test's own (loopback answers all of 127/8)."""
	_source[0] += 1
	return "127.0.3.%d" % _source[0]


def upstream_logins(fake, user):
	"""How many upstream connections tried to log in as user."""
	return len([c for c in fake.conns if c.user == user])


def login_timed(pg, source, user, password):
	"""AUTH PLAIN on a new connection: (reply, seconds)."""
	with Pop3Raw("127.0.0.1", pg.port, source=source) as c:
		t0 = time.monotonic()
		r = c.cmd("AUTH PLAIN " + plain_ir(user, password))
		return r, time.monotonic() - t0


def logged_delays(pg, user):
	return [int(d) for d in re.findall(r"login of user=%s failed: .*\(delay (\d+) ms\)" % user,
		pg.log())]


TEMPORARY = ["login_unavailable", "login_serverbug", "login_limit", "login_overquota",
	"login_bad", "login_bye"]


@pytest.mark.parametrize("scenario", TEMPORARY)
def test_server_trouble_at_login_is_sys_temp_not_remembered_not_delayed(pg, fake, source,
		scenario):
	for i in range(2):
		r, took = login_timed(pg, source, scenario, "same-password")
		assert r.startswith(b"-ERR [SYS/TEMP]"), (i, r)
		assert took < DELAY_MS / 1000, "a temporary failure waited %.2f s" % took
	# Not remembered: the same password, retried at once, went upstream again.
	assert upstream_logins(fake, scenario) == 2, fake.transcript()
	assert "not sent again" not in pg.log()
	# No delay growth: a wrong password from the same address now waits the base delay only.
	r, took = login_timed(pg, source, "login_authfailed", "wrong")
	assert r.startswith(b"-ERR [AUTH]"), r
	assert logged_delays(pg, "login_authfailed") == [DELAY_MS]


@pytest.mark.parametrize("scenario", ["login_authfailed", "login_no_code"])
def test_refused_credentials_are_auth_remembered_and_delayed(pg, fake, source, scenario):
	# login_no_code: "NO Server busy" without a code is what an old server says to a wrong
	# password too; it is [AUTH], as documented (README, the PASS row).
	took = []
	for i in range(2):
		r, t = login_timed(pg, source, scenario, "same-wrong-password")
		assert r.startswith(b"-ERR [AUTH]"), (i, r)
		took.append(t)
	assert upstream_logins(fake, scenario) == 1, fake.transcript()	# the retry: not sent again
	assert logged_delays(pg, scenario) == [DELAY_MS, 2 * DELAY_MS]
	assert took[0] >= DELAY_MS / 1000 and took[1] >= 2 * DELAY_MS / 1000, took


def test_upstream_inuse_at_login_is_in_use_not_remembered_not_delayed(pg, fake, source):
	for i in range(2):
		r, took = login_timed(pg, source, "login_inuse", "right-password")
		assert r.startswith(b"-ERR [IN-USE]"), (i, r)
		assert took < DELAY_MS / 1000, took
		assert b"fake" not in r, "the server's words are not the client's business: %r" % r
	assert upstream_logins(fake, "login_inuse") == 2, fake.transcript()
	r, took = login_timed(pg, source, "login_authfailed", "wrong")
	assert logged_delays(pg, "login_authfailed") == [DELAY_MS]


def test_bye_during_login_then_a_good_login_on_the_same_connection(pg, fake, source):
	"""A BYE in answer to the login is the server going away: [SYS/TEMP], and the session
	goes on; the next login works."""
	with Pop3Raw("127.0.0.1", pg.port, source=source) as c:
		r = c.cmd("AUTH PLAIN " + plain_ir("login_bye", "pw"))
		assert r.startswith(b"-ERR [SYS/TEMP]"), r
		r = c.cmd("AUTH PLAIN " + plain_ir("ok-user", "pw"))
		assert r.startswith(b"+OK"), r
		assert c.cmd("STAT").startswith(b"+OK 3 ")
		assert c.quit().startswith(b"+OK")
	assert logged_delays(pg, "login_bye") == []
