/* SM2 and the SDF keystore over KEY frames (ops 32..63, docs/protocol.md
 * §11): what the SDF front end asks the pool for besides tasks.  Each
 * call is one request and one reply; file reads and writes go in chunks
 * of GMPC_FILE_CHUNK bytes.  Replies may carry secrets (a generated
 * private key), so every reply is cleansed before it is freed. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gmpool.h"
#include "internal.h"
#include "proto.h"

#define L GMP_SM2_LEN
#define REQ_MAX (64 + 2 * GMP_SM2_MAX_ID + 4 * 64 + GMP_SM2_MAX_PLAIN + \
                 GMP_FILE_NAME_MAX + GMPC_FILE_CHUNK)

typedef struct reply {
    uint8_t *p;
    size_t len;
    gmpc_rbuf r;
} reply;

static int call(gmp_client *c, const gmpc_wbuf *w, reply *rp)
{
    memset(rp, 0, sizeof *rp);
    if (!c)
        return gmp_fail(GMP_ERR_ARG, "client is NULL");
    if (w->overflow)
        return gmp_fail(GMP_ERR_ARG, "request too long");
    int rc = gmp_ctrl(c, GMPC_T_KEY, w->p, w->len, &rp->p, &rp->len);
    rp->r = (gmpc_rbuf){rp->p, rp->len, 0, false};
    return rc;
}

/* A successful reply must have been read to its end. */
static int done(int rc, reply *rp)
{
    if (rc == GMP_OK && !gmpc_r_done(&rp->r))
        rc = gmp_fail(GMP_ERR_PROTO, "malformed reply to an SDF request");
    if (rp->p)
        OPENSSL_cleanse(rp->p, rp->len);
    free(rp->p);
    return rc;
}

/* A request whose reply is empty. */
static int call_empty(gmp_client *c, const gmpc_wbuf *w)
{
    reply rp;
    return done(call(c, w, &rp), &rp);
}

/* A request whose reply is the handle of a new session key. */
static int call_handle(gmp_client *c, const gmpc_wbuf *w, uint32_t *handle)
{
    reply rp;
    int rc = call(c, w, &rp);
    if (rc == GMP_OK)
        *handle = gmpc_r_u32(&rp.r);
    return done(rc, &rp);
}

static void r_fixed(gmpc_rbuf *r, void *out, size_t n)
{
    const uint8_t *p = gmpc_r_bytes(r, n);
    if (p)
        memcpy(out, p, n);
}

static void w_point(gmpc_wbuf *w, const gmp_sm2_point *p)
{
    gmpc_w_bytes(w, p->x, L);
    gmpc_w_bytes(w, p->y, L);
}

static void r_point(gmpc_rbuf *r, gmp_sm2_point *p)
{
    r_fixed(r, p->x, L);
    r_fixed(r, p->y, L);
}

static void w_key(gmpc_wbuf *w, const gmp_sm2_key *k)
{
    gmpc_w_u32(w, k->index);
    gmpc_w_u8(w, k->usage);
    if (k->index == 0)
        w_point(w, &k->pub);
}

static void w_ct(gmpc_wbuf *w, const gmp_sm2_cipher *c)
{
    w_point(w, &c->c1);
    gmpc_w_bytes(w, c->c3, L);
    gmpc_w_blob(w, c->c2, c->len);
}

static void r_ct(gmpc_rbuf *r, gmp_sm2_cipher *c)
{
    size_t n = 0;
    r_point(r, &c->c1);
    r_fixed(r, c->c3, L);
    const uint8_t *p = gmpc_r_blob(r, GMP_SM2_MAX_PLAIN, &n);
    c->len = (uint32_t)n;
    if (n)
        memcpy(c->c2, p, n);
}

static bool ct_ok(const gmp_sm2_cipher *c)
{
    return c && c->len >= 1 && c->len <= GMP_SM2_MAX_PLAIN;
}

static bool id_ok(const void *id, size_t len)
{
    return (id || !len) && len <= GMP_SM2_MAX_ID;
}

typedef struct req {
    uint8_t buf[REQ_MAX];
    gmpc_wbuf w;
} req;

