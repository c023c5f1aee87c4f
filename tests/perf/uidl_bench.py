"""What the UIDL cache costs a POP3 client, measured end to end on one machine, in one run:

    POPGATE_BIN=build/popgate python3 tests/perf/uidl_bench.py [--small] [--migration] [--out FILE]
    (or: make measure-uidl UIDL_ARGS="--migration --out uidl.md")

A private Dovecot (tests/integration/dovecot.py: IMAP and its own POP3 on the same maildirs)
and popgate in front of its IMAP, each popgate with a fresh cache file. Mailboxes are written
straight into maildir cur/ (file names carry ,S= and ,W=, so Dovecot reads no file for a size),
then each is SELECTed and listed once over IMAP: Dovecot builds its index before anything is
timed, and the listing proves it sees every message with its size.

(1) N messages (10,000): popgate's first login (PASS -> +OK: the listing, the header fields of
    the content keys, the cache's record) and UIDL; a repeat login and UIDL; Dovecot's own
    POP3: PASS, STAT, UIDL. Medians of ROUNDS rounds, a separate user with the same messages
    for each round (each one's first login is a first). For scale, the same IMAP commands
    popgate sends, timed on a fourth copy of the mailbox straight against Dovecot.
    CPU seconds of popgate's loop thread, its cache thread and Dovecot during each first login.
(2) --migration: the same with popgate's [migration] reading the old UIDLs from Dovecot's own
    POP3 (UIDL, LIST, TOP n 0 of every message) at the first login; other users again. Fails
    if the popgate does not take the section, or if Dovecot's log does not show each first
    login reading TOP of all N messages from the old server.
(3) SESSIONS other sessions logged in through the same popgate (one worker: one event loop;
    small mailboxes), each sending NOOP, waiting for the answer, waiting --noop-interval ms,
    and so on (one client process, one selector loop, every round trip recorded); a baseline
    window, then one first login of a BIG-message (100,000) mailbox and its repeat: NOOP round
    trips p50/p99/max in each window (a NOOP counts for a window when its round trip overlaps
    it), the longest a NOOP waited while no other session was answered either (a stalled loop
    answers no one), and how long popgate's loop thread and the client waited for a CPU.

Every answer is checked (counts, sizes, UIDLs: N distinct lines, the same at the repeat
login, the same as Dovecot's own POP3 gives: its pop3_uidl_format is popgate's derived form);
the exit status is non-zero only when something did not work, never for a slow figure.
Runs as root (Dovecot is started as root, as in the integration tests)."""

import argparse
import array
import collections
import gc
import math
import multiprocessing
import os
import platform
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import dovecot as dovecot_mod	# noqa: E402
from pop3client import Pop3Raw	# noqa: E402
from popgate import popgate_bin, popgate_check_config, popgate_ini, start_popgate	# noqa: E402

FULL = {"n": 10000, "big": 100000, "sessions": 50, "rounds": 3, "baseline_s": 10.0}
SMALL = {"n": 500, "big": 5000, "sessions": 5, "rounds": 3, "baseline_s": 3.0}
PASSWORD = "bench-pass"
SMALL_MAILBOX = 3	# messages of each NOOP session's user
HEADER_FIELDS = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)]"	# gateway/keys.c
TIMEOUT = 900	# seconds for any one answer: a slow machine is measured, not failed


class BenchError(Exception):
	"""Something did not work (as opposed to: something was slow)."""


def need(cond, what):
	if not cond:
		raise BenchError(what)


# ---- mailboxes ---------------------------------------------------------------------------

_BODY_POOL = [("%02d " % k + "lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
	"eiusmod tempor"[k % 7:] + " .")[:72] + "\r\n" for k in range(64)]


def bench_messages(n, tag):
	"""n distinct messages (about 0.6 to 2 KB, CRLF), each with its own Message-ID, Date,
	From and Subject, some body lines starting with "."; the same n and tag give the same
	bytes (the users of one phase get the same mailbox)."""
	out = []
	for i in range(1, n + 1):
		t = 1700000000 + 37 * i
		head = ("Return-Path: <sender%d@example.org>\r\n"
			"Received: from mx%d.example.org by mail.example.net; %s\r\n"
			"From: Sender %d <sender%d@example.org>\r\n"
			"To: Bench User <bench@example.net>\r\n"
			"Subject: %s message %d of %d\r\n"
			"Date: %s\r\n"
			"Message-ID: <%s-%d.%d@popgate.bench>\r\n"
			"MIME-Version: 1.0\r\n"
			"Content-Type: text/plain; charset=us-ascii\r\n\r\n") % (
			i % 977, i % 5, time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t - 3)),
			i % 977, i % 977, tag, i, n,
			time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t)), tag, i, t)
		lines = 3 + (i * 7919) % 20
		body = "".join(_BODY_POOL[(i + 5 * j) % 64] for j in range(lines))
		if i % 10 == 0:
			body += ".a line starting with a dot\r\n"
		out.append((head + body).encode("ascii"))
	return out


