"""`make install`: the binary, the sample ini (never over one the operator changed; group
popgate when there is one), the systemd unit with the paths filled in, the man pages, the
README; PREFIX, SYSCONFDIR, MANDIR and DESTDIR honoured; the unit passes `systemd-analyze
verify`; the installed man pages render without a warning (groff's `man -l`, mandoc's lint)."""

import grp
import os
import re
import shutil
import stat
import subprocess

import pytest

from popgate import popgate_bin

pytestmark = pytest.mark.popgate_only

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_install(**var):
	"""Returns make's output."""
	"""make install with these variables, the binary under test's build directory as BUILD."""
	build = os.path.relpath(os.path.dirname(popgate_bin()), REPO)
	# -o: the binary under test as it is, never rebuilt here (a sanitizer build's objects
	# would be remade with the default flags)
	args = ["make", "-s", "-C", REPO, "install", "BUILD=%s" % build,
		"-o", "%s/popgate" % build]
	args += ["%s=%s" % kv for kv in var.items()]
	r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
		stderr=subprocess.STDOUT, timeout=300)
	assert r.returncode == 0, r.stdout.decode("utf-8", "replace")
	return r.stdout.decode("utf-8", "replace")


def test_destdir_stages_a_system_layout(tmp_path):
	root = str(tmp_path / "stage")
	out = make_install(DESTDIR=root, PREFIX="/usr", SYSCONFDIR="/etc",
		INI_GROUP="no-such-group-popgate")
	binary = os.path.join(root, "usr/sbin/popgate")
	assert os.stat(binary).st_mode & stat.S_IXUSR
	with open(binary, "rb") as a, open(popgate_bin(), "rb") as b:
		assert a.read() == b.read()
	ini = os.path.join(root, "etc/popgate/popgate.ini")
	assert stat.S_IMODE(os.stat(ini).st_mode) == 0o640
	# No such group here: root's, and the install says what to do.
	assert os.stat(ini).st_gid == os.getgid()
	assert "no group no-such-group-popgate here: chgrp it" in out, out
	for page in ("man8/popgate.8", "man5/popgate.ini.5"):
		with open(os.path.join(root, "usr/share/man", page)) as a, \
				open(os.path.join(REPO, "etc", os.path.basename(page))) as b:
			assert a.read() == b.read(), page
	with open(os.path.join(root, "usr/lib/systemd/system/popgate.service")) as f:
		unit = f.read()
	assert "ExecStart=/usr/sbin/popgate -c /etc/popgate/popgate.ini\n" in unit, unit
	assert "@" not in unit, unit
	assert os.path.exists(os.path.join(root, "usr/share/doc/popgate/README.md"))
	with open(os.path.join(root, "usr/lib/tmpfiles.d/popgate.conf")) as f:
		assert "d /var/lib/popgate 0750 popgate popgate -" in f.read()
	# An ini the operator changed is kept by the next install.
	with open(ini, "a") as f:
		f.write("; changed by the operator\n")
	make_install(DESTDIR=root, PREFIX="/usr", SYSCONFDIR="/etc")
	with open(ini) as f:
		assert f.read().endswith("; changed by the operator\n")


