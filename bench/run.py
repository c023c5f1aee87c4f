"""`make bench`: popgate side by side with Dovecot's own POP3 and with Dovecot's POP3 over the
imapc backend, all three in front of the same private Dovecot on 127.0.0.1, driven by the C load
generator build/popbench (bench/popbench.c). Writes bench/RESULTS.md (--out).

    POPGATE_BIN=build/popgate POPBENCH_BIN=build/popbench python3 bench/run.py [--out FILE]
    POPGATE_BIN=... POPBENCH_BIN=... python3 bench/run.py --smoke     (make bench-smoke)

Set-up (the mailbox builders of tests/perf/uidl_bench.py, the Dovecot of tests/integration):
- Dovecot A: IMAP, and its own POP3 on the same maildirs ("native"); users bench0001..bench1000
  with 50 messages each, huge1..huge4 with one ~100 MB message (one file, hard links), bigbox
  with 10,000 messages, idle0001..idleK with 3 messages each. Maildirs are written straight into
  cur/ (uidl_bench.maildir_fill), then every mailbox is SELECTed and listed once over IMAP.
- Dovecot B: POP3 only, mail_location = imapc: against A's IMAP ("imapc").
- popgate in front of A's IMAP ("popgate"), one worker, log level info.
Both Dovecots have the login "high-performance" settings (service_count = 0, process_min_avail
= CPUs) and room for the idle sessions.

Each of 3 rounds runs, for each peer in a rotated order: poll (8 clients; with the CPU each
server spent per session), RETR of the 100 MB message (1 client, then 4 at once), RETR of a
whole 50-message mailbox, bigbox, and the direct IMAP UID FETCH reference. Then 3 rounds of idle
(K sessions held, PSS from /proc/PID/smaps_rollup), last because the processes and memory they
leave behind slow whatever runs after them. Medians of the rounds. top0 once per peer, through a byte-counting TCP relay in front of A's IMAP (a second
popgate and a second imapc Dovecot point at the relay): the octets the upstream sent.

Every answer is checked by popbench (octets against LIST, SHA-256 of the 100 MB message, line
counts); the exit status is non-zero only when something did not work, never for a slow figure.
Runs as root (Dovecot is started as root, as in the integration tests)."""

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tests", "perf"))
import dovecot as dovecot_mod	# noqa: E402
import messages	# noqa: E402
from popgate import popgate_bin, start_popgate	# noqa: E402
from relay import TcpRelay	# noqa: E402
from measure import pss_kib	# noqa: E402
from uidl_bench import bench_messages, maildir_fill, warm_and_check	# noqa: E402
import uidl_bench	# noqa: E402

PASSWORD = uidl_bench.PASSWORD
# idle: 500 sessions per peer and round. 2,000 were measured once (Dovecot then forks 2,000
# pop3 processes, the imapc peer 4,000: 4 minutes of logins in one round).
FULL = {"users": 1000, "msgs": 50, "huge": 100 * 10**6, "bigbox": 10000, "idle": 500,
	"poll_n": 4000, "poll_c": 8, "rounds": 3}
SMOKE = {"users": 10, "msgs": 5, "huge": 2 * 10**6, "bigbox": 200, "idle": 20,
	"poll_n": 40, "poll_c": 4, "rounds": 1}
PEERS = ("native", "imapc", "popgate")
CPUS = os.cpu_count() or 1
# Dovecot's "high-performance" login mode (doc.dovecot.org, Login processes): one login process
# per CPU serving many connections; mail processes (pop3, imap) reused for 100 sessions and
# kept spare (with the default service_count = 1 every session pays a fork and exec: 26 ms of
# PASS here, ~40 sessions/s for every peer); enough process slots for the idle sessions.
# BENCH_MAIL_SERVICE_COUNT=1 measures Dovecot's default instead. (pop3 and imap have their own
# process_limit = 1024 by default: above it, logins fail.)
TUNING = """
default_process_limit = 12000
default_client_limit = 40000
default_vsz_limit = 1G
# The process title names the session's user: the idle measurement counts the processes of
# the idle users only, not the spare or reused processes of other phases.
verbose_proctitle = yes
service pop3-login {
  service_count = 0
  process_min_avail = %(cpus)d
}
service imap-login {
  service_count = 0
  process_min_avail = %(cpus)d
}
service pop3 {
  process_limit = 12000
  service_count = %(mail_count)s
  process_min_avail = %(cpus)d
}
service imap {
  process_limit = 12000
  service_count = %(mail_count)s
  process_min_avail = %(cpus)d
}
protocol imap {
  mail_max_userip_connections = 20000
}
protocol pop3 {
  mail_max_userip_connections = 20000
}
""" % {"cpus": CPUS, "mail_count": os.environ.get("BENCH_MAIL_SERVICE_COUNT", "100")}


