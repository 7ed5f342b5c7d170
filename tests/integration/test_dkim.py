"""
DKIM signing through the running daemon (issue 5). Keys are made with `sluice dkim keygen`, their
records served by a real dnsmasq on loopback, and every spooled message (`sluice queue show ID
--body`) is verified by an independent verifier, Debian's python3-dkim, whose key lookups go to
that dnsmasq over TCP. Covered: RSA and Ed25519, simple and relaxed, folded long headers, 8-bit
bodies, dot-stuffed lines, a message without an empty line or a final line end of its own, a body
of several MB, two signatures, a message altered after signing failing, AUTH and trusted-network
submission signed, inbound mail for our domain not signed, dkim_on_failure, `sluice dkim check`
(match, mismatch, not published), a bad key refused by check-config and by a reload.
"""
import os
import re
import signal
import subprocess

import dkim
import dns.exception
import dns.message
import dns.query

from certs import client_context
from harness import SluiceTestCase, daemon_user, main, queued_id, send_message
from mailnet import Dns, MailNetCase, send

DOMAIN = "sender.test"
PASSWORD = "dkim pass"


def keygen(d, name, algorithm="rsa-sha256", bits=None, selector=None, domain=DOMAIN):
    """Runs `sluice dkim keygen`; returns (key path, TXT value)."""
    path = os.path.join(d.dir, name)
    args = [d.bin, "dkim", "keygen", "--domain", domain, "--selector", selector or name,
            "--algorithm", algorithm, "--out", path]
    if bits:
        args += ["--bits", str(bits)]
    res = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    # Made by root: readable by the daemon's group too, so a reload after the drop can read it.
    st, user = os.stat(path), daemon_user()
    assert oct(st.st_mode & 0o777) == ("0o640" if user else "0o600"), oct(st.st_mode)
    assert user is None or st.st_gid == user.pw_gid, st.st_gid
    return path, "".join(re.findall(r'"([^"]*)"', res.stdout.decode()))


def txt_option(value):
    """dnsmasq --txt-record takes the character-strings separated by commas (255 at most each)."""
    return ",".join(value[i:i + 255] for i in range(0, len(value), 255))


class DkimBase(SluiceTestCase):
    # name -> (algorithm, canonicalization); every selector is published unless listed below
    keys = {"rsa": ("rsa-sha256", "relaxed/relaxed"), "ed": ("ed25519-sha256", "relaxed/relaxed")}
    unpublished = ()
    listeners = [{"name": "submission", "role": "submission"},
                 {"name": "mx", "role": "inbound"}]
    dkim_extra = {}
    tls = False

    def setUp(self):
        self.d = self.start_sluice(start=False, listeners=self.listeners, tls=self.tls)
        self.dns = Dns()
        self.records = {}
        self.key_paths = {}
        for name, (alg, _) in self.keys.items():
            path, value = keygen(self.d, name, alg)
            self.key_paths[name] = path
            self.records[name] = value
            if name not in self.unpublished:
                self.dns.txt("%s._domainkey.%s" % (name, DOMAIN), txt_option(value))
        self.dns.start()
        self.addCleanup(self.dns.stop)
        self.d.extra = self.config()
        self.d.start()

    def config(self, keys=None):
        entries = [{"domain": DOMAIN, "selector": name, "key": self.key_paths[name],
                    "algorithm": self.keys[name][0], "canonicalization": self.keys[name][1]}
                   for name in (keys if keys is not None else self.keys)]
        extra = {"dkim": entries, "dns": {"servers": [self.dns.server], "timeout": "3s"}}
        extra.update(self.dkim_extra)
        return extra

    def dnsfunc(self, name, timeout=5):
        """The verifier's key lookup, asked of the test's dnsmasq (TCP when the answer is
        truncated); a few bounded tries, as a loaded machine may drop a datagram."""
        q = dns.message.make_query(name.decode("ascii").rstrip("."), "TXT")
        for attempt in range(5):
            try:
                r, _ = dns.query.udp_with_fallback(q, "127.0.0.1", port=self.dns.port, timeout=2)
                break
            except (dns.exception.Timeout, OSError):
                if attempt == 4:
                    raise
        for rrset in r.answer:
            for rd in rrset:
                return b"".join(rd.strings)
        return None

    def submit(self, content, listener="submission", sender="a@" + DOMAIN,
               rcpt="b@foreign.example"):
        with self.d.connect(listener) as c:
            r = send_message(c, sender, [rcpt], content, helo="client.test")
        qid = queued_id(r)
        self.assertIsNotNone(qid, "not queued: %r" % r)
        return self.d.queue_body(qid)

    def signatures(self, stored):
        return [v for k, v in dkim.DKIM(stored).headers if k.lower() == b"dkim-signature"]

    def verifies(self, message, idx=0):
        try:
            return dkim.DKIM(message).verify(idx=idx, dnsfunc=self.dnsfunc)
        except dkim.ValidationError:
            return False

    def assertVerifies(self, stored, count):
        self.assertEqual(len(self.signatures(stored)), count, stored[:2000])
        for idx in range(count):
            self.assertTrue(self.verifies(stored, idx),
                            "signature %d does not verify: %r" % (idx, stored[:3000]))


