/* The daemon's SM2 code (backend/sm2.c) against the standards' examples
 * and libcrypto: the GB/T 32918 key, Z value, digest and signature; the
 * GM/T 0003.3 key exchange example on its test curve; signatures made
 * here verified by EVP_DigestVerify with the same ID (which proves the Z
 * value) and libcrypto's verified here; libcrypto's ciphertexts decrypted
 * here; bad keys, points and ciphertexts refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "gmpool.h"
#include "sm2.h"
#include "util.h"

#define L GMPD_SM2_LEN

static void unhex(const char *h, uint8_t *out, size_t n)
{
    assert_int_equal(gmpc_hex_decode(h, out, n), (int)n);
}

static void sm3(const void *a, size_t an, const void *b, size_t bn,
                uint8_t out[L])
{
    EVP_MD *md = EVP_MD_fetch(gmpc_libctx(), "SM3", NULL);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned n = 0;
    assert_true(EVP_DigestInit_ex2(c, md, NULL) &&
                EVP_DigestUpdate(c, a, an) && EVP_DigestUpdate(c, b, bn) &&
                EVP_DigestFinal_ex(c, out, &n));
    EVP_MD_CTX_free(c);
    EVP_MD_free(md);
}

/* GB/T 32918.2 / .5 Annex A on the recommended curve. */
static const char STD_D[] =
    "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
static const char STD_X[] =
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020";
static const char STD_Y[] =
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
static const char STD_Z[] =
    "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3";
static const char STD_E[] =
    "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640";
static const char STD_R[] =
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
static const char STD_S[] =
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";
static const char DEFAULT_ID[] = "1234567812345678";

static void test_standard_example(void **state)
{
    (void)state;
    uint8_t d[L], x[L], y[L], z[L], e[L], r[L], s[L], got[L];
    gmpd_sm2_point pub;
    unhex(STD_D, d, L);
    unhex(STD_X, x, L);
    unhex(STD_Y, y, L);
    unhex(STD_Z, z, L);
    unhex(STD_E, e, L);
    unhex(STD_R, r, L);
    unhex(STD_S, s, L);
    assert_int_equal(gmpd_sm2_public(NULL, d, &pub), GMP_OK);
    assert_memory_equal(pub.x, x, L);
    assert_memory_equal(pub.y, y, L);
    assert_int_equal(gmpd_sm2_z(NULL, (const uint8_t *)DEFAULT_ID, 16, &pub,
                                got), GMP_OK);
    assert_memory_equal(got, z, L);
    sm3(got, L, "message digest", 14, got);
    assert_memory_equal(got, e, L);
    assert_int_equal(gmpd_sm2_verify(&pub, e, r, s), GMP_OK);
    s[31] ^= 1;
    assert_int_equal(gmpd_sm2_verify(&pub, e, r, s), GMP_ERR_VERIFY);
    s[31] ^= 1;
    e[0] ^= 0x80;
    assert_int_equal(gmpd_sm2_verify(&pub, e, r, s), GMP_ERR_VERIFY);
}

static EVP_PKEY *lc_key(const gmpd_sm2_point *pub, const uint8_t *d)
{
    uint8_t oct[1 + 2 * L] = {0x04};
    memcpy(oct + 1, pub->x, L);
    memcpy(oct + 1 + L, pub->y, L);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    BIGNUM *k = d ? BN_bin2bn(d, L, NULL) : NULL;
    OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0);
    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, oct,
                                     sizeof oct);
    if (k)
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, k);
    OSSL_PARAM *p = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(gmpc_libctx(), "SM2", NULL);
    EVP_PKEY *pk = NULL;
    assert_true(EVP_PKEY_fromdata_init(c) > 0);
    assert_true(EVP_PKEY_fromdata(c, &pk, k ? EVP_PKEY_KEYPAIR
                                            : EVP_PKEY_PUBLIC_KEY, p) > 0);
    EVP_PKEY_CTX_free(c);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    BN_free(k);
    return pk;
}

static EVP_MD_CTX *lc_digest_ctx(EVP_PKEY *pk, bool sign, const char *id)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(gmpc_libctx(), pk, NULL);
    assert_true(EVP_PKEY_CTX_set1_id(pc, id, strlen(id)) > 0);
    EVP_MD_CTX_set_pkey_ctx(md, pc);
    int ok = sign ? EVP_DigestSignInit_ex(md, NULL, "SM3", gmpc_libctx(),
                                          NULL, NULL, NULL)
                  : EVP_DigestVerifyInit_ex(md, NULL, "SM3", gmpc_libctx(),
                                            NULL, NULL, NULL);
    assert_int_equal(ok, 1);
    return md; /* pc stays the caller's: md_free frees both */
}

