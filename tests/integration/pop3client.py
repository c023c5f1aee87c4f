"""A raw POP3 client for byte-level assertions (poplib hides the wire: it strips CRLF, unstuffs
dots and raises on -ERR). Every read has a timeout, so a server that goes silent fails the test
instead of hanging it."""

import socket


class Pop3Raw:
	def __init__(self, host, port, timeout=30, source=None, ssl_context=None):
		"""ssl_context: implicit TLS (POP3S), verified against 127.0.0.1 by that context."""
		self.sock = socket.create_connection((host, port), timeout=timeout,
			source_address=(source, 0) if source else None)
		if ssl_context is not None:
			self.sock = ssl_context.wrap_socket(self.sock, server_hostname=host)
		self.file = self.sock.makefile("rb")
		self.greeting = self.readline()

	def send(self, data):
		self.sock.sendall(data)

	def readline(self):
		"""One line including its CRLF; fails on EOF or a line without CRLF."""
		line = self.file.readline(65536)
		assert line, "connection closed by the server"
		assert line.endswith(b"\r\n"), "line not ended by CRLF: %r" % line[:200]
		return line

	def read_multiline(self):
		"""The lines after a +OK of a multi-line reply, raw (still dot-stuffed), up to but not
		including the terminating ".\\r\\n"."""
		lines = []
		while True:
			line = self.readline()
			if line == b".\r\n":
				return lines
			lines.append(line)

	def cmd(self, line):
		"""Sends one command (str or bytes, without CRLF), returns the status line (bytes)."""
		if isinstance(line, str):
			line = line.encode("utf-8")
		self.send(line + b"\r\n")
		return self.readline()

	def cmd_multi(self, line):
		"""(status line, raw lines) for a command with a multi-line answer; lines is None on -ERR."""
		status = self.cmd(line)
		return status, (self.read_multiline() if status.startswith(b"+OK") else None)

	def login(self, user, password):
		r = self.cmd("USER " + user)
		assert r.startswith(b"+OK"), r
		r = self.cmd("PASS " + password)
		assert r.startswith(b"+OK"), r
		return r

	def close(self):
		try:
			self.file.close()
			self.sock.close()
		except OSError:
			pass

	def quit(self):
		r = self.cmd("QUIT")
		self.close()
		return r

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.close()


def unstuff(lines):
	"""Message bytes from the raw lines of a RETR/TOP answer: ".." at a line start becomes "."."""
	return b"".join(line[1:] if line.startswith(b".") else line for line in lines)


def stuff(data):
	"""The wire form of message bytes (ending in CRLF) between +OK and the final ".\\r\\n"."""
	lines = data.split(b"\r\n")
	assert lines[-1] == b""
	return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines[:-1])
