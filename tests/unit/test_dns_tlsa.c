/*
 * TLSA records (RFC 6698) in the dns module: dns_answer_parse on hand-made messages (the records,
 * the AD bit, CNAMEs, malformed rdata), dns_resolve_tlsa against a real dnsmasq serving TLSA
 * records (which does not validate: no AD bit), and which server lists count as loopback, the
 * only resolvers whose AD bit DANE believes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/dns_int.h"
#include "tests/support/dnsmasq.h"
#include "tests/unit/check.h"

static uv_loop_t loop;

/* ---- building messages ---- */

struct msg {
    unsigned char b[1024];
    size_t len;
};

static void put16(struct msg *m, unsigned v)
{
    m->b[m->len++] = (unsigned char)(v >> 8);
    m->b[m->len++] = (unsigned char)v;
}

static void put_name(struct msg *m, const char *name)
{
    while (*name != '\0') {
        const char *dot = strchr(name, '.');
        size_t n = dot != NULL ? (size_t)(dot - name) : strlen(name);
        m->b[m->len++] = (unsigned char)n;
        memcpy(m->b + m->len, name, n);
        m->len += n;
        name += n + (dot != NULL);
    }
    m->b[m->len++] = 0;
}

/* A response header (flags2: AD 0x20 and the rcode) and the question `qname` TLSA IN. */
static void msg_start(struct msg *m, unsigned flags2, unsigned ancount, const char *qname)
{
    m->len = 0;
    put16(m, 0x1234);
    m->b[m->len++] = 0x81;                           /* QR, RD */
    m->b[m->len++] = (unsigned char)(0x80 | flags2); /* RA */
    put16(m, 1);
    put16(m, ancount);
    put16(m, 0);
    put16(m, 0);
    put_name(m, qname);
    put16(m, DNS_TYPE_TLSA);
    put16(m, 1);
}

/* One answer record: owner, type, TTL 300, rdata of rdlen octets. */
static void msg_rr(struct msg *m, const char *owner, unsigned type, const void *rdata, size_t rdlen)
{
    put_name(m, owner);
    put16(m, type);
    put16(m, 1);
    put16(m, 0);
    put16(m, 300);
    put16(m, (unsigned)rdlen);
    memcpy(m->b + m->len, rdata, rdlen);
    m->len += rdlen;
}

static const char *const QNAME = "_25._tcp.mx.example.test";

static void test_parse_records(void)
{
    static const unsigned char ee[] = {3, 1, 1, 0xaa, 0xbb, 0xcc};
    static const unsigned char ta[] = {2, 0, 1, 0x01};
    struct msg m;
    msg_start(&m, DNS_FLAG_AD, 2, QNAME);
    msg_rr(&m, QNAME, DNS_TYPE_TLSA, ee, sizeof ee);
    msg_rr(&m, QNAME, DNS_TYPE_TLSA, ta, sizeof ta);
    struct dns_answer a;
    dns_answer_parse(&a, m.b, m.len, DNS_TYPE_TLSA, QNAME);
    CHECK_INT_EQ(a.status, DNS_OK);
    CHECK_INT_EQ(a.authentic, 1);
    CHECK_INT_EQ(a.n, 2);
    CHECK_INT_EQ(a.ttl, 300);
    CHECK_STR_EQ(a.owner, QNAME); /* no CNAME: the name asked */
    if (a.n == 2) {
        CHECK_INT_EQ(a.rr[0].len, sizeof ee);
        CHECK(memcmp(a.rr[0].data, ee, sizeof ee) == 0);
        CHECK_INT_EQ(a.rr[1].len, sizeof ta);
        CHECK(memcmp(a.rr[1].data, ta, sizeof ta) == 0);
    }
    dns_answer_free(&a);

    /* The same without the AD bit: the records, not authenticated. */
    m.b[3] &= (unsigned char)~DNS_FLAG_AD;
    dns_answer_parse(&a, m.b, m.len, DNS_TYPE_TLSA, QNAME);
    CHECK_INT_EQ(a.status, DNS_OK);
    CHECK_INT_EQ(a.authentic, 0);
    CHECK_INT_EQ(a.n, 2);
    dns_answer_free(&a);
}