class BenchError(Exception):
	"""Something did not work (as opposed to: something was slow)."""


def need(cond, what):
	if not cond:
		raise BenchError(what)


def popbench_bin():
	b = os.environ.get("POPBENCH_BIN", os.path.join(REPO, "build", "popbench"))
	need(os.access(b, os.X_OK), "POPBENCH_BIN (%s) is not an executable" % b)
	return b


def popbench(mode, port, *args, timeout=1800):
	"""Runs popbench; its JSON result lines. Raises when it fails (exit status != 0)."""
	cmd = [popbench_bin(), mode, "-p", str(port), "-P", PASSWORD, *map(str, args)]
	ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
	r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
		timeout=timeout)
	ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
	need(r.returncode == 0, "%s failed (exit %d):\n%s%s" % (" ".join(cmd), r.returncode,
		r.stdout, r.stderr))
	out = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
	for x in out:	# popbench's own CPU: the only child reaped meanwhile
		x["client_cpu_s"] = round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 3)
	return out


# ---- /proc ------------------------------------------------------------------------------------

def children(pid):
	try:
		with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
			return [int(x) for x in f.read().split()]
	except OSError:
		return []


def descendants(pid):
	out = []
	for k in children(pid):
		out.append(k)
		out += descendants(k)
	return out


def comm(pid):
	try:
		with open("/proc/%d/comm" % pid) as f:
			return f.read().strip()
	except OSError:
		return ""


def cmdline(pid):
	try:
		with open("/proc/%d/cmdline" % pid, "rb") as f:
			return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
	except OSError:
		return ""


def dovecot_procs(dov, name, marker="[idle"):
	"""Dovecot's `name` processes serving a session of an idle user (verbose_proctitle)."""
	return [p for p in descendants(dov.proc.pid) if comm(p) == name and marker in cmdline(p)]


# ---- a byte-counting relay (top0: octets the upstream sent) ---------------------------------

class Relay(TcpRelay):
	"""127.0.0.1:port → 127.0.0.1:target, counting the bytes the target sends."""

	def __init__(self, target):
		self.down = 0
		super().__init__(target, seen=self._seen, chunk=1 << 20)

	def _seen(self, conn, up, data):
		if not up:
			with self.lock:
				self.down += len(data)

	def octets(self):
		with self.lock:
			return self.down


# ---- the peers ----------------------------------------------------------------------------------

class Setup:
	def __init__(self, cfg, tmp):
		self.cfg, self.tmp = cfg, tmp
		self.bench_users = ["bench%04d" % i for i in range(1, cfg["users"] + 1)]
		self.idle_users = ["idle%04d" % i for i in range(1, cfg["idle"] + 1)]
		self.huge_users = ["huge%d" % i for i in range(1, 5)]
		users = {u: PASSWORD for u in self.bench_users + self.idle_users + self.huge_users +
			["bigbox"]}
		self.users = users
		self.dov = dovecot_mod.Dovecot(os.path.join(tmp, "dovecot"), ssl=False, users=users,
			extra=TUNING)
		self.imapc = dovecot_mod.ImapcPop3(os.path.join(tmp, "imapc"), self.dov.imap_port,
			users, PASSWORD, extra=TUNING)
		self.pg = None
		self.info = {}

	def build(self):
		cfg, dov = self.cfg, self.dov
		t0 = time.perf_counter()
		msgs = bench_messages(cfg["msgs"], "bench")
		for u in self.bench_users:
			maildir_fill(dov, u, msgs)
		small = bench_messages(3, "idle")
		for u in self.idle_users:
			maildir_fill(dov, u, small)
		big = bench_messages(cfg["bigbox"], "bigbox")
		maildir_fill(dov, "bigbox", big)
		huge = messages.pop3_bytes(messages.big("huge", cfg["huge"]))
		maildir_fill(dov, self.huge_users[0], [huge])	# CRLF throughout: W= is its size
		first = os.path.join(dov.dir, "mail", self.huge_users[0], "Maildir", "cur")
		name = os.listdir(first)[0]
		for u in self.huge_users[1:]:
			maildir_fill(dov, u, [])
			os.link(os.path.join(first, name), os.path.join(dov.dir, "mail", u, "Maildir",
				"cur", name))
		self.huge_len = len(huge)
		self.huge_sha = hashlib.sha256(huge).hexdigest()
		self.info["files"] = len(self.bench_users) * cfg["msgs"] + 3 * len(self.idle_users) + \
			cfg["bigbox"] + 1
		self.info["write_s"] = time.perf_counter() - t0
		del huge
		self.msgs, self.big = msgs, big
		dov.start()
		self.imapc.start()
		t0 = time.perf_counter()
		for u in self.bench_users:
			warm_and_check(dov, u, msgs)
		for u in self.idle_users:
			warm_and_check(dov, u, small)
		self.info["warm_bigbox_s"] = warm_and_check(dov, "bigbox", big)
		for u in self.huge_users:
			m = uidl_bench.Imap(dov.imap_port, u, PASSWORD)
			lines, _ = m.run("SELECT INBOX")
			lines, _ = m.run("UID FETCH 1:* (UID RFC822.SIZE)")
			need(uidl_bench.list_sizes(lines) == [self.huge_len], "%s: size" % u)
			m.close()
		self.info["warm_s"] = time.perf_counter() - t0

	def start_popgate(self, name, upstream_port=None, **extra):
		"""Every popgate of the timed phases shares one UIDL cache file: a restarted popgate
		(after the idle measurement) must not poll with a cold cache. max_sessions is per
		worker, and what the 20,000 descriptors a process may have here can hold (2 each)."""
		opts = {"log.level": "info", "limits.max_per_address": 20000,
			"limits.max_sessions": 9000, "cache.path": os.path.join(self.tmp, "uidl.sqlite")}
		opts.update(extra)
		return start_popgate(os.path.join(self.tmp, name), upstream_port or self.dov.imap_port,
			**opts)

	def port(self, peer):
		return {"native": self.dov.pop3_port, "imapc": self.imapc.pop3_port,
			"popgate": self.pg.port if self.pg else None}[peer]

	def stop(self):
		for x in (self.pg,):
			if x is not None:
				try:
					x.stop()
				except Exception:	# noqa: BLE001 - reported, the rest still stops
					x.kill()
		self.pg = None
		self.imapc.stop()
		self.dov.stop()


