"""
The spool's journal seen from outside (docs/spool.md). A crash of the machine can lose what the
kernel had not yet written of files that were never synced on their own; that is simulated on the
spool a kill -9 left (queue files removed, emptied or cut short), and the next start must bring
every acknowledged message back from the journal, byte for byte, without quarantining anything. A
clean stop leaves the journal empty, and a spool without journal/ (as Sluice wrote it before the
journal) is read as it is.
"""
import os

from harness import SluiceTestCase, main, queued_id, send_message, split_received
from spool_files import message_path

MESSAGES = 30


def body_for(n):
    return b"Subject: journal %d\r\nMessage-ID: <j%d@test>\r\n\r\n" % (n, n) + b"line %d\r\n" % n * 50


class Journal(SluiceTestCase):
    def submit(self, d, count):
        """Sends count messages over one connection; returns {queue id: body}."""
        sent = {}
        with d.connect() as c:
            self.assertEqual(c.ehlo("journal.test").code, 250)
            for n in range(count):
                r = send_message(c, "s@example.org", ["r%d@example.net" % n], body_for(n))
                qid = queued_id(r)
                self.assertIsNotNone(qid, r)
                sent[qid] = body_for(n)
        return sent

    def check_stored(self, d, sent):
        listed = {e["id"] for e in d.queue_list()}
        self.assertEqual(sorted(set(sent) - listed), [], "acknowledged messages missing")
        for qid, body in sent.items():
            _, content = split_received(d.queue_body(qid))
            self.assertEqual(content, body, "%s: stored body differs" % qid)

    def test_lost_queue_files_come_back_from_the_journal(self):
        d = self.start_sluice()
        sent = self.submit(d, MESSAGES)
        d.kill9()
        journal = os.path.join(d.spool, "journal")
        self.assertTrue(os.listdir(journal), "the killed daemon left journal segments")

        # What an unsynced file may look like after a power cut: gone, empty or cut short.
        ids = sorted(sent)
        for qid in ids[:10]:
            os.unlink(message_path(d.spool, "queue", qid))
        for qid in ids[10:15]:
            os.truncate(message_path(d.spool, "queue", qid), 0)
        for qid in ids[15:20]:
            path = message_path(d.spool, "queue", qid)
            os.truncate(path, os.path.getsize(path) // 2)

        d.restart()
        repaired = {e.get("queue_id") for e in d.events("spool.journal_repaired")}
        self.assertEqual(repaired, set(ids[:20]), "exactly the damaged files written again")
        self.assertEqual(len(d.events("spool.journal_replayed")), 1)
        self.assertEqual(os.listdir(os.path.join(d.spool, "corrupt")), [])
        self.check_stored(d, sent)
        self.assertEqual(len(d.events("spool.recovered")), MESSAGES)

    def test_clean_stop_empties_the_journal_and_a_spool_without_one_is_read(self):
        d = self.start_sluice()
        sent = self.submit(d, 5)
        self.assertEqual(d.stop(), 0)
        journal = os.path.join(d.spool, "journal")
        self.assertEqual(os.listdir(journal), [], "a clean stop leaves nothing to replay")

        os.rmdir(journal)  # the spool as Sluice wrote it before the journal
        d.restart()
        self.assertTrue(os.path.isdir(journal))
        self.assertEqual(d.events("spool.journal_replayed"), [])
        self.check_stored(d, sent)
        more = self.submit(d, 3)
        self.check_stored(d, dict(sent, **more))


if __name__ == "__main__":
    main()
