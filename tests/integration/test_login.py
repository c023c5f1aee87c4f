"""Login policy of popgate: a wrong password retried by a client reaches the upstream once,
the UIDL cache, and the refusal to serve sessions as root."""

import os
import sqlite3
import subprocess

import pytest

from helpers import plain_ir
from pop3client import Pop3Raw
from popgate import popgate_check_config, popgate_ini, start_popgate

pytestmark = pytest.mark.popgate_only


def test_wrong_password_retried_three_ways_reaches_upstream_once(pop3, tmp_path):
	pg = start_popgate(tmp_path / "pg", pop3.dovecot.imap_port, **{"limits.auth_fail_delay_ms": 0})
	try:
		replies = []
		# Thunderbird's round: USER/PASS, AUTH PLAIN, then USER/PASS again on new connections.
		for how in ("pass", "auth", "pass"):
			with Pop3Raw("127.0.0.1", pg.port) as c:
				if how == "pass":
					c.cmd("USER alice")
					replies.append(c.cmd("PASS wrong-password-1"))
				else:
					replies.append(c.cmd("AUTH PLAIN " + plain_ir("alice", "wrong-password-1")))
		for r in replies:
			assert r.startswith(b"-ERR [AUTH]"), replies
		log = pg.log()
		assert log.count("upstream login refused") == 1, log
		assert log.count("not sent again") == 2, log
		# The right password is not affected.
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login("alice", pop3.password)
			assert c.cmd("STAT").startswith(b"+OK %d " % len(pop3.messages))
	finally:
		pg.stop()


def test_uidls_are_dovecots_default_and_recorded_in_the_cache(pop3, tmp_path):
	p = pop3.pop()
	uidls = [l.split()[1].decode() for l in p.uidl()[1]]
	p.quit()
	m = pop3.imap()
	typ, data = m.select("INBOX", readonly=True)
	typ, data = m.response("UIDVALIDITY")
	uidvalidity = int(data[0])
	uids = [u.uid for u in pop3.upstream()]
	m.logout()
	# Dovecot's pop3_uidl_format default %08Xu%08Xv: migrating from its POP3 changes nothing.
	assert uidls == ["%08x%08x" % (uid, uidvalidity) for uid in uids]
	db = sqlite3.connect(str(tmp_path / "popgate" / "uidl.sqlite"))
	rows = db.execute("SELECT uid, uidl FROM uidl WHERE user='alice' ORDER BY uid").fetchall()
	db.close()
	assert [r[1] for r in rows] == uidls


def test_a_stored_uidl_is_served_instead_of_the_derived_one(pop3, tmp_path):
	u = pop3.fresh_user()
	pg = start_popgate(tmp_path / "pg", pop3.dovecot.imap_port)
	try:
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login(u.user, u.password)
			first = c.cmd("UIDL 1")
			c.quit()
		db = sqlite3.connect(str(tmp_path / "pg" / "uidl.sqlite"))
		db.execute("UPDATE uidl SET uidl='imported-from-old-pop3' WHERE user=? AND uid="
			"(SELECT MIN(uid) FROM uidl WHERE user=?)", (u.user, u.user))
		db.commit()
		db.close()
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login(u.user, u.password)
			assert c.cmd("UIDL 1").rstrip() == b"+OK 1 imported-from-old-pop3", first
			c.quit()
	finally:
		pg.stop()


def test_unreadable_cache_still_serves_mail_with_derived_uidls(pop3, tmp_path):
	pg = start_popgate(tmp_path / "pg", pop3.dovecot.imap_port,
		**{"cache.path": "/nonexistent-dir/popgate/uidl.sqlite"})
	try:
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login("alice", pop3.password)
			assert c.cmd("STAT").startswith(b"+OK %d " % len(pop3.messages))
			assert c.cmd("UIDL 1").startswith(b"+OK 1 00000001")
			c.quit()
		assert "UIDL cache unavailable" in pg.log()
	finally:
		pg.stop()


