"""Running build/popgate (or $POPGATE_BIN) for the integration tests.

start_popgate(tmp, imap_port, **overrides) writes tmp/popgate.ini and starts popgate in the
foreground (stderr and stdout to tmp/popgate.log), waits until its POP3 port greets, and returns a
Popgate whose stop() sends SIGTERM to its PID, waits, and raises if it exited abnormally or its log
shows a sanitizer report. Overrides are "section.key" → value (None deletes the key), e.g.
start_popgate(tmp, port, **{"upstream.security": "tls", "upstream.ca_file": ca}).
"""

import os
import re
import signal
import subprocess

import dovecot

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def popgate_bin():
	"""$POPGATE_BIN when it names an executable, else None."""
	b = os.environ.get("POPGATE_BIN", "")
	return os.path.abspath(b) if b and os.path.isfile(b) and os.access(b, os.X_OK) else None


def popgate_sanitized():
	"""True when $POPGATE_BIN is built with AddressSanitizer (its RSS then says nothing about
	popgate's own memory: shadow memory and the free quarantine dominate)."""
	b = popgate_bin()
	if not b:
		return False
	r = subprocess.run(["ldd", b], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)
	return b"libasan" in r.stdout


def base_config(tmp, imap_port, listen_port):
	"""The ini the tests start popgate with, as {section: {key: value}} in file order."""
	return {
		# Tests run as root without a service user to drop to: say so explicitly.
		# shutdown_timeout 0: stop() ends popgate at once, whatever sessions a test left open
		# (tests of the drain set it). master = no: one process, whose pid is the server's
		# (tests that set server.workers get the master, see apply_overrides()).
		"server": {"listen": "127.0.0.1:%d" % listen_port, "workers": "1", "master": "no",
			"allow_root": "yes", "shutdown_timeout": "0"},
		"upstream": {"host": "127.0.0.1", "port": str(imap_port), "security": "none",
			"ca_file": "", "mailbox": "INBOX"},
		"cache": {"path": os.path.join(str(tmp), "uidl.sqlite")},
		"pop3": {"allow_plaintext_auth": "yes"},
		"log": {"level": "debug"},
	}


def apply_overrides(cfg, overrides):
	# A test that asks for workers asks for the master over them, unless it says otherwise.
	if "server.workers" in overrides and "server.master" not in overrides:
		cfg.get("server", {}).pop("master", None)
	for name, value in overrides.items():
		section, _, key = name.partition(".")
		assert section and key, "override %r is not section.key" % name
		if value is None:
			cfg.get(section, {}).pop(key, None)
		else:
			cfg.setdefault(section, {})[key] = str(value)
	return cfg


def render_ini(cfg):
	out = []
	for section, keys in cfg.items():
		out.append("[%s]" % section)
		out.extend(("%s = %s" % kv).rstrip() for kv in keys.items())
		out.append("")
	return "\n".join(out)


def popgate_ini(tmp, imap_port, listen_port, **overrides):
	"""The ini text start_popgate() would write."""
	return render_ini(apply_overrides(base_config(tmp, imap_port, listen_port), overrides))


