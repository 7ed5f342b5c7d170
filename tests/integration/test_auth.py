"""
SMTP AUTH (RFC 4954): PLAIN (RFC 4616) and LOGIN over STARTTLS and implicit TLS, against a users
file with SHA-512-crypt and yescrypt hashes made here. The client address 127.0.0.1 is not a
trusted network, so a foreign recipient is accepted only after a successful AUTH, and never on
the inbound listener. Also: no AUTH before TLS (538), cancel, bad base64, AUTH twice or inside a
transaction, delays after repeated failures, max_errors, a disconnect while the check runs,
12288-octet responses and users file reloads.
"""
import base64
import glob
import os
import signal
import subprocess
import time
import warnings

from certs import client_context
from harness import SluiceTestCase, main, queued_id, send_message
from spool_files import message_path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt
    except ImportError:  # Python 3.13 dropped it; openssl can still make SHA-512 hashes
        crypt = None

PASSWORDS = {"alice": "wonder land", "bob@example.com": "s3cret!", "slow": "tortoise"}
CONTENT = b"Subject: authenticated\r\n\r\nhello\r\n"


def sha512_hash(password):
    if crypt is not None:
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                         stdout=subprocess.PIPE, check=True, timeout=30)
    return out.stdout.decode().strip()


_slow_hashes = {}


def slow_hash(password):
    """SHA-512-crypt with a high round count: one to two seconds of CPU per check (made once)."""
    if password not in _slow_hashes:
        _slow_hashes[password] = _make_slow_hash(password)
    return _slow_hashes[password]


def _make_slow_hash(password):
    if crypt is not None:
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512, rounds=5000000))
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                         stdout=subprocess.PIPE, check=True, timeout=30)
    return out.stdout.decode().strip().replace("$6$", "$6$rounds=5000000$", 1)


def yescrypt_hash(password):
    """None when this Python cannot make one (the test using it is skipped)."""
    if crypt is None:
        return None
    salt = crypt.mksalt(crypt.METHOD_YESCRYPT) if hasattr(crypt, "METHOD_YESCRYPT") else None
    if salt is None:
        salt = "$y$j9T$" + base64.b64encode(os.urandom(12), b"./").decode().rstrip("=") + "$"
    h = crypt.crypt(password, salt)
    return h if h and h.startswith("$y$") else None


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain(user, password, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, password))


class AuthBase(SluiceTestCase):
    listeners = [{"name": "submission", "role": "submission", "tls": "starttls"},
                 {"name": "smtps", "role": "submission", "tls": "implicit"},
                 {"name": "mx", "role": "inbound", "tls": "starttls"}]
    limits = {}

    def setUp(self):
        self.d = self.start_sluice(tls=True, start=False, listeners=self.listeners)
        self.users_path = os.path.join(self.d.dir, "users")
        self.yescrypt = yescrypt_hash(PASSWORDS["bob@example.com"])
        self.write_users({"alice": sha512_hash(PASSWORDS["alice"]),
                          "bob@example.com": self.yescrypt or sha512_hash(PASSWORDS["bob@example.com"]),
                          "slow": slow_hash(PASSWORDS["slow"])})
        self.d.extra = {"relay": {"trusted_networks": [], "users": self.users_path}}
        if self.limits:
            self.d.extra["limits"] = self.limits
        self.d.start()
        self.ctx = client_context()

    def write_users(self, users, extra=""):
        with open(self.users_path, "w") as f:
            f.write("# test users\n\n")
            for name, h in users.items():
                f.write("%s:%s\n" % (name, h))
            f.write(extra)

    @staticmethod
    def keywords(reply):
        return [line.upper() for line in reply.lines[1:]]

    def tls_session(self, listener="submission"):
        """A connection with TLS up (STARTTLS, or implicit) and EHLO sent; returns (conn, EHLO)."""
        if listener == "smtps":
            c = self.d.connect(listener, tls_context=self.ctx)
        else:
            c = self.d.connect(listener)
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("STARTTLS"), 220, "2.0.0")
            c.starttls(self.ctx)
        r = c.ehlo()
        self.assertReply(r, 250)
        return c, r

    def auth_plain(self, c, user, password):
        return c.cmd("AUTH PLAIN " + plain(user, password), timeout=40)

    def auth_login(self, c, user, password):
        r = c.cmd("AUTH LOGIN")
        self.assertReply(r, 334)
        self.assertEqual(r.lines, ["VXNlcm5hbWU6"])
        r = c.cmd(b64(user))
        self.assertReply(r, 334)
        self.assertEqual(r.lines, ["UGFzc3dvcmQ6"])
        return c.cmd(b64(password), timeout=40)

    def assert_relay_refused(self, c):
        self.assertReply(c.cmd("MAIL FROM:<x@example.org>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<someone@foreign.example>"), 550, "5.7.1",
                         "foreign recipient without authentication")
        self.assertReply(c.cmd("RSET"), 250)

    def spool_file(self, queue_id):
        found = glob.glob(message_path(self.d.spool, "queue", queue_id))
        self.assertEqual(len(found), 1, "spool file of %s" % queue_id)
        with open(found[0], "rb") as f:
            return f.read()


