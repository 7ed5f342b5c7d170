#!/usr/bin/python3
"""
`sluice doctor` against a real DNS server (dnsmasq on loopback) serving the records each test
writes: a clean sending setup reports every row PASS and exits 0; a listed egress address (a test
blocklist zone given through doctor.blocklists), a missing PTR, a PTR that does not resolve back,
an SPF record that leaves out an egress address, an SPF record past 10 lookups, a DKIM record of
another key, a missing DMARC record, an expired certificate and an open relay each give a FAIL row
with its fix and exit 1; a blocklist refusing our resolver is a WARN; receivers' refusals in the
log are counted by the system they name; a resolver that never answers gives WARN rows in bounded
time; --json parses; it runs without root; --watch logs each change of a row's status as an
event.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

from harness import SluiceTestCase, daemon_user, give_to_daemon_user, main
from mailnet import Dns, wait_until

DOMAIN = "sender.test"
HOSTNAME = "mx.sluice.test"
EGRESS = [("127.0.0.10", "out1.sluice.test"), ("127.0.0.11", "out2.sluice.test")]
BLOCKLIST = {"zone": "bl.test", "name": "Test BL", "removal": "https://bl.test/removal"}


def openssl(*args, cwd=None):
    subprocess.run(["openssl"] + list(args), check=True, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=30)


def make_ca_and_cert(directory, name, not_before, not_after):
    """A test CA (ca.pem) and a certificate for name signed by it between the two dates
    (YYYYMMDDHHMMSSZ), through `openssl ca`, which takes any dates; returns (ca, cert, key)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "30", "-subj", "/CN=Doctor Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=directory)
    openssl("req", "-new", *ec, "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name,
            "-keyout", "leaf.key", "-out", "leaf.csr", cwd=directory)
    with open(os.path.join(directory, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = own\n[own]\ndir = .\ndatabase = index.txt\n"
                "new_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = anything\n"
                "copy_extensions = copy\nunique_subject = no\n[anything]\ncommonName = supplied\n")
    open(os.path.join(directory, "index.txt"), "w").close()
    with open(os.path.join(directory, "serial"), "w") as f:
        f.write("1000\n")
    openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
            "-in", "leaf.csr", "-out", "leaf.pem", "-notext", "-startdate", not_before,
            "-enddate", not_after, cwd=directory)
    os.chmod(os.path.join(directory, "leaf.key"), 0o640)
    return tuple(os.path.join(directory, f) for f in ("ca.pem", "leaf.pem", "leaf.key"))


def log_line(event, reply, cls=None, mx="mx.dest.test"):
    rec = {"ts": "2026-12-01T10:00:00.000Z", "level": "warn", "event": event,
           "queue_id": "q1", "rcpt": "a@dest.test", "mx": mx, "code": 554, "reply": reply}
    if cls:
        rec["class"] = cls
    return json.dumps(rec, separators=(",", ":")) + "\n"


