"""[server] workers: several processes accept on the same address (SO_REUSEPORT), each with its
own loop; a worker that dies takes only its own sessions with it and the master starts
another on its slot (later and later when it keeps dying at start), and the start refuses a
max_sessions that RLIMIT_NOFILE cannot hold."""

import os
import re
import resource
import signal
import socket
import subprocess
import time

import pytest

from helpers import assert_ok, assert_same_bytes, wait_until, worker_of, worker_pids
from pop3client import Pop3Raw, unstuff
import dovecot as dovecot_mod
from popgate import Popgate, popgate_bin, popgate_ini, start_popgate

pytestmark = pytest.mark.popgate_only

SESSIONS = 40	# distinct source ports: the kernel's 4-tuple hash puts some on each worker


def starts(pg, worker):
	"""The pids of every start of this worker index, in order."""
	return [int(p) for p in re.findall(r"info: worker=%d started \(pid (\d+)\)" % worker,
		pg.log())]


def test_a_killed_worker_is_restarted_and_its_sibling_keeps_its_sessions(dovecot, tmp_path):
	user, password = "bob", dovecot.users["bob"]
	msgs = dovecot.seeded["bob"]
	stat = b"+OK %d %d\r\n" % (len(msgs), sum(len(m) for m in msgs))
	pg = start_popgate(tmp_path / "pg", dovecot.imap_port, **{
		"server.workers": 2, "limits.max_per_address": 1000, "pop3.in_use_check": "no",
		"limits.auth_fail_delay_ms": 0})
	conns = []
	try:
		pids = worker_pids(pg, 2)
		assert sorted(pids.values()) == sorted(pg.pids()[1:]), (pids, pg.pids())
		for _ in range(SESSIONS):
			c = Pop3Raw("127.0.0.1", pg.port, timeout=30)
			c.login(user, password)
			conns.append(c)
		by = {}
		for c in conns:
			w = wait_until(lambda c=c: worker_of(pg, c.sock), 5, "no connect line for a session")
			by.setdefault(w, []).append(c)
		assert sorted(by) == [1, 2], {w: len(cs) for w, cs in by.items()}

		# kill -9 worker 1: its sessions are gone, the master says so and starts
		# another worker 1 at once (its first death); worker 2's sessions go on.
		os.kill(pids[1], signal.SIGKILL)
		wait_until(lambda: "worker=1 (pid %d) was killed by signal 9" % pids[1] in pg.log(), 10,
			lambda: "the master did not log the dead worker:\n" + pg.log_tail())
		line = [l for l in pg.log().splitlines() if "(pid %d) was killed" % pids[1] in l][0]
		assert "its sessions are lost; starting another now" in line, line
		new1 = wait_until(lambda: [p for p in starts(pg, 1) if p != pids[1]], 10,
			lambda: "no new worker=1 started:\n" + pg.log_tail())[0]
		assert sorted(pg.pids()[1:]) == sorted([new1, pids[2]]), (new1, pids, pg.pids())
		for c in by[1]:
			c.sock.settimeout(10)
			try:
				data = c.sock.recv(100)
			except (ConnectionResetError, OSError):
				data = b""
			assert data == b"", "a session of the killed worker still answered: %r" % data
		for c in by[2]:
			assert c.cmd("STAT") == stat
			status, lines = c.cmd_multi("RETR 1")
			assert_ok(status, "RETR 1 on the surviving worker")
			assert_same_bytes(unstuff(lines), msgs[0], "RETR 1 after the sibling died")
			assert_ok(c.quit(), "QUIT on the surviving worker")

		# New connections: the slot kept its sockets, so the kernel still spreads them over
		# both workers, and the new worker 1 serves its share.
		seen = set()
		for _ in range(SESSIONS):
			with Pop3Raw("127.0.0.1", pg.port, timeout=10) as c:
				c.login(user, password)
				assert c.cmd("STAT") == stat
				seen.add(worker_of(pg, c.sock))
				assert_ok(c.quit())
		assert seen == {1, 2}, seen
		assert starts(pg, 2) == [pids[2]], "worker 2 was restarted: %r" % starts(pg, 2)
		ends = [l for l in pg.log().splitlines() if " user=%s " % user in l and " result=" in l]
		assert any(" worker=2 user=" in l for l in ends), "no session end line names worker=2"
	finally:
		for c in conns:
			c.close()
		pg.stop()	# SIGTERM to the master: forwarded, both stop, exit 0
	assert "worker=1 stopped" in pg.log() and "worker=2 stopped" in pg.log()


