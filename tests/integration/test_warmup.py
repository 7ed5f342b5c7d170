"""
IP warm-up through the real daemon, counted at a real SMTP peer (mailnet.py) by the source address
of each connection: with two egress addresses in the pool, one of them warming with a day-1
allowance of K, the peer sees at most K messages from the warming address and the rest from the
warm one (overflow: next); with overflow: wait, mail beyond the allowance stays queued, until its
message expires (then it bounces like other expired mail); a restart
keeps the day's count (no new allowance); a start date in the past gives that day's allowance.
`sluice queue list --json` shows each address's warm-up day, allowance and used count.
"""
import datetime
import json
import time

from harness import main
from mailnet import EGRESS, MailNetCase, send

SENDER = "warm@sender.test"
WARMING, WARM = EGRESS[0][0], EGRESS[1][0]
LONG = "1h"  # an expiry no waiting test reaches


def utc_date(days_ago=0):
    day = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=days_ago)
    return day.isoformat()


class Warmup(MailNetCase):
    def setUp(self):
        self.make_net()
        self.dest = self.net.peer("mx.dest.test")
        self.net.mx("dest.test", self.dest, 10)

    def start_warming(self, per_day, overflow, egress=EGRESS, days_ago=0, **shaping):
        """A daemon whose first egress address warms up with schedule per_day for dest.test."""
        if self.net.port is None:
            self.net.start()
        cfg = self.net.sluice_config(egress=egress, **shaping)
        first = cfg["egress"]["pools"]["default"][0]
        first["warmup"] = {"start": utc_date(days_ago), "overflow": overflow,
                           "schedule": [{"provider": "dest.test", "per_day": per_day}]}
        self.d = self.start_sluice(config=cfg)
        return self.d

    def submit(self, count, tag="m"):
        rcpts = ["%s%d@dest.test" % (tag, i) for i in range(count)]
        for i, rcpt in enumerate(rcpts):
            send(self.d, SENDER, [rcpt], b"Subject: warm-up %d\r\n\r\nhello\r\n" % i)
        return rcpts

    def delivered_from(self, address):
        return [rcpt for s in self.dest.sessions if s.client[0] == address
                for tx in s.transactions for rcpt in tx.accepted()]

    def destination(self):
        """dest.test's entry in `sluice queue list --json` destinations, or {}."""
        res = self.d.cli("queue", "list", "--json")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        for dest in json.loads(res.stdout)["destinations"]:
            if dest["destination"] == "dest.test":
                return dest
        return {}

    def warmup_state(self, address):
        """The warm-up object of `address` at dest.test, or None."""
        for egress in self.destination().get("egress", []):
            if egress["address"] == address:
                return egress.get("warmup")
        return None

    def wait_settled(self, n):
        """Until every message not delivered waits in dest.test's queue (none is on its way)."""
        self.wait(lambda: self.destination().get("queued_jobs", -1) ==
                  n - len(self.dest.delivered()), 10, "the rest queued at dest.test", step=0.2)

    def assert_nothing_more(self, delivered, seconds):
        """Over `seconds` (the time a held message would need to go out at the test's rate), the
        peer gets nothing more: what is left stays queued."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.assertEqual(len(self.dest.delivered()), delivered, "mail beyond the allowance")
            time.sleep(0.1)

    def test_overflow_next_goes_from_the_warm_address(self):
        k, n = 3, 14
        self.start_warming([k, 10 * k], "next", message_rate="10/s")
        rcpts = self.submit(n)
        self.wait(lambda: len(self.dest.delivered()) >= n, 30, "all delivered")
        self.wait_spool_empty(10)
        self.assertEqual(sorted(self.dest.delivered_rcpts()), sorted(rcpts))
        warming, warm = self.delivered_from(WARMING), self.delivered_from(WARM)
        self.assertLessEqual(len(warming), k, "at most the day-1 allowance from %s" % WARMING)
        self.assertEqual(len(warming) + len(warm), n, "the rest from the warm address")
        full = self.d.wait_event("delivery.warmup_full", egress=WARMING)[0]
        self.assertEqual((full["destination"], full["day"], full["allowance"]), ("dest.test", 1, k))
        self.d.wait_event("delivery.warmup_overflow", egress=WARMING)
        state = self.warmup_state(WARMING)
        self.assertEqual(state, {"day": 1, "allowance": k, "used": k, "overflow": "next",
                                 "loaded": True})
        self.assertIsNone(self.warmup_state(WARM), "a warm address has no warm-up")
        res = self.d.cli("queue", "destinations", "dest.test")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("  egress %s: " % WARMING, res.stdout.decode())
        self.assertIn("    warm-up day 1: %d of %d messages sent today; beyond that, other "
                      "addresses send\n" % (k, k), res.stdout.decode())
        res = self.d.cli("queue", "destinations", "nowhere.test")
        self.assertEqual(res.returncode, 1)
        self.assertIn("no destination nowhere.test", res.stderr.decode())

    def test_overflow_wait_keeps_the_excess_queued(self):
        k, n = 2, 12
        self.start_warming([k], "wait", message_rate="4/s", expire=LONG)
        self.submit(n)
        self.d.wait_event("delivery.warmup_wait", timeout=20, egress=WARMING)
        # Mail handed to a connection before the allowance was used still goes out.
        self.wait_settled(n)
        delivered = len(self.dest.delivered())
        self.assert_nothing_more(delivered, 3.0)
        self.assertLess(delivered, n, "the excess waits for the next day")
        self.assertLessEqual(len(self.delivered_from(WARMING)), k)
        self.assertEqual(len(self.d.queue_list()), n - delivered, "the excess stays queued")
        self.assertEqual(self.warmup_state(WARMING)["used"], k)

    def test_overflow_wait_ends_at_expiry(self):
        """Mail waiting for tomorrow's allowance is still bound by its message's expiry: once it
        passes, the recipient fails (delivery.expired, naming the warm-up) and the sender gets a
        DSN, without waiting for the next day."""
        home = self.net.peer("mx.sender.test")
        self.net.mx("sender.test", home, 10)
        self.start_warming([1], "wait", egress=EGRESS[:1], expire="3s")
        self.submit(2)
        self.wait(lambda: len(self.dest.delivered()) == 1, 20, "the allowance delivered")
        self.d.wait_event("delivery.warmup_wait", egress=WARMING)
        expired = self.d.wait_event("delivery.expired", timeout=20)
        self.assertEqual(len(expired), 1)
        self.assertEqual((expired[0]["stage"], expired[0]["enhanced"]), ("warm-up", "4.4.7"))
        self.assertNotIn(expired[0]["rcpt"], self.dest.delivered_rcpts())
        self.wait(lambda: [tx for tx in home.transactions() if tx.accepted()], 20,
                  "the DSN at the sender's MX")
        dsn = [tx for tx in home.transactions() if tx.accepted()][0]
        self.assertIn(expired[0]["rcpt"].encode(), dsn.data)
        self.wait_spool_empty(20)
        self.assertEqual(len(self.dest.delivered()), 1, "nothing beyond the allowance")

    def test_restart_keeps_the_count(self):
        k, n = 3, 5
        self.start_warming([k], "wait", egress=EGRESS[:1], expire=LONG)
        self.submit(n)
        self.wait(lambda: len(self.dest.delivered()) >= k, 20, "the allowance delivered")
        self.d.wait_event("delivery.warmup_wait", egress=WARMING)
        self.assertEqual(self.d.stop(), 0)
        self.d.restart()
        self.wait(lambda: (self.warmup_state(WARMING) or {}).get("loaded"), 10,
                  "counts read back")
        self.assertEqual(self.warmup_state(WARMING)["used"], k, "the count survived the restart")
        self.wait_settled(n)
        self.assert_nothing_more(k, 2.0)
        self.assertEqual(len(self.d.queue_list()), n - k)
        self.d.wait_event("delivery.warmup_wait", egress=WARMING)

    def test_start_in_the_past_gives_that_days_allowance(self):
        self.start_warming([1, 2, 4, 100], "wait", egress=EGRESS[:1], days_ago=2, expire=LONG)
        self.submit(6)
        self.wait(lambda: len(self.dest.delivered()) >= 4, 20, "day 3's allowance delivered")
        self.d.wait_event("delivery.warmup_wait", egress=WARMING)
        self.wait_settled(6)
        self.assert_nothing_more(4, 1.5)
        state = self.warmup_state(WARMING)
        self.assertEqual((state["day"], state["allowance"], state["used"]), (3, 4, 4))


if __name__ == "__main__":
    main()
