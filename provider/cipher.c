/* SM4 ECB/CBC/CTR/OFB/CFB and GCM.
 *
 * A context runs a "raw" transform (no padding) either in-process on the
 * default provider or as a pool task.  It starts in-process and moves to
 * the pool once the stream passes the local threshold at a block boundary,
 * carrying the chaining state over as the next IV, so short messages never
 * pay a round trip and long ones run in the pool.  PKCS#7 padding for
 * ECB/CBC is done here, above the raw transform, as EVP does it: on
 * decryption the last whole block is held back until final.  SM4-GCM is
 * always pooled: OpenSSL 3.0's default provider has no SM4-GCM. */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "prov.h"
#include "util.h"

#define BLK 16

typedef struct mode_info {
    gmp_alg alg;
    const char *name;        /* default-provider name for local work */
    unsigned mode;           /* EVP_CIPH_*_MODE */
    size_t block;            /* EVP block size: 16, or 1 for stream modes */
    size_t iv_len;
    bool gcm;
} mode_info;

static const mode_info M_ECB = {GMP_ALG_SM4_ECB, "SM4-ECB", EVP_CIPH_ECB_MODE,
                                16, 0, false};
static const mode_info M_CBC = {GMP_ALG_SM4_CBC, "SM4-CBC", EVP_CIPH_CBC_MODE,
                                16, 16, false};
static const mode_info M_CTR = {GMP_ALG_SM4_CTR, "SM4-CTR", EVP_CIPH_CTR_MODE,
                                1, 16, false};
static const mode_info M_OFB = {GMP_ALG_SM4_OFB, "SM4-OFB", EVP_CIPH_OFB_MODE,
                                1, 16, false};
static const mode_info M_CFB = {GMP_ALG_SM4_CFB, "SM4-CFB", EVP_CIPH_CFB_MODE,
                                1, 16, false};
static const mode_info M_GCM = {GMP_ALG_SM4_GCM, "SM4-GCM", EVP_CIPH_GCM_MODE,
                                1, 12, true};

typedef struct cipher_ctx {
    gmprov_ctx *prov;
    const mode_info *m;
    uint8_t key[16];
    bool key_set;
    uint8_t iv[16];
    size_t iv_len;
    int enc;
    int pad;
    bool failed;
    /* raw transform */
    EVP_CIPHER_CTX *local;
    gmp_task *task;
    uint64_t total_in;
    uint8_t last_in[BLK], last_out[BLK];
    /* decryption with padding: the last whole block, held back */
    uint8_t held[BLK];
    bool have_held;
    /* GCM */
    uint8_t *aad;
    size_t aad_len;
    uint8_t tag[16];
    size_t tag_len;
    bool tag_ready;
} cipher_ctx;

static void *cipher_new(void *provctx, const mode_info *m)
{
    cipher_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->prov = provctx;
    c->m = m;
    c->pad = 1;
    c->iv_len = m->iv_len;
    c->tag_len = 16;
    return c;
}

static void raw_reset(cipher_ctx *c)
{
    EVP_CIPHER_CTX_free(c->local);
    c->local = NULL;
    gmp_task_free(c->task);
    c->task = NULL;
    c->total_in = 0;
    c->have_held = false;
    c->failed = false;
    c->tag_ready = false;
    free(c->aad);
    c->aad = NULL;
    c->aad_len = 0;
    OPENSSL_cleanse(c->held, sizeof c->held);
}

