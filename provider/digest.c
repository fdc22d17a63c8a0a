/* SM3 and HMAC-SM3.  Both buffer input until it reaches the local
 * threshold: a short message is hashed in-process by the default provider
 * (cheaper than a round trip); a long one becomes a pool task that gets the
 * buffered bytes and everything after. */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "prov.h"
#include "util.h"

#define SM3_LEN 32
#define SM3_BLOCK 64

typedef struct hash_ctx {
    gmprov_ctx *prov;
    bool mac;
    uint8_t key[128];
    size_t key_len;
    bool keyed;
    uint8_t *buf;            /* input not yet decided on */
    size_t buf_len, buf_cap;
    gmp_task *task;          /* once pooled */
    bool failed;
} hash_ctx;

static hash_ctx *hash_new(void *provctx, bool mac)
{
    hash_ctx *h = calloc(1, sizeof *h);
    if (h) {
        h->prov = provctx;
        h->mac = mac;
    }
    return h;
}

static void hash_reset(hash_ctx *h)
{
    gmp_task_free(h->task);
    h->task = NULL;
    if (h->buf)
        OPENSSL_cleanse(h->buf, h->buf_len);
    h->buf_len = 0;
    h->failed = false;
}

static void hash_free(void *vctx)
{
    hash_ctx *h = vctx;
    if (!h)
        return;
    hash_reset(h);
    free(h->buf);
    OPENSSL_cleanse(h, sizeof *h);
    free(h);
}

static void *hash_dup(void *vctx)
{
    hash_ctx *src = vctx, *h;
    if (src->task) {
        gmprov_err(src->prov, GMPROV_R_DUP_POOLED,
                   "the digest state of this context lives in the pool");
        return NULL;
    }
    h = hash_new(src->prov, src->mac);
    if (!h)
        return NULL;
    memcpy(h->key, src->key, sizeof h->key);
    h->key_len = src->key_len;
    h->keyed = src->keyed;
    h->failed = src->failed;
    if (src->buf_len) {
        h->buf = malloc(src->buf_cap);
        if (!h->buf) {
            hash_free(h);
            return NULL;
        }
        memcpy(h->buf, src->buf, src->buf_len);
        h->buf_len = src->buf_len;
        h->buf_cap = src->buf_cap;
    }
    return h;
}

static int go_pool(hash_ctx *h)
{
    gmp_client *c = gmprov_client(h->prov);
    if (!c)
        return 0;
    gmp_task_options o = gmprov_task_options(h->prov, 0);
    int rc = h->mac ? gmp_mac_open(c, GMP_ALG_HMAC_SM3, h->key, h->key_len,
                                   &o, &h->task)
                    : gmp_digest_open(c, GMP_ALG_SM3, &o, &h->task);
    if (rc == GMP_OK && h->buf_len)
        rc = gmp_task_update(h->task, h->buf, h->buf_len, NULL, NULL);
    h->buf_len = 0;
    return rc == GMP_OK ? 1 : gmprov_pool_err(h->prov, rc, "open SM3 task");
}

static int buffer(hash_ctx *h, const unsigned char *in, size_t n)
{
    if (h->buf_cap - h->buf_len < n) {
        /* doubling keeps many small updates linear, not quadratic */
        size_t cap = h->buf_cap ? 2 * h->buf_cap : 4096;
        while (cap < h->buf_len + n)
            cap *= 2;
        uint8_t *p = malloc(cap);
        if (!p)
            return 0;
        if (h->buf_len)
            memcpy(p, h->buf, h->buf_len);
        if (h->buf)
            OPENSSL_cleanse(h->buf, h->buf_len);
        free(h->buf);
        h->buf = p;
        h->buf_cap = cap;
    }
    memcpy(h->buf + h->buf_len, in, n);
    h->buf_len += n;
    return 1;
}

static int hash_update(void *vctx, const unsigned char *in, size_t n)
{
    hash_ctx *h = vctx;
    if (h->failed || (h->mac && !h->keyed)) {
        gmprov_err(h->prov, GMPROV_R_STATE, "update without a good init");
        return 0;
    }
    if (!h->task && h->buf_len + n < h->prov->set.local_threshold)
        return buffer(h, in, n);
    if (!h->task && !go_pool(h)) {
        h->failed = true;
        return 0;
    }
    int rc = gmp_task_update(h->task, in, n, NULL, NULL);
    if (rc != GMP_OK) {
        h->failed = true;
        return gmprov_pool_err(h->prov, rc, "SM3 update");
    }
    return 1;
}

