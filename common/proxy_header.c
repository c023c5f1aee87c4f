/* common/proxy_header.c: the PROXY protocol header, v1 (a text line) and v2 (binary), as
 * HAProxy's doc/proxy-protocol.txt defines them.
 *
 * Stateless and strict: each call looks at all the bytes received so far, and says ERROR as
 * soon as they can no longer start a valid header, so a peer that is not a proxy is told
 * apart on its first bytes. Only TCP over IPv4 or IPv6 carries an address; v1 UNKNOWN, v2
 * LOCAL (the proxy's own health check), and v2 UNSPEC, UNIX and UDP are accepted without
 * one (the caller keeps the connection's own address). v2 TLVs are
 * checked to fit their header, then skipped: popgate uses none of them.
 * Not for: reading the socket, or deciding whom to trust (gateway/proxyproto.c). */
#include <arpa/inet.h>	/* inet_pton() only: a pure function, no socket here */

#include <stdbool.h>
#include <string.h>

#include "proxy_header.h"

static const uint8_t v1_sig[] = "PROXY ";
static const uint8_t v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
    0x54, 0x0A };

#define V1_SIG_LEN (sizeof(v1_sig) - 1)
#define V1_ADDR_MAX 45		/* INET6_ADDRSTRLEN - 1: the longest text IPv6 address */

/* Does data[0..len) start the same way as sig[0..siglen)? (Shorter data: as far as it goes.) */
static int
prefix_matches(const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen)
{
	return memcmp(data, sig, len < siglen ? len : siglen) == 0;
}

static enum proxy_result
fail(const char **error_r, const char *why)
{
	*error_r = why;
	return PROXY_ERROR;
}

/* RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is the IPv4 client a.b.c.d (a balancer listening on
 * IPv6 with IPv4 clients sends it in a TCP6 header). It becomes IPv4 here, so the logs,
 * max_per_address, the failed-login delay and the loopback check see one form of one
 * client. The destination follows when it is mapped too; otherwise it cannot be written
 * as IPv4 and is left 0.0.0.0 (popgate does not use it). */
static void
unmap_v4(struct proxy_header *hdr)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t dst[4] = { 0, 0, 0, 0 };

	if (hdr->family != PROXY_AF_INET6 || memcmp(hdr->src, mapped, 12) != 0)
		return;
	if (memcmp(hdr->dst, mapped, 12) == 0)
		memcpy(dst, hdr->dst + 12, 4);
	memmove(hdr->src, hdr->src + 12, 4);
	memset(hdr->src + 4, 0, 12);
	memset(hdr->dst, 0, 16);
	memcpy(hdr->dst, dst, 4);
	hdr->family = PROXY_AF_INET;
}

/* One space-separated field of a v1 line: [*pos, end) up to the next SP or end. */
static int
v1_field(const uint8_t *line, size_t end, size_t *pos, const uint8_t **f_r, size_t *flen_r)
{
	size_t start = *pos, i = start;

	while (i < end && line[i] != ' ')
		i++;
	if (i == start)
		return -1;		/* an empty field: two spaces, or a space at the end */
	*f_r = line + start;
	*flen_r = i - start;
	*pos = i < end ? i + 1 : i;
	return i < end ? 1 : 0;		/* 1: a space followed */
}

/* A v1 address field: only the bytes its family's text form has. inet_pton() alone would
 * stop at a NUL ("1.2.3.4\0junk" read as 1.2.3.4) and say nothing of what follows it. */
static int
v1_addr(const uint8_t *f, size_t flen, int af, uint8_t *out)
{
	char text[V1_ADDR_MAX + 1];

	if (flen > V1_ADDR_MAX)
		return -1;
	for (size_t i = 0; i < flen; i++) {
		uint8_t c = f[i];
		bool ok = (c >= '0' && c <= '9') || c == '.' || (af == AF_INET6 &&
		    (c == ':' || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));

		if (!ok)
			return -1;
	}
	memcpy(text, f, flen);
	text[flen] = '\0';
	return inet_pton(af, text, out) == 1 ? 0 : -1;
}