static gmpc_wbuf *req_start(req *q, uint8_t code)
{
    q->w = (gmpc_wbuf){q->buf, sizeof q->buf, 0, false};
    gmpc_w_u8(&q->w, code);
    return &q->w;
}

/* ---- device, access rights ---- */

GMP_API int gmp_sdf_get_info(gmp_client *c, gmp_sdf_info *info)
{
    if (!info)
        return gmp_fail(GMP_ERR_ARG, "info is NULL");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SDF_INFO);
    reply rp;
    int rc = call(c, w, &rp);
    if (rc == GMP_OK) {
        info->file_space = gmpc_r_u32(&rp.r);
        info->file_used = gmpc_r_u32(&rp.r);
        info->index_max = gmpc_r_u32(&rp.r);
    }
    return done(rc, &rp);
}

GMP_API int gmp_sdf_unlock(gmp_client *c, uint32_t index, const void *pwd,
                           size_t len)
{
    if (!pwd && len)
        return gmp_fail(GMP_ERR_ARG, "password is NULL");
    if (len > GMP_PIN_MAX + 1)
        len = GMP_PIN_MAX + 1; /* the daemon refuses it and counts it */
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SDF_UNLOCK);
    gmpc_w_u32(w, index);
    gmpc_w_blob(w, pwd, len);
    int rc = call_empty(c, w);
    OPENSSL_cleanse(q.buf, sizeof q.buf);
    return rc;
}

GMP_API int gmp_sdf_lock(gmp_client *c, uint32_t index)
{
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SDF_LOCK);
    gmpc_w_u32(w, index);
    return call_empty(c, w);
}

/* ---- SM2 ---- */

GMP_API int gmp_sm2_generate(gmp_client *c, uint8_t d[GMP_SM2_LEN],
                             gmp_sm2_point *pub)
{
    if (!d || !pub)
        return gmp_fail(GMP_ERR_ARG, "NULL argument");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SM2_GENERATE);
    reply rp;
    int rc = call(c, w, &rp);
    if (rc == GMP_OK) {
        r_fixed(&rp.r, d, L);
        r_point(&rp.r, pub);
    }
    return done(rc, &rp);
}

GMP_API int gmp_sm2_public(gmp_client *c, gmp_sm2_usage usage,
                           uint32_t index, gmp_sm2_point *pub)
{
    if (!pub)
        return gmp_fail(GMP_ERR_ARG, "pub is NULL");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SM2_PUBLIC);
    gmpc_w_u8(w, (uint8_t)usage);
    gmpc_w_u32(w, index);
    reply rp;
    int rc = call(c, w, &rp);
    if (rc == GMP_OK)
        r_point(&rp.r, pub);
    return done(rc, &rp);
}

GMP_API int gmp_sm2_sign(gmp_client *c, uint32_t index,
                         const uint8_t e[GMP_SM2_LEN], uint8_t r[GMP_SM2_LEN],
                         uint8_t s[GMP_SM2_LEN])
{
    if (!e || !r || !s)
        return gmp_fail(GMP_ERR_ARG, "NULL argument");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SM2_SIGN);
    gmpc_w_u32(w, index);
    gmpc_w_bytes(w, e, L);
    reply rp;
    int rc = call(c, w, &rp);
    if (rc == GMP_OK) {
        r_fixed(&rp.r, r, L);
        r_fixed(&rp.r, s, L);
    }
    return done(rc, &rp);
}

GMP_API int gmp_sm2_verify(gmp_client *c, const gmp_sm2_key *k,
                           const uint8_t e[GMP_SM2_LEN],
                           const uint8_t r[GMP_SM2_LEN],
                           const uint8_t s[GMP_SM2_LEN])
{
    if (!k || !e || !r || !s)
        return gmp_fail(GMP_ERR_ARG, "NULL argument");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SM2_VERIFY);
    w_key(w, k);
    gmpc_w_bytes(w, e, L);
    gmpc_w_bytes(w, r, L);
    gmpc_w_bytes(w, s, L);
    return call_empty(c, w);
}

