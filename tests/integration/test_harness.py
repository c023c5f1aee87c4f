"""The harness itself: the stand-in upstream's TLS setup that later tests rely on (test CA, wrong
CA, a Dovecot without STARTTLS), the ini the popgate fixture writes, `popgate -t`, and
`popgate -V`."""

import imaplib
import re
import socket
import sqlite3
import ssl
import subprocess

import pytest

from popgate import popgate_bin, popgate_check_config, popgate_ini


def tls_context(cafile):
	ctx = ssl.create_default_context(cafile=cafile)
	ctx.check_hostname = True
	return ctx


def test_dovecot_tls_verifies_with_the_test_ca_only(dovecot):
	ca, wrong = dovecot.certs["ca.pem"], dovecot.certs["wrong-ca.pem"]
	m = imaplib.IMAP4_SSL("127.0.0.1", dovecot.imaps_port, ssl_context=tls_context(ca))
	m.logout()
	m = imaplib.IMAP4("127.0.0.1", dovecot.imap_port)
	assert "STARTTLS" in m.capabilities
	m.starttls(tls_context(ca))
	m.authenticate("PLAIN", lambda _: b"\0alice\0" + dovecot.users["alice"].encode())
	m.logout()
	with pytest.raises(ssl.SSLCertVerificationError):
		imaplib.IMAP4_SSL("127.0.0.1", dovecot.imaps_port, ssl_context=tls_context(wrong))
	# A certificate from the right CA for another name fails host name checks.
	ctx = tls_context(ca)
	with socket.create_connection(("127.0.0.1", dovecot.imaps_port)) as s:
		with pytest.raises(ssl.SSLCertVerificationError):
			ctx.wrap_socket(s, server_hostname="wrong.example")


def test_dovecot_without_tls_starts_and_offers_no_starttls(make_dovecot):
	d = make_dovecot(ssl=False)
	assert d.imaps_port == 0 and d.certs is None
	m = imaplib.IMAP4("127.0.0.1", d.imap_port)
	assert "STARTTLS" not in m.capabilities
	m.logout()
	d.seed_mailbox("bob", include_big=False)
	m = d.imap("bob")
	assert int(m.select("INBOX")[1][0]) == 7
	m.logout()


def test_popgate_ini_overrides(tmp_path):
	ini = popgate_ini(tmp_path, 1143, 1110, **{"upstream.security": "tls",
		"upstream.ca_file": "/x/ca.pem", "log.level": None, "limits.max_sessions": 5})
	assert "listen = 127.0.0.1:1110\n" in ini
	assert "port = 1143\n" in ini
	assert "security = tls\n" in ini and "ca_file = /x/ca.pem\n" in ini
	assert "level =" not in ini
	assert "[limits]\nmax_sessions = 5\n" in ini


@pytest.mark.popgate_only
def test_popgate_check_config_accepts_the_harness_ini(dovecot, tmp_path):
	code, out = popgate_check_config(popgate_ini(tmp_path, dovecot.imap_port, 1110))
	assert code == 0, out


@pytest.mark.popgate_only
def test_popgate_check_config_names_the_line_of_a_mistake(dovecot, tmp_path):
	ini = popgate_ini(tmp_path, dovecot.imap_port, 1110, **{"upstream.security": "sometimes"})
	code, out = popgate_check_config(ini)
	assert code != 0
	line = ini.splitlines().index("security = sometimes") + 1
	assert ":%d:" % line in out, out


@pytest.mark.popgate_only
def test_an_indented_line_continues_the_value_above(dovecot, tmp_path):
	"""inih's multi-line values: a listen list may go on over indented lines, even one that
	starts with '[' (an IPv6 address); it is no section header."""
	ini = popgate_ini(tmp_path, dovecot.imap_port, 1110).replace(
		"listen = 127.0.0.1:1110\n", "listen = 127.0.0.1:1110,\n  [::1]:1110\n")
	assert "  [::1]:1110\n" in ini
	code, out = popgate_check_config(ini)
	assert code == 0, out


@pytest.mark.popgate_only
@pytest.mark.parametrize("key", ["cache.path", "tls.cert_file", "upstream.ca_file"])
def test_a_relative_path_is_refused(dovecot, tmp_path, key):
	"""popgate runs from / under -d and systemd: a relative file would be another file there."""
	ini = popgate_ini(tmp_path, dovecot.imap_port, 1110, **{key: "relative/file.pem"})
	code, out = popgate_check_config(ini)
	section, _, name = key.partition(".")
	assert code == 1 and "[%s] %s: \"relative/file.pem\" must be an absolute path" % (
		section, name) in out, out


@pytest.mark.popgate_only
def test_popgate_version_names_each_library():
	"""-V needs no configuration, exits 0, names popgate's version and each library; the
	OpenSSL and SQLite it runs with are the ones this Python loads (the same system libraries)."""
	r = subprocess.run([popgate_bin(), "-V"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
		stderr=subprocess.PIPE, timeout=30)
	out = r.stdout.decode()
	assert r.returncode == 0 and r.stderr == b"", (r.returncode, out, r.stderr)
	lines = out.splitlines()
	assert re.fullmatch(r"popgate \d+\.\d+\.\d+", lines[0]), lines
	assert lines[1].startswith("OpenSSL: built with OpenSSL 3."), lines
	assert lines[1].endswith(", running " + ssl.OPENSSL_VERSION), (lines[1], ssl.OPENSSL_VERSION)
	assert re.fullmatch(r"SQLite: built with 3\.\d+\.\d+, running %s" %
		re.escape(sqlite3.sqlite_version), lines[2]), lines
	assert re.fullmatch(r"libev: built with 4\.\d+, running 4\.\d+", lines[3]), lines
	assert lines[4].startswith("inih"), lines
	assert len(lines) == 5, lines
	# and -h says so
	h = subprocess.run([popgate_bin(), "-h"], stdout=subprocess.PIPE, timeout=30)
	assert h.returncode == 0 and b"popgate -V" in h.stdout and b"  -V " in h.stdout, h.stdout
