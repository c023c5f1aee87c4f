"""Live UIDL migration from an old POP3 server (DESIGN.md "UIDLs and the cache").

With [migration] pop3 = HOST:PORT, a user's first login through popgate (the cache knows
nothing of the user) also logs in to the old POP3 server with the same credentials, matches
its messages to the IMAP mailbox by content key (common/content_key.h) and from then on hands
out the old server's UIDLs for them: at that login, every later one, and after the IMAP
mailbox is rebuilt. Messages the old server did not have get popgate's derived UIDLs. While
the migration is pending, an old server that is down or refuses the login is -ERR [SYS/TEMP]
(required = yes), never new UIDLs.

The old server (dovecot.OldPop3) is a second Dovecot serving only POP3 on the IMAP Dovecot's
maildirs, with pop3_uidl_format = %f: its UIDLs are the maildir file names, nothing like the
"%08x%08x" (UID, UIDVALIDITY) popgate derives. It sees the same messages under the same UIDs
(a shared dovecot-uidlist). test_old_server_fixture* prove that without popgate's migration.

Every test takes a fresh user: a user the cache has seen is never migrated again."""

import collections
import contextlib
import hashlib
import os
import poplib
import socket

import pytest

import messages
from dovecot import OldPop3
from helpers import (assert_ok, fetchmail, fetchmail_setup, lf, mpop, mpop_messages,
	numbered_files, rebuild, strip_fetchmail_received, uidvalidity, wait_until)
from messages import pop3_bytes
from pop3client import Pop3Raw
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only

DUPLICATED = 1	# index of the seed message the migration mailbox holds twice (seed 2, dots)


# --- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dovecot(make_dovecot):
	"""The module's IMAP Dovecot: plain (no TLS), no seeded users (tests take fresh ones)."""
	d = make_dovecot(ssl=False)
	d.seeded = {}
	return d


@pytest.fixture(scope="module")
def old(dovecot, tmp_path_factory):
	"""The old POP3 server, on dovecot's maildirs; stopped (by PID) at the end of the module.
	A test that stops it starts it again (old_server_down)."""
	o = OldPop3(str(tmp_path_factory.mktemp("old-pop3")), dovecot)
	o.start()
	yield o
	o.stop()


@contextlib.contextmanager
def old_server_down(old):
	"""The old server stopped (nothing listens on its port) for the block; started again after."""
	old.stop()
	try:
		with pytest.raises(OSError):
			socket.create_connection(("127.0.0.1", old.pop3_port), timeout=5).close()
		yield
	finally:
		old.start()


@pytest.fixture
def gates(request, dovecot, old, tmp_path):
	"""start(name, **overrides): a popgate (its own directory, hence its own cache) in front of
	the module's IMAP Dovecot, [migration] pointing at the old server (required = yes) unless
	overridden ("migration.pop3": None for none). All are stopped at the end; on a failure the
	logs are printed."""
	started = []

	def start(name="pg", **overrides):
		cfg = {
			"migration.pop3": "127.0.0.1:%d" % old.pop3_port,
			"migration.security": "none",
			"migration.ca_file": "",
			"migration.verify": "yes",
			"migration.required": "yes",
			"migration.timeout": "10",
		}
		if overrides.get("migration.pop3", "") is None:
			cfg = {}
			overrides.pop("migration.pop3")
		cfg.update(overrides)
		pg = start_popgate(tmp_path / name, dovecot.imap_port, **cfg)
		started.append(pg)
		return pg

	yield start
	rep = getattr(request.node, "rep_call", None)
	if rep is not None and rep.failed:
		print("--- old POP3 server's log tail (%s):\n%s" % (old.log_path, old.log_tail()))
		print("--- IMAP dovecot's log tail (%s):\n%s" % (dovecot.log_path, dovecot.log_tail()))
		for pg in started:
			print("--- popgate log tail (%s):\n%s" % (pg.log_path, pg.log_tail(120)))
	for pg in started:
		pg.stop()


# --- the migration mailbox ----------------------------------------------------------------------

