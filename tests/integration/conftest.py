"""Integration fixtures: a real Dovecot per test module, and the POP3 server under test.

POP3_TARGET picks who answers POP3:
  dovecot   Dovecot's own pop3 listener (validates the harness without popgate)
  popgate   $POPGATE_BIN in front of the Dovecot's IMAP, started for each test
Default: popgate when $POPGATE_BIN names an executable, else dovecot.

Tests marked @pytest.mark.popgate_only check what only popgate promises; they are skipped for
dovecot. Everything runs on 127.0.0.1 with ports picked at run time, state in pytest's tmp dirs.
"""

import collections
import imaplib
import os
import poplib
import re

import pytest

pytest.register_assert_rewrite("helpers")	# its short byte comparisons show pytest's diff

import dovecot as dovecot_mod	# noqa: E402
from fakeimap import FakeImap	# noqa: E402
from leaks import secret_forms	# noqa: E402
from pop3client import Pop3Raw	# noqa: E402
from popgate import popgate_bin, start_popgate	# noqa: E402

User = collections.namedtuple("User", "user password messages")
Upstream = collections.namedtuple("Upstream", "uid flags message_id size")


def pop3_target():
	t = os.environ.get("POP3_TARGET", "")
	if not t:
		return "popgate" if popgate_bin() else "dovecot"
	return t


def pytest_configure(config):
	config.addinivalue_line("markers",
		"popgate_only: checks a promise of popgate that Dovecot's pop3 does not make; "
		"skipped when POP3_TARGET=dovecot")
	t = pop3_target()
	if t not in ("dovecot", "popgate"):
		raise pytest.UsageError("POP3_TARGET must be dovecot or popgate, not %r" % t)
	if t == "popgate" and not popgate_bin():
		raise pytest.UsageError("POP3_TARGET=popgate needs POPGATE_BIN to name an executable "
			"(got %r)" % os.environ.get("POPGATE_BIN", ""))


def pytest_report_header(config):
	t = pop3_target()
	return "POP3 target: %s%s" % (t, " (%s)" % popgate_bin() if t == "popgate" else "")


def pytest_collection_modifyitems(config, items):
	if pop3_target() == "popgate":
		return
	skip = pytest.mark.skip(reason="popgate only (POP3_TARGET=dovecot)")
	for item in items:
		if "popgate_only" in item.keywords:
			item.add_marker(skip)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
	# Lets fixtures see in their teardown whether the test failed (to print the server logs).
	outcome = yield
	rep = outcome.get_result()
	setattr(item, "rep_" + rep.when, rep)


def _failed(request):
	rep = getattr(request.node, "rep_call", None)
	return rep is not None and rep.failed


@pytest.fixture(scope="module")
def make_dovecot(tmp_path_factory):
	"""A function starting a private Dovecot (kwargs of dovecot.Dovecot: ssl, users, auth_penalty,
	extra); every one it started is stopped (by PID) at the end of the module."""
	started = []

	def make(**kw):
		d = dovecot_mod.Dovecot(str(tmp_path_factory.mktemp("dovecot")), **kw)
		started.append(d)
		return d.start()

	yield make
	for d in started:
		d.stop()


@pytest.fixture(scope="module")
def dovecot(request, make_dovecot):
	"""The module's Dovecot (TLS on; parametrize indirectly with {"ssl": False} for one without),
	seeded: alice has all seed messages including the 20 MB one; bob and carol all but that one;
	"empty" has none. Tests that change a mailbox use pop3.fresh_user()."""
	kw = dict(getattr(request, "param", None) or {"ssl": True})
	d = make_dovecot(**kw)
	d.seeded = {
		"alice": d.seed_mailbox("alice", include_big=True),
		"bob": d.seed_mailbox("bob", include_big=False),
		"carol": d.seed_mailbox("carol", include_big=False),
		"empty": [],
	}
	return d


