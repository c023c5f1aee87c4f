"""A small scripted fake IMAP server, for faults a real server will not produce (BYE or a cut in
the middle of a literal, a stall, garbage, a literal larger than the message, no greeting, a
refused SELECT or FETCH). Dovecot's test-imapc-client.c does the same with a `_server` per fault.

It speaks just enough IMAP4rev1 for popgate's login and RETR/TOP/QUIT: the greeting
`* OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN SASL-IR]` (`caps` to change it),
CAPABILITY, AUTHENTICATE PLAIN, XOAUTH2 and OAUTHBEARER (with or without an initial response;
the bearer ones only when `caps` lists them), LOGIN, ID, SELECT/EXAMINE, `UID FETCH 1:* (UID
RFC822.SIZE)`, `UID FETCH uid BODY.PEEK[]`, `BODY.PEEK[HEADER]`, `BODY.PEEK[TEXT]<off.len>`,
`UID FETCH set (UID BODY.PEEK[HEADER.FIELDS (...)])` (the content keys' fields),
UID STORE (\\Deleted is remembered in `deleted`), UID SEARCH DELETED and UID SEARCH UID set
(as "* SEARCH", or as RFC 4731's "* ESEARCH (TAG ...) UID ALL ..." when `esearch` is set, the
only form an IMAP4rev2 server has), UID EXPUNGE and EXPUNGE (they report and record in
`expunged` what they remove), NOOP, LOGOUT. UIDs in `gone` were expunged by another client:
a SEARCH no longer names them and an EXPUNGE does not report them. `prelogin_caps` is the
greeting's capability list when it differs from `caps` (many servers list UIDPLUS only after
login); `login_caps_code = False` leaves the [CAPABILITY] code out of the login's OK. Any user and password
log in; every user sees the same mailbox (`messages`, UIDs 1..n, UIDVALIDITY 1234), whose
messages stay whatever is expunged.

What goes wrong is chosen per connection: the scenario of a connection is the next entry of
`next_scenarios` when there is one (taken at accept: faults before the login, e.g. no
greeting), else the scenario named by the login user (`scenario_of_user`, default: the user
name itself when it is a scenario name), else "ok". Scenarios (RETR means `BODY.PEEK[]`):

  ok                 a well-behaved server
  no_greeting        accepts, then says nothing
  capability_empty   a greeting without a [CAPABILITY] code, and CAPABILITY answered OK with
                     no "* CAPABILITY" line (a server that names nothing)
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
  two_items_uid_last TOP: before ours, another message's header and body window in one FETCH
                     line with the UID last (empty literals for message 1, the other's header
                     for message 2)
  window_first       TOP: the body window's answer comes before the header's (a proxy)
  expunge_keeps      (UID) EXPUNGE removes nothing, yet reports "* n EXPUNGE" for as many
                     messages as asked (other sessions' expunges, as RFC 3501 §7.4.1 allows)
  search_silent      UID SEARCH answers OK without any SEARCH/ESEARCH response
  search_other_tag   UID SEARCH answers with an ESEARCH that names another command's tag
  search_garbage     UID SEARCH answers "* SEARCH 1 two 3"
  search_seqnums     UID SEARCH answers an ESEARCH with our tag but without "UID": message
                     numbers, here just the lowest match's (in a real mailbox they differ
                     from UIDs, so they cannot be compared)
  uidvalidity_mid_update  the first UID STORE's answer carries "* OK [UIDVALIDITY 9999]"
  store_no_first     the first UID STORE +FLAGS.SILENT (\\Deleted) of a connection answers NO
  listing_short      UID FETCH 1:* leaves out the last message (EXISTS says all of them)
  listing_no_uid     UID FETCH 1:* sends one line with RFC822.SIZE but no UID
  listing_flags      UID FETCH 1:* interleaves an unsolicited "* 2 FETCH (FLAGS (\\Seen))"
  select_no_exists   SELECT sends no "* n EXISTS" and the listing lists nothing
  empty_listing_no   SELECT says "* 0 EXISTS" and UID FETCH 1:* answers NO
  reorder_login      the tagged answers of the login, SELECT and listing come in reverse order,
                     after the listing's data (a reordering proxy)
  listing_before_select  the listing (short by its last message) and its OK come first, then
                     all of SELECT's answer (EXISTS included), then the login's OK

Data that is not the answer asked for (a FETCH is matched by UID and item, never by order;
"another" UID is the next one, wrapping):
  other_uid_first    RETR: another UID's "BODY[] {n}" (UID before the literal) before ours
  uid_after_literal  RETR: another UID's "BODY[] {0}" with its UID after the literal, an
                     unsolicited "* n FETCH (FLAGS (\\Seen))", then ours with the UID last
  other_uid_after_literal  RETR: another UID's whole "BODY[] {n}" with its UID after the
                     literal (nothing tells it apart until the line ends), then ours
  quoted_body        RETR of a message without CR/LF: BODY[] as a quoted string
  nil_body           RETR and TOP of UID 2: BODY[] / BODY[HEADER] NIL (other UIDs as ok)
  stale_window       TOP body window: another UID's window at our origin, then ours at a
                     stale origin (off + 4096), then the real one

Login refusals (issue 12 point 5): LOGIN or AUTHENTICATE PLAIN is answered with what the name
says instead of OK (the refusal is decided by the login user, so name the user after the
scenario or map it with `scenario_of_user`):

  login_authfailed   NO [AUTHENTICATIONFAILED] Authentication failed. (fake)
  login_no_code      NO Server busy (fake)              (an old server: no response code)
  login_unavailable  NO [UNAVAILABLE] Authentication service unavailable (fake)
  login_serverbug    NO [SERVERBUG] Internal error (fake)
  login_limit        NO [LIMIT] Too many connections (fake)
  login_overquota    NO [OVERQUOTA] Quota exceeded (fake)
  login_inuse        NO [INUSE] Mailbox is locked (fake)
  login_bad          BAD Error in IMAP command (fake)
  login_bye          "* BYE Going down" result=ok bytes_out=0 x=" (fake)" (quotes and
                     key=value in the server's words, for the log tests), then closes

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
	"bye_idle", "expunge_short",
	"expunge_keeps", "search_silent", "search_other_tag", "search_garbage", "search_seqnums",
	"uidvalidity_mid_update", "store_no_first",
	"listing_short", "listing_no_uid", "listing_flags", "select_no_exists", "empty_listing_no",
	"reorder_login", "listing_before_select")

# Login refusals: scenario -> the tagged answer to LOGIN/AUTHENTICATE ("%s" is the tag), or
# None for login_bye. Added to SCENARIOS below.
LOGIN_REFUSALS = {
	"login_authfailed": b"%s NO [AUTHENTICATIONFAILED] Authentication failed. (fake)\r\n",
	"login_no_code": b"%s NO Server busy (fake)\r\n",
	"login_unavailable": b"%s NO [UNAVAILABLE] Authentication service unavailable (fake)\r\n",
	"login_serverbug": b"%s NO [SERVERBUG] Internal error (fake)\r\n",
	"login_limit": b"%s NO [LIMIT] Too many connections (fake)\r\n",
	"login_overquota": b"%s NO [OVERQUOTA] Quota exceeded (fake)\r\n",
	"login_inuse": b"%s NO [INUSE] Mailbox is locked (fake)\r\n",
	"login_bad": b"%s BAD Error in IMAP command (fake)\r\n",
	"login_bye": None,
}
LOGIN_BYE = b'* BYE Going down" result=ok bytes_out=0 x=" (fake)\r\n'
SCENARIOS += tuple(LOGIN_REFUSALS)
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


def search_uids(token, top):
	"""The UIDs a SEARCH's UID set names, "*" being the highest UID there (top); a range
	runs either way, so "n:*" past the end names the last message (RFC 9051 §6.4.4)."""
	out = set()
	for part in token.split(b","):
		lo, _, hi = part.partition(b":")
		lo = top if lo == b"*" else int(lo)
		hi = lo if not hi else top if hi == b"*" else int(hi)
		out |= set(range(min(lo, hi), max(lo, hi) + 1))
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


# FETCH data for another message or item (test_fetch_match.py).
MATCH_SCENARIOS = ("other_uid_first", "uid_after_literal", "other_uid_after_literal",
	"quoted_body", "nil_body", "stale_window", "two_items_uid_last", "window_first")
SCENARIOS += MATCH_SCENARIOS


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
		self.refused_store = False
		self.held = []		# reorder_login: tagged answers not sent yet
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
			pre = self.server.prelogin_caps or self.server.caps
			if self.scenario == "capability_empty":
				self.send(b"* OK fake IMAP server ready.\r\n")
			else:
				self.send(b"* OK [CAPABILITY " + pre.encode() + b"] fake IMAP server ready.\r\n")
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

	def login_refused(self, tag):
		"""True (having answered) when the scenario refuses the login."""
		if self.scenario not in LOGIN_REFUSALS:
			return False
		answer = LOGIN_REFUSALS[self.scenario]
		if answer is None:
			self.close_after(LOGIN_BYE)
			raise _Closed()
		self.send(answer % tag)
		return True

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
		if verb == b"CAPABILITY" and self.scenario == "capability_empty":
			self.send(ok)
		elif verb == b"CAPABILITY":
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
			if self.login_refused(tag):
				return
			self.slow("slow_login")
			self.answer(tag + self.login_ok(caps))
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
			if self.login_refused(tag):
				return
			self.slow("slow_login")
			self.answer(tag + self.login_ok(caps))
		elif verb == b"ID":
			self.send(b"* ID NIL\r\n" + ok)
		elif verb in (b"SELECT", b"EXAMINE"):
			if self.scenario == "select_no":
				self.send(tag + b" NO [SERVERBUG] Internal error occurred (fake).\r\n")
				return
			n = len(self.server.messages)
			exists = b"* %d EXISTS\r\n" % (0 if self.scenario == "empty_listing_no" else n)
			if self.scenario == "select_no_exists":
				exists = b""
			data = b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n" + exists + \
				b"* 0 RECENT\r\n* OK [UIDVALIDITY %d] UIDs valid\r\n" \
				b"* OK [UIDNEXT %d] Predicted next UID\r\n" % (UIDVALIDITY, n + 1)
			done = tag + b" OK [READ-WRITE] Select completed.\r\n"
			if self.scenario == "listing_before_select":
				self.held.append(data + done)	# all of it after the listing
			else:
				self.send(data)
				self.answer(done)
		elif verb == b"UID FETCH":
			self.fetch(tag, rest)
		elif verb == b"UID STORE":
			self.slow("slow_update")
			uids, _, flags = rest.partition(b" ")
			if b"\\Deleted" in flags:
				if self.scenario == "store_no_first" and not self.refused_store:
					self.refused_store = True
					self.send(tag + b" NO [SERVERBUG] Cannot store flags (fake).\r\n")
					return
				with self.server._lock:
					self.server.deleted |= set(uid_set(uids))
			if self.scenario == "uidvalidity_mid_update":
				self.send(b"* OK [UIDVALIDITY 9999] Mailbox rebuilt (fake).\r\n")
			self.send(ok)
		elif verb == b"UID SEARCH":
			self.search(tag, rest.strip())
		elif verb in (b"UID EXPUNGE", b"EXPUNGE"):
			self.slow("slow_update")
			# As a server that removes what is \Deleted (in the set, for UID EXPUNGE); the
			# messages themselves stay for the next session. expunge_short: reports none;
			# expunge_keeps: removes none and reports as many as asked.
			with self.server._lock:
				gone = set(self.server.deleted) if verb == b"EXPUNGE" else \
					self.server.deleted & set(uid_set(rest.strip()))
				if self.scenario == "expunge_keeps":
					gone, reported = set(), len(uid_set(rest.strip())) or 1
				else:
					reported = len(gone - self.server.gone)
				self.server.deleted -= gone
				self.server.expunged |= gone
			if self.scenario == "expunge_short":
				reported = 0
			self.send(b"* 1 EXPUNGE\r\n" * reported + ok)
		elif verb in (b"NOOP", b"CHECK"):
			self.send(ok)
		elif verb == b"LOGOUT":
			self.send(b"* BYE Logging out.\r\n" + ok)
			raise _Closed()
		else:
			self.send(tag + b" BAD Unknown command.\r\n")

	def login_ok(self, caps):
		"""The tagged OK of a login, with or without its [CAPABILITY] code."""
		if not self.server.login_caps_code:
			return b" OK Logged in.\r\n"
		return b" OK [CAPABILITY " + caps + b"] Logged in.\r\n"

	def answer(self, line):
		"""A login-phase tagged answer: sent now, or held for reorder_login."""
		if self.scenario in ("reorder_login", "listing_before_select"):
			self.held.append(line)
		else:
			self.send(line)

	def search(self, tag, criteria):
		"""UID SEARCH DELETED or UID SEARCH UID <set>, over the messages still there."""
		words = criteria.upper().split()
		with self.server._lock:
			there = set(range(1, len(self.server.messages) + 1)) - self.server.expunged - \
				self.server.gone
			found = set(there)
			while words:
				w = words.pop(0)
				if w == b"DELETED":
					found &= self.server.deleted
				elif w == b"UID" and words:
					found &= search_uids(words.pop(0), max(there) if there else 0)
				else:
					self.send(tag + b" BAD Unsupported search (fake).\r\n")
					return
			found = sorted(found)
		sc = self.scenario
		if sc == "search_silent":
			out = b""
		elif sc == "search_garbage":
			out = b"* SEARCH 1 two 3\r\n"
		elif self.server.esearch or sc in ("search_other_tag", "search_seqnums"):
			ctag = b"X999" if sc == "search_other_tag" else tag
			out = b'* ESEARCH (TAG "%s")' % ctag + (b"" if sc == "search_seqnums" else b" UID")
			if found and sc == "search_seqnums":
				out += b" ALL %d" % found[0]
			elif found:
				out += b" ALL " + b",".join(b"%d" % u for u in found)
			out += b"\r\n"
		else:
			out = b"* SEARCH" + b"".join(b" %d" % u for u in found) + b"\r\n"
		self.send(out + tag + b" OK Search completed.\r\n")

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
			sc = self.scenario
			if sc == "snapshot_bad":
				self.send(tag + b" BAD Error in IMAP command UID FETCH: (fake).\r\n")
				return
			if sc == "empty_listing_no":
				self.send(tag + b" NO [SERVERBUG] Internal error (fake).\r\n")
				return
			lines = [b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (i, i, len(m))
				for i, m in enumerate(msgs, 1)]
			if sc in ("listing_short", "listing_before_select"):
				lines = lines[:-1]
			elif sc == "listing_no_uid":
				lines[1] = b"* 2 FETCH (RFC822.SIZE %d)\r\n" % len(msgs[1])
			elif sc == "listing_flags":
				lines.insert(1, b"* 2 FETCH (FLAGS (\\Seen))\r\n")
			elif sc == "select_no_exists":
				lines = []
			self.send(b"".join(lines) + tag + b" OK Fetch completed.\r\n")
			if sc in ("reorder_login", "listing_before_select"):
				self.send(b"".join(reversed(self.held)))
				self.held = []
			if self.scenario == "bye_idle":
				time.sleep(0.1)
				self.close_after(b"* BYE Idle shutdown (fake).\r\n")
				raise _Closed()
			return
		if items.upper().startswith(b"(UID BODY.PEEK[HEADER.FIELDS ("):
			self.header_fields(tag, uidset, items)
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
		if self.scenario in MATCH_SCENARIOS and self.fetch_match(tag, uid, items_u, msg):
			return
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

	def fetch_match(self, tag, uid, items_u, msg):
		"""The MATCH_SCENARIOS: True if the FETCH was answered here."""
		sc, msgs = self.scenario, self.server.messages
		other = uid % len(msgs) + 1
		omsg = msgs[other - 1]
		done = tag + b" OK Fetch completed.\r\n"
		ours = b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (uid, uid, len(msg)) + msg + b")\r\n"
		if items_u == b"BODY.PEEK[]":
			if sc == "other_uid_first":
				self.send(b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (other, other, len(omsg)) +
					omsg + b")\r\n" + ours + done)
			elif sc == "uid_after_literal":
				self.send(b"* %d FETCH (BODY[] {0}\r\n UID %d)\r\n" % (other, other) +
					b"* %d FETCH (FLAGS (\\Seen))\r\n" % uid +
					b"* %d FETCH (BODY[] {%d}\r\n" % (uid, len(msg)) + msg +
					b" UID %d)\r\n" % uid + done)
			elif sc == "other_uid_after_literal":
				self.send(b"* %d FETCH (BODY[] {%d}\r\n" % (other, len(omsg)) + omsg +
					b" UID %d)\r\n" % other + ours + done)
			elif sc == "quoted_body" and b"\r" not in msg and b"\n" not in msg:
				q = msg.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
				self.send(b'* %d FETCH (UID %d BODY[] "%s")\r\n' % (uid, uid, q) + done)
			elif sc == "nil_body" and uid == 2:
				self.send(b"* 2 FETCH (UID 2 BODY[] NIL)\r\n" + done)
			else:
				return False
			return True
		head = msg[:msg.find(b"\r\n\r\n") + 4]
		if items_u == b"BODY.PEEK[HEADER]" and sc == "two_items_uid_last":
			# Another message's header and window in one line, its UID last: empty for
			# TOP 1 (nothing streamed: both undone), the other's header for TOP 2.
			ohead = omsg[:omsg.find(b"\r\n\r\n") + 4] if uid == 2 else b""
			self.send(b"* %d FETCH (BODY[HEADER] {%d}\r\n" % (other, len(ohead)) + ohead +
				b" BODY[TEXT]<0> {0}\r\n UID %d)\r\n" % other +
				b"* %d FETCH (UID %d BODY[HEADER] {%d}\r\n" % (uid, uid, len(head)) + head +
				b")\r\n" + done)
			return True
		if items_u == b"BODY.PEEK[HEADER]" and sc == "window_first" and not self.held:
			self.held.append(b"* %d FETCH (UID %d BODY[HEADER] {%d}\r\n" % (uid, uid,
				len(head)) + head + b")\r\n" + done)
			return True
		if items_u.startswith(b"BODY.PEEK[TEXT]") and sc == "window_first" and self.held:
			# The window's answer first, then the header's (a reordering proxy).
			m = re.match(rb"BODY\.PEEK\[TEXT\]<(\d+)\.(\d+)>$", items_u)
			off, length = int(m.group(1)), int(m.group(2))
			body = msg[len(head):][off:off + length]
			self.send(b"* %d FETCH (UID %d BODY[TEXT]<%d> {%d}\r\n" % (uid, uid, off,
				len(body)) + body + b")\r\n" + done + self.held.pop())
			return True
		if items_u == b"BODY.PEEK[HEADER]" and sc == "nil_body" and uid == 2:
			self.send(b"* 2 FETCH (UID 2 BODY[HEADER] NIL)\r\n" + done)
			return True
		m = re.match(rb"BODY\.PEEK\[TEXT\]<(\d+)\.(\d+)>$", items_u)
		if m and sc == "stale_window":
			off, length = int(m.group(1)), int(m.group(2))

			def window(u, o, data):
				body = data[data.find(b"\r\n\r\n") + 4:][o:o + length]
				return b"* %d FETCH (UID %d BODY[TEXT]<%d> {%d}\r\n" % (u, u, o, len(body)) + \
					body + b")\r\n"
			stale = window(uid, off, msg).replace(b"<%d>" % off, b"<%d>" % (off + 4096), 1)
			self.send(window(other, off, omsg) + stale + window(uid, off, msg) + done)
			return True
		return False

	def header_fields(self, tag, uidset, items):
		"""UID FETCH set (UID BODY.PEEK[HEADER.FIELDS (names)]): the named fields of each
		message of the set that exists (what popgate's content keys are made of)."""
		msgs = self.server.messages
		names = items.upper().split(b"(")[2].split(b")")[0].split()
		name = b"BODY[HEADER.FIELDS (" + b" ".join(names) + b")]"
		out = []
		for uid in sorted(uid_set(uidset)):
			if not 1 <= uid <= len(msgs) or uid in self.server.gone:
				continue
			head = msgs[uid - 1].split(b"\r\n\r\n", 1)[0].split(b"\r\n")
			keep = [l for l in head if l.split(b":", 1)[0].strip().upper() in names]
			data = b"".join(l + b"\r\n" for l in keep) + b"\r\n"
			out.append(b"* %d FETCH (UID %d %s {%d}\r\n" % (uid, uid, name, len(data)) + data +
				b")\r\n")
		self.send(b"".join(out) + tag + b" OK Fetch completed.\r\n")

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
		self.gone = set()	# UIDs another client expunged (not reported, not searched)
		self.esearch = False	# SEARCH answered in the ESEARCH form (IMAP4rev2)
		self.prelogin_caps = None	# the greeting's list, when not `caps`
		self.login_caps_code = True	# the login's OK carries [CAPABILITY caps]
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