def append(dovecot, user, msg):
	m = dovecot.imap(user)
	typ, data = m.append("INBOX", None, None, msg)
	m.logout()
	assert typ == "OK", data


def migration_user(dovecot):
	"""A fresh user whose INBOX has the seed messages (not the 20 MB one), then an exact
	duplicate of one of them (the same bytes), then one without a Message-ID field:
	(user, password, the message bytes in mailbox order)."""
	user, password, msgs = dovecot.fresh_user()
	extra = [msgs[DUPLICATED], messages.no_message_id(user)]
	for msg in extra:
		append(dovecot, user, msg)
	return user, password, msgs + extra


def arrival(user):
	return (b"From: Late Sender <late@example.org>\r\nTo: %s@example.net\r\n"
		b"Subject: arrived after the migration\r\nDate: Wed, 05 Jun 2024 12:00:00 +0000\r\n"
		b"Message-ID: <after-migration.%s@popgate.test>\r\n\r\nnew mail\r\n" % (
			user.encode(), user.encode()))


# --- UIDLs per message --------------------------------------------------------------------------

Msg = collections.namedtuple("Msg", "key subject uidl")

# Fields an old POP3 server (or the tool that filled it) may add to a message's header: left
# out of the key that pairs a message across the two servers. Dovecot adds none of them.
ADDED_FIELDS = (b"status:", b"x-status:", b"x-uidl:", b"x-keywords:", b"content-length:")


def header_key(lines):
	"""sha256 of the header lines TOP n 0 gave (raw), minus ADDED_FIELDS (with their
	continuation lines); and the Subject, to name the message in failures."""
	keep, skip, subject = [], False, ""
	for line in lines:
		if line[:1] not in (b" ", b"\t"):
			skip = line.lower().startswith(ADDED_FIELDS)
			if line.lower().startswith(b"subject:"):
				subject = line[8:].strip().decode("utf-8", "replace")
		if not skip:
			keep.append(line)
	return hashlib.sha256(b"".join(keep)).hexdigest(), subject


def listing(port, user, password):
	"""[Msg(key, subject, uidl)] in the server's POP3 order: UIDL, then TOP n 0 of each."""
	out = []
	with Pop3Raw("127.0.0.1", port) as c:
		c.login(user, password)
		status, lines = c.cmd_multi("UIDL")
		assert_ok(status, "UIDL on port %d" % port)
		for n, line in enumerate(lines, 1):
			num, uidl = line.split()
			assert int(num) == n, line
			status, head = c.cmd_multi("TOP %d 0" % n)
			assert_ok(status, "TOP %d 0 on port %d" % (n, port))
			out.append(Msg(*header_key(head), uidl.decode()))
		assert_ok(c.quit(), "QUIT")
	return out


def per_message(msgs, ordered=True):
	"""{key: [UIDLs of the messages with that header, in POP3 order (sorted if not ordered)]}"""
	out = collections.defaultdict(list)
	for m in msgs:
		out[m.key].append(m.uidl)
	return {k: (v if ordered else sorted(v)) for k, v in out.items()}


def table(msgs):
	return "".join("  %-46s %s\n" % (m.subject[:46], m.uidl) for m in msgs)


def assert_old_uidls(got, old_msgs, what, ordered=True):
	"""popgate's listing gives each message the UIDL the old server gives it (a header that
	occurs twice: its UIDLs in the same order, or as a set when not ordered), and the UIDLs
	are exactly the old server's."""
	why = "%s\n--- popgate:\n%s--- old server:\n%s" % (what, table(got), table(old_msgs))
	assert sorted(m.uidl for m in got) == sorted(m.uidl for m in old_msgs), why
	assert per_message(got, ordered) == per_message(old_msgs, ordered), why


def derived_uidls(dovecot, user):
	"""The UIDLs popgate derives for user's INBOX as it is now, in UID (POP3) order."""
	v = uidvalidity(dovecot, user)
	m = dovecot.imap(user)
	m.select("INBOX", readonly=True)
	typ, data = m.uid("SEARCH", "ALL")
	m.logout()
	return ["%08x%08x" % (int(uid), v) for uid in data[0].split()]


