/* gateway/tls.h: OpenSSL contexts for both sides, built once at start from the config. */
#ifndef POPGATE_TLS_H
#define POPGATE_TLS_H

#include <openssl/ssl.h>

#include "config.h"

/* POP3 side ([tls]): NULL with *error_r NULL when no certificate is configured. */
SSL_CTX *gw_tls_server_ctx(const struct gw_config *cfg, const char **error_r);
/* IMAP side ([upstream]): verifies against ca_file or the system store unless verify = no. */
SSL_CTX *gw_tls_client_ctx(const struct gw_config *cfg, const char **error_r);

#endif