MESSAGES = {
    "plain": b"From: A <a@sender.test>\r\nTo: b@foreign.example\r\nSubject: hi\r\n"
             b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n\r\nhello\r\n",
    "folded": b"From: \"A long name\" <a@sender.test>\r\nTo: b@foreign.example\r\nSubject: "
              + b"word " * 30 + b"\r\n\t" + b"more " * 150 + b"\r\n  end\r\n"
              b"X-Long: " + b"x" * 900 + b"\r\n\r\nbody\r\n",
    "8bit": b"From: a@sender.test\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: text/plain;"
            b" charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + "café naïve – ünïcödé\r\n".encode() * 20 + b"\xff\xfe raw\r\n",
    "dotstuffed": b"From: a@sender.test\r\nSubject: dots\r\n\r\n..leading dot\r\n...\r\n"
                  b"..\r\nnot a dot\r\n",
    "trailing_blank_lines": b"From: a@sender.test\r\nSubject: last line\r\n\r\ntext\r\n"
                            b"trailing  spaces  \t\r\n\r\n\r\n",
    "headers_only_no_empty_line": b"From: a@sender.test\r\nSubject: no body at all\r\n",
}


class SignShapesTest(DkimBase):
    keys = {"rsa": ("rsa-sha256", "relaxed/relaxed"), "rsas": ("rsa-sha256", "simple/simple")}

    def test_message_shapes_verify_relaxed_and_simple(self):
        for reloads, name in enumerate(("rsa", "rsas"), 1):
            self.d.extra = self.config([name])
            self.d.write_config()
            self.d.signal(signal.SIGHUP)
            self.d.wait_event("daemon.reload", count=reloads)
            for shape, content in MESSAGES.items():
                with self.subTest(key=name, shape=shape):
                    stored = self.submit(content)
                    self.assertVerifies(stored, 1)
                    self.assertIn(b"s=%s;" % name.encode(), self.signatures(stored)[0].replace(
                        b"\r\n", b"").replace(b" ", b"").replace(b"\t", b"") + b";")

    def test_altered_message_fails(self):
        stored = self.submit(MESSAGES["plain"])
        self.assertVerifies(stored, 2)
        for old, new in ((b"hello", b"hellO"), (b"Subject: hi", b"Subject: ho")):
            altered = stored.replace(old, new)
            self.assertFalse(self.verifies(altered), old)
        # Over-signing: an added From/Subject breaks the signature too.
        added = stored.replace(b"Subject: hi", b"Subject: hi\r\nSubject: spam")
        self.assertFalse(self.verifies(added))
        h = self.signatures(stored)[0].replace(b"\r\n", b"").replace(b" ", b"").replace(b"\t", b"")
        hlist = re.search(rb"(?:^|;)h=([^;]*)", h).group(1).lower().split(b":")
        self.assertRegex(h, rb"(?:^|;)t=\d+(;|$)")
        self.assertEqual(hlist.count(b"from"), 2, hlist)
        self.assertEqual(hlist.count(b"subject"), 2, hlist)

    def test_large_body(self):
        line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
        content = MESSAGES["plain"] + line * (5 * 1024 * 1024 // len(line))
        stored = self.submit(content)
        self.assertGreater(len(stored), 5 * 1024 * 1024)
        self.assertVerifies(stored, 2)


class Ed25519AndTwoSignaturesTest(DkimBase):
    keys = {"rsa": ("rsa-sha256", "relaxed/relaxed"), "ed": ("ed25519-sha256", "relaxed/relaxed"),
            "eds": ("ed25519-sha256", "simple/simple")}

    def test_three_signatures_verify(self):
        for shape in ("plain", "folded", "dotstuffed"):
            with self.subTest(shape=shape):
                stored = self.submit(MESSAGES[shape])
                self.assertVerifies(stored, 3)
                algs = b" ".join(self.signatures(stored))
                self.assertIn(b"a=ed25519-sha256", algs)
                self.assertIn(b"a=rsa-sha256", algs)
                self.assertIn(b"c=simple/simple", algs)
        self.assertTrue(self.d.events("dkim.signed", signatures=3))

    def test_inbound_mail_for_our_domain_is_not_signed(self):
        stored = self.submit(MESSAGES["plain"], listener="mx", rcpt="u@example.com")
        self.assertEqual(self.signatures(stored), [])
        # Inbound mail is verified instead: the result of the check leads, then the trace.
        self.assertTrue(stored.startswith(b"Authentication-Results: "), stored[:200])
        self.assertIn(b"\r\nReceived:", stored.split(b"\r\n\r\n")[0])

    def test_other_from_domain_is_not_signed(self):
        stored = self.submit(MESSAGES["plain"].replace(b"a@sender.test", b"a@other.test"))
        self.assertEqual(self.signatures(stored), [])
        # A subdomain of a configured domain is signed.
        stored = self.submit(MESSAGES["plain"].replace(b"a@sender.test", b"a@news.sender.test"))
        self.assertVerifies(stored, 3)

    def test_check_command(self):
        res = self.d.cli("dkim", "check")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertEqual(res.stdout.decode().count(": match"), 3, res.stdout)


class CheckMismatchTest(DkimBase):
    keys = {"good": ("rsa-sha256", "relaxed/relaxed"), "swapped": ("ed25519-sha256", "relaxed/relaxed"),
            "absent": ("ed25519-sha256", "relaxed/relaxed")}
    unpublished = ("absent", "swapped")

    def test_check_reports_each_selector(self):
        # "swapped" gets another Ed25519 key's record (dnsmasq restarted with it); "absent" none.
        _, other = keygen(self.d, "other", "ed25519-sha256")
        self.dns.stop()
        self.dns.txt("swapped._domainkey.%s" % DOMAIN, txt_option(other))
        self.dns.start()
        self.d.extra = self.config()
        self.d.write_config()
        res = self.d.cli("dkim", "check")
        out = res.stdout.decode()
        self.assertEqual(res.returncode, 1, out + res.stderr.decode())
        self.assertRegex(out, r"(?m)^sender\.test s=good .*: match$")
        self.assertRegex(out, r"(?m)^sender\.test s=swapped .*: mismatch")
        self.assertRegex(out, r"(?m)^sender\.test s=absent .*: not published")

    def test_check_dns_error(self):
        self.dns.stop()
        res = self.d.cli("dkim", "check", timeout=60)
        self.assertEqual(res.returncode, 1)
        self.assertIn("DNS error", res.stdout.decode())


class KeyErrorsTest(DkimBase):
    keys = {"rsa": ("rsa-sha256", "relaxed/relaxed")}

    def check_config(self, path):
        extra = self.config()
        extra["dkim"][0]["key"] = path
        cfg = self.d.write_config(extra, path=os.path.join(self.d.dir, "bad.yaml"))
        return self.d.cli("check-config", config=cfg), cfg

    def test_bad_keys_are_config_errors_naming_the_file(self):
        garbage = os.path.join(self.d.dir, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
        os.chmod(garbage, 0o600)
        readable = os.path.join(self.d.dir, "readable.pem")
        with open(self.key_paths["rsa"]) as src, open(readable, "w") as f:
            f.write(src.read())
        os.chmod(readable, 0o644)
        missing = os.path.join(self.d.dir, "missing.pem")
        for path, why in ((missing, "No such file"), (readable, "readable by others"),
                          (garbage, "not an unencrypted PEM private key")):
            with self.subTest(path=path):
                res, cfg = self.check_config(path)
                err = res.stderr.decode() + res.stdout.decode()
                self.assertEqual(res.returncode, 1, err)
                self.assertIn(path, err)
                self.assertIn(why, err)
                self.assertRegex(err, re.escape(cfg) + r":\d+:\d+: dkim\[0\]")

    def test_a_1024_bit_key_signs_with_a_warning_naming_it(self):
        small = os.path.join(self.d.dir, "rsa1024.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:1024", "-out", small], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        user = daemon_user()  # the daemon reads it again at reload, after the drop
        if user:
            os.chown(small, 0, user.pw_gid)
        os.chmod(small, 0o640 if user else 0o600)
        res, cfg = self.check_config(small)
        err = res.stderr.decode()
        self.assertEqual(res.returncode, 0, err)
        warning = re.escape(cfg) + r":\d+:\d+: dkim\[0\]\.key: " + re.escape(small) + \
            r" is an RSA key of 1024 bits.*2048-bit"
        self.assertRegex(err, r'"event":"config.warning","msg":"' + warning)
        # The key signs: a published selector keeps working until it is replaced.
        self.d.write_config(dict(self.config(), dkim=[dict(self.config()["dkim"][0], key=small)]))
        self.d.signal(signal.SIGHUP)
        self.d.wait_event("daemon.reload")
        warning = warning[len(re.escape(cfg)):]  # the reload names the daemon's file
        self.assertTrue(any(re.search(warning, ev["msg"])
                            for ev in self.d.events("config.warning")), self.d.log_text())
        stored = self.submit(MESSAGES["plain"])
        self.assertEqual(len(self.signatures(stored)), 1)

    def test_reload_with_a_bad_key_keeps_the_old_one(self):
        self.assertVerifies(self.submit(MESSAGES["plain"]), 1)
        extra = self.config()
        extra["dkim"][0]["key"] = os.path.join(self.d.dir, "missing.pem")
        self.d.write_config(extra)
        self.d.signal(signal.SIGHUP)
        self.d.wait_event("daemon.reload_failed")
        self.assertIn("missing.pem", self.d.log_text())
        self.d.write_config(self.config())  # for `sluice queue`, which loads the keys too
        self.assertVerifies(self.submit(MESSAGES["plain"]), 1)


class FailurePolicyTest(DkimBase):
    keys = {"rsa": ("rsa-sha256", "relaxed/relaxed")}
    two_froms = b"From: a@sender.test\r\nFrom: b@sender.test\r\nSubject: x\r\n\r\nbody\r\n"

    def test_accept_unsigned_by_default(self):
        stored = self.submit(self.two_froms)
        self.assertEqual(self.signatures(stored), [])
        ev = self.d.wait_event("dkim.sign_failed")[0]
        self.assertEqual(ev["action"], "accepted_unsigned")

    def test_tempfail(self):
        self.d.extra = dict(self.config(), dkim_on_failure="tempfail")
        self.d.write_config()
        self.d.signal(signal.SIGHUP)
        self.d.wait_event("daemon.reload")
        with self.d.connect() as c:
            r = send_message(c, "a@" + DOMAIN, ["b@foreign.example"], self.two_froms,
                             helo="client.test")
            self.assertReply(r, 451, "4.7.0")
            # The session goes on: the next message is signed.
            self.assertReply(c.cmd("MAIL FROM:<a@sender.test>"), 250)
        self.assertEqual(self.d.wait_event("dkim.sign_failed")[0]["action"], "tempfail")
        self.assertEqual(self.d.queue_list(), [])
        self.assertVerifies(self.submit(MESSAGES["plain"]), 1)


class AuthSubmissionTest(DkimBase):
    keys = {"ed": ("ed25519-sha256", "relaxed/relaxed")}
    listeners = [{"name": "submission", "role": "submission", "tls": "starttls"}]
    tls = True

    def setUp(self):
        super().setUp()
        users = os.path.join(self.d.dir, "users")
        h = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=PASSWORD.encode(),
                           stdout=subprocess.PIPE, check=True, timeout=30).stdout.decode().strip()
        with open(users, "w") as f:
            f.write("alice:%s\n" % h)
        self.d.extra = dict(self.config(), relay={"trusted_networks": [], "users": users})
        self.d.write_config()
        self.d.signal(signal.SIGHUP)
        self.d.wait_event("daemon.reload")

    def test_authenticated_sender_is_signed(self):
        import base64
        c = self.d.connect()
        self.addCleanup(c.close)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("STARTTLS"), 220)
        c.starttls(client_context())
        self.assertReply(c.ehlo(), 250)
        # Without AUTH the untrusted client may not relay, so nothing can be signed.
        self.assertReply(c.cmd("MAIL FROM:<a@sender.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<b@foreign.example>"), 550)
        self.assertReply(c.cmd("RSET"), 250)
        auth = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()
        self.assertReply(c.cmd("AUTH PLAIN " + auth, timeout=30), 235)
        r = send_message(c, "a@" + DOMAIN, ["b@foreign.example"], MESSAGES["8bit"])
        self.assertVerifies(self.d.queue_body(queued_id(r)), 1)


