#!/bin/sh
# The PKCS#11 module through the tools operators use: pkcs11-tool (slots,
# mechanisms, SM3 and SHA-256 digests against openssl dgst, AES keys made
# in the pool encrypting exactly as openssl enc does, random bytes, its
# --test, --test-threads and --test-fork self-tests, a wrong PIN), p11-kit
# (the module registered through a .module file) and NSS (modutil -add
# into a fresh database, modutil -list, certutil -U).
#
# Also runs examples/pkcs11_sm4.  Needs GMPOOLD, GMPOOLCTL,
# GMPOOL_PKCS11_MODULE and GMPOOL_PKCS11_EXAMPLE.  GMPOOL_ASAN_PRELOAD,
# when set (sanitizer builds), is preloaded into the tools so that they
# can load an instrumented module.
set -u
: "${GMPOOLD:?}" "${GMPOOLCTL:?}" "${GMPOOL_PKCS11_MODULE:?}" "${GMPOOL_PKCS11_EXAMPLE:?}"
. "$(dirname "$0")/lib.sh"

for tool in pkcs11-tool p11-kit modutil certutil openssl setpriv; do
    need "$tool"
done
M=$GMPOOL_PKCS11_MODULE
[ -f "$M" ] || { echo "not ok - no module at $M"; exit 1; }

work=$(mktemp -d /tmp/gmpt-p11cli.XXXXXX)
dir="$work/d"
mkdir -p "$dir" "$work/home"
chmod 700 "$dir"
export HOME="$work/home"
unset GMPOOL_DATA_DIR GMPOOL_SERVER GMPOOL_CREDENTIALS XDG_CONFIG_HOME
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Each tool runs bounded (a hang fails, exit 124) and, in a sanitizer
# build, with the ASan runtime first; the tools' own leaks are not ours.
T="$work/t"
cat >"$T" <<'EOS'
#!/bin/sh
if [ -n "${GMPOOL_ASAN_PRELOAD:-}" ]; then
    export LD_PRELOAD="$GMPOOL_ASAN_PRELOAD" ASAN_OPTIONS=detect_leaks=0
fi
exec timeout 120 "$@"
EOS
chmod +x "$T"
ctl() { "$GMPOOLCTL" --admin "unix:$dir/admin.sock" "$@"; }
hex() { od -An -v -tx1 | tr -d ' \n'; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + $$ % 30000)))
"$GMPOOLD" --data-dir "$dir" --nodes 2 --listen "unix:$dir/s.sock" \
    --listen "tcp:127.0.0.1:$port" --admin "unix:$dir/admin.sock" \
    2>>"$work/gmpoold.log" &
pid=$!
up() { [ -f "$dir/credentials" ] && ctl ping; }
ready up || { cat "$work/gmpoold.log"; exit 1; }
export GMPOOL_CREDENTIALS="$dir/credentials"
echo 4321 | ctl tenant pin default >/dev/null || { bad "set the user PIN"; exit 1; }
out=$(ctl tenant pin default 9999 2>&1 </dev/null)
rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "read from stdin" &&
    ok "gmpoolctl refuses a PIN on the command line" ||
    bad "gmpoolctl refuses a PIN on the command line (exit $rc): $out"

P11="$T pkcs11-tool --module $M"
USER="$P11 --login --pin 4321"
f="$work/f"
mkdir "$f"
head -c 3000017 /dev/urandom >"$f/big"
: >"$f/empty"

# ---- slots, token, mechanisms ----
out=$($P11 -L 2>&1)
case $out in
*"token label        : default"*"serial num         : VCM-"*) ok "-L shows the tenant's token" ;;
*) bad "-L shows the tenant's token: $out" ;;
esac
out=$($P11 -M 2>&1)
missing=""
for m in 0x80000B01 0x80000B02 0x80000B10 0x80000B11 0x80000B12 0x80000B13 \
    0x80000B20 0x80000B21 0x80000B22 AES-CBC-PAD AES-GCM SHA256-HMAC \
    GENERIC-SECRET-KEY-GEN; do
    echo "$out" | grep -qi -- "$m" || missing="$missing $m"
