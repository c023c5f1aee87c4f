"""Helpers the integration tests share (fixtures are in conftest.py).

  assert_ok / assert_err      a POP3 status line is +OK / -ERR
  assert_same_bytes           message bytes equal: length, then sha256, then (short) the bytes
  wait_until                  the one deadline poll: waits for an observable condition
  read_until_eof              raw bytes until the server closes
  session_lines / wait_session_lines   popgate's end-of-session log lines of a user
  wait_session_closed         a session has ended (only its last bytes may still be written)
  doveadm_who / wait_no_dovecot_session   the sessions the real Dovecot has of a user
  uidvalidity, rebuild        the real Dovecot's UIDVALIDITY; a mailbox rebuilt under popgate
  plain_ir, capa              SASL PLAIN, CAPA
  run, lf, client_env, need   running a real client
  fetchmail_setup, fetchmail, strip_fetchmail_received, mpop, mpop_messages, numbered_files
                              fetchmail and mpop driven as users do (test_clients.py)

conftest.py has this module's asserts rewritten by pytest (register_assert_rewrite), so a
short comparison that fails shows pytest's diff.
"""

import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest


# --- POP3 replies -------------------------------------------------------------------------------

def assert_ok(reply, what=""):
	assert reply.startswith(b"+OK"), "%s: expected +OK, got %r" % (what, reply)


def assert_err(reply, what=""):
	assert reply.startswith(b"-ERR"), "%s: expected -ERR, got %r" % (what, reply)


# --- bytes --------------------------------------------------------------------------------------

SHORT = 64 * 1024	# up to this, a failed comparison shows pytest's diff of the bytes


def first_difference(a, b):
	"""The first offset where a and b differ (len of the shorter if one is a prefix), or None."""
	n = min(len(a), len(b))
	ma, mb = memoryview(a), memoryview(b)
	step = 1 << 16
	for off in range(0, n, step):
		if ma[off:off + step] != mb[off:off + step]:
			for i in range(off, min(off + step, n)):
				if a[i] != b[i]:
					return i
	return None if len(a) == len(b) else n


def assert_same_bytes(got, want, what="bytes"):
	"""got == want, checked so that a failure is quick to report even for 20 MB: the lengths,
	then the sha256, and only for short data the bytes themselves (pytest's diff). A long
	mismatch names the first differing offset and a few bytes around it."""
	got, want = bytes(got), bytes(want)
	if len(got) <= SHORT and len(want) <= SHORT:
		assert got == want, what
		return

	def where():
		i = first_difference(got, want)
		if i is None:
			return ""
		return "; first difference at offset %d: got %r, want %r" % (
			i, got[max(0, i - 40):i + 40], want[max(0, i - 40):i + 40])

	assert len(got) == len(want), "%s: %d bytes, want %d%s" % (what, len(got), len(want), where())
	hg, hw = hashlib.sha256(got).hexdigest(), hashlib.sha256(want).hexdigest()
	assert hg == hw, "%s: %d bytes as wanted, but sha256 %s, want %s%s" % (
		what, len(got), hg, hw, where())


# --- waiting ------------------------------------------------------------------------------------

def wait_until(pred, timeout=5.0, what=None, interval=0.05):
	"""Polls pred() until it returns a true value, and returns that value. At the deadline:
	fails naming `what` (a str, or a function giving one, called then) when it is given,
	else returns pred()'s last (false) value."""
	deadline = time.monotonic() + timeout
	while True:
		v = pred()
		if v:
			return v
		if time.monotonic() >= deadline:
			break
		time.sleep(interval)
	if what is None:
		return v
	assert v, "still not the case after %g s: %s" % (timeout, what() if callable(what) else what)


def read_until_eof(sock, timeout, stop_at=None):
	"""Raw bytes until the server closes (or `stop_at` ends the data, or the timeout):
	(data, closed, seconds)."""
	t0 = time.monotonic()
	deadline = t0 + timeout
	data = bytearray()
	closed = False
	while True:
		left = deadline - time.monotonic()
		if left <= 0:
			break
		sock.settimeout(left)
		try:
			chunk = sock.recv(1 << 20)
		except socket.timeout:
			break
		except ConnectionResetError:
			closed = True
			break
		if not chunk:
			closed = True
			break
		data += chunk
		if stop_at is not None and data.endswith(stop_at):
			break
	return bytes(data), closed, time.monotonic() - t0


# --- popgate's log ------------------------------------------------------------------------------

def session_lines(pg, user):
	"""popgate's end-of-session log lines of user (it writes one when a session ends)."""
	return [l for l in pg.log().splitlines() if " user=%s " % user in l and " result=" in l]


def wait_session_lines(pg, user, count, timeout=5.0):
	"""Waits until popgate has logged at least count end-of-session lines of user: the lines
	(fewer at the deadline; the caller asserts)."""
	wait_until(lambda: len(session_lines(pg, user)) >= count, timeout)
	return session_lines(pg, user)


