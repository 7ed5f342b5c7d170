/*
 * A bounded map in order of use: entries found by a key of bytes, and the least recently used one
 * evicted when a new one needs room. Intrusive: each entry embeds a struct lru_node (container_of
 * gets it back), and its owner keeps both its memory and the key's bytes, which must stay put and
 * unchanged while it is in the map. Find, touch, insert and evict are O(1); the hash table doubles
 * as entries arrive, up to what the capacity needs. The DNS answer cache, the per-client table
 * and the recipient verification cache are built on it.
 */
#ifndef SLUICE_LRU_H
#define SLUICE_LRU_H

#include <stddef.h>

struct lru_node {
    struct lru_node *hnext;         /* hash chain */
    struct lru_node *newer, *older; /* use order: lru.newest ... lru.oldest */
    const void *key;                /* owned by the entry */
    size_t keylen;
};

/* Receives an entry that has just left the map, to free it or to count it out. */
typedef void (*lru_evict_cb)(struct lru_node *node, void *arg);

/* Embedded in its owner; the fields are read through the functions below. */
struct lru {
    struct lru_node **buckets;
    size_t nbuckets; /* a power of two; 0 until the first insert */
    size_t count, capacity;
    struct lru_node *newest, *oldest;
    lru_evict_cb evict; /* NULL: evicted entries are only taken out */
    void *arg;
};

/* An empty map of at most `capacity` entries (at least 1). */
void lru_init(struct lru *l, size_t capacity, lru_evict_cb evict, void *arg);
/* Evicts every entry, oldest first, and frees the map's own memory. */
void lru_close(struct lru *l);
/* The entry under key, or NULL. Its place in the order does not change. */
struct lru_node *lru_find(const struct lru *l, const void *key, size_t keylen);
/* Makes node the most recently used. */
void lru_touch(struct lru *l, struct lru_node *node);
/* Adds node under key (no entry may hold that key already) as the most recently used; while the
 * map is full, the least recently used entry is evicted first. */
void lru_insert(struct lru *l, struct lru_node *node, const void *key, size_t keylen);
/* Takes node out of the map without handing it to the eviction callback. */
void lru_remove(struct lru *l, struct lru_node *node);
/* Takes node out of the map and hands it to the eviction callback. */
void lru_evict(struct lru *l, struct lru_node *node);
/* Evicts every entry, oldest first. */
void lru_clear(struct lru *l);
/* The least recently used entry, or NULL when the map is empty. */
struct lru_node *lru_oldest(const struct lru *l);
size_t lru_count(const struct lru *l);

#endif
