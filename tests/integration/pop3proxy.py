"""A recording TCP relay for POP3: put it between a real client and the server under test to see
exactly what the client sends (and the first line of what it gets back). Used by the client tests
so a failure shows the conversation; passwords are masked in what it records."""

import socket
import threading


class Pop3Proxy:
	def __init__(self, port, host="127.0.0.1"):
		self.upstream = (host, port)
		self.listener = socket.socket()
		self.listener.bind(("127.0.0.1", 0))
		self.listener.listen(8)
		self.port = self.listener.getsockname()[1]
		self.sessions = []	# per connection: list of ("C", line) / ("S", line)
		self.lock = threading.Lock()
		self.threads = []
		self.closed = False
		t = threading.Thread(target=self._accept, daemon=True)
		t.start()
		self.threads.append(t)

	def _accept(self):
		while True:
			try:
				c, _ = self.listener.accept()
			except OSError:
				return
			s = socket.create_connection(self.upstream, timeout=120)
			log = []
			pending = []	# client commands not answered yet (clients may pipeline)
			with self.lock:
				self.sessions.append(log)
			for a, b, who in ((c, s, "C"), (s, c, "S")):
				t = threading.Thread(target=self._pump, args=(a, b, who, log, pending),
					daemon=True)
				t.start()
				self.threads.append(t)

	def _pump(self, src, dst, who, log, pending):
		buf = b""
		in_multiline = False
		greeted = False
		try:
			while True:
				data = src.recv(65536)
				if not data:
					break
				if who == "S":
					dst.sendall(data)
					if len(buf) > 4096:
						buf = buf[-4096:]	# a long line inside a message: only its end matters
				buf += data
				while b"\n" in buf:
					line, buf = buf.split(b"\n", 1)
					line = line.rstrip(b"\r")
					if who == "C":
						cmd = mask(line.decode("utf-8", "replace"))
						with self.lock:
							log.append(("C", cmd))
							pending.append(cmd)
					elif not in_multiline:
						with self.lock:
							log.append(("S", line[:80].decode("utf-8", "replace")))
							cmd = pending.pop(0) if greeted and pending else ""
						greeted = True
						# The lines of a multi-line answer are not recorded.
						in_multiline = line.startswith(b"+OK") and is_multiline(cmd)
					elif line == b".":
						in_multiline = False
				if who == "C":
					# Forwarded after its commands are queued, so their answers find them there.
					dst.sendall(data)
		except OSError:
			pass
		finally:
			for sock in (src, dst):
				try:
					sock.shutdown(socket.SHUT_RDWR)
				except OSError:
					pass

	def commands(self):
		"""The client's commands, per connection: [[str, ...], ...]."""
		with self.lock:
			return [[x for w, x in log if w == "C"] for log in self.sessions]

	def transcript(self):
		with self.lock:
			return "\n".join("--- connection %d\n" % i + "\n".join("%s: %s" % e for e in log)
				for i, log in enumerate(self.sessions, 1))

	def close(self):
		self.listener.close()

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.close()


def is_multiline(cmd):
	"""Whether +OK to this POP3 command starts a multi-line answer."""
	words = cmd.upper().split()
	if not words:
		return False
	return words[0] in ("CAPA", "TOP", "RETR") or (words[0] in ("LIST", "UIDL") and len(words) == 1)


COMMANDS = {"USER", "PASS", "APOP", "AUTH", "STLS", "CAPA", "QUIT", "STAT", "LIST", "RETR", "DELE",
	"NOOP", "RSET", "TOP", "UIDL", "UTF8", "LAST"}


def mask(line):
	"""The line with secrets replaced by ***: PASS's argument, AUTH's initial response, and SASL
	continuation lines (anything that is not a POP3 command)."""
	words = line.split(" ")
	if words[0].upper() not in COMMANDS:
		return "***" if line else line
	if words[0].upper() == "PASS":
		return words[0] + " ***"
	if words[0].upper() == "AUTH" and len(words) > 2:
		return " ".join(words[:2]) + " ***"
	return line
