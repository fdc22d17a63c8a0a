#!/bin/sh
# The real command-line tools against a daemon on its embedded defaults:
# gmpool vs the openssl command, gmpoolctl's admin commands, file modes,
# the example program, clean shutdown and restart.
set -u
: "${GMPOOLD:?}" "${GMPOOLCTL:?}" "${GMPOOL_TOOL:?}" "${GMPOOL_EXAMPLE:?}"
. "$(dirname "$0")/lib.sh"

need openssl

work=$(mktemp -d /tmp/gmpt-tools.XXXXXX)
export HOME="$work/home"
unset GMPOOL_DATA_DIR XDG_DATA_HOME GMPOOL_SERVER GMPOOL_CREDENTIALS
mkdir -p "$HOME"
data="$HOME/.local/share/gmpool"
trap cleanup EXIT

start() {
    "$GMPOOLD" "$@" 2>>"$work/gmpoold.log" &
    pid=$!
    ready "$GMPOOL_TOOL" ping || { cat "$work/gmpoold.log"; return 1; }
}

check "gmpoold --help" "$GMPOOLD" --help
"$GMPOOLD" --no-such-flag >/dev/null 2>&1
[ $? -eq 2 ] && ok "unknown flag exits 2" || bad "unknown flag exits 2"
printf '[server]\nbogus = 1\n' >"$work/bad.ini"
msg=$("$GMPOOLD" --config "$work/bad.ini" 2>&1)
case $msg in *"bad.ini:2"*) ok "bad config names file:line" ;; *) bad "bad config: $msg" ;; esac

start || { echo "daemon did not start"; exit 1; }
ok "started on embedded defaults"
for f in credentials master.key gmpool.db gmpoold.sock admin.sock; do
    mode=$(stat -c %a "$data/$f")
    [ "$mode" = 600 ] && ok "$f mode 0600" || bad "$f mode $mode"
done
[ "$(stat -c %a "$data")" = 700 ] && ok "data dir 0700" || bad "data dir mode"

head -c 5000011 /dev/urandom >"$work/in"
want=$(openssl dgst -sm3 -r "$work/in" | cut -d' ' -f1)
got=$("$GMPOOL_TOOL" sm3 "$work/in" | cut -d' ' -f1)
[ "$want" = "$got" ] && ok "gmpool sm3 = openssl dgst -sm3" || bad "sm3 $got != $want"
got=$("$GMPOOL_TOOL" --shard 4096 sm3 - <"$work/in" | cut -d' ' -f1)
[ "$want" = "$got" ] && ok "sm3 from stdin, 4 KiB shards" || bad "sm3 stdin"

K=0123456789abcdeffedcba9876543210
IV=0f0e0d0c0b0a09080706050403020100
for m in sm4-ecb sm4-cbc sm4-ctr sm4-ofb sm4-cfb; do
    ivarg="-iv $IV"
    [ $m = sm4-ecb ] && ivarg=
    # shellcheck disable=SC2086
    "$GMPOOL_TOOL" enc -c $m -K $K $ivarg -in "$work/in" -out "$work/c.pool"
    # shellcheck disable=SC2086
    openssl enc -$m -K $K $ivarg -in "$work/in" -out "$work/c.ossl"
    check "$m encrypt = openssl enc" cmp "$work/c.pool" "$work/c.ossl"
    # shellcheck disable=SC2086
    "$GMPOOL_TOOL" enc -d -c $m -K $K $ivarg -in "$work/c.ossl" -out "$work/p"
    check "$m decrypt of openssl's ciphertext" cmp "$work/p" "$work/in"
done

