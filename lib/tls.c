/*
 * OpenSSL contexts (see tls.h). Both sides refuse anything older than TLS 1.2 and never
 * renegotiate; the server keeps no session state (no tickets, no cache).
 */
#include "lib/tls.h"

#include <string.h>

#include <openssl/err.h>

/* Appends "<file>: <what>: <OpenSSL's reason>" to err and clears OpenSSL's error queue. */
static void tls_error(struct buf *err, const char *file, const char *what)
{
    /* The oldest error is the most specific (e.g. the fopen failure under a PEM error). */
    unsigned long e = ERR_get_error();
    const char *reason = NULL;
    if (e != 0)
        reason = ERR_GET_LIB(e) == ERR_LIB_SYS ? strerror(ERR_GET_REASON(e))
                                               : ERR_reason_error_string(e);
    ERR_clear_error();
    if (err == NULL)
        return;
    if (file != NULL)
        buf_printf(err, "%s: ", file);
    buf_printf(err, "%s: %s", what, reason != NULL ? reason : "unknown error");
}

/* Settings shared by both sides. Returns NULL (error in err) when OpenSSL cannot make a context. */
static SSL_CTX *tls_ctx_new(const SSL_METHOD *method, struct buf *err)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        tls_error(err, NULL, "cannot create a TLS context");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, struct buf *err)
{
    SSL_CTX *ctx = tls_ctx_new(TLS_server_method(), err);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        tls_error(err, cert_file, "cannot load certificate chain");
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        tls_error(err, key_file, "cannot load private key");
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_error(err, key_file, "private key does not match the certificate");
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_client_ctx_new(struct buf *err)
{
    SSL_CTX *ctx = tls_ctx_new(TLS_client_method(), err);
    if (ctx != NULL)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}
