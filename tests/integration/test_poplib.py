"""POP3 as a mail client sees it (poplib, and a raw socket where poplib hides the wire), and what
is upstream afterwards (imaplib on the real Dovecot).

alice's mailbox (all seed messages, see messages.py) is only read. A test that deletes, or that
could delete if the server were wrong, uses pop3.fresh_user().
"""

import base64
import poplib
import re
import subprocess
import time

import pytest

import messages
from dovecot import DOVECONF
from helpers import (assert_err, assert_ok, assert_same_bytes, wait_no_dovecot_session,
	wait_session_lines)
from messages import NAMES, pop3_bytes, top_bytes, message_ids
from pop3client import stuff, unstuff

N = len(NAMES)
NUMS = [pytest.param(n, id="%d-%s" % (n, name)) for n, name in enumerate(NAMES, 1)]
SMALL_NUMS = [p for p in NUMS if p.values[0] != messages.BIG]


def joined(lines):
	"""Message bytes from poplib's lines (it strips each CRLF and unstuffs dots)."""
	return b"".join(line + b"\r\n" for line in lines)


def listing(lines):
	"""{n: value} from the lines of a LIST or UIDL answer."""
	out = {}
	for line in lines:
		n, v = line.split(b" ", 1)
		assert int(n) not in out, "message %s listed twice" % n
		out[int(n)] = v.decode()
	return out


def uidl_map(p):
	resp, lines, _ = p.uidl()
	assert resp.startswith(b"+OK"), resp
	return listing(lines)


def assert_alive(c):
	"""The session goes on after an error: NOOP answers +OK."""
	assert_ok(c.cmd("NOOP"), "NOOP after an error")


# --- STAT, LIST ---------------------------------------------------------------------------------

def test_stat_counts_all_messages_and_octets_sum_list_sizes(pop3):
	p = pop3.pop()
	count, octets = p.stat()
	resp, lines, _ = p.list()
	sizes = {n: int(v) for n, v in listing(lines).items()}
	assert count == len(pop3.messages)
	assert sorted(sizes) == list(range(1, count + 1))
	assert octets == sum(sizes.values())
	p.quit()


def test_list_sizes_equal_seeded_lengths_and_rfc822_size(pop3):
	p = pop3.pop()
	resp, lines, _ = p.list()
	sizes = {n: int(v) for n, v in listing(lines).items()}
	assert sizes == {n: len(m) for n, m in enumerate(pop3.messages, 1)}
	assert [sizes[n] for n in sorted(sizes)] == [u.size for u in pop3.upstream()]
	for n, m in enumerate(pop3.messages, 1):
		assert p.list(n) == b"+OK %d %d" % (n, len(m))
	p.quit()


# --- RETR ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", NUMS)
def test_retr_is_byte_exact(pop3, n):
	p = pop3.pop()
	resp, lines, octets = p.retr(n)
	assert resp.startswith(b"+OK"), resp
	# POP3 ends an unterminated last line with CRLF: the no-final-newline message gains b"\r\n".
	got = joined(lines)
	want = pop3_bytes(pop3.messages[n - 1])
	assert_same_bytes(got, want, "RETR %d" % n)
	p.quit()


def test_retr_wire_is_dot_stuffed(pop3):
	# The bytes on the wire, not poplib's reading of them: every line starting with "." gets one
	# more, lines end in CRLF, the answer ends with ".\r\n" and nothing else follows.
	with pop3.raw() as c:
		c.login(pop3.user, pop3.password)
		for n, m in enumerate(pop3.messages, 1):
			if n == messages.BIG:
				continue
			status, lines = c.cmd_multi("RETR %d" % n)
			assert_ok(status, "RETR %d" % n)
			assert_same_bytes(b"".join(lines), stuff(pop3_bytes(m)), "RETR %d (%s)" % (
				n, NAMES[n - 1]))
			assert_same_bytes(unstuff(lines), pop3_bytes(m), "RETR %d unstuffed" % n)
		assert_ok(c.cmd("NOOP"))
		assert_ok(c.quit())


