"""
DSN (RFC 3461) across hops, through the real daemon and real SMTP peers on loopback (mailnet.py):
a receiver that offers DSN gets RET and ENVID on MAIL and NOTIFY and ORCPT on RCPT as the client
gave them (xtext-encoded again), and none is made up for a recipient that had none; a receiver
that does not offer DSN gets none of them, and a recipient delivered to it with NOTIFY=SUCCESS gets
a notice (Action: relayed, parsed with Python's email package) while one delivered to a receiver
that offers DSN gets none from this hop. Two hops: a second daemon offers DSN, takes the
parameters over and sends the relayed notice itself when it delivers to a peer without DSN.
"""
import email

import test_dsn_params
from harness import main
from mailnet import MailNetCase

SENDER = "alice@sender.test"


class DsnRelay(MailNetCase):
    def setUp(self):
        self.net = self.make_net()
        self.home = self.net.peer("mx.sender.test")  # where DSNs to SENDER arrive
        self.net.mx("sender.test", self.home, 10)

    submit = test_dsn_params.DsnParams.submit

    def delivered_tx(self, peer):
        self.wait(lambda: peer.delivered(), 20, "a delivery")
        self.wait_spool_empty(20)
        txs = [tx for tx in peer.transactions() if tx.accepted()]
        self.assertEqual(len(txs), 1)
        return txs[0]

    def test_parameters_go_on_to_a_receiver_that_offers_dsn(self):
        dest = self.net.peer("mx.dest.test", dsn=True)
        self.net.mx("dest.test", dest, 10)
        self.start_daemon()
        self.submit("RET=HDRS ENVID=QQ+2B7", [
            ("a@dest.test", "NOTIFY=DELAY,FAILURE ORCPT=rfc822;A+2Bx@dest.test"),
            ("b@dest.test", ""),
            ("c@dest.test", "NOTIFY=NEVER"),
        ], "relay")
        tx = self.delivered_tx(dest)
        self.assertIn("RET=HDRS", tx.params)
        self.assertIn("ENVID=QQ+2B7", tx.params)
        self.assertEqual(tx.rcpt_params["a@dest.test"],
                         ["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;A+2Bx@dest.test"])
        self.assertEqual(tx.rcpt_params["b@dest.test"], [])
        self.assertEqual(tx.rcpt_params["c@dest.test"], ["NOTIFY=NEVER"])

    def notices(self, peer, count):
        """The DSNs peer received once `count` arrived: [(message, [per-recipient blocks])]."""
        self.wait(lambda: len([tx for tx in peer.transactions() if tx.accepted()]) >= count, 20,
                  "%d DSNs" % count)
        out = []
        for tx in [tx for tx in peer.transactions() if tx.accepted()]:
            self.assertEqual(tx.sender, "")
            msg = email.message_from_bytes(tx.data)
            self.assertEqual(msg.get_content_type(), "multipart/report")
            status = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
            self.assertEqual(len(status), 1)
            out.append((msg, status[0].get_payload()))
        return out

    def test_relayed_notice_from_a_receiver_without_dsn(self):
        dest = self.net.peer("mx.dest.test")
        self.net.mx("dest.test", dest, 10)
        self.start_daemon()
        self.submit("RET=FULL ENVID=E7", [
            ("a@dest.test", "NOTIFY=SUCCESS ORCPT=rfc822;A@dest.test"),
            ("b@dest.test", "NOTIFY=FAILURE,DELAY"),
            ("c@dest.test", ""),
        ], "success")
        self.delivered_tx(dest)
        [(msg, blocks)] = self.notices(self.home, 1)
        self.assertEqual(msg["Subject"], "Successful Mail Delivery Report")
        self.assertEqual(blocks[0].get("Original-Envelope-Id"), "E7")
        self.assertEqual(len(blocks), 2, "one recipient asked for a success notice")
        self.assertEqual(blocks[1].get("Final-Recipient"), "rfc822; a@dest.test")
        self.assertEqual(blocks[1].get("Original-Recipient"), "rfc822;A@dest.test")
        self.assertEqual(blocks[1].get("Action"), "relayed")
        self.assertTrue(blocks[1].get("Status").startswith("2."), blocks[1].get("Status"))
        types = [p.get_content_type() for p in msg.walk()]
        self.assertNotIn("message/rfc822", types, "RET=FULL is for failures only")
        self.assertIn("text/rfc822-headers", types)
        self.assertEqual(len(self.d.events("delivery.relayed_notice")), 1)
        self.wait_spool_empty(20)

    def test_no_notice_when_the_receiver_offers_dsn(self):
        dest = self.net.peer("mx.dest.test", dsn=True)
        plain = self.net.peer("mx.plain.test")
        self.net.mx("dest.test", dest, 10)
        self.net.mx("plain.test", plain, 10)
        self.start_daemon()
        # The plain one comes last: its notice shows the other had its chance to send one.
        self.submit("", [("a@dest.test", "NOTIFY=SUCCESS")], "taken over")
        self.delivered_tx(dest)
        self.submit("", [("p@plain.test", "NOTIFY=SUCCESS")], "reported")
        [(msg, blocks)] = self.notices(self.home, 1)
        self.assertEqual(blocks[1].get("Final-Recipient"), "rfc822; p@plain.test")
        self.wait_spool_empty(20)
        self.assertEqual(len([tx for tx in self.home.transactions() if tx.accepted()]), 1)

    def test_two_hops(self):
        """A relays to B (deliver_to), which offers DSN: the parameters arrive at B, A sends no
        notice; B delivers to a peer without DSN and sends the relayed notice, with ENVID and
        ORCPT as the client gave them to A."""
        final = self.net.peer("mx.final.test")
        self.net.mx("final.test", final, 10)
        self.net.start()
        cfg_b = self.net.sluice_config()
        cfg_b["server"]["hostname"] = "hop-b.test"
        b = self.start_sluice(listeners=[{"name": "mx", "role": "submission"}], config=cfg_b)
        to_b = "[%s]:%d" % b.addr()
        cfg = self.net.sluice_config()
        cfg["domains"] = {"final.test": {"deliver_to": to_b}}
        self.d = self.start_sluice(config=cfg)
        self.submit("ENVID=HOP+2B2", [("u@final.test", "NOTIFY=SUCCESS,FAILURE "
                                                      "ORCPT=rfc822;U+2Bx@final.test")], "hops")
        self.wait(lambda: final.delivered(), 20, "delivery at the last hop")
        [(msg, blocks)] = self.notices(self.home, 1)
        self.assertEqual(blocks[0].get("Original-Envelope-Id"), "HOP+2")
        self.assertEqual(blocks[0].get("Reporting-MTA"), "dns; hop-b.test")
        self.assertEqual(blocks[1].get("Action"), "relayed")
        self.assertEqual(blocks[1].get("Original-Recipient"), "rfc822;U+x@final.test")
        self.assertEqual(self.d.events("delivery.relayed_notice"), [], "A sent a notice")
        self.assertEqual(len(b.events("delivery.relayed_notice")), 1)

    def test_no_parameters_to_a_receiver_without_dsn(self):
        dest = self.net.peer("mx.dest.test")
        self.net.mx("dest.test", dest, 10)
        self.start_daemon()
        self.submit("RET=FULL ENVID=E1",
                    [("a@dest.test", "NOTIFY=FAILURE ORCPT=rfc822;a@dest.test")], "plain")
        tx = self.delivered_tx(dest)
        self.assertFalse([p for p in tx.params if p.startswith(("RET=", "ENVID="))], tx.params)
        self.assertEqual(tx.rcpt_params["a@dest.test"], [])


if __name__ == "__main__":
    main()
