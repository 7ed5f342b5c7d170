"""
DSN parameters (RFC 3461) from the SMTP client to the DSNs Sluice generates, through the real
daemon and real SMTP peers on loopback (mailnet.py): NOTIFY=NEVER and NOTIFY without FAILURE get no
failure DSN (and the drop is logged), NOTIFY=FAILURE and no NOTIFY do; ENVID comes back as
Original-Envelope-Id and ORCPT as Original-Recipient, xtext-decoded; RET=FULL returns the whole
message and RET=HDRS only its header section; and the parameters live in the spool, so they still
hold after a restart. A recipient with NOTIFY=DELAY still deferred at an age of delivery.delay_warning
gets one delay DSN, not repeated after a restart. Each DSN is parsed with Python's email package.
"""
import email

from harness import SMTPConn, main
from mailnet import MailNetCase

SENDER = "alice@sender.test"
BODY_MARKER = "BODY-MARKER-7"


def message(subject):
    return ("Subject: %s\r\nFrom: <%s>\r\n\r\n%s\r\n" % (subject, SENDER, BODY_MARKER)).encode()


class DsnParams(MailNetCase):
    def setUp(self):
        self.net = self.make_net()
        self.home = self.net.peer("mx.sender.test")  # where DSNs to SENDER arrive
        self.net.mx("sender.test", self.home, 10)

    def start(self, defer_first=0, **shaping):
        self.dest = self.net.peer("mx.dest.test", rcpt=[("gone*", "550 5.1.1 no such user")],
                                  defer_first=defer_first)
        self.net.mx("dest.test", self.dest, 10)
        self.start_daemon(**shaping)

    def submit(self, mail_params, rcpts, subject):
        """rcpts: [(address, parameters)] on raw SMTP; every reply must be a success."""
        host, port = self.d.addr()
        with SMTPConn(host, port) as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<%s> %s" % (SENDER, mail_params)), 250)
            for address, params in rcpts:
                self.assertReply(c.cmd("RCPT TO:<%s> %s" % (address, params)), 250)
            self.assertReply(c.cmd("DATA"), 354)
            c.send(message(subject) + b".\r\n")
            self.assertReply(c.read_reply(timeout=15), 250)

    def the_dsn(self):
        self.wait(lambda: [tx for tx in self.home.transactions() if tx.accepted()], 20, "a DSN")
        self.wait_spool_empty(20)
        dsns = [tx for tx in self.home.transactions() if tx.accepted()]
        self.assertEqual(len(dsns), 1)
        msg = email.message_from_bytes(dsns[0].data)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        status = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
        self.assertEqual(len(status), 1)
        return msg, status[0].get_payload()

    def rcpt_blocks(self, blocks):
        return {b.get("Final-Recipient").split(";", 1)[1].strip(): b for b in blocks[1:]}

    def test_notify_envid_orcpt_ret_full(self):
        self.start()
        self.submit("RET=FULL ENVID=QQ+2B7", [
            ("gone1@dest.test", "NOTIFY=NEVER"),
            ("gone2@dest.test", "NOTIFY=SUCCESS,DELAY"),
            ("gone3@dest.test", "NOTIFY=FAILURE ORCPT=rfc822;Gone3+2Bx@dest.test"),
            ("gone4@dest.test", ""),
            ("ok@dest.test", "NOTIFY=NEVER"),
        ], "full")
        msg, blocks = self.the_dsn()
        self.assertEqual(blocks[0].get("Original-Envelope-Id"), "QQ+7")
        per_rcpt = self.rcpt_blocks(blocks)
        self.assertEqual(set(per_rcpt), {"gone3@dest.test", "gone4@dest.test"})
        self.assertEqual(per_rcpt["gone3@dest.test"].get("Original-Recipient"),
                         "rfc822;Gone3+x@dest.test")
        self.assertIsNone(per_rcpt["gone4@dest.test"].get("Original-Recipient"))
        returned = [p for p in msg.walk() if p.get_content_type() == "message/rfc822"]
        self.assertEqual(len(returned), 1, "RET=FULL returns the message")
        self.assertIn(BODY_MARKER, returned[0].as_string())
        dropped = self.d.events("delivery.dsn_not_requested")
        self.assertEqual(sorted(e["rcpt"] for e in dropped), ["gone1@dest.test", "gone2@dest.test"])
        self.assertEqual(self.dest.delivered_rcpts(), ["ok@dest.test"])

    def test_ret_hdrs(self):
        self.start()
        self.submit("RET=HDRS", [("gone@dest.test", "NOTIFY=FAILURE")], "headers only")
        msg, blocks = self.the_dsn()
        self.assertIsNone(blocks[0].get("Original-Envelope-Id"))
        types = [p.get_content_type() for p in msg.walk()]
        self.assertIn("text/rfc822-headers", types)
        self.assertNotIn("message/rfc822", types)
        raw = msg.as_string()
        self.assertIn("headers only", raw)
        self.assertNotIn(BODY_MARKER, raw)

    def test_parameters_survive_a_restart(self):
        # The first attempt of each recipient is deferred; the next comes after the restart.
        self.start(defer_first=1, retry=["2s"])
        self.submit("ENVID=E1", [("gone1@dest.test", "NOTIFY=NEVER"),
                                 ("gone2@dest.test", "ORCPT=rfc822;G2@dest.test")], "restart")
        self.wait(lambda: len(self.dest.transactions()) >= 1, 20, "the first attempt")
        self.d.kill9()
        self.assertEqual(self.d.events("delivery.failed", run=1), [], "failed before the restart")
        self.d.restart()
        msg, blocks = self.the_dsn()
        self.assertEqual(blocks[0].get("Original-Envelope-Id"), "E1")
        per_rcpt = self.rcpt_blocks(blocks)
        self.assertEqual(list(per_rcpt), ["gone2@dest.test"])
        self.assertEqual(per_rcpt["gone2@dest.test"].get("Original-Recipient"), "rfc822;G2@dest.test")
        self.assertEqual([e["rcpt"] for e in self.d.events("delivery.dsn_not_requested")],
                         ["gone1@dest.test"])


