/* libgmpool-sdf against a live daemon: exported symbols, devices and
 * sessions, device information, GB/T 32905 SM3 and GB/T 32907 SM4 known
 * answers (the 1 000 000-round vector through CBC, CFB and OFB of 16 MB),
 * chaining across calls equal to one call, differential checks against
 * libcrypto, CBC-MAC, KEK-wrapped, SM2-wrapped and agreed session keys,
 * SM2 signatures verified by libcrypto (which proves the Z value) and
 * libcrypto's verified here, SM2 encryption both ways, access rights and
 * passwords with lock-out (also across a restart and in parallel), rights
 * voided by a new pair or password, files (writes all or nothing), RSA
 * refused, threads and a close while calls are in flight, fork, handles
 * never reused, the example legacy program, the operator's commands and
 * their wrong forms, keys and agreements across a restart, a second
 * tenant, the error path of every call, and malformed requests on the
 * wire. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "gmpool.h"
#include "harness.h"
#include "proto.h"
#include "sdf.h"
#include "util.h"

#define PWD1 "first-pass"
#define PWD2 "second-pass"
#define PWD3 "third-pass"
#define ID "1234567812345678"

static gmpt_daemon *g_d;
static void *g_dev;

/* ---- fixtures ---- */

/* An admin command given a password on stdin, which must succeed. */
static void ctl_secret(const char *args, const char *secret)
{
    assert_int_equal(gmpt_ctl_input(g_d, NULL, args, secret), 0);
}

static int setup(void **state)
{
    (void)state;
    gmpt_seed(0x5DF0018ull);
    g_d = gmpt_start(NULL);
    assert_int_equal(gmpt_ctl(g_d, NULL, "sdf kek add default 1"), 0);
    ctl_secret("sdf keypair add default 1", PWD1);
    ctl_secret("sdf keypair add default 2", PWD2);
    ctl_secret("sdf keypair add default 3", PWD3);
    setenv("GMPOOL_CREDENTIALS", g_d->creds, 1);
    assert_int_equal(SDF_OpenDevice(&g_dev), SDR_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(SDF_CloseDevice(g_dev), SDR_OK);
    gmpt_stop(g_d);
    return 0;
}

static void *open_session(void)
{
    void *s = NULL;
    assert_int_equal(SDF_OpenSession(g_dev, &s), SDR_OK);
    assert_non_null(s);
    return s;
}

/* The right to the key pairs at idx, with a password. */
static int grant(void *s, unsigned idx, const char *pwd)
{
    return SDF_GetPrivateKeyAccessRight(s, idx, (unsigned char *)pwd,
                                        (unsigned)strlen(pwd));
}

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = strlen(h) / 2;
    assert_int_equal(gmpc_hex_decode(h, out, n), (int)n);
    return n;
}

static void *import_key(void *s, const uint8_t k[16])
{
    void *h = NULL;
    assert_int_equal(SDF_ImportKey(s, (unsigned char *)k, 16, &h), SDR_OK);
    assert_non_null(h);
    return h;
}

/* ---- libcrypto for the differential checks ---- */

static void lc_sm3(const void *p, size_t n, uint8_t md[32])
{
    unsigned len = 0;
    assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sm3(), NULL), 1);
}

static void lc_sm4(const char *name, bool enc, const uint8_t key[16],
                   const uint8_t *iv, const uint8_t *in, size_t n,
                   uint8_t *out)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    assert_int_equal(EVP_CipherInit_ex2(x, c, key, iv, enc, NULL), 1);
    EVP_CIPHER_CTX_set_padding(x, 0);
    assert_int_equal(EVP_CipherUpdate(x, out, &l1, in, (int)n), 1);
    assert_int_equal(EVP_CipherFinal_ex(x, out + l1, &l2), 1);
    assert_int_equal(l1 + l2, (int)n);
    EVP_CIPHER_CTX_free(x);
    EVP_CIPHER_free(c);
}

static EVP_PKEY *lc_key(const ECCrefPublicKey *pub, const ECCrefPrivateKey *priv)
{
    uint8_t oct[65] = {0x04};
    memcpy(oct + 1, pub->x + 32, 32);
    memcpy(oct + 33, pub->y + 32, 32);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    BIGNUM *k = priv ? BN_bin2bn(priv->K + 32, 32, NULL) : NULL;
    OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0);
    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, oct, 65);
    if (k)
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, k);
    OSSL_PARAM *p = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
    EVP_PKEY *pk = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(c), 1);
    assert_int_equal(EVP_PKEY_fromdata(c, &pk, k ? EVP_PKEY_KEYPAIR
                                                 : EVP_PKEY_PUBLIC_KEY, p), 1);
    EVP_PKEY_CTX_free(c);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    BN_free(k);
    return pk;
}

/* DigestSign / DigestVerify with an ID: libcrypto computes Z itself. */
static int lc_digest_sig(EVP_PKEY *pk, bool sign, const void *msg, size_t n,
                         uint8_t *der, size_t *dl)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    assert_int_equal(EVP_PKEY_CTX_set1_id(pc, ID, strlen(ID)), 1);
    EVP_MD_CTX_set_pkey_ctx(md, pc);
    int ok;
    if (sign)
        ok = EVP_DigestSignInit(md, NULL, EVP_sm3(), NULL, NULL) == 1 &&
             EVP_DigestSign(md, der, dl, msg, n) == 1;
    else
        ok = EVP_DigestVerifyInit(md, NULL, EVP_sm3(), NULL, NULL) == 1 &&
             EVP_DigestVerify(md, der, *dl, msg, n) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_CTX_free(pc);
    return ok;
}

static void sig_to_der(const ECCSignature *sig, uint8_t *der, size_t *n)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    ECDSA_SIG_set0(s, BN_bin2bn(sig->r + 32, 32, NULL),
                   BN_bin2bn(sig->s + 32, 32, NULL));
    uint8_t *p = der;
    *n = (size_t)i2d_ECDSA_SIG(s, &p);
    ECDSA_SIG_free(s);
}

static void der_to_sig(const uint8_t *der, size_t n, ECCSignature *sig)
{
    const uint8_t *p = der;
    const BIGNUM *r, *s;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    assert_non_null(es);
    ECDSA_SIG_get0(es, &r, &s);
    memset(sig, 0, sizeof *sig);
    BN_bn2binpad(r, sig->r + 32, 32);
    BN_bn2binpad(s, sig->s + 32, 32);
    ECDSA_SIG_free(es);
}

/* An ECCCipher with room for n bytes of C. */
static ECCCipher *cipher_new(size_t n)
{
    ECCCipher *c = calloc(1, offsetof(ECCCipher, C) + n);
    assert_non_null(c);
    return c;
}

/* libcrypto's DER ciphertext as an ECCCipher. */
static ECCCipher *lc_encrypt(EVP_PKEY *pk, const uint8_t *in, size_t n)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    uint8_t der[2048];
    size_t dl = sizeof der;
    assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
    assert_int_equal(EVP_PKEY_encrypt(c, der, &dl, in, n), 1);
    EVP_PKEY_CTX_free(c);
    const uint8_t *p = der;
    STACK_OF(ASN1_TYPE) *sk = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)dl);
    ECCCipher *e = cipher_new(n);
    for (int i = 0; i < 2; i++) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(sk_ASN1_TYPE_value(sk, i)->value.integer,
                                        NULL);
        BN_bn2binpad(bn, (i ? e->y : e->x) + 32, 32);
        BN_free(bn);
    }
    ASN1_OCTET_STRING *h = sk_ASN1_TYPE_value(sk, 2)->value.octet_string;
    ASN1_OCTET_STRING *ct = sk_ASN1_TYPE_value(sk, 3)->value.octet_string;
    memcpy(e->M, ASN1_STRING_get0_data(h), 32);
    e->L = (unsigned int)ASN1_STRING_length(ct);
    memcpy((uint8_t *)e + offsetof(ECCCipher, C), ASN1_STRING_get0_data(ct),
           e->L);
    sk_ASN1_TYPE_pop_free(sk, ASN1_TYPE_free);
    return e;
}

/* SM3 with Z through the library: the e a signature signs. */
static void sdf_e(void *s, ECCrefPublicKey *pub, const void *msg, size_t n,
                  uint8_t e[32])
{
    unsigned int len = 0;
    assert_int_equal(SDF_HashInit(s, SGD_SM3, pub, (unsigned char *)ID,
                                  strlen(ID)), SDR_OK);
    assert_int_equal(SDF_HashUpdate(s, (unsigned char *)msg, (unsigned)n),
                     SDR_OK);
    assert_int_equal(SDF_HashFinal(s, e, &len), SDR_OK);
    assert_int_equal(len, 32);
}

/* ---- symbols, devices, sessions ---- */

static const char *const g_exports[] = {
    "SDF_OpenDevice", "SDF_CloseDevice", "SDF_OpenSession",
    "SDF_CloseSession", "SDF_GetDeviceInfo", "SDF_GenerateRandom",
    "SDF_GetPrivateKeyAccessRight", "SDF_ReleasePrivateKeyAccessRight",
    "SDF_ExportSignPublicKey_RSA", "SDF_ExportEncPublicKey_RSA",
    "SDF_GenerateKeyPair_RSA", "SDF_GenerateKeyWithIPK_RSA",
    "SDF_GenerateKeyWithEPK_RSA", "SDF_ImportKeyWithISK_RSA",
    "SDF_ExchangeDigitEnvelopeBaseOnRSA", "SDF_ExportSignPublicKey_ECC",
    "SDF_ExportEncPublicKey_ECC", "SDF_GenerateKeyPair_ECC",
    "SDF_GenerateKeyWithIPK_ECC", "SDF_GenerateKeyWithEPK_ECC",
    "SDF_ImportKeyWithISK_ECC", "SDF_GenerateAgreementDataWithECC",
    "SDF_GenerateKeyWithECC", "SDF_GenerateAgreementDataAndKeyWithECC",
    "SDF_ExchangeDigitEnvelopeBaseOnECC", "SDF_GenerateKeyWithKEK",
    "SDF_ImportKeyWithKEK", "SDF_DestroyKey",
    "SDF_ExternalPublicKeyOperation_RSA",
    "SDF_InternalPublicKeyOperation_RSA",
    "SDF_InternalPrivateKeyOperation_RSA", "SDF_ExternalVerify_ECC",
    "SDF_InternalSign_ECC", "SDF_InternalVerify_ECC",
    "SDF_ExternalEncrypt_ECC", "SDF_Encrypt", "SDF_Decrypt",
    "SDF_CalculateMAC", "SDF_HashInit", "SDF_HashUpdate", "SDF_HashFinal",
    "SDF_CreateFile", "SDF_ReadFile", "SDF_WriteFile", "SDF_DeleteFile",
    /* beyond the 45: */
    "SDF_InternalEncrypt_ECC", "SDF_InternalDecrypt_ECC", "SDF_ImportKey"};

static void test_exports(void **state)
{
    (void)state;
    void *lib = dlopen(getenv("GMPOOL_SDF_LIBRARY"), RTLD_NOW);
    assert_non_null(lib);
    assert_int_equal(sizeof g_exports / sizeof *g_exports, 48);
    for (size_t i = 0; i < sizeof g_exports / sizeof *g_exports; i++)
        if (!dlsym(lib, g_exports[i]))
            fail_msg("%s is not exported", g_exports[i]);
    /* the client library inside stays hidden */
    assert_null(dlsym(lib, "gmp_client_open"));
    assert_null(dlsym(lib, "gmpc_libctx"));
    assert_null(dlsym(lib, "sdf_rv"));
    dlclose(lib);
}

static void test_device_and_sessions(void **state)
{
    (void)state;
    void *dev = NULL, *s = NULL, *s2 = NULL, *garbage = &dev;
    DEVICEINFO info;
    assert_int_equal(SDF_OpenDevice(NULL), SDR_OUTARGERR);
    assert_int_equal(SDF_OpenDevice(&dev), SDR_OK);
    assert_int_equal(SDF_OpenSession(dev, NULL), SDR_OUTARGERR);
    assert_int_equal(SDF_OpenSession(NULL, &s), SDR_OPENDEVICE);
    assert_int_equal(SDF_OpenSession(garbage, &s), SDR_OPENDEVICE);
    assert_null(s);
    assert_int_equal(SDF_OpenSession(dev, &s), SDR_OK);
    assert_int_equal(SDF_OpenSession(dev, &s2), SDR_OK);
    assert_ptr_not_equal(s, s2);

    assert_int_equal(SDF_GetDeviceInfo(s, NULL), SDR_OUTARGERR);
    assert_int_equal(SDF_GetDeviceInfo(s, &info), SDR_OK);
    assert_string_equal((char *)info.IssuerName, "gmpool");
    assert_memory_equal(info.DeviceSerial, "VCM", 3);
    assert_int_equal(info.StandardVersion, 1);
    assert_int_equal(info.AsymAlgAbility[0],
                     SGD_SM2_1 | SGD_SM2_2 | SGD_SM2_3);
    assert_int_equal(info.AsymAlgAbility[1], 256);
    assert_int_equal(info.SymAlgAbility, SGD_SM4_ECB | SGD_SM4_CBC |
                                             SGD_SM4_CFB | SGD_SM4_OFB |
                                             SGD_SM4_MAC);
    assert_int_equal(info.HashAlgAbility, SGD_SM3);
    assert_int_equal(info.BufferSize, 1024 * 1024); /* the VCM's files */

    /* bad, closed and made-up handles */
    assert_int_equal(SDF_GetDeviceInfo(NULL, &info), SDR_OPENSESSION);
    assert_int_equal(SDF_GetDeviceInfo(garbage, &info), SDR_OPENSESSION);
    assert_int_equal(SDF_GetDeviceInfo(dev, &info), SDR_OPENSESSION);
    assert_int_equal(SDF_CloseSession(s), SDR_OK);
    assert_int_equal(SDF_CloseSession(s), SDR_OPENSESSION);
    assert_int_equal(SDF_GetDeviceInfo(s, &info), SDR_OPENSESSION);
    assert_int_equal(SDF_CloseSession(NULL), SDR_OPENSESSION);
    assert_int_equal(SDF_CloseDevice(s2), SDR_OPENDEVICE);
    /* closing the device closes its sessions */
    assert_int_equal(SDF_CloseDevice(dev), SDR_OK);
    assert_int_equal(SDF_GetDeviceInfo(s2, &info), SDR_OPENSESSION);
    assert_int_equal(SDF_CloseSession(s2), SDR_OPENSESSION);
    assert_int_equal(SDF_CloseDevice(dev), SDR_OPENDEVICE);
    assert_int_equal(SDF_CloseDevice(NULL), SDR_OPENDEVICE);
    assert_int_equal(SDF_OpenSession(dev, &s), SDR_OPENDEVICE);
}

