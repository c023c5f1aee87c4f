"""A TCP relay on 127.0.0.1 for tests and benchmarks that must see a conversation: the POP3
recorder of the client tests (pop3proxy.py), the IMAP recorder of the listing-cache test, and
the byte counter of `make bench` (bench/run.py) are this relay with their own hooks.

Each connection gets two threads, one per direction. seen(conn, up, data) is called with every
piece read, before it is forwarded (up is True from the client towards the server); ended(conn,
up) once a direction is over. conn is what opened() returned for the connection (a dict when
there is no opened()). Whatever a hook keeps, it guards with relay.lock."""

import socket
import threading


class TcpRelay:
	def __init__(self, target_port, opened=None, seen=None, ended=None, host="127.0.0.1",
			connect_timeout=None, chunk=65536):
		self.target = (host, target_port)
		self.opened, self.seen, self.ended = opened, seen, ended
		self.connect_timeout, self.chunk = connect_timeout, chunk
		self.lock = threading.Lock()
		self.listener = socket.socket()
		self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		self.listener.bind(("127.0.0.1", 0))
		self.listener.listen(64)
		self.port = self.listener.getsockname()[1]
		threading.Thread(target=self._accept, daemon=True).start()

	def _accept(self):
		while True:
			try:
				c, _ = self.listener.accept()
			except OSError:
				return		# closed
			try:
				s = socket.create_connection(self.target, timeout=self.connect_timeout)
				s.settimeout(None)
			except OSError:
				c.close()
				continue
			conn = self.opened() if self.opened else {}
			for src, dst, up in ((c, s, True), (s, c, False)):
				threading.Thread(target=self._pump, args=(src, dst, up, conn),
					daemon=True).start()

	def _pump(self, src, dst, up, conn):
		try:
			while True:
				data = src.recv(self.chunk)
				if not data:
					break
				if self.seen:
					self.seen(conn, up, data)
				dst.sendall(data)
		except OSError:
			pass
		finally:
			for sock in (src, dst):
				try:
					sock.shutdown(socket.SHUT_RDWR)
				except OSError:
					pass
			if self.ended:
				self.ended(conn, up)

	def close(self):
		self.listener.close()

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.close()
