"""
Issue 15, what we sent and what comes back, through the running daemon. Relayed mail carries
X-Sluice-Trace (queue id, tenant, campaign, recipient, MAC under the newest key: checked here by
an independent HMAC-SHA256 in python) and Feedback-ID; the client's X-Sluice-Campaign becomes the
campaign and is removed, a forged X-Sluice-Trace of the client's is dropped, and inbound mail gets
no trace. Then the way back: mail relayed for an authenticated tenant reaches a sink; a report
built from the delivered copy the way Yahoo builds one (python's email package: headers only,
recipient redacted) sent to the feedback address is matched to tenant, campaign, queue id and
recipient; a late DSN for a message whose return path is a feedback address is logged as
bounce.late with its recipient, and so is a bounce quoting nothing of the message when it comes
back to the VERP return path Sluice gave it (bounce+TRACE@feedback.verp_domain); reports about mail we never sent (no trace, a forged MAC, a queue
id never issued) are each logged as feedback.unrecognized and, past the threshold, raise the alarm
once, which mails the notify address; GET /metrics counts the reports by kind (complaint,
late_bounce, unrecognized, parsed by prometheus_client) and the alarms raised; a transaction mixing feedback and other recipients gets 452.
A configuration whose feedback domains are not ours does not load.
"""
import base64
import hashlib
import hmac
import os
import re
import subprocess
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
import email.message
import email.policy

from certs import client_context
from harness import SMTPConn, SluiceTestCase, main, queued_id, send_message
from mailnet import MailNetCase
from test_http import families, http_section, sample

KEYS = [{"id": "old", "secret": "the retired secret, 16+"},
        {"id": "new", "secret": "the current secret, 16+"}]
FEEDBACK = {"addresses": ["fbl@fb.test"], "sender_id": "sluice-test", "trace_keys": KEYS}


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check_trace(token, keys=KEYS):
    """The fields of a trace whose MAC verifies under one of keys, else None."""
    m = re.fullmatch(r"q([A-Za-z0-9_-]+)\.t([\w-]*)\.c([\w-]*)\.r([\w-]*)\.k(\w+)\.m(\S+)", token)
    if m is None:
        return None
    qid = m.group(1)
    tenant, campaign, rcpt = (b64url_decode(m.group(i)).decode() for i in (2, 3, 4))
    for key in keys:
        if key["id"] == m.group(5) and \
                hmac.compare_digest(mac(key, qid, tenant, campaign, rcpt), b64url_decode(m.group(6))):
            return {"queue_id": qid, "tenant": tenant, "campaign": campaign, "rcpt": rcpt,
                    "key": key["id"]}
    return None


def mac(key, *fields):
    data = b"\0".join([b"sluice1"] + [f.encode() for f in fields] + [key["id"].encode()]) + b"\0"
    return hmac.new(key["secret"].encode(), data, hashlib.sha256).digest()[:16]


def make_trace(key, qid, tenant="", campaign="", rcpt=""):
    """A trace as Sluice makes it, under any key (ours, to forge one with a valid MAC)."""
    enc = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")
    return "q%s.t%s.c%s.r%s.k%s.m%s" % (qid, enc(tenant), enc(campaign), enc(rcpt), key["id"],
                                        base64.urlsafe_b64encode(
                                            mac(key, qid, tenant, campaign, rcpt)).decode()
                                        .rstrip("="))


def header_fields(stored):
    head = stored.split(b"\r\n\r\n", 1)[0].decode()
    return [(n, v.strip()) for n, v in
            re.findall(r"^([^\s:]+):[ \t]*(.*(?:\r\n[ \t].*)*)", head, re.M)]