def test_a_worker_that_keeps_dying_at_start_is_restarted_later_each_time(dovecot, tmp_path):
	"""Each new worker 1 is killed as soon as it has started: the first death is restarted at
	once, then after 1 s, 2 s, 4 s, each said in the log; worker 2 serves throughout, and
	connections made during a wait are served once worker 1 is back. A stop during a wait
	starts nothing more and exits 0."""
	pg = start_popgate(tmp_path / "pg", dovecot.imap_port, **{"server.workers": 2})
	try:
		pids = worker_pids(pg, 2)
		want = ["starting another now"] + [
			"it keeps dying soon after its start (%d times in a row): starting another in %d s"
			% (n, d) for n, d in ((2, 1), (3, 2), (4, 4))]
		victim = pids[1]
		for i, how in enumerate(want):
			os.kill(victim, signal.SIGKILL)
			killed = time.monotonic()
			wait_until(lambda: "(pid %d) was killed by signal 9" % victim in pg.log(), 10,
				lambda: "the master did not log the dead worker:\n" + pg.log_tail())
			line = [l for l in pg.log().splitlines() if "(pid %d) was killed" % victim in l][0]
			assert line.endswith("its sessions are lost; " + how), line
			if i == len(want) - 1:
				break		# stop during the 4 s wait, below
			waiting = []
			if i == 2:
				# During the 2 s wait: the slot's sockets are kept, so connections the
				# kernel hashes to it wait in its queue and the next worker 1 greets them.
				waiting = [socket.create_connection(("127.0.0.1", pg.port), timeout=10)
					for _ in range(16)]
			victim = wait_until(lambda: len(starts(pg, 1)) == i + 2 and starts(pg, 1)[-1], 10,
				lambda: "no worker=1 started again:\n" + pg.log_tail())
			delay = (0, 1, 2)[i]
			assert time.monotonic() - killed >= delay - 0.1, (i, time.monotonic() - killed)
			for w in waiting:
				assert w.recv(100).startswith(b"+OK"), "a queued connection got no greeting"
			served = {wait_until(lambda w=w: worker_of(pg, w), 5, "no connect line")
				for w in waiting}
			for w in waiting:
				w.close()
			assert not waiting or served == {1, 2}, served
			with Pop3Raw("127.0.0.1", pg.port) as c:	# worker 2, or a fresh worker 1
				c.login("bob", dovecot.users["bob"])
				assert_ok(c.quit())
		# SIGTERM while worker 1 waits its 4 s: worker 2 stops, nothing is started again.
		t = time.monotonic()
		assert pg.stop() == 0
		assert time.monotonic() - t < 3, "the stop waited for the back-off"
		assert len(starts(pg, 1)) == 4, pg.log_tail()
		assert starts(pg, 2) == [pids[2]]
	finally:
		pg.kill()


def test_soft_descriptor_limit_is_raised_for_max_sessions(dovecot, tmp_path):
	# A soft limit of 256 (hard limit unchanged): 3000 sessions need 6000 + slack per worker.
	hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

	def low_soft():
		resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
	if hard != resource.RLIM_INFINITY and hard < 7000:
		pytest.skip("the hard RLIMIT_NOFILE here (%d) is below what the test asks for" % hard)
	os.makedirs(str(tmp_path / "pg"), exist_ok=True)
	port = dovecot_mod.free_ports(1)[0]
	pg = Popgate(tmp_path / "pg", popgate_ini(tmp_path / "pg", dovecot.imap_port, port, **{
		"server.workers": 2, "limits.max_sessions": 3000}), port).start(preexec_fn=low_soft)
	try:
		pids = worker_pids(pg, 2)
		for pid in pids.values():
			with open("/proc/%d/limits" % pid) as f:
				line = [l for l in f if l.startswith("Max open files")][0]
			assert int(line.split()[3]) >= 6000, line
	finally:
		pg.stop()


