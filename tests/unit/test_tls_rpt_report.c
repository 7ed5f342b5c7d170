/* TLS-RPT (RFC 8460): counting and its bounds, the counts saved and read back, the
 * `_smtp._tls` TXT record, the JSON report read back with jansson, and the report mail. */
#include <jansson.h>
#include <openssl/evp.h>
#include <string.h>

#include "mta/delivery/tls_rpt_report.h"
#include "mta/delivery/tls_rpt_table.h"
#include "tests/unit/check.h"

#define DAY "2026-12-04"

static const char sts_text[] = "version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 86400";

static void count(struct tls_rpt_table *t, const char *day, const char *domain,
                  enum tls_rpt_policy_type type, enum tls_rpt_result result, const char *mx)
{
    struct tls_rpt_event ev = {.domain = domain,
                               .type = type,
                               .policy_text = type == TLS_RPT_POLICY_STS ? sts_text : NULL,
                               .result = result,
                               .mx_host = mx,
                               .sending_ip = "192.0.2.1",
                               .receiving_ip = "198.51.100.7",
                               .reason = result == TLS_RPT_SUCCESS ? NULL : "because"};
    tls_rpt_table_count(t, day, &ev);
}

static struct tls_rpt_domain *only_due(struct tls_rpt_table *t, const char *before)
{
    size_t n;
    struct tls_rpt_domain **due = tls_rpt_table_due(t, before, &n);
    struct tls_rpt_domain *d = n == 1 ? due[0] : NULL;
    CHECK_INT_EQ(n, 1);
    free(due);
    return d;
}

static void fill_example(struct tls_rpt_table *t)
{
    for (int i = 0; i < 3; i++)
        count(t, DAY, "example.net", TLS_RPT_POLICY_STS, TLS_RPT_SUCCESS, "mx1.example.net");
    count(t, DAY, "example.net", TLS_RPT_POLICY_STS, TLS_RPT_CERT_EXPIRED, "mx2.example.net");
    count(t, DAY, "example.net", TLS_RPT_POLICY_STS, TLS_RPT_CERT_EXPIRED, "mx2.example.net");
    count(t, DAY, "example.net", TLS_RPT_POLICY_STS, TLS_RPT_CERT_HOST_MISMATCH, "mx3.example.net");
    count(t, DAY, "example.net", TLS_RPT_POLICY_NONE, TLS_RPT_STARTTLS_NOT_SUPPORTED, "mx4.x");
}

static void test_counting(void)
{
    struct tls_rpt_table t;
    tls_rpt_table_init(&t, 2);
    fill_example(&t);
    struct tls_rpt_domain *d = only_due(&t, NULL);
    if (d == NULL)
        return;
    const struct tls_rpt_policy *sts = &d->policies[TLS_RPT_POLICY_STS];
    CHECK_INT_EQ(sts->successes, 3);
    CHECK_INT_EQ(sts->failures, 3);
    CHECK_INT_EQ(sts->nrows, 2); /* the two expired sessions share one row */
    CHECK_INT_EQ(sts->rows[0].count, 2);
    CHECK_STR_EQ(tls_rpt_result_name(sts->rows[0].result), "certificate-expired");
    CHECK_INT_EQ(d->policies[TLS_RPT_POLICY_NONE].failures, 1);
    CHECK_INT_EQ(d->policies[TLS_RPT_POLICY_TLSA].used, 0);
    /* Today's entry is not due before today; another day's is. */
    size_t n;
    free(tls_rpt_table_due(&t, DAY, &n));
    CHECK_INT_EQ(n, 0);
    count(&t, "2026-12-05", "example.net", TLS_RPT_POLICY_STS, TLS_RPT_SUCCESS, "mx1.example.net");
    CHECK(only_due(&t, "2026-12-05") == d);
    /* Bounds: a third (day, domain) is dropped and counted. */
    count(&t, DAY, "other.test", TLS_RPT_POLICY_NONE, TLS_RPT_SUCCESS, "mx.other.test");
    CHECK_INT_EQ(t.count, 2);
    CHECK_INT_EQ(t.dropped, 1);
    tls_rpt_table_free(&t);
}

