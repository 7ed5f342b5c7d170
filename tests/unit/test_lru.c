/* lib/lru: lookup by key bytes, use order, eviction at capacity through the callback, remove
 * versus evict, clear and close, and a table that grows to many entries. */
#include "lib/lru.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lib/uvutil.h"

struct item {
    struct lru_node node;
    char key[16];
    int freed; /* set by the callback */
};

/* What the eviction callback saw, in order. */
struct evictions {
    struct item *items[16];
    size_t n;
};

static void on_evict(struct lru_node *node, void *arg)
{
    struct evictions *ev = arg;
    struct item *it = container_of(node, struct item, node);
    it->freed = 1;
    if (ev->n < ARRAY_LEN(ev->items))
        ev->items[ev->n] = it;
    ev->n++;
}

static void put(struct lru *l, struct item *it, const char *key)
{
    snprintf(it->key, sizeof it->key, "%s", key);
    it->freed = 0;
    lru_insert(l, &it->node, it->key, strlen(it->key));
}

static struct item *find(const struct lru *l, const char *key)
{
    struct lru_node *node = lru_find(l, key, strlen(key));
    return node != NULL ? container_of(node, struct item, node) : NULL;
}

/* At capacity, an insert evicts the least recently used: touched entries are used, found ones
 * are not. */
static void test_order(void)
{
    struct evictions ev = {0};
    struct lru l;
    struct item a, b, c, d, e;
    lru_init(&l, 3, on_evict, &ev);
    CHECK(lru_oldest(&l) == NULL);
    CHECK(find(&l, "a") == NULL);
    put(&l, &a, "a");
    put(&l, &b, "b");
    put(&l, &c, "c");
    CHECK_INT_EQ(lru_count(&l), 3);
    CHECK(lru_oldest(&l) == &a.node);
    CHECK(find(&l, "b") == &b);

    lru_touch(&l, &a.node); /* order now b, c, a */
    CHECK(lru_oldest(&l) == &b.node);
    CHECK(find(&l, "b") == &b); /* finding does not make b recent */
    put(&l, &d, "d");           /* evicts b */
    CHECK_INT_EQ(ev.n, 1);
    CHECK(ev.items[0] == &b);
    CHECK(b.freed);
    CHECK(find(&l, "b") == NULL);
    CHECK_INT_EQ(lru_count(&l), 3);
    put(&l, &e, "e"); /* evicts c */
    CHECK_INT_EQ(ev.n, 2);
    CHECK(ev.items[1] == &c);
    CHECK(find(&l, "a") == &a && find(&l, "d") == &d && find(&l, "e") == &e);
    CHECK(lru_oldest(&l) == &a.node);

    lru_close(&l); /* evicts a, d, e: oldest first */
    CHECK_INT_EQ(ev.n, 5);
    CHECK(ev.items[2] == &a && ev.items[3] == &d && ev.items[4] == &e);
    CHECK_INT_EQ(lru_count(&l), 0);
}

/* remove takes an entry out for its owner; evict hands it to the callback. */
static void test_remove_and_evict(void)
{
    struct evictions ev = {0};
    struct lru l;
    struct item a, b, c;
    lru_init(&l, 10, on_evict, &ev);
    put(&l, &a, "a");
    put(&l, &b, "b");
    put(&l, &c, "c");
    lru_remove(&l, &b.node);
    CHECK_INT_EQ(ev.n, 0);
    CHECK(!b.freed);
    CHECK(find(&l, "b") == NULL);
    CHECK_INT_EQ(lru_count(&l), 2);
    lru_evict(&l, &a.node);
    CHECK_INT_EQ(ev.n, 1);
    CHECK(a.freed);
    CHECK(lru_oldest(&l) == &c.node);
    put(&l, &b, "b"); /* a removed entry may come back */
    CHECK(find(&l, "b") == &b);
    lru_clear(&l);
    CHECK_INT_EQ(ev.n, 3);
    CHECK(ev.items[1] == &c && ev.items[2] == &b);
    CHECK(lru_oldest(&l) == NULL);
    put(&l, &a, "a"); /* a cleared map is still usable */
    CHECK(find(&l, "a") == &a);
    lru_close(&l);
}

/* Keys are bytes: a prefix, a NUL inside, or the same bytes at another length are other keys. */
static void test_keys(void)
{
    struct lru l;
    struct item x, y, z;
    lru_init(&l, 8, NULL, NULL);
    memcpy(x.key, "ab\0c", 4);
    memcpy(y.key, "ab\0d", 4);
    memcpy(z.key, "ab", 2);
    lru_insert(&l, &x.node, x.key, 4);
    lru_insert(&l, &y.node, y.key, 4);
    lru_insert(&l, &z.node, z.key, 2);
    CHECK(lru_find(&l, "ab\0c", 4) == &x.node);
    CHECK(lru_find(&l, "ab\0d", 4) == &y.node);
    CHECK(lru_find(&l, "ab", 2) == &z.node);
    CHECK(lru_find(&l, "ab\0", 3) == NULL);
    CHECK(lru_find(&l, "a", 1) == NULL);
    lru_close(&l); /* no callback: the entries are the caller's */
    CHECK(lru_find(&l, "ab", 2) == NULL);
}

/* A capacity of 0 means 1: the newest entry always fits. */
static void test_capacity_one(void)
{
    struct evictions ev = {0};
    struct lru l;
    struct item a, b;
    lru_init(&l, 0, on_evict, &ev);
    put(&l, &a, "a");
    put(&l, &b, "b");
    CHECK_INT_EQ(lru_count(&l), 1);
    CHECK(ev.n == 1 && ev.items[0] == &a);
    CHECK(find(&l, "b") == &b);
    lru_close(&l);
}

/* Many entries: the table grows and every one stays findable; then the oldest go in order. */
static void test_many(void)
{
    enum { N = 20000 };
    struct evictions ev = {0};
    struct lru l;
    struct item *items = calloc(N + 10, sizeof *items);
    lru_init(&l, N, on_evict, &ev);
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        put(&l, &items[i], key);
    }
    CHECK_INT_EQ(lru_count(&l), N);
    CHECK_INT_EQ(ev.n, 0);
    size_t missing = 0;
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        missing += find(&l, key) != &items[i];
    }
    CHECK_INT_EQ(missing, 0);
    for (int i = 0; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof key, "n%d", i);
        put(&l, &items[N + i], key);
    }
    CHECK_INT_EQ(ev.n, 10);
    CHECK(ev.items[0] == &items[0] && ev.items[9] == &items[9]);
    CHECK(find(&l, "k9") == NULL);
    CHECK(find(&l, "k10") == &items[10]);
    CHECK(find(&l, "n9") == &items[N + 9]);
    lru_close(&l);
    CHECK_INT_EQ(ev.n, N + 10);
    free(items);
}

int main(void)
{
    test_order();
    test_remove_and_evict();
    test_keys();
    test_capacity_one();
    test_many();
    return check_report("test_lru");
}
