"""
server.log.level: the least severe events the daemon writes. At debug every inbound session logs
its state trace (smtp.state: the protocol phase it leaves and enters, and what it waits for), in
the order the session went through it, and every reply (smtp.reply); at info (the default) no
trace, and of the replies only refusals and failures (4xx, 5xx). A SIGHUP applies a
new level to what follows, both ways.

Every event the daemon logs is a row of the event reference (`sluice log-events`); the harness
fails a test whose daemon logged log.unknown_event (a name missing from the table).
"""
import re
import signal
import subprocess

from harness import Sluice, SluiceTestCase, main, queued_id, send_message, sluice_bin
from mailnet import wait_until

BODY = b"Subject: trace\r\n\r\nhello\r\n"

# One transaction on the submission listener (a trusted client, so no check of the sender waits):
# (from, to, wait) of each smtp.state event, in order.
TRACE = [
    ("connected", "ready", "none"),    # EHLO
    ("ready", "mail", "none"),         # MAIL
    ("mail", "rcpt", "none"),          # RCPT
    ("rcpt", "data", "none"),          # DATA: 354
    ("data", "data", "end-of-data"),   # the final dot: the spool commits
    ("data", "ready", "none"),         # 250 queued as
    ("ready", "closing", "none"),      # QUIT
]


def with_level(level):
    """Config sections for the harness: its defaults, with server.log.level set."""
    return {"server": {"log": {"level": level}}}


class LogLevel(SluiceTestCase):
    def session(self, d):
        """One whole session; returns its id (from smtp.accepted)."""
        with d.connect() as c:
            reply = send_message(c, "a@example.org", ["b@example.com"], BODY, helo="client.test")
            qid = queued_id(reply)
            self.assertIsNotNone(qid, reply)
            self.assertEqual(c.cmd("QUIT").code, 221)
            c.wait_closed()
        accepted = d.wait_event("smtp.accepted", queue_id=qid)[0]
        d.wait_event("smtp.disconnect", session=accepted["session"])
        return accepted["session"]

    def trace(self, d, session):
        return [(e["from"], e["to"], e["wait"]) for e in d.events("smtp.state", session=session)]

    def test_debug_writes_the_state_trace(self):
        d = self.start_sluice(config=with_level("debug"))
        session = self.session(d)
        self.assertEqual(self.trace(d, session), TRACE)
        for e in d.events("smtp.state", session=session):
            self.assertEqual(e["level"], "debug")

    def test_info_is_the_default_and_has_no_trace(self):
        d = self.start_sluice()
        session = self.session(d)
        self.assertEqual(d.events("smtp.state"), [])
        self.assertEqual(len(d.events("smtp.connect", session=session)), 1)

    def replies(self, d):
        """A session with a refused command and one message; the codes of its smtp.reply events."""
        with d.connect() as c:
            refused = c.cmd("XYZZY").code
            self.assertGreaterEqual(refused, 500)
        session = self.session(d)
        d.wait_event("smtp.reply", code=refused)
        return refused, [e["code"] for e in d.events("smtp.reply", session=session)]

    def test_info_logs_only_the_refusals_among_replies(self):
        """A message is logged once at info (smtp.accepted), not by each of its replies."""
        d = self.start_sluice()
        refused, codes = self.replies(d)
        self.assertEqual(codes, [])
        self.assertEqual(d.events("smtp.reply", code=refused)[0]["level"], "info")

    def test_debug_logs_every_reply(self):
        d = self.start_sluice(config=with_level("debug"))
        refused, codes = self.replies(d)
        self.assertTrue({250, 354, 221} <= set(codes), codes)
        for e in d.events("smtp.reply", code=250):
            self.assertEqual(e["level"], "debug")

    def test_reload_changes_the_level(self):
        d = self.start_sluice()
        before = self.session(d)

        d.write_config(extra=with_level("debug"))
        d.signal(signal.SIGHUP)
        d.wait_event("daemon.reload")
        during = self.session(d)

        d.write_config(extra=with_level("info"))
        d.signal(signal.SIGHUP)
        wait_until(lambda: len(d.events("daemon.reload")) >= 2, 10, "the second reload")
        after = self.session(d)

        self.assertEqual(self.trace(d, before), [])
        self.assertEqual(self.trace(d, during), TRACE)
        self.assertEqual(self.trace(d, after), [])
        self.assertEqual(d.events("config.error"), [])

    def test_every_event_logged_is_in_the_reference(self):
        d = self.start_sluice(config=with_level("debug"))
        self.session(d)
        d.signal(signal.SIGHUP)
        d.wait_event("daemon.reload")
        self.assertEqual(d.stop(), 0)
        res = subprocess.run([sluice_bin(), "log-events"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(res.returncode, 0, res.stderr)
        reference = set(re.findall(r"^\| `([^`]+)` \|", res.stdout.decode(), flags=re.M))
        self.assertIn("smtp.state", reference)
        logged = {e["event"] for e in d.events()}
        self.assertTrue({"daemon.ready", "smtp.state", "daemon.reload", "daemon.stopped"} <= logged,
                        logged)
        self.assertEqual(logged - reference, set())

    def test_an_unknown_event_fails_the_clean_up(self):
        d = Sluice(name="unknown_event")
        try:
            d.start()
            self.assertEqual(d.stop(), 0)
        except BaseException:
            d.cleanup()
            raise
        with open(d.log_path, "ab") as log:
            log.write(b'{"ts":"2026-01-01T00:00:00.000Z","level":"error",'
                      b'"event":"log.unknown_event","name":"smtp.made_up"}\n')
        with self.assertRaisesRegex(AssertionError, "log.unknown_event"):
            d.cleanup()


if __name__ == "__main__":
    main()
