"""
Privileges, through the real daemon started as root: it becomes the `sluice` user by default (no
capability left; daemon.ready names the user), refuses to start as root when that user does not
exist and server.user is unset, stays root only when server.user says root (with a warning). The
spool is handed to the user without following what that user may have left in it (a symbolic link,
a hard link to a root-only file), and recovery runs as the user. Keys made by `sluice dkim keygen`
and the log file stay usable after the drop: a reload (SIGHUP) reads the keys again and reopens the
log; a key the user could not read at reload is a warning at check-config naming its line.
"""
import os
import shutil
import signal
import stat
import subprocess
import tempfile

from harness import SluiceTestCase, daemon_user, main
from mailnet import wait_until


def proc_status(pid):
    """/proc/PID/status as a dict of its fields' values split into words."""
    with open("/proc/%d/status" % pid) as f:
        return {k: v.split() for k, v in (line.split(":", 1) for line in f if ":" in line)}


def position(text, needle):
    offset = text.index(needle)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


class Privileges(SluiceTestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: the daemon's drop of privileges is what is tested")
        self.user = daemon_user()
        if self.user is None:
            self.skipTest("no sluice user (packaging/install-deps.sh creates it)")
        # Root's own files, outside the directory the harness gives to the daemon's user.
        self.private = tempfile.mkdtemp(prefix="privileges-root-")
        self.addCleanup(shutil.rmtree, self.private, True)

    def root_file(self, name, mode=0o600, text="root's secret\n"):
        path = os.path.join(self.private, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def assert_root_owned(self, path):
        st = os.lstat(path)
        self.assertEqual((st.st_uid, st.st_gid), (0, 0), "%s changed hands" % path)

    # ---- who the daemon runs as ----

    def test_root_becomes_the_sluice_user_by_default(self):
        d = self.start_sluice()
        self.assertEqual(d.find("daemon.ready")["user"], "sluice")
        status = proc_status(d.proc.pid)
        uid, gid = str(self.user.pw_uid), str(self.user.pw_gid)
        self.assertEqual(status["Uid"], [uid] * 4)  # real, effective, saved, file system
        self.assertEqual(status["Gid"], [gid] * 4)
        self.assertEqual(sorted(status["Groups"]),
                         sorted(str(g) for g in os.getgrouplist("sluice", self.user.pw_gid)))
        for caps in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            self.assertEqual(int(status[caps][0], 16), 0, caps)
        # It still works as that user: a message is queued in the spool it was handed.
        with d.connect() as c:
            self.open_data(c, "a@example.com", "b@example.org")
            c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
            self.assertReply(c.read_reply(timeout=15), 250)
        self.assertEqual(len(d.queue_list()), 1)

    def test_root_without_the_default_user_is_refused(self):
        """A mount namespace hides the sluice user from /etc/passwd, as on a machine without it."""
        if shutil.which("unshare") is None or shutil.which("mount") is None:
            self.skipTest("needs unshare and mount (util-linux)")
        passwd = os.path.join(self.private, "passwd")
        with open("/etc/passwd") as src, open(passwd, "w") as dst:
            dst.writelines(l for l in src if not l.startswith("sluice:"))
        os.chmod(passwd, 0o644)
        d = self.start_sluice(start=False)
        d.write_config()
        hidden = ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/passwd && exec "$@"',
                  passwd, d.bin]
        probe = subprocess.run(hidden + ["version"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=20)
        if probe.returncode != 0:
            self.skipTest("cannot make a mount namespace here: %r" % probe.stderr)
        for command in ("check-config", "run"):
            with self.subTest(command):
                try:
                    res = subprocess.run(hidden + [command, "-c", d.config_path], cwd=d.dir,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         timeout=10)
                except subprocess.TimeoutExpired:
                    self.fail("%s: started as root without a sluice user" % command)
                err = res.stderr.decode()
                self.assertEqual(res.returncode, 1, err)
                self.assertIn("server.user: not starting as root without server.user: the "
                              "default user 'sluice' does not exist", err)
                self.assertIn("useradd --system", err)  # how to fix it

    def test_server_user_root_stays_root_with_a_warning(self):
        d = self.start_sluice(config={"server": {"user": "root"}})
        self.assertEqual(d.find("daemon.ready")["user"], "root")
        self.assertEqual(proc_status(d.proc.pid)["Uid"], ["0"] * 4)
        text = open(d.config_path).read()
        line, column = position(text, "user: root")
        where = "%s:%d:%d: server.user: the daemon stays root" % (d.config_path, line,
                                                                   column + len("user: "))
        self.assertTrue(any(r["msg"].startswith(where) for r in d.events("config.warning")),
                        (where, d.log_tail()))

    # ---- the spool is handed over without following links ----

    def test_links_in_the_spool_hand_nothing_outside_to_the_user(self):
        secret = self.root_file("secret")
        shadow = self.root_file("shadow")
        d = self.start_sluice(start=False, config={"server": {"user": "sluice"}})
        queue = os.path.join(d.spool, "queue")
        os.makedirs(queue)
        os.symlink(secret, os.path.join(queue, "evil-symlink"))
        os.link(shadow, os.path.join(queue, "evil-hardlink"))
        d.start()
        self.assert_root_owned(secret)
        self.assert_root_owned(shadow)
        self.assertEqual(stat.S_IMODE(os.stat(shadow).st_mode), 0o600)
        left = [r["msg"] for r in d.events("spool.not_handed_over")]
        self.assertTrue(any("evil-symlink: a symbolic link" in m for m in left), left)
        self.assertTrue(any("evil-hardlink: a file with more than one name" in m for m in left),
                        left)
        self.assertEqual(os.stat(d.spool).st_uid, self.user.pw_uid)

    def test_a_spool_root_made_is_handed_over(self):
        """A spool from a run as root (mode 0700): check-config and the start see it goes over."""
        os.chmod(self.private, 0o755)
        spool = os.path.join(self.private, "spool")
        os.makedirs(os.path.join(spool, "queue"), 0o700)
        os.chmod(spool, 0o700)
        d = self.start_sluice(start=False, config={"server": {"spool": spool}})
        d.write_config()
        check = d.cli("check-config")
        self.assertEqual(check.returncode, 0, check.stderr)
        d.start()
        for path in (spool, os.path.join(spool, "queue"), os.path.join(spool, "tmp")):
            self.assertEqual(os.stat(path).st_uid, self.user.pw_uid, path)

    def test_recovery_runs_as_the_user(self):
        """tmp/ swapped for a link to a root-only directory: recovery as root would empty it."""
        victim = os.path.join(self.private, "victim")
        os.mkdir(victim, 0o700)
        precious = os.path.join(victim, "precious")
        with open(precious, "w") as f:
            f.write("keep me\n")
        d = self.start_sluice(start=False, config={"server": {"user": "sluice"}})
        os.makedirs(d.spool)
        os.symlink(victim, os.path.join(d.spool, "tmp"))
        d.write_config()
        proc = subprocess.Popen([d.bin, "run", "-c", d.config_path], cwd=d.dir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            _, err = proc.communicate(timeout=15)
        self.assertTrue(os.path.exists(precious), "recovery removed a file outside the spool")
        self.assert_root_owned(victim)
        # The user cannot open what tmp/ leads to: start fails, naming it.
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn("tmp: Permission denied", err.decode())

    # ---- keys and the log after the drop ----

    def test_keys_made_by_root_are_read_again_at_reload(self):
        os.chmod(self.private, 0o755)
        d = self.start_sluice(start=False, tls=True, config={"server": {"user": "sluice"}})
        d.write_config()
        dkim_key = os.path.join(self.private, "s1.example.com.key")
        res = subprocess.run([d.bin, "dkim", "keygen", "--domain", "example.com", "--selector",
                              "s1", "--algorithm", "ed25519-sha256", "--out", dkim_key, "-c",
                              d.config_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=30)
        self.assertEqual(res.returncode, 0, res.stderr)
        st = os.stat(dkim_key)
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid),
                         (0o640, 0, self.user.pw_gid), "keygen as root: 0640 root:sluice")
        tls_key = self.root_file("tls.key", 0o600, open(d.key).read())
        d.extra = {"server": {"user": "sluice"}, "tls": {"certificate": d.cert, "key": tls_key},
                   "dkim": [{"domain": "example.com", "selector": "s1", "key": dkim_key,
                             "algorithm": "ed25519-sha256"}]}
        d.write_config()

        # A root-only TLS key: fine at start (read as root), but a reload would fail.
        check = d.cli("check-config")
        self.assertEqual(check.returncode, 0, check.stderr)
        text = open(d.config_path).read()
        line, column = position(text, tls_key)
        warning = "%s:%d:%d: tls.key: sluice cannot read %s once it is no longer root" % (
            d.config_path, line, column, tls_key)
        self.assertIn(warning, check.stderr.decode())
        self.assertNotIn("dkim[0]", check.stderr.decode())  # keygen's key is readable

        # Given to the daemon's group, as keygen does: no warning, and reloads work.
        os.chown(tls_key, 0, self.user.pw_gid)
        os.chmod(tls_key, 0o640)
        check = d.cli("check-config")
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertNotIn("config.warning", check.stderr.decode())
        d.start()
        d.signal(signal.SIGHUP)
        d.wait_event("daemon.reload")
        self.assertEqual(d.events("daemon.reload_failed"), [], d.log_tail())

    def test_log_file_is_reopened_as_the_user(self):
        d = self.start_sluice(start=False)
        log = os.path.join(d.dir, "sluice.log")  # a directory the daemon's user owns
        d.extra = {"server": {"user": "sluice", "log": {"file": log}}}
        d.write_config()
        proc = subprocess.Popen([d.bin, "run", "-c", d.config_path], cwd=d.dir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.wait(15)))

        def logged(what, path=log):
            return os.path.exists(path) and what in open(path, "rb").read()

        wait_until(lambda: logged(b"daemon.ready"), 10, "daemon.ready in the log file")
        self.assertEqual(os.stat(log).st_uid, self.user.pw_uid, "the user's own log file")
        # A reload reopens the same file...
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: logged(b"daemon.reload"), 10, "reload logged")
        self.assertFalse(logged(b"cannot open"), open(log).read())
        # ...and, after a rotation that renames it, makes a new one.
        os.rename(log, log + ".1")
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: logged(b"daemon.reload"), 10, "reload logged in a new file")
        self.assertEqual(os.stat(log).st_uid, self.user.pw_uid)
        proc.terminate()
        self.assertEqual(proc.wait(15), 0)


if __name__ == "__main__":
    main()