static void test_parse_cname(void)
{
    /* _25._tcp.mx... is a CNAME to tlsa.example.test, which has the record. */
    static const unsigned char ee[] = {3, 1, 1, 0x42};
    unsigned char target[64];
    struct msg t = {.len = 0};
    put_name(&t, "tlsa.example.test");
    memcpy(target, t.b, t.len);
    struct msg m;
    msg_start(&m, DNS_FLAG_AD, 2, QNAME);
    msg_rr(&m, QNAME, 5 /* CNAME */, target, t.len);
    msg_rr(&m, "tlsa.example.test", DNS_TYPE_TLSA, ee, sizeof ee);
    struct dns_answer a;
    dns_answer_parse(&a, m.b, m.len, DNS_TYPE_TLSA, QNAME);
    CHECK_INT_EQ(a.status, DNS_OK);
    CHECK_INT_EQ(a.n, 1);
    if (a.n == 1)
        CHECK_INT_EQ((unsigned char)a.rr[0].data[3], 0x42);
    CHECK_STR_EQ(a.owner, "tlsa.example.test"); /* the end of the chain, kept */
    dns_answer_free(&a);

    /* A chain of two, written in reverse order and with upper case: the same end, lower case. */
    struct msg t2 = {.len = 0};
    put_name(&t2, "Hop.Example.Test");
    unsigned char hop[64];
    memcpy(hop, t2.b, t2.len);
    msg_start(&m, DNS_FLAG_AD, 3, QNAME);
    msg_rr(&m, "hop.example.test", 5, target, t.len);
    msg_rr(&m, "TLSA.example.test", DNS_TYPE_TLSA, ee, sizeof ee);
    msg_rr(&m, QNAME, 5, hop, t2.len);
    dns_answer_parse(&a, m.b, m.len, DNS_TYPE_TLSA, QNAME);
    CHECK_INT_EQ(a.status, DNS_OK);
    CHECK_INT_EQ(a.authentic, 1);
    CHECK_INT_EQ(a.n, 1);
    CHECK_STR_EQ(a.owner, "tlsa.example.test");
    dns_answer_free(&a);

    /* The chain ends at a name without the type: NODATA, still saying where it ended. */
    msg_start(&m, DNS_FLAG_AD, 1, QNAME);
    msg_rr(&m, QNAME, 5, target, t.len);
    dns_answer_parse(&a, m.b, m.len, DNS_TYPE_TLSA, QNAME);
    CHECK_INT_EQ(a.status, DNS_NODATA);
    CHECK_STR_EQ(a.owner, "tlsa.example.test");
    dns_answer_free(&a);
}

static void test_parse_bad(void)
{
    struct dns_answer a;
    struct msg m;

    /* Usage, selector and matching type without association data (RFC 6698 §2.1). */
    static const unsigned char short_rd[] = {3, 1, 1};
    msg_start(&m, DNS_FLAG_AD, 1, QNAME);
    msg_rr(&m, QNAME, DNS_TYPE_TLSA, short_rd, sizeof short_rd);
    dns_answer_parse(&a, m.b, m.len, DNS_TYPE_TLSA, QNAME);
    CHECK_INT_EQ(a.status, DNS_TEMPFAIL);
    CHECK_INT_EQ(a.n, 0);
    dns_answer_free(&a);

    /* An rdata length running past the end of the message. */
    static const unsigned char ee[] = {3, 1, 1, 1, 2, 3, 4};
    msg_start(&m, DNS_FLAG_AD, 1, QNAME);
    msg_rr(&m, QNAME, DNS_TYPE_TLSA, ee, sizeof ee);
    dns_answer_parse(&a, m.b, m.len - 2, DNS_TYPE_TLSA, QNAME);
    CHECK_INT_EQ(a.status, DNS_TEMPFAIL);
    dns_answer_free(&a);

    /* NXDOMAIN, authenticated or not, is a denial. */
    msg_start(&m, DNS_FLAG_AD | 3, 0, QNAME);
    dns_answer_parse(&a, m.b, m.len, DNS_TYPE_TLSA, QNAME);
    CHECK_INT_EQ(a.status, DNS_NXDOMAIN);
    CHECK_INT_EQ(a.authentic, 1);
    dns_answer_free(&a);

    /* SERVFAIL (what a validating resolver says of bogus data). */
    msg_start(&m, 2, 0, QNAME);
    dns_answer_parse(&a, m.b, m.len, DNS_TYPE_TLSA, QNAME);
    CHECK_INT_EQ(a.status, DNS_TEMPFAIL);
    dns_answer_free(&a);
}

/* ---- against dnsmasq ---- */

struct tlsa_result {
    int done;
    enum dns_status status;
    int authenticated;
    char owner[256];
    size_t n;
    struct dns_tlsa first;
    unsigned char first_data[64];
};