class TraceTest(SluiceTestCase):
    def setUp(self):
        self.d = self.start_sluice(listeners=[{"name": "submission", "role": "submission"},
                                              {"name": "mx", "role": "inbound"}],
                                   config={"domains": {"example.com": None, "fb.test": None,
                                                       "bounce.test": None},
                                           "feedback": dict(FEEDBACK, verp_domain="bounce.test")})

    def test_relayed_mail_carries_a_verified_trace(self):
        with self.d.connect("submission") as c:
            c.ehlo()
            r = send_message(c, "news@sender.test", ["bob@dest.test"],
                             b"X-Sluice-Campaign: spring\r\n sale\r\n"
                             b"X-Sluice-Trace: qFORGED.t.c.kold.mAAAA\r\n"
                             b"Subject: hi\r\n\r\nbody\r\n")
        qid = queued_id(r)
        fields = header_fields(self.d.queue_body(qid))
        names = [n.lower() for n, _ in fields]
        self.assertNotIn("x-sluice-campaign", names)
        traces = [v for n, v in fields if n.lower() == "x-sluice-trace"]
        self.assertEqual(len(traces), 1, fields)
        self.assertEqual(check_trace(traces[0]), {"queue_id": qid, "tenant": "",
                                                  "campaign": "spring sale",
                                                  "rcpt": "bob@dest.test", "key": "new"})
        self.assertIsNone(check_trace(traces[0], [dict(KEYS[1], secret="another secret 16+")]))
        self.assertIn(("Feedback-ID", ":spring_sale:sluice-test"), fields)
        # The spooled envelope has the VERP return path made from the same queue id.
        show = self.d.queue_show(qid).decode()
        verp = re.search(r"bounce\+(\S+)@bounce\.test", show)
        self.assertIsNotNone(verp, show)
        self.assertEqual(check_trace(verp.group(1))["queue_id"], qid)
        self.assertNotIn("news@sender.test", show)

    def test_inbound_mail_is_not_traced(self):
        with self.d.connect("mx") as c:
            c.ehlo()
            r = send_message(c, "someone@elsewhere.test", ["user@example.com"],
                             b"Subject: hi\r\n\r\nbody\r\n")
        qid = queued_id(r)
        names = [n.lower() for n, _ in header_fields(self.d.queue_body(qid))]
        self.assertIn("someone@elsewhere.test", self.d.queue_show(qid).decode(), "no VERP")
        self.assertNotIn("x-sluice-trace", names)
        self.assertNotIn("feedback-id", names)


PASSWORD = "feedback pass"


def redacted_headers(delivered, rcpt):
    """The delivered copy's header section as a receiver quotes it: the recipient redacted."""
    head = delivered.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    return head.replace(rcpt.encode(), b"redacted@yahoo.com")


def report_message(parts, sender, to, subject, report_type):
    msg = MIMEMultipart("report", report_type=report_type)
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    for part in parts:
        msg.attach(part)
    return msg.as_bytes(policy=email.policy.SMTP)


def part(maintype, subtype, payload):
    p = MIMEBase(maintype, subtype)
    p.set_payload(payload)
    return p


def yahoo_arf(headers, to="fbl@fb.test", source_ip="192.0.2.25"):
    """An ARF report as Yahoo sends one: the original's header fields only, recipient redacted."""
    fields = ("Feedback-Type: abuse\r\nUser-Agent: Yahoo!-Mail-Feedback/2.0\r\nVersion: 0.1\r\n"
              "Original-Mail-From: <news@sender.test>\r\nSource-IP: %s\r\n"
              "Reported-Domain: sender.test\r\n" % source_ip)
    return report_message([MIMEText("This is an email abuse report for an email message.\r\n"),
                           part("message", "feedback-report", fields),
                           part("text", "rfc822-headers", headers.decode())],
                          "feedbackloop@feedback.yahoo.com", to, "FW: report",
                          "feedback-report")


def fields_block(**fields):
    block = email.message.Message()
    for name, value in fields.items():
        block[name.replace("_", "-")] = value
    return block


def postfix_dsn(headers, rcpt, to="bounces@fb.test"):
    """A DSN (RFC 3464) as Postfix sends one, with the original's header fields."""
    status = part("message", "delivery-status", [
        fields_block(Reporting_MTA="dns; mx.receiver.test"),
        fields_block(Final_Recipient="rfc822; " + rcpt, Action="failed", Status="5.1.1",
                     Diagnostic_Code="smtp; 550 5.1.1 user unknown")])
    return report_message([MIMEText("Your message could not be delivered.\r\n"), status,
                           part("text", "rfc822-headers", headers.decode())],
                          "MAILER-DAEMON@mx.receiver.test", to,
                          "Undelivered Mail Returned to Sender", "delivery-status")


