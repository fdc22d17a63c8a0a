#!/bin/sh
# gmpool-sim drives the TTSA core: at 30 000 tasks with seed 1 TTSA's mean
# completion time beats NRMTTSA's (R13), runs repeat exactly for one seed,
# and the chart step renders PNGs (a missing gnuplot fails under CI=true).
set -u
: "${GMPOOL_SIM:?}"
fail=0
ok() { echo "ok - $1"; }
bad() { fail=1; echo "not ok - $1"; }
work=$(mktemp -d /tmp/gmpt-sim.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$GMPOOL_SIM" -n 30000 -s 1 -v ttsa,nrmttsa >"$work/a.csv" || bad "sim runs"
cat "$work/a.csv"
ttsa=$(awk -F, '$2 == "TTSA" { print $3 }' "$work/a.csv")
nrm=$(awk -F, '$2 == "NRMTTSA" { print $3 }' "$work/a.csv")
if [ -n "$ttsa" ] && [ -n "$nrm" ] &&
    awk -v a="$ttsa" -v b="$nrm" 'BEGIN { exit !(a < b) }'; then
    ok "TTSA mean completion $ttsa ms < NRMTTSA $nrm ms"
else
    bad "TTSA mean completion ($ttsa) < NRMTTSA ($nrm)"
fi

"$GMPOOL_SIM" -n 3000 -s 7 -v ttsa | cut -d, -f1-13 >"$work/b1"
"$GMPOOL_SIM" -n 3000 -s 7 -v ttsa | cut -d, -f1-13 >"$work/b2"
cmp -s "$work/b1" "$work/b2" && ok "same seed, same figures" ||
    bad "same seed, same figures"

"$GMPOOL_SIM" -n 0 >/dev/null 2>&1
[ $? -eq 2 ] && ok "bad -n exits 2" || bad "bad -n exits 2"
"$GMPOOL_SIM" -v bogus >/dev/null 2>&1
[ $? -eq 2 ] && ok "bad -v exits 2" || bad "bad -v exits 2"

if command -v gnuplot >/dev/null 2>&1; then
    if "$GMPOOL_SIM" -e interval -n 1000 -v ttsa,nrmttsa -o "$work/out" -c \
        >/dev/null && [ -s "$work/out/interval.csv" ] &&
        [ -s "$work/out/interval_ct.png" ]; then
        ok "CSV and PNG charts written"
    else
        bad "CSV and PNG charts written"
    fi
elif [ "${CI:-}" = true ]; then
    bad "gnuplot missing (CI=true): run scripts/deps.sh"
else
    echo "ok - charts skipped: gnuplot not installed"
fi
exit $fail