class Auth(AuthBase):
    def test_not_offered_before_tls(self):
        with self.d.connect() as c:
            r = c.ehlo()
            self.assertNotIn("AUTH PLAIN LOGIN", self.keywords(r))
            self.assertFalse(any(k.startswith("AUTH") for k in self.keywords(r)), r)
            self.assertReply(self.auth_plain(c, "alice", PASSWORDS["alice"]), 538, "5.7.11")
            self.assertReply(c.cmd("AUTH LOGIN"), 538, "5.7.11")
            help_words = c.cmd("HELP").text.split()
            self.assertIn("STARTTLS", help_words)  # HELP names what EHLO offers now
            self.assertNotIn("AUTH", help_words)
            self.assert_relay_refused(c)

    def test_plain_initial_response_then_relay(self):
        c, ehlo = self.tls_session()
        with c:
            self.assertIn("AUTH PLAIN LOGIN", self.keywords(ehlo))
            help_words = c.cmd("HELP").text.split()
            self.assertIn("AUTH", help_words)
            self.assertNotIn("STARTTLS", help_words)
            self.assert_relay_refused(c)
            self.assertReply(self.auth_plain(c, "alice", PASSWORDS["alice"]), 235, "2.7.0")
            self.assertReply(self.auth_plain(c, "alice", PASSWORDS["alice"]), 503, "5.5.1",
                             "second AUTH")
            qid = queued_id(send_message(c, "alice@example.org", ["someone@foreign.example"],
                                         CONTENT))
            self.assertIsNotNone(qid)
        received = self.assertStored(self.d, qid, CONTENT)
        self.assertIn(b"with ESMTPSA", received)
        self.assertIn(b"alice", self.spool_file(qid), "envelope names the authenticated user")
        rec = self.d.wait_event("smtp.auth", result="ok")[0]
        self.assertEqual((rec["user"], rec["mechanism"]), ("alice", "PLAIN"))
        self.assertNotIn(PASSWORDS["alice"], self.d.log_text(), "password in the log")

    def test_plain_after_challenge_and_authzid(self):
        c, _ = self.tls_session()
        with c:
            r = c.cmd("AUTH plain")
            self.assertReply(r, 334)
            self.assertEqual(r.lines, [""], "PLAIN challenge is empty")
            # Acting as somebody else is refused even with the right password.
            self.assertReply(c.cmd(plain("alice", PASSWORDS["alice"], authzid="root"),
                                   timeout=40), 535, "5.7.8")
            self.assertReply(c.cmd("AUTH PLAIN"), 334)
            self.assertReply(c.cmd(plain("alice", PASSWORDS["alice"], authzid="alice"),
                                   timeout=40), 235, "2.7.0")

    def test_login_with_yescrypt_user(self):
        if self.yescrypt is None:
            self.skipTest("no yescrypt in this Python's crypt module")
        c, _ = self.tls_session()
        with c:
            self.assertReply(self.auth_login(c, "bob@example.com", PASSWORDS["bob@example.com"]),
                             235, "2.7.0")
            qid = queued_id(send_message(c, "bob@example.com", ["x@foreign.example"], CONTENT))
            self.assertIsNotNone(qid)
        self.assertIsNotNone(self.d.find("smtp.auth", user="bob@example.com", mechanism="LOGIN",
                                         result="ok"))

    def test_login_with_sha512_user_on_implicit_tls(self):
        c, ehlo = self.tls_session("smtps")
        with c:
            self.assertIn("AUTH PLAIN LOGIN", self.keywords(ehlo))
            self.assertReply(self.auth_login(c, "alice", PASSWORDS["alice"]), 235, "2.7.0")
            self.assertReply(c.cmd("MAIL FROM:<alice@example.org> AUTH=<>"), 250, "2.1.0",
                             "MAIL with AUTH= parameter")
            self.assertReply(c.cmd("RCPT TO:<x@foreign.example>"), 250, "2.1.5")

    def test_wrong_password_and_unknown_user(self):
        c, _ = self.tls_session()
        with c:
            self.assertReply(self.auth_plain(c, "alice", "wrong"), 535, "5.7.8")
            self.assertReply(self.auth_login(c, "alice", PASSWORDS["alice"] + "x"), 535, "5.7.8")
            self.assertReply(self.auth_plain(c, "mallory", PASSWORDS["alice"]), 535, "5.7.8")
            self.assert_relay_refused(c)
        self.assertEqual(len(self.d.events("smtp.auth", result="failed")), 3)

    def test_cancel_and_bad_base64(self):
        c, _ = self.tls_session()
        with c:
            self.assertReply(c.cmd("AUTH LOGIN"), 334)
            self.assertReply(c.cmd("*"), 501, "5.7.0")
            self.assertReply(c.cmd("AUTH LOGIN " + b64("alice")), 334, msg="LOGIN initial response")
            self.assertReply(c.cmd("*"), 501, "5.7.0")
            self.assertReply(c.cmd("AUTH PLAIN"), 334)
            self.assertReply(c.cmd("*"), 501, "5.7.0")
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0", "commands again after cancel")
            self.assertReply(c.cmd("AUTH PLAIN not!base64"), 501, "5.5.2")
            self.assertReply(c.cmd("AUTH PLAIN"), 334)
            self.assertReply(c.cmd("abc"), 501, "5.5.2", "base64 of bad length")
            self.assertReply(c.cmd("AUTH PLAIN " + b64("no nul bytes")), 501, "5.5.2")
            self.assertReply(c.cmd("AUTH CRAM-MD5"), 504, "5.5.4")
            self.assertReply(c.cmd("AUTH"), 501, "5.5.4")
            self.assertReply(self.auth_plain(c, "alice", PASSWORDS["alice"]), 235, "2.7.0")

    def test_auth_inside_transaction(self):
        c, _ = self.tls_session()
        with c:
            self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250)
            self.assertReply(self.auth_plain(c, "alice", PASSWORDS["alice"]), 503, "5.5.1")
            self.assertReply(c.cmd("RSET"), 250)
            self.assertReply(self.auth_plain(c, "alice", PASSWORDS["alice"]), 235, "2.7.0")

    def test_inbound_listener_never_offers_or_relays(self):
        c, ehlo = self.tls_session("mx")
        with c:
            self.assertFalse(any(k.startswith("AUTH") for k in self.keywords(ehlo)), ehlo)
            self.assertReply(self.auth_plain(c, "alice", PASSWORDS["alice"]), 503, "5.5.1")
            self.assert_relay_refused(c)

    def test_long_responses(self):
        c, _ = self.tls_session()
        with c:
            # A response after 334 may be far longer than a command line (RFC 4954 §4).
            long_password = "p" * 6000
            r = self.auth_login(c, "alice", long_password)
            self.assertReply(r, 535, "5.7.8", "a 8000-octet response is a response, not an error")
            self.assertReply(c.cmd("AUTH LOGIN"), 334)
            self.assertReply(c.cmd("A" * 12300), 500, "5.5.2", "response over 12288 octets")
            self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
            # The AUTH command line itself stays under the 512-octet cap.
            self.assertReply(c.cmd("AUTH PLAIN " + "A" * 600), 500, "5.5.2")

    def test_pipelined_after_auth(self):
        c, _ = self.tls_session()
        with c:
            c.send(("AUTH PLAIN %s\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<x@foreign.example>"
                    "\r\n" % plain("alice", PASSWORDS["alice"])).encode())
            self.assertReply(c.read_reply(timeout=40), 235, "2.7.0")
            self.assertReply(c.read_reply(), 250, "2.1.0")
            self.assertReply(c.read_reply(), 250, "2.1.5", "RCPT pipelined behind AUTH")

    def test_stop_during_check(self):
        """SIGTERM closes the session while its check runs on the thread pool: the check finishes
        on its own, the session is freed after it, and the daemon exits cleanly."""
        c, _ = self.tls_session()
        with c:
            c.send("AUTH PLAIN %s\r\n" % plain("slow", PASSWORDS["slow"]))
            time.sleep(0.3)
            self.d.signal(signal.SIGTERM)
            self.assertReply(c.read_reply(timeout=10), 421, "4.3.2")
        start = time.monotonic()
        self.assertEqual(self.d.wait_exit(30), 0)
        self.assertEqual(self.d.events("smtp.auth"), [], "answer after the session was closed")
        # The loop waited for the check (which cannot be cancelled) before it ended.
        self.assertGreater(time.monotonic() - start, 0.2, "exit before the check finished")

    def test_disconnect_during_check(self):
        for _ in range(3):
            c, _ = self.tls_session()
            c.send("AUTH PLAIN %s\r\n" % plain("alice", PASSWORDS["alice"]))
            c.close()
        c, _ = self.tls_session()
        with c:
            self.assertReply(self.auth_plain(c, "alice", PASSWORDS["alice"]), 235, "2.7.0")

    def test_reload_users_file(self):
        # A bad users file: the reload is refused and the old table stays.
        self.write_users({"carol": sha512_hash("carol pw")}, extra="broken line\n")
        self.d.signal(signal.SIGHUP)
        self.d.wait_event("daemon.reload_failed")
        self.assertIn("users:4: expected name:hash", self.d.log_text())
        # check-config reads the users file as the daemon does, and says the same.
        res = self.d.cli("check-config")
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertIn("users:4: expected name:hash", res.stderr.decode())
        c, _ = self.tls_session()
        with c:
            self.assertReply(self.auth_plain(c, "alice", PASSWORDS["alice"]), 235, "2.7.0")
        # A good one replaces it.
        self.write_users({"carol": sha512_hash("carol pw")})
        self.d.signal(signal.SIGHUP)
        self.d.wait_event("daemon.reload")
        c, _ = self.tls_session()
        with c:
            self.assertReply(self.auth_plain(c, "alice", PASSWORDS["alice"]), 535, "5.7.8")
            self.assertReply(self.auth_plain(c, "carol", "carol pw"), 235, "2.7.0")


