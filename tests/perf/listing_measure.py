#!/usr/bin/env python3
"""What a poll costs the upstream with the listing cache (CONDSTORE, README "A poll that costs
almost nothing upstream"): octets popgate read from and wrote to the IMAP server (the session
line's up_in= / up_out=) and the poll's time, for a mailbox of N messages (default 10,000):
the full listing, an unchanged poll (cached), a poll after one arrival (incremental), one
after a \\Seen flag change (the range FETCH that proves the count) and one after the user's
own DELE + QUIT through popgate (cached: QUIT stored the mailbox it left). Medians of ROUNDS
polls.

A private Dovecot (tests/integration/dovecot.py), the mailbox written into its maildir
(tests/perf/uidl_bench.py's maildir_fill), popgate from $POPGATE_BIN with one worker.
Usage: POPGATE_BIN=build/popgate python3 tests/perf/listing_measure.py [--n N] [--rounds R]"""

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import dovecot as dovecot_mod	# noqa: E402
from pop3client import Pop3Raw	# noqa: E402
from popgate import start_popgate	# noqa: E402
from uidl_bench import PASSWORD, bench_messages, maildir_fill, warm_and_check	# noqa: E402


def poll(pg, user):
	"""login, STAT, UIDL, QUIT: seconds, and the session line's (listing, up_in, up_out)."""
	before = len(session_lines(pg, user))
	t0 = time.perf_counter()
	with Pop3Raw("127.0.0.1", pg.port) as c:
		c.login(user, PASSWORD)
		c.cmd("STAT")
		status, _ = c.cmd_multi("UIDL")
		assert status.startswith(b"+OK"), status
		c.quit()
	dt = time.perf_counter() - t0
	deadline = time.monotonic() + 10
	while len(session_lines(pg, user)) <= before and time.monotonic() < deadline:
		time.sleep(0.02)
	line = session_lines(pg, user)[before]
	m = re.search(r"up_in=(\d+) up_out=(\d+) listing=(\w+)", line)
	return dt, m.group(3), int(m.group(1)), int(m.group(2))


def session_lines(pg, user):
	return [l for l in pg.log().splitlines() if " user=%s " % user in l and " up_in=" in l]


def main():
	ap = argparse.ArgumentParser()
	ap.add_argument("--n", type=int, default=10000)
	ap.add_argument("--rounds", type=int, default=5)
	a = ap.parse_args()
	tmp = tempfile.mkdtemp(prefix="popgate-listing-")
	dov = dovecot_mod.Dovecot(os.path.join(tmp, "dovecot"), ssl=False, users={"big": PASSWORD})
	pg = None
	try:
		msgs = bench_messages(a.n, "listing")
		maildir_fill(dov, "big", msgs)
		dov.start()
		warm_and_check(dov, "big", msgs)
		pg = start_popgate(os.path.join(tmp, "pg"), dov.imap_port, **{"log.level": os.environ.get("LOG_LEVEL", "info"),
			"server.workers": 1})
		poll(pg, "big")		# the worker learns CONDSTORE
		rows = {}

		def measure(what, change=None):
			got = []
			for _ in range(a.rounds):
				if change is not None:
					change()
				got.append(poll(pg, "big"))
			kinds = sorted(set(g[1] for g in got))
			rows[what] = (kinds, statistics.median(g[2] for g in got),
				statistics.median(g[3] for g in got), statistics.median(g[0] for g in got))

		def forget():	# the stored listing gone: every poll lists in full
			import sqlite3
			db = sqlite3.connect(os.path.join(tmp, "pg", "uidl.sqlite"))
			db.execute("DELETE FROM listing")
			db.commit()
			db.close()

		imap = dov.imap("big")
		imap.select("INBOX")
		seq = [0]

		def arrive():
			seq[0] += 1
			imap.append("INBOX", None, None, b"Message-ID: <m%d@x>\r\nSubject: x\r\n\r\nx\r\n"
				% seq[0])

		flags = [0]

		def flag():	# \Seen on and off: each one a change (HIGHESTMODSEQ moves)
			imap.uid("STORE", "1", "-FLAGS.SILENT" if flags[0] % 2 else "+FLAGS.SILENT",
				r"(\Seen)")
			flags[0] += 1

		def dele_quit():	# the user's own DELE of the last message + QUIT, through popgate
			with Pop3Raw("127.0.0.1", pg.port) as c:
				c.login("big", PASSWORD)
				n = int(c.cmd("STAT").split()[1])
				assert c.cmd("DELE %d" % n).startswith(b"+OK")
				assert c.quit().startswith(b"+OK")

		measure("full (no stored listing)", forget)
		poll(pg, "big")
		measure("unchanged")
		measure("one new message", arrive)
		measure("a flag changed", flag)
		measure("after our own DELE + QUIT", dele_quit)
		imap.logout()
		print("%d messages, medians of %d polls (login, STAT, UIDL, QUIT):" % (a.n, a.rounds))
		print("| poll | listing | upstream sent (octets) | popgate sent (octets) | poll ms |")
		print("|---|---|---:|---:|---:|")
		for what, (kinds, up_in, up_out, dt) in rows.items():
			print("| %s | %s | %d | %d | %.1f |" % (what, "/".join(kinds), up_in, up_out,
				dt * 1000))
	finally:
		if pg is not None:
			pg.stop()
		dov.stop()
		if not os.environ.get("KEEP"):
			shutil.rmtree(tmp, ignore_errors=True)
		else:
			print("kept", tmp)


if __name__ == "__main__":
	main()
