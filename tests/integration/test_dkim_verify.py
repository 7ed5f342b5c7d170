"""
DKIM verification of inbound mail (issue 6, item 4): messages signed by an independent signer
(Debian's python3-dkim) arrive at the daemon's inbound listener; the keys are published by a real
dnsmasq on loopback; the Authentication-Results field of the copy the internal server (a sink)
receives must carry one verdict per signature (RFC 8601 §2.7.1) beside SPF's: pass for RSA and
Ed25519, fail for an altered body and a revoked key, permerror for a key that is not published,
temperror when DNS fails, none for an unsigned message; a multi-megabyte body; at most five
signatures looked at; inbound.dkim_verify: false turns it off.
"""
import base64
import re
import subprocess

import dkim

from harness import main
from mailnet import MailNetCase, send
from test_dkim import keygen, txt_option

SENDER = "sender.test"
DOMAIN = "example.test"
RCPT = "alice@" + DOMAIN


def headers_of(data):
    return data.split(b"\r\n\r\n", 1)[0]


def auth_results(data):
    """The Authentication-Results field we added (the first field), unfolded."""
    m = re.match(rb"Authentication-Results: (.*?)\r\n(?![ \t])", data, re.S)
    assert m, data[:300]
    return re.sub(rb"\r\n[ \t]", b" ", m.group(1)).decode()


def message(subject, body=b"hello\r\n"):
    return (b"From: A <a@sender.test>\r\nTo: <alice@example.test>\r\nSubject: " +
            subject.encode() + b"\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n" + body)


class DkimVerifyTest(MailNetCase):
    def setUp(self):
        net = self.make_net()
        self.sink = net.peer("sink.internal.test")
        self.d = self.start_sluice(start=False, listeners=[{"name": "mx", "role": "inbound"}])
        self.keys = {}
        for name, alg in (("rsa", "rsa-sha256"), ("ed", "ed25519-sha256")):
            path, value = keygen(self.d, name, alg, domain=SENDER)
            net.dns.txt("%s._domainkey.%s" % (name, SENDER), txt_option(value))
            self.keys[name] = path
        net.dns.txt("revoked._domainkey." + SENDER, "v=DKIM1; k=rsa; p=")
        net.dns.txt(SENDER, "v=spf1 ip4:127.0.0.0/8 -all")
        self.delivered = 0

    def start_mx(self, **inbound):
        self.net.start()
        cfg = self.net.sluice_config()
        cfg["domains"] = {DOMAIN: {"deliver_to": "[%s]:%d" % (self.sink.address, self.net.port)}}
        cfg["inbound"] = dict({"spf": "mark"}, **inbound)
        self.d.extra = cfg
        self.d.start()

    def sign(self, content, selector, key="rsa", domain=SENDER):
        if key == "ed":
            der = subprocess.run(["openssl", "pkey", "-in", self.keys["ed"], "-outform", "DER"],
                                 stdout=subprocess.PIPE, check=True, timeout=30).stdout
            return dkim.sign(content, selector.encode(), domain.encode(),
                             base64.b64encode(der[-32:]), signature_algorithm=b"ed25519-sha256",
                             canonicalize=(b"relaxed", b"relaxed")) + content
        with open(self.keys[key], "rb") as f:
            return dkim.sign(content, selector.encode(), domain.encode(), f.read(),
                             canonicalize=(b"relaxed", b"simple")) + content

    def deliver(self, content):
        """Sends `content` to the MX; returns the copy the internal server received."""
        send(self.d, "a@" + SENDER, [RCPT], content)
        self.delivered += 1
        n = self.delivered
        self.wait(lambda: len(self.sink.delivered()) >= n, 20, "delivered to the sink")
        return self.sink.delivered()[n - 1][1].data

    def test_rsa_and_ed25519_pass(self):
        self.start_mx()
        content = self.sign(self.sign(message("two signatures"), "rsa"), "ed", key="ed")
        data = self.deliver(content)
        ar = auth_results(data)
        self.assertRegex(ar, r"^sluice\.test; spf=pass smtp\.mailfrom=sender\.test; "
                             r"dkim=pass header\.d=sender\.test header\.s=ed header\.b=\"?[\w+/]{8,}"
                             r"\"?; dkim=pass header\.d=sender\.test header\.s=rsa "
                             r"header\.b=\"?[\w+/]{8,}\"?$")
        # Our field comes first, above Received, and the message below is untouched.
        self.assertIn(b"\r\nReceived: from ", headers_of(data))
        self.assertTrue(data.endswith(content), data[-200:])
        self.assertTrue(self.d.find("smtp.dkim_verified", signatures=2))

    def test_altered_body_fails_and_header_b_tells_signatures_apart(self):
        self.start_mx()
        signed = self.sign(message("altered"), "rsa")
        data = self.deliver(signed.replace(b"hello", b"HELLO"))
        ar = auth_results(data)
        self.assertIn("dkim=fail reason=\"body hash did not verify\" header.d=sender.test "
                      "header.s=rsa", ar)
        b_tag = re.search(rb"b=([\w+/=\s]+)", signed.split(b"bh=")[1]).group(1)
        b_tag = re.sub(rb"\s", b"", b_tag).decode()
        shown = re.search(r"header\.b=\"?([\w+/=]+)", ar).group(1)
        self.assertTrue(b_tag.startswith(shown) and len(shown) >= 8, (shown, b_tag))

    def test_unpublished_and_revoked_keys(self):
        self.start_mx()
        content = self.sign(self.sign(message("keys"), "absent"), "revoked")
        ar = auth_results(self.deliver(content))
        self.assertRegex(ar, r"dkim=fail reason=\"[^\"]*revoked[^\"]*\" header\.d=sender\.test "
                             r"header\.s=revoked")
        self.assertRegex(ar, r"dkim=permerror reason=\"[^\"]*\" header\.d=sender\.test "
                             r"header\.s=absent")

    def test_dns_failure_is_temperror(self):
        self.start_mx()
        # dnsmasq answers only for .test: it refuses other names, a temporary DNS error.
        content = self.sign(message("dns error"), "rsa", domain="elsewhere.example")
        ar = auth_results(self.deliver(content))
        self.assertRegex(ar, r"dkim=temperror reason=\"[^\"]*\" header\.d=elsewhere\.example "
                             r"header\.s=rsa")

    def test_unsigned_is_none(self):
        self.start_mx()
        ar = auth_results(self.deliver(message("unsigned")))
        self.assertEqual(ar, "sluice.test; spf=pass smtp.mailfrom=sender.test; dkim=none")

    def test_large_body_passes(self):
        self.start_mx()
        line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
        content = self.sign(message("large", body=line * 50000), "rsa")  # about 3.7 MB
        ar = auth_results(self.deliver(content))
        self.assertRegex(ar, r"; dkim=pass header\.d=sender\.test header\.s=rsa ")

    def test_at_most_five_signatures_are_looked_at(self):
        self.start_mx()
        content = message("many")
        for _ in range(7):
            content = self.sign(content, "rsa")
        ar = auth_results(self.deliver(content))
        self.assertEqual(ar.count("dkim=pass"), 5, ar)
        self.assertNotIn("dkim=fail", ar)

    def test_verification_can_be_turned_off(self):
        self.start_mx(dkim_verify=False, spf="ignore")
        data = self.deliver(self.sign(message("off"), "rsa"))
        self.assertNotIn(b"Authentication-Results:", headers_of(data))
        self.assertEqual(self.d.events("smtp.dkim_verified"), [])


if __name__ == "__main__":
    main()
