/* SM2 over libcrypto (sm2.h).  Signing, verification and encryption go
 * through EVP_PKEY "SM2" keys of the default provider; the key exchange,
 * which OpenSSL 3.0 does not offer, is built from its EC_POINT arithmetic,
 * its SM3 and its X9.63 KDF (which is SM2's KDF with no shared info).
 * Points cross this file's boundary as affine coordinates only, checked
 * to lie on the curve before any use. */
#include "sm2.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "gmpool.h"
#include "util.h"

#define L GMPD_SM2_LEN

static EC_GROUP *g_group;
static pthread_once_t g_group_once = PTHREAD_ONCE_INIT;

static void group_init(void)
{
    g_group = EC_GROUP_new_by_curve_name_ex(gmpc_libctx(), NULL, NID_sm2);
}

/* The SM2 curve, shared and never freed (NULL if libcrypto lacks it). */
static const EC_GROUP *sm2_group(void)
{
    pthread_once(&g_group_once, group_init);
    return g_group;
}

/* ---- points and scalars ---- */

static const EC_GROUP *group_or_sm2(const EC_GROUP *g)
{
    return g ? g : sm2_group();
}

/* Only 256-bit curves: coordinates are L bytes everywhere here. */
static bool group_ok(const EC_GROUP *g)
{
    return g && EC_GROUP_get_degree(g) == 8 * L;
}

/* A point from its coordinates: each below p, and on the curve. */
static EC_POINT *point_get(const EC_GROUP *g, const gmpd_sm2_point *p,
                           BN_CTX *ctx)
{
    EC_POINT *pt = EC_POINT_new(g);
    BIGNUM *x = BN_bin2bn(p->x, L, NULL), *y = BN_bin2bn(p->y, L, NULL);
    BIGNUM *prime = BN_new();
    bool ok = pt && x && y && prime &&
              EC_GROUP_get_curve(g, prime, NULL, NULL, ctx) &&
              BN_cmp(x, prime) < 0 && BN_cmp(y, prime) < 0 &&
              EC_POINT_set_affine_coordinates(g, pt, x, y, ctx) &&
              EC_POINT_is_on_curve(g, pt, ctx) == 1;
    BN_free(x);
    BN_free(y);
    BN_free(prime);
    if (!ok) {
        EC_POINT_free(pt);
        return NULL;
    }
    return pt;
}

/* Whether p is a point of g, as point_get checks it. */
static bool point_valid(const EC_GROUP *g, const gmpd_sm2_point *p,
                        BN_CTX *ctx)
{
    EC_POINT *pt = point_get(g, p, ctx);
    bool ok = pt != NULL;
    EC_POINT_free(pt);
    return ok;
}

static int point_put(const EC_GROUP *g, const EC_POINT *pt,
                     gmpd_sm2_point *p, BN_CTX *ctx)
{
    BIGNUM *x = BN_new(), *y = BN_new();
    bool ok = x && y && !EC_POINT_is_at_infinity(g, pt) &&
              EC_POINT_get_affine_coordinates(g, pt, x, y, ctx) &&
              BN_bn2binpad(x, p->x, L) == L && BN_bn2binpad(y, p->y, L) == L;
    BN_free(x);
    BN_free(y);
    return ok ? GMP_OK : GMP_ERR_INTERNAL;
}

/* d with 1 <= d <= n - 2 (SM2 signing needs 1 + d invertible). */
static BIGNUM *scalar_get(const EC_GROUP *g, const uint8_t d[L])
{
    BIGNUM *k = BN_secure_new(), *lim = BN_dup(EC_GROUP_get0_order(g));
    bool ok = k && lim && BN_bin2bn(d, L, k) && BN_sub_word(lim, 1) &&
              !BN_is_zero(k) && BN_cmp(k, lim) < 0;
    BN_free(lim);
    if (!ok) {
        BN_clear_free(k);
        return NULL;
    }
    return k;
}

