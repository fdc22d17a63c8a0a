#!/bin/sh
# The openssl command line against the gmpool provider module: the three
# ways to load it, differential checks against OpenSSL's default provider
# (dgst -sm3, enc sm4-*, mac HMAC-SM3) on big, small and empty files,
# proof that big inputs went to the pool (gmpoolctl status DONE_BYTES),
# settings from the environment and from openssl.cnf, and the errors a
# user sees when the daemon is down or a setting is bad.
#
# Needs GMPOOLD, GMPOOLCTL and GMPOOL_PROVIDER_DIR (the directory holding
# gmpool.so).  GMPOOL_OPENSSL_PRELOAD, when set (sanitizer builds), is put
# in LD_PRELOAD for the openssl command so it can load an ASan module.
set -u
: "${GMPOOLD:?}" "${GMPOOLCTL:?}" "${GMPOOL_PROVIDER_DIR:?}"
. "$(dirname "$0")/lib.sh"

need openssl

DIR=$GMPOOL_PROVIDER_DIR
if [ ! -f "$DIR/gmpool.so" ]; then
    echo "not ok - no provider module at $DIR/gmpool.so"
    echo "0 passed, 1 failed"
    exit 1
fi

work=$(mktemp -d /tmp/gmpt-provcli.XXXXXX)
dir="$work/d"          # the daemon's data directory
f="$work/f"            # test files
mkdir -p "$dir" "$f" "$work/home"
chmod 700 "$dir"
# Nothing from the caller's environment may steer openssl or the provider:
# a stray GMPOOL_* or OPENSSL_CONF would change what is being tested.
export HOME="$work/home"
unset OPENSSL_CONF OPENSSL_MODULES GMPOOL_DATA_DIR XDG_DATA_HOME \
    GMPOOL_SERVER GMPOOL_CREDENTIALS GMPOOL_SHARD_SIZE GMPOOL_WINDOW \
    GMPOOL_PRIORITY GMPOOL_DEADLINE_MS GMPOOL_LOCAL_THRESHOLD
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The openssl command, as small scripts so that `VAR=value $OSSL ...`
# keeps VAR to that one run in every sh.  $OSSL puts the sanitizer runtime
# first when the module was built with one; $REF is the default provider
# alone, the reference.  Every run is bounded (T seconds, default 60) so a
# hang is a failure (exit 124), never a stuck test.
OSSL="$work/ossl"
REF="$work/ref"
cat >"$OSSL" <<'EOS'
#!/bin/sh
[ -n "${GMPOOL_OPENSSL_PRELOAD:-}" ] && export LD_PRELOAD="$GMPOOL_OPENSSL_PRELOAD"
exec timeout "${T:-60}" openssl "$@"
EOS
cat >"$REF" <<'EOS'
#!/bin/sh
cmd=$1
shift
exec timeout 60 openssl "$cmd" -provider default "$@"
EOS
chmod +x "$OSSL" "$REF"

ctl() { "$GMPOOLCTL" --admin "unix:$dir/admin.sock" "$@"; }

up() { [ -S "$dir/s.sock" ] && [ -f "$dir/credentials" ] && ctl ping; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + ($$ * 7 + $1 * 131) % 30000))
}

start() {
    attempt=0
    while [ $attempt -lt 5 ]; do
        attempt=$((attempt + 1))
        port=$(free_port $attempt)
        "$GMPOOLD" --data-dir "$dir" --nodes 2 \
            --listen "unix:$dir/s.sock" --listen "tcp:127.0.0.1:$port" \
            --admin "unix:$dir/admin.sock" 2>>"$work/gmpoold.log" &
        pid=$!
        ready up && return 0
        # it exited (maybe the port was taken: try another) or hangs
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        pid=
    done
    cat "$work/gmpoold.log"
    return 1
}

