"""
Shaping through the real daemon, measured at real SMTP peers (mailnet.py): a rule matched by MX
pattern makes every domain hosted there share one set of limits per egress address (recipients per
connection, a recipients-per-second rate checked over every sliding window of RCPT arrival times),
while an unshaped destination in the same run is not slowed; the concurrent-connection cap;
messages per connection and recipients per message.
"""
from harness import main
from mailnet import EGRESS, MailNetCase, send

SENDER = "shaper@sender.test"
SLACK = 0.3  # timer jitter and peer-side delays on a loaded machine (a burst is far shorter)


def message(subject):
    return ("Subject: %s\r\n\r\nshaped\r\n" % subject).encode()


def rcpt_times_by_source(*peers):
    """{source address: sorted RCPT arrival times} over all sessions of the peers."""
    times = {}
    for peer in peers:
        for session in list(peer.sessions):
            for tx in session.transactions:
                times.setdefault(session.client[0], []).extend(t for _, t, _ in tx.rcpts)
    return {src: sorted(ts) for src, ts in times.items()}


class Shaping(MailNetCase):
    def setUp(self):
        self.make_net()

    def test_mx_rule_rate_and_recipients_per_connection(self):
        net = self.net
        isp1, isp2 = net.peer("mx1.bigisp.test"), net.peer("mx2.bigisp.test")
        other = net.peer("mx.other.test")
        net.mx("a.test", isp1, 10)
        net.mx("b.test", isp2, 10)  # another host, same provider: shares the limits
        net.mx("other.test", other, 10)
        rule = {"match": {"mx": "*.bigisp.test"}, "recipients_per_connection": 6, "rate": "6/s"}
        self.start_daemon(rules=[rule])
        isp_rcpts = ["u%d@%s" % (i, d) for d in ("a.test", "b.test") for i in range(18)]
        other_rcpts = ["o%d@other.test" % i for i in range(36)]
        for i in range(0, 36, 6):
            send(self.d, SENDER, isp_rcpts[i:i + 6], message("isp %d" % i))
        for i in range(0, 36, 9):
            send(self.d, SENDER, other_rcpts[i:i + 9], message("other %d" % i))

        self.wait(lambda: len(other.delivered()) >= 36, 30, "36 recipients at other.test")
        other_done = max(tx.data_time for tx in other.transactions() if tx.accepted())
        self.wait(lambda: len(isp1.delivered()) + len(isp2.delivered()) >= 36, 40,
                  "36 recipients at bigisp")
        isp_txs = [tx for p in (isp1, isp2) for tx in p.transactions() if tx.accepted()]
        isp_done = max(tx.data_time for tx in isp_txs)
        self.assertEqual(sorted(isp1.delivered_rcpts() + isp2.delivered_rcpts()),
                         sorted(isp_rcpts), "each bigisp recipient once")
        self.assertLess(other_done, isp_done, "the unshaped destination is not held back")

        for peer in (isp1, isp2):
            for session in peer.sessions:
                n = sum(len(tx.rcpts) for tx in session.transactions)
                self.assertLessEqual(n, 6, "recipients on one connection from %s" % (
                    session.client,))
        windows = rcpt_times_by_source(isp1, isp2)
        self.assertEqual(set(windows), {a for a, _ in EGRESS}, "both egress addresses used")
        for source, times in windows.items():
            for first, seventh in zip(times, times[6:]):
                self.assertGreaterEqual(seventh - first, 1.0 - SLACK,
                                        "7 RCPTs within 1s from %s: %r" % (source, times))

    def test_connections_cap(self):
        slow = self.net.peer("mx.slow.test", delay=0.2)
        self.net.mx("slow.test", slow, 10)
        rule = {"match": {"domain": "slow.test"}, "connections": 2}
        self.start_daemon(rules=[rule], messages_per_connection=1)
        for i in range(12):
            send(self.d, SENDER, ["c%d@slow.test" % i], message("conn %d" % i))
        self.wait(lambda: len(slow.delivered()) >= 12, 60, "12 delivered")
        for source, most in slow.max_open.items():
            self.assertLessEqual(most, 2, "concurrent connections from %s" % source)
        self.assertGreaterEqual(max(slow.max_open.values()), 2,
                                "the cap is used: connections run in parallel")
        for session in slow.sessions:
            self.assertLessEqual(len(session.transactions), 1, "messages_per_connection 1")

    def test_messages_per_connection_and_recipients_per_message(self):
        dest = self.net.peer("mx.dest.test")
        self.net.mx("dest.test", dest, 10)
        self.start_daemon(messages_per_connection=2, recipients_per_message=3)
        for i in range(6):
            send(self.d, SENDER, ["m%d@dest.test" % i], message("mpc %d" % i))
        wide = ["w%d@dest.test" % i for i in range(7)]
        send(self.d, SENDER, wide, message("wide"))
        self.wait(lambda: len(dest.delivered()) >= 13, 30, "13 recipients delivered")
        for session in dest.sessions:
            self.assertLessEqual(len(session.transactions), 2, "transactions on one connection")
            for tx in session.transactions:
                self.assertLessEqual(len(tx.rcpts), 3, "recipients in one transaction")
        self.assertEqual(sorted(r for r in dest.delivered_rcpts() if r.startswith("w")),
                         sorted(wide), "the wide message split, each recipient once")


if __name__ == "__main__":
    main()