def maildir_fill(dov, user, msgs):
	"""Writes msgs into user's Maildir/cur, owned by Dovecot's mail user, names
	TIME.M<i>P1.bench,S=<size>,W=<vsize>:2, (the files are CRLF: the virtual size is the
	size); the time part grows with i, so Dovecot gives the UIDs in msgs' order."""
	md = os.path.join(dov.dir, "mail", user, "Maildir")
	for sub in ("", "cur", "new", "tmp"):
		os.makedirs(os.path.join(md, sub), exist_ok=True)
		os.chown(os.path.join(md, sub), dovecot_mod.MAIL_UID, dovecot_mod.MAIL_GID)
	cur = os.path.join(md, "cur")
	uid, gid = dovecot_mod.MAIL_UID, dovecot_mod.MAIL_GID
	for i, msg in enumerate(msgs):
		name = "%d.M%dP1.bench,S=%d,W=%d:2," % (1600000000 + i, i, len(msg), len(msg))
		fd = os.open(os.path.join(cur, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
		try:
			os.write(fd, msg)
			os.fchown(fd, uid, gid)
		finally:
			os.close(fd)


# ---- a raw IMAP client (warm-up, and the IMAP side timed without popgate) ------------------

class Imap:
	def __init__(self, port, user, password):
		self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
		self.file = self.sock.makefile("rb")
		self.tag = 0
		need(self.file.readline().startswith(b"* OK"), "IMAP greeting")
		self.run('LOGIN "%s" "%s"' % (user, password))

	def run(self, command):
		"""Sends command, reads to its tagged OK: (untagged lines without literals, the number
		of literals read)."""
		self.tag += 1
		tag = b"b%d " % self.tag
		self.sock.sendall(tag + command.encode() + b"\r\n")
		lines, literals = [], 0
		while True:
			line = self.file.readline()
			need(line, "IMAP connection closed after %r" % command)
			while line.endswith(b"}\r\n"):	# a literal, then the rest of the line
				n = int(line[line.rindex(b"{") + 1:-3])
				need(len(self.file.read(n)) == n, "IMAP literal cut short")
				literals += 1
				more = self.file.readline()
				need(more, "IMAP connection closed in a literal")
				line = line[:line.rindex(b"{")] + b"{}" + more
			if line.startswith(tag):
				need(line[len(tag):].startswith(b"OK"), "IMAP %r: %r" % (command, line))
				return lines, literals
			lines.append(line)

	def close(self):
		try:
			self.run("LOGOUT")
		except (BenchError, OSError):
			pass
		self.sock.close()


def list_sizes(lines):
	"""RFC822.SIZE of each listing line, in order."""
	out = []
	for line in lines:
		if b" FETCH " in line:
			out.append(int(line.split(b"RFC822.SIZE ")[1].split(b")")[0].split()[0]))
	return out


def warm_and_check(dov, user, msgs):
	"""SELECT and list the mailbox once over IMAP (Dovecot builds its index), checking it holds
	exactly msgs' sizes. Returns the seconds it took."""
	t0 = time.perf_counter()
	m = Imap(dov.imap_port, user, PASSWORD)
	try:
		lines, _ = m.run("SELECT INBOX")
		exists = [int(x.split()[1]) for x in lines if x.endswith(b" EXISTS\r\n")]
		need(exists == [len(msgs)], "%s: SELECT says %r EXISTS, %d written" % (user, exists,
			len(msgs)))
		lines, _ = m.run("UID FETCH 1:* (UID RFC822.SIZE)")
		need(list_sizes(lines) == [len(x) for x in msgs], "%s: Dovecot's sizes are not the "
			"ones written, or not in their order" % user)
	finally:
		m.close()
	return time.perf_counter() - t0


def imap_direct(dov, user, n):
	"""The IMAP commands of popgate's first login, straight against Dovecot: the listing, the
	header fields (first time: Dovecot reads every file; again: from its cache file). Also
	connect -> greeting -> LOGIN -> SELECT -> listing, one command after the other: what a
	repeat login through popgate cannot go below."""
	out = {}
	t0 = time.perf_counter()
	m = Imap(dov.imap_port, user, PASSWORD)
	try:
		m.run("SELECT INBOX")
		t1 = time.perf_counter()
		lines, _ = m.run("UID FETCH 1:* (UID RFC822.SIZE)")
		t2 = time.perf_counter()
		out["listing"], out["session"] = t2 - t1, t2 - t0
		need(len(list_sizes(lines)) == n, "direct listing of %s" % user)
		for key in ("headers_first", "headers_again"):
			t0 = time.perf_counter()
			_, literals = m.run("UID FETCH 1:* (UID %s)" % HEADER_FIELDS)
			out[key] = time.perf_counter() - t0
			need(literals == n, "direct header fetch of %s: %d literals" % (user, literals))
	finally:
		m.close()
	return out


# ---- POP3 ----------------------------------------------------------------------------------

def pop3_login(port, user, whole=None):
	"""A logged-in Pop3Raw and the seconds from sending PASS to reading its +OK; whole (a
	list), when given, gets the seconds from connect() to that +OK."""
	tc = time.perf_counter()
	p = Pop3Raw("127.0.0.1", port, timeout=TIMEOUT)
	need(p.greeting.startswith(b"+OK"), "greeting %r" % p.greeting)
	r = p.cmd("USER " + user)
	need(r.startswith(b"+OK"), "USER %s: %r" % (user, r))
	t0 = time.perf_counter()
	r = p.cmd("PASS " + PASSWORD)
	t1 = time.perf_counter()
	if not r.startswith(b"+OK"):
		p.close()
		raise BenchError("login of %s on port %d: %r" % (user, port, r))
	if whole is not None:
		whole.append(t1 - tc)
	return p, t1 - t0


def pop3_multi(p, command):
	"""(seconds from sending command to its final ".", the lines without CRLF)."""
	t0 = time.perf_counter()
	status, lines = p.cmd_multi(command)
	dt = time.perf_counter() - t0
	need(lines is not None, "%s: %r" % (command, status))
	return dt, [x[:-2] for x in lines]


def pop3_quit(p):
	"""QUIT, then read to EOF: the session is gone when the next login of that user comes."""
	r = p.cmd("QUIT")
	need(r.startswith(b"+OK"), "QUIT: %r" % r)
	p.sock.settimeout(30)
	while p.file.read(4096):
		pass
	p.close()


def check_uidls(lines, n, user):
	"""UIDL lines -> [uidl] in message order, checked: n lines "i uidl", i = 1..n, distinct."""
	need(len(lines) == n, "UIDL of %s: %d lines, %d messages" % (user, len(lines), n))
	out = []
	for i, line in enumerate(lines, 1):
		num, _, uidl = line.partition(b" ")
		need(num == b"%d" % i and uidl, "UIDL of %s, line %d: %r" % (user, i, line))
		out.append(uidl)
	need(len(set(out)) == n, "UIDL of %s: duplicate UIDLs" % user)
	return out


def check_stat_list(p, msgs, user):
	"""STAT and LIST answer msgs' count, octets and sizes."""
	r = p.cmd("STAT")
	need(r == b"+OK %d %d\r\n" % (len(msgs), sum(map(len, msgs))), "STAT of %s: %r" % (user, r))
	_, lines = pop3_multi(p, "LIST")
	need([int(x.split()[1]) for x in lines] == [len(x) for x in msgs], "LIST of %s" % user)


# ---- CPU accounting from /proc -------------------------------------------------------------

def _stat_fields(path):
	with open(path) as f:
		return f.read().rsplit(")", 1)[1].split()


TICK = os.sysconf("SC_CLK_TCK")


def popgate_cpu(pg):
	"""{"loop": s, "threads": s}: CPU seconds of popgate's main thread (its event loop) and of
	its other threads (the UIDL cache's), so far."""
	out = {"loop": 0.0, "threads": 0.0}
	for pid in pg.pids():
		for tid in os.listdir("/proc/%d/task" % pid):
			try:
				f = _stat_fields("/proc/%d/task/%s/stat" % (pid, tid))
			except OSError:
				continue
			out["loop" if int(tid) == pid else "threads"] += (int(f[11]) + int(f[12])) / TICK
	return out


def tree_cpu(pid):
	"""CPU seconds of pid and its descendants so far, the reaped ones included (a Dovecot
	imap process ends with its session)."""
	total = 0.0
	try:
		f = _stat_fields("/proc/%d/stat" % pid)
		total += (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / TICK
		with open("/proc/%d/task/%d/children" % (pid, pid)) as fh:
			kids = [int(x) for x in fh.read().split()]
	except OSError:
		return total
	return total + sum(tree_cpu(k) for k in kids)


class CpuWatch:
	"""CPU seconds spent between start() and stop() by popgate's loop, its other threads, and
	Dovecot (all its processes)."""

	def __init__(self, pg, dov):
		self.pg, self.dov = pg, dov

	def sample(self):
		c = popgate_cpu(self.pg)
		c["dovecot"] = tree_cpu(self.dov.proc.pid)
		return c

	def start(self):
		self.c0 = self.sample()

	def stop(self):
		c1 = self.sample()
		return {k: c1[k] - self.c0[k] for k in c1}


# ---- the NOOP sessions -------------------------------------------------------------------

def noop_client(conn, port, users, interval):
	"""Child process: logs in every user, says "ready", and on "go" sends NOOP on each session,
	waits for its answer, waits interval seconds, and again, until "stop"; then sends back
	the send and answer times (time.perf_counter: CLOCK_MONOTONIC, the parent's clock too)."""
	gc.disable()	# no collector pauses inside the round trips measured
	try:
		sessions = []
		for u in users:
			p, _ = pop3_login(port, u)
			sessions.append(p.sock)
			p.file.close()	# nothing is buffered: PASS's +OK was the last line
	except Exception as e:	# noqa: BLE001 - reported to the parent
		conn.send(("error", "NOOP session login: %r" % e))
		return
	conn.send(("ready", None))
	if conn.recv() != "go":
		return
	n = len(sessions)
	sel = selectors.DefaultSelector()
	for i, s in enumerate(sessions):
		s.setblocking(False)
		sel.register(s, selectors.EVENT_READ, i)
	sel.register(conn, selectors.EVENT_READ, -1)
	sent_at = [0.0] * n
	inflight = [False] * n
	bufs = [b""] * n
	t_send, t_recv = array.array("d"), array.array("d")
	now = time.perf_counter()
	due = collections.deque((now + interval * i / n, i) for i in range(n))	# staggered
	stopping = False
	error = None
	while error is None:
		now = time.perf_counter()
		while due and due[0][0] <= now and not stopping:
			i = due.popleft()[1]
			sessions[i].send(b"NOOP\r\n")
			sent_at[i] = time.perf_counter()
			inflight[i] = True
		if stopping and not any(inflight):
			break
		timeout = None if stopping or not due else max(0.0, due[0][0] - time.perf_counter())
		for key, _ in sel.select(timeout):
			i = key.data
			if i < 0:
				conn.recv()
				stopping = True
				sel.unregister(conn)
				continue
			data = sessions[i].recv(4096)
			t = time.perf_counter()
			if not data:
				error = "session %d closed by popgate" % i
				break
			bufs[i] += data
			if bufs[i].endswith(b"\r\n"):
				if bufs[i] != b"+OK\r\n" and not bufs[i].startswith(b"+OK "):
					error = "NOOP answered %r" % bufs[i]
					break
				bufs[i] = b""
				inflight[i] = False
				t_send.append(sent_at[i])
				t_recv.append(t)
				due.append((t + interval, i))
	for s in sessions:
		try:
			s.setblocking(True)
			s.settimeout(30)
			s.sendall(b"QUIT\r\n")
			while s.recv(4096):
				pass
		except OSError:
			pass
		s.close()
	conn.send(("error", error) if error else ("done", (t_send, t_recv)))


def latency_stats(t_send, t_recv, w0, w1):
	"""Round trips overlapping [w0, w1]: {n, p50, p99, max} in milliseconds, and gap: the
	longest a NOOP waited while no other session got an answer either (a stalled loop
	answers no one; a slow round trip while others are answered is not a gap)."""
	pairs = [(s, r) for s, r in zip(t_send, t_recv) if s < w1 and r > w0]
	lat = sorted(r - s for s, r in pairs)
	if not lat:
		return {"n": 0, "p50": math.nan, "p99": math.nan, "max": math.nan, "gap": math.nan}

	def rank(q):	# nearest rank
		return lat[max(0, min(len(lat) - 1, math.ceil(q * len(lat)) - 1))] * 1000

	gap, prev = 0.0, -math.inf
	for s, r in sorted(pairs, key=lambda x: x[1]):
		gap = max(gap, r - max(prev, s))
		prev = r
	return {"n": len(lat), "p50": rank(0.50), "p99": rank(0.99), "max": lat[-1] * 1000,
		"gap": gap * 1000}


def run_delay(pid, tid=None):
	"""Seconds the thread (default: the process's main thread) has spent runnable but
	waiting for a CPU so far (/proc/.../schedstat)."""
	try:
		with open("/proc/%d/task/%d/schedstat" % (pid, tid or pid)) as f:
			return int(f.read().split()[1]) / 1e9
	except OSError:
		return math.nan


# ---- the phases ----------------------------------------------------------------------------

def popgate_opts(cfg, migration_port=None):
	opts = {"log.level": "info", "server.workers": 1,
		"limits.max_per_address": cfg["sessions"] + 20, "limits.max_commands": 100000000}
	if migration_port is not None:
		opts.update({"migration.pop3": "127.0.0.1:%d" % migration_port,
			"migration.security": "none", "migration.required": "yes"})
	return opts


def first_and_repeat(pg, dov, users, msgs, native):
	"""Per user: popgate's first login and UIDL, a repeat login and UIDL (the same UIDLs, and
	those of Dovecot's own POP3, native[user]), STAT and LIST; CPU during each first login."""
	out = collections.defaultdict(list)
	watch = CpuWatch(pg, dov)
	n = len(msgs)
	for u in users:
		watch.start()
		p, dt = pop3_login(pg.port, u, out["first_whole"])
		cpu = watch.stop()
		out["first_login"].append(dt)
		for k, v in cpu.items():
			out["first_cpu_" + k].append(v)
		dt, lines = pop3_multi(p, "UIDL")
		out["first_uidl"].append(dt)
		first = check_uidls(lines, n, u)
		pop3_quit(p)
		p, dt = pop3_login(pg.port, u, out["repeat_whole"])
		out["repeat_login"].append(dt)
		dt, lines = pop3_multi(p, "UIDL")
		out["repeat_uidl"].append(dt)
		need(check_uidls(lines, n, u) == first, "%s: the repeat login's UIDLs differ from the "
			"first's" % u)
		check_stat_list(p, msgs, u)
		pop3_quit(p)
		need(first == native[u], "%s: popgate's UIDLs are not Dovecot's own POP3's" % u)
	return out


def old_server_reads(dov, offset, users):
	"""{user: [TOPs of each POP3 session]} from Dovecot's log past offset (its POP3's
	"Disconnected: ... top=N/octets" line): what a migration read from the old server."""
	with open(dov.log_path, "rb") as f:
		f.seek(offset)
		text = f.read().decode("utf-8", "replace")
	out = {u: [] for u in users}
	for m in re.finditer(r"pop3\(([^)]+)\)\S*: Info: Disconnected:.*?top=(\d+)/", text):
		if m.group(1) in out:
			out[m.group(1)].append(int(m.group(2)))
	return out


def native_pop3(dov, users, msgs):
	"""Dovecot's own POP3 per user: PASS, STAT, UIDL timed; returns (timings, {user: uidls})."""
	out = collections.defaultdict(list)
	uidls = {}
	want = b"+OK %d %d\r\n" % (len(msgs), sum(map(len, msgs)))
	for u in users:
		p, dt = pop3_login(dov.pop3_port, u, out["whole"])
		out["login"].append(dt)
		t0 = time.perf_counter()
		r = p.cmd("STAT")
		out["stat"].append(time.perf_counter() - t0)
		need(r == want, "Dovecot's STAT of %s: %r, expected %r" % (u, r, want))
		dt, lines = pop3_multi(p, "UIDL")
		out["uidl"].append(dt)
		uidls[u] = check_uidls(lines, len(msgs), u)
		pop3_quit(p)
	return out, uidls


def loop_phase(pg, dov, cfg, noop_users, big_user, big_msgs, interval):
	"""The NOOP sessions' round trips: a baseline window, then during the big first login and
	during its repeat. Returns a dict of windows and timings."""
	ctx = multiprocessing.get_context("fork")
	parent, child = ctx.Pipe()
	proc = ctx.Process(target=noop_client, args=(child, pg.port, noop_users, interval))
	proc.start()
	res = {}
	try:
		need(parent.poll(300), "the NOOP sessions did not log in within 300 s")
		kind, what = parent.recv()
		need(kind == "ready", "NOOP sessions: %s" % (what,))
		parent.send("go")
		cpu0 = tree_cpu(proc.pid)
		time.sleep(1.0)	# every session in its stride

		def delays():
			return run_delay(pg.proc.pid), run_delay(proc.pid)

		def waited(key, d0):
			res[key + "_wait"] = [b - a for a, b in zip(d0, delays())]

		watch = CpuWatch(pg, dov)
		watch.start()
		d0 = delays()
		w0 = time.perf_counter()
		time.sleep(cfg["baseline_s"])
		w1 = time.perf_counter()
		waited("baseline", d0)
		res["baseline_cpu"] = watch.stop()
		res["client_cpu_share"] = (tree_cpu(proc.pid) - cpu0) / (w1 - w0 + 1.0)
		res["baseline"] = (w0, w1)

		watch.start()
		d0 = delays()
		t0 = time.perf_counter()
		p, dt = pop3_login(pg.port, big_user)
		t1 = time.perf_counter()
		waited("big_first", d0)
		res["big_cpu"] = watch.stop()
		res["big_first"] = (t0, t1)
		res["big_first_login"] = dt
		dt, lines = pop3_multi(p, "UIDL")
		res["big_first_uidl"] = dt
		first = check_uidls(lines, len(big_msgs), big_user)
		pop3_quit(p)
		time.sleep(0.5)
		d0 = delays()
		t0 = time.perf_counter()
		p, dt = pop3_login(pg.port, big_user)
		t1 = time.perf_counter()
		waited("big_repeat", d0)
		res["big_repeat"] = (t0, t1)
		res["big_repeat_login"] = dt
		dt, lines = pop3_multi(p, "UIDL")
		res["big_repeat_uidl"] = dt
		need(check_uidls(lines, len(big_msgs), big_user) == first, "%s: the repeat login's "
			"UIDLs differ from the first's" % big_user)
		check_stat_list(p, big_msgs, big_user)
		pop3_quit(p)
		time.sleep(0.5)
		parent.send("stop")
		need(parent.poll(120), "the NOOP client did not stop within 120 s")
		kind, what = parent.recv()
		need(kind == "done", "NOOP sessions: %s" % (what,))
		t_send, t_recv = what
		for key in ("baseline", "big_first", "big_repeat"):
			res[key + "_noop"] = latency_stats(t_send, t_recv, *res[key])
		res["noops"] = len(t_send)
	finally:
		proc.join(30)
		if proc.exitcode is None:
			proc.kill()	# by its PID (multiprocessing's own child)
			proc.join(5)
	need(proc.exitcode == 0, "the NOOP client exited with %r" % proc.exitcode)
	return res


# ---- the report ----------------------------------------------------------------------------

def machine():
	model = "?"
	try:
		with open("/proc/cpuinfo") as f:
			for line in f:
				if line.startswith("model name"):
					model = line.split(":", 1)[1].strip()
					break
	except OSError:
		pass
	r = subprocess.run([dovecot_mod.DOVECOT, "--version"], capture_output=True, text=True)
	rev = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
		capture_output=True, text=True)
	return {"nproc": os.cpu_count(), "cpu": model, "dovecot": r.stdout.strip() or "?",
		"kernel": platform.release(), "python": platform.python_version(),
		"tree": rev.stdout.strip() or "?"}


def fmt_s(values):
	"""Median of values (seconds) and the runs, in ms when below 1 s."""
	med = statistics.median(values)

	def one(v):
		return "%.3f s" % v if med >= 1 else "%.1f ms" % (v * 1000)

	runs = ", ".join(one(v).split()[0] for v in values)
	return "%s (%s)" % (one(med), runs) if len(values) > 1 else one(med)


def report(cfg, a, mach, info, ph1, native, ph2, direct, loop, started):
	n, big, rounds = cfg["n"], cfg["big"], cfg["rounds"]
	L = []
	L.append("## popgate UIDL benchmark (tests/perf/uidl_bench.py%s)" % (
		" --small" if a.small else ""))
	L.append("")
	L.append("Machine: %d CPUs (nproc), %s; Linux %s; Dovecot %s; Python %s; popgate %s "
		"(tree %s); load average %.2f at start, %.2f at end; %.0f s in all." % (
		mach["nproc"], mach["cpu"], mach["kernel"], mach["dovecot"], mach["python"],
		info["binary"], mach["tree"], info["load0"], os.getloadavg()[0],
		time.monotonic() - started))
	L.append("Mailboxes written straight into maildir cur/ (%d files in %.1f s), then "
		"SELECTed and listed once over IMAP before anything was timed (Dovecot's index: "
		"%.1f s for the %s-message mailbox). All on 127.0.0.1, page cache warm; popgate: one "
		"worker, log level info, a fresh cache file per popgate." % (info["files"],
		info["write_s"], info["warm_big_s"], format(big, ",")))
	L.append("")
	L.append("### %s-message mailbox: median of %d rounds (each round: another user with the "
		"same messages)" % (format(n, ","), rounds))
	L.append("")
	L.append("| what | time: median (runs) |")
	L.append("|---|---|")
	rows = [
		("popgate, first login: PASS → +OK", ph1["first_login"]),
		("popgate, first login: connect → PASS's +OK", ph1["first_whole"]),
		("popgate, first login: UIDL", ph1["first_uidl"]),
		("popgate, repeat login: PASS → +OK", ph1["repeat_login"]),
		("popgate, repeat login: connect → PASS's +OK", ph1["repeat_whole"]),
		("popgate, repeat login: UIDL", ph1["repeat_uidl"]),
	]
	if ph2 is not None:
		rows += [
			("popgate + [migration], first login: PASS → +OK", ph2["first_login"]),
			("popgate + [migration], first login: UIDL", ph2["first_uidl"]),
			("popgate + [migration], repeat login: PASS → +OK", ph2["repeat_login"]),
			("popgate + [migration], repeat login: UIDL", ph2["repeat_uidl"]),
		]
	rows += [
		("Dovecot's POP3: PASS → +OK", native["login"]),
		("Dovecot's POP3: connect → PASS's +OK", native["whole"]),
		("Dovecot's POP3: STAT", native["stat"]),
		("Dovecot's POP3: UIDL", native["uidl"]),
		("IMAP straight to Dovecot: connect, LOGIN, SELECT, listing", [direct["session"]]),
		("IMAP straight to Dovecot: `UID FETCH 1:* (UID RFC822.SIZE)`", [direct["listing"]]),
		("IMAP straight to Dovecot: header fields of the content keys, first time",
			[direct["headers_first"]]),
		("IMAP straight to Dovecot: the same again (Dovecot's cache file)",
			[direct["headers_again"]]),
	]
	for name, vals in rows:
		L.append("| %s | %s |" % (name, fmt_s(vals)))
	L.append("")
	L.append("popgate connects to the IMAP server at PASS; Dovecot's POP3 has its session "
		"process from the connect on: the connect → +OK rows compare like with like.")
	L.append("")
	if ph2 is None:
		L.append("[migration]: not run (no --migration).")
	else:
		L.append("[migration]: ran (pop3 = Dovecot's own POP3 on 127.0.0.1, security = none, "
			"required = yes): Dovecot's log shows each first login reading TOP n 0 of all "
			"%s messages (%d POP3 sessions on the old server for %d first and %d repeat "
			"logins); the UIDLs are Dovecot's own POP3's." % (format(n, ","),
			ph2["old_server_sessions"], rounds, rounds))
	L.append("")
	L.append("CPU seconds during a first login (PASS → +OK), median: popgate's event loop "
		"thread / its other threads (UIDL cache) / Dovecot (all processes)")
	L.append("")
	L.append("| first login | wall | popgate loop | popgate cache thread | Dovecot |")
	L.append("|---|---|---|---|---|")
	for name, ph in (("%s messages" % format(n, ","), ph1),
			("%s messages + [migration]" % format(n, ","), ph2)):
		if ph is not None:
			L.append("| %s | %.3f s | %.3f s | %.3f s | %.3f s |" % (name,
				statistics.median(ph["first_login"]), statistics.median(ph["first_cpu_loop"]),
				statistics.median(ph["first_cpu_threads"]),
				statistics.median(ph["first_cpu_dovecot"])))
	c = loop["big_cpu"]
	L.append("| %s messages (under the NOOP load) | %.3f s | %.3f s | %.3f s | %.3f s |" % (
		format(big, ","), loop["big_first_login"], c["loop"], c["threads"], c["dovecot"]))
	w0, w1 = loop["baseline"]
	scale = loop["big_first_login"] / (w1 - w0)
	c = loop["baseline_cpu"]
	L.append("| (the NOOP load alone, its baseline scaled to that wall time) | %.3f s | %.3f s "
		"| %.3f s | %.3f s |" % (loop["big_first_login"], c["loop"] * scale,
		c["threads"] * scale, c["dovecot"] * scale))
	L.append("")
	L.append("### The event loop while a %s-message mailbox logs in for the first time" %
		format(big, ","))
	L.append("")
	L.append("%d sessions logged in through the same popgate (%d messages each), each sending "
		"NOOP, reading the answer, waiting %g ms, again (one client process: %.0f%% of a CPU "
		"in the baseline; %d round trips in all). A round trip counts for a window when it "
		"overlaps it. Gap: the longest a NOOP waited while no other session got an answer either. "
		"Waiting for a CPU: how long popgate's loop thread / the NOOP client was runnable "
		"but not running in the window (schedstat)." % (cfg["sessions"], SMALL_MAILBOX,
		a.noop_interval, 100 * loop["client_cpu_share"], loop["noops"]))
	L.append("")
	L.append("| window | duration | NOOPs | p50 | p99 | max | gap | waiting for a CPU: "
		"popgate loop / client |")
	L.append("|---|---|---|---|---|---|---|---|")
	for key, name in (("baseline", "baseline, no big login"),
			("big_first", "%s-message first login (PASS → +OK)" % format(big, ",")),
			("big_repeat", "its repeat login (PASS → +OK)")):
		w0, w1 = loop[key]
		s = loop[key + "_noop"]
		wl, wc = loop[key + "_wait"]
		L.append("| %s | %.3f s | %d | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.0f ms / "
			"%.0f ms |" % (name, w1 - w0, s["n"], s["p50"], s["p99"], s["max"], s["gap"],
			wl * 1000, wc * 1000))
	L.append("")
	L.append("%s-message mailbox: first login %.3f s, then UIDL %.3f s; repeat login %.3f s, "
		"then UIDL %.3f s." % (format(big, ","), loop["big_first_login"], loop["big_first_uidl"],
		loop["big_repeat_login"], loop["big_repeat_uidl"]))
	return "\n".join(L) + "\n"


# ---- main ----------------------------------------------------------------------------------

def main():
	ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	ap.add_argument("--small", action="store_true", help="%d / %d messages, %d sessions: a "
		"smoke run (well under a minute)" % (SMALL["n"], SMALL["big"], SMALL["sessions"]))
	ap.add_argument("--migration", action="store_true", help="also phase 2, popgate's "
		"[migration] reading Dovecot's own POP3 (needs a popgate that has it)")
	ap.add_argument("--out", metavar="FILE", help="also write the Markdown report here")
	ap.add_argument("--noop-interval", type=float, default=10.0, metavar="MS",
		help="pause between a NOOP's answer and the next NOOP of a session (default 10)")
	a = ap.parse_args()
	cfg = SMALL if a.small else FULL
	binary = popgate_bin()
	if not binary:
		sys.exit("POPGATE_BIN must name the popgate executable to measure")
	started = time.monotonic()
	info = {"binary": binary, "load0": os.getloadavg()[0]}
	mach = machine()
	n, big, rounds = cfg["n"], cfg["big"], cfg["rounds"]

	tmp = tempfile.mkdtemp(prefix="popgate-uidl-bench-")
	first_users = ["first%d" % i for i in range(1, rounds + 1)]
	mig_users = ["mig%d" % i for i in range(1, rounds + 1)] if a.migration else []
	noop_users = ["noop%d" % i for i in range(1, cfg["sessions"] + 1)]
	users = {u: PASSWORD for u in first_users + mig_users + noop_users + ["direct", "big"]}
	dov = dovecot_mod.Dovecot(os.path.join(tmp, "dovecot"), ssl=False, users=users,
		extra="\ndefault_process_limit = 1000\ndefault_client_limit = 5000\n")
	pg = None
	try:
		if a.migration:	# fail now, not after building the mailboxes
			code, out = popgate_check_config(popgate_ini(tmp, dov.imap_port, 1,
				**popgate_opts(cfg, dov.pop3_port)), tmp)
			need(code == 0, "--migration: this popgate does not take the [migration] "
				"section:\n" + out)

		t0 = time.perf_counter()
		msgs = bench_messages(n, "bench")
		big_msgs = bench_messages(big, "big")
		small_msgs = bench_messages(SMALL_MAILBOX, "small")
		for u in first_users + mig_users + ["direct"]:
			maildir_fill(dov, u, msgs)
		maildir_fill(dov, "big", big_msgs)
		for u in noop_users:
			maildir_fill(dov, u, small_msgs)
		info["write_s"] = time.perf_counter() - t0
		info["files"] = n * (len(first_users) + len(mig_users) + 1) + big + \
			SMALL_MAILBOX * len(noop_users)
		dov.start()
		for u in first_users + mig_users + ["direct"]:
			warm_and_check(dov, u, msgs)
		for u in noop_users:
			warm_and_check(dov, u, small_msgs)
		info["warm_big_s"] = warm_and_check(dov, "big", big_msgs)
		print("mailboxes ready: %d files written in %.1f s, indexed; %.0f s so far" % (
			info["files"], info["write_s"], time.monotonic() - started), file=sys.stderr)

		# Dovecot's own POP3 first: its UIDLs are what popgate's must equal. Its sessions touch
		# neither popgate's cache nor the header fields Dovecot caches.
		native, native_uidls = native_pop3(dov, first_users, msgs)
		if mig_users:
			_, mig_native = native_pop3(dov, mig_users, msgs)
			native_uidls.update(mig_native)
		direct = imap_direct(dov, "direct", n)

		pg = start_popgate(os.path.join(tmp, "pg-first"), dov.imap_port, **popgate_opts(cfg))
		ph1 = first_and_repeat(pg, dov, first_users, msgs, native_uidls)
		pg.stop()
		pg = None
		print("phase 1 done (%.0f s)" % (time.monotonic() - started), file=sys.stderr)

		ph2 = None
		if mig_users:
			pg = start_popgate(os.path.join(tmp, "pg-migration"), dov.imap_port,
				**popgate_opts(cfg, dov.pop3_port))
			log_offset = os.path.getsize(dov.log_path)
			ph2 = first_and_repeat(pg, dov, mig_users, msgs, native_uidls)
			pg.stop()
			pg = None
			time.sleep(0.5)	# Dovecot's log process writes the last lines
			reads = old_server_reads(dov, log_offset, mig_users)
			need(all(x.count(n) == 1 for x in reads.values()), "--migration: popgate did not "
				"read TOP n 0 of all %d messages from the old server exactly once per user "
				"(TOPs per POP3 session in Dovecot's log: %r)" % (n, reads))
			ph2["old_server_sessions"] = sum(len(x) for x in reads.values())
			print("phase 2 (migration) done (%.0f s)" % (time.monotonic() - started),
				file=sys.stderr)

		pg = start_popgate(os.path.join(tmp, "pg-loop"), dov.imap_port, **popgate_opts(cfg))
		loop = loop_phase(pg, dov, cfg, noop_users, "big", big_msgs, a.noop_interval / 1000)
		pg.stop()
		pg = None
	except BaseException as e:
		if pg is not None:
			print("--- popgate log tail:\n" + pg.log_tail(), file=sys.stderr)
			pg.kill()
		print("--- dovecot log tail:\n" + dov.log_tail(), file=sys.stderr)
		dov.stop()
		shutil.rmtree(tmp, ignore_errors=True)
		if isinstance(e, BenchError):
			sys.exit("uidl_bench: FAILED: %s" % e)
		raise
	dov.stop()
	shutil.rmtree(tmp, ignore_errors=True)
	text = report(cfg, a, mach, info, ph1, native, ph2, direct, loop, started)
	sys.stdout.write(text)
	if a.out:
		with open(a.out, "w") as f:
			f.write(text)


if __name__ == "__main__":
	main()