# --- TOP ----------------------------------------------------------------------------------------

TOP_CASES = [pytest.param(p.values[0], lines, id="%s-top%s" % (p.id, lines))
	for p in NUMS for lines in (0, 2, 1000000)
	if not (p.values[0] == messages.BIG and lines == 1000000)]	# that would be RETR again


@pytest.mark.parametrize("n,lines", TOP_CASES)
def test_top_is_header_blank_line_and_n_body_lines(pop3, n, lines):
	# TOP n 0 is exactly the header and the empty line; TOP n 2 adds the first 2 body lines;
	# more lines than the body has give the whole message.
	p = pop3.pop()
	resp, got, _ = p.top(n, lines)
	assert resp.startswith(b"+OK"), resp
	assert_same_bytes(joined(got), top_bytes(pop3.messages[n - 1], lines), "TOP %d %d" % (
		n, lines))
	p.quit()


def test_top_of_the_20mb_message_completes(pop3):
	# No timing assertion, but popgate must not fetch 20 MB for it (a slow path shows up here).
	with pop3.raw(timeout=60) as c:
		c.login(pop3.user, pop3.password)
		t = time.monotonic()
		status, lines = c.cmd_multi("TOP %d 0" % messages.BIG)
		assert_ok(status)
		assert_same_bytes(unstuff(lines), top_bytes(pop3.messages[messages.BIG - 1], 0),
			"TOP %d 0" % messages.BIG)
		print("TOP of the 20 MB message: %.3f s" % (time.monotonic() - t))
		assert_ok(c.quit())


# --- the wire: dot-stuffing where poplib cannot see it ------------------------------------------
#
# poplib un-stuffs only lines that start with "..": a line ".x" sent without its stuffing reads
# back as ".x", so the poplib tests above would pass a server that never stuffs a line that is
# not just ".". These read the answer's bytes as sent and compare them with the stored message
# dot-stuffed (every line starting with "." gets one more), ended by CRLF "." CRLF.

def wire_answer(c, cmd):
	"""The bytes after the +OK line of a multi-line answer, its final ".\\r\\n" included."""
	status, lines = c.cmd_multi(cmd)
	assert_ok(status, cmd)
	return b"".join(lines) + b".\r\n"


def dot_stuffed(data, what):
	"""What must be on the wire for data (ending in CRLF), checked to differ from data
	unstuffed: the case must have lines to stuff, or it cannot catch a server that forgets."""
	want = stuff(data) + b".\r\n"
	assert want != data + b".\r\n", "%s has no line starting with '.': it proves nothing" % what
	return want


def assert_top_wire(c, n, stored, m):
	want = top_bytes(stored, m)
	if m > 0:
		want = dot_stuffed(want, "TOP %d %d" % (n, m))
	else:
		want = stuff(want) + b".\r\n"
	assert_same_bytes(wire_answer(c, "TOP %d %d" % (n, m)), want, "TOP %d %d on the wire" % (n, m))


def lines_until(body, offset):
	"""How many whole lines of body end (CRLF included) at or before offset."""
	return body.count(b"\r\n", 0, offset)


def test_retr_wire_of_the_20mb_message_is_dot_stuffed_exactly(pop3):
	# Every 997th line of it starts with "." (the first body line too), deep into the stream.
	big = pop3.messages[messages.BIG - 1]
	want = dot_stuffed(pop3_bytes(big), "the 20 MB message")
	with pop3.raw(timeout=120) as c:
		c.login(pop3.user, pop3.password)
		assert_same_bytes(wire_answer(c, "RETR %d" % messages.BIG), want, "RETR of 20 MB on the wire")
		assert_ok(c.cmd("NOOP"), "nothing after the final '.'")
		assert_ok(c.quit())


