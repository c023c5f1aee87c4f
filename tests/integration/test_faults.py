"""Faults: what a POP3 user sees when the upstream breaks (a scripted fake IMAP server, see
fakeimap.py, for faults Dovecot will not produce) or the client misbehaves (against the real
Dovecot), and that popgate stays up and leaks nothing.

Every test ends with Gate.finish(): a healthy session opened before the fault (parallel to it)
completes STAT and RETR, a new healthy session does too, popgate's fd count (/proc) is back to
the baseline taken after a warm-up session, and (fake upstream) every upstream connection is
closed. A test that deletes, or could delete if popgate were wrong, uses a fresh user.
"""

import poplib
import re
import socket
import struct
import time

import pytest

import messages
from conftest import Pop3Target
from fakeimap import uid_set
from helpers import (assert_err, assert_ok, assert_same_bytes, doveadm_who, read_until_eof,
	session_lines, wait_no_dovecot_session, wait_session_lines, wait_until)
from messages import message_ids, pop3_bytes, top_bytes
from pop3client import Pop3Raw, stuff, unstuff
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only

FAKE_RETR = 3	# the fake's ~300 KB message: half of it reaches the client before a cut


def read_some(sock, n):
	"""At least n bytes (fails if the server closes first)."""
	got = b""
	while len(got) < n:
		chunk = sock.recv(65536)
		assert chunk, "closed by the server after %d bytes: %r" % (len(got), got[:200])
		got += chunk
	return got


def stuff_partial(data):
	"""Dot-stuffed form of data that may end in the middle of a line."""
	return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in data.split(b"\r\n"))


def rst_close(c):
	"""Closes a Pop3Raw with a TCP RST (SO_LINGER 0): the server's next write fails."""
	c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
	c.close()


class Gate:
	"""popgate under test plus what finish() checks. upstream: "fake" or "dovecot"."""

	def __init__(self, pg, healthy, parallel):
		self.pg = pg
		self.port = pg.port
		self.healthy_user, self.healthy_password, self.healthy_msgs = healthy
		self.parallel_user, self.parallel_password, self.parallel_msgs = parallel
		self.fake = None
		self.parallel = None
		self.baseline_fds = None
		self.baseline_rss = None

	def raw(self, timeout=30):
		return Pop3Raw("127.0.0.1", self.port, timeout=timeout)

	def login(self, user, password, timeout=30):
		c = self.raw(timeout)
		c.login(user, password)
		return c

	def healthy_session(self, c=None, msgs=None):
		"""STAT and RETR of the largest message, byte-exact, then QUIT (a new session of the
		healthy user, or c, a logged-in session whose mailbox is msgs)."""
		if c is None:
			c = self.login(self.healthy_user, self.healthy_password)
			msgs = self.healthy_msgs
		total = sum(len(m) for m in msgs)
		assert c.cmd("STAT") == b"+OK %d %d\r\n" % (len(msgs), total)
		n = max(range(len(msgs)), key=lambda i: len(msgs[i])) + 1
		status, lines = c.cmd_multi("RETR %d" % n)
		assert_ok(status, "healthy RETR %d" % n)
		assert_same_bytes(unstuff(lines), pop3_bytes(msgs[n - 1]), "healthy RETR %d" % n)
		assert_ok(c.quit(), "healthy QUIT")

	def warm_up(self):
		"""One healthy session (the UIDL cache opens its files), then the baselines, taken
		once that session has ended and popgate holds no connection (the upstream one closes
		after LOGOUT is answered, a moment after the session's line)."""
		self.healthy_session()
		wait_until(lambda: self.session_lines(self.healthy_user) and
			not self.pg.tcp_connections(), 5, lambda: "after the warm-up session: session "
			"lines %r, connections %r" % (self.session_lines(self.healthy_user),
			self.pg.tcp_connections()))
		self.baseline_fds = self.pg.fd_count()
		self.baseline_rss = self.pg.rss_kb()
		return self

	def begin(self):
		"""A healthy session logged in before the fault; finish() completes it."""
		self.parallel = self.login(self.parallel_user, self.parallel_password)
		return self.parallel

	def finish(self):
		assert self.pg.proc.poll() is None, "popgate exited: %r" % self.pg.proc.returncode
		if self.parallel is not None:
			self.healthy_session(self.parallel, self.parallel_msgs)
			self.parallel = None
		self.healthy_session()
		n = self.pg.wait_fd_count(self.baseline_fds)
		assert n == self.baseline_fds, "popgate has %d fds open, %d before the sessions: %s" % (
			n, self.baseline_fds, self.fd_list())
		if self.fake is not None:
			assert self.fake.wait_all_closed(5), "upstream connections left open:\n" + \
				self.fake.transcript()

	def fd_list(self):
		import os
		out = []
		for p in self.pg.pids():
			d = "/proc/%d/fd" % p
			for fd in sorted(os.listdir(d), key=int):
				try:
					out.append("%s->%s" % (fd, os.readlink(os.path.join(d, fd))))
				except OSError:
					pass
		return " ".join(out)

	def session_lines(self, user):
		"""popgate's end-of-session log lines for user."""
		return session_lines(self.pg, user)

	def last_session_line(self, user, timeout=5.0):
		"""The newest end-of-session line of user, waiting for it: the client may read the
		last reply before popgate has written the line."""
		return wait_until(lambda: self.session_lines(user), timeout,
			"no session line for user=%s" % user)[-1]