int gmpd_sm2_public(const EC_GROUP *g, const uint8_t d[L],
                    gmpd_sm2_point *pub)
{
    g = group_or_sm2(g);
    if (!group_ok(g))
        return GMP_ERR_INTERNAL;
    BN_CTX *ctx = BN_CTX_new_ex(gmpc_libctx());
    BIGNUM *k = scalar_get(g, d);
    EC_POINT *pt = EC_POINT_new(g);
    int rc = !k ? GMP_ERR_KEY : !ctx || !pt ? GMP_ERR_NOMEM : GMP_OK;
    if (!rc)
        rc = EC_POINT_mul(g, pt, k, NULL, NULL, ctx)
                 ? point_put(g, pt, pub, ctx)
                 : GMP_ERR_INTERNAL;
    EC_POINT_free(pt);
    BN_clear_free(k);
    BN_CTX_free(ctx);
    return rc;
}

/* ---- EVP_PKEY "SM2" from raw values ---- */

static EVP_PKEY *pkey_from(const OSSL_PARAM *params, bool private)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(gmpc_libctx(), "SM2", NULL);
    EVP_PKEY *pk = NULL;
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk,
                          private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                          (OSSL_PARAM *)params) <= 0)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

/* A public key, or a key pair when d is given (pub then derived from d). */
static int pkey_new(const uint8_t *d, const gmpd_sm2_point *pub,
                    EVP_PKEY **out)
{
    gmpd_sm2_point derived;
    uint8_t oct[1 + 2 * L];
    int rc = d ? gmpd_sm2_public(NULL, d, &derived) : GMP_OK;
    if (rc)
        return rc;
    if (d)
        pub = &derived;
    BN_CTX *ctx = BN_CTX_new_ex(gmpc_libctx());
    bool valid = ctx && group_ok(sm2_group()) &&
                 point_valid(sm2_group(), pub, ctx);
    BN_CTX_free(ctx);
    if (!valid)
        return GMP_ERR_KEY;
    oct[0] = 0x04; /* uncompressed */
    memcpy(oct + 1, pub->x, L);
    memcpy(oct + 1 + L, pub->y, L);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    BIGNUM *k = d ? BN_secure_new() : NULL;
    OSSL_PARAM *p = NULL;
    bool ok = b && (!d || (k && BN_bin2bn(d, L, k))) &&
              OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME,
                                              "SM2", 0) &&
              OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY,
                                               oct, sizeof oct) &&
              (!d || OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, k)) &&
              (p = OSSL_PARAM_BLD_to_param(b)) != NULL;
    *out = ok ? pkey_from(p, d != NULL) : NULL;
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    BN_clear_free(k);
    return *out ? GMP_OK : GMP_ERR_INTERNAL;
}

static EVP_PKEY_CTX *op_ctx(EVP_PKEY *pk)
{
    return EVP_PKEY_CTX_new_from_pkey(gmpc_libctx(), pk, NULL);
}

int gmpd_sm2_keygen(uint8_t d[L], gmpd_sm2_point *pub)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(gmpc_libctx(), NULL, "SM2");
    BIGNUM *k = NULL;
    bool ok = pk && EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &k) &&
              BN_bn2binpad(k, d, L) == L;
    BN_clear_free(k);
    EVP_PKEY_free(pk);
    int rc = ok ? gmpd_sm2_public(NULL, d, pub) : GMP_ERR_INTERNAL;
    if (rc)
        OPENSSL_cleanse(d, L);
    return rc;
}

/* ---- signatures ---- */

static int sig_decode(const uint8_t *der, size_t n, uint8_t r[L],
                      uint8_t s[L])
{
    const uint8_t *p = der;
    const BIGNUM *br, *bs;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)n);
    if (sig)
        ECDSA_SIG_get0(sig, &br, &bs);
    bool ok = sig && BN_bn2binpad(br, r, L) == L &&
              BN_bn2binpad(bs, s, L) == L;
    ECDSA_SIG_free(sig);
    return ok ? GMP_OK : GMP_ERR_INTERNAL;
}