def test_top_wire_of_the_20mb_message_is_dot_stuffed_exactly_across_windows(pop3):
	# popgate fetches TOP's body in windows (4 KB growing 4 times each, up to 1 MB): these
	# counts ask for the first body line (a "." line), the 998th (the next one), and 1.5 MB,
	# 7.7 MB of lines, several windows each.
	big = pop3.messages[messages.BIG - 1]
	_, body = messages.split_header(big)
	assert body.startswith(b".") and body.split(b"\r\n")[997].startswith(b".")
	with pop3.raw(timeout=120) as c:
		c.login(pop3.user, pop3.password)
		for m in (0, 1, 2, 997, 998, lines_until(body, 1536 * 1024) + 1,
				lines_until(body, 7700 * 1024)):
			assert_top_wire(c, messages.BIG, big, m)
		assert_ok(c.cmd("NOOP"), "nothing after the final '.'")
		assert_ok(c.quit())


def test_retr_and_top_wire_of_a_message_of_dot_lines_are_dot_stuffed_exactly(pop3):
	# 2.9 MB of lines of every length, most starting with ".", some only "." or "..", some
	# with a "." inside; at each offset where popgate may start a TOP window, a "." line
	# starts, or a mid-line "." sits, or a CRLF is split (messages.dots_everywhere). The
	# last line starts with "." and has no final newline: POP3 adds the CRLF, then stuffs.
	u = pop3.fresh_user(seed=False)
	msg = messages.dots_everywhere(u.user)
	pop3.dovecot.seed_mailbox(u.user, msgs=[msg])
	pop3.seeded[u.user] = [msg]
	_, body = messages.split_header(msg)
	counts = {0, 1, 2, 30, 31}
	for b in messages.top_window_boundaries(len(body)):
		counts |= {lines_until(body, b), lines_until(body, b) + 1}
	counts.add(body.count(b"\r\n") + 5)	# more than there are: the whole message
	with pop3.raw(timeout=120) as c:
		c.login(u.user, u.password)
		assert_same_bytes(wire_answer(c, "RETR 1"), dot_stuffed(pop3_bytes(msg), "RETR 1"),
			"RETR of the dot lines on the wire")
		for m in sorted(counts):
			assert_top_wire(c, 1, msg, m)
		assert_ok(c.cmd("NOOP"), "nothing after the final '.'")
		assert_ok(c.quit())


# --- UIDL ---------------------------------------------------------------------------------------

def test_uidl_unique_consistent_and_stable_across_sessions(pop3):
	p = pop3.pop()
	uidls = uidl_map(p)
	assert sorted(uidls) == list(range(1, len(pop3.messages) + 1))
	assert len(set(uidls.values())) == len(uidls), "UIDLs not unique: %r" % uidls
	for u in uidls.values():
		# RFC 1939: 1 to 70 characters from 0x21 to 0x7E.
		assert re.fullmatch(r"[\x21-\x7e]{1,70}", u), "bad UIDL %r" % u
	for n, u in uidls.items():
		assert p.uidl(n) == ("+OK %d %s" % (n, u)).encode()
	p.quit()
	p = pop3.pop()
	assert uidl_map(p) == uidls, "UIDLs changed between two sessions"
	p.quit()


def pop3_view(host, port, user, password):
	"""What a POP3 client sees of user's mailbox: (STAT, {n: LIST size}, {n: UIDL})."""
	p = poplib.POP3(host, port, timeout=60)
	try:
		p.user(user)
		p.pass_(password)
		stat = p.stat()
		sizes = {n: int(v) for n, v in listing(p.list()[1]).items()}
		return stat, sizes, uidl_map(p)
	finally:
		p.quit()


