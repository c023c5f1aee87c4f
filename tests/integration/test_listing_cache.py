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
