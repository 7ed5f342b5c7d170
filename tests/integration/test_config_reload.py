"""
Configuration and signals: `sluice check-config` on good and bad files (FILE:LINE:COL messages),
SIGHUP with a bad file (old config kept) and a good one (applies to new sessions), and SIGTERM with a
transfer in progress (it finishes, then the process exits 0).
"""
import os
import re
import signal
import socket
import time

from harness import HOSTNAME, SluiceTestCase, main, queued_id
from mailnet import wait_until

GOOD = """\
server:
  hostname: mx.example.test
  spool: {spool}
listeners:
  - name: mx
    address: "127.0.0.1:2525"
    role: inbound
domains:
  example.com: null
limits:
  max_message_size: 1000000
  command_timeout: 5m
"""

# (description, text, line, columns accepted: the key's or the value's)
BAD = [
    ("unknown key", GOOD.replace("  hostname: mx.example.test\n",
                                 "  hostname: mx.example.test\n  hostnmae: typo\n"), 3, (3, 13)),
    ("unknown section", GOOD + "limitz:\n  max_errors: 3\n", 13, (1,)),
    ("wrong type: word for a number", GOOD.replace("max_message_size: 1000000",
                                                   "max_message_size: lots"), 11, (3, 21)),
    ("wrong type: list for a number", GOOD.replace("command_timeout: 5m", "command_timeout: [5, m]"),
     12, (3, 20)),
    ("bad enum value", GOOD.replace("role: inbound", "role: outbound"), 7, (5, 11)),
    ("bad address", GOOD.replace('"127.0.0.1:2525"', '"127.0.0.1:notaport"'), 6, (5, 14)),
    ("YAML syntax error", GOOD.replace("  - name: mx\n", "  - name: [mx\n"), None, None),
]


class CheckConfig(SluiceTestCase):
    def setUp(self):
        self.d = self.start_sluice(start=False)

    def write(self, text, name="check.yaml"):
        path = os.path.join(self.d.dir, name)
        with open(path, "w") as f:
            f.write(text.format(spool=self.d.spool))
        return path

    def test_good_file(self):
        path = self.write(GOOD)
        res = self.d.cli("check-config", config=path)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.decode().strip(), "%s: ok" % path)

    def test_bad_files(self):
        for what, text, line, columns in BAD:
            with self.subTest(what):
                path = self.write(text, "bad.yaml")
                res = self.d.cli("check-config", config=path)
                err = res.stderr.decode()
                self.assertEqual(res.returncode, 1, "%s: exit status (stderr %r)" % (what, err))
                found = re.findall(r"^%s:(\d+):(\d+): \S.*$" % re.escape(path), err, re.M)
                self.assertTrue(found, "%s: no FILE:LINE:COL: message in %r" % (what, err))
                if line is not None:
                    self.assertIn((line, True), [(int(l), int(c) in columns) for l, c in found],
                                  "%s: expected line %d column in %r, got %r" % (what, line, columns, err))

    def test_missing_file(self):
        path = os.path.join(self.d.dir, "nope.yaml")
        res = self.d.cli("check-config", config=path)
        self.assertEqual(res.returncode, 1)
        self.assertIn("nope.yaml", res.stderr.decode())

    def test_run_refuses_a_bad_file(self):
        path = self.write(BAD[0][1], "bad.yaml")
        res = self.d.cli("run", config=path, timeout=10)
        self.assertEqual(res.returncode, 1, "sluice run with an unknown key")
        self.assertIn("%s:3:" % path, res.stderr.decode())


