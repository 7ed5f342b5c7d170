"""
Issue 15, tenants and campaigns, through the running daemon to a real SMTP peer. A client allowed
to relay (a trusted network, no AUTH) names the tenant and the campaign with X-Sluice-Tenant and
X-Sluice-Campaign: both are removed before the message leaves (checked at the peer), kept in the
spooled envelope (`queue show`, also after a restart) and carried by smtp.accepted and every
delivery event. The same fields from a client that may not relay (an inbound listener) are removed
and ignored. Other field names can be configured. A tenant with its own egress pool sends from
its addresses only (the peer sees the source address of each message), and one without from the
shaping's pool, never from a tenant's; suspending the destination holds the tenant's mail too.
Fair share: while tenant A's 5,000-message bulk campaign waits for one rate-limited destination,
tenant B's transactional messages sent after it reach the peer within a few seconds. `sluice queue
suspend --tenant T [--campaign C]` holds only that tenant's (campaign's) mail, until resumed;
`sluice queue bounce --tenant T --campaign C` fails that campaign's waiting mail with DSNs.
The holds survive kill -9 and a restart (kept in <spool>/suspended) until resumed.
tenants[].shaping: a tenant kept to its own rate (counted at the peer in every 1-second window)
while another tenant's mail to the same destination is not slowed.
"""
import os
import re
import smtplib
import threading
import time

from harness import main, queued_id, send_message
from mailnet import MailNetCase, wait_until

def start_net(case):
    """case's MailNet, started, with one peer (case.sink) for dest.test and example.com."""
    net = case.make_net()
    case.sink = net.peer("mx.dest.test")
    net.mx("dest.test", case.sink)
    net.start()
    return net


TENANCY = b"X-Sluice-Tenant: acme\r\nX-Sluice-Campaign: spring\r\n sale\r\n"


