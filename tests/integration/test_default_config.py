"""
The README's first command: `sluice run` with no -c, on the embedded default configuration, in a
fresh checkout. It must create its spool (./var/spool, parents included), listen on 127.0.0.1:2525,
and stop cleanly on SIGTERM. Started as root it becomes the `sluice` user, so the checkout must be
one that user can reach.
"""
import json
import os
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from harness import daemon_user, give_to_daemon_user, main, sluice_bin


def port_free(host, port):
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


class DefaultConfig(unittest.TestCase):
    def test_runs_in_an_empty_directory(self):
        if os.geteuid() == 0 and daemon_user() is None:
            self.skipTest("no sluice user to drop to (packaging/install-deps.sh creates it)")
        with tempfile.TemporaryDirectory() as cwd:
            give_to_daemon_user(cwd)
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
                with socket.create_connection(("127.0.0.1", 2525), timeout=5) as c:
                    self.assertTrue(c.recv(512).startswith(b"220 "))
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(15), 0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stderr.close()


if __name__ == "__main__":
    main()
