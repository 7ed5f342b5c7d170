"""
A configuration that would relay for strangers does not load: `check-config` and `run` refuse it
naming file:line:column, a SIGHUP to it keeps the running configuration, and only the explicit
acknowledgement key lets it load (with a warning).
"""
import os
import re
import signal
import subprocess

from harness import SluiceTestCase, free_port, main
from mailnet import wait_until

SAFE = """\
server:
  spool: {spool}
listeners:
  - name: sub
    address: "127.0.0.1:{port}"
    role: submission
relay:
  trusted_networks: ["127.0.0.0/8"]
"""

OPEN = [
    ("world-wide IPv4", SAFE.replace('["127.0.0.0/8"]', '["0.0.0.0/0"]'), 8),
    ("world-wide IPv6", SAFE.replace('["127.0.0.0/8"]', '["127.0.0.0/8", "::/0"]'), 8),
    ("half the Internet", SAFE.replace('["127.0.0.0/8"]', '["0.0.0.0/1"]'), 8),
    ("public submission without AUTH", SAFE.replace('"127.0.0.1:{port}"', '"0.0.0.0:{port}"'), 4),
    ("every /8 but 192/8", SAFE.replace('["127.0.0.0/8"]', "[%s]" % ", ".join(
        '"%d.0.0.0/8"' % i for i in range(1, 224) if i != 192)), 8),
    ("NAT64", SAFE.replace('["127.0.0.0/8"]', '["127.0.0.0/8", "64:ff9b::/96"]'), 8),
    ("6to4", SAFE.replace('["127.0.0.0/8"]', '["2002::/16"]'), 8),
    ("Teredo", SAFE.replace('["127.0.0.0/8"]', '["2001::/32"]'), 8),
    ("a public /8", SAFE.replace('["127.0.0.0/8"]', '["8.0.0.0/8"]'), 8),
    ("public IPv6 /31", SAFE.replace('["127.0.0.0/8"]', '["2a01:4f8::/31"]'), 8),
    ("two public /16 together", SAFE.replace('["127.0.0.0/8"]', '["1.2.0.0/16", "8.8.0.0/16"]'), 8),
]


class OpenRelayConfig(SluiceTestCase):
    def setUp(self):
        self.d = self.start_sluice(start=False)

    def write(self, text, name):
        path = os.path.join(self.d.dir, name)
        with open(path, "w") as f:
            f.write(text.format(spool=self.d.spool, port=2))
        return path

    def test_check_config_and_run_refuse_open_relays(self):
        for what, text, line in OPEN:
            with self.subTest(what):
                path = self.write(text, "open.yaml")
                for command in ("check-config", "run"):
                    res = self.d.cli(command, config=path, timeout=10)
                    err = res.stderr.decode()
                    self.assertEqual(res.returncode, 1, "%s: %s accepted it: %r" % (what, command, err))
                    self.assertRegex(err, r"(?m)^%s:%d:\d+: " % (re.escape(path), line))
                    self.assertIn("relays for strangers", err)

    def test_acknowledged_open_relay_loads_with_a_warning(self):
        text = OPEN[0][1] + "  i_understand_this_is_an_open_relay: true\n"
        path = self.write(text, "ack.yaml")
        res = self.d.cli("check-config", config=path)
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.assertIn("config.open_relay", res.stderr.decode())

    def test_acknowledged_open_relay_warning_goes_to_the_log_file(self):
        log = os.path.join(self.d.dir, "events.log")
        port = free_port("127.0.0.1")
        text = (OPEN[0][1].replace("{port}", str(port)) +
                "  i_understand_this_is_an_open_relay: true\n").replace(
                    "server:\n", "server:\n  log:\n    file: %s\n" % log)
        path = self.write(text, "ack-log.yaml")
        proc = subprocess.Popen([self.d.bin, "run", "-c", path], cwd=self.d.dir,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: os.path.exists(log) and b"daemon.ready" in open(log, "rb").read(),
                       10, "daemon.ready in the log file")
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=15)
        text = open(log, "rb").read().decode()
        self.assertIn("config.open_relay", text)
        self.assertLess(text.index("config.open_relay"), text.index("daemon.ready"))
        self.assertNotIn(b"config.open_relay", stderr)

    def test_reload_to_an_open_relay_keeps_the_old_config(self):
        d = self.start_sluice(listeners=[{"name": "sub", "role": "submission"}])
        text = open(d.config_path).read()
        self.assertIn("trusted_networks", text)
        d.write_config(text=text.replace("- 127.0.0.0/8", "- 0.0.0.0/0"))
        d.signal(signal.SIGHUP)
        d.wait_event("daemon.reload_failed")
        self.assertEqual(d.events("daemon.reload"), [])
        self.assertIsNone(d.proc.poll(), "daemon died on a refused reload")


if __name__ == "__main__":
    main()
