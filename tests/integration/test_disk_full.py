"""
A nearly full spool is found at MAIL, not after the data: with less than limits.spool_min_free
left (or less than that plus SIZE=) MAIL gets 452 4.3.1 before any data is sent, the condition is
logged once (spool.low_space) rather than per message, and freeing space brings 250 back. A
write that fails with ENOSPC all the same is answered 452 4.3.1 at the final dot and loses
nothing accepted before. A DSN that cannot be written for want of space is written once there is
space again, without a restart; so is a TLS report (RFC 8460), kept for the next send time.
A success notice (NOTIFY=SUCCESS, delivered to a receiver without DSN) that cannot be written is
owed in the spool: kill -9 meanwhile, and the restart sends it once.

The spool is a 4 MiB tmpfs mounted for each test under its temp dir and unmounted by its
clean-up. Mounting needs root (CAP_SYS_ADMIN): without it the whole file exits 77, which ctest
shows as skipped, never as passed.
"""
import email
import email.policy
import json
import os
import subprocess
import sys
import tempfile
import time

from harness import SMTPConn, SluiceTestCase, main, queued_id, send_message
from mailnet import MailNetCase

DSN_CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support",
                         "dsn_check.py")

TMPFS_SIZE = 4 * 1024 * 1024
MIB = 1024 * 1024
CONTENT = b"Subject: before the disk filled up\r\n\r\nkept\r\n"


def mount_tmpfs(path, size):
    """Mounts a tmpfs of `size` octets on path; returns None or why it could not."""
    try:
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0700" % size, "tmpfs",
                              path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return None if res.returncode == 0 else res.stdout.decode(errors="replace").strip()


