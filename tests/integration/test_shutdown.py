"""SIGTERM drains ([server] shutdown_timeout): no new connection is accepted, a RETR that is
under way completes byte-exact and a QUIT's deletions are made upstream; the process exits as
soon as its last session has ended, or, with sessions still open, once the timeout is over
(dropping them changes nothing upstream); a second SIGTERM ends them at once, unless it
comes within 2 s of the first (the same stop told twice: systemd's and the master's)."""

import signal
import socket
import time

import pytest

from helpers import assert_same_bytes, wait_until
from messages import pop3_bytes
from pop3client import Pop3Raw, unstuff
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only


def refused(port):
	try:
		socket.create_connection(("127.0.0.1", port), timeout=5).close()
	except OSError:
		return True
	return False


def upstream_count(dovecot, user, password):
	"""How many messages the user's INBOX holds, as IMAP says now."""
	m = dovecot.imap(user, password)
	try:
		typ, data = m.select("INBOX", readonly=True)
		assert typ == "OK", data
		return int(data[0])
	finally:
		m.logout()


@pytest.mark.parametrize("workers", [None, 2], ids=["one-process", "master-2-workers"])
def test_a_retr_under_way_completes_and_quit_deletes(dovecot, tmp_path, workers):
	"""One process, or a master that passes the signals on to two workers: the worker without
	a session exits at once, the other when its session ends, then the master."""
	user, password, msgs = dovecot.fresh_user(include_big=True)
	big = max(range(len(msgs)), key=lambda i: len(msgs[i]))
	overrides = {"server.shutdown_timeout": 30}
	if workers:
		overrides["server.workers"] = workers
	pg = start_popgate(tmp_path, dovecot.imap_port, **overrides)
	try:
		c = Pop3Raw("127.0.0.1", pg.port)
		c.login(user, password)
		c.send(b"RETR %d\r\n" % (big + 1))
		assert c.readline().startswith(b"+OK")
		first = c.file.read(65536)		# the transfer is under way
		t0 = time.monotonic()
		# Twice, as systemd's SIGTERM to the cgroup and the master's forward arrive:
		# one stop, still a drain.
		pg.proc.send_signal(signal.SIGTERM)
		pg.proc.send_signal(signal.SIGTERM)
		assert wait_until(lambda: refused(pg.port), 5), "still accepting while draining"
		rest = c.read_multiline()
		body = unstuff((first + b"".join(rest)).splitlines(True))
		assert_same_bytes(body, pop3_bytes(msgs[big]), "RETR across the SIGTERM")
		assert c.cmd("DELE 1").startswith(b"+OK")
		assert c.quit().startswith(b"+OK")
		pg.proc.wait(10)
		assert pg.proc.returncode == 0, pg.log_tail()
		assert time.monotonic() - t0 < 20, "it waited for the timeout, not for the session"
		assert "open sessions may finish for up to 30 s" in pg.log(), pg.log_tail()
		assert upstream_count(dovecot, user, password) == len(msgs) - 1, \
			"QUIT's DELE was not made upstream"
	finally:
		pg.stop()


def test_open_sessions_end_at_the_timeout(dovecot, tmp_path):
	user, password, msgs = dovecot.fresh_user()
	pg = start_popgate(tmp_path, dovecot.imap_port, **{"server.shutdown_timeout": 2})
	try:
		c = Pop3Raw("127.0.0.1", pg.port)
		c.login(user, password)
		assert c.cmd("DELE 1").startswith(b"+OK")	# never QUIT: must not be made
		t0 = time.monotonic()
		pg.proc.send_signal(signal.SIGTERM)
		pg.proc.wait(10)
		took = time.monotonic() - t0
		assert 1.5 < took < 6, took
		assert pg.proc.returncode == 0, pg.log_tail()
		assert c.file.read() == b"", "the session was not closed"
		assert upstream_count(dovecot, user, password) == len(msgs), \
			"a dropped session deleted a message"
	finally:
		pg.stop()


def test_a_second_sigterm_ends_them_at_once(dovecot, tmp_path):
	user, password, _ = dovecot.fresh_user()
	pg = start_popgate(tmp_path, dovecot.imap_port, **{"server.shutdown_timeout": 60})
	try:
		c = Pop3Raw("127.0.0.1", pg.port)
		c.login(user, password)
		pg.proc.send_signal(signal.SIGTERM)
		assert wait_until(lambda: "may finish for up to 60 s" in pg.log(), 5), pg.log_tail()
		time.sleep(2.2)		# sooner, it would be the same stop told twice
		t0 = time.monotonic()
		pg.proc.send_signal(signal.SIGTERM)
		pg.proc.wait(10)
		assert time.monotonic() - t0 < 5
		assert pg.proc.returncode == 0, pg.log_tail()
		assert "again: open sessions end now" in pg.log(), pg.log_tail()
		c.close()
	finally:
		pg.stop()
