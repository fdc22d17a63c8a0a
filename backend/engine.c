#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gmpool.h"
#include "util.h"

/* One row per algorithm and key length; the libcrypto objects are fetched
 * by gmpd_engine_init.  GCM comes from libgcrypt, whose GCM hands back the
 * tag computed over the ciphertext in both directions (the protocol's
 * FINAL_OK carries it) and which has SM4-GCM, missing from OpenSSL 3.0's
 * default provider.  For HMAC rows the name is the digest's. */
typedef struct alg_row {
    gmpd_alg_info info;
    int gcry_algo;           /* GCM rows */
    EVP_MD *md;
    EVP_CIPHER *cipher;
    EVP_MAC *mac;
} alg_row;

#define D GMPD_KIND_DIGEST
#define M GMPD_KIND_MAC
#define C GMPD_KIND_CIPHER
#define A GMPD_KIND_AEAD
#define H GMPD_SVC_HASH
#define X GMPD_SVC_CIPHER
#define K_ANY 0
#define K_SM4 GMP_KEY_SM4
#define K_AES GMP_KEY_AES
#define ROW(alg, name, kind, svc, ktype, key, iv, block, out, pad, gc)       \
    {{alg, name, kind, svc, ktype, key, iv, block, out, pad}, gc, NULL,     \
     NULL, NULL}
#define AES3(alg, mode, kind, iv, block, pad)                             \
    ROW(alg, "AES-128-" mode, kind, X, K_AES, 16, iv, block, 0, pad,         \
        GCRY_CIPHER_AES128),                                                  \
    ROW(alg, "AES-192-" mode, kind, X, K_AES, 24, iv, block, 0, pad,         \
        GCRY_CIPHER_AES192),                                                  \
    ROW(alg, "AES-256-" mode, kind, X, K_AES, 32, iv, block, 0, pad,         \
        GCRY_CIPHER_AES256)

static alg_row g_algs[] = {
    ROW(GMP_ALG_SM3, "SM3", D, H, K_ANY, 0, 0, 1, 32, false, 0),
    ROW(GMP_ALG_SHA256, "SHA2-256", D, H, K_ANY, 0, 0, 1, 32, false, 0),
    ROW(GMP_ALG_SHA384, "SHA2-384", D, H, K_ANY, 0, 0, 1, 48, false, 0),
    ROW(GMP_ALG_SHA512, "SHA2-512", D, H, K_ANY, 0, 0, 1, 64, false, 0),
    ROW(GMP_ALG_HMAC_SM3, "SM3", M, H, K_ANY, 0, 0, 1, 32, false, 0),
    ROW(GMP_ALG_HMAC_SHA256, "SHA2-256", M, H, K_ANY, 0, 0, 1, 32, false, 0),
    ROW(GMP_ALG_HMAC_SHA384, "SHA2-384", M, H, K_ANY, 0, 0, 1, 48, false, 0),
    ROW(GMP_ALG_HMAC_SHA512, "SHA2-512", M, H, K_ANY, 0, 0, 1, 64, false, 0),
    ROW(GMP_ALG_SM4_ECB, "SM4-ECB", C, X, K_SM4, 16, 0, 16, 0, true, 0),
    ROW(GMP_ALG_SM4_CBC, "SM4-CBC", C, X, K_SM4, 16, 16, 16, 0, true, 0),
    ROW(GMP_ALG_SM4_CTR, "SM4-CTR", C, X, K_SM4, 16, 16, 1, 0, false, 0),
    ROW(GMP_ALG_SM4_OFB, "SM4-OFB", C, X, K_SM4, 16, 16, 1, 0, false, 0),
    ROW(GMP_ALG_SM4_CFB, "SM4-CFB", C, X, K_SM4, 16, 16, 1, 0, false, 0),
    ROW(GMP_ALG_SM4_GCM, "SM4-GCM", A, X, K_SM4, 16, 0, 1, 16, false,
        GCRY_CIPHER_SM4),
    AES3(GMP_ALG_AES_ECB, "ECB", C, 0, 16, true),
    AES3(GMP_ALG_AES_CBC, "CBC", C, 16, 16, true),
    AES3(GMP_ALG_AES_CTR, "CTR", C, 16, 1, false),
    AES3(GMP_ALG_AES_GCM, "GCM", A, 0, 1, false),
};
#define N_ALGS (sizeof g_algs / sizeof g_algs[0])

