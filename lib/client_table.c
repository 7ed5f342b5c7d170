/*
 * A fixed array of entries, each the caller's state after an LRU node (lib/lru.h) that finds it
 * by key and orders it by use; a new client takes a free entry, or the least recently seen one's.
 * Entries are `stride` bytes apart.
 */
#include "lib/client_table.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lru.h"
#include "lib/uvutil.h"
#include "lib/xalloc.h"

#define KEY_LEN 9 /* family byte + IPv4 address or IPv6 /64 */

struct client_entry {
    struct lru_node node;
    unsigned char key[KEY_LEN];
    /* the caller's state follows, aligned as max_align_t */
};

struct client_table {
    struct lru lru;
    unsigned char *entries; /* capacity entries, stride bytes each */
    size_t stride, value_size, capacity, nused;
};

#define ALIGN_UP(n, a) (((n) + (a)-1) / (a) * (a))
#define VALUE_OFFSET ALIGN_UP(sizeof(struct client_entry), _Alignof(max_align_t))

static struct client_entry *entry(const struct client_table *t, size_t i)
{
    return (struct client_entry *)(t->entries + i * t->stride);
}

static void *entry_value(struct lru_node *node)
{
    return (unsigned char *)container_of(node, struct client_entry, node) + VALUE_OFFSET;
}

struct client_table *client_table_new(size_t capacity, size_t value_size)
{
    struct client_table *t = xcalloc(1, sizeof *t);
    t->capacity = capacity > 0 ? capacity : 1;
    t->value_size = value_size;
    t->stride = ALIGN_UP(VALUE_OFFSET + value_size, _Alignof(max_align_t));
    t->entries = xcalloc(t->capacity, t->stride);
    /* Entries are taken back before the map is full (slot_take), so it never evicts. */
    lru_init(&t->lru, t->capacity, NULL, NULL);
    return t;
}

void client_table_free(struct client_table *t)
{
    if (t == NULL)
        return;
    lru_close(&t->lru);
    free(t->entries);
    free(t);
}

size_t client_table_count(const struct client_table *t)
{
    return lru_count(&t->lru);
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

/* An entry for a new client: a free one, else the least recently seen client's. */
static struct client_entry *slot_take(struct client_table *t)
{
    if (t->nused < t->capacity)
        return entry(t, t->nused++);
    struct lru_node *oldest = lru_oldest(&t->lru);
    lru_remove(&t->lru, oldest);
    return container_of(oldest, struct client_entry, node);
}

const void *client_table_find(const struct client_table *t, const struct sockaddr *addr)
{
    unsigned char key[KEY_LEN];
    if (make_key(addr, key) < 0)
        return NULL;
    struct lru_node *node = lru_find(&t->lru, key, KEY_LEN);
    return node != NULL ? entry_value(node) : NULL;
}

void *client_table_get(struct client_table *t, const struct sockaddr *addr, int *created)
{
    unsigned char key[KEY_LEN];
    *created = 0;
    if (make_key(addr, key) < 0)
        return NULL;
    struct lru_node *node = lru_find(&t->lru, key, KEY_LEN);
    if (node != NULL) {
        lru_touch(&t->lru, node);
        return entry_value(node);
    }
    struct client_entry *e = slot_take(t);
    memcpy(e->key, key, KEY_LEN);
    lru_insert(&t->lru, &e->node, e->key, KEY_LEN);
    memset(entry_value(&e->node), 0, t->value_size);
    *created = 1;
    return entry_value(&e->node);
}
