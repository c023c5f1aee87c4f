/* gateway/proxyproto.h: listeners behind a load balancer ([server] proxy_protocol = yes).
 * A new connection from a trusted proxy ([server] trusted_proxies) is held until its PROXY
 * header (common/proxy_header.h) has arrived, then becomes a session whose client address
 * is the header's; anyone else, a bad header, or none within PROXY_WAIT_TIMEOUT closes it
 * with a log line. */
#ifndef POPGATE_PROXYPROTO_H
#define POPGATE_PROXYPROTO_H

#include <stdbool.h>
#include <sys/socket.h>

/* Seconds a trusted proxy has to send the whole header: it writes it with the connection,
 * so a wait is a stuck proxy or someone else. */
#define PROXY_WAIT_TIMEOUT 5.0

/* The listeners' accept function with proxy_protocol on (ctx: the worker). Takes fd. */
void gw_proxyproto_accept(void *ctx, int fd, const struct sockaddr_storage *peer, bool tls);

#endif
