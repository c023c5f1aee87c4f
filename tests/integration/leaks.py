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


def find_in_memory(pid, needles):
	"""Each needle (str or bytes) found in the writable memory of process pid, as
	"needle at address (mapping): bytes around it"; [] when none is."""
	needles = [n.encode() if isinstance(n, str) else n for n in needles]
	found = []
	with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
		for line in maps:
			f = line.split()
			if "w" not in f[1] or "r" not in f[1]:
				continue
			lo, hi = (int(x, 16) for x in f[0].split("-"))
			try:
				mem.seek(lo)
				data = mem.read(hi - lo)
			except (OSError, ValueError, OverflowError):
				continue	# a guard page or a vanished mapping
			for n in needles:
				for m in re.finditer(re.escape(n), data):
					found.append("%r at %#x (%s): %r" % (n, lo + m.start(),
						f[5] if len(f) > 5 else "anonymous",
						data[max(0, m.start() - 32):m.end() + 16]))
	return found