def test_the_installed_unit_verifies(tmp_path):
	if shutil.which("systemd-analyze") is None:
		pytest.skip("systemd-analyze is not installed")
	prefix = str(tmp_path / "usr")
	make_install(PREFIX=prefix, SYSCONFDIR=str(tmp_path / "etc"))
	unit = os.path.join(prefix, "lib/systemd/system/popgate.service")
	# It runs `man` for the unit's Documentation=man:popgate(8) man:popgate.ini(5): the
	# pages just installed must be the ones found.
	r = subprocess.run(["systemd-analyze", "verify", unit], stdin=subprocess.DEVNULL,
		stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
		env=dict(os.environ, MANPATH=os.path.join(prefix, "share/man")))
	out = r.stdout.decode("utf-8", "replace")
	assert r.returncode == 0 and "popgate.service" not in out, out
	# The binary it names runs (the sample ini names imap.example.net: it is to be edited).
	r = subprocess.run([os.path.join(prefix, "sbin/popgate"), "-V"], stdin=subprocess.DEVNULL,
		stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
	assert r.returncode == 0 and r.stdout.startswith(b"popgate "), r.stdout


def test_the_sample_ini_is_the_service_groups_when_it_exists(tmp_path):
	"""`popgate uidl` run as the service user reads the ini: with its group there, the sample
	is installed root:GROUP 0640 (here an existing group stands for popgate's)."""
	group = next(g.gr_name for g in grp.getgrall() if g.gr_gid != os.getgid())
	root = str(tmp_path / "stage")
	out = make_install(DESTDIR=root, PREFIX="/usr", SYSCONFDIR="/etc", INI_GROUP=group)
	ini = os.path.join(root, "etc/popgate/popgate.ini")
	st = os.stat(ini)
	assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == grp.getgrnam(group).gr_gid, out
	assert "0640, group %s" % group in out, out


def man(path):
	"""`man -l` of an installed page, 80 columns, with groff's warnings: (text, warnings)."""
	env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8")
	r = subprocess.run(["man", "--warnings", "-l", path], stdin=subprocess.DEVNULL,
		stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
	assert r.returncode == 0, r.stderr
	# man pipes through col -b when not on a terminal: plain text
	return r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("page,expect", [
	("man8/popgate.8", [r"POPGATE\(8\)", r"popgate . POP3-to-IMAP gateway",
		r"popgate \[-d\] -c file", r"uidl import csv", r"SIGHUP", r"shutdown_timeout",
		r"/run/popgate\.pid", r"popgate\.ini\(5\)"]),
	("man5/popgate.ini.5", [r"POPGATE\.INI\(5\)", r"popgate\.ini . popgate configuration file",
		r"trusted_proxies = cidr", r"\[upstream:domain\]", r"strip_domain = no",
		r"\[metrics\]", r"master = yes", r"pid_file = /run/popgate\.pid",
		r"facility = mail", r"retention_days = 400", r"popgate\(8\)"]),
])
def test_the_installed_man_pages_render_without_warnings(tmp_path, page, expect):
	if shutil.which("man") is None:
		pytest.skip("man is not installed")
	prefix = str(tmp_path / "usr")
	make_install(PREFIX=prefix, SYSCONFDIR=str(tmp_path / "etc"),
		MANDIR=str(tmp_path / "man"))
	path = os.path.join(str(tmp_path / "man"), page)
	text, warnings = man(path)
	assert warnings == "", warnings
	for e in expect:
		assert re.search(e, text), (e, text[:3000])
	# No line wider than the terminal, no mdoc macro left unrendered.
	assert max(len(line) for line in text.splitlines()) <= 80, text
	assert not re.search(r"^\.[A-Z][a-z] ", text, re.M), text
	if shutil.which("mandoc"):
		r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", path],
			stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
		# mandoc.db notes about other pages (dovecot(1)) are not this page's fault
		out = "\n".join(l for l in r.stdout.decode().splitlines() if "mandoc.db" not in l)
		assert out == "", out


def test_every_key_of_the_config_table_is_in_popgate_ini_5():
	"""gateway/config.c's table, etc/popgate.ini and popgate.ini(5) name the same keys: each
	key of the table has its entry (`key = ...`) in its section of the page."""
	if shutil.which("man") is None:
		pytest.skip("man is not installed")
	with open(os.path.join(REPO, "gateway/config.c")) as f:
		keys = re.findall(r'^\s*\{ "(\w+)", "(\w+)", K_', f.read(), re.M)
	assert len(keys) > 40, keys
	text, _ = man(os.path.join(REPO, "etc/popgate.ini.5"))
	sections = re.split(r"^   \[(\S+)\]$", text, flags=re.M)
	body = dict(zip(sections[1::2], sections[2::2]))
	missing = [(s, k) for s, k in keys if not re.search(r"^     (.*, )?%s =( |$)" % k,
		body.get(s, ""), re.M)]
	assert missing == [], missing