def pass_reply(port, user, password):
	"""The status line PASS gets (USER must get +OK). The server may close after a -ERR."""
	with Pop3Raw("127.0.0.1", port) as c:
		assert_ok(c.cmd("USER " + user), "USER")
		reply = c.cmd("PASS " + password)
		try:
			c.cmd("QUIT")
		except (OSError, AssertionError):
			pass
	return reply


def old_auth_failures(old, user):
	"""How many failed logins of user the old server has logged (pop3-login's "Disconnected
	(auth failed, …): user=<USER>, …" lines)."""
	with open(old.log_path, errors="replace") as f:
		return sum(1 for l in f if "auth failed" in l and "user=<%s>," % user in l)


def assert_sys_temp(reply, what):
	assert reply.startswith(b"-ERR [SYS/TEMP]"), "%s: expected -ERR [SYS/TEMP], got %r" % (
		what, reply)


# --- the fixture itself (no migration involved) -------------------------------------------------

def test_old_server_fixture(dovecot, old, gates):
	"""The old server serves the IMAP mailbox's messages under UIDLs that are the maildir
	file names, unlike Dovecot's own POP3 and popgate without [migration]."""
	user, password, msgs = migration_user(dovecot)
	theirs = listing(old.pop3_port, user, password)
	uidls = [m.uidl for m in theirs]
	assert len(theirs) == len(msgs) == 9
	assert sorted(uidls) == old.maildir_names(user)
	assert len(set(uidls)) == len(uidls)
	# The same messages, in the same (UID) order, as IMAP has them.
	imap_pop3 = listing(dovecot.pop3_port, user, password)
	assert [m.key for m in theirs] == [m.key for m in imap_pop3]
	dup = [k for k, v in per_message(theirs).items() if len(v) > 1]
	assert len(dup) == 1 and len(per_message(theirs)[dup[0]]) == 2
	assert "an old message without a Message-ID" in [m.subject for m in theirs]
	# Nothing like the derived UIDLs: Dovecot's own POP3 (%08Xu%08Xv) and popgate without
	# [migration] give the derived ones.
	derived = derived_uidls(dovecot, user)
	assert [m.uidl for m in imap_pop3] == derived
	pg = gates("plain", **{"migration.pop3": None})
	assert [m.uidl for m in listing(pg.port, user, password)] == derived
	assert not set(uidls) & set(derived)


def test_old_server_fixture_restarts_and_has_its_own_passwords(dovecot, old):
	user, password, _ = migration_user(dovecot)
	before = listing(old.pop3_port, user, password)
	with old_server_down(old):
		pass	# stopped: nothing listens on its port (old_server_down checks)
	assert listing(old.pop3_port, user, password) == before
	# A password changed on the old server only: there the old one is refused, IMAP keeps it.
	old.add_user(user, "only-the-old-server's")

	def refused():
		try:
			listing(old.pop3_port, user, password)
			return False
		except AssertionError:
			return True
	wait_until(refused, 5, "the old server still accepts the password it no longer has")
	assert listing(old.pop3_port, user, "only-the-old-server's") == before
	dovecot.imap(user, password).logout()


# --- migration ----------------------------------------------------------------------------------

def test_first_login_gets_the_old_uidls_and_keeps_them(dovecot, old, gates):
	user, password, msgs = migration_user(dovecot)
	theirs = listing(old.pop3_port, user, password)
	pg = gates()
	first = listing(pg.port, user, password)
	assert_old_uidls(first, theirs, "first login through popgate")
	# Migrated once: the next logins do not need the old server (with it down and required,
	# a login that asked it would be -ERR [SYS/TEMP]).
	with old_server_down(old):
		again = listing(pg.port, user, password)
		assert again == first, "next login:\n--- then:\n%s--- now:\n%s" % (
			table(first), table(again))
		assert rebuild(dovecot, user) == len(msgs)
		# New UIDVALIDITY, new UIDs, the messages in reverse order: matched by content, the
		# UIDLs stay (the two copies of the duplicate cannot be told apart: as a pair).
		rebuilt = listing(pg.port, user, password)
		assert_old_uidls(rebuilt, theirs, "after a rebuilt IMAP mailbox", ordered=False)


