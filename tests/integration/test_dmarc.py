"""
DMARC on an inbound listener (issue 20, item 1): the daemon's MX takes messages on a raw socket;
a real dnsmasq on loopback publishes the SPF records, the DKIM key (messages are signed by Debian's
python3-dkim) and the _dmarc records; the copy the internal server (a sink) receives carries the
result in Authentication-Results. Under inbound.dmarc: enforce, p=reject is refused with 550 5.7.1
at the final dot, p=quarantine gets the X-Sluice-Quarantine field, sp= decides for a subdomain,
pct=0 applies the next milder policy and pct=100 the policy itself, a DNS failure is a 451 and never
none, a message without a single From domain is refused; under mark everything is delivered with
its result; inbound.dmarc_override lets the failures of listed senders and networks through, marked.
"""
import re
import signal

import dkim

from harness import main
from mailnet import MailNetCase
from test_dkim import keygen, txt_option

DOMAIN = "example.test"
RCPT = "alice@" + DOMAIN


def auth_results(data):
    """The Authentication-Results field we added (the first field, after the quarantine field
    when there is one), unfolded."""
    m = re.match(rb"(?:X-Sluice-Quarantine: dmarc\r\n)?Authentication-Results: (.*?)\r\n(?![ \t])",
                 data, re.S)
    assert m, data[:300]
    return re.sub(rb"\r\n[ \t]", b" ", m.group(1)).decode()


def headers_of(data):
    return data.split(b"\r\n\r\n", 1)[0]


def message(subject, from_field="From: A <a@sender.test>\r\n", message_id=None):
    message_id = message_id or "<%s@client.test>" % subject.replace(" ", ".")
    return (from_field.encode() + b"To: <alice@example.test>\r\nSubject: " + subject.encode() +
            b"\r\nMessage-ID:  " + message_id.encode() +
            b" \r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n")


def pct_sample(message_id):
    """pct's sample of a message as docs/inbound-mx.md defines it: FNV-1a (32 bits) of the
    Message-ID's value without surrounding white space, modulo 100."""
    h = 2166136261
    for c in message_id.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h % 100