/* Spec §2.1: a decimal number from 0 to 65535. */
static int
v1_port(const uint8_t *f, size_t flen, uint16_t *port_r)
{
	unsigned v = 0;

	if (flen == 0 || flen > 5)
		return -1;
	for (size_t i = 0; i < flen; i++) {
		if (f[i] < '0' || f[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(f[i] - '0');
	}
	if (v > 65535 || (flen > 1 && f[0] == '0'))
		return -1;	/* leading zeros: the spec writes none, a sender that does is broken */
	*port_r = (uint16_t)v;
	return 0;
}

static enum proxy_result
parse_v1(const uint8_t *data, size_t len, struct proxy_header *hdr, const char **error_r)
{
	size_t scan = len < PROXY_V1_MAX - 1 ? len : PROXY_V1_MAX - 1, cr, pos, flen;
	const uint8_t *f, *fields[4];
	size_t flens[4];
	int af, more;

	if (!prefix_matches(data, len, v1_sig, V1_SIG_LEN))
		return fail(error_r, "no PROXY header");
	/* The CR of the line's CRLF can be at most at 105: 107 bytes in all. */
	for (cr = 0; cr < scan && data[cr] != '\r'; cr++)
		if (data[cr] == '\n')
			return fail(error_r, "v1: LF without CR");
	if (cr == scan)
		return len >= PROXY_V1_MAX - 1 ? fail(error_r, "v1: no CRLF within 107 bytes") :
		    PROXY_NEED_MORE;
	if (cr + 1 == len)
		return PROXY_NEED_MORE;
	if (data[cr + 1] != '\n')
		return fail(error_r, "v1: CR without LF");
	if (cr < V1_SIG_LEN)
		return fail(error_r, "no PROXY header");
	memset(hdr, 0, sizeof(*hdr));
	hdr->version = 1;
	hdr->len = cr + 2;
	pos = V1_SIG_LEN;
	if ((more = v1_field(data, cr, &pos, &f, &flen)) < 0)
		return fail(error_r, "v1: no protocol");
	if (flen == 7 && memcmp(f, "UNKNOWN", 7) == 0) {
		hdr->family = PROXY_AF_NONE;	/* §2.1: the rest of the line is to be ignored */
		return PROXY_DONE;
	}
	if (flen == 4 && memcmp(f, "TCP4", 4) == 0)
		af = AF_INET;
	else if (flen == 4 && memcmp(f, "TCP6", 4) == 0)
		af = AF_INET6;
	else
		return fail(error_r, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
	for (size_t k = 0; k < 4; k++) {
		if (!more)
			return fail(error_r, "v1: fewer than 4 address fields");
		if ((more = v1_field(data, cr, &pos, &fields[k], &flens[k])) < 0)
			return fail(error_r, "v1: an empty field");
	}
	if (more)
		return fail(error_r, "v1: more than 4 address fields");
	if (v1_addr(fields[0], flens[0], af, hdr->src) < 0)
		return fail(error_r, af == AF_INET ? "v1: source is not an IPv4 address" :
		    "v1: source is not an IPv6 address");
	if (v1_addr(fields[1], flens[1], af, hdr->dst) < 0)
		return fail(error_r, af == AF_INET ? "v1: destination is not an IPv4 address" :
		    "v1: destination is not an IPv6 address");
	if (v1_port(fields[2], flens[2], &hdr->src_port) < 0)
		return fail(error_r, "v1: source port is not a number from 0 to 65535");
	if (v1_port(fields[3], flens[3], &hdr->dst_port) < 0)
		return fail(error_r, "v1: destination port is not a number from 0 to 65535");
	hdr->family = af == AF_INET ? PROXY_AF_INET : PROXY_AF_INET6;
	unmap_v4(hdr);
	return PROXY_DONE;
}

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static enum proxy_result
parse_v2(const uint8_t *data, size_t len, struct proxy_header *hdr, const char **error_r)
{
	unsigned cmd, fam, proto;
	size_t body, addrlen = 0;
	const uint8_t *tlv, *end;

	if (!prefix_matches(data, len, v2_sig, sizeof(v2_sig)))
		return fail(error_r, "no PROXY header");
	/* Each check runs as soon as its byte is there: a prefix fails as the whole would. */
	if (len > 12 && data[12] >> 4 != 2)
		return fail(error_r, "v2: version is not 2");
	cmd = len > 12 ? data[12] & 0x0F : 0;
	if (cmd > 1)
		return fail(error_r, "v2: command is not LOCAL or PROXY");
	fam = len > 13 ? data[13] >> 4 : 0;
	proto = len > 13 ? data[13] & 0x0F : 0;
	/* §2.2: with LOCAL the family is ignored. With PROXY, values the spec does not define
	 * are refused; defined ones other than TCP (UNIX sockets, UDP) fall back to UNSPEC,
	 * the connection's own address, as the spec asks of a receiver that does not
	 * implement them (and as its reference code does). */
	if (len > 13 && cmd == 1) {
		if (fam > 3)
			return fail(error_r, "v2: unknown address family");
		if (proto > 2)
			return fail(error_r, "v2: unknown transport protocol");
	}
	if (len < PROXY_V2_FIXED)
		return PROXY_NEED_MORE;
	body = be16(data + 14);
	if (body > PROXY_V2_LEN_MAX)
		return fail(error_r, "v2: header longer than 2048 bytes");
	if (cmd == 1 && proto == 1 && fam == 1)
		addrlen = 12;		/* src, dst, sport, dport */
	else if (cmd == 1 && proto == 1 && fam == 2)
		addrlen = 36;
	if (body < addrlen)
		return fail(error_r, "v2: length too short for its addresses");
	if (len < PROXY_V2_FIXED + body)
		return PROXY_NEED_MORE;
	memset(hdr, 0, sizeof(*hdr));
	hdr->version = 2;
	hdr->len = PROXY_V2_FIXED + body;
	if (addrlen == 0) {
		/* LOCAL, PROXY UNSPEC, UNIX or UDP: whatever follows is ignored (§2.2). */
		hdr->family = PROXY_AF_NONE;
		return PROXY_DONE;
	}
	/* §2.2.1: addresses then ports, in network byte order. */
	if (fam == 1) {
		hdr->family = PROXY_AF_INET;
		memcpy(hdr->src, data + 16, 4);
		memcpy(hdr->dst, data + 20, 4);
		hdr->src_port = be16(data + 24);
		hdr->dst_port = be16(data + 26);
	} else {
		hdr->family = PROXY_AF_INET6;
		memcpy(hdr->src, data + 16, 16);
		memcpy(hdr->dst, data + 32, 16);
		hdr->src_port = be16(data + 48);
		hdr->dst_port = be16(data + 50);
	}
	/* §2.2.7: type (1 byte), length (2), value; together exactly the rest of the header. */
	tlv = data + PROXY_V2_FIXED + addrlen;
	end = data + PROXY_V2_FIXED + body;
	while (tlv < end) {
		size_t vlen;

		if (end - tlv < 3)
			return fail(error_r, "v2: truncated TLV");
		vlen = be16(tlv + 1);
		if ((size_t)(end - tlv - 3) < vlen)
			return fail(error_r, "v2: TLV longer than the header");
		tlv += 3 + vlen;
	}
	unmap_v4(hdr);
	return PROXY_DONE;
}

enum proxy_result
proxy_header_parse(const uint8_t *data, size_t len, struct proxy_header *hdr_r,
    const char **error_r)
{
	if (len == 0)
		return PROXY_NEED_MORE;
	if (data[0] == v1_sig[0])
		return parse_v1(data, len, hdr_r, error_r);
	if (data[0] == v2_sig[0])
		return parse_v2(data, len, hdr_r, error_r);
	return fail(error_r, "no PROXY header");
}
