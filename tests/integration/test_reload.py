"""SIGHUP reloads ([server] master = yes): the master reads the ini and the keys again and
starts a new generation of workers on the same listening sockets; the old generation stops
accepting and lets its sessions finish, then exits. A configuration that does not load (a
syntax error, a key that does not match its certificate, an address someone else holds) is
refused with a log line, and the one in use keeps serving. Also: sd_notify's READY,
RELOADING and STOPPING, and `popgate -d` with its PID file."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

import dovecot as dovecot_mod
from helpers import assert_same_bytes, wait_until
from messages import pop3_bytes
from pop3client import Pop3Raw, unstuff
from popgate import SANITIZER_MARKS, popgate_bin, popgate_ini, start_popgate

pytestmark = pytest.mark.popgate_only


def worker_pids(pg):
	"""{pid} of the workers the master runs now (its children)."""
	try:
		with open("/proc/%d/task/%d/children" % (pg.proc.pid, pg.proc.pid)) as f:
			return {int(p) for p in f.read().split()}
	except OSError:
		return set()


def alive(pid):
	try:
		os.kill(pid, 0)
	except ProcessLookupError:
		return False
	try:	# a zombie the master has not reaped yet is gone for our purpose
		with open("/proc/%d/stat" % pid) as f:
			return f.read().rsplit(")", 1)[1].split()[0] != "Z"
	except OSError:
		return False


def reload(pg, generation, timeout=10):
	"""SIGHUP, then wait for the log to say configuration `generation` serves."""
	pg.proc.send_signal(signal.SIGHUP)
	wait_until(lambda: "reloaded: configuration %d," % generation in pg.log(), timeout,
		lambda: "reload %d not taken:\n%s" % (generation, pg.log_tail()))


def reload_refused(pg, count, timeout=10):
	"""SIGHUP, then wait for the log's count-th refusal; returns its line."""
	pg.proc.send_signal(signal.SIGHUP)
	lines = wait_until(lambda: (lambda l: l if len(l) >= count else None)(
		re.findall(r".*reload refused.*", pg.log())), timeout,
		lambda: "reload not refused:\n%s" % pg.log_tail())
	return lines[count - 1]


def rewrite(pg, **overrides):
	"""The ini with overrides on the test's base config (as start_popgate() wrote it)."""
	text = popgate_ini(pg.dir, pg.imap_port, pg.port, **dict(pg.overrides, **overrides))
	with open(pg.ini_path, "w") as f:
		f.write(text)


def start(dovecot, tmp, **overrides):
	pg = start_popgate(tmp, dovecot.imap_port, **overrides)
	pg.imap_port, pg.overrides = dovecot.imap_port, overrides
	return pg


def der(pem_path):
	return ssl.PEM_cert_to_DER_cert(open(pem_path).read())


def peer_cert(port):
	"""The certificate a POP3S client on port is shown (not verified: the test compares it)."""
	ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
	ctx.check_hostname = False
	ctx.verify_mode = ssl.CERT_NONE
	with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10)) as t:
		got = t.getpeercert(binary_form=True)
		assert t.recv(100).startswith(b"+OK"), "no greeting over TLS"
		return got


def greeted(port):
	with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
		return s.recv(100).startswith(b"+OK")


