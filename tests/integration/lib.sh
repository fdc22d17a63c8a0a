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
