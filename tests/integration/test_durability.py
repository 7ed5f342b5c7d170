"""
Durability: many concurrent clients send while the daemon is killed with SIGKILL at a random
moment; after a restart on the same spool every message that was answered 250 is listed, logged as
spool.recovered and stored byte for byte, and nothing torn or half-written appears.
"""
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import ConnectionClosed, SluiceTestCase, main, queued_id, split_received

THREADS = 20
PER_THREAD = 15          # messages per thread and round: 300 in all
MESSAGES_PER_CONNECTION = 4


class Load:
    """Client threads sending unique messages; records what was acknowledged and what was tried."""

    def __init__(self, daemon, tag, seed):
        self.d = daemon
        self.tag = tag
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.acked = {}         # queue id -> body sent (after unstuffing: bodies need none)
        self.attempted = set()  # every body whose DATA was started
        self.failures = []      # unexpected replies (not connection loss)
        self.stop = threading.Event()
        self.killing = threading.Event()  # set just before SIGKILL: connection loss is expected

    def body(self, worker, n):
        size = self.rng.randrange(50, 30000)
        line = b"%s-%d-%d " % (self.tag.encode(), worker, n)
        filler = (line * (76 // len(line) + 1))[:76] + b"\r\n"
        return (b"Subject: %s %d/%d\r\nMessage-ID: <%s.%d.%d@load.test>\r\n\r\n"
                % (self.tag.encode(), worker, n, self.tag.encode(), worker, n)
                + filler * (size // len(filler) + 1))

    def worker(self, w):
        n = 0
        while n < PER_THREAD and not self.stop.is_set():
            try:
                with self.d.connect(timeout=10) as c:
                    if c.ehlo("load%d.example.org" % w).code != 250:
                        raise ConnectionClosed("EHLO refused")
                    for _ in range(MESSAGES_PER_CONNECTION):
                        if n >= PER_THREAD or self.stop.is_set():
                            break
                        body = self.body(w, n)
                        n += 1
                        # Envelope pipelined, then the data: what a real client does.
                        c.send(b"MAIL FROM:<load%d@example.org>\r\nRCPT TO:<r%d@example.net>\r\nDATA\r\n"
                               % (w, n))
                        replies = c.read_replies(3)
                        if [r.code for r in replies] != [250, 250, 354]:
                            with self.lock:
                                self.failures.append(replies)
                            return
                        with self.lock:
                            self.attempted.add(body)
                        c.send(body + b".\r\n")
                        r = c.read_reply(timeout=20)
                        qid = queued_id(r)
                        with self.lock:
                            if qid is None:
                                self.failures.append([r])
                                return
                            self.acked[qid] = body
                    c.cmd("QUIT")
            except (ConnectionClosed, ConnectionError, socket.timeout, OSError) as e:
                if not self.killing.is_set():
                    with self.lock:
                        self.failures.append("worker %d, message %d: connection lost while the "
                                             "daemon runs: %r" % (w, n, e))
                return  # killed, or failed: either way this worker is done

    def run(self, kill_after=None, timeout=60):
        """Runs the workers; with kill_after, SIGKILLs the daemon once that many messages have been
        acknowledged (plus a random few milliseconds), mid-stream."""
        threads = [threading.Thread(target=self.worker, args=(w,), daemon=True) for w in range(THREADS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout
        killed_at = None
        if kill_after is not None:
            while time.monotonic() < deadline:
                with self.lock:
                    count = len(self.acked)
                if count >= kill_after or not any(t.is_alive() for t in threads):
                    break
                time.sleep(0.002)
            time.sleep(self.rng.random() * 0.02)
            self.killing.set()
            self.d.kill9()
            killed_at = len(self.acked)
            self.stop.set()
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t for t in threads if t.is_alive()]
        self.stop.set()
        return killed_at, alive


class Durability(SluiceTestCase):
    def check_spool(self, d, acked, attempted):
        listed = {e["id"]: e for e in d.queue_list()}
        recovered = {e.get("queue_id") for e in d.events("spool.recovered")}
        missing = sorted(set(acked) - set(listed))
        self.assertEqual(missing, [], "acknowledged messages missing from queue list after kill -9")
        self.assertEqual(sorted(set(acked) - recovered), [], "acknowledged but not spool.recovered")
        self.assertEqual(set(listed), recovered, "queue list and spool.recovered disagree")

        def body_of(qid):
            return qid, d.queue_body(qid)

        with ThreadPoolExecutor(max_workers=4) as pool:
            stored = dict(pool.map(body_of, list(listed)))
        for qid, raw in stored.items():
            received, content = split_received(raw)
            self.assertIn(qid.encode(), received)
            self.assertEqual(listed[qid]["size"], len(raw), "%s: listed size" % qid)
            if qid in acked:
                self.assertEqual(content, acked[qid], "%s: stored body differs from what was sent" % qid)
            else:
                # Committed but never acknowledged (killed between sync and reply): allowed, but it
                # must be a whole message that was sent.
                self.assertIn(content, attempted, "%s: torn or unknown message in the spool" % qid)
        return listed

    def test_sigkill_under_load_loses_nothing_acknowledged(self):
        seed = random.randrange(1 << 30)
        rng = random.Random(seed)
        d = self.start_sluice(listeners=[{"name": "submission", "role": "submission"}],
                              config={"limits": {"max_connections": 200}})
        acked, attempted = {}, set()
        for round_no in range(2):
            load = Load(d, "r%d" % round_no, seed + round_no)
            kill_after = rng.randrange(30, 200)
            started = time.monotonic()
            killed_at, alive = load.run(kill_after=kill_after, timeout=40)
            self.assertEqual(alive, [], "client threads stuck after the kill")
            self.assertEqual(load.failures, [], "unexpected replies before the kill (seed %d)" % seed)
            self.assertGreater(len(load.acked), 0, "nothing acknowledged before the kill")
            acked.update(load.acked)
            attempted |= load.attempted
            d.restart()
            listed = self.check_spool(d, acked, attempted)
            self.assertGreaterEqual(len(listed), len(acked))
            print("round %d: seed %d, kill aimed at %d acks, came after %d (%.1fs), %d listed"
                  % (round_no, seed, kill_after, killed_at, time.monotonic() - started, len(listed)))

        # The restarted daemon works and does not reuse a queue id.
        load = Load(d, "after", seed)
        _, alive = load.run(timeout=60)
        self.assertEqual(alive, [])
        self.assertEqual(load.failures, [])
        self.assertEqual(len(load.acked), THREADS * PER_THREAD)
        self.assertEqual(set(load.acked) & set(acked), set(), "queue id reused after restart")
        listed = {e["id"] for e in d.queue_list()}
        self.assertTrue(set(load.acked) <= listed)


if __name__ == "__main__":
    main()
