#!/bin/sh
# gmpool-bench --quick as a smoke test: it starts and stops its own
# gmpoold, every pooled output matches OpenSSL's, the CSV files are
# well-formed (columns, row counts, positive figures) and the charts are
# drawn.  No timing is asserted: speed is the full run's business
# (docs/performance.md).
set -u
: "${GMPOOL_BENCH:?}" "${GMPOOLD:?}"
. "$(dirname "$0")/lib.sh"
work=$(mktemp -d /tmp/gmpt-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$GMPOOL_BENCH" --quick --no-progress -o "$work/out" >"$work/stdout" \
    2>"$work/stderr"
rc=$?
cat "$work/stdout"
[ $rc -eq 0 ] && ok "quick run exits 0" || { bad "quick run exits 0"; cat "$work/stderr"; }
grep -q "all outputs verified against in-process OpenSSL" "$work/stdout" &&
    ok "pooled outputs verified" || bad "pooled outputs verified"

# The daemon it started is gone, and so is its data directory.
dpid=$(sed -n 's/.*started .* pid \([0-9]*\) in .*/\1/p' "$work/stderr")
ddir=$(sed -n 's/.*started .* pid [0-9]* in \(.*\)$/\1/p' "$work/stderr")
if [ -n "$dpid" ] && ! kill -0 "$dpid" 2>/dev/null && [ -n "$ddir" ] &&
    [ ! -e "$ddir" ]; then
    ok "its gmpoold ($dpid) stopped and $ddir removed"
else
    bad "its gmpoold stopped and data dir removed (pid '$dpid' dir '$ddir')"
fi

# header, rows, and numeric columns that must be > 0 (1-based)
check_csv() {
    f=$work/out/$1 header=$2 rows=$3 cols=$4
    if [ "$(head -1 "$f" 2>/dev/null)" != "$header" ]; then
        bad "$1 header"
        return
    fi
    n=$(($(wc -l <"$f") - 1))
    [ "$n" -eq "$rows" ] && ok "$1 has $rows rows" ||
        bad "$1 has $rows rows (got $n)"
    nf=$(echo "$header" | awk -F, '{ print NF }')
    awk -F, -v nf="$nf" -v cols="$cols" 'NR > 1 {
        if (NF != nf) exit 1
        n = split(cols, c, " ")
        for (i = 1; i <= n; i++)
            if ($c[i] !~ /^[0-9]+(\.[0-9]+)?$/ || $c[i] + 0 <= 0) exit 1
    }' "$f" && ok "$1 fields well-formed" || bad "$1 fields well-formed"
}

# --quick: 4 algorithms x payloads 1,4 MB x shards 16,64 KB, 1 rep, 4 modes;
# concurrency 2 algorithms x threads 1,4; small jobs 2 algorithms x 2 sizes
# x threads 1,4 x engine, pool and busy (beside bulk work).
check_csv single.csv "alg,impl,payload_mb,shard_kb,engine_mb_s,openssl_mb_s,sync_mb_s,async_mb_s,sync_ratio,async_ratio,async_ratio_min,async_ratio_max,async_vs_openssl,async_cpu_ratio" 16 "3 4 5 6 7 8 9 10 11 12 13 14"
check_csv single_raw.csv "alg,impl,payload_mb,shard_kb,rep,mode,mb_s,cpu_client_ms,cpu_daemon_ms" 64 "3 4 7"
check_csv concurrency.csv "alg,threads,engine_mb_s,openssl_mb_s,sync_mb_s,async_mb_s,sync_ratio,async_ratio,jain_engine,jain_sync,jain_async" 4 "2 3 4 5 6 7 8 9 10 11"
check_csv concurrency_raw.csv "alg,threads,rep,mode,aggregate_mb_s,jain,min_thread_mb_s,max_thread_mb_s,cpu_ms" 16 "2 5 6 7 8 9"
check_csv small.csv "alg,bytes,threads,mode,ops_s,p50_us,p99_us" 24 "2 3 5 6 7"
[ "$(grep -c ',busy,' "$work/out/small.csv")" -eq 8 ] &&
    ok "small jobs measured beside bulk work" ||
    bad "small jobs measured beside bulk work"
awk -F, 'NR > 1 && ($9 > 1.0001 || $10 > 1.0001 || $11 > 1.0001) { exit 1 }' \
    "$work/out/concurrency.csv" && ok "Jain indices in (0, 1]" ||
    bad "Jain indices in (0, 1]"
grep -q "^sm4-ctr,libgcrypt," "$work/out/single.csv" &&
    ok "the engine's library is reported" || bad "the engine's library is reported"

if command -v gnuplot >/dev/null 2>&1; then
    for p in single_sm3 single_sm4-cbc-enc single_sm4-cbc-dec single_sm4-ctr \
        concurrency_sm3 concurrency_sm4-cbc-enc; do
        [ -s "$work/out/$p.png" ] && ok "$p.png drawn" || bad "$p.png drawn"
    done
elif [ "${CI:-}" = true ]; then
    bad "gnuplot missing (CI=true): run scripts/deps.sh"
fi

"$GMPOOL_BENCH" --payloads 0 >/dev/null 2>&1
[ $? -eq 2 ] && ok "bad option exits 2" || bad "bad option exits 2"
summary