static void on_tlsa(void *arg, enum dns_status status, int authenticated, const char *owner,
                    const struct dns_tlsa *recs, size_t n)
{
    struct tlsa_result *res = arg;
    res->done = 1;
    snprintf(res->owner, sizeof res->owner, "%s", owner != NULL ? owner : "(null)");
    res->status = status;
    res->authenticated = authenticated;
    res->n = n;
    if (n > 0) {
        res->first = recs[0];
        size_t len = recs[0].len < sizeof res->first_data ? recs[0].len : sizeof res->first_data;
        memcpy(res->first_data, recs[0].data, len);
    }
}

static void lookup(struct dns_resolver *r, const char *name, struct tlsa_result *res)
{
    memset(res, 0, sizeof *res);
    CHECK_INT_EQ(dns_resolve_tlsa(r, name, on_tlsa, res), 0);
    CHECK(!res->done); /* never from inside the call */
    CHECK_INT_EQ(dnsmasq_run_until(&loop, &res->done, 5000), 1);
}

static void test_resolve(struct dns_resolver *r)
{
    struct tlsa_result res;
    lookup(r, "_25._tcp.mx.dane.test", &res);
    CHECK_INT_EQ(res.status, DNS_OK);
    CHECK_INT_EQ(res.authenticated, 0); /* dnsmasq does not validate */
    CHECK_INT_EQ(res.n, 1);
    CHECK_INT_EQ(res.first.usage, 3);
    CHECK_INT_EQ(res.first.selector, 1);
    CHECK_INT_EQ(res.first.mtype, 1);
    CHECK_INT_EQ(res.first.len, 4);
    CHECK(memcmp(res.first_data, "\xde\xad\xbe\xef", 4) == 0);
    CHECK_STR_EQ(res.owner, "_25._tcp.mx.dane.test");

    /* A cached answer is the same. */
    lookup(r, "_25._tcp.MX.dane.test.", &res);
    CHECK_INT_EQ(res.status, DNS_OK);
    CHECK_INT_EQ(res.n, 1);
    CHECK_STR_EQ(res.owner, "_25._tcp.mx.dane.test");

    lookup(r, "_25._tcp.none.test", &res);
    CHECK_INT_EQ(res.status, DNS_NXDOMAIN);
    CHECK_STR_EQ(res.owner, "(null)");
    CHECK_INT_EQ(res.n, 0);

    lookup(r, "_25._tcp.short.dane.test", &res); /* 3-octet rdata */
    CHECK_INT_EQ(res.status, DNS_TEMPFAIL);
}

static void test_loopback(void)
{
    static const struct {
        const char *servers[2];
        size_t n;
        int loopback;
    } cases[] = {
        {{"127.0.0.1"}, 1, 1}, {{"127.0.0.53:5353"}, 1, 1},
        {{"[::1]:53"}, 1, 1},  {{"127.0.0.1", "192.0.2.1"}, 2, 0},
        {{"192.0.2.1"}, 1, 0}, {{"2001:db8::1"}, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int err = 0;
        struct dns_resolver *r = dns_resolver_new(&loop, cases[i].servers, cases[i].n, 1000, &err);
        CHECK(r != NULL);
        if (r == NULL)
            continue;
        if (dns_resolver_servers_loopback(r) != cases[i].loopback)
            fprintf(stderr, "case %zu (%s): want loopback %d\n", i, cases[i].servers[0],
                    cases[i].loopback);
        CHECK_INT_EQ(dns_resolver_servers_loopback(r), cases[i].loopback);
        dns_resolver_free(r);
    }
}

int main(void)
{
    alarm(60); /* a hang fails the run; dnsmasq dies with us (PR_SET_PDEATHSIG) */
    uv_loop_init(&loop);
    test_parse_records();
    test_parse_cname();
    test_parse_bad();
    test_loopback();

    static const char *const zone[] = {"--dns-rr=_25._tcp.mx.dane.test,52,030101deadbeef",
                                       "--dns-rr=_25._tcp.short.dane.test,52,030101", NULL};
    struct dnsmasq dnsmasq;
    struct dns_resolver *r = dnsmasq_start_resolver(&dnsmasq, &loop, zone, 3000);
    CHECK(r != NULL);
    if (r != NULL) {
        test_resolve(r);
        CHECK_INT_EQ(dnsmasq_end(&dnsmasq, &loop, r), 0);
    }
    return check_report("test_dns_tlsa");
}
