"""
Slow clients cannot hold a connection slot for ever. A command line must be complete within
limits.command_timeout of the previous reply however slowly it trickles in, DATA must end within
limits.data_deadline of the 354 however steadily it flows, and a session ends with 421 4.4.2 at
its first command boundary after limits.session_lifetime (never inside DATA, so a message that
got its 250 is kept). A reload applies new limits to new sessions. The clients here are raw
sockets sending one byte at a time; every trickle is bounded in bytes and time.
"""
import signal
import socket
import time

from harness import SluiceTestCase, main, queued_id

CONTENT = b"Subject: slow\r\n\r\nslowly, slowly\r\n"


def trickle(conn, data, interval):
    """Sends data one byte every `interval` seconds until the server says something or closes.
    Returns (bytes sent, what the server sent meanwhile). Bounded by len(data) * interval."""
    for i in range(len(data)):
        try:
            conn.send(data[i:i + 1])
        except OSError:
            return i, conn.buf
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline:
            conn.sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                chunk = conn.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except OSError:
                chunk = b""
            if not chunk:
                return i + 1, conn.buf
            conn.buf += chunk
        if conn.buf:
            return i + 1, conn.buf
    return len(data), conn.buf


def noop_until_cut(conn, pause=0.3, bound=20):
    """A NOOP every `pause` seconds until a reply other than 250, which may also come unasked
    while the client waits (RFC 5321 §3.8). Returns the replies; at most `bound` rounds."""
    replies = []
    for _ in range(bound):
        unasked = conn.pending(pause)
        if unasked:
            conn.buf = unasked
            replies.append(conn.read_reply())
            break
        replies.append(conn.cmd("NOOP"))
        if replies[-1].code != 250:
            break
    return replies


