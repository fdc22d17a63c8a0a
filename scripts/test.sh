#!/bin/sh
# The whole test suite: install, build (plain and with ASan/UBSan), run
# every unit and integration test in both.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh"
cd "$root"
scripts/build.sh build
meson test -C build --print-errorlogs
scripts/build.sh build-asan -Dsanitize=true -Dbuildtype=debug
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    meson test -C build-asan --print-errorlogs
