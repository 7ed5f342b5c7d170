/*
 * A transaction's DSN request: RET and ENVID taken from MAIL (other parameters left alone, bad
 * values refused), NOTIFY and ORCPT taken from each RCPT and given to the recipient accepted next
 * (a RCPT with another parameter keeps nothing; a refused one leaves nothing for the next), the
 * client's address as ORCPT when another one is spooled, and no view at all when nothing was given;
 * a recipient taken out again takes its parameters along.
 */
#include <string.h>

#include "lib/smtp_dsn.h"
#include "mta/server/smtp_tx_dsn.h"
#include "tests/unit/check.h"

static struct smtp_path_args rcpt_args(const char *arg)
{
    struct smtp_path_args args;
    CHECK_INT_EQ(smtp_cmd_parse_path_args((struct smtp_slice){arg, strlen(arg)}, "TO:", &args), 0);
    return args;
}

static void test_mail(void)
{
    struct smtp_tx_dsn d = {0};
    struct smtp_path_args args;
    const char *arg = "FROM:<a@example.org> SIZE=10 RET=full ENVID=Q+2B1";
    CHECK_INT_EQ(smtp_cmd_parse_path_args((struct smtp_slice){arg, strlen(arg)}, "FROM:", &args),
                 0);
    const char *why = NULL;
    CHECK_INT_EQ(smtp_tx_dsn_mail_param(&d, &args.params[0], &why), 0);
    CHECK_INT_EQ(smtp_tx_dsn_mail_param(&d, &args.params[1], &why), 1);
    CHECK_INT_EQ(smtp_tx_dsn_mail_param(&d, &args.params[2], &why), 1);
    CHECK_INT_EQ(d.ret, SMTP_DSN_RET_FULL);
    CHECK_STR_EQ(d.envid, "Q+1");
    CHECK(smtp_tx_dsn_view(&d) != NULL);
    smtp_tx_dsn_free(&d);

    arg = "FROM:<a@example.org> RET=ALL ENVID=a+2b";
    CHECK_INT_EQ(smtp_cmd_parse_path_args((struct smtp_slice){arg, strlen(arg)}, "FROM:", &args),
                 0);
    CHECK_INT_EQ(smtp_tx_dsn_mail_param(&d, &args.params[0], &why), -1);
    CHECK(why != NULL && strstr(why, "RET") != NULL);
    CHECK_INT_EQ(smtp_tx_dsn_mail_param(&d, &args.params[1], &why), -1);
    CHECK(strstr(why, "ENVID") != NULL);
    CHECK(d.envid == NULL && d.ret == 0);
    smtp_tx_dsn_free(&d);
}

static void test_rcpts(void)
{
    struct smtp_tx_dsn d = {0};
    const char *why = NULL;
    /* Nothing given for any recipient: no DSN records at all. */
    struct smtp_path_args none = rcpt_args("TO:<x@example.com>");
    CHECK_INT_EQ(smtp_tx_dsn_rcpt_params(&d, &none, &why), 1);
    smtp_tx_dsn_accept(&d, NULL);
    CHECK(smtp_tx_dsn_view(&d) == NULL);

    struct smtp_path_args a =
        rcpt_args("TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;B+2B1");
    CHECK_INT_EQ(smtp_tx_dsn_rcpt_params(&d, &a, &why), 1);
    smtp_tx_dsn_accept(&d, NULL);
    /* Refused by the policy after its parameters were read: nothing carries over. */
    struct smtp_path_args refused = rcpt_args("TO:<c@example.com> NOTIFY=NEVER");
    CHECK_INT_EQ(smtp_tx_dsn_rcpt_params(&d, &refused, &why), 1);
    struct smtp_path_args plain = rcpt_args("TO:<d@example.com>");
    CHECK_INT_EQ(smtp_tx_dsn_rcpt_params(&d, &plain, &why), 1);
    smtp_tx_dsn_accept(&d, NULL);
    /* The postmaster's mailbox was spooled for <postmaster>. */
    CHECK_INT_EQ(smtp_tx_dsn_rcpt_params(&d, &plain, &why), 1);
    smtp_tx_dsn_accept(&d, "postmaster");
    struct smtp_path_args other = rcpt_args("TO:<e@example.com> NOTIFY=NEVER FOO=1");
    CHECK_INT_EQ(smtp_tx_dsn_rcpt_params(&d, &other, &why), 0);
    struct smtp_path_args bad = rcpt_args("TO:<e@example.com> ORCPT=rfc822;x NOTIFY=NEVER,DELAY");
    CHECK_INT_EQ(smtp_tx_dsn_rcpt_params(&d, &bad, &why), -1);
    CHECK(why != NULL && strstr(why, "NOTIFY") != NULL);
    struct smtp_path_args twice = rcpt_args("TO:<e@example.com> NOTIFY=NEVER NOTIFY=NEVER");
    CHECK_INT_EQ(smtp_tx_dsn_rcpt_params(&d, &twice, &why), -1);

    const struct envelope_dsn *v = smtp_tx_dsn_view(&d);
    CHECK(v != NULL);
    if (v != NULL) {
        static const unsigned char want_notify[] = {
            0, SMTP_DSN_NOTIFY_SUCCESS | SMTP_DSN_NOTIFY_FAILURE, 0, 0};
        const char *const want_orcpt[] = {NULL, "rfc822;B+1", NULL, "rfc822;postmaster"};
        CHECK_INT_EQ(d.nrcpts, 4);
        for (size_t i = 0; i < 4; i++) {
            CHECK_INT_EQ(v->notify[i], want_notify[i]);
            if (want_orcpt[i] == NULL)
                CHECK(v->orcpt[i] == NULL);
            else
                CHECK_STR_EQ(v->orcpt[i], want_orcpt[i]);
        }
    }
    smtp_tx_dsn_free(&d);
}

/* A recipient taken out again (a tenant's suppression list): the later ones keep their own. */
static void test_remove(void)
{
    struct smtp_tx_dsn d = {0};
    const char *why = NULL;
    const char *args[] = {"TO:<a@example.com> NOTIFY=NEVER", "TO:<b@example.com> ORCPT=rfc822;b",
                          "TO:<c@example.com> NOTIFY=DELAY ORCPT=rfc822;c"};
    for (size_t i = 0; i < 3; i++) {
        struct smtp_path_args a = rcpt_args(args[i]);
        CHECK_INT_EQ(smtp_tx_dsn_rcpt_params(&d, &a, &why), 1);
        smtp_tx_dsn_accept(&d, NULL);
    }
    smtp_tx_dsn_remove(&d, 1);
    smtp_tx_dsn_remove(&d, 0);
    const struct envelope_dsn *v = smtp_tx_dsn_view(&d);
    CHECK_INT_EQ(d.nrcpts, 1);
    CHECK(v != NULL);
    if (v != NULL) {
        CHECK_INT_EQ(v->notify[0], SMTP_DSN_NOTIFY_DELAY);
        CHECK_STR_EQ(v->orcpt[0], "rfc822;c");
    }
    smtp_tx_dsn_free(&d);
}

int main(void)
{
    test_mail();
    test_rcpts();
    test_remove();
    return check_report("test_smtp_tx_dsn");
}
