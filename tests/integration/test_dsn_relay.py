"""
DSN (RFC 3461) across hops, through the real daemon and real SMTP peers on loopback (mailnet.py):
a receiver that offers DSN gets RET and ENVID on MAIL and NOTIFY and ORCPT on RCPT as the client
gave them (xtext-encoded again), and none is made up for a recipient that had none; a receiver
that does not offer DSN gets none of them.
"""
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
