"""The listing cache (issue 15 item 5, RFC 7162 CONDSTORE): a poll whose SELECT shows the
mailbox unchanged is answered from the user's last listing, with no UID FETCH upstream, and
every poll's STAT/LIST/UIDL stays exactly what a fresh full listing gives.

Real Dovecot (it offers CONDSTORE once logged in). Between polls through popgate, another IMAP
client appends, sets \\Seen, sets \\Deleted, expunges. After each change the POP3 answers are
compared with the test's own `UID FETCH 1:* (UID RFC822.SIZE)` on Dovecot, and what popgate
sent upstream is read off the wire by a recording relay between popgate and Dovecot (an
observer popgate does not know about), so "no FETCH" and "only the new range" are proven
from outside, and the octets the upstream sent per poll are counted there and checked against
Dovecot's own logout line (in=/out=)."""

import re
import threading
import time

import pytest

from helpers import wait_until
from pop3client import Pop3Raw
from popgate import start_popgate
from relay import TcpRelay

pytestmark = pytest.mark.popgate_only


class WireRelay(TcpRelay):
	"""Keeps, per connection, what the client sent and how many octets the server sent back."""

	def __init__(self, port):
		self.conns = []		# [{"sent": bytearray, "got": int, "done": Event}]
		super().__init__(port, opened=self._opened, seen=self._seen, ended=self._ended)

	def _opened(self):
		rec = {"sent": bytearray(), "got": 0, "done": threading.Event()}
		with self.lock:
			self.conns.append(rec)
		return rec

	def _seen(self, rec, up, data):
		with self.lock:
			if up:
				rec["sent"] += data
			else:
				rec["got"] += len(data)

	def _ended(self, rec, up):
		if not up:
			rec["done"].set()

	def count(self):
		with self.lock:
			return len(self.conns)


def reference(dovecot, user):
	"""The fresh full listing, by the test's own IMAP: [(uid, size)] ascending, UIDVALIDITY."""
	n = len(dovecot_logouts(dovecot, user))
	m = dovecot.imap(user)
	try:
		typ, _ = m.select("INBOX", readonly=True)
		assert typ == "OK"
		uidvalidity = int(m.response("UIDVALIDITY")[1][0])
		typ, data = m.uid("FETCH", "1:*", "(UID RFC822.SIZE)")
		assert typ == "OK"
		out = []
		for d in data:
			if d is None:
				continue
			line = d if isinstance(d, bytes) else d[0]
			mt = re.search(rb"UID (\d+)", line)
			ms = re.search(rb"RFC822\.SIZE (\d+)", line)
			if mt and ms:
				out.append((int(mt.group(1)), int(ms.group(1))))
	finally:
		m.logout()
	# Dovecot has written this session's line: the next line of the user is another's.
	assert wait_until(lambda: len(dovecot_logouts(dovecot, user)) > n, 5)
	return sorted(out), uidvalidity


def poll(pg, relay, user, password):
	"""One POP3 poll through popgate (login, STAT, LIST, UIDL, QUIT): what it answered and
	what popgate sent upstream, and how many octets the upstream sent, for that session."""
	before = relay.count()
	with Pop3Raw("127.0.0.1", pg.port) as c:
		c.login(user, password)
		stat = c.cmd("STAT")
		status, lst = c.cmd_multi("LIST")
		assert status.startswith(b"+OK"), status
		status, uidl = c.cmd_multi("UIDL")
		assert status.startswith(b"+OK"), status
		assert c.quit().startswith(b"+OK")
	# The session's upstream connection (popgate's capability probe may open another).
	wait_until(lambda: all(r["done"].is_set() for r in relay.conns[before:]), 10)
	recs = [r for r in relay.conns[before:] if b" SELECT " in r["sent"]]
	assert len(recs) == 1, "one upstream session per poll"
	rec = recs[0]
	assert rec["done"].is_set(), "popgate's upstream connection did not end"
	strip = lambda lines: [l.rstrip(b"\r\n") for l in lines]	# noqa: E731
	return stat.rstrip(), strip(lst), strip(uidl), bytes(rec["sent"]), rec["got"]


def expected(ref, uidvalidity):
	stat = ("+OK %d %d" % (len(ref), sum(s for _, s in ref))).encode()
	lst = [("%d %d" % (i, s)).encode() for i, (_, s) in enumerate(ref, 1)]
	uidl = [("%d %08x%08x" % (i, u, uidvalidity)).encode() for i, (u, _) in enumerate(ref, 1)]
	return stat, lst, uidl