# Sum of the DONE_BYTES column of the node table in `gmpoolctl status`.
done_bytes() {
    ctl status | awk '
        !c && $1 == "NODE" { for (i = 1; i <= NF; i++) if ($i == "DONE_BYTES") c = i; next }
        c && NF == 0 { exit }
        c { s += $c }
        END { if (!c) exit 1; printf "%.0f\n", s }'
}
# grew BEFORE MIN: DONE_BYTES rises by at least MIN (polled for ~3 s);
# leaves the growth in $growth
grew() {
    i=0
    while :; do
        growth=$(($(done_bytes) - $1))
        [ "$growth" -ge "$2" ] && return 0
        i=$((i + 1))
        [ $i -ge 60 ] && return 1
        sleep 0.05
    done
}
# still BEFORE: no growth (after a short settle)
still() {
    sleep 0.2
    growth=$(($(done_bytes) - $1))
    [ "$growth" -eq 0 ]
}

sm3_of() { sed -n 's/^.*= *//p' "$1"; }
sizeof() { wc -c <"$1" | tr -d ' '; }

start || { echo "not ok - daemon did not start"; echo "0 passed, 1 failed"; exit 1; }
ok "gmpoold started on $dir (tcp port $port)"

export GMPOOL_SERVER="unix:$dir/s.sock"
export GMPOOL_CREDENTIALS="$dir/credentials"

# big: 5 MiB and a few odd bytes; aligned: for -nopad; small: well below
# the default local threshold; empty
head -c 5242893 /dev/urandom >"$f/big"
head -c 4194304 /dev/urandom >"$f/aligned"
head -c 1000 /dev/urandom >"$f/small"
head -c 4096 /dev/urandom >"$f/small_aligned"
: >"$f/empty"
BIG=$(sizeof "$f/big")
SMALL=$(sizeof "$f/small")

# -propquery provider=gmpool: on OpenSSL 3.0 `openssl dgst` fetches its own
# name as a digest before it loads -provider, which activates the default
# provider as a fallback, so without the query SM3 resolves to default.
PA="-provider-path $DIR -provider gmpool -propquery provider=gmpool"

# ---- 1. openssl list -providers ----
# shellcheck disable=SC2086
"$OSSL" list -providers -provider-path "$DIR" -provider gmpool >"$work/list" 2>&1
grep -q "name: gmpool: pooled SM3/SM4" "$work/list" && ok "list: name" || bad "list: name: $(cat "$work/list")"
grep -q "version: 0.1.0" "$work/list" && ok "list: version 0.1.0" || bad "list: version"
grep -q "status: active" "$work/list" && ok "list: status active" || bad "list: status"

want_big=$("$REF" dgst -sm3 "$f/big" | sed 's/^.*= *//')

# ---- 2. three ways to load ----
# (a) -provider-path DIR -provider gmpool
b=$(done_bytes)
# shellcheck disable=SC2086
got=$("$OSSL" dgst -sm3 $PA "$f/big" | sed 's/^.*= *//')
[ -n "$want_big" ] && [ "$got" = "$want_big" ] && ok "load (a) -provider-path: dgst -sm3 matches" || bad "load (a): '$got' != '$want_big'"
grew "$b" "$BIG" && ok "load (a): went to the pool (+$growth)" || bad "load (a): DONE_BYTES +$growth < $BIG"

# not asserted, only reported: where plain -sm3 goes without the query
b=$(done_bytes)
"$OSSL" dgst -sm3 -provider-path "$DIR" -provider gmpool "$f/big" >/dev/null 2>&1
if still "$b"; then
    echo "# note: 'openssl dgst -sm3 -provider gmpool' without -propquery ran on the default provider"
else
    echo "# note: 'openssl dgst -sm3 -provider gmpool' without -propquery ran on gmpool"
fi