# ---- one measurement of each kind -------------------------------------------------------------

def user_args(s):
	return ["-u", "bench%04d", "-N", len(s.bench_users)]


def cpu_trees(s, peer):
	"""(the mail store's process tree, the gateway's or None): Dovecot A serves native POP3
	itself; imapc's gateway is Dovecot B, popgate's is its own process (tree)."""
	return s.dov.proc.pid, {"native": None, "imapc": s.imapc.proc.pid,
		"popgate": s.pg.proc.pid if s.pg else None}[peer]


def with_cpu(s, peer, run):
	"""run()'s popbench result, with the CPU seconds the store and the gateway spent meanwhile
	(store_cpu_s, gw_cpu_s; client_cpu_s is popbench's own)."""
	store, gw = cpu_trees(s, peer)
	c0 = (uidl_bench.tree_cpu(store), uidl_bench.tree_cpu(gw) if gw else 0.0)
	r = run()
	c1 = (uidl_bench.tree_cpu(store), uidl_bench.tree_cpu(gw) if gw else 0.0)
	r["store_cpu_s"], r["gw_cpu_s"] = round(c1[0] - c0[0], 3), round(c1[1] - c0[1], 3)
	return r


def per(r, unit):
	"""CPU per unit (a session: ms; a GB: s) of the store, the gateway and the client."""
	for who in ("store", "gw", "client"):
		r["%s_cpu_per" % who] = round(r["%s_cpu_s" % who] / unit, 3)
	return r


def run_poll(s, peer, n=None):
	"""Also the CPU each side spent per session (ms): the store (Dovecot A: what an ISP's
	IMAP cluster pays per poll), the gateway (popgate, or imapc's Dovecot B) and popbench. On
	a machine where every process shares the same CPUs, sessions/s is bounded by their sum."""
	cfg = s.cfg
	r = with_cpu(s, peer, lambda: popbench("poll", s.port(peer), "-c", cfg["poll_c"], "-n",
		n or cfg["poll_n"], *user_args(s), "-l", peer)[0])
	return per(r, max(r["ok"], 1) / 1000)


def run_retr(s, peer, clients, sha=False):
	"""sha: also the SHA-256 of each answer (the untimed pass: hashing at ~1.4 GB/s would take
	a third of a CPU from a 2-core machine in the timed runs, which check the octets only)."""
	port = s.port(peer)
	r = with_cpu(s, peer, lambda: popbench("retr", port, "-c", clients, "-m", 1,
		*(["-S", s.huge_sha] if sha else []), "-u", "huge%d", "-N", clients, "-l", peer)[0])
	need(r["bytes"] == clients * s.huge_len and r["sha256_checked"] == sha, "retr: %r" % r)
	return per(r, r["bytes"] / 1e9)	# CPU seconds per GB


