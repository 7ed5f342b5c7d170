#!/bin/sh
# Installs what Sluice needs to build and test on Debian 12, skipping what is already there, and
# creates the `sluice` system user that the daemon becomes when started as root without server.user.
# Usage: packaging/install-deps.sh [build|test|bench|fuzz|package]   (test and bench include the
# levels before them; fuzz is build plus clang, whose libFuzzer runs tests/fuzz/ as fuzzers:
# docs/testing.md; package is test plus what packaging/build-deb.sh and its test need)
set -eu

level=${1:-test}

build_pkgs="cmake make gcc pkg-config libuv1-dev libssl-dev libc-ares-dev libopendkim-dev libyaml-dev libcrypt-dev libidn2-dev libpsl-dev libsystemd-dev liblmdb-dev libcurl4-openssl-dev libh2o-dev libjansson-dev libhiredis-dev"
test_pkgs="python3 swaks openssl python3-aiosmtpd python3-dkim python3-dnspython publicsuffix dnsmasq-base clamav-daemon man-db python3-prometheus-client curl redis-server chromium"
# debhelper builds the .deb, lintian checks it, systemd brings systemd-analyze for the unit.
package_pkgs="debhelper lintian dpkg-dev systemd logrotate adduser"
bench_pkgs="postfix procps"
fuzz_pkgs="clang libclang-rt-dev"

case "$level" in
build) want="$build_pkgs" ;;
test) want="$build_pkgs $test_pkgs" ;;
bench) want="$build_pkgs $test_pkgs $bench_pkgs" ;;
fuzz) want="$build_pkgs $fuzz_pkgs" ;;
package) want="$build_pkgs $test_pkgs $package_pkgs" ;;
*) echo "usage: $0 [build|test|bench|fuzz|package]" >&2; exit 2 ;;
esac

# The daemon's user: no home, no shell, its own group (which may read keys: docs/install.md).
if ! getent passwd sluice >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "no user sluice (run this script as root to create it)" >&2
    else
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin sluice
    fi
fi

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages:$missing (run this script as root to install them)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix is only the benchmark's yardstick: install it unconfigured and never start it as a service.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
