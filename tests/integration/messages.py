"""The messages seeded into test mailboxes: exact bytes, CRLF line endings, each with a distinct
Subject, a Message-ID and a Date. Each one is there for a POP3 corner case (dot-stuffing, no final
newline, empty body, 8-bit, a large attachment, a 20 MB message)."""

import random

DATE = "Mon, 03 Jun 2024 10:00:00 +0000"
BIG_SIZE = 20 * 1024 * 1024


def _msg(n, user, subject, body, extra_headers=(), date=DATE):
	"""Header (From/To/Subject/Date/Message-ID + extras) + CRLF + body. body is bytes, CRLF."""
	headers = [
		f"From: Sender {n} <sender{n}@example.org>",
		f"To: {user} <{user}@example.net>",
		f"Subject: {subject}",
		f"Date: {date}",
		f"Message-ID: <seed-{n}.{user}@popgate.test>",
		*extra_headers,
	]
	head = "".join(h + "\r\n" for h in headers).encode("utf-8")
	return head + b"\r\n" + body


def _lines(*lines):
	return b"".join(line + b"\r\n" for line in lines)


def small_plain(user):
	return _msg(1, user, "seed 1: small plain", _lines(b"Hello,", b"", b"this is a small message.", b"-- ", b"A"))


def dot_lines(user):
	return _msg(2, user, "seed 2: lines starting with dots", _lines(
		b"first line",
		b".one dot at the start",
		b"..two dots at the start",
		b"...three",
		b". dot space",
		b"last line"))


def lone_dot(user):
	# A line that is only "." (the POP3 terminator once unstuffed), and one that is "..".
	return _msg(3, user, "seed 3: a line that is only a dot", _lines(
		b"before the dot",
		b".",
		b"after the dot",
		b"..",
		b"end"))


def utf8_8bit(user):
	return _msg(4, user, "seed 4: 8-bit UTF-8 body", _lines(
		"Grüße aus Köln, ça va? Ελληνικά, 日本語, emoji \U0001F600".encode("utf-8"),
		"second line: naïve café".encode("utf-8")),
		("MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
		 "Content-Transfer-Encoding: 8bit"))


def no_final_newline(user):
	return _msg(5, user, "seed 5: no final newline", b"first line\r\nthe last line has no CRLF")


def header_only(user):
	# Header, the empty line, and nothing else.
	return _msg(6, user, "seed 6: header only, empty body", b"")


def multipart_base64(user, size=50 * 1024):
	import base64
	rnd = random.Random(7)
	data = bytes(rnd.getrandbits(8) for _ in range(size))
	b64 = base64.encodebytes(data).replace(b"\n", b"\r\n")	# 76-char lines
	boundary = b"=_popgate_test_boundary_7"
	body = (b"This is a multi-part message in MIME format.\r\n"
		b"\r\n--" + boundary + b"\r\n"
		b"Content-Type: text/plain; charset=us-ascii\r\n"
		b"\r\n"
		b"See the attachment.\r\n"
		b"\r\n--" + boundary + b"\r\n"
		b"Content-Type: application/octet-stream; name=\"random.bin\"\r\n"
		b"Content-Transfer-Encoding: base64\r\n"
		b"Content-Disposition: attachment; filename=\"random.bin\"\r\n"
		b"\r\n" + b64 +
		b"\r\n--" + boundary + b"--\r\n")
	return _msg(7, user, "seed 7: multipart with a base64 attachment", body,
		("MIME-Version: 1.0",
		 "Content-Type: multipart/mixed; boundary=\"" + boundary.decode() + "\""))


def big(user, size=BIG_SIZE):
	"""About `size` bytes of 76-char lines (every 997th starts with "." to exercise dot-stuffing
	deep inside a streamed message)."""
	alpha = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" * 3
	out = []
	total = 0
	i = 0
	while total < size:
		line = b"%07d " % i + alpha[i % 62:i % 62 + 67]
		if i % 997 == 0:
			line = b"." + line[1:]
		out.append(line)
		total += len(line) + 2
		i += 1
	return _msg(8, user, "seed 8: a 20 MB message", b"\r\n".join(out) + b"\r\n")


# Offsets into a body where popgate's TOP may start a new BODY[TEXT]<off.len> window (gateway/
# retr.c: the first window is 4096 bytes times 4 until it holds 80 bytes per asked line, at
# most 1 MB; each next one 4 times the last, at most 1 MB), for every first window size.
def top_window_boundaries(limit):
	out = set()
	first = 4096
	while first <= 1 << 20:
		off, n = 0, first
		while off + n < limit:
			off += n
			out.add(off)
			n = min(n * 4, 1 << 20)
		first *= 4
	return sorted(out)


