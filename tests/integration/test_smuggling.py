"""
SMTP smuggling (CVE-2023-51764 class): only CRLF.CRLF ends the data, so a fake end of data made of
bare CR/LF followed by a second envelope stays text of ONE message, with one 250 reply; the bare CR
and LF are stored as the CRLF every later reader takes them for (so a DKIM signature covers what
is sent). Also dot-stuffing (RFC 5321 §4.5.2) in every position.
"""
import re

from harness import SluiceTestCase, main, queued_id

SMUGGLED = (b"MAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nI should not exist\r\n")

FAKE_ENDS = {
    "LF.LF": b"\n.\n",
    "CRLF.LF": b"\r\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CRLF": b"\r.\r\n",
    "CR.CR": b"\r.\r",
    "CRLF.CR": b"\r\n.\r",
    "CR.LF": b"\r.\n",
}


def unstuff(sent):
    """What the server must store for the data bytes `sent` (ending in CRLF, final dot excluded):
    RFC 5321 §4.5.2, lines being CRLF-delimited only, a leading dot of a line is removed; then
    every bare CR or LF becomes CRLF."""
    lines = sent.split(b"\r\n")
    unstuffed = b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)
    return re.sub(rb"\r\n|\r|\n", b"\r\n", unstuffed)


class Smuggling(SluiceTestCase):
    def setUp(self):
        # A submission listener for a trusted client: a smuggled envelope, if it were executed,
        # would be accepted, so only the reply count and the spool tell.
        self.d = self.start_sluice(listeners=[{"name": "submission", "role": "submission"}])

    def transaction(self, data, one_write=True):
        """Sends one envelope and `data` + ".CRLF"; returns (queue id, replies after DATA)."""
        with self.d.connect() as c:
            self.open_data(c, "sender@example.org", "victim@example.com")
            if one_write:
                c.send(data + b".\r\n")
            else:
                for i in range(len(data)):  # one byte per write: state kept across reads
                    c.send(data[i:i + 1])
                c.send(b".\r\n")
            first = c.read_reply(15)
            c.send(b"QUIT\r\n")
            rest = []
            while True:
                r = c.read_reply()
                rest.append(r)
                if r.code == 221:
                    break
            return queued_id(first), [first] + rest

    def check_fake_end(self, name, one_write=True):
        fake = FAKE_ENDS[name]
        data = b"Subject: carrier\r\n\r\nbefore" + fake + SMUGGLED
        qid, replies = self.transaction(data, one_write)
        self.assertIsNotNone(qid, "%s: no 250 at the final dot: %r" % (name, replies))
        self.assertEqual([r.code for r in replies], [250, 221],
                         "%s: replies after DATA %r" % (name, replies))
        ids = [e["id"] for e in self.d.queue_list()]
        self.assertEqual(ids, [qid], "%s: messages in the spool" % name)
        entry = self.d.queue_list()[0]
        self.assertEqual(entry["sender"], "sender@example.org")
        self.assertEqual(entry["rcpts"], ["victim@example.com"])
        self.assertStored(self.d, qid, unstuff(data))
        self.assertIn(b"MAIL FROM:<x@y>\r\nRCPT TO:<z@w>\r\nDATA\r\n", self.d.queue_body(qid))
        self.assertEqual(len(self.d.events("smtp.accepted")), 1, name)

    def test_lf_dot_lf(self):
        self.check_fake_end("LF.LF")

    def test_crlf_dot_lf(self):
        self.check_fake_end("CRLF.LF")

    def test_lf_dot_crlf(self):
        self.check_fake_end("LF.CRLF")

    def test_cr_dot_crlf(self):
        self.check_fake_end("CR.CRLF")

    def test_cr_dot_cr(self):
        self.check_fake_end("CR.CR")

    def test_crlf_dot_cr(self):
        self.check_fake_end("CRLF.CR")

    def test_cr_dot_lf(self):
        self.check_fake_end("CR.LF")

    def test_fake_ends_byte_by_byte(self):
        self.check_fake_end("CRLF.LF", one_write=False)

    def test_all_fake_ends_in_one_message(self):
        data = b"Subject: all\r\n\r\n" + b"".join(b"x" + f + SMUGGLED for f in FAKE_ENDS.values())
        qid, replies = self.transaction(data)
        self.assertEqual([r.code for r in replies], [250, 221], replies)
        self.assertStored(self.d, qid, unstuff(data))

    def test_dot_stuffing(self):
        data = (b".leading dot at the very start\r\nSubject: dots\r\n\r\n..line\r\n...\r\n..\r\n"
                b".. \r\nno dot\r\n.x.\r\n....\r\nend.\r\n")
        expected = (b"leading dot at the very start\r\nSubject: dots\r\n\r\n.line\r\n..\r\n.\r\n"
                    b". \r\nno dot\r\nx.\r\n...\r\nend.\r\n")
        self.assertEqual(unstuff(data), expected)
        qid, replies = self.transaction(data)
        self.assertEqual([r.code for r in replies], [250, 221], replies)
        self.assertStored(self.d, qid, expected)

    def test_dot_stuffing_byte_by_byte(self):
        data = b"Subject: dots\r\n\r\n..one\r\n.\r\r\n..\r\n"
        qid, replies = self.transaction(data, one_write=False)
        self.assertEqual([r.code for r in replies], [250, 221], replies)
        self.assertStored(self.d, qid, unstuff(data))

    def test_empty_message(self):
        qid, replies = self.transaction(b"")
        self.assertEqual([r.code for r in replies], [250, 221], replies)
        self.assertStored(self.d, qid, b"")

    def test_binary_bytes_are_kept(self):
        data = b"Subject: bytes\r\n\r\n" + bytes(b for b in range(256) if b not in (10, 13)) + b"\r\n"
        qid, replies = self.transaction(data)
        self.assertIsNotNone(qid, replies)
        self.assertStored(self.d, qid, data)

    def test_end_of_data_split_across_writes(self):
        content = b"Subject: split\r\n\r\nbody\r\n"
        with self.d.connect() as c:
            self.open_data(c, "a@example.org", "b@example.com")
            for piece in (content[:-2], b"\r", b"\n.", b"\r"):
                c.send(piece)
                self.assertEqual(c.pending(0.15), b"", "reply before the end of data")
            c.send(b"\n")
            qid = queued_id(c.read_reply(15))
            self.assertIsNotNone(qid)
        self.assertStored(self.d, qid, content)


if __name__ == "__main__":
    main()
