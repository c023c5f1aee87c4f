# popgate: POP3-to-IMAP gateway.  `make` builds build/popgate; `make test` installs what the
# tests need (Debian packages) and runs unit, integration and sanitizer tests; `make demo`
# runs popgate in front of a private Dovecot on 127.0.0.1:1110.

BUILD    ?= build
CC       ?= cc
PKGS      = openssl sqlite3 inih libsystemd
# OPT is what a variant build changes (make sanitize); the warnings and -D_GNU_SOURCE stay.
# CFLAGS from the command line or the environment are added last.
OPT      ?= -O2 -g
ALL_CFLAGS = $(OPT) -std=gnu11 -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes \
            -Wmissing-prototypes -D_GNU_SOURCE -MMD -MP $(CFLAGS)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libev ships no .pc file in Debian: plain -lev.
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lev -pthread
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)
PYTHON   ?= /usr/bin/python3

LIB_SRC   = $(wildcard common/*.c pop3/*.c imap/*.c)
GW_SRC    = $(wildcard gateway/*.c)
LIB_OBJ   = $(LIB_SRC:%.c=$(BUILD)/%.o)
GW_OBJ    = $(GW_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC  = $(wildcard tests/unit/test_*.c)
UNIT_BIN  = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all unit test integration sanitize valgrind deps demo clean install fuzz fuzz-build measure measure-cache \
	measure-listing measure-uidl bench bench-smoke

all: $(BUILD)/popgate $(BUILD)/popbench

# The load generator of `make bench` (bench/popbench.c): libev and libcrypto, nothing of popgate.
$(BUILD)/popbench: bench/popbench.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) -o $@ $< $(PKG_LIBS)

$(BUILD)/popgate: $(GW_OBJ) $(BUILD)/libpopgate.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(GW_OBJ) $(BUILD)/libpopgate.a $(PKG_LIBS)

$(BUILD)/libpopgate.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpopgate.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) -o $@ $< $(BUILD)/libpopgate.a $(CMOCKA_LIBS) $(PKG_LIBS)

# The gateway's IMAP ops (login, RETR/TOP, UPDATE) against a scripted connection: no
# socket, no loop (tests/unit/gw_rig.h); the migration client against a scripted POP3 server
# on 127.0.0.1 and a real loop (test_gw_migrate.c); the workers' restart back-off (pure).
GW_OP_OBJ = $(addprefix $(BUILD)/gateway/,backoff.o imapc.o io.o login.o retr.o update.o snapshot.o cache_async.o keys.o listing.o \
    metrics.o \
    migrate.o tls.o shared.o)

$(BUILD)/tests/test_gw_%: tests/unit/test_gw_%.c $(GW_OP_OBJ) $(BUILD)/libpopgate.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) -o $@ $< $(GW_OP_OBJ) $(BUILD)/libpopgate.a $(CMOCKA_LIBS) $(PKG_LIBS)

# Unit tests: pure code of common/, pop3/, imap/ (cmocka).
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# Installs the Debian packages the build and the tests need, when missing (root, apt-get).
deps:
	@tests/deps.sh

# Integration: real Dovecot on 127.0.0.1, real POP3 clients, popgate in between.
integration: $(BUILD)/popgate
	POPGATE_BIN=$(abspath $(BUILD)/popgate) $(PYTHON) -m pytest -p no:cacheprovider tests/integration $(PYTEST_ARGS)

# RETR throughput and idle-session memory of build/popgate (tests/perf/measure.py; about a minute).
# What the UIDL cache's thread spends on a 100,000-message mailbox (first, repeat, rebuilt).
measure-cache: $(BUILD)/libpopgate.a
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) -o $(BUILD)/cache_record tests/perf/cache_record.c $(BUILD)/libpopgate.a $(PKG_LIBS)
	$(BUILD)/cache_record

measure: $(BUILD)/popgate
	POPGATE_BIN=$(abspath $(BUILD)/popgate) $(PYTHON) tests/perf/measure.py $(MEASURE_ARGS)

# The UIDL cache as a POP3 client sees it (tests/perf/uidl_bench.py, a few minutes): first and
# repeat logins of a 10,000-message mailbox against Dovecot's own POP3, the event loop's NOOP
# latency while a 100,000-message mailbox logs in for the first time. UIDL_ARGS: --small (a
# smoke run, under a minute), --migration (also with [migration]), --out FILE (the table).
measure-uidl: $(BUILD)/popgate
	POPGATE_BIN=$(abspath $(BUILD)/popgate) $(PYTHON) tests/perf/uidl_bench.py $(UIDL_ARGS)

# popgate side by side with Dovecot's own POP3 and Dovecot's POP3 over imapc, in front of the
# same Dovecot IMAP (bench/run.py, about 6 minutes), then 10,000 sessions held through popgate
# at once (bench/sessions.py, about 2 minutes); writes bench/RESULTS.md. Run it on a quiet
# machine: every process shares the same CPUs.
# bench-smoke: every mode of build/popbench once, small, and 100 held sessions; fails only
# when something does not work, never for a figure.
bench: $(BUILD)/popgate $(BUILD)/popbench
	POPGATE_BIN=$(abspath $(BUILD)/popgate) POPBENCH_BIN=$(abspath $(BUILD)/popbench) \
	  $(PYTHON) bench/run.py --out bench/RESULTS.md $(BENCH_ARGS)
	POPGATE_BIN=$(abspath $(BUILD)/popgate) POPBENCH_BIN=$(abspath $(BUILD)/popbench) \
	  $(PYTHON) bench/sessions.py --append bench/RESULTS.md

bench-smoke: $(BUILD)/popgate $(BUILD)/popbench
	POPGATE_BIN=$(abspath $(BUILD)/popgate) POPBENCH_BIN=$(abspath $(BUILD)/popbench) \
	  $(PYTHON) bench/run.py --smoke
	POPGATE_BIN=$(abspath $(BUILD)/popgate) POPBENCH_BIN=$(abspath $(BUILD)/popbench) \
	  $(PYTHON) bench/sessions.py --smoke

# What a poll costs the upstream with the listing cache (CONDSTORE; tests/perf/listing_measure.py,
# under a minute): octets both ways for a 10,000-message mailbox, full, unchanged, after an
# arrival, after a flag change. LISTING_ARGS: --n N, --rounds R.
measure-listing: $(BUILD)/popgate
	POPGATE_BIN=$(abspath $(BUILD)/popgate) $(PYTHON) tests/perf/listing_measure.py $(LISTING_ARGS)

# The same, built with AddressSanitizer and UndefinedBehaviorSanitizer.
sanitize:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" LDFLAGS="-fsanitize=address,undefined" unit integration

# valgrind over the unit tests.
valgrind: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== valgrind $$t"; \
	  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect $$t >/dev/null; done; \
	  echo "valgrind: no errors, no leaks"

# CI_FUZZ_TIME: seconds per fuzz target in `make test` (a smoke run; `make fuzz` for real).
CI_FUZZ_TIME ?= 10

test: deps
	$(MAKE) all unit valgrind integration bench-smoke sanitize
	$(MAKE) fuzz FUZZ_TIME=$(CI_FUZZ_TIME)

demo: deps all
	@tests/demo.sh

# libFuzzer targets, one per parser (tests/fuzz/fuzz_*.c), each run FUZZ_TIME seconds from a
# copy of its seed corpus (tests/fuzz/corpus/<name>/). Crashes land in build-fuzz/.
FUZZ_TIME ?= 60
FUZZ_SRC   = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   = $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_LIB   = $(wildcard common/buf.c common/b64.c common/csv.c common/log.c common/proxy_header.c common/cidr.c common/user_domain.c \
    pop3/*.c imap/*.c) gateway/config.c

build-fuzz/%: tests/fuzz/%.c $(FUZZ_LIB)
	@mkdir -p build-fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -D_GNU_SOURCE -I. -o $@ $< $(FUZZ_LIB) $(PKG_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); c=build-fuzz/corpus/$${n#fuzz_}; \
	  mkdir -p $$c; cp -n tests/fuzz/corpus/$${n#fuzz_}/* $$c/ 2>/dev/null || true; \
	  echo "== $$n for $(FUZZ_TIME) s"; \
	  (cd build-fuzz && ./$$n -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	    corpus/$${n#fuzz_} >$$n.log 2>&1) || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units' build-fuzz/$$n.log; \
	  done

# Installs the binary, the sample ini (never over an existing one), the systemd unit, its
# tmpfiles.d line (the cache's directory), the man pages and the README. The sample ini is
# 0640 and of group popgate when that group exists (so `popgate uidl` run as the service user
# can read it; INI_GROUP= another), else of root's group, and the install says so. Paths with '|', '&' or spaces are not
# supported. PREFIX=/usr SYSCONFDIR=/etc for a system package; DESTDIR stages it elsewhere.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
SYSCONFDIR ?= $(PREFIX)/etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DOCDIR     ?= $(PREFIX)/share/doc/popgate
MANDIR     ?= $(PREFIX)/share/man
INI_GROUP  ?= popgate

install: $(BUILD)/popgate
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/popgate $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 etc/popgate.tmpfiles $(DESTDIR)$(TMPFILESDIR)/popgate.conf
	install -m 0755 $(BUILD)/popgate $(DESTDIR)$(SBINDIR)/popgate
	@ini=$(DESTDIR)$(SYSCONFDIR)/popgate/popgate.ini; \
	if test -e "$$ini"; then echo "install: $$ini exists: kept"; \
	elif getent group $(INI_GROUP) >/dev/null; then \
	  install -m 0640 -g $(INI_GROUP) etc/popgate.ini "$$ini" && \
	  echo "install: $$ini: 0640, group $(INI_GROUP)"; \
	else install -m 0640 etc/popgate.ini "$$ini" && echo "install: $$ini: 0640, no group" \
	  "$(INI_GROUP) here: chgrp it to the service user's group"; fi
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	  -e 's|@DOCDIR@|$(DOCDIR)|g' etc/popgate.service.in > $(DESTDIR)$(UNITDIR)/popgate.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/popgate.service
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 etc/popgate.8 $(DESTDIR)$(MANDIR)/man8/popgate.8
	install -m 0644 etc/popgate.ini.5 $(DESTDIR)$(MANDIR)/man5/popgate.ini.5

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(GW_OBJ:.o=.d) $(UNIT_BIN:=.d)