def both_views(pop3):
	"""For alice's mailbox (the 20 MB message too) and a fresh one with a gap in its UIDs
	(message 2 expunged, one appended since: a UIDL made from message numbers would differ):
	[(user, popgate's view, the view of Dovecot's own POP3)], see pop3_view(). The test
	Dovecot makes its UIDLs with its default pop3_uidl_format, which popgate's README and
	common/cache.h say popgate follows."""
	r = subprocess.run([DOVECONF, "-c", pop3.dovecot.conf, "-h", "pop3_uidl_format"],
		capture_output=True, text=True, timeout=30)
	assert r.stdout.strip() == "%08Xu%08Xv", "Dovecot's pop3_uidl_format: %r" % r.stdout
	u = pop3.fresh_user()
	m = pop3.imap(u.user)
	m.select("INBOX")
	m.store("2", "+FLAGS.SILENT", "(\\Deleted)")
	m.expunge()
	typ, _ = m.append("INBOX", None, None, messages._msg(99, u.user, "after a gap", b"new\r\n"))
	assert typ == "OK"
	m.logout()
	uids = [x.uid for x in pop3.upstream(u.user)]
	assert uids != list(range(1, len(uids) + 1)), "no gap in the UIDs: %r" % uids
	return [(user, pop3_view(pop3.host, pop3.port, user, pop3.users[user]),
		pop3_view(pop3.host, pop3.dovecot.pop3_port, user, pop3.users[user]))
		for user in ("alice", u.user)]


@pytest.mark.popgate_only
def test_stat_list_and_uidls_are_those_of_dovecots_own_pop3(pop3):
	# A user moving from Dovecot's POP3 to popgate must not download everything again: the
	# same messages, sizes and UIDLs, byte for byte (clients compare them so: a UIDL in
	# another letter case is another message), in the same order.
	for user, ours, theirs in both_views(pop3):
		assert ours[0] == theirs[0], "%s: STAT %r, Dovecot's POP3 says %r" % (user, ours[0], theirs[0])
		assert ours[1] == theirs[1], "%s: LIST differs from Dovecot's POP3" % user
		assert ours[2] == theirs[2], "%s: UIDL differs from Dovecot's POP3" % user


# --- DELE, RSET, QUIT and what is upstream afterwards ------------------------------------------

def test_dele_and_quit_removes_exactly_that_message_upstream(pop3):
	u = pop3.fresh_user()
	p = pop3.pop(u.user)
	before = uidl_map(p)
	assert p.dele(2).startswith(b"+OK")
	assert p.quit().startswith(b"+OK")
	ids = message_ids(u.messages)
	assert pop3.upstream_ids(u.user) == ids[:1] + ids[2:]
	# The next session: one message fewer, the others keep their UIDLs, and the numbers close up.
	p = pop3.pop(u.user)
	assert p.stat()[0] == len(u.messages) - 1
	assert sorted(uidl_map(p).values()) == sorted(v for n, v in before.items() if n != 2)
	assert_same_bytes(joined(p.retr(2)[1]), pop3_bytes(u.messages[2]), "RETR 2")
	p.quit()


def test_dele_all_and_quit_empties_the_mailbox(pop3):
	u = pop3.fresh_user()
	p = pop3.pop(u.user)
	for n in range(1, len(u.messages) + 1):
		assert p.dele(n).startswith(b"+OK")
	assert p.stat() == (0, 0)
	p.quit()
	assert pop3.upstream(u.user) == []
	p = pop3.pop(u.user)
	assert p.stat() == (0, 0)
	p.quit()


def test_dele_then_disconnect_without_quit_deletes_nothing(pop3):
	u = pop3.fresh_user()
	c = pop3.raw()
	c.login(u.user, u.password)
	assert_ok(c.cmd("DELE 1"))
	assert_ok(c.cmd("DELE 3"))
	c.close()	# no QUIT: RFC 1939 says no UPDATE state
	# The server notices the close before we look upstream: its session ends (popgate logs
	# its line, then logs out upstream; Dovecot's pop3 session ends), and whatever it sent
	# upstream came before: once Dovecot has no session of the user, the mailbox is final.
	if pop3.popgate is not None:
		assert wait_session_lines(pop3.popgate, u.user, 1), "popgate's session did not end"
	assert wait_no_dovecot_session(pop3.dovecot, u.user) == [], "Dovecot still has the session"
	up = pop3.upstream(u.user)
	assert [x.message_id for x in up] == message_ids(u.messages)
	assert not [x for x in up if "\\Deleted" in x.flags], "\\Deleted left upstream: %r" % up
	p = pop3.pop(u.user)
	assert p.stat()[0] == len(u.messages)
	p.quit()


