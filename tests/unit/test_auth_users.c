/*
 * The users file (parsing, errors with file:line, lookups), password checks against SHA-512-crypt
 * and yescrypt hashes, and the per-client failure table (counts, /64 grouping, expiry, LRU
 * eviction, delays).
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/auth_users.h"
#include "tests/unit/check.h"
#include "tests/unit/client_addr.h"

/* Made independently with Python's crypt module: password "pw". */
static const char sha512_pw[] =
    "$6$.b/vrT.av0AHVgT8$fWcxU1kANoSE.HS/ab74LQfpaE6KXmmochK24XCJ8cbLjokt"
    "ndgxiQjeBIHTzCCh3O7FEMgHYlhrpq7HnKrMO1";
static const char yescrypt_pw[] =
    "$y$j9T$abcdefghijklmnop$wRwvHNqzMkHLG74uLLCRVTwaZ.a1aIothEUeYGf9oED";

/* buf_printf keeps the data NUL-terminated. */
static const char *text_of(const struct buf *b)
{
    return b->data != NULL ? b->data : "";
}

static char dir[] = "/tmp/test_auth_users.XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_load_ok(void)
{
    char text[1024];
    snprintf(text, sizeof text,
             "# users\n"
             "\n"
             "bob:%s\n"
             "  alice@example.com:%s \r\n" /* surrounding blanks are not part of it */
             "   \n"                       /* a blank line */
             "   nohash\n"                 /* a bad line */
             ,
             sha512_pw, yescrypt_pw);
    struct buf err = BUF_INIT;
    struct auth_users *u = NULL;
    const char *path = write_file("bad_blank", text);
    CHECK(auth_users_load(path, &u, &err) < 0);
    CHECK(err.len > 0 && strstr(text_of(&err), "bad_blank:6: expected name:hash") != NULL);
    buf_free(&err);

    text[strlen(text) - 10] = '\0'; /* drop the "   nohash\n" line */
    path = write_file("users", text);
    if (auth_users_load(path, &u, &err) != 0) {
        fprintf(stderr, "users file refused: %s\n", text_of(&err));
        CHECK(0);
        return;
    }
    CHECK_INT_EQ(err.len, 0);
    CHECK_INT_EQ(auth_users_count(u), 2);
    CHECK_STR_EQ(auth_users_hash(u, "bob", 3), sha512_pw);
    CHECK_STR_EQ(auth_users_hash(u, "alice@example.com", 17), yescrypt_pw);
    CHECK(auth_users_hash(u, "bo", 2) == NULL);
    CHECK(auth_users_hash(u, "bobx", 3) != NULL); /* the length given counts */
    CHECK(auth_users_hash(u, "Bob", 3) == NULL);  /* names are exact */
    CHECK(auth_users_hash(u, "bob\0", 4) == NULL);
    CHECK(auth_users_hash(u, "", 0) == NULL);
    CHECK(auth_users_decoy_hash(u) != NULL);
    auth_users_free(u);
}

struct bad_case {
    const char *line;
    const char *want; /* part of the message */
};