def popgate_check_config(ini_text, tmp=None):
	"""Runs `$POPGATE_BIN -t -c FILE` on ini_text: (exit code, stdout+stderr)."""
	import tempfile
	b = popgate_bin()
	assert b, "POPGATE_BIN does not name an executable"
	with tempfile.TemporaryDirectory(dir=tmp) as d:
		path = os.path.join(d, "check.ini")
		with open(path, "w") as f:
			f.write(ini_text)
		r = subprocess.run([b, "-t", "-c", path], stdin=subprocess.DEVNULL,
			stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
		return r.returncode, r.stdout.decode("utf-8", "replace")


class PopgateError(AssertionError):
	pass


class Popgate:
	def __init__(self, tmp, ini_text, port):
		self.dir = str(tmp)
		self.port = port
		self.ini_path = os.path.join(self.dir, "popgate.ini")
		self.log_path = os.path.join(self.dir, "popgate.log")
		self.ini_text = ini_text
		with open(self.ini_path, "w") as f:
			f.write(ini_text)
		self.proc = None
		self.returncode = None

	def start(self, timeout=10.0, preexec_fn=None, env=None):
		"""preexec_fn: run in the child before popgate (e.g. to set its resource limits);
		env: variables added to the environment popgate gets."""
		b = popgate_bin()
		assert b, "POPGATE_BIN does not name an executable"
		with open(self.log_path, "ab") as log:
			self.proc = subprocess.Popen([b, "-c", self.ini_path], stdin=subprocess.DEVNULL,
				stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
				preexec_fn=preexec_fn, env=dict(os.environ, **env) if env else None)
		# Behind the PROXY protocol the greeting comes after a header: the proxy's own
		# check (v1 UNKNOWN) from 127.0.0.1, which the tests trust.
		hello = b"PROXY UNKNOWN\r\n" if re.search(r"(?m)^proxy_protocol = yes$",
			self.ini_text) else b""
		if not dovecot.wait_listening(self.port, self.proc, timeout=timeout, hello=hello):
			code = self.proc.poll()
			self.kill()
			raise PopgateError("popgate did not accept POP3 connections on 127.0.0.1:%d within "
				"%g s (exit %r)\n--- %s:\n%s\n--- log tail:\n%s" % (self.port, timeout, code,
				self.ini_path, self.ini_text, self.log_tail()))
		return self

	def kill(self):
		if self.proc and self.proc.poll() is None:
			self.proc.kill()
			self.proc.wait(5)

	def log(self):
		try:
			with open(self.log_path, errors="replace") as f:
				return f.read()
		except OSError:
			return ""

	def log_tail(self, n=60):
		return "".join(self.log().splitlines(True)[-n:])

	def stop(self, timeout=15.0):
		"""SIGTERM to its PID and wait; raises PopgateError if it did not exit 0 by itself or its
		log has a sanitizer report."""
		if self.proc is None:
			return None
		if self.proc.poll() is None:
			self.proc.send_signal(signal.SIGTERM)
			try:
				self.proc.wait(timeout)
			except subprocess.TimeoutExpired:
				self.kill()
				raise PopgateError("popgate did not exit within %g s of SIGTERM\n--- log tail:\n%s"
					% (timeout, self.log_tail()))
		self.returncode = self.proc.returncode
		log = self.log()
		marks = [m for m in SANITIZER_MARKS if m in log]
		if marks:
			raise PopgateError("popgate's log has %s\n--- log tail:\n%s" % (
				", ".join(marks), self.log_tail(120)))
		if self.returncode != 0:
			raise PopgateError("popgate exited with %s after SIGTERM\n--- log tail:\n%s" % (
				"signal %d" % -self.returncode if self.returncode < 0 else
				"code %d" % self.returncode, self.log_tail()))
		return self.returncode

	def pids(self):
		"""popgate's PID and its children's (the workers, should it fork them)."""
		pid = self.proc.pid
		out = [pid]
		try:
			with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
				out += [int(x) for x in f.read().split()]
		except OSError:
			pass
		return out

	def fd_count(self):
		"""Open file descriptors of popgate's processes (from /proc)."""
		n = 0
		for p in self.pids():
			try:
				n += len(os.listdir("/proc/%d/fd" % p))
			except OSError:
				pass
		return n

	def rss_kb(self):
		"""Resident memory of popgate's processes in KiB (VmRSS from /proc/PID/status)."""
		total = 0
		for p in self.pids():
			try:
				with open("/proc/%d/status" % p) as f:
					for line in f:
						if line.startswith("VmRSS:"):
							total += int(line.split()[1])
			except OSError:
				pass
		return total

	def tcp_connections(self):
		"""The TCP sockets popgate's processes hold that are not listening (client and
		upstream connections, in any state), as [(local, remote, state)] in /proc's hex."""
		inodes = set()
		for p in self.pids():
			d = "/proc/%d/fd" % p
			try:
				fds = os.listdir(d)
			except OSError:
				continue
			for fd in fds:
				try:
					link = os.readlink(os.path.join(d, fd))
				except OSError:
					continue
				if link.startswith("socket:["):
					inodes.add(link[8:-1])
		out = []
		for name in ("tcp", "tcp6"):
			try:
				with open("/proc/%d/net/%s" % (self.proc.pid, name)) as f:
					rows = f.read().splitlines()[1:]
			except OSError:
				continue
			for row in rows:
				col = row.split()
				if col[9] in inodes and col[3] != "0A":	# 0A: LISTEN
					out.append((col[1], col[2], col[3]))
		return out

	def wait_fd_count(self, want, timeout=5.0):
		"""Polls until fd_count() <= want (sessions end asynchronously); returns the last count."""
		import time
		deadline = time.monotonic() + timeout
		n = self.fd_count()
		while n > want and time.monotonic() < deadline:
			time.sleep(0.05)
			n = self.fd_count()
		return n

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.stop()


def start_popgate(tmp, imap_port, **overrides):
	"""Writes tmp/popgate.ini (base_config + overrides; server.listen defaults to a free port)
	and starts popgate. Returns the running Popgate (stop() it, or use it in a with block)."""
	os.makedirs(str(tmp), exist_ok=True)
	listen = overrides.get("server.listen")
	if listen is None:
		# Not a port an override already names (a listen_tls picked by free_ports() a
		# moment ago is free again, and the kernel may hand it out twice).
		taken = {int(p) for v in overrides.values() if isinstance(v, str)
			for p in re.findall(r":(\d+)\b", v)}
		port = dovecot.free_ports(1)[0]
		while port in taken:
			port = dovecot.free_ports(1)[0]
	else:
		port = int(listen.split(",")[0].strip().rsplit(":", 1)[1])
	ini = popgate_ini(tmp, imap_port, port, **overrides)
	return Popgate(tmp, ini, port).start()
