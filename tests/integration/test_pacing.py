"""
Rates as a receiver counts them, over rolling windows behind a jittery path (see mailnet.py for the
test world). A receiver that allows 6 RCPTs per rolling second per client address, like Comcast's,
and refuses the 7th, behind a path whose delay varies by up to 20 ms: hundreds of recipients to it
from two egress addresses paced at rate 6/s arrive with no rolling second over 6, however the window
is placed, and no refusal, while the drain stays close to the ideal of 6 per second per address.
connection_rate caps the connections each egress address opens per period the same way.
"""
from harness import main
from mailnet import (EGRESS, MailNetCase, connect_times_by_source, crowded_windows,
                     rcpt_times_by_source, send)

SENDER = "pacer@sender.test"
PER_SECOND = 6
RECIPIENTS = 240  # 120 per egress address: 20 s at exactly 6/s each
JITTER = 0.02  # seconds of varying network delay, well inside the default 5 % margin


class Pacing(MailNetCase):
    def setUp(self):
        self.make_net()

    def test_no_rolling_second_over_the_rate_at_the_receiver(self):
        peer = self.net.peer("mx.strict.test", rcpt_rate=(PER_SECOND, 1.0), jitter=JITTER)
        self.net.mx("strict.test", peer, 10)
        self.start_daemon(rules=[{"match": {"domain": "strict.test"}, "rate": "6/s"}],
                          expire="300s")
        rcpts = ["r%d@strict.test" % i for i in range(RECIPIENTS)]
        for i in range(0, RECIPIENTS, 20):
            send(self.d, SENDER, rcpts[i:i + 20],
                 ("Subject: paced %d\r\n\r\nbody\r\n" % i).encode())
        self.wait(lambda: len(peer.delivered()) >= RECIPIENTS, 120, "every recipient delivered",
                  step=0.5)
        self.assertEqual(sorted(peer.delivered_rcpts()), sorted(rcpts), "each recipient once")

        windows = rcpt_times_by_source(peer)
        self.assertEqual(set(windows), {a for a, _ in EGRESS}, "both egress addresses used")
        for source, times in windows.items():
            crowded = crowded_windows(times, PER_SECOND, 1.0)
            self.assertEqual(len(crowded), 0, "rolling seconds with 7 RCPTs from %s, of %d: %r"
                             % (source, len(times), crowded[:3]))
        self.assertEqual(peer.rate_refused, 0, "RCPTs the receiver refused for the rate")

        every = sorted(t for times in windows.values() for t in times)
        ideal = RECIPIENTS / (2.0 * PER_SECOND)
        self.assertLess(every[-1] - every[0], 1.2 * ideal, "drain time against the ideal %.0fs"
                        % ideal)

    def test_connection_rate(self):
        peer = self.net.peer("mx.conns.test")
        self.net.mx("conns.test", peer, 10)
        self.start_daemon(rules=[{"match": {"domain": "conns.test"}, "connection_rate": "2/s",
                                  "messages_per_connection": 1}],
                          egress=EGRESS[:1], expire="60s")
        for i in range(10):
            send(self.d, SENDER, ["c%d@conns.test" % i])
        self.wait(lambda: len(peer.delivered()) >= 10, 40, "10 delivered")
        times = connect_times_by_source(peer)[EGRESS[0][0]]
        self.assertGreaterEqual(len(times), 10, "one connection per message")
        self.assertEqual(crowded_windows(times, 2, 1.0), [],
                         "rolling seconds with 3 connections: %r" % times)
        # Paced, not stalled: 10 connections at 2 per 1.05 s take about 4.7 s after the first two.
        self.assertLess(times[-1] - times[0], 1.2 * 4 * 1.05, "connections spread: %r" % times)


if __name__ == "__main__":
    main()
