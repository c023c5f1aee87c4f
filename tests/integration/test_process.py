"""The process around the sessions: out of file descriptors it pauses accepting instead of
spinning; it drops to the configured user and cannot dump core (it holds passwords)."""

import os
import pwd
import socket
import subprocess
import tempfile
import time

import pytest

from helpers import wait_until
from pop3client import Pop3Raw
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only


def cpu_seconds(pid):
	with open("/proc/%d/stat" % pid) as f:
		fields = f.read().rsplit(")", 1)[1].split()
	return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_emfile_pauses_accepting_without_spinning_then_recovers(pop3, tmp_path):
	pg = start_popgate(tmp_path / "pg", pop3.dovecot.imap_port, **{"limits.max_per_address": 1000})
	socks = []
	try:
		base = pg.fd_count()
		# Room for only a few more descriptors: the listener hits EMFILE quickly.
		subprocess.run(["prlimit", "--pid", str(pg.proc.pid), "--nofile=%d:" % (base + 4)],
			check=True)
		for _ in range(12):
			socks.append(socket.create_connection(("127.0.0.1", pg.port), timeout=5))
		wait_until(lambda: "pausing new connections" in pg.log(), 5)	# it hit EMFILE
		before = cpu_seconds(pg.proc.pid)
		time.sleep(2.0)		# the time it is watched while out of descriptors
		spent = cpu_seconds(pg.proc.pid) - before
		assert spent < 0.5, "popgate used %.2f s of CPU in 2 s while out of descriptors" % spent
		assert "pausing new connections" in pg.log()
		for s in socks:
			s.close()
		socks = []
		subprocess.run(["prlimit", "--pid", str(pg.proc.pid), "--nofile=4096:"], check=True)
		deadline = time.monotonic() + 10
		while True:
			try:
				with Pop3Raw("127.0.0.1", pg.port, timeout=5) as c:
					c.login("alice", pop3.password)
					assert c.cmd("STAT").startswith(b"+OK %d " % len(pop3.messages))
					c.quit()
				break
			except (OSError, AssertionError):
				if time.monotonic() > deadline:
					raise
				time.sleep(0.3)
	finally:
		for s in socks:
			s.close()
		pg.stop()


def test_drops_to_the_service_user_and_cannot_dump_core(pop3, tmp_path):
	nobody = pwd.getpwnam("nobody")
	cache_dir = tempfile.mkdtemp(prefix="popgate-cache-")	# /tmp: reachable by nobody
	os.chmod(cache_dir, 0o777)
	pg = start_popgate(tmp_path / "pg", pop3.dovecot.imap_port, **{
		"server.user": "nobody", "server.allow_root": None,
		"cache.path": os.path.join(cache_dir, "uidl.sqlite")})
	try:
		with open("/proc/%d/status" % pg.proc.pid) as f:
			status = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
		assert status["Uid"].split()[:2] == [str(nobody.pw_uid)] * 2, status["Uid"]
		with open("/proc/%d/limits" % pg.proc.pid) as f:
			core = [l for l in f if l.startswith("Max core file size")][0]
		assert core.split()[4:6] == ["0", "0"], core
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login("alice", pop3.password)
			assert c.cmd("UIDL 1").startswith(b"+OK 1 ")
			c.quit()
		# The cache was written by the service user, not root.
		assert os.stat(os.path.join(cache_dir, "uidl.sqlite")).st_uid == nobody.pw_uid
	finally:
		pg.stop()
		subprocess.run(["rm", "-rf", cache_dir])


def test_endless_line_is_a_flood_and_closes_the_connection(pop3, tmp_path):
	pg = start_popgate(tmp_path / "pg", pop3.dovecot.imap_port)
	try:
		data = b""
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.sock.settimeout(5)
			try:
				c.send(b"NOOP " + b"x" * 200000)	# no LF, ever
				while True:
					chunk = c.sock.recv(4096)
					if not chunk:
						break
					data += chunk
			except (ConnectionResetError, BrokenPipeError):
				pass	# closed with our bytes unread: the kernel may answer with RST
		# Closed, with the reason if it got through before the reset.
		assert data in (b"", b"-ERR Line too long, closing.\r\n"), data
		assert "result=line flood" in pg.log()
		# Other clients are unaffected.
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login("alice", pop3.password)
			assert c.cmd("NOOP").startswith(b"+OK")
	finally:
		pg.stop()