def run_retr_all(s, peer):
	r = popbench("retr", s.port(peer), "-a", "-u", "bench%04d", "-N", 1, "-f", 1, "-l", peer)[0]
	need(r["bytes"] == sum(map(len, s.msgs)), "retr -a: %r" % r)
	return r


def run_bigbox(s, peer):
	r = popbench("bigbox", s.port(peer), "-U", s.user_file("bigbox"), "-l", peer)[0]
	n = s.cfg["bigbox"]
	need(r["messages"] == n and r["list_lines"] == n and r["uidl_lines"] == n, "bigbox: %r" % r)
	return r


def run_imapfetch(s, clients=1, sha=False):
	r = with_cpu(s, "native", lambda: popbench("imapfetch", s.dov.imap_port, "-c", clients,
		"-m", 1, *(["-S", s.huge_sha] if sha else []), "-u", "huge%d", "-N", clients, "-l",
		"direct")[0])
	need(r["bytes"] == clients * s.huge_len, "imapfetch: %r" % r)
	return per(r, r["bytes"] / 1e9)	# CPU seconds per GB (no gateway)


def run_tls_idle():
	"""popgate's memory per idle session, plaintext and with TLS on both sides: measure.py's
	figures (its own Dovecot, with imaps; about a minute)."""
	out = os.path.join(tempfile.mkdtemp(prefix="popgate-bench-tls-"), "idle.json")
	r = subprocess.run([sys.executable, os.path.join(REPO, "tests", "perf", "measure.py"),
		"--idle-only", "--json", out], stdin=subprocess.DEVNULL, capture_output=True,
		text=True, timeout=900)
	need(r.returncode == 0, "measure.py --idle-only failed:\n%s%s" % (r.stdout, r.stderr))
	with open(out) as f:
		res = json.load(f)
	shutil.rmtree(os.path.dirname(out), ignore_errors=True)
	return {k: res[k] for k in ("idle_plain", "idle_tls")}


def server_pids(s, peer):
	"""(gateway pids, upstream pids) whose PSS counts for peer's idle sessions."""
	if peer == "native":
		return dovecot_procs(s.dov, "pop3"), []
	if peer == "imapc":
		return dovecot_procs(s.imapc, "pop3"), dovecot_procs(s.dov, "imap")
	return s.pg.pids(), dovecot_procs(s.dov, "imap")


class Held:
	"""popbench idle: k sessions (users pattern % 1..k) logged in through port and held while
	the with block runs (login_s: how long the logins took); then every one QUITs. Fails
	when a login or a QUIT does not work."""

	def __init__(self, port, k, pattern, label, seconds=1800):
		self.k = k
		self.cmd = [popbench_bin(), "idle", "-p", str(port), "-P", PASSWORD, "-k", str(k),
			"-u", pattern, "-N", str(k), "-d", str(seconds), "-l", label]

	def __enter__(self):
		self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
			stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
		try:
			line = self.proc.stdout.readline()
			need(line.startswith("{"), "idle: %s%s" % (line, self.proc.stderr.read() if
				self.proc.poll() is not None else ""))
			ev = json.loads(line)
			need(ev.get("event") == "all logged in" and ev["sessions"] == self.k,
				"idle: %r" % ev)
		except BaseException:
			self.__exit__(None, None, None)
			raise
		self.login_s = ev["login_s"]
		return self

	def __exit__(self, exc_type, exc, tb):
		if self.proc.poll() is None:
			self.proc.send_signal(signal.SIGUSR1)	# by its PID: popbench QUITs them all
		out, err = self.proc.communicate(timeout=600)
		if exc_type is not None:
			return False		# the block's failure says more
		need(self.proc.returncode == 0, "idle: popbench exit %d: %s%s" % (
			self.proc.returncode, out, err))
		rel = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
		rel = [r for r in rel if r.get("event") == "released"]
		need(rel and rel[-1]["held"] == self.k and rel[-1]["errors"] == 0,
			"idle release: %s" % out)
		return False


def run_idle(s, peer):
	"""K sessions logged in and held: PSS of the gateway and of the upstream, per session."""
	k = s.cfg["idle"]
	before = pss_kib(server_pids(s, peer)[0])
	with Held(s.port(peer), k, "idle%04d", peer, seconds=900) as h:
		time.sleep(1.0)	# the last sessions' processes settle
		gw, up = server_pids(s, peer)
		g, u = pss_kib(gw), pss_kib(up)
		res = {"k": k, "login_s": h.login_s, "gw_procs": len(gw), "up_procs": len(up),
			"gw_pss_kib": g[0], "gw_anon_kib": g[1], "up_pss_kib": u[0],
			"gw_kib_per_session": g[0] / k, "up_kib_per_session": u[0] / k,
			"gw_delta_kib_per_session": (g[0] - before[0]) / k}
	wait_sessions_gone(s, peer)
	return res


