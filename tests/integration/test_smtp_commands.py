"""
SMTP commands against the real daemon: every command and reply code of the spec, enhanced status
codes on every reply, accepting mail with smtplib and with swaks, and the relay rules of the two
listener roles.
"""
import os
import re
import smtplib
import subprocess
import unittest

from harness import HOSTNAME, SluiceTestCase, ipv6_available, main, queued_id, send_message

MAX_SIZE = 1000000


def check_enhanced(testcase, reply, what):
    """RFC 2034 §4 / RFC 3463: every line of a 2xx/4xx/5xx reply starts with class.subject.detail,
    the class matching the reply's first digit."""
    for line in reply.lines:
        m = re.match(r"^([245])\.\d{1,3}\.\d{1,3}( |$)", line)
        testcase.assertTrue(m, "%s: reply line without enhanced status code: %d %r"
                            % (what, reply.code, line))
        testcase.assertEqual(int(m.group(1)), reply.code // 100,
                             "%s: enhanced class differs from the code: %d %r" % (what, reply.code, line))


class Commands(SluiceTestCase):
    def setUp(self):
        self.d = self.start_sluice(
            listeners=[{"name": "submission", "role": "submission"},
                       {"name": "mx", "role": "inbound"}],
            config={"limits": {"max_message_size": MAX_SIZE, "max_errors": 100}})

    def test_banner_and_ehlo_keywords(self):
        with self.d.connect() as c:
            self.assertEqual(c.banner.code, 220)
            self.assertEqual(c.banner.lines, ["%s ESMTP Sluice" % HOSTNAME])
            r = c.ehlo("client.example.org")
            self.assertReply(r, 250)
            self.assertTrue(r.lines[0].startswith(HOSTNAME), r)
            keywords = [line.upper() for line in r.lines[1:]]
            for kw in ("PIPELINING", "SIZE %d" % MAX_SIZE, "8BITMIME", "ENHANCEDSTATUSCODES",
                       "SMTPUTF8", "DSN", "HELP"):
                self.assertIn(kw, keywords, "EHLO keywords %r" % r.lines)
            # No certificate configured: STARTTLS is neither offered nor available.
            self.assertNotIn("STARTTLS", keywords)
            self.assertReply(c.cmd("STARTTLS"), 454, "4.7.0")
            # A second EHLO is allowed and answers the same way.
            self.assertEqual(c.ehlo("again.example.org").lines[1:], r.lines[1:])

    def test_helo_and_missing_arguments(self):
        with self.d.connect() as c:
            self.assertReply(c.cmd("EHLO"), 501, "5.5.4", "EHLO without argument")
            self.assertReply(c.cmd("HELO"), 501, "5.5.4", "HELO without argument")
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1",
                             "MAIL after failed HELO/EHLO")
            r = c.cmd("HELO client.example.org")
            self.assertReply(r, 250)
            self.assertEqual(len(r.lines), 1, "HELO reply is one line: %r" % r)
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0", "MAIL after HELO")

    def test_command_order_errors(self):
        with self.d.connect() as c:
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1", "MAIL before EHLO")
            self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1", "RCPT before EHLO")
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1", "RCPT before MAIL")
            self.assertReply(c.cmd("DATA"), 503, "5.5.1", "DATA before MAIL")
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1", "nested MAIL")
            self.assertReply(c.cmd("DATA"), 503, "5.5.1", "DATA without RCPT")
            self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
            self.assertReply(c.cmd("RSET"), 250, "2.0.0")
            self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 503, "5.5.1", "RCPT after RSET")
            self.assertReply(c.cmd("DATA"), 503, "5.5.1", "DATA after RSET")
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0", "MAIL after RSET")

    def test_data_when_every_recipient_was_rejected(self):
        with self.d.connect("mx") as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
            self.assertReply(c.cmd("RCPT TO:<b@elsewhere.org>"), 550, "5.7.1")
            self.assertReply(c.cmd("DATA"), 554, "5.5.1", "DATA when all RCPTs were rejected")

    def test_simple_commands(self):
        with self.d.connect() as c:
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0", "NOOP before EHLO")
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
            self.assertReply(c.cmd("noop"), 250, "2.0.0", "lower-case command")
            self.assertReply(c.cmd("RSET"), 250, "2.0.0")
            self.assertReply(c.cmd("VRFY postmaster"), 252, "2.0.0")
            self.assertReply(c.cmd("VRFY"), 501, None, "VRFY without argument")
            self.assertReply(c.cmd("EXPN staff"), 502, "5.5.1")
            r = c.cmd("HELP")
            self.assertReply(r, 214, "2.0.0")
            # no certificate and no users: neither STARTTLS nor AUTH is offered, nor named
            self.assertNotIn("STARTTLS", r.text.split())
            self.assertNotIn("AUTH", r.text.split())
            self.assertReply(c.cmd("FROBNICATE now"), 500, "5.5.2", "unknown command")
            self.assertReply(c.cmd(""), 500, "5.5.2", "empty line")
            self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
            self.assertTrue(c.wait_closed(5), "connection still open after QUIT")
            self.assertEqual(c.buf, b"", "bytes after the QUIT reply")

    def test_syntax_errors(self):
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL TO:<a@example.org>"), 501, "5.5.4", "MAIL without FROM:")
            self.assertReply(c.cmd("MAIL FROM:<a@>"), 501, "5.1.7", "bad sender address")
            self.assertReply(c.cmd("MAIL FROM:<a@example.org> FOO=BAR"), 555, "5.5.4",
                             "unknown MAIL parameter")
            self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=abc"), 501, "5.5.4",
                             "bad SIZE value")
            self.assertReply(c.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME"), 250, "2.1.0",
                             "BODY=8BITMIME is advertised")
            self.assertReply(c.cmd("RCPT FROM:<b@example.com>"), 501, "5.5.4", "RCPT without TO:")
            self.assertReply(c.cmd("RCPT TO:<b@>"), 501, "5.1.3", "bad recipient address")
            self.assertReply(c.cmd("RCPT TO:<b@example.com> FOO=BAR"), 555, "5.5.4",
                             "unknown RCPT parameter")
            r = c.cmd("RCPT TO:<b@example.com> NOTIFY=NEVER ORCPT=rfc822;b@example.com FOO=BAR")
            self.assertReply(r, 555, "5.5.4", "unknown parameter beside DSN ones")
            self.assertIn("FOO", r.lines[0], "the reply names the parameter it does not support")
            self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5", "after the errors")

    def test_bare_cr_and_lf_in_command_lines(self):
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            # Only CRLF ends a command line: whatever follows a bare LF or CR up to the CRLF is
            # part of the same bad line, answered once and never executed (HELP would say 214).
            for raw in (b"NOOP\nHELP\r\n", b"NOOP\rHELP\r\n", b"\nHELP\r\n", b"NOOP\n\r\n"):
                c.send(raw)
                self.assertReply(c.read_reply(), 500, "5.5.2", "bare CR/LF in command line %r" % raw)
                self.assertEqual(c.pending(0.3), b"", "one reply for the CRLF-terminated line %r" % raw)
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0", "session continues")

    def test_enhanced_codes_on_every_reply(self):
        """Every reply but the banner, the HELO/EHLO greeting and 354 (RFC 2034 §4) is checked."""
        script = ["NOOP", "HELO", "EHLO", "MAIL FROM:<a@example.org>", "EHLO c.example.org",
                  "RCPT TO:<b@example.com>", "DATA", "MAIL FROM:<a@>", "MAIL FROM:<a@example.org> X=Y",
                  "MAIL FROM:<a@example.org> SIZE=%d" % (MAX_SIZE + 1), "MAIL FROM:<a@example.org>",
                  "MAIL FROM:<a@example.org>", "RCPT TO:<b@>", "RCPT TO:<b@example.com> X=Y",
                  "DATA", "RCPT TO:<b@example.com>", "RSET", "VRFY x", "VRFY", "EXPN x", "HELP",
                  "BOGUS", "X" * 600, "STARTTLS", "MAIL FROM:<a@example.org>",
                  "RCPT TO:<b@example.com>", "DATA"]
        with self.d.connect() as c:
            for line in script:
                r = c.cmd(line)
                if line.split(" ")[0] in ("EHLO", "HELO") and r.code == 250:
                    continue
                if r.code == 354:
                    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
                    r = c.read_reply()
                    self.assertIsNotNone(queued_id(r), r)
                check_enhanced(self, r, line[:40])
            r = c.cmd("QUIT")
            check_enhanced(self, r, "QUIT")

    def test_accept_with_smtplib(self):
        host, port = self.d.addr()
        content = (b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: smtplib\r\n"
                   b"\r\nfirst line\r\n.starts with a dot\r\n..two dots\r\nlast line\r\n")
        with smtplib.SMTP(host, port, local_hostname="smtplib.example.org", timeout=10) as s:
            code, _ = s.ehlo()
            self.assertEqual(code, 250)
            self.assertTrue(s.has_extn("pipelining") and s.has_extn("size"))
            self.assertEqual(s.mail("alice@example.org")[0], 250)
            self.assertEqual(s.rcpt("bob@example.com")[0], 250)
            self.assertEqual(s.rcpt("carol@example.net")[0], 250)
            code, text = s.data(content)  # smtplib does the dot-stuffing
            self.assertEqual(code, 250, text)
            m = re.match(rb"^2\.0\.0 Ok: queued as (\S+)$", text)
            self.assertTrue(m, text)
            qid = m.group(1).decode()
        received = self.assertStored(self.d, qid, content)
        self.assertIn(b"127.0.0.1", received, "Received names the client address")
        self.assertIn(b"smtplib.example.org", received, "Received names the HELO name")
        self.assertIn(b"submission", received, "Received names the listener")

        entries = {e["id"]: e for e in self.d.queue_list()}
        self.assertIn(qid, entries)
        self.assertEqual(entries[qid]["sender"], "alice@example.org")
        self.assertEqual(entries[qid]["rcpts"], ["bob@example.com", "carol@example.net"])
        self.assertEqual(entries[qid]["size"], len(self.d.queue_body(qid)), "list size = body size")
        show = self.d.queue_show(qid)
        self.assertIn(b"alice@example.org", show)
        self.assertTrue(show.endswith(self.d.queue_body(qid)), "show = envelope then the body")

        ev = self.d.wait_event("smtp.accepted", queue_id=qid)[0]
        self.assertEqual(ev.get("from"), "alice@example.org")
        self.assertEqual(ev.get("rcpts"), "bob@example.com,carol@example.net")
        self.assertIn("127.0.0.1", str(ev.get("client")))
        session = ev.get("session")
        self.assertIsNotNone(session)
        self.assertTrue(self.d.events("smtp.connect", session=session), "smtp.connect logged")
        self.d.wait_event("smtp.disconnect", session=session)

    def test_accept_with_swaks(self):
        host, port = self.d.addr()
        content = b"Subject: swaks test\r\nX-Test: 1\r\n\r\nhello from swaks\r\n.dot line\r\n"
        data_file = os.path.join(self.d.dir, "swaks.eml")
        with open(data_file, "wb") as f:
            f.write(content[:-2])  # swaks ends the data with CRLF "." CRLF itself
        res = subprocess.run(
            ["swaks", "--server", host, "--port", str(port), "--helo", "swaks.example.org",
             "--from", "sw@example.org", "--to", "rcpt@example.net", "--data", "@" + data_file,
             "--timeout", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = res.stdout.decode("utf-8", "replace")
        self.assertEqual(res.returncode, 0, out)
        m = re.search(r"<[-~] +250 2\.0\.0 Ok: queued as (\S+)", out)
        self.assertTrue(m, out)
        qid = m.group(1)
        self.assertStored(self.d, qid, content)
        self.assertIn(r"250-PIPELINING", out)

    def test_null_sender_and_queue_list(self):
        with self.d.connect() as c:
            r = send_message(c, "", ["postmaster@example.com"], b"Subject: bounce\r\n\r\nx\r\n",
                             helo="c.example.org")
            qid = queued_id(r)
            self.assertIsNotNone(qid, r)
        entry = [e for e in self.d.queue_list() if e["id"] == qid]
        self.assertEqual(len(entry), 1)
        self.assertEqual(entry[0]["sender"], "")
        self.assertEqual(entry[0]["rcpts"], ["postmaster@example.com"])

    def test_message_with_8bit_and_utf8(self):
        content = "Subject: caf\u00e9\r\n\r\nna\u00efve \u65e5\u672c\r\n".encode("utf-8")
        with self.d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8 BODY=8BITMIME"), 250,
                             "2.1.0", "SMTPUTF8 sender")
            self.assertReply(c.cmd("RCPT TO:<b@example.com>"), 250, "2.1.5")
            self.assertReply(c.cmd("DATA"), 354)
            c.send(content + b".\r\n")
            qid = queued_id(c.read_reply())
            self.assertIsNotNone(qid)
        self.assertStored(self.d, qid, content)


class IPv6(SluiceTestCase):
    @unittest.skipUnless(ipv6_available(), "no IPv6 loopback")
    def test_ipv4_and_ipv6_listeners(self):
        d = self.start_sluice(listeners=[{"name": "v4", "role": "submission"},
                                         {"name": "v6", "role": "submission", "host": "::1"}])
        ready = d.find("daemon.ready")
        self.assertIn("[::1]:%d" % d.addr("v6")[1], str(ready.get("listeners")))
        content = b"Subject: v6\r\n\r\nover IPv6\r\n"
        with d.connect("v6") as c:
            qid = queued_id(send_message(c, "a@example.org", ["b@example.net"], content,
                                         helo="v6.example.org"))
            self.assertIsNotNone(qid)
        received = self.assertStored(d, qid, content)
        self.assertIn(b"::1", received)
        with d.connect("v4") as c:
            self.assertIsNotNone(queued_id(send_message(c, "a@example.org", ["b@example.net"],
                                                        content, helo="v4.example.org")))


class Relay(SluiceTestCase):
    def rcpt(self, d, listener, rcpt):
        with d.connect(listener) as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<sender@example.org>"), 250, "2.1.0")
            return c.cmd("RCPT TO:<%s>" % rcpt)

    def test_trusted_client_relays_on_submission(self):
        d = self.start_sluice(listeners=[{"name": "submission", "role": "submission"}])
        content = b"Subject: relay\r\n\r\nto anywhere\r\n"
        with d.connect() as c:
            r = send_message(c, "me@example.com", ["someone@elsewhere.org", "x@another.net"],
                             content, helo="laptop.example.com")
            qid = queued_id(r)
            self.assertIsNotNone(qid, r)
        self.assertStored(d, qid, content)

    def test_inbound_accepts_only_its_domains(self):
        d = self.start_sluice(listeners=[{"name": "mx", "role": "inbound"}],
                              config={"domains": {"example.com": None, "example.net": None}})
        self.assertReply(self.rcpt(d, "mx", "user@example.com"), 250, "2.1.5")
        self.assertReply(self.rcpt(d, "mx", "user@EXAMPLE.NET"), 250, "2.1.5", "domain case")
        self.assertReply(self.rcpt(d, "mx", "user@elsewhere.org"), 550, "5.7.1",
                         "inbound never relays, even for a trusted client")
        self.assertReply(self.rcpt(d, "mx", "user@example.com.evil.org"), 550, "5.7.1")
        content = b"Subject: inbound\r\n\r\nhi\r\n"
        with d.connect("mx") as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<s@example.org>"), 250, "2.1.0")
            self.assertReply(c.cmd("RCPT TO:<a@elsewhere.org>"), 550, "5.7.1")
            self.assertReply(c.cmd("RCPT TO:<a@example.com>"), 250, "2.1.5")
            self.assertReply(c.cmd("DATA"), 354)
            c.send(content + b".\r\n")
            qid = queued_id(c.read_reply())
            self.assertIsNotNone(qid)
        entry = [e for e in d.queue_list() if e["id"] == qid]
        self.assertEqual(entry[0]["rcpts"], ["a@example.com"], "rejected recipient not stored")
        rejected = d.events("smtp.rejected")
        self.assertTrue(any(e.get("code") == 550 for e in rejected), "smtp.rejected logged")

    def test_untrusted_client_cannot_relay_on_submission(self):
        d = self.start_sluice(listeners=[{"name": "submission", "role": "submission"}],
                              config={"relay": {"trusted_networks": ["192.0.2.0/24"]}})
        self.assertReply(self.rcpt(d, "submission", "user@elsewhere.org"), 550, "5.7.1",
                         "relay from 127.0.0.1 outside trusted_networks")
        self.assertReply(self.rcpt(d, "submission", "user@example.com"), 250, "2.1.5",
                         "local domain is not relaying")


if __name__ == "__main__":
    main()
