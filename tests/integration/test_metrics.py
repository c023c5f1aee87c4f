"""[metrics] listen: Prometheus text over HTTP, summed over the workers. A known workload in
front of the real Dovecot gives exact counts (sessions, logins by outcome, commands by verb,
the latency histograms' counts, the UIDL cache's hits and misses, no errors); the gauge of open
sessions follows the sessions, comes back to 0 when they end, and is not left inflated by a
worker killed with SIGKILL; the text passes `promtool check metrics` (Debian's prometheus);
other paths and methods get 404/405; a draining process stops answering scrapes."""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

from helpers import assert_ok, assert_err, wait_until, worker_pids
from messages import pop3_bytes
from pop3client import Pop3Raw, unstuff
import dovecot as dovecot_mod
from popgate import start_popgate

pytestmark = pytest.mark.popgate_only

PROMTOOL = shutil.which("promtool")


def scrape_raw(port, method="GET", path="/metrics", timeout=10):
	"""(status, headers dict lower-cased, body text)."""
	c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
	try:
		c.request(method, path)
		r = c.getresponse()
		return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
	finally:
		c.close()


def parse(text):
	"""{series: value}, the series as written ('name{label="v"}' or 'name')."""
	out = {}
	for line in text.splitlines():
		if not line or line.startswith("#"):
			continue
		series, value = line.rsplit(" ", 1)
		out[series] = float(value)
	return out


def scrape(port):
	status, headers, body = scrape_raw(port)
	assert status == 200, (status, body)
	assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
	return parse(body)


def start(dovecot, tmp_path, workers):
	mport = dovecot_mod.free_ports(1)[0]
	pg = start_popgate(tmp_path, dovecot.imap_port, **{
		"server.workers": workers, "metrics.listen": "127.0.0.1:%d" % mport,
		"limits.auth_fail_delay_ms": 0, "limits.max_per_address": 1000})
	return pg, mport


def promtool_check(text, tmp_path):
	path = os.path.join(str(tmp_path), "scrape.txt")
	with open(path, "w") as f:
		f.write(text)
	with open(path, "rb") as f:
		r = subprocess.run([PROMTOOL, "check", "metrics"], stdin=f, stdout=subprocess.PIPE,
			stderr=subprocess.STDOUT, timeout=60)
	assert r.returncode == 0 and not r.stdout.strip(), "promtool check metrics:\n%s\n%s" % (
		r.stdout.decode(errors="replace"), text)


@pytest.mark.parametrize("workers", [2, 1])
def test_a_known_workload_gives_exact_counts(dovecot, tmp_path, workers):
	user, password, msgs = dovecot.fresh_user()
	n = len(msgs)
	pg, mport = start(dovecot, tmp_path, workers)
	try:
		# The harness's own connection (start_popgate() waits for a greeting) is a session:
		# counts are taken from here on, once it has ended.
		assert wait_until(lambda: scrape(mport)["popgate_sessions_active"] == 0, 5)
		m0 = scrape(mport)

		# 1: a whole poll, with the gauge seen while it is open
		with Pop3Raw("127.0.0.1", pg.port) as c:
			c.login(user, password)
			assert wait_until(lambda: scrape(mport)["popgate_sessions_active"] == 1, 5), \
				scrape(mport)
			assert c.cmd("STAT").startswith(b"+OK %d " % n)
			status, lines = c.cmd_multi("LIST")
			assert_ok(status) and len(lines) == n
			retrieved = 0
			for i in (1, 2):
				status, lines = c.cmd_multi("RETR %d" % i)
				assert_ok(status)
				assert unstuff(lines) == pop3_bytes(msgs[i - 1])
				retrieved += len(pop3_bytes(msgs[i - 1]))
			assert_ok(c.cmd("DELE 3"))
			assert_ok(c.quit())
		# 2, 3: two more logins; 4, 5: two wrong passwords (different ones: the same one
		# again would not be asked upstream)
		for _ in range(2):
			with Pop3Raw("127.0.0.1", pg.port) as c:
				c.login(user, password)
				assert_ok(c.quit())
		for wrong in ("wrong-1", "wrong-2"):
			with Pop3Raw("127.0.0.1", pg.port) as c:
				assert_ok(c.cmd("USER " + user))
				assert_err(c.cmd("PASS " + wrong))
				assert_ok(c.quit())

		assert wait_until(lambda: scrape(mport)["popgate_sessions_active"] == 0, 5), \
			scrape(mport)
		status, _, text = scrape_raw(mport)
		assert status == 200
		m = {k: v - m0.get(k, 0) if not k.endswith("_active") else v
			for k, v in parse(text).items()}
		assert m["popgate_sessions_total"] == 5
		assert m["popgate_logins_total"] == 3
		fails = {k: v for k, v in m.items() if k.startswith("popgate_login_failures_total")}
		assert fails['popgate_login_failures_total{reason="bad_credentials"}'] == 2, fails
		assert sum(fails.values()) == 2, fails
		cmds = {re.search(r'command="([^"]+)"', k).group(1): v for k, v in m.items()
			if k.startswith("popgate_pop3_commands_total")}
		want = dict.fromkeys(cmds, 0)
		want.update(USER=5, PASS=5, STAT=1, LIST=1, RETR=2, DELE=1, QUIT=5)
		assert cmds == want
		assert m["popgate_client_sent_bytes_total"] >= retrieved
		for h in ("popgate_upstream_connect_duration_seconds",
				"popgate_upstream_login_duration_seconds"):
			assert m[h + "_count"] == 5, h
			assert m[h + '_bucket{le="+Inf"}'] == 5, h
			assert 0 < m[h + "_sum"] < 5 * 10, h
		# The first login finds every message new to the cache; the next two, minus the one
		# deleted, all known.
		assert m["popgate_uidl_cache_misses_total"] == n, m
		assert m["popgate_uidl_cache_hits_total"] == 2 * (n - 1), m
		assert m["popgate_uidl_cache_errors_total"] == 0
		errors = {k: v for k, v in m.items() if k.startswith("popgate_errors_total")}
		assert errors and sum(errors.values()) == 0, errors

		if PROMTOOL:
			promtool_check(text, tmp_path)
	finally:
		pg.stop()


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) missing")
def test_promtool_accepts_the_text_with_every_family(dovecot, tmp_path):
	pg, mport = start(dovecot, tmp_path, 2)
	try:
		status, _, text = scrape_raw(mport)
		assert status == 200
		for fam in ("sessions_active", "sessions_total", "logins_total",
				"login_failures_total", "upstream_connect_duration_seconds",
				"upstream_login_duration_seconds", "pop3_commands_total",
				"client_sent_bytes_total", "uidl_cache_hits_total", "uidl_cache_misses_total",
				"uidl_cache_errors_total", "errors_total"):
			assert "# TYPE popgate_%s " % fam in text and "# HELP popgate_%s " % fam in text
		promtool_check(text, tmp_path)
	finally:
		pg.stop()