static void cipher_free(void *vctx)
{
    cipher_ctx *c = vctx;
    if (!c)
        return;
    raw_reset(c);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

static void *cipher_dup(void *vctx)
{
    cipher_ctx *src = vctx, *c;
    if (src->task) {
        gmprov_err(src->prov, GMPROV_R_DUP_POOLED,
                   "the cipher state of this context lives in the pool");
        return NULL;
    }
    c = malloc(sizeof *c);
    if (!c)
        return NULL;
    *c = *src;
    c->local = NULL;
    c->aad = NULL;
    if ((src->local && (!(c->local = EVP_CIPHER_CTX_new()) ||
                        !EVP_CIPHER_CTX_copy(c->local, src->local))) ||
        (src->aad_len && !(c->aad = malloc(src->aad_len)))) {
        c->aad_len = 0;
        cipher_free(c);
        return NULL;
    }
    if (src->aad_len)
        memcpy(c->aad, src->aad, src->aad_len);
    return c;
}

/* ---- parameters ---- */

static int set_ctx_params(void *vctx, const OSSL_PARAM params[]);

static int cipher_init(void *vctx, const unsigned char *key, size_t keylen,
                       const unsigned char *iv, size_t ivlen,
                       const OSSL_PARAM params[], int enc)
{
    cipher_ctx *c = vctx;
    raw_reset(c);
    c->enc = enc;
    if (!set_ctx_params(c, params))
        return 0;
    if (key) {
        if (keylen != 16) {
            gmprov_err(c->prov, GMPROV_R_BAD_KEY_LENGTH, "SM4 keys are 16 bytes");
            return 0;
        }
        memcpy(c->key, key, 16);
        c->key_set = true;
    }
    if (iv && c->iv_len) {
        if (ivlen != c->iv_len) {
            gmprov_err(c->prov, GMPROV_R_BAD_IV_LENGTH, "IV must be %zu bytes",
                       c->iv_len);
            return 0;
        }
        memcpy(c->iv, iv, ivlen);
    }
    return 1;
}

static int einit(void *vctx, const unsigned char *key, size_t keylen,
                 const unsigned char *iv, size_t ivlen,
                 const OSSL_PARAM params[])
{
    return cipher_init(vctx, key, keylen, iv, ivlen, params, 1);
}

static int dinit(void *vctx, const unsigned char *key, size_t keylen,
                 const unsigned char *iv, size_t ivlen,
                 const OSSL_PARAM params[])
{
    return cipher_init(vctx, key, keylen, iv, ivlen, params, 0);
}

/* The IV that continues the stream at a block boundary. */
static void next_iv(const cipher_ctx *c, uint8_t iv[BLK])
{
    uint64_t blocks = c->total_in / BLK;
    memcpy(iv, c->iv, BLK);
    if (c->total_in == 0)
        return;
    switch (c->m->mode) {
    case EVP_CIPH_CBC_MODE:
    case EVP_CIPH_CFB_MODE:
        memcpy(iv, c->enc ? c->last_out : c->last_in, BLK);
        break;
    case EVP_CIPH_OFB_MODE:
        for (int i = 0; i < BLK; i++)
            iv[i] = c->last_in[i] ^ c->last_out[i];
        break;
    case EVP_CIPH_CTR_MODE:
        /* the 128-bit big-endian counter, as OpenSSL increments it */
        for (int i = BLK - 1; i >= 0 && blocks; i--) {
            uint64_t v = iv[i] + (blocks & 0xff);
            iv[i] = (uint8_t)v;
            blocks = (blocks >> 8) + (v >> 8);
        }
        break;
    default:
        break;
    }
}

static void remember(uint8_t last[BLK], const uint8_t *p, size_t n)
{
    if (n >= BLK) {
        memcpy(last, p + n - BLK, BLK);
    } else {
        memmove(last, last + n, BLK - n);
        memcpy(last + BLK - n, p, n);
    }
}

static int go_pool(cipher_ctx *c)
{
    gmp_client *cl = gmprov_client(c->prov);
    uint8_t iv[BLK];
    if (!cl)
        return 0;
    next_iv(c, iv);
    gmp_task_options o = gmprov_task_options(c->prov, 0);
    unsigned flags = c->enc ? 0 : GMP_TASK_DECRYPT;
    int rc = c->m->gcm
                 ? gmp_aead_open(cl, c->m->alg, flags, c->key, 16, c->iv,
                                 c->iv_len, c->aad, c->aad_len, &o, &c->task)
                 : gmp_cipher_open(cl, c->m->alg, flags, c->key, 16, 0, iv,
                                   c->m->iv_len, &o, &c->task);
    OPENSSL_cleanse(iv, sizeof iv);
    EVP_CIPHER_CTX_free(c->local);
    c->local = NULL;
    return rc == GMP_OK ? 1 : gmprov_pool_err(c->prov, rc, "open SM4 task");
}

static int go_local(cipher_ctx *c)
{
    EVP_CIPHER *ci = EVP_CIPHER_fetch(gmpc_libctx(), c->m->name,
                                      "provider=default");
    c->local = EVP_CIPHER_CTX_new();
    int ok = ci && c->local &&
             EVP_CipherInit_ex2(c->local, ci, c->key,
                                c->m->iv_len ? c->iv : NULL, c->enc, NULL) &&
             EVP_CIPHER_CTX_set_padding(c->local, 0);
    EVP_CIPHER_free(ci);
    if (!ok)
        gmprov_err(c->prov, GMPROV_R_LOCAL, "in-process %s failed",
                   c->m->name);
    return ok;
}

/* Where the next bytes go: the pool once the stream is long enough and
 * sits on a block boundary (nothing half-done in the local context). */
static int route(cipher_ctx *c, size_t inl)
{
    if (c->task)
        return 1;
    if (c->m->gcm ||
        (c->total_in + inl >= c->prov->set.local_threshold &&
         c->total_in % BLK == 0))
        return go_pool(c);
    return c->local ? 1 : go_local(c);
}

static int raw_update(cipher_ctx *c, uint8_t *out, size_t *outl,
                      size_t outsz, const uint8_t *in, size_t inl)
{
    *outl = 0;
    if (!route(c, inl))
        return 0;
    if (c->task) {
        size_t n = outsz;
        int rc = gmp_task_update(c->task, in, inl, out, &n);
        if (rc != GMP_OK)
            return gmprov_pool_err(c->prov, rc, "SM4 update");
        *outl = n;
    } else {
        int n = 0;
        if (inl > INT32_MAX || !EVP_CipherUpdate(c->local, out, &n, in, (int)inl)) {
            gmprov_err(c->prov, GMPROV_R_LOCAL, "in-process SM4 update");
            return 0;
        }
        *outl = (size_t)n;
        remember(c->last_in, in, inl);
        remember(c->last_out, out, *outl);
    }
    c->total_in += inl;
    return 1;
}

static int raw_final(cipher_ctx *c, uint8_t *out, size_t *outl)
{
    uint8_t buf[2 * BLK];
    size_t n = sizeof buf;
    *outl = 0;
    if (!route(c, 0))
        return 0;
    if (c->task) {
        int rc = gmp_task_final(c->task, buf, &n);
        if (rc == GMP_ERR_LENGTH) {
            gmprov_err(c->prov, GMPROV_R_WRONG_FINAL_BLOCK_LENGTH,
                       "data not a multiple of the block size");
            return 0;
        }
        if (rc != GMP_OK)
            return gmprov_pool_err(c->prov, rc, "SM4 final");
    } else {
        int k = 0;
        if (!EVP_CipherFinal_ex(c->local, buf, &k)) {
            gmprov_err(c->prov, GMPROV_R_WRONG_FINAL_BLOCK_LENGTH,
                       "data not a multiple of the block size");
            return 0;
        }
        n = (size_t)k;
    }
    memcpy(out, buf, n);
    *outl = n;
    return 1;
}

/* ---- update / final with padding ---- */

static bool padded(const cipher_ctx *c)
{
    return c->pad && c->m->block == BLK;
}

/* Decryption with padding: the block that may carry the padding is held
 * back.  A block is held only when the raw transform has no partial block,
 * so held block and new output never exceed inl + 16 bytes. */
static int decrypt_padded(cipher_ctx *c, uint8_t *out, size_t *outl,
                          size_t outsz, const uint8_t *in, size_t inl)
{
    size_t off = 0, n;
    if (c->have_held) {
        memcpy(out, c->held, BLK);
        off = BLK;
        c->have_held = false;
    }
    if (!raw_update(c, out + off, &n, outsz - off, in, inl))
        return 0;
    n += off;
    if (c->total_in % BLK == 0 && n >= BLK) {
        memcpy(c->held, out + n - BLK, BLK);
        c->have_held = true;
        n -= BLK;
    }
    *outl = n;
    return 1;
}

static int gcm_aad(cipher_ctx *c, const uint8_t *in, size_t inl)
{
    if (c->task || c->total_in) {
        gmprov_err(c->prov, GMPROV_R_STATE, "AAD after data");
        return 0;
    }
    if (c->aad_len + inl > GMP_MAX_AAD_LEN) {
        gmprov_err(c->prov, GMPROV_R_BAD_PARAM, "AAD over %u bytes",
                   GMP_MAX_AAD_LEN);
        return 0;
    }
    uint8_t *p = realloc(c->aad, c->aad_len + inl + 1);
    if (!p)
        return 0;
    memcpy(p + c->aad_len, in, inl);
    c->aad = p;
    c->aad_len += inl;
    return 1;
}

static int cipher_update(void *vctx, unsigned char *out, size_t *outl,
                         size_t outsz, const unsigned char *in, size_t inl)
{
    cipher_ctx *c = vctx;
    *outl = 0;
    if (c->failed || !c->key_set) {
        gmprov_err(c->prov, GMPROV_R_STATE, "update without a key");
        return 0;
    }
    if (c->m->gcm && out == NULL)
        return gcm_aad(c, in, inl);
    if (outsz < inl + (c->m->block == BLK ? BLK - 1 : 0)) {
        gmprov_err(c->prov, GMPROV_R_OUTPUT_TOO_SMALL, "output buffer");
        return 0;
    }
    int ok = (padded(c) && !c->enc)
                 ? decrypt_padded(c, out, outl, outsz, in, inl)
                 : raw_update(c, out, outl, outsz, in, inl);
    if (!ok)
        c->failed = true;
    return ok;
}

static int final_padded(cipher_ctx *c, uint8_t *out, size_t *outl)
{
    if (c->enc) {
        uint8_t pad[BLK];
        size_t n = BLK - c->total_in % BLK, k = 0, f = 0;
        memset(pad, (int)n, n);
        if (!raw_update(c, out, &k, BLK, pad, n) || !raw_final(c, out + k, &f))
            return 0;
        *outl = k + f;
        return 1;
    }
    size_t f = 0;
    if (!raw_final(c, out, &f))
        return 0;
    if (!c->have_held) {
        gmprov_err(c->prov, GMPROV_R_WRONG_FINAL_BLOCK_LENGTH,
                   "no whole block to unpad");
        return 0;
    }
    unsigned p = c->held[BLK - 1], bad = p == 0 || p > BLK;
    for (unsigned i = 0; !bad && i < p; i++)
        bad |= c->held[BLK - 1 - i] != p;
    if (bad) {
        gmprov_err(c->prov, GMPROV_R_BAD_DECRYPT, "bad padding");
        return 0;
    }
    memcpy(out, c->held, BLK - p);
    *outl = BLK - p;
    return 1;
}

static int gcm_final(cipher_ctx *c, uint8_t *out, size_t *outl)
{
    size_t f = 0;
    uint8_t tag[16];
    if (!raw_final(c, out, &f) ||
        gmp_task_get_tag(c->task, tag, sizeof tag) != GMP_OK)
        return 0;
    *outl = f;
    if (c->enc) {
        memcpy(c->tag, tag, sizeof tag);
        c->tag_ready = true;
        return 1;
    }
    if (!c->tag_ready || CRYPTO_memcmp(tag, c->tag, c->tag_len) != 0) {
        gmprov_err(c->prov, GMPROV_R_BAD_DECRYPT,
                   c->tag_ready ? "tag mismatch" : "no tag set to verify");
        return 0;
    }
    return 1;
}

static int cipher_final(void *vctx, unsigned char *out, size_t *outl,
                        size_t outsz)
{
    cipher_ctx *c = vctx;
    *outl = 0;
    if (c->failed || !c->key_set) {
        gmprov_err(c->prov, GMPROV_R_STATE, "final without a key");
        return 0;
    }
    if (outsz < (padded(c) ? BLK : 0)) {
        gmprov_err(c->prov, GMPROV_R_OUTPUT_TOO_SMALL, "output buffer");
        return 0;
    }
    int ok = c->m->gcm  ? gcm_final(c, out, outl)
             : padded(c) ? final_padded(c, out, outl)
                         : raw_final(c, out, outl);
    c->failed = true; /* a new init is needed */
    return ok;
}

static int cipher_oneshot(void *vctx, unsigned char *out, size_t *outl,
                          size_t outsz, const unsigned char *in, size_t inl)
{
    size_t a = 0, b = 0;
    if (!cipher_update(vctx, out, &a, outsz, in, inl) ||
        !cipher_final(vctx, out + a, &b, outsz - a))
        return 0;
    *outl = a + b;
    return 1;
}

/* ---- parameters ---- */

static int get_params_for(const mode_info *m, OSSL_PARAM params[])
{
    OSSL_PARAM *p;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_MODE)) &&
        !OSSL_PARAM_set_uint(p, m->mode))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)) &&
        !OSSL_PARAM_set_size_t(p, 16))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)) &&
        !OSSL_PARAM_set_size_t(p, m->iv_len))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_BLOCK_SIZE)) &&
        !OSSL_PARAM_set_size_t(p, m->block))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD)) &&
        !OSSL_PARAM_set_int(p, m->gcm))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_CUSTOM_IV)) &&
        !OSSL_PARAM_set_int(p, m->gcm))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_CTS)) &&
        !OSSL_PARAM_set_int(p, 0))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK)) &&
        !OSSL_PARAM_set_int(p, 0))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_HAS_RAND_KEY)) &&
        !OSSL_PARAM_set_int(p, 0))
        return 0;
    return 1;
}