def wait_sessions_gone(s, peer, timeout=60):
	"""After idle: the idle users' sessions end (Dovecot's processes drop the user from their
	title, or exit) before the next measurement."""
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		gw, up = server_pids(s, peer)
		if (peer == "popgate" or not gw) and not up:
			return
		time.sleep(0.2)
	print("warning: %s: %d/%d processes still show an idle user %d s after QUIT" % (
		peer, len(gw), len(up), timeout), file=sys.stderr)


def run_top0(s, peer, relay):
	"""TOP 1 0 of the 100 MB message; the octets the upstream sent for the whole session (login,
	listing, TOP, logout) through the relay. native: no upstream."""
	if peer == "native":
		r = popbench("top0", s.dov.pop3_port, "-m", 1, "-u", "huge%d", "-N", 1, "-l", peer)[0]
		r["upstream_octets"] = None
		return r
	if peer == "popgate":
		pg = s.start_popgate("pg-top0", relay.port)
		port = pg.port
	else:
		d = dovecot_mod.ImapcPop3(os.path.join(s.tmp, "imapc-top0"), relay.port, s.users,
			PASSWORD, extra=TUNING)
		d.start()
		port = d.pop3_port
	try:
		time.sleep(0.3)
		o0 = relay.octets()
		r = popbench("top0", port, "-m", 1, "-u", "huge%d", "-N", 1, "-l", peer)[0]
		time.sleep(0.5)	# the upstream's last bytes (LOGOUT) through the relay
		r["upstream_octets"] = relay.octets() - o0
	finally:
		if peer == "popgate":
			pg.stop()
		else:
			d.stop()
	return r


# ---- the report ----------------------------------------------------------------------------------

def machine():
	model = "?"
	with open("/proc/cpuinfo") as f:
		for line in f:
			if line.startswith("model name"):
				model = line.split(":", 1)[1].strip()
				break
	r = subprocess.run([dovecot_mod.DOVECOT, "--version"], capture_output=True, text=True)
	rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
		capture_output=True, text=True).stdout.strip() or "?"
	# -dirty for a change to the tree, not for the report this run is writing
	changed = subprocess.run(["git", "-C", REPO, "status", "--porcelain",
		"--untracked-files=no", "--", ".", ":(exclude)bench/RESULTS.md"],
		capture_output=True, text=True).stdout.strip()
	return {"nproc": CPUS, "cpu": model, "kernel": platform.release(),
		"dovecot": r.stdout.strip() or "?", "tree": rev + ("-dirty" if changed else "")}


def med(vals):
	return statistics.median(vals) if vals else None


