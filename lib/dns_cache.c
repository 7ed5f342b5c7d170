/*
 * The DNS answer cache: a chained hash table for lookup plus a doubly-linked list in order of use
 * for eviction. Bounded both in entries and in bytes (names and messages included).
 */
#include "lib/dns_int.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

struct entry {
    struct entry *hnext;         /* hash chain */
    struct entry *newer, *older; /* use order: c->newest ... c->oldest */
    uint64_t expires;
    size_t size; /* what it counts against max_bytes */
    enum dns_status status;
    int type;
    unsigned char *msg; /* owned; NULL for negative entries */
    size_t len;
    char name[];
};

struct dns_cache {
    struct entry **buckets;
    size_t nbuckets; /* a power of two */
    struct entry *newest, *oldest;
    size_t count, bytes;
    size_t max_entries, max_bytes;
};

static size_t cache_hash(int type, const char *name)
{
    /* FNV-1a over the type and the name. */
    uint64_t h = 14695981039346656037ULL ^ (uint64_t)type;
    for (const char *p = name; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

struct dns_cache *dns_cache_new(size_t max_entries, size_t max_bytes)
{
    struct dns_cache *c = xcalloc(1, sizeof(*c));
    c->nbuckets = 16;
    while (c->nbuckets < max_entries)
        c->nbuckets <<= 1;
    c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    return c;
}

static struct entry **cache_slot(struct dns_cache *c, int type, const char *name)
{
    struct entry **pp = &c->buckets[cache_hash(type, name) & (c->nbuckets - 1)];
    while (*pp != NULL && ((*pp)->type != type || strcmp((*pp)->name, name) != 0))
        pp = &(*pp)->hnext;
    return pp;
}

static void cache_unlink_use(struct dns_cache *c, struct entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void cache_push_newest(struct dns_cache *c, struct entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest != NULL)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
}

/* Removes the entry that *slot points to. */
static void cache_remove(struct dns_cache *c, struct entry **slot)
{
    struct entry *e = *slot;
    *slot = e->hnext;
    cache_unlink_use(c, e);
    c->count--;
    c->bytes -= e->size;
    free(e->msg);
    free(e);
}

void dns_cache_clear(struct dns_cache *c)
{
    while (c->oldest != NULL)
        cache_remove(c, cache_slot(c, c->oldest->type, c->oldest->name));
}

void dns_cache_free(struct dns_cache *c)
{
    if (c == NULL)
        return;
    dns_cache_clear(c);
    free(c->buckets);
    free(c);
}

int dns_cache_get(struct dns_cache *c, int type, const char *name, uint64_t now,
                  enum dns_status *status, unsigned char **msg, size_t *len)
{
    struct entry **slot = cache_slot(c, type, name);
    struct entry *e = *slot;
    if (e == NULL)
        return 0;
    if (e->expires <= now) {
        cache_remove(c, slot);
        return 0;
    }
    cache_unlink_use(c, e);
    cache_push_newest(c, e);
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
    size_t namelen = strlen(name);
    size_t size = sizeof(struct entry) + namelen + 1 + (msg != NULL ? len : 0);
    if (size > c->max_bytes)
        return;
    struct entry **slot = cache_slot(c, type, name);
    if (*slot != NULL)
        cache_remove(c, slot);
    while (c->count + 1 > c->max_entries || c->bytes + size > c->max_bytes)
        cache_remove(c, cache_slot(c, c->oldest->type, c->oldest->name));

    struct entry *e = xcalloc(1, sizeof(*e) + namelen + 1);
    memcpy(e->name, name, namelen + 1);
    e->type = type;
    e->status = status;
    e->expires = expires;
    e->size = size;
    if (msg != NULL) {
        e->msg = xmalloc(len);
        memcpy(e->msg, msg, len);
        e->len = len;
    }
    slot = cache_slot(c, type, name); /* evictions may have changed the chain */
    e->hnext = *slot;
    *slot = e;
    cache_push_newest(c, e);
    c->count++;
    c->bytes += size;
}