def test_a_message_that_arrives_after_the_migration_gets_a_derived_uidl(dovecot, old, gates):
	user, password, _ = migration_user(dovecot)
	theirs = listing(old.pop3_port, user, password)
	pg = gates()
	assert_old_uidls(listing(pg.port, user, password), theirs, "first login")
	append(dovecot, user, arrival(user))
	after = listing(pg.port, user, password)
	assert_old_uidls(after[:-1], theirs, "next login, the messages the old server had")
	new = after[-1].uidl
	assert new not in [m.uidl for m in theirs]
	# The old server sees it too now (shared maildir), under another UIDL: it is not asked again.
	assert new not in [m.uidl for m in listing(old.pop3_port, user, password)]
	assert new == derived_uidls(dovecot, user)[-1]


def test_mpop_repointed_from_the_old_server_fetches_nothing_again(dovecot, old, gates, tmp_path):
	user, password, msgs = migration_user(dovecot)
	home = tmp_path / "mpop"
	r = mpop(home, old.pop3_port, user, password)
	assert r.returncode == 0, "mpop on the old server"
	got = mpop_messages(home)
	assert sorted(got) == sorted(lf(pop3_bytes(m)) for m in msgs)
	uidls = (home / "uidls").read_text()
	assert all(u in uidls for u in old.maildir_names(user)), uidls
	# The same UIDLs file, now at popgate (mpop keys it by host and user, not port).
	pg = gates()
	r = mpop(home, pg.port, user, password)
	assert r.returncode == 0, "mpop on popgate"
	assert len(mpop_messages(home)) == len(msgs), "mpop fetched again what the old server gave"
	new = arrival(user)
	append(dovecot, user, new)
	r = mpop(home, pg.port, user, password)
	assert r.returncode == 0, "mpop on popgate after a new message"
	got = mpop_messages(home)
	assert len(got) == len(msgs) + 1, "mpop should fetch exactly the new message"
	assert lf(pop3_bytes(new)) in got


def test_fetchmail_repointed_from_the_old_server_fetches_nothing_again(dovecot, old, gates,
		tmp_path):
	user, password, msgs = migration_user(dovecot)
	home, out, rc = fetchmail_setup(tmp_path, old.pop3_port, user, password)
	r = fetchmail(home, rc)
	assert r.returncode == 0, "fetchmail on the old server"
	got = [strip_fetchmail_received(d) for d in numbered_files(out)]
	assert sorted(got) == sorted(lf(pop3_bytes(m)) for m in msgs)
	ids = (home / ".fetchids").read_text()
	assert all(u in ids for u in old.maildir_names(user)), ids
	# The same idfile, the rc now polling popgate (fetchmail keys it by user and poll name).
	pg = gates()
	home, out, rc = fetchmail_setup(tmp_path, pg.port, user, password)
	r = fetchmail(home, rc)
	assert r.returncode == 1, "fetchmail on popgate should find no new mail (exit 1)"
	assert len(os.listdir(out)) == len(msgs)
	new = arrival(user)
	append(dovecot, user, new)
	r = fetchmail(home, rc)
	assert r.returncode == 0, "fetchmail on popgate after a new message"
	got = numbered_files(out)
	assert len(got) == len(msgs) + 1, "fetchmail should fetch exactly the new message"
	assert strip_fetchmail_received(got[-1]) == lf(pop3_bytes(new))


def test_required_old_server_down_is_sys_temp_until_it_is_back(dovecot, old, gates):
	user, password, _ = migration_user(dovecot)
	theirs = listing(old.pop3_port, user, password)
	pg = gates(**{"migration.required": "yes"})
	with old_server_down(old):
		assert_sys_temp(pass_reply(pg.port, user, password), "login with the old server down")
	assert_old_uidls(listing(pg.port, user, password), theirs, "login with it back")


