"""QUIT on a large mailbox: thousands of scattered DELEs reach the upstream in pieces whose
command lines the server accepts, and exactly those messages go.

The Dovecot here caps IMAP command lines at 8 KB (imap_max_line_length; its default is 64 KB),
so a single UID STORE naming 3000 scattered UIDs (~14 KB) would be refused. The 6000 messages
are written straight into the user's Maildir (APPEND of that many takes too long for a test)."""

import os
import time

import pytest

import dovecot as dovecot_mod
from pop3client import Pop3Raw
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only

N = 6000


@pytest.fixture(scope="module")
def small_lines(make_dovecot):
	return make_dovecot(ssl=False, extra="imap_max_line_length = 8k\n")


def fill_maildir(d, user, password, n):
	"""n small messages in user's Maildir/new, Message-ID <big-K@popgate.test>, K = 1..n."""
	m = d.imap(user, password)	# creates the Maildir
	m.select("INBOX")
	m.logout()
	md = os.path.join(d.dir, "mail", user, "Maildir")
	assert os.path.isdir(os.path.join(md, "new")), md
	t = int(time.time())
	for k in range(1, n + 1):
		name = os.path.join(md, "new", "%d.M%06dP1.popgate-test" % (t, k))
		with open(name, "wb") as f:
			f.write(b"From: a@example.org\r\nTo: %s@example.net\r\nSubject: %d\r\n"
				b"Message-ID: <big-%d@popgate.test>\r\n\r\nbody %d\r\n" % (user.encode(), k, k, k))
		os.chown(name, dovecot_mod.MAIL_UID, dovecot_mod.MAIL_GID)


def ids_in_mailbox_order(d, user, password):
	"""The K of each message's <big-K@popgate.test>, in UID order (= POP3 message numbers)."""
	m = d.imap(user, password)
	typ, data = m.select("INBOX", readonly=True)
	assert typ == "OK"
	typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
	m.logout()
	out = []
	for item in data:
		if isinstance(item, tuple):
			out.append(int(item[1].split(b"<big-")[1].split(b"@")[0]))
	return out


def test_quit_deleting_3000_scattered_messages_goes_in_pieces(small_lines, tmp_path):
	d = small_lines
	user, password, _ = d.fresh_user(include_big=False, seed=False)
	fill_maildir(d, user, password, N)
	ids = ids_in_mailbox_order(d, user, password)
	assert sorted(ids) == list(range(1, N + 1))
	pg = start_popgate(tmp_path / "pg", d.imap_port)
	try:
		with Pop3Raw("127.0.0.1", pg.port, timeout=120) as c:
			c.login(user, password)
			assert c.cmd("STAT").startswith(b"+OK %d " % N)
			# Every odd message: no two neighbours, so the UID set has no ranges.
			c.send(b"".join(b"DELE %d\r\n" % k for k in range(1, N + 1, 2)))
			for k in range(1, N + 1, 2):
				r = c.readline()
				assert r.startswith(b"+OK"), "DELE %d: %r" % (k, r)
			r = c.cmd("QUIT")
			assert r.startswith(b"+OK"), r
			assert b"%d messages deleted" % (N // 2) in r, r
		log = pg.log()
	finally:
		pg.stop()
	# POP3 message k is the k-th in UID order: the even-numbered ones are left.
	assert ids_in_mailbox_order(d, user, password) == ids[1::2]
	assert "update failed" not in log


# --- a real Dovecot that does not offer UIDPLUS (imap_capability without it) ---

NO_UIDPLUS_CAPS = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE"


@pytest.fixture(scope="module")
def no_uidplus(make_dovecot):
	return make_dovecot(ssl=False, extra="imap_capability = %s\n" % NO_UIDPLUS_CAPS)


def upstream_state(d, user, password):
	"""[(Message-ID, is \\Deleted)] of user's INBOX, in UID order."""
	m = d.imap(user, password)
	typ, data = m.select("INBOX", readonly=True)
	assert typ == "OK"
	out = []
	if int(data[0]) > 0:
		typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
		for item in data:
			if isinstance(item, tuple):
				mid = item[1].split(b":", 1)[1].strip().decode()
				out.append((mid, b"\\Deleted" in item[0]))
	m.logout()
	return out


def pop3_dele_quit(port, user, password, nums):
	with Pop3Raw("127.0.0.1", port, timeout=30) as c:
		c.login(user, password)
		for n in nums:
			assert c.cmd("DELE %d" % n).startswith(b"+OK")
		return c.cmd("QUIT")


def test_dovecot_without_uidplus_caps_are_what_popgate_sees(no_uidplus):
	d = no_uidplus
	user, password, _ = d.fresh_user(include_big=False)
	m = d.imap(user, password)
	typ, data = m.capability()
	m.logout()
	caps = data[0].decode().upper().split()
	assert "UIDPLUS" not in caps and "IMAP4REV2" not in caps, caps


def test_without_uidplus_another_clients_deleted_message_survives_our_quit(no_uidplus, tmp_path):
	d = no_uidplus
	user, password, msgs = d.fresh_user(include_big=False)
	before = upstream_state(d, user, password)
	# Another IMAP client has flagged message 2 \Deleted and not expunged it yet.
	m = d.imap(user, password)
	m.select("INBOX")
	typ, _ = m.store("2", "+FLAGS.SILENT", "(\\Deleted)")
	assert typ == "OK"
	m.logout()
	pg = start_popgate(tmp_path / "pg", d.imap_port)
	try:
		r = pop3_dele_quit(pg.port, user, password, [1])
		log = pg.log()
	finally:
		pg.stop()
	assert r == b"-ERR [SYS/TEMP] some deleted messages not removed\r\n", r
	after = upstream_state(d, user, password)
	assert [mid for mid, _ in after] == [mid for mid, _ in before], "a message was expunged"
	assert after[0][1] and after[1][1], "ours stays flagged, theirs too: %r" % after[:2]
	assert not any(deleted for _, deleted in after[2:])
	assert "leaving 1 messages flagged" in log


def test_without_uidplus_quit_expunges_when_only_ours_are_deleted(no_uidplus, tmp_path):
	d = no_uidplus
	user, password, msgs = d.fresh_user(include_big=False)
	before = upstream_state(d, user, password)
	pg = start_popgate(tmp_path / "pg", d.imap_port)
	try:
		r = pop3_dele_quit(pg.port, user, password, [1, 3])
	finally:
		pg.stop()
	assert r.startswith(b"+OK") and b"2 messages deleted" in r, r
	after = upstream_state(d, user, password)
	assert [mid for mid, _ in after] == [before[1][0]] + [mid for mid, _ in before[3:]]
	assert not any(deleted for _, deleted in after)
