"""
BINARYMIME (RFC 3030 §3) on raw sockets and through delivery: the server offers it beside
CHUNKING; a message declared BODY=BINARYMIME must come with BDAT (DATA gets 503 5.5.1 and the
transaction stays), is stored byte for byte (NUL, bare CR and LF, a line of thousands of octets),
and the declaration does not outlive its transaction. Relayed to a receiver that takes
BINARYMIME with CHUNKING it goes with BODY=BINARYMIME and BDAT whatever the shaping prefers, the
same bytes arriving; a receiver that does not take it gets nothing and the sender gets a DSN
(5.6.3) that returns only the headers, even with RET=FULL, so the DSN itself stays text.
"""
import email
import email.policy

import harness
from harness import SluiceTestCase, main, queued_id
from mailnet import MailNetCase

BINARY_BODY = (b"\x00\x01binary\rbare CR\nbare LF\r\n" + bytes(range(256)) +
               b"x" * 3000 + b"\r\nend\r\n")
CONTENT = (b"Subject: binary\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
           + BINARY_BODY)


def bdat_last(chunk):
    return b"BDAT %d LAST\r\n" % len(chunk) + chunk


def send_binary(c, sender, rcpts, content, mail_params=""):
    """EHLO, MAIL BODY=BINARYMIME, the recipients and one BDAT LAST; returns its reply."""
    r = c.ehlo()
    assert "BINARYMIME" in r.lines and "CHUNKING" in r.lines, r.lines
    c.cmd("MAIL FROM:<%s> BODY=BINARYMIME%s" % (sender, mail_params))
    for rcpt in rcpts:
        c.cmd("RCPT TO:<%s>" % rcpt)
    c.send(bdat_last(content))
    return c.read_reply(15)


class BinaryServer(SluiceTestCase):
    def setUp(self):
        self.d = self.start_sluice(listeners=[{"name": "submission", "role": "submission"}])

    def test_data_refused_bdat_stores_the_bytes(self):
        with self.d.connect() as c:
            self.assertIn("BINARYMIME", c.ehlo().lines)
            self.assertReply(c.cmd("MAIL FROM:<a@example.org> BODY=BINARYMIME"), 250, "2.1.0")
            self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
            self.assertReply(c.cmd("DATA"), 503, "5.5.1", "DATA after BODY=BINARYMIME")
            c.send(bdat_last(CONTENT))
            r = c.read_reply(10)
            self.assertReply(r, 250, "2.0.0", "the transaction outlived the refused DATA")
            self.assertEqual(c.pending(0.3), b"", "one reply per command")
        self.assertStored(self.d, queued_id(r), CONTENT)
        event = self.d.wait_event("smtp.accepted")[0]
        self.assertEqual(event["body"], "BINARYMIME")

    def test_declaration_ends_with_its_transaction(self):
        with self.d.connect() as c:
            c.ehlo()
            for reset in ("RSET", "EHLO client.test"):
                self.assertReply(c.cmd("MAIL FROM:<a@example.org> BODY=BINARYMIME"), 250)
                self.assertReply(c.cmd(reset), 250)
                self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
                self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250)
                self.assertReply(c.cmd("DATA"), 354, None, "after " + reset)
                c.send(b"Subject: text\r\n\r\nplain\r\n.\r\n")
                self.assertReply(c.read_reply(10), 250)
            r = send_binary(c, "a@example.org", ["b@example.com"], CONTENT)
            self.assertReply(r, 250)
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, None, "after LAST")
            self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250)
            self.assertReply(c.cmd("DATA"), 354, None, "the next transaction is not binary")


class BinaryRelay(SluiceTestCase):
    def test_relayed_with_bdat_and_binarymime(self):
        """To a receiver offering BINARYMIME and CHUNKING (a second daemon), with chunking off
        in the shaping for it: still BDAT, BODY=BINARYMIME, the same bytes."""
        b = self.start_sluice(listeners=[{"name": "mx", "role": "submission"}],
                              config={"domains": {"bin.test": None}})
        a = self.start_sluice(config={
            "domains": {"example.com": None,
                        "bin.test": {"deliver_to": "[%s]:%d" % b.addr()}},
            "shaping": {"rules": [{"match": {"domain": "bin.test"}, "chunking": False}]}})
        with a.connect() as c:
            self.assertReply(send_binary(c, "s@example.com", ["u@bin.test"], CONTENT), 250)
        event = b.wait_event("smtp.accepted", timeout=30)[0]
        self.assertEqual(event["body"], "BINARYMIME")
        _, rest = harness.split_received(b.queue_body(event["queue_id"]))
        self.assertTrue(rest.endswith(CONTENT), rest[:300])


class BinaryRefused(MailNetCase):
    def test_receiver_without_binarymime_gets_nothing_sender_gets_headers(self):
        self.make_net()
        dest = self.net.peer("mx.dest.test")
        home = self.net.peer("mx.sender.test")
        self.net.mx("dest.test", dest, 10)
        self.net.mx("sender.test", home, 10)
        self.start_daemon()
        with self.d.connect() as c:
            r = send_binary(c, "s@sender.test", ["u@dest.test"], CONTENT, " RET=FULL")
            self.assertReply(r, 250)
        self.wait(lambda: home.delivered(), 30, "the DSN delivered to the sender's domain")
        self.assertEqual(dest.delivered(), [], "nothing binary went to a receiver without it")
        dsn = email.message_from_bytes(home.delivered()[0][1].data, policy=email.policy.default)
        self.assertEqual(dsn.get_content_type(), "multipart/report")
        parts = list(dsn.iter_parts())
        status = parts[1].get_payload()[1]
        self.assertEqual(status["Status"], "5.6.3")
        self.assertEqual(status["Action"], "failed")
        self.assertIn("BINARYMIME", str(status["Diagnostic-Code"]))
        self.assertEqual(parts[2].get_content_type(), "text/rfc822-headers",
                         "headers only, though RET=FULL")
        self.assertNotIn(b"\x00", home.delivered()[0][1].data)


if __name__ == "__main__":
    main()
