"""FETCH data is matched by UID and item, never by the order it arrives in: what a POP3 user
sees when the upstream sends another message's literal first, an unsolicited FETCH, a UID after
the literal, a TOP window of another message or of a stale origin, or answers BODY[] as a quoted
string or NIL. The upstream is the scripted fake IMAP server (fakeimap.py, the
MATCH_SCENARIOS): Dovecot does not produce these. Every test then shows the session goes on
(NOOP, another RETR byte-exact) and popgate is still running.
"""

import pytest

from fakeimap import FakeImap, default_messages
from helpers import assert_same_bytes, read_until_eof
from messages import pop3_bytes, top_bytes
from pop3client import Pop3Raw, stuff
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only


@pytest.fixture
def gate(request, tmp_path):
	"""make(fake) -> popgate in front of that fake (upstream_timeout=2)."""
	started = []

	def make(fake):
		pg = start_popgate(tmp_path / ("pg%d" % len(started)), fake.port,
			**{"limits.upstream_timeout": 2, "limits.auth_fail_delay_ms": 0})
		started.append((pg, fake))
		return pg

	yield make
	rep = getattr(request.node, "rep_call", None)
	for pg, fake in started:
		if rep is not None and rep.failed:
			print("--- popgate log tail:\n" + pg.log_tail(60))
			print("--- fake IMAP transcript:\n" + fake.transcript())
		pg.stop()


def login(pg, user):
	c = Pop3Raw("127.0.0.1", pg.port, timeout=15)
	c.login(user, "pw")
	return c


def retr_wire(c, n):
	"""The raw answer to RETR n: status line + dot-stuffed lines + ".\\r\\n", or the -ERR line."""
	status, lines = c.cmd_multi("RETR %d" % n)
	return status if lines is None else status + b"".join(lines) + b".\r\n"


def expect_retr(msg):
	return b"+OK %d octets\r\n" % len(msg) + stuff(pop3_bytes(msg)) + b".\r\n"


def top_wire(c, n, m):
	status, lines = c.cmd_multi("TOP %d %d" % (n, m))
	assert status.startswith(b"+OK"), status
	return b"".join(lines) + b".\r\n"


def still_serving(pg, c, msgs, n=3):
	"""The session goes on: NOOP, then RETR n byte-exact; popgate is still running."""
	assert c.cmd("NOOP").startswith(b"+OK")
	assert_same_bytes(retr_wire(c, n), expect_retr(msgs[n - 1]), "RETR %d" % n)
	assert pg.proc.poll() is None, "popgate exited"


def test_retr_skips_another_uids_literal_sent_before_ours(fake, gate):
	pg = gate(fake)
	msgs = fake.messages
	c = login(pg, "other_uid_first")
	# The fake sends "* 2 FETCH (UID 2 BODY[] {n}" (message 2) before message 1's answer.
	assert_same_bytes(retr_wire(c, 1), expect_retr(msgs[0]), "RETR 1")
	assert_same_bytes(retr_wire(c, 2), expect_retr(msgs[1]), "RETR 2")
	still_serving(pg, c, msgs)
	assert c.quit().startswith(b"+OK")


def test_retr_skips_unsolicited_fetch_and_another_uids_literal_whose_uid_comes_after(fake, gate):
	pg = gate(fake)
	msgs = fake.messages
	c = login(pg, "uid_after_literal")
	# "* 2 FETCH (BODY[] {0}\r\n UID 2)", "* 1 FETCH (FLAGS (\Seen))", then ours with its UID
	# after the literal: the empty literal is not message 1, and nothing of it was sent.
	assert_same_bytes(retr_wire(c, 1), expect_retr(msgs[0]), "RETR 1")
	assert_same_bytes(retr_wire(c, 2), expect_retr(msgs[1]), "RETR 2")
	still_serving(pg, c, msgs)
	assert c.quit().startswith(b"+OK")


def test_retr_streamed_data_of_another_uid_named_after_the_literal_cuts_without_terminator(fake, gate):
	pg = gate(fake)
	msgs = fake.messages
	c = login(pg, "other_uid_after_literal")
	# Message 2's bytes stream before its "UID 2" says whose they are: the client must see a
	# cut, never a "." that would make it store message 2 as message 1.
	c.send(b"RETR 1\r\n")
	data, closed, _ = read_until_eof(c.sock, 10)
	c.close()
	assert data.startswith(b"+OK"), data[:200]
	assert closed, "not cut: %r" % data[-200:]
	assert b"\r\n.\r\n" not in data, "a terminating '.' for another message's data"
	assert "belonged to another UID" in pg.log()
	# popgate goes on: a new session is served.
	c = login(pg, "ok-after")
	still_serving(pg, c, msgs)
	assert c.quit().startswith(b"+OK")


