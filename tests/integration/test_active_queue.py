"""
The scheduler's active window (delivery.active_limit): 300 one-recipient messages to a receiver that
defers each recipient's first try are queued with a window of 50. The daemon never holds more than
50 in memory (its own high-water mark in `queue list --json`); deferred ones leave memory for the
disk index; a kill -9 and a restart list the spool without reading a message back (every one is
due beyond the window); `queue retry all` then drains the queue through the window of 50 and every
recipient is delivered exactly once.
"""
import json
import smtplib

from harness import main
from mailnet import MailNetCase

SENDER = "bulk@sender.test"
MESSAGES = 300
LIMIT = 50


class ActiveQueue(MailNetCase):
    def active(self):
        res = self.d.cli("queue", "list", "--json")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        doc = json.loads(res.stdout.decode())
        self.assertEqual(len(doc["messages"]), doc["active"]["in_memory"] + doc["active"]["loading"]
                         + doc["active"]["on_disk"], doc["active"])
        return doc

    def inject(self, rcpts):
        host, port = self.d.addr()
        with smtplib.SMTP(host, port, timeout=15) as client:
            client.ehlo("submit.test")
            for i, rcpt in enumerate(rcpts):
                refused = client.sendmail(SENDER, [rcpt], b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
                self.assertEqual(refused, {})

    def test_window_holds_across_a_restart_and_the_queue_drains_once(self):
        net = self.make_net()
        peer = net.peer("mx.held.test", defer_first=1)
        net.mx("held.test", peer, 10)
        net.start()
        cfg = net.sluice_config(retry=["1h"], expire="5d")
        cfg["delivery"].update({"active_limit": LIMIT, "active_window": "30s"})
        self.d = self.start_sluice(config=cfg)
        rcpts = ["r%03d@held.test" % i for i in range(MESSAGES)]
        self.inject(rcpts)

        # Each first try is deferred for an hour, beyond the window: the message leaves memory.
        self.wait(lambda: self.active()["active"]["on_disk"] == MESSAGES, 60,
                  "every message deferred and moved to the disk index")
        first = self.active()["active"]
        self.assertLessEqual(first["in_memory_max"], LIMIT, first)
        self.assertEqual(first["in_memory"], 0, first)
        self.assertGreaterEqual(first["evicted"], MESSAGES, first)
        self.assertEqual(len(peer.attempts), MESSAGES)
        self.assertEqual(peer.delivered(), [])
        listed = {m["id"]: m for m in self.active()["messages"]}
        some = next(iter(listed.values()))
        self.assertFalse(some["in_memory"])
        self.assertEqual(some["from"], SENDER, "read back from disk for the listing")

        self.d.kill9()
        self.d.restart()
        self.assertEqual(len(self.d.events("spool.recovered")), MESSAGES)
        after = self.active()["active"]
        self.assertEqual((after["on_disk"], after["in_memory"], after["read_back"]),
                         (MESSAGES, 0, 0), "no message read at the restart: all due later")

        res = self.d.cli("queue", "retry", "all")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.wait(lambda: set(peer.delivered_rcpts()) >= set(rcpts), 60, "all delivered")
        self.wait_spool_empty(20)
        done = self.active()["active"]
        self.assertLessEqual(done["in_memory_max"], LIMIT, done)
        self.assertEqual(done["read_back"], MESSAGES, done)
        delivered = peer.delivered_rcpts()
        self.assertEqual(sorted(delivered), sorted(rcpts), "each recipient exactly once")


if __name__ == "__main__":
    main()
