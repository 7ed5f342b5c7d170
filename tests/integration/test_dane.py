"""
DANE for outbound delivery (RFC 7672) against real peers: STARTTLS sinks whose certificates come
from a test CA made here, TLSA records served by dnsmasq, and in front of it a resolver on loopback
that sets the AD bit (ad_resolver.py: this exercises the daemon's AD-bit path, not DNSSEC
validation itself). DANE-EE and DANE-TA records that match deliver, a mismatch defers and the next
MX is tried, a failed TLSA lookup defers, records without the AD bit are not used, and with a
resolver off loopback DANE is off. CNAMEs: TLSA records reached through a CNAME make its target a
name a DANE-TA certificate may carry (RFC 7671 §7, RFC 7672 §3.2.2), and an MX host that is an
alias has its TLSA records asked at the end of the chain first, then at its own name (§2.2.2).
"""
import hashlib
import os
import shutil
import ssl
import subprocess
import tempfile

from ad_resolver import AdResolver
from harness import main
from mailnet import MailNetCase, send

SENDER = "alice@sender.test"
HOSTS = ["mx1.dest.test", "mx2.dest.test"]  # the names the sinks' certificate is valid for


def openssl(*args, stdin=None):
    return subprocess.run(["openssl"] + list(args), input=stdin, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30).stdout


class TestPki:
    """A CA and one server certificate it signed for HOSTS, in a temp dir; the digests TLSA
    records name."""

    def __init__(self, directory):
        self.dir = directory
        ca_key, self.ca = self.path("ca.key"), self.path("ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", "2", "-subj", "/CN=Sluice DANE test CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout", ca_key, "-out", self.ca)
        self.key, csr, leaf = self.path("leaf.key"), self.path("leaf.csr"), self.path("leaf.pem")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-subj", "/CN=" + HOSTS[0], "-keyout", self.key, "-out", csr)
        ext = self.path("leaf.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nsubjectAltName=%s\n"
                    % ",".join("DNS:" + h for h in HOSTS))
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial",
                "-days", "2", "-extfile", ext, "-out", leaf)
        self.chain = self.path("chain.pem")  # the leaf, then the CA: DANE-TA needs it sent
        with open(self.chain, "wb") as out:
            for part in (leaf, self.ca):
                with open(part, "rb") as f:
                    out.write(f.read())
        self.leaf_spki = hashlib.sha256(self.spki_der(leaf)).hexdigest()
        self.ca_cert = hashlib.sha256(openssl("x509", "-in", self.ca, "-outform", "DER")).hexdigest()
        self.ca_spki = hashlib.sha256(self.spki_der(self.ca)).hexdigest()

    def path(self, name):
        return os.path.join(self.dir, name)

    def leaf_context(self, *names):
        """A server context whose leaf, signed by the same CA, names only `names`."""
        tag = names[0]
        key, csr, leaf = self.path(tag + ".key"), self.path(tag + ".csr"), self.path(tag + ".pem")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-subj", "/CN=" + tag, "-keyout", key, "-out", csr)
        ext = self.path(tag + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nsubjectAltName=%s\n"
                    % ",".join("DNS:" + n for n in names))
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.path("ca.key"),
                "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", leaf)
        chain = self.path(tag + ".chain.pem")
        with open(chain, "wb") as out:
            for part in (leaf, self.ca):
                with open(part, "rb") as f:
                    out.write(f.read())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, key)
        return ctx

    @staticmethod
    def spki_der(cert):
        pem = openssl("x509", "-in", cert, "-pubkey", "-noout")
        return openssl("pkey", "-pubin", "-outform", "DER", stdin=pem)

    def server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.chain, self.key)
        return ctx