class AuthDelays(AuthBase):
    def test_failures_are_delayed(self):
        c, _ = self.tls_session()
        with c:
            times = []
            for _ in range(4):
                start = time.monotonic()
                self.assertReply(self.auth_plain(c, "alice", "guess"), 535, "5.7.8")
                times.append(time.monotonic() - start)
            self.assertTrue(all(t < 0.9 for t in times[:3]), "first three not delayed: %r" % times)
            self.assertGreaterEqual(times[3], 1.0, "fourth failure delayed: %r" % times)
        # The count belongs to the client, not the connection, and holds back a success too.
        c, _ = self.tls_session()
        with c:
            start = time.monotonic()
            self.assertReply(self.auth_plain(c, "alice", PASSWORDS["alice"]), 235, "2.7.0")
            self.assertGreaterEqual(time.monotonic() - start, 2.0, "fifth attempt delayed 2 s")

    def test_disconnect_during_delay(self):
        c, _ = self.tls_session()
        with c:
            # Three free failures, then delays of 1, 2 and 4 s: the next attempt waits 8 s.
            for _ in range(6):
                self.assertReply(self.auth_plain(c, "alice", "guess"), 535, "5.7.8")
            c.send("AUTH PLAIN %s\r\n" % plain("alice", "guess"))
            time.sleep(1.0)  # the password check (well under 1 s) is over; the delay has begun
        start = time.monotonic()
        self.assertEqual(self.d.stop(), 0)
        self.assertLess(time.monotonic() - start, 4.0, "stop waited for the 8 s delay")


