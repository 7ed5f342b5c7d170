/*
 * Fuzzes what the HTTP interface parses itself (h2o parses the HTTP framing): the input is
 * "METHOD TARGET" up to a newline, then an Authorization field's value, up to the next newline,
 * then a line of a tokens file. Routing must return a row whose path and method are what was
 * asked, or 404/405; the query's parameters must come back NUL-terminated within their buffer; a
 * bearer token must be a slice of the value made of RFC 6750's characters; a tokens line is taken
 * or refused with a reason, and only a taken one can name a user.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/http/http_auth.h"
#include "mta/http/http_route.h"

static void handler(void *arg, const struct http_call *call, struct http_answer *answer)
{
    (void)arg, (void)call, (void)answer;
}

static const struct http_route table[] = {
    {"GET", "/metrics", HTTP_ACCESS_METRICS, handler},
    {"GET", "/api/v1/status", HTTP_ACCESS_TOKEN, handler},
    {"POST", "/api/v1/status", HTTP_ACCESS_TOKEN, handler},
};

/* The next line of data (up to '\n' or the end) and what follows it. */
static const char *next_line(const char **p, const char *end, size_t *len)
{
    const char *start = *p;
    const char *nl = memchr(start, '\n', (size_t)(end - start));
    *len = (size_t)((nl != NULL ? nl : end) - start);
    *p = nl != NULL ? nl + 1 : end;
    return start;
}

static void fuzz_route(const char *line, size_t len)
{
    const char *sp = memchr(line, ' ', len);
    size_t mlen = sp != NULL ? (size_t)(sp - line) : len;
    const char *target = sp != NULL ? sp + 1 : line + len;
    size_t tlen = len - mlen - (sp != NULL);
    size_t plen, qlen;
    const char *query;
    http_target_split(target, tlen, &plen, &query, &qlen);
    if (plen > tlen || query < target || query + qlen > target + tlen)
        abort();
    int status;
    const char *allow;
    const struct http_route *r =
        http_route_find(table, 3, line, mlen, target, plen, &status, &allow);
    if (r != NULL && (strlen(r->path) != plen || memcmp(r->path, target, plen) != 0))
        abort();
    if (r == NULL && !((status == 404 && allow == NULL) || (status == 405 && allow != NULL)))
        abort();
    static const char *const names[] = {"top", "x", ""};
    for (size_t i = 0; i < 3; i++) {
        char out[8];
        int rc = http_query_get(query, qlen, names[i], out, sizeof out);
        if (rc < -1 || rc > 1 || (rc == 1 && strnlen(out, sizeof out) == sizeof out))
            abort();
    }
}

/* RFC 6750's b64token characters, written out again rather than taken from the code under test. */
static int b64token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

static void fuzz_auth(const char *value, size_t len, const char *entry, size_t entry_len)
{
    const char *token;
    size_t tlen;
    if (http_bearer_parse(value, len, &token, &tlen)) {
        if (token < value || token + tlen > value + len || tlen == 0 || tlen > HTTP_TOKEN_MAX)
            abort();
        for (size_t i = 0; i < tlen; i++)
            if (!b64token_char(token[i]))
                abort();
    } else {
        token = value, tlen = len;
    }
    struct http_tokens *t = http_tokens_new();
    const char *why = http_tokens_add_line(t, entry, entry_len);
    const char *user = http_tokens_user(t, token, tlen);
    if (why != NULL && user != NULL)
        abort();
    if (user != NULL && (strlen(user) == 0 || strlen(user) > HTTP_USER_MAX))
        abort();
    http_tokens_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    size_t len, value_len, entry_len;
    const char *request = next_line(&p, end, &len);
    const char *value = next_line(&p, end, &value_len);
    const char *entry = next_line(&p, end, &entry_len);
    fuzz_route(request, len);
    fuzz_auth(value, value_len, entry, entry_len);
    return 0;
}