static const OSSL_PARAM *gettable_params(void *provctx)
{
    static const OSSL_PARAM p[] = {
        OSSL_PARAM_uint(OSSL_CIPHER_PARAM_MODE, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_BLOCK_SIZE, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_AEAD, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_CUSTOM_IV, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_CTS, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_HAS_RAND_KEY, NULL),
        OSSL_PARAM_END};
    (void)provctx;
    return p;
}

static int set_octets(OSSL_PARAM *p, const void *v, size_t n)
{
    return OSSL_PARAM_set_octet_string(p, v, n);
}

static int get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    cipher_ctx *c = vctx;
    OSSL_PARAM *p;
    uint8_t iv[BLK];
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)) &&
        !OSSL_PARAM_set_size_t(p, 16))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)) &&
        !OSSL_PARAM_set_size_t(p, c->iv_len))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_PADDING)) &&
        !OSSL_PARAM_set_uint(p, (unsigned)c->pad))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_NUM)) &&
        !OSSL_PARAM_set_uint(p, (unsigned)(c->total_in % BLK)))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IV)) &&
        !set_octets(p, c->iv, c->iv_len))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_UPDATED_IV))) {
        next_iv(c, iv);
        if (!set_octets(p, c->m->gcm ? c->iv : iv, c->iv_len))
            return 0;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TAGLEN)) &&
        !OSSL_PARAM_set_size_t(p, c->tag_len))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TAG))) {
        if (!c->m->gcm || !c->enc || !c->tag_ready || p->data_size == 0 ||
            p->data_size > 16) {
            gmprov_err(c->prov, GMPROV_R_STATE, "no tag to get yet");
            return 0;
        }
        if (!set_octets(p, c->tag, p->data_size))
            return 0;
    }
    return 1;
}

