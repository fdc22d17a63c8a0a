# Shared by the shell tests: TAP-style results and stopping the daemon.
# Source it after `set -u`; the sourcing script sets $pid when it starts
# gmpoold.
pass=0
fail=0
pid=
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
check() { desc=$1; shift; if "$@" >/dev/null 2>&1; then ok "$desc"; else bad "$desc"; fi; }

# Under CI=true a missing tool fails the test; elsewhere it skips (77).
need() {
    command -v "$1" >/dev/null && return 0
    echo "$1 command not found"
    [ "${CI:-}" = true ] && exit 1
    exit 77
}

# On exit: a gmpoold still running is killed and $work removed.  The
# sourcing script sets $work, then `trap cleanup EXIT`.
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$work"
}

# Polls (up to 10 s) until "$@" succeeds while gmpoold ($pid) runs; 1 if
# it exited first or never answered.
ready() {
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 200 ] || ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.05
    done
}

# SIGTERM, up to 10 s for a clean exit; returns gmpoold's exit status.
stop() {
    kill -TERM "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    wait "$pid"
    rc=$?
    pid=
    return $rc
}

summary() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
