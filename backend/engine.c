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
/* Where libgcrypt is the faster well-kept library on x86-64 (AES-NI and
 * AVX2 bulk SM4 for the modes that run blocks side by side, and SM3; see
 * docs/performance.md), a row computes with it.  Each path is checked
 * against libcrypto at init and dropped if it differs.  CBC encryption,
 * ECB and padding stay on libcrypto: libgcrypt 1.10 is no faster there. */
typedef struct fast_path {
    uint16_t alg;
    int md;                  /* gcrypt digest, or 0 */
    int algo, mode;          /* gcrypt cipher */
    bool decrypt_only;
} fast_path;

static const fast_path g_fast[] = {
    {GMP_ALG_SM3, GCRY_MD_SM3, 0, 0, false},
    {GMP_ALG_SM4_CTR, 0, GCRY_CIPHER_SM4, GCRY_CIPHER_MODE_CTR, false},
    {GMP_ALG_SM4_CBC, 0, GCRY_CIPHER_SM4, GCRY_CIPHER_MODE_CBC, true},
};

typedef struct alg_row {
    gmpd_alg_info info;
    int gcry_algo;           /* GCM rows */
    EVP_MD *md;
    EVP_CIPHER *cipher;
    EVP_MAC *mac;
    const fast_path *fast;   /* checked at init, else NULL */
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
/* The libcrypto objects and the fast path are filled in at init. */
#define ROW(alg, name, kind, svc, ktype, key, iv, block, out, pad, gc)       \
    {.info = {alg, name, kind, svc, ktype, key, iv, block, out, pad},        \
     .gcry_algo = gc}
/* AES: the name, key length and libgcrypt cipher follow from the bits. */
#define AES(alg, bits, mode, kind, iv, block, pad)                          \
    ROW(alg, "AES-" #bits "-" mode, kind, X, K_AES, bits / 8, iv, block, 0, \
        pad, GCRY_CIPHER_AES##bits)
#define AES3(alg, mode, kind, iv, block, pad)                               \
    AES(alg, 128, mode, kind, iv, block, pad),                              \
    AES(alg, 192, mode, kind, iv, block, pad),                              \
    AES(alg, 256, mode, kind, iv, block, pad)

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
    gcry_cipher_hd_t gc;     /* fast path cipher */
    gcry_md_hd_t gmd;        /* fast path digest */
    bool decrypt;
    uint8_t iv[16];          /* as given: CTR counter base, CBC chain 0 */
    uint8_t part[16];        /* fast CBC: a partial block held back */
    size_t part_len;
};

static bool fast_cipher(const alg_row *r, unsigned flags)
{
    return r->fast && r->fast->algo && !(flags & GMP_TASK_PAD) &&
           (!r->fast->decrypt_only || (flags & GMP_TASK_DECRYPT));
}

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

/* The first row of alg. */
static alg_row *find_row(uint16_t alg)
{
    for (size_t i = 0; i < N_ALGS; i++)
        if (g_algs[i].info.alg == alg)
            return &g_algs[i];
    return NULL;
}

/* One pass over a fixed vector, fed in uneven pieces; out gets it all. */
static int run_vector(uint16_t alg, unsigned flags, uint8_t *out,
                      size_t *out_len)
{
    static const size_t cuts[] = {1, 15, 17, 64, 100, 311, 500};
    uint8_t key[16], iv[16], in[1008];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < 16; i++) {
        key[i] = (uint8_t)(0xA5 ^ i);
        iv[i] = (uint8_t)(0x3C + i);
    }
    gmpd_engine_args a = {.flags = flags};
    if (alg != GMP_ALG_SM3)
        a = (gmpd_engine_args){.flags = flags, .key = key, .key_len = 16,
                               .iv = iv, .iv_len = 16};
    int st;
    gmpd_engine_ctx *c = gmpd_engine_new(alg, &a, &st);
    size_t off = 0, o = 0, n;
    for (size_t k = 0; c && st == GMP_OK && k < sizeof cuts / sizeof *cuts;
         k++) {
        st = gmpd_engine_update(c, in + off, cuts[k], out + o, &n);
        off += cuts[k];
        o += n;
    }
    if (c && st == GMP_OK)
        st = gmpd_engine_final(c, out + o, &n);
    gmpd_engine_free(c);
    *out_len = o + (st == GMP_OK ? n : 0);
    return c ? st : GMP_ERR_INTERNAL;
}

/* Keeps the fast path of r only if it gives libcrypto's bytes. */
static void check_fast(alg_row *r, const fast_path *f)
{
    uint8_t want[1100], got[1100];
    size_t nw = 0, ng = 0;
    unsigned flags = f->decrypt_only ? GMP_TASK_DECRYPT : 0;
    r->fast = NULL;
    int a = run_vector(f->alg, flags, want, &nw);
    r->fast = f;
    int b = run_vector(f->alg, flags, got, &ng);
    if (a != GMP_OK || b != GMP_OK || nw != ng || memcmp(want, got, nw) != 0)
        r->fast = NULL;
}

