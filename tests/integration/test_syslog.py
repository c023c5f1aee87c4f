"""[log] target = syslog with a facility and an ident (issue 16): the datagrams popgate sends
to /dev/log carry <PRI> = facility * 8 + severity (RFC 3164) and the ident; a bad facility,
target or ident refuses the file, naming the key.

No syslogd is needed: popgate runs in a private mount namespace (unshare -m) whose /dev is a
tmpfs holding the few devices it needs and a /dev/log that is the test's own datagram socket.
"""

import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

import dovecot as dovecot_mod
from popgate import popgate_bin, popgate_check_config, popgate_ini

pytestmark = pytest.mark.popgate_only

SEVERITY = {"error": 3, "warn": 4, "info": 6, "debug": 7}
FACILITY = {"mail": 2, "daemon": 3, "local0": 16, "local3": 19, "local7": 23}

# The namespace's /dev: a tmpfs with null, zero, random, urandom from the real one (reached
# through a bind mount made first) and /dev/log a symlink to the test's socket.
NS_SCRIPT = r"""set -e
mkdir -p "$T/dev.real"
mount --bind /dev "$T/dev.real"
mount -t tmpfs -o mode=0755 popgate-test-dev /dev
for n in null zero random urandom; do ln -s "$T/dev.real/$n" "/dev/$n"; done
ln -s "$T/log.sock" /dev/log
exec "$@"
"""


def can_unshare():
	if shutil.which("unshare") is None or os.geteuid() != 0:
		return False
	return subprocess.run(["unshare", "-m", "true"], stdin=subprocess.DEVNULL,
		stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30).returncode == 0


class SyslogCapture:
	"""A datagram socket standing for /dev/log: the raw lines syslog(3) sent."""

	def __init__(self, path):
		self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		self.sock.bind(path)
		self.sock.settimeout(0.2)
		self.lines = []

	def drain(self):
		while True:
			try:
				self.lines.append(self.sock.recv(65536).decode("utf-8", "replace"))
			except socket.timeout:
				return self.lines

	def wait_for(self, pattern, timeout=10):
		import time
		deadline = time.monotonic() + timeout
		while time.monotonic() < deadline:
			for line in self.drain():
				m = re.search(pattern, line)
				if m:
					return m
		raise AssertionError("no syslog line matching %r in:\n%s" % (pattern,
			"\n".join(self.lines[-20:])))


def run_with_syslog(tmp_path, dc_port, **log):
	"""Starts popgate in its namespace with [log] target = syslog and the given keys; returns
	(process, capture, POP3 port)."""
	port = dovecot_mod.free_ports(1)[0]
	ini = popgate_ini(tmp_path, dc_port, port, **{"log.target": "syslog", **{
		"log." + k: v for k, v in log.items()}})
	path = tmp_path / "popgate.ini"
	path.write_text(ini)
	cap = SyslogCapture(str(tmp_path / "log.sock"))
	env = dict(os.environ, T=str(tmp_path))
	errlog = open(tmp_path / "stderr.log", "wb")
	proc = subprocess.Popen(["unshare", "-m", "sh", "-c", NS_SCRIPT, "ns", popgate_bin(), "-c",
		str(path)], stdin=subprocess.DEVNULL, stdout=errlog, stderr=subprocess.STDOUT, env=env,
		start_new_session=True)
	errlog.close()
	return proc, cap, port


def stop(proc):
	if proc.poll() is None:
		proc.send_signal(signal.SIGTERM)
		try:
			proc.wait(15)
		except subprocess.TimeoutExpired:
			proc.kill()
			proc.wait(5)
	return proc.returncode


@pytest.fixture(scope="module")
def dc(make_dovecot):
	return make_dovecot(ssl=False)


@pytest.mark.parametrize("facility,ident", [("local3", "popgate-test"), ("mail", None),
	("daemon", None)])
def test_lines_reach_dev_log_with_the_facility(tmp_path, dc, facility, ident):
	if not can_unshare():
		pytest.skip("needs root and unshare -m (a private /dev/log)")
	keys = {"facility": facility, "level": "info"}
	if ident:
		keys["ident"] = ident
	proc, cap, port = run_with_syslog(tmp_path, dc.imap_port, **keys)
	try:
		name = re.escape(ident or "popgate")
		info = FACILITY[facility] * 8 + SEVERITY["info"]
		m = cap.wait_for(r"^<(\d+)>.*? %s\[(\d+)\]: popgate \S+ started" % name)
		assert int(m.group(1)) == info, (m.group(0), info)
		assert int(m.group(2)) == proc.pid, m.group(0)
		# A session's line too, and nothing on stderr.
		assert dovecot_mod.wait_listening(port, proc, timeout=10)
		with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
			f = s.makefile("rb")
			assert f.readline().startswith(b"+OK")
			s.sendall(b"QUIT\r\n")
			assert f.readline().startswith(b"+OK")
		m = cap.wait_for(r"^<(\d+)>.*? %s\[\d+\]: session=\w+ user=- client=127\.0\.0\.1 " %
			name)
		assert int(m.group(1)) == info, m.group(0)
	finally:
		code = stop(proc)
		lines = cap.drain()
		cap.sock.close()
	assert code == 0, (tmp_path / "stderr.log").read_text(errors="replace")
	assert (tmp_path / "stderr.log").read_text() == ""
	stopped = [l for l in lines if "popgate stopped" in l]
	assert stopped and stopped[-1].startswith("<%d>" % info), lines[-5:]


@pytest.mark.parametrize("keys,error", [
	({"log.facility": "local8"}, r":\d+: \[log\] facility: \"local8\" is not mail, daemon or "
		r"local0 to local7"),
	({"log.facility": "kern"}, r":\d+: \[log\] facility: \"kern\" is not mail"),
	({"log.target": "syslgo"}, r"\[log\] target: \"syslgo\" is not stderr or syslog"),
	({"log.ident": "x" * 64}, r"\[log\] ident: must be 1 to 63 characters"),
])
def test_a_bad_log_key_refuses_the_file(tmp_path, keys, error):
	code, out = popgate_check_config(popgate_ini(tmp_path, 143, 1110, **keys), str(tmp_path))
	assert code == 1, out
	assert re.search(error, out), out


def test_facility_names_are_accepted(tmp_path):
	for facility in ["mail", "daemon", "LOCAL0", "local7"]:
		code, out = popgate_check_config(popgate_ini(tmp_path, 143, 1110, **{
			"log.target": "syslog", "log.facility": facility}), str(tmp_path))
		assert code == 0, out
