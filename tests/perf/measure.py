"""RETR throughput and idle-session memory of the popgate binary named by $POPGATE_BIN, so the
same command can be run before and after a change and the figures compared:

    POPGATE_BIN=build/popgate python3 tests/perf/measure.py [--json FILE]    (or: make measure)

(a) RETR of a ~100 MB message (75-char lines, every 997th starting with "."), popgate in front
    of the private Dovecot of tests/integration: one client, then 4 clients at once (aggregate);
    and, for scale, 1 client of Dovecot's own pop3 (the machine's noise, without popgate).
    MB/s = wire bytes of the answer (10^6 bytes) over the time from sending RETR to reading the
    final ".\\r\\n"; each answer is checked (length, sha256 of the dot-stuffed form). RUNS runs;
    also popgate's CPU seconds (user + system) per GB sent.
(b) popgate's PSS (summed over its processes) before and after SESSIONS logged-in idle POP3
    sessions (one user each, 7 small messages), plain, then POP3S in front of Dovecot's imaps:
    KiB per session = delta / SESSIONS. Pss_Anon likewise (see pss_kib()).

Runs as root (Dovecot is started as root, as in the integration tests); about a minute."""

import argparse
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
	"integration"))
import dovecot as dovecot_mod	# noqa: E402
import messages	# noqa: E402
from pop3client import stuff	# noqa: E402
from popgate import popgate_bin, start_popgate	# noqa: E402

MSG_SIZE = 100 * 10**6
RUNS = 5
CLIENTS = 4
SESSIONS = 300
PASSWORD = "measure-pass"
BIG_USERS = ["big%d" % i for i in range(1, CLIENTS + 1)]
IDLE_USERS = ["idle%d" % i for i in range(1, SESSIONS + 1)]
# The same config for every binary measured; info, not the tests' debug: a log line per
# command would be measured too.
POPGATE_OPTS = {"log.level": "info", "limits.max_per_address": SESSIONS + 10}

# The expected RETR answer's length and sha256; main() fills it in before the clients fork.
EXPECTED = {}


def maildir_put(dov, user, msgs):
	"""Writes msgs straight into user's maildir (new/, Dovecot gives them UIDs at the first
	SELECT): much faster than APPENDing 400 MB, and Dovecot keeps the CRLF file as it is."""
	md = os.path.join(dov.dir, "mail", user, "Maildir")
	for sub in ("", "cur", "new", "tmp"):
		os.makedirs(os.path.join(md, sub), exist_ok=True)
		os.chown(os.path.join(md, sub), dovecot_mod.MAIL_UID, dovecot_mod.MAIL_GID)
	for i, msg in enumerate(msgs):
		path = os.path.join(md, "new", "1700000000.M%dP%d.measure" % (i, i))
		with open(path, "wb") as f:
			f.write(msg)
		os.chown(path, dovecot_mod.MAIL_UID, dovecot_mod.MAIL_GID)


def check_upstream(dov, user, msgs):
	"""Dovecot sees the messages written behind its back, with their exact sizes."""
	m = dov.imap(user)
	try:
		typ, data = m.select("INBOX", readonly=True)
		assert typ == "OK" and int(data[0]) == len(msgs), (user, data)
		typ, data = m.fetch("1:*", "(RFC822.SIZE)")
		sizes = sorted(int(x.split(b"RFC822.SIZE ")[1].rstrip(b")")) for x in data)
		assert sizes == sorted(len(x) for x in msgs), (user, sizes)
	finally:
		m.logout()


def cmd(s, line):
	"""Sends a one-line command, returns its status line."""
	s.sendall(line.encode() + b"\r\n")
	buf = b""
	while not buf.endswith(b"\r\n"):
		chunk = s.recv(4096)
		assert chunk, "connection closed after %r" % line
		buf += chunk
	return buf


def login(port, user, ctx=None):
	s = socket.create_connection(("127.0.0.1", port), timeout=60)
	if ctx is not None:
		s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
	greeting = s.recv(4096)
	assert greeting.startswith(b"+OK"), greeting
	for line in ("USER " + user, "PASS " + PASSWORD):
		r = cmd(s, line)
		assert r.startswith(b"+OK"), (user, line.split()[0], r)
	return s


def retr_client(port, user, barrier, out):
	"""One client process: log in, wait for the others, RETR 1, time it, then check it. A
	process each, so that the clients do not share one GIL (the machine has 2 cores)."""
	s = login(port, user)
	length, digest = EXPECTED["len"], EXPECTED["sha256"]
	buf = bytearray(length + 65536)
	view = memoryview(buf)
	n = 0
	if barrier is not None:
		barrier.wait()
	t0 = time.monotonic()
	s.sendall(b"RETR 1\r\n")
	while n < 5 or buf[n - 5:n] != b"\r\n.\r\n":
		assert n < len(buf), "%s: the answer is longer than expected" % user
		got = s.recv_into(view[n:], min(1 << 20, len(buf) - n))
		assert got, "connection closed after %d bytes" % n
		n += got
	t1 = time.monotonic()
	cmd(s, "QUIT")
	s.close()
	status_end = buf.index(b"\r\n") + 2
	assert buf.startswith(b"+OK"), bytes(buf[:200])
	body = view[status_end:n - 3]	# without the status line and the final ".\r\n"
	assert len(body) == length, "%s: %d bytes, expected %d" % (user, len(body), length)
	assert hashlib.sha256(body).hexdigest() == digest, "%s: sha256 differs" % user
	out.put((t0, t1, n - status_end))


