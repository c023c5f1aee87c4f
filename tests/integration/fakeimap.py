"""A small scripted fake IMAP server, for faults a real server will not produce (BYE or a cut in
the middle of a literal, a stall, garbage, a literal larger than the message, no greeting, a
refused SELECT or FETCH). Dovecot's test-imapc-client.c does the same with a `_server` per fault.

It speaks just enough IMAP4rev1 for popgate's login and RETR/TOP/QUIT: the greeting
`* OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN SASL-IR]` (`caps` to change it),
CAPABILITY, AUTHENTICATE PLAIN, XOAUTH2 and OAUTHBEARER (with or without an initial response;
the bearer ones only when `caps` lists them), LOGIN, ID, SELECT/EXAMINE, `UID FETCH 1:* (UID
RFC822.SIZE)`, `UID FETCH uid BODY.PEEK[]`, `BODY.PEEK[HEADER]`, `BODY.PEEK[TEXT]<off.len>`,
UID STORE (\\Deleted is remembered in `deleted`), UID SEARCH DELETED, UID EXPUNGE and EXPUNGE
(they report and record in `expunged` what they remove), NOOP, LOGOUT. Any user and password
log in; every user sees the same mailbox (`messages`, UIDs 1..n, UIDVALIDITY 1234), whose
messages stay whatever is expunged.

What goes wrong is chosen per connection: the scenario of a connection is the next entry of
`next_scenarios` when there is one (taken at accept: faults before the login, e.g. no
greeting), else the scenario named by the login user (`scenario_of_user`, default: the user
name itself when it is a scenario name), else "ok". Scenarios (RETR means `BODY.PEEK[]`):

  ok                 a well-behaved server
  no_greeting        accepts, then says nothing
  select_no          SELECT answers NO
  snapshot_bad       the UID FETCH 1:* listing answers BAD
  bye_idle           after the UID FETCH 1:* listing: "* BYE ..." and the connection closes
  expunge_short      (UID) EXPUNGE answers OK without the "* n EXPUNGE" of what it removed
  fetch_bad          RETR answers BAD (no data)
  close_mid_literal  RETR: the literal header and half the bytes, then the connection closes
  bye_mid_literal    RETR: half the bytes, then "* BYE ..." (inside the literal), then closes
  stall_literal      RETR: the literal header, then nothing (until the peer closes)
  garbage_nul        RETR: a line "\\x00\\xff garbage" instead of the FETCH response
  garbage_long       RETR: a 150 KB response line instead of the FETCH response
  oversized_literal  RETR: a literal announced 100 times RFC822.SIZE + 1 MB

A bearer token logs in when it is in `tokens` ({token: user}); any other gets the error
challenge of RFC 7628 §3.2.2 ("+ <base64 JSON>"), whose answer is recorded, then NO
[AUTHENTICATIONFAILED]. `sasl` records each bearer exchange: (conn id, mechanism, "ir" or
"continuation", the response as received, the answer to the error challenge or None).

Runs in threads on 127.0.0.1, port picked at bind (`port`). `received` logs every command line
(with the connection's id; AUTHENTICATE/LOGIN arguments hidden), `conns` each connection's
scenario, user and whether the peer closed it. close_listener()/reopen_listener() make the port
refuse connections for a while (an unreachable upstream). stop() closes everything.

Slow answers (a server that is busy, not broken: each wait stays under popgate's
upstream_timeout, all of them together do not), `slow_delay` seconds (default 1.5) each:

  slow_login         LOGIN and AUTHENTICATE PLAIN answered after slow_delay
  slow_literal       RETR: the literal in 4 pieces, slow_delay apart
  slow_update        each UID STORE and (UID) EXPUNGE answered after slow_delay
"""

import base64
import re
import socket
import threading
import time

CAPS = "IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN SASL-IR"
UIDVALIDITY = 1234

SCENARIOS = ("ok", "no_greeting", "select_no", "snapshot_bad", "fetch_bad", "close_mid_literal",
	"bye_mid_literal", "stall_literal", "garbage_nul", "garbage_long", "oversized_literal",
	"bye_idle", "expunge_short")
SLOW_SCENARIOS = ("slow_login", "slow_literal", "slow_update")
SCENARIOS += SLOW_SCENARIOS