def dovecot_logouts(dovecot, user):
	"""Dovecot's own count of a session's octets: "Logged out in=N out=M" lines of user."""
	with open(dovecot.log_path, errors="replace") as f:
		return [(int(a), int(b)) for a, b in re.findall(
			r"imap\(%s\).*Logged out in=(\d+) out=(\d+)" % re.escape(user), f.read())]


def commands(sent):
	"""The IMAP commands popgate sent, tags dropped, the credentials masked."""
	out = []
	for line in sent.split(b"\r\n"):
		parts = line.split(b" ", 2)
		if len(parts) >= 2:
			verb = b" ".join(parts[1:])
			if parts[1].upper() in (b"LOGIN", b"AUTHENTICATE"):
				verb = parts[1] + b" <hidden>"
			out.append(verb.decode(errors="replace"))
	return out


def fetches(cmds):
	"""The listing FETCHes (a new message's content key is read by another one)."""
	return [c for c in cmds if "RFC822.SIZE" in c]


def test_every_poll_equals_a_full_listing_and_an_unchanged_one_fetches_nothing(dovecot, tmp_path):
	user, password, _ = dovecot.fresh_user()
	relay = WireRelay(dovecot.imap_port)
	pg = start_popgate(tmp_path / "pg", relay.port)
	log = []	# (what changed, listing FETCHes, upstream octets in, octets out)
	server_side = {}	# what changed: Dovecot's (in=, out=) of popgate's session

	def check(what, want_fetches):
		ref, uidvalidity = reference(dovecot, user)
		n1 = len(dovecot_logouts(dovecot, user))
		stat, lst, uidl, sent, got = poll(pg, relay, user, password)
		assert wait_until(lambda: len(dovecot_logouts(dovecot, user)) > n1, 5)
		server_side[what] = dovecot_logouts(dovecot, user)[n1]
		want = expected(ref, uidvalidity)
		assert (stat, lst, uidl) == (want[0], want[1], want[2]), \
			"%s: popgate's listing differs from a full FETCH\n%s" % (what, pg.log_tail())
		cmds = commands(sent)
		f = fetches(cmds)
		assert want_fetches(f), "%s: popgate sent %r" % (what, cmds)
		if want_fetches is none:
			assert not [c for c in cmds if "FETCH" in c.upper()], cmds
		log.append((what, f, got, len(sent)))
		return ref, got, cmds

	def imap_change(fn):
		n = len(dovecot_logouts(dovecot, user))
		m = dovecot.imap(user)
		try:
			assert m.select("INBOX")[0] == "OK"
			fn(m)
		finally:
			m.logout()
		# Its line is written before the next check counts lines.
		assert wait_until(lambda: len(dovecot_logouts(dovecot, user)) > n, 5)

	def append(m, tag):
		typ, _ = m.append("INBOX", None, None, ("Message-ID: <%s@example.net>\r\nSubject: %s\r\n"
			"From: x@example.net\r\n\r\nbody of %s\r\n" % (tag, tag, tag)).encode())
		assert typ == "OK"

	full = lambda f: f == ["UID FETCH 1:* (UID RFC822.SIZE)"]	# noqa: E731
	none = lambda f: f == []	# noqa: E731

	assert wait_until(lambda: dovecot_logouts(dovecot, user), 5)	# the seeding session's
	try:
		# The first login teaches the worker that this server offers CONDSTORE once logged
		# in; the second selects with it and stores the listing; the third is unchanged.
		check("first poll", full)
		ref, _, cmds = check("second poll", full)
		assert 'SELECT "INBOX" (CONDSTORE)' in cmds, cmds
		_, got_unchanged, cmds = check("unchanged", none)
		assert 'SELECT "INBOX" (CONDSTORE)' in cmds, cmds
		assert got_unchanged < 1024, "upstream octets of an unchanged poll: %d" % got_unchanged
		# Dovecot's own count of that session (after its login: the greeting and the
		# login's answer are imap-login's) says the same.
		assert server_side["unchanged"][1] < got_unchanged, server_side

		uidnext = ref[-1][0] + 1
		imap_change(lambda m: append(m, "new1"))
		check("one new message", lambda f: f == ["UID FETCH %d:* (UID RFC822.SIZE)" % uidnext])
		check("unchanged after an arrival", none)

		first_uid = reference(dovecot, user)[0][0][0]
		imap_change(lambda m: m.uid("STORE", str(first_uid), "+FLAGS.SILENT", r"(\Seen)"))
		# HIGHESTMODSEQ moved; the listing did not: one range FETCH proves it (by count).
		ref, _, _ = check("\\Seen set by another client",
			lambda f: len(f) == 1 and f[0] != "UID FETCH 1:* (UID RFC822.SIZE)")

		second_uid = ref[1][0]
		imap_change(lambda m: m.uid("STORE", str(second_uid), "+FLAGS.SILENT", r"(\Deleted)"))
		# \Deleted does not take a message out of the listing (popgate lists what UID FETCH
		# 1:* lists); the reference says the same.
		check("\\Deleted set by another client", lambda f: len(f) == 1)

		imap_change(lambda m: m.expunge())
		check("expunged by another client", lambda f: f[-1] == "UID FETCH 1:* (UID RFC822.SIZE)")
		check("unchanged after an expunge", none)

		last_uid = reference(dovecot, user)[0][-1][0]

		def expunge_and_append(m, u=last_uid):
			m.uid("STORE", str(u), "+FLAGS.SILENT", r"(\Deleted)")
			m.expunge()
			append(m, "new2")
		imap_change(expunge_and_append)
		check("an expunge and an arrival", lambda f: f[-1] == "UID FETCH 1:* (UID RFC822.SIZE)")

		imap_change(lambda m: (append(m, "new3"), append(m, "new4")))
		check("two new messages", lambda f: len(f) == 1 and f[0] != "UID FETCH 1:* (UID RFC822.SIZE)")
		_, got, _ = check("unchanged at the end", none)
		assert got < 1024
		kinds = re.findall(r" listing=(\w+)", pg.log())
		assert kinds == ["none", "full", "full", "cached", "incremental", "cached", "incremental",
			"incremental", "full", "cached", "full", "incremental", "cached"], kinds
		for r in log:
			print("%-30s fetches=%r relay: upstream sent %d, popgate sent %d; dovecot: in=%d "
				"out=%d" % (r + server_side[r[0]]))
	finally:
		pg.stop()
		relay.close()


