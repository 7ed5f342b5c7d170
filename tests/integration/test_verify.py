"""
Recipient verification (domains.<name>.verify_recipients) through the real daemon on an inbound
listener: each RCPT for the domain is first asked of the internal server named by deliver_to (an
asyncio SMTP peer from mailnet that knows some users). Unknown users get 550 5.1.1 at RCPT, known
ones are accepted and then delivered to the same server, answers are cached (the server sees one
probe per address), pipelined RCPTs keep their order, and an unreachable server gives 450 4.1.1.
A deliver_to host name whose addresses include a dead one still gets its answers: the probe moves
on to the next address. A server offering STARTTLS is probed over TLS.
"""
import time

import harness
from harness import SMTPConn
from mailnet import MailNetCase, random_loopback

DOMAIN = "example.test"
DOWN = "down.test"  # deliver_to an address nobody listens on
MULTI = "multi.test"  # deliver_to the internal server's host name, which also has a dead address
TLS = "tls.test"  # deliver_to a server offering STARTTLS
HELO = "client.test"


class VerifyTest(MailNetCase):
    def setUp(self):
        net = self.make_net()
        self.internal = net.peer("internal.example.test", rcpt=[
            ("alice@example.test", "250 2.1.5 ok"),
            ("postmaster@*", "250 2.1.5 ok"),
            ("*", "550 5.1.1 no such user here")])
        net.dns.host(self.internal.name, random_loopback())  # joins the peer's own A record
        self.tls_internal = net.peer("tls.internal.test", starttls=True,
                                     rcpt=[("bob@tls.test", "250 2.1.5 ok"), ("*", "550 5.1.1 no")])
        net.start()
        cfg = net.sluice_config()
        cfg["domains"] = {
            DOMAIN: {"deliver_to": "[%s]:%d" % (self.internal.address, net.port),
                     "verify_recipients": True},
            DOWN: {"deliver_to": "[%s]:%d" % (random_loopback(), net.port),
                   "verify_recipients": True},
            MULTI: {"deliver_to": "%s:%d" % (self.internal.name, net.port),
                    "verify_recipients": True},
            TLS: {"deliver_to": "[%s]:%d" % (self.tls_internal.address, net.port),
                  "verify_recipients": True},
        }
        self.d = self.start_sluice(listeners=[{"name": "mx", "role": "inbound"}], config=cfg)

    def session(self):
        host, port = self.d.addr()
        c = SMTPConn(host, port, timeout=20)
        self.addCleanup(c.close)
        self.assertReply(c.ehlo(HELO), 250)
        self.assertReply(c.cmd("MAIL FROM:<someone@sender.test>"), 250)
        return c

    def probes(self, address):
        """RCPTs of `address` the internal server has seen (probes and deliveries)."""
        with self.internal.lock:
            return self.internal.attempts.get(address, 0)

    def test_unknown_refused_known_delivered_and_cached(self):
        c = self.session()
        r = c.cmd("RCPT TO:<mallory@example.test>")
        self.assertReply(r, 550, "5.1.1")
        self.assertIn("<mallory@example.test>: Recipient address rejected: undeliverable address",
                      r.text)
        self.assertIn("no such user here", r.text)
        self.assertReply(c.cmd("RCPT TO:<Mallory@Example.test>"), 550, "5.1.1")  # from the cache
        self.assertEqual(self.probes("mallory@example.test"), 1)
        self.assertReply(c.cmd("RCPT TO:<alice@example.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<postmaster@example.test>"), 250)  # never verified
        self.assertEqual(self.probes("postmaster@example.test"), 0)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: verified\r\n\r\nhello\r\n.\r\n")
        self.assertReply(c.read_reply(timeout=15), 250)
        self.wait(lambda: "alice@example.test" in self.internal.delivered_rcpts(), 20,
                  "delivered to the internal server")
        self.assertEqual(self.probes("alice@example.test"), 2)  # the probe, then the delivery
        self.assertTrue(self.d.find("smtp.verify", address="mallory@example.test",
                                    result="invalid", cached=False))
        self.assertTrue(self.d.find("smtp.verify", address="Mallory@example.test",
                                    result="invalid", cached=True))
        self.assertTrue(self.d.find("smtp.rejected", rule="verify", code=550))

    def test_probe_uses_starttls_when_offered(self):
        c = self.session()
        self.assertReply(c.cmd("RCPT TO:<bob@tls.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<eve@tls.test>"), 550, "5.1.1")
        with self.tls_internal.lock:
            sessions = list(self.tls_internal.sessions)
        self.assertEqual(len(sessions), 2, self.tls_internal.report())
        self.assertTrue(all(s.tls for s in sessions), self.tls_internal.report())

    def test_pipelined_rcpts_answered_in_order(self):
        c = self.session()
        c.send(b"RCPT TO:<bob@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<carol@example.test>\r\nRSET\r\n")
        replies = c.read_replies(4, timeout=20)
        self.assertEqual([r.code for r in replies], [550, 250, 550, 250])
        self.assertIn("bob@example.test", replies[0].text)
        self.assertIn("carol@example.test", replies[2].text)

    def test_server_down_is_450_and_not_cached(self):
        c = self.session()
        for _ in range(2):
            r = c.cmd("RCPT TO:<x@%s>" % DOWN)
            self.assertReply(r, 450, "4.1.1")
            self.assertIn("unverified address", r.text)
        probes = self.d.events("smtp.verify", address="x@" + DOWN, result="tempfail",
                               cached=False)
        self.assertEqual(len(probes), 2)

    def test_host_name_with_a_dead_address(self):
        # dnsmasq varies the order of the two addresses between answers and the daemon keeps an
        # answer for the records' 1 s TTL: probes 1.2 s apart meet the dead address first too.
        c = self.session()
        for i in range(4):
            address = "user%d@%s" % (i, MULTI)
            r = c.cmd("RCPT TO:<%s>" % address)
            self.assertReply(r, 550, "5.1.1")
            self.assertIn("no such user here", r.text)
            self.assertEqual(self.probes(address), 1)
            if i < 3:
                time.sleep(1.2)
        self.assertEqual(len(self.d.events("smtp.verify", result="invalid", cached=False)), 4)


if __name__ == "__main__":
    harness.main()