# (b) OPENSSL_MODULES=DIR
OPENSSL_MODULES="$DIR" "$OSSL" list -providers -provider gmpool >"$work/list" 2>&1
grep -q "name: gmpool: pooled SM3/SM4" "$work/list" && ok "load (b) OPENSSL_MODULES: list" || bad "load (b): list: $(cat "$work/list")"
b=$(done_bytes)
got=$(OPENSSL_MODULES="$DIR" "$OSSL" dgst -sm3 -provider gmpool -propquery provider=gmpool "$f/big" | sed 's/^.*= *//')
[ "$got" = "$want_big" ] && ok "load (b): dgst -sm3 matches" || bad "load (b): '$got'"
grew "$b" "$BIG" && ok "load (b): went to the pool (+$growth)" || bad "load (b): DONE_BYTES +$growth"

# (c) openssl.cnf with both providers activated and every setting key
write_cnf() { # FILE SERVER LOCAL_THRESHOLD [default_properties]
    {
        echo "openssl_conf = openssl_init"
        echo "[openssl_init]"
        echo "providers = provider_sect"
        [ $# -ge 4 ] && echo "alg_section = algorithm_sect"
        echo "[provider_sect]"
        echo "default = default_sect"
        echo "gmpool = gmpool_sect"
        echo "[default_sect]"
        echo "activate = 1"
        echo "[gmpool_sect]"
        echo "module = $DIR/gmpool.so"
        echo "activate = 1"
        echo "server = $2"
        echo "credentials = $dir/credentials"
        echo "shard_size = 65536"
        echo "window = 8"
        echo "priority = 4"
        echo "deadline = 0"
        echo "local_threshold = $3"
        if [ $# -ge 4 ]; then
            echo "[algorithm_sect]"
            echo "default_properties = $4"
        fi
    } >"$1"
}
write_cnf "$work/gmpool.cnf" "unix:$dir/s.sock" 65536
write_cnf "$work/prefer.cnf" "unix:$dir/s.sock" 65536 "?provider=gmpool"
(
    unset GMPOOL_SERVER GMPOOL_CREDENTIALS # the config alone
    export OPENSSL_CONF="$work/gmpool.cnf"
    "$OSSL" list -providers >"$work/list" 2>&1
    grep -q "name: gmpool: pooled SM3/SM4" "$work/list" && grep -q "OpenSSL Default Provider" "$work/list"
) && ok "load (c) openssl.cnf: list shows default and gmpool" || bad "load (c): list: $(cat "$work/list")"
b=$(done_bytes)
got=$(unset GMPOOL_SERVER GMPOOL_CREDENTIALS; OPENSSL_CONF="$work/gmpool.cnf" "$OSSL" dgst -sm3 -propquery provider=gmpool "$f/big" | sed 's/^.*= *//')
[ "$got" = "$want_big" ] && ok "load (c): dgst -sm3 -propquery provider=gmpool matches" || bad "load (c): '$got'"
grew "$b" "$BIG" && ok "load (c): settings from the provider section reach the pool (+$growth)" || bad "load (c): DONE_BYTES +$growth"
# default_properties = ?provider=gmpool: plain commands prefer gmpool,
# everything gmpool lacks still comes from default
b=$(done_bytes)
got=$(unset GMPOOL_SERVER GMPOOL_CREDENTIALS; OPENSSL_CONF="$work/prefer.cnf" "$OSSL" dgst -sm3 "$f/big" | sed 's/^.*= *//')
[ "$got" = "$want_big" ] && ok "load (c): default_properties ?provider=gmpool: plain dgst -sm3 matches" || bad "load (c) prefer: '$got'"
grew "$b" "$BIG" && ok "load (c): plain dgst -sm3 went to the pool (+$growth)" || bad "load (c) prefer: DONE_BYTES +$growth"
# the same preference on the command line, with default loaded beside
# gmpool (needed for e.g. -pbkdf2)
b=$(done_bytes)
got=$("$OSSL" dgst -sm3 -provider-path "$DIR" -provider gmpool -provider default -propquery "?provider=gmpool" "$f/big" | sed 's/^.*= *//')
[ "$got" = "$want_big" ] && grew "$b" "$BIG" && ok "-provider gmpool -provider default -propquery ?provider=gmpool: dgst pooled" || bad "?provider=gmpool on the command line: '$got' +$growth"
b=$(done_bytes)
"$OSSL" enc -e -sm4-cbc -pass pass:secret -pbkdf2 -provider-path "$DIR" -provider gmpool -provider default -propquery "?provider=gmpool" -in "$f/big" -out "$work/c.prov" &&
    "$REF" enc -d -sm4-cbc -pass pass:secret -pbkdf2 -in "$work/c.prov" -out "$work/p.def" && cmp -s "$work/p.def" "$f/big" &&
    grew "$b" $((BIG / 2)) && ok "enc -pbkdf2 with gmpool and default: round trip, pooled" || bad "enc -pbkdf2: +$growth"
got=$(OPENSSL_CONF="$work/prefer.cnf" "$OSSL" dgst -sha256 "$f/small" | sed 's/^.*= *//')
[ "$got" = "$("$REF" dgst -sha256 "$f/small" | sed 's/^.*= *//')" ] && ok "load (c): SHA-256 still from default" || bad "load (c): sha256 '$got'"
# the environment overrides the provider section
write_cnf "$work/nowhere.cnf" "unix:$work/nowhere.sock" 65536
got=$(OPENSSL_CONF="$work/nowhere.cnf" "$OSSL" dgst -sm3 -propquery provider=gmpool "$f/big" 2>/dev/null | sed 's/^.*= *//')
[ "$got" = "$want_big" ] && ok "GMPOOL_SERVER overrides server in the section" || bad "env over config: '$got'"
got=$(unset GMPOOL_SERVER; OPENSSL_CONF="$work/nowhere.cnf" "$OSSL" dgst -sm3 -propquery provider=gmpool "$f/big" 2>"$work/err" | sed 's/^.*= *//')
[ -z "$got" ] && grep -q "nowhere.sock" "$work/err" && ok "server from the section is used without the env" || bad "config server: '$got' $(cat "$work/err")"
write_cnf "$work/t0.cnf" "unix:$dir/s.sock" 0
b=$(done_bytes)
got=$(OPENSSL_CONF="$work/t0.cnf" "$OSSL" dgst -sm3 -propquery provider=gmpool "$f/small" | sed 's/^.*= *//')
[ "$got" = "$("$REF" dgst -sm3 "$f/small" | sed 's/^.*= *//')" ] && grew "$b" "$SMALL" && ok "local_threshold = 0 in the section pools a small file" || bad "config local_threshold 0: +$growth"
b=$(done_bytes)
GMPOOL_LOCAL_THRESHOLD=1048576 OPENSSL_CONF="$work/t0.cnf" "$OSSL" dgst -sm3 -propquery provider=gmpool "$f/small" >/dev/null
still "$b" && ok "GMPOOL_LOCAL_THRESHOLD overrides local_threshold in the section" || bad "env threshold over config: +$growth"

# the shipped examples/openssl.cnf, as is (module found via OPENSSL_MODULES)
# and with every setting key uncommented at its shown value
cnf=${GMPOOL_EXAMPLE_CNF:-$(dirname "$0")/../../examples/openssl.cnf}
if [ -f "$cnf" ]; then
    b=$(done_bytes)
    got=$(OPENSSL_MODULES="$DIR" OPENSSL_CONF="$cnf" "$OSSL" dgst -sm3 "$f/big" | sed 's/^.*= *//')
    [ "$got" = "$want_big" ] && grew "$b" "$BIG" && ok "examples/openssl.cnf: plain dgst -sm3 pooled" || bad "examples/openssl.cnf: '$got' +$growth"
    sed -e 's/^# *\(server\|credentials\|shard_size\|window\|priority\|deadline\|local_threshold\) = /\1 = /' \
        -e "s|^server = .*|server = unix:$dir/s.sock|" \
        -e "s|^credentials = .*|credentials = $dir/credentials|" "$cnf" >"$work/example.cnf"
    n=$(grep -cE '^(server|credentials|shard_size|window|priority|deadline|local_threshold) = ' "$work/example.cnf")
    b=$(done_bytes)
    got=$(unset GMPOOL_SERVER GMPOOL_CREDENTIALS; OPENSSL_MODULES="$DIR" OPENSSL_CONF="$work/example.cnf" "$OSSL" dgst -sm3 -propquery provider=gmpool "$f/big" | sed 's/^.*= *//')
    [ "$n" -eq 7 ] && [ "$got" = "$want_big" ] && grew "$b" "$BIG" && ok "examples/openssl.cnf: all 7 keys set as shown, pooled" || bad "examples/openssl.cnf uncommented: $n keys, '$got' +$growth"
else
    bad "examples/openssl.cnf not found at $cnf"
fi

# ---- 3. dgst -sm3 = default, every file ----
for x in big aligned small small_aligned empty; do
    want=$("$REF" dgst -sm3 "$f/$x" | sed 's/^.*= *//')
    # shellcheck disable=SC2086
    got=$("$OSSL" dgst -sm3 $PA "$f/$x" | sed 's/^.*= *//')
    [ -n "$want" ] && [ "$got" = "$want" ] && ok "dgst -sm3 $x = default" || bad "dgst -sm3 $x: '$got' != '$want'"
done
# from stdin, through a pipe
# shellcheck disable=SC2086
got=$("$OSSL" dgst -sm3 $PA <"$f/big" | sed 's/^.*= *//')
[ "$got" = "$want_big" ] && ok "dgst -sm3 from stdin" || bad "dgst -sm3 stdin: '$got'"

# ---- 4. enc, both directions, every mode ----
K=0123456789abcdeffedcba9876543210
IV=0f0e0d0c0b0a09080706050403020100
enc_check() { # MODE FILE [-nopad]
    m=$1
    x=$2
    shift 2
    ivarg="-iv $IV"
    [ "$m" = sm4-ecb ] && ivarg=
    tag="$m $x${1:+ $1}"
    # shellcheck disable=SC2086
    "$REF" enc -e -$m -K $K $ivarg "$@" -in "$f/$x" -out "$work/c.def" || { bad "$tag: default provider encrypt"; return; }
    # shellcheck disable=SC2086
    "$OSSL" enc -e -$m -K $K $ivarg "$@" $PA -in "$f/$x" -out "$work/c.prov" 2>"$work/err" &&
        cmp -s "$work/c.prov" "$work/c.def" && ok "$tag: encrypt = default" || bad "$tag: encrypt differs $(head -c 300 "$work/err")"
    # shellcheck disable=SC2086
    "$OSSL" enc -d -$m -K $K $ivarg "$@" $PA -in "$work/c.def" -out "$work/p.prov" 2>"$work/err" &&
        cmp -s "$work/p.prov" "$f/$x" && ok "$tag: provider decrypts default's ciphertext" || bad "$tag: provider decrypt $(head -c 300 "$work/err")"
    # shellcheck disable=SC2086
    "$REF" enc -d -$m -K $K $ivarg "$@" -in "$work/c.prov" -out "$work/p.def" 2>/dev/null &&
        cmp -s "$work/p.def" "$f/$x" && ok "$tag: default decrypts provider's ciphertext" || bad "$tag: default decrypt"
}
for m in sm4-ecb sm4-cbc sm4-ctr sm4-ofb sm4-cfb; do
    for x in big small empty; do
        enc_check "$m" "$x"
    done
done
for m in sm4-ecb sm4-cbc; do
    enc_check "$m" aligned -nopad
    enc_check "$m" small_aligned -nopad
    # -nopad on a length that is not a multiple of 16 fails, as with default
    # shellcheck disable=SC2086
    ivarg="-iv $IV"
    [ "$m" = sm4-ecb ] && ivarg=
    # shellcheck disable=SC2086
    "$OSSL" enc -e -$m -K $K $ivarg -nopad $PA -in "$f/big" -out "$work/c.prov" 2>"$work/err"
    [ $? -ne 0 ] && ok "$m -nopad on an unaligned file fails" || bad "$m -nopad unaligned accepted"
done
# bad padding is refused: a last plaintext block ending in 0x00
head -c 4096 /dev/zero >"$f/zeros"
"$REF" enc -e -sm4-cbc -K $K -iv $IV -nopad -in "$f/zeros" -out "$work/badpad"
for t in "" 0; do
    # shellcheck disable=SC2086
    env ${t:+GMPOOL_LOCAL_THRESHOLD=$t} "$OSSL" enc -d -sm4-cbc -K $K -iv $IV $PA -in "$work/badpad" -out "$work/p.prov" 2>"$work/err"
    rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "bad decrypt" "$work/err" && ok "sm4-cbc: bad padding gives 'bad decrypt'${t:+ (pooled)}" || bad "bad padding${t:+ (pooled)}: rc $rc $(cat "$work/err")"
done
# a big cipher job goes to the pool (all but the local head)
b=$(done_bytes)
# shellcheck disable=SC2086
"$OSSL" enc -e -sm4-ctr -K $K -iv $IV $PA -in "$f/big" -out "$work/c.prov"
grew "$b" $((BIG / 2)) && ok "enc big: went to the pool (+$growth)" || bad "enc big: DONE_BYTES +$growth"
b=$(done_bytes)
# shellcheck disable=SC2086
"$OSSL" enc -e -sm4-cbc -K $K -iv $IV $PA -in "$f/small" -out "$work/c.prov"
still "$b" && ok "enc small: stayed in-process" || bad "enc small: DONE_BYTES +$growth"

# ---- 5. HMAC-SM3 ----
HK=00112233445566778899aabbccddeeff0011223344556677
for x in big small empty; do
    want=$("$REF" mac -digest SM3 -macopt hexkey:$HK -in "$f/$x" HMAC)
    b=$(done_bytes)
    # shellcheck disable=SC2086
    got=$("$OSSL" mac -digest SM3 -macopt hexkey:$HK $PA -in "$f/$x" HMAC)
    [ -n "$want" ] && [ "$got" = "$want" ] && ok "mac HMAC-SM3 $x = default" || bad "mac $x: '$got' != '$want'"
    if [ $x = big ]; then
        grew "$b" "$BIG" && ok "mac big: went to the pool (+$growth)" || bad "mac big: DONE_BYTES +$growth"
    elif [ $x = small ]; then
        still "$b" && ok "mac small: stayed in-process" || bad "mac small: DONE_BYTES +$growth"
    fi
done
# keys longer than SM3's 64-byte block are hashed first (RFC 2104)
for kl in 64 65 100 129 200; do
    LK=$(head -c $kl /dev/urandom | od -v -An -tx1 | tr -d ' \n')
    for x in big small; do
        want=$("$REF" mac -digest SM3 -macopt hexkey:"$LK" -in "$f/$x" HMAC)
        # shellcheck disable=SC2086
        got=$("$OSSL" mac -digest SM3 -macopt hexkey:"$LK" $PA -in "$f/$x" HMAC)
        [ -n "$want" ] && [ "$got" = "$want" ] && ok "mac $kl-byte key $x = default" || bad "mac $kl-byte key $x: '$got' != '$want'"
    done
done
# the pool refuses empty HMAC keys ("HMAC needs a key"); the provider
# must say so, not fail later with "call out of order"
# shellcheck disable=SC2086
"$OSSL" mac -digest SM3 -macopt key: $PA -in "$f/small" HMAC >/dev/null 2>"$work/err"
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -qi "key" "$work/err" && ! grep -q "call out of order" "$work/err" &&
    ok "mac: an empty key is refused with a key error" || bad "mac empty key: rc $rc $(cat "$work/err")"
# shellcheck disable=SC2086
"$OSSL" mac -digest SHA256 -macopt hexkey:$HK $PA -in "$f/small" HMAC >/dev/null 2>"$work/err"
[ $? -ne 0 ] && grep -q "SM3 only" "$work/err" && ok "mac: a digest other than SM3 is refused" || bad "mac SHA256: $(cat "$work/err")"

# ---- 6. the pool's own count ----
b=$(done_bytes)
# shellcheck disable=SC2086
"$OSSL" dgst -sm3 $PA "$f/big" >/dev/null
grew "$b" "$BIG" && ok "dgst big: DONE_BYTES +$growth >= $BIG" || bad "dgst big: DONE_BYTES +$growth < $BIG"
b=$(done_bytes)
# shellcheck disable=SC2086
"$OSSL" dgst -sm3 $PA "$f/small" >/dev/null
still "$b" && ok "dgst small: DONE_BYTES unchanged" || bad "dgst small: DONE_BYTES +$growth"
# the TCP listener too
b=$(done_bytes)
# shellcheck disable=SC2086
got=$(GMPOOL_SERVER="tcp:127.0.0.1:$port" "$OSSL" dgst -sm3 $PA "$f/big" | sed 's/^.*= *//')
[ "$got" = "$want_big" ] && grew "$b" "$BIG" && ok "dgst over tcp:127.0.0.1:$port" || bad "dgst over tcp: '$got' +$growth"

# ---- 8. GMPOOL_LOCAL_THRESHOLD=0: even tiny inputs go to the pool ----
want=$("$REF" dgst -sm3 "$f/small" | sed 's/^.*= *//')
b=$(done_bytes)
# shellcheck disable=SC2086
got=$(GMPOOL_LOCAL_THRESHOLD=0 "$OSSL" dgst -sm3 $PA "$f/small" | sed 's/^.*= *//')
[ "$got" = "$want" ] && ok "threshold 0: dgst small matches" || bad "threshold 0: dgst '$got'"
grew "$b" "$SMALL" && ok "threshold 0: dgst small pooled (+$growth)" || bad "threshold 0: dgst DONE_BYTES +$growth"
want=$("$REF" mac -digest SM3 -macopt hexkey:$HK -in "$f/small" HMAC)
b=$(done_bytes)
# shellcheck disable=SC2086
got=$(GMPOOL_LOCAL_THRESHOLD=0 "$OSSL" mac -digest SM3 -macopt hexkey:$HK $PA -in "$f/small" HMAC)
[ "$got" = "$want" ] && grew "$b" "$SMALL" && ok "threshold 0: mac small matches, pooled (+$growth)" || bad "threshold 0: mac '$got' +$growth"
for m in sm4-cbc sm4-ctr sm4-cfb; do
    "$REF" enc -e -$m -K $K -iv $IV -in "$f/small" -out "$work/c.def"
    b=$(done_bytes)
    # shellcheck disable=SC2086
    GMPOOL_LOCAL_THRESHOLD=0 "$OSSL" enc -e -$m -K $K -iv $IV $PA -in "$f/small" -out "$work/c.prov"
    cmp -s "$work/c.prov" "$work/c.def" && grew "$b" "$SMALL" && ok "threshold 0: $m small matches, pooled (+$growth)" || bad "threshold 0: $m +$growth"
    # shellcheck disable=SC2086
    GMPOOL_LOCAL_THRESHOLD=0 "$OSSL" enc -d -$m -K $K -iv $IV $PA -in "$work/c.def" -out "$work/p.prov"
    check "threshold 0: $m small decrypts" cmp "$work/p.prov" "$f/small"
done

# ---- 7. failures ----
# a bad setting: the provider does not load, and says why
# shellcheck disable=SC2086
GMPOOL_SHARD_SIZE=5 "$OSSL" dgst -sm3 $PA "$f/small" >/dev/null 2>"$work/err"
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "unable to load provider gmpool" "$work/err" && ok "GMPOOL_SHARD_SIZE=5: provider not loaded" || bad "bad shard size: rc $rc $(cat "$work/err")"
grep -q "bad gmpool provider setting" "$work/err" && ok "GMPOOL_SHARD_SIZE=5: reason 'bad gmpool provider setting'" || bad "GMPOOL_SHARD_SIZE=5: no reason string in: $(cat "$work/err")"
grep -q "GMPOOL_SHARD_SIZE" "$work/err" && ok "GMPOOL_SHARD_SIZE=5: names the variable" || bad "bad shard size: variable not named"
for bad_env in GMPOOL_WINDOW=0 GMPOOL_PRIORITY=8 GMPOOL_LOCAL_THRESHOLD=-1 GMPOOL_DEADLINE_MS=x; do
    # shellcheck disable=SC2086
    env "$bad_env" "$OSSL" list -providers -provider-path "$DIR" -provider gmpool >/dev/null 2>&1 &&
        bad "$bad_env accepted" || ok "$bad_env refused"
done
# no daemon at the address
# shellcheck disable=SC2086
T=20 GMPOOL_SERVER="unix:$work/nowhere.sock" "$OSSL" dgst -sm3 $PA "$f/big" >/dev/null 2>"$work/err"
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok "no daemon at the address: dgst fails (rc $rc)" || bad "no daemon at the address: rc $rc"
grep -q "gmpool pool call failed" "$work/err" && grep -q "cannot reach gmpoold" "$work/err" && ok "no daemon at the address: reason strings" || bad "no daemon: $(cat "$work/err")"

# credentials the daemon refuses: a clear error, not a wrong digest
sed 's/^secret = .*/secret = 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff/' \
    "$dir/credentials" >"$work/wrong.cred"
chmod 600 "$work/wrong.cred"
# shellcheck disable=SC2086
T=20 GMPOOL_CREDENTIALS="$work/wrong.cred" "$OSSL" dgst -sm3 $PA "$f/big" >"$work/out" 2>"$work/err"
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ ! -s "$work/out" ] && ok "wrong credentials: dgst fails with no output (rc $rc)" || bad "wrong credentials: rc $rc"
grep -q "gmpool pool call failed" "$work/err" && grep -q "authentication failed" "$work/err" && ok "wrong credentials: reason strings" || bad "wrong credentials: $(cat "$work/err")"

before=$(sha256sum <"$dir/credentials")
stop && ok "SIGTERM: gmpoold exits 0" || bad "SIGTERM exit status"
# shellcheck disable=SC2086
T=20 "$OSSL" dgst -sm3 $PA "$f/big" >/dev/null 2>"$work/err"
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok "daemon stopped: dgst big fails, no hang (rc $rc)" || bad "daemon stopped: dgst rc $rc"
grep -q "gmpool pool call failed" "$work/err" && grep -q "cannot reach gmpoold" "$work/err" && ok "daemon stopped: reason strings" || bad "daemon stopped: $(cat "$work/err")"
# shellcheck disable=SC2086
T=20 "$OSSL" enc -e -sm4-cbc -K $K -iv $IV $PA -in "$f/big" -out "$work/c.prov" 2>"$work/err"
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "cannot reach gmpoold" "$work/err" && ok "daemon stopped: enc big fails" || bad "daemon stopped: enc rc $rc $(cat "$work/err")"
# shellcheck disable=SC2086
got=$("$OSSL" dgst -sm3 $PA "$f/small" | sed 's/^.*= *//')
[ "$got" = "$("$REF" dgst -sm3 "$f/small" | sed 's/^.*= *//')" ] && ok "daemon stopped: small input still served in-process" || bad "daemon stopped: small '$got'"

start && ok "gmpoold restarted" || { bad "restart"; echo "$pass passed, $fail failed"; exit 1; }
[ "$(sha256sum <"$dir/credentials")" = "$before" ] && ok "restart keeps the credentials" || bad "credentials rewritten"
b=$(done_bytes)
# shellcheck disable=SC2086
got=$("$OSSL" dgst -sm3 $PA "$f/big" | sed 's/^.*= *//')
[ "$got" = "$want_big" ] && grew "$b" "$BIG" && ok "after restart: dgst big succeeds in the pool" || bad "after restart: '$got' +$growth"

stop && ok "SIGTERM: gmpoold exits 0 at the end" || bad "final SIGTERM exit status"

summary