class Pop3Target:
	"""What a test talks to: .host/.port answer POP3 (Dovecot's pop3 or popgate); .imap()
	inspects the real upstream."""

	def __init__(self, target, dovecot, port, popgate=None):
		self.target = target
		self.is_popgate = target == "popgate"
		self.dovecot = dovecot
		self.popgate = popgate
		self.host = "127.0.0.1"
		self.port = port
		self.users = dovecot.users
		self.seeded = dovecot.seeded
		self.user = "alice"
		self.password = dovecot.users["alice"]
		self.messages = dovecot.seeded["alice"]

	def imap(self, user="alice", password=None):
		"""A logged-in imaplib connection to the real Dovecot (plain IMAP)."""
		return self.dovecot.imap(user, password)

	def fresh_user(self, include_big=False, seed=True):
		"""A new user whose mailbox no other test sees, seeded: User(user, password, messages)."""
		u = User(*self.dovecot.fresh_user(include_big, seed))
		self.seeded[u.user] = u.messages
		return u

	def pop(self, user=None, password=None, timeout=60):
		"""A poplib.POP3 session logged in (USER/PASS) as user (default alice)."""
		user = user or self.user
		p = poplib.POP3(self.host, self.port, timeout=timeout)
		p.user(user)
		p.pass_(self.users[user] if password is None else password)
		return p

	def raw(self, **kw):
		"""A Pop3Raw connection (greeting read, not logged in)."""
		return Pop3Raw(self.host, self.port, **kw)

	def upstream(self, user="alice"):
		"""The user's INBOX as IMAP sees it now: [Upstream(uid, flags, message_id, size)]."""
		m = self.imap(user)
		try:
			typ, data = m.select("INBOX", readonly=True)
			assert typ == "OK", data
			if int(data[0]) == 0:
				return []
			typ, data = m.uid("FETCH", "1:*",
				"(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
			assert typ == "OK", data
			out = []
			for item in data:
				if not isinstance(item, tuple):
					continue
				meta, hdr = item
				uid = int(re.search(rb"UID (\d+)", meta).group(1))
				flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split()
				size = int(re.search(rb"RFC822\.SIZE (\d+)", meta).group(1))
				mid = hdr.split(b":", 1)[1].strip().decode() if b":" in hdr else None
				out.append(Upstream(uid, flags, mid, size))
			return out
		finally:
			try:
				m.logout()
			except (imaplib.IMAP4.error, OSError):
				pass

	def upstream_ids(self, user="alice"):
		return [u.message_id for u in self.upstream(user)]

	def logs(self):
		out = "--- dovecot log tail (%s):\n%s" % (self.dovecot.log_path, self.dovecot.log_tail())
		if self.popgate:
			out += "--- popgate log tail (%s):\n%s" % (self.popgate.log_path, self.popgate.log_tail())
		return out


@pytest.fixture
def fake():
	"""A scripted fake IMAP server (fakeimap.py) for faults a real one will not produce."""
	f = FakeImap()
	yield f
	f.stop()


@pytest.fixture
def pop3(request, dovecot, tmp_path):
	"""The POP3 server under test, in front of the module's Dovecot (see Pop3Target)."""
	target = pop3_target()
	pg = None
	if target == "popgate":
		pg = start_popgate(tmp_path / "popgate", dovecot.imap_port)
		t = Pop3Target(target, dovecot, pg.port, pg)
	else:
		t = Pop3Target(target, dovecot, dovecot.pop3_port)
	yield t
	if _failed(request):
		print(t.logs())
	if pg is not None:
		pg.stop()	# raises (an error in teardown) on a crash, a bad exit or a sanitizer report


# Secrets no popgate log may hold, at any level: every test password, raw, IMAP-quoted and
# as the base64 of an AUTH PLAIN message. Tests with other secrets (tokens) add them here.
SECRETS = set()


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_popgate_logs(tmp_path_factory):
	"""After the whole run: no popgate.log under pytest's temp root holds a test password."""
	yield
	users = dict(dovecot_mod.USERS)
	users.update(dovecot_mod.fresh_name(i) for i in range(1, dovecot_mod.FRESH_POOL + 1))
	secrets = set(SECRETS)
	for user, password in users.items():
		secrets |= secret_forms(user, password)
	found = []
	for path in tmp_path_factory.getbasetemp().rglob("popgate.log"):
		text = path.read_text(errors="replace")
		found += ["%s holds %r" % (path, s) for s in secrets if s in text]
	assert not found, "passwords in popgate's logs:\n" + "\n".join(found)
