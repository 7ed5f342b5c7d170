"""
The postmaster reaches a person (RFC 5321 §4.5.1): with server.postmaster set, mail to the bare
<postmaster> and to postmaster@ a local domain or the server's host name is delivered to that
mailbox on a real SMTP peer, while postmaster@ someone else's domain is routed as usual; a DSN that
cannot be delivered (a double bounce) is reported there as an RFC 3464 report, at most
server.postmaster_rate of them (the rest logged and dropped), and a report that cannot reach the
postmaster either is dropped instead of bouncing round.
"""
import email

from harness import SMTPConn, main, send_message
from mailnet import MailNetCase

POSTMASTER = "pm@ops.test"


def message(subject):
    return ("Subject: %s\r\nFrom: <a@sender.test>\r\n\r\nbody\r\n" % subject).encode()


def subject_of(tx):
    return email.message_from_bytes(tx.data).get("Subject")


class Postmaster(MailNetCase):
    def setUp(self):
        self.net = self.make_net()
        self.ops = self.net.peer("mx.ops.test")  # the postmaster's mailbox host
        self.net.mx("ops.test", self.ops, 10)
        # Every recipient there is refused: what a DSN sent there fails with.
        self.dest = self.net.peer("mx.dest.test", rcpt=[("*", "550 5.1.1 no such user")])
        self.net.mx("dest.test", self.dest, 10)

    def start(self, postmaster=POSTMASTER, rate=None):
        self.net.start()
        cfg = self.net.sluice_config()
        cfg["server"]["postmaster"] = postmaster
        if rate is not None:
            cfg["server"]["postmaster_rate"] = rate
        cfg["domains"] = {"local.test": None}
        self.d = self.start_sluice(config=cfg)

    def submit(self, sender, rcpt, subject):
        host, port = self.d.addr()
        with SMTPConn(host, port) as c:
            self.assertReply(c.ehlo(), 250)
            r = send_message(c, sender, [rcpt], message(subject))
            self.assertReply(r, 250)

    def reports(self):
        return [tx for tx in self.ops.transactions() if tx.accepted()]

    def test_postmaster_addresses_reach_the_mailbox(self):
        other = self.net.peer("mx.other.test")
        self.net.mx("other.test", other, 10)
        self.start()
        sent = {"postmaster": "bare", "Postmaster@LOCAL.test": "local domain",
                "postmaster@sluice.test": "host name"}
        for rcpt, subject in sent.items():
            self.submit("a@sender.test", rcpt, subject)
        self.submit("a@sender.test", "postmaster@other.test", "not ours")
        self.wait(lambda: len(self.reports()) == 3 and other.delivered(), 20, "all delivered")
        self.wait_spool_empty(20)
        got = {subject_of(tx): (tx.sender, tx.accepted()) for tx in self.reports()}
        self.assertEqual(got, {s: ("a@sender.test", [POSTMASTER]) for s in sent.values()})
        self.assertEqual([(tx.accepted(), subject_of(tx)) for tx in other.transactions()],
                         [(["postmaster@other.test"], "not ours")])

    def test_double_bounce_reaches_the_postmaster(self):
        self.start()
        self.submit("", "gone@dest.test", "a bounce that bounces")
        self.wait(self.reports, 20, "a report at the postmaster's host")
        self.wait_spool_empty(20)
        reports = self.reports()
        self.assertEqual(len(reports), 1)
        tx = reports[0]
        self.assertEqual((tx.sender, tx.accepted()), ("", [POSTMASTER]))
        msg = email.message_from_bytes(tx.data)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get("To"), "<%s>" % POSTMASTER)
        status = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
        self.assertEqual(len(status), 1)
        blocks = status[0].get_payload()
        self.assertEqual(blocks[1].get("Final-Recipient"), "rfc822; gone@dest.test")
        self.assertEqual(blocks[1].get("Action"), "failed")
        self.assertEqual(blocks[1].get("Status"), "5.1.1")
        self.assertIn("a bounce that bounces", tx.data.decode())
        self.assertEqual(len(self.d.events("delivery.bounce", double_bounce=True)), 1)
        self.assertEqual(self.d.events("delivery.double_bounce"), [])

    def test_double_bounce_rate_bound(self):
        self.start(rate="2/h")
        for i in range(4):
            self.submit("", "gone%d@dest.test" % i, "bounce %d" % i)
        dropped = self.d.wait_event("delivery.double_bounce", timeout=20, count=2)
        self.wait(lambda: len(self.reports()) >= 2, 20, "two reports")
        self.wait_spool_empty(20)
        self.assertEqual(len(self.dest.transactions()), 4, "every message was tried")
        self.assertEqual(len(self.reports()), 2, "at most 2 reports in the hour")
        dropped = self.d.events("delivery.double_bounce")
        self.assertEqual(len(dropped), 2)
        for e in dropped:
            self.assertIn("server.postmaster_rate", e["msg"])
        reported = {b.get("Final-Recipient") for tx in self.reports()
                    for p in email.message_from_bytes(tx.data).walk()
                    if p.get_content_type() == "message/delivery-status"
                    for b in p.get_payload()[1:]}
        self.assertEqual(len(reported | {"rfc822; " + e["rcpt"] for e in dropped}), 4,
                         "each failure reported or logged")

    def test_unreachable_postmaster_is_not_bounced_round(self):
        self.start(postmaster="pm@dest.test")  # refused there too
        self.submit("", "gone@dest.test", "nobody home")
        self.wait(lambda: len(self.dest.transactions()) >= 2, 20, "the report was tried")
        self.wait_spool_empty(20)
        self.assertEqual([tx.accepted() for tx in self.dest.transactions()], [[], []])
        self.assertEqual([tx.sender for tx in self.dest.transactions()], ["", ""])
        dropped = self.d.events("delivery.double_bounce")
        self.assertEqual([e["rcpt"] for e in dropped], ["pm@dest.test"])
        self.assertIn("could not be reached", dropped[0]["msg"])


if __name__ == "__main__":
    main()
