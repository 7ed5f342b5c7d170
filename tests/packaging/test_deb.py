"""
The Debian package, end to end, on the machine it runs on (as root; CI runs it after the suite,
on its own: it installs and purges the package, which nothing else may do at the same time).

1. Builds dist/sluice_<version>_<arch>.deb with packaging/build-deb.sh (or takes $SLUICE_DEB),
   lists it (dpkg-deb -c) and runs lintian on it (no error, no warning that is not overridden).
2. Installs it with dpkg -i: the user, the directories and the conffiles it made, check-config on
   the installed configuration, `systemd-analyze verify` on the unit, man on the pages. Where
   systemd runs, the unit the package started is active, reloads and stops.
3. Starts the installed daemon as the unit's ExecStart does (as root, with $NOTIFY_SOCKET as
   systemd sets it) on the installed configuration, its listener moved to a free port and delivery
   pointed at a DNS server and an SMTP sink on loopback: it runs as sluice without any capability,
   relays a message from loopback to the sink, and once the shipped logrotate configuration has
   rotated its log and a SIGHUP came, writes to a new log.
4. Removes the package (the configuration, spool and user stay) and purges it (they go; a user
   that was there before the package stays).
5. Runs the postinst and the purge on a machine without a sluice user (in a private mount
   namespace): they make the user and group, then remove them.
"""
import glob
import os
import pwd
import grp
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "integration"))

import harness  # noqa: E402
from mailnet import MailNet, wait_until  # noqa: E402

SBIN = "/usr/sbin/sluice"
CONFIG = "/etc/sluice/sluice.yaml"
LOG = "/var/log/sluice/sluice.log"
SPOOL = "/var/spool/sluice"
UNIT = "/lib/systemd/system/sluice.service"
SHIPPED_LISTENER = '"127.0.0.1:587"'
EXPECTED_FILES = [
    "./usr/sbin/sluice", "./etc/sluice/sluice.yaml", "./etc/logrotate.d/sluice", "." + UNIT,
    "./usr/share/man/man8/sluice.8.gz", "./usr/share/man/man5/sluice.yaml.5.gz",
    "./usr/share/bash-completion/completions/sluice", "./usr/share/doc/sluice/README.md",
    "./usr/share/doc/sluice/docs/configuration.md", "./usr/share/doc/sluice/copyright",
]
DPKG_LOCK_WAIT = 120  # seconds another apt or dpkg may hold the lock


def run(*argv, check=True, timeout=300, **kwargs):
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and res.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(argv), res.returncode, res.stdout,
                                                   res.stderr))
    return res


def dpkg(*args):
    """dpkg with args, waiting (bounded) while another dpkg or apt holds its lock."""
    deadline = time.monotonic() + DPKG_LOCK_WAIT
    while True:
        res = run("dpkg", *args, check=False)
        locked = res.returncode != 0 and "lock" in res.stderr and "dpkg frontend" in res.stderr
        if not locked or time.monotonic() > deadline:
            break
        time.sleep(1)
    if res.returncode != 0:
        raise AssertionError("dpkg %s: exit %d\n%s%s" % (" ".join(args), res.returncode,
                                                        res.stdout, res.stderr))
    return res


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def installed():
    res = run("dpkg-query", "-W", "-f=${Status}", "sluice", check=False)
    return "installed" in res.stdout or "config-files" in res.stdout


