"""
STARTTLS (RFC 3207) and implicit TLS with a certificate made at run time: the session state after
the handshake, the replies of STARTTLS in every state, and the CVE-2011-0411 class (plaintext
pipelined behind STARTTLS must be discarded, not executed inside the TLS session).
"""
from certs import client_context
from harness import SluiceTestCase, main, queued_id, send_message


class StartTLS(SluiceTestCase):
    def setUp(self):
        self.d = self.start_sluice(
            tls=True,
            listeners=[{"name": "submission", "role": "submission", "tls": "starttls"},
                       {"name": "smtps", "role": "submission", "tls": "implicit"},
                       {"name": "plain", "role": "submission", "tls": "none"}])
        self.ctx = client_context()

    def keywords(self, reply):
        return [line.split(" ")[0].upper() for line in reply.lines[1:]]

    def upgrade(self, c, pipelined=b""):
        """EHLO, then STARTTLS (plus `pipelined` in the same write), the 220, the handshake."""
        self.assertIn("STARTTLS", self.keywords(c.ehlo()))
        c.send(b"STARTTLS\r\n" + pipelined)
        self.assertReply(c.read_reply(), 220, "2.0.0", "STARTTLS")
        # A server that executed the pipelined plaintext would answer it now, before the handshake.
        self.assertEqual(c.pending(0.3), b"", "plaintext reply after 220 to STARTTLS")
        c.starttls(self.ctx)
        self.assertIsNotNone(c.sock.version())

    def test_starttls_then_mail(self):
        content = b"Subject: over TLS\r\n\r\nsecret\r\n"
        with self.d.connect() as c:
            self.upgrade(c)
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1",
                             "MAIL after STARTTLS before the new EHLO")
            r = c.ehlo("tls.example.org")
            self.assertReply(r, 250)
            self.assertNotIn("STARTTLS", self.keywords(r), "EHLO after TLS lists STARTTLS")
            self.assertIn("PIPELINING", self.keywords(r))
            self.assertReply(c.cmd("STARTTLS"), 503, "5.5.1", "STARTTLS inside TLS")
            qid = queued_id(send_message(c, "a@example.org", ["b@elsewhere.net"], content))
            self.assertIsNotNone(qid)
        received = self.assertStored(self.d, qid, content)
        self.assertTrue(b"ESMTPS" in received or b"TLS" in received.upper(),
                        "Received header tells TLS was used: %r" % received)

    def test_starttls_with_argument_and_before_ehlo(self):
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("STARTTLS now"), 501, "5.5.4", "STARTTLS with an argument")
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0", "still plaintext and working")

    def test_transaction_is_reset_by_starttls(self):
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
            self.assertReply(c.cmd("STARTTLS"), 220, "2.0.0")
            c.starttls(self.ctx)
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1",
                             "the MAIL before STARTTLS must be forgotten")

    def check_injection_discarded(self, injected):
        with self.d.connect() as c:
            self.upgrade(c, injected)
            # Only STARTTLS was received: no EHLO yet in the TLS session, no transaction.
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1",
                             "MAIL before EHLO after STARTTLS with %r injected" % injected)
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
            self.assertEqual(c.pending(0.3), b"", "extra replies inside TLS")
            r = c.ehlo()
            self.assertReply(r, 250)
            self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1",
                             "no transaction from injected plaintext")
            self.assertReply(c.cmd("QUIT"), 221, "2.0.0")

    def test_injected_mail_after_starttls_is_discarded(self):
        self.check_injection_discarded(b"MAIL FROM:<a@b>\r\n")

    def test_injected_rset_after_starttls_is_discarded(self):
        self.check_injection_discarded(b"RSET\r\n")

    def test_injected_ehlo_and_envelope_after_starttls_is_discarded(self):
        self.check_injection_discarded(b"EHLO evil.example\r\nMAIL FROM:<evil@example.org>\r\n"
                                       b"RCPT TO:<victim@example.com>\r\n")

    def test_injected_half_line_after_starttls_is_discarded(self):
        # A partial line must not be glued to the first command inside TLS either.
        with self.d.connect() as c:
            self.upgrade(c, b"XXXX")
            r = c.cmd("NOOP")
            self.assertReply(r, 250, "2.0.0", "first TLS command with half a plaintext line before it")

    def test_implicit_tls_listener(self):
        content = b"Subject: smtps\r\n\r\nimplicit\r\n"
        with self.d.connect("smtps", tls_context=self.ctx) as c:
            self.assertEqual(c.banner.code, 220)
            self.assertIsNotNone(c.sock.version())
            r = c.ehlo()
            self.assertNotIn("STARTTLS", self.keywords(r))
            self.assertReply(c.cmd("STARTTLS"), 503, "5.5.1", "STARTTLS on implicit TLS")
            qid = queued_id(send_message(c, "a@example.org", ["b@elsewhere.net"], content))
            self.assertIsNotNone(qid)
        self.assertStored(self.d, qid, content)

    def test_implicit_tls_listener_refuses_plaintext(self):
        with self.d.connect("smtps", banner=False, timeout=5) as c:
            c.send(b"EHLO plain.example.org\r\n")
            data = c.pending(2.0)
            self.assertNotIn(b"250", data, "plaintext SMTP answered on an implicit-TLS port")
            self.assertFalse(data.startswith(b"220 "), "plaintext banner on an implicit-TLS port")

    def test_listener_with_tls_none(self):
        with self.d.connect("plain") as c:
            r = c.ehlo()
            self.assertNotIn("STARTTLS", self.keywords(r), "tls: none offers STARTTLS")
            self.assertReply(c.cmd("STARTTLS"), 454, "4.7.0", "STARTTLS on tls: none")

    def test_failed_handshake_does_not_kill_the_daemon(self):
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("STARTTLS"), 220, "2.0.0")
            c.send(b"this is not a TLS client hello\r\n" * 4)
            self.assertTrue(c.wait_closed(10), "server keeps a session with a broken handshake")
        with self.d.connect() as c:
            self.upgrade(c)
            self.assertReply(c.ehlo(), 250)


if __name__ == "__main__":
    main()