def wait_session_closed(pg, user, timeout=30.0):
	"""Waits until user's (one) session has ended in popgate: it logged its state change to
	CLOSED (debug level, which the tests run at) or its end-of-session line. An ended session
	may still be writing its last queued bytes (popgate's linger). Returns the session id."""
	def sid():
		m = re.search(r"session=([0-9a-f]+) login user=%s " % re.escape(user), pg.log())
		return m and m.group(1)
	s = wait_until(sid, timeout, "popgate logged no login of user=%s" % user)

	def closed():
		return any(("session=%s " % s) in l and ("-> CLOSED" in l or " result=" in l)
			for l in pg.log().splitlines())
	wait_until(closed, timeout, lambda: "session %s of user=%s did not end:\n%s" % (
		s, user, pg.log_tail()))
	return s


# --- the real Dovecot ---------------------------------------------------------------------------

def doveadm_who(dovecot, user):
	"""PIDs of user's sessions (IMAP or POP3) that Dovecot (anvil) knows about."""
	r = subprocess.run(["doveadm", "-c", dovecot.conf, "who", "-1", user], capture_output=True,
		text=True, timeout=10)
	assert r.returncode == 0, r.stderr
	return [line.split()[2] for line in r.stdout.splitlines()[1:] if line.split()[:1] == [user]]


def wait_no_dovecot_session(dovecot, user, timeout=5.0):
	"""Waits until Dovecot has no session of user: the PIDs still there at the deadline."""
	wait_until(lambda: not doveadm_who(dovecot, user), timeout, interval=0.1)
	return doveadm_who(dovecot, user)


def uidvalidity(dovecot, user):
	"""The UIDVALIDITY of user's INBOX on the real Dovecot."""
	m = dovecot.imap(user)
	m.select("INBOX", readonly=True)
	typ, data = m.response("UIDVALIDITY")
	m.logout()
	return int(data[0])


def rebuild(dovecot, user):
	"""Reads every message, deletes the maildir (messages, dovecot-uidlist, indexes) and
	appends the messages again in reverse order: a new UIDVALIDITY, new UIDs, a new order.
	Returns the number of messages."""
	before = uidvalidity(dovecot, user)
	m = dovecot.imap(user)
	m.select("INBOX", readonly=True)
	typ, data = m.uid("FETCH", "1:*", "(RFC822)")
	msgs = [x[1] for x in data if isinstance(x, tuple)]
	m.logout()
	shutil.rmtree(os.path.join(dovecot.dir, "mail", user, "Maildir"))
	time.sleep(1.1)		# Dovecot's UIDVALIDITY is a time in seconds: make it a new one
	m = dovecot.imap(user)
	for msg in reversed(msgs):
		typ, _ = m.append("INBOX", None, None, msg)
		assert typ == "OK"
	m.logout()
	after = uidvalidity(dovecot, user)
	assert after != before, "the rebuild kept UIDVALIDITY %d" % before
	return len(msgs)


# --- logins, CAPA -------------------------------------------------------------------------------

def b64(data):
	return base64.b64encode(data).decode()


def plain_ir(user, password):
	"""The base64 SASL PLAIN response (empty authzid) for user and password (str or bytes)."""
	if isinstance(user, str):
		user = user.encode("utf-8")
	if isinstance(password, str):
		password = password.encode("utf-8")
	return b64(b"\0" + user + b"\0" + password)


def capa(conn):
	"""CAPA over a Pop3Raw: the capability lines, without CRLF."""
	status, lines = conn.cmd_multi("CAPA")
	assert status.startswith(b"+OK"), status
	return [l.rstrip(b"\r\n").decode() for l in lines]


# --- real clients -------------------------------------------------------------------------------

def run(args, timeout, **kw):
	"""Runs a client (stdin /dev/null, output captured, killed after timeout seconds) and
	prints what it did (shown when the test fails): the command, its exit code, its stdout
	(the tail, or only its size when large) and the tail of its stderr."""
	r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
		stderr=subprocess.PIPE, timeout=timeout, **kw)
	out = r.stdout.decode("utf-8", "replace")[-3000:] if len(r.stdout) < 100000 else ""
	sys.stdout.write("$ %s\nexit %d\n--- stdout (%d bytes)\n%s--- stderr:\n%s\n" % (
		" ".join(str(a) for a in args), r.returncode, len(r.stdout), out,
		r.stderr.decode("utf-8", "replace")[-3000:]))
	return r


def lf(data):
	"""Clients that deliver to local files store LF line endings."""
	return data.replace(b"\r\n", b"\n")


def client_env(home):
	"""The environment of a real client: its own HOME (and fetchmail's), no system mailbox or
	mail configuration."""
	env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
	env.pop("MAIL", None)
	env.pop("MAILRC", None)
	return env


CLIENT_TIMEOUT = 240	# fetchmail, mpop, getmail: a whole mailbox, the 20 MB message too

