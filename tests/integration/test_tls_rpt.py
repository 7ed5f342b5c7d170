"""
TLS reporting (RFC 8460) through the real daemon: dnsmasq on loopback serves the MX records, the
`_mta-sts` and `_smtp._tls` TXT records; an HTTPS server (test_mta_sts.PolicyServer) serves the
MTA-STS policies; the MX hosts are peers (mailnet.py) with good, expired and wrong-name
certificates from a test CA (pki.py), and the report address's MX is one more peer.

Mail to a domain with an enforced policy meets an expired certificate at its first MX host and a
good one at the second; mail to a domain in testing mode meets a certificate for another name;
mail to a domain without a policy meets a host without STARTTLS. The counts survive a restart;
`sluice tls-rpt send` then mails one report per domain that publishes `_smtp._tls` (RFC 8460
§5.3: the Subject, TLS-Report-Domain and TLS-Report-Submitter fields, the JSON as an
application/tlsrpt+json attachment), whose JSON counts the sessions by policy and result type; a
copy of each is in <spool>/tls-rpt/reports/, and the domain without a record gets none. The
reports are DKIM-signed with the key of tls_rpt.sender's domain, which python3-dkim verifies
against the record dnsmasq serves. A report whose `_smtp._tls` lookup fails for a while (the DNS
server stopped) is kept and sent at the next try once the server answers again. Copies older
than 30 days are removed.
"""
import email
import email.policy
import json
import os
import time

import dkim
import dns.message
import dns.query

from harness import main
from mailnet import send
from pki import CaNetCase
from test_dkim import keygen, txt_option
from test_mta_sts import PolicyServer, policy

SENDER = "u@sender.test"
RUA = "tlsrpt@reports.test"