static void test_row_cap(void)
{
    struct tls_rpt_table t;
    tls_rpt_table_init(&t, 10);
    char mx[32];
    for (int i = 0; i < TLS_RPT_ROWS_MAX + 5; i++) {
        snprintf(mx, sizeof mx, "mx%d.example.net", i);
        count(&t, DAY, "example.net", TLS_RPT_POLICY_STS, TLS_RPT_VALIDATION_FAILURE, mx);
    }
    struct tls_rpt_domain *d = only_due(&t, NULL);
    if (d != NULL) {
        CHECK_INT_EQ(d->policies[0].nrows, TLS_RPT_ROWS_MAX);
        CHECK_INT_EQ(d->policies[0].rows_dropped, 5);
        CHECK_INT_EQ(d->policies[0].failures, TLS_RPT_ROWS_MAX + 5);
    }
    /* Saved and read back, the failures counted outside rows stay counted. */
    struct buf saved = BUF_INIT;
    tls_rpt_table_save(&t, &saved);
    struct tls_rpt_table back;
    tls_rpt_table_init(&back, 10);
    CHECK_INT_EQ(tls_rpt_table_load(&back, saved.data, saved.len), 1);
    d = only_due(&back, NULL);
    if (d != NULL) {
        CHECK_INT_EQ(d->policies[0].failures, TLS_RPT_ROWS_MAX + 5);
        CHECK_INT_EQ(d->policies[0].nrows, TLS_RPT_ROWS_MAX);
    }
    buf_free(&saved);
    tls_rpt_table_free(&t);
    tls_rpt_table_free(&back);
}

static void test_save_load(void)
{
    struct tls_rpt_table t, back;
    tls_rpt_table_init(&t, 10);
    tls_rpt_table_init(&back, 10);
    fill_example(&t);
    struct buf saved = BUF_INIT, again = BUF_INIT;
    tls_rpt_table_save(&t, &saved);
    CHECK_INT_EQ(tls_rpt_table_load(&back, saved.data, saved.len), 1);
    tls_rpt_table_save(&back, &again);
    CHECK_STR_EQ(again.data, saved.data);
    /* Loading merges: the counts add up. */
    CHECK_INT_EQ(tls_rpt_table_load(&back, saved.data, saved.len), 1);
    struct tls_rpt_domain *d = only_due(&back, NULL);
    if (d != NULL)
        CHECK_INT_EQ(d->policies[TLS_RPT_POLICY_STS].successes, 6);
    CHECK_INT_EQ(tls_rpt_table_load(&back, "[1,2]", 5), -1);
    CHECK_INT_EQ(tls_rpt_table_load(&back, "not json", 8), -1);
    buf_free(&saved);
    buf_free(&again);
    tls_rpt_table_free(&t);
    tls_rpt_table_free(&back);
}

/* A report that could not be sent goes back into the table, its counts added to those of the
 * same day counted meanwhile; with no room it is dropped. */
static void test_put_back(void)
{
    struct tls_rpt_table t;
    tls_rpt_table_init(&t, 1);
    fill_example(&t);
    struct tls_rpt_domain *d = only_due(&t, NULL);
    if (d == NULL)
        return;
    tls_rpt_table_remove(&t, d);
    count(&t, DAY, "example.net", TLS_RPT_POLICY_STS, TLS_RPT_CERT_EXPIRED, "mx2.example.net");
    count(&t, DAY, "example.net", TLS_RPT_POLICY_STS, TLS_RPT_SUCCESS, "mx1.example.net");
    CHECK_INT_EQ(tls_rpt_table_put_back(&t, d), 0);
    d = only_due(&t, NULL);
    if (d != NULL) {
        const struct tls_rpt_policy *sts = &d->policies[TLS_RPT_POLICY_STS];
        CHECK_INT_EQ(sts->successes, 4);
        CHECK_INT_EQ(sts->failures, 4);
        CHECK_INT_EQ(sts->nrows, 2);
        CHECK_INT_EQ(sts->rows[0].count + sts->rows[1].count, 4);
        CHECK_INT_EQ(d->policies[TLS_RPT_POLICY_NONE].failures, 1);
        /* Into an empty table it goes as it is; into a full one it is dropped. */
        tls_rpt_table_remove(&t, d);
        CHECK_INT_EQ(tls_rpt_table_put_back(&t, d), 0);
        d = only_due(&t, NULL);
    }
    if (d != NULL) {
        tls_rpt_table_remove(&t, d);
        count(&t, DAY, "other.example", TLS_RPT_POLICY_NONE, TLS_RPT_SUCCESS, "mx.other");
        CHECK_INT_EQ(tls_rpt_table_put_back(&t, d), -1);
        CHECK_INT_EQ(t.count, 1);
    }
    tls_rpt_table_free(&t);
}