def retr_round(port, users):
	"""One round of len(users) simultaneous RETRs: aggregate MB/s from the first RETR sent to
	the last answer read."""
	ctx = multiprocessing.get_context("fork")
	barrier = ctx.Barrier(len(users)) if len(users) > 1 else None
	out = ctx.Queue()
	procs = [ctx.Process(target=retr_client, args=(port, u, barrier, out)) for u in users]
	for p in procs:
		p.start()
	res = []
	for p in procs:
		res.append(out.get(timeout=300))
	for p in procs:
		p.join(30)
		assert p.exitcode == 0, "a RETR client failed (exit %r)" % p.exitcode
	t0, t1 = min(r[0] for r in res), max(r[1] for r in res)
	return sum(r[2] for r in res) / (t1 - t0) / 1e6


def cpu_seconds(pg):
	"""User + system CPU time of popgate's processes so far (/proc/PID/stat)."""
	ticks = 0
	for pid in pg.pids():
		with open("/proc/%d/stat" % pid) as f:
			fields = f.read().rsplit(")", 1)[1].split()
		ticks += int(fields[11]) + int(fields[12])
	return ticks / os.sysconf("SC_CLK_TCK")


def retr_rounds(port, users, pg=None):
	"""RUNS rounds: min/median/max MB/s. With pg, also popgate's CPU seconds per GB sent, over
	all rounds: on a shared 2-core machine other load moves MB/s much more than it moves that."""
	cpu0 = pg and cpu_seconds(pg)
	mbps = [retr_round(port, users) for _ in range(RUNS)]
	out = {"runs": [round(v, 1) for v in mbps], "min": round(min(mbps), 1),
		"median": round(statistics.median(mbps), 1), "max": round(max(mbps), 1)}
	if pg:
		gb = RUNS * len(users) * EXPECTED["len"] / 1e9
		out["popgate_cpu_s_per_gb"] = round((cpu_seconds(pg) - cpu0) / gb, 3)
	return out


def pss_kib(pids):
	"""(Pss, Pss_Anon) in KiB summed over pids (smaps_rollup; a process that is gone counts
	nothing). Pss_Anon as well because Pss includes a share of the libraries' pages (libc,
	libcrypto), and that share shrinks as Dovecot starts a process per session that maps them
	too: the sessions would look cheaper. bench/run.py and bench/sessions.py use it too."""
	pss = anon = 0
	for pid in pids:
		try:
			with open("/proc/%d/smaps_rollup" % pid) as f:
				for line in f:
					if line.startswith("Pss:"):
						pss += int(line.split()[1])
					elif line.startswith("Pss_Anon:"):
						anon += int(line.split()[1])
		except OSError:
			pass
	return pss, anon


def idle_sessions(pg, port, ctx=None):
	"""PSS before and after SESSIONS logged-in idle sessions. One session logs in and leaves
	before the baseline: what the first login sets up once (the UIDL cache's SQLite, TLS
	state) is not per session."""
	login(port, "warm", ctx).close()
	time.sleep(0.5)
	before = pss_kib(pg.pids())
	with concurrent.futures.ThreadPoolExecutor(8) as ex:
		socks = list(ex.map(lambda u: login(port, u, ctx), IDLE_USERS))
	try:
		time.sleep(1)
		after = pss_kib(pg.pids())
	finally:
		for s in socks:
			s.close()
	return {"sessions": SESSIONS, "pss_before_kib": before[0], "pss_after_kib": after[0],
		"kib_per_session": round((after[0] - before[0]) / SESSIONS, 1),
		"pss_anon_before_kib": before[1], "pss_anon_after_kib": after[1],
		"anon_kib_per_session": round((after[1] - before[1]) / SESSIONS, 1)}