class DelayWarnings(MailNetCase):
    """delivery.delay_warning: a recipient with NOTIFY=DELAY still deferred at a listed age gets one
    delay DSN (Action: delayed) per age, never again after a restart; one without NOTIFY gets
    none."""
    setUp = DsnParams.setUp
    submit = DsnParams.submit
    the_dsn = DsnParams.the_dsn
    rcpt_blocks = DsnParams.rcpt_blocks

    def test_one_warning_per_age_across_a_restart(self):
        # Three deferrals each, two seconds apart: the second one is past the 1s age.
        self.dest = self.net.peer("mx.dest.test", defer_first=3)
        self.net.mx("dest.test", self.dest, 10)
        self.net.start()
        cfg = self.net.sluice_config(retry=["2s"])
        cfg["delivery"]["delay_warning"] = ["1s", "1h"]
        self.d = self.start_sluice(config=cfg)
        self.submit("ENVID=W1", [("late@dest.test", "NOTIFY=DELAY,FAILURE ORCPT=rfc822;L@dest.test"),
                                 ("quiet@dest.test", "")], "slow")
        self.wait(lambda: self.d.events("delivery.delay_notice"), 20, "a delay DSN")
        self.assertEqual(self.d.stop(), 0)  # graceful: the step sent is on disk
        self.d.restart()
        self.wait(lambda: len(self.dest.delivered_rcpts()) == 2, 30, "both delivered")
        self.assertTrue(self.d.events("delivery.deferred", run=2), "deferred after the restart")
        msg, blocks = self.the_dsn()
        self.assertEqual(msg["Subject"], "Delayed Mail (still being retried)")
        self.assertEqual(blocks[0].get("Original-Envelope-Id"), "W1")
        per_rcpt = self.rcpt_blocks(blocks)
        self.assertEqual(list(per_rcpt), ["late@dest.test"])
        self.assertEqual(per_rcpt["late@dest.test"].get("Action"), "delayed")
        self.assertEqual(per_rcpt["late@dest.test"].get("Original-Recipient"), "rfc822;L@dest.test")
        self.assertTrue(per_rcpt["late@dest.test"].get("Status").startswith("4."))


if __name__ == "__main__":
    main()
