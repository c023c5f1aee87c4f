/* gateway/tls.c: TLS contexts (OpenSSL 3). The POP3 side serves a certificate chain with
 * a minimum protocol (default TLSv1.2) and optional cipher list; the client sides (the IMAP
 * upstream, the old POP3 server of [migration]) verify the server's certificate and host
 * name by default (RFC 8314, RFC 6125). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>

#include "../common/log.h"
#include "tls.h"

static const char *
tls_error(const char *what)
{
	static char error[300];
	unsigned long e = ERR_get_error();
	char reason[200] = "";

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	snprintf(error, sizeof(error), "%s%s%s", what, reason[0] ? ": " : "", reason);
	ERR_clear_error();
	return error;
}

static int
min_version(const char *name)
{
	static const struct { const char *name; int v; } v[] = {
		{ "TLSv1", TLS1_VERSION }, { "TLSv1.1", TLS1_1_VERSION },
		{ "TLSv1.2", TLS1_2_VERSION }, { "TLSv1.3", TLS1_3_VERSION },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (strcasecmp(name, v[i].name) == 0)
			return v[i].v;
	return -1;
}

SSL_CTX *
gw_tls_server_ctx(const struct gw_config *cfg, const char **error_r)
{
	SSL_CTX *ctx;
	int minv;

	*error_r = NULL;
	if (cfg->tls_cert_file[0] == '\0')
		return NULL;
	if ((minv = min_version(cfg->tls_min_protocol)) < 0) {
		*error_r = "[tls] min_protocol: use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3";
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		*error_r = tls_error("TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, minv);
	/* CLEANSE_PLAINTEXT: a record is decrypted in place, and a client's PASS or AUTH line
	 * would otherwise stay in OpenSSL's read buffer (freed uncleansed when released). */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_CLEANSE_PLAINTEXT);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
		*error_r = tls_error("[tls] cert_file");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = tls_error("[tls] key_file");
		goto fail;
	}
	if (cfg->tls_ciphers[0] != '\0' && SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
		*error_r = tls_error("[tls] ciphers");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
gw_tls_client_ctx_new(const char *section, const char *ca_file, bool verify, const char *host,
    const char **error_r)
{
	static char what[80];
	SSL_CTX *ctx;

	*error_r = NULL;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		*error_r = tls_error("TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (!verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		log_warn("%s verify = no: the certificate of %s is NOT checked; anyone on the path "
		    "to it can read every password", section, host);
		return ctx;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			snprintf(what, sizeof(what), "%s ca_file", section);
			*error_r = tls_error(what);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		*error_r = tls_error("system CA store");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *
gw_tls_client_ctx(const struct gw_config *cfg, const char **error_r)
{
	*error_r = NULL;
	if (cfg->up_security == GW_SEC_NONE)
		return NULL;
	return gw_tls_client_ctx_new("[upstream]", cfg->up_ca_file, cfg->up_verify, cfg->up_host,
	    error_r);
}

SSL_CTX *
gw_tls_upstream_ctx(const struct gw_upstream_conf *uc, const char **error_r)
{
	char section[300];

	*error_r = NULL;
	if (uc->security == GW_SEC_NONE)
		return NULL;
	snprintf(section, sizeof(section), uc->domain[0] ? "[upstream:%.253s]" : "[upstream]",
	    uc->domain);
	return gw_tls_client_ctx_new(section, uc->ca_file, uc->verify, uc->host, error_r);
}

SSL_CTX *
gw_tls_migration_ctx(const struct gw_config *cfg, const char **error_r)
{
	*error_r = NULL;
	if (cfg->mig_host[0] == '\0' || cfg->mig_security == GW_SEC_NONE)
		return NULL;
	return gw_tls_client_ctx_new("[migration]", cfg->mig_ca_file, cfg->mig_verify,
	    cfg->mig_host, error_r);
}

int
gw_tls_check(const struct gw_config *cfg, const char **error_r)
{
	SSL_CTX *ctx;

	ctx = gw_tls_server_ctx(cfg, error_r);
	SSL_CTX_free(ctx);
	if (*error_r != NULL)
		return -1;
	ctx = gw_tls_client_ctx(cfg, error_r);
	SSL_CTX_free(ctx);
	if (*error_r != NULL)
		return -1;
	for (size_t i = 0; i < cfg->ndomains; i++) {
		static char error[400];

		ctx = gw_tls_upstream_ctx(&cfg->domains[i], error_r);
		SSL_CTX_free(ctx);
		if (*error_r != NULL) {
			snprintf(error, sizeof(error), "line %d: %s", cfg->domains[i].line, *error_r);
			*error_r = error;
			return -1;
		}
	}
	ctx = gw_tls_migration_ctx(cfg, error_r);
	SSL_CTX_free(ctx);
	return *error_r != NULL ? -1 : 0;
}
