/*
 * Open hashing over a fixed array of entries, with an LRU list threaded through them by index;
 * each entry's caller state follows it in one allocation (entries are `stride` bytes apart).
 */
#include "lib/client_table.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

#define NONE ((size_t)-1)
#define KEY_LEN 9 /* family byte + IPv4 address or IPv6 /64 */

struct client_entry {
    unsigned char key[KEY_LEN];
    size_t hash_next; /* next index in the same bucket, or NONE */
    size_t lru_prev, lru_next;
    /* the caller's state follows, aligned as max_align_t */
};

struct client_table {
    unsigned char *entries; /* capacity entries, stride bytes each */
    size_t stride, value_size, capacity, nused;
    size_t *buckets; /* nbuckets heads, NONE when empty */
    size_t nbuckets; /* a power of two */
    size_t lru_head, lru_tail;
};

#define ALIGN_UP(n, a) (((n) + (a)-1) / (a) * (a))
#define VALUE_OFFSET ALIGN_UP(sizeof(struct client_entry), _Alignof(max_align_t))

static struct client_entry *entry(const struct client_table *t, size_t i)
{
    return (struct client_entry *)(t->entries + i * t->stride);
}

struct client_table *client_table_new(size_t capacity, size_t value_size)
{
    struct client_table *t = xcalloc(1, sizeof *t);
    t->capacity = capacity > 0 ? capacity : 1;
    t->value_size = value_size;
    t->stride = ALIGN_UP(VALUE_OFFSET + value_size, _Alignof(max_align_t));
    t->entries = xcalloc(t->capacity, t->stride);
    t->nbuckets = 1;
    while (t->nbuckets < t->capacity * 2)
        t->nbuckets *= 2;
    t->buckets = xmalloc(t->nbuckets * sizeof *t->buckets);
    for (size_t i = 0; i < t->nbuckets; i++)
        t->buckets[i] = NONE;
    t->lru_head = t->lru_tail = NONE;
    return t;
}

void client_table_free(struct client_table *t)
{
    if (t == NULL)
        return;
    free(t->entries);
    free(t->buckets);
    free(t);
}

size_t client_table_count(const struct client_table *t)
{
    return t->nused;
}

/* IPv6 by /64: that is what one site or customer is usually given, so a client could otherwise
 * step through 2^64 addresses of its own to start afresh each time. */
static int make_key(const struct sockaddr *addr, unsigned char key[KEY_LEN])
{
    memset(key, 0, KEY_LEN);
    if (addr->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        return 0;
    }
    if (addr->sa_family != AF_INET6)
        return -1;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a)) {
        key[0] = 4;
        memcpy(key + 1, &a->s6_addr[12], 4);
    } else {
        key[0] = 6;
        memcpy(key + 1, a->s6_addr, 8);
    }
    return 0;
}

static size_t key_bucket(const struct client_table *t, const unsigned char key[KEY_LEN])
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (int i = 0; i < KEY_LEN; i++)
        h = (h ^ key[i]) * 1099511628211ull;
    return (size_t)(h & (t->nbuckets - 1));
}

static void lru_unlink(struct client_table *t, size_t i)
{
    struct client_entry *e = entry(t, i);
    if (e->lru_prev != NONE)
        entry(t, e->lru_prev)->lru_next = e->lru_next;
    else
        t->lru_head = e->lru_next;
    if (e->lru_next != NONE)
        entry(t, e->lru_next)->lru_prev = e->lru_prev;
    else
        t->lru_tail = e->lru_prev;
}

static void lru_push_front(struct client_table *t, size_t i)
{
    struct client_entry *e = entry(t, i);
    e->lru_prev = NONE;
    e->lru_next = t->lru_head;
    if (t->lru_head != NONE)
        entry(t, t->lru_head)->lru_prev = i;
    t->lru_head = i;
    if (t->lru_tail == NONE)
        t->lru_tail = i;
}

static void bucket_remove(struct client_table *t, size_t i)
{
    size_t *link = &t->buckets[key_bucket(t, entry(t, i)->key)];
    while (*link != i)
        link = &entry(t, *link)->hash_next;
    *link = entry(t, i)->hash_next;
}

/* A slot for a new client: a free one, else the least recently seen client's. */
static size_t slot_take(struct client_table *t)
{
    if (t->nused < t->capacity)
        return t->nused++;
    size_t i = t->lru_tail;
    lru_unlink(t, i);
    bucket_remove(t, i);
    return i;
}

/* The slot of the client with `key`, or NONE. */
static size_t slot_find(const struct client_table *t, const unsigned char key[KEY_LEN])
{
    size_t i = t->buckets[key_bucket(t, key)];
    while (i != NONE && memcmp(entry(t, i)->key, key, KEY_LEN) != 0)
        i = entry(t, i)->hash_next;
    return i;
}

const void *client_table_find(const struct client_table *t, const struct sockaddr *addr)
{
    unsigned char key[KEY_LEN];
    if (make_key(addr, key) < 0)
        return NULL;
    size_t i = slot_find(t, key);
    return i != NONE ? (const unsigned char *)entry(t, i) + VALUE_OFFSET : NULL;
}

void *client_table_get(struct client_table *t, const struct sockaddr *addr, int *created)
{
    unsigned char key[KEY_LEN];
    *created = 0;
    if (make_key(addr, key) < 0)
        return NULL;
    size_t b = key_bucket(t, key);
    size_t i = slot_find(t, key);
    if (i != NONE) {
        lru_unlink(t, i);
    } else {
        i = slot_take(t);
        struct client_entry *e = entry(t, i);
        memcpy(e->key, key, KEY_LEN);
        e->hash_next = t->buckets[b];
        t->buckets[b] = i;
        memset((unsigned char *)e + VALUE_OFFSET, 0, t->value_size);
        *created = 1;
    }
    lru_push_front(t, i);
    return (unsigned char *)entry(t, i) + VALUE_OFFSET;
}
