/*
 * Who an HTTP request is: the bearer tokens file (http.tokens: one "name:hash" line a user, hash
 * the token's SHA-256 in hex, so the file never holds a token itself) and the request's
 * "Authorization: Bearer <token>" field (RFC 6750 §2.1). Tokens are long random secrets, not
 * passwords: one SHA-256 (about a microsecond) is the right hash, and it runs on the loop. The
 * HTTP server (http_server.c) owns the table; parsing is pure and fuzzed
 * (tests/fuzz/fuzz_http_request.c).
 */
#ifndef SLUICE_HTTP_AUTH_H
#define SLUICE_HTTP_AUTH_H

#include <stddef.h>

#include "lib/buf.h"

/* A user name is at most this long: letters, digits, '.', '_', '-', '@'. */
#define HTTP_USER_MAX 64
/* A token longer than this is refused unhashed. */
#define HTTP_TOKEN_MAX 256

struct http_tokens;

/* Reads the tokens file at path. Returns 0 with *out set (an empty file is fine), or -errno with
 * each problem as "path:line: message" in err. Blocking: at start. */
int http_tokens_load(const char *path, struct http_tokens **out, struct buf *err);
/* One line of such a file into t (tests and the loader). Returns NULL, or why it is refused. */
const char *http_tokens_add_line(struct http_tokens *t, const char *line, size_t len);
struct http_tokens *http_tokens_new(void);
void http_tokens_free(struct http_tokens *t);

/* The token in an Authorization field's value: "Bearer" (any case), blanks, then the token
 * (RFC 6750's b64token characters). Returns 1 with *token and *len a slice of value, or 0. */
int http_bearer_parse(const char *value, size_t value_len, const char **token, size_t *len);
/* The user whose hash the token has, or NULL. Every entry is compared, in constant time. */
const char *http_tokens_user(const struct http_tokens *t, const char *token, size_t len);

#endif