/* DER of (r, s); *der is OPENSSL_malloc'd. */
static int sig_encode(const uint8_t r[L], const uint8_t s[L], uint8_t **der,
                      int *n)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *br = BN_bin2bn(r, L, NULL), *bs = BN_bin2bn(s, L, NULL);
    bool ok = sig && br && bs && ECDSA_SIG_set0(sig, br, bs);
    if (!ok) {
        BN_free(br);
        BN_free(bs);
    }
    *der = NULL;
    *n = ok ? i2d_ECDSA_SIG(sig, der) : 0;
    ECDSA_SIG_free(sig);
    return *n > 0 ? GMP_OK : GMP_ERR_INTERNAL;
}

/* EVP_PKEY_sign (not DigestSign): the SDF caller hands us e, the digest
 * that already includes Z, so libcrypto must not hash again. */
int gmpd_sm2_sign(const uint8_t d[L], const uint8_t e[L], uint8_t r[L],
                  uint8_t s[L])
{
    EVP_PKEY *pk = NULL;
    int rc = pkey_new(d, NULL, &pk);
    if (rc)
        return rc;
    EVP_PKEY_CTX *ctx = op_ctx(pk);
    uint8_t der[128];
    size_t n = sizeof der;
    bool ok = ctx && EVP_PKEY_sign_init(ctx) > 0 &&
              EVP_PKEY_sign(ctx, der, &n, e, L) > 0;
    rc = ok ? sig_decode(der, n, r, s) : GMP_ERR_INTERNAL;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return rc;
}

int gmpd_sm2_verify(const gmpd_sm2_point *pub, const uint8_t e[L],
                    const uint8_t r[L], const uint8_t s[L])
{
    EVP_PKEY *pk = NULL;
    uint8_t *der = NULL;
    int n = 0;
    int rc = pkey_new(NULL, pub, &pk);
    if (!rc)
        rc = sig_encode(r, s, &der, &n);
    EVP_PKEY_CTX *ctx = rc ? NULL : op_ctx(pk);
    if (!rc && (!ctx || EVP_PKEY_verify_init(ctx) <= 0))
        rc = GMP_ERR_INTERNAL;
    if (!rc) /* 0 (and <0 for r, s out of range) is a bad signature */
        rc = EVP_PKEY_verify(ctx, der, (size_t)n, e, L) == 1 ? GMP_OK
                                                             : GMP_ERR_VERIFY;
    OPENSSL_free(der);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return rc;
}

/* ---- encryption: libcrypto's DER SM2Ciphertext <-> C1 C3 C2 ---- */

static bool int_get(const ASN1_TYPE *t, uint8_t out[L])
{
    BIGNUM *bn = t && t->type == V_ASN1_INTEGER
                     ? ASN1_INTEGER_to_BN(t->value.integer, NULL)
                     : NULL;
    bool ok = bn && BN_bn2binpad(bn, out, L) == L;
    BN_free(bn);
    return ok;
}

static bool oct_get(const ASN1_TYPE *t, uint8_t *out, size_t n)
{
    if (!t || t->type != V_ASN1_OCTET_STRING ||
        (size_t)ASN1_STRING_length(t->value.octet_string) != n)
        return false;
    memcpy(out, ASN1_STRING_get0_data(t->value.octet_string), n);
    return true;
}

/* SEQUENCE { INTEGER x, INTEGER y, OCTET STRING C3, OCTET STRING C2 } */
static int ct_decode(const uint8_t *der, size_t len, gmpd_sm2_point *c1,
                     uint8_t c3[L], uint8_t *c2, size_t n)
{
    const uint8_t *p = der;
    STACK_OF(ASN1_TYPE) *sk = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
    bool ok = sk && sk_ASN1_TYPE_num(sk) == 4 &&
              int_get(sk_ASN1_TYPE_value(sk, 0), c1->x) &&
              int_get(sk_ASN1_TYPE_value(sk, 1), c1->y) &&
              oct_get(sk_ASN1_TYPE_value(sk, 2), c3, L) &&
              oct_get(sk_ASN1_TYPE_value(sk, 3), c2, n);
    sk_ASN1_TYPE_pop_free(sk, ASN1_TYPE_free);
    return ok ? GMP_OK : GMP_ERR_INTERNAL;
}

