"""How a session ends: what the client already said is honoured, what popgate already answered
reaches it, and popgate's own work is never mistaken for the client's inactivity.

- End of stream (issue 12, point 2): a client's FIN or TLS close_notify that arrives with
  buffered commands does not cut them: every complete command runs first, QUIT included (then
  UPDATE happens); a partial last line is dropped, and without QUIT nothing is deleted.
- The last reply (point 3): a session that ends (QUIT, too many bad commands) drains what is
  queued for the client, with a bounded linger, so a client whose socket buffer was full still
  gets every byte, QUIT's "+OK" included.
- Inactivity (point 6): the POP3 idle timer only runs while popgate waits for a client command;
  a slow login, a slowly streamed RETR and a slow multi-step UPDATE (a scripted fake upstream,
  fakeimap.py's slow_* scenarios, for a busy server Dovecot will not imitate) outlive a low
  idle_timeout; a client that stops reading a streamed reply is still cut.

Against the real Dovecot wherever it can show the case; every deleting test uses a fresh user
and checks the mailbox upstream afterwards.
"""

import base64
import socket
import ssl
import time

import pytest

import dovecot as dovecot_mod
import messages
from helpers import (assert_same_bytes, read_until_eof, session_lines, wait_session_closed,
	wait_until)
from messages import message_ids, pop3_bytes
from pop3client import Pop3Raw, stuff, unstuff
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only


def small_rcvbuf_conn(port, size=16 * 1024):
	"""A plain connection whose receive buffer is small (set before connect, so the window
	stays small): (socket, greeting)."""
	s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
	s.settimeout(30)
	s.connect(("127.0.0.1", port))
	greeting = b""
	while not greeting.endswith(b"\r\n"):
		chunk = s.recv(1)
		assert chunk, "closed before the greeting"
		greeting += chunk
	assert greeting.startswith(b"+OK"), greeting
	return s


def wait_session_line(pg, user, timeout=10.0):
	"""user's one end-of-session line, waiting for it."""
	wait_until(lambda: session_lines(pg, user), timeout)
	lines = session_lines(pg, user)
	assert len(lines) == 1, "session lines of %s: %r\n%s" % (user, lines, pg.log_tail())
	return lines[0]


def login_lines(user, password):
	return b"USER %s\r\nPASS %s\r\n" % (user.encode(), password.encode())


def split_replies(data):
	return data.split(b"\r\n")


# --- popgate in front of the real Dovecot ------------------------------------------------------

@pytest.fixture
def gate(request, dovecot, tmp_path):
	"""popgate (plain listener and a POP3S one) in front of the module's Dovecot."""
	started = []

	def make(**overrides):
		tls_port = dovecot_mod.free_ports(1)[0]
		kw = {"limits.auth_fail_delay_ms": 0, "server.listen_tls": "127.0.0.1:%d" % tls_port,
			"tls.cert_file": dovecot.certs["server.pem"],
			"tls.key_file": dovecot.certs["server.key"]}
		kw.update(overrides)
		pg = start_popgate(tmp_path / ("pg%d" % len(started)), dovecot.imap_port, **kw)
		pg.tls_port = tls_port
		started.append(pg)
		return pg

	yield make
	rep = getattr(request.node, "rep_call", None)
	for pg in started:
		if rep is not None and rep.failed:
			print("--- popgate log tail (%s):\n%s" % (pg.log_path, pg.log_tail(80)))
		pg.stop()


class TlsPipe:
	"""A POP3S client over a MemoryBIO, so the test decides what goes into one TCP write
	(application data and close_notify together: one TLS flight)."""

	def __init__(self, port, cafile):
		self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
		self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
		ctx = ssl.create_default_context(cafile=cafile)
		self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname="127.0.0.1")
		self.plain = b""
		while True:
			try:
				self.tls.do_handshake()
				break
			except ssl.SSLWantReadError:
				self._pump()
		self._push()

	def _push(self):
		data = self.out.read()
		if data:
			self.sock.sendall(data)

	def _pump(self):
		self._push()
		data = self.sock.recv(65536)
		if not data:
			self.inc.write_eof()
			raise EOFError("server closed")
		self.inc.write(data)

	def readline(self):
		while b"\r\n" not in self.plain:
			try:
				self.plain += self.tls.read(65536)
			except ssl.SSLWantReadError:
				self._pump()
		line, _, self.plain = self.plain.partition(b"\r\n")
		return line + b"\r\n"

	def send_records(self, data, close_notify):
		"""data as TLS records, then close_notify (or only a TCP FIN after them), in one
		TCP write."""
		self.tls.write(data)
		if close_notify:
			try:
				self.tls.unwrap()
			except ssl.SSLWantReadError:
				pass	# it waits for the server's close_notify; ours is in self.out
		self.sock.sendall(self.out.read())
		if not close_notify:
			self.sock.shutdown(socket.SHUT_WR)

	def close(self):
		self.sock.close()


