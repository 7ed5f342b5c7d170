"""
The README's first command: `sluice run` with no -c, on the embedded default configuration, in a
fresh checkout. It must create its spool (./var/spool, parents included), listen on 127.0.0.1:2525,
and stop cleanly on SIGTERM. Started as root it becomes the `sluice` user; the checkout is made as
root would make it on a fresh machine: under a directory only root may enter (/root is 0700), which
the daemon's user still reaches its spool through, from its working directory. A message is queued
and `sluice queue list`, run in the same directory, shows it.
"""
import json
import os
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from harness import daemon_user, main, sluice_bin


def port_free(host, port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as libuv binds: TIME_WAIT is no bar
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


class DefaultConfig(unittest.TestCase):
    def test_runs_in_an_empty_directory(self):
        if os.geteuid() == 0 and daemon_user() is None:
            self.skipTest("no sluice user to drop to (packaging/install-deps.sh creates it)")
        with tempfile.TemporaryDirectory() as home:  # 0700, like /root
            cwd = os.path.join(home, "checkout")
            os.mkdir(cwd, 0o755)
            listen = port_free("127.0.0.1", 2525)
            proc = subprocess.Popen([sluice_bin(), "run"], cwd=cwd, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            events = []
            deadline = time.monotonic() + 15
            try:
                while time.monotonic() < deadline:
                    line = proc.stderr.readline()
                    if not line:
                        break
                    try:
                        events.append(json.loads(line).get("event"))
                    except ValueError:
                        continue
                    if events[-1] in ("daemon.ready", "daemon.start_failed"):
                        break
                spool = os.path.join(cwd, "var", "spool")
                self.assertTrue(os.path.isdir(os.path.join(spool, "queue")), events)
                self.assertEqual(stat.S_IMODE(os.stat(spool).st_mode), 0o700)
                if not listen:
                    self.skipTest("127.0.0.1:2525 is taken on this machine; the spool was made")
                self.assertIn("daemon.ready", events)
                with smtplib.SMTP("127.0.0.1", 2525, timeout=15) as c:
                    c.sendmail("a@example.org", ["b@example.net"], b"Subject: x\r\n\r\nbody\r\n")
                listed = subprocess.run([sluice_bin(), "queue", "list"], cwd=cwd, timeout=15,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                self.assertEqual(listed.returncode, 0, listed.stderr)
                self.assertIn(b"<a@example.org> b@example.net", listed.stdout)
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(15), 0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stderr.close()


if __name__ == "__main__":
    main()
