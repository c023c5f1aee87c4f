#!/usr/bin/env bash
# `make demo`: popgate on 127.0.0.1:1110 in front of a private Dovecot (IMAP on a free port of
# 127.0.0.1, everything under build/demo/), with user demo / password demo and a few messages.
# popgate runs in the foreground; when it exits (Ctrl-C), Dovecot is stopped by its PID.
# Environment: POPGATE_BIN (default build/popgate), DEMO_PORT (default 1110), PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-/usr/bin/python3}
popgate=${POPGATE_BIN:-build/popgate}
port=${DEMO_PORT:-1110}
demo=$PWD/build/demo
dc=$demo/dovecot

if [ ! -x "$popgate" ]; then
	echo "demo: $popgate is missing: run 'make' first" >&2
	exit 1
fi
if "$python" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port))!=0)"; then
	echo "demo: 127.0.0.1:$port is already in use (set DEMO_PORT=...)" >&2
	exit 1
fi

rm -rf "$dc"
mkdir -p "$demo"
# The Dovecot config comes from etc/demo/dovecot.conf.in, written by the test harness's module.
eval "$("$python" tests/integration/dovecot.py config "$dc" --user demo:demo)"

dovecot_pid=
stop_dovecot() {
	if [ -n "$dovecot_pid" ] && kill -0 "$dovecot_pid" 2>/dev/null; then
		kill -TERM "$dovecot_pid"
		wait "$dovecot_pid" 2>/dev/null || true
		echo "demo: Dovecot stopped."
	fi
}
trap stop_dovecot EXIT
trap 'exit 130' INT TERM

# Foreground mode, stdin from /dev/null and output to its log, so it holds no pipe of ours.
dovecot -c "$dc/dovecot.conf" -F </dev/null >>"$dc/dovecot.log" 2>&1 &
dovecot_pid=$!
if ! "$python" tests/integration/dovecot.py wait "$dc"; then
	echo "demo: Dovecot did not start; doveconf says:" >&2
	doveconf -c "$dc/dovecot.conf" -n >/dev/null || true
	tail -20 "$dc/dovecot.log" >&2
	exit 1
fi
"$python" tests/integration/dovecot.py seed "$dc" demo demo

sed -e "s|@LISTEN_PORT@|$port|" -e "s|@IMAP_PORT@|$IMAP_PORT|" -e "s|@DIR@|$demo|" \
	etc/demo/popgate.ini.in >"$demo/popgate.ini"
rm -f "$demo/uidl.sqlite"

cat <<MSG

Dovecot (the IMAP upstream) is on 127.0.0.1:$IMAP_PORT, its log in $dc/dovecot.log.
popgate listens on 127.0.0.1:$port (config $demo/popgate.ini). In another terminal:

  Try: curl pop3://demo:demo@127.0.0.1:$port/1
       curl pop3://demo:demo@127.0.0.1:$port/          (LIST)
       curl -X UIDL pop3://demo:demo@127.0.0.1:$port/
       mpop --host=127.0.0.1 --port=$port --auth=user --tls=off --user=demo \\
            --passwordeval='echo demo' --keep=on -s
  Upstream, as IMAP sees it: curl 'imap://demo:demo@127.0.0.1:$IMAP_PORT/INBOX' -X 'FETCH 1:* (FLAGS)'

Ctrl-C stops popgate and Dovecot.

MSG
"$popgate" -c "$demo/popgate.ini"