@pytest.mark.parametrize("end", ["close_notify", "tcp_fin"])
def test_dele_and_quit_with_close_in_the_same_tls_flight_apply_the_deletion(gate, dovecot, end):
	pg = gate()
	u = dovecot.fresh_user(False, True)
	user, password, msgs = u[0], u[1], u[2]
	c = TlsPipe(pg.tls_port, dovecot.certs["ca.pem"])
	assert c.readline().startswith(b"+OK")
	c.tls.write(login_lines(user, password))
	c._push()
	assert c.readline().startswith(b"+OK")
	assert c.readline().startswith(b"+OK"), "login"
	c.send_records(b"DELE 1\r\nQUIT\r\n", close_notify=(end == "close_notify"))
	raw, closed, _ = read_until_eof(c.sock, 20)
	assert closed, "popgate did not close after QUIT"
	if end == "tcp_fin":
		# Nothing was sent after the data but a FIN: our TLS can still read the replies.
		c.inc.write(raw)
		replies = b""
		try:
			while True:
				chunk = c.tls.read(65536)
				if not chunk:
					break	# the server's close_notify
				replies += chunk
		except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
			pass
		assert replies.startswith(b"+OK") and b"\r\n+OK Logging out, 1 messages deleted.\r\n" in \
			replies, replies
	else:
		assert raw, "no reply at all after DELE, QUIT, close_notify"
	c.close()
	line = wait_session_line(pg, user)
	assert "result=ok" in line and "dele=1" in line, line
	assert [m.message_id for m in dovecot_upstream(dovecot, user)] == message_ids(msgs)[1:]


def dovecot_upstream(dovecot, user):
	from conftest import Pop3Target
	return Pop3Target("popgate", dovecot, 0).upstream(user)


def test_pipelined_noops_retr_dele_quit_then_shut_wr_runs_them_all(gate, dovecot):
	pg = gate()
	u = dovecot.fresh_user(False, True)
	user, password, msgs = u[0], u[1], u[2]
	noops = 20 * 1024 // len(b"NOOP\r\n")
	c = Pop3Raw("127.0.0.1", pg.port, timeout=30)
	c.send(login_lines(user, password) + b"NOOP\r\n" * noops + b"RETR 2\r\nDELE 1\r\nQUIT\r\n")
	c.sock.shutdown(socket.SHUT_WR)	# half-closed: popgate's replies can still come
	data, closed, _ = read_until_eof(c.sock, 30)
	c.close()
	assert closed
	lines = data.split(b"\r\n")
	assert lines[0].startswith(b"+OK") and lines[1].startswith(b"+OK"), lines[:2]
	assert lines[2:2 + noops] == [b"+OK Keeping on."] * noops, "NOOPs answered: %d" % (
		lines.count(b"+OK Keeping on."))
	rest = b"\r\n".join(lines[2 + noops:])
	assert rest.startswith(b"+OK"), rest[:200]
	body = rest.split(b"\r\n", 1)[1]
	want = stuff(pop3_bytes(msgs[1])) + b".\r\n"
	assert_same_bytes(body[:len(want)], want, "RETR 2")
	tail = body[len(want):]
	assert tail.startswith(b"+OK") and tail.endswith(b"+OK Logging out, 1 messages deleted.\r\n"), tail
	line = wait_session_line(pg, user)
	assert "result=ok" in line and "dele=1" in line, line
	assert [m.message_id for m in dovecot_upstream(dovecot, user)] == message_ids(msgs)[1:]


def test_fin_after_pipelined_retr_runs_it_and_a_partial_quit_deletes_nothing(gate, dovecot):
	pg = gate()
	u = dovecot.fresh_user(False, True)
	user, password, msgs = u[0], u[1], u[2]
	c = Pop3Raw("127.0.0.1", pg.port, timeout=30)
	c.login(user, password)
	c.send(b"DELE 1\r\nRETR 7\r\nQUI")	# the 50 KB multipart one; QUIT never completed
	c.sock.shutdown(socket.SHUT_WR)
	data, closed, _ = read_until_eof(c.sock, 30)
	c.close()
	assert closed
	status, _, rest = data.partition(b"\r\n")
	assert status.startswith(b"+OK"), status
	retr_status, _, body = rest.partition(b"\r\n")
	assert retr_status.startswith(b"+OK"), retr_status
	assert_same_bytes(body, stuff(pop3_bytes(msgs[6])) + b".\r\n", "RETR 7 after the FIN")
	line = wait_session_line(pg, user)
	assert "result=disconnected" in line and "dele=0" in line, line
	up = dovecot_upstream(dovecot, user)
	assert [m.message_id for m in up] == message_ids(msgs)
	assert not [m for m in up if "\\Deleted" in m.flags], up