def stored_listing(pg_dir, user):
	"""The stored listing row of user: (uidvalidity, uidnext, exist, modseq, [(uid, size)]),
	or None. The BLOB is cache.c's: per message varint(uid delta), varint(size)."""
	import sqlite3
	db = sqlite3.connect(str(pg_dir / "uidl.sqlite"))
	try:
		row = db.execute("SELECT uidvalidity, uidnext, exist, modseq, msgs FROM listing "
			"WHERE user=?", (user,)).fetchone()
	finally:
		db.close()
	if row is None:
		return None
	msgs, blob, pos, uid = [], bytes(row[4] or b""), 0, 0

	def varint():
		nonlocal pos
		v, shift = 0, 0
		while True:
			b = blob[pos]
			pos += 1
			v |= (b & 0x7F) << shift
			shift += 7
			if not b & 0x80:
				return v
	while pos < len(blob):
		uid += varint()
		msgs.append((uid, varint()))
	return row[0], row[1], row[2], row[3], msgs


def put_listing_sizes(pg_dir, user, msgs):
	"""Rewrites the stored listing's messages (the four numbers stay)."""
	import sqlite3

	def varint(v):
		out = bytearray()
		while True:
			out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
			v >>= 7
			if not v:
				return bytes(out)
	blob, prev = b"", 0
	for uid, size in msgs:
		blob += varint(uid - prev) + varint(size)
		prev = uid
	db = sqlite3.connect(str(pg_dir / "uidl.sqlite"))
	try:
		db.execute("UPDATE listing SET msgs=? WHERE user=?", (blob, user))
		db.commit()
	finally:
		db.close()


def set_stored_size(pg_dir, user, index, size):
	"""The stored listing with the size of its index-th message replaced."""
	row = stored_listing(pg_dir, user)
	put_listing_sizes(pg_dir, user, [(u, size if i == index else s) for i, (u, s) in
		enumerate(row[4])])


def assert_forgotten_then_full(pg, relay, pg_dir, user, password, ref, uidvalidity):
	"""The stored listing is gone, and the next poll lists in full, exactly ref."""
	assert wait_until(lambda: stored_listing(pg_dir, user) is None, 5), pg.log_tail()
	stat, lst, uidl, sent, _ = poll(pg, relay, user, password)
	assert fetches(commands(sent)) == ["UID FETCH 1:* (UID RFC822.SIZE)"], commands(sent)
	assert (stat, lst, uidl) == expected(ref, uidvalidity)


