"""
The README's first command: `sluice run` with no -c, on the embedded default configuration, in a
fresh checkout. It must create its spool (./var/spool, parents included), listen on 127.0.0.1:2525,
and stop cleanly on SIGTERM. Started as root it becomes the `sluice` user; the checkout is made as
root would make it on a fresh machine: under a directory only root may enter (/root is 0700), which
the daemon's user still reaches its spool through, from its working directory. A message is queued,
`sluice queue list` run in the same directory answers, and the message is listed or already tried.
"""
import json
import os
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import threading
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
            events = []  # parsed log records, appended by the reader thread
            reader = threading.Thread(target=read_events, args=(proc.stderr, events), daemon=True)
            reader.start()
            try:
                wait_for(lambda: any_event(events, "daemon.ready", "daemon.start_failed"), 15)
                spool = os.path.join(cwd, "var", "spool")
                self.assertTrue(os.path.isdir(os.path.join(spool, "queue")), events)
                self.assertEqual(stat.S_IMODE(os.stat(spool).st_mode), 0o700)
                if not listen:
                    self.skipTest("127.0.0.1:2525 is taken on this machine; the spool was made")
                self.assertTrue(any_event(events, "daemon.ready"), events)
                with smtplib.SMTP("127.0.0.1", 2525, timeout=15) as c:
                    c.ehlo()
                    c.mail("a@example.org")
                    c.rcpt("b@example.net")
                    code, text = c.data(b"Subject: x\r\n\r\nbody\r\n")
                self.assertEqual(code, 250, text)
                queue_id = text.decode().rsplit(" ", 1)[-1]
                # The queue as the daemon's user sees it: still waiting (listed), or already tried
                # (this machine's resolver may answer at once), which read it back from the spool.
                listed = subprocess.run([sluice_bin(), "queue", "list"], cwd=cwd, timeout=15,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                self.assertEqual(listed.returncode, 0, listed.stderr)
                tried = lambda: any(e.get("queue_id") == queue_id and
                                    e.get("event", "").startswith("delivery.") for e in events)
                self.assertTrue(queue_id.encode() in listed.stdout or wait_for(tried, 10),
                                (listed.stdout, events))
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(15), 0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                reader.join(5)
                proc.stderr.close()


def read_events(stream, events):
    for line in stream:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue


def any_event(events, *names):
    return any(e.get("event") in names for e in list(events))


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


if __name__ == "__main__":
    main()
