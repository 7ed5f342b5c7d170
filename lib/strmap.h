/*
 * A map from strings (copied) to pointers: chained hashing that doubles as it fills. Used for
 * queue ids and destination names, where lookups happen on every delivery event.
 */
#ifndef SLUICE_STRMAP_H
#define SLUICE_STRMAP_H

#include <stddef.h>

struct strmap_entry;

struct strmap {
    struct strmap_entry **buckets;
    size_t nbuckets; /* a power of two, or 0 before the first insert */
    size_t count;
};

#define STRMAP_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void *strmap_get(const struct strmap *m, const char *key);
/* Sets key to value (non-NULL); returns the value it replaces, or NULL. */
void *strmap_put(struct strmap *m, const char *key, void *value);
/* Removes key; returns its value, or NULL when absent. */
void *strmap_del(struct strmap *m, const char *key);
/* Calls fn for every entry, in no particular order. fn must not change the map. */
void strmap_each(const struct strmap *m, void (*fn)(const char *key, void *value, void *arg),
                 void *arg);
/* The same in slices: calls fn for the entries of the buckets from *pos on, whole buckets, until
 * at least max entries were seen, and sets *pos where the next call goes on. Returns 1 once the
 * last bucket was seen. A map that grows between calls may show an entry twice but never skips
 * one present throughout (a bucket splits into itself and one further on); one that shrinks does
 * not exist. fn must not change the map. */
int strmap_each_from(const struct strmap *m, size_t *pos, size_t max,
                     void (*fn)(const char *key, void *value, void *arg), void *arg);
/* Frees the map's own memory (not the values). */
void strmap_free(struct strmap *m);
/* The same, after passing each value to free(): for maps that own plain malloc'd values. */
void strmap_free_values(struct strmap *m);

#endif