/* A closed handle stays closed, whatever is opened after it, even where
 * the library's memory is reused. */
static void test_handles_not_reused(void **state)
{
    (void)state;
    void *closed[8], *s = NULL;
    DEVICEINFO info;
    for (int i = 0; i < 8; i++) {
        s = open_session();
        for (int j = 0; j < i; j++) {
            assert_ptr_not_equal(s, closed[j]);
            assert_int_equal(SDF_GetDeviceInfo(closed[j], &info),
                             SDR_OPENSESSION);
        }
        assert_int_equal(SDF_CloseSession(s), SDR_OK);
        closed[i] = s;
    }
    for (int i = 0; i < 8; i++) {
        void *dev = NULL;
        assert_int_equal(SDF_OpenDevice(&dev), SDR_OK);
        for (int j = 0; j < i; j++) {
            assert_ptr_not_equal(dev, closed[j]);
            assert_int_equal(SDF_OpenSession(closed[j], &s), SDR_OPENDEVICE);
        }
        /* a session's handle is no device's, nor the other way round */
        assert_int_equal(SDF_OpenSession(dev, &s), SDR_OK);
        assert_int_equal(SDF_OpenSession(s, &s), SDR_OPENDEVICE);
        assert_int_equal(SDF_GetDeviceInfo(dev, &info), SDR_OPENSESSION);
        assert_int_equal(SDF_CloseDevice(dev), SDR_OK);
        closed[i] = dev;
    }
}

static void test_device_without_pool(void **state)
{
    (void)state;
    void *dev = (void *)1;
    char *saved = strdup(getenv("GMPOOL_CREDENTIALS"));
    setenv("GMPOOL_CREDENTIALS", "/nonexistent/credentials", 1);
    assert_int_equal(SDF_OpenDevice(&dev), SDR_OPENDEVICE);
    assert_null(dev);
    setenv("GMPOOL_CREDENTIALS", saved, 1);
    free(saved);
}

static void test_random(void **state)
{
    (void)state;
    void *s = open_session();
    uint8_t *a = calloc(1, 100000), *b = calloc(1, 100000);
    assert_int_equal(SDF_GenerateRandom(s, 100000, a), SDR_OK);
    assert_int_equal(SDF_GenerateRandom(s, 100000, b), SDR_OK);
    assert_memory_not_equal(a, b, 100000);
    assert_int_equal(SDF_GenerateRandom(s, 0, a), SDR_INARGERR);
    assert_int_equal(SDF_GenerateRandom(s, 16, NULL), SDR_OUTARGERR);
    assert_int_equal(SDF_GenerateRandom(NULL, 16, a), SDR_OPENSESSION);
    free(a);
    free(b);
    SDF_CloseSession(s);
}

/* ---- hash ---- */

static void test_sm3(void **state)
{
    (void)state;
    void *s = open_session();
    uint8_t md[32], want[32], abcd[64];
    unsigned int len = 0;
    /* GB/T 32905 examples */
    assert_int_equal(SDF_HashInit(s, SGD_SM3, NULL, NULL, 0), SDR_OK);
    assert_int_equal(SDF_HashUpdate(s, (unsigned char *)"abc", 3), SDR_OK);
    assert_int_equal(SDF_HashFinal(s, md, &len), SDR_OK);
    assert_int_equal(len, 32);
    unhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
          want);
    assert_memory_equal(md, want, 32);
    for (int i = 0; i < 64; i++)
        abcd[i] = (uint8_t)"abcd"[i % 4];
    assert_int_equal(SDF_HashInit(s, SGD_SM3, NULL, NULL, 0), SDR_OK);
    assert_int_equal(SDF_HashUpdate(s, abcd, 64), SDR_OK);
    assert_int_equal(SDF_HashFinal(s, md, &len), SDR_OK);
    unhex("debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732",
          want);
    assert_memory_equal(md, want, 32);

    /* 5 MB in random pieces, pipelined, against libcrypto */
    size_t n = 5u << 20;
    uint8_t *data = gmpt_random_bytes(n);
    assert_int_equal(SDF_HashInit(s, SGD_SM3, NULL, NULL, 0), SDR_OK);
    for (size_t off = 0; off < n;) {
        size_t k = 1 + gmpt_rand() % (1u << 20);
        if (k > n - off)
            k = n - off;
        assert_int_equal(SDF_HashUpdate(s, data + off, (unsigned)k), SDR_OK);
        off += k;
    }
    assert_int_equal(SDF_HashFinal(s, md, &len), SDR_OK);
    lc_sm3(data, n, want);
    assert_memory_equal(md, want, 32);
    free(data);

    /* out of order, unknown algorithms, bad arguments */
    assert_int_equal(SDF_HashUpdate(s, abcd, 4), SDR_STEPERR);
    assert_int_equal(SDF_HashFinal(s, md, &len), SDR_STEPERR);
    assert_int_equal(SDF_HashInit(s, SGD_SHA256, NULL, NULL, 0),
                     SDR_ALGNOTSUPPORT);
    assert_int_equal(SDF_HashUpdate(s, abcd, 4), SDR_STEPERR);
    assert_int_equal(SDF_HashInit(s, 0x12345, NULL, NULL, 0),
                     SDR_ALGNOTSUPPORT);
    assert_int_equal(SDF_HashInit(s, SGD_SM3, NULL, NULL, 5), SDR_INARGERR);
    ECCrefPublicKey bad = {.bits = 256};
    assert_int_equal(SDF_HashInit(s, SGD_SM3, &bad, (unsigned char *)ID, 16),
                     SDR_KEYERR); /* (0, 0) is not on the curve */
    bad.bits = 255;
    assert_int_equal(SDF_HashInit(s, SGD_SM3, &bad, (unsigned char *)ID, 16),
                     SDR_INARGERR);
    assert_int_equal(SDF_HashInit(s, SGD_SM3, NULL, NULL, 0), SDR_OK);
    assert_int_equal(SDF_HashUpdate(s, NULL, 4), SDR_INARGERR);
    assert_int_equal(SDF_HashFinal(s, NULL, &len), SDR_OUTARGERR);
    /* the hash is still open after a refused call; a new Init restarts */
    assert_int_equal(SDF_HashUpdate(s, (unsigned char *)"ab", 2), SDR_OK);
    assert_int_equal(SDF_HashInit(s, SGD_SM3, NULL, NULL, 0), SDR_OK);
    assert_int_equal(SDF_HashUpdate(s, (unsigned char *)"abc", 3), SDR_OK);
    assert_int_equal(SDF_HashFinal(s, md, &len), SDR_OK);
    unhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
          want);
    assert_memory_equal(md, want, 32);
    SDF_CloseSession(s);
}

/* ---- SM4 ---- */

static const char KAT_KEY[] = "0123456789abcdeffedcba9876543210";

static void test_sm4_known_answers(void **state)
{
    (void)state;
    void *s = open_session();
    uint8_t key[16], pt[16], ct[16], want[16], iv[16];
    unsigned int len = 0;
    unhex(KAT_KEY, key);
    unhex(KAT_KEY, pt);
    void *k = import_key(s, key);
    /* GB/T 32907 example 1 */
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM4_ECB, NULL, pt, 16, ct, &len),
                     SDR_OK);
    assert_int_equal(len, 16);
    unhex("681edf34d206965e86b3e94f536e4246", want);
    assert_memory_equal(ct, want, 16);
    assert_int_equal(SDF_Decrypt(s, k, SGD_SM4_ECB, NULL, ct, 16, ct, &len),
                     SDR_OK);
    assert_memory_equal(ct, pt, 16);

    /* example 2, 1 000 000 encryptions, as one 16 MB call each in CBC
     * (IV 0, then zero blocks), CFB and OFB (IV = P, zero data): every
     * block is E of the one before, so the last is E^1000000(P) */
    const size_t rounds = 1000000, n = 16 * rounds;
    uint8_t *data = calloc(1, n), *out = malloc(n);
    assert_non_null(data);
    assert_non_null(out);
    unhex("595298c7c6fd271f0402f804c33d3f66", want);
    memcpy(data, pt, 16);
    memset(iv, 0, 16);
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM4_CBC, iv, data, (unsigned)n,
                                 out, &len), SDR_OK);
    assert_int_equal(len, n);
    assert_memory_equal(out + n - 16, want, 16);
    assert_memory_equal(iv, want, 16); /* the IV moved on with the chain */
    memset(data, 0, 16);
    const unsigned modes[] = {SGD_SM4_CFB, SGD_SM4_OFB};
    for (int m = 0; m < 2; m++) {
        memcpy(iv, pt, 16);
        assert_int_equal(SDF_Encrypt(s, k, modes[m], iv, data, (unsigned)n,
                                     out, &len), SDR_OK);
        assert_memory_equal(out + n - 16, want, 16);
    }
    free(data);
    free(out);
    SDF_DestroyKey(s, k);
    SDF_CloseSession(s);
}

/* Each mode, both directions: one large call against libcrypto, the same
 * in random block-aligned pieces with the IV carried in place, and the
 * same again in place (output over input). */
static void one_mode(void *s, void *k, const uint8_t key[16], unsigned alg,
                     const char *lc_name, const uint8_t *data, size_t n)
{
    uint8_t iv0[16], iv[16], *want = malloc(n), *got = malloc(n),
                             *tmp = malloc(n);
    unsigned int len = 0;
    for (int i = 0; i < 16; i++)
        iv0[i] = (uint8_t)gmpt_rand();
    for (int dir = 0; dir < 2; dir++) {
        bool enc = dir == 0;
        lc_sm4(lc_name, enc, key, alg == SGD_SM4_ECB ? NULL : iv0, data, n,
               want);
        memcpy(iv, iv0, 16);
        int rv = enc ? SDF_Encrypt(s, k, alg, iv, (uint8_t *)data,
                                   (unsigned)n, got, &len)
                     : SDF_Decrypt(s, k, alg, iv, (uint8_t *)data,
                                   (unsigned)n, got, &len);
        assert_int_equal(rv, SDR_OK);
        assert_int_equal(len, n);
        assert_memory_equal(got, want, n);
        uint8_t iv_one[16];
        memcpy(iv_one, iv, 16);

        memcpy(tmp, data, n);
        memcpy(iv, iv0, 16);
        for (size_t off = 0; off < n;) {
            size_t piece = 16 * (1 + gmpt_rand() % 8192);
            if (piece > n - off)
                piece = n - off;
            rv = enc ? SDF_Encrypt(s, k, alg, iv, tmp + off, (unsigned)piece,
                                   tmp + off, &len)
                     : SDF_Decrypt(s, k, alg, iv, tmp + off, (unsigned)piece,
                                   tmp + off, &len);
            assert_int_equal(rv, SDR_OK);
            assert_int_equal(len, piece);
            off += piece;
        }
        assert_memory_equal(tmp, want, n);
        if (alg != SGD_SM4_ECB)
            assert_memory_equal(iv, iv_one, 16);
    }
    free(want);
    free(got);
    free(tmp);
}

static void test_sm4_chaining_vs_libcrypto(void **state)
{
    (void)state;
    void *s = open_session();
    uint8_t key[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)gmpt_rand();
    void *k = import_key(s, key);
    size_t n = 3u << 20;
    uint8_t *data = gmpt_random_bytes(n);
    one_mode(s, k, key, SGD_SM4_ECB, "SM4-ECB", data, n);
    one_mode(s, k, key, SGD_SM4_CBC, "SM4-CBC", data, n);
    one_mode(s, k, key, SGD_SM4_CFB, "SM4-CFB", data, n);
    one_mode(s, k, key, SGD_SM4_OFB, "SM4-OFB", data, n);
    free(data);
    SDF_CloseSession(s);
}

