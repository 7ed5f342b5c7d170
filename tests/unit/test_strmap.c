#include "lib/strmap.h"

#include <stdio.h>

#include "check.h"
#include "lib/xalloc.h"

static void count_entry(const char *key, void *value, void *arg)
{
    (void)key;
    (void)value;
    (*(size_t *)arg)++;
}

static void test_put_get_del(void)
{
    struct strmap m = STRMAP_INIT;
    CHECK(strmap_get(&m, "absent") == NULL);
    CHECK(strmap_del(&m, "absent") == NULL);
    static int values[2000];
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        CHECK(strmap_put(&m, key, &values[i]) == NULL);
    }
    CHECK_INT_EQ(m.count, 2000);
    CHECK(strmap_put(&m, "key-5", &values[6]) == &values[5]);
    CHECK(strmap_get(&m, "key-5") == &values[6]);
    CHECK(strmap_get(&m, "key-1999") == &values[1999]);
    CHECK(strmap_get(&m, "key-2000") == NULL);
    for (int i = 0; i < 2000; i += 2) {
        snprintf(key, sizeof key, "key-%d", i);
        CHECK(strmap_del(&m, key) != NULL);
    }
    CHECK(strmap_get(&m, "key-4") == NULL);
    CHECK(strmap_get(&m, "key-3") == &values[3]);
    size_t n = 0;
    strmap_each(&m, count_entry, &n);
    CHECK_INT_EQ(n, 1000);
    strmap_free(&m);
    CHECK(strmap_get(&m, "key-3") == NULL);
}

static void mark_entry(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    (*(int *)value)++;
}

/* A walk in slices sees every entry present throughout at least once, even when the map grows
 * between slices, and each slice stays near its bound. */
static void test_each_from_across_growth(void)
{
    struct strmap m = STRMAP_INIT;
    static int seen[3000];
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "old-%d", i);
        strmap_put(&m, key, &seen[i]);
    }
    size_t pos = 0;
    int slices = 0, done = 0;
    while (!done && slices < 10000) {
        size_t before = 0;
        for (int i = 0; i < 3000; i++)
            before += (size_t)seen[i];
        done = strmap_each_from(&m, &pos, 50, mark_entry, NULL);
        size_t after = 0;
        for (int i = 0; i < 3000; i++)
            after += (size_t)seen[i];
        CHECK(after - before < 50 + 16); /* the bound plus the rest of one bucket */
        if (slices++ == 3)
            for (int i = 1000; i < 3000; i++) { /* grows the table twice */
                snprintf(key, sizeof key, "new-%d", i);
                strmap_put(&m, key, &seen[i]);
            }
    }
    CHECK(done);
    for (int i = 0; i < 1000; i++)
        CHECK(seen[i] >= 1);
    strmap_free(&m);
}

/* Owned values go with the map (the sanitized build finds a leak if one stays). */
static void test_free_values(void)
{
    struct strmap m = STRMAP_INIT;
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        strmap_put(&m, key, xstrdup(key));
    }
    strmap_free_values(&m);
    CHECK_INT_EQ(m.count, 0);
    CHECK(strmap_get(&m, "key-1") == NULL);
    strmap_free_values(&m); /* an empty map too */
}

int main(void)
{
    test_put_get_del();
    test_each_from_across_growth();
    test_free_values();
    return check_report("test_strmap");
}
