/*
 * The DNS answer cache: an LRU map (lib/lru.h) from (type, name) to the status and message,
 * bounded both in entries and in bytes (names and messages included).
 */
#include "lib/dns_int.h"

#include <stdlib.h>
#include <string.h>

#include "lib/lru.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

/* The key: the type's octets, then the name without its NUL. */
#define KEY_BUF (sizeof(int) + DNS_NAME_BUF)

struct entry {
    struct lru_node node;
    uint64_t expires;
    size_t size; /* what it counts against max_bytes */
    enum dns_status status;
    unsigned char *msg; /* owned; NULL for negative entries */
    size_t len;
    unsigned char key[];
};

struct dns_cache {
    struct lru lru;
    size_t bytes, max_bytes;
};

/* Fills key for (type, name) and returns its length; 0 for a name longer than a normalized one. */
static size_t cache_key(int type, const char *name, unsigned char key[KEY_BUF])
{
    size_t namelen = strlen(name);
    if (namelen > DNS_NAME_BUF - 1)
        return 0;
    memcpy(key, &type, sizeof type);
    memcpy(key + sizeof type, name, namelen);
    return sizeof type + namelen;
}

static void cache_on_evict(struct lru_node *node, void *arg)
{
    struct dns_cache *c = arg;
    struct entry *e = container_of(node, struct entry, node);
    c->bytes -= e->size;
    free(e->msg);
    free(e);
}

struct dns_cache *dns_cache_new(size_t max_entries, size_t max_bytes)
{
    struct dns_cache *c = xcalloc(1, sizeof(*c));
    lru_init(&c->lru, max_entries, cache_on_evict, c);
    c->max_bytes = max_bytes;
    return c;
}

void dns_cache_clear(struct dns_cache *c)
{
    lru_clear(&c->lru);
}

void dns_cache_free(struct dns_cache *c)
{
    if (c == NULL)
        return;
    lru_close(&c->lru);
    free(c);
}

int dns_cache_get(struct dns_cache *c, int type, const char *name, uint64_t now,
                  enum dns_status *status, unsigned char **msg, size_t *len)
{
    unsigned char key[KEY_BUF];
    size_t keylen = cache_key(type, name, key);
    struct lru_node *node = keylen > 0 ? lru_find(&c->lru, key, keylen) : NULL;
    if (node == NULL)
        return 0;
    struct entry *e = container_of(node, struct entry, node);
    if (e->expires <= now) {
        lru_evict(&c->lru, node);
        return 0;
    }
    lru_touch(&c->lru, node);
    *status = e->status;
    *len = e->len;
    *msg = NULL;
    if (e->msg != NULL) {
        *msg = xmalloc(e->len);
        memcpy(*msg, e->msg, e->len);
    }
    return 1;
}

void dns_cache_put(struct dns_cache *c, int type, const char *name, enum dns_status status,
                   const unsigned char *msg, size_t len, uint64_t expires)
{
    unsigned char key[KEY_BUF];
    size_t keylen = cache_key(type, name, key);
    size_t size = sizeof(struct entry) + keylen + (msg != NULL ? len : 0);
    if (keylen == 0 || size > c->max_bytes)
        return;
    struct lru_node *old = lru_find(&c->lru, key, keylen);
    if (old != NULL)
        lru_evict(&c->lru, old);
    while (c->bytes + size > c->max_bytes)
        lru_evict(&c->lru, lru_oldest(&c->lru));

    struct entry *e = xcalloc(1, sizeof(*e) + keylen);
    memcpy(e->key, key, keylen);
    e->status = status;
    e->expires = expires;
    e->size = size;
    if (msg != NULL) {
        e->msg = xmalloc(len);
        memcpy(e->msg, msg, len);
        e->len = len;
    }
    c->bytes += size;
    lru_insert(&c->lru, &e->node, e->key, keylen); /* evicts the oldest when full */
}