/* Pushes value (an ASN1_INTEGER or ASN1_OCTET_STRING, NULL when making
 * it failed) as an element of the given type; frees it when that fails. */
static bool push(STACK_OF(ASN1_TYPE) *sk, int type, ASN1_STRING *value)
{
    ASN1_TYPE *t = value ? ASN1_TYPE_new() : NULL;
    if (!t) {
        ASN1_STRING_free(value);
        return false;
    }
    ASN1_TYPE_set(t, type, value);
    if (sk_ASN1_TYPE_push(sk, t) > 0)
        return true;
    ASN1_TYPE_free(t);
    return false;
}

static bool push_int(STACK_OF(ASN1_TYPE) *sk, const uint8_t v[L])
{
    BIGNUM *bn = BN_bin2bn(v, L, NULL);
    ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    BN_free(bn);
    return push(sk, V_ASN1_INTEGER, ai);
}

static bool push_oct(STACK_OF(ASN1_TYPE) *sk, const uint8_t *v, size_t n)
{
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    if (os && !ASN1_OCTET_STRING_set(os, v, (int)n)) {
        ASN1_OCTET_STRING_free(os);
        os = NULL;
    }
    return push(sk, V_ASN1_OCTET_STRING, os);
}

/* *der is OPENSSL_malloc'd. */
static int ct_encode(const gmpd_sm2_point *c1, const uint8_t c3[L],
                     const uint8_t *c2, size_t n, uint8_t **der, int *len)
{
    STACK_OF(ASN1_TYPE) *sk = sk_ASN1_TYPE_new_null();
    bool ok = sk && push_int(sk, c1->x) && push_int(sk, c1->y) &&
              push_oct(sk, c3, L) && push_oct(sk, c2, n);
    *der = NULL;
    *len = ok ? i2d_ASN1_SEQUENCE_ANY(sk, der) : 0;
    sk_ASN1_TYPE_pop_free(sk, ASN1_TYPE_free);
    return *len > 0 ? GMP_OK : GMP_ERR_INTERNAL;
}

int gmpd_sm2_encrypt(const gmpd_sm2_point *pub, const uint8_t *in, size_t n,
                     gmpd_sm2_point *c1, uint8_t c3[L], uint8_t *c2)
{
    EVP_PKEY *pk = NULL;
    if (n == 0 || n > INT32_MAX)
        return GMP_ERR_LENGTH;
    int rc = pkey_new(NULL, pub, &pk);
    if (rc)
        return rc;
    EVP_PKEY_CTX *ctx = op_ctx(pk);
    size_t len = 0;
    uint8_t *der = NULL;
    bool ok = ctx && EVP_PKEY_encrypt_init(ctx) > 0 &&
              EVP_PKEY_encrypt(ctx, NULL, &len, in, n) > 0 &&
              (der = malloc(len)) != NULL &&
              EVP_PKEY_encrypt(ctx, der, &len, in, n) > 0;
    rc = ok ? ct_decode(der, len, c1, c3, c2, n) : GMP_ERR_INTERNAL;
    free(der);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return rc;
}

/* libcrypto takes the room it is given as a capacity (and fills it), so
 * the plaintext goes to a buffer of the size it asks for first. */