def kinds_of(pg, user):
	return [m for m in re.findall(r" user=%s .* listing=(\w+)" % re.escape(user), pg.log())]


def stored_and_polled(dovecot, pg, pgdir, relay, user, password):
	"""Two polls: the worker learns CONDSTORE, then the listing is stored; the third is
	cached. Returns the reference after them."""
	for _ in range(2):
		poll(pg, relay, user, password)
	assert wait_until(lambda: stored_listing(pgdir, user) is not None, 5), pg.log_tail()
	_, _, _, sent, _ = poll(pg, relay, user, password)
	assert fetches(commands(sent)) == [], commands(sent)
	return reference(dovecot, user)


def test_dele_and_quit_leave_the_next_poll_cached(dovecot, tmp_path):
	"""Our own DELE + QUIT: the stored listing becomes the mailbox minus what we removed,
	with STATUS's numbers (asked in the same write as UPDATE's last check), so the next poll
	sends no FETCH at all (before: a range FETCH that could not prove itself, then the full
	one) and still lists exactly what a full FETCH lists."""
	user, password, _ = dovecot.fresh_user()
	relay = WireRelay(dovecot.imap_port)
	pg = start_popgate(tmp_path / "pg", relay.port)
	try:
		(ref, _) = stored_and_polled(dovecot, pg, tmp_path / "pg", relay, user, password)
		assert len(ref) >= 3, ref
		before = relay.count()
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login(user, password)
			assert c.cmd("DELE 1").startswith(b"+OK")
			assert c.cmd("DELE 3").startswith(b"+OK")
			assert c.quit().startswith(b"+OK")
		wait_until(lambda: all(r["done"].is_set() for r in relay.conns[before:]), 10)
		quit_cmds = [c for r in relay.conns[before:] for c in commands(bytes(r["sent"]))]
		verify = [i for i, c in enumerate(quit_cmds) if c.startswith("UID SEARCH UID")]
		status = [i for i, c in enumerate(quit_cmds) if c.startswith("STATUS ")]
		assert len(verify) == 1 and status == [verify[0] + 1], quit_cmds
		gone = {ref[0][0], ref[2][0]}
		assert wait_until(lambda: (stored_listing((tmp_path / "pg"), user) or [0] * 5)[4] ==
			[m for m in ref if m[0] not in gone], 5), (stored_listing((tmp_path / "pg"), user), pg.log_tail())

		ref2, uidvalidity = reference(dovecot, user)
		assert ref2 == [m for m in ref if m[0] not in gone]
		stat, lst, uidl, sent, got = poll(pg, relay, user, password)
		assert (stat, lst, uidl) == expected(ref2, uidvalidity), pg.log_tail()
		assert fetches(commands(sent)) == [], commands(sent)
		assert got < 1024, "upstream octets of the poll after DELE + QUIT: %d" % got
		print("poll after DELE + QUIT: upstream sent %d octets, popgate sent %d" % (got,
			len(sent)))
		assert kinds_of(pg, user)[-2:] == ["cached", "cached"], kinds_of(pg, user)
	finally:
		pg.stop()
		relay.close()


@pytest.mark.parametrize("dele", [False, True], ids=["quit", "dele-and-quit"])
def test_a_retr_whose_size_differs_forgets_the_stored_listing(dovecot, tmp_path, dele):
	"""A stored listing whose size of a message is not what the server sends (RETR's
	literal): the stored listing is forgotten, said once at warn, and the next login lists
	in full, with the server's sizes. A DELE before the QUIT must not store the listing again
	after it (that would bring the wrong size back with fresh numbers)."""
	user, password, _ = dovecot.fresh_user()
	relay = WireRelay(dovecot.imap_port)
	pg = start_popgate(tmp_path / "pg", relay.port)
	try:
		ref, uidvalidity = stored_and_polled(dovecot, pg, tmp_path / "pg", relay, user, password)
		set_stored_size(tmp_path / "pg", user, 0, ref[0][1] + 7)
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login(user, password)
			status, lst = c.cmd_multi("LIST")
			assert lst[0].rstrip() == b"1 %d" % (ref[0][1] + 7), lst	# the stored size
			for n in (1, 1):	# twice: warned once
				status, body = c.cmd_multi("RETR %d" % n)
				assert status.startswith(b"+OK"), status
			if dele:
				assert c.cmd("DELE 2").startswith(b"+OK")
				ref = ref[:1] + ref[2:]
			assert c.quit().startswith(b"+OK")
		assert wait_until(lambda: stored_listing((tmp_path / "pg"), user) is None, 5), pg.log_tail()
		time.sleep(0.3)		# a store after the forget would land by now
		assert stored_listing((tmp_path / "pg"), user) is None, pg.log_tail()
		assert pg.log().count("forgetting the stored listing") == 1, pg.log_tail()
		assert_forgotten_then_full(pg, relay, tmp_path / "pg", user, password, ref, uidvalidity)
	finally:
		pg.stop()
		relay.close()