static void test_mac(void **state)
{
    (void)state;
    void *s = open_session();
    uint8_t key[16], iv[16] = {0}, iv0[16], mac[16], *want;
    unsigned int len = 0;
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)gmpt_rand();
    void *k = import_key(s, key);
    size_t n = (2u << 20) + 48; /* more than one scratch chunk */
    uint8_t *data = gmpt_random_bytes(n);
    want = malloc(n);
    for (int i = 0; i < 16; i++)
        iv0[i] = (uint8_t)gmpt_rand();
    lc_sm4("SM4-CBC", true, key, iv0, data, n, want);
    memcpy(iv, iv0, 16);
    assert_int_equal(SDF_CalculateMAC(s, k, SGD_SM4_MAC, iv, data,
                                      (unsigned)n, mac, &len), SDR_OK);
    assert_int_equal(len, 16);
    assert_memory_equal(mac, want + n - 16, 16);
    assert_memory_equal(iv, mac, 16);
    /* in two calls, chained by the IV */
    memcpy(iv, iv0, 16);
    assert_int_equal(SDF_CalculateMAC(s, k, SGD_SM4_MAC, iv, data, 1 << 20,
                                      mac, &len), SDR_OK);
    assert_int_equal(SDF_CalculateMAC(s, k, SGD_SM4_MAC, iv, data + (1 << 20),
                                      (unsigned)(n - (1 << 20)), mac, &len),
                     SDR_OK);
    assert_memory_equal(mac, want + n - 16, 16);
    /* length query, and the errors */
    len = 0;
    memcpy(iv0, iv, 16);
    assert_int_equal(SDF_CalculateMAC(s, k, SGD_SM4_MAC, iv, data, 32, NULL,
                                      &len), SDR_OK);
    assert_int_equal(len, 16);
    assert_memory_equal(iv, iv0, 16); /* a query moves nothing */
    assert_int_equal(SDF_CalculateMAC(s, k, SGD_SM4_MAC, iv, data, 33, mac,
                                      &len), SDR_INARGERR);
    assert_int_equal(SDF_CalculateMAC(s, k, SGD_SM4_MAC, iv, data, 0, mac,
                                      &len), SDR_INARGERR);
    assert_int_equal(SDF_CalculateMAC(s, k, SGD_SM4_MAC, NULL, data, 16, mac,
                                      &len), SDR_INARGERR);
    assert_int_equal(SDF_CalculateMAC(s, k, SGD_SM4_MAC, iv, data, 16, mac,
                                      NULL), SDR_OUTARGERR);
    assert_int_equal(SDF_CalculateMAC(s, k, SGD_SM4_CBC, iv, data, 16, mac,
                                      &len), SDR_ALGMODNOTSUPPORT);
    assert_int_equal(SDF_CalculateMAC(s, k, SGD_SM1_MAC, iv, data, 16, mac,
                                      &len), SDR_ALGNOTSUPPORT);
    assert_int_equal(SDF_CalculateMAC(s, (void *)77, SGD_SM4_MAC, iv, data,
                                      16, mac, &len), SDR_KEYNOTEXIST);
    free(data);
    free(want);
    SDF_CloseSession(s);
}

static void test_sm4_errors(void **state)
{
    (void)state;
    void *s = open_session(), *s2 = open_session(), *k2 = NULL;
    uint8_t key[16] = {1}, iv[16] = {0}, iv0[16] = {0}, buf[64] = {0};
    unsigned int len = 0;
    void *k = import_key(s, key);
    /* algorithm ids */
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM4_MAC, iv, buf, 16, buf, &len),
                     SDR_ALGMODNOTSUPPORT);
    assert_int_equal(SDF_Encrypt(s, k, 0x00000420 /* SM4-CTR */, iv, buf, 16,
                                 buf, &len), SDR_ALGMODNOTSUPPORT);
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM1_ECB, iv, buf, 16, buf, &len),
                     SDR_ALGNOTSUPPORT);
    assert_int_equal(SDF_Decrypt(s, k, 0xdeadbeef, iv, buf, 16, buf, &len),
                     SDR_ALGNOTSUPPORT);
    /* lengths: no padding in any mode */
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM4_CBC, iv, buf, 17, buf, &len),
                     SDR_INARGERR);
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM4_OFB, iv, buf, 8, buf, &len),
                     SDR_INARGERR);
    assert_int_equal(SDF_Decrypt(s, k, SGD_SM4_ECB, NULL, buf, 31, buf, &len),
                     SDR_INARGERR);
    /* IV, input and output */
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM4_CBC, NULL, buf, 16, buf, &len),
                     SDR_INARGERR);
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM4_CBC, iv, NULL, 16, buf, &len),
                     SDR_INARGERR);
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM4_CBC, iv, buf, 16, buf, NULL),
                     SDR_OUTARGERR);
    /* a NULL output asks for the length and moves nothing */
    len = 0;
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM4_CBC, iv, buf, 48, NULL, &len),
                     SDR_OK);
    assert_int_equal(len, 48);
    assert_memory_equal(iv, iv0, 16);
    len = 0;
    assert_int_equal(SDF_Decrypt(s, k, SGD_SM4_CBC, iv, buf, 32, NULL, &len),
                     SDR_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(iv, iv0, 16);
    assert_int_equal(SDF_Decrypt(s, k, SGD_SM4_CBC, iv, buf, 32, NULL, NULL),
                     SDR_OUTARGERR);
    assert_int_equal(SDF_Decrypt(s, k, SGD_SM4_CBC, iv, buf, 31, NULL, &len),
                     SDR_INARGERR);
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM4_CBC, iv, buf, 0, buf, &len),
                     SDR_OK);
    assert_int_equal(len, 0);
    /* keys: made-up, another session's, destroyed */
    assert_int_equal(SDF_Encrypt(s, NULL, SGD_SM4_ECB, NULL, buf, 16, buf,
                                 &len), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_Encrypt(s, (void *)0x7fffffff, SGD_SM4_ECB, NULL,
                                 buf, 16, buf, &len), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_Encrypt(s, (void *)buf, SGD_SM4_ECB, NULL, buf, 16,
                                 buf, &len), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_Encrypt(s2, k, SGD_SM4_ECB, NULL, buf, 16, buf,
                                 &len), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_DestroyKey(s2, k), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_DestroyKey(s, k), SDR_OK);
    assert_int_equal(SDF_Encrypt(s, k, SGD_SM4_ECB, NULL, buf, 16, buf, &len),
                     SDR_KEYNOTEXIST);
    assert_int_equal(SDF_DestroyKey(s, k), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_ImportKey(s, key, 15, &k2), SDR_INARGERR);
    assert_int_equal(SDF_ImportKey(s, NULL, 16, &k2), SDR_INARGERR);
    assert_int_equal(SDF_ImportKey(s, key, 16, NULL), SDR_OUTARGERR);
    /* a session's keys end with it */
    k2 = import_key(s2, key);
    SDF_CloseSession(s2);
    assert_int_equal(SDF_Encrypt(s2, k2, SGD_SM4_ECB, NULL, buf, 16, buf,
                                 &len), SDR_OPENSESSION);
    assert_int_equal(SDF_DestroyKey(s2, k2), SDR_OPENSESSION);
    SDF_CloseSession(s);
}

/* ---- session keys under a KEK ---- */

static void encrypt_decrypt_match(void *s1, void *k1, void *s2, void *k2)
{
    uint8_t data[4096], enc[4096], dec[4096], iv[16] = {0};
    unsigned int len = 0;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)gmpt_rand();
    assert_int_equal(SDF_Encrypt(s1, k1, SGD_SM4_CBC, iv, data, sizeof data,
                                 enc, &len), SDR_OK);
    memset(iv, 0, 16);
    assert_int_equal(SDF_Decrypt(s2, k2, SGD_SM4_CBC, iv, enc, sizeof enc,
                                 dec, &len), SDR_OK);
    assert_memory_equal(dec, data, sizeof data);
}

static void test_kek_session_keys(void **state)
{
    (void)state;
    void *s1 = open_session(), *s2 = open_session(), *k1 = NULL, *k2 = NULL;
    uint8_t wrapped[64], w2[64];
    unsigned int wl = 0, wl2 = 0;
    assert_int_equal(SDF_GenerateKeyWithKEK(s1, 128, SGD_SM4_ECB, 1, wrapped,
                                            &wl, &k1), SDR_OK);
    assert_int_equal(wl, 16);
    assert_int_equal(SDF_ImportKeyWithKEK(s2, SGD_SM4_ECB, 1, wrapped, wl,
                                          &k2), SDR_OK);
    encrypt_decrypt_match(s1, k1, s2, k2);
    /* a second key is another key */
    void *k3 = NULL;
    assert_int_equal(SDF_GenerateKeyWithKEK(s1, 128, SGD_SM4_ECB, 1, w2, &wl2,
                                            &k3), SDR_OK);
    assert_memory_not_equal(w2, wrapped, 16);
    /* the errors */
    assert_int_equal(SDF_GenerateKeyWithKEK(s1, 128, SGD_SM4_ECB, 9, w2, &wl2,
                                            &k3), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_GenerateKeyWithKEK(s1, 128, SGD_SM4_ECB, 0, w2, &wl2,
                                            &k3), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_GenerateKeyWithKEK(s1, 256, SGD_SM4_ECB, 1, w2, &wl2,
                                            &k3), SDR_INARGERR);
    assert_int_equal(SDF_GenerateKeyWithKEK(s1, 128, SGD_SM4_CBC, 1, w2, &wl2,
                                            &k3), SDR_ALGMODNOTSUPPORT);
    assert_int_equal(SDF_GenerateKeyWithKEK(s1, 128, SGD_SM1_ECB, 1, w2, &wl2,
                                            &k3), SDR_ALGNOTSUPPORT);
    assert_int_equal(SDF_GenerateKeyWithKEK(s1, 128, SGD_SM4_ECB, 1, NULL,
                                            &wl2, &k3), SDR_OUTARGERR);
    assert_int_equal(SDF_GenerateKeyWithKEK(s1, 128, SGD_SM4_ECB, 1, w2, &wl2,
                                            NULL), SDR_OUTARGERR);
    assert_int_equal(SDF_ImportKeyWithKEK(s2, SGD_SM4_ECB, 1, wrapped, 15,
                                          &k3), SDR_INARGERR);
    assert_int_equal(SDF_ImportKeyWithKEK(s2, SGD_SM4_ECB, 2, wrapped, 16,
                                          &k3), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_ImportKeyWithKEK(s2, SGD_SM4_ECB, 1, NULL, 16, &k3),
                     SDR_INARGERR);
    SDF_CloseSession(s1);
    SDF_CloseSession(s2);
}

/* ---- SM2 ---- */

static void test_generate_key_pair(void **state)
{
    (void)state;
    void *s = open_session();
    ECCrefPublicKey pub;
    ECCrefPrivateKey priv;
    assert_int_equal(SDF_GenerateKeyPair_ECC(s, SGD_SM2_1, 256, &pub, &priv),
                     SDR_OK);
    assert_int_equal(pub.bits, 256);
    assert_int_equal(priv.bits, 256);
    uint8_t zero[32] = {0};
    assert_memory_equal(pub.x, zero, 32); /* right-aligned */
    assert_memory_equal(priv.K, zero, 32);
    /* the pair belongs together: libcrypto computes d.G */
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_sm2);
    EC_POINT *p = EC_POINT_new(g);
    BIGNUM *d = BN_bin2bn(priv.K + 32, 32, NULL), *x = BN_new(), *y = BN_new();
    assert_int_equal(EC_POINT_mul(g, p, d, NULL, NULL, NULL), 1);
    assert_int_equal(EC_POINT_get_affine_coordinates(g, p, x, y, NULL), 1);
    uint8_t bx[32], by[32];
    BN_bn2binpad(x, bx, 32);
    BN_bn2binpad(y, by, 32);
    assert_memory_equal(pub.x + 32, bx, 32);
    assert_memory_equal(pub.y + 32, by, 32);
    BN_free(d);
    BN_free(x);
    BN_free(y);
    EC_POINT_free(p);
    EC_GROUP_free(g);
    assert_int_equal(SDF_GenerateKeyPair_ECC(s, SGD_SM4_ECB, 256, &pub,
                                             &priv), SDR_ALGNOTSUPPORT);
    assert_int_equal(SDF_GenerateKeyPair_ECC(s, SGD_SM2_3, 512, &pub, &priv),
                     SDR_INARGERR);
    assert_int_equal(SDF_GenerateKeyPair_ECC(s, SGD_SM2_3, 256, NULL, &priv),
                     SDR_OUTARGERR);
    SDF_CloseSession(s);
}

static void test_access_rights(void **state)
{
    (void)state;
    void *s = open_session(), *s2 = open_session();
    uint8_t e[32] = {1};
    ECCSignature sig;
    /* no right, a wrong password, a key pair that does not exist */
    assert_int_equal(SDF_InternalSign_ECC(s, 1, e, 32, &sig), SDR_PARDENY);
    assert_int_equal(grant(s, 1, "nope"), SDR_PRKRERR);
    assert_int_equal(SDF_InternalSign_ECC(s, 1, e, 32, &sig), SDR_PARDENY);
    assert_int_equal(grant(s, 9, PWD1), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_GetPrivateKeyAccessRight(s, 1, NULL, 4),
                     SDR_INARGERR);
    /* another index's password opens nothing here */
    assert_int_equal(grant(s, 1, PWD2), SDR_PRKRERR);
    assert_int_equal(grant(s, 1, PWD1), SDR_OK);
    assert_int_equal(SDF_InternalSign_ECC(s, 1, e, 32, &sig), SDR_OK);
    /* per session, per index */
    assert_int_equal(SDF_InternalSign_ECC(s2, 1, e, 32, &sig), SDR_PARDENY);
    assert_int_equal(SDF_InternalSign_ECC(s, 2, e, 32, &sig), SDR_PARDENY);
    assert_int_equal(SDF_ReleasePrivateKeyAccessRight(s, 1), SDR_OK);
    assert_int_equal(SDF_InternalSign_ECC(s, 1, e, 32, &sig), SDR_PARDENY);
    assert_int_equal(SDF_ReleasePrivateKeyAccessRight(s, 0), SDR_KEYNOTEXIST);
    SDF_CloseSession(s);
    SDF_CloseSession(s2);
}

