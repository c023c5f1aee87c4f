#!/usr/bin/env bash
# Installs, when missing, the Debian packages that building and testing popgate need.
# Runs apt-get as root (CI and the developer machines are root); prints what it installs.
set -euo pipefail

pkgs=(
	build-essential pkg-config
	libev-dev libssl-dev libsqlite3-dev libinih-dev libcmocka-dev	# build + unit tests
	libsystemd-dev							# sd_notify (Type=notify)
	dovecot-imapd dovecot-pop3d openssl				# the real upstream (and a POP3 peer)
	python3 python3-pytest python3-pytest-timeout			# the integration tests
	curl fetchmail mpop getmail6					# real POP3 clients
	valgrind clang libclang-rt-14-dev				# leak checks, sanitizers, fuzzing
	haproxy							# a real load balancer (PROXY protocol)
	prometheus						# promtool check metrics (test_metrics.py)
	man-db groff-base mandoc					# the man pages render (test_install.py)
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need root to apt-get install ${missing[*]}" >&2
	exit 1
fi
# Packages must not start system-wide daemons (the tests start their own Dovecot).
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ "$added_policy" -eq 1 ] && rm -f "$policy"
exit 0