def header_names(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    return [n.lower() for n in re.findall(r"^([^\s:]+)[ \t]*:", head, re.M)]


class TenancyHeaderTest(MailNetCase):
    def start(self, **config):
        net = start_net(self)
        cfg = net.sluice_config()
        cfg.update(config)
        cfg["domains"] = {"example.com": {"deliver_to": "mx.dest.test"}}
        self.d = self.start_sluice(listeners=[{"name": "submission", "role": "submission"},
                                              {"name": "mx", "role": "inbound"}], config=cfg)

    def relay(self, body, listener="submission", rcpt="bob@dest.test"):
        with self.d.connect(listener) as c:
            c.ehlo()
            return queued_id(send_message(c, "news@sender.test", [rcpt], body))

    def delivered_data(self, rcpt):
        got = self.wait(lambda: [tx for a, tx in self.sink.delivered() if a == rcpt], 20,
                        "delivered to %s" % rcpt)
        return got[0].data

    def test_relayed_mail_names_tenant_and_campaign(self):
        self.start()
        qid = self.relay(TENANCY + b"Subject: hi\r\n\r\nX-Sluice-Tenant: body line\r\n")
        data = self.delivered_data("bob@dest.test")
        self.assertNotIn("x-sluice-tenant", header_names(data))
        self.assertNotIn("x-sluice-campaign", header_names(data))
        self.assertIn(b"\r\n\r\nX-Sluice-Tenant: body line\r\n", data)
        accepted = self.d.find("smtp.accepted", queue_id=qid)
        self.assertEqual((accepted["tenant"], accepted["campaign"]), ("acme", "spring sale"))
        ev = self.d.wait_event("delivery.delivered", queue_id=qid)[0]
        self.assertEqual((ev["tenant"], ev["campaign"]), ("acme", "spring sale"))

    def test_envelope_keeps_them_across_a_restart(self):
        self.start()
        self.sink.rcpt_rules.append(("later@*", "451 4.3.0 not now"))
        qid = self.relay(TENANCY + b"Subject: hi\r\n\r\nbody\r\n", rcpt="later@dest.test")
        self.d.wait_event("delivery.deferred", queue_id=qid)
        show = self.d.queue_show(qid).decode()
        self.assertIn("tenant: acme\n", show)
        self.assertIn("campaign: spring sale\n", show)
        self.d.stop()
        self.sink.rcpt_rules.clear()
        self.d.start()
        ev = self.d.wait_event("delivery.delivered", timeout=20, queue_id=qid)[0]
        self.assertEqual((ev["tenant"], ev["campaign"]), ("acme", "spring sale"))

    def test_fields_from_a_client_that_may_not_relay_are_removed_and_ignored(self):
        self.start()
        qid = self.relay(TENANCY + b"Subject: hi\r\n\r\nbody\r\n", listener="mx",
                         rcpt="user@example.com")
        data = self.delivered_data("user@example.com")
        self.assertNotIn("x-sluice-tenant", header_names(data))
        self.assertNotIn("x-sluice-campaign", header_names(data))
        accepted = self.d.find("smtp.accepted", queue_id=qid)
        self.assertEqual((accepted["tenant"], accepted["campaign"]), ("", ""))
        ev = self.d.wait_event("delivery.delivered", queue_id=qid)[0]
        self.assertEqual((ev["tenant"], ev["campaign"]), ("", ""))

    def test_configured_field_names(self):
        self.start(tenancy={"tenant_header": "X-Customer", "campaign_header": "X-Mailing"})
        qid = self.relay(b"X-Customer: bravo\r\nX-Mailing: m1\r\nX-Sluice-Tenant: acme\r\n"
                         b"Subject: hi\r\n\r\nbody\r\n")
        names = header_names(self.delivered_data("bob@dest.test"))
        self.assertNotIn("x-customer", names)
        self.assertNotIn("x-mailing", names)
        self.assertIn("x-sluice-tenant", names)  # no longer ours: passed on as any field
        ev = self.d.wait_event("delivery.delivered", queue_id=qid)[0]
        self.assertEqual((ev["tenant"], ev["campaign"]), ("bravo", "m1"))


POOLS = {"shared": [{"address": "127.0.0.12", "ehlo": "out.sluice.test"}],
         "acme-ips": [{"address": "127.0.0.10", "ehlo": "acme.sluice.test"}],
         "bravo-ips": [{"address": "127.0.0.11", "ehlo": "bravo.sluice.test"}]}
TENANTS = [{"name": "acme", "pool": "acme-ips"}, {"name": "bravo", "pool": "bravo-ips"}]


class TenantPoolTest(MailNetCase):
    def setUp(self):
        net = start_net(self)
        cfg = net.sluice_config(pool="shared")
        cfg["egress"] = {"pools": POOLS}
        cfg["tenants"] = TENANTS
        self.d = self.start_sluice(config=cfg)

    def send(self, tenant, n):
        with self.d.connect() as c:
            c.ehlo()
            for i in range(n):
                head = b"X-Sluice-Tenant: %s\r\n" % tenant.encode() if tenant else b""
                send_message(c, "news@sender.test", ["%s%d@dest.test" % (tenant or "none", i)],
                             head + b"Subject: %s %d\r\n\r\nbody\r\n" % (tenant.encode(), i))

    def sources(self):
        """tenant -> the source addresses its messages reached the peer from."""
        by = {}
        with self.sink.lock:
            for session in self.sink.sessions:
                for tx in session.transactions:
                    for rcpt in tx.accepted():
                        tenant = re.match(r"([a-z]+)\d+@", rcpt).group(1)
                        by.setdefault(tenant, set()).add(session.client[0])
        return by

    def test_each_tenant_leaves_from_its_own_pool(self):
        for tenant in ("acme", "bravo", ""):
            self.send(tenant, 6)
        self.wait(lambda: len(self.sink.delivered()) == 18, 30, "18 delivered")
        self.assertEqual(self.sources(), {"acme": {"127.0.0.10"}, "bravo": {"127.0.0.11"},
                                          "none": {"127.0.0.12"}})
        ev = self.d.wait_event("delivery.delivered", rcpt="acme0@dest.test")[0]
        self.assertEqual(ev["tenant"], "acme")

    def test_suspending_the_destination_holds_the_tenants_mail(self):
        self.send("acme", 1)
        self.wait(lambda: len(self.sink.delivered()) == 1, 20, "first delivered")
        out = self.d.cli("queue", "suspend", "dest.test")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.send("acme", 2)
        self.send("bravo", 1)  # its destination is made while the suspension holds
        self.send("", 1)
        self.assertFalse(wait_quiet(lambda: len(self.sink.delivered()) > 1, 2.0),
                         "delivered while suspended")
        out = self.d.cli("queue", "resume", "dest.test")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.wait(lambda: len(self.sink.delivered()) == 5, 20, "all delivered after resume")


CAMPAIGN = 5000
RATE = 50  # messages per second to the destination: the campaign needs 100 s at the peer


class FairShareTest(MailNetCase):
    def setUp(self):
        net = start_net(self)
        cfg = net.sluice_config(egress=[("127.0.0.10", "out.sluice.test")], connections=2,
                                message_rate="%d/s" % RATE, rate="%d/s" % RATE)
        cfg["tenants"] = [{"name": "acme", "priority": "bulk"},
                          {"name": "bravo", "priority": "transactional"}]
        self.d = self.start_sluice(config=cfg)

    def inject(self, tenant, first, count):
        host, port = self.d.addr()
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.ehlo("submit.test")
            for i in range(first, first + count):
                msg = b"X-Sluice-Tenant: %s\r\nSubject: %d\r\n\r\nbody\r\n" % (tenant.encode(), i)
                self.assertEqual(client.sendmail("news@sender.test", ["%s%d@dest.test" % (tenant, i)],
                                                 msg), {})

    def arrived(self, tenant):
        """Arrival times at the peer of the tenant's messages."""
        return [tx.data_time for tx in self.sink.transactions()
                if tx.accepted() and tx.accepted()[0].startswith(tenant)]

    def test_transactional_mail_overtakes_a_bulk_campaign(self):
        threads = [threading.Thread(target=self.inject, args=("acme", k * 1250, 1250))
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        self.assertFalse(any(t.is_alive() for t in threads), "campaign injected")
        self.d.wait_event("smtp.accepted", timeout=30, count=CAMPAIGN)
        backlog = CAMPAIGN - len(self.arrived("acme"))
        self.assertGreater(backlog, 20 * RATE, "the campaign still waits (else nothing to show)")
        sent = time.time()
        self.inject("bravo", 0, 3)
        got = self.wait(lambda: len(self.arrived("bravo")) == 3 and self.arrived("bravo"), 60,
                        "bravo's messages delivered")
        delay = max(got) - sent
        self.assertLess(delay, 5.0, "bravo waited %.1f s behind acme's campaign" % delay)
        self.assertGreater(CAMPAIGN - len(self.arrived("acme")), RATE,
                           "acme's campaign was still waiting when bravo's mail went")
        ev = self.d.wait_event("delivery.delivered", rcpt="bravo0@dest.test")[0]
        self.assertEqual((ev["tenant"], ev["campaign"]), ("bravo", ""))


class TenantSuspendTest(MailNetCase):
    def setUp(self):
        net = start_net(self)
        cfg = net.sluice_config(egress=[("127.0.0.10", "out.sluice.test")], connections=1,
                                message_rate="10/s", expire="5m")  # held mail outlives a restart
        self.d = self.start_sluice(config=cfg)

    def send(self, tenant, campaign, first, n):
        with self.d.connect() as c:
            c.ehlo()
            for i in range(first, first + n):
                head = b"X-Sluice-Tenant: %s\r\nX-Sluice-Campaign: %s\r\n" % (
                    tenant.encode(), campaign.encode())
                send_message(c, "news@sender.test", ["%s-%s%d@dest.test" % (tenant, campaign, i)],
                             head + b"Subject: hi\r\n\r\nbody\r\n")

    def count(self, prefix):
        return sum(1 for a in self.sink.delivered_rcpts() if a.startswith(prefix))

    def queue(self, *args):
        out = self.d.cli("queue", *args)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.decode()

    def test_a_campaign_held_and_released(self):
        self.send("acme", "spring", 0, 20)
        self.assertIn("suspended", self.queue("suspend", "--tenant", "acme", "--campaign", "spring"))
        held_at = self.count("acme-spring")
        self.send("acme", "fall", 0, 5)
        self.send("bravo", "spring", 0, 5)
        self.wait(lambda: self.count("acme-fall") == 5 and self.count("bravo-spring") == 5, 30,
                  "the other campaign and tenant delivered")
        self.assertLessEqual(self.count("acme-spring"), held_at + 1, "one in flight at most")
        self.assertLess(self.count("acme-spring"), 20)
        self.d.wait_event("delivery.tenant_suspend", tenant="acme", campaign="spring")
        self.queue("resume", "--tenant", "acme", "--campaign", "spring")
        self.wait(lambda: self.count("acme-spring") == 20, 30, "the campaign delivered once resumed")

    def test_a_campaign_bounced(self):
        self.send("acme", "spring", 0, 20)
        self.send("acme", "fall", 0, 3)
        self.assertIn("bouncing", self.queue("bounce", "--tenant", "acme", "--campaign", "spring"))
        done = self.d.wait_event("queue.bounce_done", tenant="acme", campaign="spring")[0]
        bounced = {"messages": done["in_memory"] + done["on_disk"]}
        self.wait(lambda: self.count("acme-fall") == 3, 30, "the other campaign delivered")
        # Each spring message is delivered (it was on the connection) or bounced to its sender.
        dsns = self.d.wait_event("delivery.bounce", timeout=20, count=20 - self.count("acme-spring"),
                                 tenant="acme", campaign="spring")
        self.assertEqual(len(dsns) + self.count("acme-spring"), 20)
        self.assertLessEqual(self.count("acme-spring"), 20 - bounced["messages"] + 1)
        self.assertGreater(len(dsns), 10, "most of the campaign was still waiting")

    def test_a_tenant_held_and_released(self):
        self.queue("suspend", "--tenant", "bravo")
        self.send("bravo", "x", 0, 3)
        self.send("acme", "x", 0, 3)
        self.wait(lambda: self.count("acme-x") == 3, 20, "the other tenant delivered")
        self.assertFalse(wait_quiet(lambda: self.count("bravo-x") > 0, 1.5), "held tenant sent")
        out = self.d.cli("queue", "resume", "--tenant", "bravo", "--campaign", "x")
        self.assertNotEqual(out.returncode, 0, "only the hold that was put is lifted")
        self.queue("resume", "--tenant", "bravo")
        self.wait(lambda: self.count("bravo-x") == 3, 20, "the tenant delivered once resumed")

    def held_file(self):
        with open(os.path.join(self.d.spool, "suspended")) as f:
            return f.read()

    def test_holds_survive_a_kill_and_restart(self):
        self.queue("suspend", "--tenant", "bravo")
        self.queue("suspend", "--tenant", "acme", "--campaign", "spring")
        self.wait(lambda: "+ bravo\n" in self.held_file() and "+ acme spring\n" in self.held_file(),
                  10, "the holds on disk")
        self.send("bravo", "x", 0, 3)
        self.send("acme", "spring", 0, 3)
        self.d.kill9()
        self.d.restart()
        self.d.wait_event("delivery.tenant_suspend", tenant="bravo", campaign="")
        self.d.wait_event("delivery.tenant_suspend", tenant="acme", campaign="spring")
        self.send("acme", "fall", 0, 3)
        self.wait(lambda: self.count("acme-fall") == 3, 20, "the tenant's other campaign delivered")
        self.assertFalse(wait_quiet(lambda: self.count("bravo-x") + self.count("acme-spring") > 0,
                                    1.5), "held mail sent after the restart")
        self.queue("resume", "--tenant", "bravo")
        self.queue("resume", "--tenant", "acme", "--campaign", "spring")
        self.wait(lambda: self.count("bravo-x") == 3 and self.count("acme-spring") == 3, 20,
                  "the held mail delivered once resumed")
        self.wait(lambda: "+ " not in self.held_file(), 10, "the lifting on disk")


ACME_RATE = 2  # acme's own recipients per second, at every destination


class TenantShapingTest(MailNetCase):
    """tenants[].shaping: acme's recipients reach the peer at no more than its own rate, counted
    at the peer in every 1-second window, while bravo's mail to the same destination, sent after
    acme's, is not slowed."""

    def setUp(self):
        net = start_net(self)
        cfg = net.sluice_config(egress=[("127.0.0.10", "out.sluice.test")], connections=2,
                                expire="5m")  # acme's mail waits for its rate, not to expire
        cfg["tenants"] = [{"name": "acme", "shaping": {"rate": "%d/s" % ACME_RATE}}]
        self.d = self.start_sluice(config=cfg)

    def arrivals(self, tenant):
        """The peer's accepted RCPT times of the tenant's recipients."""
        return sorted(t for tx in self.sink.transactions() for a, t, code in tx.rcpts
                      if code == 250 and a.startswith(tenant))

    def test_a_tenant_kept_to_its_own_rate(self):
        with self.d.connect() as c:
            c.ehlo()
            for i in range(10):
                rcpts = ["acme%d@dest.test" % i] + (["acme-two@dest.test"] if i == 5 else [])
                send_message(c, "news@sender.test", rcpts,
                             b"X-Sluice-Tenant: acme\r\nSubject: %d\r\n\r\nbody\r\n" % i)
            sent = time.time()
            for i in range(10):
                send_message(c, "app@sender.test", ["bravo%d@dest.test" % i],
                             b"X-Sluice-Tenant: bravo\r\nSubject: %d\r\n\r\nbody\r\n" % i)
        bravo = self.wait(lambda: len(self.arrivals("bravo")) == 10 and self.arrivals("bravo"), 20,
                          "bravo delivered")
        self.assertLess(max(bravo) - sent, 4.0, "bravo was not slowed by acme's rate")
        self.assertLess(len(self.arrivals("acme")), 11, "acme still waiting when bravo was done")
        acme = self.wait(lambda: len(self.arrivals("acme")) == 11 and self.arrivals("acme"), 30,
                         "acme delivered")
        most = max(sum(1 for u in acme if t <= u < t + 1.0) for t in acme)
        self.assertLessEqual(most, ACME_RATE, "acme's recipients in one second: %r" % acme)
        # ... and it does go at that rate, not slower: 11 recipients in about 5.5 s
        self.assertLess(acme[-1] - acme[0], 11 / ACME_RATE * 1.05 + 2.0, acme)


def wait_quiet(cond, seconds):
    """True as soon as cond() holds within `seconds`, else False (for what must not happen)."""
    try:
        return wait_until(cond, seconds, "")
    except AssertionError:
        return False


if __name__ == "__main__":
    main()
