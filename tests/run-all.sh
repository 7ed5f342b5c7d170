#!/bin/sh
# Builds Sluice twice (plain, then with AddressSanitizer + UndefinedBehaviorSanitizer) and runs the
# whole test suite on each build; then, as root, builds the Debian package and tests it end to end (it
# installs and purges the package, so it runs alone, after the rest). Installs missing Debian packages
# first when run as root.
set -eu
cd "$(dirname "$0")/.."

packaging/install-deps.sh test

jobs=$(nproc 2>/dev/null || echo 2)
for variant in plain sanitize; do
    dir=build-test-$variant
    flag=OFF
    [ "$variant" = sanitize ] && flag=ON
    echo "== $variant build ($dir)"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=$flag >/dev/null
    cmake --build "$dir" -j "$jobs"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir "$dir" --output-on-failure -j "$jobs"
done

if [ "$(id -u)" = 0 ]; then
    echo "== Debian package"
    packaging/install-deps.sh package
    /usr/bin/python3 tests/packaging/test_deb.py
else
    echo "== Debian package: skipped (it installs the package: run as root)"
fi
