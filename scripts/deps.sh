#!/bin/sh
# Installs the Debian 12 packages gmpool builds and tests with, if missing.
set -eu
PKGS="build-essential meson ninja-build pkg-config openssl libssl-dev
libuv1-dev libsqlite3-dev libinih-dev libcmocka-dev libgcrypt20-dev
gnuplot-nox libnss3-dev libnss3-tools opensc p11-kit"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
