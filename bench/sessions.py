"""`make bench` (its last part): N POP3 sessions logged in through popgate and held idle at
once, on this machine, with no error; popgate's memory per session. Appends its section to
the report named by --append (bench/RESULTS.md), or prints it.

    POPGATE_BIN=build/popgate POPBENCH_BIN=build/popbench python3 bench/sessions.py [-n N]
        [--append FILE] [--smoke]

Set-up: a private Dovecot (tests/integration/dovecot.py) with N users of 2 small messages,
written straight into maildir cur/ (no warm-up: each first login builds its index, as on a
migrated store). Its imap service holds 100 sessions per process (service_count = 0, client_limit = 100): N sessions
as N processes of ~900 KiB each would be ~9 GB for the store alone, which an ISP spreads over
a cluster. popgate runs `[server] workers = 2` (one per CPU here), each with max_sessions
6,000: a process may hold 20,000 descriptors on this machine (hard limit, even for root) and a
session needs 2, so 10,000 sessions need two processes. popbench `idle` holds them (one
process, 10,000 descriptors, 64 logins in flight). While they are held: PSS of popgate's
processes (/proc/PID/smaps_rollup) against its PSS before, one more full poll through popgate
(it must still work), and the spread over the workers (session lines carry worker=N). Then
every session QUITs. Fails (exit 1) if any session failed; never for a figure.
Runs as root (Dovecot is started as root, as in the integration tests)."""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tests", "perf"))
import dovecot as dovecot_mod	# noqa: E402
from popgate import popgate_bin, start_popgate	# noqa: E402
from uidl_bench import PASSWORD, bench_messages, maildir_fill	# noqa: E402
from run import BenchError, Held, need, pss_kib, popbench, popbench_bin, machine	# noqa: E402

STORE = """
default_process_limit = 2000
default_client_limit = 40000
default_vsz_limit = 1G
service imap-login {
  service_count = 0
  process_min_avail = %(cpus)d
}
service imap {
  # service_count = 1 (the default) would end a process after one session, whatever
  # client_limit says: 100 sessions each, for as long as they last.
  service_count = 0
  client_limit = 100
  process_limit = 400
}
""" % {"cpus": os.cpu_count() or 1}
USER = "sess%05d"


def held_sessions(pg, port, n):
	"""n sessions logged in and held; figures taken while they are."""
	before = pss_kib(pg.pids())
	with Held(port, n, USER, "popgate") as h:
		time.sleep(2.0)
		after = pss_kib(pg.pids())
		# One more user's full poll while they are held (a user of its own: [IN-USE]).
		probe = popbench("poll", port, "-c", 1, "-n", 1, "-u", "probe%d", "-N", 1, "-l", "probe")[0]
		res = {"sessions": n, "login_s": h.login_s, "processes": len(pg.pids()),
			"pss_before_kib": before[0], "pss_after_kib": after[0],
			"kib_per_session": round((after[0] - before[0]) / n, 1),
			"anon_kib_per_session": round((after[1] - before[1]) / n, 1),
			"probe_ok": probe["ok"] == 1 and probe["errors"] == 0}
	return res


def worker_spread(pg, n, timeout=120):
	"""The held sessions per worker, from their session lines (" worker=N user=sess..."),
	once all n are written (each session writes its line as it ends, after its QUIT)."""
	deadline = time.monotonic() + timeout
	while True:
		spread = {}
		for m in re.finditer(r" worker=(\d+) user=sess\d+ ", pg.log()):
			spread[m.group(1)] = spread.get(m.group(1), 0) + 1
		if sum(spread.values()) >= n or time.monotonic() > deadline:
			return spread
		time.sleep(0.5)


