/* Digest, encrypt, decrypt, sign and verify: each a pool task opened at
 * C_*Init and fed by the single- and multi-part calls.  The module does
 * the block buffering and PKCS#7 padding itself, so every byte it sends
 * to the pool comes back at once and output lengths are known before any
 * input is consumed: a length query or CKR_BUFFER_TOO_SMALL never loses
 * data.  Big inputs go through the client's windowed shard pipeline. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "p11.h"

#define BLK 16u
#define MAC_CHUNK (1024u * 1024u)

struct p11_op {
    const p11_mech *m;
    p11_opcat cat;
    gmp_task *task;
    bool decrypt;
    bool multi;               /* an Update was made */
    uint8_t blk[BLK];         /* partial block, or CBC_PAD's held block */
    size_t blk_len;
    size_t tag_len;           /* AEAD */
    uint8_t tail[BLK];        /* AEAD decrypt: the last bytes may be the tag */
    size_t tail_len;
    uint8_t *acc;             /* AEAD decrypt plaintext; MAC scratch; a
                                 finished result waiting for a big buffer */
    size_t acc_len, acc_cap;
    bool done;                /* acc holds the finished output */
    uint64_t ctr_room;        /* CTR: bytes before the counter wraps */
    uint64_t fed;             /* bytes of input so far */
    uint8_t mac[BLK];         /* CBC-MAC: last cipher block */
};

void p11_op_free(p11_op *o)
{
    if (!o)
        return;
    gmp_task_free(o->task);
    if (o->acc)
        OPENSSL_cleanse(o->acc, o->acc_cap);
    free(o->acc);
    OPENSSL_cleanse(o, sizeof *o);
    free(o);
}

static CK_RV acc_reserve(p11_op *o, size_t more)
{
    if (o->acc_cap - o->acc_len >= more)
        return CKR_OK;
    size_t cap = o->acc_cap ? o->acc_cap : 4096;
    while (cap - o->acc_len < more)
        cap *= 2;
    uint8_t *p = malloc(cap);
    if (!p)
        return CKR_HOST_MEMORY;
    if (o->acc) {
        memcpy(p, o->acc, o->acc_len);
        OPENSSL_cleanse(o->acc, o->acc_cap);
        free(o->acc);
    }
    o->acc = p;
    o->acc_cap = cap;
    return CKR_OK;
}

/* ---- parameters ---- */

static CK_RV no_param(const CK_MECHANISM *mech)
{
    return mech->pParameter || mech->ulParameterLen
               ? CKR_MECHANISM_PARAM_INVALID
               : CKR_OK;
}

typedef struct op_params {
    const uint8_t *iv;
    size_t iv_len;
    const uint8_t *aad;
    size_t aad_len;
} op_params;

/* Counter bits below 64 can wrap within a realistic message; the pool
 * counts over all 128 bits, so such a message is refused instead. */
static CK_RV ctr_params(p11_op *o, const CK_MECHANISM *mech, op_params *p)
{
    const CK_AES_CTR_PARAMS *c = mech->pParameter;
    if (!c || mech->ulParameterLen != sizeof *c || c->ulCounterBits == 0 ||
        c->ulCounterBits > 128)
        return CKR_MECHANISM_PARAM_INVALID;
    o->ctr_room = UINT64_MAX;
    if (c->ulCounterBits < 60) {
        uint64_t v = 0, mask = ((uint64_t)1 << c->ulCounterBits) - 1;
        for (int i = 8; i < 16; i++)
            v = v << 8 | c->cb[i];
        o->ctr_room = ((mask - (v & mask)) + 1) * BLK;
    }
    p->iv = c->cb;
    p->iv_len = BLK;
    return CKR_OK;
}

/* Both layouts in use: v3.0 (with ulIvBits) and the v2.40 document's. */
typedef struct gcm_240 {
    CK_BYTE_PTR pIv;
    CK_ULONG ulIvLen;
    CK_BYTE_PTR pAAD;
    CK_ULONG ulAADLen;
    CK_ULONG ulTagBits;
} gcm_240;

