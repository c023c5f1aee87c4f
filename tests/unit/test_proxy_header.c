/* tests/unit/test_proxy_header.c: the PROXY protocol header parser (common/proxy_header.c):
 * the spec's examples of v1 and v2, LOCAL and UNKNOWN, TLVs, and every malformed header we
 * could think of; each input also cut at every byte, where a prefix must say NEED_MORE or
 * already the whole's ERROR, and the bytes after a header are never taken. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>

#include "../../common/proxy_header.h"
#include "unit.h"

#define V2SIG "\r\n\r\n\0\r\nQUIT\n"

struct tcase {
	const char *in;
	size_t len;
	const char *want;	/* "DONE v LEN src:port dst:port", "DONE v LEN none", "MORE", or "ERR why" */
};

static const struct tcase cases[] = {
	/* v1, the spec's examples (§2.1) */
	{ W("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
	    "DONE 1 56 255.255.255.255:65535 255.255.255.255:65535" },
	{ W("PROXY TCP6 ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"),
	    "ERR v1: source is not an IPv6 address" },
	{ W("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
	    "DONE 1 104 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:65535 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:65535" },
	{ W("PROXY UNKNOWN\r\n"), "DONE 1 15 none" },
	{ W("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
	    "DONE 1 107 none" },
	{ W("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"),
	    "DONE 1 47 192.168.0.1:56324 192.168.0.11:443" },
	{ W("PROXY TCP4 203.0.113.7 10.0.0.1 0 110\r\nUSER a\r\n"), "DONE 1 39 203.0.113.7:0 10.0.0.1:110" },
	{ W("PROXY TCP6 2001:db8::1 ::1 4242 995\r\n"), "DONE 1 37 2001:db8::1:4242 ::1:995" },
	/* IPv4-mapped: the IPv4 client; the destination too when it is mapped, else 0.0.0.0 */
	{ W("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n"), "DONE 1 37 192.0.2.1:1 0.0.0.0:2" },
	{ W("PROXY TCP6 ::FFFF:192.0.2.1 ::ffff:c000:202 1 2\r\n"), "DONE 1 49 192.0.2.1:1 192.0.2.2:2" },
	{ W("PROXY TCP6 ::ffff:0:192.0.2.1 ::1 1 2\r\n"), "DONE 1 39 ::ffff:0:c000:201:1 ::1:2" },
	{ W("PROXY TCP6 ::192.0.2.1 ::1 1 2\r\n"), "DONE 1 32 ::192.0.2.1:1 ::1:2" },
	{ W("PROXY TCP6 2001:db8::1 ::ffff:192.0.2.2 1 2\r\n"), "DONE 1 45 2001:db8::1:1 ::ffff:192.0.2.2:2" },
	/* v1, malformed */
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), "ERR v1: LF without CR" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"), "ERR v1: CR without LF" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 1 2"), "MORE" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"), "MORE" },
	{ W("PROXY"), "MORE" },
	{ W("PROXX TCP4"), "ERR no PROXY header" },
	{ W("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), "ERR no PROXY header" },
	{ W("PROXY\r\n"), "ERR no PROXY header" },
	{ W("PROXY \r\n"), "ERR v1: no protocol" },
	{ W("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), "ERR v1: no protocol" },
	{ W("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), "ERR v1: protocol is not TCP4, TCP6 or UNKNOWN" },
	{ W("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), "ERR v1: protocol is not TCP4, TCP6 or UNKNOWN" },
	{ W("PROXY UNKNOWNX\r\n"), "ERR v1: protocol is not TCP4, TCP6 or UNKNOWN" },
	{ W("PROXY TCP4\r\n"), "ERR v1: fewer than 4 address fields" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), "ERR v1: fewer than 4 address fields" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), "ERR v1: more than 4 address fields" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), "ERR v1: more than 4 address fields" },
	{ W("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), "ERR v1: an empty field" },
	{ W("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), "ERR v1: source is not an IPv4 address" },
	{ W("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), "ERR v1: source is not an IPv4 address" },
	{ W("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), "ERR v1: source is not an IPv4 address" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8.9 1 2\r\n"), "ERR v1: destination is not an IPv4 address" },
	{ W("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), "ERR v1: source is not an IPv6 address" },
	{ W("PROXY TCP6 ::1 ::g 1 2\r\n"), "ERR v1: destination is not an IPv6 address" },
	{ W("PROXY TCP6 ::1 0123:4567:89ab:cdef:0123:4567:89ab:cdef:0 1 2\r\n"),
	    "ERR v1: destination is not an IPv6 address" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), "ERR v1: source port is not a number from 0 to 65535" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n"), "ERR v1: source port is not a number from 0 to 65535" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 123456 2\r\n"), "ERR v1: source port is not a number from 0 to 65535" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), "ERR v1: source port is not a number from 0 to 65535" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n"), "ERR v1: source port is not a number from 0 to 65535" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 010 2\r\n"), "ERR v1: source port is not a number from 0 to 65535" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 1 http\r\n"), "ERR v1: destination port is not a number from 0 to 65535" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n"), "ERR v1: destination port is not a number from 0 to 65535" },
	/* an address with a NUL or a byte outside its alphabet (inet_pton() stops at a NUL) */
	{ W("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"), "ERR v1: source is not an IPv4 address" },
	{ W("PROXY TCP4 1.2.3.4\0junk 5.6.7.8 1 2\r\n"), "ERR v1: source is not an IPv4 address" },
	{ W("PROXY TCP4 1.2.3.4 5.6.7.8\0\x01 1 2\r\n"), "ERR v1: destination is not an IPv4 address" },
	{ W("PROXY TCP6 ::1\0:: ::1 1 2\r\n"), "ERR v1: source is not an IPv6 address" },
	{ W("PROXY TCP6 ::1 ::1\0 1 2\r\n"), "ERR v1: destination is not an IPv6 address" },
	{ W("PROXY TCP4 1.2.3.4\t 5.6.7.8 1 2\r\n"), "ERR v1: source is not an IPv4 address" },
	{ W("PROXY TCP4 \xc2\xb9.2.3.4 5.6.7.8 1 2\r\n"), "ERR v1: source is not an IPv4 address" },
	{ W("PROXY TCP4 a.2.3.4 5.6.7.8 1 2\r\n"), "ERR v1: source is not an IPv4 address" },
	{ W("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), "ERR v1: source is not an IPv6 address" },
	{ W("PROXY TCP6 ::1/128 ::1 1 2\r\n"), "ERR v1: source is not an IPv6 address" },
	/* 108 bytes with its CRLF: one too many */
	{ W("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655355\r\n"),
	    "ERR v1: no CRLF within 107 bytes" },
	{ W("PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
	    "ERR v1: no CRLF within 107 bytes" },
	/* v2 (§2.2): PROXY TCP over IPv4, 203.0.113.7:4242 -> 192.0.2.1:110 */
	{ W(V2SIG "\x21\x11\x00\x0c" "\xcb\x00\x71\x07" "\xc0\x00\x02\x01" "\x10\x92" "\x00\x6e"),
	    "DONE 2 28 203.0.113.7:4242 192.0.2.1:110" },
	/* ... with the client's first bytes after it */
	{ W(V2SIG "\x21\x11\x00\x0c" "\xcb\x00\x71\x07" "\xc0\x00\x02\x01" "\x10\x92" "\x00\x6e" "CAPA\r\n"),
	    "DONE 2 28 203.0.113.7:4242 192.0.2.1:110" },
	/* ... with TLVs: ALPN "pop3", a NOOP of 0 bytes, unique id */
	{ W(V2SIG "\x21\x11\x00\x1f" "\xcb\x00\x71\x07" "\xc0\x00\x02\x01" "\x10\x92" "\x00\x6e"
	    "\x01\x00\x04pop3" "\x04\x00\x00" "\x05\x00\x03" "abc" "\x20\x00\x00"),
	    "DONE 2 47 203.0.113.7:4242 192.0.2.1:110" },
	/* TCP over IPv6, 2001:db8::7 port 4242 -> ::1 port 995 */
	{ W(V2SIG "\x21\x21\x00\x24"
	    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" "\x10\x92\x03\xe3"),
	    "DONE 2 52 2001:db8::7:4242 ::1:995" },
	/* TCP over IPv6 with IPv4-mapped addresses: IPv4, ::ffff:203.0.113.7 -> ::ffff:192.0.2.1 */
	{ W(V2SIG "\x21\x21\x00\x24"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xcb\x00\x71\x07"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xc0\x00\x02\x01" "\x10\x92\x00\x6e"),
	    "DONE 2 52 203.0.113.7:4242 192.0.2.1:110" },
	/* ... a mapped source to a real IPv6 destination: the IPv4 source */
	{ W(V2SIG "\x21\x21\x00\x24"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xcb\x00\x71\x07"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" "\x10\x92\x00\x6e"),
	    "DONE 2 52 203.0.113.7:4242 0.0.0.0:110" },
	/* ... ::ffff:0:a.b.c.d (SIIT) and ::a.b.c.d (deprecated compatible) are not mapped */
	{ W(V2SIG "\x21\x21\x00\x24"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\xcb\x00\x71\x07"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" "\x10\x92\x00\x6e"),
	    "DONE 2 52 ::ffff:0:cb00:7107:4242 ::1:110" },
	/* LOCAL: a health check of the proxy's own; the family and whatever follows ignored */
	{ W(V2SIG "\x20\x00\x00\x00"), "DONE 2 16 none" },
	{ W(V2SIG "\x20\x11\x00\x0c" "\xcb\x00\x71\x07" "\xc0\x00\x02\x01" "\x10\x92" "\x00\x6e"), "DONE 2 28 none" },
	{ W(V2SIG "\x20\x31\x00\x02" "xx"), "DONE 2 18 none" },
	/* PROXY over UNSPEC: accepted without an address */
	{ W(V2SIG "\x21\x00\x00\x00"), "DONE 2 16 none" },
	/* PROXY over UDP, over a UNIX stream (2 x 108 bytes), over IPv4 with UNSPEC
	 * transport: the spec's fallback to UNSPEC, no address */
	{ W(V2SIG "\x21\x12\x00\x0c" "\xcb\x00\x71\x07" "\xc0\x00\x02\x01" "\x10\x92" "\x00\x6e"), "DONE 2 28 none" },
	{ W(V2SIG "\x21\x10\x00\x00"), "DONE 2 16 none" },
	{ W(V2SIG "\x21\x31\x00\x04" "/tmp"), "DONE 2 20 none" },
	/* v2, malformed */
	{ W("\r\n\r\n\0\r\nQUIT"), "MORE" },
	{ W(V2SIG "\x21\x11\x00"), "MORE" },
	{ W(V2SIG "\x21\x11\x00\x0c" "\xcb\x00\x71\x07" "\xc0\x00\x02\x01" "\x10\x92" "\x00"), "MORE" },
	{ W("\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x00"), "ERR no PROXY header" },
	{ W("\r\nX"), "ERR no PROXY header" },
	{ W(V2SIG "\x11\x11\x00\x0c"), "ERR v2: version is not 2" },
	{ W(V2SIG "\x31\x11\x00\x0c"), "ERR v2: version is not 2" },
	{ W(V2SIG "\x22\x11\x00\x0c"), "ERR v2: command is not LOCAL or PROXY" },
	{ W(V2SIG "\x2f"), "ERR v2: command is not LOCAL or PROXY" },
	{ W(V2SIG "\x21\x41\x00\x0c"), "ERR v2: unknown address family" },
	{ W(V2SIG "\x21\xf1\x00\x0c"), "ERR v2: unknown address family" },
	{ W(V2SIG "\x21\x13\x00\x0c"), "ERR v2: unknown transport protocol" },
	{ W(V2SIG "\x21\x03\x00\x00"), "ERR v2: unknown transport protocol" },
	{ W(V2SIG "\x21\x11\x00\x0b" "\xcb\x00\x71\x07" "\xc0\x00\x02\x01" "\x10\x92" "\x00"),
	    "ERR v2: length too short for its addresses" },
	{ W(V2SIG "\x21\x21\x00\x0c"), "ERR v2: length too short for its addresses" },
	{ W(V2SIG "\x21\x11\x08\x01"), "ERR v2: header longer than 2048 bytes" },
	{ W(V2SIG "\x21\x11\xff\xff"), "ERR v2: header longer than 2048 bytes" },
	{ W(V2SIG "\x21\x11\x00\x0e" "\xcb\x00\x71\x07" "\xc0\x00\x02\x01" "\x10\x92" "\x00\x6e" "\x01\x00"),
	    "ERR v2: truncated TLV" },
	{ W(V2SIG "\x21\x11\x00\x10" "\xcb\x00\x71\x07" "\xc0\x00\x02\x01" "\x10\x92" "\x00\x6e" "\x01\x00\x02" "a"),
	    "ERR v2: TLV longer than the header" },
	/* neither */
	{ W("USER alice\r\n"), "ERR no PROXY header" },
	{ W("\x16\x03\x01\x02\x00"), "ERR no PROXY header" },
	{ W(""), "MORE" },
};

static void
render(enum proxy_result r, const struct proxy_header *h, const char *error, char *out, size_t size)
{
	char a[64], b[64];
	int af;

	if (r == PROXY_NEED_MORE) {
		snprintf(out, size, "MORE");
		return;
	}
	if (r == PROXY_ERROR) {
		snprintf(out, size, "ERR %s", error);
		return;
	}
	assert_true(h->len <= PROXY_HEADER_MAX);
	if (h->family == PROXY_AF_NONE) {
		snprintf(out, size, "DONE %u %zu none", h->version, h->len);
		return;
	}
	af = h->family == PROXY_AF_INET ? AF_INET : AF_INET6;
	assert_non_null(inet_ntop(af, h->src, a, sizeof(a)));
	assert_non_null(inet_ntop(af, h->dst, b, sizeof(b)));
	snprintf(out, size, "DONE %u %zu %s:%u %s:%u", h->version, h->len, a, h->src_port, b,
	    h->dst_port);
}

/* The parse of exactly data[0..len), from a copy of its own so that a read past the end
 * is a valgrind/ASan error. */
static enum proxy_result
parse_exact(const char *data, size_t len, char *out, size_t size)
{
	uint8_t *copy = test_malloc(len ? len : 1);
	struct proxy_header h;
	const char *error = NULL;
	enum proxy_result r;

	memcpy(copy, data, len);
	r = proxy_header_parse(copy, len, &h, &error);
	render(r, &h, error, out, size);
	test_free(copy);
	return r;
}

static void
test_cases(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		char got[256], part[256];
		enum proxy_result whole = parse_exact(c->in, c->len, got, sizeof(got));

		if (strcmp(got, c->want) != 0)
			print_error("case %zu: got \"%s\", want \"%s\"\n", i, got, c->want), bad++;
		/* Every prefix: NEED_MORE, or already the same verdict as the whole. */
		for (size_t cut = 0; cut < c->len; cut++) {
			enum proxy_result r = parse_exact(c->in, cut, part, sizeof(part));

			if (r == PROXY_NEED_MORE)
				continue;
			if (strcmp(part, got) != 0)
				fail_msg("case %zu cut at %zu: got \"%s\", whole \"%s\"", i, cut, part, got);
			assert_int_equal(r, whole);
		}
	}
	assert_int_equal(bad, 0);
}

/* NEED_MORE promises that every byte given belongs to the header: a reader that consumes
 * them never eats the client's first bytes. */
static void
test_need_more_never_past_header(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		struct proxy_header h;
		const char *error;

		if (proxy_header_parse((const uint8_t *)c->in, c->len, &h, &error) != PROXY_DONE)
			continue;
		for (size_t cut = 0; cut < c->len; cut++) {
			struct proxy_header p;

			if (proxy_header_parse((const uint8_t *)c->in, cut, &p, &error) == PROXY_NEED_MORE)
				assert_true(cut < h.len);
		}
	}
}

/* A v2 header of the largest allowed length, all of it one TLV: accepted; one byte more
 * in the length: refused before the body arrives. */
static void
test_v2_length_bound(void **state)
{
	static uint8_t buf[PROXY_HEADER_MAX + 8];
	struct proxy_header h;
	const char *error = NULL;
	size_t tlv = PROXY_V2_LEN_MAX - 12 - 3;

	(void)state;
	memcpy(buf, V2SIG "\x21\x11", 14);
	buf[14] = PROXY_V2_LEN_MAX >> 8;
	buf[15] = PROXY_V2_LEN_MAX & 0xff;
	memcpy(buf + 16, "\x7f\x00\x00\x01" "\x7f\x00\x00\x02" "\x00\x01\x00\x02", 12);
	buf[28] = 0xee;
	buf[29] = (uint8_t)(tlv >> 8);
	buf[30] = (uint8_t)tlv;
	assert_int_equal(proxy_header_parse(buf, PROXY_HEADER_MAX - 1, &h, &error), PROXY_NEED_MORE);
	assert_int_equal(proxy_header_parse(buf, PROXY_HEADER_MAX, &h, &error), PROXY_DONE);
	assert_int_equal(h.len, PROXY_HEADER_MAX);
	assert_int_equal(h.src_port, 1);
	buf[15]++;
	assert_int_equal(proxy_header_parse(buf, 16, &h, &error), PROXY_ERROR);
	assert_string_equal(error, "v2: header longer than 2048 bytes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_need_more_never_past_header),
		cmocka_unit_test(test_v2_length_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