/* Ten wrong passwords lock the pair, even against the right one, until
 * the operator sets a new password. */
static void test_password_lockout(void **state)
{
    (void)state;
    void *s = open_session();
    for (int i = 0; i < 10; i++)
        assert_int_equal(grant(s, 3, "wrong-one"), SDR_PRKRERR);
    assert_int_equal(grant(s, 3, PWD3), SDR_PRKRERR);
    char *out = NULL;
    assert_int_equal(gmpt_ctl(g_d, &out, "sdf list default"), 0);
    assert_non_null(strstr(out, "locked"));
    free(out);
    ctl_secret("sdf password default 3", "renewed-pass");
    assert_int_equal(grant(s, 3, PWD3), SDR_PRKRERR);
    assert_int_equal(grant(s, 3, "renewed-pass"), SDR_OK);
    SDF_CloseSession(s);
}

static int sign_with(void *s, unsigned idx)
{
    uint8_t e[32] = {7};
    ECCSignature sig;
    return SDF_InternalSign_ECC(s, idx, e, 32, &sig);
}

static int decrypt_with(void *s, unsigned idx)
{
    ECCrefPublicKey pub;
    uint8_t msg[16] = {9}, out[16];
    unsigned int len = sizeof out;
    ECCCipher *c = cipher_new(sizeof msg);
    assert_int_equal(SDF_ExportEncPublicKey_ECC(s, idx, &pub), SDR_OK);
    assert_int_equal(SDF_ExternalEncrypt_ECC(s, SGD_SM2_3, &pub, msg,
                                             sizeof msg, c), SDR_OK);
    int rv = SDF_InternalDecrypt_ECC(s, idx, SGD_SM2_3, c, out, &len);
    free(c);
    return rv;
}

/* A right is to the key pair that was there and the password it was
 * given with: the operator replacing the pair (even with the same
 * password) or setting a password (even the same one) voids it. */
static void test_rights_follow_the_pair(void **state)
{
    (void)state;
    void *s = open_session();
    ctl_secret("sdf keypair add default 11", "eleventh-pw");
    assert_int_equal(grant(s, 11, "eleventh-pw"), SDR_OK);
    assert_int_equal(sign_with(s, 11), SDR_OK);
    assert_int_equal(decrypt_with(s, 11), SDR_OK);
    /* a new pair at the index */
    assert_int_equal(gmpt_ctl(g_d, NULL, "sdf keypair delete default 11"), 0);
    assert_int_equal(sign_with(s, 11), SDR_KEYNOTEXIST);
    ctl_secret("sdf keypair add default 11", "eleventh-pw");
    assert_int_equal(sign_with(s, 11), SDR_PARDENY);
    assert_int_equal(decrypt_with(s, 11), SDR_PARDENY);
    assert_int_equal(grant(s, 11, "eleventh-pw"), SDR_OK);
    assert_int_equal(sign_with(s, 11), SDR_OK);
    /* a new password, then the same password set again */
    ctl_secret("sdf password default 11", "eleventh-new");
    assert_int_equal(sign_with(s, 11), SDR_PARDENY);
    assert_int_equal(grant(s, 11, "eleventh-new"), SDR_OK);
    assert_int_equal(decrypt_with(s, 11), SDR_OK);
    ctl_secret("sdf password default 11", "eleventh-new");
    assert_int_equal(decrypt_with(s, 11), SDR_PARDENY);
    assert_int_equal(sign_with(s, 11), SDR_PARDENY);
    assert_int_equal(grant(s, 11, "eleventh-new"), SDR_OK);
    assert_int_equal(sign_with(s, 11), SDR_OK);
    SDF_CloseSession(s);
    assert_int_equal(gmpt_ctl(g_d, NULL, "sdf keypair delete default 11"), 0);
}

typedef struct guesser {
    pthread_barrier_t *start;
    int wrong, locked, other;
} guesser;

/* Three wrong passwords for pair 14 from a daemon session of its own. */
static void *guess_run(void *arg)
{
    guesser *g = arg;
    gmp_options o = gmpt_options(g_d);
    gmp_client *c = NULL;
    if (gmp_client_open(&c, &o) != GMP_OK || gmp_client_connect(c) != GMP_OK)
        g->other++;
    pthread_barrier_wait(g->start);
    for (int i = 0; c && i < 3; i++) {
        int rc = gmp_sdf_unlock(c, 14, "not-the-one", 11);
        g->wrong += rc == GMP_ERR_PIN;
        g->locked += rc == GMP_ERR_PIN_LOCKED;
        g->other += rc != GMP_ERR_PIN && rc != GMP_ERR_PIN_LOCKED;
    }
    gmp_client_close(c);
    return NULL;
}

/* Guesses in parallel each take a count of their own: of 24, exactly ten
 * are checked and the rest find the pair locked. */