static CK_RV gcm_params(p11_op *o, const CK_MECHANISM *mech, op_params *p)
{
    CK_ULONG tag_bits;
    if (mech->pParameter && mech->ulParameterLen == sizeof(CK_GCM_PARAMS_V3)) {
        const CK_GCM_PARAMS_V3 *g = mech->pParameter;
        p->iv = g->pIv;
        p->iv_len = g->ulIvLen;
        p->aad = g->pAAD;
        p->aad_len = g->ulAADLen;
        tag_bits = g->ulTagBits;
    } else if (mech->pParameter && mech->ulParameterLen == sizeof(gcm_240)) {
        const gcm_240 *g = mech->pParameter;
        p->iv = g->pIv;
        p->iv_len = g->ulIvLen;
        p->aad = g->pAAD;
        p->aad_len = g->ulAADLen;
        tag_bits = g->ulTagBits;
    } else {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (!p->iv || p->iv_len == 0 || p->iv_len > GMP_MAX_IV_LEN ||
        (!p->aad && p->aad_len) || p->aad_len > GMP_MAX_AAD_LEN ||
        tag_bits < 32 || tag_bits > 128 || tag_bits % 8)
        return CKR_MECHANISM_PARAM_INVALID;
    o->tag_len = tag_bits / 8;
    return CKR_OK;
}

static CK_RV parse_params(p11_op *o, const CK_MECHANISM *mech, op_params *p)
{
    switch (mech->mechanism) {
    case CKM_SM4_CBC:
    case CKM_SM4_CBC_PAD:
    case CKM_AES_CBC:
    case CKM_AES_CBC_PAD:
        if (!mech->pParameter || mech->ulParameterLen != BLK)
            return CKR_MECHANISM_PARAM_INVALID;
        p->iv = mech->pParameter;
        p->iv_len = BLK;
        return CKR_OK;
    case CKM_SM4_CTR:
    case CKM_AES_CTR:
        return ctr_params(o, mech, p);
    case CKM_SM4_GCM:
    case CKM_AES_GCM:
        return gcm_params(o, mech, p);
    default:
        return no_param(mech);
    }
}

/* ---- init ---- */

static CK_FLAGS cat_flag(p11_opcat c)
{
    static const CK_FLAGS f[OPC_N] = {CKF_DIGEST, CKF_ENCRYPT, CKF_DECRYPT,
                                      CKF_SIGN, CKF_VERIFY};
    return f[c];
}

static uint32_t cat_usage(p11_opcat c)
{
    static const uint32_t u[OPC_N] = {0, P11B_ENCRYPT, P11B_DECRYPT,
                                      P11B_SIGN, P11B_VERIFY};
    return u[c];
}

static CK_RV key_check(p11_session *s, const p11_mech *m, p11_opcat cat,
                       CK_OBJECT_HANDLE h)
{
    p11_key k;
    CK_RV rv = p11_key_load(s->slot, h, &k);
    if (rv == CKR_OBJECT_HANDLE_INVALID)
        return CKR_KEY_HANDLE_INVALID;
    if (rv)
        return rv;
    if (k.key_type != m->key_type)
        return CKR_KEY_TYPE_INCONSISTENT;
    if (!(k.bools & cat_usage(cat)))
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    return CKR_OK;
}

static int task_open(p11_session *s, p11_op *o, CK_OBJECT_HANDLE key,
                     const op_params *p)
{
    gmp_client *c = s->slot->cli;
    gmp_task_options opt = {.priority = 4, .key_handle = (uint32_t)key};
    unsigned flags = o->decrypt ? GMP_TASK_DECRYPT : 0;
    static const uint8_t zero_iv[BLK];
    switch (o->m->kind) {
    case MK_DIGEST:
        return gmp_digest_open(c, o->m->alg, NULL, &o->task);
    case MK_HMAC:
        return gmp_mac_open(c, o->m->alg, NULL, 0, &opt, &o->task);
    case MK_AEAD:
        return gmp_aead_open(c, o->m->alg, flags, NULL, 0, p->iv, p->iv_len,
                             p->aad, p->aad_len, &opt, &o->task);
    case MK_CBCMAC:
        return gmp_cipher_open(c, o->m->alg, 0, NULL, 0, (uint32_t)key,
                               zero_iv, BLK, NULL, &o->task);
    default:
        return gmp_cipher_open(c, o->m->alg, flags, NULL, 0, (uint32_t)key,
                               p->iv, p->iv_len, NULL, &o->task);
    }
}

CK_RV p11_op_init(p11_session *s, p11_opcat cat, const CK_MECHANISM *mech,
                  CK_OBJECT_HANDLE key)
{
    if (!mech)
        return CKR_ARGUMENTS_BAD;
    if (s->op[cat])
        return CKR_OPERATION_ACTIVE;
    const p11_mech *m = p11_mech_find(mech->mechanism);
    if (!m || !(m->info.flags & cat_flag(cat)))
        return CKR_MECHANISM_INVALID;
    p11_op *o = calloc(1, sizeof *o);
    if (!o)
        return CKR_HOST_MEMORY;
    o->m = m;
    o->cat = cat;
    o->decrypt = cat == OPC_DECRYPT;
    o->ctr_room = UINT64_MAX;
    op_params p = {0};
    CK_RV rv = parse_params(o, mech, &p);
    if (!rv && m->kind != MK_DIGEST)
        rv = key_check(s, m, cat, key);
    if (!rv) {
        int rc = task_open(s, o, key, &p);
        rv = rc == GMP_ERR_KEY || rc == GMP_ERR_NOT_FOUND
                 ? CKR_KEY_HANDLE_INVALID
                 : p11_from_gmp(rc);
    }
    if (rv) {
        p11_op_free(o);
        return rv;
    }
    s->op[cat] = o;
    return CKR_OK;
}

void p11_op_end(p11_session *s, p11_opcat cat)
{
    p11_op_free(s->op[cat]);
    s->op[cat] = NULL;
}

/* ---- the data path ---- */

static bool aead_dec(const p11_op *o)
{
    return o->m->kind == MK_AEAD && o->decrypt;
}

static bool pad_dec(const p11_op *o)
{
    return o->m->pad && o->decrypt;
}

static CK_RV len_error(const p11_op *o)
{
    return o->decrypt ? CKR_ENCRYPTED_DATA_LEN_RANGE : CKR_DATA_LEN_RANGE;
}

static CK_RV pool_error(const p11_op *o, int rc)
{
    if (rc == GMP_ERR_LENGTH)
        return len_error(o);
    return p11_from_gmp(rc);
}

/* Sends n bytes; exactly n come back into out (the module keeps the
 * pool free of partial blocks). */
static CK_RV pool_run(p11_op *o, const uint8_t *in, size_t n, uint8_t *out)
{
    if (n == 0)
        return CKR_OK;
    size_t got = n;
    int rc = gmp_task_update(o->task, in, n, out, &got);
    if (rc == GMP_OK && got != n)
        rc = GMP_ERR_PROTO;
    return rc ? pool_error(o, rc) : CKR_OK;
}

/* Output of an update of len bytes (cipher operations). */
static size_t upd_out(const p11_op *o, size_t len)
{
    if (o->m->kind == MK_AEAD)
        return o->decrypt ? 0 : len;
    if (!o->m->block)
        return len;
    size_t total = o->blk_len + len;
    size_t whole = total / BLK * BLK;
    if (pad_dec(o) && whole == total && whole > 0)
        whole -= BLK; /* the last block may be padding: hold it */
    return whole;
}

static CK_RV block_update(p11_op *o, const uint8_t *in, size_t len,
                          uint8_t *out)
{
    size_t send = upd_out(o, len);
    CK_RV rv = CKR_OK;
    if (send == 0) {
        memcpy(o->blk + o->blk_len, in, len);
        o->blk_len += len;
        return CKR_OK;
    }
    if (o->blk_len) {
        size_t need = BLK - o->blk_len;
        memcpy(o->blk + o->blk_len, in, need);
        in += need;
        len -= need;
        rv = pool_run(o, o->blk, BLK, out);
        out += BLK;
        send -= BLK;
        o->blk_len = 0;
    }
    if (!rv)
        rv = pool_run(o, in, send, out);
    memcpy(o->blk, in + send, len - send);
    o->blk_len = len - send;
    return rv;
}

/* AEAD decryption holds back the last tag_len bytes (they may be the
 * tag) and keeps the plaintext until the tag is checked. */
static CK_RV aead_dec_update(p11_op *o, const uint8_t *in, size_t len)
{
    size_t total = o->tail_len + len;
    if (total <= o->tag_len) {
        memcpy(o->tail + o->tail_len, in, len);
        o->tail_len = total;
        return CKR_OK;
    }
    size_t send = total - o->tag_len;
    CK_RV rv = acc_reserve(o, send);
    size_t from_tail = o->tail_len < send ? o->tail_len : send;
    if (!rv)
        rv = pool_run(o, o->tail, from_tail, o->acc + o->acc_len);
    if (rv)
        return rv;
    o->acc_len += from_tail;
    memmove(o->tail, o->tail + from_tail, o->tail_len - from_tail);
    o->tail_len -= from_tail;
    size_t from_in = send - from_tail;
    rv = pool_run(o, in, from_in, o->acc + o->acc_len);
    o->acc_len += from_in;
    memcpy(o->tail + o->tail_len, in + from_in, len - from_in);
    o->tail_len += len - from_in;
    return rv;
}

/* CBC-MAC: the ciphertext is scratch; only its last block is kept. */
static CK_RV mac_update(p11_op *o, const uint8_t *in, size_t len)
{
    if (len == 0)
        return CKR_OK; /* in may be NULL */
    /* scratch for the largest piece of this update, not always a chunk:
     * a MAC over a few blocks should not cost a megabyte */
    CK_RV rv = acc_reserve(o, (len < MAC_CHUNK ? len : MAC_CHUNK) + BLK);
    for (size_t off = 0; !rv && off < len; off += MAC_CHUNK) {
        size_t n = len - off < MAC_CHUNK ? len - off : MAC_CHUNK;
        size_t produced = upd_out(o, n);
        rv = block_update(o, in + off, n, o->acc);
        if (!rv && produced)
            memcpy(o->mac, o->acc + produced - BLK, BLK);
    }
    return rv;
}

static CK_RV cipher_update(p11_op *o, const uint8_t *in, size_t len,
                           uint8_t *out)
{
    if (len == 0)
        return CKR_OK; /* in may be NULL */
    if (len > o->ctr_room)
        return CKR_DATA_LEN_RANGE; /* the counter would wrap */
    o->ctr_room -= o->ctr_room == UINT64_MAX ? 0 : len;
    if (aead_dec(o))
        return aead_dec_update(o, in, len);
    if (o->m->block)
        return block_update(o, in, len, out);
    return pool_run(o, in, len, out);
}

static CK_RV feed(p11_op *o, const uint8_t *in, size_t len, uint8_t *out)
{
    o->fed += len;
    switch (o->m->kind) {
    case MK_DIGEST:
    case MK_HMAC: {
        int rc = gmp_task_update(o->task, in, len, NULL, NULL);
        return rc ? pool_error(o, rc) : CKR_OK;
    }
    case MK_CBCMAC:
        return mac_update(o, in, len);
    default:
        return cipher_update(o, in, len, out);
    }
}

/* ---- finishing ---- */

/* Exact length of the final output, or for CBC_PAD decryption the most
 * it can be. */
static size_t final_out(const p11_op *o)
{
    switch (o->m->kind) {
    case MK_DIGEST:
    case MK_HMAC:
    case MK_CBCMAC:
        return o->m->out_len;
    case MK_AEAD:
        return o->decrypt ? o->acc_len : o->tag_len;
    default:
        return o->m->pad ? BLK : 0;
    }
}

static CK_RV task_final(p11_op *o)
{
    uint8_t buf[2 * BLK];
    size_t n = sizeof buf;
    int rc = gmp_task_final(o->task, buf, &n);
    if (rc == GMP_OK && n != 0)
        rc = GMP_ERR_PROTO; /* nothing is left in the pool */
    return rc ? pool_error(o, rc) : CKR_OK;
}

static CK_RV unpad(p11_op *o, const uint8_t blk[BLK], size_t *n)
{
    unsigned p = blk[BLK - 1], bad = (p == 0) | (p > BLK);
    for (unsigned i = 0; i < BLK; i++)
        bad |= (i >= BLK - p) & (blk[i] != p);
    *n = bad ? 0 : BLK - p;
    return bad ? CKR_ENCRYPTED_DATA_INVALID : CKR_OK;
}

/* CBC_PAD decryption: the held block, unpadded, onto acc. */
static CK_RV pad_dec_final(p11_op *o)
{
    uint8_t plain[BLK];
    size_t n = 0;
    if (o->blk_len != BLK)
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    CK_RV rv = acc_reserve(o, BLK);
    if (!rv)
        rv = pool_run(o, o->blk, BLK, plain);
    if (!rv)
        rv = unpad(o, plain, &n);
    if (!rv)
        rv = task_final(o);
    if (!rv)
        memcpy(o->acc + o->acc_len, plain, n);
    o->acc_len += rv ? 0 : n;
    OPENSSL_cleanse(plain, sizeof plain);
    return rv;
}

static CK_RV aead_dec_final(p11_op *o)
{
    uint8_t tag[BLK];
    if (o->tail_len != o->tag_len)
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    CK_RV rv = task_final(o);
    if (!rv && gmp_task_get_tag(o->task, tag, o->tag_len) != GMP_OK)
        rv = CKR_DEVICE_ERROR;
    if (!rv && CRYPTO_memcmp(tag, o->tail, o->tag_len) != 0)
        rv = CKR_AEAD_DECRYPT_FAILED;
    if (rv && o->acc)
        OPENSSL_cleanse(o->acc, o->acc_cap); /* no unverified plaintext */
    return rv;
}

/* Output whose length is known before it is computed, into out. */
static CK_RV final_direct(p11_op *o, uint8_t *out, size_t *n)
{
    CK_RV rv = CKR_OK;
    *n = final_out(o);
    if (o->m->kind == MK_DIGEST || o->m->kind == MK_HMAC) {
        size_t got = *n;
        int rc = gmp_task_final(o->task, out, &got);
        return rc ? pool_error(o, rc) : got == *n ? CKR_OK : CKR_DEVICE_ERROR;
    }
    if (o->m->kind == MK_CBCMAC && (o->blk_len || o->fed == 0)) {
        memset(o->blk + o->blk_len, 0, BLK - o->blk_len); /* ISO 9797 pad 1 */
        rv = pool_run(o, o->blk, BLK, o->mac);
    } else if (o->m->pad) {
        uint8_t p = (uint8_t)(BLK - o->blk_len);
        memset(o->blk + o->blk_len, p, p);
        rv = pool_run(o, o->blk, BLK, out);
    } else if (o->blk_len) {
        rv = len_error(o);
    }
    if (!rv)
        rv = task_final(o);
    if (!rv && o->m->kind == MK_CBCMAC)
        memcpy(out, o->mac, BLK);
    if (!rv && o->m->kind == MK_AEAD &&
        gmp_task_get_tag(o->task, out, o->tag_len) != GMP_OK)
        rv = CKR_DEVICE_ERROR;
    return rv;
}

/* acc, once complete, to the caller's buffer. */
static CK_RV deliver(p11_op *o, uint8_t *out, CK_ULONG_PTR outlen,
                     bool *finished)
{
    *finished = out != NULL && *outlen >= o->acc_len;
    CK_RV rv = out && *outlen < o->acc_len ? CKR_BUFFER_TOO_SMALL : CKR_OK;
    if (*finished && o->acc_len)
        memcpy(out, o->acc, o->acc_len);
    *outlen = o->acc_len;
    return rv;
}

static CK_RV finish(p11_op *o, uint8_t *out, CK_ULONG_PTR outlen,
                    bool *finished)
{
    if (o->done)
        return deliver(o, out, outlen, finished);
    size_t need = final_out(o);
    if (!out || (*outlen < need && !pad_dec(o))) {
        *finished = false;
        *outlen = need;
        return out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
    }
    if (pad_dec(o) || aead_dec(o)) {
        *finished = true; /* unless the result waits for a bigger buffer */
        CK_RV rv = pad_dec(o) ? pad_dec_final(o) : aead_dec_final(o);
        if (rv)
            return rv;
        o->done = true;
        return deliver(o, out, outlen, finished);
    }
    size_t n = 0;
    *finished = true;
    CK_RV rv = final_direct(o, out, &n);
    *outlen = rv ? 0 : n;
    return rv;
}

/* ---- entry points: each ends the operation unless it answered a
 * length query or CKR_BUFFER_TOO_SMALL ---- */

static bool has_output(const p11_op *o)
{
    return o->cat == OPC_ENCRYPT || o->cat == OPC_DECRYPT;
}

CK_RV p11_op_update(p11_session *s, p11_opcat cat, const uint8_t *in,
                    CK_ULONG len, uint8_t *out, CK_ULONG_PTR outlen)
{
    p11_op *o = s->op[cat];
    if (!o)
        return CKR_OPERATION_NOT_INITIALIZED;
    CK_RV rv = CKR_OK;
    bool keep = false;
    if ((!in && len) || (has_output(o) && !outlen)) {
        rv = CKR_ARGUMENTS_BAD;
    } else if (has_output(o)) {
        size_t need = upd_out(o, len);
        keep = !out || *outlen < need;
        if (keep)
            rv = out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
        else
            rv = feed(o, in, len, out);
        *outlen = need;
    } else {
        rv = feed(o, in, len, NULL);
    }
    o->multi = true;
    if (rv && !keep)
        p11_op_end(s, cat);
    return rv;
}

CK_RV p11_op_final(p11_session *s, p11_opcat cat, uint8_t *out,
                   CK_ULONG_PTR outlen)
{
    p11_op *o = s->op[cat];
    if (!o)
        return CKR_OPERATION_NOT_INITIALIZED;
    bool finished = true;
    CK_RV rv = outlen ? finish(o, out, outlen, &finished) : CKR_ARGUMENTS_BAD;
    if (finished || (rv && rv != CKR_BUFFER_TOO_SMALL))
        p11_op_end(s, cat);
    return rv;
}

/* Single-part output length: exact, except the bound for CBC_PAD
 * decryption. */
static CK_RV single_len(const p11_op *o, size_t len, size_t *need)
{
    if (o->m->block && !o->m->pad && o->m->kind == MK_CIPHER && len % BLK)
        return len_error(o);
    if (pad_dec(o) && (len == 0 || len % BLK))
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    if (aead_dec(o) && len < o->tag_len)
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    if (!has_output(o))
        *need = o->m->out_len;
    else if (pad_dec(o))
        *need = len;
    else if (aead_dec(o))
        *need = len - o->tag_len;
    else
        *need = upd_out(o, len) + final_out(o);
    return CKR_OK;
}

/* Results that must be complete before any of it is released (CBC_PAD
 * decryption into a buffer that may be too small, AEAD decryption) are
 * built in acc and delivered from there; the rest go straight to out. */
static CK_RV single_run(p11_op *o, const uint8_t *in, size_t len,
                        uint8_t *out, CK_ULONG_PTR outlen, bool *finished)
{
    *finished = true;
    bool via_acc = pad_dec(o) && *outlen < len;
    size_t produced = has_output(o) && !aead_dec(o) ? upd_out(o, len) : 0;
    CK_RV rv = via_acc ? acc_reserve(o, len) : CKR_OK;
    if (!rv)
        rv = feed(o, in, len, via_acc ? o->acc : out);
    if (rv)
        return rv;
    if (via_acc) {
        o->acc_len = produced;
        produced = 0;
    }
    CK_ULONG rest = *outlen - produced;
    rv = finish(o, out + produced, &rest, finished);
    *outlen = produced + rest;
    return rv;
}

CK_RV p11_op_single(p11_session *s, p11_opcat cat, const uint8_t *in,
                    CK_ULONG len, uint8_t *out, CK_ULONG_PTR outlen)
{
    p11_op *o = s->op[cat];
    if (!o)
        return CKR_OPERATION_NOT_INITIALIZED;
    if (o->multi)
        return CKR_OPERATION_ACTIVE; /* C_*Update started it */
    bool finished = true;
    size_t need = 0;
    CK_RV rv = (!outlen || (!in && len)) ? CKR_ARGUMENTS_BAD : CKR_OK;
    if (!rv && o->done)
        rv = deliver(o, out, outlen, &finished);
    else if (!rv)
        rv = single_len(o, len, &need);
    if (!rv && !o->done) {
        bool later = pad_dec(o) || aead_dec(o); /* length known after */
        if (!out || (*outlen < need && !later)) {
            finished = false;
            rv = out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
            *outlen = need;
        } else {
            rv = single_run(o, in, len, out, outlen, &finished);
        }
    }
    if (finished || (rv && rv != CKR_BUFFER_TOO_SMALL))
        p11_op_end(s, cat);
    return rv;
}

CK_RV p11_op_verify(p11_session *s, const uint8_t *in, CK_ULONG len,
                    bool single, const uint8_t *sig, CK_ULONG sig_len)
{
    p11_op *o = s->op[OPC_VERIFY];
    if (!o)
        return CKR_OPERATION_NOT_INITIALIZED;
    if (single && o->multi)
        return CKR_OPERATION_ACTIVE;
    uint8_t mac[GMP_MAX_DIGEST_LEN];
    CK_ULONG n = sizeof mac;
    bool finished;
    CK_RV rv = (!sig || (!in && len)) ? CKR_ARGUMENTS_BAD : CKR_OK;
    if (!rv && single)
        rv = feed(o, in, len, NULL);
    if (!rv)
        rv = finish(o, mac, &n, &finished);
    if (!rv && sig_len != n)
        rv = CKR_SIGNATURE_LEN_RANGE;
    if (!rv && CRYPTO_memcmp(mac, sig, n) != 0)
        rv = CKR_SIGNATURE_INVALID;
    p11_op_end(s, OPC_VERIFY);
    return rv;
}
