"""
Client discipline on an inbound listener, against the real daemon: the per-client connection rate
(421 past it, per address), improper pipelining (commands or the message sent before the reply
they depend on: 554 and close) while proper pipelining after EHLO works, Authentication-Results
fields forged in our name removed from incoming mail, and `sluice explain` showing the inbound
checks for a client.
"""
import harness
import test_inbound
from mailnet import MailNetCase
from test_inbound import HELO, message

HOSTNAME = "sluice.test"  # server.hostname of the test configuration: our authserv-id


class DisciplineTest(MailNetCase):
    # test_inbound's set-up (DNS zone, sink, recipients file; its start_mx turns the DNSBL and SPF
    # reject_fail on), without its tests
    setUp = test_inbound.InboundTest.setUp
    start_mx = test_inbound.InboundTest.start_mx
    connect = test_inbound.InboundTest.connect

    def assertRejectedAndClosed(self, conn, code, enhanced, rule):
        r = conn.read_reply(timeout=5)
        self.assertReply(r, code, enhanced)
        self.assertTrue(conn.wait_closed(5))
        self.assertTrue(self.d.find("smtp.rejected", rule=rule), self.d.log_tail())
        return r

    # ---- connection rate ----

    def test_connection_rate_per_client(self):
        # 2/m stays below max_connections_per_client (3), which counts sessions still closing
        self.start_mx(max_connection_rate_per_client="2/m")
        for _ in range(2):
            c = self.connect("127.0.0.21")
            self.assertReply(c.banner, 220)
            self.assertReply(c.cmd("QUIT"), 221)
        over = self.connect("127.0.0.21", banner=False)
        r = self.assertRejectedAndClosed(over, 421, "4.7.0", "client_rate")
        self.assertIn("%s too many connections from your address, try again later" % HOSTNAME,
                      r.text)
        self.assertTrue(self.d.find("smtp.rejected", rule="client_rate", client="127.0.0.21"))
        # another address has its own allowance
        self.assertReply(self.connect("127.0.0.22").banner, 220)

    def test_no_connection_rate_by_default(self):
        self.start_mx(max_connections_per_client=0)
        for _ in range(8):
            c = self.connect("127.0.0.23")
            self.assertReply(c.banner, 220)
            c.close()
        self.assertEqual(self.d.events("smtp.rejected", rule="client_rate"), [])

    # ---- pipelining ----

    def test_improper_pipelining_after_helo(self):
        self.start_mx()
        c = self.connect()
        self.assertReply(c.cmd("HELO " + HELO), 250)
        c.send(b"MAIL FROM:<a@pass.test>\r\nRCPT TO:<alice@example.test>\r\n")
        r = self.assertRejectedAndClosed(c, 554, "5.5.0", "pipelining")
        self.assertIn("improper command pipelining", r.text)

    def test_commands_before_the_ehlo_reply(self):
        self.start_mx()
        c = self.connect()
        c.send(("EHLO %s\r\nMAIL FROM:<a@pass.test>\r\n" % HELO).encode())
        self.assertRejectedAndClosed(c, 554, "5.5.0", "pipelining")

    def test_message_before_354(self):
        self.start_mx()
        c = self.connect()
        self.assertReply(c.ehlo(HELO), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@pass.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@example.test>"), 250)
        c.send(b"DATA\r\n" + message("eager") + b".\r\n")
        self.assertRejectedAndClosed(c, 554, "5.5.0", "pipelining")
        self.assertEqual(self.d.queue_list(), [])

    def test_pipelining_after_ehlo_works(self):
        self.start_mx()
        c = self.connect()
        r = c.ehlo(HELO)
        self.assertReply(r, 250)
        self.assertIn("PIPELINING", r.lines)
        c.send(b"MAIL FROM:<a@pass.test>\r\nRCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
        self.assertEqual([r.code for r in c.read_replies(4)], [250, 250, 250, 354])
        c.send(message("pipelined") + b".\r\nQUIT\r\n")
        self.assertReply(c.read_reply(timeout=15), 250)
        self.assertReply(c.read_reply(), 221)
        self.wait(lambda: "bob@example.test" in self.sink.delivered_rcpts(), 20, "delivered")
        self.assertEqual(self.d.events("smtp.rejected", rule="pipelining"), [])

    # ---- Authentication-Results hygiene ----

    def test_forged_authentication_results_removed(self):
        self.start_mx(spf="mark")
        c = self.connect()
        headers = (b"Authentication-Results: " + HOSTNAME.encode() + b"; spf=pass\r\n"
                   b"Authentication-Results: (forged)\r\n \"SLUICE.test\";\r\n\tdkim=pass\r\n"
                   b"Authentication-Results: other.test; dkim=pass header.d=pass.test\r\n")
        r = harness.send_message(c, "a@pass.test", ["alice@example.test"],
                                 message("forged", headers=headers,
                                         body=b"Authentication-Results: sluice.test; body\r\n"),
                                 helo=HELO)
        self.assertReply(r, 250)
        self.wait(lambda: self.sink.delivered(), 20, "delivered")
        data = self.sink.delivered()[0][1].data
        head, body = data.split(b"\r\n\r\n", 1)
        ar = [line for line in head.split(b"\r\n") if line.startswith(b"Authentication-Results:")]
        self.assertEqual(ar, [b"Authentication-Results: sluice.test;",  # ours, with the SPF result
                              b"Authentication-Results: other.test; dkim=pass header.d=pass.test"])
        self.assertIn(b"\tspf=pass smtp.mailfrom=pass.test;\r\n\tdkim=none\r\n", head + b"\r\n")
        self.assertNotIn(b"forged)", head)
        self.assertIn(b"Authentication-Results: sluice.test; body", body)  # the body is not touched
        self.assertTrue(self.d.find("smtp.header_removed", count=2))

    # ---- sluice explain ----

    def explain(self, client, sender, rcpt="alice@example.test"):
        res = self.d.cli("explain", "--listener", "mx", "--client", client, "--helo", HELO,
                         "--from", sender, "--rcpt", rcpt)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout.decode()

    def test_explain_inbound_checks(self):
        self.start_mx(reverse_dns="require_ptr")
        out = self.explain("127.0.0.2", "a@pass.test")
        self.assertIn("dnsbl: score 1, threshold 1; listed by bl.test (weight 1)\n"
                      "  reject 554 5.7.1 Service unavailable; client [127.0.0.2] blocked using "
                      "bl.test", out)
        self.assertIn("  spf: pass (Authentication-Results: spf=pass smtp.mailfrom=pass.test)\n"
                      "  accept 250", out)
        rcpt = out.split("RCPT TO:<alice@example.test>\n", 1)[1]
        self.assertTrue(rcpt.startswith("  reject 554 5.7.1 Service unavailable"), rcpt)
        # postmaster stays reachable; the message policy is named
        out = self.explain("127.0.0.2", "a@pass.test", "postmaster@example.test")
        rcpt = out.split("RCPT TO:<postmaster@example.test>\n", 1)[1]
        self.assertTrue(rcpt.startswith("  accept 250 2.1.5"), rcpt)
        self.assertIn("recipients: example.test table %s" % self.recipients, rcpt)
        self.assertIn("attachments: .exe", rcpt)
        # a clean client: nothing listed, PTR present, SPF fail refuses MAIL
        out = self.explain("127.0.0.1", "a@fail.test")
        self.assertIn("dnsbl: score 0, threshold 1\n  accept", out)
        self.assertIn("reverse dns: ok client.test\n  accept", out)
        self.assertIn("  spf: fail (Authentication-Results: spf=fail smtp.mailfrom=fail.test)\n"
                      "  reject 550 5.7.23", out)
        self.assertIn("RCPT TO:<alice@example.test>\n  not reached: MAIL was refused", out)
        # no PTR (dnsmasq answers PTRs only for the names it has)
        out = self.explain("127.0.0.6", "a@pass.test")
        self.assertIn("reverse dns: no-ptr\n  reject 550 5.7.25", out)
        rcpt = out.split("RCPT TO:<alice@example.test>\n", 1)[1]
        self.assertTrue(rcpt.startswith("  reject 550 5.7.25"), rcpt)

    def test_explain_sender_domain(self):
        self.net.dns.host("resolves.test", "127.0.0.9")
        self.start_mx(reject_unknown_sender_domain=True)
        out = self.explain("127.0.0.1", "a@nowhere.test")
        self.assertIn("MAIL FROM:<a@nowhere.test>\n  sender domain: nxdomain\n"
                      "  reject 550 5.1.8 Sender address rejected: Domain not found\n", out)
        self.assertIn("RCPT TO:<alice@example.test>\n  not reached: MAIL was refused", out)
        out = self.explain("127.0.0.1", "a@resolves.test")
        self.assertIn("MAIL FROM:<a@resolves.test>\n  sender domain: ok\n  spf: none", out)


if __name__ == "__main__":
    harness.main()