done
[ -z "$missing" ] && ok "-M lists the SM and AES mechanisms" ||
    bad "-M lists the SM and AES mechanisms (missing:$missing)"

# ---- digests: pool vs openssl ----
digest() { # MECH FILE -> hex
    $P11 --hash -m "$1" -i "$2" -o "$work/md" >/dev/null 2>&1 &&
        hex <"$work/md"
}
for file in big empty; do
    want=$(openssl dgst -sm3 -r "$f/$file" | cut -d' ' -f1)
    got=$(digest 0x80000B01 "$f/$file")
    [ -n "$got" ] && [ "$got" = "$want" ] &&
        ok "--hash -m 0x80000B01 ($file) equals openssl dgst -sm3" ||
        bad "--hash -m 0x80000B01 ($file): '$got' vs '$want'"
done
want=$(openssl dgst -sha256 -r "$f/big" | cut -d' ' -f1)
got=$(digest SHA256 "$f/big")
[ "$got" = "$want" ] && ok "--hash -m SHA256 equals openssl dgst -sha256" ||
    bad "--hash -m SHA256: '$got' vs '$want'"

# ---- AES keys generated in the pool ----
IV=000102030405060708090a0b0c0d0e0f
for bits in 128 256; do
    id=$(printf '%02x' $((bits / 8)))
    if ! $USER --keygen --key-type "AES:$((bits / 8))" --label "aes$bits" \
        --id "$id" --extractable >/dev/null 2>&1; then
        bad "--keygen AES:$((bits / 8))"
        continue
    fi
    key=$($USER --read-object --type secrkey --id "$id" 2>/dev/null | hex)
    [ ${#key} -eq $((bits / 4)) ] && ok "AES-$bits key made in the pool, value readable (extractable)" ||
        bad "AES-$bits key value: '$key'"
    for mode in CBC-PAD CBC ECB; do
        in="$f/big"
        [ "$mode" = CBC-PAD ] || { head -c 2097152 "$f/big" >"$f/aligned"; in="$f/aligned"; }
        ossl=$(echo "aes-$bits-$mode" | tr 'A-Z' 'a-z' | sed 's/-pad$//')
        nopad=""
        [ "$mode" = CBC-PAD ] || nopad="-nopad"
        ivarg="-iv $IV"
        [ "$mode" = ECB ] && ivarg=""
        # shellcheck disable=SC2086
        openssl enc -"$ossl" $nopad -K "$key" $ivarg -in "$in" -out "$f/ref" &&
            $USER --encrypt --id "$id" -m "AES-$mode" --iv $IV -i "$in" \
                -o "$f/enc" >/dev/null 2>&1 &&
            cmp -s "$f/enc" "$f/ref" &&
            ok "--encrypt -m AES-$mode (AES-$bits) equals openssl enc" ||
            bad "--encrypt -m AES-$mode (AES-$bits) equals openssl enc"
        $USER --decrypt --id "$id" -m "AES-$mode" --iv $IV -i "$f/ref" \
            -o "$f/dec" >/dev/null 2>&1 && cmp -s "$f/dec" "$in" &&
            ok "--decrypt -m AES-$mode (AES-$bits) round trip" ||
            bad "--decrypt -m AES-$mode (AES-$bits) round trip"
    done
done
# a sensitive key's value is never shown
$USER --keygen --key-type AES:16 --label secret --id 0f --sensitive >/dev/null 2>&1
out=$($USER --read-object --type secrkey --id 0f -o "$f/sv" 2>&1)
rc=$?
[ $rc -ne 0 ] && [ ! -s "$f/sv" ] && echo "$out" | grep -q CKR_ATTRIBUTE_SENSITIVE &&
    ok "a sensitive key's value is refused (CKR_ATTRIBUTE_SENSITIVE)" ||
    bad "a sensitive key's value is refused: $out"
$USER --list-objects 2>/dev/null | grep -q "label:      secret" &&
    ok "token keys are listed after a new login" || bad "token keys are listed"

# ---- random, self-tests, PIN ----
n=$($P11 --generate-random 64 2>/dev/null | wc -c)
[ "$n" -eq 64 ] && ok "--generate-random 64" || bad "--generate-random 64 gave $n bytes"
out=$($USER --test 2>&1)
case $out in
*"No errors"*) ok "--test: No errors" ;;
*) bad "--test: $out" ;;
esac
out=$($P11 --test-threads ILGISLT0 --test-threads ILGISLT0 --test-threads ILGISL -L 2>&1)
case $out in
*"all threads have ended with CKR_OK"*) ok "--test-threads (three threads)" ;;
*) bad "--test-threads: $(echo "$out" | grep -i thread | tail -5)" ;;
esac
out=$($USER --test-fork 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "forked child" &&
    ok "--test-fork" || bad "--test-fork (exit $rc): $out"
out=$($P11 --login --pin 0000 --list-objects 2>&1)
echo "$out" | grep -q CKR_PIN_INCORRECT && ok "a wrong PIN is CKR_PIN_INCORRECT" ||
    bad "a wrong PIN: $out"
$USER -O >/dev/null 2>&1 && ok "the right PIN after a wrong one" ||
    bad "the right PIN after a wrong one"

# ---- the example program ----
out=$($T "$GMPOOL_PKCS11_EXAMPLE" "$M" 4321 "$f/big" 2>&1)
want=$(openssl dgst -sm3 -r "$f/big" | cut -d' ' -f1)
case $out in
*"decrypted back"*"SM3: $want"*) ok "examples/pkcs11_sm4 round trip and SM3" ;;
*) bad "examples/pkcs11_sm4: $out" ;;
esac

