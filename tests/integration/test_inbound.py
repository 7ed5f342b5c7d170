"""
The inbound MX checks in the SMTP session, against the real daemon on an inbound listener, a real
DNS server (dnsmasq) serving the test zones, and an SMTP sink as the internal server the domain's
mail is delivered to: recipients file (550 5.1.1), DNSBL (answered at RCPT, postmaster still
reachable), reverse DNS, SPF at MAIL with Authentication-Results, attachment blocking, pregreet
test, per-client connection limit, and clamd (a fake clamd speaking the INSTREAM protocol).
"""
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import harness
from harness import SMTPConn
from mailnet import MailNetCase, wait_until

DOMAIN = "example.test"
HELO = "client.test"
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")


class SourceConn(SMTPConn):
    """An SMTP client connection from a chosen loopback source address (127.0.0.0/8 needs no
    setup on Linux), so the daemon sees that client address."""

    def __init__(self, source, host, port, timeout=5.0, banner=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.transcript = []
        try:
            self.sock.bind((source, 0))
            self.sock.connect((host, port))
        except BaseException:
            self.sock.close()
            raise
        self.banner = self.read_reply() if banner else None


def message(subject, body=b"hello\r\n", headers=b""):
    return (b"From: <a@pass.test>\r\nTo: <alice@example.test>\r\nSubject: " + subject.encode() +
            b"\r\n" + headers + b"\r\n" + body)


NESTED_EXE = message("nested", headers=b"MIME-Version: 1.0\r\n"
                     b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n", body=(
                         b"--outer\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                         b"--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
                         b"--inner\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Disposition: attachment; filename*=UTF-8''evil%2Eexe\r\n"
                         b"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n"
                         b"--inner--\r\n--outer--\r\n"))

CLEAN_MULTIPART = message("clean", headers=b"MIME-Version: 1.0\r\n"
                          b"Content-Type: multipart/mixed; boundary=\"b\"\r\n", body=(
                              b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
                              b"--b\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n\r\n"
                              b"JVBERi0=\r\n--b--\r\n"))