static void test_parallel_guesses_counted(void **state)
{
    (void)state;
    enum { N = 8 };
    pthread_t th[N];
    guesser g[N];
    pthread_barrier_t start;
    int wrong = 0, locked = 0;
    ctl_secret("sdf keypair add default 14", "fourteen-pw");
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        g[i] = (guesser){.start = &start};
        assert_int_equal(pthread_create(&th[i], NULL, guess_run, &g[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(g[i].other, 0);
        wrong += g[i].wrong;
        locked += g[i].locked;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(wrong, 10);
    assert_int_equal(locked, 3 * N - 10);
    void *s = open_session();
    assert_int_equal(grant(s, 14, "fourteen-pw"), SDR_PRKRERR);
    SDF_CloseSession(s);
    assert_int_equal(gmpt_ctl(g_d, NULL, "sdf keypair delete default 14"), 0);
}

static void test_signatures(void **state)
{
    (void)state;
    void *s = open_session();
    ECCrefPublicKey pub, pub2;
    ECCSignature sig;
    uint8_t e[32], der[80];
    size_t dl = 0;
    const char msg[] = "signed by an internal SM2 key in the pool";
    assert_int_equal(SDF_ExportSignPublicKey_ECC(s, 1, &pub), SDR_OK);
    assert_int_equal(SDF_ExportEncPublicKey_ECC(s, 1, &pub2), SDR_OK);
    assert_memory_not_equal(pub.x, pub2.x, sizeof pub.x);
    assert_int_equal(grant(s, 1, PWD1), SDR_OK);
    sdf_e(s, &pub, msg, sizeof msg, e);
    assert_int_equal(SDF_InternalSign_ECC(s, 1, e, 32, &sig), SDR_OK);
    /* libcrypto, given the message and ID, verifies it: so Z matched */
    EVP_PKEY *pk = lc_key(&pub, NULL);
    sig_to_der(&sig, der, &dl);
    assert_true(lc_digest_sig(pk, false, msg, sizeof msg, der, &dl));
    EVP_PKEY_free(pk);
    assert_int_equal(SDF_InternalVerify_ECC(s, 1, e, 32, &sig), SDR_OK);
    assert_int_equal(SDF_ExternalVerify_ECC(s, SGD_SM2_1, &pub, e, 32, &sig),
                     SDR_OK);
    /* wrong key, changed digest, changed signature */
    assert_int_equal(SDF_InternalVerify_ECC(s, 2, e, 32, &sig),
                     SDR_VERIFYERR);
    e[3] ^= 1;
    assert_int_equal(SDF_ExternalVerify_ECC(s, SGD_SM2_1, &pub, e, 32, &sig),
                     SDR_VERIFYERR);
    e[3] ^= 1;
    sig.s[63] ^= 1;
    assert_int_equal(SDF_ExternalVerify_ECC(s, SGD_SM2_1, &pub, e, 32, &sig),
                     SDR_VERIFYERR);
    sig.s[0] = 1; /* not right-aligned */
    assert_int_equal(SDF_ExternalVerify_ECC(s, SGD_SM2_1, &pub, e, 32, &sig),
                     SDR_INARGERR);
    sig.s[0] = 0;
    /* arguments */
    assert_int_equal(SDF_InternalSign_ECC(s, 1, e, 31, &sig), SDR_INARGERR);
    assert_int_equal(SDF_InternalSign_ECC(s, 1, NULL, 32, &sig),
                     SDR_INARGERR);
    assert_int_equal(SDF_InternalSign_ECC(s, 1, e, 32, NULL), SDR_OUTARGERR);
    assert_int_equal(SDF_ExternalVerify_ECC(s, SGD_SM2_3, &pub, e, 32, &sig),
                     SDR_ALGNOTSUPPORT);
    assert_int_equal(SDF_ExternalVerify_ECC(s, SGD_SM2_1, NULL, e, 32, &sig),
                     SDR_INARGERR);
    assert_int_equal(SDF_InternalVerify_ECC(s, 0, e, 32, &sig),
                     SDR_KEYNOTEXIST);
    assert_int_equal(SDF_InternalVerify_ECC(s, 77, e, 32, &sig),
                     SDR_KEYNOTEXIST);
    assert_int_equal(SDF_ExportSignPublicKey_ECC(s, 77, &pub),
                     SDR_KEYNOTEXIST);
    assert_int_equal(SDF_ExportSignPublicKey_ECC(s, 1, NULL), SDR_OUTARGERR);
    pub.x[40] ^= 1; /* off the curve */
    assert_int_equal(SDF_ExternalVerify_ECC(s, SGD_SM2_1, &pub, e, 32, &sig),
                     SDR_KEYERR);
    SDF_CloseSession(s);
}

/* A signature libcrypto made verifies here; the digest comes from
 * SDF_Hash with the same public key and ID. */
static void test_libcrypto_signature_verified(void **state)
{
    (void)state;
    void *s = open_session();
    ECCrefPublicKey pub;
    ECCrefPrivateKey priv;
    ECCSignature sig;
    uint8_t e[32], der[80];
    size_t dl = sizeof der;
    const char msg[] = "signed by libcrypto";
    assert_int_equal(SDF_GenerateKeyPair_ECC(s, SGD_SM2_1, 256, &pub, &priv),
                     SDR_OK);
    EVP_PKEY *pk = lc_key(&pub, &priv);
    assert_true(lc_digest_sig(pk, true, msg, sizeof msg, der, &dl));
    der_to_sig(der, dl, &sig);
    sdf_e(s, &pub, msg, sizeof msg, e);
    assert_int_equal(SDF_ExternalVerify_ECC(s, SGD_SM2_1, &pub, e, 32, &sig),
                     SDR_OK);
    /* the default ID stands in when none is given */
    unsigned int len = 0;
    uint8_t e2[32];
    assert_int_equal(SDF_HashInit(s, SGD_SM3, &pub, NULL, 0), SDR_OK);
    assert_int_equal(SDF_HashUpdate(s, (unsigned char *)msg, sizeof msg),
                     SDR_OK);
    assert_int_equal(SDF_HashFinal(s, e2, &len), SDR_OK);
    assert_memory_equal(e2, e, 32);
    EVP_PKEY_free(pk);
    SDF_CloseSession(s);
}

static void test_sm2_encryption(void **state)
{
    (void)state;
    void *s = open_session();
    ECCrefPublicKey pub;
    uint8_t msg[200], out[GMP_SM2_MAX_PLAIN];
    unsigned int len = 0;
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)gmpt_rand();
    assert_int_equal(SDF_ExportEncPublicKey_ECC(s, 1, &pub), SDR_OK);
    ECCCipher *c = cipher_new(sizeof msg);
    assert_int_equal(SDF_ExternalEncrypt_ECC(s, SGD_SM2_3, &pub, msg,
                                             sizeof msg, c), SDR_OK);
    assert_int_equal(c->L, sizeof msg);
    assert_int_equal(SDF_InternalDecrypt_ECC(s, 1, SGD_SM2_3, c, out, &len),
                     SDR_PARDENY);
    assert_int_equal(grant(s, 1, PWD1), SDR_OK);
    assert_int_equal(SDF_InternalDecrypt_ECC(s, 1, SGD_SM2_3, c, out, &len),
                     SDR_OK);
    assert_int_equal(len, sizeof msg);
    assert_memory_equal(out, msg, sizeof msg);
    /* the other decryption key, a changed C3, a changed C2 */
    assert_int_equal(grant(s, 2, PWD2), SDR_OK);
    assert_int_equal(SDF_InternalDecrypt_ECC(s, 2, SGD_SM2_3, c, out, &len),
                     SDR_ENCDATAERR);
    c->M[0] ^= 1;
    assert_int_equal(SDF_InternalDecrypt_ECC(s, 1, SGD_SM2_3, c, out, &len),
                     SDR_ENCDATAERR);
    c->M[0] ^= 1;
    ((uint8_t *)c + offsetof(ECCCipher, C))[5] ^= 1;
    assert_int_equal(SDF_InternalDecrypt_ECC(s, 1, SGD_SM2_3, c, out, &len),
                     SDR_ENCDATAERR);
    free(c);
    /* InternalEncrypt to the same key; libcrypto's ciphertext too */
    c = cipher_new(sizeof msg);
    assert_int_equal(SDF_InternalEncrypt_ECC(s, 1, SGD_SM2_3, msg, sizeof msg,
                                             c), SDR_OK);
    assert_int_equal(SDF_InternalDecrypt_ECC(s, 1, SGD_SM2_3, c, out, &len),
                     SDR_OK);
    assert_memory_equal(out, msg, sizeof msg);
    free(c);
    EVP_PKEY *pk = lc_key(&pub, NULL);
    c = lc_encrypt(pk, msg, sizeof msg);
    assert_int_equal(SDF_InternalDecrypt_ECC(s, 1, SGD_SM2_3, c, out, &len),
                     SDR_OK);
    assert_memory_equal(out, msg, sizeof msg);
    EVP_PKEY_free(pk);
    /* lengths, algorithms, keys */
    c->L = 0;
    assert_int_equal(SDF_InternalDecrypt_ECC(s, 1, SGD_SM2_3, c, out, &len),
                     SDR_INARGERR);
    c->L = GMP_SM2_MAX_PLAIN + 1;
    assert_int_equal(SDF_InternalDecrypt_ECC(s, 1, SGD_SM2_3, c, out, &len),
                     SDR_INARGERR);
    c->L = sizeof msg;
    assert_int_equal(SDF_InternalDecrypt_ECC(s, 1, SGD_SM2_1, c, out, &len),
                     SDR_ALGNOTSUPPORT);
    assert_int_equal(SDF_InternalDecrypt_ECC(s, 1, SGD_SM2_3, c, NULL, &len),
                     SDR_OUTARGERR);
    free(c);
    c = cipher_new(GMP_SM2_MAX_PLAIN + 1);
    assert_int_equal(SDF_ExternalEncrypt_ECC(s, SGD_SM2_3, &pub, msg, 0, c),
                     SDR_INARGERR);
    assert_int_equal(SDF_ExternalEncrypt_ECC(s, SGD_SM2_3, &pub, out,
                                             GMP_SM2_MAX_PLAIN + 1, c),
                     SDR_INARGERR);
    assert_int_equal(SDF_ExternalEncrypt_ECC(s, SGD_SM2_1, &pub, msg, 16, c),
                     SDR_ALGNOTSUPPORT);
    assert_int_equal(SDF_ExternalEncrypt_ECC(s, SGD_SM2_3, NULL, msg, 16, c),
                     SDR_INARGERR);
    assert_int_equal(SDF_ExternalEncrypt_ECC(s, SGD_SM2_3, &pub, msg, 16,
                                             NULL), SDR_OUTARGERR);
    assert_int_equal(SDF_InternalEncrypt_ECC(s, 0, SGD_SM2_3, msg, 16, c),
                     SDR_KEYNOTEXIST);
    pub.bits = 0;
    assert_int_equal(SDF_ExternalEncrypt_ECC(s, SGD_SM2_3, &pub, msg, 16, c),
                     SDR_INARGERR);
    pub.bits = 256;
    pub.y[63] ^= 1;
    assert_int_equal(SDF_ExternalEncrypt_ECC(s, SGD_SM2_3, &pub, msg, 16, c),
                     SDR_KEYERR);
    free(c);
    SDF_CloseSession(s);
}

static void test_sm2_session_keys(void **state)
{
    (void)state;
    void *s1 = open_session(), *s2 = open_session();
    void *k1 = NULL, *k2 = NULL, *k3 = NULL;
    ECCrefPublicKey pub2;
    ECCCipher *c = cipher_new(16), *c2 = cipher_new(16);
    /* for the internal key 1, imported with its private key elsewhere */
    assert_int_equal(SDF_GenerateKeyWithIPK_ECC(s1, 1, 128, c, &k1), SDR_OK);
    assert_int_equal(c->L, 16);
    assert_int_equal(SDF_ImportKeyWithISK_ECC(s2, 1, c, &k2), SDR_PARDENY);
    assert_int_equal(grant(s2, 1, PWD1), SDR_OK);
    assert_int_equal(SDF_ImportKeyWithISK_ECC(s2, 1, c, &k2), SDR_OK);
    encrypt_decrypt_match(s1, k1, s2, k2);
    /* the envelope re-encrypted to key pair 2 without leaving the pool */
    assert_int_equal(SDF_ExportEncPublicKey_ECC(s2, 2, &pub2), SDR_OK);
    assert_int_equal(SDF_ExchangeDigitEnvelopeBaseOnECC(s2, 1, SGD_SM2_3,
                                                        &pub2, c, c2), SDR_OK);
    assert_int_equal(grant(s2, 2, PWD2), SDR_OK);
    assert_int_equal(SDF_ImportKeyWithISK_ECC(s2, 2, c2, &k3), SDR_OK);
    encrypt_decrypt_match(s1, k1, s2, k3);
    /* for an external key */
    SDF_DestroyKey(s1, k1);
    assert_int_equal(SDF_GenerateKeyWithEPK_ECC(s1, 128, SGD_SM2_3, &pub2, c,
                                                &k1), SDR_OK);
    assert_int_equal(SDF_ImportKeyWithISK_ECC(s2, 2, c, &k3), SDR_OK);
    encrypt_decrypt_match(s1, k1, s2, k3);
    /* a key wrapped for 2 does not open with 1 */
    assert_int_equal(SDF_ImportKeyWithISK_ECC(s2, 1, c, &k3), SDR_ENCDATAERR);
    /* the errors */
    assert_int_equal(SDF_GenerateKeyWithIPK_ECC(s1, 1, 256, c, &k3),
                     SDR_INARGERR);
    assert_int_equal(SDF_GenerateKeyWithIPK_ECC(s1, 0, 128, c, &k3),
                     SDR_KEYNOTEXIST);
    assert_int_equal(SDF_GenerateKeyWithIPK_ECC(s1, 55, 128, c, &k3),
                     SDR_KEYNOTEXIST);
    assert_int_equal(SDF_GenerateKeyWithIPK_ECC(s1, 1, 128, NULL, &k3),
                     SDR_OUTARGERR);
    assert_int_equal(SDF_GenerateKeyWithEPK_ECC(s1, 128, SGD_SM2_1, &pub2, c,
                                                &k3), SDR_ALGNOTSUPPORT);
    assert_int_equal(SDF_GenerateKeyWithEPK_ECC(s1, 128, SGD_SM2_3, NULL, c,
                                                &k3), SDR_INARGERR);
    c->L = 17; /* refused before the 17th byte, which c lacks, is read */
    assert_int_equal(SDF_ImportKeyWithISK_ECC(s2, 2, c, &k3), SDR_KEYERR);
    assert_int_equal(SDF_ImportKeyWithISK_ECC(s2, 2, NULL, &k3),
                     SDR_INARGERR);
    assert_int_equal(SDF_ExchangeDigitEnvelopeBaseOnECC(s2, 1, SGD_SM2_3,
                                                        NULL, c2, c),
                     SDR_INARGERR);
    free(c);
    free(c2);
    SDF_CloseSession(s1);
    SDF_CloseSession(s2);
}

/* The sponsor (session 1, key pair 1) and the responder (session 2, key
 * pair 2) agree on a key, each in its own session. */
static void test_key_agreement(void **state)
{
    (void)state;
    void *s1 = open_session(), *s2 = open_session();
    void *agree = NULL, *ka = NULL, *kb = NULL;
    ECCrefPublicKey spub, stmp, rpub, rtmp;
    unsigned char sid[] = "sponsor@gmpool", rid[] = "responder@gmpool";
    assert_int_equal(grant(s1, 1, PWD1), SDR_OK);
    assert_int_equal(SDF_GenerateAgreementDataWithECC(s1, 1, 128, sid,
                                                      sizeof sid - 1, &spub,
                                                      &stmp, &agree), SDR_OK);
    /* the responder needs its own right */
    assert_int_equal(SDF_GenerateAgreementDataAndKeyWithECC(
                         s2, 2, 128, rid, sizeof rid - 1, sid, sizeof sid - 1,
                         &spub, &stmp, &rpub, &rtmp, &kb), SDR_PARDENY);
    assert_int_equal(grant(s2, 2, PWD2), SDR_OK);
    assert_int_equal(SDF_GenerateAgreementDataAndKeyWithECC(
                         s2, 2, 128, rid, sizeof rid - 1, sid, sizeof sid - 1,
                         &spub, &stmp, &rpub, &rtmp, &kb), SDR_OK);
    ECCrefPublicKey enc2;
    assert_int_equal(SDF_ExportEncPublicKey_ECC(s2, 2, &enc2), SDR_OK);
    assert_memory_equal(&rpub, &enc2, sizeof enc2);
    assert_int_equal(SDF_GenerateKeyWithECC(s1, rid, sizeof rid - 1, &rpub,
                                            &rtmp, agree, &ka), SDR_OK);
    encrypt_decrypt_match(s1, ka, s2, kb);
    /* an agreement is used once; made-up and other sessions' handles */
    assert_int_equal(SDF_GenerateKeyWithECC(s1, rid, sizeof rid - 1, &rpub,
                                            &rtmp, agree, &ka), SDR_STEPERR);
    assert_int_equal(SDF_GenerateKeyWithECC(s1, rid, sizeof rid - 1, &rpub,
                                            &rtmp, (void *)12345, &ka),
                     SDR_STEPERR);
    assert_int_equal(SDF_GenerateAgreementDataWithECC(s1, 1, 128, sid,
                                                      sizeof sid - 1, &spub,
                                                      &stmp, &agree), SDR_OK);
    assert_int_equal(SDF_GenerateKeyWithECC(s2, rid, sizeof rid - 1, &rpub,
                                            &rtmp, agree, &ka), SDR_STEPERR);
    /* a wrong responder ID gives a different key */
    void *kc = NULL;
    assert_int_equal(SDF_GenerateKeyWithECC(s1, sid, sizeof sid - 1, &rpub,
                                            &rtmp, agree, &kc), SDR_OK);
    uint8_t blk[16] = {0}, o1[16], o2[16];
    unsigned int len = 0;
    assert_int_equal(SDF_Encrypt(s1, kc, SGD_SM4_ECB, NULL, blk, 16, o1,
                                 &len), SDR_OK);
    assert_int_equal(SDF_Encrypt(s2, kb, SGD_SM4_ECB, NULL, blk, 16, o2,
                                 &len), SDR_OK);
    assert_memory_not_equal(o1, o2, 16);
    /* arguments */
    assert_int_equal(SDF_GenerateAgreementDataWithECC(s1, 1, 64, sid, 3,
                                                      &spub, &stmp, &agree),
                     SDR_INARGERR);
    assert_int_equal(SDF_GenerateAgreementDataWithECC(s1, 1, 128, NULL, 3,
                                                      &spub, &stmp, &agree),
                     SDR_INARGERR);
    assert_int_equal(SDF_GenerateAgreementDataWithECC(s1, 1, 128, sid, 3,
                                                      NULL, &stmp, &agree),
                     SDR_OUTARGERR);
    assert_int_equal(SDF_GenerateAgreementDataWithECC(s1, 44, 128, sid, 3,
                                                      &spub, &stmp, &agree),
                     SDR_KEYNOTEXIST);
    stmp.x[50] ^= 1;
    assert_int_equal(SDF_GenerateAgreementDataAndKeyWithECC(
                         s2, 2, 128, rid, sizeof rid - 1, sid, sizeof sid - 1,
                         &spub, &stmp, &rpub, &rtmp, &kb), SDR_KEYERR);
    SDF_CloseSession(s1);
    SDF_CloseSession(s2);
}

/* An empty ID is GM/T 0009's default ID, in agreement as in the hash:
 * each side leaves its own ID out, the other names it in full. */
static void test_agreement_default_id(void **state)
{
    (void)state;
    void *s1 = open_session(), *s2 = open_session();
    void *agree = NULL, *ka = NULL, *kb = NULL;
    ECCrefPublicKey spub, stmp, rpub, rtmp;
    unsigned char def[] = ID;
    assert_int_equal(grant(s1, 1, PWD1), SDR_OK);
    assert_int_equal(grant(s2, 2, PWD2), SDR_OK);
    assert_int_equal(SDF_GenerateAgreementDataWithECC(s1, 1, 128, NULL, 0,
                                                      &spub, &stmp, &agree),
                     SDR_OK);
    assert_int_equal(SDF_GenerateAgreementDataAndKeyWithECC(
                         s2, 2, 128, NULL, 0, def, sizeof def - 1, &spub,
                         &stmp, &rpub, &rtmp, &kb), SDR_OK);
    assert_int_equal(SDF_GenerateKeyWithECC(s1, def, sizeof def - 1, &rpub,
                                            &rtmp, agree, &ka), SDR_OK);
    encrypt_decrypt_match(s1, ka, s2, kb);
    SDF_CloseSession(s1);
    SDF_CloseSession(s2);
}

/* An agreement started before a restart of the pool is gone with it; its
 * handle names nothing afterwards, least of all an agreement started
 * since. */
static void test_agreement_across_restart(void **state)
{
    (void)state;
    void *s1 = open_session(), *s2 = open_session();
    void *stale = NULL, *agree = NULL, *ka = NULL, *kb = NULL;
    ECCrefPublicKey spub, stmp, rpub, rtmp;
    unsigned char sid[] = "sponsor", rid[] = "responder";
    unsigned sl = sizeof sid - 1, rl = sizeof rid - 1;
    assert_int_equal(grant(s1, 1, PWD1), SDR_OK);
    assert_int_equal(SDF_GenerateAgreementDataWithECC(s1, 1, 128, sid, sl,
                                                      &spub, &stmp, &stale),
                     SDR_OK);
    gmpt_restart(g_d);
    assert_int_equal(grant(s1, 1, PWD1), SDR_OK);
    assert_int_equal(grant(s2, 2, PWD2), SDR_OK);
    assert_int_equal(SDF_GenerateAgreementDataWithECC(s1, 1, 128, sid, sl,
                                                      &spub, &stmp, &agree),
                     SDR_OK);
    assert_ptr_not_equal(agree, stale);
    assert_int_equal(SDF_GenerateAgreementDataAndKeyWithECC(
                         s2, 2, 128, rid, rl, sid, sl, &spub, &stmp, &rpub,
                         &rtmp, &kb), SDR_OK);
    assert_int_equal(SDF_GenerateKeyWithECC(s1, rid, rl, &rpub, &rtmp, stale,
                                            &ka), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_GenerateKeyWithECC(s1, rid, rl, &rpub, &rtmp, agree,
                                            &ka), SDR_OK);
    encrypt_decrypt_match(s1, ka, s2, kb);
    SDF_CloseSession(s1);
    SDF_CloseSession(s2);
}

/* ---- files ---- */

static void test_files(void **state)
{
    (void)state;
    void *s = open_session(), *s2 = open_session();
    unsigned char name[] = "certificate.der", buf[70000];
    unsigned int nl = sizeof name - 1, len;
    uint8_t *data = gmpt_random_bytes(65536);
    assert_int_equal(SDF_CreateFile(s, name, nl, 65536 + 100), SDR_OK);
    assert_int_equal(SDF_CreateFile(s, name, nl, 10), SDR_FILEEXSITS);
    assert_int_equal(SDF_WriteFile(s, name, nl, 100, 65536, data), SDR_OK);
    /* another session of the tenant sees the same file */
    len = sizeof buf;
    assert_int_equal(SDF_ReadFile(s2, name, nl, 0, &len, buf), SDR_OK);
    assert_int_equal(len, 65536 + 100);
    uint8_t zero[100] = {0};
    assert_memory_equal(buf, zero, 100);
    assert_memory_equal(buf + 100, data, 65536);
    len = 10;
    assert_int_equal(SDF_ReadFile(s, name, nl, 65630, &len, buf), SDR_OK);
    assert_int_equal(len, 6); /* the end of the file */
    assert_memory_equal(buf, data + 65530, 6);
    len = 10;
    assert_int_equal(SDF_ReadFile(s, name, nl, 65637, &len, buf),
                     SDR_FILEOFSERR);
    assert_int_equal(SDF_WriteFile(s, name, nl, 65637, 1, data),
                     SDR_FILEOFSERR);
    assert_int_equal(SDF_WriteFile(s, name, nl, 65630, 7, data),
                     SDR_FILESIZEERR);
    /* the storage of the VCM: too big for it, then full */
    assert_int_equal(SDF_CreateFile(s, (unsigned char *)"huge", 4, 2u << 20),
                     SDR_FILESIZEERR);
    assert_int_equal(SDF_CreateFile(s, (unsigned char *)"rest", 4,
                                    (1u << 20) - 65636), SDR_OK);
    assert_int_equal(SDF_CreateFile(s, (unsigned char *)"one", 3, 1),
                     SDR_NOBUFFER);
    assert_int_equal(SDF_DeleteFile(s, (unsigned char *)"rest", 4), SDR_OK);
    /* missing files and bad names */
    len = 4;
    assert_int_equal(SDF_ReadFile(s, (unsigned char *)"nope", 4, 0, &len,
                                  buf), SDR_FILENOEXIST);
    assert_int_equal(SDF_WriteFile(s, (unsigned char *)"nope", 4, 0, 4, buf),
                     SDR_FILENOEXIST);
    assert_int_equal(SDF_DeleteFile(s, (unsigned char *)"nope", 4),
                     SDR_FILENOEXIST);
    unsigned char long_name[129];
    memset(long_name, 'n', sizeof long_name);
    assert_int_equal(SDF_CreateFile(s, long_name, 129, 1), SDR_INARGERR);
    assert_int_equal(SDF_CreateFile(s, long_name, 128, 1), SDR_OK);
    assert_int_equal(SDF_DeleteFile(s, long_name, 128), SDR_OK);
    assert_int_equal(SDF_CreateFile(s, name, 0, 1), SDR_INARGERR);
    assert_int_equal(SDF_CreateFile(s, NULL, 3, 1), SDR_INARGERR);
    assert_int_equal(SDF_ReadFile(s, name, nl, 0, NULL, buf), SDR_OUTARGERR);
    len = 4;
    assert_int_equal(SDF_ReadFile(s, name, nl, 0, &len, NULL),
                     SDR_OUTARGERR);
    assert_int_equal(SDF_WriteFile(s, name, nl, 0, 4, NULL), SDR_INARGERR);
    assert_int_equal(SDF_DeleteFile(s2, name, nl), SDR_OK);
    len = 4;
    assert_int_equal(SDF_ReadFile(s, name, nl, 0, &len, buf),
                     SDR_FILENOEXIST);
    free(data);
    SDF_CloseSession(s);
    SDF_CloseSession(s2);
}

/* A write that does not fit is refused before any of it is written,
 * however many requests it takes. */
static void test_file_write_all_or_nothing(void **state)
{
    (void)state;
    void *s = open_session();
    unsigned char name[] = "six-thousand";
    unsigned int nl = sizeof name - 1, len = 0;
    uint8_t *data = gmpt_random_bytes(9000), back[6000], zero[6000] = {0};
    assert_int_equal(SDF_CreateFile(s, name, nl, 6000), SDR_OK);
    assert_int_equal(SDF_WriteFile(s, name, nl, 0, 9000, data),
                     SDR_FILESIZEERR);
    assert_int_equal(SDF_WriteFile(s, name, nl, 100, 5901, data),
                     SDR_FILESIZEERR);
    assert_int_equal(SDF_WriteFile(s, name, nl, 5000, 4097, data),
                     SDR_FILESIZEERR);
    len = sizeof back;
    assert_int_equal(SDF_ReadFile(s, name, nl, 0, &len, back), SDR_OK);
    assert_int_equal(len, 6000);
    assert_memory_equal(back, zero, sizeof zero);
    /* what fits is written, in as many requests as it takes */
    assert_int_equal(SDF_WriteFile(s, name, nl, 100, 5900, data), SDR_OK);
    len = sizeof back;
    assert_int_equal(SDF_ReadFile(s, name, nl, 0, &len, back), SDR_OK);
    assert_memory_equal(back, zero, 100);
    assert_memory_equal(back + 100, data, 5900);
    assert_int_equal(SDF_WriteFile(s, name, nl, 6000, 0, data), SDR_OK);
    assert_int_equal(SDF_WriteFile(s, name, nl, 6001, 0, data),
                     SDR_FILEOFSERR);
    assert_int_equal(SDF_DeleteFile(s, name, nl), SDR_OK);
    free(data);
    SDF_CloseSession(s);
}

static void test_rsa_not_supported(void **state)
{
    (void)state;
    void *s = open_session(), *k = NULL;
    RSArefPublicKey pub = {0};
    RSArefPrivateKey priv;
    unsigned char buf[256] = {0};
    unsigned int len = 0;
    assert_int_equal(SDF_ExportSignPublicKey_RSA(s, 1, &pub), SDR_NOTSUPPORT);
    assert_int_equal(SDF_ExportEncPublicKey_RSA(s, 1, &pub), SDR_NOTSUPPORT);
    assert_int_equal(SDF_GenerateKeyPair_RSA(s, 2048, &pub, &priv),
                     SDR_NOTSUPPORT);
    assert_int_equal(SDF_GenerateKeyWithIPK_RSA(s, 1, 128, buf, &len, &k),
                     SDR_NOTSUPPORT);
    assert_int_equal(SDF_GenerateKeyWithEPK_RSA(s, 128, &pub, buf, &len, &k),
                     SDR_NOTSUPPORT);
    assert_int_equal(SDF_ImportKeyWithISK_RSA(s, 1, buf, 256, &k),
                     SDR_NOTSUPPORT);
    assert_int_equal(SDF_ExchangeDigitEnvelopeBaseOnRSA(s, 1, &pub, buf, 256,
                                                        buf, &len),
                     SDR_NOTSUPPORT);
    assert_int_equal(SDF_ExternalPublicKeyOperation_RSA(s, &pub, buf, 256,
                                                        buf, &len),
                     SDR_NOTSUPPORT);
    assert_int_equal(SDF_InternalPublicKeyOperation_RSA(s, 1, buf, 256, buf,
                                                        &len),
                     SDR_NOTSUPPORT);
    assert_int_equal(SDF_InternalPrivateKeyOperation_RSA(s, 1, buf, 256, buf,
                                                         &len),
                     SDR_NOTSUPPORT);
    assert_int_equal(SDF_ExportSignPublicKey_RSA(NULL, 1, NULL),
                     SDR_NOTSUPPORT);
    SDF_CloseSession(s);
}

/* ---- threads, fork, the example ---- */

typedef struct worker {
    void *s;
    int fails;
} worker;

static void *worker_run(void *arg)
{
    worker *w = arg;
    uint8_t key[16], data[32768], out[32768], iv[16] = {0}, want[32768];
    unsigned int len = 0;
    void *k = NULL;
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(i * 11 + (uintptr_t)w);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i ^ (uintptr_t)w);
    if (SDF_ImportKey(w->s, key, 16, &k) != SDR_OK)
        return w->fails++, NULL;
    lc_sm4("SM4-CBC", true, key, iv, data, sizeof data, want);
    for (int round = 0; round < 20; round++) {
        memset(iv, 0, 16);
        int rv = SDF_Encrypt(w->s, k, SGD_SM4_CBC, iv, data, sizeof data, out,
                             &len);
        if (rv != SDR_OK || memcmp(out, want, sizeof out) != 0)
            w->fails++;
    }
    return NULL;
}

/* ---- a session closed while calls are in flight ---- */

typedef struct racer {
    void *s;
    pthread_barrier_t *started, *go;
    atomic_bool *closing;    /* set once the close has taken the handle */
    int ok, ok_after_close, closed, other;
} racer;

/* One call, the barriers, then calls until the session is gone. */
static void *racer_run(void *arg)
{
    racer *r = arg;
    ECCrefPublicKey pub;
    r->ok += SDF_ExportSignPublicKey_ECC(r->s, 1, &pub) == SDR_OK;
    pthread_barrier_wait(r->started);
    pthread_barrier_wait(r->go);
    for (;;) {
        int rv = SDF_ExportSignPublicKey_ECC(r->s, 1, &pub);
        if (rv == SDR_OPENSESSION) {
            r->closed++;
            return NULL;
        }
        r->other += rv != SDR_OK;
        r->ok_after_close += rv == SDR_OK && atomic_load(r->closing);
    }
}

typedef struct closer {
    void *s;
    sem_t *returned;
    atomic_int *first;       /* the first close to return: its code */
    int rv;
} closer;

static void *closer_run(void *arg)
{
    closer *c = arg;
    int none = -1;
    c->rv = SDF_CloseSession(c->s);
    atomic_compare_exchange_strong(c->first, &none, c->rv);
    sem_post(c->returned);
    return NULL;
}

/* The inodes of this process's sockets. */
static size_t socket_inodes(unsigned long *v, size_t cap, int *fds)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) && n < cap) {
        char path[300], link[64];
        unsigned long ino;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t l = readlink(path, link, sizeof link - 1);
        if (l <= 0)
            continue;
        link[l] = '\0';
        if (sscanf(link, "socket:[%lu]", &ino) == 1) {
            fds[n] = atoi(e->d_name);
            v[n++] = ino;
        }
    }
    closedir(d);
    return n;
}

