"""
Recipients' results by tenant on GET /metrics (docs/http.md), parsed with the Prometheus text
parser and checked against what was sent: mail of three tenants (X-Sluice-Tenant) and of none to a
real SMTP peer that delivers some recipients, refuses some (550) and defers others (451). The
label set stays bounded: mail of more tenants than the bound counts as tenant "other", still split
by result, and the sums still match what was sent.
"""
from harness import main
from mailnet import MailNetCase, send
from test_http import families, http_section, sample

SENDER = "ops@sender.test"
FAMILY = "sluice_tenant_recipients"
SERIES = FAMILY + "_total"
MANY = 60  # tenants with one delivered recipient each: more than the bound of 50 label sets


class TenantMetrics(MailNetCase):
    def send(self, tenant, rcpts):
        head = b"X-Sluice-Tenant: %s\r\n" % tenant.encode() if tenant else b""
        send(self.d, SENDER, rcpts, head + b"Subject: hi\r\n\r\nbody\r\n")

    def test_results_by_tenant_match_what_was_sent(self):
        net = self.make_net()
        peer = net.peer("mx.dest.test", rcpt=[("gone*@*", "550 5.1.1 no such user"),
                                              ("later*@*", "451 4.7.1 try later")])
        net.mx("dest.test", peer, 10)
        net.start()
        d = self.d = self.start_sluice(start=False, config=net.sluice_config(retry=["1h"]))
        d.extra["http"] = http_section(d)
        d.start()

        self.send("acme", ["a1@dest.test", "a2@dest.test", "gone1@dest.test"])
        self.send("acme", ["a3@dest.test"])
        self.send("bravo", ["gone2@dest.test", "later1@dest.test"])
        self.send("charlie", ["later2@dest.test", "c1@dest.test"])
        self.send("", ["n1@dest.test"])
        d.wait_event("delivery.delivered", timeout=30, count=5)
        d.wait_event("delivery.failed", timeout=30, count=2)
        d.wait_event("delivery.deferred", timeout=30, count=2)

        fams = families(d)
        want = {("acme", "delivered"): 3, ("acme", "bounced"): 1, ("acme", "deferred"): 0,
                ("bravo", "bounced"): 1, ("bravo", "deferred"): 1, ("bravo", "delivered"): 0,
                ("charlie", "deferred"): 1, ("charlie", "delivered"): 1, ("", "delivered"): 1}
        for (tenant, result), n in want.items():
            self.assertEqual(sample(fams, FAMILY, SERIES, tenant=tenant, result=result), n,
                             (tenant, result))

        # Many more tenants: the first ones keep their names, the rest count as "other".
        for i in range(MANY):
            self.send("t%02d" % i, ["m%d@dest.test" % i])
        d.wait_event("delivery.delivered", timeout=60, count=5 + MANY)
        fams = families(d)
        samples = [s for s in fams[FAMILY].samples if s.name == SERIES]
        self.assertLessEqual(len(samples), 50 + 3)  # the bound, and "other" by result
        named = sum(s.value for s in samples
                    if s.labels["tenant"].startswith("t") and s.labels["result"] == "delivered")
        other = sample(fams, FAMILY, SERIES, tenant="other", result="delivered")
        self.assertGreater(other, 0)
        self.assertEqual(named + other, MANY)
        self.assertEqual(sum(s.value for s in samples if s.labels["result"] == "delivered"),
                         5 + MANY)
        self.assertEqual(sample(fams, FAMILY, SERIES, tenant="acme", result="delivered"), 3)


if __name__ == "__main__":
    main()