def uid_set(text):
	"""The UIDs of an IMAP UID set such as b"1,3:5"."""
	out = []
	for part in text.split(b","):
		lo, _, hi = part.partition(b":")
		if lo.isdigit() and (hi or lo).isdigit():
			out.extend(range(int(lo), int(hi or lo) + 1))
	return out


def default_messages():
	"""Three messages: a small one, one with dot lines, and a ~300 KB one (so that half of it
	reaches the client before a mid-literal fault)."""
	def msg(n, subject, body):
		return (b"From: fake%d@example.org\r\nTo: user@example.net\r\nSubject: %s\r\n"
			b"Date: Mon, 03 Jun 2024 10:00:00 +0000\r\nMessage-ID: <fake-%d@popgate.test>\r\n"
			b"\r\n" % (n, subject, n)) + body
	big = b"".join(b"%06d fake imap line for a large message, some text to fill it up....\r\n" % i
		if i % 101 else b".%05d a line starting with a dot\r\n" % i for i in range(4200))
	return [
		msg(1, b"small", b"Hello from the fake server.\r\n"),
		msg(2, b"dots", b"first\r\n.\r\n..two\r\nlast\r\n"),
		msg(3, b"large", big),
	]


class _Closed(Exception):
	pass


class _Conn:
	def __init__(self, server, sock, cid, scenario):
		self.server = server
		self.sock = sock
		self.cid = cid
		self.scenario = scenario	# None: decided by the login user
		self.user = None
		self.buf = b""
		self.peer_closed = False
		self.done = threading.Event()

	# --- I/O ---

	def _recv(self):
		while not self.server.stopping:
			try:
				data = self.sock.recv(65536)
			except socket.timeout:
				continue
			except OSError:
				raise _Closed()
			if not data:
				self.peer_closed = True
				raise _Closed()
			return data
		raise _Closed()

	def send(self, data):
		# send() in a loop: sendall()'s timeout would bound the whole write, and a peer
		# that applies backpressure may take longer than one poll interval.
		view = memoryview(data)
		while view:
			if self.server.stopping:
				raise _Closed()
			try:
				n = self.sock.send(view)
			except socket.timeout:
				continue
			except OSError:
				raise _Closed()
			view = view[n:]

	def readline(self):
		"""One command line; literals ({n} or {n+}) read and inlined, "+ " sent for {n}."""
		out = b""
		while True:
			while b"\r\n" not in self.buf:
				if len(self.buf) > 1 << 20:
					raise _Closed()
				self.buf += self._recv()
			line, self.buf = self.buf.split(b"\r\n", 1)
			m = re.search(rb"\{(\d+)(\+?)\}$", line)
			if not m:
				return out + line
			n = int(m.group(1))
			if not m.group(2):
				self.send(b"+ go ahead\r\n")
			while len(self.buf) < n:
				self.buf += self._recv()
			out += line + b"\r\n" + self.buf[:n]
			self.buf = self.buf[n:]

	def wait_eof(self):
		"""Stalls: reads and drops whatever comes until the peer closes (or stop())."""
		try:
			while True:
				self._recv()
		except _Closed:
			pass

	def close_after(self, data):
		"""Sends data, then half-closes and waits for the peer to close."""
		self.send(data)
		try:
			self.sock.shutdown(socket.SHUT_WR)
		except OSError:
			pass
		self.wait_eof()

	# --- protocol ---

	def run(self):
		try:
			if self.scenario == "no_greeting":
				self.wait_eof()
				return
			self.send(b"* OK [CAPABILITY " + self.server.caps.encode() + b"] fake IMAP server ready.\r\n")
			while True:
				line = self.readline()
				self.command(line)
		except _Closed:
			pass
		finally:
			try:
				self.sock.close()
			except OSError:
				pass
			self.done.set()

	def log(self, line):
		self.server._log(self.cid, line)

	def logged_in(self, user):
		self.user = user
		if self.scenario is None:
			self.scenario = self.server.scenario_for(user)

	def command(self, line):
		parts = line.split(b" ", 2)
		tag = parts[0]
		verb = parts[1].upper() if len(parts) > 1 else b""
		rest = parts[2] if len(parts) > 2 else b""
		if verb == b"UID" and rest:
			sub, _, rest = rest.partition(b" ")
			verb = b"UID " + sub.upper()
		caps = self.server.caps.encode()
		if verb == b"AUTHENTICATE":	# the mechanism shown, the response hidden
			mech, _, ir = rest.partition(b" ")
			self.log(tag + b" " + verb + b" " + mech + (b" <hidden>" if ir else b""))
		else:
			self.log(tag + b" " + verb + (b" <hidden>" if verb == b"LOGIN"
				else (b" " + rest if rest else b"")))
		ok = tag + b" OK Completed.\r\n"
		if verb == b"CAPABILITY":
			self.send(b"* CAPABILITY " + caps + b"\r\n" + ok)
		elif verb == b"AUTHENTICATE" and mech.upper() in (b"XOAUTH2", b"OAUTHBEARER") and \
				b"AUTH=" + mech.upper() in caps.split():
			self.bearer(tag, mech.upper(), ir)
		elif verb == b"AUTHENTICATE":
			if mech.upper() != b"PLAIN":
				self.send(tag + b" NO Unsupported mechanism.\r\n")
				return
			if not ir:
				self.send(b"+ \r\n")
				ir = self.readline()
			try:
				_, user, _ = base64.b64decode(ir).split(b"\0", 2)
			except ValueError:
				self.send(tag + b" BAD Invalid PLAIN response.\r\n")
				return
			self.logged_in(user.decode("utf-8", "replace"))
			self.slow("slow_login")
			self.send(tag + b" OK [CAPABILITY " + caps + b"] Logged in.\r\n")
		elif verb == b"LOGIN":
			m = re.match(rb'(?:"((?:[^"\\]|\\.)*)"|\{\d+\+?\}\r\n|(\S+))', rest)
			user = rest
			if m and m.group(1) is not None:
				user = re.sub(rb"\\(.)", rb"\1", m.group(1))
			elif m and m.group(2) is not None:
				user = m.group(2)
			elif m:	# a literal: its bytes follow the marker up to the next space
				user = rest[m.end():].split(b" ", 1)[0]
			self.logged_in(user.decode("utf-8", "replace"))
			self.slow("slow_login")
			self.send(tag + b" OK [CAPABILITY " + caps + b"] Logged in.\r\n")
		elif verb == b"ID":
			self.send(b"* ID NIL\r\n" + ok)
		elif verb in (b"SELECT", b"EXAMINE"):
			if self.scenario == "select_no":
				self.send(tag + b" NO [SERVERBUG] Internal error occurred (fake).\r\n")
				return
			n = len(self.server.messages)
			self.send(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
				b"* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY %d] UIDs valid\r\n"
				b"* OK [UIDNEXT %d] Predicted next UID\r\n%s OK [READ-WRITE] Select completed.\r\n"
				% (n, UIDVALIDITY, n + 1, tag))
		elif verb == b"UID FETCH":
			self.fetch(tag, rest)
		elif verb == b"UID STORE":
			self.slow("slow_update")
			uids, _, flags = rest.partition(b" ")
			if b"\\Deleted" in flags:
				with self.server._lock:
					self.server.deleted |= set(uid_set(uids))
			self.send(ok)
		elif verb == b"UID SEARCH" and rest.strip().upper() == b"DELETED":
			with self.server._lock:
				found = sorted(self.server.deleted)
			self.send(b"* SEARCH" + b"".join(b" %d" % u for u in found) + b"\r\n" + ok)
		elif verb in (b"UID EXPUNGE", b"EXPUNGE"):
			self.slow("slow_update")
			# As a server that removes what is \Deleted (in the set, for UID EXPUNGE); the
			# messages themselves stay for the next session. expunge_short: reports none.
			with self.server._lock:
				gone = set(self.server.deleted) if verb == b"EXPUNGE" else \
					self.server.deleted & set(uid_set(rest.strip()))
				self.server.deleted -= gone
				self.server.expunged |= gone
			if self.scenario == "expunge_short":
				gone = ()
			self.send(b"* 1 EXPUNGE\r\n" * len(gone) + ok)
		elif verb in (b"NOOP", b"CHECK"):
			self.send(ok)
		elif verb == b"LOGOUT":
			self.send(b"* BYE Logging out.\r\n" + ok)
			raise _Closed()
		else:
			self.send(tag + b" BAD Unknown command.\r\n")

	def slow(self, scenario):
		"""Scenarios slow_*: waits slow_delay seconds before the answer (see the docstring)."""
		if self.scenario == scenario:
			time.sleep(self.server.slow_delay)

	def bearer(self, tag, mech, ir):
		form = "ir" if ir else "continuation"
		if not ir:
			self.send(b"+ \r\n")
			ir = self.readline()
		try:
			msg = base64.b64decode(ir, validate=True)
			token = re.search(rb"\x01auth=Bearer ([^\x01]+)\x01", b"\x01" + msg).group(1).decode()
		except (ValueError, AttributeError):
			self.server.sasl.append((self.cid, mech.decode(), form, ir, None))
			self.send(tag + b" BAD Invalid response.\r\n")
			return
		user = self.server.tokens.get(token)
		if user is None:
			err = base64.b64encode(b'{"status":"invalid_token","schemes":"bearer","scope":"mail"}')
			self.send(b"+ " + err + b"\r\n")
			answer = self.readline()
			self.server.sasl.append((self.cid, mech.decode(), form, ir, answer))
			self.send(tag + b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
			return
		self.server.sasl.append((self.cid, mech.decode(), form, ir, None))
		self.logged_in(user)
		self.send(tag + b" OK [CAPABILITY " + self.server.caps.encode() + b"] Logged in.\r\n")

	def fetch(self, tag, rest):
		msgs = self.server.messages
		uidset, _, items = rest.partition(b" ")
		if uidset == b"1:*":
			if self.scenario == "snapshot_bad":
				self.send(tag + b" BAD Error in IMAP command UID FETCH: (fake).\r\n")
				return
			out = b"".join(b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (i, i, len(m))
				for i, m in enumerate(msgs, 1))
			self.send(out + tag + b" OK Fetch completed.\r\n")
			if self.scenario == "bye_idle":
				time.sleep(0.1)
				self.close_after(b"* BYE Idle shutdown (fake).\r\n")
				raise _Closed()
			return
		try:
			uid = int(uidset)
		except ValueError:
			self.send(tag + b" BAD Invalid UID set.\r\n")
			return
		if not 1 <= uid <= len(msgs):	# expunged: no data, OK (RFC 3501 UID FETCH)
			self.send(tag + b" OK Fetch completed.\r\n")
			return
		msg = msgs[uid - 1]
		head_end = msg.find(b"\r\n\r\n") + 4
		items_u = items.upper()
		if items_u == b"BODY.PEEK[]":
			self.retr(tag, uid, msg)
			return
		if items_u == b"BODY.PEEK[HEADER]":
			name, data = b"BODY[HEADER]", msg[:head_end]
		else:
			m = re.match(rb"BODY\.PEEK\[TEXT\]<(\d+)\.(\d+)>$", items_u)
			if not m:
				self.send(tag + b" BAD Unsupported fetch item (fake).\r\n")
				return
			off, length = int(m.group(1)), int(m.group(2))
			body = msg[head_end:]
			name, data = b"BODY[TEXT]<%d>" % off, body[off:off + length]
		self.send(b"* %d FETCH (UID %d %s {%d}\r\n" % (uid, uid, name, len(data)) + data +
			b")\r\n" + tag + b" OK Fetch completed.\r\n")

	def retr(self, tag, uid, msg):
		sc = self.scenario
		head = b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (uid, uid, len(msg))
		half = msg[:len(msg) // 2]
		if sc == "fetch_bad":
			self.send(tag + b" BAD Error in IMAP command UID FETCH: (fake).\r\n")
		elif sc == "close_mid_literal":
			self.close_after(head + half)
			raise _Closed()
		elif sc == "bye_mid_literal":
			self.close_after(head + half + b"\r\n* BYE Server shutting down (fake).\r\n")
			raise _Closed()
		elif sc == "stall_literal":
			self.send(head)
			self.wait_eof()
			raise _Closed()
		elif sc == "garbage_nul":
			self.send(b"\x00\xff garbage\r\n")
		elif sc == "garbage_long":
			self.send(b"* " + b"x" * (150 * 1024) + b"\r\n")
		elif sc == "slow_literal":
			cut = [len(msg) * i // 4 for i in range(5)]
			self.send(head)
			for a, b in zip(cut, cut[1:]):
				time.sleep(self.server.slow_delay)
				self.send(msg[a:b])
			self.send(b")\r\n" + tag + b" OK Fetch completed.\r\n")
		elif sc == "oversized_literal":
			size = len(msg) * 100 + (1 << 20)
			self.send(b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (uid, uid, size) + msg)
			self.send(b"y" * (size - len(msg)))	# fails once the peer closes: fine
			self.send(b")\r\n" + tag + b" OK Fetch completed.\r\n")
		else:
			self.send(head + msg + b")\r\n" + tag + b" OK Fetch completed.\r\n")


class FakeImap:
	def __init__(self, messages=None, host="127.0.0.1"):
		self.messages = list(default_messages() if messages is None else messages)
		self.host = host
		self.caps = CAPS
		self.deleted = set()	# UIDs flagged \Deleted (by any connection)
		self.expunged = set()	# UIDs an EXPUNGE removed (reported; messages stay)
		self.tokens = {}	# bearer token -> user
		self.sasl = []		# [(conn id, mech, "ir"|"continuation", response, error answer)]
		self.next_scenarios = []
		self.scenario_of_user = {}
		self.slow_delay = 1.5	# seconds, the slow_* scenarios
		self.received = []	# [(conn id, line bytes)]
		self.conns = []		# [_Conn]
		self.stopping = False
		self._lock = threading.Lock()
		self._threads = []
		self._lsock = None
		self.port = None
		self._listen()

	# --- the listener ---

	def _listen(self):
		s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
		s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		s.bind((self.host, self.port or 0))
		s.listen(64)
		s.settimeout(0.2)
		self.port = s.getsockname()[1]
		self._lsock = s
		t = threading.Thread(target=self._accept_loop, args=(s,), daemon=True,
			name="fakeimap-accept-%d" % self.port)
		self._threads.append(t)
		t.start()

	def _accept_loop(self, lsock):
		while not self.stopping and self._lsock is lsock:
			try:
				sock, _ = lsock.accept()
			except socket.timeout:
				continue
			except OSError:
				return
			sock.settimeout(0.2)
			with self._lock:
				sc = self.next_scenarios.pop(0) if self.next_scenarios else None
				c = _Conn(self, sock, len(self.conns) + 1, sc)
				self.conns.append(c)
			t = threading.Thread(target=c.run, daemon=True, name="fakeimap-conn-%d" % c.cid)
			self._threads.append(t)
			t.start()

	def close_listener(self):
		"""Stops listening: connections to the port are refused until reopen_listener()."""
		s, self._lsock = self._lsock, None
		if s is not None:
			s.close()

	def reopen_listener(self):
		if self._lsock is None:
			self._listen()

	# --- scripting and inspection ---

	def scenario_for(self, user):
		sc = self.scenario_of_user.get(user)
		if sc is None:
			sc = user if user in SCENARIOS else "ok"
		return sc

	def _log(self, cid, line):
		with self._lock:
			self.received.append((cid, line))

	def lines(self, cid=None):
		"""The command lines received (of one connection, or all), as str."""
		with self._lock:
			return [l.decode("utf-8", "replace") for c, l in self.received if cid in (None, c)]

	def open_conns(self):
		"""Connections the peer has not closed yet."""
		return [c for c in self.conns if not c.done.is_set()]

	def wait_all_closed(self, timeout=5.0):
		"""True once every connection so far has ended (the peer closed it, or it did)."""
		deadline = time.monotonic() + timeout
		while time.monotonic() < deadline:
			if not self.open_conns():
				return True
			time.sleep(0.05)
		return not self.open_conns()

	def transcript(self):
		with self._lock:
			conns = "".join("conn %d: scenario=%s user=%s peer_closed=%s done=%s\n" % (
				c.cid, c.scenario, c.user, c.peer_closed, c.done.is_set()) for c in self.conns)
			lines = "".join("  %d> %s\n" % (c, l.decode("utf-8", "replace")[:200])
				for c, l in self.received)
		return conns + lines

	def stop(self):
		self.stopping = True
		self.close_listener()
		for c in list(self.conns):
			try:
				c.sock.shutdown(socket.SHUT_RDWR)
			except OSError:
				pass
		for t in self._threads:
			t.join(2)

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.stop()
