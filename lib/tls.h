/*
 * OpenSSL contexts for the server and client sides. The bytes themselves never touch OpenSSL's
 * socket code: stream.c pumps them through memory BIOs (the h2o pattern).
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <openssl/ssl.h>

#include "lib/buf.h"

/* A server context from PEM certificate chain and key files. Returns NULL and writes a reason
 * naming the file into err. TLS 1.2 minimum. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, struct buf *err);
/* A client context for outbound delivery (opportunistic: peer certificates are not verified here;
 * callers that need verification set it on the SSL). */
SSL_CTX *tls_client_ctx_new(struct buf *err);

#endif
