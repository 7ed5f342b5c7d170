"""
Outbound TLS policies (shaping `tls:`) through the real daemon against real peers (mailnet.py)
whose certificates come from a test CA (pki.py, trusted through tls.ca_file): `tls: required`
delivers to a host whose certificate is valid for its MX name and defers (451 4.7.x, logged as
tls_policy.failure with the reason) at hosts with an expired, wrong-name or self-signed
certificate, or without STARTTLS, trying the next MX host; `tls: none` never says STARTTLS;
`opportunistic` still delivers over an unverifiable certificate.
"""

from harness import main
from mailnet import send
from pki import CaNetCase

SENDER = "tls@sender.test"


class TlsPolicy(CaNetCase):
    def start(self, **default):
        if self.net.port is None:
            self.net.start()
        cfg = self.net.sluice_config(**default)
        cfg["tls"] = {"ca_file": self.ca.path}
        self.d = self.start_sluice(config=cfg)

    def failures(self, mx):
        return self.d.events("tls_policy.failure", mx=mx)

    def test_required_verifies_the_certificate(self):
        net = self.net
        good = self.peer("mx.good.test")
        expired = self.peer("mx.expired.test", expired=True)
        wrong = self.peer("mx.wrong.test", cert_name="elsewhere.test")
        selfsigned = self.peer("mx.self.test", self_signed=True)
        plain = net.peer("mx.plain.test")  # offers no STARTTLS
        for p in (good, expired, wrong, selfsigned, plain):
            net.mx(p.name.replace("mx.", ""), p, 10)
        self.start(tls="required")
        for domain in ("good.test", "expired.test", "wrong.test", "self.test", "plain.test"):
            send(self.d, SENDER, ["u@" + domain])
        self.wait(lambda: good.delivered(), 20, "delivered to the host with a valid certificate")
        reasons = {
            "mx.expired.test": "certificate has expired",
            "mx.wrong.test": "hostname mismatch",
            "mx.self.test": "self-signed certificate",
            "mx.plain.test": "does not offer STARTTLS",
        }
        for mx, reason in reasons.items():
            found = self.d.wait_event("tls_policy.failure", mx=mx)[0]
            self.assertIn(reason, found["reason"], mx)
            self.assertEqual(found["source"], "shaping")
            self.assertFalse(found["testing"])
        self.wait(lambda: len(self.d.events("delivery.deferred")) >= 4, 10, "four deferrals")
        for rec in self.d.events("delivery.deferred"):
            self.assertEqual((rec["code"], rec["enhanced"][:4]), (451, "4.7."), rec)
            self.assertEqual(rec["category"], "bad-configuration", rec)
        for p in (expired, wrong, selfsigned, plain):
            self.assertEqual(p.transactions(), [], "no MAIL to %s" % p.name)
        self.assertTrue(all(s.tls for s in good.sessions), "delivered over TLS")
        self.assertEqual(self.failures("mx.good.test"), [])

    def test_required_tries_the_next_mx(self):
        wrong = self.peer("mx1.next.test", cert_name="elsewhere.test")
        good = self.peer("mx2.next.test")
        self.net.mx("next.test", wrong, 10)
        self.net.mx("next.test", good, 20)
        self.start(tls="required")
        send(self.d, SENDER, ["u@next.test"])
        self.wait(lambda: good.delivered(), 20, "delivered at the second MX")
        self.assertEqual(wrong.transactions(), [])
        self.assertEqual(len(self.failures("mx1.next.test")), 1)

    def test_none_never_starttls(self):
        mx = self.peer("mx.none.test", self_signed=True)
        self.net.mx("none.test", mx, 10)
        self.start(tls="none")
        send(self.d, SENDER, ["u@none.test"])
        self.wait(lambda: mx.delivered(), 20, "delivered")
        self.assertFalse(any(s.tls for s in mx.sessions), "no STARTTLS with tls: none")

    def test_opportunistic_takes_any_certificate(self):
        mx = self.peer("mx.opp.test", self_signed=True)
        self.net.mx("opp.test", mx, 10)
        self.start(tls="opportunistic")
        send(self.d, SENDER, ["u@opp.test"])
        self.wait(lambda: mx.delivered(), 20, "delivered")
        self.assertTrue(all(s.tls for s in mx.sessions), "over TLS")
        self.assertEqual(self.d.events("tls_policy.failure"), [])


if __name__ == "__main__":
    main()
