/* gateway/tls.h: OpenSSL contexts for both sides, built once at start from the config. */
#ifndef POPGATE_TLS_H
#define POPGATE_TLS_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "config.h"

/* POP3 side ([tls]): NULL with *error_r NULL when no certificate is configured. */
SSL_CTX *gw_tls_server_ctx(const struct gw_config *cfg, const char **error_r);
/* A client context (TLSv1.2 or later) that verifies the server against ca_file ("" = the
 * system store) unless !verify, which is logged as a warning naming section ("[upstream]")
 * and host. The host name itself is checked per connection (conn_start_tls()). NULL with
 * *error_r set (naming "<section> ca_file") on failure. */
SSL_CTX *gw_tls_client_ctx_new(const char *section, const char *ca_file, bool verify,
    const char *host, const char **error_r);
/* IMAP side ([upstream]): NULL with *error_r NULL for security = none. */
SSL_CTX *gw_tls_client_ctx(const struct gw_config *cfg, const char **error_r);
/* One IMAP cluster ([upstream] or [upstream:DOMAIN], gateway/cluster.h): NULL with
 * *error_r NULL for security = none. */
SSL_CTX *gw_tls_upstream_ctx(const struct gw_upstream_conf *uc, const char **error_r);
/* The old POP3 server ([migration]): NULL with *error_r NULL when migration is off or its
 * security is none. */
SSL_CTX *gw_tls_migration_ctx(const struct gw_config *cfg, const char **error_r);
/* For popgate -t: builds every context and frees it, so a missing certificate, a key that
 * does not match it, an unknown cipher list or an unreadable ca_file fail the check rather
 * than the start. 0, or -1 with *error_r set. */
int gw_tls_check(const struct gw_config *cfg, const char **error_r);

#endif