static void md_free(EVP_MD_CTX *md)
{
    EVP_PKEY_CTX *pc = EVP_MD_CTX_get_pkey_ctx(md);
    EVP_MD_CTX_free(md);
    EVP_PKEY_CTX_free(pc);
}

static void der_sig(const uint8_t r[L], const uint8_t s[L], uint8_t *der,
                    size_t *n)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(r, L, NULL), BN_bin2bn(s, L, NULL));
    uint8_t *p = der;
    *n = (size_t)i2d_ECDSA_SIG(sig, &p);
    ECDSA_SIG_free(sig);
}

/* Signatures both ways with an ID: EVP_DigestVerify computes Z itself,
 * so agreement proves gmpd_sm2_z equals libcrypto's. */
static void test_signatures_vs_libcrypto(void **state)
{
    (void)state;
    const char *id = "alice@example.com";
    const char msg[] = "a message signed in the pool";
    for (int round = 0; round < 4; round++) {
        uint8_t d[L], z[L], e[L], r[L], s[L], der[80];
        gmpd_sm2_point pub;
        size_t n = 0;
        assert_int_equal(gmpd_sm2_keygen(d, &pub), GMP_OK);
        assert_int_equal(gmpd_sm2_z(NULL, (const uint8_t *)id, strlen(id),
                                    &pub, z), GMP_OK);
        sm3(z, L, msg, sizeof msg, e);
        assert_int_equal(gmpd_sm2_sign(d, e, r, s), GMP_OK);
        der_sig(r, s, der, &n);
        EVP_PKEY *pk = lc_key(&pub, d);
        EVP_MD_CTX *md = lc_digest_ctx(pk, false, id);
        assert_int_equal(EVP_DigestVerify(md, der, n, (const uint8_t *)msg,
                                          sizeof msg), 1);
        md_free(md);

        md = lc_digest_ctx(pk, true, id);
        n = sizeof der;
        assert_int_equal(EVP_DigestSign(md, der, &n, (const uint8_t *)msg,
                                        sizeof msg), 1);
        const uint8_t *p = der;
        const BIGNUM *br, *bs;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)n);
        ECDSA_SIG_get0(sig, &br, &bs);
        BN_bn2binpad(br, r, L);
        BN_bn2binpad(bs, s, L);
        ECDSA_SIG_free(sig);
        assert_int_equal(gmpd_sm2_verify(&pub, e, r, s), GMP_OK);
        md_free(md);
        EVP_PKEY_free(pk);
    }
}

static bool asn1_int(const ASN1_TYPE *t, uint8_t out[L])
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(t->value.integer, NULL);
    bool ok = BN_bn2binpad(bn, out, L) == L;
    BN_free(bn);
    return ok;
}

/* libcrypto's DER ciphertext taken apart by hand, then decrypted here. */
static void lc_encrypt(EVP_PKEY *pk, const uint8_t *in, size_t n,
                       gmpd_sm2_point *c1, uint8_t c3[L], uint8_t *c2)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(gmpc_libctx(), pk, NULL);
    uint8_t der[2048];
    size_t dl = sizeof der;
    assert_true(EVP_PKEY_encrypt_init(c) > 0);
    assert_true(EVP_PKEY_encrypt(c, der, &dl, in, n) > 0);
    const uint8_t *p = der;
    STACK_OF(ASN1_TYPE) *sk = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)dl);
    assert_int_equal(sk_ASN1_TYPE_num(sk), 4);
    assert_true(asn1_int(sk_ASN1_TYPE_value(sk, 0), c1->x));
    assert_true(asn1_int(sk_ASN1_TYPE_value(sk, 1), c1->y));
    ASN1_OCTET_STRING *h = sk_ASN1_TYPE_value(sk, 2)->value.octet_string;
    ASN1_OCTET_STRING *ct = sk_ASN1_TYPE_value(sk, 3)->value.octet_string;
    assert_int_equal(ASN1_STRING_length(h), L);
    assert_int_equal(ASN1_STRING_length(ct), (int)n);
    memcpy(c3, ASN1_STRING_get0_data(h), L);
    memcpy(c2, ASN1_STRING_get0_data(ct), n);
    sk_ASN1_TYPE_pop_free(sk, ASN1_TYPE_free);
    EVP_PKEY_CTX_free(c);
}

