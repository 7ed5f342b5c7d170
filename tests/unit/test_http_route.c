/*
 * The HTTP interface's routing and query parameters (mta/http/http_route.h): a path matched whole
 * with its method (404 for no such path, 405 naming the method for another, HEAD as GET) or by
 * its head and one more segment (a path ending in '*'), the
 * target split at '?', and parameters percent-decoded with malformed ones refused.
 */
#include "mta/http/http_route.h"
#include "tests/unit/check.h"

static void handler(void *arg, const struct http_call *call, struct http_answer *answer)
{
    (void)arg, (void)call, (void)answer;
}

static const struct http_route table[] = {
    {"GET", "/metrics", HTTP_ACCESS_METRICS, handler},
    {"GET", "/api/v1/status", HTTP_ACCESS_TOKEN, handler},
    {"GET", "/api/v1/m/*", HTTP_ACCESS_TOKEN, handler},
};

static const struct http_route *find(const char *method, const char *path, int *status,
                                     const char **allow)
{
    return http_route_find(table, 3, method, strlen(method), path, strlen(path), status, allow);
}

static void test_find(void)
{
    int status;
    const char *allow;
    CHECK(find("GET", "/metrics", &status, &allow) == &table[0]);
    CHECK(find("HEAD", "/api/v1/status", &status, &allow) == &table[1]);
    CHECK(find("POST", "/metrics", &status, &allow) == NULL);
    CHECK_INT_EQ(status, 405);
    CHECK_STR_EQ(allow, "GET");
    static const char *const missing[] = {"/metric", "/metrics/", "/METRICS",        "",
                                          "/",       "/api/v1",   "/api/v1/status/x"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        CHECK(find("GET", missing[i], &status, &allow) == NULL);
        CHECK_INT_EQ(status, 404);
        CHECK(allow == NULL);
    }
    CHECK(find("get", "/metrics", &status, &allow) == NULL); /* methods are case-sensitive */
}

/* A route ending in '*' takes one more non-empty segment, and gives it to the handler. */
static void test_rest(void)
{
    int status;
    const char *allow, *rest;
    const char *path = "/api/v1/m/ABC7";
    CHECK(find("GET", path, &status, &allow) == &table[2]);
    size_t len = http_route_rest(&table[2], path, strlen(path), &rest);
    CHECK_MEM_EQ(rest, len, "ABC7");
    static const char *const missing[] = {"/api/v1/m/", "/api/v1/m", "/api/v1/m/A/B", "/api/v1/mA"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        CHECK(find("GET", missing[i], &status, &allow) == NULL);
        CHECK_INT_EQ(status, 404);
    }
    CHECK(find("POST", path, &status, &allow) == NULL);
    CHECK_INT_EQ(status, 405);
    CHECK_INT_EQ(http_route_rest(&table[0], "/metrics", 8, &rest), 0);
}

static void test_split(void)
{
    size_t plen, qlen;
    const char *q;
    const char *t = "/api/v1/status?top=3&x=%20";
    http_target_split(t, strlen(t), &plen, &q, &qlen);
    CHECK_INT_EQ(plen, 14);
    CHECK_MEM_EQ(q, qlen, "top=3&x=%20");
    http_target_split("/metrics", 8, &plen, &q, &qlen);
    CHECK_INT_EQ(plen, 8);
    CHECK_INT_EQ(qlen, 0);
    http_target_split("/m?", 3, &plen, &q, &qlen);
    CHECK_INT_EQ(plen, 2);
    CHECK_INT_EQ(qlen, 0);
}

static void test_query(void)
{
    static const struct {
        const char *query, *name;
        int rc;
        const char *value;
    } cases[] = {
        {"top=3", "top", 1, "3"},
        {"a=1&top=10&b", "top", 1, "10"},
        {"a=1&b", "b", 1, ""},
        {"topx=1&top", "top", 1, ""},
        {"x=%41%2f+b", "x", 1, "A/ b"},
        {"top=3", "to", 0, NULL},
        {"", "top", 0, NULL},
        {"&&&", "top", 0, NULL},
        {"x=%4", "x", -1, NULL},
        {"x=%zz", "x", -1, NULL},
        {"x=%00", "x", -1, NULL},
        {"x=0123456789abcdef", "x", -1, NULL}, /* longer than the buffer */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[16];
        int rc =
            http_query_get(cases[i].query, strlen(cases[i].query), cases[i].name, out, sizeof out);
        CHECK_INT_EQ(rc, cases[i].rc);
        if (rc == 1 && cases[i].rc == 1)
            CHECK_STR_EQ(out, cases[i].value);
    }
}

int main(void)
{
    test_find();
    test_rest();
    test_split();
    test_query();
    return check_report("test_http_route");
}
