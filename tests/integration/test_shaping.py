"""
Shaping through the real daemon, measured at real SMTP peers (mailnet.py): a rule matched by MX
pattern makes every domain hosted there share one set of limits per egress address (recipients per
connection, a recipients-per-second rate checked over every sliding window of RCPT arrival times),
while an unshaped destination in the same run is not slowed; the concurrent-connection cap;
messages per connection and recipients per message; a reload in the middle of a busy run does not
let the connections of the old and the new destination add up.
"""
import time

from harness import main
from mailnet import EGRESS, MailNetCase, rcpt_times_by_source, send

SENDER = "shaper@sender.test"
SLACK = 0.3  # timer jitter and peer-side delays on a loaded machine (a burst is far shorter)


def message(subject):
    return ("Subject: %s\r\n\r\nshaped\r\n" % subject).encode()


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
        slow, _ = self.busy_slow_peer(12, connections=2, delay=0.2)
        self.wait(lambda: len(slow.delivered()) >= 12, 60, "12 delivered")
        for source, most in slow.max_open.items():
            self.assertLessEqual(most, 2, "concurrent connections from %s" % source)
        self.assertGreaterEqual(max(slow.max_open.values()), 2,
                                "the cap is used: connections run in parallel")
        for session in slow.sessions:
            self.assertLessEqual(len(session.transactions), 1, "messages_per_connection 1")

    def busy_slow_peer(self, messages, connections, delay, **config):
        """A peer that answers after `delay` seconds, a daemon limited to `connections` to it
        with one message per connection, and `messages` one-recipient messages (r0@slow.test,
        ...) queued for it. Returns the peer and the daemon's config."""
        slow = self.net.peer("mx.slow.test", delay=delay)
        self.net.mx("slow.test", slow, 10)
        config = dict(config, rules=[{"match": {"domain": "slow.test"},
                                      "connections": connections}],
                      messages_per_connection=1, expire="60s")
        self.start_daemon(**config)
        for i in range(messages):
            send(self.d, SENDER, ["r%d@slow.test" % i], message("slow %d" % i))
        return slow, config

    def test_connections_cap_holds_across_a_reload(self):
        """SIGHUP while connections are open and mail is queued: the retired destination's open
        connections count against its successor's cap until they close, so the peer never sees
        more than 2 from one egress address, and the successor goes on as they close."""
        slow, config = self.busy_slow_peer(16, connections=2, delay=0.3)
        self.wait(lambda: max(slow.open.values(), default=0) >= 2 and len(slow.delivered()) < 12,
                  20, "2 connections open and mail still queued")
        hup = time.time()
        self.reload_daemon(**config)
        self.wait(lambda: len(slow.delivered()) >= 16, 60, "16 delivered")
        self.assertEqual(sorted(slow.delivered_rcpts()),
                         sorted("r%d@slow.test" % i for i in range(16)), "each recipient once")
        for source, most in slow.max_open.items():
            self.assertLessEqual(most, 2, "concurrent connections from %s" % source)
        self.assertTrue(any(s.close_time is not None and s.connect_time < hup < s.close_time
                            for s in slow.sessions), "connections were open at the reload")
        self.assertTrue(any(s.connect_time > hup for s in slow.sessions),
                        "the successor opened connections after the reload")

    def test_stop_right_after_a_reload(self):
        """SIGTERM while the retired destinations still have connections open and their
        successors have mail queued: the daemon stops cleanly (the harness checks the exit status
        and the sanitizers' reports)."""
        slow, config = self.busy_slow_peer(6, connections=1, delay=0.5)
        self.wait(lambda: max(slow.open.values(), default=0) >= 1, 20, "a connection open")
        self.reload_daemon(**config)
        self.assertTrue(any(s.close_time is None for s in slow.sessions), "still open at the stop")
        self.assertEqual(self.d.stop(), 0, "clean exit")

    def test_lowered_connections_at_a_reload_count_the_open_ones(self):
        """connections 4 -> 2 by a SIGHUP while 4 are open: the successor opens a connection only
        when fewer than 2 are open in all, old ones included."""
        slow, config = self.busy_slow_peer(12, connections=4, delay=0.3, egress=EGRESS[:1])
        self.wait(lambda: max(slow.open.values(), default=0) >= 4 and len(slow.delivered()) < 8,
                  20, "4 connections open and mail still queued")
        hup = time.time()
        self.reload_daemon(**dict(config, rules=[{"match": {"domain": "slow.test"},
                                                  "connections": 2}]))
        self.wait(lambda: len(slow.delivered()) >= 12, 60, "12 delivered")
        sessions = list(slow.sessions)
        later = [s for s in sessions if s.connect_time > hup]
        self.assertTrue(later, "connections after the reload")
        for s in later:
            open_then = [o for o in sessions if o.connect_time <= s.connect_time and
                         (o.close_time is None or o.close_time > s.connect_time)]
            self.assertLessEqual(len(open_then), 2, "open when a connection was made at %.3f"
                                 % s.connect_time)

    def test_rate_holds_across_a_reload(self):
        """A connection pacing its RCPTs at 2/s when a SIGHUP comes, and a new message after it:
        the successor's connection draws on the same token bucket, so together they stay at
        2/s instead of 2/s each."""
        dest = self.net.peer("mx.paced.test")
        self.net.mx("paced.test", dest, 10)
        config = dict(egress=EGRESS[:1], rules=[{"match": {"domain": "paced.test"}, "rate": "2/s"}],
                      expire="60s")
        self.start_daemon(**config)
        send(self.d, SENDER, ["a%d@paced.test" % i for i in range(8)], message("first"))
        self.wait(lambda: len(rcpt_times_by_source(dest).get(EGRESS[0][0], [])) >= 2, 20,
                  "the first message's RCPTs under way")
        self.reload_daemon(**config)
        send(self.d, SENDER, ["b%d@paced.test" % i for i in range(4)], message("second"))
        self.wait(lambda: len(dest.delivered()) >= 12, 30, "12 recipients delivered")
        first, second = sorted(dest.sessions, key=lambda s: s.connect_time)[:2]
        self.assertLess(second.connect_time, first.close_time,
                        "the second message on a connection of its own, in parallel")
        times = rcpt_times_by_source(dest)[EGRESS[0][0]]
        for first, third in zip(times, times[2:]):
            self.assertGreaterEqual(third - first, 1.0 - SLACK,
                                    "3 RCPTs within 1s across the reload: %r" % times)

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