# An MDA for fetchmail and getmail: stdin to the next numbered file (001, 002, …) in argv[1].
DELIVER = """import os, sys
d = sys.argv[1]
with open(os.path.join(d, "%03d" % (len(os.listdir(d)) + 1)), "wb") as f:
	f.write(sys.stdin.buffer.read())
"""


def need(tool):
	if not shutil.which(tool):
		pytest.skip("%s is not installed (tests/deps.sh installs it)" % tool)


def numbered_files(d):
	return [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))]


def fetchmail_setup(tmp, port, user, password, keep=True):
	"""tmp/fetchmail: the home (FETCHMAILHOME, where its idfile .fetchids is), out/ (what it
	delivered, numbered files) and the rc polling 127.0.0.1:port. Called again with another
	port: the rc is rewritten, the idfile and out/ stay (a client repointed). (home, out, rc)."""
	home = tmp / "fetchmail"
	out = home / "out"
	out.mkdir(parents=True, exist_ok=True)
	(home / "deliver.py").write_text(DELIVER)
	rc = home / "fetchmailrc"
	# sslproto '': no STLS even when offered (Dovecot offers it; this is a plain-text test).
	# no rewrite: leave the headers alone. uidl + keep: remember UIDLs in $FETCHMAILHOME/.fetchids.
	rc.write_text(
		"set no bouncemail\nset no syslog\n"
		"poll 127.0.0.1 with proto POP3 port %d uidl no envelope\n"
		"  user \"%s\" there with password \"%s\" is \"root\" here\n"
		"  %s\n  sslproto ''\n  no rewrite\n"
		"  mda \"%s %s %s\"\n" % (port, user, password, "keep" if keep else "no keep",
			sys.executable, home / "deliver.py", out))
	rc.chmod(0o600)
	return home, out, rc


def fetchmail(home, rc):
	need("fetchmail")
	# --pidfile: as root fetchmail would lock /var/run/fetchmail.pid, one run per machine.
	return run(["fetchmail", "-f", str(rc), "--nodetach", "-v", "--pidfile", str(home / "pid")],
		CLIENT_TIMEOUT, env=client_env(home))


def strip_fetchmail_received(data):
	"""fetchmail prepends one Received: field (3 lines, continuation lines start with a tab) and
	delivers with LF line endings. What is compared: the file minus that first field, against
	the POP3 bytes of the message with CRLF turned into LF."""
	m = re.match(rb"Received: from 127\.0\.0\.1 .*\n(?:[ \t].*\n)*", data)
	assert m, "no Received: field from fetchmail at the top: %r" % data[:200]
	assert b"fetchmail" in m.group(0)
	return data[m.end():]


def mpop(home, port, user, password, keep=True):
	"""mpop on 127.0.0.1:port, delivering to the maildir home/maildir, its UIDLs file
	home/uidls."""
	need("mpop")
	md = home / "maildir"
	for sub in ("new", "cur", "tmp"):
		(md / sub).mkdir(parents=True, exist_ok=True)
	return run(["mpop", "--host=127.0.0.1", "--port=%d" % port, "--auth=user", "--tls=off",
		"--user=" + user, "--passwordeval=printf '%%s' '%s'" % password.replace("'", "'\\''"),
		"--keep=" + ("on" if keep else "off"), "--delivery=maildir," + str(md),
		"--uidls-file=" + str(home / "uidls"), "--received-header=off", "--timeout=120", "-Q"],
		CLIENT_TIMEOUT, env=client_env(home))


def mpop_messages(home):
	"""Delivered messages in delivery order (mpop names them TIME.M…P<pid>Q<n>.HOST)."""
	d = home / "maildir" / "new"
	files = sorted(os.listdir(d), key=lambda f: (f.split(".")[0], int(re.search(r"Q(\d+)", f).group(1))))
	return [open(d / f, "rb").read() for f in files]


def add_duplicate_of_first(dovecot, user):
	"""Appends an exact copy of the first message: two messages with one Message-ID."""
	m = dovecot.imap(user)
	m.select("INBOX")
	typ, data = m.uid("FETCH", "1", "(RFC822)")
	typ, _ = m.append("INBOX", None, None, data[0][1])
	assert typ == "OK"
	m.logout()


def worker_pids(pg, n):
	"""{worker index: pid} from the workers' start lines, once all n have started (the last
	start of each index: a worker started again replaces the dead one)."""
	def found():
		got = {int(w): int(p) for w, p in
			re.findall(r"info: worker=(\d+) started \(pid (\d+)\)", pg.log())}
		return got if len(got) == n else None
	return wait_until(found, 10, lambda: "not %d workers started:\n%s" % (n, pg.log_tail()))


def worker_of(pg, sock):
	"""The worker that logged the connect of this client socket (its source port)."""
	port = sock.getsockname()[1]
	m = re.findall(r"connect client=127\.0\.0\.1 port=%d tls=no worker=(\d+)" % port, pg.log())
	return int(m[-1]) if m else None
