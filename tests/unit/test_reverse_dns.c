/*
 * Forward-confirmed reverse DNS against a real dnsmasq on 127.0.0.1: a confirmed name (IPv4 and
 * IPv6, and the second of two PTR names), no PTR, a PTR name that does not resolve back, a DNS
 * timeout, cancelling and freeing inside the callback; and the decisions per inbound.reverse_dns.
 * Every wait is bounded.
 */
#include "policy/reverse_dns.h"
#include "tests/unit/check.h"
#include "tests/unit/client_addr.h"
#include "tests/support/dnsmasq.h"

#include <errno.h>
#include <stdlib.h>

#define WAIT_MS 5000 /* longest wait for one check */

static uv_loop_t loop;

static const char *const zone[] = {
    "--local=/2.0.192.in-addr.arpa/", "--local=/8.b.d.0.1.0.0.2.ip6.arpa/",
    /* host-record also answers the PTR of its address */
    "--host-record=good.test,192.0.2.40,2001:db8::40",
    /* 192.0.2.41 claims liar.test, which is 192.0.2.99 */
    "--ptr-record=41.2.0.192.in-addr.arpa,liar.test", "--host-record=liar.test,192.0.2.99",
    /* 192.0.2.43 has two PTR names; only the second resolves back */
    "--ptr-record=43.2.0.192.in-addr.arpa,nowhere.test",
    "--ptr-record=43.2.0.192.in-addr.arpa,second.test", "--host-record=second.test,192.0.2.43",
    "--ptr-record=44.2.0.192.in-addr.arpa,p1.test", "--host-record=p1.test,192.0.2.44",
    "--ptr-record=44.2.0.192.in-addr.arpa,p2.test", "--host-record=p2.test,192.0.2.44",
    "--ptr-record=44.2.0.192.in-addr.arpa,p3.test", "--host-record=p3.test,192.0.2.44",
    "--ptr-record=44.2.0.192.in-addr.arpa,p4.test", "--host-record=p4.test,192.0.2.44",
    "--ptr-record=44.2.0.192.in-addr.arpa,p5.test", "--host-record=p5.test,192.0.2.44",
    "--ptr-record=44.2.0.192.in-addr.arpa,p6.test", "--host-record=p6.test,192.0.2.44",
    "--ptr-record=44.2.0.192.in-addr.arpa,p7.test", "--host-record=p7.test,192.0.2.44",
    "--ptr-record=44.2.0.192.in-addr.arpa,p8.test", "--host-record=p8.test,192.0.2.44",
    "--ptr-record=44.2.0.192.in-addr.arpa,p9.test", "--host-record=p9.test,192.0.2.44",
    "--ptr-record=44.2.0.192.in-addr.arpa,p10.test", "--host-record=p10.test,192.0.2.44",
    "--ptr-record=44.2.0.192.in-addr.arpa,p11.test", "--host-record=p11.test,192.0.2.44", NULL};

struct outcome {
    int calls;
    int free_inside;
    struct reverse_dns_check *check;
    struct reverse_dns_result res; /* names are valid until the check is freed */
    char name[256];
    size_t nconfirmed;
    struct policy_decision ptr_required, confirmed_required, ignored;
};

static void on_result(void *arg, const struct reverse_dns_result *res)
{
    struct outcome *o = arg;
    o->calls++;
    o->res = *res;
    o->nconfirmed = res->nconfirmed;
    snprintf(o->name, sizeof(o->name), "%s", res->name != NULL ? res->name : "(none)");
    o->ptr_required = reverse_dns_verdict(res, REVERSE_DNS_REQUIRE_PTR);
    o->confirmed_required = reverse_dns_verdict(res, REVERSE_DNS_REQUIRE_FORWARD_CONFIRMED);
    o->ignored = reverse_dns_verdict(res, REVERSE_DNS_IGNORE);
    if (o->free_inside)
        reverse_dns_check_free(o->check);
}

static enum reverse_dns_status check(struct dns_resolver *r, const char *ip, struct outcome *o)
{
    struct sockaddr_storage ss = client_addr(ip);
    memset(o, 0, sizeof *o);
    o->free_inside = 1;
    CHECK_INT_EQ(reverse_dns_check_start(r, (struct sockaddr *)&ss, on_result, o, &o->check), 0);
    CHECK_INT_EQ(o->calls, 0);
    CHECK(dnsmasq_run_until(&loop, &o->calls, WAIT_MS));
    CHECK_INT_EQ(o->calls, 1);
    return o->res.status;
}