static int local_final(hash_ctx *h, unsigned char *out)
{
    OSSL_LIB_CTX *lc = gmpc_libctx();
    size_t outl = 0;
    int ok;
    if (h->mac) {
        EVP_MAC *mac = EVP_MAC_fetch(lc, "HMAC", "provider=default");
        OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(
                              OSSL_MAC_PARAM_DIGEST, "SM3", 0),
                          OSSL_PARAM_construct_end()};
        EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
        ok = m && EVP_MAC_init(m, h->key, h->key_len, p) &&
             EVP_MAC_update(m, h->buf, h->buf_len) &&
             EVP_MAC_final(m, out, &outl, SM3_LEN);
        EVP_MAC_CTX_free(m);
        EVP_MAC_free(mac);
    } else {
        EVP_MD *md = EVP_MD_fetch(lc, "SM3", "provider=default");
        unsigned int n = 0;
        ok = md && EVP_Digest(h->buf ? h->buf : (const uint8_t *)"",
                              h->buf_len, out, &n, md, NULL);
        EVP_MD_free(md);
    }
    if (!ok)
        gmprov_err(h->prov, GMPROV_R_LOCAL, "in-process SM3 failed");
    return ok;
}

static int hash_final(void *vctx, unsigned char *out, size_t *outl,
                      size_t outsz)
{
    hash_ctx *h = vctx;
    if (outsz < SM3_LEN) {
        gmprov_err(h->prov, GMPROV_R_OUTPUT_TOO_SMALL, "need %d bytes",
                   SM3_LEN);
        return 0;
    }
    if (h->failed || (h->mac && !h->keyed)) {
        gmprov_err(h->prov, GMPROV_R_STATE, "final without a good init");
        return 0;
    }
    int ok;
    if (h->task) {
        size_t n = SM3_LEN;
        int rc = gmp_task_final(h->task, out, &n);
        ok = rc == GMP_OK ? 1 : gmprov_pool_err(h->prov, rc, "SM3 final");
    } else {
        ok = local_final(h, out);
    }
    *outl = ok ? SM3_LEN : 0;
    h->failed = true; /* a new init is needed */
    return ok;
}

/* ---- SM3 ---- */

static void *sm3_newctx(void *provctx)
{
    return hash_new(provctx, false);
}

static int sm3_init(void *vctx, const OSSL_PARAM params[])
{
    (void)params;
    hash_reset(vctx);
    return 1;
}

static int sm3_get_params(OSSL_PARAM params[])
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_DIGEST_PARAM_BLOCK_SIZE);
    if (p && !OSSL_PARAM_set_size_t(p, SM3_BLOCK))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_DIGEST_PARAM_SIZE);
    if (p && !OSSL_PARAM_set_size_t(p, SM3_LEN))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_DIGEST_PARAM_XOF);
    if (p && !OSSL_PARAM_set_int(p, 0))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_DIGEST_PARAM_ALGID_ABSENT);
    if (p && !OSSL_PARAM_set_int(p, 0))
        return 0;
    return 1;
}

static const OSSL_PARAM *sm3_gettable_params(void *provctx)
{
    static const OSSL_PARAM p[] = {
        OSSL_PARAM_size_t(OSSL_DIGEST_PARAM_BLOCK_SIZE, NULL),
        OSSL_PARAM_size_t(OSSL_DIGEST_PARAM_SIZE, NULL),
        OSSL_PARAM_int(OSSL_DIGEST_PARAM_XOF, NULL),
        OSSL_PARAM_int(OSSL_DIGEST_PARAM_ALGID_ABSENT, NULL),
        OSSL_PARAM_END};
    (void)provctx;
    return p;
}

static int sm3_digest(void *provctx, const unsigned char *in, size_t inl,
                      unsigned char *out, size_t *outl, size_t outsz)
{
    hash_ctx *h = hash_new(provctx, false);
    int ok = h && hash_update(h, in, inl) && hash_final(h, out, outl, outsz);
    hash_free(h);
    return ok;
}

const OSSL_DISPATCH gmprov_sm3_functions[] = {
    {OSSL_FUNC_DIGEST_NEWCTX, (void (*)(void))sm3_newctx},
    {OSSL_FUNC_DIGEST_INIT, (void (*)(void))sm3_init},
    {OSSL_FUNC_DIGEST_UPDATE, (void (*)(void))hash_update},
    {OSSL_FUNC_DIGEST_FINAL, (void (*)(void))hash_final},
    {OSSL_FUNC_DIGEST_DIGEST, (void (*)(void))sm3_digest},
    {OSSL_FUNC_DIGEST_FREECTX, (void (*)(void))hash_free},
    {OSSL_FUNC_DIGEST_DUPCTX, (void (*)(void))hash_dup},
    {OSSL_FUNC_DIGEST_GET_PARAMS, (void (*)(void))sm3_get_params},
    {OSSL_FUNC_DIGEST_GETTABLE_PARAMS, (void (*)(void))sm3_gettable_params},
    {0, NULL}};

