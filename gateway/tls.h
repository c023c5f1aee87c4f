/* gateway/tls.h: OpenSSL contexts for both sides, built once at start from the config. */
#ifndef POPGATE_TLS_H
#define POPGATE_TLS_H

#include <openssl/ssl.h>

#include "config.h"

/* POP3 side ([tls]): NULL with *error_r NULL when no certificate is configured. */
SSL_CTX *gw_tls_server_ctx(const struct gw_config *cfg, const char **error_r);
/* IMAP side ([upstream]): verifies against ca_file or the system store unless verify = no. */
SSL_CTX *gw_tls_client_ctx(const struct gw_config *cfg, const char **error_r);
/* For popgate -t: builds both contexts and frees them, so a missing certificate, a key that
 * does not match it, an unknown cipher list or an unreadable ca_file fail the check rather
 * than the start. 0, or -1 with *error_r set. */
int gw_tls_check(const struct gw_config *cfg, const char **error_r);

#endif
