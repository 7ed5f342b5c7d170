#include "mta/http/http_route.h"

#include <string.h>

#include "lib/hex.h"

static int slice_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

/* path is pattern, or pattern ends in '*' and path has its head and one more non-empty segment. */
static int path_matches(const char *path, size_t len, const char *pattern)
{
    size_t head = strlen(pattern);
    if (head == 0 || pattern[head - 1] != '*')
        return slice_is(path, len, pattern);
    head--;
    return len > head && memcmp(path, pattern, head) == 0 &&
           memchr(path + head, '/', len - head) == NULL;
}

size_t http_route_rest(const struct http_route *route, const char *path, size_t path_len,
                       const char **rest)
{
    size_t head = strlen(route->path);
    if (head == 0 || route->path[head - 1] != '*' || path_len < head - 1) {
        *rest = path + path_len;
        return 0;
    }
    *rest = path + head - 1;
    return path_len - (head - 1);
}

const struct http_route *http_route_find(const struct http_route *table, size_t n,
                                         const char *method, size_t method_len, const char *path,
                                         size_t path_len, int *status, const char **allow)
{
    *status = 404;
    *allow = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!path_matches(path, path_len, table[i].path))
            continue;
        if (slice_is(method, method_len, table[i].method))
            return &table[i];
        /* HEAD is answered as GET without the body (h2o drops it). */
        if (slice_is(method, method_len, "HEAD") && strcmp(table[i].method, "GET") == 0)
            return &table[i];
        *status = 405;
        *allow = table[i].method;
    }
    return NULL;
}

void http_target_split(const char *target, size_t len, size_t *path_len, const char **query,
                       size_t *query_len)
{
    const char *q = memchr(target, '?', len);
    *path_len = q != NULL ? (size_t)(q - target) : len;
    *query = q != NULL ? q + 1 : target + len;
    *query_len = q != NULL ? len - *path_len - 1 : 0;
}

/* Percent-decodes s[0..len) into out[size]; -1 when malformed or too long. */
static int decode(const char *s, size_t len, char *out, size_t size)
{
    size_t o = 0;
    if (size == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (len - i < 3)
                return -1;
            int hi = hex_digit_value((unsigned char)s[i + 1]);
            int lo = hex_digit_value((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= size)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int http_query_get(const char *query, size_t len, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(query + i, '&', len - i);
        size_t end = amp != NULL ? (size_t)(amp - query) : len;
        const char *pair = query + i;
        size_t pair_len = end - i;
        const char *eq = memchr(pair, '=', pair_len);
        size_t key_len = eq != NULL ? (size_t)(eq - pair) : pair_len;
        if (key_len == name_len && memcmp(pair, name, name_len) == 0) {
            const char *value = eq != NULL ? eq + 1 : pair + pair_len;
            size_t value_len = pair_len - key_len - (eq != NULL);
            return decode(value, value_len, out, size) == 0 ? 1 : -1;
        }
        i = end + 1;
    }
    return 0;
}
