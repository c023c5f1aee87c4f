"""Limits an operator expects of one popgate, not of each of its workers (gateway/shared.h):
with [server] workers = 2 in front of the real Dovecot, [limits] max_per_address counts the
address's connections on both workers, [IN-USE] refuses a user's second session whichever
worker each lands on, the failed-login delay grows with failures on either worker, and a
worker killed with -9 leaves neither a locked mailbox nor counted connections behind.

Which worker a connection lands on is the kernel's (SO_REUSEPORT hashes the source port):
the tests open enough connections to see both, and tell them apart by the pid in each log
line and the worker= of the connect lines."""

import os
import re
import signal

import pytest

from helpers import assert_ok, wait_until, worker_of, worker_pids
from pop3client import Pop3Raw
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only

TOO_MANY = b"-ERR [SYS/TEMP] Too many connections from your address.\r\n"


def wait_worker_of(pg, c):
	return wait_until(lambda: worker_of(pg, c.sock), 5, "no connect line for a session")


def refusing_pids(pg):
	"""The pids that logged a max_per_address refusal."""
	return {int(p) for p in re.findall(
		r"popgate\[(\d+)\] warn: client=127\.0\.0\.1 has \d+ connections, the limit", pg.log())}


def gate(dovecot, tmp_path, **kw):
	cfg = {"server.workers": 2, "limits.auth_fail_delay_ms": 0}
	cfg.update(kw)
	return start_popgate(tmp_path / "pg", dovecot.imap_port, **cfg)


def test_max_per_address_counts_both_workers(dovecot, tmp_path):
	"""max_per_address = 3: three sessions from 127.0.0.1 are served, every further one is
	refused, by both workers (each holds fewer than 3: counted per worker, some would be
	let in); once one of the three ends, a new one is served again."""
	pg = gate(dovecot, tmp_path, **{"limits.max_per_address": 3})
	held, refused = [], []
	try:
		pids = worker_pids(pg, 2)
		for _ in range(30):
			c = Pop3Raw("127.0.0.1", pg.port, timeout=10)
			if c.greeting.startswith(b"+OK"):
				held.append(c)
			else:
				refused.append(c.greeting)
				c.close()
		assert len(held) == 3, "%d sessions served with max_per_address = 3" % len(held)
		assert refused and all(r == TOO_MANY for r in refused), refused[:3]
		assert refusing_pids(pg) == set(pids.values()), (
			"refusals came from %r, the workers are %r" % (refusing_pids(pg), pids))

		# One ends (QUIT): its place is free for a connection on either worker.
		assert_ok(held.pop(0).quit())
		def one_more():
			c = Pop3Raw("127.0.0.1", pg.port, timeout=10)
			if c.greeting.startswith(b"+OK"):
				return c
			c.close()
			return None
		held.append(wait_until(one_more, 5, "no session served after one of three ended"))
		with Pop3Raw("127.0.0.1", pg.port, timeout=10) as c:
			assert c.greeting == TOO_MANY, c.greeting
	finally:
		for c in held:
			c.close()
		pg.stop()


def test_in_use_whichever_worker(dovecot, tmp_path):
	"""bob logged in on one worker: a second session of his gets -ERR [IN-USE] on that worker
	and on the other; once the first QUITs, the next login works."""
	user, password = "bob", dovecot.users["bob"]
	pg = gate(dovecot, tmp_path, **{"limits.max_per_address": 1000})
	first = None
	try:
		worker_pids(pg, 2)
		first = Pop3Raw("127.0.0.1", pg.port, timeout=10)
		first.login(user, password)
		wait_worker_of(pg, first)
		seen = {}
		for _ in range(40):
			with Pop3Raw("127.0.0.1", pg.port, timeout=10) as c:
				assert_ok(c.cmd("USER " + user))
				r = c.cmd("PASS " + password)
				assert r.startswith(b"-ERR [IN-USE]"), r
				w = wait_worker_of(pg, c)
				seen[w] = seen.get(w, 0) + 1
			if len(seen) == 2:
				break
		assert sorted(seen) == [1, 2], "second sessions only on worker(s) %r" % seen
		status = first.cmd("STAT")
		assert status.startswith(b"+OK"), status	# the first one still has the mailbox
		assert_ok(first.quit())
		first = None

		def login_again():
			with Pop3Raw("127.0.0.1", pg.port, timeout=10) as c:
				assert_ok(c.cmd("USER " + user))
				r = c.cmd("PASS " + password)
				if not r.startswith(b"+OK"):
					assert r.startswith(b"-ERR [IN-USE]"), r
					return None
				w = wait_worker_of(pg, c)
				assert_ok(c.quit())
				return w
		wait_until(login_again, 5, "no login after the holder QUIT")
		# and it stays free, whichever worker the next ones land on
		workers = {login_again() for _ in range(12)}
		assert None not in workers, "[IN-USE] after the holder and its successors quit"
	finally:
		if first is not None:
			first.close()
		pg.stop()


