"""
kill -9 in the middle of a delivery run, then a restart on the same spool (mailnet.py peers): every
recipient is delivered at least once (duplicates are counted, printed, and must stay few), a
deferred recipient keeps its next-attempt time across the restart, and the rate limit holds from
the first moment after the restart (buckets start empty). A DSN built after a restart still names
the remote MTA of a failure recorded before it (RFC 3464 §2.3.5).
"""
import email
import sys
import time

from harness import main
from mailnet import MailNetCase, send

SENDER = "bulk@sender.test"
RATE = 20                # recipients per second per egress address to slow.test
RETRY = 6.0              # later.test's only retry step, in seconds
SLACK = 0.3              # timer jitter and peer-side delays on a loaded machine
PER_CONNECTION = 10
IN_FLIGHT = 4 * 2 * PER_CONNECTION  # connections x egress addresses x recipients per connection
RECORD_WINDOW = 1.0      # a delivery older than this at the kill must have been recorded


class DeliveryRestart(MailNetCase):
    def test_kill9_mid_queue(self):
        net = self.make_net()
        slow = net.peer("mx.slow.test", delay=0.01)
        later = net.peer("mx.later.test", defer_first=1)
        net.mx("slow.test", slow, 10)
        net.mx("later.test", later, 10)
        rules = [{"match": {"domain": "slow.test"}, "rate": "%d/s" % RATE,
                  "recipients_per_connection": PER_CONNECTION},
                 {"match": {"domain": "later.test"}, "retry": ["%ds" % RETRY], "expire": "60s"}]
        self.start_daemon(rules=rules)
        everyone = ["r%03d@slow.test" % i for i in range(200)]
        deferred = ["d%d@later.test" % i for i in range(5)]
        send(self.d, SENDER, deferred, b"Subject: later\r\n\r\nlater\r\n")
        for i in range(0, 200, 10):
            send(self.d, SENDER, everyone[i:i + 10], b"Subject: bulk %d\r\n\r\nbulk\r\n" % i)

        self.wait(lambda: len(slow.delivered()) >= 40, 30, "40 delivered before the kill")
        self.wait(lambda: len(later.attempts) == 5, 20, "later.test's recipients deferred once")
        first_try = max(t for tx in later.transactions() for _, t, _ in tx.rcpts)
        killed = time.time()
        self.d.kill9()
        before = len(slow.delivered())
        self.assertLess(before, 200, "killed mid-queue (raise the load if this fails)")

        restarted = time.time()  # every RCPT from now on comes from the new process
        self.d.restart()
        self.wait(lambda: set(slow.delivered_rcpts()) >= set(everyone), 60,
                  "all 200 recipients delivered after the restart")
        self.wait(lambda: len(later.delivered()) >= 5, RETRY + 30, "later.test delivered")
        self.wait_spool_empty(20)

        first_delivery, duplicates = {}, []
        for rcpt, tx in slow.delivered():
            if rcpt in first_delivery:
                duplicates.append(rcpt)
            else:
                first_delivery[rcpt] = tx.data_time
        sys.stderr.write("delivered %d before the kill, %d duplicates after the restart\n"
                         % (before, len(duplicates)))
        self.assertLessEqual(len(duplicates), IN_FLIGHT, "only transactions in flight repeat")
        for rcpt in duplicates:
            self.assertGreater(first_delivery[rcpt], killed - RECORD_WINDOW,
                               "%s delivered again although delivered %.1fs before the kill"
                               % (rcpt, killed - first_delivery[rcpt]))

        second_try = min(t for tx in later.transactions() for _, t, code in tx.rcpts
                         if code < 300)
        self.assertGreaterEqual(second_try - first_try, RETRY - SLACK,
                                "retry time kept across the restart")

        per_source = {}
        for session in slow.sessions:
            for tx in session.transactions:
                per_source.setdefault(session.client[0], []).extend(
                    t for _, t, _ in tx.rcpts if t >= restarted)
        self.assertTrue(per_source, "deliveries after the restart")
        for source, times in per_source.items():
            times.sort()
            for first, last in zip(times, times[RATE:]):
                self.assertGreaterEqual(last - first, 1.0 - SLACK,
                                        "%d RCPTs within 1s from %s after the restart"
                                        % (RATE + 1, source))


    def test_dsn_after_kill9_keeps_remote_mta(self):
        """One message to a host that refuses (550) and to a slow host: the DSN waits for the slow
        delivery, the daemon is killed meanwhile, and the DSN built after the restart carries the
        refusing host as Remote-MTA and its reply, as one built before the restart would."""
        net = self.make_net()
        home = net.peer("mx.sender.test")  # where DSNs to SENDER arrive
        refusing = net.peer("mx.fail.test", rcpt=[("*", "550 5.1.1 no such user")])
        slow = net.peer("mx.slow.test", delay=5.0)  # holds its job (and so the DSN) for ~30 s
        net.mx("sender.test", home, 10)
        net.mx("fail.test", refusing, 10)
        net.mx("slow.test", slow, 10)
        self.start_daemon(rules=[{"match": {"domain": "slow.test"}, "expire": "120s"}])
        send(self.d, SENDER, ["gone@fail.test", "kept@slow.test"],
             b"Subject: half fails\r\n\r\nbody\r\n")
        queue_id = self.wait(lambda: [e["id"] for e in self.d.queue_list()], 10, "queued")[0]
        self.wait(lambda: b"<gone@fail.test> failed" in self.d.queue_show(queue_id), 20,
                  "the refusal recorded in the spool", step=0.2)
        self.assertEqual(slow.delivered(), [], "the slow delivery still in flight at the kill")
        self.d.kill9()
        self.assertEqual(home.transactions(), [], "no DSN before the kill")

        slow.delay = 0.0
        self.d.restart()
        self.wait(lambda: [tx for tx in home.transactions() if tx.accepted()], 30, "a DSN")
        self.wait(lambda: slow.delivered_rcpts() == ["kept@slow.test"], 30, "kept@ delivered")
        self.wait_spool_empty(20)
        dsns = [tx for tx in home.transactions() if tx.accepted()]
        self.assertEqual(len(dsns), 1, "one DSN")
        msg = email.message_from_bytes(dsns[0].data)
        status = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
        self.assertEqual(len(status), 1, dsns[0].data[:800])
        blocks = status[0].get_payload()[1:]
        self.assertEqual([b.get("Final-Recipient") for b in blocks], ["rfc822; gone@fail.test"])
        block = blocks[0]
        self.assertEqual(block.get("Remote-MTA"), "dns; mx.fail.test")
        self.assertEqual(" ".join(block.get("Diagnostic-Code").split()),
                         "smtp; 550 5.1.1 no such user")
        self.assertIn(b"host mx.fail.test said: 550 5.1.1 no such user", dsns[0].data)


if __name__ == "__main__":
    main()