# ---- p11-kit: the module registered by a .module file ----
# p11-kit ignores user configuration when run as root, so as root it runs
# as nobody, reaching the daemon over TCP with a tenant of its own.
p11kit_list() {
    mods="$work/p11home/.config/pkcs11/modules"
    mkdir -p "$mods"
    printf 'module: %s\n' "$M" >"$mods/gmpool.module"
    if [ "$(id -u)" -eq 0 ]; then
        ctl -o "$work/p11kit.cred" tenant add p11kit >/dev/null
        chown -R nobody "$work/p11home" "$work/p11kit.cred"
        chmod 755 "$work"
        out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
            env HOME="$work/p11home" GMPOOL_CREDENTIALS="$work/p11kit.cred" \
            GMPOOL_SERVER="tcp:127.0.0.1:$port" "$T" p11-kit list-modules 2>&1)
        rc=$?
        label=p11kit
    else
        out=$(HOME="$work/p11home" $T p11-kit list-modules 2>&1)
        rc=$?
        label=default
    fi
    case $out in
    *"gmpool: $M"*"token: $label"*"manufacturer: gmpool"*) ok "p11-kit list-modules shows the module and its token" ;;
    *) bad "p11-kit list-modules (exit $rc): $out" ;;
    esac
}
# Under the ASan runtime p11-kit itself hangs at exit (libp11-kit's
# destructor waits on glibc's setlocale lock, with or without gmpool's
# module), so that check is made by the plain build only.
if [ -n "${GMPOOL_ASAN_PRELOAD:-}" ]; then
    echo "ok - p11-kit list-modules # SKIP hangs under ASan; checked in the plain build"
else
    p11kit_list
fi

# ---- NSS ----
db="sql:$work/nssdb"
mkdir "$work/nssdb"
$T certutil -N -d "$db" --empty-password >/dev/null 2>&1 &&
    echo | $T modutil -force -dbdir "$db" -add gmpool -libfile "$M" >/dev/null 2>&1 &&
    ok "modutil -add into a fresh NSS database" || bad "modutil -add"
out=$($T modutil -dbdir "$db" -list 2>&1)
case $out in
*"gmpool"*"token: default"*) ok "modutil -list shows the token" ;;
*) bad "modutil -list: $out" ;;
esac
out=$($T certutil -U -d "$db" 2>&1)
case $out in
*"gmpool slot 0"*"token: default"*) ok "certutil -U shows the token" ;;
*) bad "certutil -U: $out" ;;
esac

stop && ok "gmpoold stopped cleanly" || bad "gmpoold exit status"
summary