static int set_gcm_params(cipher_ctx *c, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    size_t n;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_IVLEN))) {
        if (!OSSL_PARAM_get_size_t(p, &n) || n == 0 || n > GMP_MAX_IV_LEN) {
            gmprov_err(c->prov, GMPROV_R_BAD_IV_LENGTH, "GCM IV 1..16 bytes");
            return 0;
        }
        c->iv_len = n;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TAG))) {
        if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size == 0 ||
            p->data_size > 16) {
            gmprov_err(c->prov, GMPROV_R_BAD_PARAM, "tag length 1..16");
            return 0;
        }
        c->tag_len = p->data_size;
        if (p->data) { /* decryption: the tag to verify */
            memcpy(c->tag, p->data, p->data_size);
            c->tag_ready = !c->enc;
        }
    }
    return 1;
}

static int set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    cipher_ctx *c = vctx;
    const OSSL_PARAM *p;
    if (!params)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_PADDING))) {
        unsigned v;
        if (!OSSL_PARAM_get_uint(p, &v))
            return 0;
        c->pad = v != 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_KEYLEN))) {
        size_t v;
        if (!OSSL_PARAM_get_size_t(p, &v) || v != 16) {
            gmprov_err(c->prov, GMPROV_R_BAD_KEY_LENGTH, "SM4 keys are 16 bytes");
            return 0;
        }
    }
    return c->m->gcm ? set_gcm_params(c, params) : 1;
}