/* Whether a socket opened since `before` holds bytes its peer has not
 * read: with the daemon stopped, a request no reply can answer yet. */
static bool request_unread(const unsigned long *before, size_t nb)
{
    unsigned long ino[256];
    int fds[256];
    size_t n = socket_inodes(ino, 256, fds);
    for (size_t i = 0; i < n; i++) {
        bool old = false;
        for (size_t j = 0; j < nb && !old; j++)
            old = ino[i] == before[j];
        int q = 0;
        if (!old && ioctl(fds[i], SIOCOUTQ, &q) == 0 && q > 0)
            return true;
    }
    return false;
}

/* Whether every thread of the daemon has stopped (SIGSTOP takes effect
 * some time after kill returns). */
static bool daemon_stopped(void)
{
    char path[300];
    snprintf(path, sizeof path, "/proc/%d/task", (int)g_d->pid);
    DIR *d = opendir(path);
    struct dirent *e;
    bool all = d != NULL;
    while (all && (e = readdir(d))) {
        char stat[512], st = 0;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/stat", (int)g_d->pid,
                 e->d_name);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
        if (f)
            fclose(f);
        stat[n] = '\0';
        char *p = strrchr(stat, ')'); /* the name may hold anything */
        if (p && sscanf(p + 1, " %c", &st) == 1)
            all = st == 'T' || st == 't';
    }
    if (d)
        closedir(d);
    return all;
}

static bool stop_daemon(void)
{
    struct timespec tick = {0, 1000000};
    kill(g_d->pid, SIGSTOP);
    for (int i = 0; i < 20000; i++) {
        if (daemon_stopped())
            return true;
        nanosleep(&tick, NULL);
    }
    return false;
}

/* Waits for a call on the session to send its request, which the
 * stopped daemon cannot answer; false if none came. */
static bool call_in_flight(const unsigned long *before, size_t nb)
{
    struct timespec tick = {0, 1000000};
    for (int i = 0; i < 20000; i++) {
        if (request_unread(before, nb))
            return true;
        nanosleep(&tick, NULL);
    }
    return false;
}

