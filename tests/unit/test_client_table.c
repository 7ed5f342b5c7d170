/* lib/client_table: keys (IPv4, v4-mapped, IPv6 /64), zeroed new state, LRU eviction. */
#include <stdint.h>

#include "lib/client_table.h"
#include "check.h"
#include "client_addr.h"

static uint64_t *get(struct client_table *t, const char *text, int *created)
{
    struct sockaddr_storage ss = client_addr(text);
    return client_table_get(t, (const struct sockaddr *)&ss, created);
}

static void test_keys(void)
{
    struct client_table *t = client_table_new(16, sizeof(uint64_t));
    int created;
    uint64_t *a = get(t, "192.0.2.1", &created);
    CHECK(a != NULL);
    CHECK_INT_EQ(created, 1);
    CHECK_INT_EQ(*a, 0);
    *a = 7;
    CHECK(get(t, "::ffff:192.0.2.1", &created) == a); /* v4-mapped is the same client */
    CHECK_INT_EQ(created, 0);
    CHECK(get(t, "192.0.2.2", &created) != a);
    CHECK_INT_EQ(created, 1);

    uint64_t *b = get(t, "2001:db8:1:2::1", &created);
    CHECK_INT_EQ(created, 1);
    CHECK(get(t, "2001:db8:1:2:ffff::9", &created) == b); /* same /64 */
    CHECK_INT_EQ(created, 0);
    CHECK(get(t, "2001:db8:1:3::1", &created) != b); /* next /64 */
    CHECK_INT_EQ(created, 1);
    CHECK_INT_EQ(client_table_count(t), 4);

    struct sockaddr unix_addr = {.sa_family = AF_UNIX};
    CHECK(client_table_get(t, &unix_addr, &created) == NULL);
    CHECK_INT_EQ(created, 0);
    client_table_free(t);
}

static void test_eviction(void)
{
    struct client_table *t = client_table_new(3, sizeof(uint64_t));
    int created;
    *get(t, "10.0.0.1", &created) = 1;
    *get(t, "10.0.0.2", &created) = 2;
    *get(t, "10.0.0.3", &created) = 3;
    CHECK_INT_EQ(*get(t, "10.0.0.1", &created), 1); /* now the most recent; .2 is the oldest */
    CHECK_INT_EQ(created, 0);
    *get(t, "10.0.0.4", &created) = 4; /* evicts .2 */
    CHECK_INT_EQ(client_table_count(t), 3);
    CHECK_INT_EQ(*get(t, "10.0.0.3", &created), 3);
    CHECK_INT_EQ(created, 0);
    CHECK_INT_EQ(*get(t, "10.0.0.2", &created), 0); /* forgotten: fresh state; evicts .1 */
    CHECK_INT_EQ(created, 1);
    CHECK_INT_EQ(*get(t, "10.0.0.4", &created), 4);
    CHECK_INT_EQ(*get(t, "10.0.0.1", &created), 0);
    CHECK_INT_EQ(created, 1);

    /* many more clients than room: bounded, and the latest are all there */
    char text[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(text, sizeof text, "10.1.%d.%d", i / 256, i % 256);
        *get(t, text, &created) = (uint64_t)i;
    }
    CHECK_INT_EQ(client_table_count(t), 3);
    CHECK_INT_EQ(*get(t, "10.1.3.231", &created), 999);
    CHECK_INT_EQ(created, 0);
    CHECK_INT_EQ(*get(t, "10.1.3.229", &created), 997);
    CHECK_INT_EQ(created, 0);
    client_table_free(t);
}

/* find looks without creating and without refreshing the client's place in the LRU order. */
static void test_find(void)
{
    struct client_table *t = client_table_new(2, sizeof(uint64_t));
    struct sockaddr_storage a = client_addr("192.0.2.1"), b = client_addr("2001:db8::1");
    int created;
    CHECK(client_table_find(t, (const struct sockaddr *)&a) == NULL);
    CHECK_INT_EQ(client_table_count(t), 0);
    uint64_t *va = get(t, "192.0.2.1", &created);
    *va = 5;
    get(t, "2001:db8::1", &created);
    const uint64_t *found = client_table_find(t, (const struct sockaddr *)&a);
    CHECK(found == va);
    CHECK_INT_EQ(*found, 5);
    get(t, "198.51.100.1", &created); /* evicts the least recently got: 192.0.2.1 */
    CHECK(client_table_find(t, (const struct sockaddr *)&a) == NULL);
    CHECK(client_table_find(t, (const struct sockaddr *)&b) != NULL);
    client_table_free(t);
}

int main(void)
{
    test_keys();
    test_eviction();
    test_find();
    return check_report("test_client_table");
}
