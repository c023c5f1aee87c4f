"""Where a test password must never turn up: the forms it takes on the wire, and a search of
a live process's memory for them (Linux /proc; the tests run as root or as the process's
owner, so /proc/PID/mem is readable)."""

import base64
import re


def secret_forms(user, password):
	"""The password raw, IMAP-quoted, and as the base64 of an AUTH PLAIN message (RFC 4616)
	with and without an authzid: how it crosses popgate on either side."""
	quoted = password.replace("\\", "\\\\").replace('"', '\\"')
	plain = user.encode() + b"\0" + password.encode()
	return {password, quoted, base64.b64encode(b"\0" + plain).decode(),
		base64.b64encode(user.encode() + b"\0" + plain).decode()}


# Mappings larger than this are AddressSanitizer's shadow (terabytes reserved, holding poison
# markers, not program data): skipped, as are mappings with nothing resident.
SHADOW_MIN = 1 << 30
CHUNK = 16 << 20


def writable_mappings(pid):
	"""(start, end, name) of each readable, writable mapping of pid with resident pages."""
	maps, cur = [], None
	with open("/proc/%d/smaps" % pid) as f:
		for line in f:
			fields = line.split()
			if not fields[0].endswith(":"):
				cur = fields	# a mapping's header: range, perms, offset, dev, inode[, name]
			elif fields[0] == "Rss:" and cur is not None and cur[1].startswith("rw"):
				lo, hi = (int(x, 16) for x in cur[0].split("-"))
				if int(fields[1]) > 0 and hi - lo < SHADOW_MIN:
					maps.append((lo, hi, cur[5] if len(cur) > 5 else "anonymous"))
	return maps


def find_in_memory(pid, needles):
	"""Each needle (str or bytes) found in the writable memory of process pid, as
	"needle at address (mapping): bytes around it"; [] when none is."""
	needles = [n.encode() if isinstance(n, str) else n for n in needles]
	overlap = max(len(n) for n in needles)
	found = []
	with open("/proc/%d/mem" % pid, "rb", 0) as mem:
		for lo, hi, name in writable_mappings(pid):
			for at in range(lo, hi, CHUNK):
				try:
					mem.seek(at)
					data = mem.read(min(CHUNK + overlap, hi - at))
				except (OSError, ValueError, OverflowError):
					break	# a guard page or a vanished mapping
				for n in needles:
					for m in re.finditer(re.escape(n), data):
						if m.start() < CHUNK:	# the overlap is the next chunk's
							found.append("%r at %#x (%s): %r" % (n, at + m.start(), name,
								data[max(0, m.start() - 32):m.end() + 16]))
	return found