/* Three threads call on one session.  Once each has had an answer, the
 * daemon is stopped and they go on: one sends a request that cannot be
 * answered and holds the session, the others wait for it.  Two threads
 * then close it at once.  When the first close to return has found the
 * handle gone, the other has taken it while a call held the session (it
 * waits for that call), and only then does the daemon go on: the call in
 * flight finishes, the waiting ones get SDR_OPENSESSION, one close
 * succeeds, nothing crashes.  No step depends on timing: each waits for
 * what it needs.  Returns whether the close met a call in flight (the
 * unread bytes seen may have been the client's own handshake on a new
 * connection instead; then no call held the session and the first close
 * to return succeeded). */
static bool close_during_calls(void)
{
    enum { N = 3 };
    unsigned long before[256];
    int fds[256];
    size_t nb = socket_inodes(before, 256, fds);
    pthread_t th[N], ct[2];
    racer r[N];
    closer c[2];
    pthread_barrier_t started, go;
    atomic_bool closing = false;
    atomic_int first = -1;
    sem_t returned;
    void *s = open_session();
    pthread_barrier_init(&started, NULL, N + 1);
    pthread_barrier_init(&go, NULL, N + 1);
    sem_init(&returned, 0, 0);
    for (int i = 0; i < N; i++) {
        r[i] = (racer){.s = s, .started = &started, .go = &go,
                       .closing = &closing};
        assert_int_equal(pthread_create(&th[i], NULL, racer_run, &r[i]), 0);
    }
    pthread_barrier_wait(&started); /* every answer read */
    /* no assertions while the daemon is stopped: teardown needs it */
    bool stopped = stop_daemon();
    pthread_barrier_wait(&go);
    bool in_flight = stopped && call_in_flight(before, nb);
    for (int i = 0; i < 2; i++) {
        c[i] = (closer){.s = s, .returned = &returned, .first = &first};
        pthread_create(&ct[i], NULL, closer_run, &c[i]);
    }
    if (in_flight)
        sem_wait(&returned);
    atomic_store(&closing, true);
    kill(g_d->pid, SIGCONT);
    for (int i = 0; i < 2; i++)
        pthread_join(ct[i], NULL);
    assert_true(stopped);
    assert_true(in_flight);
    assert_int_equal(c[0].rv + c[1].rv, SDR_OPENSESSION); /* and one SDR_OK */
    int after = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].ok, 1);
        assert_int_equal(r[i].other, 0);
        assert_int_equal(r[i].closed, 1);
        after += r[i].ok_after_close;
    }
    sem_destroy(&returned);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&started);
    if (atomic_load(&first) != SDR_OPENSESSION)
        return false;
    assert_true(after >= 1); /* the call in flight finished after it */
    return true;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.s = open_session()};
        assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].fails, 0);
        assert_int_equal(SDF_CloseSession(w[i].s), SDR_OK);
    }
    bool met = false;
    for (int i = 0; i < 5 && !met; i++)
        met = close_during_calls();
    assert_true(met);
}

static int child_checks(void *parent_session)
{
    uint8_t r[16];
    void *dev = NULL, *s = NULL;
    if (SDF_GenerateRandom(parent_session, 16, r) != SDR_OPENSESSION)
        return 2;
    if (SDF_CloseSession(parent_session) != SDR_OPENSESSION)
        return 3;
    if (SDF_OpenSession(g_dev, &s) != SDR_OPENDEVICE)
        return 4;
    if (SDF_OpenDevice(&dev) != SDR_OK || SDF_OpenSession(dev, &s) != SDR_OK)
        return 5;
    if (SDF_GenerateRandom(s, 16, r) != SDR_OK)
        return 6;
    return SDF_CloseDevice(dev) == SDR_OK ? 0 : 7;
}

static void test_fork(void **state)
{
    (void)state;
    void *s = open_session();
    uint8_t r[16];
    assert_int_equal(SDF_GenerateRandom(s, 16, r), SDR_OK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_checks(s));
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(SDF_GenerateRandom(s, 16, r), SDR_OK);
    SDF_CloseSession(s);
}

/* The legacy program, written only against sdf.h, on this pool. */
static void test_example_program(void **state)
{
    (void)state;
    char file[300], cmd[1200], line[256];
    uint8_t md[32];
    char hex[65];
    snprintf(file, sizeof file, "%s/example.bin", g_d->dir);
    size_t n = 300001; /* not whole blocks: the program pads */
    uint8_t *data = gmpt_random_bytes(n);
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    lc_sm3(data, n, md);
    gmpc_hex_encode(md, 32, hex);
    free(data);
    snprintf(cmd, sizeof cmd, "'%s' '%s' 1 1 '%s'",
             getenv("GMPOOL_SDF_EXAMPLE"), file, PWD1);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    bool hash_ok = false, enc_ok = false, sig_ok = false;
    while (fgets(line, sizeof line, p)) {
        hash_ok |= strncmp(line, "SM3= ", 5) == 0 &&
                   strncmp(line + 5, hex, 64) == 0;
        enc_ok |= strstr(line, "300016 bytes encrypted and decrypted") != NULL;
        sig_ok |= strcmp(line, "signature verified\n") == 0;
    }
    int st = pclose(p);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(hash_ok);
    assert_true(enc_ok);
    assert_true(sig_ok);
    /* a wrong password fails it */
    snprintf(cmd, sizeof cmd, "'%s' '%s' 1 1 wrong-pass >/dev/null 2>&1",
             getenv("GMPOOL_SDF_EXAMPLE"), file);
    st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
}

/* ---- the operator's side; keys across a restart ---- */

/* Internal keys are for the SDF operations alone: the generic keystore
 * operations of the same tenant (PKCS#11's) neither see nor use them. */
static void test_internal_keys_hidden(void **state)
{
    (void)state;
    char *out = NULL;
    uint32_t handles[8], listed[1024];
    size_t nh = 0, nl = 0;
    assert_int_equal(gmpt_ctl(g_d, &out, "sdf list default"), 0);
    for (char *line = strchr(out, '\n'); line && line[1] && nh < 8;
         line = strchr(line + 1, '\n')) {
        char kind[16];
        unsigned idx, h;
        if (sscanf(line + 1, "%15s %u %u", kind, &idx, &h) == 3)
            handles[nh++] = h;
    }
    free(out);
    assert_int_equal(nh, 7); /* a KEK and three pairs */
    gmp_options o = gmpt_options(g_d);
    gmp_client *c = NULL;
    gmp_key_info info;
    uint8_t v[64], buf[32] = {0}, res[64];
    size_t vl = sizeof v, rl = sizeof res;
    assert_int_equal(gmp_client_open(&c, &o), GMP_OK);
    assert_int_equal(gmp_key_list(c, 0, listed, 1024, &nl), GMP_OK);
    for (size_t i = 0; i < nh; i++) {
        for (size_t j = 0; j < nl; j++)
            assert_int_not_equal(listed[j], handles[i]);
        assert_int_equal(gmp_key_get_info(c, handles[i], &info),
                         GMP_ERR_NOT_FOUND);
        assert_int_equal(gmp_key_export(c, handles[i], v, &vl),
                         GMP_ERR_NOT_FOUND);
        assert_int_equal(gmp_key_destroy(c, handles[i]), GMP_ERR_NOT_FOUND);
        assert_int_equal(gmp_key_update(c, handles[i], 0, "x", NULL, 0),
                         GMP_ERR_NOT_FOUND);
        gmp_task *t = NULL;
        int rc = gmp_cipher_open(c, GMP_ALG_SM4_ECB, 0, NULL, 0, handles[i],
                                 NULL, 0, NULL, &t);
        if (rc == GMP_OK)
            rc = gmp_task_update(t, buf, sizeof buf, res, &rl);
        assert_int_equal(rc, GMP_ERR_KEY);
        gmp_task_free(t);
    }
    gmp_client_close(c);
}

static void test_admin_and_restart(void **state)
{
    (void)state;
    char *out = NULL;
    ECCrefPublicKey before, after;
    void *s = open_session();
    assert_int_equal(SDF_ExportSignPublicKey_ECC(s, 2, &before), SDR_OK);
    SDF_CloseSession(s);
    /* refused: a taken index, index 0 and 1025, a short password, an
     * unknown tenant, deleting what is not there */
    assert_int_not_equal(gmpt_ctl(g_d, NULL, "sdf kek add default 1"), 0);
    assert_int_not_equal(gmpt_ctl(g_d, NULL, "sdf kek add default 0"), 0);
    assert_int_not_equal(gmpt_ctl(g_d, NULL, "sdf kek add default 1025"), 0);
    assert_int_not_equal(gmpt_ctl(g_d, NULL, "sdf kek add nobody 5"), 0);
    assert_int_not_equal(gmpt_ctl(g_d, NULL, "sdf kek delete default 5"), 0);
    assert_int_not_equal(
        gmpt_ctl(g_d, NULL, "sdf keypair add default 7 < /dev/null"), 0);
    assert_int_not_equal(
        gmpt_ctl_input(g_d, NULL, "sdf keypair add default 7", "abc"), 0);
    assert_int_not_equal(gmpt_ctl(g_d, NULL, "sdf keypair delete default 7"),
                         0);
    /* a pair made and deleted again */
    ctl_secret("sdf keypair add default 7", "seventh-pw");
    assert_int_equal(gmpt_ctl(g_d, &out, "sdf list default"), 0);
    assert_non_null(strstr(out, "sm2-enc       7"));
    free(out);
    assert_int_equal(gmpt_ctl(g_d, NULL, "sdf keypair delete default 7"), 0);
    s = open_session();
    assert_int_equal(grant(s, 7, "seventh-pw"), SDR_KEYNOTEXIST);
    SDF_CloseSession(s);
    /* internal keys and passwords survive a restart, session keys not */
    gmpt_restart(g_d);
    s = open_session();
    assert_int_equal(SDF_ExportSignPublicKey_ECC(s, 2, &after), SDR_OK);
    assert_memory_equal(&before, &after, sizeof after);
    assert_int_equal(grant(s, 2, PWD2), SDR_OK);
    SDF_CloseSession(s);
}

/* An admin command sent as it is, without gmpoolctl's handling of the
 * password: the daemon's status, and its reply text in *text. */
static int admin_raw(char **text, int argc, const char *const *argv)
{
    uint8_t payload[1024];
    size_t len = 0;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;
        assert_true(len + n <= sizeof payload);
        memcpy(payload + len, argv[i], n);
        len += n;
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", g_d->admin + 5);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    gmpc_hdr h = {.type = GMPC_T_ADMIN, .len = (uint32_t)len}, r;
    uint8_t *reply = NULL;
    assert_int_equal(gmpt_raw_send_frame(fd, &h, payload), 0);
    assert_int_equal(gmpt_raw_read_frame(fd, &r, &reply, 10000), 0);
    close(fd);
    *text = calloc(1, r.len + 1);
    assert_non_null(*text);
    if (r.len)
        memcpy(*text, reply, r.len);
    free(reply);
    return r.type == GMPC_T_ERROR && r.status == GMP_OK ? GMP_ERR_INTERNAL
                                                        : (int)r.status;
}

#define ADMIN_RAW(text, ...)                                                \
    admin_raw(text, (int)(sizeof((const char *const[]){__VA_ARGS__}) /      \
                          sizeof(const char *)),                            \
              (const char *const[]){__VA_ARGS__})

static bool listed(const char *kind, unsigned idx)
{
    char *out = NULL, want[64];
    assert_int_equal(gmpt_ctl(g_d, &out, "sdf list default"), 0);
    snprintf(want, sizeof want, "\n%-9s %5u ", kind, idx);
    bool found = strstr(out, want) != NULL;
    free(out);
    return found;
}

/* A refused admin command: GMP_ERR_ARG and a usage line. */
static void refused(char *text, int rc)
{
    assert_int_equal(rc, GMP_ERR_ARG);
    assert_non_null(strstr(text, "usage: sdf"));
    free(text);
}

/* The action is the command's, never the count of its arguments; a wrong
 * form is refused and changes nothing. */
