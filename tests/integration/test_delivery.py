"""
Outbound delivery through the real daemon to real SMTP peers on loopback (see mailnet.py): MX
preference order and fallback, implicit and null MX, NXDOMAIN, per-recipient outcomes, retry
after 451, bounces after 5xx and after expiry, the DSN's shape (RFC 3464) and its absence for
null senders, the body's bytes on the wire, and egress addresses with their EHLO names.
MailNetSelfCheck verifies the test world itself (DNS answers, peers' scripts) without a daemon.
"""
import email
import re
import smtplib
import ssl
import subprocess
import time

from harness import main, send_message
from mailnet import EGRESS, MailNetCase, send

SENDER = "alice@sender.test"
RETRY_FIRST = 1.0  # mailnet.SHAPING's first retry step, in seconds
EXPIRE = 8.0       # and its expire
SLACK = 0.25       # timer granularity and peer-side delays on a loaded machine
ARRIVAL_SLACK = 1.0  # the spool keeps the arrival time in whole seconds


def message(subject, body="hello\r\n"):
    return ("Subject: %s\r\nFrom: <%s>\r\n\r\n%s" % (subject, SENDER, body)).encode()


def normalise_eols(data):
    """What a compliant client sends for stored bytes: bare CR and bare LF become CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def stuff(data):
    """Dot-stuffing (RFC 5321 §4.5.2) with lines ending at CRLF only, as an SMTP server reads."""
    return b"\r\n".join(b"." + line if line.startswith(b".") else line
                        for line in data.split(b"\r\n"))


def unfold(value):
    return " ".join(str(value or "").split())


class MailNetSelfCheck(MailNetCase):
    """The world the delivery tests rely on, checked with swaks, smtplib and raw DNS queries."""

    def test_dns_and_peers(self):
        net = self.make_net()
        good = net.peer("mx1.dest.test", rcpt=[("bad*", "550 5.1.1 no such user")],
                        defer_first=1, close_after_rcpts=2)
        busy = net.peer("mx2.dest.test", greeting="421 4.3.2 busy")
        net.mx("dest.test", good, 10)
        net.dns.null_mx("null.test")
        net.dns.txt("dest.test", "v=spf1 -all")
        net.dns.cname("alias.dest.test", "mx1.dest.test")
        net.dns.ptr("1.0.0.127.in-addr.arpa", "mx1.dest.test")
        net.start()
        self.assertEqual(net.dns.answers("dest.test", 16), 0, "TXT")
        self.assertEqual(net.dns.answers("alias.dest.test"), 0, "CNAME")
        self.assertEqual(net.dns.answers("1.0.0.127.in-addr.arpa", 12), 0, "PTR")
        self.assertEqual(net.dns.answers("dest.test", 15), 0)
        self.assertEqual(net.dns.answers("mx1.dest.test"), 0)
        self.assertEqual(net.dns.answers("null.test", 15), 0)
        self.assertEqual(net.dns.answers("nowhere.test"), 3, "NXDOMAIN inside the zone")
        self.assertEqual(good.port, busy.port, "peers share one port")
        self.assertNotEqual(good.address, busy.address)

        swaks = subprocess.run(["swaks", "-s", good.address, "-p", str(net.port), "-f", SENDER,
                                "-t", "ok@dest.test,bad@dest.test", "--body", ".dot\nend"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = swaks.stdout.decode()
        self.assertIn("451 4.3.0", out, "first attempt of ok@ deferred")
        with smtplib.SMTP(good.address, net.port, timeout=10) as client:
            client.ehlo("me.test")
            self.assertIn("pipelining", client.esmtp_features)
            refused = client.sendmail(SENDER, ["ok@dest.test", "bad@dest.test"],
                                      b"Subject: s\r\n\r\n.dot\r\n")
            self.assertEqual(set(refused), {"bad@dest.test"})
        self.assertEqual(good.delivered_rcpts(), ["ok@dest.test"])
        tx = good.delivered()[0][1]
        self.assertEqual(tx.data_raw, b"Subject: s\r\n\r\n..dot\r\n")
        self.assertEqual(tx.data, b"Subject: s\r\n\r\n.dot\r\n")
        with smtplib.SMTP(good.address, net.port, timeout=10) as client:
            client.ehlo("me.test")
            client.mail(SENDER)
            codes = [client.rcpt("r%d@dest.test" % i)[0] for i in range(3)]
            self.assertEqual(codes, [451, 451, 421], "421 after 2 recipients on one connection")
        with self.assertRaises(smtplib.SMTPConnectError):
            smtplib.SMTP(busy.address, net.port, timeout=10)


class Delivery(MailNetCase):
    def setUp(self):
        self.net = self.make_net()
        self.home = self.net.peer("mx.sender.test")  # where DSNs to SENDER arrive
        self.net.mx("sender.test", self.home, 10)

    def dsns(self):
        return [tx for tx in self.home.transactions() if tx.accepted()]

    def the_dsn(self, timeout):
        """Waits for a DSN and for the spool to empty; returns the one DSN sent."""
        self.wait(lambda: self.dsns(), timeout, "a DSN at %s" % self.home.name)
        self.wait_spool_empty(20)
        dsns = self.dsns()
        self.assertEqual(len(dsns), 1, "one DSN for the message's failed recipients:\n%s"
                         % "\n---\n".join(tx.data.decode("utf-8", "replace") for tx in dsns))
        return dsns[0]

    def assertDsn(self, tx, failed, diagnostic, subject, body_marker):
        """tx is an RFC 3464 report to SENDER, with a null sender, naming each failed recipient
        (dict address -> regex for its Status) with `diagnostic` (unless None) in its
        Diagnostic-Code, and the original header section (its Subject) without the body."""
        self.assertEqual(tx.sender, "", "DSN has a null envelope sender")
        self.assertEqual(tx.accepted(), [SENDER])
        msg = email.message_from_bytes(tx.data)
        self.assertEqual(msg.get_content_type(), "multipart/report", tx.data[:500])
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        parts = list(msg.walk())
        status = [p for p in parts if p.get_content_type() == "message/delivery-status"]
        self.assertEqual(len(status), 1, "one message/delivery-status part")
        blocks = status[0].get_payload()
        self.assertIn("sluice.test", unfold(blocks[0].get("Reporting-MTA")))
        per_rcpt = {unfold(b.get("Final-Recipient")).split(";")[-1].strip().lower(): b
                    for b in blocks[1:]}
        self.assertEqual(set(per_rcpt), set(failed), "failed recipients in the report")
        for address, block in per_rcpt.items():
            self.assertEqual(unfold(block.get("Action")).lower(), "failed", address)
            self.assertRegex(unfold(block.get("Status")), failed[address], address)
            if diagnostic is not None:
                self.assertIn(diagnostic, unfold(block.get("Diagnostic-Code")), address)
        headers = [p for p in parts
                   if p.get_content_type() in ("text/rfc822-headers", "message/rfc822-headers")]
        self.assertEqual(len(headers), 1, "one part with the original header section")
        self.assertIn(subject, tx.data.decode("utf-8", "replace"))
        self.assertNotIn(body_marker.encode(), tx.data, "the original body is not returned")

    # ---- routing ----

    def test_mx_preference(self):
        """Equal preference: both hosts used over many connections; the less preferred host is
        never contacted while a more preferred one accepts."""
        net = self.net
        a, b, c = net.peer("a.dest.test"), net.peer("b.dest.test"), net.peer("c.dest.test")
        net.mx("dest.test", a, 10)
        net.mx("dest.test", b, 10)
        net.mx("dest.test", c, 20)
        self.start_daemon(messages_per_connection=1)
        n = 16  # one connection each: the chance that one host gets all is 2^-15
        for i in range(n):
            send(self.d, SENDER, ["u%d@dest.test" % i], message("pref %d" % i))
        self.wait(lambda: len(a.delivered()) + len(b.delivered()) >= n, 40, "%d delivered" % n)
        self.assertTrue(a.delivered() and b.delivered(), "both MX 10 hosts used")
        self.assertEqual(c.sessions, [], "MX 20 never contacted")
        got = sorted(a.delivered_rcpts() + b.delivered_rcpts())
        self.assertEqual(got, sorted("u%d@dest.test" % i for i in range(n)), "each once")

    def test_fallback(self):
        """Connection refused, a 4xx greeting, and 421 at RCPT each send the recipient on to the
        next MX, after the more preferred host was tried."""
        net = self.net
        backup = net.peer("backup.test")
        greet = net.peer("mx.greet.test", greeting="450 4.3.2 not now")
        busy = net.peer("mx.busy.test", close_after_rcpts=0)
        net.mx("refused.test", net.dead_host("mx.refused.test"), 10)
        net.mx("greet.test", greet, 10)
        net.mx("busy.test", busy, 10)
        for domain in ("refused.test", "greet.test", "busy.test"):
            net.mx(domain, backup, 20)
        self.start_daemon()
        rcpts = ["x@refused.test", "y@greet.test", "z@busy.test"]
        send(self.d, SENDER, rcpts, message("fallback"))
        self.wait(lambda: len(backup.delivered()) >= 3, 30, "3 recipients at the backup MX")
        self.wait_spool_empty(20)
        self.assertEqual(sorted(backup.delivered_rcpts()), sorted(rcpts), "each exactly once")
        for primary, rcpt in ((greet, "y@greet.test"), (busy, "z@busy.test")):
            self.assertTrue(primary.sessions, "%s tried" % primary.name)
            delivered_at = min(t for tx in backup.transactions() for a, t, c in tx.rcpts
                               if a == rcpt)
            self.assertLessEqual(primary.sessions[0].connect_time, delivered_at,
                                 "%s tried before the backup" % primary.name)
        self.assertEqual(greet.transactions(), [], "no transaction after a 4xx greeting")

    def test_implicit_mx_and_egress(self):
        """A domain with an A record only is its own MX; connections come from the egress pool's
        addresses and say each address's EHLO name."""
        host = self.net.peer("aonly.test")
        self.start_daemon()
        for i in range(4):
            send(self.d, SENDER, ["r%d@aonly.test" % i], message("implicit %d" % i))
        self.wait(lambda: len(host.delivered()) >= 4, 30, "4 delivered to the A host")
        names = dict(EGRESS)
        for session in host.sessions:
            self.assertIn(session.client[0], names, "source address from the egress pool")
            self.assertEqual(session.ehlo, names[session.client[0]], "EHLO of that address")

    def test_starttls_without_pipelining(self):
        """tls: opportunistic uses a peer's STARTTLS; a peer without PIPELINING still gets mail."""
        dest = self.net.peer("mx.dest.test", starttls=True, pipelining=False)
        self.net.mx("dest.test", dest, 10)
        self.start_daemon()
        send(self.d, SENDER, ["t1@dest.test", "t2@dest.test"], message("tls"))
        self.wait(lambda: len(dest.delivered()) >= 2, 20, "2 delivered")
        for session in dest.sessions:
            self.assertTrue(session.tls, "STARTTLS used")
            self.assertIsNotNone(session.ehlo, "EHLO said again after STARTTLS")

    def test_broken_starttls_falls_back_to_clear(self):
        """tls: opportunistic (RFC 7435): a STARTTLS handshake that fails is no reason not to
        deliver; the same host is tried again without STARTTLS."""
        broken = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # no certificate: every handshake fails
        dest = self.net.peer("mx.broken.test", starttls=True, tls_context=broken)
        self.net.mx("broken.test", dest, 10)
        self.start_daemon()
        send(self.d, SENDER, ["b@broken.test"], message("broken tls"))
        self.wait(lambda: len(dest.delivered()) >= 1, 20, "delivered in clear")
        self.assertGreaterEqual(len(dest.sessions), 2, "a TLS attempt, then one in clear")
        self.assertTrue(all(not s.tls for s in dest.sessions), "no session ended up in TLS")

    # ---- outcomes and bounces ----

    def test_null_mx_and_nxdomain_bounce(self):
        self.net.dns.null_mx("null.test")
        self.start_daemon()
        send(self.d, SENDER, ["x@null.test", "y@nowhere.test"], message("unroutable", "BODY-1\r\n"))
        dsn = self.the_dsn(20)
        self.assertDsn(dsn, {"x@null.test": r"^5\.1\.10$", "y@nowhere.test": r"^5\.1\.2$"}, None,
                       "unroutable", "BODY-1")

    def test_per_recipient_outcomes(self):
        """One 250 and one 550 in one transaction: the first delivered once, the second
        bounced to the sender with the remote reply."""
        dest = self.net.peer("mx.dest.test", rcpt=[("bad@*", "550 5.1.1 no such user here")])
        self.net.mx("dest.test", dest, 10)
        self.start_daemon()
        send(self.d, SENDER, ["good@dest.test", "bad@dest.test"], message("mixed", "BODY-2\r\n"))
        dsn = self.the_dsn(20)
        self.assertDsn(dsn, {"bad@dest.test": r"^5\.1\.1$"}, "no such user here", "mixed", "BODY-2")
        self.assertEqual(dest.delivered_rcpts(), ["good@dest.test"])
        self.assertEqual(len(dest.transactions()), 1, "no second transaction")

    def test_bounce_after_5xx_to_data(self):
        """5xx to DATA, or at the end of data, fails every recipient of that transaction once."""
        dest = self.net.peer("mx.dest.test", data_reply="554 5.7.1 content refused")
        nodata = self.net.peer("mx.nodata.test", data_cmd_reply="554 5.3.4 no data today")
        self.net.mx("dest.test", dest, 10)
        self.net.mx("nodata.test", nodata, 10)
        self.start_daemon()
        rcpts = ["a@dest.test", "b@dest.test", "c@nodata.test"]
        send(self.d, SENDER, rcpts, message("refused", "BODY-3\r\n"))
        dsn = self.the_dsn(20)
        self.assertDsn(dsn, {"a@dest.test": r"^5\.7\.1$", "b@dest.test": r"^5\.7\.1$",
                             "c@nodata.test": r"^5\.3\.4$"}, None, "refused", "BODY-3")
        self.assertIn(b"content refused", dsn.data)
        self.assertIn(b"no data today", dsn.data)
        self.assertEqual(len(dest.transactions()), 1, "a 5xx is not retried")
        self.assertEqual(len(nodata.transactions()), 1, "a 5xx is not retried")

    def test_retry_after_451(self):
        dest = self.net.peer("mx.dest.test", defer_first=1)
        self.net.mx("dest.test", dest, 10)
        self.start_daemon()
        send(self.d, SENDER, ["later@dest.test"], message("retry"))
        self.wait(lambda: dest.delivered(), 20, "delivered after the retry")
        attempts = [(t, code) for tx in dest.transactions() for a, t, code in tx.rcpts]
        self.assertEqual([code for _, code in attempts], [451, 250], "one deferral, one delivery")
        gap = attempts[1][0] - attempts[0][0]
        self.assertGreaterEqual(gap, RETRY_FIRST - SLACK, "retried no earlier than the first step")
        self.wait_spool_empty(20)
        self.assertEqual(self.dsns(), [], "no DSN for a delivered recipient")

    def test_bounce_after_expiry(self):
        dest = self.net.peer("mx.dest.test", rcpt=[("*", "451 4.2.0 mailbox busy")])
        self.net.mx("dest.test", dest, 10)
        self.start_daemon()
        submitted = time.time()
        send(self.d, SENDER, ["stuck@dest.test"], message("expiring", "BODY-4\r\n"))
        dsn = self.the_dsn(EXPIRE + 20)
        self.assertGreaterEqual(dsn.mail_time - submitted, EXPIRE - ARRIVAL_SLACK,
                                "not before expire")
        self.assertDsn(dsn, {"stuck@dest.test": r"^[45]\.2\.0$"}, "mailbox busy", "expiring",
                       "BODY-4")
        times = sorted(t for tx in dest.transactions() for _, t, _ in tx.rcpts)
        self.assertGreaterEqual(len(times), 3, "retried along the schedule (1s, 2s, 2s, ...)")
        self.assertLessEqual(len(times), 8, "no faster than the schedule")
        # The last attempt is made at expiry itself, which may come sooner than a whole step.
        for earlier, later in zip(times, times[1:-1]):
            self.assertGreaterEqual(later - earlier, RETRY_FIRST - SLACK, "attempts %r" % times)

    def test_no_dsn_for_null_sender(self):
        dest = self.net.peer("mx.dest.test", rcpt=[("*", "550 5.1.1 unknown")])
        self.net.mx("dest.test", dest, 10)
        self.start_daemon()
        send(self.d, "", ["gone@dest.test"], message("null sender"))
        self.wait(lambda: dest.transactions(), 20, "the attempt")
        self.wait_spool_empty(20)
        time.sleep(2 * RETRY_FIRST)
        self.assertEqual(self.d.queue_list(), [], "no DSN queued")
        self.assertEqual([tx.sender for tx in dest.transactions()], [""], "one attempt, no DSN")
        self.assertEqual(self.d.events("delivery.bounce"), [], "no DSN made")
        dropped = self.d.events("delivery.double_bounce")
        self.assertEqual([e["rcpt"] for e in dropped], ["gone@dest.test"], "the drop is logged")

    def test_body_bytes(self):
        """Dot-stuffed on the wire, bare LF/CR sent as CRLF (so a stored bare-LF "." line is
        stuffed, not an end of data), every other byte as stored."""
        dest = self.net.peer("mx.dest.test")
        self.net.mx("dest.test", dest, 10)
        self.start_daemon()
        content = (b"Subject: bytes\r\nX-Long: " + b"x" * 900 + b"\r\n\r\n"
                   b".leading dot\r\n..two dots\r\n.\r\nbare\nLF\n.\nafter\rCR\r\n"
                   b"trailing spaces   \r\n\r\n\r\nend\r\n")
        with self.d.connect() as conn:
            reply = conn.cmd("EHLO submit.test")
            self.assertEqual(reply.code, 250)
            reply = send_message(conn, SENDER, ["bytes@dest.test"], stuff(content))
            self.assertEqual(reply.code, 250, reply)
        self.wait(lambda: dest.delivered(), 20, "delivered")
        tx = dest.delivered()[0][1]
        self.assertTrue(tx.data.startswith(b"Received:"), tx.data[:100])
        self.assertTrue(tx.data.endswith(normalise_eols(content)),
                        "delivered %r" % tx.data[-300:])
        self.assertEqual(tx.data_raw, stuff(tx.data), "dot-stuffed on the wire")


if __name__ == "__main__":
    main()
