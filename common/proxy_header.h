/* common/proxy_header.h: the PROXY protocol header, versions 1 and 2 (HAProxy's
 * doc/proxy-protocol.txt), that a load balancer puts before a connection's first byte to
 * tell the real client's address.
 *
 * Pure: bytes in, a verdict out; no socket, no allocation. The parse is stateless: the
 * caller keeps the bytes received so far and hands all of them each time, so a header cut
 * by TCP in any place gives the same answer once its last byte arrived. */
#ifndef POPGATE_PROXY_HEADER_H
#define POPGATE_PROXY_HEADER_H

#include <stddef.h>
#include <stdint.h>

#define PROXY_V1_MAX 107		/* spec §2.1: the longest v1 line, CRLF included */
#define PROXY_V2_FIXED 16		/* spec §2.2: signature, ver/cmd, family, length */
/* The spec allows 65535 bytes after the fixed part; TLVs (skipped here) from the load
 * balancers in use (AWS, GCP, HAProxy's SSL and unique-id TLVs) need a few hundred. */
#define PROXY_V2_LEN_MAX 2048
/* The most bytes any header occupies: what a reader needs to buffer. */
#define PROXY_HEADER_MAX (PROXY_V2_FIXED + PROXY_V2_LEN_MAX)

enum proxy_result {
	PROXY_NEED_MORE,	/* every byte given is the start of a header: call again with more */
	PROXY_ERROR,		/* not a valid header: *error_r says why; more bytes change nothing */
	PROXY_DONE,		/* *hdr_r is filled; the bytes after hdr_r->len are the client's */
};

enum proxy_family {
	PROXY_AF_NONE,		/* v1 UNKNOWN, v2 LOCAL or UNSPEC: no address, use the connection's */
	PROXY_AF_INET,
	PROXY_AF_INET6,
};

struct proxy_header {
	size_t len;			/* header bytes, at most PROXY_HEADER_MAX */
	unsigned version;		/* 1 or 2 */
	/* The source's: a TCP6 header with an IPv4-mapped source (::ffff:a.b.c.d) gives INET
	 * and a.b.c.d, and its destination as IPv4 too (0.0.0.0 if that is not mapped). */
	enum proxy_family family;
	uint8_t src[16], dst[16];	/* network order: 4 bytes used for INET, 16 for INET6 */
	uint16_t src_port, dst_port;	/* host order */
};

/* Parses the header at the start of data[0..len); never reads past data + len.
 * NEED_MORE guarantees that all len bytes belong to the header (a reader may consume them);
 * ERROR sets *error_r to a static string; DONE fills *hdr_r. */
enum proxy_result proxy_header_parse(const uint8_t *data, size_t len, struct proxy_header *hdr_r,
    const char **error_r);

#endif