static int decrypt_der(EVP_PKEY *pk, const uint8_t *der, size_t len,
                       uint8_t *out, size_t n)
{
    EVP_PKEY_CTX *ctx = op_ctx(pk);
    size_t room = 0;
    uint8_t *tmp = NULL;
    bool ok = ctx && EVP_PKEY_decrypt_init(ctx) > 0 &&
              EVP_PKEY_decrypt(ctx, NULL, &room, der, len) > 0 &&
              room >= n && (tmp = malloc(room)) != NULL;
    int rc = ok ? GMP_OK : GMP_ERR_INTERNAL;
    if (!rc && (EVP_PKEY_decrypt(ctx, tmp, &room, der, len) <= 0 ||
                room != n))
        rc = GMP_ERR_VERIFY;
    if (!rc)
        memcpy(out, tmp, n);
    if (tmp)
        OPENSSL_clear_free(tmp, n > room ? n : room);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int gmpd_sm2_decrypt(const uint8_t d[L], const gmpd_sm2_point *c1,
                     const uint8_t c3[L], const uint8_t *c2, size_t n,
                     uint8_t *out)
{
    EVP_PKEY *pk = NULL;
    uint8_t *der = NULL;
    int len = 0;
    if (n == 0 || n > INT32_MAX)
        return GMP_ERR_LENGTH;
    int rc = pkey_new(d, NULL, &pk);
    if (!rc)
        rc = ct_encode(c1, c3, c2, n, &der, &len);
    if (!rc)
        rc = decrypt_der(pk, der, (size_t)len, out, n);
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    return rc;
}

/* ---- Z and the key exchange ---- */

static bool md_bn(EVP_MD_CTX *md, const BIGNUM *v)
{
    uint8_t b[L];
    return BN_bn2binpad(v, b, L) == L && EVP_DigestUpdate(md, b, L);
}

static bool z_curve(EVP_MD_CTX *md, const EC_GROUP *g, BN_CTX *ctx)
{
    BIGNUM *a = BN_new(), *b = BN_new(), *gx = BN_new(), *gy = BN_new();
    bool ok = a && b && gx && gy &&
              EC_GROUP_get_curve(g, NULL, a, b, ctx) &&
              EC_POINT_get_affine_coordinates(g, EC_GROUP_get0_generator(g),
                                              gx, gy, ctx) &&
              md_bn(md, a) && md_bn(md, b) && md_bn(md, gx) && md_bn(md, gy);
    BN_free(a);
    BN_free(b);
    BN_free(gx);
    BN_free(gy);
    return ok;
}

int gmpd_sm2_z(const EC_GROUP *g, const uint8_t *id, size_t id_len,
               const gmpd_sm2_point *pub, uint8_t z[L])
{
    g = group_or_sm2(g);
    if ((!id && id_len) || id_len > GMPD_SM2_ID_MAX)
        return GMP_ERR_ARG;
    if (!group_ok(g))
        return GMP_ERR_INTERNAL;
    BN_CTX *ctx = BN_CTX_new_ex(gmpc_libctx());
    bool valid = ctx && point_valid(g, pub, ctx);
    EVP_MD *sm3 = EVP_MD_fetch(gmpc_libctx(), "SM3", NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t entl[2] = {(uint8_t)(id_len * 8 >> 8), (uint8_t)(id_len * 8)};
    unsigned zl = 0;
    int rc = !ctx || !sm3 || !md ? GMP_ERR_INTERNAL
             : !valid            ? GMP_ERR_KEY
                                 : GMP_OK;
    if (!rc && !(EVP_DigestInit_ex2(md, sm3, NULL) &&
                 EVP_DigestUpdate(md, entl, 2) &&
                 (id_len == 0 || EVP_DigestUpdate(md, id, id_len)) &&
                 z_curve(md, g, ctx) && EVP_DigestUpdate(md, pub->x, L) &&
                 EVP_DigestUpdate(md, pub->y, L) &&
                 EVP_DigestFinal_ex(md, z, &zl) && zl == L))
        rc = GMP_ERR_INTERNAL;
    EVP_MD_CTX_free(md);
    EVP_MD_free(sm3);
    BN_CTX_free(ctx);
    return rc;
}

/* x' = 2^w + (x mod 2^w), w = ceil(ceil(log2 n) / 2) - 1 */
static bool x_bar(const EC_GROUP *g, const gmpd_sm2_point *p, BIGNUM *out)
{
    int w = (BN_num_bits(EC_GROUP_get0_order(g)) + 1) / 2 - 1;
    if (!BN_bin2bn(p->x, L, out))
        return false;
    /* BN_mask_bits fails on a value already shorter than w bits */
    return (BN_num_bits(out) <= w || BN_mask_bits(out, w)) &&
           BN_set_bit(out, w);
}

/* U = [h.t](P + [x'_peer]R), t = (d + x'_self . r) mod n */
static int shared_point(const EC_GROUP *g, const BIGNUM *d, const BIGNUM *r,
                        const gmpd_sm2_party *self,
                        const gmpd_sm2_party *peer, gmpd_sm2_point *u,
                        BN_CTX *ctx)
{
    EC_POINT *pp = point_get(g, &peer->pub, ctx);
    EC_POINT *pr = point_get(g, &peer->tmp, ctx);
    EC_POINT *t_pt = EC_POINT_new(g);
    BIGNUM *xs = BN_new(), *xp = BN_new(), *t = BN_secure_new();
    const BIGNUM *n = EC_GROUP_get0_order(g);
    int rc = !pp || !pr ? GMP_ERR_KEY : GMP_OK;
    if (!rc && !(t_pt && xs && xp && t && x_bar(g, &self->tmp, xs) &&
                 x_bar(g, &peer->tmp, xp) && BN_mod_mul(t, xs, r, n, ctx) &&
                 BN_mod_add(t, t, d, n, ctx) &&
                 BN_mul(t, t, EC_GROUP_get0_cofactor(g), ctx) &&
                 EC_POINT_mul(g, t_pt, NULL, pr, xp, ctx) &&
                 EC_POINT_add(g, t_pt, t_pt, pp, ctx) &&
                 EC_POINT_mul(g, t_pt, NULL, t_pt, t, ctx)))
        rc = GMP_ERR_INTERNAL;
    if (!rc)
        rc = point_put(g, t_pt, u, ctx);
    EC_POINT_free(pp);
    EC_POINT_free(pr);
    EC_POINT_free(t_pt);
    BN_free(xs);
    BN_free(xp);
    BN_clear_free(t);
    return rc;
}

/* SM2's KDF: SM3(Z || ct) for ct = 1, 2, ... is X9.63's with no info. */
static int kdf(const uint8_t *z, size_t zl, uint8_t *key, size_t key_len)
{
    EVP_KDF *k = EVP_KDF_fetch(gmpc_libctx(), "X963KDF", NULL);
    EVP_KDF_CTX *ctx = k ? EVP_KDF_CTX_new(k) : NULL;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SM3", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, zl),
        OSSL_PARAM_construct_end()};
    int ok = ctx && EVP_KDF_derive(ctx, key, key_len, p) > 0;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(k);
    return ok ? GMP_OK : GMP_ERR_INTERNAL;
}

int gmpd_sm2_exchange(const EC_GROUP *g, bool initiator, const uint8_t d[L],
                      const uint8_t r[L], const gmpd_sm2_party *self,
                      const gmpd_sm2_party *peer, uint8_t *key,
                      size_t key_len)
{
    g = group_or_sm2(g);
    if (!group_ok(g))
        return GMP_ERR_INTERNAL;
    if (key_len == 0)
        return GMP_ERR_ARG;
    uint8_t in[4 * L]; /* xU || yU || ZA || ZB */
    gmpd_sm2_point u;
    const gmpd_sm2_party *a = initiator ? self : peer;
    const gmpd_sm2_party *b = initiator ? peer : self;
    int rc = gmpd_sm2_z(g, a->id, a->id_len, &a->pub, in + 2 * L);
    if (!rc)
        rc = gmpd_sm2_z(g, b->id, b->id_len, &b->pub, in + 3 * L);
    BN_CTX *ctx = rc ? NULL : BN_CTX_new_ex(gmpc_libctx());
    BIGNUM *bd = ctx ? scalar_get(g, d) : NULL;
    BIGNUM *br = ctx ? scalar_get(g, r) : NULL;
    if (!rc)
        rc = !ctx ? GMP_ERR_NOMEM : !bd || !br ? GMP_ERR_KEY : GMP_OK;
    if (!rc)
        rc = shared_point(g, bd, br, self, peer, &u, ctx);
    if (!rc) {
        memcpy(in, u.x, L);
        memcpy(in + L, u.y, L);
        rc = kdf(in, sizeof in, key, key_len);
    }
    OPENSSL_cleanse(in, sizeof in);
    OPENSSL_cleanse(&u, sizeof u);
    BN_clear_free(bd);
    BN_clear_free(br);
    BN_CTX_free(ctx);
    return rc;
}