def login_uidl1(pg, pop3):
	"""A whole session of alice: (STAT reply, UIDL 1 reply)."""
	with Pop3Raw("127.0.0.1", pg.port) as c:
		c.login("alice", pop3.password)
		stat, uidl = c.cmd("STAT"), c.cmd("UIDL 1")
		assert c.quit().startswith(b"+OK")
	return stat, uidl


def user_uidls(pg, u):
	"""The UIDL listing of a whole session of user u."""
	with Pop3Raw("127.0.0.1", pg.port) as c:
		c.login(u.user, u.password)
		status, lines = c.cmd_multi("UIDL")
		assert status.startswith(b"+OK"), status
		assert c.quit().startswith(b"+OK")
	return [l.split()[1] for l in lines]


@pytest.mark.parametrize("trouble", ["deleted", "garbage", "locked"])
def test_a_cache_file_in_trouble_still_serves_mail(pop3, tmp_path, trouble):
	"""The cache file deleted while popgate runs, overwritten with random bytes, or held
	locked by another process: every session still logs in and lists the mailbox with the
	same UIDLs, and a file that cannot be read (or written) is named in the log. popgate
	never rewrites or removes a file it cannot read (an operator's to look at); a lock once
	released, the cache records again."""
	pg = start_popgate(tmp_path / "pg", pop3.dovecot.imap_port)
	path = tmp_path / "pg" / "uidl.sqlite"
	try:
		stat, uidl = login_uidl1(pg, pop3)
		assert stat.startswith(b"+OK %d " % len(pop3.messages))
		assert (os.stat(path).st_mode & 0o777) == 0o600, oct(os.stat(path).st_mode)
		lock = None
		if trouble == "deleted":
			for suffix in ("", "-wal", "-shm"):
				if os.path.exists(str(path) + suffix):
					os.unlink(str(path) + suffix)
		elif trouble == "garbage":
			pg.stop()
			for suffix in ("-wal", "-shm"):
				if os.path.exists(str(path) + suffix):
					os.unlink(str(path) + suffix)
			path.write_bytes(os.urandom(64 * 1024))
			pg.start()
		else:
			lock = sqlite3.connect(str(path), timeout=0)
			lock.execute("BEGIN EXCLUSIVE")
		again = login_uidl1(pg, pop3)
		assert again == (stat, uidl), "a cache in trouble changed what the client sees"
		# Deleted: SQLite goes on with the unlinked file it has open; locked by a writer: a
		# login whose messages the cache knows only reads (WAL lets it).
		if trouble == "garbage":
			assert "UIDL cache unavailable" in pg.log(), pg.log_tail()
			assert path.read_bytes()[:16] != b"SQLite format 3\x00", "popgate replaced the file"
		if lock is not None:
			# A user new to the cache must be recorded, which the lock forbids: served with
			# derived UIDLs, said in the log; once the lock is gone, recorded.
			u = pop3.fresh_user()
			first = user_uidls(pg, u)
			assert "UIDL cache unavailable" in pg.log(), pg.log_tail()
			lock.rollback()
			lock.close()
			before = pg.log().count("UIDL cache unavailable")
			assert user_uidls(pg, u) == first
			assert pg.log().count("UIDL cache unavailable") == before, pg.log_tail()
			db = sqlite3.connect(str(path))
			rows = db.execute("SELECT COUNT(*) FROM uidl WHERE user=?", (u.user,)).fetchone()[0]
			db.close()
			assert rows == len(first), "the released cache did not record %s" % u.user
	finally:
		pg.stop()


def test_root_without_service_user_is_refused(tmp_path):
	ini = popgate_ini(tmp_path, 1, 1, **{"server.allow_root": None})
	path = tmp_path / "root.ini"
	path.write_text(ini)
	if os.geteuid() != 0:
		pytest.skip("needs root")
	r = subprocess.run([os.environ["POPGATE_BIN"], "-c", str(path)], stdout=subprocess.PIPE,
		stderr=subprocess.STDOUT, timeout=10)
	assert r.returncode == 1
	assert b"refusing to serve sessions as root" in r.stdout