def test_a_retr_the_upstream_cuts_forgets_the_stored_listing(dovecot, tmp_path):
	"""A stored size far below what the server sends (the 20 MB message listed as 1 octet):
	RETR's literal is not believable, the session ends (a cut, never a short message), and
	the stored listing is forgotten with it, so the next login lists in full and RETR works
	(before: every later poll was `cached` with the wrong size, and every RETR of that
	message ended its session)."""
	user, password, _ = dovecot.fresh_user(include_big=True)
	relay = WireRelay(dovecot.imap_port)
	pg = start_popgate(tmp_path / "pg", relay.port)
	try:
		ref, uidvalidity = stored_and_polled(dovecot, pg, tmp_path / "pg", relay, user, password)
		big = max(range(len(ref)), key=lambda i: ref[i][1])
		assert ref[big][1] > 1000000, ref
		set_stored_size(tmp_path / "pg", user, big, 1)
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login(user, password)
			c.send(b"RETR %d\r\n" % (big + 1))
			got = c.file.read()	# to the server's close
			assert not got.endswith(b"\r\n.\r\n"), "a cut message served whole: %r" % got[:80]
		assert_forgotten_then_full(pg, relay, tmp_path / "pg", user, password, ref, uidvalidity)
		assert "forgetting the stored listing" in pg.log(), pg.log_tail()
	finally:
		pg.stop()
		relay.close()


def test_a_stuck_cache_thread_does_not_hold_the_login(dovecot, tmp_path):
	"""Another process holds the cache file's WAL-index read locks (as one stuck in a
	checkpoint or a recovery would): SQLite's reader retries for about ten seconds before it
	gives up. The login's FETCH waits for the stored listing one second, then lists in full
	and says so; the login completes once the cache answers its UIDLs."""
	import subprocess
	import sys
	import threading
	import time
	user, password, _ = dovecot.fresh_user()
	relay = WireRelay(dovecot.imap_port)
	pg = start_popgate(tmp_path / "pg", relay.port)
	holder = None
	try:
		ref, uidvalidity = stored_and_polled(dovecot, pg, tmp_path / "pg", relay, user, password)
		# A process of its own: POSIX locks are per process, and a sqlite3 connection of
		# this one closing the file would drop them.
		holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys\n"
			"fd = os.open(sys.argv[1], os.O_RDWR)\n"
			# SQLite's unix VFS: the -shm lock bytes start at 120; the read marks
			# WAL_READ_LOCK(0..4) are 123..127. A reader that gets none retries ~10 s.
			"fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 123, 0)\n"
			"print('locked', flush=True)\n"
			"sys.stdin.read()\n", str((tmp_path / "pg") / "uidl.sqlite-shm")],
			stdin=subprocess.PIPE, stdout=subprocess.PIPE)
		assert holder.stdout.readline() == b"locked\n"
		before = relay.count()
		got = {}
		t = threading.Thread(target=lambda: got.update(r=poll(pg, relay, user, password)))
		t0 = time.monotonic()
		t.start()

		def fetched():
			return any(b"UID FETCH 1:* (UID RFC822.SIZE)" in bytes(r["sent"])
				for r in relay.conns[before:])
		assert wait_until(fetched, 5), "the login waited for a stuck cache\n" + pg.log_tail()
		waited = time.monotonic() - t0
		assert 0.9 < waited < 5, waited
		assert "stored listing not answered by the cache" in pg.log(), pg.log_tail()
		holder.stdin.close()
		holder.wait(5)
		holder = None
		t.join(30)
		assert not t.is_alive()
		stat, lst, uidl, sent, _ = got["r"]
		assert (stat, lst, uidl) == expected(ref, uidvalidity)
		assert fetches(commands(sent)) == ["UID FETCH 1:* (UID RFC822.SIZE)"], commands(sent)
		print("full FETCH sent %.2f s after the login began" % waited)
	finally:
		if holder is not None:
			holder.kill()
			holder.wait()
		pg.stop()
		relay.close()
