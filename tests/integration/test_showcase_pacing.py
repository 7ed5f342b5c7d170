"""
The pacing showcase, at scale, as a Comcast-style receiver sees it (see mailnet.py for the test
world): one receiver host is the MX of two domains, and it enforces 6 recipients per rolling second
per client address (a 7th gets a 4xx "rate limit exceeded") and 6 recipients per connection (a 7th
gets 421 and the connection is closed), behind a path whose delay varies. Sluice has two egress
addresses and one shaping rule matched by the MX host (the two domains roll up into one
destination) with rate 6/s and 6 recipients per connection. Over 1,000 recipients, submitted in
messages that mix both domains, arrive with no rolling second over 6 from either address, no
connection over 6, each recipient exactly once, and a drain time within 20 % of the ideal.
"""
from harness import main, sluice_bin
from mailnet import EGRESS, MailNetCase, crowded_windows, rcpt_times_by_source, send

SENDER = "showcase@sender.test"
PER_SECOND = 6
PER_CONNECTION = 6
DOMAINS = ("cable-east.test", "cable-west.test")
MESSAGES = 204
PER_MESSAGE = 5  # 1,020 recipients, 510 per domain
# Seconds of varying network delay: with the receiver's own lag on a busy machine, inside the
# default 5 % margin (52 ms at 6/s).
JITTER = 0.01
MARGIN = 0.05  # shaping.default.rate_margin_percent, left at its default
DRAIN_TIMEOUT = 240  # seconds: far above the ideal below, so a slow drain fails, not hangs


def sanitized_build():
    """Whether the binary under test was built with AddressSanitizer: timings mean little there."""
    with open(sluice_bin(), "rb") as f:
        return b"__asan_init" in f.read()


def rcpts_around(peer, source, crowded):
    """The RCPTs from source in the first crowded windows, for a failure message."""
    every = sorted((t, s.client, a) for s in list(peer.sessions) for tx in s.transactions
                   for a, t, _ in tx.rcpts if s.client[0] == source)
    return "\n".join("  %.3f %s:%d %s" % (t, client[0], client[1], a)
                      for first, last in crowded[:2] for t, client, a in every
                      if first <= t <= last)


class ShowcasePacing(MailNetCase):
    def setUp(self):
        self.make_net()

    def test_a_thousand_recipients_at_a_strict_receiver(self):
        peer = self.net.peer("mx.cable.test", rcpt_rate=(PER_SECOND, 1.0),
                             close_after_rcpts=PER_CONNECTION, jitter=JITTER)
        for domain in DOMAINS:
            self.net.mx(domain, peer, 10)
        rule = {"match": {"mx": "*.cable.test"}, "rate": "%d/s" % PER_SECOND,
                "recipients_per_connection": PER_CONNECTION}
        self.start_daemon(rules=[rule], expire="600s")

        rcpts = []
        for i in range(MESSAGES):
            batch = ["m%d.r%d@%s" % (i, j, DOMAINS[(i + j) % 2]) for j in range(PER_MESSAGE)]
            send(self.d, SENDER, batch, ("Subject: showcase %d\r\n\r\nbody\r\n" % i).encode())
            rcpts += batch
        self.wait(lambda: len(peer.delivered()) >= len(rcpts), DRAIN_TIMEOUT,
                  "%d recipients delivered" % len(rcpts), step=0.5)
        self.wait_spool_empty(30)

        delivered = peer.delivered_rcpts()
        self.assertEqual(len(delivered), len(rcpts), "recipients delivered, duplicates included")
        self.assertEqual(set(delivered), set(rcpts), "every recipient delivered, nothing lost")

        for session in list(peer.sessions):
            n = sum(len(tx.rcpts) for tx in session.transactions)
            self.assertLessEqual(n, PER_CONNECTION, "RCPTs on one connection from %s" % (
                session.client,))
        windows = rcpt_times_by_source(peer)
        self.assertEqual(set(windows), {a for a, _ in EGRESS}, "both egress addresses used")
        for source, times in windows.items():
            crowded = crowded_windows(times, PER_SECOND, 1.0)
            self.assertEqual(crowded, [], "rolling seconds with %d RCPTs from %s, of %d:\n%s"
                             % (PER_SECOND + 1, source, len(times), rcpts_around(peer, source, crowded)))
        self.assertEqual(peer.rate_refused, 0, "RCPTs the receiver refused for the rate")
        self.assertEqual(self.d.events("delivery.deferred"), [], "no recipient deferred")

        every = sorted(t for times in windows.values() for t in times)
        drain = every[-1] - every[0]
        # The plain ideal, len / (6/s x 2 addresses) = 85 s, is out of reach by design: the
        # margin keeps 6 RCPTs per 1.05 s at each address, so the ideal is computed with it.
        ideal = len(rcpts) / (len(EGRESS) * PER_SECOND / (1.0 + MARGIN))
        print("showcase pacing: %d recipients drained in %.1f s, ideal %.1f s, ratio %.3f"
              % (len(rcpts), drain, ideal, drain / ideal))
        if sanitized_build():
            return  # the limits above hold under ASan too; its speed is not Sluice's
        self.assertLess(drain, 1.2 * ideal, "drain time against the ideal %.1f s" % ideal)


if __name__ == "__main__":
    main()