class DoctorTest(SluiceTestCase):
    """Each test builds the clean world, spoils one thing, and runs doctor on it."""

    def setUp(self):
        self.d = self.start_sluice(start=False)
        self.dns = Dns()
        self.egress = list(EGRESS)
        self.spf = "v=spf1 ip4:127.0.0.10 a:out2.sluice.test -all"  # one DNS lookup
        self.dmarc = "v=DMARC1; p=reject; adkim=r"
        self.blocklists = [dict(BLOCKLIST)]
        self.key, self.dkim_txt = self.keygen("good")
        self.good_txt = self.dkim_txt
        self.signing_domain = DOMAIN
        self.ca, self.cert, self.tls_key = make_ca_and_cert(
            self.d.dir, HOSTNAME, "20250101000000Z", "20991231000000Z")
        self.log = os.path.join(self.d.dir, "sluice.log")
        self.write_log(log_line("delivery.deferred", "451 4.2.0 try again later"))
        self.extra = {}

    def keygen(self, selector):
        path = os.path.join(self.d.dir, selector + ".key")
        res = subprocess.run([self.d.bin, "dkim", "keygen", "--domain", DOMAIN, "--selector",
                              selector, "--algorithm", "ed25519-sha256", "--out", path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(res.returncode, 0, res.stderr)
        return path, "".join(re.findall(r'"([^"]*)"', res.stdout.decode()))

    def write_log(self, *lines):
        with open(self.log, "w") as f:
            f.write("".join(lines))

    def publish(self):
        dns = self.dns
        dns.records.append("--local=/in-addr.arpa/")  # NXDOMAIN for the PTRs not written
        for address, name in EGRESS:
            dns.host(name, address)  # A and PTR
        dns.txt(DOMAIN, self.spf)
        dns.txt("good._domainkey." + self.signing_domain, self.dkim_txt)
        if self.dmarc:
            dns.txt("_dmarc." + DOMAIN, self.dmarc)
        dns.txt("_mta-sts." + DOMAIN, "v=STSv1; id=20261201")
        dns.txt("_smtp._tls." + DOMAIN, "v=TLSRPTv1; rua=mailto:tls@" + DOMAIN)
        dns.mx(DOMAIN, HOSTNAME, 10)
        dns.host(HOSTNAME, "127.0.0.5")

    def config(self):
        cfg = {"server": {"hostname": HOSTNAME, "log": {"file": self.log}},
               "dns": {"servers": [self.dns.server], "timeout": "1s"},
               "tls": {"certificate": self.cert, "key": self.tls_key},
               "egress": {"pools": {"default": [{"address": a, "ehlo": n}
                                                for a, n in self.egress]}},
               "dkim": [{"domain": DOMAIN, "selector": "good", "key": self.key,
                         "algorithm": "ed25519-sha256", "signing_domain": self.signing_domain}],
               "doctor": {"shipped_blocklists": False, "blocklists": self.blocklists}}
        cfg.update(self.extra)
        return cfg

    def doctor(self, *args, user=None):
        """Runs doctor --json on the world; returns (exit status, rows, stdout, stderr)."""
        self.publish()
        self.dns.start()
        self.addCleanup(self.dns.stop)
        self.d.write_config(self.config())
        env = dict(os.environ, SSL_CERT_FILE=self.ca)
        cmd = [self.d.bin, "doctor", "-c", self.d.config_path] + list(args)
        kwargs = {}
        if user is not None:
            # The build tree may be where that user cannot go (a checkout in a private directory):
            # it runs a copy of the program from among the files it is given.
            cmd[0] = os.path.join(self.d.dir, "sluice")
            shutil.copy2(self.d.bin, cmd[0])
            give_to_daemon_user(self.d.dir)  # as an administrator gives the service its files
            kwargs["preexec_fn"] = lambda: (os.setgroups([]), os.setgid(user.pw_gid),
                                            os.setuid(user.pw_uid))
        res = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=60, **kwargs)
        out = res.stdout.decode()
        rows = json.loads(out) if "--json" in args else None
        return res.returncode, rows, out, res.stderr.decode()

    def rows(self, *args, **kwargs):
        code, rows, out, err = self.doctor("--json", *args, **kwargs)
        self.detail = "exit %d\n%s\n%s" % (code, json.dumps(rows, indent=1), err)
        return code, rows

    def find(self, rows, check, subject=None, text=None):
        found = [r for r in rows if r["check"] == check and
                 (subject is None or r["subject"] == subject) and
                 (text is None or text in r["found"])]
        self.assertTrue(found, "no %s row for %s (%s)\n%s" % (check, subject, text, self.detail))
        return found[0]

    def assertFail(self, rows, check, subject, found_text, fix_text):
        row = self.find(rows, check, subject, found_text)
        self.assertEqual(row["status"], "FAIL", self.detail)
        self.assertIn(fix_text, row["fix"] or "", self.detail)

    # ---- the clean setup ----

    def test_clean_setup_is_all_pass(self):
        code, rows = self.rows()
        self.assertEqual(code, 0, self.detail)
        self.assertEqual([r for r in rows if r["status"] != "PASS"], [], self.detail)
        checks = {r["check"] for r in rows}
        for check in ("ptr", "fcrdns", "ehlo", "generic-name", "blocklist", "spf", "spf-address",
                      "dkim", "dmarc", "dmarc-alignment", "mx", "mta-sts", "tls-rpt", "tls-chain",
                      "tls-names", "tls-expiry", "open-relay", "receivers"):
            self.assertIn(check, checks, self.detail)
        self.assertEqual(len([r for r in rows if r["check"] == "spf-address"]), 2, self.detail)
        self.assertEqual(self.find(rows, "spf")["found"], "valid, 1 of 10 DNS lookups")
        for r in rows:
            self.assertEqual(sorted(r), ["check", "fix", "found", "status", "subject"])

    def test_table_output(self):
        code, _, out, err = self.doctor()
        self.assertEqual(code, 0, out + err)
        self.assertRegex(out, r"(?m)^STATUS +CHECK +SUBJECT +FOUND$")
        self.assertRegex(out, r"(?m)^PASS +ptr +127\.0\.0\.10 +out1\.sluice\.test$")
        self.assertRegex(out, r"(?m)^\d+ PASS, 0 INFO, 0 WARN, 0 FAIL$")

    # ---- one thing wrong at a time ----

    def test_listed_egress_address(self):
        self.dns.host("11.0.0.127.bl.test", "127.0.0.2")
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        self.assertFail(rows, "blocklist", "127.0.0.11", "listed in Test BL (127.0.0.2)",
                        "https://bl.test/removal")
        self.assertEqual(self.find(rows, "blocklist", "127.0.0.10")["status"], "PASS")

    def test_blocklist_refusing_our_resolver_is_a_warning(self):
        self.dns.host("10.0.0.127.bl.test", "127.255.255.254")
        code, rows = self.rows()
        row = self.find(rows, "blocklist", "127.0.0.10")
        self.assertEqual(row["status"], "WARN", self.detail)
        self.assertIn("refused our resolver", row["found"])
        self.assertIn("dns.servers", row["fix"])
        self.assertEqual(code, 0, self.detail)

    def test_missing_ptr(self):
        self.egress.append(("127.0.0.12", "out3.sluice.test"))
        self.spf = "v=spf1 ip4:127.0.0.0/24 -all"
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        self.assertFail(rows, "ptr", "127.0.0.12", "no PTR record", "set its PTR to out3.sluice.test")

    def test_ptr_that_does_not_resolve_back(self):
        self.egress.append(("127.0.0.13", "ghost.sluice.test"))
        self.spf = "v=spf1 ip4:127.0.0.0/24 -all"
        self.dns.ptr("13.0.0.127.in-addr.arpa", "ghost.sluice.test")
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        self.assertEqual(self.find(rows, "ptr", "127.0.0.13")["status"], "PASS", self.detail)
        self.assertFail(rows, "fcrdns", "127.0.0.13", "does not resolve back",
                        "A record ghost.sluice.test -> 127.0.0.13")

    def test_spf_leaving_out_an_egress_address(self):
        self.spf = "v=spf1 ip4:127.0.0.10 -all"
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        self.assertFail(rows, "spf-address", DOMAIN, "does not authorize 127.0.0.11",
                        "add ip4:127.0.0.11 to the SPF record of sender.test")
        self.assertEqual(self.find(rows, "spf-address", DOMAIN, "127.0.0.10")["status"], "PASS")

    def test_spf_over_ten_lookups(self):
        hosts = ["h%d.%s" % (i, DOMAIN) for i in range(11)]
        for i, h in enumerate(hosts):
            self.dns.host(h, "127.0.1.%d" % (i + 1))
        self.spf = "v=spf1 " + " ".join("a:" + h for h in hosts) + " ip4:127.0.0.0/24 -all"
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        self.assertFail(rows, "spf", DOMAIN, "more than 10 DNS lookups", "ip4:/ip6: ranges")

    def test_dkim_record_of_another_key(self):
        _, other = self.keygen("other")
        self.dkim_txt = other
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        self.assertFail(rows, "dkim", DOMAIN, "mismatch", "good._domainkey.sender.test")
        good_p = re.search(r"p=([^;\s]+)", self.good_txt).group(1)
        self.assertIn("p=" + good_p, self.find(rows, "dkim")["fix"])

    def use_garbage_key(self):
        self.key = os.path.join(self.d.dir, "garbage.key")
        with open(self.key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
        os.chmod(self.key, 0o600)

    def test_dkim_key_that_does_not_load(self):
        self.use_garbage_key()
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        self.assertFail(rows, "dkim-keys", "dkim", "garbage.key", "sluice check-config")
        self.assertEqual(self.find(rows, "spf")["status"], "PASS", "the domain is still checked")

    def test_missing_dmarc(self):
        self.dmarc = None
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        self.assertFail(rows, "dmarc", DOMAIN, "no DMARC record",
                        "_dmarc.sender.test: \"v=DMARC1; p=none")

    def test_dmarc_monitoring_only_and_strict_alignment(self):
        self.dmarc = "v=DMARC1; p=none; adkim=s"
        self.signing_domain = "mail." + DOMAIN  # relaxed alignment would take it, strict does not
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        row = self.find(rows, "dmarc", DOMAIN)
        self.assertEqual((row["status"], row["found"]),
                         ("INFO", "p=none: monitoring only, receivers enforce nothing"))
        self.assertEqual(self.find(rows, "dkim")["status"], "PASS", self.detail)
        self.assertFail(rows, "dmarc-alignment", DOMAIN, "d=mail.sender.test, which does not align",
                        "adkim=r")

    def test_expired_certificate(self):
        tls_dir = os.path.join(self.d.dir, "expired")
        os.mkdir(tls_dir)
        self.ca, self.cert, self.tls_key = make_ca_and_cert(
            tls_dir, HOSTNAME, "20200101000000Z", "20200201000000Z")
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        self.assertFail(rows, "tls-expiry", self.cert, "expired on", "renew the certificate")
        self.assertEqual(self.find(rows, "tls-names")["status"], "PASS", self.detail)

    def test_open_relay(self):
        self.extra = {"relay": {"trusted_networks": ["0.0.0.0/0", "::/0"],
                                "i_understand_this_is_an_open_relay": True}}
        code, rows = self.rows()
        self.assertEqual(code, 1, self.detail)
        self.assertFail(rows, "open-relay", self.d.config_path, "OPEN RELAY", "relay-test -c")

    # ---- what receivers said ----

    def test_receivers_refusals_grouped_by_system(self):
        self.write_log(
            log_line("delivery.deferred", "554 5.7.1 Service unavailable; Client host [127.0.0.10] "
                     "blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/127.0.0.10",
                     "reputation"),
            log_line("delivery.failed", "550 5.7.1 rejected: listed at Spamhaus", "reputation"),
            log_line("delivery.deferred", "550 5.7.1 Unfortunately, messages from [127.0.0.10] "
                     "weren't sent. (S3150) [BN8NAM12FT.eop-nam12.prod.protection.outlook.com]",
                     "reputation", mx="outlook-com.olc.protection.outlook.com"),
            log_line("delivery.deferred", "554 your IP has a poor reputation", "reputation"),
            log_line("delivery.delivered", "250 ok Spamhaus"),  # not a refusal
            '{"ts":"x","event":"delivery.deferred","reply":"451 \\"spamhaus\\" \\u0041",'
            '"class":"reputation"}\n')
        code, rows = self.rows()
        self.assertEqual(code, 0, self.detail)
        spamhaus = self.find(rows, "refusals", text="naming Spamhaus")
        self.assertEqual(spamhaus["status"], "WARN")
        self.assertIn("3 refusal(s) naming Spamhaus", spamhaus["found"])
        self.assertIn('451 "spamhaus" A', spamhaus["found"])  # the latest, unescaped
        self.assertIn("check.spamhaus.org", spamhaus["fix"])
        ms = self.find(rows, "refusals", text="Microsoft")
        self.assertIn("1 refusal(s) naming Microsoft (S3150/S3140)", ms["found"])
        self.assertIn("outlook-com.olc.protection.outlook.com: 550", ms["found"])
        other = self.find(rows, "refusals-other")
        self.assertIn("1 refusal(s) naming no known system", other["found"])

    def test_unreadable_log_is_a_warning(self):
        self.log = os.path.join(self.d.dir, "no-such.log")
        code, rows = self.rows()
        row = self.find(rows, "receivers")
        self.assertEqual(row["status"], "WARN", self.detail)
        self.assertIn("No such file", row["found"])
        self.assertEqual(code, 0, self.detail)

    def test_dns_down_gives_warnings_within_the_deadline(self):
        # A resolver that takes every question and never answers: each one times out.
        hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(hole.close)
        hole.bind(("127.0.0.1", 0))
        self.extra = {"dns": {"servers": ["127.0.0.1:%d" % hole.getsockname()[1]],
                              "timeout": "1s"}}
        start = time.monotonic()
        code, rows = self.rows()
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 3 * 1 + 5 + 5, "the overall deadline bounds the run")
        dns_rows = [r for r in rows if r["check"] in ("ptr", "blocklist", "spf", "dkim", "dmarc",
                                                      "mx", "mta-sts", "tls-rpt")]
        self.assertEqual(len(dns_rows), 2 + 2 + 6, self.detail)
        for r in dns_rows:
            self.assertEqual(r["status"], "WARN", self.detail)
            self.assertIn("dns.servers", r["fix"] or "", self.detail)
        self.assertEqual(code, 0, self.detail)

    # ---- --watch ----

    def watch(self):
        """Starts doctor --watch 1s on the world; returns (process, logged(event, **fields))."""
        self.publish()
        self.dns.start()
        self.addCleanup(self.dns.stop)
        self.d.write_config(self.config())
        events = os.path.join(self.d.dir, "watch.jsonl")
        with open(events, "wb") as err:
            proc = subprocess.Popen([self.d.bin, "doctor", "-c", self.d.config_path, "--watch",
                                     "1s"], env=dict(os.environ, SSL_CERT_FILE=self.ca),
                                    stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait(5)))

        def logged(event, **fields):
            with open(events) as f:
                recs = [json.loads(line) for line in f if line.startswith("{")]
            return [r for r in recs if r["event"] == event and
                    all(r.get(k) == v for k, v in fields.items())]
        self.events = events
        return proc, logged

    def test_watch_logs_changes_of_state(self):
        proc, logged = self.watch()
        events = self.events
        wait_until(lambda: logged("doctor.round", round=1), 20, "first round",
                   lambda: open(events).read())
        self.assertEqual(logged("doctor.change"), [], "a clean first round reports no change")
        # A receiver refuses us for a listing: the next round reports the new row.
        with open(self.log, "a") as f:
            f.write(log_line("delivery.failed", "554 5.7.1 blocked using zen.spamhaus.org",
                             "reputation"))
        change = wait_until(lambda: logged("doctor.change", check="refusals"), 20,
                            "the new refusals row", lambda: open(events).read())[0]
        self.assertEqual((change["from"], change["to"]), ("none", "WARN"), change)
        self.assertIn("naming Spamhaus", change["found"])
        gone = logged("doctor.change", check="receivers")
        self.assertEqual([(g["from"], g["to"]) for g in gone], [("PASS", "none")], gone)
        round_now = logged("doctor.round")[-1]["round"]
        wait_until(lambda: logged("doctor.round", round=round_now + 1), 20, "another round")
        self.assertEqual(len(logged("doctor.change", check="refusals")), 1, "no repeat")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(20), 0)

    def test_watch_reports_a_lasting_problem_once(self):
        self.use_garbage_key()
        proc, logged = self.watch()
        wait_until(lambda: logged("doctor.round", round=3), 30, "three rounds",
                   lambda: open(self.events).read())
        changes = logged("doctor.change", check="dkim-keys")
        self.assertEqual([(c["from"], c["to"]) for c in changes], [("none", "FAIL")], changes)
        self.assertEqual(changes[0]["level"], "warn")
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(20), 0)

    def test_watch_usage(self):
        for args, message in ((["--watch", "0s"], "--watch '0s' is not an interval"),
                              (["--watch", "5x"], "--watch '5x' is not an interval"),
                              (["--watch", "8d"], "--watch '8d' is not an interval"),
                              (["--watch", "1m", "--json"], "--json goes without --watch")):
            res = subprocess.run([self.d.bin, "doctor"] + args, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(res.returncode, 2, args)
            self.assertIn(message, res.stderr.decode(), args)

    # ---- the command ----

    def test_runs_without_root(self):
        user = daemon_user()
        if user is None:
            if os.geteuid() == 0:
                self.skipTest("no unprivileged user to run as")
            user = None  # already not root
        code, rows = self.rows(user=user)
        self.assertEqual(code, 0, self.detail)
        self.assertEqual([r for r in rows if r["status"] != "PASS"], [], self.detail)

    def test_usage_and_config_errors_exit_2(self):
        res = subprocess.run([self.d.bin, "doctor", "--jsn"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn("did you mean --json", res.stderr.decode())
        bad = self.d.write_config(text="doctor:\n  blocklists:\n    - name: x\n",
                                  path=os.path.join(self.d.dir, "bad.yaml"))
        res = subprocess.run([self.d.bin, "doctor", "-c", bad], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertRegex(res.stderr.decode(), r"bad\.yaml:3:\d+: .*zone")


if __name__ == "__main__":
    main()
