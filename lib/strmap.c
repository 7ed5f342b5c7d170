#include "lib/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

struct strmap_entry {
    struct strmap_entry *next;
    size_t hash;
    void *value;
    char key[];
};

static size_t strmap_hash(const char *key)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)h;
}

static struct strmap_entry **strmap_slot(const struct strmap *m, const char *key, size_t hash)
{
    struct strmap_entry **pp = &m->buckets[hash & (m->nbuckets - 1)];
    while (*pp != NULL && ((*pp)->hash != hash || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *strmap_get(const struct strmap *m, const char *key)
{
    if (m->count == 0)
        return NULL;
    struct strmap_entry *e = *strmap_slot(m, key, strmap_hash(key));
    return e != NULL ? e->value : NULL;
}

static void strmap_grow(struct strmap *m)
{
    size_t n = m->nbuckets ? 2 * m->nbuckets : 16;
    struct strmap_entry **b = xcalloc(n, sizeof *b);
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct strmap_entry *e = m->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void *strmap_put(struct strmap *m, const char *key, void *value)
{
    if (m->count >= m->nbuckets)
        strmap_grow(m);
    size_t hash = strmap_hash(key);
    struct strmap_entry **pp = strmap_slot(m, key, hash);
    if (*pp != NULL) {
        void *old = (*pp)->value;
        (*pp)->value = value;
        return old;
    }
    size_t len = strlen(key);
    struct strmap_entry *e = xmalloc(sizeof *e + len + 1);
    memcpy(e->key, key, len + 1);
    e->hash = hash;
    e->value = value;
    e->next = NULL;
    *pp = e;
    m->count++;
    return NULL;
}

void *strmap_del(struct strmap *m, const char *key)
{
    if (m->count == 0)
        return NULL;
    struct strmap_entry **pp = strmap_slot(m, key, strmap_hash(key));
    struct strmap_entry *e = *pp;
    if (e == NULL)
        return NULL;
    void *value = e->value;
    *pp = e->next;
    free(e);
    m->count--;
    return value;
}

void strmap_each(const struct strmap *m, void (*fn)(const char *key, void *value, void *arg),
                 void *arg)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct strmap_entry *e = m->buckets[i]; e != NULL; e = e->next)
            fn(e->key, e->value, arg);
}

int strmap_each_from(const struct strmap *m, size_t *pos, size_t max,
                     void (*fn)(const char *key, void *value, void *arg), void *arg)
{
    size_t seen = 0;
    for (; *pos < m->nbuckets && seen < max; (*pos)++)
        for (struct strmap_entry *e = m->buckets[*pos]; e != NULL; e = e->next, seen++)
            fn(e->key, e->value, arg);
    return *pos >= m->nbuckets;
}

void strmap_free(struct strmap *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct strmap_entry *e = m->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(m->buckets);
    *m = (struct strmap)STRMAP_INIT;
}

void strmap_free_values(struct strmap *m)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct strmap_entry *e = m->buckets[i]; e != NULL; e = e->next)
            free(e->value);
    strmap_free(m);
}
