"""
RFC 2920 pipelining: command groups sent in one write get their replies in order, one each, and the
end of data shares a packet with the next command without that command leaking into the message.
"""
from harness import SluiceTestCase, main, queued_id


class Pipelining(SluiceTestCase):
    def setUp(self):
        self.d = self.start_sluice(listeners=[{"name": "submission", "role": "submission"}])

    def one_write(self, c, data, codes, timeout=None):
        """Sends data in one write and reads a reply for each of `codes`, which must come in that
        order. Returns the replies."""
        c.send(data)
        replies = c.read_replies(len(codes), timeout=timeout)
        self.assertEqual([r.code for r in replies], codes, replies)
        return replies

    def test_envelope_in_one_write(self):
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            replies = self.one_write(c, b"MAIL FROM:<a@example.org>\r\nRCPT TO:<r1@example.com>\r\n"
                                     b"RCPT TO:<r2@example.com>\r\nRCPT TO:<r3@example.net>\r\n"
                                     b"DATA\r\n", [250, 250, 250, 250, 354])
            self.assertEqual([r.enhanced for r in replies[:4]],
                             ["2.1.0", "2.1.5", "2.1.5", "2.1.5"], replies)
            content = b"Subject: pipelined\r\n\r\nbody\r\n"
            c.send(content + b".\r\n")
            qid = queued_id(c.read_reply())
            self.assertIsNotNone(qid)
        self.assertStored(self.d, qid, content)
        entry = [e for e in self.d.queue_list() if e["id"] == qid][0]
        self.assertEqual(entry["rcpts"], ["r1@example.com", "r2@example.com", "r3@example.net"])

    def test_errors_inside_a_group_keep_the_order(self):
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.one_write(c, b"MAIL FROM:<a@example.org>\r\nRCPT TO:<bad@>\r\n"
                           b"RCPT TO:<ok@example.com>\r\nBOGUS\r\nRCPT TO:<ok2@example.com>\r\n"
                           b"NOOP\r\n", [250, 501, 250, 500, 250, 250])
            self.assertEqual(c.pending(0.3), b"", "exactly one reply per command")

    def test_whole_session_in_one_write(self):
        content = b"Subject: all at once\r\n\r\nline 1\r\n..stuffed\r\nline 3\r\n"
        with self.d.connect(banner=False) as c:
            # Wait for the banner first (RFC 2920 lets only the commands after EHLO be pipelined).
            self.assertReply(c.read_reply(), 220)
            replies = self.one_write(c, b"EHLO pipe.example.org\r\nMAIL FROM:<a@example.org>\r\n"
                                     b"RCPT TO:<b@example.com>\r\nDATA\r\n" + content +
                                     b".\r\nQUIT\r\n", [250, 250, 250, 354, 250, 221], 15)
            qid = queued_id(replies[4])
            self.assertIsNotNone(qid, replies[4])
            self.assertTrue(c.wait_closed(5), "closed after QUIT")
            self.assertEqual(c.buf, b"")
        self.assertStored(self.d, qid, content.replace(b"\r\n..", b"\r\n."))

    def test_next_command_in_the_packet_of_the_final_dot(self):
        first = b"Subject: one\r\n\r\nfirst message\r\n"
        second = b"Subject: two\r\n\r\nsecond message\r\n"
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.one_write(c, b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
                           [250, 250, 354])
            replies = self.one_write(c, first + b".\r\nMAIL FROM:<c@example.org>\r\n"
                                     b"RCPT TO:<d@example.com>\r\nDATA\r\n",
                                     [250, 250, 250, 354], 15)
            qid1 = queued_id(replies[0])
            replies = self.one_write(c, second + b".\r\nRSET\r\nQUIT\r\n", [250, 250, 221], 15)
            qid2 = queued_id(replies[0])
        self.assertNotEqual(qid1, qid2)
        self.assertStored(self.d, qid1, first)
        self.assertStored(self.d, qid2, second)
        senders = {e["id"]: e["sender"] for e in self.d.queue_list()}
        self.assertEqual(senders, {qid1: "a@example.org", qid2: "c@example.org"})

    def test_many_transactions_in_one_write(self):
        n = 20
        chunk = b""
        for i in range(n):
            chunk += (b"MAIL FROM:<s%d@example.org>\r\nRCPT TO:<r@example.com>\r\nDATA\r\n"
                      b"Subject: %d\r\n\r\nmessage %d\r\n.\r\n" % (i, i, i))
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            replies = self.one_write(c, chunk + b"QUIT\r\n", [250, 250, 354, 250] * n + [221], 30)
            ids = [queued_id(r) for r in replies[3::4]]
        self.assertEqual(len(set(ids)), n)
        for i, qid in enumerate(ids):
            self.assertStored(self.d, qid, b"Subject: %d\r\n\r\nmessage %d\r\n" % (i, i))

    def test_command_split_across_writes(self):
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            for piece in (b"MA", b"IL FROM:<a@exa", b"mple.org>\r", b"\nRCPT TO:<b@example.com>\r\n"):
                c.send(piece)
                if piece.endswith(b"\r"):
                    self.assertEqual(c.pending(0.2), b"", "no reply before the LF")
            self.assertEqual([r.code for r in c.read_replies(2)], [250, 250])


if __name__ == "__main__":
    main()