int gmpd_engine_init(void)
{
    OSSL_LIB_CTX *lc = gmpc_libctx();
    if (!lc || gcrypt_init() != GMP_OK)
        return GMP_ERR_INTERNAL;
    for (size_t i = 0; i < N_ALGS; i++)
        if (!row_fetch(lc, &g_algs[i]))
            return GMP_ERR_INTERNAL;
    for (size_t i = 0; i < sizeof g_fast / sizeof *g_fast; i++) {
        alg_row *r = find_row(g_fast[i].alg);
        if (r)
            check_fast(r, &g_fast[i]);
    }
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
        g_algs[i].fast = NULL;
    }
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
    if (c->row->fast)
        return gcry_md_open(&c->gmd, c->row->fast->md, 0) ? GMP_ERR_INTERNAL
                                                          : GMP_OK;
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

static int fast_set_iv(gmpd_engine_ctx *c, const uint8_t iv[16])
{
    gcry_error_t e = c->row->fast->mode == GCRY_CIPHER_MODE_CTR
                         ? gcry_cipher_setctr(c->gc, iv, 16)
                         : gcry_cipher_setiv(c->gc, iv, 16);
    return e ? GMP_ERR_INTERNAL : GMP_OK;
}

static int fast_init(gmpd_engine_ctx *c, const gmpd_engine_args *a)
{
    const fast_path *f = c->row->fast;
    if (gcry_cipher_open(&c->gc, f->algo, f->mode, 0) ||
        gcry_cipher_setkey(c->gc, a->key, a->key_len))
        return GMP_ERR_INTERNAL;
    return fast_set_iv(c, c->iv);
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
    c->decrypt = a->flags & GMP_TASK_DECRYPT;
    if (a->iv_len)
        memcpy(c->iv, a->iv, 16);
    if (fast_cipher(c->row, a->flags))
        return fast_init(c, a);
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

/* Whole blocks, no state beyond the chaining libgcrypt keeps. */
static int fast_raw(gmpd_engine_ctx *c, const uint8_t *in, size_t n,
                    uint8_t *out)
{
    if (!n)
        return GMP_OK;
    gcry_error_t e = c->decrypt ? gcry_cipher_decrypt(c->gc, out, n, in, n)
                                : gcry_cipher_encrypt(c->gc, out, n, in, n);
    return e ? GMP_ERR_INTERNAL : GMP_OK;
}

/* CTR takes any length; CBC holds a partial block back, as EVP does. */
static int fast_update(gmpd_engine_ctx *c, const uint8_t *in, size_t n,
                       uint8_t *out, size_t *out_len)
{
    if (c->row->fast->mode == GCRY_CIPHER_MODE_CTR) {
        *out_len = n;
        return fast_raw(c, in, n, out);
    }
    size_t o = 0;
    if (c->part_len) {
        size_t take = 16 - c->part_len < n ? 16 - c->part_len : n;
        memcpy(c->part + c->part_len, in, take);
        c->part_len += take;
        in += take;
        n -= take;
        if (c->part_len < 16)
            return GMP_OK;
        if (fast_raw(c, c->part, 16, out) != GMP_OK)
            return GMP_ERR_INTERNAL;
        c->part_len = 0;
        o = 16;
    }
    size_t whole = n & ~(size_t)15;
    if (fast_raw(c, in, whole, out + o) != GMP_OK)
        return GMP_ERR_INTERNAL;
    memcpy(c->part, in + whole, n - whole);
    c->part_len = n - whole;
    *out_len = o + whole;
    return GMP_OK;
}

int gmpd_engine_update(gmpd_engine_ctx *c, const uint8_t *in, size_t in_len,
                       uint8_t *out, size_t *out_len)
{
    *out_len = 0;
    if (in_len > INT32_MAX)
        return GMP_ERR_TOO_BIG;
    if (c->gmd) {
        gcry_md_write(c->gmd, in, in_len);
        return GMP_OK;
    }
    if (c->gc)
        return fast_update(c, in, in_len, out, out_len);
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
    if (c->gmd) {
        const uint8_t *md = gcry_md_read(c->gmd, 0);
        if (!md)
            return GMP_ERR_INTERNAL;
        memcpy(out, md, c->row->info.out_len);
        *out_len = c->row->info.out_len;
        return GMP_OK;
    }
    if (c->gc) /* no padding here: a partial block is the caller's error */
        return c->part_len ? GMP_ERR_LENGTH : GMP_OK;
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
    if (c->gc)
        gcry_cipher_close(c->gc);
    if (c->gmd)
        gcry_md_close(c->gmd);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

const char *gmpd_engine_impl(uint16_t alg, unsigned flags)
{
    const alg_row *r = find_row(alg);
    if (!r)
        return "none";
    bool gc = r->info.kind == GMPD_KIND_AEAD ||
              (r->info.kind == GMPD_KIND_DIGEST && r->fast) ||
              fast_cipher(r, flags);
    return gc ? "libgcrypt" : "libcrypto";
}

/* ---- parallel modes ---- */

bool gmpd_engine_parallel(uint16_t alg, unsigned flags)
{
    if (flags & GMP_TASK_PAD)
        return false;
    switch (alg) {
    case GMP_ALG_SM4_ECB:
    case GMP_ALG_SM4_CTR:
    case GMP_ALG_AES_ECB:
    case GMP_ALG_AES_CTR:
        return true;
    case GMP_ALG_SM4_CBC:
    case GMP_ALG_AES_CBC:
        return (flags & GMP_TASK_DECRYPT) != 0;
    default:
        return false;
    }
}

void gmpd_engine_pos_advance(gmpd_engine_pos *p, const uint8_t *in,
                             size_t len)
{
    if (len >= GMPD_POS_PRE) {
        memcpy(p->pre, in + len - GMPD_POS_PRE, GMPD_POS_PRE);
        p->pre_len = GMPD_POS_PRE;
    } else {
        size_t keep = p->pre_len < GMPD_POS_PRE - len ? p->pre_len
                                                      : GMPD_POS_PRE - len;
        memmove(p->pre, p->pre + p->pre_len - keep, keep);
        memcpy(p->pre + keep, in, len);
        p->pre_len = (uint8_t)(keep + len);
    }
    p->offset += len;
}

/* The counter block or chaining value for the next bytes. */
static int set_iv(gmpd_engine_ctx *c, const uint8_t iv[16])
{
    if (c->gc)
        return fast_set_iv(c, iv);
    if (!EVP_CipherInit_ex2(c->cipher, NULL, NULL, iv, -1, NULL))
        return GMP_ERR_INTERNAL;
    EVP_CIPHER_CTX_set_padding(c->cipher, 0);
    return GMP_OK;
}

/* n bytes with no buffering: whole blocks, or any length for CTR. */
static int raw(gmpd_engine_ctx *c, const uint8_t *in, size_t n, uint8_t *out)
{
    if (c->gc)
        return fast_raw(c, in, n, out);
    int l = 0;
    if (n && (!EVP_CipherUpdate(c->cipher, out, &l, in, (int)n) ||
              (size_t)l != n))
        return GMP_ERR_INTERNAL;
    return GMP_OK;
}

/* CTR: counter = IV + offset / 16 (128-bit big-endian, as OpenSSL and
 * libgcrypt count), then offset % 16 keystream bytes skipped. */
static int ctr_at(gmpd_engine_ctx *c, uint64_t offset, const uint8_t *in,
                  size_t n, uint8_t *out)
{
    uint8_t ctr[16], zero[16] = {0}, junk[16];
    memcpy(ctr, c->iv, 16);
    uint64_t add = offset / 16;
    for (int i = 15; i >= 0 && add; i--) {
        uint64_t v = ctr[i] + (add & 0xff);
        ctr[i] = (uint8_t)v;
        add = (add >> 8) + (v >> 8);
    }
    int st = set_iv(c, ctr);
    if (st == GMP_OK && offset % 16)
        st = raw(c, zero, offset % 16, junk);
    return st == GMP_OK ? raw(c, in, n, out) : st;
}

/* ECB / CBC decryption: the blocks that end inside this item; a block
 * begun by earlier items takes its first bytes from pos->pre, and CBC's
 * chaining value is the ciphertext block before it (or the IV). */
static int blocks_at(gmpd_engine_ctx *c, const gmpd_engine_pos *pos,
                     const uint8_t *in, size_t n, uint8_t *out,
                     size_t *out_len)
{
    size_t part = (size_t)(pos->offset % 16), o = 0;
    if (part > pos->pre_len)
        return GMP_ERR_INTERNAL;
    const uint8_t *head = pos->pre + pos->pre_len - part;
    int st = GMP_OK;
    if (c->row->info.iv_len) {
        bool first = pos->offset < 16;
        if (!first && pos->pre_len < part + 16)
            return GMP_ERR_INTERNAL;
        st = set_iv(c, first ? c->iv : head - 16);
    }
    if (st == GMP_OK && part && part + n >= 16) {
        uint8_t blk[16];
        memcpy(blk, head, part);
        memcpy(blk + part, in, 16 - part);
        st = raw(c, blk, 16, out);
        in += 16 - part;
        n -= 16 - part;
        o = 16;
    } else if (part) {
        n = 0; /* still inside the block an earlier item began */
    }
    size_t whole = n & ~(size_t)15;
    if (st == GMP_OK)
        st = raw(c, in, whole, out + o);
    *out_len = st == GMP_OK ? o + whole : 0;
    return st;
}

int gmpd_engine_update_at(gmpd_engine_ctx *c, const gmpd_engine_pos *pos,
                          const uint8_t *in, size_t in_len, bool final,
                          uint8_t *out, size_t *out_len)
{
    *out_len = 0;
    if (in_len > INT32_MAX)
        return GMP_ERR_TOO_BIG;
    if (c->row->info.kind != GMPD_KIND_CIPHER)
        return GMP_ERR_INTERNAL;
    if (c->row->info.block == 1) {
        *out_len = in_len;
        return ctr_at(c, pos->offset, in, in_len, out);
    }
    int st = blocks_at(c, pos, in, in_len, out, out_len);
    if (st == GMP_OK && final && (pos->offset + in_len) % 16)
        st = GMP_ERR_LENGTH; /* no padding: the stream must end on a block */
    return st;
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
