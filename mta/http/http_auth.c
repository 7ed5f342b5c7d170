#include "mta/http/http_auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/hex.h"
#include "lib/line_file.h"
#include "lib/xalloc.h"

#define DIGEST_LEN 32

struct http_token {
    char user[HTTP_USER_MAX + 1];
    unsigned char digest[DIGEST_LEN];
};

struct http_tokens {
    struct http_token *items;
    size_t n, cap;
};

struct http_tokens *http_tokens_new(void)
{
    return xcalloc(1, sizeof(struct http_tokens));
}

void http_tokens_free(struct http_tokens *t)
{
    if (t == NULL)
        return;
    free(t->items);
    free(t);
}

const char *http_tokens_add_line(struct http_tokens *t, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return "expected name:sha256-hex";
    size_t ulen = (size_t)(colon - line), hlen = len - ulen - 1;
    if (ulen == 0 || ulen > HTTP_USER_MAX)
        return "the name is empty or longer than 64 characters";
    for (size_t i = 0; i < ulen; i++) {
        char c = line[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr("._-@", c) != NULL)))
            return "the name may hold letters, digits, '.', '_', '-' and '@' only";
    }
    if (hlen != 2 * DIGEST_LEN)
        return "the hash is not 64 hex digits (a SHA-256: printf %s TOKEN | sha256sum)";
    struct http_token tok;
    memset(&tok, 0, sizeof tok);
    for (size_t i = 0; i < DIGEST_LEN; i++) {
        int hi = hex_digit_value((unsigned char)colon[1 + 2 * i]),
            lo = hex_digit_value((unsigned char)colon[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return "the hash is not 64 hex digits (a SHA-256: printf %s TOKEN | sha256sum)";
        tok.digest[i] = (unsigned char)(hi << 4 | lo);
    }
    memcpy(tok.user, line, ulen);
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 4;
        t->items = xrealloc(t->items, t->cap * sizeof *t->items);
    }
    t->items[t->n++] = tok;
    return NULL;
}

static const char *tokens_on_line(void *arg, const char *line, size_t len)
{
    return http_tokens_add_line(arg, line, len);
}

int http_tokens_load(const char *path, struct http_tokens **out, struct buf *err)
{
    struct http_tokens *t = http_tokens_new();
    int rc = line_file_read(path, "http.tokens file", tokens_on_line, t, err);
    if (rc < 0) {
        http_tokens_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int is_b64token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~+/=", c) != NULL);
}

int http_bearer_parse(const char *value, size_t value_len, const char **token, size_t *len)
{
    static const char scheme[] = "bearer";
    size_t n = sizeof scheme - 1;
    if (value_len <= n || strncasecmp(value, scheme, n) != 0 ||
        (value[n] != ' ' && value[n] != '\t'))
        return 0;
    size_t i = n;
    while (i < value_len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    size_t start = i;
    while (i < value_len && is_b64token_char(value[i]))
        i++;
    size_t end = i;
    while (i < value_len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    if (end == start || i != value_len || end - start > HTTP_TOKEN_MAX)
        return 0;
    *token = value + start;
    *len = end - start;
    return 1;
}

const char *http_tokens_user(const struct http_tokens *t, const char *token, size_t len)
{
    unsigned char digest[DIGEST_LEN];
    unsigned int dlen = 0;
    if (t == NULL || len == 0 || len > HTTP_TOKEN_MAX ||
        EVP_Digest(token, len, digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != DIGEST_LEN)
        return NULL;
    const char *user = NULL;
    for (size_t i = 0; i < t->n; i++)
        if (CRYPTO_memcmp(digest, t->items[i].digest, DIGEST_LEN) == 0 && user == NULL)
            user = t->items[i].user;
    return user;
}
