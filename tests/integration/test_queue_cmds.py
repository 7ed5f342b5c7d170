"""`sluice queue` against the real daemon and its control socket (<spool>/control).

Mail for example.com goes to `deliver_to`: either a real aiosmtpd sink on loopback, or a free port
nobody listens on (connection refused, so the recipient is deferred and the message stays queued
for an hour). Covers: list/show with and without a daemon (and each recipient's state),
`list --json`, retry of a deferred message and of an unknown id, delete (through the daemon, and
from the spool when none runs), suspend/resume of a destination against the sink, usage errors,
the socket's mode, a second daemon on the same spool refused, and a stale socket after kill -9.
"""
import json
import os
import stat
import subprocess
import threading
import time

import harness
from harness import SluiceTestCase, free_port, queued_id, send_message
from spool_files import message_path

from aiosmtpd.controller import Controller

BODY = b"Subject: queue test\r\n\r\nhello\r\n"


class Sink:
    """aiosmtpd on loopback that records each message's recipients."""

    def __init__(self):
        self.received = []
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port("127.0.0.1"))
        self.controller.start()
        self.port = self.controller.port

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append(list(envelope.rcpt_tos))
        return "250 OK"

    def count(self):
        with self.lock:
            return len(self.received)

    def wait_count(self, n, timeout):
        deadline = time.monotonic() + timeout
        while self.count() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.count()

    def stop(self):
        self.controller.stop()


def routed_to(port):
    """example.com delivered to 127.0.0.1:port; one retry step of an hour."""
    return {"domains": {"example.com": {"deliver_to": "[127.0.0.1]:%d" % port}},
            "shaping": {"default": {"retry": ["1h"]}}}


