"""
Limits: command line length (RFC 5321 §4.5.3.1.4), SIZE (RFC 1870) at MAIL and after the final
dot, text line length in DATA, recipients per message, errors per session, idle timeouts and the
connection limit. Each test runs its own daemon with the limit it exercises.
"""
import socket
import struct
import time

from harness import SluiceTestCase, main, queued_id, send_message


def lines_of(total, width=78):
    """A message body of about `total` octets in CRLF lines of `width` characters."""
    line = b"x" * width + b"\r\n"
    return b"Subject: big\r\n\r\n" + line * (total // len(line) + 1)


class Limits(SluiceTestCase):
    def daemon(self, **limits):
        return self.start_sluice(config={"limits": limits})

    def test_command_line_length(self):
        d = self.daemon(max_errors=100)
        with d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            line = b"NOOP " + b"x" * 593  # 598 + CRLF = 600 octets
            self.assertReply(c.cmd(line), 500, "5.5.2", "600-octet command line")
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0", "session continues")
            self.assertReply(c.cmd(b"NOOP " + b"y" * 505), 250, "2.0.0", "512 octets with CRLF")
            self.assertReply(c.cmd(b"NOOP " + b"y" * 506), 500, "5.5.2", "513 octets with CRLF")
            # A huge line is discarded whole: one reply, and nothing of it runs as a command.
            c.send(b"NOOP " + b"z" * 100000 + b"\r\nQUIT" + b"w" * 1000 + b"\r\n")
            self.assertReply(c.read_reply(), 500, "5.5.2", "100 kB line")
            self.assertReply(c.read_reply(), 500, "5.5.2", "1 kB line")
            self.assertEqual(c.pending(0.3), b"", "one reply per over-long line")
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")

    def test_size_parameter_over_the_limit(self):
        d = self.daemon(max_message_size=20000)
        with d.connect() as c:
            r = c.ehlo()
            self.assertIn("SIZE 20000", r.lines)
            self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=20001"), 552, "5.3.4", "SIZE=max+1")
            self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=99999999999999999999"), 552,
                             "5.3.4", "SIZE beyond 64 bits")
            self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=20000"), 250, "2.1.0", "SIZE=max")

    def test_message_over_the_limit_is_refused_after_the_dot(self):
        d = self.daemon(max_message_size=20000)
        small = lines_of(10000)
        with d.connect() as c:
            self.open_data(c, "a@example.org", "b@example.com")
            c.send(lines_of(40000))
            self.assertEqual(c.pending(0.3), b"", "reply before the final dot")
            c.send(b".\r\n")
            self.assertReply(c.read_reply(15), 552, "5.3.4", "message over max_message_size")
            # The session goes on; a message under the limit is accepted.
            qid = queued_id(send_message(c, "a@example.org", ["b@example.com"], small))
            self.assertIsNotNone(qid)
        self.assertEqual([e["id"] for e in d.queue_list()], [qid], "oversized message spooled")
        self.assertStored(d, qid, small)
        self.assertEqual(len(d.events("smtp.accepted")), 1)
        self.assertTrue([e for e in d.events("smtp.rejected") if e.get("code") == 552],
                        "smtp.rejected for the oversized message")

    def test_text_line_over_1000_octets(self):
        d = self.daemon()
        ok = b"Subject: lines\r\n\r\n" + b"a" * 998 + b"\r\n"
        with d.connect() as c:
            self.open_data(c, "a@example.org", "b@example.com")
            c.send(b"Subject: lines\r\n\r\n" + b"a" * 999 + b"\r\n.\r\n")
            self.assertReply(c.read_reply(15), 500, "5.5.2", "1001-octet text line")
            qid = queued_id(send_message(c, "a@example.org", ["b@example.com"], ok))
            self.assertIsNotNone(qid, "1000-octet text line refused")
        self.assertEqual([e["id"] for e in d.queue_list()], [qid])
        self.assertStored(d, qid, ok)

    def test_too_many_recipients(self):
        d = self.daemon(max_recipients_per_message=3)
        content = b"Subject: rcpts\r\n\r\nthree\r\n"
        with d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
            for i in range(3):
                self.assertReply(c.cmd("RCPT TO:<r%d@example.com>" % i), 250, "2.1.5")
            self.assertReply(c.cmd("RCPT TO:<r3@example.com>"), 452, "4.5.3", "recipient max+1")
            self.assertReply(c.cmd("RCPT TO:<r4@example.com>"), 452, "4.5.3", "recipient max+2")
            self.assertReply(c.cmd("DATA"), 354)
            c.send(content + b".\r\n")
            qid = queued_id(c.read_reply(15))
            self.assertIsNotNone(qid)
        entry = [e for e in d.queue_list() if e["id"] == qid][0]
        self.assertEqual(entry["rcpts"], ["r0@example.com", "r1@example.com", "r2@example.com"])

    def test_too_many_errors(self):
        max_errors = 3
        d = self.daemon(max_errors=max_errors)
        with d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            replies = []
            for i in range(max_errors + 1):
                try:
                    c.send(b"BOGUS%d\r\n" % i)
                    replies.append(c.read_reply())
                    if replies[-1].code == 500:
                        continue
                    break
                except (ConnectionError, OSError) as e:
                    self.fail("connection lost without 421 after %r: %s" % (replies, e))
            # The max_errors-th error, or the one after, brings 421 (possibly after its own 500).
            codes = [r.code for r in replies]
            self.assertEqual(codes[:max_errors - 1], [500] * (max_errors - 1),
                             "errors below the limit: %r" % replies)
            if replies[-1].code == 500:
                replies.append(c.read_reply())
            self.assertReply(replies[-1], 421, "4.7.0", "after %d errors" % max_errors)
            self.assertLessEqual(len(replies), max_errors + 2, replies)
            self.assertTrue(c.wait_closed(5), "connection open after 421")

    def test_command_timeout(self):
        d = self.daemon(command_timeout="2s")
        with d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            start = time.monotonic()
            r = c.read_reply(timeout=10)
            elapsed = time.monotonic() - start
            self.assertReply(r, 421, "4.4.2", "idle session")
            self.assertGreater(elapsed, 1.5, "timeout fired early")
            self.assertTrue(c.wait_closed(5), "connection open after the timeout 421")
        # Activity resets the timer: NOOPs every second for 3 s keep the session.
        with d.connect() as c:
            for _ in range(3):
                time.sleep(1)
                self.assertReply(c.cmd("NOOP"), 250, "2.0.0", "NOOP within the timeout")

    def test_data_timeout(self):
        d = self.daemon(command_timeout="30s", data_timeout="2s")
        with d.connect() as c:
            self.open_data(c, "a@example.org", "b@example.com")
            c.send(b"Subject: stalled\r\n\r\nhalf a mess")
            start = time.monotonic()
            r = c.read_reply(timeout=10)
            self.assertReply(r, 421, "4.4.2", "stalled DATA")
            self.assertGreater(time.monotonic() - start, 1.5, "data timeout fired early")
            self.assertTrue(c.wait_closed(5))
        self.assertEqual(d.queue_list(), [], "a timed-out message was spooled")

    def test_connection_limit(self):
        d = self.daemon(max_connections=2)
        first = d.connect()
        self.addCleanup(first.close)
        second = d.connect()
        self.addCleanup(second.close)
        self.assertEqual((first.banner.code, second.banner.code), (220, 220))
        with d.connect(banner=False) as third:
            r = third.read_reply()
            self.assertReply(r, 421, "4.7.0", "connection over max_connections")
            self.assertTrue(third.wait_closed(5), "connection over the limit left open")
        self.assertReply(first.cmd("NOOP"), 250, "2.0.0", "sessions under the limit still work")
        first.cmd("QUIT")
        first.close()
        # The slot frees once the daemon has seen the close; retry for a bounded time.
        deadline = time.monotonic() + 5
        while True:
            with d.connect(banner=False) as again:
                r = again.read_reply()
                if r.code == 220:
                    self.assertReply(again.ehlo(), 250)
                    break
            self.assertLess(time.monotonic(), deadline, "slot not freed after a session ended")
            time.sleep(0.1)

    def test_many_connections_under_the_limit(self):
        d = self.daemon(max_connections=50)
        conns = []
        try:
            for _ in range(40):
                conns.append(d.connect())
            self.assertTrue(all(c.banner.code == 220 for c in conns))
            for c in conns:
                self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        finally:
            for c in conns:
                c.close()

    def test_abrupt_client_close_mid_data(self):
        d = self.daemon()
        c = d.connect()
        self.open_data(c, "a@example.org", "b@example.com")
        c.send(lines_of(5000))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # RST
        d.wait_event("smtp.disconnect")
        self.assertEqual(d.queue_list(), [], "an unfinished message was spooled")
        with d.connect() as c2:
            self.assertIsNotNone(queued_id(send_message(c2, "a@example.org", ["b@example.com"],
                                                        b"Subject: after\r\n\r\nok\r\n", helo="x.org")))


if __name__ == "__main__":
    main()