class AuthMaxErrors(AuthBase):
    limits = {"max_errors": 3}

    def test_failures_count_as_errors(self):
        c, _ = self.tls_session()
        with c:
            self.assertReply(self.auth_plain(c, "alice", "a"), 535, "5.7.8")
            self.assertReply(self.auth_plain(c, "alice", "b"), 535, "5.7.8")
            self.assertReply(self.auth_plain(c, "alice", "c"), 535, "5.7.8")
            self.assertReply(c.read_reply(timeout=40), 421, "4.7.0")
            self.assertTrue(c.wait_closed())


class AuthDisabled(SluiceTestCase):
    def test_no_users_file_no_auth(self):
        d = self.start_sluice(tls=True, config={"relay": {"trusted_networks": []}})
        with d.connect() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("STARTTLS"), 220)
            c.starttls(client_context())
            r = c.ehlo()
            self.assertFalse(any(l.upper().startswith("AUTH") for l in r.lines[1:]), r)
            self.assertReply(c.cmd("AUTH PLAIN " + plain("alice", "x")), 503, "5.5.1")

    def test_bad_users_file_refused_at_start(self):
        d = self.start_sluice(tls=True, start=False)
        path = os.path.join(d.dir, "users")
        with open(path, "w") as f:
            f.write("alice:plaintext\n")
        d.extra = {"relay": {"users": path}}
        d.write_config()
        res = subprocess.run([d.bin, "run", "-c", d.config_path], cwd=d.dir, timeout=20,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn(b"users:1:", res.stdout)


if __name__ == "__main__":
    main()