GMP_API int gmp_sm2_encrypt(gmp_client *c, const gmp_sm2_key *k,
                            const void *in, size_t len, gmp_sm2_cipher *out)
{
    if (!k || !in || !out)
        return gmp_fail(GMP_ERR_ARG, "NULL argument");
    if (len == 0 || len > GMP_SM2_MAX_PLAIN)
        return gmp_fail(GMP_ERR_LENGTH, "SM2 encrypts 1..%u bytes",
                        GMP_SM2_MAX_PLAIN);
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SM2_ENCRYPT);
    w_key(w, k);
    gmpc_w_blob(w, in, len);
    reply rp;
    int rc = call(c, w, &rp);
    if (rc == GMP_OK)
        r_ct(&rp.r, out);
    return done(rc, &rp);
}

GMP_API int gmp_sm2_decrypt(gmp_client *c, uint32_t index,
                            const gmp_sm2_cipher *in, void *out, size_t *len)
{
    if (!ct_ok(in) || !out || !len)
        return gmp_fail(GMP_ERR_ARG, "NULL argument or bad ciphertext");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SM2_DECRYPT);
    gmpc_w_u32(w, index);
    w_ct(w, in);
    reply rp;
    size_t n = 0;
    int rc = call(c, w, &rp);
    const uint8_t *p = rc ? NULL : gmpc_r_blob(&rp.r, GMP_SM2_MAX_PLAIN, &n);
    if (p && n > *len)
        rc = gmp_fail(GMP_ERR_BUFFER, "plaintext needs %zu bytes", n);
    else if (p)
        memcpy(out, p, n);
    *len = n;
    return done(rc, &rp);
}

GMP_API int gmp_sm2_z(gmp_client *c, const gmp_sm2_point *pub, const void *id,
                      size_t id_len, uint8_t z[GMP_SM2_LEN])
{
    if (!pub || !z || !id_ok(id, id_len))
        return gmp_fail(GMP_ERR_ARG, "NULL argument or ID too long");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SM2_Z);
    w_point(w, pub);
    gmpc_w_blob(w, id, id_len);
    reply rp;
    int rc = call(c, w, &rp);
    if (rc == GMP_OK)
        r_fixed(&rp.r, z, L);
    return done(rc, &rp);
}

/* ---- session keys ---- */

GMP_API int gmp_kek_wrap_new(gmp_client *c, uint32_t kek_index, gmp_alg alg,
                             uint8_t *wrapped, size_t *wlen, uint32_t *handle)
{
    if (!wrapped || !wlen || !handle)
        return gmp_fail(GMP_ERR_ARG, "NULL argument");
    if (*wlen < GMP_SM4_KEY_LEN) /* before a key exists that nobody holds */
        return gmp_fail(GMP_ERR_BUFFER, "a wrapped key needs %u bytes",
                        GMP_SM4_KEY_LEN);
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_KEK_WRAP_NEW);
    gmpc_w_u32(w, kek_index);
    gmpc_w_u16(w, (uint16_t)alg);
    reply rp;
    size_t n = 0;
    int rc = call(c, w, &rp);
    const uint8_t *p = rc ? NULL : gmpc_r_blob(&rp.r, GMP_SM4_KEY_LEN, &n);
    if (p)
        memcpy(wrapped, p, n);
    if (rc == GMP_OK)
        *handle = gmpc_r_u32(&rp.r);
    *wlen = n;
    return done(rc, &rp);
}

GMP_API int gmp_kek_unwrap(gmp_client *c, uint32_t kek_index, gmp_alg alg,
                           const uint8_t *wrapped, size_t wlen,
                           uint32_t *handle)
{
    if (!wrapped || !handle || wlen > GMP_MAX_KEY_LEN)
        return gmp_fail(GMP_ERR_ARG, "NULL argument or blob too long");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_KEK_UNWRAP);
    gmpc_w_u32(w, kek_index);
    gmpc_w_u16(w, (uint16_t)alg);
    gmpc_w_blob(w, wrapped, wlen);
    return call_handle(c, w, handle);
}