def test_failures_are_counted_by_reason_and_kind(dovecot, tmp_path):
	"""An upstream that is down, credentials that could never be sent, an unknown verb, an
	idle client; then plaintext refused by a second gateway."""
	mport, dead = dovecot_mod.free_ports(2)
	pg = start_popgate(tmp_path / "a", dead, **{"metrics.listen": "127.0.0.1:%d" % mport,
		"pop3.idle_timeout": 1})
	try:
		assert wait_until(lambda: scrape(mport)["popgate_sessions_active"] == 0, 5)
		m0 = scrape(mport)
		with Pop3Raw("127.0.0.1", pg.port) as c:
			assert_ok(c.cmd("USER someone"))
			assert c.cmd("PASS secret").startswith(b"-ERR [SYS/TEMP]")
			assert_ok(c.cmd("USER someone"))
			assert c.cmd("PASS").startswith(b"-ERR [AUTH]")
			assert_err(c.cmd("XYZZY"))
			assert_ok(c.quit())
		with Pop3Raw("127.0.0.1", pg.port, timeout=10) as c:	# says nothing: autologout
			assert b"inactivity" in c.readline()
		assert wait_until(lambda: scrape(mport)["popgate_sessions_active"] == 0, 5)
		m = scrape(mport)
		d = {k: v - m0.get(k, 0) for k, v in m.items()}
		assert d['popgate_login_failures_total{reason="upstream_unavailable"}'] == 1, d
		assert d['popgate_login_failures_total{reason="invalid_credentials"}'] == 1, d
		assert sum(v for k, v in d.items() if k.startswith("popgate_login_failures")) == 2
		assert d["popgate_logins_total"] == 0
		assert d['popgate_pop3_commands_total{command="other"}'] == 1, d
		assert d['popgate_errors_total{kind="upstream_connect"}'] >= 1, d
		assert d['popgate_errors_total{kind="client_timeout"}'] == 1, d
		# no upstream was ever ready: nothing to time
		assert m["popgate_upstream_connect_duration_seconds_count"] == 0
	finally:
		pg.stop()
	pg = start_popgate(tmp_path / "b", dovecot.imap_port, **{
		"metrics.listen": "127.0.0.1:%d" % mport, "pop3.allow_plaintext_auth": "no"})
	try:
		with Pop3Raw("127.0.0.1", pg.port) as c:
			assert_err(c.cmd("USER alice"))		# not an attempt yet: not counted
			assert_err(c.cmd("PASS secret"))
			assert_ok(c.quit())
		m = scrape(mport)
		assert m['popgate_login_failures_total{reason="plaintext_refused"}'] == 1, m
	finally:
		pg.stop()