def test_a_new_certificate_is_served_while_an_old_retr_completes(dovecot, tmp_path):
	user, password, msgs = dovecot.fresh_user(include_big=True)
	big = max(range(len(msgs)), key=lambda i: len(msgs[i]))
	assert len(msgs[big]) >= 20_000_000
	certs = tmp_path / "certs"
	certs.mkdir()
	cert, key = str(certs / "cert.pem"), str(certs / "key.pem")
	shutil.copy(dovecot.certs["server.pem"], cert)
	shutil.copy(dovecot.certs["server.key"], key)
	tls_port = dovecot_mod.free_ports(1)[0]
	pg = start(dovecot, tmp_path / "pg", **{"server.workers": 2,
		"server.listen_tls": "127.0.0.1:%d" % tls_port, "tls.cert_file": cert,
		"tls.key_file": key})
	try:
		assert wait_until(lambda: len(worker_pids(pg)) == 2, 10)
		old = worker_pids(pg)
		assert peer_cert(tls_port) == der(dovecot.certs["server.pem"])
		ctx = ssl.create_default_context(cafile=dovecot.certs["ca.pem"])
		c = Pop3Raw("127.0.0.1", tls_port, ssl_context=ctx)
		c.login(user, password)
		c.send(b"RETR %d\r\n" % (big + 1))
		assert c.readline().startswith(b"+OK")
		first = c.file.read(65536)		# the transfer is under way

		shutil.copy(dovecot.certs["wronghost.pem"], cert)
		shutil.copy(dovecot.certs["wronghost.key"], key)
		reload(pg, 2)
		new = wait_until(lambda: (lambda p: p if len(p - old) == 2 else None)(worker_pids(pg)),
			10, lambda: "no new generation:\n%s" % pg.log_tail())
		# Until the old workers have taken their SIGUSR2 they still accept.
		wait_until(lambda: len(re.findall(r"worker=\d+ retires", pg.log())) == 2, 10,
			lambda: "the old workers did not retire:\n%s" % pg.log_tail())
		# New sessions: the new certificate, served by a new worker.
		for _ in range(5):
			assert peer_cert(tls_port) == der(dovecot.certs["wronghost.pem"])
		with Pop3Raw("127.0.0.1", pg.port) as p:
			p.login("bob", dovecot.users["bob"])
			assert p.cmd(b"STAT").startswith(b"+OK")
			assert p.quit().startswith(b"+OK")
		# The old session, on an old worker, goes on: byte-exact, and its QUIT's DELE made.
		assert any(alive(pid) for pid in old), "the old generation ended with a session open"
		rest = c.read_multiline()
		body = unstuff((first + b"".join(rest)).splitlines(True))
		assert_same_bytes(body, pop3_bytes(msgs[big]), "RETR across the reload")
		assert c.cmd(b"DELE %d" % (big + 1)).startswith(b"+OK")
		assert c.quit().startswith(b"+OK")
		c.close()
		# The old workers exit once their last session is over; the new ones stay.
		assert wait_until(lambda: not any(alive(pid) for pid in old), 10), pg.log_tail()
		assert worker_pids(pg) - new == set() and all(alive(p) for p in new - old)
		assert "a worker of an earlier configuration, finished its sessions" in pg.log()
		m = dovecot.imap(user, password)
		try:
			typ, data = m.select("INBOX", readonly=True)
			assert typ == "OK" and int(data[0]) == len(msgs) - 1, "the DELE was not made"
		finally:
			m.logout()
	finally:
		pg.stop()


def test_no_connection_is_refused_across_reloads(dovecot, tmp_path):
	"""Connections keep coming while the master reloads three times, once to more workers:
	every one is greeted."""
	pg = start(dovecot, tmp_path / "pg", **{"server.workers": 2})
	stop = threading.Event()
	results = []

	def hammer():
		while not stop.is_set():
			try:
				results.append(greeted(pg.port))
			except OSError as e:
				results.append(e)

	t = threading.Thread(target=hammer)
	t.start()
	try:
		time.sleep(0.3)
		reload(pg, 2)
		rewrite(pg, **{"server.workers": 3})
		reload(pg, 3)
		assert wait_until(lambda: len(worker_pids(pg)) == 3, 10), pg.log_tail()
		reload(pg, 4)
		time.sleep(0.5)
	finally:
		stop.set()
		t.join(30)
	try:
		bad = [r for r in results if r is not True]
		assert len(results) > 50 and not bad, (len(results), bad[:5])
		assert wait_until(lambda: len(worker_pids(pg)) == 3, 10), pg.log_tail()
	finally:
		pg.stop()


def test_a_configuration_that_does_not_load_is_refused_and_the_old_keeps_serving(dovecot,
		tmp_path):
	pg = start(dovecot, tmp_path / "pg", **{"server.workers": 2})
	try:
		assert wait_until(lambda: len(worker_pids(pg)) == 2, 10)
		serving = worker_pids(pg)
		good = open(pg.ini_path).read()

		with open(pg.ini_path, "a") as f:
			f.write("[pop3]\nno_such_key = 1\n")
		line = reload_refused(pg, 1)
		assert "no_such_key: unknown key" in line and "popgate.ini:" in line, line

		# A key that is not its certificate's.
		tls_port = dovecot_mod.free_ports(1)[0]
		rewrite(pg, **{"server.listen_tls": "127.0.0.1:%d" % tls_port,
			"tls.cert_file": dovecot.certs["server.pem"],
			"tls.key_file": dovecot.certs["wronghost.key"]})
		line = reload_refused(pg, 2)
		assert "key" in line.lower(), line

		# A new address that another server listens on.
		other = socket.socket()
		other.bind(("127.0.0.1", 0))
		other.listen(1)
		try:
			rewrite(pg, **{"server.listen": "127.0.0.1:%d, 127.0.0.1:%d" % (
				pg.port, other.getsockname()[1])})
			line = reload_refused(pg, 3)
			assert "listen on 127.0.0.1:%d" % other.getsockname()[1] in line, line
		finally:
			other.close()

		# Still the first generation, serving as before.
		assert worker_pids(pg) == serving
		assert "reloaded:" not in pg.log()
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login("bob", dovecot.users["bob"])
			assert c.cmd(b"STAT").startswith(b"+OK")
			assert c.quit().startswith(b"+OK")
		# And a good file is taken.
		with open(pg.ini_path, "w") as f:
			f.write(good)
		reload(pg, 2)
	finally:
		pg.stop()