GMP_API int gmp_sm2_wrap_new(gmp_client *c, const gmp_sm2_key *k,
                             gmp_sm2_cipher *out, uint32_t *handle)
{
    if (!k || !out || !handle)
        return gmp_fail(GMP_ERR_ARG, "NULL argument");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SM2_WRAP_NEW);
    w_key(w, k);
    reply rp;
    int rc = call(c, w, &rp);
    if (rc == GMP_OK) {
        r_ct(&rp.r, out);
        *handle = gmpc_r_u32(&rp.r);
    }
    return done(rc, &rp);
}

GMP_API int gmp_sm2_unwrap(gmp_client *c, uint32_t index,
                           const gmp_sm2_cipher *in, uint32_t *handle)
{
    if (!ct_ok(in) || !handle)
        return gmp_fail(GMP_ERR_ARG, "NULL argument or bad ciphertext");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SM2_UNWRAP);
    gmpc_w_u32(w, index);
    w_ct(w, in);
    return call_handle(c, w, handle);
}

GMP_API int gmp_sm2_rewrap(gmp_client *c, uint32_t index,
                           const gmp_sm2_point *to, const gmp_sm2_cipher *in,
                           gmp_sm2_cipher *out)
{
    if (!to || !ct_ok(in) || !out)
        return gmp_fail(GMP_ERR_ARG, "NULL argument or bad ciphertext");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_SM2_REWRAP);
    gmpc_w_u32(w, index);
    w_point(w, to);
    w_ct(w, in);
    reply rp;
    int rc = call(c, w, &rp);
    if (rc == GMP_OK)
        r_ct(&rp.r, out);
    return done(rc, &rp);
}

/* ---- key agreement ---- */

static void w_party(gmpc_wbuf *w, const gmp_sm2_party *p)
{
    gmpc_w_blob(w, p->id, p->id_len);
    w_point(w, &p->pub);
    w_point(w, &p->tmp);
}

GMP_API int gmp_sm2_agree_start(gmp_client *c, uint32_t index, const void *id,
                                size_t id_len, gmp_sm2_point *pub,
                                gmp_sm2_point *tmp, uint64_t *agreement)
{
    if (!id_ok(id, id_len) || !pub || !tmp || !agreement)
        return gmp_fail(GMP_ERR_ARG, "NULL argument or ID too long");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_AGREE_START);
    gmpc_w_u32(w, index);
    gmpc_w_blob(w, id, id_len);
    reply rp;
    int rc = call(c, w, &rp);
    if (rc == GMP_OK) {
        *agreement = gmpc_r_u64(&rp.r);
        r_point(&rp.r, pub);
        r_point(&rp.r, tmp);
    }
    return done(rc, &rp);
}

GMP_API int gmp_sm2_agree_finish(gmp_client *c, uint64_t agreement,
                                 const gmp_sm2_party *responder,
                                 uint32_t *handle)
{
    if (!responder || !id_ok(responder->id, responder->id_len) || !handle)
        return gmp_fail(GMP_ERR_ARG, "NULL argument or ID too long");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_AGREE_FINISH);
    gmpc_w_u64(w, agreement);
    w_party(w, responder);
    return call_handle(c, w, handle);
}

GMP_API int gmp_sm2_agree_respond(gmp_client *c, uint32_t index,
                                  const void *id, size_t id_len,
                                  const gmp_sm2_party *sponsor,
                                  gmp_sm2_point *pub, gmp_sm2_point *tmp,
                                  uint32_t *handle)
{
    if (!id_ok(id, id_len) || !sponsor ||
        !id_ok(sponsor->id, sponsor->id_len) || !pub || !tmp || !handle)
        return gmp_fail(GMP_ERR_ARG, "NULL argument or ID too long");
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_AGREE_RESPOND);
    gmpc_w_u32(w, index);
    gmpc_w_blob(w, id, id_len);
    w_party(w, sponsor);
    reply rp;
    int rc = call(c, w, &rp);
    if (rc == GMP_OK) {
        r_point(&rp.r, pub);
        r_point(&rp.r, tmp);
        *handle = gmpc_r_u32(&rp.r);
    }
    return done(rc, &rp);
}

