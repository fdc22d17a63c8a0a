#!/bin/sh
# The main job: install, build, start gmpoold on its embedded defaults (a
# throw-away data dir unless GMPOOL_DATA_DIR is set), push real SM3 and SM4
# work through the pool (the gmpool tool, the OpenSSL provider, the PKCS#11
# module and the SDF library) and check it against the openssl command,
# show the pool's status, stop the daemon.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh"
"$root/scripts/build.sh" build >/dev/null
B="$root/build"
work=$(mktemp -d /tmp/gmpool-demo.XXXXXX)
export GMPOOL_DATA_DIR="${GMPOOL_DATA_DIR:-$work/data}"
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== starting gmpoold (data dir $GMPOOL_DATA_DIR)"
"$B/backend/gmpoold" 2>"$work/gmpoold.log" &
pid=$!
i=0
until "$B/tools/gmpool" ping >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        cat "$work/gmpoold.log"
        exit 1
    fi
    sleep 0.1
done
sed 's/^/   /' "$work/gmpoold.log"

head -c 48000000 /dev/urandom >"$work/payload"
echo "== SM3 of a 48 MB file, pooled vs openssl"
"$B/tools/gmpool" sm3 "$work/payload"
openssl dgst -sm3 "$work/payload"
pooled=$("$B/tools/gmpool" sm3 "$work/payload" | cut -d' ' -f1)
direct=$(openssl dgst -sm3 -r "$work/payload" | cut -d' ' -f1)
[ "$pooled" = "$direct" ] || { echo "MISMATCH"; exit 1; }

K=0123456789abcdeffedcba9876543210
IV=00112233445566778899aabbccddeeff
for mode in sm4-cbc sm4-ctr; do
    echo "== $mode encrypt in the pool, decrypt with openssl (and back)"
    "$B/tools/gmpool" enc -c "$mode" -K $K -iv $IV \
        -in "$work/payload" -out "$work/enc"
    openssl enc -d -"$mode" -K $K -iv $IV -in "$work/enc" -out "$work/dec"
    cmp "$work/payload" "$work/dec"
    openssl enc -"$mode" -K $K -iv $IV -in "$work/payload" -out "$work/enc2"
    "$B/tools/gmpool" enc -d -c "$mode" -K $K -iv $IV \
        -in "$work/enc2" -out "$work/dec2"
    cmp "$work/payload" "$work/dec2"
    echo "   identical"
done

echo "== the same work through the OpenSSL provider gmpool"
P="-provider-path $B/provider -provider gmpool -propquery provider=gmpool"
# shellcheck disable=SC2086
viaprov=$(openssl dgst -sm3 $P "$work/payload" | sed 's/^.*= *//')
echo "   openssl dgst -sm3 (gmpool): $viaprov"
[ "$viaprov" = "$direct" ] || { echo "MISMATCH"; exit 1; }
# shellcheck disable=SC2086
openssl enc -sm4-cbc -K $K -iv $IV -provider-path "$B/provider" -provider gmpool \
    -in "$work/payload" -out "$work/enc3"
openssl enc -d -sm4-cbc -K $K -iv $IV -in "$work/enc3" | cmp - "$work/payload"
echo "   openssl enc -sm4-cbc (gmpool) decrypts with the default provider: identical"

echo "== the PKCS#11 token (pkcs11-tool, and examples/pkcs11_sm4)"
# a tenant of its own, so that a real GMPOOL_DATA_DIR keeps its PINs
M="$B/pkcs11/libgmpool-pkcs11.so"
demo_tenant="demo-$$"
"$B/tools/gmpoolctl" -o "$work/p11.cred" tenant add "$demo_tenant" >/dev/null
echo 1234 | "$B/tools/gmpoolctl" tenant pin "$demo_tenant" >/dev/null
export GMPOOL_CREDENTIALS="$work/p11.cred"
pkcs11-tool --module "$M" -L 2>/dev/null | sed -n '2,4p'
pkcs11-tool --module "$M" --hash -m 0x80000B01 -i "$work/payload" \
    -o "$work/p11.sm3" 2>/dev/null
viap11=$(od -An -tx1 "$work/p11.sm3" | tr -d ' \n')
echo "   pkcs11-tool --hash -m CKM_SM3: $viap11"
[ "$viap11" = "$direct" ] || { echo "MISMATCH"; exit 1; }
"$B/examples/pkcs11_sm4" "$M" 1234 "$work/payload" | sed 's/^/   /'

echo "== the SDF library (GM/T 0018): a legacy crypto-card program, unchanged"
"$B/tools/gmpoolctl" sdf kek add "$demo_tenant" 1 >/dev/null
echo 'demo-pair-pw' | "$B/tools/gmpoolctl" sdf keypair add "$demo_tenant" 1 >/dev/null
"$B/examples/sdf_legacy" "$work/payload" 1 1 demo-pair-pw >"$work/sdf.out"
sed 's/^/   /' "$work/sdf.out"
grep -q "^SM3= $direct" "$work/sdf.out" || { echo "MISMATCH"; exit 1; }
grep -q "signature verified" "$work/sdf.out" || { echo "NOT VERIFIED"; exit 1; }
unset GMPOOL_CREDENTIALS
"$B/tools/gmpoolctl" tenant remove "$demo_tenant" >/dev/null

echo "== 32 random bytes from the pool"
"$B/tools/gmpool" rand 32
echo "== gmpoolctl status"
"$B/tools/gmpoolctl" status
kill -TERM "$pid"
wait "$pid"
pid=
echo "== gmpoold stopped cleanly"