class Signals(SluiceTestCase):
    def setUp(self):
        self.d = self.start_sluice(listeners=[{"name": "mx", "role": "inbound"}])

    def rcpt_reply(self, rcpt):
        with self.d.connect("mx") as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<s@example.org>"), 250, "2.1.0")
            return c.cmd("RCPT TO:<%s>" % rcpt)

    def test_sighup_with_a_bad_file_keeps_the_old_config(self):
        self.assertReply(self.rcpt_reply("u@example.org"), 550, "5.7.1")
        good = open(self.d.config_path).read()
        # A domain is added, but a typo elsewhere makes the file invalid: nothing may change.
        bad = good.replace("domains:\n", "domains:\n  example.org: null\n").replace(
            "server:\n", "server:\n  hostnmae: typo\n")
        self.d.write_config(text=bad)
        self.d.signal(signal.SIGHUP)
        self.d.wait_event("config.error")
        self.assertEqual(self.d.events("daemon.reload"), [], "bad config reloaded")
        with self.d.connect("mx") as c:
            self.assertEqual(c.banner.lines[0], "%s ESMTP Sluice" % HOSTNAME)
        self.assertReply(self.rcpt_reply("u@example.com"), 250, "2.1.5", "old domain after bad reload")
        self.assertReply(self.rcpt_reply("u@example.org"), 550, "5.7.1", "domain of the bad file")
        self.assertIsNone(self.d.proc.poll(), "daemon died on a bad reload")

    def test_sighup_with_a_good_file_applies_to_new_sessions(self):
        self.assertReply(self.rcpt_reply("u@example.org"), 550, "5.7.1")
        before = self.d.connect("mx")
        self.addCleanup(before.close)
        self.d.write_config(extra={"domains": {"example.com": None, "example.org": None},
                                   "server": {"hostname": "reloaded.sluice.test"}})
        self.d.signal(signal.SIGHUP)
        self.d.wait_event("daemon.reload")
        self.assertEqual(self.d.events("config.error"), [])
        self.assertReply(self.rcpt_reply("u@example.org"), 250, "2.1.5", "new domain after reload")
        self.assertReply(self.rcpt_reply("u@example.com"), 250, "2.1.5")
        with self.d.connect("mx") as c:
            self.assertEqual(c.banner.lines[0], "reloaded.sluice.test ESMTP Sluice")
        # A session from before the reload keeps working.
        self.assertReply(before.ehlo(), 250)
        self.assertReply(before.cmd("NOOP"), 250, "2.0.0")

    def test_sighups_in_a_row_end_with_the_last_file(self):
        """Reloads read their files on the thread pool; a SIGHUP during one runs another after
        it, so the file written last is the one in force."""
        for name in ("first.sluice.test", "second.sluice.test", "last.sluice.test"):
            self.d.write_config(extra={"server": dict(self.d.config_dict()["server"],
                                                      hostname=name)})
            self.d.signal(signal.SIGHUP)
        # Signals that arrive before the loop takes the first are one (the kernel merges them), so
        # one reload may be all there is; whatever ran, the last file must be in force.
        wait_until(lambda: self.d.events("daemon.reload"), 10, "a reload")
        wait_until(lambda: self.banner() == "last.sluice.test ESMTP Sluice", 10,
                   "the last file in force", lambda: self.banner())
        self.assertIsNone(self.d.proc.poll())

    def banner(self):
        with self.d.connect("mx") as c:
            return c.banner.lines[0]

    def test_sighup_reopens_the_log_file(self):
        """logrotate's way: the file is renamed, and after SIGHUP the daemon writes a new one."""
        path = os.path.join(self.d.dir, "events.log")
        self.d.write_config(extra={"server": dict(self.d.config_dict()["server"],
                                                  log={"file": path})})
        self.d.signal(signal.SIGHUP)
        wait_until(lambda: os.path.exists(path) and b"daemon.reload" in open(path, "rb").read(),
                   5, "the new log file, reload logged in it")
        self.assertReply(self.rcpt_reply("u@example.com"), 250)
        wait_until(lambda: b'"event":"smtp.connect"' in open(path, "rb").read(), 5,
                   "lines in the new file")
        os.rename(path, path + ".1")
        self.d.signal(signal.SIGHUP)
        wait_until(lambda: os.path.exists(path) and b"daemon.reload" in open(path, "rb").read(),
                   5, "a fresh file after the rotation")
        rotated = open(path + ".1", "rb").read()
        self.assertReply(self.rcpt_reply("u@example.com"), 250)
        wait_until(lambda: b'"event":"smtp.connect"' in open(path, "rb").read(), 5,
                   "the RCPT's session logged anew")
        self.assertEqual(open(path + ".1", "rb").read(), rotated, "nothing more in the old file")

    def test_sigterm_lets_a_transfer_in_progress_finish(self):
        content = b"Subject: in flight\r\n\r\n" + b"line of the message\r\n" * 200
        with self.d.connect("mx") as c:
            self.open_data(c, "s@example.org", "u@example.com")
            c.send(content[:1000])
            self.d.signal(signal.SIGTERM)
            self.d.wait_event("daemon.stopping")
            # It stops listening at once.
            with self.assertRaises(OSError, msg="new connection accepted after SIGTERM"):
                host, port = self.d.addr("mx")
                socket.create_connection((host, port), timeout=2).close()
            time.sleep(0.5)
            self.assertIsNone(self.d.proc.poll(), "exited with a transfer in progress")
            c.send(content[1000:] + b".\r\n")
            r = c.read_reply(15)
            qid = queued_id(r)
            self.assertIsNotNone(qid, "transfer during shutdown: %r" % r)
            c.wait_closed(10)
        self.assertEqual(self.d.wait_exit(8), 0, "exit status after SIGTERM\n" + self.d.log_tail())
        self.assertTrue(self.d.events("daemon.stopped"))
        self.assertStored(self.d, qid, content)

    def test_sigterm_with_idle_session_exits_zero(self):
        c = self.d.connect("mx")
        self.addCleanup(c.close)
        self.assertReply(c.ehlo(), 250)
        start = time.monotonic()
        self.d.signal(signal.SIGTERM)
        # An idle session is told at once, not left to the grace period (10 s in the harness).
        self.assertReply(c.read_reply(5), 421, "4.3.2")
        self.assertTrue(c.wait_closed(5), "session left open by a stopped daemon")
        self.assertEqual(self.d.wait_exit(5), 0, self.d.log_tail())
        self.assertLess(time.monotonic() - start, 5, "waited for the grace period")

    def test_sigterm_grace_ends_a_stalled_transfer(self):
        self.d.stop()
        d = self.start_sluice(config={"server": {"shutdown_grace": "2s"}})
        with d.connect() as c:
            self.open_data(c, "s@example.org", "u@example.com")
            c.send(b"Subject: never finished\r\n\r\nhalf")
            start = time.monotonic()
            d.signal(signal.SIGTERM)
            self.assertEqual(d.wait_exit(10), 0, "exit status when the grace ran out\n" + d.log_tail())
            self.assertGreater(time.monotonic() - start, 1.5, "did not wait for the grace period")
            self.assertTrue(c.wait_closed(5))
        self.assertEqual(d.queue_list(), [], "unfinished message spooled")


if __name__ == "__main__":
    main()