class Dane(MailNetCase):
    @classmethod
    def setUpClass(cls):
        cls.pki_dir = tempfile.mkdtemp(prefix="sluice-dane-pki-")
        cls.pki = TestPki(cls.pki_dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki_dir, ignore_errors=True)

    def setUp(self):
        self.net = self.make_net()

    def sink(self, name, starttls=True, tls_context=None):
        return self.net.peer(name, starttls=starttls,
                             tls_context=tls_context or self.pki.server_context())

    def tlsa(self, host, usage, selector, mtype, digest):
        self.net.dns.records.append("--dns-rr=_25._tcp.%s,52,%02x%02x%02x%s"
                                    % (host, usage, selector, mtype, digest))

    def start(self, dnssec=True, extra_servers=(), tls="dane"):
        """The net, the AD-setting resolver in front of its dnsmasq, and the daemon asking it."""
        self.net.start()
        self.resolver = AdResolver(self.net.dns.port)
        self.addCleanup(self.resolver.stop)
        cfg = self.net.sluice_config()
        cfg["dns"] = {"servers": [self.resolver.server] + list(extra_servers), "timeout": "1s",
                      "dnssec": "true" if dnssec else "false"}
        cfg.setdefault("shaping", {}).setdefault("default", {})["tls"] = tls
        self.d = self.start_sluice(config=cfg)

    def lookups(self, host, **fields):
        return self.d.events("dane.lookup", host=host, **fields)

    def assertDeliveredOverTls(self, peer, n=1):
        self.wait(lambda: len(peer.delivered()) >= n, 20, "%d delivered to %s" % (n, peer.name))
        for session in peer.sessions:
            if session.transactions:
                self.assertTrue(session.tls, "mail went over TLS")

    def test_dane_ee_spki_sha256_matches(self):
        """TLSA 3 1 1 with the server key's SPKI digest: verified, delivered over TLS."""
        mx = self.sink(HOSTS[0])
        self.net.mx("dest.test", mx, 10)
        self.tlsa(HOSTS[0], 3, 1, 1, self.pki.leaf_spki)
        self.start()
        send(self.d, SENDER, ["ee@dest.test"])
        self.assertDeliveredOverTls(mx)
        self.assertEqual(len(self.lookups(HOSTS[0], mode="verify", usable=1,
                                          authenticated=True)), 1, self.d.log_tail())
        self.assertGreaterEqual(self.resolver.asked("_25._tcp." + HOSTS[0]), 1)

    def test_dane_ta_matches(self):
        """DANE-TA: 2 0 1 (the CA certificate's digest) and 2 1 1 (the CA key's) each verify the
        chain the server sends; delivered."""
        a, b = self.sink(HOSTS[0]), self.sink(HOSTS[1])
        self.net.mx("ta-cert.test", a, 10)
        self.net.mx("ta-key.test", b, 10)
        self.tlsa(HOSTS[0], 2, 0, 1, self.pki.ca_cert)
        self.tlsa(HOSTS[1], 2, 1, 1, self.pki.ca_spki)
        self.start()
        send(self.d, SENDER, ["ta@ta-cert.test", "ta@ta-key.test"])
        self.assertDeliveredOverTls(a)
        self.assertDeliveredOverTls(b)
        for host in HOSTS:
            self.assertTrue(self.lookups(host, mode="verify"), host)

    def test_mismatch_defers_and_next_mx_delivers(self):
        """A TLSA record that matches nothing: no transaction there (4.7.5, the reason logged);
        the next MX, whose record matches, gets the mail."""
        bad, good = self.sink(HOSTS[0]), self.sink(HOSTS[1])
        self.net.mx("dest.test", bad, 10)
        self.net.mx("dest.test", good, 20)
        self.tlsa(HOSTS[0], 3, 1, 1, "00" * 32)
        self.tlsa(HOSTS[1], 3, 1, 1, self.pki.leaf_spki)
        self.start()
        send(self.d, SENDER, ["m@dest.test"])
        self.assertDeliveredOverTls(good)
        self.assertTrue(bad.sessions, "the preferred MX was tried first")
        self.assertEqual(bad.transactions(), [], "no mail to the host that failed DANE")
        self.assertIn("no TLSA record of %s matches" % HOSTS[0], self.d.log_text())

    def test_mismatch_only_mx_defers(self):
        """With one MX and a mismatching record the recipient is deferred with 4.7.5."""
        bad = self.sink(HOSTS[0])
        self.net.mx("dest.test", bad, 10)
        self.tlsa(HOSTS[0], 3, 1, 1, "11" * 32)
        self.start()
        send(self.d, SENDER, ["d@dest.test"])
        rec = self.d.wait_event("delivery.deferred", rcpt="d@dest.test")[0]
        self.assertEqual(rec.get("enhanced"), "4.7.5", rec)
        self.assertIn("no TLSA record", rec.get("reply", ""), rec)
        self.assertEqual(bad.transactions(), [])

    def test_no_starttls_with_tlsa_defers(self):
        """Usable records make TLS mandatory: a host that does not offer STARTTLS gets nothing."""
        plain = self.sink(HOSTS[0], starttls=False)
        self.net.mx("dest.test", plain, 10)
        self.tlsa(HOSTS[0], 3, 1, 1, self.pki.leaf_spki)
        self.start()
        send(self.d, SENDER, ["p@dest.test"])
        rec = self.d.wait_event("delivery.deferred", rcpt="p@dest.test")[0]
        self.assertIn("does not offer STARTTLS", rec.get("reply", ""), rec)
        self.assertEqual(plain.transactions(), [])

    def test_tlsa_servfail_defers(self):
        """A TLSA lookup that fails (SERVFAIL: also a validating resolver's answer to bogus data)
        defers that host; the next MX, with no TLSA records, takes the mail."""
        bogus, other = self.sink(HOSTS[0]), self.sink(HOSTS[1])
        self.net.mx("dest.test", bogus, 10)
        self.net.mx("dest.test", other, 20)
        self.tlsa(HOSTS[0], 3, 1, 1, self.pki.leaf_spki)
        self.start()
        self.resolver.servfail.add("_25._tcp." + HOSTS[0])
        send(self.d, SENDER, ["s@dest.test"])
        self.wait(lambda: other.delivered(), 20, "delivered to the next MX")
        self.assertEqual(bogus.transactions(), [], "nothing to the host whose lookup failed")
        self.assertTrue(self.lookups(HOSTS[0], mode="defer"))
        self.assertTrue(self.lookups(HOSTS[1], mode="none"), "no records: the usual policy")

    def test_unsigned_mx_host_no_dane(self):
        """An MX host whose addresses came without the AD bit (an unsigned zone: RFC 7672 §2.2.2)
        gets no TLSA question: neither a mismatching record nor a failing TLSA lookup stops
        opportunistic delivery to it."""
        a, b = self.sink(HOSTS[0]), self.sink(HOSTS[1])
        self.net.mx("mismatch.test", a, 10)
        self.net.mx("servfail.test", b, 10)
        self.tlsa(HOSTS[0], 3, 1, 1, "55" * 32)
        self.start()
        self.resolver.insecure.update(HOSTS)
        self.resolver.servfail.add("_25._tcp." + HOSTS[1])
        send(self.d, SENDER, ["x@mismatch.test", "y@servfail.test"])
        self.wait(lambda: a.delivered() and b.delivered(), 20, "both delivered")
        for host in HOSTS:
            self.assertEqual(self.resolver.asked("_25._tcp." + host), 0, host)
        self.assertGreaterEqual(self.resolver.asked(HOSTS[0], "A"), 1, "asked with the AD bit")

    def test_tlsa_without_ad_not_used(self):
        """Records the resolver did not validate (no AD bit) are ignored: a mismatching one does
        not stop opportunistic delivery."""
        mx = self.sink(HOSTS[0])
        self.net.mx("dest.test", mx, 10)
        self.tlsa(HOSTS[0], 3, 1, 1, "22" * 32)
        self.start()
        self.resolver.insecure.add("_25._tcp." + HOSTS[0])
        send(self.d, SENDER, ["u@dest.test"])
        self.wait(lambda: mx.delivered(), 20, "delivered")
        self.assertTrue(self.lookups(HOSTS[0], mode="none", authenticated=False),
                        self.d.log_tail())

    def test_resolver_off_loopback_turns_dane_off(self):
        """A dns.servers entry off loopback: its AD bit could be forged on the way, so DANE is
        off (said once) and a mismatching record changes nothing."""
        mx = self.sink(HOSTS[0])
        self.net.mx("dest.test", mx, 10)
        self.tlsa(HOSTS[0], 3, 1, 1, "33" * 32)
        self.start(extra_servers=["192.0.2.53"])
        for i in range(2):
            send(self.d, SENDER, ["o%d@dest.test" % i])
        self.wait(lambda: len(mx.delivered()) >= 2, 20, "delivered")
        self.assertEqual(len(self.d.events("dane.off")), 1, self.d.log_tail())
        self.assertEqual(self.lookups(HOSTS[0]), [])
        self.assertEqual(self.resolver.asked("_25._tcp." + HOSTS[0]), 0, "no TLSA question")

    def test_dnssec_off_no_lookup(self):
        """dns.dnssec: false (the default): no TLSA question, delivery as before."""
        mx = self.sink(HOSTS[0])
        self.net.mx("dest.test", mx, 10)
        self.tlsa(HOSTS[0], 3, 1, 1, "44" * 32)
        self.start(dnssec=False)
        send(self.d, SENDER, ["n@dest.test"])
        self.wait(lambda: mx.delivered(), 20, "delivered")
        self.assertEqual(self.resolver.asked("_25._tcp." + HOSTS[0]), 0)

    def test_other_tls_mode_no_lookup(self):
        """dns.dnssec on, but the destination's tls: is not dane: no TLSA question, and a
        mismatching record does not hold the mail."""
        mx = self.sink(HOSTS[0])
        self.net.mx("dest.test", mx, 10)
        self.tlsa(HOSTS[0], 3, 1, 1, "44" * 32)
        self.start(tls="opportunistic")
        send(self.d, SENDER, ["o@dest.test"])
        self.wait(lambda: mx.delivered(), 20, "delivered")
        self.assertEqual(self.resolver.asked("_25._tcp." + HOSTS[0]), 0)

    # ---- CNAMEs ----

    def start_tlsa_via_cname(self, host, target):
        """Starts with _25._tcp.<host> a CNAME to _25._tcp.<target>, which holds a DANE-TA record
        naming the test CA."""
        self.tlsa(target, 2, 0, 1, self.pki.ca_cert)
        self.start()
        self.resolver.cnames["_25._tcp." + host] = "_25._tcp." + target

    def test_tlsa_cname_target_named_by_certificate(self):
        """The MX host's TLSA name is a CNAME to a provider's; the DANE-TA chain's leaf names
        only that target: the target is a reference name, so the mail is delivered."""
        mx = self.sink("mx.alias.test", tls_context=self.pki.leaf_context("relay.provider.test"))
        self.net.mx("dest.test", mx, 10)
        self.start_tlsa_via_cname("mx.alias.test", "relay.provider.test")
        send(self.d, SENDER, ["cn@dest.test"])
        self.assertDeliveredOverTls(mx)
        self.assertEqual(len(self.lookups("mx.alias.test", mode="verify",
                                          tlsa_cname="relay.provider.test")), 1,
                         self.d.log_tail())

    def test_tlsa_cname_certificate_names_neither(self):
        """The same CNAME, but the leaf names neither the MX host nor the target: deferred with
        4.7.5 like any DANE failure, nothing sent."""
        mx = self.sink("mx.alias.test", tls_context=self.pki.leaf_context("elsewhere.test"))
        self.net.mx("dest.test", mx, 10)
        self.start_tlsa_via_cname("mx.alias.test", "relay.provider.test")
        send(self.d, SENDER, ["nn@dest.test"])
        rec = self.d.wait_event("delivery.deferred", rcpt="nn@dest.test")[0]
        self.assertEqual(rec.get("enhanced"), "4.7.5", rec)
        self.assertIn("no TLSA record of mx.alias.test matches", rec.get("reply", ""), rec)
        self.assertEqual(mx.transactions(), [])

    def test_mx_alias_tlsa_at_expanded_name(self):
        """The MX host is an alias (validated): its TLSA records are asked at the end of the
        chain first (RFC 7672 §2.2.2) and decide; a leaf naming only that name is accepted."""
        mx = self.sink("real.host.test", tls_context=self.pki.leaf_context("real.host.test"))
        self.net.mx("dest.test", "alias.dest.test", 10)
        self.tlsa("real.host.test", 2, 0, 1, self.pki.ca_cert)
        self.tlsa("alias.dest.test", 3, 1, 1, "66" * 32)  # never asked: the expansion has records
        self.start()
        self.resolver.cnames["alias.dest.test"] = "real.host.test"
        send(self.d, SENDER, ["ex@dest.test"])
        self.assertDeliveredOverTls(mx)
        self.assertEqual(len(self.lookups("alias.dest.test", mode="verify",
                                          base="real.host.test")), 1, self.d.log_tail())
        self.assertEqual(self.resolver.asked("_25._tcp.alias.dest.test"), 0)

    def test_mx_alias_falls_back_to_original_name(self):
        """No TLSA records at the expanded name: the alias's own are used, and a leaf naming
        the MX host name (not the expansion) matches."""
        mx = self.sink("real.host.test", tls_context=self.pki.leaf_context("alias.dest.test"))
        self.net.mx("dest.test", "alias.dest.test", 10)
        self.tlsa("alias.dest.test", 2, 0, 1, self.pki.ca_cert)
        self.start()
        self.resolver.cnames["alias.dest.test"] = "real.host.test"
        send(self.d, SENDER, ["fb@dest.test"])
        self.assertDeliveredOverTls(mx)
        self.assertGreaterEqual(self.resolver.asked("_25._tcp.real.host.test"), 1)
        self.assertGreaterEqual(self.resolver.asked("_25._tcp.alias.dest.test"), 1)
        self.assertEqual(len(self.lookups("alias.dest.test", mode="verify")), 1,
                         self.d.log_tail())

    def test_mx_alias_expanded_name_mismatch_defers(self):
        """Records at the expanded name decide even when they do not match: the alias's own
        record, which the certificate would satisfy, is not tried; the mail is deferred (4.7.5)."""
        mx = self.sink("real.host.test", tls_context=self.pki.leaf_context("alias.dest.test"))
        self.net.mx("dest.test", "alias.dest.test", 10)
        self.tlsa("real.host.test", 3, 1, 1, "77" * 32)
        self.tlsa("alias.dest.test", 2, 0, 1, self.pki.ca_cert)
        self.start()
        self.resolver.cnames["alias.dest.test"] = "real.host.test"
        send(self.d, SENDER, ["mm@dest.test"])
        rec = self.d.wait_event("delivery.deferred", rcpt="mm@dest.test")[0]
        self.assertEqual(rec.get("enhanced"), "4.7.5", rec)
        self.assertEqual(mx.transactions(), [])


if __name__ == "__main__":
    main()
