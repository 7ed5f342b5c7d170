"""
Upgrading a spool written with the flat layout of earlier versions (queue/<id>, state/<id>) to the
hashed directories (docs/spool.md): the files are built here in the old formats, the daemon moves
them into their leaves at start (spool.migrated with the count), and the pending mail is delivered
to a real SMTP peer, a recipient that the old state file records as delivered not again. A kill -9
in the middle of the migration loses nothing: the next start moves the rest, and every message is
recovered once.
"""
import os
import subprocess
import time

import harness
from harness import main
from mailnet import MailNetCase, wait_until
from spool_files import (flat_files, flat_path, hashed_files, message_path, queue_file,
                         state_record, write_message)

SENDER = "old@sender.test"


def old_id(n):
    """A queue id of the form Sluice makes (16 Crockford base-32 characters)."""
    return "1K1SY7NT%08d" % n


class SpoolUpgrade(MailNetCase):
    def net_with_peer(self, domain):
        net = self.make_net()
        peer = net.peer("mx." + domain)
        net.mx(domain, peer, 10)
        net.start()
        return net, peer

    def test_flat_spool_is_moved_and_delivered(self):
        net, peer = self.net_with_peer("dest.test")
        d = self.d = self.start_sluice(start=False, config=net.sluice_config())
        now = int(time.time())
        count = 20
        bodies = {}
        for n in range(count):
            qid = old_id(n)
            bodies[qid] = b"Subject: old %d\r\n\r\nqueued by an earlier version %d\r\n" % (n, n)
            rcpts = ["a%d@dest.test" % n, "b%d@dest.test" % n] if n == 0 else ["a%d@dest.test" % n]
            # The first one's first recipient was delivered before the upgrade.
            state = state_record(0, 2, reply=b"250 ok") if n == 0 else None
            write_message(d.spool, qid, queue_file(SENDER, rcpts, bodies[qid], now), state)

        d.start()
        migrated = d.wait_event("spool.migrated")
        self.assertEqual(len(migrated), 1, migrated)
        self.assertEqual((migrated[0].get("count"), migrated[0].get("state_files")), (count, 1))
        self.assertEqual(flat_files(d.spool, "queue"), [])
        self.assertEqual(flat_files(d.spool, "state"), [])
        self.assertEqual(len(d.events("spool.recovered")), count)
        self.assertEqual(os.listdir(os.path.join(d.spool, "corrupt")), [])

        wanted = {"b0@dest.test"} | {"a%d@dest.test" % n for n in range(1, count)}
        self.wait(lambda: set(peer.delivered_rcpts()) >= wanted, 30, "the old mail delivered")
        self.wait_spool_empty(20)
        self.assertNotIn("a0@dest.test", peer.attempts, "delivered before the upgrade: not again")
        self.assertEqual(sorted(peer.delivered_rcpts()), sorted(wanted), "each once")
        for rcpt, tx in peer.delivered():
            n = int(rcpt.split("@")[0][1:])
            self.assertIn(bodies[old_id(n)], tx.data, rcpt)

        # Started again: nothing left to move.
        self.assertEqual(d.stop(), 0)
        d.restart()
        self.assertEqual(d.events("spool.migrated"), [])

    def start_unwaited(self, d):
        """Starts the daemon without waiting for it to be ready; its log is not the harness's."""
        d.write_config()
        harness.give_to_daemon_user(d.dir)
        log = open(os.path.join(d.dir, "killed-%d.jsonl" % time.monotonic_ns()), "wb")
        self.addCleanup(log.close)
        return subprocess.Popen([d.bin, "run", "-c", d.config_path], cwd=d.dir,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def kill_during_migration(self, d, ids):
        """Starts the daemon on the flat spool and kills it (-9) once the first leaf appears:
        returns the queue and state files still flat."""
        queue = os.path.join(d.spool, "queue")
        proc = self.start_unwaited(d)
        try:
            wait_until(lambda: any(len(e) == 3 for e in os.listdir(queue)) or proc.poll() is not None,
                       10,
                       "the migration begins", step=0.001)
        finally:
            proc.kill()
            proc.wait(5)
        return set(flat_files(d.spool, "queue")), set(flat_files(d.spool, "state"))

    def test_kill9_during_migration(self):
        """Bounded: up to three runs, each on a larger spool, until a kill lands mid-way."""
        net, peer = self.net_with_peer("hold.test")
        interrupted = 0
        for count in (2000, 4000, 8000):
            # Deferred for an hour: delivery is not the point here.
            d = self.start_sluice(start=False, config=net.sluice_config(expire="1h"))
            now = int(time.time())
            ids = [old_id(n) for n in range(count)]
            for qid in ids:
                write_message(d.spool, qid, queue_file(SENDER, ["x@hold.test"], b"\r\nheld\r\n", now),
                           state_record(0, 1, next_attempt=now + 3600, reply=b"451 later"))
            flat_queue, flat_state = self.kill_during_migration(d, ids)

            # Every file is in one place or the other, never both, never neither.
            for sub, flat in (("queue", flat_queue), ("state", flat_state)):
                for qid in ids:
                    here = (os.path.exists(flat_path(d.spool, sub, qid)),
                            os.path.exists(message_path(d.spool, sub, qid)))
                    self.assertIn(here, ((True, False), (False, True)), "%s/%s" % (sub, qid))
            moved = 2 * count - len(flat_queue) - len(flat_state)

            d.start(timeout=60)
            if flat_queue or flat_state:
                migrated = d.wait_event("spool.migrated")
                self.assertEqual((migrated[0]["count"], migrated[0]["state_files"]),
                                 (len(flat_queue), len(flat_state)))
            self.assertEqual(sorted(hashed_files(d.spool, "queue")), ids)
            self.assertEqual(flat_files(d.spool, "queue") + flat_files(d.spool, "state"), [])
            recovered = [e["queue_id"] for e in d.events("spool.recovered")]
            self.assertEqual(sorted(recovered), ids, "each message recovered once")
            self.assertEqual(os.listdir(os.path.join(d.spool, "corrupt")), [])
            self.assertEqual(d.stop(), 0)
            if 0 < moved < 2 * count:
                interrupted += 1
                break
        self.assertEqual(interrupted, 1, "no kill landed in the middle of a migration")


if __name__ == "__main__":
    main()