def report(res, mach, n):
	L = ["", "## %s sessions held at once (bench/sessions.py)" % format(n, ","), ""]
	L.append("popgate with `[server] workers = 2`, in front of a private Dovecot (imap "
		"`client_limit = 100`); %s users of 2 messages, first logins (each builds its index). "
		"%s; Dovecot %s; popgate tree %s." % (format(n, ","), mach["cpu"], mach["dovecot"],
		mach["tree"]))
	L.append("")
	L.append("| figure | value |")
	L.append("|---|---:|")
	L.append("| sessions logged in and held, errors | %s, 0 |" % format(res["sessions"], ","))
	L.append("| time to log all of them in (64 at a time), s | %.1f |" % res["login_s"])
	L.append("| popgate processes (master + workers) | %d |" % res["processes"])
	L.append("| logins per worker | %s |" % ", ".join("worker %s: %d" % kv for kv in
		sorted(res["spread"].items())))
	L.append("| popgate PSS before → while held, MiB | %.1f → %.1f |" % (
		res["pss_before_kib"] / 1024, res["pss_after_kib"] / 1024))
	L.append("| popgate memory per held session, KiB PSS (Pss_Anon) | %.1f (%.1f) |" % (
		res["kib_per_session"], res["anon_kib_per_session"]))
	L.append("| one more full poll while they are held | %s |" % (
		"worked" if res["probe_ok"] else "FAILED"))
	L.append("")
	L.append("```")
	L.append(json.dumps(res, sort_keys=True))
	L.append("```")
	return "\n".join(L) + "\n"


def main():
	ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	ap.add_argument("-n", type=int, default=10000, help="sessions (default 10000)")
	ap.add_argument("--smoke", action="store_true", help="100 sessions, no report")
	ap.add_argument("--append", metavar="FILE", help="append the Markdown section here")
	a = ap.parse_args()
	n = 100 if a.smoke else a.n
	need(popgate_bin(), "POPGATE_BIN must name the popgate executable")
	popbench_bin()
	started = time.monotonic()
	tmp = tempfile.mkdtemp(prefix="popgate-sessions-")
	users = {USER % i: PASSWORD for i in range(1, n + 1)}
	users["probe1"] = PASSWORD
	dov = dovecot_mod.Dovecot(os.path.join(tmp, "dovecot"), ssl=False, users=users, extra=STORE)
	pg = None
	try:
		msgs = bench_messages(2, "sess")
		for u in users:
			maildir_fill(dov, u, msgs)
		dov.start()
		pg = start_popgate(os.path.join(tmp, "pg"), dov.imap_port, **{
			"server.workers": 2, "limits.max_sessions": 6000,
			"limits.max_per_address": n + 100, "log.level": "info",
			"cache.path": os.path.join(tmp, "uidl.sqlite")})
		popbench("poll", pg.port, "-c", 1, "-n", 2, "-u", "probe%d", "-N", 1)	# warm
		res = held_sessions(pg, pg.port, n)
		res["released_errors"] = 0	# Held says so, or fails
		res["spread"] = worker_spread(pg, n)
		need(sum(res["spread"].values()) == n, "session lines: %r" % res["spread"])
		res["seconds"] = round(time.monotonic() - started, 1)
		print(json.dumps(res, sort_keys=True), file=sys.stderr, flush=True)
	except BaseException as e:
		if pg is not None:
			print("--- popgate log tail:\n" + pg.log_tail(), file=sys.stderr)
		print("--- dovecot log tail:\n" + dov.log_tail(), file=sys.stderr)
		if isinstance(e, BenchError):
			sys.exit("bench sessions: FAILED: %s" % e)
		raise
	finally:
		if pg is not None:
			pg.stop()
		dov.stop()
		shutil.rmtree(tmp, ignore_errors=True)
	if a.smoke:
		print("bench-smoke: %d sessions held and released (%.0f s)" % (n, res["seconds"]))
		return
	text = report(res, machine(), n)
	sys.stdout.write(text)
	if a.append:
		with open(a.append, "a") as f:
			f.write(text)


if __name__ == "__main__":
	main()
