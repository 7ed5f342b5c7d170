#include "lib/lru.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

#define MIN_BUCKETS 16

static size_t lru_hash(const void *key, size_t keylen)
{
    /* FNV-1a */
    const unsigned char *p = key;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < keylen; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return (size_t)h;
}

static struct lru_node **lru_bucket(const struct lru *l, const void *key, size_t keylen)
{
    return &l->buckets[lru_hash(key, keylen) & (l->nbuckets - 1)];
}

/* Doubles the table (first: MIN_BUCKETS) and moves every entry to its new chain. */
static void lru_grow(struct lru *l)
{
    size_t old_n = l->nbuckets;
    struct lru_node **old = l->buckets;
    l->nbuckets = old_n ? old_n * 2 : MIN_BUCKETS;
    l->buckets = xcalloc(l->nbuckets, sizeof *l->buckets);
    for (size_t i = 0; i < old_n; i++) {
        for (struct lru_node *n = old[i], *next; n != NULL; n = next) {
            next = n->hnext;
            struct lru_node **b = lru_bucket(l, n->key, n->keylen);
            n->hnext = *b;
            *b = n;
        }
    }
    free(old);
}

static void lru_unlink(struct lru *l, struct lru_node *node)
{
    if (node->newer != NULL)
        node->newer->older = node->older;
    else
        l->newest = node->older;
    if (node->older != NULL)
        node->older->newer = node->newer;
    else
        l->oldest = node->newer;
    node->newer = node->older = NULL;
}

static void lru_push_newest(struct lru *l, struct lru_node *node)
{
    node->older = l->newest;
    node->newer = NULL;
    if (l->newest != NULL)
        l->newest->newer = node;
    else
        l->oldest = node;
    l->newest = node;
}

void lru_init(struct lru *l, size_t capacity, lru_evict_cb evict, void *arg)
{
    memset(l, 0, sizeof *l);
    l->capacity = capacity > 0 ? capacity : 1;
    l->evict = evict;
    l->arg = arg;
}

void lru_close(struct lru *l)
{
    lru_clear(l);
    free(l->buckets);
    l->buckets = NULL;
    l->nbuckets = 0;
}

struct lru_node *lru_find(const struct lru *l, const void *key, size_t keylen)
{
    if (l->nbuckets == 0)
        return NULL;
    struct lru_node *n = *lru_bucket(l, key, keylen);
    while (n != NULL && (n->keylen != keylen || memcmp(n->key, key, keylen) != 0))
        n = n->hnext;
    return n;
}

void lru_touch(struct lru *l, struct lru_node *node)
{
    lru_unlink(l, node);
    lru_push_newest(l, node);
}

void lru_insert(struct lru *l, struct lru_node *node, const void *key, size_t keylen)
{
    while (l->count >= l->capacity)
        lru_evict(l, l->oldest);
    if (l->count + 1 > l->nbuckets)
        lru_grow(l);
    node->key = key;
    node->keylen = keylen;
    struct lru_node **b = lru_bucket(l, key, keylen);
    node->hnext = *b;
    *b = node;
    lru_push_newest(l, node);
    l->count++;
}

void lru_remove(struct lru *l, struct lru_node *node)
{
    struct lru_node **link = lru_bucket(l, node->key, node->keylen);
    while (*link != node)
        link = &(*link)->hnext;
    *link = node->hnext;
    node->hnext = NULL;
    lru_unlink(l, node);
    l->count--;
}

void lru_evict(struct lru *l, struct lru_node *node)
{
    lru_remove(l, node);
    if (l->evict != NULL)
        l->evict(node, l->arg);
}

void lru_clear(struct lru *l)
{
    while (l->oldest != NULL)
        lru_evict(l, l->oldest);
}

struct lru_node *lru_oldest(const struct lru *l)
{
    return l->oldest;
}

size_t lru_count(const struct lru *l)
{
    return l->count;
}