def test_retr_serves_body_sent_as_quoted_string(gate):
	# A quoted string holds no CR or LF: a one-line message (quotes, backslash, a leading
	# dot, braces) and an empty one; message 3 has lines, so it comes as a literal.
	one_line = b'.hello "quoted" \\ (parens) {5} [x]'
	msgs = [one_line, b"", default_messages()[2]]
	with FakeImap(messages=msgs) as fake:
		pg = gate(fake)
		c = login(pg, "quoted_body")
		assert retr_wire(c, 1) == b"+OK %d octets\r\n" % len(one_line) + \
			b'..hello "quoted" \\ (parens) {5} [x]\r\n.\r\n'
		assert retr_wire(c, 2) == b"+OK 0 octets\r\n.\r\n"
		still_serving(pg, c, msgs)
		assert c.quit().startswith(b"+OK")


def test_retr_and_top_of_body_nil_are_sys_temp_and_the_session_goes_on(fake, gate):
	pg = gate(fake)
	msgs = fake.messages
	c = login(pg, "nil_body")
	r = c.cmd("RETR 2")
	assert r.startswith(b"-ERR [SYS/TEMP]"), r
	r = c.cmd("TOP 2 0")
	assert r.startswith(b"-ERR [SYS/TEMP]"), r
	assert_same_bytes(top_wire(c, 1, 1), stuff(top_bytes(msgs[0], 1)) + b".\r\n", "TOP 1 1")
	still_serving(pg, c, msgs)
	assert c.quit().startswith(b"+OK")


def test_top_skips_windows_of_another_uid_and_of_a_stale_origin(fake, gate):
	pg = gate(fake)
	msgs = fake.messages
	c = login(pg, "stale_window")
	# Before ours: message 2's window at our origin, message 1's window at another origin.
	assert_same_bytes(top_wire(c, 1, 2), stuff(top_bytes(msgs[0], 2)) + b".\r\n", "TOP 1 2")
	assert_same_bytes(top_wire(c, 2, 3), stuff(top_bytes(msgs[1], 3)) + b".\r\n", "TOP 2 3")
	assert_same_bytes(top_wire(c, 3, 150), stuff(top_bytes(msgs[2], 150)) + b".\r\n", "TOP 3 150")
	still_serving(pg, c, msgs)
	assert c.quit().startswith(b"+OK")


def test_top_items_of_another_uid_in_one_line_are_all_undone_or_cut(fake, gate):
	# Two items taken before the UID at the end of their line said "another message":
	# both are undone when nothing reached the client; once bytes did, only a cut is honest.
	pg = gate(fake)
	msgs = fake.messages
	c = login(pg, "two_items_uid_last")
	assert_same_bytes(top_wire(c, 1, 2), stuff(top_bytes(msgs[0], 2)) + b".\r\n", "TOP 1 2")
	c.send(b"TOP 2 2\r\n")
	data, closed, _ = read_until_eof(c.sock, 10)
	c.close()
	assert data.startswith(b"+OK") and closed, data[:200]
	assert not data.endswith(b"\r\n.\r\n"), "a terminating '.' after another message's header"
	c = login(pg, "ok-after")
	still_serving(pg, c, msgs)
	assert c.quit().startswith(b"+OK")


def test_top_window_answered_before_the_header_is_asked_again(fake, gate):
	# It used to be skipped, and TOP ended after the header with a "." as if the body were
	# empty.
	pg = gate(fake)
	msgs = fake.messages
	c = login(pg, "window_first")
	assert_same_bytes(top_wire(c, 1, 2), stuff(top_bytes(msgs[0], 2)) + b".\r\n", "TOP 1 2")
	assert_same_bytes(top_wire(c, 3, 5), stuff(top_bytes(msgs[2], 5)) + b".\r\n", "TOP 3 5")
	still_serving(pg, c, msgs)
	assert c.quit().startswith(b"+OK")