def test_a_failed_client_tls_handshake_is_counted(dovecot, tmp_path):
	mport, tls_port = dovecot_mod.free_ports(2)
	pg = start_popgate(tmp_path, dovecot.imap_port, **{
		"metrics.listen": "127.0.0.1:%d" % mport, "server.listen_tls": "127.0.0.1:%d" % tls_port,
		"tls.cert_file": dovecot.certs["server.pem"], "tls.key_file": dovecot.certs["server.key"]})
	try:
		s = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
		s.sendall(b"USER alice\r\n" * 4)	# plaintext on the POP3S port
		try:
			while s.recv(4096):
				pass
		except OSError:
			pass
		s.close()
		assert wait_until(lambda: scrape(mport)[
			'popgate_errors_total{kind="tls_handshake"}'] == 1, 5), scrape(mport)
		assert scrape(mport)['popgate_errors_total{kind="client_io"}'] == 0
	finally:
		pg.stop()


def test_other_paths_and_methods_are_refused(dovecot, tmp_path):
	pg, mport = start(dovecot, tmp_path, 1)
	try:
		assert scrape_raw(mport, path="/")[0] == 404
		assert scrape_raw(mport, path="/metricsx")[0] == 404
		status, headers, _ = scrape_raw(mport, method="POST")
		assert status == 405 and "GET" in headers["allow"]
		assert scrape_raw(mport, path="/metrics?x=1")[0] == 200
		status, headers, body = scrape_raw(mport, method="HEAD")
		assert status == 200 and body == "" and int(headers["content-length"]) > 1000
		# A peer that connects and says nothing costs a few seconds, not a worker: a scrape
		# meanwhile is answered.
		idle = socket.create_connection(("127.0.0.1", mport))
		try:
			assert scrape_raw(mport)[0] == 200
		finally:
			idle.close()
		with Pop3Raw("127.0.0.1", pg.port) as c:	# POP3 still served alongside
			assert_ok(c.cmd("CAPA"))
			c.read_multiline()
	finally:
		pg.stop()


def test_a_killed_worker_does_not_leave_the_gauge_inflated(dovecot, tmp_path):
	pg, mport = start(dovecot, tmp_path, 2)
	conns = []
	try:
		pids = worker_pids(pg, 2)
		assert wait_until(lambda: scrape(mport)["popgate_sessions_active"] == 0, 5)
		base = scrape(mport)["popgate_sessions_total"]	# the harness's own connection
		# Sessions on both workers (the kernel spreads source ports over them); a session
		# begins when the greeting is sent.
		by = {}
		for _ in range(16):
			c = Pop3Raw("127.0.0.1", pg.port)
			conns.append(c)
			port = c.sock.getsockname()[1]
			w = wait_until(lambda: re.findall(r"connect client=127\.0\.0\.1 port=%d tls=no "
				r"worker=(\d+)" % port, pg.log()), 5)
			by.setdefault(int(w[-1]), []).append(c)
		assert sorted(by) == [1, 2], {w: len(cs) for w, cs in by.items()}
		assert wait_until(lambda: scrape(mport)["popgate_sessions_active"] == 16, 5), \
			scrape(mport)
		os.kill(pids[1], signal.SIGKILL)
		left = len(by[2])
		assert wait_until(lambda: scrape(mport)["popgate_sessions_active"] == left, 10), \
			(scrape(mport)["popgate_sessions_active"], left)
		# Counters keep what the dead worker counted.
		assert scrape(mport)["popgate_sessions_total"] == base + 16
		for c in by[2]:
			c.close()
		assert wait_until(lambda: scrape(mport)["popgate_sessions_active"] == 0, 10), \
			scrape(mport)
	finally:
		for c in conns:
			c.close()
		pg.stop()


def test_a_draining_process_stops_answering_scrapes(dovecot, tmp_path):
	user, password = "carol", dovecot.users["carol"]
	mport = dovecot_mod.free_ports(1)[0]
	pg = start_popgate(tmp_path, dovecot.imap_port, **{
		"metrics.listen": "127.0.0.1:%d" % mport, "server.shutdown_timeout": 30})
	try:
		c = Pop3Raw("127.0.0.1", pg.port)
		c.login(user, password)
		assert scrape(mport)["popgate_sessions_active"] == 1
		pg.proc.send_signal(signal.SIGTERM)

		def refused():
			try:
				scrape_raw(mport, timeout=2)
			except OSError:
				return True
			return False
		assert wait_until(refused, 5), "still answering scrapes while draining"
		assert c.cmd("STAT").startswith(b"+OK")	# the session goes on meanwhile
		assert_ok(c.quit())
	finally:
		pg.stop()
