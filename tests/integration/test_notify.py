"""
systemd's notification protocol (Type=notify in packaging/sluice.service.in): started with
$NOTIFY_SOCKET, the daemon sends READY=1 once its listeners accept connections, RELOADING=1 when a
SIGHUP reload starts and READY=1 when it is over (applied, or refused for a bad file), and
STOPPING=1 on SIGTERM. The test plays the service manager on a datagram socket of its own.
"""
import os
import signal
import socket
import subprocess

from harness import SluiceTestCase, main, sluice_bin

TIMEOUT = 10.0


class Notify(SluiceTestCase):
    def setUp(self):
        linked = subprocess.run(["ldd", sluice_bin()], capture_output=True, text=True, timeout=30)
        if "libsystemd" not in linked.stdout:
            self.skipTest("sluice was built without libsystemd (libsystemd-dev)")

    def start_notified(self, **kwargs):
        """A daemon started with $NOTIFY_SOCKET naming a socket in its directory (which the
        daemon's user owns), and that socket."""
        d = self.start_sluice(start=False, **kwargs)
        path = os.path.join(d.dir, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        os.chmod(path, 0o666)  # the daemon sends as the user it became
        sock.settimeout(TIMEOUT)
        os.environ["NOTIFY_SOCKET"] = path
        try:
            d.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        return d, sock

    def expect(self, sock, d, state):
        try:
            got = sock.recv(4096).decode()
        except socket.timeout:
            self.fail("no %s within %.0fs\n%s" % (state, TIMEOUT, d.log_tail()))
        self.assertEqual(got, state)

    def test_ready_reload_and_stop(self):
        d, sock = self.start_notified()
        self.expect(sock, d, "READY=1")
        with d.connect() as c:  # ready means the listener answers
            self.assertEqual(c.cmd("QUIT").code, 221)

        d.signal(signal.SIGHUP)
        self.expect(sock, d, "RELOADING=1")
        self.expect(sock, d, "READY=1")
        self.assertEqual(len(d.events("daemon.reload")), 1)  # READY=1 came once it was applied

        d.write_config(text="listeners: [\n")  # a reload that fails is over too
        d.signal(signal.SIGHUP)
        self.expect(sock, d, "RELOADING=1")
        self.expect(sock, d, "READY=1")
        self.assertEqual(len(d.events("daemon.reload_failed")), 1)

        d.signal(signal.SIGTERM)
        self.expect(sock, d, "STOPPING=1")
        self.assertEqual(d.wait_exit(TIMEOUT), 0)


if __name__ == "__main__":
    main()