def report(cfg, s, res, mach, started):
	def m(peer, key, field):
		return med([r[field] for r in res[peer][key]])

	def f(v, fmt="%.0f"):
		return "" if v is None else fmt % v

	def ratio(a, b, fmt="%.2f×"):
		return "" if a is None or b is None or b == 0 else fmt % (a / b)

	rows = [
		("poll sessions/s, %d clients (login, STAT, UIDL, QUIT)" % cfg["poll_c"], "poll",
			"sessions_per_s", "%.0f", True),
		("poll session p50, ms", "poll", "p50_ms", "%.1f", False),
		("poll session p99, ms", "poll", "p99_ms", "%.1f", False),
		("poll: CPU per session of the mail store (Dovecot's IMAP, or its POP3 for "
			"native), ms", "poll", "store_cpu_per", "%.2f", False),
		("poll: CPU per session of the gateway (popgate; imapc's Dovecot), ms", "poll",
			"gw_cpu_per", "%.2f", False),
		("poll: CPU per session of the client (popbench), ms", "poll", "client_cpu_per",
			"%.2f", False),
		("RETR of a 100 MB message, MB/s", "retr1", "mb_per_s", "%.0f", True),
		("RETR of a 100 MB message, CPU s per GB: the store", "retr1", "store_cpu_per",
			"%.2f", False),
		("RETR of a 100 MB message, CPU s per GB: the gateway", "retr1", "gw_cpu_per",
			"%.2f", False),
		("RETR of a 100 MB message, CPU s per GB: the client (popbench)", "retr1",
			"client_cpu_per", "%.2f", False),
		("RETR of a 100 MB message, 4 clients at once, MB/s (aggregate)", "retr4", "mb_per_s",
			"%.0f", True),
		("RETR of a whole %d-message mailbox, MB/s" % cfg["msgs"], "retr_all", "mb_per_s",
			"%.1f", True),
		("%s-message mailbox: login (connect → PASS +OK), ms" % format(cfg["bigbox"], ","),
			"bigbox", "login_ms", "%.1f", False),
		("%s-message mailbox: STAT, ms" % format(cfg["bigbox"], ","), "bigbox", "stat_ms",
			"%.2f", False),
		("%s-message mailbox: LIST (first multi-line reply), ms" % format(cfg["bigbox"], ","),
			"bigbox", "list_ms", "%.1f", False),
		("%s-message mailbox: UIDL (after LIST), ms" % format(cfg["bigbox"], ","), "bigbox",
			"uidl_ms", "%.1f", False),
		("%s-message mailbox: login + UIDL, ms" % format(cfg["bigbox"], ","), "bigbox",
			"login_uidl_ms", "%.1f", False),
		("%s-message mailbox: login + STAT, ms" % format(cfg["bigbox"], ","), "bigbox",
			"login_stat_ms", "%.1f", False),
		("memory per idle logged-in session, KiB PSS (gateway process%s)" % "es", "idle",
			"gw_kib_per_session", "%.0f", False),
		("the same, upstream IMAP processes, KiB PSS", "idle", "up_kib_per_session", "%.0f",
			False),
	]
	L = []
	L.append("# popgate benchmark (`make bench`, bench/run.py)")
	L.append("")
	L.append("**One run on this %d-core machine**, not a controlled lab: %s; Linux %s; "
		"Dovecot %s; popgate tree %s. Load average %.2f at start, %.2f at end; %.0f s in all." % (
		mach["nproc"], mach["cpu"], mach["kernel"], mach["dovecot"], mach["tree"],
		s.info["load0"], os.getloadavg()[0], time.monotonic() - started))
	L.append("")
	L.append("Peers, all on 127.0.0.1, all reading the same maildirs through one private "
		"Dovecot: **native** = that Dovecot's own POP3; **imapc** = a second Dovecot whose POP3 "
		"reads the first one's IMAP (mail_location = imapc:, imapc_features = rfc822.size "
		"fetch-headers); **popgate** = build/popgate (one worker, log level info) in front of "
		"the same IMAP. Both Dovecots use the login high-performance settings (service_count = "
		"0, process_min_avail = %d). Load from build/popbench (bench/popbench.c, one libev "
		"loop, TCP_NODELAY on its sockets). Peers alternated in a rotated order over %d "
		"round(s); the table gives medians (the runs are in the JSON lines below)." % (
		CPUS, cfg["rounds"]))
	L.append("")
	L.append("Mailboxes: %d users of %d messages, 4 users with the same %.0f MB message "
		"(hard links), one of %s messages, %d idle users of 3 messages; %d files written "
		"straight into maildir cur/ in %.1f s, then SELECTed and listed over IMAP (%.1f s) "
		"before anything was timed. Every peer had one untimed poll pass over all users first "
		"(Dovecot's indexes, imapc's index, popgate's UIDL cache)." % (cfg["users"], cfg["msgs"],
		s.huge_len / 1e6, format(cfg["bigbox"], ","), cfg["idle"], s.info["files"],
		s.info["write_s"], s.info["warm_s"]))
	L.append("")
	L.append("| metric | Dovecot native POP3 | Dovecot POP3 + imapc | popgate | popgate / native "
		"| popgate / imapc |")
	L.append("|---|---:|---:|---:|---:|---:|")
	for name, key, field, fmt, higher in rows:
		vals = [m(p, key, field) for p in PEERS]
		L.append("| %s | %s | %s | %s | %s | %s |" % (name, f(vals[0], fmt), f(vals[1], fmt),
			f(vals[2], fmt), ratio(vals[2], vals[0]), ratio(vals[2], vals[1])))
	d1 = med([r["mb_per_s"] for r in res["direct"]["fetch1"]])
	d4 = med([r["mb_per_s"] for r in res["direct"]["fetch4"]])
	p1 = m("popgate", "retr1", "mb_per_s")
	p4 = m("popgate", "retr4", "mb_per_s")
	L.append("| the same 100 MB message by direct IMAP `UID FETCH`, MB/s (1 client / 4 at once) "
		"| | | %.0f / %.0f | RETR ÷ FETCH: %s / %s | |" % (d1, d4, ratio(p1, d1), ratio(p4, d4)))
	L.append("| the direct FETCH (1 client), CPU s per GB: the store / the client | | | "
		"%.2f / %.2f | | |" % (med([r["store_cpu_per"] for r in res["direct"]["fetch1"]]),
		med([r["client_cpu_per"] for r in res["direct"]["fetch1"]])))
	t = {p: res[p]["top0"][0] for p in PEERS}
	L.append("| TOP 1 0 of the 100 MB message: octets the upstream sent for the session | — "
		"(no upstream) | %d | %d | | %s |" % (t["imapc"]["upstream_octets"],
		t["popgate"]["upstream_octets"], ratio(t["popgate"]["upstream_octets"],
		t["imapc"]["upstream_octets"])))
	tls = res["popgate"].get("tls_idle", [None])[0]
	if tls:
		L.append("| memory per idle session, KiB PSS of popgate: plain / TLS to the client and "
			"to the upstream (%d sessions each) | | | %.1f / %.1f | | |" % (
			tls["idle_tls"]["sessions"], tls["idle_plain"]["kib_per_session"],
			tls["idle_tls"]["kib_per_session"]))
	L.append("")
	L.append("Ratios are popgate's figure over the peer's: above 1 is better for rates (MB/s, "
		"sessions/s), below 1 better for times and memory.")
	L.append("")
	L.append("How each figure is taken:")
	L.append("- poll: %d sessions, %d concurrent clients over the %d users (session i → user "
		"i mod %d), each connect, USER, PASS, STAT, UIDL (read to its \".\"), QUIT; "
		"sessions/s over the wall time; p50/p99 of connect → QUIT's +OK. CPU per session: "
		"user + system seconds from /proc/PID/stat before and after the run, of each server's "
		"process tree (its live processes plus the children it reaped) over the sessions: the "
		"store is Dovecot A (serving native POP3 itself, or the IMAP that imapc and popgate "
		"read), the gateway popgate's process or imapc's Dovecot B; the client's is popbench's "
		"rusage. The same three for RETR, per GB of the message (whole popbench run: login "
		"and QUIT included; the clock ticks are 10 ms, so they are rough)." % (cfg["poll_n"],
		cfg["poll_c"], cfg["users"], cfg["users"]))
	L.append("- RETR: from sending RETR to reading the final \".\"; MB/s = un-stuffed message "
		"octets (10^6) over that time (4 clients: first RETR sent to last \".\" read, 4 users "
		"with the same message); each answer's octets equal LIST's size; the SHA-256 of each "
		"peer's answers (4 clients) and of the direct FETCH was checked once, untimed, before "
		"the rounds (hashing in the timed runs would take CPU from the servers). Whole mailbox: LIST, then RETR 1..%d one after the other, each checked "
		"against its LIST size. Direct FETCH: LOGIN, SELECT, then `UID FETCH 1 BODY.PEEK[]` "
		"timed to its tagged OK, its octets checked." % cfg["msgs"])
	L.append("- bigbox: session 1 connect → PASS's +OK, STAT, LIST, UIDL (each from sending "
		"the command to its last byte); session 2 login + UIDL; session 3 login + STAT.")
	L.append("- idle: %d sessions (one user each) logged in and held by one popbench process; "
		"then Pss from /proc/PID/smaps_rollup summed over the gateway's processes (popgate: "
		"its process; native and imapc: every Dovecot `pop3` process) and over the upstream "
		"Dovecot's `imap` processes (imapc, popgate), divided by %d. popgate's figure is its "
		"whole PSS over K (the gain over its PSS before the logins, per session, is in the "
		"JSON: gw_delta_kib_per_session)." % (cfg["idle"], cfg["idle"]))
	L.append("- top0: a second popgate and a third Dovecot (imapc) pointed at a byte-counting "
		"relay in front of the IMAP server: every octet the IMAP server sent during one "
		"session (login, listing, TOP 1 0, QUIT). Dovecot's native POP3 reads the maildir, "
		"there is no upstream to count. The header octets the client got are in the JSON.")
	L.append("- TLS memory: tests/perf/measure.py --idle-only (run by bench/run.py): popgate's "
		"PSS before and after that many idle logged-in sessions, plaintext, then POP3S to the "
		"client and IMAPS to the upstream (Dovecot's imaps), delta over the sessions. The "
		"other peers are not measured with TLS: Dovecot's own TLS is in its login processes.")
	L.append("")
	L.append("## Raw results (one JSON line per popbench result)")
	L.append("")
	L.append("```")
	for peer in PEERS + ("direct",):
		for key in sorted(res[peer]):
			for r in res[peer][key]:
				L.append(json.dumps(dict(r, peer=peer, what=key), sort_keys=True))
	L.append("```")
	return "\n".join(L) + "\n"


