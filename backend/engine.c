#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "gmpool.h"
#include "util.h"

/* One row per algorithm; evp is filled by gmpd_engine_init. */
typedef struct alg_row {
    gmpd_alg_info info;
    EVP_MD *md;
    EVP_CIPHER *cipher;
} alg_row;

static alg_row g_algs[] = {
    {{GMP_ALG_SM3, "SM3", GMPD_KIND_DIGEST, GMPD_SVC_HASH, 0, 0, 1, 32, false},
     NULL, NULL},
    {{GMP_ALG_SM4_ECB, "SM4-ECB", GMPD_KIND_CIPHER, GMPD_SVC_CIPHER, 16, 0, 16,
      0, true}, NULL, NULL},
    {{GMP_ALG_SM4_CBC, "SM4-CBC", GMPD_KIND_CIPHER, GMPD_SVC_CIPHER, 16, 16, 16,
      0, true}, NULL, NULL},
    {{GMP_ALG_SM4_CTR, "SM4-CTR", GMPD_KIND_CIPHER, GMPD_SVC_CIPHER, 16, 16, 1,
      0, false}, NULL, NULL},
    {{GMP_ALG_SM4_OFB, "SM4-OFB", GMPD_KIND_CIPHER, GMPD_SVC_CIPHER, 16, 16, 1,
      0, false}, NULL, NULL},
    {{GMP_ALG_SM4_CFB, "SM4-CFB", GMPD_KIND_CIPHER, GMPD_SVC_CIPHER, 16, 16, 1,
      0, false}, NULL, NULL},
};
#define N_ALGS (sizeof g_algs / sizeof g_algs[0])

struct gmpd_engine_ctx {
    const alg_row *row;
    EVP_MD_CTX *md;
    EVP_CIPHER_CTX *cipher;
};

int gmpd_engine_init(void)
{
    OSSL_LIB_CTX *lc = gmpc_libctx();
    if (!lc)
        return GMP_ERR_INTERNAL;
    for (size_t i = 0; i < N_ALGS; i++) {
        alg_row *r = &g_algs[i];
        if (r->info.kind == GMPD_KIND_DIGEST && !r->md)
            r->md = EVP_MD_fetch(lc, r->info.name, "provider=default");
        if (r->info.kind == GMPD_KIND_CIPHER && !r->cipher)
            r->cipher = EVP_CIPHER_fetch(lc, r->info.name, "provider=default");
        if (!r->md && !r->cipher)
            return GMP_ERR_INTERNAL;
    }
    return GMP_OK;
}

void gmpd_engine_cleanup(void)
{
    for (size_t i = 0; i < N_ALGS; i++) {
        EVP_MD_free(g_algs[i].md);
        EVP_CIPHER_free(g_algs[i].cipher);
        g_algs[i].md = NULL;
        g_algs[i].cipher = NULL;
    }
}

static const alg_row *find_row(uint16_t alg)
{
    for (size_t i = 0; i < N_ALGS; i++)
        if (g_algs[i].info.alg == alg)
            return &g_algs[i];
    return NULL;
}

const gmpd_alg_info *gmpd_engine_find(uint16_t alg)
{
    const alg_row *r = find_row(alg);
    return r ? &r->info : NULL;
}

static int cipher_init(gmpd_engine_ctx *c, unsigned flags, const uint8_t *key,
                       size_t key_len, const uint8_t *iv, size_t iv_len)
{
    const gmpd_alg_info *in = &c->row->info;
    if (key_len != in->key_len)
        return GMP_ERR_KEY;
    if (iv_len != in->iv_len)
        return GMP_ERR_IV;
    if ((flags & GMP_TASK_PAD) && !in->can_pad)
        return GMP_ERR_ARG;
    c->cipher = EVP_CIPHER_CTX_new();
    int enc = (flags & GMP_TASK_DECRYPT) ? 0 : 1;
    if (!c->cipher ||
        !EVP_CipherInit_ex2(c->cipher, c->row->cipher, key, iv_len ? iv : NULL,
                            enc, NULL))
        return GMP_ERR_INTERNAL;
    EVP_CIPHER_CTX_set_padding(c->cipher, (flags & GMP_TASK_PAD) ? 1 : 0);
    return GMP_OK;
}

gmpd_engine_ctx *gmpd_engine_new(uint16_t alg, unsigned flags,
                                 const uint8_t *key, size_t key_len,
                                 const uint8_t *iv, size_t iv_len,
                                 int *status)
{
    const alg_row *row = find_row(alg);
    if (!row || (!row->md && !row->cipher)) {
        *status = GMP_ERR_ALG;
        return NULL;
    }
    gmpd_engine_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        *status = GMP_ERR_NOMEM;
        return NULL;
    }
    c->row = row;
    if (row->info.kind == GMPD_KIND_DIGEST) {
        c->md = EVP_MD_CTX_new();
        *status = (c->md && EVP_DigestInit_ex2(c->md, row->md, NULL))
                      ? GMP_OK
                      : GMP_ERR_INTERNAL;
    } else {
        *status = cipher_init(c, flags, key, key_len, iv, iv_len);
    }
    if (*status != GMP_OK) {
        gmpd_engine_free(c);
        return NULL;
    }
    return c;
}

int gmpd_engine_update(gmpd_engine_ctx *c, const uint8_t *in, size_t in_len,
                       uint8_t *out, size_t *out_len)
{
    *out_len = 0;
    if (in_len > INT32_MAX)
        return GMP_ERR_TOO_BIG;
    if (c->md)
        return EVP_DigestUpdate(c->md, in, in_len) ? GMP_OK : GMP_ERR_INTERNAL;
    int outl = 0;
    if (!EVP_CipherUpdate(c->cipher, out, &outl, in, (int)in_len))
        return GMP_ERR_INTERNAL;
    *out_len = (size_t)outl;
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
    free(c);
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
    gmpd_engine_ctx *c = gmpd_engine_new(alg, 0, key, 16, iv, 16, &st);
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