def test_not_required_old_server_down_gives_derived_uidls(dovecot, old, gates):
	user, password, _ = migration_user(dovecot)
	pg = gates(**{"migration.required": "no"})
	with old_server_down(old):
		got = listing(pg.port, user, password)
	assert [m.uidl for m in got] == derived_uidls(dovecot, user)


def test_required_old_server_refusing_the_password_is_sys_temp(dovecot, old, gates):
	user, password, _ = migration_user(dovecot)
	theirs = listing(old.pop3_port, user, password)
	old.add_user(user, "another password")	# on the old server only

	def refused():
		try:
			p = poplib.POP3("127.0.0.1", old.pop3_port, timeout=10)
			p.user(user)
			p.pass_(password)
			p.quit()
			return False
		except poplib.error_proto:
			return True
	wait_until(refused, 5, "the old server still accepts the password")
	dovecot.imap(user, password).logout()	# IMAP does
	failed = old_auth_failures(old, user)
	pg = gates(**{"migration.required": "yes"})
	assert_sys_temp(pass_reply(pg.port, user, password), "login the old server refuses")
	# popgate did try the password there, and its log says the old server refused it.
	wait_until(lambda: old_auth_failures(old, user) > failed, 5,
		"the old server saw no failed login of %s from popgate" % user)
	lines = [l for l in pg.log().splitlines()
		if any(w in l.lower() for w in ("migrat", "old server", "old pop3"))]
	assert any(w in l.lower() for l in lines for w in ("refus", "reject", "denied", "-err")), \
		"popgate's log does not say the old server refused:\n" + "\n".join(lines[-20:])
	# Still pending: with the password back, the next login migrates.
	old.add_user(user, password)
	wait_until(lambda: not refused(), 5, "the old server does not take the password back")
	assert_old_uidls(listing(pg.port, user, password), theirs, "login after the refusal")


# --- the cache in trouble -----------------------------------------------------------------------

def cache_files(pg):
	path = os.path.join(os.path.dirname(pg.log_path), "uidl.sqlite")
	return [path + s for s in ("", "-wal", "-shm")]


def test_a_lost_cache_is_learned_again_from_the_old_server(dovecot, old, gates):
	"""The cache file lost (a new node, a disk replaced): while the old server is there, each
	user is migrated again at his next login and sees the same UIDLs."""
	user, password, _ = migration_user(dovecot)
	theirs = listing(old.pop3_port, user, password)
	pg = gates()
	first = listing(pg.port, user, password)
	assert_old_uidls(first, theirs, "first login")
	pg.stop()
	for f in cache_files(pg):
		if os.path.exists(f):
			os.unlink(f)
	pg.start()
	assert listing(pg.port, user, password) == first, "after the cache was lost"
	assert pg.log().count("result=ok") >= 1


def test_a_garbage_cache_is_sys_temp_for_a_user_it_cannot_tell(dovecot, old, gates):
	"""A cache that is not a SQLite file cannot say whether a user was migrated: -ERR
	[SYS/TEMP] (new UIDLs would be a full download), the file left as it is for the operator;
	moved aside, the next login migrates."""
	user, password, _ = migration_user(dovecot)
	theirs = listing(old.pop3_port, user, password)
	pg = gates()
	pg.stop()
	files = cache_files(pg)
	for f in files[1:]:
		if os.path.exists(f):
			os.unlink(f)
	garbage = os.urandom(64 * 1024)
	with open(files[0], "wb") as f:
		f.write(garbage)
	pg.start()
	assert_sys_temp(pass_reply(pg.port, user, password), "a garbage cache")
	assert "cannot tell whether the user was migrated" in pg.log(), pg.log_tail()
	with open(files[0], "rb") as f:
		assert f.read() == garbage, "popgate rewrote a file it cannot read"
	os.rename(files[0], files[0] + ".bad")
	# The cache thread opens the file again at most every 5 s.
	wait_until(lambda: pass_reply(pg.port, user, password).startswith(b"+OK"), 15,
		"the login still fails once the garbage is moved aside")
	assert_old_uidls(listing(pg.port, user, password), theirs, "after the file was moved")


