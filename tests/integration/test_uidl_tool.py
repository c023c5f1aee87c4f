"""The offline UIDL tools: `popgate -c FILE uidl import|export|stats|forget` (gateway/uidl_tool.c).

An ISP moving from an old POP3 store exports what its clients know, user, UIDL, Message-ID and
size per message, and imports it before its users reach popgate; at each user's first login
popgate gives every message the UIDL the old server gave it, so no client downloads its mailbox
again. Real Dovecot, popgate running with its own cache while the tool works on the file."""

import csv
import email.parser
import hashlib
import io
import os
import pwd
import random
import re
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

from helpers import add_duplicate_of_first
from pop3client import Pop3Raw, unstuff
from popgate import SANITIZER_MARKS, popgate_bin, popgate_ini, start_popgate

pytestmark = pytest.mark.popgate_only

COLUMNS = ["user", "uidl", "message_id", "size"]


def uidl_tool(ini, *args, stdin=None):
	"""Runs `popgate -c ini uidl args...`: (exit code, stdout, stderr)."""
	r = subprocess.run([popgate_bin(), "-c", ini, "uidl", *args], input=stdin,
		stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
	err = r.stderr.decode("utf-8", "replace")
	assert not [m for m in SANITIZER_MARKS if m in err], err	# make sanitize
	return r.returncode, r.stdout.decode("utf-8", "replace"), err


def stats(ini):
	rc, out, err = uidl_tool(ini, "stats")
	assert rc == 0, err
	got = dict(line.split() for line in out.splitlines())
	assert list(got) == ["users", "rows", "pending"], out
	return {k: int(v) for k, v in got.items()}


def tool_ini(tmp, imap_port, name, **overrides):
	"""An ini for the tool alone (no gateway runs with it): its cache is tmp/name.sqlite."""
	overrides.setdefault("cache.path", os.path.join(str(tmp), name + ".sqlite"))
	path = os.path.join(str(tmp), name + ".ini")
	with open(path, "w") as f:
		f.write(popgate_ini(tmp, imap_port, 1, **overrides))
	return path


def write_csv(path, columns, rows, bom=False):
	"""rows: dicts; RFC 4180 as Python's csv module writes it (CRLF, quotes where needed)."""
	out = io.StringIO()
	w = csv.writer(out, lineterminator="\r\n")
	w.writerow(columns)
	for r in rows:
		w.writerow([r.get(c, "") for c in columns])
	with open(path, "wb") as f:
		f.write((b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8"))
	return path


def mailbox(dovecot, user):
	"""user's INBOX, in UID order: [{uid, size, message_id, sha}] (sha: of the header, which
	tells the seeded messages apart), and its UIDVALIDITY."""
	m = dovecot.imap(user)
	try:
		typ, data = m.select("INBOX", readonly=True)
		assert typ == "OK", data
		uidvalidity = int(m.response("UIDVALIDITY")[1][0])
		typ, data = m.uid("FETCH", "1:*", "(UID RFC822.SIZE BODY.PEEK[HEADER])")
		assert typ == "OK", data
	finally:
		m.logout()
	out = []
	for meta, body in (x for x in data if isinstance(x, tuple)):
		msgid = email.parser.BytesHeaderParser().parsebytes(body)["Message-ID"]
		out.append({"uid": int(re.search(rb"UID (\d+)", meta).group(1)),
			"size": int(re.search(rb"RFC822\.SIZE (\d+)", meta).group(1)),
			"message_id": str(msgid).strip(), "sha": hashlib.sha256(body).hexdigest()})
	return sorted(out, key=lambda x: x["uid"]), uidvalidity


def pop3_listing(port, user, password):
	"""[(sha256 of the header as TOP n 0 gives it, the UIDL)] in POP3 order."""
	out = []
	with Pop3Raw("127.0.0.1", port) as c:
		c.login(user, password)
		status, lines = c.cmd_multi("UIDL")
		assert status.startswith(b"+OK"), status
		for n, line in enumerate(lines, 1):
			assert int(line.split()[0]) == n
			status, body = c.cmd_multi("TOP %d 0" % n)
			assert status.startswith(b"+OK"), status
			out.append((hashlib.sha256(unstuff(body)).hexdigest(), line.split()[1].decode()))
		assert c.quit().startswith(b"+OK")
	return out


def old_store_rows(user, box, seed):
	"""What an old store's export would say of box: a made-up old UIDL per message, keyed by
	its Message-ID (spelled as exports do: with or without brackets, padded), except one with
	a size found nowhere else in the mailbox, which has its size only. Shuffled: the file's
	order is the matching order (for the duplicates, too). Returns (rows, the size-only one)."""
	rnd = random.Random(seed)
	sizes = [m["size"] for m in box]
	by_size = [m for m in box if sizes.count(m["size"]) == 1 and
		[x["message_id"] for x in box].count(m["message_id"]) == 1]
	size_only = by_size[-1]
	rows = []
	for i, m in enumerate(box):
		mid = m["message_id"]
		if i % 3 == 1:
			mid = mid.strip("<>")		# "a@b" and "<a@b>" are one id
		elif i % 3 == 2:
			mid = "  " + mid + " "
		rows.append({"user": user.upper(), "uidl": "OLD.%d.%08x" % (i + 1, rnd.getrandbits(32)),
			"message_id": "" if m is size_only else mid, "size": str(m["size"]),
			"subject": "was, \"quoted\"", "date": "Mon, 03 Jun 2024", "from": "x <x@y>",
			"sha": m["sha"]})
	rnd.shuffle(rows)
	# Of two rows of one content, the first in the file gets the later UIDL: the file's order
	# decides, not the UIDLs' own.
	for a in range(len(rows)):
		for b in range(a + 1, len(rows)):
			if rows[a]["sha"] == rows[b]["sha"] and rows[a]["uidl"] < rows[b]["uidl"]:
				rows[a]["uidl"], rows[b]["uidl"] = rows[b]["uidl"], rows[a]["uidl"]
	return rows, size_only


def expected_listing(rows, listing):
	"""The UIDL each message of listing should have: by content, and among messages of one
	content (the duplicates) the file's rows in order."""
	by_sha = {}
	for r in rows:
		by_sha.setdefault(r["sha"], []).append(r["uidl"])
	return [by_sha[sha].pop(0) for sha, _ in listing]


OTHER = [{"user": "Other.User@Example.NET", "uidl": "o-1", "message_id": '<we,ird"id@x>',
	"size": "10"}, {"user": "other.user@example.net", "uidl": "o-2", "message_id": "",
	"size": "20"}]


def test_imported_uidls_are_what_the_first_login_shows(dovecot, tmp_path):
	user, password, _ = dovecot.fresh_user()
	add_duplicate_of_first(dovecot, user)
	box, _ = mailbox(dovecot, user)
	rows, size_only = old_store_rows(user, box, 1)
	path = write_csv(str(tmp_path / "old.csv"),
		["size", "subject", "user", "uidl", "date", "message_id", "from"], rows + OTHER, bom=True)
	pg = start_popgate(tmp_path / "pg", dovecot.imap_port)
	try:
		rc, out, err = uidl_tool(pg.ini_path, "import", path)
		assert rc == 0, err
		assert out == "imported %d rows for 2 users (0 already known)\n" % (len(box) + 2)
		assert pg.proc.poll() is None, "the gateway did not run through the import"
		assert stats(pg.ini_path) == {"users": 2, "rows": 0, "pending": len(box) + 2}
		listing = pop3_listing(pg.port, user, password)
		assert [u for _, u in listing] == expected_listing(rows, listing), pg.log_tail()
		assert len(listing) == len(box)
		assert "imported=%d matched=0 new=0 lost=0" % len(box) in pg.log(), pg.log_tail()
		# The one without a Message-ID was matched by its size.
		assert [u for sha, u in listing if sha == size_only["sha"]] == \
			[r["uidl"] for r in rows if r["message_id"] == ""]
		# Imported again (from stdin): nothing new; the user's rows stay as they are.
		with open(path, "rb") as f:
			rc, out, err = uidl_tool(pg.ini_path, "import", "-", stdin=f.read())
		assert rc == 0, err
		assert out == "imported 0 rows for 2 users (%d already known)\n" % (len(box) + 2)
		assert stats(pg.ini_path) == {"users": 2, "rows": len(box), "pending": 2}
		assert pop3_listing(pg.port, user, password) == listing
	finally:
		pg.stop()


def test_a_bad_file_imports_nothing_and_names_its_line(dovecot, tmp_path):
	ini = tool_ini(tmp_path, dovecot.imap_port, "bad")
	good = write_csv(str(tmp_path / "good.csv"), COLUMNS, OTHER)
	assert uidl_tool(ini, "import", good)[0] == 0
	before = stats(ini)
	head = "user,uidl,message_id,size\r\n"
	cases = {
		"unterminated.csv": (head + "a,a-1,<1@x>,10\r\nb,b-1,,20\r\nc,\"c-1,<3@x>,30\r\n"
			"d,d-1,<4@x>,40\r\n", ":4: a quoted field is not closed"),
		"size.csv": (head + "a,a-2,<1@x>,10\r\na,a-3,<2@x>,12k\r\n",
			':3: size "12k" is not a number of octets'),
		"column.csv": ("user,uidl,size\r\na,a-4,10\r\n", ':1: no column "message_id"'),
		"unknown.csv": (head.strip() + ",flags\r\n", ':1: unknown column "flags"'),
		"fields.csv": (head + "a,a-5,<1@x>,10,extra\r\n", ":2: 5 fields, the header row has 4"),
		"uidl.csv": (head + "a,a-6,<1@x>,10\r\na,has space,,10\r\n", ':3: uidl "has space" is '
			"not a UIDL"),
	}
	for name, (text, message) in cases.items():
		path = tmp_path / name
		path.write_bytes(text.encode())
		rc, out, err = uidl_tool(ini, "import", str(path))
		assert rc == 1, (name, out, err)
		assert "popgate: %s%s" % (path, message) in err, (name, err)
		assert "nothing imported" in err and out == "", (name, err)
		assert stats(ini) == before, name
	# The command line itself: exit 2.
	for args in (["import"], ["export", "--usr", "x"], ["forget"], ["frob"], ["stats", "x"]):
		rc, out, err = uidl_tool(ini, *args)
		assert rc == 2 and "usage:" in err, (args, rc, err)


def test_export_then_import_into_an_empty_cache(dovecot, tmp_path):
	user, password, _ = dovecot.fresh_user()
	box, _ = mailbox(dovecot, user)
	rows, _ = old_store_rows(user, box, 2)
	# Half of the messages are known from the old store; the rest get new UIDLs at the login.
	path = write_csv(str(tmp_path / "old.csv"), COLUMNS, rows[:len(rows) // 2] + OTHER)
	pg = start_popgate(tmp_path / "pg", dovecot.imap_port)
	try:
		assert uidl_tool(pg.ini_path, "import", path)[0] == 0
		listing = pop3_listing(pg.port, user, password)
		first = stats(pg.ini_path)
		assert first == {"users": 2, "rows": len(box), "pending": 2}
		rc, export, err = uidl_tool(pg.ini_path, "export")
		assert rc == 0, err
	finally:
		pg.stop()
	lines = export.split("\r\n")
	assert lines[0] == "user,uidl,message_id,size" and lines[-1] == ""
	assert len(lines) == 1 + len(box) + 2 + 1
	assert 'other.user@example.net,o-1,"<we,ird""id@x>",10' in lines
	assert {row[1] for row in csv.reader(lines[1:-1]) if row[0] == user} == \
		{u for _, u in listing}
	# --user (any case) gives that user's lines only.
	rc, mine, err = uidl_tool(pg.ini_path, "export", "--user", user.upper())
	assert rc == 0, err
	assert mine.split("\r\n") == [lines[0]] + [l for l in lines[1:-1] if l.startswith(user + ",")] + [""]
	# Into an empty cache: everything is pending there, and exports the same.
	ini2 = tool_ini(tmp_path, dovecot.imap_port, "second")
	path2 = tmp_path / "export.csv"
	path2.write_text(export)
	rc, out, err = uidl_tool(ini2, "import", str(path2))
	assert rc == 0, err
	assert out == "imported %d rows for 2 users (0 already known)\n" % (len(box) + 2)
	assert stats(ini2) == {"users": first["users"], "rows": 0,
		"pending": first["rows"] + first["pending"]}
	rc, export2, err = uidl_tool(ini2, "export")
	assert rc == 0, err
	assert export2 == export


def test_forget_gives_derived_uidls_at_the_next_login(dovecot, tmp_path):
	user, password, _ = dovecot.fresh_user()
	box, uidvalidity = mailbox(dovecot, user)
	rows, _ = old_store_rows(user, box, 3)
	path = write_csv(str(tmp_path / "old.csv"), COLUMNS, rows + OTHER)
	pg = start_popgate(tmp_path / "pg", dovecot.imap_port)
	try:
		assert uidl_tool(pg.ini_path, "import", path)[0] == 0
		listing = pop3_listing(pg.port, user, password)
		assert [u for _, u in listing] == expected_listing(rows, listing)
		assert stats(pg.ini_path) == {"users": 2, "rows": len(box), "pending": 2}
		rc, out, err = uidl_tool(pg.ini_path, "forget", user.upper())
		assert rc == 0, err
		assert out == "removed %d rows of %s\n" % (len(box), user)
		assert stats(pg.ini_path) == {"users": 1, "rows": 0, "pending": 2}
		derived = ["%08x%08x" % (m["uid"], uidvalidity) for m in box]
		assert [u for _, u in pop3_listing(pg.port, user, password)] == derived
		# Forgetting someone the cache does not know is no error.
		assert uidl_tool(pg.ini_path, "forget", "nobody@nowhere")[1] == \
			"removed 0 rows of nobody@nowhere\n"
	finally:
		pg.stop()


def test_an_import_waits_for_another_writer(dovecot, tmp_path):
	ini = tool_ini(tmp_path, dovecot.imap_port, "locked")
	path = write_csv(str(tmp_path / "old.csv"), COLUMNS, OTHER)
	assert uidl_tool(ini, "stats")[0] == 1		# no cache yet: reading creates none
	assert uidl_tool(ini, "forget", "x")[0] == 1
	assert uidl_tool(ini, "import", write_csv(str(tmp_path / "none.csv"), COLUMNS, []))[0] == 0
	db = sqlite3.connect(str(tmp_path / "locked.sqlite"), isolation_level=None,
		check_same_thread=False)
	db.execute("BEGIN IMMEDIATE")		# what a gateway recording a login holds, only longer
	threading.Timer(1.5, lambda: db.execute("ROLLBACK")).start()
	t0 = time.monotonic()
	rc, out, err = uidl_tool(ini, "import", path)
	assert rc == 0, err
	assert time.monotonic() - t0 >= 1.4
	assert "is locked by another writer: waiting up to 10 s" in err
	assert out == "imported 2 rows for 1 users (0 already known)\n"
	db.close()


def test_run_as_root_it_becomes_the_service_user(dovecot, tmp_path):
	if os.geteuid() != 0:
		pytest.skip("needs root")
	nobody = pwd.getpwnam("nobody")
	cache_dir = tempfile.mkdtemp(prefix="popgate-uidl-")	# in /tmp: reachable by nobody
	os.chmod(cache_dir, 0o777)
	try:
		cache = os.path.join(cache_dir, "uidl.sqlite")
		ini = tool_ini(tmp_path, dovecot.imap_port, "root", **{"server.user": "nobody",
			"server.allow_root": None, "cache.path": cache})
		# The CSV is root's alone: it is opened before the switch.
		path = write_csv(str(tmp_path / "old.csv"), COLUMNS, OTHER)
		os.chmod(path, 0o600)
		rc, out, err = uidl_tool(ini, "import", path)
		assert rc == 0, err
		for name in os.listdir(cache_dir):
			st = os.stat(os.path.join(cache_dir, name))
			assert st.st_uid == nobody.pw_uid, "%s belongs to uid %d" % (name, st.st_uid)
		assert os.stat(cache).st_mode & 0o777 == 0o600
		assert stats(ini)["pending"] == 2
		# A gateway running as nobody uses the file the import made.
		pg = start_popgate(tmp_path / "pg", dovecot.imap_port, **{"server.user": "nobody",
			"server.allow_root": None, "cache.path": cache})
		try:
			user, password, _ = dovecot.fresh_user()
			assert pop3_listing(pg.port, user, password)
			assert "UIDL cache unavailable" not in pg.log(), pg.log_tail()
			assert stats(ini)["users"] == 2
		finally:
			pg.stop()
	finally:
		subprocess.run(["rm", "-rf", cache_dir])