struct gmpd_engine_ctx {
    const alg_row *row;
    EVP_MD_CTX *md;
    EVP_CIPHER_CTX *cipher;
    EVP_MAC_CTX *mac;
    gcry_cipher_hd_t gcm;
    bool decrypt;
};

static int gcrypt_init(void)
{
    /* libgcrypt wants one initialisation per process before use. */
    if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
        if (!gcry_check_version(GCRYPT_VERSION))
            return GMP_ERR_INTERNAL;
        gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
        gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    }
    return GMP_OK;
}

/* HMAC rows keep only the EVP_MAC; the digest is named per context. */
static bool md_exists(OSSL_LIB_CTX *lc, const char *name)
{
    EVP_MD *md = EVP_MD_fetch(lc, name, "provider=default");
    EVP_MD_free(md);
    return md != NULL;
}

static bool row_fetch(OSSL_LIB_CTX *lc, alg_row *r)
{
    switch (r->info.kind) {
    case GMPD_KIND_DIGEST:
        r->md = r->md ? r->md : EVP_MD_fetch(lc, r->info.name, "provider=default");
        return r->md != NULL;
    case GMPD_KIND_MAC:
        r->mac = r->mac ? r->mac : EVP_MAC_fetch(lc, "HMAC", "provider=default");
        return r->mac != NULL && md_exists(lc, r->info.name);
    case GMPD_KIND_CIPHER:
        r->cipher = r->cipher ? r->cipher
                              : EVP_CIPHER_fetch(lc, r->info.name,
                                                 "provider=default");
        return r->cipher != NULL;
    case GMPD_KIND_AEAD:
        return gcry_cipher_algo_info(r->gcry_algo, GCRYCTL_TEST_ALGO, NULL,
                                     NULL) == 0;
    }
    return false;
}

int gmpd_engine_init(void)
{
    OSSL_LIB_CTX *lc = gmpc_libctx();
    if (!lc || gcrypt_init() != GMP_OK)
        return GMP_ERR_INTERNAL;
    for (size_t i = 0; i < N_ALGS; i++)
        if (!row_fetch(lc, &g_algs[i]))
            return GMP_ERR_INTERNAL;
    return GMP_OK;
}

void gmpd_engine_cleanup(void)
{
    for (size_t i = 0; i < N_ALGS; i++) {
        EVP_MD_free(g_algs[i].md);
        EVP_CIPHER_free(g_algs[i].cipher);
        EVP_MAC_free(g_algs[i].mac);
        g_algs[i].md = NULL;
        g_algs[i].cipher = NULL;
        g_algs[i].mac = NULL;
    }
}

static const alg_row *find_row(uint16_t alg)
{
    for (size_t i = 0; i < N_ALGS; i++)
        if (g_algs[i].info.alg == alg)
            return &g_algs[i];
    return NULL;
}

/* The row of alg for a key of key_len bytes (rows with key_len 0 take
 * any key). */
static const alg_row *find_keyed(uint16_t alg, size_t key_len)
{
    for (size_t i = 0; i < N_ALGS; i++)
        if (g_algs[i].info.alg == alg &&
            (g_algs[i].info.key_len == 0 || g_algs[i].info.key_len == key_len))
            return &g_algs[i];
    return NULL;
}

const gmpd_alg_info *gmpd_engine_find(uint16_t alg)
{
    const alg_row *r = find_row(alg);
    return r ? &r->info : NULL;
}

static int digest_init(gmpd_engine_ctx *c, const gmpd_engine_args *a)
{
    if (a->key_len || a->iv_len || a->aad_len)
        return GMP_ERR_ARG;
    c->md = EVP_MD_CTX_new();
    return c->md && EVP_DigestInit_ex2(c->md, c->row->md, NULL)
               ? GMP_OK
               : GMP_ERR_INTERNAL;
}