/* ---- HMAC (digest SM3 only: the pool computes HMAC-SM3) ---- */

static void *hmac_newctx(void *provctx)
{
    return hash_new(provctx, true);
}

static int hmac_set_params(void *vctx, const OSSL_PARAM params[])
{
    hash_ctx *h = vctx;
    const OSSL_PARAM *p;
    if (!params)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_MAC_PARAM_DIGEST);
    if (p) {
        const char *name = NULL;
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) ||
            (OPENSSL_strcasecmp(name, "SM3") != 0 &&
             strcmp(name, "1.2.156.10197.1.401") != 0)) {
            gmprov_err(h->prov, GMPROV_R_BAD_PARAM,
                       "gmpool's HMAC supports digest SM3 only, not %s",
                       name ? name : "?");
            return 0;
        }
    }
    p = OSSL_PARAM_locate_const(params, OSSL_MAC_PARAM_KEY);
    if (p) {
        const void *k;
        size_t kl;
        if (!OSSL_PARAM_get_octet_string_ptr(p, &k, &kl))
            return 0;
        if (kl > sizeof h->key) {
            /* RFC 2104: a long key is replaced by its digest */
            unsigned int n = 0;
            EVP_MD *md = EVP_MD_fetch(gmpc_libctx(), "SM3", NULL);
            int ok = md && EVP_Digest(k, kl, h->key, &n, md, NULL);
            EVP_MD_free(md);
            if (!ok)
                return 0;
            kl = n;
        } else {
            memcpy(h->key, k, kl);
        }
        if (kl == 0) {
            /* the pool's HMAC needs key bytes: refuse now, not at update */
            gmprov_err(h->prov, GMPROV_R_BAD_KEY_LENGTH,
                       "an empty HMAC key is not supported");
            return 0;
        }
        h->key_len = kl;
        h->keyed = true;
    }
    return 1;
}

static int hmac_init(void *vctx, const unsigned char *key, size_t keylen,
                     const OSSL_PARAM params[])
{
    hash_ctx *h = vctx;
    if (!hmac_set_params(h, params))
        return 0;
    if (key) {
        OSSL_PARAM kp[] = {OSSL_PARAM_construct_octet_string(
                               OSSL_MAC_PARAM_KEY, (void *)key, keylen),
                           OSSL_PARAM_construct_end()};
        if (!hmac_set_params(h, kp))
            return 0;
    }
    hash_reset(h);
    return 1;
}

static int hmac_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_MAC_PARAM_SIZE);
    (void)vctx;
    if (p && !OSSL_PARAM_set_size_t(p, SM3_LEN))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_MAC_PARAM_BLOCK_SIZE);
    if (p && !OSSL_PARAM_set_size_t(p, SM3_BLOCK))
        return 0;
    return 1;
}

static const OSSL_PARAM *hmac_gettable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM p[] = {
        OSSL_PARAM_size_t(OSSL_MAC_PARAM_SIZE, NULL),
        OSSL_PARAM_size_t(OSSL_MAC_PARAM_BLOCK_SIZE, NULL), OSSL_PARAM_END};
    (void)vctx;
    (void)provctx;
    return p;
}

static const OSSL_PARAM *hmac_settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM p[] = {
        OSSL_PARAM_utf8_string(OSSL_MAC_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_MAC_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_MAC_PARAM_KEY, NULL, 0), OSSL_PARAM_END};
    (void)vctx;
    (void)provctx;
    return p;
}

const OSSL_DISPATCH gmprov_hmac_functions[] = {
    {OSSL_FUNC_MAC_NEWCTX, (void (*)(void))hmac_newctx},
    {OSSL_FUNC_MAC_DUPCTX, (void (*)(void))hash_dup},
    {OSSL_FUNC_MAC_FREECTX, (void (*)(void))hash_free},
    {OSSL_FUNC_MAC_INIT, (void (*)(void))hmac_init},
    {OSSL_FUNC_MAC_UPDATE, (void (*)(void))hash_update},
    {OSSL_FUNC_MAC_FINAL, (void (*)(void))hash_final},
    {OSSL_FUNC_MAC_GET_CTX_PARAMS, (void (*)(void))hmac_get_ctx_params},
    {OSSL_FUNC_MAC_GETTABLE_CTX_PARAMS,
     (void (*)(void))hmac_gettable_ctx_params},
    {OSSL_FUNC_MAC_SET_CTX_PARAMS, (void (*)(void))hmac_set_params},
    {OSSL_FUNC_MAC_SETTABLE_CTX_PARAMS,
     (void (*)(void))hmac_settable_ctx_params},
    {0, NULL}};