/* ---- files ---- */

static bool name_ok(const void *name, size_t len)
{
    return name && len >= 1 && len <= GMP_FILE_NAME_MAX;
}

GMP_API int gmp_file_create(gmp_client *c, const void *name, size_t name_len,
                            uint32_t size)
{
    if (!name_ok(name, name_len))
        return gmp_fail(GMP_ERR_ARG, "file name of 1..%u bytes",
                        GMP_FILE_NAME_MAX);
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_FILE_CREATE);
    gmpc_w_blob(w, name, name_len);
    gmpc_w_u32(w, size);
    return call_empty(c, w);
}

/* One chunk; *n is what it asks for and what it got. */
static int read_chunk(gmp_client *c, const void *name, size_t name_len,
                      uint32_t off, uint8_t *buf, size_t *n)
{
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_FILE_READ);
    gmpc_w_blob(w, name, name_len);
    gmpc_w_u32(w, off);
    gmpc_w_u32(w, (uint32_t)*n);
    reply rp;
    size_t got = 0;
    int rc = call(c, w, &rp);
    const uint8_t *p = rc ? NULL : gmpc_r_blob(&rp.r, GMPC_FILE_CHUNK, &got);
    if (p && got > *n)
        rc = gmp_fail(GMP_ERR_PROTO, "file read returned too much");
    else if (p)
        memcpy(buf, p, got);
    *n = got;
    return done(rc, &rp);
}

GMP_API int gmp_file_read(gmp_client *c, const void *name, size_t name_len,
                          uint32_t offset, void *buf, size_t *len)
{
    if (!name_ok(name, name_len) || !len || (!buf && *len))
        return gmp_fail(GMP_ERR_ARG, "bad file name or NULL buffer");
    size_t want = *len, have = 0;
    if (want > UINT32_MAX - offset) /* offsets are 32-bit */
        want = UINT32_MAX - offset;
    int rc = GMP_OK;
    do { /* at least one request: it also says whether the file is there */
        size_t n = want - have < GMPC_FILE_CHUNK ? want - have
                                                  : GMPC_FILE_CHUNK;
        size_t asked = n;
        rc = read_chunk(c, name, name_len, offset + (uint32_t)have,
                        (uint8_t *)buf + have, &n);
        have += n;
        if (rc || n < asked)
            break;
    } while (have < want);
    *len = have;
    return rc;
}

/* Every request says where the whole write ends, so the pool refuses one
 * that does not fit before any of it is written. */
GMP_API int gmp_file_write(gmp_client *c, const void *name, size_t name_len,
                           uint32_t offset, const void *buf, size_t len)
{
    if (!name_ok(name, name_len) || (!buf && len))
        return gmp_fail(GMP_ERR_ARG, "bad file name or NULL buffer");
    if (len > UINT32_MAX - offset)
        return gmp_fail(GMP_ERR_LENGTH, "write past 4 GiB");
    uint32_t end = offset + (uint32_t)len;
    size_t sent = 0;
    int rc;
    do {
        size_t n = len - sent < GMPC_FILE_CHUNK ? len - sent : GMPC_FILE_CHUNK;
        req q;
        gmpc_wbuf *w = req_start(&q, GMPC_FILE_WRITE);
        gmpc_w_blob(w, name, name_len);
        gmpc_w_u32(w, offset + (uint32_t)sent);
        gmpc_w_u32(w, end);
        gmpc_w_blob(w, (const uint8_t *)buf + sent, n);
        rc = call_empty(c, w);
        sent += n;
    } while (rc == GMP_OK && sent < len);
    return rc;
}

GMP_API int gmp_file_delete(gmp_client *c, const void *name, size_t name_len)
{
    if (!name_ok(name, name_len))
        return gmp_fail(GMP_ERR_ARG, "file name of 1..%u bytes",
                        GMP_FILE_NAME_MAX);
    req q;
    gmpc_wbuf *w = req_start(&q, GMPC_FILE_DELETE);
    gmpc_w_blob(w, name, name_len);
    return call_empty(c, w);
}