# --- the last reply reaches a client whose buffer was full -------------------------------------

# Today's race, made certain: with a high watermark above what the commands produce, popgate
# queues every reply at once while the client reads nothing, runs the final command and ends
# the session with megabytes still queued. With the default watermark (64 KB) the same loss
# happens whenever a slow reader leaves replies queued when the session ends.
BIG_HIWAT = {"limits.output_high_watermark": 32 << 20}


def test_retr_of_20mb_and_quit_pipelined_to_a_client_not_reading_arrive_whole(gate, dovecot):
	pg = gate(**BIG_HIWAT)
	big = dovecot.seeded["alice"][messages.BIG - 1]
	s = small_rcvbuf_conn(pg.port)
	s.sendall(login_lines("alice", dovecot.users["alice"]) + b"RETR %d\r\nQUIT\r\n" % messages.BIG)
	wait_session_closed(pg, "alice")	# popgate has it all queued, and has ended the session
	data, closed, _ = read_until_eof(s, 120)
	s.close()
	assert closed
	head = data.split(b"\r\n", 3)
	assert [h[:3] for h in head[:3]] == [b"+OK"] * 3, head[:3]
	body = head[3]
	want = stuff(pop3_bytes(big)) + b".\r\n"
	assert len(body) >= len(want), "%d of the %d bytes of RETR arrived" % (len(body), len(want))
	assert_same_bytes(body[:len(want)], want, "the 20 MB message")
	assert body[len(want):] == b"+OK Logging out, 0 messages deleted.\r\n", body[len(want):][:200]
	line = wait_session_line(pg, "alice")
	assert "result=ok" in line, line


# More than the kernel holds for a client that does not read (Linux autotunes a loopback send
# buffer to about 4 MB): 5 MB of replies from a few hundred bytes of commands.
RETRS = 100
MSG = 7		# the 50 KB multipart message of every seeded mailbox


def retr_replies(data, msg, count):
	"""Checks that data starts with count byte-exact RETR replies of msg: the rest."""
	want = b"+OK"
	one = stuff(pop3_bytes(msg)) + b".\r\n"
	for i in range(count):
		status, sep, data = data.partition(b"\r\n")
		assert status.startswith(want) and sep, "RETR %d of %d: %r" % (i + 1, count, status[:100])
		assert_same_bytes(data[:len(one)], one, "RETR %d of %d (%d bytes left)" % (
			i + 1, count, len(data)))
		data = data[len(one):]
	return data


def test_quit_ok_after_update_reaches_a_client_whose_buffer_was_full(gate, dovecot):
	pg = gate(**BIG_HIWAT)
	u = dovecot.fresh_user(False, True)
	user, password, msgs = u[0], u[1], u[2]
	s = small_rcvbuf_conn(pg.port)
	s.sendall(login_lines(user, password) + b"DELE 1\r\n" + b"RETR %d\r\n" % MSG * RETRS +
		b"QUIT\r\n")
	wait_session_closed(pg, user)	# the replies are queued, QUIT has run and ended the session
	data, closed, _ = read_until_eof(s, 120)
	s.close()
	assert closed
	head = data.split(b"\r\n", 3)
	assert [h[:3] for h in head[:3]] == [b"+OK"] * 3, head[:3]
	tail = retr_replies(head[3], msgs[MSG - 1], RETRS)
	assert tail == b"+OK Logging out, 1 messages deleted.\r\n", tail[:200]
	line = wait_session_line(pg, user)
	assert "result=ok" in line and "dele=1" in line, line
	assert [m.message_id for m in dovecot_upstream(dovecot, user)] == message_ids(msgs)[1:]


def test_too_many_bad_commands_reply_reaches_a_client_whose_buffer_was_full(gate, dovecot):
	pg = gate(**BIG_HIWAT)
	msgs = dovecot.seeded["bob"]
	s = small_rcvbuf_conn(pg.port)
	s.sendall(login_lines("bob", dovecot.users["bob"]) + b"RETR %d\r\n" % MSG * RETRS +
		b"XYZZY\r\n" * 20)
	wait_session_closed(pg, "bob")	# the replies are queued, the 20th XYZZY ended the session
	data, closed, _ = read_until_eof(s, 120)
	s.close()
	assert closed
	head = data.split(b"\r\n", 2)
	tail = retr_replies(head[2], msgs[MSG - 1], RETRS)
	assert tail == b"-ERR Unknown command.\r\n" * 20 + b"-ERR Too many bad commands, closing.\r\n", \
		tail[:300]
	line = wait_session_line(pg, "bob")
	assert "result=too many bad commands" in line, line


# --- the inactivity timer runs only while popgate waits for the client -------------------------