def _print_logs(request, gates, fake=None, dovecot=None):
	rep = getattr(request.node, "rep_call", None)
	if rep is None or not rep.failed:
		return
	for g in gates:
		print("--- popgate log tail (%s):\n%s" % (g.pg.log_path, g.pg.log_tail(80)))
	if fake is not None:
		print("--- fake IMAP transcript:\n" + fake.transcript())
	if dovecot is not None:
		print("--- dovecot log tail:\n" + dovecot.log_tail())


# --- faults from a scripted upstream (fakeimap.py) ---------------------------------------------

@pytest.fixture
def fgate(request, fake, tmp_path):
	"""popgate in front of the fake (upstream_timeout=2), warmed up. Healthy users: "ok-…"."""
	started = []

	def make(**overrides):
		kw = {"limits.upstream_timeout": 2, "limits.auth_fail_delay_ms": 0}
		kw.update(overrides)
		pg = start_popgate(tmp_path / ("pg%d" % len(started)), fake.port, **kw)
		g = Gate(pg, ("ok-healthy", "pw", fake.messages), ("ok-parallel", "pw", fake.messages))
		g.fake = fake
		started.append(g)
		return g.warm_up()

	yield make
	_print_logs(request, started, fake=fake)
	for g in started:
		g.pg.stop()