static void test_records(void)
{
    static const struct {
        const char *txt;
        int rc;
        size_t nmailto, nother;
        const char *first;
    } cases[] = {
        {"v=TLSRPTv1; rua=mailto:tlsrpt@example.net", 1, 1, 0, "tlsrpt@example.net"},
        {"v=TLSRPTv1;rua=mailto:a@x.test,https://r.x.test/v1", 1, 1, 1, "a@x.test"},
        {"v=TLSRPTv1; rua=mailto:a%2Bb@x.test?subject=hi, mailto:c@y.test", 1, 2, 0, "a+b@x.test"},
        {"v=TLSRPTv1; rua=mailto:a%40b@x.test", 1, 0, 1, NULL}, /* two @: not an address */
        {"v=TLSRPTv1; rua=https://r.x.test/", 1, 0, 1, NULL},
        {"v=TLSRPTv1 ; rua=mailto:r@x.test; ext=1", 1, 1, 0, "r@x.test"},
        {"v=spf1 -all", 0, 0, 0, NULL},
        {"v=TLSRPTv10; rua=mailto:a@x.test", 0, 0, 0, NULL},
        {"v=TLSRPTv1", -1, 0, 0, NULL},
        {"v=TLSRPTv1; rua=", -1, 0, 0, NULL},
        {"v=TLSRPTv1; rua=mailto:a@x.test; rua=mailto:b@x.test", -1, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tls_rpt_rua rua;
        int rc = tls_rpt_record_parse(cases[i].txt, strlen(cases[i].txt), &rua);
        CHECK_INT_EQ(rc, cases[i].rc);
        if (rc != cases[i].rc)
            fprintf(stderr, "record %zu: %s\n", i, cases[i].txt);
        if (rc == 1) {
            CHECK_INT_EQ(rua.nmailto, cases[i].nmailto);
            CHECK_INT_EQ(rua.nother, cases[i].nother);
            if (cases[i].first != NULL && rua.nmailto > 0)
                CHECK_STR_EQ(rua.mailto[0], cases[i].first);
        }
        tls_rpt_rua_free(&rua);
    }
}

static json_t *json_path(json_t *root, const char *a, size_t i, const char *b)
{
    return json_object_get(json_array_get(json_object_get(root, a), i), b);
}

static void test_report_json(void)
{
    struct tls_rpt_table t;
    tls_rpt_table_init(&t, 10);
    fill_example(&t);
    struct tls_rpt_domain *d = only_due(&t, NULL);
    struct tls_rpt_meta meta = {.organization = "Sluice Test",
                                .contact = "tls@sender.test",
                                .report_id = "r1@sender.test",
                                .start = 1796342400, /* 2026-12-04 */
                                .end = 1796342400 + 86399};
    struct buf out = BUF_INIT;
    tls_rpt_report_json(d, &meta, &out);
    json_error_t jerr;
    json_t *root = json_loadb(out.data, out.len, 0, &jerr);
    CHECK(root != NULL);
    CHECK_STR_EQ(json_string_value(json_object_get(root, "organization-name")), "Sluice Test");
    CHECK_STR_EQ(json_string_value(json_object_get(root, "report-id")), "r1@sender.test");
    json_t *range = json_object_get(root, "date-range");
    CHECK_STR_EQ(json_string_value(json_object_get(range, "start-datetime")),
                 "2026-12-04T00:00:00Z");
    CHECK_STR_EQ(json_string_value(json_object_get(range, "end-datetime")), "2026-12-04T23:59:59Z");
    CHECK_INT_EQ(json_array_size(json_object_get(root, "policies")), 2);
    json_t *policy = json_path(root, "policies", 0, "policy");
    CHECK_STR_EQ(json_string_value(json_object_get(policy, "policy-type")), "sts");
    CHECK_STR_EQ(json_string_value(json_object_get(policy, "policy-domain")), "example.net");
    CHECK_INT_EQ(json_array_size(json_object_get(policy, "policy-string")), 4);
    CHECK_STR_EQ(json_string_value(json_array_get(json_object_get(policy, "mx-host"), 0)),
                 "*.example.net");
    json_t *summary = json_path(root, "policies", 0, "summary");
    CHECK_INT_EQ(json_integer_value(json_object_get(summary, "total-successful-session-count")), 3);
    CHECK_INT_EQ(json_integer_value(json_object_get(summary, "total-failure-session-count")), 3);
    json_t *details = json_path(root, "policies", 0, "failure-details");
    CHECK_INT_EQ(json_array_size(details), 2);
    json_t *row = json_array_get(details, 0);
    CHECK_STR_EQ(json_string_value(json_object_get(row, "result-type")), "certificate-expired");
    CHECK_INT_EQ(json_integer_value(json_object_get(row, "failed-session-count")), 2);
    CHECK_STR_EQ(json_string_value(json_object_get(row, "receiving-mx-hostname")),
                 "mx2.example.net");
    CHECK_STR_EQ(json_string_value(json_object_get(row, "sending-mta-ip")), "192.0.2.1");
    CHECK_STR_EQ(json_string_value(json_object_get(row, "receiving-ip")), "198.51.100.7");
    json_t *none = json_path(root, "policies", 1, "policy");
    CHECK_STR_EQ(json_string_value(json_object_get(none, "policy-type")), "no-policy-found");
    CHECK(json_object_get(none, "policy-string") == NULL);

    /* The mail: §5.3 header fields, and the attachment decodes to the same JSON. */
    struct tls_rpt_mail mail = {.from = "tls@sender.test",
                                .to = "rua@example.net",
                                .submitter = "sender.test",
                                .domain = d,
                                .meta = &meta,
                                .json = out.data,
                                .json_len = out.len,
                                .now = 1796428800};
    struct buf msg = BUF_INIT;
    tls_rpt_mail_build(&mail, &msg);
    CHECK(strstr(msg.data, "\r\nSubject: Report Domain: example.net Submitter: sender.test "
                           "Report-ID: <r1@sender.test>\r\n") != NULL);
    CHECK(strstr(msg.data, "\r\nTLS-Report-Domain: example.net\r\n") != NULL);
    CHECK(strstr(msg.data, "\r\nTLS-Report-Submitter: sender.test\r\n") != NULL);
    CHECK(strstr(msg.data, "report-type=\"tlsrpt\"") != NULL);
    const char *att = strstr(msg.data, "Content-Type: application/tlsrpt+json");
    CHECK(att != NULL);
    const char *b64 = att != NULL ? strstr(att, "\r\n\r\n") : NULL;
    if (b64 != NULL) {
        b64 += 4;
        struct buf joined = BUF_INIT;
        for (const char *p = b64; *p != '\0' && *p != '-'; p++)
            if (*p != '\r' && *p != '\n')
                buf_append(&joined, p, 1);
        unsigned char *decoded = malloc(joined.len);
        int n = EVP_DecodeBlock(decoded, (const unsigned char *)joined.data, (int)joined.len);
        for (size_t k = joined.len; n > 0 && k > 0 && joined.data[k - 1] == '='; k--)
            n--; /* EVP_DecodeBlock counts the padding as octets */
        CHECK_MEM_EQ((const char *)decoded, (size_t)n, out.data);
        free(decoded);
        buf_free(&joined);
    }
    const char *p = msg.data;
    for (const char *nl; (nl = strstr(p, "\r\n")) != NULL; p = nl + 2)
        CHECK((size_t)(nl - p) <= 998);
    json_decref(root);
    buf_free(&out);
    buf_free(&msg);
    tls_rpt_table_free(&t);
}

int main(void)
{
    test_counting();
    test_row_cap();
    test_save_load();
    test_put_back();
    test_records();
    test_report_json();
    return check_report("test_tls_rpt_report");
}
