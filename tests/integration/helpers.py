"""Helpers the integration tests share (fixtures are in conftest.py).

  assert_ok / assert_err      a POP3 status line is +OK / -ERR
  assert_same_bytes           message bytes equal: length, then sha256, then (short) the bytes
  wait_until                  the one deadline poll: waits for an observable condition
  read_until_eof              raw bytes until the server closes
  session_lines / wait_session_lines   popgate's end-of-session log lines of a user
  wait_session_closed         a session has ended (only its last bytes may still be written)
  doveadm_who / wait_no_dovecot_session   the sessions the real Dovecot has of a user
  plain_ir, capa, run, lf, client_env   SASL PLAIN, CAPA, running a real client

conftest.py has this module's asserts rewritten by pytest (register_assert_rewrite), so a
short comparison that fails shows pytest's diff.
"""

import base64
import hashlib
import os
import re
import socket
import subprocess
import sys
import time


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