def test_a_reload_adds_and_removes_a_listen_address(dovecot, tmp_path):
	pg = start(dovecot, tmp_path / "pg", **{"server.workers": 2})
	second = dovecot_mod.free_ports(1)[0]
	try:
		rewrite(pg, **{"server.listen": "127.0.0.1:%d, 127.0.0.1:%d" % (pg.port, second)})
		reload(pg, 2)
		for port in (pg.port, second):
			with Pop3Raw("127.0.0.1", port) as c:
				c.login("bob", dovecot.users["bob"])
				assert c.cmd(b"STAT").startswith(b"+OK")
				assert c.quit().startswith(b"+OK")
		rewrite(pg)
		reload(pg, 3)
		# The old generation has no session left: it exits, and with it the last socket
		# on the dropped address.
		def closed():
			try:
				socket.create_connection(("127.0.0.1", second), timeout=2).close()
				return False
			except OSError:
				return True
		assert wait_until(closed, 10), "the dropped address still accepts"
		assert greeted(pg.port)
	finally:
		pg.stop()


def test_sighup_without_a_master_is_logged_and_changes_nothing(dovecot, tmp_path):
	pg = start(dovecot, tmp_path / "pg")	# the harness's master = no
	try:
		pg.proc.send_signal(signal.SIGHUP)
		wait_until(lambda: "master = no cannot reload" in pg.log(), 5, pg.log_tail)
		assert pg.proc.poll() is None
		assert greeted(pg.port)
	finally:
		pg.stop()


def test_a_stop_gives_a_retiring_worker_the_shutdown_timeout(dovecot, tmp_path):
	"""An old worker with an idle session open waits for it (a reload sets no deadline); the
	stop that follows ends it at [server] shutdown_timeout."""
	pg = start(dovecot, tmp_path / "pg", **{"server.workers": 2, "server.shutdown_timeout": 2})
	try:
		c = Pop3Raw("127.0.0.1", pg.port)
		c.login("bob", dovecot.users["bob"])
		reload(pg, 2)
		time.sleep(3)
		assert c.cmd(b"NOOP").startswith(b"+OK"), "the retiring worker dropped its session"
		t0 = time.monotonic()
		pg.proc.send_signal(signal.SIGTERM)
		pg.proc.wait(15)
		assert pg.proc.returncode == 0, pg.log_tail()
		assert 1.5 < time.monotonic() - t0 < 10, time.monotonic() - t0
		c.close()
	finally:
		pg.stop()


class NotifySocket:
	"""The service manager's end of sd_notify(3): an AF_UNIX datagram socket."""

	def __init__(self, path):
		self.path = path
		self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		self.sock.bind(path)
		self.sock.settimeout(0.2)
		self.messages = []

	def wait(self, field, timeout=10):
		deadline = time.monotonic() + timeout
		while time.monotonic() < deadline:
			for m in self.messages:
				if field in m.split("\n"):
					self.messages.remove(m)
					return m
			try:
				self.messages.append(self.sock.recv(4096).decode())
			except socket.timeout:
				pass
		raise AssertionError("no %s in %r" % (field, self.messages))

	def close(self):
		self.sock.close()


