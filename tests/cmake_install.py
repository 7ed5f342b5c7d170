"""
`cmake --install` lays Sluice out as packaging/install.cmake says (the Debian package is built
from the same rules): the program in sbin, the configuration under the system configuration
directory (/etc for the /usr prefix), the unit naming the installed paths, log rotation, manual
pages, bash completion and docs; and a second install keeps a configuration the administrator
changed. Installs the build directory into a temporary DESTDIR.

usage: cmake_install.py BUILD_DIR
"""
import os
import re
import subprocess
import sys
import tempfile


def cache_value(build, name):
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"%s:[A-Z]+=(.*)$" % re.escape(name), line)
            if m:
                return m.group(1)
    raise AssertionError("%s not in CMakeCache.txt" % name)


def install(build, destdir):
    res = subprocess.run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=destdir),
                         capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise AssertionError("cmake --install: %s%s" % (res.stdout, res.stderr))


def main():
    build = os.path.abspath(sys.argv[1])
    prefix = cache_value(build, "CMAKE_INSTALL_PREFIX")
    etc = "/etc" if prefix == "/usr" else prefix + "/etc"
    unit_dir = cache_value(build, "SLUICE_SYSTEMD_UNIT_DIR")
    expected = [prefix + "/sbin/sluice", etc + "/sluice/sluice.yaml", etc + "/logrotate.d/sluice",
                unit_dir + "/sluice.service", prefix + "/share/man/man8/sluice.8",
                prefix + "/share/man/man5/sluice.yaml.5",
                prefix + "/share/bash-completion/completions/sluice",
                prefix + "/share/doc/sluice/README.md",
                prefix + "/share/doc/sluice/docs/configuration.md"]
    failures = []
    with tempfile.TemporaryDirectory(prefix="sluice-install-") as root:
        install(build, root)
        for path in expected:
            if not os.path.isfile(root + path):
                failures.append("not installed: %s" % path)
        if not os.access(root + prefix + "/sbin/sluice", os.X_OK):
            failures.append("%s/sbin/sluice is not executable" % prefix)
        with open(root + unit_dir + "/sluice.service") as f:
            unit = f.read()
        start = "ExecStart=%s/sbin/sluice run -c %s/sluice/sluice.yaml\n" % (prefix, etc)
        if start not in unit:
            failures.append("the unit does not say %r" % start)

        config = root + etc + "/sluice/sluice.yaml"
        with open(config, "w") as f:
            f.write("# the administrator's\n")
        install(build, root)
        with open(config) as f:
            if f.read() != "# the administrator's\n":
                failures.append("a second install replaced %s" % config)
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