class TlsRpt(CaNetCase):
    def reports_in(self, t):
        """The report in transaction t: (policy domain, message, JSON)."""
        msg = email.message_from_bytes(t.data, policy=email.policy.default)
        parts = [p for p in msg.walk() if p.get_content_type() == "application/tlsrpt+json"]
        self.assertEqual(len(parts), 1, msg)
        return msg["TLS-Report-Domain"], msg, json.loads(parts[0].get_content())

    def reports(self, sink):
        """The reports the sink received: {policy domain: (message, JSON)}."""
        found = {}
        for t in sink.transactions():
            if t.data is not None:
                domain, msg, rep = self.reports_in(t)
                found[domain] = (msg, rep)
        return found

    def test_reports_count_sessions_by_result(self):
        net = self.net
        expired, good, wrong = (self.peer(name, **kind) for name, kind in (
            ("mx1.good.test", {"expired": True}), ("mx2.good.test", {}),
            ("mx.wrong.test", {"cert_name": "elsewhere.test"})))
        for domain, host, preference in (("good.test", expired, 10), ("good.test", good, 20),
                                         ("wrong.test", wrong, 10)):
            net.mx(domain, host, preference)
        plain = net.peer("mx.plain.test")  # no STARTTLS, no policy, no _smtp._tls record
        net.mx("plain.test", plain, 10)
        sink = net.peer("mx.reports.test")
        net.mx("reports.test", sink, 10)
        https = PolicyServer(self.ca, ["mta-sts.good.test", "mta-sts.wrong.test"])
        self.addCleanup(https.stop)
        for domain, text in (("good.test", policy("enforce", "*.good.test")),
                             ("wrong.test", policy("testing", "mx.wrong.test"))):
            net.dns.txt("_mta-sts." + domain, "v=STSv1; id=1")
            net.dns.host("mta-sts." + domain, https.address)
            https.policies["mta-sts." + domain] = text
            net.dns.txt("_smtp._tls." + domain, "v=TLSRPTv1; rua=mailto:%s" % RUA)
        self.d = self.start_sluice(start=False)
        key, record = keygen(self.d, "tlsrpt.key", selector="rpt", domain="sender.test")
        net.dns.txt("rpt._domainkey.sender.test", txt_option(record))
        net.start()
        cfg = self.d.extra = net.sluice_config(tls="mta-sts")
        cfg["tls"] = {"ca_file": self.ca.path}
        cfg["dkim"] = [{"domain": "sender.test", "selector": "rpt", "key": key}]
        cfg["tls_rpt"] = {"enabled": True, "organization": "Sluice Test",
                          "sender": "tlsrpt@sender.test", "contact": "ops@sender.test"}
        self.d.start()
        for domain in ("good.test", "wrong.test", "plain.test"):
            send(self.d, SENDER, ["a@" + domain])
        self.wait(lambda: good.delivered() and wrong.delivered() and plain.delivered(), 20,
                  "every message delivered")
        self.assertEqual(expired.transactions(), [])

        # The counts are saved at stop and read back at start.
        self.assertEqual(self.d.stop(), 0)
        self.d.restart()
        res = self.d.cli("tls-rpt", "send")
        self.assertEqual(res.returncode, 0, res.stderr)
        out = res.stdout.decode()
        for domain in ("good.test", "wrong.test", "plain.test"):
            self.assertIn(domain, out)
        self.wait(lambda: len(self.reports(sink)) == 2, 20, "two reports at the rua address")
        reports = self.reports(sink)
        self.assertEqual(sorted(reports), ["good.test", "wrong.test"])

        msg, rep = reports["good.test"]
        self.assertEqual(msg["TLS-Report-Submitter"], "sender.test")
        self.assertEqual(msg["Subject"], "Report Domain: good.test Submitter: sender.test "
                                         "Report-ID: <%s>" % rep["report-id"])
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "tlsrpt")
        self.assertEqual((rep["organization-name"], rep["contact-info"]),
                         ("Sluice Test", "ops@sender.test"))
        self.assertTrue(rep["date-range"]["start-datetime"].endswith("T00:00:00Z"))
        [sts] = rep["policies"]
        self.assertEqual(sts["policy"]["policy-type"], "sts")
        self.assertEqual(sts["policy"]["policy-domain"], "good.test")
        self.assertIn("mode: enforce", sts["policy"]["policy-string"])
        self.assertEqual(sts["policy"]["mx-host"], ["*.good.test"])
        self.assertEqual(sts["summary"], {"total-successful-session-count": 1,
                                          "total-failure-session-count": 1})
        [row] = sts["failure-details"]
        self.assertEqual((row["result-type"], row["receiving-mx-hostname"], row["receiving-ip"],
                          row["failed-session-count"]),
                         ("certificate-expired", "mx1.good.test", expired.address, 1))
        self.assertIn(row["sending-mta-ip"], ("127.0.0.10", "127.0.0.11"))

        _, rep = reports["wrong.test"]
        [sts] = rep["policies"]
        self.assertEqual(sts["summary"], {"total-successful-session-count": 0,
                                          "total-failure-session-count": 1})
        self.assertEqual(sts["failure-details"][0]["result-type"], "certificate-host-mismatch")

        self.d.wait_event("tls_rpt.no_record", timeout=10)
        copies = os.listdir(os.path.join(self.d.spool, "tls-rpt", "reports"))
        self.assertEqual(len(copies), 2, copies)
        for name in copies:
            with open(os.path.join(self.d.spool, "tls-rpt", "reports", name)) as f:
                self.assertIn(json.load(f)["policies"][0]["policy"]["policy-domain"],
                              ("good.test", "wrong.test"))
        for rec in self.d.events("tls_rpt.report"):
            self.assertEqual(rec["rua"], RUA)

        # RFC 8460 §5.3: the reports are DKIM-signed for the sender's domain.
        def dnsfunc(name, timeout=5):
            q = dns.message.make_query(name.decode("ascii").rstrip("."), "TXT")
            r, _ = dns.query.udp_with_fallback(q, "127.0.0.1", port=net.dns.port, timeout=3)
            return b"".join(b"".join(rd.strings) for rrset in r.answer for rd in rrset)

        for t in sink.delivered():
            data = t[1].data
            self.assertIn(b"d=sender.test", data.split(b"\r\n\r\n")[0])
            self.assertTrue(dkim.DKIM(data).verify(dnsfunc=dnsfunc), data[:3000])

    def test_report_kept_while_lookup_fails(self):
        net = self.net
        plain = net.peer("mx.plain.test")  # no STARTTLS: one no-policy-found failure
        net.mx("plain.test", plain, 10)
        sink = net.peer("mx.reports.test")
        net.mx("reports.test", sink, 10)
        net.dns.txt("_smtp._tls.plain.test", "v=TLSRPTv1; rua=mailto:%s" % RUA)
        net.start()
        cfg = net.sluice_config()
        cfg["tls_rpt"] = {"enabled": True, "sender": "tlsrpt@sender.test"}
        self.d = self.start_sluice(config=cfg)
        send(self.d, SENDER, ["a@plain.test"])
        self.wait(lambda: plain.delivered(), 20, "the message delivered")

        port = net.dns.port
        net.dns.stop()
        res = self.d.cli("tls-rpt", "send")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("plain.test", res.stdout.decode())
        self.d.wait_event("tls_rpt.send_deferred", timeout=20)
        self.assertEqual(self.d.events("tls_rpt.no_record"), [])

        net.dns.start(port=port)
        res = self.d.cli("tls-rpt", "send")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("plain.test", res.stdout.decode())
        self.wait(lambda: self.reports(sink), 20, "the kept report at the rua address")
        _, rep = self.reports(sink)["plain.test"]
        [none] = rep["policies"]
        self.assertEqual(none["policy"]["policy-type"], "no-policy-found")
        self.assertEqual(none["summary"], {"total-successful-session-count": 0,
                                           "total-failure-session-count": 1})

    def test_report_goes_despite_policy(self):
        """RFC 8460 §5.3: the rua domain enforces MTA-STS and its MX presents a certificate for
        another name. Its own mail defers; the reports to it go with opportunistic TLS, and
        their sessions are not counted in the next report."""
        net = self.net
        plain = net.peer("mx.plain.test")  # no STARTTLS: one no-policy-found failure
        net.mx("plain.test", plain, 10)
        sink = self.peer("mx.reports.test", cert_name="elsewhere.test")
        net.mx("reports.test", sink, 10)
        https = PolicyServer(self.ca, ["mta-sts.reports.test"])
        self.addCleanup(https.stop)
        net.dns.txt("_mta-sts.reports.test", "v=STSv1; id=1")
        net.dns.host("mta-sts.reports.test", https.address)
        https.policies["mta-sts.reports.test"] = policy("enforce", "mx.reports.test")
        for domain in ("plain.test", "reports.test"):
            net.dns.txt("_smtp._tls." + domain, "v=TLSRPTv1; rua=mailto:%s" % RUA)
        net.start()
        cfg = net.sluice_config(tls="mta-sts", retry=["1h"], expire="2h")
        cfg["tls"] = {"ca_file": self.ca.path}
        cfg["tls_rpt"] = {"enabled": True, "sender": "tlsrpt@sender.test"}
        self.d = self.start_sluice(config=cfg)
        send(self.d, SENDER, ["a@plain.test"])
        send(self.d, SENDER, ["b@reports.test"])
        self.wait(lambda: plain.delivered(), 20, "the message to plain.test delivered")
        self.d.wait_event("tls_policy.failure", timeout=20, mx="mx.reports.test")

        def reports():
            return [self.reports_in(t)[::2] for t in sink.transactions() if t.data is not None]

        res = self.d.cli("tls-rpt", "send")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.wait(lambda: len(reports()) == 2, 20, "both reports at the rua address")
        self.assertEqual(sorted(d for d, _ in reports()), ["plain.test", "reports.test"])
        self.assertNotIn("b@reports.test", sink.delivered_rcpts())
        [(_, rep)] = [r for r in reports() if r[0] == "reports.test"]
        [sts] = rep["policies"]
        self.assertEqual(sts["summary"], {"total-successful-session-count": 0,
                                          "total-failure-session-count": 1})

        # New mail to the domain does not ride a report's session: it defers too.
        send(self.d, SENDER, ["c@reports.test"])
        self.d.wait_event("tls_policy.failure", timeout=20, count=2, mx="mx.reports.test")
        self.assertEqual(sink.delivered_rcpts(), [RUA, RUA])

        # The next report counts that one session, none of the reports' own.
        res = self.d.cli("tls-rpt", "send")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.decode().splitlines()[0].split()[1:], ["reports.test"])
        self.wait(lambda: len(reports()) == 3, 20, "the second report at the rua address")
        domain, rep = reports()[2]
        self.assertEqual(domain, "reports.test")
        [sts] = rep["policies"]
        self.assertEqual(sts["policy"]["policy-type"], "sts")
        self.assertEqual(sts["summary"], {"total-successful-session-count": 0,
                                          "total-failure-session-count": 1})
        self.assertEqual(len(self.d.events("tls_policy.failure", mx="mx.reports.test")), 2)

    def test_old_copies_removed(self):
        self.net.start()
        self.d = self.start_sluice(start=False, config=self.net.sluice_config())
        copies = os.path.join(self.d.spool, "tls-rpt", "reports")
        os.makedirs(copies)
        ages = {"old.json": 31, "recent.json": 29, "old-other.txt": 31}
        for name, days in ages.items():
            path = os.path.join(copies, name)
            with open(path, "w") as f:
                f.write("{}")
            when = time.time() - days * 86400
            os.utime(path, (when, when))
        self.d.start()
        self.wait(lambda: not os.path.exists(os.path.join(copies, "old.json")), 10,
                  "the copy older than 30 days removed")
        self.assertEqual(sorted(os.listdir(copies)), ["old-other.txt", "recent.json"])

    def test_off_by_default(self):
        self.net.start()
        self.d = self.start_sluice(config=self.net.sluice_config())
        res = self.d.cli("tls-rpt", "send")
        self.assertEqual(res.returncode, 1)
        self.assertIn("tls_rpt.enabled", res.stderr.decode())


if __name__ == "__main__":
    main()
