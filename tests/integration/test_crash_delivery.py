"""
kill -9 during heavy delivery, several times: client threads submit hundreds of one-recipient
messages while the daemon relays them to a real SMTP peer (mailnet.py), and the daemon is killed at
a random point of each round, with submissions, journal batches and deliveries all in flight.
After the restarts every message answered 250 is delivered at least once with the body sent, and
a recipient is delivered twice only when its first delivery came just before a kill (its state
record was not yet durable), never one recorded long before.
"""
import random
import socket
import sys
import threading
import time

from harness import ConnectionClosed, main, queued_id
from mailnet import MailNetCase

SENDER = "load@sender.test"
ROUNDS = 3
THREADS = 12
PER_THREAD = 20           # messages per thread and round: 240 a round, 720 in all
PER_CONNECTION = 5
RECORD_WINDOW = 2.0       # a delivery older than this at a kill must have been recorded
READ_LATE = 0.5           # the peer may read (and time) bytes a moment after their sender died


def body_for(rcpt):
    """The message sent to rcpt: its own, so a torn or mixed-up delivery shows."""
    line = b"%s " % rcpt.encode()
    return (b"Subject: %s\r\nMessage-ID: <%s>\r\n\r\n" % (rcpt.encode(), rcpt.encode())
            + (line * 40 + b"\r\n") * 4)


class Submitter:
    """Client threads, each sending one-recipient messages to unique addresses over reused
    connections, envelope pipelined; records every address whose message got a 250."""

    def __init__(self, daemon, tag):
        self.d = daemon
        self.tag = tag
        self.lock = threading.Lock()
        self.acked = set()      # recipients whose message got a 250
        self.failures = []
        self.killing = threading.Event()
        self.threads = [threading.Thread(target=self.worker, args=(w,), daemon=True)
                        for w in range(THREADS)]

    def worker(self, w):
        n = 0
        while n < PER_THREAD and not self.killing.is_set():
            try:
                with self.d.connect(timeout=20) as c:
                    if c.ehlo("load%d.test" % w).code != 250:
                        raise ConnectionClosed("EHLO refused")
                    for _ in range(PER_CONNECTION):
                        if n >= PER_THREAD or self.killing.is_set():
                            break
                        rcpt = "%s-%d-%d@sink.test" % (self.tag, w, n)
                        n += 1
                        c.send(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                               % (SENDER.encode(), rcpt.encode()))
                        codes = [r.code for r in c.read_replies(3)]
                        if codes != [250, 250, 354]:
                            with self.lock:
                                self.failures.append("%s: %r" % (rcpt, codes))
                            return
                        body = body_for(rcpt)
                        c.send(body + b".\r\n")
                        r = c.read_reply(timeout=30)
                        with self.lock:
                            if queued_id(r) is None:
                                self.failures.append("%s: %d %s" % (rcpt, r.code, r.text))
                                return
                            self.acked.add(rcpt)
                    c.cmd("QUIT")
            except (ConnectionClosed, ConnectionError, socket.timeout, OSError) as e:
                if not self.killing.is_set():
                    with self.lock:
                        self.failures.append("worker %d: connection lost while the daemon runs: "
                                             "%r" % (w, e))
                return

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        return [t for t in self.threads if t.is_alive()]


class CrashDelivery(MailNetCase):
    def test_kill9_during_heavy_delivery(self):
        seed = random.randrange(1 << 30)
        rng = random.Random(seed)
        net = self.make_net()
        sink = net.peer("mx.sink.test", delay=0.002)
        net.mx("sink.test", sink, 10)
        self.start_daemon(connections=4)

        acked, kills, queued_at_kill = set(), [], []
        for round_no in range(ROUNDS):
            load = Submitter(self.d, "r%d" % round_no)
            load.start()
            # Kill once deliveries of this round flow: some delivered, more accepted and queued.
            aim = rng.randrange(20, 120)
            self.wait(lambda: sum(1 for r in sink.delivered_rcpts()
                                  if r.startswith("r%d-" % round_no)) >= aim
                      or not any(t.is_alive() for t in load.threads), 60,
                      "round %d: %d delivered" % (round_no, aim), step=0.002)
            time.sleep(rng.random() * 0.05)
            load.killing.set()
            self.d.kill9()
            kills.append(time.time())  # the process is gone: it sends nothing more
            alive = load.join(30)
            self.assertEqual(alive, [], "client threads stuck after the kill")
            self.assertEqual(load.failures, [], "unexpected replies before the kill (seed %d)"
                             % seed)
            queued_at_kill.append(len(load.acked - set(sink.delivered_rcpts())))
            sys.stderr.write("round %d: killed at %d delivered in all (aimed at %d of this round), "
                             "%d acknowledged this round, %d of them not yet delivered\n"
                             % (round_no, len(set(sink.delivered_rcpts())), aim, len(load.acked),
                                queued_at_kill[-1]))
            acked |= load.acked
            self.d.restart()

        self.assertTrue(any(queued_at_kill), "no kill came while acknowledged mail was queued")
        self.wait(lambda: set(sink.delivered_rcpts()) >= acked, 120,
                  "every acknowledged message delivered after the restarts")
        self.wait_spool_empty(60)

        first, duplicates = {}, []
        for rcpt, tx in sink.delivered():
            self.assertTrue(tx.data.endswith(body_for(rcpt)),
                            "%s: the body delivered is not the one sent" % rcpt)
            if rcpt in first:
                duplicates.append(rcpt)
            else:
                first[rcpt] = tx.data_time
        sys.stderr.write("seed %d: %d acknowledged, %d delivered, %d duplicates\n"
                         % (seed, len(acked), len(first), len(duplicates)))
        for rcpt in duplicates:
            self.assertTrue(any(k - RECORD_WINDOW < first[rcpt] <= k + READ_LATE for k in kills),
                            "%s delivered again although its first delivery (at %.2f) was not "
                            "just before a kill (at %s)" % (rcpt, first[rcpt], kills))


if __name__ == "__main__":
    main()