static void test_load_errors(void)
{
    static const struct bad_case cases[] = {
        {"nocolon", "expected name:hash"},
        {":$6$abc$def", "empty user name"},
        {"bob:", "empty hash"},
        {"bob smith:$6$.b/vrT.av0AHVgT8$x", "user name holds"},
        {"bob(x):$6$.b/vrT.av0AHVgT8$x", "user name holds"},
        {"b\xc3\xa9:$6$.b/vrT.av0AHVgT8$x", "user name holds"},
        {"bob:plaintext", "not a crypt(3) hash"},
        {"bob:abJnggxhB/yWI", "not a crypt(3) hash"},           /* DES */
        {"bob:$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", "too weak"}, /* MD5-crypt */
        {"bob:$6$.b/vrT.av0AHVgT8$a:b", "hash holds ':'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "# header\nok:%s\n%s\n", sha512_pw, cases[i].line);
        const char *path = write_file("bad", text);
        struct buf err = BUF_INIT;
        struct auth_users *u = NULL;
        CHECK(auth_users_load(path, &u, &err) < 0);
        CHECK(u == NULL);
        const char *msg = text_of(&err);
        if (strstr(msg, "/bad:3: ") == NULL || strstr(msg, cases[i].want) == NULL)
            fprintf(stderr, "case %zu (%s): got \"%s\", want line 3 and \"%s\"\n", i, cases[i].line,
                    msg, cases[i].want);
        CHECK(strstr(msg, "/bad:3: ") != NULL);
        CHECK(strstr(msg, cases[i].want) != NULL);
        buf_free(&err);
    }

    /* Duplicates and a missing file. */
    char text[512];
    snprintf(text, sizeof text, "bob:%s\nbob:%s\n", sha512_pw, yescrypt_pw);
    struct buf err = BUF_INIT;
    struct auth_users *u = NULL;
    CHECK(auth_users_load(write_file("dup", text), &u, &err) < 0);
    CHECK(strstr(text_of(&err), "'bob' is listed more than once") != NULL);
    buf_free(&err);
    CHECK(auth_users_load("/nonexistent/users", &u, &err) < 0);
    CHECK(strstr(text_of(&err), "/nonexistent/users") != NULL);
    buf_free(&err);

    /* An empty file is a valid table without users. */
    CHECK_INT_EQ(auth_users_load(write_file("empty", "# nobody yet\n"), &u, &err), 0);
    CHECK_INT_EQ(auth_users_count(u), 0);
    CHECK(auth_users_decoy_hash(u) == NULL);
    CHECK(auth_users_hash(u, "bob", 3) == NULL);
    auth_users_free(u);
}

static void test_verify(void)
{
    CHECK_INT_EQ(auth_users_verify(sha512_pw, "pw", 2), 1);
    CHECK_INT_EQ(auth_users_verify(sha512_pw, "pW", 2), 0);
    CHECK_INT_EQ(auth_users_verify(sha512_pw, "pw ", 3), 0);
    CHECK_INT_EQ(auth_users_verify(sha512_pw, "", 0), 0);
    CHECK_INT_EQ(auth_users_verify(sha512_pw, "pw\0x", 4), 0); /* NUL inside never matches */
    CHECK_INT_EQ(auth_users_verify(yescrypt_pw, "pw", 2), 1);
    CHECK_INT_EQ(auth_users_verify(yescrypt_pw, "px", 2), 0);
    CHECK_INT_EQ(auth_users_verify("$6$", "pw", 2), 0);
    CHECK_INT_EQ(auth_users_verify("*", "pw", 2), 0);

    /* Hashes made here with fresh salts, one per method. */
    static const char *const prefixes[] = {"$6$", "$y$"};
    for (size_t i = 0; i < 2; i++) {
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        struct crypt_data data;
        memset(&data, 0, sizeof data);
        CHECK(crypt_gensalt_rn(prefixes[i], 0, NULL, 0, salt, sizeof salt) != NULL);
        const char *hash = crypt_r("correct horse", salt, &data);
        CHECK(hash != NULL && strncmp(hash, prefixes[i], 3) == 0);
        CHECK_INT_EQ(auth_users_verify(hash, "correct horse", 13), 1);
        CHECK_INT_EQ(auth_users_verify(hash, "correct horsE", 13), 0);
        CHECK_INT_EQ(auth_users_verify(hash, "correct hors", 12), 0);
    }
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_failures(void)
{
    struct auth_failures *f = auth_failures_new(4);
    struct sockaddr_storage a = client_addr("192.0.2.1"), b = client_addr("192.0.2.2");
    struct sockaddr_storage a_mapped = client_addr("::ffff:192.0.2.1");
    struct sockaddr_storage v6 = client_addr("2001:db8:1:2::1"),
                            v6_same64 = client_addr("2001:db8:1:2::99");
    struct sockaddr_storage v6_other64 = client_addr("2001:db8:1:3::1");
    uint64_t t = 1000000;

    CHECK_INT_EQ(auth_failures_count(f, SA(a), t), 0);
    CHECK_INT_EQ(auth_failures_add(f, SA(a), t), 1);
    CHECK_INT_EQ(auth_failures_add(f, SA(a), t + 1), 2);
    CHECK_INT_EQ(auth_failures_add(f, SA(a_mapped), t + 2), 3); /* the same client */
    CHECK_INT_EQ(auth_failures_count(f, SA(a), t + 3), 3);
    CHECK_INT_EQ(auth_failures_count(f, SA(b), t + 3), 0);

    CHECK_INT_EQ(auth_failures_add(f, SA(v6), t), 1);
    CHECK_INT_EQ(auth_failures_add(f, SA(v6_same64), t), 2);
    CHECK_INT_EQ(auth_failures_count(f, SA(v6_other64), t), 0);

    /* Forgotten after a quiet period; a new failure starts from one. */
    CHECK_INT_EQ(auth_failures_count(f, SA(a), t + 2 + AUTH_FAILURES_FORGET_MS - 1), 3);
    CHECK_INT_EQ(auth_failures_count(f, SA(a), t + 2 + AUTH_FAILURES_FORGET_MS), 0);
    CHECK_INT_EQ(auth_failures_add(f, SA(a), t + 2 + AUTH_FAILURES_FORGET_MS), 1);

    /* Full (a, v6, and two more): the least recently failing client (v6) makes room. */
    t += AUTH_FAILURES_FORGET_MS + 10;
    struct sockaddr_storage c = client_addr("198.51.100.3"), d = client_addr("198.51.100.4");
    struct sockaddr_storage e = client_addr("198.51.100.5");
    CHECK_INT_EQ(auth_failures_add(f, SA(a), t), 2);
    CHECK_INT_EQ(auth_failures_add(f, SA(c), t), 1);
    CHECK_INT_EQ(auth_failures_add(f, SA(d), t), 1);
    CHECK_INT_EQ(auth_failures_add(f, SA(e), t), 1);
    CHECK_INT_EQ(auth_failures_count(f, SA(v6), t), 0);
    CHECK_INT_EQ(auth_failures_count(f, SA(a), t), 2);
    CHECK_INT_EQ(auth_failures_add(f, SA(a), t), 3); /* a is now the most recent */
    CHECK_INT_EQ(auth_failures_add(f, SA(b), t), 1); /* evicts c */
    CHECK_INT_EQ(auth_failures_count(f, SA(c), t), 0);
    CHECK_INT_EQ(auth_failures_count(f, SA(a), t), 3);
    CHECK_INT_EQ(auth_failures_count(f, SA(d), t), 1);
    CHECK_INT_EQ(auth_failures_count(f, SA(e), t), 1);
    auth_failures_free(f);

    /* Many clients through a small table: the count stays right for those kept. */
    f = auth_failures_new(64);
    for (unsigned i = 0; i < 1000; i++) {
        char text[32];
        snprintf(text, sizeof text, "10.0.%u.%u", i / 250, i % 250);
        struct sockaddr_storage x = client_addr(text);
        CHECK_INT_EQ(auth_failures_add(f, SA(x), t + i), 1);
        CHECK_INT_EQ(auth_failures_add(f, SA(x), t + i), 2);
    }
    struct sockaddr_storage last = client_addr("10.0.3.249"), first = client_addr("10.0.0.0");
    CHECK_INT_EQ(auth_failures_count(f, SA(last), t + 1000), 2);
    CHECK_INT_EQ(auth_failures_count(f, SA(first), t + 1000), 0);
    auth_failures_free(f);

    CHECK_INT_EQ(auth_failures_delay_ms(0), 0);
    CHECK_INT_EQ(auth_failures_delay_ms(AUTH_FAILURES_FREE - 1), 0);
    CHECK_INT_EQ(auth_failures_delay_ms(AUTH_FAILURES_FREE), 1000);
    CHECK_INT_EQ(auth_failures_delay_ms(AUTH_FAILURES_FREE + 1), 2000);
    CHECK_INT_EQ(auth_failures_delay_ms(AUTH_FAILURES_FREE + 4), 16000);
    CHECK_INT_EQ(auth_failures_delay_ms(AUTH_FAILURES_FREE + 5), 30000);
    CHECK_INT_EQ(auth_failures_delay_ms(4000000000u), 30000);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_load_ok();
    test_load_errors();
    test_verify();
    test_failures();
    static const char *const names[] = {"bad_blank", "users", "bad", "dup", "empty"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return check_report("test_auth_users");
}
