"""
Connection reuse through the real daemon, counted at a real SMTP peer (mailnet.py): messages that
arrive one by one for the same destination go over a connection kept open between them
(shaping idle_timeout), each delivered once; the connection ends with QUIT when the idle time runs
out; messages_per_connection still ends a connection after N; a receiver that closes an idle
connection itself costs nothing (the next message opens a new one, no deferral, no throttle);
idle_timeout 0 closes each connection at once, one connection per message.
"""
import time

from harness import main
from mailnet import MailNetCase, send

SENDER = "trickle@sender.test"


def message(i):
    return ("Subject: trickle %d\r\n\r\nreuse\r\n" % i).encode()


class Reuse(MailNetCase):
    def setUp(self):
        self.make_net()
        self.dest = self.net.peer("mx.dest.test")
        self.net.mx("dest.test", self.dest, 10)

    def trickle(self, count, gap):
        """Submits `count` one-recipient messages `gap` seconds apart; returns the recipients."""
        rcpts = ["t%d@dest.test" % i for i in range(count)]
        for i, rcpt in enumerate(rcpts):
            started = time.monotonic()
            send(self.d, SENDER, [rcpt], message(i))
            time.sleep(max(0.0, gap - (time.monotonic() - started)))  # the pace of the test's mail
        return rcpts

    def wait_delivered_once(self, rcpts, timeout=30):
        self.wait(lambda: len(self.dest.delivered()) >= len(rcpts), timeout,
                  "%d recipients delivered" % len(rcpts))
        self.wait_spool_empty(10)
        self.assertEqual(sorted(self.dest.delivered_rcpts()), sorted(rcpts),
                         "every message delivered exactly once")

    def wait_all_closed(self, timeout):
        self.wait(lambda: all(s.close_time is not None for s in self.dest.sessions), timeout,
                  "every connection closed")

    def test_trickled_mail_reuses_connections(self):
        self.start_daemon(idle_timeout="2s")
        rcpts = self.trickle(20, 0.2)
        self.wait_delivered_once(rcpts)
        sessions = list(self.dest.sessions)
        self.assertLessEqual(len(sessions), 4, "20 trickled messages, a handful of connections")
        self.wait_all_closed(15)
        last_data = max(tx.data_time for tx in self.dest.transactions())
        for s in sessions:
            self.assertTrue(s.quit, "an idle connection ends with QUIT")
        self.assertGreaterEqual(max(s.close_time for s in sessions) - last_data, 1.5,
                                "the last connection waited idle_timeout before QUIT")
        self.assertEqual(self.d.events("delivery.deferred"), [])

    def test_messages_per_connection_still_ends_a_connection(self):
        self.start_daemon(idle_timeout="5s", messages_per_connection=3)
        rcpts = self.trickle(9, 0.2)
        self.wait_delivered_once(rcpts)
        for s in self.dest.sessions:
            self.assertLessEqual(len(s.transactions), 3, "messages on one connection")
        self.assertGreaterEqual(len(self.dest.sessions), 3)
        self.assertLess(len(self.dest.sessions), 9, "connections were reused up to the limit")

    def test_receiver_closing_an_idle_connection(self):
        self.start_daemon(idle_timeout="10s")
        for reply in ("421 4.4.2 idle too long, closing", None):
            with self.subTest(reply=reply):
                self.dest.idle_close = 0.3
                self.dest.idle_close_reply = reply
                self.dest.sessions.clear()
                self.dest.idle_closed = 0
                rcpts = self.trickle(6, 0.8)
                self.wait_delivered_once(rcpts)
                # Mostly each message finds its connection closed by the peer (0.3 s after the
                # previous one); a loaded machine may let one go over a connection in time.
                self.assertGreaterEqual(self.dest.idle_closed, 3, "the peer closed idle connections")
                self.assertGreaterEqual(len(self.dest.sessions), 4,
                                        "a message after a close goes over a new connection")
                self.assertEqual(self.d.events("delivery.deferred"), [], "no deferral")
                self.assertEqual(self.d.events("delivery.throttle"), [], "no throttle")

    def test_stop_quits_idle_connections(self):
        # Other destinations with nothing open at the stop (idle_timeout 0) are retired around
        # the one whose connection is idle: the stop must wait for its QUIT before it ends.
        others = []
        for i in range(5):
            peer = self.net.peer("mx.other%d.test" % i)
            self.net.mx("other%d.test" % i, peer, 10)
            others.append(peer)
        rule = {"match": {"domain": ["other%d.test" % i for i in range(5)]}, "idle_timeout": "0s"}
        self.start_daemon(idle_timeout="60s", rules=[rule])
        send(self.d, SENDER, ["x%d@other%d.test" % (i, i) for i in range(5)], message(0))
        rcpts = self.trickle(2, 0.2)
        self.wait_delivered_once(rcpts)
        for peer in others:
            self.wait(lambda: peer.sessions and peer.sessions[0].close_time, 10, "other closed")
        self.assertTrue(any(s.close_time is None for s in self.dest.sessions), "one left idle")
        self.assertEqual(self.d.stop(), 0, "a clean stop")
        self.wait_all_closed(5)
        for s in self.dest.sessions:
            self.assertTrue(s.quit, "the stop ended the idle connection with QUIT")

    def test_idle_timeout_zero_closes_at_once(self):
        self.start_daemon(idle_timeout="0s")
        rcpts = self.trickle(5, 0.2)
        self.wait_delivered_once(rcpts)
        self.wait_all_closed(10)
        self.assertEqual(len(self.dest.sessions), 5, "one connection per message, as before")
        for s in self.dest.sessions:
            self.assertEqual(len(s.transactions), 1)
            self.assertTrue(s.quit)
            self.assertLess(s.close_time - s.transactions[0].data_time, 1.0, "QUIT at once")


if __name__ == "__main__":
    main()
