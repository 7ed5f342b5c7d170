#!/bin/sh
# Builds the Debian binary package dist/sluice_<version>_<arch>.deb with dpkg-buildpackage from a
# copy of this tree (build directories left out) with packaging/debian/ as its debian/, so the
# tree itself stays clean. Needs the build dependencies: packaging/install-deps.sh package.
# Prints the package's path on its last line.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)

version=$(sed -n 's/^project(sluice VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
changelog=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
if [ "$version" != "$changelog" ]; then
    echo "CMakeLists.txt says $version, packaging/debian/changelog $changelog: add a changelog entry" >&2
    exit 1
fi

work=$(mktemp -d /tmp/sluice-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src="$work/sluice-$version"
mkdir "$src"
tar -C "$top" --exclude=./.git --exclude='./build*' --exclude=./dist -cf - . | tar -C "$src" -xf -
rm -rf "$src/debian"
cp -r packaging/debian "$src/debian"

jobs=$(nproc 2>/dev/null || echo 2)
(cd "$src" && DEB_BUILD_OPTIONS="parallel=$jobs${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}" \
    dpkg-buildpackage -b -us -uc)

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="sluice_${version}_${arch}.deb"
mkdir -p dist
mv "$work/$deb" "dist/$deb"
echo "dist/$deb"
