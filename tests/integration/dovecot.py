"""A private Dovecot on 127.0.0.1 for popgate's integration tests and its demo.

The one place that writes Dovecot configs: it fills etc/demo/dovecot.conf.in. Everything lives in
one directory (config, users file, maildirs, sockets, log, TLS files). Dovecot runs as root in the
foreground (`dovecot -F`), is stopped with SIGTERM on its PID, and has stdin from /dev/null and
stdout/stderr in its log file (otherwise it would hold the caller's pipes open).

Also a command line for tests/demo.sh:
    python3 tests/integration/dovecot.py config DIR --user demo:demo [--imap-port N] [--pop3-port N] [--ssl]
        writes DIR/dovecot.conf and DIR/users, prints shell assignments (IMAP_PORT=… POP3_PORT=…)
    python3 tests/integration/dovecot.py wait DIR      waits until its listeners answer
    python3 tests/integration/dovecot.py seed DIR USER PASSWORD [--big]   appends the seed messages
"""

import argparse
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import messages	# noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(REPO, "etc", "demo", "dovecot.conf.in")
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVECONF = shutil.which("doveconf") or "/usr/bin/doveconf"

MAIL_UID = pwd.getpwnam("nobody").pw_uid
MAIL_GID = grp.getgrnam("nogroup").gr_gid

# name -> password. carol's has a space, a quote, a backslash, an IMAP literal marker and UTF-8.
USERS = {
	"alice": "alice-secret-1",
	"bob": "bob pass 2",
	"carol": 'p a"ss\\{5}wörd',
	"empty": "empty-pass-4",
}


FRESH_POOL = 64	# fresh1..fresh64 are in the users file from the start, with empty mailboxes


def fresh_name(i):
	return "fresh%d" % i, "fresh pass %d" % i


def free_ports(n):
	"""n distinct free TCP ports on 127.0.0.1 (bound to port 0 and read back, then released)."""
	socks = []
	try:
		for _ in range(n):
			s = socket.socket()
			s.bind(("127.0.0.1", 0))
			socks.append(s)
		return [s.getsockname()[1] for s in socks]
	finally:
		for s in socks:
			s.close()