class QueueCommands(SluiceTestCase):
    def start(self, port=None):
        """A daemon whose example.com mail goes to port (default: a port nobody listens on)."""
        return self.start_sluice(config=routed_to(port or free_port("127.0.0.1")))

    def queue(self, d, *args):
        res = d.cli("queue", *args)
        return res.returncode, res.stdout.decode(), res.stderr.decode()

    def send(self, d, rcpts=("bob@example.com",)):
        with d.connect() as c:
            qid = queued_id(send_message(c, "alice@example.org", list(rcpts), BODY, helo="c.test"))
        self.assertIsNotNone(qid)
        return qid

    def spool_files(self, d, qid):
        return [p for p in (message_path(d.spool, "queue", qid), message_path(d.spool, "state", qid))
                if os.path.exists(p)]

    def wait_gone(self, d, qid, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.spool_files(d, qid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.spool_files(d, qid)

    # ---- no daemon ----

    def test_without_daemon(self):
        d = self.start()
        qid = self.send(d, ["bob@example.com", "carol@example.com"])
        self.assertEqual(d.stop(), 0)

        listed = {e["id"]: e for e in d.queue_list()}
        self.assertEqual(listed[qid]["rcpts"], ["bob@example.com", "carol@example.com"])
        rc, out, err = self.queue(d, "show", qid)
        self.assertEqual(rc, 0, err)
        self.assertIn("recipient: <bob@example.com>", out)
        self.assertIn("recipient: <carol@example.com>", out)
        self.assertTrue(out.encode().endswith(BODY))

        for args in (["retry", qid], ["retry", "all"], ["suspend", "example.com"],
                     ["resume", "example.com"], ["list", "--json"]):
            rc, out, err = self.queue(d, *args)
            self.assertEqual(rc, 1, args)
            self.assertIn("no daemon answers", err, args)

        # delete with no daemon running removes the files itself.
        rc, out, err = self.queue(d, "delete", qid)
        self.assertEqual(rc, 0, err)
        self.assertIn("no daemon running", out)
        self.assertEqual(self.spool_files(d, qid), [])
        self.assertEqual(d.queue_list(), [])
        rc, out, err = self.queue(d, "delete", qid)
        self.assertEqual(rc, 1)
        self.assertIn("no message " + qid, err)

    def test_show_recipient_state(self):
        d = self.start()
        qid = self.send(d)
        d.wait_event("delivery.deferred", timeout=15, queue_id=qid)
        self.assertEqual(d.stop(), 0)
        rc, out, err = self.queue(d, "show", qid)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"recipient: <bob@example\.com> deferred, 1 attempts, "
                              r"next \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, category: [a-z-]+, "
                              r"last reply: 451 ")

    def test_reads_the_queue_when_the_config_has_a_broken_key(self):
        """The queue commands need only server.spool: a DKIM key that went missing (which makes
        run and check-config refuse the file) must not hide the queue from the admin."""
        d = self.start()
        qid = self.send(d)
        self.assertEqual(d.stop(), 0)
        d.extra = dict(d.extra, dkim=[{"domain": "example.org", "selector": "s1",
                                      "key": os.path.join(d.dir, "missing.pem")}])
        d.write_config()
        check = d.cli("check-config")
        self.assertNotEqual(check.returncode, 0, "the broken key is refused by check-config")
        rc, out, err = self.queue(d, "list")
        self.assertEqual(rc, 0, err)
        self.assertIn(qid, out)

    def test_usage(self):
        d = self.start_sluice(start=False)
        d.write_config()
        for args in ([], ["frob"], ["list", "x"], ["show"], ["retry"], ["retry", "A", "B"],
                     ["suspend"], ["suspend", "a", "1h", "x"], ["list", "--body"],
                     ["show", "X", "--json"], ["resume", "bad\ndest"]):
            rc, out, err = self.queue(d, *args)
            self.assertEqual(rc, 2, args)
            self.assertIn("usage:", err, args)

    # ---- through the daemon ----

    def test_socket(self):
        d = self.start()
        path = os.path.join(d.spool, "control")
        st = os.stat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        user = harness.daemon_user()  # the daemon's user made it
        self.assertEqual(st.st_uid, user.pw_uid if user else os.geteuid())

        # A second daemon on the same spool (other ports) is refused and leaves the first alone.
        other = os.path.join(d.dir, "other.yaml")
        cfg = d.config_dict()
        cfg["listeners"] = [dict(cfg["listeners"][0], address="127.0.0.1:%d" % free_port("127.0.0.1"))]
        with open(other, "w") as f:
            f.write(harness.to_yaml(cfg) + "\n")
        res = subprocess.run([d.bin, "run", "-c", other], cwd=d.dir, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(res.returncode, 1)
        self.assertIn("another daemon", res.stderr.decode())
        rc, out, err = self.queue(d, "list", "--json")
        self.assertEqual(rc, 0, err)

        # kill -9 leaves the socket behind; the next start replaces it.
        d.kill9()
        self.assertTrue(os.path.exists(path))
        d.restart()
        rc, out, err = self.queue(d, "list", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(path), "socket removed at exit")

    def test_list_show_running(self):
        d = self.start()
        qid = self.send(d, ["bob@example.com", "carol@example.com"])
        self.assertIn(qid, [e["id"] for e in d.queue_list()])
        rc, out, err = self.queue(d, "list", "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        msgs = {m["id"]: m for m in doc["messages"]}
        self.assertIn(qid, msgs)
        self.assertEqual(msgs[qid]["from"], "alice@example.org")
        self.assertEqual([r["rcpt"] for r in msgs[qid]["rcpts"]],
                         ["bob@example.com", "carol@example.com"])
        for r in msgs[qid]["rcpts"]:
            self.assertIn(r["status"], ("pending", "deferred"))
        self.assertIsInstance(doc["destinations"], list)
        rc, out, err = self.queue(d, "show", qid)
        self.assertEqual(rc, 0, err)
        self.assertIn("recipient: <carol@example.com>", out)

    def test_retry_unknown_and_bad(self):
        d = self.start()
        rc, out, err = self.queue(d, "retry", "ZZZZZZZZ")
        self.assertEqual(rc, 1)
        self.assertIn("no message ZZZZZZZZ", err)
        rc, out, err = self.queue(d, "retry", "../../etc")
        self.assertEqual(rc, 1)
        self.assertIn("not a queue id", err)
        rc, out, err = self.queue(d, "retry", "all")
        self.assertEqual(rc, 0, err)

    def test_retry_deferred(self):
        d = self.start()
        qid = self.send(d)
        d.wait_event("delivery.deferred", timeout=15, queue_id=qid)
        rc, out, err = self.queue(d, "retry", qid)
        self.assertEqual(rc, 0, err)
        self.assertIn(qid, out)
        # Without the retry the next attempt is an hour away.
        d.wait_event("delivery.deferred", timeout=15, count=2, queue_id=qid)
        rc, out, err = self.queue(d, "retry", "all")
        self.assertEqual(rc, 0, err)
        self.assertIn("1 messages", out)
        d.wait_event("delivery.deferred", timeout=15, count=3, queue_id=qid)
        rc, out, err = self.queue(d, "suspend", "example.com", "99d")
        self.assertEqual(rc, 1)
        self.assertIn("bad duration", err)

    def test_delete_queued(self):
        d = self.start()
        keep = self.send(d)
        qid = self.send(d)
        rc, out, err = self.queue(d, "delete", qid)
        self.assertEqual(rc, 0, err)
        self.assertIn(qid + " deleted", out)
        self.assertNotIn("no daemon", out)
        self.assertEqual(self.wait_gone(d, qid), [], "spool files left")
        self.assertEqual([e["id"] for e in d.queue_list()], [keep])
        doc = json.loads(self.queue(d, "list", "--json")[1])
        self.assertEqual([m["id"] for m in doc["messages"]], [keep])
        rc, out, err = self.queue(d, "delete", qid)
        self.assertEqual(rc, 1)
        self.assertIn("no message", err)

    def test_suspend_resume(self):
        sink = Sink()
        self.addCleanup(sink.stop)
        d = self.start(sink.port)
        self.send(d)
        self.assertEqual(sink.wait_count(1, 15), 1, "first message not delivered")

        rc, out, err = self.queue(d, "resume", "nosuch.example")
        self.assertEqual(rc, 1)
        self.assertIn("no destination", err)
        rc, out, err = self.queue(d, "suspend", "example.com")
        self.assertEqual(rc, 0, err)
        doc = json.loads(self.queue(d, "list", "--json")[1])
        dest = [x for x in doc["destinations"] if x["destination"] == "example.com"]
        self.assertEqual(len(dest), 1, doc)
        self.assertEqual(dest[0].get("suspended"), "admin")

        qid = self.send(d)
        time.sleep(1.5)
        self.assertEqual(sink.count(), 1, "delivered while suspended")
        self.assertIn(qid, [e["id"] for e in d.queue_list()])

        rc, out, err = self.queue(d, "resume", "example.com")
        self.assertEqual(rc, 0, err)
        self.assertEqual(sink.wait_count(2, 15), 2, "not delivered after resume")
        self.assertEqual(self.wait_gone(d, qid), [], "delivered message left in the spool")

    def test_suspend_before_any_mail(self):
        """A destination no mail has gone to yet can be suspended: its first mail waits, and
        resume sends it. A held suspension lifted before any mail leaves nothing behind."""
        sink = Sink()
        self.addCleanup(sink.stop)
        d = self.start(sink.port)
        rc, out, err = self.queue(d, "suspend", "unseen.example")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.queue(d, "resume", "unseen.example")[0], 0)
        self.assertEqual(self.queue(d, "resume", "unseen.example")[0], 1, "resumed twice")
        rc, out, err = self.queue(d, "suspend", "example.com")
        self.assertEqual(rc, 0, err)
        self.assertIn("when mail for it appears", out)
        qid = self.send(d)
        d.wait_event("delivery.suspend", destination="example.com", timeout=10, count=2)
        time.sleep(1.5)
        self.assertEqual(sink.count(), 0, "delivered while suspended")
        self.assertIn(qid, [e["id"] for e in d.queue_list()])
        rc, out, err = self.queue(d, "resume", "example.com")
        self.assertEqual(rc, 0, err)
        self.assertEqual(sink.wait_count(1, 15), 1, "not delivered after resume")
        self.assertEqual(self.wait_gone(d, qid), [], "delivered message left in the spool")


if __name__ == "__main__":
    harness.main()
