"""
A destination's state survives while mail for it waits (docs/operate.md): the scheduler forgets a
destination with nothing to do once a minute, but not one whose deferred mail waits for its retry.
Two destinations go idle side by side: one whose only message was delivered (forgotten at the next
sweep: delivery.forgotten), one whose message was deferred for an hour, which `queue list --json`
and `queue destinations` still show after that sweep; the same holds for the destination of a
tenant with its own egress pool ("DOMAIN/POOL"). An administrator's suspension survives a
restart (kept in <spool>/suspended): one of a name no mail has gone to yet still holds the first
mail for it after the restart, and its lifting is kept too. Mail a suspension or the limits hold
back at its destination still expires on time (shaping expire), with a DSN to the sender; so does
mail an administrator holds by tenant or campaign (`queue suspend --tenant T [--campaign C]`).
"""
import json
import os

from harness import main
from mailnet import MailNetCase, send

SENDER = "ops@sender.test"


class DestinationState(MailNetCase):
    def destinations(self, d=None):
        res = (d or self.d).cli("queue", "list", "--json")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        return {dst["destination"]: dst for dst in json.loads(res.stdout.decode())["destinations"]}

    def start_idle_pair(self, waits_key, tenant=None, **config):
        """A daemon of its own net: done.test's mail is delivered, waits.test's (tenant's, when
        given) deferred for an hour; returns the daemon once both went idle."""
        net = self.make_net()
        done = net.peer("mx.done.test")
        waits = net.peer("mx.waits.test", defer_first=1)
        net.mx("done.test", done, 10)
        net.mx("waits.test", waits, 10)
        net.start()
        cfg = net.sluice_config(retry=["1h"], expire="5d", idle_timeout="1s")
        cfg.update(config)
        cfg["server"]["log"] = {"level": "debug"}
        d = self.d = self.start_sluice(config=cfg)
        send(d, SENDER, ["a@done.test"])
        head = b"X-Sluice-Tenant: %s\r\n" % tenant.encode() if tenant else b""
        send(d, SENDER, ["b@waits.test"], head + b"Subject: test\r\n\r\nhello\r\n")
        self.wait(lambda: done.delivered_rcpts() == ["a@done.test"], 20, "done.test delivered")
        d.wait_event("delivery.deferred", rcpt="b@waits.test")
        self.assertEqual(set(self.destinations(d)), {"done.test", waits_key})
        return d

    def check_kept_while_deferred_mail_waits(self, d, waits_key):
        """After the sweep only waits_key, the destination that deferred its mail, is left."""
        # The sweep after both went idle (it runs each minute) forgets the one with nothing left.
        forgotten = d.wait_event("delivery.forgotten", timeout=150, destination="done.test")
        self.assertEqual(d.events("delivery.forgotten", destination=waits_key), [], forgotten)
        dests = self.destinations(d)
        self.assertEqual(set(dests), {waits_key})
        self.assertEqual(dests[waits_key]["connections"], 0, dests)
        res = d.cli("queue", "destinations", waits_key)
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.assertIn("destination " + waits_key, res.stdout.decode())

    def test_idle_destination_with_deferred_mail_is_kept(self):
        # Two daemons side by side, one without tenants and one whose tenant has its own egress
        # pool ("DOMAIN/POOL"), so that one wait for the minute's sweep serves both.
        pools = {"default": [{"address": "127.0.0.12", "ehlo": "out.sluice.test"}],
                 "acme-ips": [{"address": "127.0.0.10", "ehlo": "acme.sluice.test"}]}
        cases = [("waits.test", self.start_idle_pair("waits.test")),
                 ("waits.test/acme-ips", self.start_idle_pair(
                     "waits.test/acme-ips", tenant="acme", egress={"pools": pools},
                     tenants=[{"name": "acme", "pool": "acme-ips"}]))]
        for waits_key, d in cases:
            with self.subTest(waits_key):
                self.d = d  # for a failure's log tail
                self.check_kept_while_deferred_mail_waits(d, waits_key)

    def suspended_file(self):
        try:
            with open(os.path.join(self.d.spool, "suspended")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def test_suspension_of_an_unseen_name_survives_a_restart(self):
        net = self.make_net()
        later = net.peer("mx.later.test")
        net.mx("later.test", later, 10)
        net.start()
        d = self.d = self.start_sluice(config=net.sluice_config(retry=["1h"], expire="5d"))
        res = d.cli("queue", "suspend", "later.test")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.assertIn("no mail for it yet", res.stdout.decode())
        self.wait(lambda: "later.test 0\n" in self.suspended_file(), 10, "the suspension on disk")
        self.assertEqual(d.stop(), 0)
        d.restart()
        d.wait_event("delivery.suspend", destination="later.test")

        send(d, SENDER, ["x@later.test"])
        # The first mail for it reaches the destination, which the restored suspension holds.
        self.wait(lambda: self.destinations().get("later.test", {}).get("queued_jobs") == 1, 20,
                  "the job queued at the suspended destination")
        self.assertEqual(self.destinations()["later.test"].get("suspended"), "admin")
        self.assertEqual(later.attempts, {}, "held")

        res = d.cli("queue", "resume", "later.test")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.wait(lambda: later.delivered_rcpts() == ["x@later.test"], 20, "delivered once resumed")
        self.wait(lambda: "later.test" not in self.suspended_file(), 10, "the lifting on disk")
        self.assertEqual(d.stop(), 0)
        d.restart()
        send(d, SENDER, ["y@later.test"])
        self.wait(lambda: "y@later.test" in later.delivered_rcpts(), 20, "not suspended again")


class HeldMailExpires(MailNetCase):
    def start(self, rules=()):
        net = self.make_net()
        self.home = net.peer("mx.sender.test")
        self.dest = net.peer("mx.dest.test")
        net.mx("sender.test", self.home, 10)
        net.mx("dest.test", self.dest, 10)
        net.start()
        self.d = self.start_sluice(config=net.sluice_config(rules, retry=["1h"], expire="3s"))

    def check_expired(self, rcpt, reply):
        """rcpt fails at expiry though never tried, and its DSN reaches the sender's MX."""
        expired = self.d.wait_event("delivery.expired", timeout=20, rcpt=rcpt)
        self.assertEqual(len(expired), 1, expired)
        self.assertEqual((expired[0]["code"], expired[0]["enhanced"], expired[0]["stage"]),
                         (451, "4.4.7", "queue"), expired)
        self.assertIn(reply, expired[0]["reply"])
        self.assertNotIn(rcpt, self.dest.delivered_rcpts())
        self.wait(lambda: [tx for tx in self.home.transactions()
                           if tx.accepted() and rcpt.encode() in tx.data], 20,
                  "the DSN for %s at the sender's MX" % rcpt)
        self.wait(lambda: self.d.queue_list() == [], 20, "the queue empty")

    def test_mail_at_a_suspended_destination_expires(self):
        self.start()
        res = self.d.cli("queue", "suspend", "dest.test")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        send(self.d, SENDER, ["x@dest.test"])
        self.check_expired("x@dest.test", "suspended")
        self.assertEqual(self.dest.attempts, {}, "never tried")

    def test_mail_held_by_the_connection_rate_expires(self):
        # One connection an hour, one message each: of two messages, one at most goes out and
        # the other waits for the next connection, beyond its expiry.
        self.start([{"match": {"domain": "dest.test"}, "connections": 1,
                     "messages_per_connection": 1, "connection_rate": "1/h"}])
        send(self.d, SENDER, ["one@dest.test"])
        send(self.d, SENDER, ["two@dest.test"])
        expired = self.d.wait_event("delivery.expired", timeout=20)
        sent = self.dest.delivered_rcpts()
        self.assertLessEqual(len(sent), 1, sent)
        held = sorted({"one@dest.test", "two@dest.test"} - set(sent))
        for rcpt in held:
            self.check_expired(rcpt, "limits")
        self.assertEqual(len(self.d.events("delivery.expired")), len(held), expired)

    def test_mail_of_a_suspended_tenant_or_campaign_expires(self):
        # Held before it reaches a destination: it waits in the scheduler, never tried, and still
        # expires on time with the hold as the reason; another campaign of the tenant goes out.
        self.start()
        for args in (["--tenant", "acme"], ["--tenant", "bravo", "--campaign", "spring"]):
            res = self.d.cli("queue", "suspend", *args)
            self.assertEqual(res.returncode, 0, res.stderr.decode())

        def mail(tenant, campaign):
            return ("X-Sluice-Tenant: %s\r\nX-Sluice-Campaign: %s\r\nSubject: t\r\n\r\nhi\r\n"
                    % (tenant, campaign)).encode()
        send(self.d, SENDER, ["a@dest.test"], mail("acme", "fall"))
        send(self.d, SENDER, ["b@dest.test"], mail("bravo", "spring"))
        send(self.d, SENDER, ["c@dest.test"], mail("bravo", "fall"))
        self.check_expired("a@dest.test", "not sent: tenant acme was suspended")
        self.check_expired("b@dest.test", "not sent: campaign spring of tenant bravo was suspended")
        self.assertEqual(self.dest.delivered_rcpts(), ["c@dest.test"])
        self.assertEqual(len(self.d.events("delivery.expired")), 2)


if __name__ == "__main__":
    main()