class DeliveredCopyTest(MailNetCase):
    """The copy a receiver gets verifies: signatures survive delivery (dot-stuffing, CRLF
    normalisation) byte for byte, for RSA and Ed25519 together."""

    def test_delivered_copy_verifies(self):
        net = self.make_net()
        sink = net.peer("mx.receiver.test")
        net.mx("receiver.test", sink, 10)
        d = self.start_sluice(start=False)
        entries = []
        for name, alg in (("rsa", "rsa-sha256"), ("ed", "ed25519-sha256")):
            path, value = keygen(d, name, alg, bits=2048 if alg == "rsa-sha256" else None)
            net.dns.txt("%s._domainkey.%s" % (name, DOMAIN), txt_option(value))
            entries.append({"domain": DOMAIN, "selector": name, "key": path, "algorithm": alg})
        net.start()
        d.extra = dict(net.sluice_config(egress=None), dkim=entries)
        d.start()
        self.d = d
        content = (b"From: A <a@sender.test>\r\nTo: b@receiver.test\r\nSubject: delivered\r\n"
                   b"\r\n.leading dot\r\nbare\nlf\r\n" + "café\r\n".encode() + b"last")
        send(d, "a@" + DOMAIN, ["b@receiver.test"], content)
        self.wait(lambda: sink.delivered(), 20, "delivered to the receiver")
        received = sink.delivered()[0][1].data
        sigs = [v for k, v in dkim.DKIM(received).headers if k.lower() == b"dkim-signature"]
        self.assertEqual(len(sigs), 2, received[:2000])

        def dnsfunc(name, timeout=5):
            q = dns.message.make_query(name.decode("ascii").rstrip("."), "TXT")
            r, _ = dns.query.udp_with_fallback(q, "127.0.0.1", port=net.dns.port, timeout=3)
            return b"".join(b"".join(rd.strings) for rrset in r.answer for rd in rrset)

        def verifies(message, idx):
            try:
                return dkim.DKIM(message).verify(idx=idx, dnsfunc=dnsfunc)
            except dkim.ValidationError:
                return False

        for idx in range(2):
            self.assertTrue(verifies(received, idx),
                            "signature %d of the delivered copy: %r" % (idx, received[:3000]))
        self.assertFalse(verifies(received.replace(b"last", b"lost"), 0), "a changed body fails")


if __name__ == "__main__":
    main()
