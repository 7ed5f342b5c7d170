"""
Address forms through the real daemon, to real SMTP peers on loopback (mailnet.py):

- Address literals (user@[192.0.2.1], user@[IPv6:...]): with relay.allow_address_literals false
  (the default) a client that may relay gets 550 5.1.2 at RCPT; with it true the message goes to
  that address directly, with no DNS lookup (the daemon's resolver is a dead address, so any
  lookup would fail), through a destination keyed by the literal.
- Internationalized domains: U-labels, full-width forms and A-labels are routed by the A-label
  (dnsmasq publishes the MX of the A-label only). A peer that offers SMTPUTF8 sees the envelope
  with U-labels; one that does not sees the A-labels without SMTPUTF8, unless a local part needs
  it (then the recipient fails with 5.6.7, and nothing is sent). A domain that does not convert is
  refused at RCPT and at MAIL; `domains` written as a U-label match either form.
"""
import json

import harness
from harness import main
from mailnet import MailNetCase, send

SENDER = "alice@sender.test"
BODY = b"Subject: forms\r\nFrom: <alice@sender.test>\r\n\r\nhello\r\n"
DELIVERY_WAIT = 20


def full_width(text):
    """ASCII letters, digits and dots as their full-width forms (U+FF01..U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


class AddressLiterals(MailNetCase):
    def start_literal_daemon(self, allow):
        self.net = self.make_net()
        self.peer = self.net.peer("literal-host.test")
        self.net.start()
        cfg = self.net.sluice_config()
        cfg["relay"] = {"allow_address_literals": allow}
        # No resolver: a lookup of anything fails temporarily, so only a route without DNS works.
        cfg["dns"] = {"servers": [harness.DEAD_DNS], "timeout": "1s"}
        self.d = self.start_sluice(config=cfg)

    def test_refused_at_rcpt_by_default(self):
        """A trusted client's RCPT to an address literal gets 550 5.1.2 at once (never a 250 and
        a bounce later); other recipients in the same transaction are still accepted."""
        self.start_literal_daemon(allow=False)
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, "2.1.0")
            for literal in ("[%s]" % self.peer.address, "[IPv6:2001:db8::1]"):
                r = c.cmd("RCPT TO:<user@%s>" % literal)
                self.assertReply(r, 550, "5.1.2", literal)
                self.assertIn("address literals are not relayed", r.text)
            self.assertReply(c.cmd("RCPT TO:<user@dest.test>"), 250, "2.1.5", "a name relays")
            self.assertReply(c.cmd("QUIT"), 221)
        refused = self.d.events("smtp.rejected", rule="relay.allow_address_literals")
        self.assertEqual(len(refused), 2, self.d.log_tail())
        self.assertEqual(self.peer.sessions, [])

    def test_delivered_to_the_address(self):
        """relay.allow_address_literals: true delivers to the address itself on delivery.port,
        without any DNS lookup, through a destination named by the literal."""
        self.start_literal_daemon(allow=True)
        literal = "[%s]" % self.peer.address
        rcpt = "user@" + literal
        send(self.d, SENDER, [rcpt], BODY)
        self.wait(lambda: self.peer.delivered(), DELIVERY_WAIT, "delivered to %s" % literal)
        self.assertEqual(self.peer.delivered_rcpts(), [rcpt])
        self.assertEqual(harness.split_received(self.peer.transactions()[0].data)[1], BODY)
        done = self.d.wait_event("delivery.delivered", rcpt=rcpt)[0]
        self.assertEqual(done["mx"], literal)
        res = self.d.cli("queue", "list", "--json")
        self.assertEqual(res.returncode, 0, res.stderr)
        keys = [x["destination"] for x in json.loads(res.stdout)["destinations"]]
        self.assertIn(literal, keys)
        self.assertEqual(self.d.events("delivery.deferred"), [], "no DNS failure on the way")


class InternationalDomains(MailNetCase):
    def setUp(self):
        self.net = self.make_net()
        self.utf8 = self.net.peer("mx.xn--bcher-kva.test", smtputf8=True)
        self.plain = self.net.peer("mx.xn--mnchen-3ya.test")
        self.home = self.net.peer("mx.sender.test")
        self.net.mx("xn--bcher-kva.test", self.utf8, 10)  # bücher.test
        self.net.mx("full.test", self.utf8, 10)
        self.net.mx("xn--mnchen-3ya.test", self.plain, 10)  # münchen.test
        self.net.mx("sender.test", self.home, 10)
        self.start_daemon()

    def submit(self, sender, rcpts, body=BODY, smtputf8=True):
        """One transaction on a raw socket; every command must succeed. Returns the queue id."""
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            param = " SMTPUTF8" if smtputf8 else ""
            self.assertReply(c.cmd("MAIL FROM:<%s>%s" % (sender, param)), 250, "2.1.0")
            for rcpt in rcpts:
                self.assertReply(c.cmd("RCPT TO:<%s>" % rcpt), 250, "2.1.5", rcpt)
            self.assertReply(c.cmd("DATA"), 354)
            c.send(body + b".\r\n")
            r = c.read_reply(timeout=15)
            self.assertReply(r, 250)
            self.assertReply(c.cmd("QUIT"), 221)
        return harness.queued_id(r)

    def delivered_tx(self, peer):
        self.wait(lambda: peer.delivered(), DELIVERY_WAIT, "delivered to %s" % peer.name)
        return peer.transactions()[-1]

    def test_ulabels_to_a_peer_with_smtputf8(self):
        """Routed by the A-label's MX; the peer that offers SMTPUTF8 sees U-labels and the
        parameter, for the sender's domain and the recipient's."""
        self.submit("alice@b\u00fccher.test", ["j\u00f6rg@B\u00dcCHER.test"])
        tx = self.delivered_tx(self.utf8)
        self.assertEqual(tx.sender, "alice@b\u00fccher.test")
        self.assertIn("SMTPUTF8", tx.params)
        self.assertEqual(tx.accepted(), ["j\u00f6rg@b\u00fccher.test"])

    def test_full_width_domain(self):
        """A full-width domain is mapped (UTS #46) to the name it spells."""
        self.submit(SENDER, ["user@" + full_width("FULL.test")])
        tx = self.delivered_tx(self.utf8)
        self.assertEqual(tx.accepted(), ["user@full.test"])

    def test_a_labels_to_a_peer_without_smtputf8(self):
        """Only the domains were non-ASCII: a peer without SMTPUTF8 gets the A-labels and no
        SMTPUTF8 parameter."""
        self.submit("alice@b\u00fccher.test", ["user@m\u00fcnchen.test"])
        tx = self.delivered_tx(self.plain)
        self.assertEqual(tx.sender, "alice@xn--bcher-kva.test")
        self.assertNotIn("SMTPUTF8", tx.params)
        self.assertEqual(tx.accepted(), ["user@xn--mnchen-3ya.test"])

    def test_a_label_recipient_without_smtputf8(self):
        """An A-label needs no SMTPUTF8 from the client, and is delivered as it is."""
        self.submit(SENDER, ["user@XN--MNCHEN-3YA.test"], smtputf8=False)
        tx = self.delivered_tx(self.plain)
        self.assertEqual(tx.accepted(), ["user@xn--mnchen-3ya.test"])

    def test_utf8_local_part_to_a_peer_without_smtputf8(self):
        """A UTF-8 local part cannot be sent to a peer without SMTPUTF8: 5.6.7 (RFC 6531 §3.4),
        without a MAIL to that peer; the sender gets the DSN."""
        self.submit(SENDER, ["j\u00f6rg@m\u00fcnchen.test"])
        failed = self.d.wait_event("delivery.failed", timeout=DELIVERY_WAIT)[0]
        self.assertEqual(failed["enhanced"], "5.6.7", failed)
        self.assertEqual(failed["rcpt"], "j\u00f6rg@xn--mnchen-3ya.test")
        self.wait(lambda: [tx for tx in self.home.transactions() if tx.accepted()],
                  DELIVERY_WAIT, "the DSN at the sender's MX")
        self.assertEqual(self.plain.transactions(), [], "nothing sent to the peer")

    def test_domain_that_does_not_convert_is_refused(self):
        """IDNA 2008 refusals at RCPT (501 5.1.3) and MAIL (501 5.1.7) say why."""
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            r = c.cmd("MAIL FROM:<alice@xn--zz.test> SMTPUTF8")
            self.assertReply(r, 501, "5.1.7")
            self.assertIn("invalid A-label", r.text)
            self.assertReply(c.cmd("MAIL FROM:<%s> SMTPUTF8" % SENDER), 250)
            cases = [("user@\u2603.test", "IDNA 2008 disallows"),  # snowman
                     ("user@\U0001F600.test", "IDNA 2008 disallows"),  # emoji
                     ("user@xn--zz.test", "invalid A-label"),
                     ("user@a\u200db.test", "joiner")]
            for rcpt, why in cases:
                r = c.cmd("RCPT TO:<%s>" % rcpt)
                self.assertReply(r, 501, "5.1.3", rcpt)
                self.assertIn(why, r.text)
            self.assertReply(c.cmd("QUIT"), 221)


class OurInternationalDomain(harness.SluiceTestCase):
    def test_domains_match_in_either_form(self):
        """`domains` written as a U-label accepts its recipients from strangers on the inbound
        listener in U-label, upper-case and A-label form, and nothing else."""
        d = self.start_sluice(listeners=[{"name": "mx", "role": "inbound"}],
                              config={"domains": {"b\u00fccher.example": None}})
        with d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<a@sender.test> SMTPUTF8"), 250)
            for rcpt in ("u1@b\u00fccher.example", "u2@B\u00dcCHER.EXAMPLE.",
                         "u3@xn--bcher-kva.example"):
                self.assertReply(c.cmd("RCPT TO:<%s>" % rcpt), 250, "2.1.5", rcpt)
            self.assertReply(c.cmd("RCPT TO:<u@b\u00fccher.other>"), 550, "5.7.1")
            self.assertReply(c.cmd("QUIT"), 221)

    def test_domain_that_does_not_convert_is_a_config_error(self):
        d = self.start_sluice(start=False)
        d.write_config(text="domains:\n  \"b\u2603.example\":\n")
        res = d.cli("check-config")
        self.assertNotEqual(res.returncode, 0)
        err = res.stderr.decode()
        self.assertIn("sluice.yaml:2:3: domains:", err)
        self.assertIn("is not a valid internationalized domain name", err)


if __name__ == "__main__":
    main()