out=$("$GMPOOL_TOOL" rand 32)
[ ${#out} -eq 64 ] && ok "rand 32" || bad "rand: $out"

# admin
check "gmpoolctl ping" "$GMPOOLCTL" ping
check "tenant add bob" "$GMPOOLCTL" -o "$work/bob.cred" tenant add bob
[ "$(stat -c %a "$work/bob.cred")" = 600 ] && ok "bob.cred mode 0600" || bad "bob.cred mode"
"$GMPOOLCTL" tenant add bob >/dev/null 2>"$work/err"
[ $? -ne 0 ] && grep -q "already exists" "$work/err" && ok "duplicate tenant refused" || bad "duplicate tenant"
"$GMPOOLCTL" tenant list | grep -q "^bob " && ok "tenant list shows bob" || bad "tenant list"
got=$(GMPOOL_CREDENTIALS="$work/bob.cred" "$GMPOOL_TOOL" sm3 "$work/in" | cut -d' ' -f1)
[ "$want" = "$got" ] && ok "bob hashes with his credentials" || bad "bob sm3"
bobvcm=$("$GMPOOLCTL" tenant list | awk '$1 == "bob" {print $2}')
check "node assign 1 to bob's VCM" "$GMPOOLCTL" node assign 1 "$bobvcm"
"$GMPOOLCTL" node list | awk -v v="$bobvcm" '$1 == 1 && $2 == v' | grep -q . && ok "node list shows the owner" || bad "node owner"
got=$(GMPOOL_CREDENTIALS="$work/bob.cred" "$GMPOOL_TOOL" sm3 "$work/in" | cut -d' ' -f1)
[ "$want" = "$got" ] && ok "bob served by his own node" || bad "bob on node 1"
got=$("$GMPOOL_TOOL" sm3 "$work/in" | cut -d' ' -f1)
[ "$want" = "$got" ] && ok "default served by the free node" || bad "default after assign"
check "node unassign 1" "$GMPOOLCTL" node unassign 1
check "node down 1" "$GMPOOLCTL" node down 1
"$GMPOOLCTL" node list | awk '$1 == 1 && $3 == "down"' | grep -q . && ok "node 1 shown down" || bad "node 1 status"
got=$("$GMPOOL_TOOL" sm3 "$work/in" | cut -d' ' -f1)
[ "$want" = "$got" ] && ok "served by node 2 while node 1 is down" || bad "node 1 down"
check "node down 2" "$GMPOOLCTL" node down 2
"$GMPOOL_TOOL" sm3 "$work/in" >/dev/null 2>"$work/err"
[ $? -ne 0 ] && grep -q "no compute node in service" "$work/err" && ok "no node up: clear error" || bad "every node down: $(cat "$work/err")"
check "node up 1" "$GMPOOLCTL" node up 1
check "node up 2" "$GMPOOLCTL" node up 2
got=$("$GMPOOL_TOOL" sm3 "$work/in" | cut -d' ' -f1)
[ "$want" = "$got" ] && ok "back in service" || bad "node up" 
"$GMPOOLCTL" node assign 99 1 >/dev/null 2>&1 && bad "unknown node accepted" || ok "unknown node refused"
check "queue threshold" "$GMPOOLCTL" queue threshold 0 10 50
"$GMPOOLCTL" queue show | awk '$1 == 0 && $2 == 10 && $3 == 50' | grep -q . && ok "queue show" || bad "queue show"
"$GMPOOLCTL" queue threshold 9 1 >/dev/null 2>&1 && bad "level 9 accepted" || ok "level 9 refused"
"$GMPOOLCTL" frobnicate >/dev/null 2>&1 && bad "bad command accepted" || ok "bad command refused"
"$GMPOOLCTL" status >"$work/status"
grep -q "BYTES/s" "$work/status" && grep -q "HEARTBEAT_AGE_MS" "$work/status" && ok "status table" || bad "status"
check "tenant remove bob" "$GMPOOLCTL" tenant remove bob
GMPOOL_CREDENTIALS="$work/bob.cred" "$GMPOOL_TOOL" sm3 "$work/in" >/dev/null 2>"$work/err"
grep -q "authentication failed" "$work/err" && ok "removed tenant refused" || bad "removed tenant: $(cat "$work/err")"

got=$("$GMPOOL_EXAMPLE" "$work/in" | head -1 | cut -d' ' -f1)
[ "$want" = "$got" ] && ok "examples/sm3_sm4 runs" || bad "example: $got"

before=$(sha256sum "$data/credentials")
stop && ok "SIGTERM: clean exit" || bad "SIGTERM exit status"
[ ! -e "$data/gmpoold.sock" ] && ok "socket removed at exit" || bad "socket left behind"
start || bad "restart"
[ "$(sha256sum "$data/credentials")" = "$before" ] && ok "restart keeps the credentials" || bad "credentials rewritten"
got=$("$GMPOOL_TOOL" sm3 "$work/in" | cut -d' ' -f1)
[ "$want" = "$got" ] && ok "works after restart" || bad "after restart"
"$GMPOOLD" >/dev/null 2>"$work/err2"
[ $? -ne 0 ] && ok "second daemon on the same sockets refused" || bad "second daemon started"
"$GMPOOL_TOOL" ping >/dev/null && ok "first daemon unharmed" || bad "first daemon lost its socket"
stop || bad "second stop"

summary