def dots_everywhere(user, size=2900 * 1024, seed=11):
	"""About `size` bytes of body lines of every length from 0 to 300 (a seeded random mix),
	most starting with "." (some only ".", "..", "...", ". "), others with a "." inside, so
	that stuffed lines sit at every offset of whatever pieces a server reads, streams or
	fetches. At each offset where popgate's TOP may start a window (top_window_boundaries)
	there is, in turn: a "." line starting exactly there, a line not starting with "."
	whose "." falls exactly there, or a line whose CR ends just before it (its LF starts the
	window). The last line starts with "." and has no final newline. Not one of the seeded
	messages: tests append it to a fresh user's mailbox."""
	rnd = random.Random(seed)
	bounds = top_window_boundaries(size)
	specials = [b".", b"..", b"...", b". ", b".\t", b"", b"..."+b"." * 40]
	body = bytearray()
	k = 0

	def add(line):
		body.extend(line + b"\r\n")

	while len(body) < size:
		nxt = bounds[0] if bounds else None
		if nxt is not None and nxt - len(body) <= 400:
			mode = k % 3
			k += 1
			bounds.pop(0)
			gap = nxt - len(body)		# at least 98: lines are at most 302 bytes
			if mode == 0:		# a "." line starts exactly at the boundary
				add(b"." * min(gap - 2, 3) + b"x" * max(0, gap - 5))
				add(b".starts window at %d" % nxt)
			elif mode == 1:		# not a line start: the "." there must not be stuffed
				add(b"x" * gap + b". mid-line dot at window %d" % nxt)
			else:			# CR before, LF at the boundary, then a "." line
				add(b"." + b"y" * (gap - 2))	# its LF is at offset nxt
				add(b".after a CRLF split at window %d" % nxt)
			continue
		r = rnd.random()
		if r < 0.1:
			line = rnd.choice(specials)
		else:
			n = rnd.randrange(0, 301)
			line = bytes(rnd.choices(b"abcdefghij .", k=n))
			if r < 0.75:
				line = b"." + line
		add(line)
	return _msg(9, user, "lines starting with dots everywhere", bytes(body) +
		b".the last line starts with a dot and has no final newline")


def no_message_id(user):
	"""A message without a Message-ID field (old mail often has none): its content key is made
	of Date, From, To and Subject alone. Not one of the seeded messages."""
	head = ("From: Old Sender <old.sender@example.org>\r\n"
		f"To: {user} <{user}@example.net>\r\n"
		"Subject: an old message without a Message-ID\r\n"
		"Date: Tue, 04 Jun 2024 09:30:00 +0000\r\n")
	return head.encode("utf-8") + b"\r\n" + _lines(b"Stored before anyone added Message-IDs.")


# Mailbox order. Names are used as test ids.
BUILDERS = [
	("small", small_plain),
	("dots", dot_lines),
	("lone-dot", lone_dot),
	("utf8", utf8_8bit),
	("no-final-newline", no_final_newline),
	("header-only", header_only),
	("multipart", multipart_base64),
	("big-20mb", big),
]
NAMES = [name for name, _ in BUILDERS]
NO_FINAL_NEWLINE = NAMES.index("no-final-newline") + 1	# its 1-based POP3 number
BIG = NAMES.index("big-20mb") + 1


def build(user, include_big=True):
	"""The seed messages for `user`, in mailbox order, as exact bytes."""
	return [fn(user) for name, fn in BUILDERS if include_big or name != "big-20mb"]


def pop3_bytes(stored):
	"""What RETR must deliver (unstuffed) for a stored message: POP3 ends the last line with CRLF."""
	return stored if stored.endswith(b"\r\n") else stored + b"\r\n"


def split_header(msg):
	"""(header including the empty line, body) of a message's bytes."""
	i = msg.find(b"\r\n\r\n")
	assert i >= 0, "message without an empty line after the header"
	return msg[:i + 4], msg[i + 4:]


def top_bytes(stored, n):
	"""What TOP msg n must deliver (unstuffed): the header, the empty line, and the first n body
	lines, each ending in CRLF."""
	head, body = split_header(pop3_bytes(stored))
	if not body:
		return head
	lines = body.split(b"\r\n")[:-1]	# pop3_bytes() ends in CRLF: last item is empty
	return head + b"".join(line + b"\r\n" for line in lines[:n])


def header_field(msg, name):
	"""The value of the first `name:` header field of msg (bytes; folding not handled), or None."""
	head, _ = split_header(msg)
	want = name.lower().encode() + b":"
	for line in head.split(b"\r\n"):
		if line.lower().startswith(want):
			return line[len(want):].strip().decode("utf-8", "replace")
	return None


def message_ids(msgs):
	"""The Message-ID values (with <>) of a list of message bytes."""
	return [header_field(m, "Message-ID") for m in msgs]