def stuff(data):
    return re.sub(rb"(^|\r\n)\.", rb"\1..", data)


class IntakeTest(MailNetCase):
    def setUp(self):
        net = self.make_net()
        self.sink = net.peer("mx.receiver.test")
        net.mx("receiver.test", self.sink, 10)
        net.start()
        d = self.start_sluice(start=False, tls=True,
                              listeners=[{"name": "submission", "role": "submission",
                                          "tls": "starttls"},
                                         {"name": "mx", "role": "inbound"}])
        users = os.path.join(d.dir, "users")
        h = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=PASSWORD.encode(),
                           stdout=subprocess.PIPE, check=True, timeout=30).stdout.decode().strip()
        with open(users, "w") as f:
            f.write("alice:%s\n" % h)
        d.extra = dict(net.sluice_config(egress=None),
                       relay={"trusted_networks": [], "users": users},
                       domains={"example.com": None, "fb.test": None, "bounce.test": None},
                       feedback=dict(FEEDBACK, addresses=["fbl@fb.test", "bounces@fb.test"],
                                     verp_domain="bounce.test",
                                     alarm_threshold=2, alarm_notify="ops@receiver.test"),
                       suppression={"enabled": True})
        d.extra["http"] = http_section(d)
        d.start()
        self.d = d

    def assertReportsCounted(self, **kinds):
        """GET /metrics counts the reports by kind as given, and the alarms raised as alarms."""
        alarms = kinds.pop("alarms", 0)
        fams = families(self.d)
        for kind in ("complaint", "late_bounce", "unrecognized"):
            self.assertEqual(sample(fams, "sluice_feedback_reports", "sluice_feedback_reports_total",
                                    kind=kind), kinds.get(kind, 0), kind)
        self.assertEqual(sample(fams, "sluice_feedback_alarms", "sluice_feedback_alarms_total"),
                         alarms)

    def session_as_alice(self):
        """A submission session authenticated as the tenant alice."""
        c = self.d.connect("submission")
        self.addCleanup(c.close)
        c.ehlo()
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        c.starttls(client_context())
        c.ehlo()
        auth = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()
        self.assertEqual(c.cmd("AUTH PLAIN " + auth, timeout=30).code, 235)
        return c

    def assertSuppressed(self, rcpt, source):
        """RCPT to rcpt, relayed as alice, is refused naming the entry's source."""
        c = self.session_as_alice()
        self.assertEqual(c.cmd("MAIL FROM:<news@sender.test>").code, 250)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), r)
        self.assertIn("suppressed (%s " % source, r.text)

    def relay_as_alice(self, sender, rcpt, campaign):
        """Relays one message as the authenticated tenant alice; returns its queue id once the
        sink has it, and the delivered bytes."""
        c = self.session_as_alice()
        body = ("X-Sluice-Campaign: %s\r\nFrom: News <%s>\r\nTo: <%s>\r\n"
                "Subject: spring sale\r\n\r\nBuy now.\r\n" % (campaign, sender, rcpt)).encode()
        qid = queued_id(send_message(c, sender, [rcpt], body))
        self.assertIsNotNone(qid)
        return qid, self.delivered_to(rcpt)

    def delivered_to(self, rcpt):
        """The bytes the sink got for rcpt, once it has them."""
        self.wait(lambda: [tx for a, tx in self.sink.delivered() if a == rcpt], 20,
                  "delivered to %s" % rcpt)
        return [tx for a, tx in self.sink.delivered() if a == rcpt][0].data

    def report(self, message, rcpt="fbl@fb.test"):
        with SMTPConn(*self.d.addr("mx")) as c:
            c.ehlo("mta1.feedback.yahoo.com")
            r = send_message(c, "", [rcpt], stuff(message))
        self.assertEqual((r.code, r.text), (250, "2.0.0 Ok: report read"))

    def test_complaint_is_matched(self):
        qid, delivered = self.relay_as_alice("news@sender.test", "bob@receiver.test", "spring")
        self.report(yahoo_arf(redacted_headers(delivered, "bob@receiver.test")))
        ev = self.d.wait_event("feedback.complaint")[0]
        self.assertEqual((ev["queue_id"], ev["tenant"], ev["campaign"], ev["recipient"]),
                         (qid, "alice", "spring", "bob@receiver.test"), ev)
        self.assertEqual((ev["format"], ev["provider"], ev["source_ip"], ev["suppress"]),
                         ("arf", "feedback.yahoo.com", "192.0.2.25", True))
        self.assertEqual(self.d.events("feedback.unrecognized"), [])
        # Read, not delivered: nothing for the feedback address was queued.
        self.assertEqual(self.d.queue_list(), [])
        # The recipient is off alice's list from now on.
        added = self.d.wait_event("suppression.added")[0]
        self.assertEqual((added["tenant"], added["address"], added["source"]),
                         ("alice", "bob@receiver.test", "complaint"), added)
        self.assertSuppressed("bob@receiver.test", "complaint")
        self.assertReportsCounted(complaint=1)

    def test_late_bounce_is_matched(self):
        qid, delivered = self.relay_as_alice("bounces@fb.test", "carol@receiver.test", "autumn")
        self.report(postfix_dsn(delivered.split(b"\r\n\r\n", 1)[0] + b"\r\n",
                                "carol@receiver.test"), rcpt="bounces@fb.test")
        ev = self.d.wait_event("bounce.late")[0]
        self.assertEqual((ev["queue_id"], ev["tenant"], ev["campaign"], ev["recipient"],
                          ev["status"], ev["suppress"], ev["matched_by"]),
                         (qid, "alice", "autumn", "carol@receiver.test", "5.1.1", True, "trace"),
                         ev)
        self.assertReportsCounted(late_bounce=1)

    def test_bounce_to_the_verp_return_path_is_matched(self):
        qid, delivered = self.relay_as_alice("news@sender.test", "erin@receiver.test", "winter")
        verp = [tx.sender for a, tx in self.sink.delivered() if a == "erin@receiver.test"][0]
        self.assertRegex(verp, r"^bounce\+q%s\.t\.c\.r\.knew\.m[\w-]{22}@bounce\.test$" % qid)
        self.assertLessEqual(verp.index("@"), 64, "a local part RFC 5321 allows")
        # A bounce that quotes nothing of the message: only its return path names it.
        mangled = (b"From: MAILER-DAEMON@legacy.receiver.test\r\nSubject: failure notice\r\n\r\n"
                   b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
                   b"\r\n<erin@receiver.test>:\r\n550 5.1.1 mailbox unavailable\r\n")
        self.report(mangled, rcpt=verp)
        ev = self.d.wait_event("bounce.late")[0]
        self.assertEqual((ev["queue_id"], ev["recipient"], ev["status"], ev["matched_by"],
                          ev["format"], ev["suppress"]),
                         (qid, "erin@receiver.test", "5.1.1", "verp", "bounce", True), ev)
        added = self.d.wait_event("suppression.added")[0]
        self.assertEqual((added["tenant"], added["address"], added["source"]),
                         ("", "erin@receiver.test", "bad-mailbox"), added)
        self.assertSuppressed("erin@receiver.test", "bad-mailbox")
        # The same bounce to a return path we never made is not ours.
        forged = "bounce+%s@bounce.test" % make_trace(dict(KEYS[1], secret="guessed secret 16+"),
                                                      qid)
        self.report(mangled, rcpt=forged)
        ev = self.d.wait_event("feedback.unrecognized")[0]
        self.assertEqual((ev["reason"], ev["kind"]), ("bad_mac", "bounce"), ev)

    def test_reports_about_mail_we_never_sent_raise_the_alarm_once(self):
        qid, delivered = self.relay_as_alice("news@sender.test", "dan@receiver.test", "c")
        headers = redacted_headers(delivered, "dan@receiver.test")
        ours = re.search(rb"X-Sluice-Trace: (\S+)", headers).group(1).decode()
        forged = make_trace(dict(KEYS[1], secret="not the secret we keep"), qid, "alice", "c")
        never_issued = make_trace(KEYS[1], "ZZZZZZZZZZZZZZZZ", "alice", "c")
        cases = [("no_trace", headers.replace(b"X-Sluice-Trace: " + ours.encode() + b"\r\n", b"")),
                 ("bad_mac", headers.replace(ours.encode(), forged.encode())),
                 ("never_issued", headers.replace(ours.encode(), never_issued.encode()))]
        for i, (reason, h) in enumerate(cases):
            self.report(yahoo_arf(h, source_ip="198.51.100.%d" % (i + 1)))
            ev = self.d.wait_event("feedback.unrecognized", count=i + 1)[i]
            self.assertEqual((ev["reason"], ev["level"], ev["source_ip"], ev["provider"],
                              ev["sender"], ev["subject"], ev["in_window"]),
                             (reason, "error", "198.51.100.%d" % (i + 1), "feedback.yahoo.com",
                              "news@sender.test", "spring sale", i + 1), ev)
        # Three in the window, threshold two: the alarm is raised, once, and mailed.
        alarm = self.d.wait_event("feedback.alarm")
        self.assertEqual((alarm[0]["count"], alarm[0]["notify"]), (3, "ops@receiver.test"))
        self.report(yahoo_arf(cases[0][1]))
        self.d.wait_event("feedback.unrecognized", count=4)
        self.assertEqual(len(self.d.events("feedback.alarm")), 1)
        self.assertReportsCounted(unrecognized=4, alarms=1)
        note = self.delivered_to("ops@receiver.test")
        self.assertIn(b"Subject: Sluice alarm: 3 reports about mail", note)
        self.assertIn(b"sluice relay-test", note)
        self.assertEqual(self.d.events("feedback.complaint"), [])

    def test_feedback_addresses_take_their_own_transaction(self):
        with SMTPConn(*self.d.addr("mx")) as c:
            c.ehlo("peer.test")
            self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<user@example.com>").code, 250)
            r = c.cmd("RCPT TO:<fbl@fb.test>")
            self.assertEqual((r.code, r.enhanced), (452, "4.5.3"))
            self.assertEqual(c.cmd("RSET").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<fbl@fb.test>").code, 250)
            r = c.cmd("RCPT TO:<user@example.com>")
            self.assertEqual((r.code, r.enhanced), (452, "4.5.3"))
            self.assertEqual(c.cmd("DATA").code, 354)
            c.send(b"From: someone@elsewhere.test\r\nSubject: hello\r\n\r\nhi\r\n.\r\n")
            self.assertEqual(c.read_reply().code, 250)
        self.d.wait_event("feedback.ignored")
        self.assertEqual(self.d.queue_list(), [])


class ConfigTest(SluiceTestCase):
    def test_feedback_domains_must_be_ours(self):
        d = self.start_sluice(start=False)
        for feedback, error in [
                ({"addresses": ["fbl@elsewhere.test"]},
                 "feedback.addresses: the domain of fbl@elsewhere.test is not in domains"),
                ({"verp_domain": "bounce.elsewhere.test", "trace_keys": KEYS},
                 "feedback.verp_domain: bounce.elsewhere.test is not in domains"),
                ({"verp_domain": "example.com"}, "feedback.verp_domain needs feedback.trace_keys"),
                ({"trace_keys": [KEYS[0], dict(KEYS[1], id="old")]},
                 "feedback.trace_keys[1].id: 'old' is already the id of feedback.trace_keys[0]"),
                ({"trace_keys": [{"id": "k1", "secret": "short"}]},
                 "is shorter than 16 characters")]:
            d.write_config(extra={"feedback": feedback})
            res = d.cli("check-config")
            self.assertNotEqual(res.returncode, 0, feedback)
            self.assertRegex(res.stderr.decode(), r"sluice\.yaml:\d+:\d+: .*" + re.escape(error))


if __name__ == "__main__":
    main()