static const OSSL_PARAM *gettable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM p[] = {
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
        OSSL_PARAM_uint(OSSL_CIPHER_PARAM_PADDING, NULL),
        OSSL_PARAM_uint(OSSL_CIPHER_PARAM_NUM, NULL),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_IV, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_UPDATED_IV, NULL, 0),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_TAGLEN, NULL),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),
        OSSL_PARAM_END};
    (void)vctx;
    (void)provctx;
    return p;
}

static const OSSL_PARAM *settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM p[] = {
        OSSL_PARAM_uint(OSSL_CIPHER_PARAM_PADDING, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, NULL),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),
        OSSL_PARAM_END};
    (void)vctx;
    (void)provctx;
    return p;
}

/* ---- dispatch tables, one per mode ---- */

#define MODE_TABLE(lc, M)                                                     \
    static void *lc##_new(void *provctx)                                      \
    {                                                                         \
        return cipher_new(provctx, &M);                                       \
    }                                                                         \
    static int lc##_get_params(OSSL_PARAM params[])                           \
    {                                                                         \
        return get_params_for(&M, params);                                    \
    }                                                                         \
    const OSSL_DISPATCH gmprov_##lc##_functions[] = {                         \
        {OSSL_FUNC_CIPHER_NEWCTX, (void (*)(void))lc##_new},                  \
        {OSSL_FUNC_CIPHER_FREECTX, (void (*)(void))cipher_free},              \
        {OSSL_FUNC_CIPHER_DUPCTX, (void (*)(void))cipher_dup},                \
        {OSSL_FUNC_CIPHER_ENCRYPT_INIT, (void (*)(void))einit},               \
        {OSSL_FUNC_CIPHER_DECRYPT_INIT, (void (*)(void))dinit},               \
        {OSSL_FUNC_CIPHER_UPDATE, (void (*)(void))cipher_update},             \
        {OSSL_FUNC_CIPHER_FINAL, (void (*)(void))cipher_final},               \
        {OSSL_FUNC_CIPHER_CIPHER, (void (*)(void))cipher_oneshot},            \
        {OSSL_FUNC_CIPHER_GET_PARAMS, (void (*)(void))lc##_get_params},       \
        {OSSL_FUNC_CIPHER_GETTABLE_PARAMS, (void (*)(void))gettable_params},  \
        {OSSL_FUNC_CIPHER_GET_CTX_PARAMS, (void (*)(void))get_ctx_params},    \
        {OSSL_FUNC_CIPHER_SET_CTX_PARAMS, (void (*)(void))set_ctx_params},    \
        {OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS,                                \
         (void (*)(void))gettable_ctx_params},                                \
        {OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS,                                \
         (void (*)(void))settable_ctx_params},                                \
        {0, NULL}};

MODE_TABLE(sm4_ecb, M_ECB)
MODE_TABLE(sm4_cbc, M_CBC)
MODE_TABLE(sm4_ctr, M_CTR)
MODE_TABLE(sm4_ofb, M_OFB)
MODE_TABLE(sm4_cfb, M_CFB)
MODE_TABLE(sm4_gcm, M_GCM)
