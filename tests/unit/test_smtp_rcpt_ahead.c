/*
 * RCPTs read ahead for the suppression list (mta/server/smtp_rcpt_ahead.c): the complete RCPT
 * lines after the one being answered, up to the first other command and at most max of them,
 * give the addresses that need the list (DSN parameters cut off as RCPT does; a bad address, a
 * partial or bare-LF line left out or ending the look-ahead); an answer is taken only by the
 * next address in order, and a RCPT out of step leaves the rest unused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mta/server/smtp_rcpt_ahead.h"
#include "tests/support/test_dirs.h"
#include "tests/unit/check.h"

static char dir[] = "/tmp/test_smtp_rcpt_ahead.XXXXXX";

/* The addresses a of input would read, space-separated, into out. */
static void addresses(struct rcpt_ahead *a, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < rcpt_ahead_count(a); i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i > 0 ? " " : "",
                 rcpt_ahead_address(a, i));
}

static struct rcpt_ahead *scan(const struct rcpt_facts *f, const char *input, size_t max)
{
    return rcpt_ahead_scan((struct smtp_slice){input, strlen(input)}, f, max);
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    struct buf text = BUF_INIT, err = BUF_INIT;
    buf_printf(&text,
               "listeners:\n"
               "  - {name: sub, address: \"127.0.0.1:2587\", role: submission}\n"
               "relay: {trusted_networks: [\"192.0.2.0/24\"]}\n"
               "suppression: {enabled: true, path: %s}\n",
               dir);
    struct config *cfg = NULL;
    struct suppression *st = NULL;
    CHECK_INT_EQ(config_load_string(text.data, text.len, "s.yaml", &cfg, &err), 0);
    CHECK_INT_EQ(suppression_open(dir, NULL, &st, &err), 0);
    if (cfg == NULL || st == NULL) {
        fprintf(stderr, "%.*s\n", (int)err.len, err.data);
        return 1;
    }
    struct sockaddr_in trusted = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.7", &trusted.sin_addr);
    struct rcpt_facts f = {.cfg = cfg,
                           .listener = &cfg->listeners[0],
                           .client = (const struct sockaddr *)&trusted,
                           .suppression = st,
                           .now = 1796083200};
    char got[512];

    struct rcpt_ahead *a =
        scan(&f,
             "RCPT TO:<a@foreign.example>\r\n"
             "rcpt to:<B@Foreign.Example> NOTIFY=NEVER ORCPT=rfc822;b@x.example\r\n"
             "RCPT TO:<bad address>\r\n"
             "RCPT TO:<c@foreign.example> FOO=1\r\n" /* refused: no read */
             "RCPT TO:<d@foreign.example>\r\n"
             "DATA\r\n"
             "RCPT TO:<e@foreign.example>\r\n",
             100);
    addresses(a, got, sizeof got);
    CHECK_STR_EQ(got, "a@foreign.example B@foreign.example d@foreign.example");
    rcpt_ahead_free(a);

    /* at most max lines; a partial line and a bare LF end it; nothing to read: NULL */
    a = scan(&f, "RCPT TO:<a@foreign.example>\r\nRCPT TO:<b@foreign.example>\r\n", 1);
    addresses(a, got, sizeof got);
    CHECK_STR_EQ(got, "a@foreign.example");
    rcpt_ahead_free(a);
    a = scan(&f, "RCPT TO:<a@foreign.example>\nRCPT TO:<b@foreign.example>\r\n", 10);
    CHECK(a == NULL);
    a = scan(&f, "RCPT TO:<a@foreign.example>\r\nRCPT TO:<b@foreign.exa", 10);
    CHECK_INT_EQ(rcpt_ahead_count(a), 1);
    rcpt_ahead_free(a);
    CHECK(scan(&f, "DATA\r\nRCPT TO:<a@foreign.example>\r\n", 10) == NULL);
    CHECK(scan(&f, "", 10) == NULL);

    /* the answers go to the addresses in order, each once; out of step, the rest serve none */
    a = scan(&f,
             "RCPT TO:<a@foreign.example>\r\nRCPT TO:<b@foreign.example>\r\n"
             "RCPT TO:<c@foreign.example>\r\n",
             10);
    struct suppression_entry hit = {.tenant = "", .address = "b@foreign.example"};
    struct suppression_answer answers[3] = {{0, NULL}, {1, &hit}, {-EIO, NULL}};
    rcpt_ahead_answered(a, answers);
    int found = 9;
    const struct suppression_entry *e = NULL;
    CHECK_INT_EQ(rcpt_ahead_take(a, "b@foreign.example", &found, &e), 0); /* not next */
    CHECK_INT_EQ(rcpt_ahead_take(a, "a@foreign.example", &found, &e), 0); /* nor after */
    rcpt_ahead_free(a);
    a = scan(&f,
             "RCPT TO:<a@foreign.example>\r\nRCPT TO:<b@foreign.example>\r\n"
             "RCPT TO:<c@foreign.example>\r\n",
             10);
    rcpt_ahead_answered(a, answers);
    CHECK_INT_EQ(rcpt_ahead_take(a, "a@foreign.example", &found, &e), 1);
    CHECK_INT_EQ(found, 0);
    CHECK_INT_EQ(rcpt_ahead_take(a, "b@foreign.example", &found, &e), 1);
    CHECK_INT_EQ(found, 1);
    CHECK(e != NULL && e != &hit);
    CHECK_STR_EQ(e != NULL ? e->address : "", "b@foreign.example");
    CHECK_INT_EQ(rcpt_ahead_take(a, "c@foreign.example", &found, &e), 1);
    CHECK_INT_EQ(found, -EIO);
    CHECK_INT_EQ(rcpt_ahead_take(a, "c@foreign.example", &found, &e), 0); /* used up */
    rcpt_ahead_free(a);
    CHECK_INT_EQ(rcpt_ahead_take(NULL, "a@foreign.example", &found, &e), 0);

    suppression_close(st);
    config_unref(cfg);
    buf_free(&text);
    buf_free(&err);
    test_dir_clear(dir);
    rmdir(dir);
    return check_report("test_smtp_rcpt_ahead");
}
