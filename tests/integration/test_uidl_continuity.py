"""UIDLs kept across a rebuilt mailbox (issue: no customer downloads his mailbox twice).

When the IMAP side rebuilds a mailbox (index and uidlist lost, the messages appended again:
a new UIDVALIDITY and new UIDs), a POP3 client that leaves mail on the server would download
everything again unless every message keeps its UIDL. popgate matches the messages to the
UIDLs it gave before by content key (common/content_key.h), asked upstream only for messages
new to its cache. Real Dovecot, rebuilt under popgate's feet."""

import hashlib

import pytest

from helpers import add_duplicate_of_first, rebuild
from pop3client import Pop3Raw
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only


def uidls_by_header(port, user, password):
	"""{sha256 of the message's header as TOP n 0 gives it: UIDL}, and the UIDL list."""
	out = {}
	with Pop3Raw("127.0.0.1", port) as c:
		c.login(user, password)
		status, lines = c.cmd_multi("UIDL")
		assert status.startswith(b"+OK"), status
		uidls = [l.split()[1].decode() for l in lines]
		for n, uidl in enumerate(uidls, 1):
			status, head = c.cmd_multi("TOP %d 0" % n)
			assert status.startswith(b"+OK"), status
			key = hashlib.sha256(b"".join(head)).hexdigest()
			out.setdefault(key, []).append(uidl)
		assert c.quit().startswith(b"+OK")
	return out, uidls


def test_uidls_survive_a_rebuilt_mailbox(dovecot, tmp_path):
	user, password, _ = dovecot.fresh_user()
	add_duplicate_of_first(dovecot, user)	# two copies of one message pair up in order
	pg = start_popgate(tmp_path / "pg", dovecot.imap_port)
	try:
		before, before_list = uidls_by_header(pg.port, user, password)
		assert len(before_list) >= 3 and len(set(before_list)) == len(before_list)
		n = rebuild(dovecot, user)
		# Dovecot's own POP3 now gives other UIDLs: what a derived UIDL would be too.
		theirs, _ = uidls_by_header(dovecot.pop3_port, user, password)
		assert sorted(sum(theirs.values(), [])) != sorted(before_list)
		after, after_list = uidls_by_header(pg.port, user, password)
		assert {k: sorted(v) for k, v in after.items()} == \
			{k: sorted(v) for k, v in before.items()}, pg.log_tail()
		assert "UIDLs of UIDVALIDITY" in pg.log() and "imported=0 matched=%d new=0 lost=0" % n in pg.log(), \
			pg.log_tail()
		# The next login is answered from the cache, the same again, no header read.
		again, _ = uidls_by_header(pg.port, user, password)
		assert again == after
	finally:
		pg.stop()


def test_a_message_that_arrives_later_gets_a_new_uidl_others_keep_theirs(dovecot, tmp_path):
	user, password, _ = dovecot.fresh_user()
	pg = start_popgate(tmp_path / "pg", dovecot.imap_port)
	try:
		before, before_list = uidls_by_header(pg.port, user, password)
		m = dovecot.imap(user)
		typ, _ = m.append("INBOX", None, None, b"Message-ID: <later@example.net>\r\n"
			b"Subject: later\r\nFrom: x@example.net\r\n\r\nnew\r\n")
		assert typ == "OK"
		m.logout()
		after, after_list = uidls_by_header(pg.port, user, password)
		assert after_list[:len(before_list)] == before_list
		assert len(after_list) == len(before_list) + 1
		assert after_list[-1] not in before_list
	finally:
		pg.stop()