class FakeClamd:
    """clamd's INSTREAM protocol on a unix socket: "zINSTREAM\\0", chunks each preceded by a 4-byte
    big-endian length, a zero length at the end; the reply is "stream: OK\\0" or
    "stream: <name> FOUND\\0" (the EICAR test string is found as Eicar-Test-Signature)."""

    def __init__(self, directory, hold=None):
        self.hold = hold  # a threading.Event: the verdict waits for it (at most 10 s)
        self.path = os.path.join(directory, "clamd.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.scanned = []
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                conn.settimeout(5)
                try:
                    self.scan(conn)
                except (OSError, ValueError):
                    pass

    def read(self, conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ValueError("client closed")
            data += chunk
        return data

    def scan(self, conn):
        if self.read(conn, 10) != b"zINSTREAM\0":
            conn.sendall(b"UNKNOWN COMMAND\0")
            return
        data = b""
        for _ in range(100000):
            (n,) = struct.unpack(">I", self.read(conn, 4))
            if n == 0:
                break
            data += self.read(conn, n)
        self.scanned.append(data)
        if self.hold is not None:
            self.hold.wait(10)
        found = EICAR in data
        conn.sendall(b"stream: Eicar-Test-Signature FOUND\0" if found else b"stream: OK\0")

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


CLAMD = "/usr/sbin/clamd"
TEST_SIGNATURE = b"SLUICE-TEST-VIRUS-SIGNATURE"


class RealClamd:
    """clamd on a unix socket in `directory`, with one local signature database (.ndb) that
    matches TEST_SIGNATURE anywhere in a file."""

    def __init__(self, directory):
        db = os.path.join(directory, "clamdb")
        os.makedirs(db, exist_ok=True)
        with open(os.path.join(db, "sluice.ndb"), "w") as f:
            f.write("Sluice.Test.Signature:0:*:%s\n" % TEST_SIGNATURE.hex())
        self.path = os.path.join(directory, "clamd.sock")
        conf = os.path.join(directory, "clamd.conf")
        with open(conf, "w") as f:
            f.write("Foreground yes\nLocalSocket %s\nDatabaseDirectory %s\nLogFile %s\n"
                    "StreamMaxLength 60M\n" % (self.path, db, os.path.join(directory, "clamd.log")))
        self.proc = subprocess.Popen([CLAMD, "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("clamd did not start")
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class InboundTest(MailNetCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="inbound-")
        self.recipients = os.path.join(self.dir, "recipients")
        with open(self.recipients, "w") as f:
            f.write("# valid users\nalice@example.test\n<bob@example.test>\n")
        net = self.make_net()
        self.sink = net.peer("sink.internal.test")
        net.dns.txt("pass.test", "v=spf1 ip4:127.0.0.0/8 -all")
        net.dns.txt("fail.test", "v=spf1 -all")
        net.dns.host("2.0.0.127.bl.test", "127.0.0.2")  # 127.0.0.2 is listed
        net.dns.txt("2.0.0.127.bl.test", "listed for testing")
        net.dns.host("3.0.0.127.bl.test", "127.255.255.254")  # a list error code: not a listing
        net.dns.records.append("--local=/in-addr.arpa/")  # NXDOMAIN for other PTRs
        net.dns.ptr("1.0.0.127.in-addr.arpa", HELO)
        net.dns.host(HELO, "127.0.0.1")

    def start_mx(self, grace=None, **inbound):
        if self.net.port is None:
            self.net.start()
        cfg = self.net.sluice_config()
        if grace is not None:
            cfg["server"] = dict(cfg["server"], shutdown_grace=grace)
        cfg["domains"] = {DOMAIN: {"deliver_to": "[%s]:%d" % (self.sink.address, self.net.port),
                                   "recipients": self.recipients}}
        settings = {"dnsbl": [{"zone": "bl.test", "weight": 1}], "spf": "reject_fail",
                    "max_connections_per_client": 3}
        settings.update(inbound)
        cfg["inbound"] = settings
        harness.give_to_daemon_user(self.dir)  # its recipients file and clamd's socket
        self.d = self.start_sluice(listeners=[{"name": "mx", "role": "inbound"}], config=cfg)
        return self.d

    def connect(self, source="127.0.0.1", banner=True):
        host, port = self.d.addr()
        conn = SourceConn(source, host, port, banner=banner)
        self.addCleanup(conn.close)
        return conn

    def deliver(self, conn, sender, rcpts, body, helo=HELO):
        """One transaction on conn (after EHLO unless helo is None); the reply to the final dot."""
        return harness.send_message(conn, sender, rcpts, body, helo=helo)

    def delivered_data(self, rcpt):
        self.wait(lambda: rcpt in self.sink.delivered_rcpts(), 20, "delivered to the sink")
        return [tx.data for a, tx in self.sink.delivered() if a == rcpt][0]

    # ---- recipients ----

    def test_recipients(self):
        self.start_mx()
        c = self.connect()
        self.assertReply(c.ehlo(HELO), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@pass.test>"), 250)
        r = c.cmd("RCPT TO:<mallory@example.test>")
        self.assertReply(r, 550, "5.1.1")
        self.assertIn("User unknown", r.text)
        self.assertReply(c.cmd("RCPT TO:<Postmaster@example.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice+news@example.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<outside@elsewhere.test>"), 550)  # never relays
        self.assertTrue(self.d.find("smtp.rejected", rule="recipients",
                                    address="mallory@example.test"))
        self.assertReply(c.cmd("DATA"), 354)
        c.send(message("valid") + b".\r\n")
        self.assertReply(c.read_reply(timeout=15), 250)
        data = self.delivered_data("alice+news@example.test")
        self.assertIn(b"Subject: valid", data)
        self.assertNotIn("mallory@example.test", self.sink.delivered_rcpts())

    def rcpt_reply(self, rcpt):
        c = self.connect()
        self.assertReply(c.ehlo(HELO), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@pass.test>"), 250)
        reply = c.cmd("RCPT TO:<%s>" % rcpt)
        c.close()
        return reply

    def test_recipients_file_errors_and_reload(self):
        d = self.start_mx()
        res = d.cli("check-config")
        self.assertEqual(res.returncode, 0, res.stderr)
        res = d.cli("explain", "--listener", "mx", "--client", "192.0.2.1", "--from", "a@b.test",
                    "--rcpt", "carol@example.test")
        self.assertIn(b"reject 550 5.1.1 <carol@example.test>: Recipient address rejected",
                      res.stdout)
        self.assertIn(b"rule: domains.recipients at", res.stdout)
        # A bad line: check-config names it, and a reload keeps the old table.
        with open(self.recipients, "a") as f:
            f.write("carol@example.test\nnot an address\n")
        res = d.cli("check-config")
        self.assertNotEqual(res.returncode, 0)
        self.assertIn(("%s:5:" % self.recipients).encode(), res.stderr)
        d.signal(signal.SIGHUP)
        d.wait_event("daemon.reload_failed")
        self.assertReply(self.rcpt_reply("carol@example.test"), 550, "5.1.1")
        self.assertReply(self.rcpt_reply("alice@example.test"), 250)
        # Fixed: the reload applies to new sessions.
        with open(self.recipients, "w") as f:
            f.write("carol@example.test\n")
        d.signal(signal.SIGHUP)
        d.wait_event("daemon.reload", count=1)
        self.assertReply(self.rcpt_reply("carol@example.test"), 250)
        self.assertReply(self.rcpt_reply("alice@example.test"), 550, "5.1.1")

    # ---- DNSBL ----

    def test_dnsbl_listed_client_rejected_at_rcpt_postmaster_reachable(self):
        self.start_mx()
        c = self.connect("127.0.0.2")
        self.assertReply(c.banner, 220)
        self.assertReply(c.ehlo(HELO), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@pass.test>"), 250)
        r = c.cmd("RCPT TO:<alice@example.test>")
        self.assertReply(r, 554, "5.7.1")
        self.assertIn("blocked using bl.test", r.text)
        self.assertIn("[127.0.0.2]", r.text)
        self.assertReply(c.cmd("RCPT TO:<postmaster@example.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<postmaster>"), 250)
        self.assertTrue(self.d.find("smtp.rejected", rule="dnsbl", client="127.0.0.2"))

    def test_dnsbl_error_code_and_unlisted_are_not_listings(self):
        self.start_mx()
        for source in ("127.0.0.3", "127.0.0.1"):
            c = self.connect(source)
            self.assertReply(c.ehlo(HELO), 250)
            self.assertReply(c.cmd("MAIL FROM:<a@pass.test>"), 250)
            self.assertReply(c.cmd("RCPT TO:<alice@example.test>"), 250, msg=source)
            c.close()

    # ---- reverse DNS ----

    def test_reverse_dns(self):
        self.start_mx(reverse_dns="require_forward_confirmed")
        ok = self.connect("127.0.0.1")
        self.assertReply(ok.ehlo(HELO), 250)
        self.assertReply(ok.cmd("MAIL FROM:<a@pass.test>"), 250)
        self.assertReply(ok.cmd("RCPT TO:<alice@example.test>"), 250)
        nptr = self.connect("127.0.0.6")
        self.assertReply(nptr.ehlo(HELO), 250)
        self.assertReply(nptr.cmd("MAIL FROM:<a@pass.test>"), 250)
        self.assertReply(nptr.cmd("RCPT TO:<alice@example.test>"), 550, "5.7.25")
        self.assertReply(nptr.cmd("RCPT TO:<postmaster@example.test>"), 250)
        self.assertTrue(self.d.find("smtp.rejected", rule="reverse_dns", client="127.0.0.6"))

    # ---- SPF ----

    def test_spf_fail_rejected_at_mail(self):
        self.start_mx()
        c = self.connect()
        self.assertReply(c.ehlo(HELO), 250)
        r = c.cmd("MAIL FROM:<someone@fail.test>")
        self.assertReply(r, 550, "5.7.23")
        self.assertReply(c.cmd("RCPT TO:<alice@example.test>"), 503)  # no transaction
        self.assertTrue(self.d.find("smtp.rejected", rule="spf"))
        # Pipelined after a check in progress: each command waits for the one before.
        c.send(b"MAIL FROM:<x@fail.test>\r\nMAIL FROM:<a@pass.test>\r\nRCPT TO:<bob@example.test>\r\n")
        codes = [r.code for r in c.read_replies(3)]
        self.assertEqual(codes, [550, 250, 250])

    def test_spf_temperror_is_451_under_reject_fail(self):
        self.start_mx()
        c = self.connect()
        self.assertReply(c.ehlo(HELO), 250)
        # dnsmasq serves only .test and in-addr.arpa: it refuses other names (a DNS error).
        self.assertReply(c.cmd("MAIL FROM:<a@elsewhere.example>"), 451, "4.4.3")
        self.assertTrue(self.d.find("smtp.spf", result="temperror"))
        self.assertReply(c.cmd("MAIL FROM:<a@pass.test>"), 250)

    def test_spf_result_in_authentication_results(self):
        self.start_mx(spf="mark")
        c = self.connect()
        r = self.deliver(c, "a@fail.test", ["alice@example.test"], message("marked"))
        self.assertReply(r, 250)  # mark only records the result
        data = self.delivered_data("alice@example.test")
        self.assertTrue(data.startswith(b"Authentication-Results: sluice.test;\r\n\tspf=fail "
                                        b"smtp.mailfrom=fail.test;\r\n\tdkim=none\r\n"),
                        data[:200])
        self.assertIn(b"\r\nReceived: from client.test", data)

    def test_unknown_sender_domain(self):
        self.net.dns.host("resolves.test", "127.0.0.9")  # no MX: the implicit MX is enough
        self.net.dns.mx("mx-only.test", "mail.resolves.test", 10)
        self.net.dns.null_mx("nullmx.test")
        self.start_mx(reject_unknown_sender_domain=True, spf="ignore")
        c = self.connect()
        self.assertReply(c.ehlo(HELO), 250)
        for sender, code, enhanced in (("a@nowhere.test", 550, "5.1.8"),  # NXDOMAIN
                                       ("a@pass.test", 550, "5.1.8"),  # a TXT record only
                                       ("a@nullmx.test", 550, "5.7.27"),  # RFC 7505
                                       ("a@elsewhere.example", 451, "4.1.8"),  # DNS error
                                       ("a@resolves.test", 250, "2.1.0"),
                                       ("a@mx-only.test", 250, "2.1.0"),
                                       ("", 250, "2.1.0"),  # the null sender has no domain
                                       ("a@[127.0.0.9]", 250, "2.1.0")):
            with self.subTest(sender):
                self.assertReply(c.cmd("MAIL FROM:<%s>" % sender), code, enhanced)
                if code == 250:
                    self.assertReply(c.cmd("RSET"), 250)
        self.assertTrue(self.d.find("smtp.rejected", rule="sender_domain", code=550))
        self.assertTrue(self.d.find("smtp.sender_domain", domain="nullmx.test", result="null-mx"))
        # Pipelined after the check: each command waits for the one before, and SPF follows.
        c.send(b"MAIL FROM:<x@nowhere.test>\r\nMAIL FROM:<a@resolves.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\n")
        self.assertEqual([r.code for r in c.read_replies(3)], [550, 250, 250])

    def test_unknown_sender_domain_then_spf(self):
        self.net.dns.host("fail.test", "127.0.0.9")
        self.start_mx(reject_unknown_sender_domain=True)  # and spf: reject_fail
        c = self.connect()
        self.assertReply(c.ehlo(HELO), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@fail.test>"), 550, "5.7.23")  # resolves, SPF fails
        self.assertReply(c.cmd("MAIL FROM:<a@nowhere.test>"), 550, "5.1.8")  # SPF not asked
        self.assertEqual(self.d.events("smtp.spf", domain="nowhere.test"), [])

    def test_spf_null_sender_checks_helo(self):
        self.start_mx(spf="mark")
        c = self.connect()
        r = self.deliver(c, "", ["bob@example.test"], message("bounce"))
        self.assertReply(r, 250)
        data = self.delivered_data("bob@example.test")
        self.assertIn(b"spf=none smtp.helo=client.test", data.split(b"\r\n\r\n")[0])

    # ---- attachments ----

    def test_blocked_attachment_in_nested_multipart(self):
        self.start_mx()
        c = self.connect()
        r = self.deliver(c, "a@pass.test", ["alice@example.test"], NESTED_EXE)
        self.assertReply(r, 554, "5.7.1")
        self.assertIn("evil.exe", r.text)
        self.assertTrue(self.d.find("smtp.rejected", rule="attachment"))
        self.assertEqual(self.d.queue_list(), [])  # rolled back, never spooled
        # The session goes on: a clean message is delivered.
        r = self.deliver(c, "a@pass.test", ["bob@example.test"], CLEAN_MULTIPART, helo=None)
        self.assertReply(r, 250)
        self.assertIn(b"report.pdf", self.delivered_data("bob@example.test"))
        self.assertEqual(len(self.sink.delivered()), 1)

    # ---- client discipline ----

    def test_pregreet(self):
        self.start_mx(pregreet_wait="1s")
        rude = self.connect(banner=False)
        rude.send(b"EHLO " + HELO.encode() + b"\r\n")
        r = rude.read_reply(timeout=5)
        self.assertReply(r, 554, "5.5.1")
        self.assertIn("talking before the banner", r.text)
        self.assertTrue(rude.wait_closed(5))
        self.assertTrue(self.d.find("smtp.rejected", rule="pregreet"))
        started = time.monotonic()
        polite = self.connect()
        self.assertReply(polite.banner, 220)
        self.assertGreaterEqual(time.monotonic() - started, 0.9)
        self.assertReply(polite.ehlo(HELO), 250)

    def test_connections_per_client(self):
        self.start_mx()
        conns = [self.connect("127.0.0.7") for _ in range(3)]
        for c in conns:
            self.assertReply(c.banner, 220)
        extra = self.connect("127.0.0.7", banner=False)
        r = extra.read_reply(timeout=5)
        self.assertReply(r, 421, "4.7.0")
        self.assertIn("too many connections from your address", r.text)
        self.assertTrue(extra.wait_closed(5))
        self.assertReply(self.connect("127.0.0.8").banner, 220)  # another client is not counted
        conns[0].cmd("QUIT")
        self.assertTrue(conns[0].wait_closed(5))
        self.d.wait_event("smtp.disconnect", count=2)
        self.assertReply(self.connect("127.0.0.7").banner, 220)
        self.assertTrue(self.d.find("smtp.rejected", rule="client_limit"))

    # ---- clamd ----

    def test_clamd(self):
        clamd = FakeClamd(self.dir)
        self.addCleanup(clamd.stop)
        self.start_mx(clamd=clamd.path)
        c = self.connect()
        r = self.deliver(c, "a@pass.test", ["alice@example.test"],
                         message("virus", body=EICAR + b"\r\n"))
        self.assertReply(r, 554, "5.7.1")
        self.assertIn("virus found: Eicar-Test-Signature", r.text)
        self.assertTrue(self.d.find("smtp.rejected", rule="clamd"))
        self.assertEqual(self.d.queue_list(), [])
        r = self.deliver(c, "a@pass.test", ["bob@example.test"], message("clean"), helo=None)
        self.assertReply(r, 250)
        self.delivered_data("bob@example.test")
        self.assertIn(b"Subject: clean", clamd.scanned[-1])

    def test_real_clamd(self):
        """Debian's clamd with a local test signature (no downloaded databases): the signature in
        a message is found and the message refused; a clean one is delivered."""
        if not os.access(CLAMD, os.X_OK):
            self.skipTest("clamav-daemon is not installed (packaging/install-deps.sh test)")
        clamd = RealClamd(self.dir)
        self.addCleanup(clamd.stop)
        self.start_mx(clamd=clamd.path)
        c = self.connect()
        r = self.deliver(c, "a@pass.test", ["alice@example.test"],
                         message("virus", body=b"text " + TEST_SIGNATURE + b" text\r\n"))
        self.assertReply(r, 554, "5.7.1")
        self.assertIn("Sluice.Test.Signature", r.text)
        self.assertEqual(self.d.queue_list(), [])
        r = self.deliver(c, "a@pass.test", ["bob@example.test"], message("clean"), helo=None)
        self.assertReply(r, 250)
        self.delivered_data("bob@example.test")

    def test_grace_over_while_clamd_scans(self):
        """SIGTERM while clamd has not answered for a message yet: once server.shutdown_grace is
        over the session is closed and the message rolled back (never queued, never
        acknowledged), and the daemon exits 0."""
        hold = threading.Event()
        clamd = FakeClamd(self.dir, hold=hold)
        self.addCleanup(clamd.stop)
        self.addCleanup(hold.set)  # runs first
        self.start_mx(clamd=clamd.path, grace="1s")
        c = self.connect()
        self.assertReply(c.ehlo(HELO), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@pass.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@example.test>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(message("held") + b".\r\n")
        self.wait(lambda: len(clamd.scanned) == 1, 10, "clamd has the whole message")
        self.d.signal(signal.SIGTERM)
        self.assertEqual(self.d.wait_exit(15), 0)
        c.wait_closed()
        self.assertEqual([e["state"] for e in self.d.events("smtp.disconnect")], ["end-of-data"])
        self.assertEqual(self.d.events("smtp.accepted"), [])
        self.assertEqual(self.d.queue_list(), [])

    def test_clamd_down(self):
        path = os.path.join(self.dir, "nobody.sock")
        self.start_mx(clamd=path)
        c = self.connect()
        r = self.deliver(c, "a@pass.test", ["alice@example.test"], message("unscanned"))
        self.assertReply(r, 451, "4.7.1")
        self.d.stop()
        self.start_mx(clamd=path, clamd_down="accept")
        c = self.connect()
        r = self.deliver(c, "a@pass.test", ["alice@example.test"], message("unscanned"))
        self.assertReply(r, 250)
        self.assertTrue(self.d.find("smtp.clamd_down"))


if __name__ == "__main__":
    harness.main()
