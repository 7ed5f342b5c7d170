/*
 * Bearer tokens (mta/http/http_auth.h): the tokens file's lines taken or refused with a reason,
 * the Authorization value's forms (RFC 6750 §2.1), and a token found by its SHA-256 only.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mta/http/http_auth.h"
#include "tests/unit/check.h"

/* printf %s s3cret-token | sha256sum */
#define S3CRET "a81e611a041b13f078bf8ebe5dab4d4fd63fcc5594661c918bec093a2f416a7e"

static void test_lines(void)
{
    struct http_tokens *t = http_tokens_new();
    static const struct {
        const char *line;
        int ok;
    } cases[] = {
        {"ops:" S3CRET, 1},
        {"a.b_c-d@e:" S3CRET, 1},
        {"no-colon", 0},
        {":" S3CRET, 0},
        {"sp ace:" S3CRET, 0},
        {"ops:" S3CRET "00", 0},
        {"ops:2c1a", 0},
        {"ops:zz1a3b0c6b3e2c1e6a5f8e2c0a2d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c", 0},
        {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx:" S3CRET, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = http_tokens_add_line(t, cases[i].line, strlen(cases[i].line));
        if ((why == NULL) != cases[i].ok)
            fprintf(stderr, "line %s: %s\n", cases[i].line, why ? why : "taken");
        CHECK((why == NULL) == cases[i].ok);
    }
    /* A NUL is no name character (it would cut the name short). */
    static const char nul_name[] = "o\0ps:" S3CRET;
    CHECK(http_tokens_add_line(t, nul_name, sizeof nul_name - 1) != NULL);
    http_tokens_free(t);
}

static void test_bearer(void)
{
    static const struct {
        const char *value, *token;
    } cases[] = {
        {"Bearer abc", "abc"}, {"bearer  abc.DEF-_~+/==  ", "abc.DEF-_~+/=="},
        {"BEARER\tx", "x"},    {"Bearer", NULL},
        {"Bearer ", NULL},     {"Bearerabc", NULL},
        {"Basic abc", NULL},   {"Bearer a b", NULL},
        {"Bearer a,b", NULL},  {"Bearer a\"b", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *tok = NULL;
        size_t len = 0;
        int ok = http_bearer_parse(cases[i].value, strlen(cases[i].value), &tok, &len);
        CHECK_INT_EQ(ok, cases[i].token != NULL);
        if (ok && cases[i].token != NULL)
            CHECK_MEM_EQ(tok, len, cases[i].token);
    }
    static const char nul_token[] = "Bearer ab\0c";
    const char *t0;
    size_t l0;
    CHECK_INT_EQ(http_bearer_parse(nul_token, sizeof nul_token - 1, &t0, &l0), 0);
    char big[HTTP_TOKEN_MAX + 16] = "Bearer ";
    memset(big + 7, 'a', HTTP_TOKEN_MAX + 1);
    big[7 + HTTP_TOKEN_MAX + 1] = '\0';
    const char *tok;
    size_t len;
    CHECK_INT_EQ(http_bearer_parse(big, strlen(big), &tok, &len), 0);
}

static void test_lookup_from_file(void)
{
    char path[] = "/tmp/sluice-test-tokens-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    /* The second: printf %s other-token | sha256sum */
    static const char text[] =
        "# users\n"
        "ops:" S3CRET "\n"
        "\n"
        "viewer:6c67163bbed989f232b31acc4f04df54b31285bfc01bd022c735b71e041a4754\n";
    CHECK_INT_EQ(write(fd, text, sizeof text - 1), sizeof text - 1);
    close(fd);
    struct http_tokens *t = NULL;
    struct buf err = BUF_INIT;
    CHECK_INT_EQ(http_tokens_load(path, &t, &err), 0);
    CHECK_STR_EQ(http_tokens_user(t, "s3cret-token", 12), "ops");
    CHECK(http_tokens_user(t, "s3cret-tokeN", 12) == NULL);
    CHECK(http_tokens_user(t, "s3cret-token", 11) == NULL);
    CHECK_STR_EQ(http_tokens_user(t, "other-token", 11), "viewer");
    CHECK(http_tokens_user(t, "", 0) == NULL);
    CHECK(http_tokens_user(NULL, "s3cret-token", 12) == NULL);
    http_tokens_free(t);

    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK_INT_EQ(write(fd, "ops:nothex\n", 11), 11);
    close(fd);
    t = NULL;
    CHECK(http_tokens_load(path, &t, &err) < 0);
    CHECK(t == NULL);
    buf_append(&err, "", 1);
    CHECK(strstr(err.data, ":1: the hash is not 64 hex digits") != NULL);
    buf_free(&err);
    unlink(path);
}

int main(void)
{
    test_lines();
    test_bearer();
    test_lookup_from_file();
    return check_report("test_http_auth");
}