def test_dele_rset_quit_deletes_nothing(pop3):
	u = pop3.fresh_user()
	p = pop3.pop(u.user)
	before = uidl_map(p)
	assert p.dele(1).startswith(b"+OK")
	assert p.rset().startswith(b"+OK")
	assert p.stat()[0] == len(u.messages)
	p.quit()
	up = pop3.upstream(u.user)
	assert [x.message_id for x in up] == message_ids(u.messages)
	assert not [x for x in up if "\\Deleted" in x.flags]
	p = pop3.pop(u.user)
	assert uidl_map(p) == before
	p.quit()


def test_deleted_message_is_gone_for_the_rest_of_the_session(pop3):
	u = pop3.fresh_user()
	with pop3.raw() as c:
		c.login(u.user, u.password)
		assert_ok(c.cmd("DELE 1"))
		assert_err(c.cmd("DELE 1"), "DELE of a deleted message")
		assert_err(c.cmd("RETR 1"), "RETR of a deleted message")
		assert_err(c.cmd("TOP 1 0"), "TOP of a deleted message")
		assert_err(c.cmd("LIST 1"), "LIST of a deleted message")
		assert_err(c.cmd("UIDL 1"), "UIDL of a deleted message")
		assert_alive(c)
		# STAT, LIST and UIDL leave it out.
		total = sum(len(m) for m in u.messages[1:])
		assert c.cmd("STAT") == b"+OK %d %d\r\n" % (len(u.messages) - 1, total)
		status, lines = c.cmd_multi("LIST")
		assert sorted(listing(x.rstrip(b"\r\n") for x in lines)) == list(range(2, len(u.messages) + 1))
		status, lines = c.cmd_multi("UIDL")
		assert sorted(listing(x.rstrip(b"\r\n") for x in lines)) == list(range(2, len(u.messages) + 1))
		# RSET brings it back.
		assert_ok(c.cmd("RSET"))
		status, lines = c.cmd_multi("RETR 1")
		assert_ok(status)
		assert_same_bytes(unstuff(lines), pop3_bytes(u.messages[0]), "RETR 1")
		assert_ok(c.quit())
	assert pop3.upstream_ids(u.user) == message_ids(u.messages)


# --- errors: the session goes on ----------------------------------------------------------------

def test_bad_message_numbers_get_err_and_the_session_goes_on(pop3):
	u = pop3.fresh_user()
	with pop3.raw() as c:
		c.login(u.user, u.password)
		n = len(u.messages)
		for cmd in ("RETR 0", "RETR 999", "RETR abc", "RETR %d" % (n + 1), "RETR -1", "RETR",
				"LIST 0", "LIST 999", "TOP 999 0", "TOP 1", "TOP 1 abc", "DELE 0", "DELE 999",
				"DELE abc", "UIDL 0", "UIDL 999"):
			assert_err(c.cmd(cmd), cmd)
			assert_alive(c)
		status, lines = c.cmd_multi("RETR 1")
		assert_same_bytes(unstuff(lines), pop3_bytes(u.messages[0]), "RETR 1")
		assert_ok(c.quit())
	assert pop3.upstream_ids(u.user) == message_ids(u.messages)


def test_wrong_password_gets_err_auth_and_a_retry_works(pop3):
	with pop3.raw() as c:
		assert_ok(c.cmd("USER alice"))
		r = c.cmd("PASS not-the-password")
		assert_err(r, "wrong password")
		# RFC 3206 [AUTH]: the password is wrong (not a temporary failure). Dovecot says it too.
		assert b"[AUTH]" in r, r
		assert_err(c.cmd("STAT"), "STAT after a failed login")
		c.login("alice", pop3.password)
		assert c.cmd("STAT").startswith(b"+OK %d " % len(pop3.messages))
		assert_ok(c.quit())


