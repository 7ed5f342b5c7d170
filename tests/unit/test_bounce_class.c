/*
 * Unit tests for bounce_class: a table of real replies from the large providers (as logged by
 * Postfix and Sluice), each with the class it must get.
 */
#include "mta/delivery/bounce_class.h"

#include "check.h"

struct sample {
    int code;
    const char *enhanced;
    const char *text;
    enum bounce_class want;
};

static const struct sample samples[] = {
    {250, "2.0.0", "OK 1700000000 a1-20020a05.123 - gsmtp", BOUNCE_NONE},
    /* Gmail */
    {550, "5.1.1",
     "The email account that you tried to reach does not exist. Please try double-checking the "
     "recipient's email address for typos or unnecessary spaces.",
     BOUNCE_UNKNOWN_USER},
    {550, NULL, "5.1.1 The email account that you tried to reach does not exist.",
     BOUNCE_UNKNOWN_USER},
    {452, "4.2.2", "The email account that you tried to reach is over quota.", BOUNCE_MAILBOX_FULL},
    {550, "5.2.1", "The email account that you tried to reach is disabled.", BOUNCE_UNKNOWN_USER},
    {450, "4.2.1",
     "The user you are trying to contact is receiving mail at a rate that prevents additional "
     "messages from being delivered.",
     BOUNCE_RATE_LIMIT},
    {421, "4.7.28",
     "[192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating from "
     "your IP address. To protect our users from spam, mail sent from your IP address has been "
     "temporarily rate limited.",
     BOUNCE_RATE_LIMIT},
    {550, "5.7.26",
     "This mail has been blocked because the sender is unauthenticated. Gmail requires all senders "
     "to authenticate with either SPF or DKIM.",
     BOUNCE_POLICY},
    {550, "5.7.1",
     "[192.0.2.1] Our system has detected that this message is likely unsolicited mail. To reduce "
     "the amount of spam sent to Gmail, this message has been blocked.",
     BOUNCE_POLICY},
    {550, "5.7.1",
     "Our system has detected that this message is likely suspicious due to the very low "
     "reputation of the sending domain.",
     BOUNCE_REPUTATION},
    {552, "5.2.3", "Your message exceeded Google's message size limits.", BOUNCE_MESSAGE_SIZE},
    {530, "5.7.0", "Must issue a STARTTLS command first.", BOUNCE_TLS},
    {421, "4.7.0", "Try again later, closing connection. (EHLO)", BOUNCE_RATE_LIMIT},
    /* Yahoo */
    {421, "4.7.0",
     "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user "
     "complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
     BOUNCE_RATE_LIMIT},
    {553, "5.7.2",
     "[TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed.",
     BOUNCE_REPUTATION},
    {554, NULL, "delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [0]",
     BOUNCE_UNKNOWN_USER},
    {552, NULL, "1 Requested mail action aborted, mailbox not found", BOUNCE_UNKNOWN_USER},
    {554, "5.7.9", "Message not accepted for policy reasons.", BOUNCE_POLICY},
    {554, NULL, "30 Sorry, your message size exceeds 41943040 bytes.", BOUNCE_MESSAGE_SIZE},
    /* Microsoft */
    {550, "5.7.1",
     "Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service "
     "provider since part of their network is on our block list (S3150).",
     BOUNCE_REPUTATION},
    {550, "5.7.606",
     "Access denied, banned sending IP [192.0.2.1]. To request removal from this list please "
     "visit https://sender.office.com/",
     BOUNCE_REPUTATION},
    {451, "4.7.650",
     "The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation.",
     BOUNCE_RATE_LIMIT},
    {550, "5.5.0", "Requested action not taken: mailbox unavailable", BOUNCE_UNKNOWN_USER},
    /* Comcast */
    {421, NULL, "resimta-po-01v.sys.comcast.net resimta Too many sessions opened - RL000001",
     BOUNCE_RATE_LIMIT},
    {554, NULL, "resimta-ch2-18v.sys.comcast.net 192.0.2.1 found on one or more RBLs (BL000010)",
     BOUNCE_REPUTATION},
    /* Blocklists, quota, size and the generic rest */
    {554, "5.7.1",
     "Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; "
     "https://www.spamhaus.org/query/ip/192.0.2.1",
     BOUNCE_REPUTATION},
    {554, NULL, "Service unavailable; client [192.0.2.1] blocked using b.barracudacentral.org",
     BOUNCE_REPUTATION},
    {421, "4.4.2", "example.org Error: timeout exceeded", BOUNCE_CONNECTION},
    {552, "5.2.2", "Mailbox full", BOUNCE_MAILBOX_FULL},
    {452, NULL, "Insufficient system storage", BOUNCE_OTHER},
    {422, NULL, "The recipient's mailbox is over its quota", BOUNCE_MAILBOX_FULL},
    {552, "5.3.4", "Message size exceeds fixed limit", BOUNCE_MESSAGE_SIZE},
    {550, "5.1.1",
     "<nobody@example.org>: Recipient address rejected: User unknown in virtual "
     "mailbox table",
     BOUNCE_UNKNOWN_USER},
    {450, "4.2.0",
     "<a@example.org>: Recipient address rejected: Greylisted, see "
     "http://postgrey.schweikert.ch/",
     BOUNCE_OTHER},
    {450, "4.1.2", "<a@nx.example>: Recipient address rejected: Domain not found", BOUNCE_DNS},
    {451, "4.3.0", "Temporary local problem, try again later", BOUNCE_OTHER},
    {550, "5.7.1", "Relaying denied", BOUNCE_POLICY},
    {554, NULL, "Transaction failed", BOUNCE_POLICY},
    /* A permanent refusal at end of data is about the message, whatever words it uses. */
    {554, NULL, "Message refused", BOUNCE_POLICY},
    {554, "5.7.1", "Message refused by content filter", BOUNCE_POLICY},
    {550, NULL, "Message refused: timeout reading the body", BOUNCE_OTHER},
    {421, NULL, "Timeout, closing connection", BOUNCE_CONNECTION},
    {451, "4.4.2", "lost connection with mx.example.org: connection reset by peer",
     BOUNCE_CONNECTION},
    {552, NULL, "Requested mail action aborted: exceeded storage allocation", BOUNCE_MESSAGE_SIZE},
    /* Sluice's own failures: no remote reply */
    {0, NULL, "connect to 192.0.2.1:25: Connection refused", BOUNCE_CONNECTION},
    {0, NULL, NULL, BOUNCE_CONNECTION},
    {0, "5.4.4", "Host or domain name not found (NXDOMAIN)", BOUNCE_DNS},
    {0, "5.1.10", "null MX: domain accepts no mail", BOUNCE_UNKNOWN_USER},
    {0, NULL, "TLS handshake failed: certificate verify failed", BOUNCE_TLS},
    {0, "4.4.7", "delivery time expired", BOUNCE_OTHER},
};

static void test_samples(void)
{
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        const struct sample *s = &samples[i];
        enum bounce_class got = bounce_classify(s->code, s->enhanced, s->text);
        if (got != s->want)
            fprintf(stderr, "sample %zu: %d %s %s\n", i, s->code, s->enhanced ? s->enhanced : "-",
                    s->text ? s->text : "(null)");
        CHECK_STR_EQ(bounce_class_name(got), bounce_class_name(s->want));
    }
}

static void test_names_and_throttle(void)
{
    CHECK_STR_EQ(bounce_class_name(BOUNCE_UNKNOWN_USER), "unknown_user");
    CHECK_STR_EQ(bounce_class_name(BOUNCE_RATE_LIMIT), "rate_limit");
    CHECK_STR_EQ(bounce_class_name(BOUNCE_OTHER), "other");
    CHECK_INT_EQ(bounce_class_is_throttle(BOUNCE_RATE_LIMIT), 1);
    CHECK_INT_EQ(bounce_class_is_throttle(BOUNCE_REPUTATION), 0);
    CHECK_INT_EQ(bounce_class_is_throttle(BOUNCE_UNKNOWN_USER), 0);
}

int main(void)
{
    test_samples();
    test_names_and_throttle();
    return check_report("test_bounce_class");
}