class DmarcTest(MailNetCase):
    def setUp(self):
        net = self.make_net()
        self.sink = net.peer("sink.internal.test")
        self.d = self.start_sluice(start=False, listeners=[{"name": "mx", "role": "inbound"}])
        self.key, value = keygen(self.d, "sel", domain="signed.test")
        net.dns.txt("sel._domainkey.signed.test", txt_option(value))
        # The daemon's clients come from 127.0.0.1: SPF passes for these senders, fails for
        # other.test.
        for sender in ("sender.test", "lists.test", "nodmarc.test"):
            net.dns.txt(sender, "v=spf1 ip4:127.0.0.0/8 -all")
        net.dns.txt("other.test", "v=spf1 -all")
        for name, record in (("sender.test", "v=DMARC1; p=reject"),
                             ("signed.test", "v=DMARC1; p=reject; aspf=s"),
                             ("quar.test", "v=DMARC1; p=quarantine"),
                             ("org.test", "v=DMARC1; p=none; sp=reject"),
                             ("pct0.test", "v=DMARC1; p=reject; pct=0"),
                             ("pct100.test", "v=DMARC1; p=reject; pct=100"),
                             ("pct50.test", "v=DMARC1; p=reject; pct=50")):
            net.dns.txt("_dmarc." + name, record)

    def start_mx(self, **inbound):
        self.net.start()
        cfg = self.net.sluice_config()
        cfg["domains"] = {DOMAIN: {"deliver_to": "[%s]:%d" % (self.sink.address, self.net.port)}}
        cfg["inbound"] = dict({"spf": "mark"}, **inbound)
        # The clients come from 127.0.0.1: not a network of ours, whose mail DMARC leaves alone.
        cfg["relay"] = {"trusted_networks": ["192.0.2.0/24"]}
        self.d.extra = cfg
        self.d.start()

    def sign(self, content, domain="signed.test"):
        with open(self.key, "rb") as f:
            return dkim.sign(content, b"sel", domain.encode(), f.read(),
                             canonicalize=(b"relaxed", b"relaxed")) + content

    def submit(self, sender, content):
        """One transaction on a raw socket; returns the reply to the final dot."""
        with self.d.connect("mx") as c:
            self.open_data(c, sender, RCPT)
            c.send(content + b".\r\n")
            return c.read_reply(timeout=15)

    def delivered(self, content, sender="bounce@other.test"):
        """Sends `content` (accepted: 250) and returns the copy the sink received."""
        self.assertReply(self.submit(sender, content), 250, "2.0.0")
        subject = re.search(rb"Subject: (.*?)\r\n", content).group(1)
        copies = lambda: [t.data for _, t in self.sink.delivered()
                          if b"Subject: " + subject + b"\r\n" in t.data]
        return self.wait(copies, 20, "delivered to the sink")[0]

    def test_enforce(self):
        self.start_mx(dmarc="enforce")
        # Pass through aligned SPF: MAIL FROM and From in sender.test.
        data = self.delivered(message("spf aligned"), sender="a@sender.test")
        self.assertIn("; dmarc=pass (p=reject dis=none) header.from=sender.test",
                      auth_results(data))
        # Pass through aligned DKIM: SPF fails for other.test, the signature is signed.test's.
        data = self.delivered(self.sign(message("dkim aligned", "From: <a@signed.test>\r\n")))
        ar = auth_results(data)
        self.assertRegex(ar, r"spf=fail smtp\.mailfrom=other\.test; dkim=pass header\.d=signed\.test"
                             r" .*; dmarc=pass \(p=reject dis=none\) header\.from=signed\.test$")
        # The event carries what an aggregate report counts.
        self.assertTrue(self.d.find("smtp.dmarc", from_domain="signed.test", result="pass",
                                    client="127.0.0.1", spf="fail", spf_domain="other.test",
                                    dkim="pass signed.test", disposition="none"))
        # Neither aligned: p=reject is a 550 at the final dot, naming DMARC.
        r = self.submit("bounce@other.test", message("refused", "From: <a@signed.test>\r\n"))
        self.assertReply(r, 550, "5.7.1")
        self.assertIn("DMARC policy of signed.test", r.text)
        self.assertTrue(self.d.find("smtp.dmarc", result="fail", policy="reject",
                                    disposition="reject", from_domain="signed.test"))
        self.assertTrue(self.d.find("smtp.rejected", stage="data", code=550, rule="dmarc"))
        # A signature of another domain passes DKIM but is not aligned.
        r = self.submit("bounce@other.test",
                        self.sign(message("unaligned", "From: <a@sender.test>\r\n")))
        self.assertReply(r, 550, "5.7.1")
        # p=quarantine: delivered with the quarantine field in front.
        data = self.delivered(message("quarantined", "From: <a@quar.test>\r\n"))
        self.assertIn(b"X-Sluice-Quarantine: dmarc\r\n", headers_of(data))
        self.assertIn("dmarc=fail (p=quarantine dis=quarantine) header.from=quar.test",
                      auth_results(data))
        # sp= for a subdomain (found at the organizational domain), p= for the domain itself.
        r = self.submit("bounce@other.test", message("subdomain", "From: <a@mail.org.test>\r\n"))
        self.assertReply(r, 550, "5.7.1")
        data = self.delivered(message("org domain", "From: <a@org.test>\r\n"))
        self.assertIn("dmarc=fail (p=none dis=none) header.from=org.test", auth_results(data))
        self.assertNotIn(b"X-Sluice-Quarantine", headers_of(data))
        # pct=0: the next milder policy (quarantine); pct=100: the policy.
        data = self.delivered(message("pct zero", "From: <a@pct0.test>\r\n"))
        self.assertIn("dmarc=fail (p=reject dis=quarantine) header.from=pct0.test",
                      auth_results(data))
        self.assertIn(b"X-Sluice-Quarantine: dmarc\r\n", headers_of(data))
        r = self.submit("bounce@other.test", message("pct hundred", "From: <a@pct100.test>\r\n"))
        self.assertReply(r, 550, "5.7.1")
        # pct=50: the Message-ID decides, the same way on every retry.
        ids = ["<pct%d@client.test>" % i for i in range(100)]
        inside = next(i for i in ids if pct_sample(i) < 50)
        outside = next(i for i in ids if pct_sample(i) >= 50)
        for _ in range(2):
            r = self.submit("bounce@other.test", message(
                "pct inside", "From: <a@pct50.test>\r\n", message_id=inside))
            self.assertReply(r, 550, "5.7.1")
        data = self.delivered(message("pct outside", "From: <a@pct50.test>\r\n",
                                      message_id=outside))
        self.assertIn("dmarc=fail (p=reject dis=quarantine) header.from=pct50.test",
                      auth_results(data))
        # No record: none, delivered untouched.
        data = self.delivered(message("no record", "From: <a@nodmarc.test>\r\n"))
        self.assertIn("; dmarc=none header.from=nodmarc.test", auth_results(data))
        # dnsmasq refuses names outside .test: a DNS failure, 451 (never none).
        r = self.submit("bounce@other.test", message("dns", "From: <a@elsewhere.example>\r\n"))
        self.assertReply(r, 451, "4.7.5")
        self.assertTrue(self.d.find("smtp.dmarc", result="temperror",
                                    from_domain="elsewhere.example"))
        # §6.6.1: several From fields, or From addresses of several domains, are refused.
        r = self.submit("a@sender.test", message(
            "two froms", "From: <a@sender.test>\r\nFrom: <b@sender.test>\r\n"))
        self.assertReply(r, 550, "5.7.1")
        self.assertIn("several From fields", r.text)
        r = self.submit("a@sender.test", message(
            "two domains", "From: a@sender.test, b@other.test\r\n"))
        self.assertReply(r, 550, "5.7.1")
        self.assertEqual(len(self.sink.delivered()), 7, self.sink.report())

    def test_mark(self):
        self.start_mx(dmarc="mark")
        data = self.delivered(message("marked", "From: <a@signed.test>\r\n"))
        self.assertIn("dmarc=fail (p=reject dis=none) header.from=signed.test",
                      auth_results(data))
        data = self.delivered(message("marked quarantine", "From: <a@quar.test>\r\n"))
        self.assertNotIn(b"X-Sluice-Quarantine", headers_of(data))
        data = self.delivered(message("marked dns", "From: <a@elsewhere.example>\r\n"))
        self.assertIn("dmarc=temperror header.from=elsewhere.example", auth_results(data))
        data = self.delivered(message("marked no from", ""))
        self.assertIn("dmarc=permerror (the message has no From field)", auth_results(data))

    def test_override_senders(self):
        self.start_mx(dmarc="enforce", dmarc_override={"senders": ["lists.test"]})
        # A mailing list relays signed.test's author: SPF passes for the list, not aligned.
        data = self.delivered(message("list post", "From: <a@signed.test>\r\n"),
                              sender="owner@sub.lists.test")
        self.assertIn("dmarc=fail (p=reject dis=none) header.from=signed.test",
                      auth_results(data))
        self.assertTrue(self.d.find("smtp.dmarc", override="sender", disposition="none"))
        # Senders outside the list are still refused.
        r = self.submit("bounce@other.test", message("not listed", "From: <a@signed.test>\r\n"))
        self.assertReply(r, 550, "5.7.1")

    def test_override_networks(self):
        self.start_mx(dmarc="enforce", dmarc_override={"networks": ["127.0.0.0/8"]})
        data = self.delivered(message("forwarded", "From: <a@signed.test>\r\n"))
        self.assertIn("dmarc=fail (p=reject dis=none) header.from=signed.test",
                      auth_results(data))
        self.assertTrue(self.d.find("smtp.dmarc", override="network"))

    def reload(self, event, **inbound):
        """Rewrites the configuration with `inbound` and reloads (SIGHUP); waits for `event`."""
        done = len(self.d.events(event))
        self.d.extra["inbound"] = dict({"spf": "mark"}, **inbound)
        self.d.write_config(extra=self.d.extra)
        self.d.signal(signal.SIGHUP)
        self.d.wait_event(event, count=done + 1)

    def test_reload(self):
        self.start_mx()  # inbound.dmarc defaults to ignore: no result at all
        data = self.delivered(message("ignored", "From: <a@signed.test>\r\n"))
        self.assertNotIn("dmarc=", auth_results(data))
        self.assertEqual(self.d.events("smtp.dmarc"), [])
        # A list that cannot be read refuses the new configuration, naming the key.
        self.reload("daemon.reload_failed", dmarc="enforce",
                    public_suffix_list="/nonexistent/psl.dat")
        self.assertTrue(self.d.find("config.error"), self.d.log_tail())
        self.assertIn("inbound.public_suffix_list: cannot open /nonexistent/psl.dat",
                      self.d.find("config.error")["msg"])
        self.delivered(message("still ignored", "From: <a@signed.test>\r\n"))
        res = self.d.cli("check-config")  # says the same before any reload
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertRegex(res.stderr.decode(), r"sluice\.yaml:\d+:\d+: inbound\.public_suffix_list: "
                                              r"cannot open /nonexistent/psl\.dat")
        # The list is read at reload when DMARC is turned on.
        self.reload("daemon.reload", dmarc="enforce")
        r = self.submit("bounce@other.test", message("now refused", "From: <a@signed.test>\r\n"))
        self.assertReply(r, 550, "5.7.1")


if __name__ == "__main__":
    main()