def test_killed_worker_leaves_no_lock_and_no_count(dovecot, tmp_path):
	"""carol's session and a second connection from 127.0.0.1, max_per_address = 2: a third
	is refused. kill -9 of carol's worker: the master frees what it held, carol logs in
	again at once, and 127.0.0.1 has both its places back."""
	user, password = "carol", dovecot.users["carol"]
	pg = gate(dovecot, tmp_path, **{"limits.max_per_address": 2})
	conns = []
	try:
		pids = worker_pids(pg, 2)
		a = Pop3Raw("127.0.0.1", pg.port, timeout=10)
		conns.append(a)
		a.login(user, password)
		b = Pop3Raw("127.0.0.1", pg.port, timeout=10)
		conns.append(b)
		assert b.greeting.startswith(b"+OK"), b.greeting
		with Pop3Raw("127.0.0.1", pg.port, timeout=10) as c:
			assert c.greeting == TOO_MANY, c.greeting
		victim = pids[wait_worker_of(pg, a)]
		os.kill(victim, signal.SIGKILL)
		wait_until(lambda: "(pid %d) was killed by signal 9" % victim in pg.log(), 10,
			lambda: "the master did not see the kill:\n" + pg.log_tail())
		# The master only notes the reaped pid; the next worker to lock the table (the
		# restarted one, as it starts) frees its entries and says so.
		wait_until(lambda: "pid %d ended holding" % victim in pg.log(), 10)
		freed = re.findall(r"pid %d ended holding (\d+) entries" % victim, pg.log())
		assert freed == ["2"], "entries freed for the killed worker: %r\n%s" % (
			freed, pg.log_tail())
		# b: gone with the victim, or still served by the other worker; either way it ends
		b.close()
		a.close()
		conns.clear()

		def two_places():
			got = []
			for _ in range(2):
				c = Pop3Raw("127.0.0.1", pg.port, timeout=10)
				got.append(c)
				if not c.greeting.startswith(b"+OK"):
					for g in got:
						g.close()
					return None
			return got
		conns += wait_until(two_places, 5, lambda: "127.0.0.1's places not back:\n" +
			pg.log_tail())
		r = conns[0].cmd("USER " + user)
		assert_ok(r)
		r = conns[0].cmd("PASS " + password)
		assert r.startswith(b"+OK"), "carol after her worker was killed: %r" % r
		with Pop3Raw("127.0.0.1", pg.port, timeout=10) as c:
			assert c.greeting == TOO_MANY, c.greeting	# still counted: 2 of 2
		assert_ok(conns[0].quit())
	finally:
		for c in conns:
			c.close()
		pg.stop()


def test_failed_login_delay_grows_over_both_workers(dovecot, tmp_path):
	"""Wrong passwords from 127.0.0.1, one per connection, alternating between the workers:
	the delay doubles at each, as it would on one worker (per worker memory would give
	100, 100, 200, 200)."""
	pg = gate(dovecot, tmp_path, **{"limits.max_per_address": 1000,
		"limits.auth_fail_delay_ms": 100, "limits.auth_fail_delay_max_ms": 10000})
	try:
		worker_pids(pg, 2)
		want_worker, used = None, []
		for attempt in range(60):
			if len(used) == 4:
				break
			with Pop3Raw("127.0.0.1", pg.port, timeout=10) as c:
				w = wait_worker_of(pg, c)
				if want_worker is not None and w != want_worker:
					continue
				assert_ok(c.cmd("USER alice"))
				r = c.cmd("PASS wrong-%d" % attempt)	# a new secret: no refused-pair shortcut
				assert r.startswith(b"-ERR [AUTH]"), r
				used.append(w)
				want_worker = 2 if w == 1 else 1
		assert len(used) == 4, used
		delays = [int(d) for d in re.findall(
			r"login of user=alice failed: .*\(delay (\d+) ms\)", pg.log())]
		assert delays == [100, 200, 400, 800], (delays, used)
	finally:
		pg.stop()