@pytest.mark.parametrize("master", ["yes", "no"])
def test_sd_notify_ready_reloading_stopping(dovecot, tmp_path, master):
	n = NotifySocket(str(tmp_path / "notify.sock"))
	overrides = {"server.master": master}
	if master == "yes":
		overrides["server.workers"] = 2
	pg = start_popgate(tmp_path / "pg", dovecot.imap_port, **overrides)
	pg.proc.kill()
	pg.proc.wait(5)
	try:
		pg.start(env={"NOTIFY_SOCKET": n.path})
		ready = n.wait("READY=1")
		assert "STATUS=serving" in ready, ready
		if master == "yes":
			pg.proc.send_signal(signal.SIGHUP)
			n.wait("RELOADING=1")
			assert "configuration 2" in n.wait("READY=1")
		pg.proc.send_signal(signal.SIGTERM)
		n.wait("STOPPING=1")
		pg.proc.wait(10)
		assert pg.proc.returncode == 0, pg.log_tail()
	finally:
		pg.stop()
		n.close()


def test_daemon_mode_writes_and_removes_its_pid_file(dovecot, tmp_path):
	port = dovecot_mod.free_ports(1)[0]
	pidfile = str(tmp_path / "popgate.pid")
	log = str(tmp_path / "popgate.log")
	ini = str(tmp_path / "popgate.ini")
	with open(ini, "w") as f:
		f.write(popgate_ini(tmp_path, dovecot.imap_port, port, **{"server.workers": 2,
			"server.pid_file": pidfile}))

	def daemon(path):
		with open(log, "ab") as out:
			return subprocess.run([popgate_bin(), "-d", "-c", path], stdin=subprocess.DEVNULL,
				stdout=out, stderr=out, timeout=30).returncode

	assert daemon(ini) == 0, open(log).read()
	pid = int(open(pidfile).read())
	try:
		# Serving when the command returned: no wait needed.
		with Pop3Raw("127.0.0.1", port) as c:
			c.login("bob", dovecot.users["bob"])
			assert c.cmd(b"STAT").startswith(b"+OK")
			assert c.quit().startswith(b"+OK")
		with open("/proc/%d/stat" % pid) as f:
			fields = f.read().rsplit(")", 1)[1].split()
		assert int(fields[3]) == pid, "not its own session leader (setsid)"
		# A second daemon with the same PID file is refused while the first runs.
		other = str(tmp_path / "other.ini")
		with open(other, "w") as f:
			f.write(popgate_ini(tmp_path, dovecot.imap_port, dovecot_mod.free_ports(1)[0],
				**{"server.workers": 2, "server.pid_file": pidfile}))
		assert daemon(other) == 1
		assert "another popgate (pid %d) holds it" % pid in open(log).read()
		assert int(open(pidfile).read()) == pid
		# A daemon whose start fails says so in its status.
		busy = str(tmp_path / "busy.ini")
		with open(busy, "w") as f:
			f.write(popgate_ini(tmp_path, dovecot.imap_port, port, **{"server.workers": 2,
				"server.pid_file": str(tmp_path / "busy.pid")}))
		assert daemon(busy) == 1
		os.kill(pid, signal.SIGTERM)
		assert wait_until(lambda: not alive(pid), 15), open(log).read()[-3000:]
		assert not os.path.exists(pidfile), "the PID file outlived the daemon"
		assert not [m for m in SANITIZER_MARKS if m in open(log).read()], open(log).read()
	finally:
		if alive(pid):
			os.kill(pid, signal.SIGKILL)


def test_fewer_workers_after_a_reload_reset_no_queued_connection(dovecot, tmp_path):
	"""Connections the kernel queued on a slot the reload drops (3 workers, then 1) are
	served by the retiring worker, not reset when its socket closes. The workers are
	stopped (SIGSTOP) while the connections come, so that they wait in the queues."""
	pg = start(dovecot, tmp_path / "pg", **{"server.workers": 3,
		"limits.max_per_address": 1000})
	assert wait_until(lambda: len(worker_pids(pg)) == 3, 10)
	old = worker_pids(pg)
	conns = []
	try:
		for pid in old:
			os.kill(pid, signal.SIGSTOP)
		for _ in range(30):
			conns.append(socket.create_connection(("127.0.0.1", pg.port), timeout=20))
		rewrite(pg, **{"server.workers": 1})
		reload(pg, 2)
		for pid in old:
			os.kill(pid, signal.SIGCONT)
		got = []
		for c in conns:
			try:
				line = c.recv(100)
				got.append(True if line.startswith(b"+OK") else line)
			except OSError as e:
				got.append(e)
		assert got == [True] * len(conns), got
	finally:
		for pid in old:
			if alive(pid):
				os.kill(pid, signal.SIGCONT)
		for c in conns:
			c.close()
		pg.stop()