def test_unknown_user_gets_err(pop3):
	with pop3.raw() as c:
		r = c.cmd("USER nosuchuser")
		if r.startswith(b"+OK"):
			r = c.cmd("PASS whatever")
		assert_err(r, "unknown user")


@pytest.mark.parametrize("cmd", ["STAT", "LIST", "LIST 1", "RETR 1", "DELE 1", "UIDL", "TOP 1 0",
	"RSET", "NOOP", "PASS alice-secret-1"])
def test_command_before_login_gets_err_and_login_still_works(pop3, cmd):
	# One connection per command: Dovecot's pop3-login closes after 3 bad commands.
	with pop3.raw() as c:
		assert_err(c.cmd(cmd), cmd + " before login")
		c.login(pop3.user, pop3.password)
		assert_ok(c.cmd("STAT"))
		assert_ok(c.quit())


def test_unknown_command_gets_err_and_noop_still_works(pop3):
	with pop3.raw() as c:
		assert_err(c.cmd("XYZZY"), "unknown command before login")
		c.login(pop3.user, pop3.password)
		assert_err(c.cmd("XYZZY"), "unknown command")
		assert_err(c.cmd("XYZZY 1 2 3"), "unknown command with arguments")
		assert_ok(c.cmd("NOOP"))
		assert_ok(c.cmd("STAT"))
		assert_ok(c.quit())


def test_quit_before_login(pop3):
	with pop3.raw() as c:
		assert_ok(c.cmd("QUIT"))


# --- PIPELINING, CAPA ---------------------------------------------------------------------------

def test_pipelined_commands_are_answered_in_order(pop3):
	m1 = pop3.messages[0]
	with pop3.raw() as c:
		c.login(pop3.user, pop3.password)
		uidl1 = c.cmd("UIDL 1")
		c.send(b"STAT\r\nLIST 1\r\nUIDL 1\r\nNOOP\r\n")
		total = sum(len(m) for m in pop3.messages)
		assert c.readline() == b"+OK %d %d\r\n" % (len(pop3.messages), total)
		assert c.readline() == b"+OK 1 %d\r\n" % len(m1)
		assert c.readline() == uidl1
		assert_ok(c.readline(), "NOOP")
		# Multi-line answers too, and QUIT at the end of the batch.
		c.send(b"LIST\r\nUIDL\r\nRETR 1\r\nTOP 2 0\r\nQUIT\r\n")
		for what in ("LIST", "UIDL"):
			assert_ok(c.readline(), what)
			assert len(c.read_multiline()) == len(pop3.messages)
		assert_ok(c.readline(), "RETR 1")
		assert_same_bytes(unstuff(c.read_multiline()), pop3_bytes(m1), "RETR 1")
		assert_ok(c.readline(), "TOP 2 0")
		assert_same_bytes(unstuff(c.read_multiline()), top_bytes(pop3.messages[1], 0), "TOP 2 0")
		assert_ok(c.readline(), "QUIT")


def test_capa_lists_what_clients_need(pop3):
	with pop3.raw() as c:
		status, lines = c.cmd_multi("CAPA")
		assert_ok(status)
		caps = {line.split()[0].decode().upper() for line in lines if line.strip()}
		assert {"TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES"} <= caps, caps
		c.login(pop3.user, pop3.password)
		status, lines = c.cmd_multi("CAPA")
		assert_ok(status)
		caps = {line.split()[0].decode().upper() for line in lines if line.strip()}
		assert {"TOP", "UIDL", "PIPELINING", "RESP-CODES"} <= caps, caps
		assert_ok(c.quit())


# --- logins with awkward passwords, empty mailbox -----------------------------------------------

def test_password_with_space_quote_backslash_literal_and_utf8(pop3):
	# carol's password is  p a"ss\{5}wörd : whatever popgate sends upstream must carry it intact.
	p = pop3.pop("carol")
	assert p.stat()[0] == len(pop3.seeded["carol"])
	p.quit()
	p = pop3.pop("bob")	# "bob pass 2": spaces only
	assert p.stat()[0] == len(pop3.seeded["bob"])
	p.quit()


