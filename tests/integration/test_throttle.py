"""
How delivery reacts when receivers push back (see mailnet.py for the test world): a reply that asks
for a lower rate halves the egress address's connections to that destination and pauses it, and a
destination whose hosts keep failing is suspended with backoff instead of being hammered. Both
changes are logged.
"""
from harness import main
from mailnet import MailNetCase, send

SENDER = "alice@sender.test"
ONE_EGRESS = [("127.0.0.10", "out1.sluice.test")]
SLACK = 0.3  # timer granularity and peer-side delays on a loaded machine


class Throttle(MailNetCase):
    def setUp(self):
        self.make_net()

    def test_rate_reply_lowers_connections_and_pauses(self):
        """Gmail's 451 4.7.28 ("unusual rate") for one recipient: the destination drops from 4 to
        2 connections from that egress address and sends nothing for the first retry step."""
        peer = self.net.peer("mx.rate.test", rcpt=[
            ("first@*", "451 4.7.28 Our system has detected an unusual rate of unsolicited mail")])
        self.net.mx("rate.test", peer, 10)
        self.start_daemon(egress=ONE_EGRESS, connections=4, retry=["2s"], expire="60s")
        send(self.d, SENDER, ["first@rate.test"])
        throttle = self.wait(lambda: self.d.events("delivery.throttle", destination="rate.test"),
                             15, "delivery.throttle logged")[0]
        self.assertEqual(throttle["egress"], "127.0.0.10")
        self.assertEqual(throttle["connections"], 2, "4 connections halved")
        for i in range(6):
            send(self.d, SENDER, ["ok%d@rate.test" % i])
        self.wait(lambda: len([a for a in peer.delivered_rcpts() if a.startswith("ok")]) >= 6, 20,
                  "6 delivered after the pause")
        paused_from = min(t for tx in peer.transactions() for a, t, c in tx.rcpts
                          if a == "first@rate.test")
        later = [s.connect_time for s in peer.sessions if s.connect_time > paused_from]
        self.assertTrue(later, "sessions after the throttle")
        self.assertGreaterEqual(min(later) - paused_from, 2.0 - SLACK,
                                "no connection during the pause (the first retry step)")
        self.assertLessEqual(peer.max_open.get("127.0.0.10", 0), 2,
                             "at most the lowered 2 connections at once")

    def test_failing_destination_is_suspended_with_backoff(self):
        """A host that refuses every session (5xx greeting): after 3 failures in a row the
        destination is suspended for a backoff period, and no connection is made during it."""
        peer = self.net.peer("mx.refuse.test", greeting="554 5.3.2 not accepting connections")
        self.net.mx("refuse.test", peer, 10)
        self.start_daemon(egress=ONE_EGRESS, retry=["1s"], expire="60s")
        send(self.d, SENDER, ["x@refuse.test"])
        suspend = self.wait(lambda: self.d.events("delivery.suspend", destination="refuse.test"),
                            20, "delivery.suspend logged")[0]
        self.assertGreaterEqual(suspend["failures"], 3, "suspended after repeated failures")
        self.assertGreaterEqual(suspend["for_ms"], 500, "backoff of at least half a retry step")
        failures = suspend["failures"]
        self.wait(lambda: len(peer.sessions) > failures, 20, "a connection after the suspension")
        sessions = sorted(peer.sessions, key=lambda s: s.connect_time)
        gap = sessions[failures].connect_time - sessions[failures - 1].connect_time
        self.assertGreaterEqual(gap, suspend["for_ms"] / 1000.0 - SLACK,
                                "nothing during the suspension that followed failure %d" % failures)
        self.assertTrue(self.d.queue_list(), "the message is still queued (deferred, not bounced)")


if __name__ == "__main__":
    main()
