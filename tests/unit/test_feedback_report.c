/*
 * The report reader (mta/feedback/report.h) on report shapes as receivers send them, kept in
 * tests/data/feedback: Yahoo's headers-only ARF with the recipient redacted, Microsoft's JMRP (the
 * original attached, no feedback-report part, the trace folded), AOL's ARF with the original in
 * base64, the RFC 5965 example, a Postfix DSN with two recipients, a qmail-style plain bounce
 * quoting the original's header fields, and a message that is no report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mta/feedback/report.h"

#define DATA_DIR SLUICE_TEST_SUPPORT_DIR "/../data/feedback/"
#define TRACE                                                                                      \
    "q0QJ5K8M2X4Y6Z000.tYWxpY2VAZXhhbXBsZS5jb20.cc3ByaW5nLXNhbGU.r.kk1.mAAAAAAAAAAAAAAAAAAAAA"

struct sample {
    const char *file;
    enum report_kind kind;
    const char *format, *provider, *type, *source_ip, *sender, *subject, *recipient, *status,
        *trace;
    int hard;
};

static const struct sample samples[] = {
    {"yahoo.eml", REPORT_COMPLAINT, "arf", "feedback.yahoo.com", "abuse", "192.0.2.25",
     "news@sender.test", "spring sale", "redacted@yahoo.com", "", TRACE, 0},
    {"jmrp.eml", REPORT_COMPLAINT, "jmrp", "hotmail.com", "abuse", "", "news@sender.test",
     "spring sale", "bob@outlook.test", "", TRACE, 0},
    {"aol.eml", REPORT_COMPLAINT, "arf", "aol.net", "abuse", "192.0.2.25", "news@sender.test",
     "spring sale", "redacted@aol.com", "", TRACE, 0},
    {"arf_rfc5965.eml", REPORT_COMPLAINT, "arf", "example.com", "abuse", "192.0.2.1",
     "somespammer@example.net", "Earn money", "user@example.com", "", "", 0},
    {"dsn.eml", REPORT_BOUNCE, "dsn", "mx.dest.test", "failed", "", "news@sender.test",
     "spring sale", "gone@dest.test", "5.1.1", TRACE, 1},
    {"bounce_plain.eml", REPORT_BOUNCE, "bounce", "legacy.dest.test", "", "", "news@sender.test",
     "spring sale", "dave@legacy.dest.test", "5.1.1", TRACE, 1},
    {"not_a_report.eml", REPORT_NONE, "none", "elsewhere.test", "", "", "", "", "", "", "", 0},
};

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s", DATA_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        printf("cannot open %s\n", path);
        exit(1);
    }
    char *data = malloc(1 << 20);
    *len = fread(data, 1, 1 << 20, f);
    fclose(f);
    return data;
}

static void test_samples(void)
{
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        const struct sample *s = &samples[i];
        size_t len;
        char *data = slurp(s->file, &len);
        struct feedback_report r;
        report_parse(data, len, &r);
        printf("-- %s\n", s->file);
        CHECK_INT_EQ(r.kind, s->kind);
        CHECK_STR_EQ(r.format, s->format);
        CHECK_STR_EQ(r.provider, s->provider);
        CHECK_STR_EQ(r.feedback_type, s->type);
        CHECK_STR_EQ(r.source_ip, s->source_ip);
        CHECK_STR_EQ(r.sender, s->sender);
        CHECK_STR_EQ(r.subject, s->subject);
        CHECK_STR_EQ(r.recipient, s->recipient);
        CHECK_STR_EQ(r.status, s->status);
        CHECK_STR_EQ(r.trace, s->trace);
        CHECK_INT_EQ(report_bounce_is_hard(&r), s->hard);
        free(data);
    }
}

/* Cut anywhere, the reader stays inside the message and says what it saw so far. */
static void test_truncated(void)
{
    size_t len;
    char *data = slurp("dsn.eml", &len);
    for (size_t cut = 0; cut <= len; cut += 7) {
        char *copy = malloc(cut + 1);
        memcpy(copy, data, cut);
        struct feedback_report r;
        report_parse(copy, cut, &r);
        CHECK(strlen(r.recipient) <= REPORT_FIELD_MAX);
        free(copy);
    }
    free(data);
}

int main(void)
{
    test_samples();
    test_truncated();
    return check_report("test_feedback_report");
}
