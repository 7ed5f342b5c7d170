"""
CHUNKING (RFC 3030) on the inbound session, on raw sockets counting replies: BDAT chunks one at a
time and pipelined with the envelope, stored byte for byte (no dot-stuffing, no end-of-data
marker: a fake end of data and a second envelope inside a chunk stay text); one 250 per
intermediate chunk with its size, the LAST's 250 after the commit; BDAT without a transaction or
a valid recipient, BDAT 0 LAST, a chunk over the size limit (552, its octets still read), DATA
and MAIL between chunks, a bad argument (501 and close); the transaction reset after LAST, RSET
and EHLO (Exim CVE-2020-28021/28022 class); a connection lost between chunks or inside one
leaves nothing behind; and the body consumers (the Authentication-Results filter, DKIM
verification, delivery) see a message sent in chunks as they see one sent with DATA.
"""
import os

import harness
import test_inbound
from harness import SluiceTestCase, main, queued_id
from mailnet import MailNetCase
from test_inbound import HELO, message

CRLF = b"\r\n"
MAX_SIZE = 4000
SMUGGLED = (b"Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<x@example.org>\r\n"
            b"RCPT TO:<z@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n")


def bdat(chunk, last=False):
    """A BDAT command and its chunk."""
    return b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk


class Chunking(SluiceTestCase):
    def setUp(self):
        self.d = self.start_sluice(listeners=[{"name": "submission", "role": "submission"}],
                                   config={"limits": {"max_message_size": MAX_SIZE,
                                                      "max_errors": 100}})

    def envelope(self, c, rcpt="b@example.com"):
        self.assertIn("CHUNKING", c.ehlo().lines)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<%s>" % rcpt), 250, "2.1.5")

    def one_write(self, c, data, codes, timeout=10):
        """Sends data in one write; the replies must be `codes`, in order, and nothing more."""
        c.send(data)
        replies = c.read_replies(len(codes), timeout=timeout)
        self.assertEqual([r.code for r in replies], codes, replies)
        self.assertEqual(c.pending(0.3), b"", "one reply per command")
        return replies

    def assertNothingQueued(self):
        self.assertEqual(self.d.queue_list(), [])
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "tmp")), [], "a file left in tmp/")

    def test_chunks_one_at_a_time(self):
        with self.d.connect() as c:
            self.envelope(c)
            parts = [SMUGGLED[:7], SMUGGLED[7:40], SMUGGLED[40:]]
            for part in parts[:-1]:
                c.send(bdat(part))
                r = c.read_reply()
                self.assertReply(r, 250, "2.0.0")
                self.assertIn("%d octets" % len(part), r.text)
            c.send(bdat(parts[-1], last=True))
            qid = queued_id(c.read_reply(10))
            self.assertIsNotNone(qid)
            self.assertEqual(c.pending(0.3), b"", "the smuggled envelope got no reply")
            self.assertReply(c.cmd("QUIT"), 221)
        self.assertStored(self.d, qid, SMUGGLED)  # as sent: no dot-stuffing to undo
        self.assertEqual(len(self.d.queue_list()), 1)

    def test_whole_transaction_in_one_write(self):
        content = b"Subject: pipelined\r\n\r\n.leading dot\r\n\r\n.\r\nbare\nLF and CR\r"
        with self.d.connect(banner=False) as c:
            self.assertReply(c.read_reply(), 220)
            replies = self.one_write(
                c, b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n" +
                bdat(content[:10]) + bdat(content[10:], last=True) + b"QUIT\r\n",
                [250, 250, 250, 250, 250, 221])
            self.assertIn("10 octets", replies[3].text)
            qid = queued_id(replies[4])
            self.assertIsNotNone(qid, replies[4])
        self.assertStored(self.d, qid, content)

    def test_chunk_split_across_writes(self):
        content = b"Subject: slow\r\n\r\n" + b"0123456789" * 30 + CRLF
        with self.d.connect() as c:
            self.envelope(c)
            data = bdat(content, last=True)
            for i in range(0, len(data), 7):
                c.send(data[i:i + 7])
            qid = queued_id(c.read_reply(10))
        self.assertStored(self.d, qid, content)

    def test_bdat_0_last(self):
        with self.d.connect() as c:
            self.envelope(c)
            replies = self.one_write(c, bdat(b"Subject: x\r\n\r\nbody\r\n") + b"BDAT 0 LAST\r\n",
                                     [250, 250])
            first = queued_id(replies[1])
            self.envelope(c)
            second = queued_id(self.one_write(c, b"BDAT 0 LAST\r\n", [250])[0])
        self.assertStored(self.d, first, b"Subject: x\r\n\r\nbody\r\n")
        self.assertStored(self.d, second, b"")  # an empty message: our Received: only

    def test_no_transaction_or_no_valid_recipient(self):
        """The chunk of a refused BDAT is read and dropped: the commands inside it never run."""
        inside = b"NOOP\r\nNOOP\r\n"
        with self.d.connect(banner=False) as c:
            self.assertReply(c.read_reply(), 220)
            self.one_write(c, bdat(inside, last=True) + b"NOOP\r\n", [503, 250])
            self.assertReply(c.ehlo(), 250)
            r = self.one_write(c, bdat(inside) + b"NOOP\r\n", [503, 250])[0]
            self.assertReply(r, 503, "5.5.1")
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
            self.one_write(c, bdat(inside, last=True) + b"NOOP\r\n", [503, 250])
            self.assertReply(c.cmd("RCPT TO:<b@@example.com>"), 501)
            r = self.one_write(c, bdat(inside, last=True) + b"NOOP\r\n", [554, 250])[0]
            self.assertReply(r, 554, "5.5.1")
            # pipelined: the refused recipient, the BDATs, then a good transaction
            self.one_write(c, b"RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bad@>\r\n" +
                           bdat(inside) + bdat(inside, last=True) + b"RSET\r\n" +
                           b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n" +
                           bdat(b"ok\r\n", last=True), [250, 250, 501, 554, 554, 250, 250, 250, 250])
        self.assertEqual(len(self.d.queue_list()), 1)

    def test_chunk_over_the_size_limit(self):
        """552 5.3.4 as soon as a chunk would pass limits.max_message_size, after its octets are
        read; the transaction is over, so the chunks already pipelined after it find none."""
        big = b"x" * 998 + CRLF
        with self.d.connect() as c:
            self.envelope(c)
            r = self.one_write(c, bdat(big * 3) + bdat(big * 2) + bdat(b"end\r\n", last=True) +
                               b"NOOP\r\n", [250, 552, 503, 250])
            self.assertReply(r[1], 552, "5.3.4")
            self.assertNothingQueued()
            self.envelope(c)  # a single chunk larger than SIZE
            self.one_write(c, bdat(b"y" * (MAX_SIZE + 1), last=True) + b"NOOP\r\n", [552, 250])
            self.envelope(c)  # exactly the limit
            qid = queued_id(self.one_write(c, bdat((b"z" * 98 + CRLF) * (MAX_SIZE // 100), last=True), [250])[0])
            self.assertIsNotNone(qid)

    def test_long_line_in_a_chunk(self):
        with self.d.connect() as c:
            self.envelope(c)
            r = self.one_write(c, bdat(b"Subject: x\r\n\r\n" + b"l" * 999) +
                               bdat(b"\r\n", last=True), [250, 500])[1]
            self.assertReply(r, 500, "5.5.2")
            self.envelope(c)  # 998 octets and CRLF is the longest line (RFC 5321 4.5.3.1.6)
            self.one_write(c, bdat(b"Subject: x\r\n\r\n" + b"l" * 998 + CRLF, last=True), [250])

    def test_other_commands_between_chunks(self):
        with self.d.connect() as c:
            self.envelope(c)
            self.one_write(c, bdat(b"Subject: x\r\n") + b"DATA\r\nMAIL FROM:<c@example.org>\r\n"
                           b"RCPT TO:<d@example.com>\r\nNOOP\r\n" + bdat(b"\r\nbody\r\n") +
                           b"BDAT 0 LAST\r\n", [250, 503, 503, 503, 250, 250, 250])
            rcpts = self.d.queue_list()[0]["rcpts"]
            self.assertEqual(rcpts, ["b@example.com"])
            # and a BDAT transaction refuses DATA after LAST only until the next MAIL
            self.assertReply(c.cmd("DATA"), 503)

    def test_state_reset_after_last_rset_and_ehlo(self):
        """Nothing of a transaction outlives LAST, RSET or EHLO: the next BDAT finds no
        transaction, and the next message holds none of the earlier chunks."""
        with self.d.connect() as c:
            self.envelope(c)
            first = queued_id(self.one_write(c, bdat(b"first\r\n", last=True), [250])[0])
            r = self.one_write(c, bdat(b"after LAST\r\n", last=True), [503])[0]
            self.assertIn("need MAIL", r.text)
            for reset in (b"RSET", b"EHLO client.test"):
                self.envelope(c)
                self.one_write(c, bdat(b"dropped\r\n") + reset + CRLF +
                               bdat(b"after reset\r\n", last=True) + b"NOOP\r\n",
                               [250, 250, 503, 250])
            self.envelope(c)
            second = queued_id(self.one_write(c, bdat(b"second\r\n", last=True), [250])[0])
        self.assertStored(self.d, first, b"first\r\n")
        self.assertStored(self.d, second, b"second\r\n")
        self.assertEqual(len(self.d.queue_list()), 2)

    def test_bad_argument_closes(self):
        """A BDAT whose size cannot be read leaves the chunk's end unknown: 501 and the session
        ends, so nothing of the chunk is read as commands."""
        for arg in (b"", b"x", b"-1", b"10 NOTLAST", b"10 LAST x", b"1" * 21, b"10LAST"):
            with self.subTest(arg=arg):
                with self.d.connect() as c:
                    self.envelope(c)
                    c.send(b"BDAT " + arg + b"\r\nNOOP\r\n")
                    self.assertReply(c.read_reply(), 501, "5.5.4")
                    self.assertTrue(c.wait_closed(5), "open after 501")
                    self.assertEqual(c.buf, b"")
        with self.d.connect() as c:  # before EHLO there is no transaction: 503, no close
            self.one_write(c, b"BDAT x\r\nBDAT 6\r\nNOOP\r\nNOOP\r\n", [503, 503, 250])
        self.assertNothingQueued()

    def test_connection_lost_between_and_inside_chunks(self):
        for cut in (b"", b"partial"):
            with self.subTest(cut=cut):
                with self.d.connect() as c:
                    self.envelope(c)
                    self.one_write(c, bdat(b"Subject: lost\r\n\r\n"), [250])
                    c.send(b"BDAT 100 LAST\r\n" + cut)
                self.d.wait_event("smtp.disconnect", count=2 if cut else 1)
                self.assertNothingQueued()
        self.d.settle()
        self.assertEqual(self.d.events("smtp.accepted"), [])


class ChunkingDeadlines(SluiceTestCase):
    def test_a_stalled_chunk_times_out(self):
        """A chunk that stops coming: limits.data_timeout inside the message's chunk, and
        limits.command_timeout for a refused one (read only to be dropped); 421 4.4.2 either way,
        and nothing is kept."""
        d = self.start_sluice(config={"limits": {"data_timeout": "1s", "command_timeout": "2s"}})
        cases = [("limits.data_timeout", True), ("limits.command_timeout", False)]
        for limit, in_transaction in cases:
            with self.subTest(limit=limit):
                with d.connect() as c:
                    self.assertReply(c.ehlo(), 250)
                    if in_transaction:
                        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
                        self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250)
                    c.send(b"BDAT 100 LAST\r\nSubject: stalled\r\n")
                    self.assertReply(c.read_reply(6), 421, "4.4.2")
                    self.assertTrue(c.wait_closed(5), "open after 421")
                self.assertTrue(d.wait_event("smtp.timeout", limit=limit))
        self.assertEqual(d.queue_list(), [])
        self.assertEqual(os.listdir(os.path.join(d.spool, "tmp")), [])


# The relay battery's forms (mta/relay_battery.c), {F} the foreign domain, {L} the local one.
RELAY_FORMS = ["<user@{F}>", "<user%{F}@{L}>", "<{F}!user@{L}>", "<{F}!user>", "<@{L}:user@{F}>",
               "<\"user@{F}\"@{L}>", "<\"user%{F}\"@{L}>", "<user@[192.0.2.1]>",
               "<user@[IPv6:2001:db8::1]>", "<user@{F}.>", "<user@FOREIGN.Example>",
               "<us\\er@{F}>", " <user@{F}>"]


class ChunkingRelay(SluiceTestCase):
    def test_relay_battery_with_bdat(self):
        """The battery's relay attempts (it judges at RCPT and never sends a message) followed
        by the message in a BDAT LAST: the recipient is refused, so the chunk is too (554, read
        and dropped) and nothing is queued, as with DATA; a local recipient gets its message."""
        d = self.start_sluice(listeners=[{"name": "submission", "role": "submission"}],
                              config={"relay": {"trusted_networks": ["10.0.0.0/8"]},
                                      "limits": {"max_errors": 100}})
        chunk = b"Subject: relayed?\r\n\r\nbody\r\n"
        with d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            for form in RELAY_FORMS:
                rcpt = form.replace("{F}", "foreign.example").replace("{L}", "example.com")
                with self.subTest(rcpt=rcpt):
                    c.send(b"MAIL FROM:<relay-test@foreign.example>\r\nRCPT TO:" +
                           rcpt.encode() + b"\r\n" + bdat(chunk, last=True) + b"RSET\r\n")
                    codes = [r.code for r in c.read_replies(4)]
                    self.assertEqual(codes[0], 250)
                    self.assertGreaterEqual(codes[1], 500, codes)
                    self.assertEqual(codes[2:], [554, 250], codes)
            self.assertEqual(d.queue_list(), [])
            c.send(b"MAIL FROM:<relay-test@foreign.example>\r\nRCPT TO:<user@example.com>\r\n" +
                   bdat(chunk, last=True))
            self.assertEqual([r.code for r in c.read_replies(3, timeout=10)], [250, 250, 250])
        self.assertEqual([e["rcpts"] for e in d.queue_list()], [["user@example.com"]])


class ChunkingDelivery(SluiceTestCase):
    def test_bdat_and_data_deliver_the_same_bytes(self):
        """One message to two domains that a second daemon receives: one sent with BDAT (it
        offers CHUNKING), the other with DATA (shaping chunking: false for its domain). Both
        copies are stored byte for byte alike, several chunks and dot-starting lines included."""
        b = self.start_sluice(listeners=[{"name": "mx", "role": "submission"}],
                              config={"domains": {"chunk.test": None, "plain.test": None},
                                      "server": {"log": {"level": "debug"}}})
        to_b = "[%s]:%d" % b.addr()
        a = self.start_sluice(config={
            "domains": {"example.com": None, "chunk.test": {"deliver_to": to_b},
                        "plain.test": {"deliver_to": to_b}},
            "shaping": {"rules": [{"match": {"domain": "plain.test"}, "chunking": False}]}})
        content = (b"Subject: same bytes\r\n\r\n.leading dot\r\n..two\r\n" +
                   b"".join(b"line %d\r\n.\r\n" % i for i in range(20000)) + b"end\r\n")
        with a.connect() as c:
            r = harness.send_message(c, "s@example.com", ["u@chunk.test", "u@plain.test"],
                                     content.replace(b"\r\n.", b"\r\n.."), helo="client.test")
            self.assertReply(r, 250)
        accepted = b.wait_event("smtp.accepted", count=2, timeout=30)
        copies = {}
        for event in accepted:
            received, rest = harness.split_received(b.queue_body(event["queue_id"]))
            copies[event["rcpts"]] = rest
            states = {e["to"] for e in b.events("smtp.state", session=event["session"])}
            self.assertEqual("chunk" in states, event["rcpts"] == "u@chunk.test", states)
        self.assertEqual(sorted(copies), ["u@chunk.test", "u@plain.test"])
        self.assertEqual(copies["u@chunk.test"], copies["u@plain.test"])
        self.assertTrue(copies["u@chunk.test"].endswith(content), copies["u@chunk.test"][:300])


class ChunkingInbound(MailNetCase):
    """A message sent in chunks to an inbound listener goes through the same consumers as one sent
    with DATA: forged Authentication-Results removed, DKIM verified, delivered onward."""
    setUp = test_inbound.InboundTest.setUp
    start_mx = test_inbound.InboundTest.start_mx
    connect = test_inbound.InboundTest.connect

    def test_consumers_see_the_chunks(self):
        self.start_mx(spf="mark")
        headers = b"Authentication-Results: sluice.test; dkim=pass\r\n"
        content = message("chunks", headers=headers)
        c = self.connect()
        self.assertReply(c.cmd("EHLO " + HELO), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@pass.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@example.test>"), 250)
        # the forged field is cut across chunks
        c.send(bdat(content[:30]) + bdat(content[30:], last=True))
        self.assertReply(c.read_reply(10), 250)
        self.assertReply(c.read_reply(10), 250)
        self.wait(lambda: self.sink.delivered(), 20, "delivered")
        data = self.sink.delivered()[0][1].data
        head = data.split(b"\r\n\r\n", 1)[0] + CRLF
        self.assertNotIn(b"dkim=pass", head)
        self.assertIn(b"\tspf=pass smtp.mailfrom=pass.test;\r\n\tdkim=none\r\n", head)
        self.assertTrue(data.endswith(content.replace(headers, b"")), data[-300:])
        self.assertTrue(self.d.find("smtp.header_removed", count=1))


if __name__ == "__main__":
    main()
