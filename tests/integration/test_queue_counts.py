"""
The queue's counts in `sluice status --json` and on GET /metrics (sluice_queue_messages,
sluice_queue_recipients{state}, the oldest message's age) are kept as the queue changes, not
counted by a walk: after a mix of accepted, delivered, deferred, refused (550, with a DSN) and
admin-bounced recipients they match what `queue list --json` lists, recipient by recipient (the
recipients and the oldest arrival of the messages in memory; a message deferred beyond the active
window waits on disk and counts as on_disk).
"""


def counts(msgs):
    """What the status's queue section should say of a listing."""
    states = [r["status"] for m in msgs if m["in_memory"] for r in m["rcpts"]]
    return {"messages": len(msgs), "on_disk": len([m for m in msgs if not m["in_memory"]]),
            "pending": states.count("pending"), "deferred": states.count("deferred"),
            "bouncing": states.count("failed")}
import json
import time

from harness import main
from mailnet import MailNetCase, send
from test_admin_load import control
from test_http import families, http_section, sample

SENDER = "ops@sender.test"


class QueueCounts(MailNetCase):
    def listed(self):
        ok, page = control(self.d.spool, "list 1000")
        self.assertTrue(ok, page)
        page = json.loads(page)
        self.assertIsNone(page["next"])
        return page["messages"]

    def status(self):
        res = self.d.cli("status", "--json")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        return json.loads(res.stdout)["queue"]

    def test_counts_match_the_listing(self):
        net = self.make_net()
        peer = net.peer("mx.dest.test", rcpt=[("gone*@*", "550 5.1.1 no such user"),
                                              ("later*@*", "451 4.7.1 try later")])
        for domain in ("dest.test", "held.test", "sender.test"):
            net.mx(domain, peer, 10)
        net.start()
        cfg = net.sluice_config(retry=["1h"], expire="1h")
        d = self.d = self.start_sluice(start=False, config=cfg)
        d.extra["http"] = http_section(d)
        d.start()
        for domain in ("held.test", "sender.test"):  # their mail waits, pending
            res = d.cli("queue", "suspend", domain)
            self.assertEqual(res.returncode, 0, res.stderr.decode())

        send(d, SENDER, ["a1@dest.test", "later1@dest.test", "x1@held.test"])
        send(d, SENDER, ["gone1@dest.test", "later2@dest.test"])
        send(d, SENDER, ["x2@held.test", "x3@held.test"])
        send(d, SENDER, ["a2@dest.test", "a3@dest.test"])
        d.wait_event("delivery.delivered", timeout=20, count=3)
        d.wait_event("delivery.deferred", timeout=20, count=2)
        d.wait_event("delivery.failed", timeout=20, count=1)
        third = [m["id"] for m in self.listed()
                 if sorted(r["rcpt"] for r in m["rcpts"]) == ["x2@held.test", "x3@held.test"]]
        self.assertEqual(len(third), 1)
        res = d.cli("queue", "bounce", third[0])
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        d.wait_event("delivery.bounce", timeout=20, count=2)

        # Settled: the first message (one deferred, one pending), the second (one deferred, one
        # bounced), and the two DSNs waiting at sender.test; the third and fourth are gone.
        everywhere = {"messages": 4, "pending": 3, "deferred": 2, "bouncing": 0}
        deadline = time.monotonic() + 20
        while True:
            msgs = self.listed()
            from_listing = counts(msgs)
            q = self.status()
            counted = {k: q[k] for k in from_listing}
            states = [r["status"] for m in msgs for r in m["rcpts"]]
            listed = {"messages": len(msgs), "pending": states.count("pending"),
                      "deferred": states.count("deferred"), "bouncing": states.count("failed")}
            if (counted == from_listing and listed == everywhere) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(listed, everywhere, msgs)
        self.assertEqual(counted, from_listing)
        oldest = min(m["received_at"] for m in msgs if m["in_memory"])
        self.assertLessEqual(abs(q["oldest_age_s"] - (time.time() - oldest)), 2)

        fams = families(d)
        self.assertEqual(sample(fams, "sluice_queue_messages", "sluice_queue_messages"), 4)
        for state in ("pending", "deferred", "bouncing"):
            self.assertEqual(sample(fams, "sluice_queue_recipients", "sluice_queue_recipients",
                                    state=state), from_listing[state], state)
        age = sample(fams, "sluice_queue_oldest_message_age_seconds",
                     "sluice_queue_oldest_message_age_seconds")
        self.assertLessEqual(abs(age - (time.time() - oldest)), 2)

        # A bounce by destination of a message whose other recipient waits at another suspended
        # destination: the failed one waits for its DSN until that attempt is back ("bouncing"),
        # and is no admin bounce work in flight meanwhile (it may wait for days).
        send(d, SENDER, ["y1@held.test", "y2@sender.test"])
        time.sleep(1)  # routed, its jobs queued at the suspended destinations
        res = d.cli("queue", "bounce", "--destination", "held.test")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        d.wait_event("queue.bounce_done", timeout=20, destination="held.test")
        deadline = time.monotonic() + 20
        while True:
            ok, page = control(d.spool, "list 1000")
            page = json.loads(page)
            from_listing = counts(page["messages"])
            q = self.status()
            counted = {k: q[k] for k in from_listing}
            if (counted == from_listing and from_listing["bouncing"] == 1
                    and page["active"]["bounce_work"] == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(from_listing["bouncing"], 1, page)
        self.assertEqual(counted, from_listing)
        self.assertEqual(page["active"]["bounce_work"], 0)


if __name__ == "__main__":
    main()
