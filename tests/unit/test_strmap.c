#include "lib/strmap.h"

#include <stdio.h>

#include "check.h"

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

int main(void)
{
    test_put_get_del();
    return check_report("test_strmap");
}
