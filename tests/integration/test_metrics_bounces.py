"""
Recipients that fail without a reply still count on GET /metrics (docs/http.md), parsed with the
Prometheus text parser: an administrator's bounce (`sluice queue bounce --tenant T` and
`sluice queue bounce ID`) counts its recipients as bounced, category admin-bounce, under their
tenant and destination (egress "none": no connection was made); mail that expires (held back at a
suspended destination, or held by a tenant hold, both given up with 451 4.4.7) counts as bounced,
category message-expired, not as the deferral its last reply says.
"""
import json

from harness import main
from mailnet import MailNetCase, send
from test_admin_load import control
from test_http import families, http_section, sample

SENDER = "ops@sender.test"
DEST = "dest.test"


def mail(tenant):
    return ("X-Sluice-Tenant: %s\r\nSubject: t\r\n\r\nhi\r\n" % tenant).encode()


class BounceMetrics(MailNetCase):
    def start(self, **shaping):
        net = self.make_net()
        self.dest = net.peer("mx.dest.test")
        net.mx(DEST, self.dest, 10)
        net.mx("sender.test", self.dest, 10)
        net.start()
        d = self.d = self.start_sluice(start=False, config=net.sluice_config(**shaping))
        d.extra["http"] = http_section(d)
        d.start()

    def cli(self, *args):
        res = self.d.cli("queue", *args)
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        return res.stdout.decode()

    def counts(self, tenant):
        fams = families(self.d)
        return {r: sample(fams, "sluice_tenant_recipients", "sluice_tenant_recipients_total",
                          tenant=tenant, result=r) for r in ("delivered", "deferred", "bounced")}

    def test_an_admin_bounce_counts_as_bounced(self):
        self.start(retry=["1h"], expire="1h")
        self.cli("suspend", DEST)  # the mail waits at its destination
        sizes = (4, 3, 5)
        for i, n in enumerate(sizes):
            send(self.d, SENDER, ["a%d-%d@%s" % (i, j, DEST) for j in range(n)], mail("acme"))
        send(self.d, SENDER, ["b%d@%s" % (j, DEST) for j in range(2)], mail("bravo"))
        self.d.wait_event("smtp.accepted", count=4)
        self.assertIn("bouncing", self.cli("bounce", "--tenant", "acme"))
        self.d.wait_event("queue.bounce_done", timeout=20, tenant="acme")
        self.d.wait_event("delivery.bounce", timeout=20, count=3)
        ok, page = control(self.d.spool, "list 100")
        self.assertTrue(ok, page)
        bravo = [m["id"] for m in json.loads(page)["messages"] if m["tenant"] == "bravo"]
        self.assertEqual(len(bravo), 1, page)
        self.assertIn("bounced", self.cli("bounce", bravo[0]))
        self.d.wait_event("delivery.bounce", timeout=20, count=4)

        self.assertEqual(self.counts("acme"), {"delivered": 0, "deferred": 0,
                                               "bounced": sum(sizes)})
        self.assertEqual(self.counts("bravo"), {"delivered": 0, "deferred": 0, "bounced": 2})
        fams = families(self.d)
        self.assertEqual(sample(fams, "sluice_bounces", "sluice_bounces_total", destination=DEST,
                                category="admin-bounce"), sum(sizes) + 2)
        self.assertEqual(sample(fams, "sluice_bounces", "sluice_bounces_total", destination=DEST),
                         sum(sizes) + 2, "no other category")
        self.assertEqual(sample(fams, "sluice_recipients", "sluice_recipients_total",
                                destination=DEST, egress="none", result="bounced"), sum(sizes) + 2)
        self.assertEqual([a for a in self.dest.attempts if a.endswith("@" + DEST)], [],
                         "nothing was tried at " + DEST)

    def test_expired_mail_counts_as_bounced(self):
        self.start(retry=["1h"], expire="3s")
        self.cli("suspend", "--tenant", "dave")
        send(self.d, SENDER, ["d%d@%s" % (j, DEST) for j in range(3)], mail("dave"))
        self.d.wait_event("delivery.expired", timeout=20, count=3)
        self.cli("suspend", DEST)
        send(self.d, SENDER, ["c%d@%s" % (j, DEST) for j in range(2)], mail("carol"))
        self.d.wait_event("delivery.expired", timeout=20, count=5)

        self.assertEqual(self.counts("dave"), {"delivered": 0, "deferred": 0, "bounced": 3})
        self.assertEqual(self.counts("carol"), {"delivered": 0, "deferred": 0, "bounced": 2})
        fams = families(self.d)
        self.assertEqual(sample(fams, "sluice_bounces", "sluice_bounces_total", destination=DEST,
                                category="message-expired"), 5)
        self.assertEqual(sample(fams, "sluice_recipients", "sluice_recipients_total",
                                destination=DEST, result="deferred"), 0)
        self.assertEqual(sample(fams, "sluice_recipients", "sluice_recipients_total",
                                destination=DEST, egress="none", result="bounced"), 5)


if __name__ == "__main__":
    main()