def make_certs(d):
	"""Test PKI in directory d: ca.pem (signs server.pem for 127.0.0.1 and localhost),
	wrong-ca.pem (unrelated CA), wronghost.pem (signed by ca.pem, for wrong.example only).
	EC P-256 keys: fast to make. Returns a dict of paths."""
	os.makedirs(d, exist_ok=True)
	p = {k: os.path.join(d, k) for k in (
		"ca.pem", "ca.key", "wrong-ca.pem", "wrong-ca.key", "server.pem", "server.key",
		"wronghost.pem", "wronghost.key")}
	if all(os.path.exists(v) for v in p.values()):
		return p
	ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

	def run(*args):
		r = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True)
		if r.returncode != 0:
			raise RuntimeError("openssl %s failed:\n%s%s" % (args[0], r.stdout, r.stderr))

	for ca, cn in (("ca", "popgate test CA"), ("wrong-ca", "popgate wrong CA")):
		run("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "3650",
		    "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
		    "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	for name, san in (("server", "IP:127.0.0.1,DNS:localhost"), ("wronghost", "DNS:wrong.example")):
		with open(os.path.join(d, name + ".ext"), "w") as f:
			f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
				"extendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % san)
		run("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
		run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
		    "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "3650",
		    "-extfile", name + ".ext", "-out", name + ".pem")
	return p


PENALTY_OFF = """service anvil {
  unix_listener anvil-auth-penalty {
    path = anvil-auth-penalty-off
  }
}"""


OAUTH2_PASSDB = """passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = %s
}"""

# Dovecot's oauth2 passdb settings (doc.dovecot.org, "Open Authentication v2.0 database"): an
# RFC 7662 introspection POST (token=...) whose JSON answer names the user and says "active".
OAUTH2_CONF = """introspection_mode = post
introspection_url = %s
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


def render_config(d, imap_port, pop3_port, imaps_port=0, ssl=False, cert=None, key=None,
		auth_penalty=False, extra="", oauth2_url=None):
	"""Dovecot config text for directory d (see etc/demo/dovecot.conf.in). extra: appended.
	oauth2_url: also offer XOAUTH2 and OAUTHBEARER, tokens checked by POSTing them to this
	introspection URL (the settings go to d/oauth2.conf.ext; write_setup() writes it)."""
	with open(TEMPLATE) as f:
		text = f.read()
	if ssl:
		ssl_settings = "ssl_cert = <%s\nssl_key = <%s\n" % (cert, key)
	else:
		ssl_settings = ""
		imaps_port = 0
	values = {
		"DIR": d,
		"INSTANCE": "%d-%d" % (os.getpid(), imap_port),
		"SSL": "yes" if ssl else "no",
		"SSL_SETTINGS": ssl_settings,
		"IMAP_PORT": str(imap_port),
		"IMAPS_PORT": str(imaps_port),
		"POP3_PORT": str(pop3_port),
		"AUTH_PENALTY": "" if auth_penalty else PENALTY_OFF,
		"AUTH_MECHANISMS": " xoauth2 oauthbearer" if oauth2_url else "",
		"OAUTH2_PASSDB": OAUTH2_PASSDB % os.path.join(d, "oauth2.conf.ext") if oauth2_url else "",
	}
	for k, v in values.items():
		text = text.replace("@%s@" % k, v)
	left = re.findall(r"@[A-Z_]+@", text)
	assert not left, "unfilled placeholders %r in %s" % (left, TEMPLATE)
	return text + extra


def users_line(name, password):
	for c in (":", "\n", "\r", "\0"):
		assert c not in name + password, "passwd-file cannot hold %r" % c
	return "%s:{PLAIN}%s::::::\n" % (name, password)


def write_setup(d, users, imap_port, pop3_port, imaps_port=0, ssl=False, **render_kw):
	"""Writes d/dovecot.conf and d/users (and the TLS files when ssl). Returns the config path."""
	os.makedirs(d, exist_ok=True)
	mail = os.path.join(d, "mail")	# mail processes chroot here, then run as nobody
	os.makedirs(mail, exist_ok=True)
	os.chown(mail, MAIL_UID, MAIL_GID)
	certs = make_certs(os.path.join(d, "tls")) if ssl else None
	conf = os.path.join(d, "dovecot.conf")
	with open(conf, "w") as f:
		f.write(render_config(d, imap_port, pop3_port, imaps_port, ssl,
			certs and certs["server.pem"], certs and certs["server.key"], **render_kw))
	if render_kw.get("oauth2_url"):
		with open(os.path.join(d, "oauth2.conf.ext"), "w") as f:
			f.write(OAUTH2_CONF % render_kw["oauth2_url"])
	write_users(d, users)
	return conf


def write_users(d, users):
	"""(Re)writes d/users and makes each user's home (in the mail chroot, owned by nobody)."""
	for u in users:
		home = os.path.join(d, "mail", u)
		if not os.path.isdir(home):
			os.mkdir(home, 0o700)
			os.chown(home, MAIL_UID, MAIL_GID)
	path = os.path.join(d, "users")
	with open(path + ".tmp", "w") as f:
		f.write("".join(users_line(u, p) for u, p in users.items()))
	os.replace(path + ".tmp", path)	# a new inode and mtime: a running Dovecot re-reads it


def wait_listening(port, proc=None, timeout=10.0, greeting=b"+OK", hello=b""):
	"""Waits until 127.0.0.1:port accepts and sends a greeting starting with `greeting`
	(after `hello` is sent: a PROXY protocol header, for a server behind a load balancer).
	Returns False on timeout or when proc has exited."""
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		if proc is not None and proc.poll() is not None:
			return False
		try:
			with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
				if hello:
					s.sendall(hello)
				if s.recv(100).startswith(greeting):
					return True
		except OSError:
			pass
		time.sleep(0.05)
	return False


def imap_login(port, user, password, host="127.0.0.1"):
	"""A logged-in imaplib connection (AUTHENTICATE PLAIN: works for any UTF-8 password)."""
	m = imaplib.IMAP4(host, port, timeout=60)
	blob = b"\0" + user.encode("utf-8") + b"\0" + password.encode("utf-8")
	m.authenticate("PLAIN", lambda _: blob)
	return m


def seed_mailbox(imap_port, user, password, include_big=True, msgs=None):
	"""APPENDs the seed messages (or `msgs`) to user's INBOX on the real Dovecot; checks that each
	got the next UID and that RFC822.SIZE equals its length. Returns the message bytes in mailbox
	order (the whole INBOX: it must be empty before)."""
	if msgs is None:
		msgs = messages.build(user, include_big)
	m = imap_login(imap_port, user, password)
	try:
		typ, data = m.select("INBOX")
		assert typ == "OK" and int(data[0]) == 0, "INBOX of %s is not empty: %r" % (user, data)
		for msg in msgs:
			typ, data = m.append("INBOX", None, None, msg)
			assert typ == "OK", "APPEND for %s failed: %r" % (user, data)
		m.select("INBOX")
		typ, data = m.fetch("1:*", "(RFC822.SIZE)")
		sizes = [int(x.split(b"RFC822.SIZE ")[1].rstrip(b")")) for x in data]
		assert sizes == [len(x) for x in msgs], "upstream sizes %r != seeded %r" % (
			sizes, [len(x) for x in msgs])
		m.logout()
	finally:
		try:
			m.shutdown()
		except OSError:
			pass
	return msgs


class Dovecot:
	"""A private Dovecot in directory d. ssl=True: STARTTLS on imap, an imaps listener and STLS
	on pop3, with the test CA (self.certs); ssl=False: plain only (imaps_port is 0).
	auth_penalty=True keeps Dovecot's delay after failed logins; extra: config text appended;
	oauth2_url: XOAUTH2 and OAUTHBEARER too, tokens checked at this introspection URL."""

	serves_imap = True

	def __init__(self, d, ssl=True, users=None, auth_penalty=False, extra="", oauth2_url=None):
		self.dir = d
		self.ssl = ssl
		self.users = dict(USERS if users is None else users)
		self.users.update(fresh_name(i) for i in range(1, FRESH_POOL + 1))
		self.imap_port, self.imaps_port, self.pop3_port = free_ports(3)
		if not ssl:
			self.imaps_port = 0
		self.conf = write_setup(d, self.users, self.imap_port, self.pop3_port, self.imaps_port, ssl,
			auth_penalty=auth_penalty, extra=extra, oauth2_url=oauth2_url)
		self.certs = make_certs(os.path.join(d, "tls")) if ssl else None
		self.log_path = os.path.join(d, "dovecot.log")
		self.proc = None
		self._fresh = 0

	def start(self):
		with open(self.log_path, "ab") as log:
			self.proc = subprocess.Popen([DOVECOT, "-c", self.conf, "-F"], stdin=subprocess.DEVNULL,
				stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
		ok = (not self.serves_imap or wait_listening(self.imap_port, self.proc,
			greeting=b"* OK")) and wait_listening(self.pop3_port, self.proc)
		if not ok:
			self.stop()
			r = subprocess.run([DOVECONF, "-c", self.conf, "-n"], capture_output=True, text=True)
			raise RuntimeError("Dovecot did not start (exit %r)\n--- doveconf -n errors:\n%s\n"
				"--- log tail:\n%s" % (self.proc.returncode, r.stderr, self.log_tail()))
		return self

	def stop(self):
		"""SIGTERM to its PID, then wait (SIGKILL after 10 s). Returns its exit code."""
		if self.proc is None or self.proc.poll() is not None:
			return self.proc and self.proc.returncode
		self.proc.send_signal(signal.SIGTERM)
		try:
			return self.proc.wait(10)
		except subprocess.TimeoutExpired:
			self.proc.kill()
			return self.proc.wait(5)

	def __enter__(self):
		return self.start()

	def __exit__(self, *exc):
		self.stop()

	def log_tail(self, n=40):
		try:
			with open(self.log_path, errors="replace") as f:
				return "".join(f.readlines()[-n:])
		except OSError as e:
			return "(no log: %s)" % e

	def add_user(self, name, password):
		"""Adds a user to the passwd-file (or changes the password of one). Dovecot re-reads it at most once a second: a login in
		the next second may not see the user yet (fresh_user() does not have that problem)."""
		self.users[name] = password
		write_users(self.dir, self.users)

	def fresh_user(self, include_big=False, seed=True):
		"""A user no one has used yet (from the pool in the users file), its mailbox seeded:
		(name, password, message bytes)."""
		self._fresh += 1
		name, password = fresh_name(self._fresh)
		if name not in self.users:	# pool used up: add one, wait until Dovecot sees it
			self.add_user(name, password)
			deadline = time.monotonic() + 3
			while True:
				try:
					imap_login(self.imap_port, name, password).logout()
					break
				except imaplib.IMAP4.error:
					if time.monotonic() > deadline:
						raise
					time.sleep(0.2)
		msgs = self.seed_mailbox(name, include_big) if seed else []
		return name, password, msgs

	def imap(self, user="alice", password=None):
		"""A logged-in imaplib connection to this Dovecot (plain IMAP)."""
		return imap_login(self.imap_port, user, self.users[user] if password is None else password)

	def seed_mailbox(self, user, include_big=True, msgs=None):
		return seed_mailbox(self.imap_port, user, self.users[user], include_big, msgs)


# What makes a Dovecot the "old POP3 server" of a live UIDL migration (OldPop3): appended to
# the template's config, where a setting given again replaces the first one.
OLD_POP3 = """
# --- The old POP3 server of a migration: POP3 only, on the maildirs of the Dovecot in
# %(imap_dir)s. Its UIDLs are the maildir file names (the base name, without the :2,flags info),
# unlike anything popgate derives. dovecot-uidlist and dovecot-keywords (the control files, in
# the maildir) are shared with the IMAP Dovecot: both give a message the same UID, under the
# uidlist's own lock, as two Dovecot servers on one shared maildir do. The index files are this
# server's own (INDEX=, outside ~/Maildir so that a test's rebuild leaves them stale, which
# Dovecot notices and repairs): indexes are a cache, not shared between the two.
protocols = pop3
mail_chroot = %(imap_dir)s/mail
mail_location = maildir:~/Maildir:INDEX=~/old-pop3-index
pop3_uidl_format = %%f
"""


class OldPop3(Dovecot):
	"""A second Dovecot serving only POP3 (.pop3_port) on the maildirs of `imap` (a Dovecot, not
	necessarily started yet), its UIDLs the maildir file names: the old POP3 server that
	popgate's [migration] reads. The same users and passwords as `imap` has now, but in a
	passwd-file of its own: add_user() changes a password here only. Its own base_dir, state,
	log and index files. stop() and start() again: the same port, the same UIDLs."""

	serves_imap = False

	def __init__(self, d, imap, ssl=False):
		self.imap_dovecot = imap
		super().__init__(d, ssl=ssl, users=imap.users, extra=OLD_POP3 % {"imap_dir": imap.dir})
		self.imap_port = None	# it has an imap listener in its config, never started
		self.mail_dir = os.path.join(imap.dir, "mail")

	def maildir_names(self, user):
		"""The base names (up to the ":2," info) of the files in user's INBOX maildir."""
		md = os.path.join(self.mail_dir, user, "Maildir")
		return sorted(f.split(":", 1)[0] for sub in ("new", "cur")
			for f in os.listdir(os.path.join(md, sub)))

	def imap(self, user="alice", password=None):
		raise AssertionError("the old POP3 server has no IMAP; use its imap_dovecot")

	def seed_mailbox(self, user, include_big=True, msgs=None):
		raise AssertionError("the old POP3 server has no IMAP; seed its imap_dovecot")

	def fresh_user(self, include_big=False, seed=True):
		raise AssertionError("take fresh users from the IMAP Dovecot")


# What makes a Dovecot a POP3 server over the imapc backend (ImapcPop3): its mailboxes are those
# of another IMAP server, read over IMAP (Dovecot 2.3 imapc: mail_location = imapc:, imapc_host,
# imapc_port, imapc_user/password). rfc822.size and fetch-headers: sizes and headers from FETCH,
# not from downloading whole messages. Appended to the template: a setting given again wins.
IMAPC_POP3 = """
# --- POP3 over imapc: the mailboxes are those of the IMAP server on 127.0.0.1:%(imap_port)d.
protocols = pop3
mail_location = imapc:~/imapc
imapc_host = 127.0.0.1
imapc_port = %(imap_port)d
imapc_user = %%u
imapc_password = %(password)s
imapc_features = rfc822.size fetch-headers
"""


class ImapcPop3(Dovecot):
	"""A second Dovecot serving only POP3 (.pop3_port) whose mail storage is imapc: every user's
	INBOX is read over IMAP from 127.0.0.1:imap_port, logging in as the same user with
	`password` (every user of such a setup has the same one). Its own passwd-file (users),
	base_dir, log and imapc index files; no maildirs of its own."""

	serves_imap = False

	def __init__(self, d, imap_port, users, password, extra=""):
		assert all(p == password for p in users.values()), "imapc logs in with one password"
		super().__init__(d, ssl=False, users=users, extra=IMAPC_POP3 % {
			"imap_port": imap_port, "password": password} + extra)
		self.imap_port = None	# it has an imap listener in its config, never started
		self.upstream_port = imap_port

	def imap(self, user="alice", password=None):
		raise AssertionError("a POP3-over-imapc Dovecot has no IMAP of its own")

	def seed_mailbox(self, user, include_big=True, msgs=None):
		raise AssertionError("seed the IMAP server it reads")

	def fresh_user(self, include_big=False, seed=True):
		raise AssertionError("take fresh users from the IMAP server it reads")


def _main(argv):
	ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	sub = ap.add_subparsers(dest="cmd", required=True)
	c = sub.add_parser("config")
	c.add_argument("dir")
	c.add_argument("--user", action="append", default=[], help="NAME:PASSWORD")
	c.add_argument("--imap-port", type=int, default=0, help="0: a free one")
	c.add_argument("--pop3-port", type=int, default=0, help="0: a free one")
	c.add_argument("--ssl", action="store_true")
	w = sub.add_parser("wait")
	w.add_argument("dir")
	w.add_argument("--timeout", type=float, default=10)
	s = sub.add_parser("seed")
	s.add_argument("dir")
	s.add_argument("user")
	s.add_argument("password")
	s.add_argument("--big", action="store_true", help="also the 20 MB message")
	a = ap.parse_args(argv)
	d = os.path.abspath(a.dir)
	portfile = os.path.join(d, "ports")
	if a.cmd == "config":
		users = dict(u.split(":", 1) for u in a.user) or {"demo": "demo"}
		imap_port, pop3_port, imaps_port = free_ports(3)
		imap_port = a.imap_port or imap_port
		pop3_port = a.pop3_port or pop3_port
		write_setup(d, users, imap_port, pop3_port, imaps_port if a.ssl else 0, a.ssl)
		out = "IMAP_PORT=%d\nPOP3_PORT=%d\nIMAPS_PORT=%d\n" % (imap_port, pop3_port,
			imaps_port if a.ssl else 0)
		with open(portfile, "w") as f:
			f.write(out)
		sys.stdout.write(out)
		return 0
	ports = dict(line.split("=") for line in open(portfile).read().split())
	if a.cmd == "wait":
		ok = wait_listening(int(ports["IMAP_PORT"]), timeout=a.timeout, greeting=b"* OK") and \
			wait_listening(int(ports["POP3_PORT"]), timeout=a.timeout)
		return 0 if ok else 1
	if a.cmd == "seed":
		msgs = seed_mailbox(int(ports["IMAP_PORT"]), a.user, a.password, a.big)
		print("seeded %d messages for %s" % (len(msgs), a.user))
		return 0
	return 2


if __name__ == "__main__":
	sys.exit(_main(sys.argv[1:]))