def test_max_sessions_beyond_the_hard_descriptor_limit_is_refused(dovecot, tmp_path):
	def low_hard():
		resource.setrlimit(resource.RLIMIT_NOFILE, (1000, 1000))
	os.makedirs(str(tmp_path), exist_ok=True)
	ini = os.path.join(str(tmp_path), "popgate.ini")
	with open(ini, "w") as f:
		f.write(popgate_ini(tmp_path, dovecot.imap_port, 1, **{
			"server.workers": 2, "limits.max_sessions": 5000}))
	want = ("[limits] max_sessions = 5000 needs 10066 file descriptors per worker (2 per session "
		"and 66 more), but the hard limit RLIMIT_NOFILE is 1000")
	for args in (["-t", "-c", ini], ["-c", ini]):
		r = subprocess.run([popgate_bin()] + args, preexec_fn=low_hard, stdin=subprocess.DEVNULL,
			stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
		out = r.stdout.decode("utf-8", "replace")
		assert r.returncode == 1, (args, r.returncode, out)
		assert want in out, (args, out)
	# The same file with a max_sessions that fits is accepted under that limit.
	with open(ini, "w") as f:
		f.write(popgate_ini(tmp_path, dovecot.imap_port, 1, **{
			"server.workers": 2, "limits.max_sessions": 400}))
	r = subprocess.run([popgate_bin(), "-t", "-c", ini], preexec_fn=low_hard,
		stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
	assert r.returncode == 0, r.stdout


def test_workers_run_as_the_service_user(dovecot, tmp_path):
	# Every worker, which reads the network, is [server] user with no capability left and no
	# way back; the master, which reads none, stays root to reload root's keys and bind
	# privileged ports again (nginx's and Dovecot's model).
	import pwd
	import tempfile
	nobody = pwd.getpwnam("nobody")
	cache_dir = tempfile.mkdtemp(prefix="popgate-cache-")	# /tmp: reachable by nobody
	os.chmod(cache_dir, 0o777)
	pg = start_popgate(tmp_path / "pg", dovecot.imap_port, **{
		"server.workers": 2, "server.user": "nobody", "server.allow_root": None,
		"cache.path": os.path.join(cache_dir, "uidl.sqlite")})
	try:
		pids = worker_pids(pg, 2)
		for pid in pids.values():
			with open("/proc/%d/status" % pid) as f:
				status = dict(l.split(":", 1) for l in f)
			assert status["Uid"].split() == [str(nobody.pw_uid)] * 4, (pid, status["Uid"])
			assert status["Gid"].split() == [str(nobody.pw_gid)] * 4, (pid, status["Gid"])
			assert status["Groups"].split() == [str(nobody.pw_gid)], (pid, status["Groups"])
			assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status
		with open("/proc/%d/status" % pg.proc.pid) as f:
			assert [l for l in f if l.startswith("Uid:")][0].split()[1] == "0"
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login("bob", dovecot.users["bob"])
			assert c.cmd("UIDL 1").startswith(b"+OK 1 ")
			assert_ok(c.quit())
		assert os.stat(os.path.join(cache_dir, "uidl.sqlite")).st_uid == nobody.pw_uid
	finally:
		pg.stop()
		subprocess.run(["rm", "-rf", cache_dir])


def test_a_second_instance_on_the_same_address_is_refused(dovecot, tmp_path):
	"""Two popgates with workers on one address: SO_REUSEPORT would let the second join the
	first one's group, and the two would split the connections silently (each with its own
	limits, [IN-USE] and cache). The second refuses to start and says why; the first serves
	every connection still."""
	pg = start_popgate(tmp_path / "a", dovecot.imap_port, **{"server.workers": 2})
	try:
		worker_pids(pg, 2)
		os.makedirs(str(tmp_path / "b"), exist_ok=True)
		ini = os.path.join(str(tmp_path / "b"), "popgate.ini")
		with open(ini, "w") as f:
			f.write(popgate_ini(tmp_path / "b", dovecot.imap_port, pg.port,
				**{"server.workers": 2}))
		r = subprocess.run([popgate_bin(), "-c", ini], stdin=subprocess.DEVNULL,
			stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
		out = r.stdout.decode("utf-8", "replace")
		assert r.returncode == 1, (r.returncode, out)
		assert "listen on 127.0.0.1:%d: Address already in use (another popgate" % pg.port in out, out
		user, password, _ = dovecot.fresh_user()
		for _ in range(10):	# every connection lands on the first one's workers
			with Pop3Raw("127.0.0.1", pg.port) as c:
				c.login(user, password)
				assert c.quit().startswith(b"+OK")
		assert len(re.findall(r"user=%s client=" % re.escape(user), pg.log())) >= 10, pg.log_tail()
	finally:
		pg.stop()


def test_connections_a_stopped_server_left_do_not_block_the_start(dovecot, tmp_path):
	"""A server that set SO_REUSEPORT alone (no SO_REUSEADDR) stopped with a connection of
	its own in TIME_WAIT: a bind without SO_REUSEPORT fails there, though nothing listens. The
	start's check must not take that for another server: popgate starts and serves."""
	import socket
	import time
	port = dovecot_mod.free_ports(1)[0]
	lsock = socket.socket()
	lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
	lsock.bind(("127.0.0.1", port))
	lsock.listen(1)
	client = socket.create_connection(("127.0.0.1", port))
	conn, _ = lsock.accept()
	conn.close()			# the server closes first: its side goes to TIME_WAIT
	time.sleep(0.2)
	client.close()
	lsock.close()
	probe = socket.socket()
	probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	try:
		probe.bind(("127.0.0.1", port))
		pytest.skip("this kernel lets the bind past the TIME_WAIT connection")
	except OSError:
		pass
	finally:
		probe.close()
	pg = start_popgate(tmp_path, dovecot.imap_port, **{"server.workers": 2,
		"server.listen": "127.0.0.1:%d" % port})
	try:
		user, password, _ = dovecot.fresh_user()
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login(user, password)
			assert c.quit().startswith(b"+OK")
	finally:
		pg.stop()


def test_a_wildcard_address_over_another_servers_specific_one_is_refused(dovecot, tmp_path):
	"""Another server (the same user, SO_REUSEPORT) listens on 127.0.0.2:port; popgate is
	configured for 0.0.0.0:port. Its workers' binds would succeed, and the kernel would hand
	every connection to 127.0.0.2 to the other server: the start refuses it and says why."""
	import socket
	port = dovecot_mod.free_ports(1)[0]
	other = socket.socket()
	other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
	other.bind(("127.0.0.2", port))
	other.listen(1)
	try:
		os.makedirs(str(tmp_path), exist_ok=True)
		ini = os.path.join(str(tmp_path), "popgate.ini")
		with open(ini, "w") as f:
			f.write(popgate_ini(tmp_path, dovecot.imap_port, port, **{
				"server.workers": 2, "server.listen": "0.0.0.0:%d" % port}))
		r = subprocess.run([popgate_bin(), "-c", ini], stdin=subprocess.DEVNULL,
			stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
		out = r.stdout.decode("utf-8", "replace")
		assert r.returncode == 1, (r.returncode, out)
		assert "listen on 0.0.0.0:%d: Address already in use (another popgate" % port in out, out
	finally:
		other.close()