static void test_admin_forms(void **state)
{
    (void)state;
    ECCrefPublicKey before, after;
    char *text = NULL;
    void *s = open_session();
    assert_int_equal(SDF_ExportSignPublicKey_ECC(s, 1, &before), SDR_OK);
    /* a KEK command with a password does not make a key pair */
    assert_int_not_equal(
        gmpt_ctl(g_d, NULL, "sdf kek add default 13 somepassword"), 0);
    assert_false(listed("sm2-sign", 13));
    assert_false(listed("kek", 13));
    /* passwords come from stdin, never the command line */
    assert_int_not_equal(
        gmpt_ctl(g_d, NULL, "sdf keypair add default 13 somepassword"), 0);
    assert_int_not_equal(
        gmpt_ctl(g_d, NULL, "sdf password default 1 somepassword"), 0);
    assert_false(listed("sm2-sign", 13));
    /* the daemon's own checks: add without a password is not delete */
    refused(text, ADMIN_RAW(&text, "sdf", "keypair", "add", "default", "1"));
    refused(text, ADMIN_RAW(&text, "sdf", "kek", "add", "default", "13",
                            "somepassword"));
    refused(text, ADMIN_RAW(&text, "sdf", "kek", "delete", "default", "1",
                            "x"));
    refused(text, ADMIN_RAW(&text, "sdf", "keypair", "delete", "default",
                            "1", "x"));
    refused(text, ADMIN_RAW(&text, "sdf", "keypair", "remove", "default",
                            "1"));
    refused(text, ADMIN_RAW(&text, "sdf", "keys", "add", "default", "13"));
    refused(text, ADMIN_RAW(&text, "sdf", "password", "default", "1"));
    refused(text, ADMIN_RAW(&text, "sdf", "password", "default", "1", "pw-1",
                            "x"));
    refused(text, ADMIN_RAW(&text, "sdf", "list"));
    refused(text, ADMIN_RAW(&text, "sdf", "list", "default", "x"));
    refused(text, ADMIN_RAW(&text, "sdf"));
    /* the daemon's length check, for a new pair and a new password */
    assert_int_equal(ADMIN_RAW(&text, "sdf", "keypair", "add", "default",
                               "13", "abc"), GMP_ERR_ARG);
    assert_non_null(strstr(text, "a password has"));
    free(text);
    assert_int_equal(ADMIN_RAW(&text, "sdf", "password", "default", "1",
                               "abc"), GMP_ERR_ARG);
    assert_non_null(strstr(text, "a password has"));
    free(text);
    assert_int_equal(grant(s, 1, PWD1), SDR_OK);
    assert_false(listed("sm2-sign", 13));
    assert_false(listed("kek", 13));
    assert_true(listed("kek", 1));
    assert_int_equal(SDF_ExportSignPublicKey_ECC(s, 1, &after), SDR_OK);
    assert_memory_equal(&before, &after, sizeof after);
    /* the right forms still work, raw as through gmpoolctl */
    assert_int_equal(ADMIN_RAW(&text, "sdf", "keypair", "add", "default",
                               "13", "thirteen-pw"), GMP_OK);
    free(text);
    assert_true(listed("sm2-sign", 13));
    assert_int_equal(grant(s, 13, "thirteen-pw"), SDR_OK);
    assert_int_equal(ADMIN_RAW(&text, "sdf", "keypair", "delete", "default",
                               "13"), GMP_OK);
    free(text);
    assert_false(listed("sm2-sign", 13));
    SDF_CloseSession(s);
}

/* A restart buys no more guesses: nine wrong before it and one after
 * lock the pair. */
static void test_lockout_survives_restart(void **state)
{
    (void)state;
    char *out = NULL;
    void *s = open_session();
    ctl_secret("sdf keypair add default 15", "fifteen-pw");
    for (int i = 0; i < 9; i++)
        assert_int_equal(grant(s, 15, "wrong-one"), SDR_PRKRERR);
    SDF_CloseSession(s);
    gmpt_restart(g_d);
    s = open_session();
    assert_int_equal(grant(s, 15, "wrong-one"), SDR_PRKRERR);
    assert_int_equal(grant(s, 15, "fifteen-pw"), SDR_PRKRERR);
    assert_int_equal(gmpt_ctl(g_d, &out, "sdf list default"), 0);
    assert_non_null(strstr(out, "sm2-sign     15"));
    assert_non_null(strstr(out, "locked"));
    free(out);
    SDF_CloseSession(s);
    assert_int_equal(gmpt_ctl(g_d, NULL, "sdf keypair delete default 15"), 0);
}

/* A device and session of another tenant. */
static void *other_tenant_session(const char *creds, void **dev)
{
    char *saved = strdup(getenv("GMPOOL_CREDENTIALS"));
    void *s = NULL;
    setenv("GMPOOL_CREDENTIALS", creds, 1);
    assert_int_equal(SDF_OpenDevice(dev), SDR_OK);
    assert_int_equal(SDF_OpenSession(*dev, &s), SDR_OK);
    setenv("GMPOOL_CREDENTIALS", saved, 1);
    free(saved);
    return s;
}

/* Another tenant's internal keys, passwords, session keys and files are
 * not there for a tenant: refused or missing, never used. */
static void test_second_tenant(void **state)
{
    (void)state;
    char creds[300], args[400];
    snprintf(creds, sizeof creds, "%s/carol.cred", g_d->dir);
    snprintf(args, sizeof args, "-o '%s' tenant add carol", creds);
    assert_int_equal(gmpt_ctl(g_d, NULL, args), 0);
    void *dev = NULL, *sa = open_session();
    void *sb = other_tenant_session(creds, &dev), *k = NULL, *kb = NULL;
    ECCrefPublicKey pa, pb;
    uint8_t key[16] = {3}, wrapped[64], buf[64];
    unsigned int wl = 0, len = 0;
    unsigned char name[] = "same-name";
    /* internal keys and passwords */
    assert_int_equal(SDF_ExportSignPublicKey_ECC(sb, 1, &pb),
                     SDR_KEYNOTEXIST);
    assert_int_equal(grant(sb, 1, PWD1), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_GenerateKeyWithKEK(sb, 128, SGD_SM4_ECB, 1, wrapped,
                                            &wl, &k), SDR_KEYNOTEXIST);
    assert_int_equal(grant(sa, 1, PWD1), SDR_OK);
    assert_int_equal(sign_with(sb, 1), SDR_PARDENY);
    ctl_secret("sdf keypair add carol 1", "carol-pass");
    assert_int_equal(SDF_ExportSignPublicKey_ECC(sa, 1, &pa), SDR_OK);
    assert_int_equal(SDF_ExportSignPublicKey_ECC(sb, 1, &pb), SDR_OK);
    assert_memory_not_equal(&pa, &pb, sizeof pb);
    assert_int_equal(grant(sb, 1, PWD1), SDR_PRKRERR);
    assert_int_equal(grant(sb, 1, "carol-pass"), SDR_OK);
    assert_int_equal(sign_with(sb, 1), SDR_OK);
    assert_int_equal(grant(sa, 1, "carol-pass"), SDR_PRKRERR);
    assert_int_equal(grant(sa, 1, PWD1), SDR_OK);
    /* session keys: through the library and straight to the pool */
    k = import_key(sa, key);
    assert_int_equal(SDF_Encrypt(sb, k, SGD_SM4_ECB, NULL, buf, 16, buf,
                                 &len), SDR_KEYNOTEXIST);
    gmp_options o = gmpt_options(g_d);
    o.credentials = creds;
    gmp_client *c = NULL;
    gmp_key_info info;
    assert_int_equal(gmp_client_open(&c, &o), GMP_OK);
    assert_int_equal(gmp_key_get_info(c, (uint32_t)(uintptr_t)k, &info),
                     GMP_ERR_NOT_FOUND);
    assert_int_equal(gmp_key_destroy(c, (uint32_t)(uintptr_t)k),
                     GMP_ERR_NOT_FOUND);
    gmp_client_close(c);
    kb = import_key(sb, key);
    assert_int_equal(SDF_Encrypt(sa, kb, SGD_SM4_ECB, NULL, buf, 16, buf,
                                 &len), SDR_KEYNOTEXIST);
    assert_int_equal(SDF_Encrypt(sa, k, SGD_SM4_ECB, NULL, buf, 16, buf,
                                 &len), SDR_OK);
    /* files: one name, two files */
    assert_int_equal(SDF_CreateFile(sa, name, 9, 16), SDR_OK);
    assert_int_equal(SDF_WriteFile(sa, name, 9, 0, 16, (unsigned char *)"A"
                                   "AAAAAAAAAAAAAAA"), SDR_OK);
    len = sizeof buf;
    assert_int_equal(SDF_ReadFile(sb, name, 9, 0, &len, buf),
                     SDR_FILENOEXIST);
    assert_int_equal(SDF_WriteFile(sb, name, 9, 0, 1, buf), SDR_FILENOEXIST);
    assert_int_equal(SDF_DeleteFile(sb, name, 9), SDR_FILENOEXIST);
    assert_int_equal(SDF_CreateFile(sb, name, 9, 16), SDR_OK);
    assert_int_equal(SDF_WriteFile(sb, name, 9, 0, 16, (unsigned char *)"B"
                                   "BBBBBBBBBBBBBBB"), SDR_OK);
    assert_int_equal(SDF_DeleteFile(sb, name, 9), SDR_OK);
    len = sizeof buf;
    assert_int_equal(SDF_ReadFile(sa, name, 9, 0, &len, buf), SDR_OK);
    assert_int_equal(len, 16);
    assert_memory_equal(buf, "AAAAAAAAAAAAAAAA", 16);
    assert_int_equal(SDF_DeleteFile(sa, name, 9), SDR_OK);
    SDF_CloseSession(sa);
    assert_int_equal(SDF_CloseDevice(dev), SDR_OK);
    assert_int_equal(gmpt_ctl(g_d, NULL, "sdf keypair delete carol 1"), 0);
    assert_int_equal(gmpt_ctl(g_d, NULL, "tenant remove carol"), 0);
}

/* Every SDF op with short, truncated and random payloads over a raw
 * connection: an answer each time (an ERROR that closes is followed by a
 * new connection), and the daemon still serves afterwards. */
static int raw_authed(void)
{
    char tenant[GMPC_MAX_NAME + 1];
    uint8_t secret[32];
    size_t sl = 0;
    assert_int_equal(gmpt_load_creds(g_d->creds, tenant, sizeof tenant,
                                     secret, &sl), 0);
    int fd = gmpt_raw_connect(g_d);
    assert_true(fd >= 0);
    assert_int_equal(gmpt_raw_auth(fd, tenant, secret, sl, NULL), GMP_OK);
    return fd;
}

static void test_raw_bad_requests(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 2, 4, 5, 7, 33, 64, 69, 100, 300};
    uint8_t payload[1 + 300];
    int fd = raw_authed(), answered = 0;
    uint64_t id = 1;
    for (unsigned op = GMPC_SDF_FIRST; op <= GMPC_SDF_LAST; op++) {
        for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
            payload[0] = (uint8_t)op;
            for (size_t k = 1; k <= lens[i]; k++)
                payload[k] = (uint8_t)gmpt_rand();
            gmpc_hdr h = {.type = GMPC_T_KEY, .task_id = id++,
                          .len = (uint32_t)(1 + lens[i])};
            assert_int_equal(gmpt_raw_send_frame(fd, &h, payload), 0);
            gmpc_hdr r;
            uint8_t *p = NULL;
            assert_int_equal(gmpt_raw_read_frame(fd, &r, &p, 10000), 0);
            free(p);
            assert_int_equal(r.task_id, h.task_id);
            assert_true(r.type == GMPC_T_KEY_OK || r.type == GMPC_T_ERROR);
            answered++;
            if (r.type == GMPC_T_ERROR && (r.flags & GMPC_F_CLOSE)) {
                assert_int_equal(r.status, GMP_ERR_PROTO);
                close(fd);
                fd = raw_authed();
            }
        }
    }
    close(fd);
    assert_int_equal(answered, 32 * 11);
    void *s = open_session();
    uint8_t md[32];
    unsigned int len = 0;
    assert_int_equal(SDF_HashInit(s, SGD_SM3, NULL, NULL, 0), SDR_OK);
    assert_int_equal(SDF_HashUpdate(s, (unsigned char *)"abc", 3), SDR_OK);
    assert_int_equal(SDF_HashFinal(s, md, &len), SDR_OK);
    SDF_CloseSession(s);
}

/* The SDF ops the protocol leaves free are refused as unknown, and the
 * connection stays up. */
static void test_raw_unknown_ops(void **state)
{
    (void)state;
    int fd = raw_authed();
    for (unsigned op = GMPC_FILE_DELETE + 1; op <= GMPC_SDF_LAST; op++) {
        uint8_t payload[1] = {(uint8_t)op};
        gmpc_hdr h = {.type = GMPC_T_KEY, .task_id = op, .len = 1}, r;
        uint8_t *p = NULL;
        assert_int_equal(gmpt_raw_send_frame(fd, &h, payload), 0);
        assert_int_equal(gmpt_raw_read_frame(fd, &r, &p, 10000), 0);
        free(p);
        assert_int_equal(r.type, GMPC_T_ERROR);
        assert_int_equal(r.status, GMP_ERR_ARG);
        assert_false(r.flags & GMPC_F_CLOSE);
    }
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exports),
        cmocka_unit_test(test_device_and_sessions),
        cmocka_unit_test(test_device_without_pool),
        cmocka_unit_test(test_handles_not_reused),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_sm3),
        cmocka_unit_test(test_sm4_known_answers),
        cmocka_unit_test(test_sm4_chaining_vs_libcrypto),
        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_sm4_errors),
        cmocka_unit_test(test_kek_session_keys),
        cmocka_unit_test(test_generate_key_pair),
        cmocka_unit_test(test_access_rights),
        cmocka_unit_test(test_password_lockout),
        cmocka_unit_test(test_rights_follow_the_pair),
        cmocka_unit_test(test_parallel_guesses_counted),
        cmocka_unit_test(test_signatures),
        cmocka_unit_test(test_libcrypto_signature_verified),
        cmocka_unit_test(test_sm2_encryption),
        cmocka_unit_test(test_sm2_session_keys),
        cmocka_unit_test(test_key_agreement),
        cmocka_unit_test(test_agreement_default_id),
        cmocka_unit_test(test_agreement_across_restart),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_file_write_all_or_nothing),
        cmocka_unit_test(test_rsa_not_supported),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_example_program),
        cmocka_unit_test(test_internal_keys_hidden),
        cmocka_unit_test(test_admin_and_restart),
        cmocka_unit_test(test_admin_forms),
        cmocka_unit_test(test_lockout_survives_restart),
        cmocka_unit_test(test_second_tenant),
        cmocka_unit_test(test_raw_bad_requests),
        cmocka_unit_test(test_raw_unknown_ops),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
