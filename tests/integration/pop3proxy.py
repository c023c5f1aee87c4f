"""A recording TCP relay for POP3: put it between a real client and the server under test to see
exactly what the client sends (and the first line of what it gets back). Used by the client tests
so a failure shows the conversation; passwords are masked in what it records."""

from relay import TcpRelay


class Pop3Proxy(TcpRelay):
	def __init__(self, port, host="127.0.0.1"):
		self.sessions = []	# per connection: list of ("C", line) / ("S", line)
		super().__init__(port, opened=self._opened, seen=self._seen, host=host,
			connect_timeout=120)

	def _opened(self):
		log = []
		with self.lock:
			self.sessions.append(log)
		# pending: client commands not answered yet (clients may pipeline)
		return {"log": log, "pending": [], "buf": {True: b"", False: b""},
			"in_multiline": False, "greeted": False}

	def _seen(self, conn, up, data):
		buf = conn["buf"][up]
		if not up and len(buf) > 4096:
			buf = buf[-4096:]	# a long line inside a message: only its end matters
		buf += data
		while b"\n" in buf:
			line, buf = buf.split(b"\n", 1)
			line = line.rstrip(b"\r")
			if up:
				cmd = mask(line.decode("utf-8", "replace"))
				with self.lock:
					conn["log"].append(("C", cmd))
					conn["pending"].append(cmd)
			elif not conn["in_multiline"]:
				with self.lock:
					conn["log"].append(("S", line[:80].decode("utf-8", "replace")))
					cmd = conn["pending"].pop(0) if conn["greeted"] and conn["pending"] \
						else ""
				conn["greeted"] = True
				# The lines of a multi-line answer are not recorded.
				conn["in_multiline"] = line.startswith(b"+OK") and is_multiline(cmd)
			elif line == b".":
				conn["in_multiline"] = False
		conn["buf"][up] = buf

	def commands(self):
		"""The client's commands, per connection: [[str, ...], ...]."""
		with self.lock:
			return [[x for w, x in log if w == "C"] for log in self.sessions]

	def transcript(self):
		with self.lock:
			return "\n".join("--- connection %d\n" % i + "\n".join("%s: %s" % e for e in log)
				for i, log in enumerate(self.sessions, 1))


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