static void test_encryption(void **state)
{
    (void)state;
    uint8_t d[L], c3[L], in[1024], c2[1024], out[1024];
    gmpd_sm2_point pub, c1;
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(gmpd_sm2_keygen(d, &pub), GMP_OK);
    EVP_PKEY *pk = lc_key(&pub, NULL);
    const size_t lens[] = {1, 16, 31, 200, 1024};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        size_t n = lens[i];
        memset(out, 0, sizeof out);
        assert_int_equal(gmpd_sm2_encrypt(&pub, in, n, &c1, c3, c2), GMP_OK);
        assert_int_equal(gmpd_sm2_decrypt(d, &c1, c3, c2, n, out), GMP_OK);
        assert_memory_equal(out, in, n);
        lc_encrypt(pk, in, n, &c1, c3, c2);
        memset(out, 0, sizeof out);
        assert_int_equal(gmpd_sm2_decrypt(d, &c1, c3, c2, n, out), GMP_OK);
        assert_memory_equal(out, in, n);
        c3[5] ^= 1; /* C3 check */
        assert_int_equal(gmpd_sm2_decrypt(d, &c1, c3, c2, n, out),
                         GMP_ERR_VERIFY);
        c3[5] ^= 1;
        c2[n - 1] ^= 1; /* C2 changed: C3 no longer matches */
        assert_int_equal(gmpd_sm2_decrypt(d, &c1, c3, c2, n, out),
                         GMP_ERR_VERIFY);
        c2[n - 1] ^= 1;
        c1.y[31] ^= 1; /* C1 off the curve */
        assert_int_equal(gmpd_sm2_decrypt(d, &c1, c3, c2, n, out),
                         GMP_ERR_VERIFY);
    }
    EVP_PKEY_free(pk);
    assert_int_equal(gmpd_sm2_encrypt(&pub, in, 0, &c1, c3, c2),
                     GMP_ERR_LENGTH);
}

/* GM/T 0003.3 Annex A (Fp-256 test curve): A = ALICE123@YAHOO.COM,
 * B = BILL456@YAHOO.COM, 128-bit key 55B0AC62 A6B927BA 23703832 C853DED4. */
static EC_GROUP *test_curve(void)
{
    BIGNUM *p = NULL, *a = NULL, *b = NULL, *n = NULL, *gx = NULL, *gy = NULL;
    BN_hex2bn(&p, "8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3");
    BN_hex2bn(&a, "787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498");
    BN_hex2bn(&b, "63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A");
    BN_hex2bn(&n, "8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7");
    BN_hex2bn(&gx, "421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D");
    BN_hex2bn(&gy, "0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2");
    EC_GROUP *g = EC_GROUP_new_curve_GFp(p, a, b, NULL);
    EC_POINT *gen = EC_POINT_new(g);
    assert_true(EC_POINT_set_affine_coordinates(g, gen, gx, gy, NULL));
    assert_true(EC_GROUP_set_generator(g, gen, n, BN_value_one()));
    EC_POINT_free(gen);
    BN_free(p);
    BN_free(a);
    BN_free(b);
    BN_free(n);
    BN_free(gx);
    BN_free(gy);
    return g;
}

static void party(const EC_GROUP *g, const char *id, const uint8_t d[L],
                  const uint8_t r[L], gmpd_sm2_party *p)
{
    p->id = (const uint8_t *)id;
    p->id_len = strlen(id);
    assert_int_equal(gmpd_sm2_public(g, d, &p->pub), GMP_OK);
    assert_int_equal(gmpd_sm2_public(g, r, &p->tmp), GMP_OK);
}

static void test_exchange_standard(void **state)
{
    (void)state;
    EC_GROUP *g = test_curve();
    uint8_t da[L], ra[L], db[L], rb[L], want[16], ka[16], kb[16];
    unhex("6FCBA2EF9AE0AB902BC3BDE3FF915D44BA4CC78F88E2F8E7F8996D3B8CCEEDEE", da, L);
    unhex("83A2C9C8B96E5AF70BD480B472409A9A327257F1EBB73F5B073354B248668563", ra, L);
    unhex("5E35D7D3F3C54DBAC72E61819E730B019A84208CA3A35E4C2E353DFCCB2A3B53", db, L);
    unhex("33FE21940342161C55619C4A0C060293D543C80AF19748CE176D83477DE71C80", rb, L);
    unhex("55B0AC62A6B927BA23703832C853DED4", want, 16);
    gmpd_sm2_party a, b;
    party(g, "ALICE123@YAHOO.COM", da, ra, &a);
    party(g, "BILL456@YAHOO.COM", db, rb, &b);
    assert_int_equal(gmpd_sm2_exchange(g, true, da, ra, &a, &b, ka, 16),
                     GMP_OK);
    assert_int_equal(gmpd_sm2_exchange(g, false, db, rb, &b, &a, kb, 16),
                     GMP_OK);
    assert_memory_equal(ka, want, 16);
    assert_memory_equal(kb, want, 16);
    EC_GROUP_free(g);
}