@pytest.mark.parametrize("scenario", ["close_mid_literal", "bye_mid_literal"])
def test_upstream_cut_mid_literal_cuts_the_client_without_terminator(fgate, fake, scenario):
	g = fgate()
	g.begin()
	msg = fake.messages[FAKE_RETR - 1]
	# poplib: the message is not taken as complete.
	p = poplib.POP3("127.0.0.1", g.port, timeout=10)
	p.user(scenario)
	p.pass_("pw")
	with pytest.raises((poplib.error_proto, EOFError, OSError)):
		p.retr(FAKE_RETR)
	p.close()
	# The wire: "+OK", a prefix of the stuffed message, EOF, and no terminating ".".
	c = g.login(scenario, "pw", timeout=10)
	c.send(b"RETR %d\r\n" % FAKE_RETR)
	data, closed, _ = read_until_eof(c.sock, 10)
	c.close()
	assert closed, "popgate did not close the connection after the upstream cut: %r" % data[-200:]
	status, _, body = data.partition(b"\r\n")
	assert_ok(status, "RETR before the cut")
	assert b"\r\n.\r\n" not in data, \
		"a terminating '.' after a cut message: %r" % data[-200:]
	# What the fake sent of the literal (fakeimap.py: half the message, for BYE then its
	# line, which is literal bytes to the parser), dot-stuffed: all of it, nothing more.
	sent = msg[:len(msg) // 2]
	if scenario == "bye_mid_literal":
		sent += b"\r\n* BYE Server shutting down (fake).\r\n"
	assert len(body) == len(stuff_partial(sent)), "%d bytes after +OK, %d sent by the upstream" % (
		len(body), len(stuff_partial(sent)))
	assert_same_bytes(body, stuff_partial(sent), "the bytes before the cut")
	assert len(g.session_lines(scenario)) == 2, g.pg.log_tail()
	assert "upstream_error=" in g.last_session_line(scenario)
	g.finish()


@pytest.mark.parametrize("scenario", ["garbage_nul", "garbage_long"])
def test_garbage_from_upstream_gives_sys_temp_or_a_cut(fgate, scenario):
	g = fgate()
	g.begin()
	c = g.login(scenario, "pw", timeout=10)
	c.send(b"RETR %d\r\n" % FAKE_RETR)
	data, closed, _ = read_until_eof(c.sock, 10, stop_at=b"\r\n.\r\n")
	c.close()
	if data.startswith(b"-ERR"):
		assert data.startswith(b"-ERR [SYS/TEMP]"), data[:200]
	else:
		assert closed and b"\r\n.\r\n" not in data, "garbage passed off as a message: %r" % data[:200]
	g.finish()


def test_upstream_bye_between_commands_then_retr_and_quit_say_so_and_delete_nothing(fgate, fake):
	g = fgate()
	g.begin()
	c = g.login("bye_idle", "pw", timeout=10)
	wait_until(lambda: "said BYE" in g.pg.log(), 5)	# popgate has read it (or 5 s went by)
	# The listing is the session's: STAT, LIST, UIDL, DELE need no upstream.
	assert c.cmd("STAT") == b"+OK %d %d\r\n" % (len(fake.messages), sum(map(len, fake.messages)))
	assert_ok(c.cmd("DELE 1"))
	assert c.cmd("RETR 2").startswith(b"-ERR [SYS/TEMP]")
	assert c.cmd("TOP 2 0").startswith(b"-ERR [SYS/TEMP]")
	assert_ok(c.cmd("NOOP"), "the session goes on")
	r = c.cmd("QUIT")
	assert r.startswith(b"-ERR [SYS/TEMP]"), "QUIT with deletions and no upstream: %r" % r
	c.close()
	sent = [l for cid, l in fake.received if b"STORE" in l or b"EXPUNGE" in l]
	assert sent == [], sent
	g.finish()


def dele_pipelined(c, nums):
	"""DELE of each of nums, sent in one write; each must answer +OK."""
	c.send(b"".join(b"DELE %d\r\n" % k for k in nums))
	for k in nums:
		assert_ok(c.readline(), "DELE %d" % k)


def quit_after_dele(g, user, *nums):
	c = g.login(user, "pw", timeout=10)
	for n in nums:
		assert_ok(c.cmd("DELE %d" % n))
	r = c.cmd("QUIT")
	c.close()
	return r


def test_without_uidplus_expunge_only_when_nothing_else_is_deleted(fgate, fake):
	fake.caps = "IMAP4rev1 LITERAL+ AUTH=PLAIN SASL-IR"
	g = fgate()
	g.begin()
	r = quit_after_dele(g, "ok-a", 1, 3)
	assert r.startswith(b"+OK") and b"2 messages deleted" in r, r
	assert fake.expunged == {1, 3}
	# Another client has flagged message 2: EXPUNGE would take it too, so it is not sent.
	fake.expunged.clear()
	fake.deleted.add(2)
	r = quit_after_dele(g, "ok-b", 1)
	assert r.startswith(b"-ERR [SYS/TEMP]"), r
	assert fake.expunged == set() and fake.deleted == {1, 2}, "ours stays flagged, theirs untouched"
	sent = [l for cid, l in fake.received if l.split(b" ")[1:2] == [b"EXPUNGE"]]
	assert len(sent) == 1, "EXPUNGE sent while another client's message was \\Deleted: %r" % sent
	g.finish()


def expunges_sent(fake):
	"""The (UID) EXPUNGE command lines the fake received, as str."""
	return [l for l in fake.lines() if l.split(" ")[1:2] == ["EXPUNGE"] or " UID EXPUNGE" in l]


def update_commands(fake, user):
	"""The commands (tags dropped) of user's one upstream connection after its UID FETCH 1:*
	listing: those QUIT sent."""
	cids = [c.cid for c in fake.conns if c.user == user]
	assert len(cids) == 1, "connections of %s: %r\n%s" % (user, cids, fake.transcript())
	cmds = [l.split(" ", 1)[1] for l in fake.lines(cids[0])]
	listing = [i for i, c in enumerate(cmds) if c.startswith("UID FETCH 1:* ")]
	assert len(listing) == 1, cmds
	return cmds[listing[0] + 1:]


# What QUIT may send besides its STORE and EXPUNGE: commands that change nothing.
READ_ONLY = ("UID SEARCH ", "NOOP", "CHECK", "CAPABILITY", "LOGOUT")


def peek_fetch(cmd):
	"""A UID FETCH that changes nothing: every BODY item is BODY.PEEK (BODY[] sets \\Seen)."""
	u = cmd.upper()
	return u.startswith("UID FETCH ") and "BODY[" not in u.replace("BODY.PEEK[", "")


def test_with_uidplus_quit_sends_uid_store_then_uid_expunge_of_the_same_set_only(fgate, fake):
	# The upstream offers UIDPLUS (the fake's greeting): QUIT flags the DELE'd UIDs and
	# removes exactly those with UID EXPUNGE of the same set. A bare EXPUNGE would also remove
	# what other clients flagged \Deleted. The commands on the wire are checked, then the
	# outcome (test_another_clients_deleted_flag_is_not_expunged_by_quit: the real Dovecot).
	assert "UIDPLUS" in fake.caps.split()
	fake.messages = [b"Subject: %d\r\n\r\nbody %d\r\n" % (k, k) for k in range(1, 11)]
	g = fgate()
	g.begin()
	fake.deleted.add(5)	# another client's
	r = quit_after_dele(g, "ok-uidplus", 2, 3, 4, 7, 9)
	assert r == b"+OK Logging out, 5 messages deleted.\r\n", r
	cmds = update_commands(fake, "ok-uidplus")
	changing = [c for c in cmds if not c.startswith(READ_ONLY) and not peek_fetch(c)]
	assert len(changing) == 2, "QUIT sent %r" % cmds
	store, expunge = changing
	m = re.fullmatch(r"UID STORE (\S+) \+FLAGS\.SILENT \(\\Deleted\)", store)
	assert m, "QUIT's first change: %r" % store
	assert sorted(uid_set(m.group(1).encode())) == [2, 3, 4, 7, 9], store
	assert expunge == "UID EXPUNGE " + m.group(1), "then %r, after %r" % (expunge, store)
	assert not [c for c in fake.lines() if c.split(" ")[1:2] == ["EXPUNGE"]], "a bare EXPUNGE"
	assert fake.expunged == {2, 3, 4, 7, 9} and fake.deleted == {5}, (fake.expunged, fake.deleted)
	assert " dele=5 " in g.last_session_line("ok-uidplus")
	g.finish()


def test_imap4rev2_server_gets_uid_expunge_and_other_clients_deleted_message_survives(fgate, fake):
	# RFC 9051 includes UID EXPUNGE without listing UIDPLUS, and answers SEARCH only as
	# ESEARCH: a plain EXPUNGE here used to take another client's \Deleted message.
	fake.caps = "IMAP4rev2 LITERAL+ AUTH=PLAIN SASL-IR"
	fake.esearch = True
	g = fgate()
	g.begin()
	fake.deleted.add(2)	# another client's
	r = quit_after_dele(g, "ok-rev2", 1, 3)
	assert r.startswith(b"+OK") and b"2 messages deleted" in r, r
	assert fake.expunged == {1, 3} and fake.deleted == {2}, (fake.expunged, fake.deleted)
	assert all(" UID EXPUNGE " in l for l in expunges_sent(fake)), expunges_sent(fake)
	assert " dele=2 " in g.last_session_line("ok-rev2")
	g.finish()


def test_without_uidplus_an_esearch_answer_naming_another_clients_message_blocks_expunge(fgate, fake):
	fake.caps = "IMAP4rev1 ESEARCH LITERAL+ AUTH=PLAIN SASL-IR"	# no UIDPLUS, no IMAP4rev2
	fake.esearch = True
	g = fgate()
	g.begin()
	r = quit_after_dele(g, "ok-a", 1, 3)
	assert r.startswith(b"+OK") and b"2 messages deleted" in r, "ESEARCH names only ours: %r" % r
	assert fake.expunged == {1, 3}
	fake.expunged.clear()
	fake.deleted.add(2)	# another client's
	r = quit_after_dele(g, "ok-b", 1)
	assert r == b"-ERR [SYS/TEMP] some deleted messages not removed\r\n", r
	assert fake.expunged == set() and fake.deleted == {1, 2}, "ours stays flagged, theirs untouched"
	assert len(expunges_sent(fake)) == 1, "EXPUNGE sent while another client's message was \\Deleted"
	assert "leaving 1 messages flagged" in g.pg.log()
	g.finish()


@pytest.mark.parametrize("scenario", ["search_silent", "search_other_tag", "search_garbage",
	"search_seqnums"])
def test_without_uidplus_no_readable_answer_to_our_search_means_no_expunge(fgate, fake, scenario):
	# An empty or unparsed answer used to count as "nothing but ours".
	fake.caps = "IMAP4rev1 LITERAL+ AUTH=PLAIN SASL-IR"
	g = fgate()
	g.begin()
	fake.deleted.add(2)	# another client's: an EXPUNGE would take it
	r = quit_after_dele(g, scenario, 1)
	assert r == b"-ERR [SYS/TEMP] some deleted messages not removed\r\n", r
	assert expunges_sent(fake) == [], fake.transcript()
	assert fake.expunged == set() and fake.deleted == {1, 2}
	assert " dele=0 " in g.last_session_line(scenario)
	g.finish()


def test_uidvalidity_change_during_update_sends_no_more_uid_commands(fgate, fake):
	g = fgate()
	g.begin()
	r = quit_after_dele(g, "uidvalidity_mid_update", 1, 3)
	assert r.startswith(b"-ERR [SYS/TEMP]"), r
	assert expunges_sent(fake) == [], "UID EXPUNGE after the UIDs changed meaning"
	assert fake.expunged == set()
	g.finish()


def test_uidplus_offered_only_after_login_is_asked_for_before_deleting(fgate, fake):
	# The greeting lists no UIDPLUS and the login's OK names no capabilities: popgate asks
	# CAPABILITY at QUIT instead of falling back to SEARCH DELETED + EXPUNGE.
	fake.prelogin_caps = "IMAP4rev1 LITERAL+ AUTH=PLAIN SASL-IR"
	fake.login_caps_code = False
	g = fgate()
	g.begin()
	fake.deleted.add(2)	# another client's
	r = quit_after_dele(g, "ok-late-caps", 1)
	assert r.startswith(b"+OK") and b"1 messages deleted" in r, r
	assert fake.expunged == {1} and fake.deleted == {2}
	assert [l.split(" ", 2)[1:] for l in expunges_sent(fake)] == [["UID", "EXPUNGE 1"]]
	g.finish()


def test_without_uidplus_a_large_deletion_searches_in_windows_an_answer_line_holds(fgate, fake):
	# 6000 messages, 5000 DELE'd, response lines capped at 16 KB: one UID SEARCH DELETED
	# answer would be ~29 KB and end the upstream connection (the messages stayed flagged
	# and came back every session). In windows, each answer fits.
	fake.caps = "IMAP4rev1 LITERAL+ AUTH=PLAIN SASL-IR"
	fake.messages = [b"Subject: %d\r\n\r\nbody %d\r\n" % (k, k) for k in range(1, 6001)]
	g = fgate(**{"limits.imap_line_max": 16384})
	g.begin()
	c = g.login("ok-many", "pw", timeout=60)
	dele = list(range(1, 5001))
	dele_pipelined(c, dele)
	fake.deleted.add(5500)	# another client's, past our last: the "n:*" window finds it
	r = c.cmd("QUIT")
	c.close()
	assert r == b"-ERR [SYS/TEMP] some deleted messages not removed\r\n", r
	assert fake.expunged == set()
	fake.deleted.discard(5500)
	fake.deleted -= set(dele)
	c = g.login("ok-many2", "pw", timeout=60)
	dele_pipelined(c, dele)
	r = c.cmd("QUIT")
	c.close()
	assert r.startswith(b"+OK") and b"5000 messages deleted" in r, r
	assert fake.expunged == set(dele)
	searches = [l for l in fake.lines() if "UID SEARCH DELETED" in l]
	assert len(searches) >= 2 * 3, searches
	g.finish()


def test_a_refused_piece_of_consecutive_uids_is_checked_within_the_line_limit(fgate, fake):
	# DELE 1..5000: "1:5000" is a short set, but the check of a refused piece lists every
	# UID still there (~25 KB) and used to end the upstream connection at a 16 KB line
	# limit, abandoning the other pieces. Pieces now hold no more UIDs than a line names.
	fake.messages = [b"Subject: %d\r\n\r\nbody %d\r\n" % (k, k) for k in range(1, 6001)]
	g = fgate(**{"limits.imap_line_max": 16384})
	g.begin()
	c = g.login("store_no_first", "pw", timeout=60)
	dele = list(range(1, 5001))
	dele_pipelined(c, dele)
	r = c.cmd("QUIT")
	c.close()
	assert r == b"-ERR [SYS/TEMP] some deleted messages not removed\r\n", r
	assert fake.expunged and 1 not in fake.expunged, "the refused first piece stays"
	assert fake.expunged == set(range(min(fake.expunged), 5001)), "every later piece went"
	assert " dele=%d " % len(fake.expunged) in g.last_session_line("store_no_first")
	g.finish()


def test_expunge_lines_of_other_sessions_do_not_count_as_ours_removed(fgate, fake):
	# The server reports "* n EXPUNGE" as many times as asked, but ours are still there:
	# what was removed is asked by UID afterwards.
	g = fgate()
	g.begin()
	r = quit_after_dele(g, "expunge_keeps", 2)
	assert r == b"-ERR [SYS/TEMP] some deleted messages not removed\r\n", r
	assert " dele=0 " in g.last_session_line("expunge_keeps")
	assert any("UID SEARCH UID 2" in l for l in fake.lines()), fake.transcript()
	g.finish()


def test_expunge_that_reports_nothing_is_judged_by_uid(fgate, fake):
	# expunge_short removes the message but sends no "* n EXPUNGE": it is gone, so +OK.
	g = fgate()
	g.begin()
	r = quit_after_dele(g, "expunge_short", 2)
	assert r.startswith(b"+OK") and b"1 messages deleted" in r, r
	assert fake.expunged == {2}
	g.finish()


def test_a_message_another_client_already_expunged_counts_as_deleted(fgate, fake):
	g = fgate()
	g.begin()
	c = g.login("ok-gone", "pw", timeout=10)
	assert_ok(c.cmd("DELE 1"))
	assert_ok(c.cmd("DELE 3"))
	fake.gone.add(1)	# expunged meanwhile by someone else: our EXPUNGE cannot report it
	r = c.cmd("QUIT")
	c.close()
	assert r.startswith(b"+OK") and b"2 messages deleted" in r, r
	assert " dele=2 " in g.last_session_line("ok-gone")
	g.finish()


def test_a_refused_piece_does_not_abandon_the_others(fgate, fake):
	# 4000 messages, every odd one DELE'd: a UID set of ~10 KB, so two pieces. The first
	# piece's STORE is refused; the second is still deleted, and QUIT says some were not.
	fake.messages = [b"Subject: %d\r\n\r\nbody %d\r\n" % (k, k) for k in range(1, 4001)]
	g = fgate()
	g.begin()
	c = g.login("store_no_first", "pw", timeout=30)
	odd = list(range(1, 4001, 2))
	dele_pipelined(c, odd)
	r = c.cmd("QUIT")
	c.close()
	assert r == b"-ERR [SYS/TEMP] some deleted messages not removed\r\n", r
	stores = [l for l in fake.lines() if "UID STORE" in l and "Deleted" in l]
	assert len(stores) >= 2, "one piece only: the test needs two"
	assert fake.expunged and fake.expunged < set(odd), "the later pieces were not deleted"
	first_piece_last = max(uid for uid in odd if uid not in fake.expunged)
	assert min(fake.expunged) > first_piece_last, "the refused piece is the first"
	line = g.last_session_line("store_no_first")
	assert " dele=%d " % len(fake.expunged) in line, line
	g.finish()


@pytest.mark.parametrize("scenario", ["listing_short", "listing_no_uid", "select_no_exists",
	"empty_listing_no", "listing_before_select"])
def test_never_a_short_or_empty_listing_by_accident(fgate, scenario):
	# Thunderbird forgets every UIDL on "+OK 0 0": a listing the server did not complete,
	# could not be read, or that SELECT's EXISTS does not vouch for is [SYS/TEMP].
	g = fgate()
	g.begin()
	c = g.raw(timeout=10)
	assert_ok(c.cmd("USER %s" % scenario))
	r = c.cmd("PASS pw")
	assert r.startswith(b"-ERR [SYS/TEMP]"), "%s: %r" % (scenario, r)
	assert_ok(c.cmd("QUIT"))
	c.close()
	g.finish()


def test_an_unsolicited_flags_fetch_during_the_listing_lists_nothing(fgate, fake):
	g = fgate()
	c = g.login("listing_flags", "pw", timeout=10)
	assert c.cmd("STAT") == b"+OK 3 %d\r\n" % sum(map(len, fake.messages))
	assert_ok(c.quit())
	g.finish()


def test_login_answers_in_reverse_order_still_log_in(fgate, fake):
	# A proxy that answers the pipelined login, SELECT and listing out of order: popgate
	# used to wait for ever (its idle timeout) with the client at "PASS".
	g = fgate()
	c = g.raw(timeout=10)
	assert_ok(c.cmd("USER reorder_login"))
	r = c.cmd("PASS pw")
	assert r.startswith(b"+OK"), r
	assert c.cmd("STAT") == b"+OK 3 %d\r\n" % sum(map(len, fake.messages))
	status, lines = c.cmd_multi("RETR 1")
	assert_ok(status)
	assert_same_bytes(unstuff(lines), pop3_bytes(fake.messages[0]), "RETR 1")
	assert_ok(c.quit())
	g.finish()


def test_stalled_upstream_mid_literal_ends_within_the_upstream_timeout(fgate):
	# upstream_timeout = 2: "+OK" went out with the literal's start, so the client must see
	# the connection cut (no ".") about 2 s after the last upstream byte, not much later.
	g = fgate()
	g.begin()
	c = g.login("stall_literal", "pw", timeout=15)
	c.send(b"RETR %d\r\n" % FAKE_RETR)
	data, closed, secs = read_until_eof(c.sock, 12)
	c.close()
	assert data.startswith(b"+OK"), data[:200]
	assert closed, "still open after %.1f s of upstream silence (upstream_timeout=2)" % secs
	assert b"\r\n.\r\n" not in data
	assert 1.5 <= secs <= 4.5, "cut %.1f s after RETR with upstream_timeout=2" % secs
	assert "no response for" in g.last_session_line("stall_literal")
	g.finish()


def test_literal_far_larger_than_rfc822_size_is_a_broken_upstream(fgate, fake):
	g = fgate()
	g.begin()
	c = g.login("oversized_literal", "pw", timeout=10)
	c.send(b"RETR %d\r\n" % FAKE_RETR)
	data, closed, _ = read_until_eof(c.sock, 10, stop_at=b"\r\n.\r\n")
	c.close()
	assert b"\r\n.\r\n" not in data, "a message out of an oversized literal: %d bytes" % len(data)
	if data.startswith(b"-ERR"):
		assert data.startswith(b"-ERR [SYS/TEMP]"), data[:200]
	else:
		assert closed and len(data) < 2 * len(fake.messages[FAKE_RETR - 1]), len(data)
	assert "literal of" in g.last_session_line("oversized_literal")
	g.finish()


def test_unreachable_upstream_gives_sys_temp_on_pass(fgate, fake):
	g = fgate()
	g.begin()
	fake.close_listener()
	try:
		c = g.raw(timeout=15)
		assert_ok(c.cmd("USER ok-down"))
		t = time.monotonic()
		r = c.cmd("PASS pw")
		assert r.startswith(b"-ERR [SYS/TEMP]"), r
		assert time.monotonic() - t < 5
		# The connection stays usable: log in again once the upstream is back.
		fake.reopen_listener()
		c.login("ok-back", "pw")
		assert_ok(c.cmd("STAT"))
		assert_ok(c.quit())
	finally:
		fake.reopen_listener()
	g.finish()


def test_upstream_without_greeting_gives_sys_temp_after_the_timeout(fgate, fake):
	g = fgate()
	g.begin()
	fake.next_scenarios.append("no_greeting")
	c = g.raw(timeout=15)
	assert_ok(c.cmd("USER ok-nogreeting"))
	t = time.monotonic()
	r = c.cmd("PASS pw")
	secs = time.monotonic() - t
	assert r.startswith(b"-ERR [SYS/TEMP]"), r
	assert 1.5 <= secs <= 4.5, "[SYS/TEMP] %.1f s after PASS with upstream_timeout=2" % secs
	c.close()
	g.finish()


@pytest.mark.parametrize("scenario", ["select_no", "snapshot_bad"])
def test_failed_select_or_listing_gives_sys_temp_never_an_empty_mailbox(fgate, scenario):
	g = fgate()
	g.begin()
	c = g.raw(timeout=10)
	assert_ok(c.cmd("USER " + scenario))
	r = c.cmd("PASS pw")
	assert r.startswith(b"-ERR [SYS/TEMP]"), r
	assert_err(c.cmd("STAT"), "STAT after a failed login")
	c.login("ok-retry", "pw")	# the session goes on
	assert c.cmd("STAT").startswith(b"+OK 3 ")
	assert_ok(c.quit())
	g.finish()


def test_fetch_refused_with_bad_gives_err_and_the_session_goes_on(fgate, fake):
	g = fgate()
	g.begin()
	c = g.login("fetch_bad", "pw", timeout=10)
	r = c.cmd("RETR 1")
	assert_err(r, "RETR answered BAD upstream")
	# The upstream refused: its trouble (RFC 3206), not a message that is gone.
	assert b"[SYS/TEMP]" in r, "BAD to UID FETCH answered as %r" % r
	assert_ok(c.cmd("NOOP"))
	status, lines = c.cmd_multi("TOP 1 0")
	assert_ok(status)
	assert_same_bytes(unstuff(lines), top_bytes(fake.messages[0], 0), "TOP 1 0")
	assert_ok(c.quit())
	g.finish()


# --- faults from the client, against the real Dovecot --------------------------------------------

@pytest.fixture
def dgate(request, dovecot, tmp_path):
	"""popgate in front of the module's Dovecot, warmed up with a session of bob (the healthy
	user; carol's is the parallel session; alice's mailbox, with the 20 MB message, is what the
	tests read). Returns (Gate, Pop3Target)."""
	started = []

	def make(**overrides):
		kw = {"limits.auth_fail_delay_ms": 0}
		kw.update(overrides)
		pg = start_popgate(tmp_path / ("pg%d" % len(started)), dovecot.imap_port, **kw)
		g = Gate(pg, ("bob", dovecot.users["bob"], dovecot.seeded["bob"]),
			("carol", dovecot.users["carol"], dovecot.seeded["carol"]))
		started.append(g)
		return g.warm_up(), Pop3Target("popgate", dovecot, pg.port, pg)

	yield make
	_print_logs(request, started, dovecot=dovecot)
	for g in started:
		g.pg.stop()


def wait_session_end(g, user, count, timeout=5.0):
	return wait_session_lines(g.pg, user, count, timeout)


def test_client_vanishing_mid_retr_of_20mb_frees_everything(dgate, dovecot):
	g, t = dgate()
	g.begin()
	before = t.upstream("alice")
	assert wait_no_dovecot_session(dovecot, "alice") == []
	c = g.login("alice", dovecot.users["alice"])
	c.send(b"RETR %d\r\n" % messages.BIG)
	got = read_some(c.sock, 256 * 1024)
	assert got.startswith(b"+OK")
	assert len(doveadm_who(dovecot, "alice")) == 1
	c.close()
	lines = wait_session_end(g, "alice", 1)
	assert len(lines) == 1, "no end-of-session line for the vanished client:\n" + g.pg.log_tail()
	assert "retr=0" in lines[0] and "dele=0" in lines[0], lines[0]
	assert wait_no_dovecot_session(dovecot, "alice") == [], "Dovecot still has alice's session"
	assert t.upstream("alice") == before
	g.finish()


def test_dele_then_connection_drop_mid_retr_deletes_nothing(dgate):
	g, t = dgate()
	g.begin()
	u = t.fresh_user()
	c = g.login(u.user, u.password)
	assert_ok(c.cmd("DELE 1"))
	assert_ok(c.cmd("DELE 2"))
	c.send(b"RETR 7\r\n")	# the 50 KB multipart one
	assert c.sock.recv(4096).startswith(b"+OK")
	rst_close(c)
	assert len(wait_session_end(g, u.user, 1)) == 1
	# Whatever popgate's session sends upstream comes before its LOGOUT: once Dovecot has no
	# session of the user, the mailbox is what the dropped session left.
	assert wait_no_dovecot_session(t.dovecot, u.user) == [], "Dovecot still has the session"
	up = t.upstream(u.user)
	assert [x.message_id for x in up] == message_ids(u.messages)
	assert not [x for x in up if "\\Deleted" in x.flags], up
	g.finish()


def test_line_of_300_bytes_gets_err_and_the_session_goes_on(dgate, dovecot):
	g, t = dgate()
	g.begin()
	c = g.raw()
	assert_err(c.cmd(b"USER " + b"a" * 295), "300-byte line before login")
	c.login("alice", dovecot.users["alice"])
	assert_err(c.cmd(b"NOOP " + b"x" * 295), "300-byte line")
	assert_ok(c.cmd("NOOP"), "NOOP after a long line")
	assert_err(c.cmd(b"RETR 1" + b" " * 294), "300-byte RETR line")
	assert_ok(c.cmd("NOOP"))
	status, lines = c.cmd_multi("RETR 1")
	assert_same_bytes(unstuff(lines), pop3_bytes(dovecot.seeded["alice"][0]), "RETR 1")
	assert_ok(c.quit())
	g.finish()


def test_unknown_commands_close_the_connection_after_max_bad_commands(dgate, dovecot):
	g, t = dgate()
	g.begin()
	ended = len(g.session_lines("alice"))
	c = g.login("alice", dovecot.users["alice"])
	for i in range(1, 20):
		assert_err(c.cmd("XYZZY%d" % i), "unknown command %d" % i)
	c.send(b"XYZZY20\r\n")
	data, closed, _ = read_until_eof(c.sock, 5)
	lines = data.split(b"\r\n")
	assert closed, "still open after 20 bad commands: %r" % data
	assert len(lines) == 3 and lines[0].startswith(b"-ERR") and lines[1].startswith(b"-ERR") \
		and lines[2] == b"", "after the 20th bad command: %r" % data
	try:
		c.send(b"XYZZY21\r\nXYZZY22\r\nXYZZY23\r\nXYZZY24\r\nXYZZY25\r\n")
	except OSError:
		pass
	c.close()
	assert "too many bad commands" in wait_session_end(g, "alice", ended + 1)[-1]
	g.finish()


def test_second_session_of_a_user_is_in_use_until_the_first_quits(dgate, dovecot):
	g, t = dgate()
	g.begin()
	first = g.login("alice", dovecot.users["alice"])
	second = g.raw()
	assert_ok(second.cmd("USER alice"))
	r = second.cmd("PASS " + dovecot.users["alice"])
	assert r.startswith(b"-ERR [IN-USE]"), r
	assert_ok(first.cmd("STAT"), "the first session is not disturbed")
	assert_ok(first.quit())
	assert len(wait_session_end(g, "alice", 1)) == 1, "the first session did not end"
	second.login("alice", dovecot.users["alice"])
	assert second.cmd("STAT").startswith(b"+OK %d " % len(dovecot.seeded["alice"]))
	assert_ok(second.quit())
	g.finish()


def test_in_use_check_off_lets_a_second_session_in(dgate, dovecot):
	g, t = dgate(**{"pop3.in_use_check": "no"})
	first = g.login("alice", dovecot.users["alice"])
	second = g.login("alice", dovecot.users["alice"])
	assert second.cmd("STAT").startswith(b"+OK %d " % len(dovecot.seeded["alice"]))
	assert_ok(first.quit())
	assert_ok(second.quit())
	g.finish()


@pytest.mark.parametrize("limit,refusal", [
	("limits.max_per_address", b"-ERR"),	# connections from one address
	("limits.max_sessions", b"-ERR [SYS/TEMP]"),	# all sessions of the worker
])
def test_connection_over_a_limit_of_2_is_refused_and_the_others_go_on(dgate, limit, refusal):
	g, t = dgate(**{limit: 2})
	g.begin()	# connection 1
	c2 = g.raw()
	assert_ok(c2.greeting)
	s3 = socket.create_connection(("127.0.0.1", g.port), timeout=5)
	data, closed, _ = read_until_eof(s3, 5)
	s3.close()
	assert data.startswith(refusal), "third connection: %r" % data
	assert closed, "third connection left open: %r" % data
	assert_ok(c2.cmd("CAPA"), "the sessions under the limit are not disturbed")
	c2.read_multiline()
	ended = len(g.session_lines("-"))	# sessions that logged in no one
	c2.close()
	assert len(wait_session_end(g, "-", ended + 1)) == ended + 1, "c2's session did not end"
	g.finish()	# its new healthy session is the second connection again


def test_max_commands_closes_an_abusive_session_and_deletes_nothing(dgate):
	g, t = dgate(**{"limits.max_commands": 12})
	g.begin()
	u = t.fresh_user()
	c = g.login(u.user, u.password)	# USER, PASS: 2 commands
	assert_ok(c.cmd("DELE 1"))
	for i in range(9):
		assert_ok(c.cmd("NOOP"))
	c.send(b"NOOP\r\n")		# the 13th
	data, closed, _ = read_until_eof(c.sock, 5)
	c.close()
	assert data.startswith(b"-ERR") and closed, data
	assert t.upstream_ids(u.user) == message_ids(u.messages), "a forced close deleted something"
	g.finish()


def test_idle_client_is_logged_out_and_nothing_deleted(dgate):
	g, t = dgate(**{"pop3.idle_timeout": 2})
	# No parallel session: it would be idle too.
	u = t.fresh_user()
	c = g.login(u.user, u.password)
	assert_ok(c.cmd("DELE 1"))
	t0 = time.monotonic()
	data, closed, took = read_until_eof(c.sock, 10)
	c.close()
	assert closed and data.startswith(b"-ERR"), data
	assert 1.5 <= took <= 5, "closed %.1f s after the last command, idle_timeout is 2" % took
	assert "idle timeout" in wait_session_end(g, u.user, 1)[-1]
	assert t.upstream_ids(u.user) == message_ids(u.messages)
	# A slow but active client is not idle: 4 commands 1 s apart outlive the 2 s timeout.
	c = g.login(u.user, u.password)
	for i in range(4):
		time.sleep(1)
		assert_ok(c.cmd("NOOP"))
	assert_ok(c.quit())
	g.finish()


def test_slow_reader_keeps_rss_bounded_and_gets_the_exact_message(dgate, dovecot):
	g, t = dgate()
	g.begin()
	big = dovecot.seeded["alice"][messages.BIG - 1]
	c = g.login("alice", dovecot.users["alice"], timeout=60)
	c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
	c.send(b"RETR %d\r\n" % messages.BIG)
	data = bytearray()
	peak = g.pg.rss_kb()
	t_end = time.monotonic() + 2.5
	while time.monotonic() < t_end:
		chunk = c.sock.recv(64 * 1024)
		assert chunk, "closed by the server after %d bytes" % len(data)
		data += chunk
		peak = max(peak, g.pg.rss_kb())
		time.sleep(0.05)	# reading slowly is the condition under test
	growth_mb = (peak - g.baseline_rss) / 1024.0
	print("slow reader: %d bytes read slowly, popgate RSS %d -> peak %d KiB" % (
		len(data), g.baseline_rss, peak))
	assert growth_mb < 10, "popgate's RSS grew by %.1f MB for a slow reader" % growth_mb
	while not data.endswith(b"\r\n.\r\n"):
		chunk = c.sock.recv(1 << 20)
		assert chunk, "connection closed after %d bytes" % len(data)
		data += chunk
	status, _, body = bytes(data).partition(b"\r\n")
	assert_ok(status)
	assert_same_bytes(body[:-3], stuff(pop3_bytes(big)), "the 20 MB message")
	assert_ok(c.quit())
	g.finish()


def test_client_resetting_while_popgate_writes_does_not_kill_it(dgate, dovecot):
	g, t = dgate()
	g.begin()
	for i in range(3):
		c = g.login("alice", dovecot.users["alice"])
		c.send(b"RETR %d\r\n" % messages.BIG)
		assert read_some(c.sock, 128 * 1024).startswith(b"+OK")
		rst_close(c)	# popgate's next write gets EPIPE/ECONNRESET, never SIGPIPE
		assert len(wait_session_end(g, "alice", i + 1)) == i + 1
		assert g.pg.proc.poll() is None, "popgate died when the client reset"
	assert wait_no_dovecot_session(dovecot, "alice") == []
	g.finish()


def test_message_expunged_by_another_client_then_dele_of_others_and_quit(dgate):
	g, t = dgate()
	g.begin()
	u = t.fresh_user()
	c = g.login(u.user, u.password)
	assert c.cmd("STAT").startswith(b"+OK %d " % len(u.messages))
	m = t.imap(u.user)
	m.select("INBOX")
	m.store("3", "+FLAGS.SILENT", "(\\Deleted)")
	m.expunge()
	m.logout()
	assert_err(c.cmd("RETR 3"), "RETR of a message expunged meanwhile")
	assert_ok(c.cmd("NOOP"))
	assert_ok(c.cmd("DELE 1"))
	assert_ok(c.cmd("DELE 5"))
	status, lines = c.cmd_multi("RETR 4")
	assert_same_bytes(unstuff(lines), pop3_bytes(u.messages[3]), "RETR 4")
	assert_ok(c.quit())
	ids = message_ids(u.messages)
	assert t.upstream_ids(u.user) == [ids[1], ids[3], ids[5], ids[6]]
	g.finish()


def test_another_clients_deleted_flag_is_not_expunged_by_quit(dgate):
	g, t = dgate()
	g.begin()
	u = t.fresh_user()
	c = g.login(u.user, u.password)
	assert c.cmd("STAT").startswith(b"+OK %d " % len(u.messages))
	m = t.imap(u.user)
	m.select("INBOX")
	m.store("2", "+FLAGS.SILENT", "(\\Deleted)")	# flagged, not expunged
	m.logout()
	assert_ok(c.cmd("DELE 4"))
	assert_ok(c.quit())
	up = t.upstream(u.user)
	ids = message_ids(u.messages)
	assert [x.message_id for x in up] == ids[:3] + ids[4:], "UIDPLUS: only DELE'd messages go"
	assert "\\Deleted" in up[1].flags, up[1]
	assert not [x for x in up if x.message_id != ids[1] and "\\Deleted" in x.flags], up
	g.finish()
