"""
How delivery reacts when receivers push back (see mailnet.py for the test world): a reply that asks
for a lower rate halves the egress address's connections to that destination and pauses it, and a
destination whose hosts keep failing is suspended with backoff instead of being hammered. Both
changes are logged. A reload keeps both: the destination that replaces the retired one goes on
with the lowered connections, the pause and the suspension.
"""
import json
import time

from harness import main
from mailnet import MailNetCase, send

SENDER = "alice@sender.test"
ONE_EGRESS = [("127.0.0.10", "out1.sluice.test")]
SLACK = 0.3  # timer granularity and peer-side delays on a loaded machine


def open_at_most(sessions, source, until):
    """The most sessions from source open at one moment up to the time until."""
    spans = [(s.connect_time, s.close_time or float("inf")) for s in sessions
             if s.client[0] == source and s.connect_time <= until]
    return max((sum(1 for start, end in spans if start <= t < end) for t, _ in spans), default=0)


class Throttle(MailNetCase):
    def setUp(self):
        self.make_net()

    def check_throttle_and_pause(self, pause, reload):
        """Gmail's 451 4.7.28 ("unusual rate") for one recipient: the destination drops from 4 to
        2 connections from that egress address and sends nothing for the first retry step
        (`pause` seconds), with a reload right after the throttle when `reload`."""
        peer = self.net.peer("mx.rate.test", rcpt=[
            ("first@*", "451 4.7.28 Our system has detected an unusual rate of unsolicited mail")])
        self.net.mx("rate.test", peer, 10)
        config = dict(egress=ONE_EGRESS, connections=4, retry=["%ds" % pause], expire="60s")
        self.start_daemon(**config)
        send(self.d, SENDER, ["first@rate.test"])
        throttle = self.wait(lambda: self.d.events("delivery.throttle", destination="rate.test"),
                             15, "delivery.throttle logged")[0]
        self.assertEqual(throttle["egress"], "127.0.0.10")
        self.assertEqual(throttle["connections"], 2, "4 connections halved")
        if reload:
            self.reload_daemon(**config)
        for i in range(6):
            send(self.d, SENDER, ["ok%d@rate.test" % i])
        self.wait(lambda: len([a for a in peer.delivered_rcpts() if a.startswith("ok")]) >= 6, 20,
                  "6 delivered after the pause")
        paused_from = min(t for tx in peer.transactions() for a, t, c in tx.rcpts
                          if a == "first@rate.test")
        later = [s.connect_time for s in peer.sessions if s.connect_time > paused_from]
        self.assertTrue(later, "sessions after the throttle")
        self.assertGreaterEqual(min(later) - paused_from, pause - SLACK,
                                "no connection during the pause (the first retry step)")
        # Each transaction that succeeds wins a connection back (delivery.md), so the lowered cap
        # is what holds until the first success after the throttle: at most 2 open at any moment.
        first_success = min(tx.data_time for tx in peer.transactions() if tx.accepted())
        self.assertLessEqual(open_at_most(peer.sessions, "127.0.0.10", first_success), 2,
                             "at most the lowered 2 connections at once before a success")

    def test_rate_reply_lowers_connections_and_pauses(self):
        self.check_throttle_and_pause(2, reload=False)

    def test_throttle_and_pause_survive_a_reload(self):
        """The destination that replaces the retired one keeps the pause and the halved
        connections."""
        self.check_throttle_and_pause(4, reload=True)

    def destinations(self, key):
        """`queue list --json`'s destinations named key, as their retired/suspended fields."""
        res = self.d.cli("queue", "list", "--json")
        self.assertEqual(res.returncode, 0, res.stderr)
        return [{k: v for k, v in d.items() if k in ("retired", "suspended")}
                for d in json.loads(res.stdout)["destinations"] if d["destination"] == key]

    def test_admin_suspension_survives_a_reload(self):
        """`sluice queue suspend` holds mail for the destination across a SIGHUP until `sluice
        queue resume`."""
        peer = self.net.peer("mx.held.test")
        self.net.mx("held.test", peer, 10)
        config = dict(egress=ONE_EGRESS, expire="60s")
        self.start_daemon(**config)
        send(self.d, SENDER, ["before@held.test"])
        self.wait(lambda: peer.delivered_rcpts(), 15, "the first message delivered")
        self.assertEqual(self.d.cli("queue", "suspend", "held.test").returncode, 0)
        self.reload_daemon(**config)
        # Until a message needs it, the retired destination is listed as such, still suspended.
        self.assertEqual(self.destinations("held.test"),
                         [{"retired": True, "suspended": "admin"}])
        send(self.d, SENDER, ["held@held.test"])
        self.wait(lambda: self.destinations("held.test") == [{"suspended": "admin"}], 10,
                  "the successor, suspended")
        time.sleep(1.5)
        self.assertEqual(peer.delivered_rcpts(), ["before@held.test"], "held while suspended")
        self.assertEqual(len(peer.sessions), 1, "no connection while suspended")
        res = self.d.cli("queue", "resume", "held.test")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.wait(lambda: len(peer.delivered_rcpts()) >= 2, 15, "delivered once resumed")

    def test_suspension_survives_a_reload(self):
        """A destination suspended after repeated failures stays suspended across a SIGHUP: a new
        message for it waits for the end of the backoff instead of reconnecting at once."""
        peer = self.net.peer("mx.refuse.test", greeting="554 5.3.2 not accepting connections")
        self.net.mx("refuse.test", peer, 10)
        config = dict(egress=ONE_EGRESS, retry=["6s"], expire="60s")
        self.start_daemon(**config)
        send(self.d, SENDER, ["x@refuse.test"])
        suspend = self.wait(lambda: self.d.events("delivery.suspend", destination="refuse.test"),
                            20, "delivery.suspend logged")[0]
        suspended_at = max(s.connect_time for s in peer.sessions)
        self.reload_daemon(**config)
        send(self.d, SENDER, ["y@refuse.test"])
        failures = suspend["failures"]
        self.wait(lambda: len(peer.sessions) > failures, 20, "a connection after the suspension")
        gap = sorted(s.connect_time for s in peer.sessions)[failures] - suspended_at
        self.assertGreaterEqual(gap, suspend["for_ms"] / 1000.0 - SLACK,
                                "nothing during the suspension, across the reload")

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