def test_a_locked_cache_serves_migrated_users_and_holds_new_ones(dovecot, old, gates):
	"""Another process holds the cache's write lock: a migrated user's login only reads it and
	goes on with his old UIDLs; a user whose migration must be stored gets -ERR [SYS/TEMP];
	once the lock is released, he is migrated."""
	import sqlite3
	done_user, done_password, _ = migration_user(dovecot)
	user, password, _ = migration_user(dovecot)
	theirs = listing(old.pop3_port, user, password)
	pg = gates()
	first = listing(pg.port, done_user, done_password)
	lock = sqlite3.connect(cache_files(pg)[0], timeout=0)
	try:
		lock.execute("BEGIN EXCLUSIVE")
		assert listing(pg.port, done_user, done_password) == first
		assert_sys_temp(pass_reply(pg.port, user, password), "a migration the lock cannot store")
		assert "could not be stored" in pg.log(), pg.log_tail()
	finally:
		lock.rollback()
		lock.close()
	assert_old_uidls(listing(pg.port, user, password), theirs, "after the lock was released")


def test_a_wrong_password_never_reaches_the_old_server(dovecot, old, gates):
	"""The credentials go to the old server only once the IMAP server accepted them: a
	guesser gets no try there (nor locks the account), and the real user is migrated."""
	user, password, _ = migration_user(dovecot)
	theirs = listing(old.pop3_port, user, password)
	pg = gates()
	before = old_auth_failures(old, user)
	reply = pass_reply(pg.port, user, "a guess")
	assert reply.startswith(b"-ERR [AUTH]"), reply
	assert old_auth_failures(old, user) == before, "the guess was tried on the old server"
	assert_old_uidls(listing(pg.port, user, password), theirs, "the real user's first login")


def test_a_read_only_cache_never_gives_new_uidls(dovecot, old, gates, tmp_path):
	"""The cache file and its directory read-only for the gateway (root's, popgate running as
	nobody): SQLite cannot open a WAL file it cannot add its -shm to, so no session can tell
	whether its user was migrated: -ERR [SYS/TEMP] with the reason in the log, never new
	UIDLs. Writable again, the migrated user has his old UIDLs (the old server is not asked:
	it is down) and the other is migrated."""
	import subprocess
	import tempfile
	if os.geteuid() != 0:
		pytest.skip("needs root")
	done_user, done_password, _ = migration_user(dovecot)
	user, password, _ = migration_user(dovecot)
	theirs = listing(old.pop3_port, user, password)
	cache_dir = tempfile.mkdtemp(prefix="popgate-ro-")	# in /tmp: reachable by nobody
	os.chmod(cache_dir, 0o777)
	cache = os.path.join(cache_dir, "uidl.sqlite")
	as_nobody = {"server.user": "nobody", "server.allow_root": None, "cache.path": cache}
	try:
		pg = gates("ro", **as_nobody)
		first = listing(pg.port, done_user, done_password)
		pg.stop()
		# Closed cleanly: no -wal or -shm left. The file and its directory become root's.
		assert sorted(os.listdir(cache_dir)) == ["uidl.sqlite"], os.listdir(cache_dir)
		owner = os.stat(cache).st_uid
		os.chown(cache, 0, 0)
		os.chmod(cache, 0o644)
		os.chmod(cache_dir, 0o755)
		pg.start()
		for u, p in ((done_user, done_password), (user, password)):
			assert_sys_temp(pass_reply(pg.port, u, p), "a read-only cache")
		assert "the UIDL cache cannot tell whether the user was migrated" in pg.log()
		os.chown(cache, owner, -1)
		os.chmod(cache_dir, 0o777)
		with old_server_down(old):
			wait_until(lambda: pass_reply(pg.port, done_user, done_password).startswith(
				b"+OK"), 15, "the cache is writable again, the login still fails")
			assert listing(pg.port, done_user, done_password) == first
		assert_old_uidls(listing(pg.port, user, password), theirs, "migrated at last")
	finally:
		subprocess.run(["rm", "-rf", cache_dir])