class SlowClients(SluiceTestCase):
    def daemon(self, **limits):
        return self.start_sluice(config={"limits": limits})

    def start_data(self, c):
        """EHLO, MAIL, RCPT, DATA: the client may send the message now."""
        for line, code in (("EHLO client.test", 250), ("MAIL FROM:<a@example.org>", 250),
                           ("RCPT TO:<b@example.com>", 250), ("DATA", 354)):
            self.assertReply(c.cmd(line), code, msg=line)

    def test_command_trickled_byte_by_byte(self):
        """A line fed one byte every 0.3 s: the 421 comes command_timeout after the previous
        reply (the idle wait before its first byte included), long before the line would end."""
        d = self.daemon(command_timeout="2s")
        with d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            replied = time.monotonic()
            time.sleep(0.8)  # the client idles before it starts: that counts too
            line = b"NOOP " + b"x" * 25 + b"\r\n"  # 32 bytes: about 10 s at this pace
            sent, got = trickle(c, line, 0.3)
            elapsed = time.monotonic() - replied
            self.assertLess(sent, len(line), "the whole line went through: %r" % got)
            r = c.read_reply()
            self.assertReply(r, 421, "4.4.2", "trickled command")
            self.assertGreater(elapsed, 1.8, "command_timeout fired early")
            self.assertLess(elapsed, 2 + 2.5, "command_timeout fired late")
            self.assertTrue(c.wait_closed(5), "connection open after the 421")
        self.assertTrue(d.find("smtp.timeout", limit="limits.command_timeout"))

    def test_pipelined_commands_trickled(self):
        """Whole commands sent slowly keep the session: each line restarts the deadline."""
        d = self.daemon(command_timeout="2s")
        with d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            for _ in range(4):  # 4 x ~1.2 s: longer than command_timeout in all
                sent, got = trickle(c, b"NOOP\r\n", 0.2)
                self.assertEqual(sent, 6)
                self.assertReply(c.read_reply(), 250, "2.0.0", "NOOP sent within the deadline")

    def test_data_deadline(self):
        """DATA fed one byte every 0.3 s never pauses for data_timeout, but ends at data_deadline
        with 421 and nothing spooled."""
        d = self.daemon(command_timeout="30s", data_timeout="2s", data_deadline="3s")
        with d.connect() as c:
            self.start_data(c)
            start = time.monotonic()
            body = CONTENT + b"more text " * 4 + b"\r\n.\r\n"  # ~10 s at this pace
            sent, got = trickle(c, body, 0.3)
            elapsed = time.monotonic() - start
            self.assertLess(sent, len(body), "the whole message went through: %r" % got)
            self.assertReply(c.read_reply(), 421, "4.4.2", "DATA past its deadline")
            self.assertGreater(elapsed, 2.8, "data_deadline fired early")
            self.assertLess(elapsed, 3 + 2.5, "data_deadline fired late")
            self.assertTrue(c.wait_closed(5))
        self.assertTrue(d.find("smtp.timeout", limit="limits.data_deadline"))
        self.assertEqual(d.queue_list(), [], "a message cut at its deadline was spooled")
        self.assertEqual(d.events("smtp.accepted"), [])

    def test_data_pause(self):
        """data_timeout still limits each pause inside DATA."""
        d = self.daemon(data_timeout="1s", data_deadline="1h")
        with d.connect() as c:
            self.start_data(c)
            c.send(b"Subject: stalled\r\n")
            self.assertReply(c.read_reply(timeout=10), 421, "4.4.2", "stalled DATA")
        self.assertTrue(d.find("smtp.timeout", limit="limits.data_timeout"))

    def test_session_lifetime(self):
        """A busy session (a NOOP every 0.3 s, well within command_timeout) gets 421 4.4.2 at its
        first command after session_lifetime, and is closed."""
        d = self.daemon(command_timeout="2s", session_lifetime="2s")
        with d.connect() as c:
            start = time.monotonic()
            self.assertReply(c.ehlo(), 250)
            replies = noop_until_cut(c)
            elapsed = time.monotonic() - start
            self.assertGreater(len(replies), 3, "cut early: %r" % replies)
            self.assertReply(replies[-1], 421, "4.4.2", "after session_lifetime")
            self.assertTrue(all(r.code == 250 for r in replies[:-1]), replies)
            self.assertGreater(elapsed, 1.9, "session_lifetime fired early")
            self.assertLess(elapsed, 2 + 2.5, "session_lifetime fired late")
            self.assertTrue(c.wait_closed(5))
        self.assertTrue(d.find("smtp.timeout", limit="limits.session_lifetime"))

    def test_lifetime_ends_after_the_message(self):
        """session_lifetime passing inside DATA does not cut the message: it is read, committed
        and acknowledged, then 421 4.4.2 follows at once. The 250'd message survives kill -9."""
        d = self.daemon(command_timeout="10s", data_timeout="10s", session_lifetime="2s")
        with d.connect() as c:
            start = time.monotonic()
            self.start_data(c)
            sent, got = trickle(c, CONTENT, 0.1)  # ~3.5 s: past the lifetime
            self.assertEqual((sent, got), (len(CONTENT), b""), "cut inside DATA")
            self.assertGreater(time.monotonic() - start, 2.5)
            c.send(b".\r\n")
            qid = queued_id(c.read_reply(15))
            self.assertIsNotNone(qid, "message refused")
            self.assertReply(c.read_reply(), 421, "4.4.2", "after the message")
            self.assertTrue(c.wait_closed(5))
        d.kill9()
        d.restart()
        self.assertEqual([e["id"] for e in d.queue_list()], [qid])

    def test_reload_applies_to_new_sessions(self):
        """A reload's session_lifetime cuts sessions opened after it; one opened before keeps
        the limits it started with."""
        d = self.daemon(command_timeout="10s")
        before = d.connect()
        self.addCleanup(before.close)
        self.assertReply(before.ehlo(), 250)
        d.extra = {"limits": {"command_timeout": "10s", "session_lifetime": "2s"}}
        d.write_config()
        d.signal(signal.SIGHUP)
        d.wait_event("daemon.reload")
        with d.connect() as after:
            start = time.monotonic()
            self.assertReply(after.ehlo(), 250)
            replies = noop_until_cut(after)
            self.assertEqual(replies[-1].code, 421,
                             "new session not cut by the reloaded session_lifetime")
            self.assertLess(time.monotonic() - start, 2 + 2.5)
        self.assertReply(before.cmd("NOOP"), 250, "2.0.0", "older session cut by the new limit")


if __name__ == "__main__":
    main()