# ---- main -----------------------------------------------------------------------------------------

def user_file(s, name):
	path = os.path.join(s.tmp, "users-%s" % name)
	with open(path, "w") as f:
		f.write(name + "\n")
	return path


Setup.user_file = user_file


def main():
	ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	ap.add_argument("--smoke", action="store_true", help="every mode once, small, no report")
	ap.add_argument("--out", metavar="FILE", help="write the Markdown report here")
	ap.add_argument("--rounds", type=int)
	ap.add_argument("--idle", type=int, help="idle sessions per peer (default %d)" %
		FULL["idle"])
	a = ap.parse_args()

	def interrupted(signum, frame):
		raise KeyboardInterrupt("signal %d" % signum)

	# SIGINT is ignored in a job started with & by a script; SIGTERM too must stop everything.
	signal.signal(signal.SIGINT, interrupted)
	signal.signal(signal.SIGTERM, interrupted)
	cfg = dict(SMOKE if a.smoke else FULL)
	if a.rounds:
		cfg["rounds"] = a.rounds
	if a.idle:
		cfg["idle"] = a.idle
	need(popgate_bin(), "POPGATE_BIN must name the popgate executable")
	popbench_bin()
	started = time.monotonic()
	tmp = tempfile.mkdtemp(prefix="popgate-bench-")
	s = Setup(cfg, tmp)
	s.info["load0"] = os.getloadavg()[0]
	mach = machine()
	res = {p: {} for p in PEERS + ("direct",)}
	relay = None

	def add(peer, key, r):
		res[peer].setdefault(key, []).append(r)
		print(json.dumps(dict(r, peer=peer, what=key)), file=sys.stderr, flush=True)

	try:
		s.build()
		print("mailboxes ready (%.0f s)" % (time.monotonic() - started), file=sys.stderr)
		s.pg = s.start_popgate("pg")
		for peer in PEERS:	# untimed: indexes, caches
			run_poll(s, peer, n=len(s.bench_users))
			popbench("bigbox", s.port(peer), "-U", s.user_file("bigbox"))
			run_retr(s, peer, 4, sha=True)
		run_imapfetch(s, 4, sha=True)
		for rnd in range(cfg["rounds"]):
			order = PEERS[rnd % 3:] + PEERS[:rnd % 3]
			for peer in order:
				add(peer, "poll", run_poll(s, peer))
				add(peer, "retr1", run_retr(s, peer, 1))
				add(peer, "retr4", run_retr(s, peer, 4))
				add(peer, "retr_all", run_retr_all(s, peer))
				add(peer, "bigbox", run_bigbox(s, peer))
			add("direct", "fetch1", run_imapfetch(s, 1))
			add("direct", "fetch4", run_imapfetch(s, 4))
		# The idle rounds last: thousands of sessions leave Dovecot processes and memory
		# behind that slowed every timed mode after them (a first run measured poll at
		# 835, 577, then 208 sessions/s natively, round after round).
		for rnd in range(cfg["rounds"]):
			order = PEERS[rnd % 3:] + PEERS[:rnd % 3]
			for peer in order:
				if peer == "popgate":	# a fresh popgate: its PSS is the sessions', not the
					s.pg.stop()	# buffers a 100 MB RETR left
					s.pg = s.start_popgate("pg-idle%d" % rnd)
				add(peer, "idle", run_idle(s, peer))
				if peer == "popgate":
					s.pg.stop()
					s.pg = s.start_popgate("pg%d" % rnd)
		if not a.smoke:
			add("popgate", "tls_idle", run_tls_idle())
		relay = Relay(s.dov.imap_port)
		for peer in PEERS:
			add(peer, "top0", run_top0(s, peer, relay))
	except BaseException as e:
		if s.pg is not None:
			print("--- popgate log tail:\n" + s.pg.log_tail(), file=sys.stderr)
		print("--- dovecot log tail:\n" + s.dov.log_tail(), file=sys.stderr)
		print("--- imapc dovecot log tail:\n" + s.imapc.log_tail(), file=sys.stderr)
		s.stop()
		if relay:
			relay.close()
		shutil.rmtree(tmp, ignore_errors=True)
		if isinstance(e, BenchError):
			sys.exit("bench: FAILED: %s" % e)
		raise
	s.stop()
	relay.close()
	shutil.rmtree(tmp, ignore_errors=True)
	text = report(cfg, s, res, mach, started)	# the smoke run proves the report renders
	if a.smoke:
		print("bench-smoke: every mode worked (%.0f s)" % (time.monotonic() - started))
		return
	sys.stdout.write(text)
	if a.out:
		with open(a.out, "w") as f:
			f.write(text)


if __name__ == "__main__":
	main()