def unmount(path):
    """Unmounts path, retrying a moment if it is busy, detaching it lazily as the last resort."""
    for _ in range(10):
        if subprocess.run(["umount", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=10).returncode == 0:
            return
        time.sleep(0.2)
    subprocess.run(["umount", "-l", path], timeout=10, check=True)


def why_no_tmpfs():
    """None when this process can mount a tmpfs, else the reason."""
    path = tempfile.mkdtemp(prefix="tmpfs-probe-")
    try:
        why = mount_tmpfs(path, 64 * 1024)
        if why is None:
            unmount(path)
        return why
    finally:
        os.rmdir(path)


class TmpfsSpool:
    """Mixed into a test case: a daemon whose spool is a tmpfs that the test can fill."""

    def start_on_tmpfs(self, config=None, **limits):
        config = dict(config or {}, limits=limits)
        d = self.start_sluice(start=False, config=config)
        os.mkdir(d.spool, 0o700)
        why = mount_tmpfs(d.spool, TMPFS_SIZE)
        self.assertIsNone(why, "mounting the spool's tmpfs")
        self.addCleanup(self.stop_and_unmount, d)  # runs before the daemon's own clean-up
        d.start()
        return d

    def stop_and_unmount(self, d):
        d.stop()
        unmount(d.spool)

    def fill(self, d, leave):
        """Fills the spool's file system until about `leave` octets are left free."""
        st = os.statvfs(d.spool)
        free = st.f_bavail * st.f_frsize
        self.assertGreater(free, leave, "the tmpfs is already fuller than wanted")
        path = os.path.join(d.spool, "filler")
        with open(path, "ab") as f:
            f.write(b"\0" * (free - leave))
        return path


class DiskFull(TmpfsSpool, SluiceTestCase):

    def mail(self, c, params=""):
        """A fresh MAIL (after RSET); returns its reply."""
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        return c.cmd("MAIL FROM:<a@example.org>" + params)

    def wait_mail(self, c, code, params="", timeout=10.0):
        """MAIL until its reply is `code` (the daemon takes the free space every 2 s)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.mail(c, params)
            if r.code == code or time.monotonic() > deadline:
                return r
            time.sleep(0.1)

    def test_mail_refused_while_space_is_low(self):
        d = self.start_on_tmpfs(spool_min_free="1M", spool_min_free_percent=100)
        with d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(self.mail(c), 250, "2.1.0", "MAIL with the tmpfs empty")
            filler = self.fill(d, leave=MIB // 2)
            self.assertReply(self.wait_mail(c, 452), 452, "4.3.1", "MAIL with 512 KiB left")
            # Refused before any data: there is no transaction to send it in.
            self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1")
            self.assertReply(c.cmd("DATA"), 503, "5.5.1")
            for _ in range(5):
                self.assertReply(self.mail(c), 452, "4.3.1", "MAIL while still full")
            os.unlink(filler)
            self.assertReply(self.wait_mail(c, 250), 250, "2.1.0", "MAIL once space is back")
        self.assertEqual(len(d.events("spool.low_space")), 1, "spool.low_space not once a minute")
        self.assertTrue(d.events("spool.space_ok"), "no spool.space_ok once space was back")
        refused = d.events("smtp.rejected", rule="limits.spool_min_free")
        self.assertGreaterEqual(len(refused), 6)

    def test_size_against_free_space(self):
        d = self.start_on_tmpfs(spool_min_free="1M", spool_min_free_percent=100)
        two = "SIZE=%d" % (2 * MIB)
        with d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(self.mail(c, " " + two), 250, "2.1.0", "SIZE=2M with ~4M free")
            filler = self.fill(d, leave=2 * MIB + MIB // 2)
            self.assertReply(self.wait_mail(c, 452, " " + two), 452, "4.3.1",
                             "SIZE=2M with 2.5M free and 1M to keep")
            self.assertReply(self.mail(c, " SIZE=%d" % (MIB // 2)), 250, "2.1.0", "SIZE=512K")
            self.assertReply(self.mail(c), 250, "2.1.0", "no SIZE")
            os.unlink(filler)
            self.assertReply(self.wait_mail(c, 250, " " + two), 250, "2.1.0", "SIZE=2M again")

    def test_write_failing_at_the_end_of_data(self):
        """spool_min_free 0: MAIL passes with 64 KiB left, the 1 MiB message cannot be written;
        452 4.3.1 after the dot, the session goes on, the message accepted before is kept and
        survives kill -9, and nothing of the refused one stays in the spool."""
        d = self.start_on_tmpfs(spool_min_free=0, spool_min_free_percent=100)
        with d.connect() as c:
            kept = queued_id(send_message(c, "a@example.org", ["b@example.com"], CONTENT,
                                          helo="client.test"))
            self.assertIsNotNone(kept)
            filler = self.fill(d, leave=64 * 1024)
            big = b"Subject: too big for the disk\r\n\r\n" + (b"x" * 78 + b"\r\n") * (MIB // 80)
            r = send_message(c, "a@example.org", ["b@example.com"], big)
            self.assertReply(r, 452, "4.3.1", "message that did not fit")
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0", "session after the 452")
        self.assertEqual(os.listdir(os.path.join(d.spool, "tmp")), [], "a torn file left in tmp/")
        self.assertEqual([e["id"] for e in d.queue_list()], [kept])
        os.unlink(filler)
        d.kill9()
        d.restart()
        self.assertEqual([e["id"] for e in d.queue_list()], [kept])
        self.assertStored(d, kept, CONTENT)


class DsnOnFullSpool(TmpfsSpool, MailNetCase):
    def test_dsn_written_once_space_is_back(self):
        """The recipient is deferred once, the spool fills up, then the retry fails it for good:
        the DSN cannot be written (delivery.bounce_failed, with when it is tried again); once
        space is back it reaches the sender without a restart. The hard bounce goes to the
        suppression list (kept off the full disk) once, not at each attempt of the DSN."""
        net = self.make_net()
        home = net.peer("mx.sender.test")
        net.mx("sender.test", home, 10)
        dest = net.peer("mx.dest.test", defer_first=1, rcpt=[("*", "550 5.1.1 no such user")])
        net.mx("dest.test", dest, 10)
        net.start()
        cfg = net.sluice_config(retry=["2s"])
        # Relative: in the daemon's directory, beside the spool's tmpfs.
        cfg["suppression"] = {"enabled": True, "path": "suppression"}
        self.d = self.start_on_tmpfs(cfg, spool_min_free=0, spool_min_free_percent=100)
        with self.d.connect() as c:
            qid = queued_id(send_message(c, "alice@sender.test", ["gone@dest.test"], CONTENT,
                                         helo="client.test"))
        self.assertIsNotNone(qid)
        self.wait(lambda: b"deferred" in self.d.queue_show(qid), 20, "the deferral recorded")
        filler = self.fill(self.d, leave=0)
        self.d.wait_event("delivery.bounce_failed", timeout=20, count=2)
        self.assertEqual(home.transactions(), [], "no DSN while the spool is full")
        os.unlink(filler)
        self.wait(lambda: [tx for tx in home.transactions() if tx.accepted()], 20,
                  "the DSN at the sender's MX")
        failures = self.d.events("delivery.bounce_failed", queue_id=qid)
        waits = [int(e["retry_in_ms"]) for e in failures]
        self.assertEqual(waits, [1000 << i for i in range(len(waits))], "doubling waits")
        self.assertEqual(len(self.d.events("delivery.bounce", queue_id=qid)), 1)
        added = self.d.events("suppression.added", address="gone@dest.test")
        self.assertEqual([e["source"] for e in added], ["bad-mailbox"], added)
        self.assertEqual(self.d.run, 1, "no restart")


class TlsRptOnFullSpool(TmpfsSpool, MailNetCase):
    def test_report_kept_when_it_cannot_be_spooled(self):
        """A TLS report due while the spool is full cannot be written: it is kept
        (tls_rpt.send_deferred) and the next send, once space is back, mails it with the same
        counts."""
        net = self.make_net()
        plain = net.peer("mx.plain.test")  # no STARTTLS: one no-policy-found failure
        net.mx("plain.test", plain, 10)
        sink = net.peer("mx.reports.test")
        net.mx("reports.test", sink, 10)
        net.dns.txt("_smtp._tls.plain.test", "v=TLSRPTv1; rua=mailto:tlsrpt@reports.test")
        net.start()
        cfg = net.sluice_config()
        cfg["tls_rpt"] = {"enabled": True, "sender": "tlsrpt@sender.test"}
        self.d = self.start_on_tmpfs(cfg, spool_min_free=0, spool_min_free_percent=100)
        with self.d.connect() as c:
            qid = queued_id(send_message(c, "alice@sender.test", ["a@plain.test"], CONTENT,
                                         helo="client.test"))
        self.assertIsNotNone(qid)
        self.wait(lambda: plain.delivered(), 20, "the message delivered")
        filler = self.fill(self.d, leave=0)
        res = self.d.cli("tls-rpt", "send")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("plain.test", res.stdout.decode())
        self.d.wait_event("tls_rpt.send_failed", timeout=20, domain="plain.test")
        self.d.wait_event("tls_rpt.send_deferred", timeout=20)
        self.assertEqual(sink.transactions(), [])

        os.unlink(filler)
        res = self.d.cli("tls-rpt", "send")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("plain.test", res.stdout.decode())
        self.wait(lambda: [t for t in sink.transactions() if t.data], 20,
                  "the kept report at the rua address")
        [t] = [t for t in sink.transactions() if t.data]
        msg = email.message_from_bytes(t.data, policy=email.policy.default)
        [part] = [p for p in msg.walk() if p.get_content_type() == "application/tlsrpt+json"]
        [none] = json.loads(part.get_content())["policies"]
        self.assertEqual(none["summary"], {"total-successful-session-count": 0,
                                           "total-failure-session-count": 1})
        self.assertEqual(self.d.run, 1, "no restart")


class NoticeOnFullSpool(TmpfsSpool, MailNetCase):
    def test_success_notice_owed_across_kill(self):
        """The recipient asked for NOTIFY=SUCCESS and is deferred once; the spool fills up and
        the retry delivers it (its state fits the journal's room), but the notice cannot be
        written. kill -9, space back, restart: the notice (Action: relayed, checked by
        dsn_check.py) reaches the sender once and the spool empties."""
        net = self.make_net()
        home = net.peer("mx.sender.test")
        net.mx("sender.test", home, 10)
        dest = net.peer("mx.dest.test", defer_first=1)
        net.mx("dest.test", dest, 10)
        net.start()
        self.d = self.start_on_tmpfs(net.sluice_config(retry=["2s"]), spool_min_free=0,
                                     spool_min_free_percent=100)
        host, port = self.d.addr()
        with SMTPConn(host, port) as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<alice@sender.test>"), 250)
            self.assertReply(c.cmd("RCPT TO:<ok@dest.test> NOTIFY=SUCCESS"), 250)
            self.assertReply(c.cmd("DATA"), 354)
            c.send(CONTENT + b".\r\n")
            qid = queued_id(c.read_reply(timeout=15))
        self.assertIsNotNone(qid)
        self.wait(lambda: b"deferred" in self.d.queue_show(qid), 20, "the deferral recorded")
        filler = self.fill(self.d, leave=0)
        self.wait(lambda: [tx for tx in dest.transactions() if tx.accepted()], 20,
                  "the delivery")
        self.d.wait_event("delivery.bounce_failed", timeout=20)
        self.assertEqual(home.transactions(), [], "no notice while the spool is full")
        self.d.kill9()
        os.unlink(filler)
        self.d.restart()
        self.wait(lambda: [tx for tx in home.transactions() if tx.accepted()], 20,
                  "the notice at the sender's MX")
        self.wait_spool_empty(20)
        time.sleep(1)  # room for a second notice, which must not come
        notices = [tx for tx in home.transactions() if tx.accepted()]
        self.assertEqual(len(notices), 1, "one notice")
        self.assertEqual(notices[0].sender, "")
        path = os.path.join(self.d.dir, "notice.eml")
        with open(path, "wb") as f:
            f.write(notices[0].data)
        res = subprocess.run([sys.executable, DSN_CHECK, path, "rcpts=1", "rcpt0.Action=relayed",
                              "rcpt0.Final-Recipient=rfc822; ok@dest.test"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(res.returncode, 0, res.stdout.decode(errors="replace"))
        self.assertEqual(len([tx for tx in dest.transactions() if tx.accepted()]), 1,
                         "delivered once")


if __name__ == "__main__":
    reason = why_no_tmpfs()
    if reason is not None:
        print("SKIP: cannot mount a tmpfs for the spool (%s); needs root" % reason)
        sys.exit(77)
    main()