@pytest.fixture
def slow_gate(request, fake, tmp_path):
	"""popgate in front of the fake with idle_timeout = 1 (the minimum) and room for the fake's
	slow answers (each 1.5 s) under upstream_timeout."""
	pg = start_popgate(tmp_path / "pg", fake.port, **{"pop3.idle_timeout": 1,
		"limits.upstream_timeout": 5, "limits.auth_fail_delay_ms": 0})
	yield pg
	rep = getattr(request.node, "rep_call", None)
	if rep is not None and rep.failed:
		print("--- popgate log tail:\n%s\n--- fake IMAP transcript:\n%s" % (
			pg.log_tail(80), fake.transcript()))
	pg.stop()


def test_slow_login_is_not_client_inactivity(slow_gate, fake):
	c = Pop3Raw("127.0.0.1", slow_gate.port, timeout=15)
	assert c.cmd("USER slow_login").startswith(b"+OK")
	t = time.monotonic()
	r = c.cmd("PASS pw")
	assert r.startswith(b"+OK"), r
	assert time.monotonic() - t >= 1.4
	assert c.cmd("STAT").startswith(b"+OK 3 ")
	assert c.quit().startswith(b"+OK")


def test_slowly_streamed_retr_is_not_client_inactivity(slow_gate, fake):
	c = Pop3Raw("127.0.0.1", slow_gate.port, timeout=15)
	c.login("slow_literal", "pw")
	status, lines = c.cmd_multi("RETR 3")	# 4 pieces 1.5 s apart: 6 s, idle_timeout 1
	assert status.startswith(b"+OK"), status
	assert_same_bytes(unstuff(lines), pop3_bytes(fake.messages[2]), "RETR 3")
	assert c.quit().startswith(b"+OK")


def test_slow_multi_step_update_is_not_client_inactivity(slow_gate, fake):
	c = Pop3Raw("127.0.0.1", slow_gate.port, timeout=20)
	c.login("slow_update", "pw")
	assert c.cmd("DELE 1").startswith(b"+OK")
	assert c.cmd("DELE 3").startswith(b"+OK")
	t = time.monotonic()
	r = c.cmd("QUIT")	# UID STORE, then UID EXPUNGE: 3 s, idle_timeout 1
	c.close()
	assert r == b"+OK Logging out, 2 messages deleted.\r\n", r
	assert time.monotonic() - t >= 2.9
	assert fake.expunged == {1, 3}
	line = wait_session_line(slow_gate, "slow_update")
	assert "result=ok" in line and "dele=2" in line, line


def test_client_that_stops_reading_a_retr_is_still_cut(gate, dovecot):
	# The other side of the coin (a guard, it held before too): popgate works, but the
	# client's socket takes nothing for idle_timeout: inactivity, then a bounded linger.
	pg = gate(**{"pop3.idle_timeout": 1})
	s = small_rcvbuf_conn(pg.port)
	s.sendall(login_lines("alice", dovecot.users["alice"]) + b"RETR %d\r\n" % messages.BIG)
	line = wait_session_line(pg, "alice", timeout=20)
	assert "result=idle timeout" in line, line
	s.close()


def capa_reply_len(port):
	"""The length of one CAPA reply of this popgate, as its client receives it."""
	with Pop3Raw("127.0.0.1", port) as c:
		status, lines = c.cmd_multi("CAPA")
		assert status.startswith(b"+OK"), status
		return len(status) + sum(len(x) for x in lines) + 3


@pytest.mark.popgate_only
def test_auth_response_pipelined_behind_a_full_output_is_read_once_it_drains(fake, tmp_path):
	"""A client pipelines CAPAs until popgate's output is at its high watermark, then AUTH PLAIN
	and its response line: the "+ " goes out, the loop stops for room, and once the client
	reads, the waiting response must be read and answered (it used to wait for the idle
	timeout: only a next command, not a SASL line, was looked for at the low watermark)."""
	pg = start_popgate(tmp_path / "probe", fake.port)
	try:
		size = capa_reply_len(pg.port)
	finally:
		pg.stop()
	n = 4096 // size + 1	# n CAPA replies stay below the watermark; the "+ " crosses it
	pg = start_popgate(tmp_path / "g", fake.port, **{
		"limits.output_high_watermark": str(n * size + 2),
		"limits.output_low_watermark": "1024"})
	try:
		s = socket.create_connection(("127.0.0.1", pg.port), timeout=10)
		f = s.makefile("rb")
		assert f.readline().startswith(b"+OK")
		s.sendall(b"CAPA\r\n" * n + b"AUTH PLAIN\r\n" +
			base64.b64encode(b"\0ok-user\0pw") + b"\r\n")
		got = b""
		while b"Logged in" not in got:
			line = f.readline()
			assert line, "popgate closed: %r" % got[-200:]
			got += line
		assert b"+OK Logged in" in got
		s.close()
	finally:
		pg.stop()