def test_auth_plain_with_awkward_password(pop3):
	blob = base64.b64encode(b"\0carol\0" + pop3.users["carol"].encode("utf-8")).decode()
	with pop3.raw() as c:
		assert_ok(c.cmd("AUTH PLAIN " + blob), "AUTH PLAIN with an initial response")
		assert c.cmd("STAT").startswith(b"+OK %d " % len(pop3.seeded["carol"]))
		assert_ok(c.quit())
	with pop3.raw() as c:
		r = c.cmd("AUTH PLAIN")
		assert r.startswith(b"+ "), "AUTH PLAIN without an initial response: %r" % r
		assert_ok(c.cmd(blob), "the PLAIN response")
		assert_ok(c.quit())


def test_empty_mailbox(pop3):
	p = pop3.pop("empty")
	assert p.stat() == (0, 0)
	assert p.list()[1] == []
	assert p.uidl()[1] == []
	with pytest.raises(poplib.error_proto):
		p.retr(1)
	p.quit()


# --- upstream untouched by reading; the session's snapshot ---------------------------------------

def test_reading_changes_nothing_upstream(pop3):
	u = pop3.fresh_user()
	before = pop3.upstream(u.user)
	p = pop3.pop(u.user)
	for n in range(1, len(u.messages) + 1):
		p.retr(n)
		p.top(n, 1)
	p.uidl()
	p.quit()
	assert pop3.upstream(u.user) == before, "reading through POP3 changed flags or messages"
	assert not [x for x in before if x.flags], before


def test_new_mail_appears_in_the_next_session_only(pop3):
	u = pop3.fresh_user()
	p = pop3.pop(u.user)
	n = len(u.messages)
	assert p.stat()[0] == n
	new = messages._msg(99, u.user, "arrived during the session", b"new\r\n")
	m = pop3.imap(u.user)
	assert m.append("INBOX", None, None, new)[0] == "OK"
	m.logout()
	assert p.stat()[0] == n, "message numbers must not change during a session"
	with pytest.raises(poplib.error_proto):
		p.list(n + 1)
	p.quit()
	p = pop3.pop(u.user)
	assert p.stat()[0] == n + 1
	assert_same_bytes(joined(p.retr(n + 1)[1]), new, "RETR of the new message")
	p.quit()


def test_message_expunged_by_another_client_gets_err_and_the_session_goes_on(pop3):
	u = pop3.fresh_user()
	with pop3.raw() as c:
		c.login(u.user, u.password)
		assert c.cmd("STAT").startswith(b"+OK %d " % len(u.messages))
		m = pop3.imap(u.user)
		m.select("INBOX")
		m.store("3", "+FLAGS.SILENT", "(\\Deleted)")
		m.expunge()
		m.logout()
		assert_err(c.cmd("RETR 3"), "RETR of a message expunged meanwhile")
		assert_alive(c)
		status, lines = c.cmd_multi("RETR 4")
		assert_ok(status)
		assert_same_bytes(unstuff(lines), pop3_bytes(u.messages[3]), "RETR 4")
		assert_ok(c.quit())
	ids = message_ids(u.messages)
	assert pop3.upstream_ids(u.user) == ids[:2] + ids[3:]


# --- popgate's own promises ---------------------------------------------------------------------

@pytest.mark.popgate_only
def test_unreachable_upstream_gets_err_sys_temp(tmp_path):
	# A second popgate whose upstream port has nothing listening (RFC 3206 [SYS/TEMP]: try later).
	from dovecot import free_ports
	from pop3client import Pop3Raw
	from popgate import start_popgate
	with start_popgate(tmp_path / "down", free_ports(1)[0]) as pg:
		with Pop3Raw("127.0.0.1", pg.port, timeout=15) as c:
			assert_ok(c.cmd("USER alice"))
			r = c.cmd("PASS alice-secret-1")
			assert_err(r, "login with the upstream down")
			assert b"[SYS/TEMP]" in r, r