static void test_statuses(struct dns_resolver *r)
{
    struct outcome o;
    CHECK_INT_EQ(check(r, "192.0.2.40", &o), REVERSE_DNS_OK);
    CHECK_STR_EQ(o.name, "good.test");
    CHECK_INT_EQ(o.confirmed_required.verdict, POLICY_ACCEPT);
    CHECK_INT_EQ(check(r, "2001:db8::40", &o), REVERSE_DNS_OK);
    CHECK_STR_EQ(o.name, "good.test");
    CHECK_INT_EQ(check(r, "::ffff:192.0.2.40", &o), REVERSE_DNS_OK);
    CHECK_INT_EQ(check(r, "192.0.2.43", &o), REVERSE_DNS_OK);
    CHECK_STR_EQ(o.name, "second.test");
    CHECK_INT_EQ(o.nconfirmed, 1);

    /* 11 PTR names, each resolving back: only 10 are looked up. */
    CHECK_INT_EQ(check(r, "192.0.2.44", &o), REVERSE_DNS_OK);
    CHECK_INT_EQ(o.nconfirmed, 10);

    CHECK_INT_EQ(check(r, "192.0.2.41", &o), REVERSE_DNS_NOT_CONFIRMED);
    CHECK_STR_EQ(o.name, "(none)");
    CHECK_INT_EQ(o.ignored.verdict, POLICY_ACCEPT);
    CHECK_INT_EQ(o.ptr_required.verdict, POLICY_ACCEPT);
    CHECK_DECISION(o.confirmed_required, POLICY_REJECT, 550, "5.7.25");
    CHECK_STR_EQ(o.confirmed_required.rule, "inbound.reverse_dns");

    CHECK_INT_EQ(check(r, "192.0.2.42", &o), REVERSE_DNS_NO_PTR);
    CHECK_INT_EQ(o.ignored.verdict, POLICY_ACCEPT);
    CHECK_DECISION(o.ptr_required, POLICY_REJECT, 550, "5.7.25");
    CHECK_DECISION(o.confirmed_required, POLICY_REJECT, 550, "5.7.25");
    CHECK_INT_EQ(check(r, "2001:db8::42", &o), REVERSE_DNS_NO_PTR);
}

static void test_timeout(void)
{
    int s;
    struct dns_resolver *r = dnsmasq_silent_resolver(&loop, 300, &s);
    CHECK(r != NULL);
    struct outcome o;
    CHECK_INT_EQ(check(r, "192.0.2.40", &o), REVERSE_DNS_TEMPFAIL);
    CHECK_INT_EQ(o.ignored.verdict, POLICY_ACCEPT);
    CHECK_DECISION(o.ptr_required, POLICY_TEMPFAIL, 450, "4.7.25");
    CHECK_DECISION(o.confirmed_required, POLICY_TEMPFAIL, 450, "4.7.25");
    dns_resolver_free(r);
    close(s);
}

static void test_cancel(struct dns_resolver *r)
{
    struct sockaddr_storage ss = client_addr("192.0.2.43");
    struct outcome o = {0};
    dns_resolver_flush(r);
    CHECK_INT_EQ(reverse_dns_check_start(r, (struct sockaddr *)&ss, on_result, &o, &o.check), 0);
    reverse_dns_check_free(o.check);
    int never = 0;
    dnsmasq_run_until(&loop, &never, 300);
    CHECK_INT_EQ(o.calls, 0);
    /* Kept past the callback: the result stays readable until the check is freed. */
    CHECK_INT_EQ(reverse_dns_check_start(r, (struct sockaddr *)&ss, on_result, &o, &o.check), 0);
    CHECK(dnsmasq_run_until(&loop, &o.calls, WAIT_MS));
    CHECK_STR_EQ(o.res.name, "second.test");
    reverse_dns_check_free(o.check);
    struct sockaddr unix_sa = {.sa_family = AF_UNIX};
    CHECK_INT_EQ(reverse_dns_check_start(r, &unix_sa, on_result, &o, &o.check), -EINVAL);
}

int main(void)
{
    alarm(60); /* a hang fails the run; dnsmasq dies with us (PR_SET_PDEATHSIG) */
    uv_loop_init(&loop);
    struct dnsmasq dm;
    struct dns_resolver *r = dnsmasq_start_resolver(&dm, &loop, zone, 3000);
    if (r == NULL)
        return 1;
    test_statuses(r);
    test_cancel(r);
    test_timeout();
    CHECK_INT_EQ(dnsmasq_end(&dm, &loop, r), 0);
    return check_report("test_reverse_dns");
}