static int mac_init(gmpd_engine_ctx *c, const gmpd_engine_args *a)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         (char *)c->row->info.name, 0),
        OSSL_PARAM_construct_end()};
    if (a->key_len == 0 || a->iv_len || a->aad_len)
        return a->key_len == 0 ? GMP_ERR_KEY : GMP_ERR_ARG;
    c->mac = EVP_MAC_CTX_new(c->row->mac);
    return c->mac && EVP_MAC_init(c->mac, a->key, a->key_len, params)
               ? GMP_OK
               : GMP_ERR_INTERNAL;
}

static int cipher_init(gmpd_engine_ctx *c, const gmpd_engine_args *a)
{
    const gmpd_alg_info *in = &c->row->info;
    if (a->key_len != in->key_len)
        return GMP_ERR_KEY;
    if (a->iv_len != in->iv_len)
        return GMP_ERR_IV;
    if (((a->flags & GMP_TASK_PAD) && !in->can_pad) || a->aad_len)
        return GMP_ERR_ARG;
    c->cipher = EVP_CIPHER_CTX_new();
    int enc = (a->flags & GMP_TASK_DECRYPT) ? 0 : 1;
    if (!c->cipher ||
        !EVP_CipherInit_ex2(c->cipher, c->row->cipher, a->key,
                            a->iv_len ? a->iv : NULL, enc, NULL))
        return GMP_ERR_INTERNAL;
    EVP_CIPHER_CTX_set_padding(c->cipher, (a->flags & GMP_TASK_PAD) ? 1 : 0);
    return GMP_OK;
}

static int gcm_init(gmpd_engine_ctx *c, const gmpd_engine_args *a)
{
    if (a->key_len != c->row->info.key_len)
        return GMP_ERR_KEY;
    if (a->iv_len == 0)
        return GMP_ERR_IV;
    if (a->flags & GMP_TASK_PAD)
        return GMP_ERR_ARG;
    c->decrypt = a->flags & GMP_TASK_DECRYPT;
    if (gcry_cipher_open(&c->gcm, c->row->gcry_algo, GCRY_CIPHER_MODE_GCM,
                         0) ||
        gcry_cipher_setkey(c->gcm, a->key, a->key_len) ||
        gcry_cipher_setiv(c->gcm, a->iv, a->iv_len) ||
        (a->aad_len && gcry_cipher_authenticate(c->gcm, a->aad, a->aad_len)))
        return GMP_ERR_INTERNAL;
    return GMP_OK;
}

gmpd_engine_ctx *gmpd_engine_new(uint16_t alg, const gmpd_engine_args *a,
                                 int *status)
{
    const alg_row *row = find_keyed(alg, a->key_len);
    if (!row && find_row(alg)) {
        *status = GMP_ERR_KEY; /* no variant for this key length */
        return NULL;
    }
    if (!row || (!row->md && !row->cipher && !row->mac &&
                 row->info.kind != GMPD_KIND_AEAD)) {
        *status = GMP_ERR_ALG;
        return NULL;
    }
    gmpd_engine_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        *status = GMP_ERR_NOMEM;
        return NULL;
    }
    c->row = row;
    switch (row->info.kind) {
    case GMPD_KIND_DIGEST:
        *status = digest_init(c, a);
        break;
    case GMPD_KIND_MAC:
        *status = mac_init(c, a);
        break;
    case GMPD_KIND_CIPHER:
        *status = cipher_init(c, a);
        break;
    case GMPD_KIND_AEAD:
        *status = gcm_init(c, a);
        break;
    }
    if (*status != GMP_OK) {
        gmpd_engine_free(c);
        return NULL;
    }
    return c;
}

/* libgcrypt's GCM takes data in pieces of any length, so the output of
 * every update is as long as its input, as EVP callers expect. */
static int gcm_update(gmpd_engine_ctx *c, const uint8_t *in, size_t n,
                      uint8_t *out, size_t *out_len)
{
    gcry_error_t e = c->decrypt ? gcry_cipher_decrypt(c->gcm, out, n, in, n)
                                : gcry_cipher_encrypt(c->gcm, out, n, in, n);
    if (e)
        return GMP_ERR_INTERNAL;
    *out_len = n;
    return GMP_OK;
}