static void test_exchange_sm2(void **state)
{
    (void)state;
    uint8_t da[L], ra[L], db[L], rb[L], ka[48], kb[48];
    gmpd_sm2_party a = {.id = (const uint8_t *)"sponsor", .id_len = 7};
    gmpd_sm2_party b = {.id = (const uint8_t *)"responder", .id_len = 9};
    assert_int_equal(gmpd_sm2_keygen(da, &a.pub), GMP_OK);
    assert_int_equal(gmpd_sm2_keygen(ra, &a.tmp), GMP_OK);
    assert_int_equal(gmpd_sm2_keygen(db, &b.pub), GMP_OK);
    assert_int_equal(gmpd_sm2_keygen(rb, &b.tmp), GMP_OK);
    assert_int_equal(gmpd_sm2_exchange(NULL, true, da, ra, &a, &b, ka, 48),
                     GMP_OK);
    assert_int_equal(gmpd_sm2_exchange(NULL, false, db, rb, &b, &a, kb, 48),
                     GMP_OK);
    assert_memory_equal(ka, kb, 48);
    /* the peer's ID is part of the key */
    gmpd_sm2_party other = b;
    other.id = (const uint8_t *)"someone else";
    other.id_len = 12;
    assert_int_equal(gmpd_sm2_exchange(NULL, true, da, ra, &a, &other, kb,
                                       48), GMP_OK);
    assert_memory_not_equal(ka, kb, 48);
    /* a peer point off the curve */
    other = b;
    other.tmp.x[0] ^= 1;
    assert_int_equal(gmpd_sm2_exchange(NULL, true, da, ra, &a, &other, kb,
                                       48), GMP_ERR_KEY);
    assert_int_equal(gmpd_sm2_exchange(NULL, true, da, ra, &a, &b, kb, 0),
                     GMP_ERR_ARG);
}

static void test_bad_keys(void **state)
{
    (void)state;
    uint8_t d[L] = {0}, e[L] = {1}, r[L] = {1}, s[L] = {1}, z[L];
    gmpd_sm2_point pub, c1;
    /* d = 0, n - 1, n and above are not private keys */
    assert_int_equal(gmpd_sm2_public(NULL, d, &pub), GMP_ERR_KEY);
    unhex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54122", d, L);
    assert_int_equal(gmpd_sm2_public(NULL, d, &pub), GMP_ERR_KEY);
    assert_int_equal(gmpd_sm2_sign(d, e, r, s), GMP_ERR_KEY);
    memset(d, 0xFF, L);
    assert_int_equal(gmpd_sm2_public(NULL, d, &pub), GMP_ERR_KEY);
    d[0] = 0x01; /* a fine key */
    assert_int_equal(gmpd_sm2_public(NULL, d, &pub), GMP_OK);
    /* public keys off the curve, or with a coordinate >= p */
    gmpd_sm2_point bad = pub;
    bad.x[31] ^= 1;
    assert_int_equal(gmpd_sm2_verify(&bad, e, r, s), GMP_ERR_KEY);
    assert_int_equal(gmpd_sm2_encrypt(&bad, e, L, &c1, z, s), GMP_ERR_KEY);
    assert_int_equal(gmpd_sm2_z(NULL, e, 1, &bad, z), GMP_ERR_KEY);
    memset(bad.x, 0xFF, L);
    assert_int_equal(gmpd_sm2_verify(&bad, e, r, s), GMP_ERR_KEY);
    /* r = 0 is never a signature */
    memset(r, 0, L);
    assert_int_equal(gmpd_sm2_verify(&pub, e, r, s), GMP_ERR_VERIFY);
    assert_int_equal(gmpd_sm2_z(NULL, NULL, 1, &pub, z), GMP_ERR_ARG);
    assert_int_equal(gmpd_sm2_z(NULL, e, GMPD_SM2_ID_MAX + 1, &pub, z),
                     GMP_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard_example),
        cmocka_unit_test(test_signatures_vs_libcrypto),
        cmocka_unit_test(test_encryption),
        cmocka_unit_test(test_exchange_standard),
        cmocka_unit_test(test_exchange_sm2),
        cmocka_unit_test(test_bad_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