def main():
	ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	ap.add_argument("--json", metavar="FILE", help="also write the figures here as JSON")
	ap.add_argument("--no-tls", action="store_true", help="skip the POP3S idle sessions")
	ap.add_argument("--idle-only", action="store_true", help="skip RETR: idle-session memory "
		"only (a quick check while changing what a session holds)")
	a = ap.parse_args()
	binary = popgate_bin()
	if not binary:
		sys.exit("POPGATE_BIN must name the popgate executable to measure")
	# The load average says whether something else ran on the machine meanwhile.
	result = {"binary": binary, "loadavg_start": os.getloadavg()}
	t_start = time.monotonic()

	msg = messages.big("bench", 1000 if a.idle_only else MSG_SIZE)
	wire = stuff(messages.pop3_bytes(msg))
	EXPECTED.update(len=len(wire), sha256=hashlib.sha256(wire).hexdigest())
	result["message_bytes"], result["retr_wire_bytes"] = len(msg), len(wire)
	del wire
	seed = messages.build("idle", include_big=False)	# the 7 small seed messages

	tmp = tempfile.mkdtemp(prefix="popgate-measure-")
	users = {u: PASSWORD for u in BIG_USERS + IDLE_USERS + ["warm"]}
	# As test_soak: Dovecot's default process_limit (100) would queue 300 sessions' processes.
	dov = dovecot_mod.Dovecot(os.path.join(tmp, "dovecot"), ssl=True, users=users,
		extra="\ndefault_process_limit = 1000\ndefault_client_limit = 5000\n")
	pg = None
	try:
		for u in BIG_USERS:
			maildir_put(dov, u, [msg])
		for u in IDLE_USERS + ["warm"]:
			maildir_put(dov, u, seed)
		dov.start()
		check_upstream(dov, BIG_USERS[0], [msg])
		check_upstream(dov, "warm", seed)
		del msg

		if not a.idle_only:
			pg = start_popgate(os.path.join(tmp, "pg-retr"), dov.imap_port, **POPGATE_OPTS)
			retr_round(pg.port, BIG_USERS)	# untimed: the page cache, Dovecot's indexes
			result["retr_1_mbps"] = retr_rounds(pg.port, BIG_USERS[:1], pg)
			result["retr_%d_mbps" % CLIENTS] = retr_rounds(pg.port, BIG_USERS, pg)
			pg.stop()
			# The same RETR from Dovecot's own pop3: no popgate in it, so when this figure
			# moves between two measurements, the machine moved, not popgate.
			result["dovecot_pop3_1_mbps"] = retr_rounds(dov.pop3_port, BIG_USERS[:1])

		pg = start_popgate(os.path.join(tmp, "pg-idle"), dov.imap_port, **POPGATE_OPTS)
		result["idle_plain"] = idle_sessions(pg, pg.port)
		pg.stop()

		if not a.no_tls:
			tls_port = dovecot_mod.free_ports(1)[0]
			pg = start_popgate(os.path.join(tmp, "pg-tls"), dov.imaps_port, **POPGATE_OPTS, **{
				"server.listen_tls": "127.0.0.1:%d" % tls_port,
				"tls.cert_file": dov.certs["server.pem"], "tls.key_file": dov.certs["server.key"],
				"upstream.security": "tls", "upstream.ca_file": dov.certs["ca.pem"]})
			ctx = ssl.create_default_context(cafile=dov.certs["ca.pem"])
			result["idle_tls"] = idle_sessions(pg, tls_port, ctx)
			pg.stop()
		pg = None
	except BaseException:
		if pg is not None:
			print("--- popgate log tail:\n" + pg.log_tail(), file=sys.stderr)
			pg.kill()
		print("--- dovecot log tail:\n" + dov.log_tail(), file=sys.stderr)
		raise
	finally:
		dov.stop()
		shutil.rmtree(tmp, ignore_errors=True)
	result["seconds"] = round(time.monotonic() - t_start, 1)
	result["loadavg_end"] = os.getloadavg()

	print("popgate: %s   message: %d bytes   load average: %.2f at start, %.2f at end" % (
		binary, result["message_bytes"], result["loadavg_start"][0], result["loadavg_end"][0]))
	print("%-30s %8s %8s %8s %11s" % ("RETR, MB/s (10^6 B)", "min", "median", "max",
		"CPU s/GB"))
	for key, name in (("retr_1_mbps", "1 client"),
			("retr_%d_mbps" % CLIENTS, "%d clients, aggregate" % CLIENTS),
			("dovecot_pop3_1_mbps", "(Dovecot's own pop3, 1 client)")):
		if key not in result:
			continue
		r = result[key]
		cpu = r.get("popgate_cpu_s_per_gb")
		print("%-30s %8.1f %8.1f %8.1f %11s   runs %s" % (name, r["min"], r["median"], r["max"],
			"-" if cpu is None else "%.3f" % cpu, r["runs"]))
	for key in ("idle_plain", "idle_tls"):
		if key in result:
			r = result[key]
			print("idle sessions, %-5s PSS %6d -> %6d KiB for %d: %.1f KiB per session "
				"(Pss_Anon: %.1f)" % (key[5:], r["pss_before_kib"], r["pss_after_kib"],
				r["sessions"], r["kib_per_session"], r["anon_kib_per_session"]))
	print("(%.0f s)" % result["seconds"])
	if a.json:
		with open(a.json, "w") as f:
			json.dump(result, f, indent=1)
			f.write("\n")


if __name__ == "__main__":
	main()