int gmpd_engine_update(gmpd_engine_ctx *c, const uint8_t *in, size_t in_len,
                       uint8_t *out, size_t *out_len)
{
    *out_len = 0;
    if (in_len > INT32_MAX)
        return GMP_ERR_TOO_BIG;
    if (c->md)
        return EVP_DigestUpdate(c->md, in, in_len) ? GMP_OK : GMP_ERR_INTERNAL;
    if (c->mac)
        return EVP_MAC_update(c->mac, in, in_len) ? GMP_OK : GMP_ERR_INTERNAL;
    if (c->gcm)
        return gcm_update(c, in, in_len, out, out_len);
    int outl = 0;
    if (!EVP_CipherUpdate(c->cipher, out, &outl, in, (int)in_len))
        return GMP_ERR_INTERNAL;
    *out_len = (size_t)outl;
    return GMP_OK;
}

/* The final output of a GCM task is its tag, for either direction. */
static int gcm_final(gmpd_engine_ctx *c, uint8_t *out, size_t *out_len)
{
    if (gcry_cipher_gettag(c->gcm, out, GMP_GCM_TAG_LEN))
        return GMP_ERR_INTERNAL;
    *out_len = GMP_GCM_TAG_LEN;
    return GMP_OK;
}

int gmpd_engine_final(gmpd_engine_ctx *c, uint8_t *out, size_t *out_len)
{
    *out_len = 0;
    if (c->md) {
        unsigned int n = 0;
        if (!EVP_DigestFinal_ex(c->md, out, &n))
            return GMP_ERR_INTERNAL;
        *out_len = n;
        return GMP_OK;
    }
    if (c->mac)
        return EVP_MAC_final(c->mac, out, out_len, 64) ? GMP_OK
                                                       : GMP_ERR_INTERNAL;
    if (c->gcm)
        return gcm_final(c, out, out_len);
    int outl = 0;
    /* Without padding a partial last block is the caller's length error;
     * with padding on decrypt a bad pad is reported the same way. */
    if (!EVP_CipherFinal_ex(c->cipher, out, &outl))
        return GMP_ERR_LENGTH;
    *out_len = (size_t)outl;
    return GMP_OK;
}

void gmpd_engine_free(gmpd_engine_ctx *c)
{
    if (!c)
        return;
    EVP_MD_CTX_free(c->md);
    EVP_CIPHER_CTX_free(c->cipher);
    EVP_MAC_CTX_free(c->mac);
    if (c->gcm)
        gcry_cipher_close(c->gcm);
    free(c);
}

const char *gmpd_engine_impl(uint16_t alg, unsigned flags)
{
    (void)flags;
    const alg_row *r = find_row(alg);
    if (!r)
        return "none";
    return r->info.kind == GMPD_KIND_AEAD ? "libgcrypt" : "libcrypto";
}

int gmpd_engine_random(uint8_t *buf, size_t len)
{
    return gmpc_random(buf, len);
}

double gmpd_engine_measure(gmpd_svc svc)
{
    static const uint8_t key[16], iv[16];
    uint8_t *buf = calloc(1, 64 * 1024), *out = malloc(64 * 1024 + 16);
    int st;
    uint16_t alg = svc == GMPD_SVC_HASH ? GMP_ALG_SM3 : GMP_ALG_SM4_CBC;
    if (svc == GMPD_SVC_RANDOM)
        alg = GMP_ALG_SM4_CTR; /* DRBG cost tracks a block cipher's */
    gmpd_engine_args a = {0};
    if (alg != GMP_ALG_SM3)
        a = (gmpd_engine_args){.key = key, .key_len = 16, .iv = iv,
                               .iv_len = 16};
    gmpd_engine_ctx *c = gmpd_engine_new(alg, &a, &st);
    if (!c || !buf || !out) {
        gmpd_engine_free(c);
        free(buf);
        free(out);
        return 1.0;
    }
    uint64_t t0 = gmpc_now_ns(), bytes = 0;
    size_t outl;
    while (gmpc_now_ns() - t0 < 20000000u) {
        gmpd_engine_update(c, buf, 64 * 1024, out, &outl);
        bytes += 64 * 1024;
    }
    double secs = (double)(gmpc_now_ns() - t0) / 1e9;
    gmpd_engine_free(c);
    free(buf);
    free(out);
    return (double)bytes / secs / 1e6;
}
