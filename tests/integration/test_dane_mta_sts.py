"""
DANE takes precedence over MTA-STS (RFC 8461 §2, RFC 7672), through the real daemon with `tls:
dane` and dns.dnssec: dnsmasq on loopback holds the MX, TLSA, `_mta-sts` and `_smtp._tls` records,
and in front of it the AD-setting resolver of the DANE tests (ad_resolver.py); an HTTPS server
(test_mta_sts.PolicyServer) serves an enforced MTA-STS policy that does not list the MX host; the
MX host is a STARTTLS peer with a certificate from a test CA (pki.py).

With TLSA records for the host that match its certificate, DANE applies and MTA-STS does not: the
mail is delivered over TLS although the policy does not list the host, and the TLS report counts
the session under the TLSA base domain, the host (DANE's policy domain, RFC 8460 §3), with the
record as its policy string. Without TLSA records the
policy applies: the attempt defers with 451 4.7.5 naming the policy, the host is not even
connected to (its TLSA answer comes first), and the TLS report counts the session once as an
MTA-STS validation failure, mx-not-in-policy.
"""
import hashlib
import json
import os

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ad_resolver import AdResolver
from harness import main
from mailnet import send
from pki import CaNetCase
from test_mta_sts import PolicyServer, policy

SENDER = "alice@sender.test"
MX = "mx1.dest.test"  # not in the policy, which lists only mx.listed.test
RUA = "tlsrpt@reports.test"


class DaneOverMtaSts(CaNetCase):
    def start(self, tlsa):
        """The unlisted MX host (returned), its TLSA record when tlsa, the enforced policy, the
        resolver and the daemon; retries are an hour apart, so each test sees one attempt."""
        net = self.net
        mx = self.peer(MX)
        net.mx("dest.test", mx, 10)
        if tlsa:
            with open(os.path.join(self.ca.directory, MX + ".pem"), "rb") as f:
                cert = x509.load_pem_x509_certificate(f.read())
            spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
            self.tlsa = "3 1 1 " + hashlib.sha256(spki).hexdigest()
            net.dns.records.append("--dns-rr=_25._tcp.%s,52,030101%s"
                                   % (MX, hashlib.sha256(spki).hexdigest()))
        self.https = PolicyServer(self.ca, ["mta-sts.dest.test"])
        self.addCleanup(self.https.stop)
        self.https.policies["mta-sts.dest.test"] = policy("enforce", "mx.listed.test")
        net.dns.txt("_mta-sts.dest.test", "v=STSv1; id=1")
        net.dns.host("mta-sts.dest.test", self.https.address)
        for domain in ("dest.test", MX):
            net.dns.txt("_smtp._tls." + domain, "v=TLSRPTv1; rua=mailto:%s" % RUA)
        self.reports_sink = net.peer("mx.reports.test")
        net.mx("reports.test", self.reports_sink, 10)
        net.start()
        resolver = AdResolver(net.dns.port)
        self.addCleanup(resolver.stop)
        cfg = net.sluice_config(tls="dane", retry=["1h"], expire="2h")
        cfg["dns"] = {"servers": [resolver.server], "timeout": "1s", "dnssec": "true"}
        cfg["tls"] = {"ca_file": self.ca.path}
        cfg["tls_rpt"] = {"enabled": True, "organization": "Sluice Test",
                          "sender": "tlsrpt@sender.test", "contact": "ops@sender.test"}
        self.d = self.start_sluice(config=cfg)
        return mx

    def reports(self):
        """The reports `sluice tls-rpt send` writes (their copies in the spool), as JSON."""
        res = self.d.cli("tls-rpt", "send")
        self.assertEqual(res.returncode, 0, res.stderr)
        directory = os.path.join(self.d.spool, "tls-rpt", "reports")
        self.wait(lambda: os.path.isdir(directory) and os.listdir(directory), 20, "a report")
        reports = []
        for name in sorted(os.listdir(directory)):
            with open(os.path.join(directory, name)) as f:
                reports.append(json.load(f))
        return reports

    def test_tlsa_records_deliver_to_an_unlisted_host(self):
        mx = self.start(tlsa=True)
        send(self.d, SENDER, ["u@dest.test"])
        self.wait(lambda: mx.delivered(), 20, "delivered to the unlisted host with DANE")
        self.assertTrue(all(s.tls for s in mx.sessions if s.transactions), "over TLS")
        self.d.wait_event("dane.lookup", host=MX, mode="verify")
        rec = self.d.wait_event("mta_sts.policy", domain="dest.test")[0]
        self.assertEqual(rec["mode"], "enforce")
        self.assertEqual(self.d.events("tls_policy.failure"), [], "MTA-STS not applied")
        self.assertEqual(self.d.events("delivery.deferred"), [])

        # RFC 8460 §3: DANE's policy domain is the TLSA base domain, here the MX host, not the
        # recipient domain: the session is in the host's report, with the record as its policy.
        [report] = self.reports()
        [tlsa] = report["policies"]
        self.assertEqual(tlsa["policy"], {"policy-type": "tlsa", "policy-domain": MX,
                                          "policy-string": [self.tlsa]})
        self.assertEqual(tlsa["summary"], {"total-successful-session-count": 1,
                                           "total-failure-session-count": 0})

    def test_no_tlsa_records_defer_at_an_unlisted_host(self):
        mx = self.start(tlsa=False)
        send(self.d, SENDER, ["u@dest.test"])
        rec = self.d.wait_event("delivery.deferred", timeout=20)[0]
        self.assertEqual((rec["code"], rec["enhanced"]), (451, "4.7.5"), rec)
        self.assertIn("MX host %s is not in the domain's MTA-STS policy" % MX, rec["reply"])
        self.d.wait_event("dane.lookup", host=MX, mode="none")
        [failure] = self.d.events("tls_policy.failure")
        self.assertEqual((failure["mx"], failure["source"], failure["testing"]),
                         (MX, "mta-sts", False))
        self.assertEqual(mx.sessions, [], "not even a connection to the unlisted host")

        # The session is counted once, as the policy's validation failure for the host, under
        # the recipient domain (MTA-STS's policy domain).
        [report] = self.reports()
        [sts] = report["policies"]
        self.assertEqual((sts["policy"]["policy-type"], sts["policy"]["policy-domain"]),
                         ("sts", "dest.test"))
        self.assertEqual(sts["summary"], {"total-successful-session-count": 0,
                                          "total-failure-session-count": 1})
        [row] = sts["failure-details"]
        self.assertEqual((row["result-type"], row["receiving-mx-hostname"],
                          row["failure-reason-code"], row["failed-session-count"]),
                         ("validation-failure", MX, "mx-not-in-policy", 1))


if __name__ == "__main__":
    main()
