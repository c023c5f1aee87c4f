"""`make install`: the binary, the sample ini (never over one the operator changed), the
systemd unit with the paths filled in, the README; PREFIX, SYSCONFDIR and DESTDIR honoured; the
unit passes `systemd-analyze verify`."""

import os
import shutil
import stat
import subprocess

import pytest

from popgate import popgate_bin

pytestmark = pytest.mark.popgate_only

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_install(**var):
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


def test_destdir_stages_a_system_layout(tmp_path):
	root = str(tmp_path / "stage")
	make_install(DESTDIR=root, PREFIX="/usr", SYSCONFDIR="/etc")
	binary = os.path.join(root, "usr/sbin/popgate")
	assert os.stat(binary).st_mode & stat.S_IXUSR
	with open(binary, "rb") as a, open(popgate_bin(), "rb") as b:
		assert a.read() == b.read()
	ini = os.path.join(root, "etc/popgate/popgate.ini")
	assert stat.S_IMODE(os.stat(ini).st_mode) == 0o640
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
	r = subprocess.run(["systemd-analyze", "verify", unit], stdin=subprocess.DEVNULL,
		stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
	out = r.stdout.decode("utf-8", "replace")
	assert r.returncode == 0 and "popgate.service" not in out, out
	# The binary it names runs (the sample ini names imap.example.net: it is to be edited).
	r = subprocess.run([os.path.join(prefix, "sbin/popgate"), "-V"], stdin=subprocess.DEVNULL,
		stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
	assert r.returncode == 0 and r.stdout.startswith(b"popgate "), r.stdout