def owner(path):
    st = os.stat(path)
    return (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
            stat.S_IMODE(st.st_mode))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Package(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("installs a package: run as root")
        for tool in ("dpkg-buildpackage", "lintian", "systemd-analyze", "logrotate"):
            if shutil.which(tool) is None:
                self.skipTest("%s is missing (packaging/install-deps.sh package)" % tool)
        if installed():
            self.fail("the sluice package is installed already: this test installs and purges it")
        self.user_before = self.sluice_user() is not None
        self.tmp = tempfile.mkdtemp(prefix="sluice-deb-test-")
        os.chmod(self.tmp, 0o755)  # the daemon reads its configuration as sluice
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.addCleanup(self.purge_if_installed)
        self.proc = None
        self.addCleanup(self.kill_daemon)

    @staticmethod
    def sluice_user():
        try:
            return pwd.getpwnam("sluice")
        except KeyError:
            return None

    def purge_if_installed(self):
        if installed():
            dpkg("--purge", "sluice")

    def kill_daemon(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @classmethod
    def deb(cls):
        """The package: $SLUICE_DEB, or built once for every test here."""
        if getattr(cls, "_deb", None) is None:
            cls._deb = os.environ.get("SLUICE_DEB")
            if not cls._deb:
                res = run(os.path.join(SOURCE_DIR, "packaging", "build-deb.sh"), timeout=900)
                cls._deb = os.path.join(SOURCE_DIR, res.stdout.strip().splitlines()[-1])
        return cls._deb

    def inspect(self, deb):
        listing = run("dpkg-deb", "-c", deb).stdout
        paths = [line.split()[5] for line in listing.splitlines()]
        for path in EXPECTED_FILES:
            self.assertIn(path, paths, "dpkg-deb -c %s" % deb)
        # A warning is a failure too, until it is justified in debian/sluice.lintian-overrides.
        lint = run("lintian", "--fail-on", "error,warning", deb, check=False)
        found = [line for line in lint.stdout.splitlines() if line.startswith(("E:", "W:"))]
        self.assertEqual(lint.returncode, 0, "lintian:\n%s%s" % (lint.stdout, lint.stderr))
        self.assertEqual(found, [])

    def check_installed(self):
        user = self.sluice_user()
        self.assertIsNotNone(user, "no user sluice after dpkg -i")
        self.assertEqual(grp.getgrgid(user.pw_gid).gr_name, "sluice")
        self.assertEqual(owner(SPOOL), ("sluice", "sluice", 0o700))
        self.assertEqual(owner("/var/log/sluice"), ("sluice", "adm", 0o750))
        conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "sluice").stdout
        self.assertIn(CONFIG, conffiles)
        self.assertIn("/etc/logrotate.d/sluice", conffiles)
        self.assertEqual(run(SBIN, "check-config", "-c", CONFIG).stdout.strip(), CONFIG + ": ok")
        verify = run("systemd-analyze", "verify", UNIT, check=False)
        self.assertEqual(verify.returncode, 0, verify.stderr)
        self.assertNotIn("sluice", verify.stdout + verify.stderr)
        for page in ("/usr/share/man/man8/sluice.8.gz", "/usr/share/man/man5/sluice.yaml.5.gz"):
            shown = run("man", "--warnings", "-l", page, env=dict(os.environ, MANWIDTH="80"))
            self.assertEqual(shown.stderr, "", page)

    def check_service(self):
        """Where systemd runs, the package enabled and started the unit: it is active (Type=notify:
        the daemon said READY=1), it reloads, and it stops, so that the test's own daemon can
        take the spool. Without systemd (a container) the postinst started nothing."""
        if not os.path.isdir("/run/systemd/system"):
            return
        state = run("systemctl", "is-active", "sluice.service", check=False).stdout.strip()
        self.assertEqual(state, "active", run("systemctl", "status", "sluice.service",
                                              check=False).stdout)
        run("systemctl", "reload", "sluice.service")
        run("systemctl", "stop", "sluice.service")

    def exec_start(self):
        """The unit's ExecStart= command line."""
        with open(UNIT) as f:
            lines = [line.strip() for line in f if line.startswith("ExecStart=")]
        self.assertEqual(len(lines), 1, lines)
        return lines[0][len("ExecStart="):].split()

    def test_package(self):
        deb = self.deb()
        self.inspect(deb)
        dpkg("-i", deb)
        self.check_installed()
        self.check_service()
        self.run_daemon()

        dpkg("--remove", "sluice")
        self.assertFalse(os.path.exists(SBIN))
        self.assertTrue(os.path.exists(CONFIG), "a removed package keeps its configuration")
        self.assertTrue(os.path.isdir(SPOOL), "a removed package keeps its queue")
        self.assertIsNotNone(self.sluice_user())

        dpkg("--purge", "sluice")
        for path in ("/etc/sluice", "/etc/logrotate.d/sluice", SPOOL, "/var/log/sluice"):
            self.assertFalse(os.path.exists(path), "%s left after purge" % path)
        if self.user_before:
            self.assertIsNotNone(self.sluice_user(), "purge removed a user it did not create")
        else:
            self.assertIsNone(self.sluice_user(), "purge left the user it created")

    def run_daemon(self):
        net = MailNet()
        self.addCleanup(net.close)
        sink = net.peer("mx.dest.test")
        net.mx("dest.test", sink)
        net.start()

        with open(CONFIG) as f:
            shipped = f.read()
        self.assertIn(SHIPPED_LISTENER, shipped)
        port = free_port()
        config = os.path.join(self.tmp, "sluice.yaml")
        with open(config, "w") as f:
            f.write(shipped.replace(SHIPPED_LISTENER, '"127.0.0.1:%d"' % port))
            f.write("dns:\n  servers: [\"%s\"]\n  timeout: 1s\ndelivery:\n  port: %d\n"
                    % (net.dns.server, net.port))
        os.chmod(config, 0o644)

        notify_path = os.path.join(self.tmp, "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(notify_path)
        os.chmod(notify_path, 0o666)
        notify.settimeout(15)

        argv = self.exec_start()
        self.assertEqual(argv[:2], [SBIN, "run"])
        argv[argv.index(CONFIG)] = config
        out = open(os.path.join(self.tmp, "stderr"), "wb")
        self.addCleanup(out.close)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     env=dict(os.environ, NOTIFY_SOCKET=notify_path), cwd="/")

        def expect(state):
            try:
                got = notify.recv(4096).decode()
            except socket.timeout:
                got = None
            self.assertEqual(got, state, self.daemon_output())

        expect("READY=1")
        with open("/proc/%d/status" % self.proc.pid) as f:
            ids = dict(line.split(":", 1) for line in f
                       if line.startswith(("Uid", "Gid", "CapPrm", "CapEff")))
        user = self.sluice_user()
        self.assertEqual(ids["Uid"].split(), [str(user.pw_uid)] * 4)
        self.assertEqual(ids["Gid"].split(), [str(user.pw_gid)] * 4)
        # Become sluice, it keeps no capability (the unit's bounding set only matters before).
        self.assertEqual(int(ids["CapPrm"], 16), 0)
        self.assertEqual(int(ids["CapEff"], 16), 0)

        import smtplib
        with smtplib.SMTP("127.0.0.1", port, timeout=15) as client:
            client.ehlo("client.test")
            self.assertEqual(client.sendmail("a@sender.test", ["b@dest.test"],
                                             b"Subject: package\r\n\r\nhello\r\n"), {})
        wait_until(lambda: sink.delivered(), 30, "delivered to the sink",
                   lambda: net.report() + self.daemon_output())
        self.assertEqual(len(sink.delivered()), 1)

        # The shipped log rotation (its postrotate signals through systemd, absent here).
        state = os.path.join(self.tmp, "logrotate.state")
        run("logrotate", "--force", "--state", state, "/etc/logrotate.d/sluice")
        self.assertTrue(os.path.exists(LOG + ".1"), os.listdir("/var/log/sluice"))
        self.proc.send_signal(signal.SIGHUP)
        expect("RELOADING=1")
        expect("READY=1")
        # The log is written by a thread of its own: the record may follow READY=1.
        wait_until(lambda: '"daemon.reload"' in read(LOG), 10, "daemon.reload in the new log",
                   self.daemon_output)
        ours = '"pid":%d' % self.proc.pid
        rotated = [line for line in read(LOG + ".1").splitlines()
                   if '"daemon.reload"' in line and ours in line]
        self.assertEqual(rotated, [], "the rotated log")

        self.proc.send_signal(signal.SIGTERM)
        expect("STOPPING=1")
        self.assertEqual(self.proc.wait(30), 0, self.daemon_output())

    def test_user_made_by_package(self):
        """On a machine without a sluice user, the postinst makes user and group (and the
        directories) and purge removes them again. Run in a private mount namespace over a copy of
        /etc and empty /var/spool, /var/log and /var/lib/systemd, so the machine's own sluice
        user, which other tests need, is never touched."""
        if shutil.which("unshare") is None:
            self.skipTest("no unshare")
        control = os.path.join(self.tmp, "control")
        run("dpkg-deb", "-e", self.deb(), control)
        script = """
set -e
mount --make-rprivate /
rm -rf "$T/etc" "$T/var" && cp -a /etc "$T/etc" && mount --bind "$T/etc" /etc
for d in /var/spool /var/log /var/lib/systemd; do
    mkdir -p "$T$d" && mount --bind "$T$d" "$d"
done
userdel --force sluice 2>/dev/null || true   # --force: other tests' daemons run as sluice
getent group sluice >/dev/null || groupadd --system sluice
[ "$KEEP_GROUP" = 1 ] || groupdel sluice
! getent passwd sluice
DPKG_MAINTSCRIPT_NAME=postinst sh "$C/postinst" configure
echo "user: $(getent passwd sluice | cut -d: -f1,6,7) $(getent passwd sluice | cut -d: -f5 | cut -d, -f1)"
echo "group: $(id -gn sluice)"
echo "spool: $(stat -c '%U:%G %a' /var/spool/sluice)"
echo "log: $(stat -c '%U:%G %a' /var/log/sluice)"
DPKG_MAINTSCRIPT_NAME=postrm sh "$C/postrm" purge
echo "after purge: $(getent passwd sluice || echo no user) $(getent group sluice || echo no group)"
ls -d /var/spool/sluice /var/log/sluice 2>/dev/null || echo "no directories"
"""
        # Without a group sluice, and with one an administrator made (the user joins it).
        for keep_group in ("0", "1"):
            with self.subTest(keep_group=keep_group):
                res = run("unshare", "--mount", "sh", "-c", script, check=False,
                          env=dict(os.environ, T=self.tmp, C=control, KEEP_GROUP=keep_group,
                                   DPKG_MAINTSCRIPT_PACKAGE="sluice"))
                if res.returncode != 0 and "unshare failed" in res.stderr:
                    self.skipTest("no private mount namespace here: %s" % res.stderr.strip())
                self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
                self.assertEqual(res.stdout.splitlines(), [
                    "user: sluice:/nonexistent:/usr/sbin/nologin Sluice mail transfer agent",
                    "group: sluice",
                    "spool: sluice:sluice 700",
                    "log: sluice:adm 750",
                    "after purge: no user no group",
                    "no directories",
                ], res.stderr)
        if self.user_before:
            self.assertIsNotNone(self.sluice_user(), "the machine's own sluice user is gone")

    def daemon_output(self):
        parts = []
        for path in [os.path.join(self.tmp, "stderr")] + sorted(glob.glob(LOG + "*")):
            try:
                with open(path, errors="replace") as f:
                    parts.append("== %s\n%s" % (path, "".join(f.readlines()[-20:])))
            except OSError:
                pass
        return "\n".join(parts)


if __name__ == "__main__":
    unittest.main(verbosity=2)
