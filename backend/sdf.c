/* KEY operations 32..63: the SDF (GM/T 0018) front end's side of the
 * daemon.  The VCM keeps internal keys by index (store.c): KEKs, and SM2
 * signing and encryption key pairs guarded per index by a password.  A
 * session gains the right to an index's private keys with that password
 * (the count of wrong ones locks it, as for the user PIN) and keeps it
 * until it releases it or ends, or the operator replaces the pair or its
 * password.  Private keys and KEKs are read from the
 * store for one operation and cleansed; what leaves is public keys,
 * signatures, ciphertexts and handles of session keys (SM4, owned by the
 * session, purged with it).  SM2 is sm2.c's, SM4 key wrapping the
 * engine's.  Files of the VCM live in the store too. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gmpd.h"
#include "gmpool.h"
#include "sm2.h"
#include "util.h"

#define L GMP_SM2_LEN
#define SESSION_KEY_LEN GMP_SM4_KEY_LEN
#define FILE_SPACE (1024u * 1024u) /* per VCM */
#define AGREE_MAX GMP_SM2_AGREE_MAX
#define GEN_LEN GMP_SM3_DIGEST_LEN

_Static_assert(GMP_SDF_TRIES == GMPD_PIN_TRIES, "one lock-out policy");
_Static_assert(GMP_SM2_LEN == GMPD_SM2_LEN, "SM2 sizes");

/* A started agreement: the sponsor's ephemeral key waits for the
 * responder's answer.  Its id is 64 random bits, so an id a client kept
 * from before a restart names nothing in this process. */
typedef struct sdf_agree {
    uint64_t id;               /* 0 = free */
    uint64_t age;              /* the session's count at its start */
    uint32_t index;
    uint8_t r[L];
    gmpd_sm2_point tmp;
    size_t id_len;
    uint8_t ident[GMP_SM2_MAX_ID];
} sdf_agree;

/* A right is to the key pair that was at the index when the password was
 * given, under that password: the handles of its two keys (the store
 * never reuses a handle) and a digest of the password's verifier record
 * (each new password, even the same one again, has a new random salt).
 * An operator replacing the pair or setting a password voids it. */
typedef struct sdf_right {
    uint32_t index;
    uint32_t sign, enc;        /* key handles, 0 = that half was missing */
    uint8_t gen[GEN_LEN];
} sdf_right;

/* Per session, under the session's mutex; allocated on first use. */
struct gmpd_sdf_state {
    sdf_right *rights;
    size_t n_rights, cap_rights;
    sdf_agree agree[AGREE_MAX];
    uint64_t agreements;       /* started so far */
};

/* Password checks run in parallel, for every tenant and key pair: the
 * 10 000-iteration PBKDF2 runs outside any lock.  Each guess is counted
 * before it is checked and a right one clears the count afterwards; the
 * count's read and write are one unit under this lock, so parallel
 * guesses each take a count of their own and no more are checked than
 * the tries left.  (A daemon that dies between the two keeps the count of
 * a right guess: it errs towards the lock.) */
static pthread_mutex_t g_pwd_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- session state ---- */

static gmpd_sdf_state *state_locked(gmpd_session *s)
{
    if (!s->sdf)
        s->sdf = calloc(1, sizeof *s->sdf);
    return s->sdf;
}

void gmpd_sdf_session_free(gmpd_session *s)
{
    if (!s->sdf)
        return;
    if (s->sdf->rights) {
        OPENSSL_cleanse(s->sdf->rights,
                        s->sdf->cap_rights * sizeof *s->sdf->rights);
        free(s->sdf->rights);
    }
    OPENSSL_cleanse(s->sdf, sizeof *s->sdf);
    free(s->sdf);
    s->sdf = NULL;
}

static bool index_ok(uint32_t idx)
{
    return idx >= 1 && idx <= GMP_SDF_INDEX_MAX;
}

/* The session's right at idx, or NULL (session mutex held). */
static sdf_right *right_find(gmpd_sdf_state *st, uint32_t idx)
{
    for (size_t i = 0; st && i < st->n_rights; i++)
        if (st->rights[i].index == idx)
            return &st->rights[i];
    return NULL;
}

static sdf_right *right_slot(gmpd_sdf_state *st, uint32_t idx)
{
    sdf_right *r = right_find(st, idx);
    if (r || !st)
        return r;
    if (st->n_rights == st->cap_rights) {
        size_t cap = st->cap_rights ? 2 * st->cap_rights : 4;
        sdf_right *v = calloc(cap, sizeof *v);
        if (!v)
            return NULL;
        if (st->rights) {
            memcpy(v, st->rights, st->n_rights * sizeof *v);
            OPENSSL_cleanse(st->rights, st->cap_rights * sizeof *v);
            free(st->rights);
        }
        st->rights = v;
        st->cap_rights = cap;
    }
    return &st->rights[st->n_rights++];
}

static int right_grant(gmpd_session *s, const sdf_right *r)
{
    pthread_mutex_lock(&s->mu);
    sdf_right *slot = right_slot(state_locked(s), r->index);
    if (slot)
        *slot = *r;
    pthread_mutex_unlock(&s->mu);
    return slot ? GMP_OK : GMP_ERR_NOMEM;
}

static void right_drop(gmpd_session *s, uint32_t idx)
{
    pthread_mutex_lock(&s->mu);
    gmpd_sdf_state *st = s->sdf;
    sdf_right *r = right_find(st, idx);
    if (r) {
        *r = st->rights[--st->n_rights];
        OPENSSL_cleanse(&st->rights[st->n_rights], sizeof *r);
    }
    pthread_mutex_unlock(&s->mu);
}

static bool right_copy(gmpd_session *s, uint32_t idx, sdf_right *out)
{
    pthread_mutex_lock(&s->mu);
    sdf_right *r = right_find(s->sdf, idx);
    if (r)
        *out = *r;
    pthread_mutex_unlock(&s->mu);
    return r != NULL;
}

/* The generation of the password at idx: SM3 of its verifier record. */
static int pwd_gen(const gmpd_pin *p, uint8_t gen[GEN_LEN])
{
    size_t n = 0;
    int ok = EVP_Q_digest(gmpc_libctx(), "SM3", NULL, p->rec, p->len, gen,
                          &n) && n == GEN_LEN;
    return ok ? GMP_OK : GMP_ERR_INTERNAL;
}

static int pwd_gen_now(gmpd_session *s, uint32_t idx, uint8_t gen[GEN_LEN])
{
    gmpd_pin p;
    int rc = gmpd_keypin_get(gmpd->store, s->tenant.vcm, idx, &p);
    if (!rc)
        rc = p.len ? pwd_gen(&p, gen) : GMP_ERR_LOGIN;
    OPENSSL_cleanse(&p, sizeof p);
    return rc;
}

/* ---- internal keys ---- */

/* An internal key's value and handle; a bad index is a key that does not
 * exist. */
static int internal_get(gmpd_session *s, uint16_t type, uint32_t idx,
                        uint8_t *v, size_t len, uint32_t *handle)
{
    uint8_t buf[GMPD_KEY_MAX];
    size_t n = 0;
    gmpd_key_attr a;
    if (!index_ok(idx))
        return GMP_ERR_NOT_FOUND;
    int rc = gmpd_key_get_idx(gmpd->store, s->tenant.vcm, type, idx, &a,
                              buf, sizeof buf, &n);
    if (!rc && n != len)
        rc = GMP_ERR_INTERNAL;
    if (!rc) {
        memcpy(v, buf, len);
        if (handle)
            *handle = a.handle;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

/* A right still holds for the key read (handle) when that key and the
 * password are the ones it was given for. */
static int right_check(gmpd_session *s, const sdf_right *r, uint16_t type,
                       uint32_t handle)
{
    uint8_t gen[GEN_LEN];
    if (handle != (type == GMPD_KEY_SM2_SIGN ? r->sign : r->enc))
        return GMP_ERR_LOGIN;
    int rc = pwd_gen_now(s, r->index, gen);
    if (!rc && CRYPTO_memcmp(gen, r->gen, GEN_LEN) != 0)
        rc = GMP_ERR_LOGIN;
    return rc == GMP_ERR_NOT_FOUND ? GMP_ERR_LOGIN : rc;
}

/* A private key of the pair at idx, for a session holding the right.
 * The key is read before the password's generation, so a pair replaced
 * between the two reads fails one check or the other. */
static int private_get(gmpd_session *s, uint16_t type, uint32_t idx,
                       uint8_t d[L])
{
    sdf_right r;
    uint32_t handle = 0;
    if (index_ok(idx) && !right_copy(s, idx, &r))
        return GMP_ERR_LOGIN;
    int rc = internal_get(s, type, idx, d, L, &handle);
    if (!rc)
        rc = right_check(s, &r, type, handle);
    if (rc)
        OPENSSL_cleanse(d, L);
    OPENSSL_cleanse(&r, sizeof r);
    return rc;
}

static int public_get(gmpd_session *s, uint16_t type, uint32_t idx,
                      gmpd_sm2_point *pub)
{
    uint8_t d[L];
    int rc = internal_get(s, type, idx, d, L, NULL);
    if (!rc)
        rc = gmpd_sm2_public(NULL, d, pub);
    OPENSSL_cleanse(d, sizeof d);
    return rc;
}

static uint16_t pair_type(uint8_t usage)
{
    return usage == GMP_SM2_SIGN  ? GMPD_KEY_SM2_SIGN
           : usage == GMP_SM2_ENC ? GMPD_KEY_SM2_ENC
                                  : 0;
}

/* Session keys are SM4 keys owned by the session: sensitive, never
 * extractable, purged when it ends. */
static int session_key(gmpd_session *s, const uint8_t k[SESSION_KEY_LEN],
                       uint32_t *handle)
{
    gmpd_key_attr a = {.vcm = s->tenant.vcm, .session = s->id,
                       .type = GMP_KEY_SM4, .flags = GMP_KEYF_SENSITIVE,
                       .label = "sdf"};
    return gmpd_key_put(gmpd->store, &a, k, SESSION_KEY_LEN, handle);
}

/* ---- reading and writing the fields ---- */

static void r_fixed(gmpc_rbuf *r, uint8_t *out, size_t n)
{
    const uint8_t *p = gmpc_r_bytes(r, n);
    if (p)
        memcpy(out, p, n);
    else
        memset(out, 0, n);
}

static void r_point(gmpc_rbuf *r, gmpd_sm2_point *p)
{
    r_fixed(r, p->x, L);
    r_fixed(r, p->y, L);
}

static void w_point(gmpc_wbuf *w, const gmpd_sm2_point *p)
{
    gmpc_w_bytes(w, p->x, L);
    gmpc_w_bytes(w, p->y, L);
}

/* [pub]: read now, resolved (internal keys loaded) after the request is
 * known to be whole. */
typedef struct pub_ref {
    uint32_t index;
    uint8_t usage;
    gmpd_sm2_point pub;
} pub_ref;

static void r_pub(gmpc_rbuf *r, pub_ref *k)
{
    k->index = gmpc_r_u32(r);
    k->usage = gmpc_r_u8(r);
    if (k->index == 0)
        r_point(r, &k->pub);
}

static int pub_resolve(gmpd_session *s, pub_ref *k)
{
    if (k->index == 0)
        return GMP_OK;
    return pair_type(k->usage) ? public_get(s, pair_type(k->usage), k->index,
                                            &k->pub)
                               : GMP_ERR_ARG;
}

typedef struct sm2_ct {
    gmpd_sm2_point c1;
    uint8_t c3[L];
    size_t len;
    uint8_t c2[GMP_SM2_MAX_PLAIN];
} sm2_ct;

static void r_ct(gmpc_rbuf *r, sm2_ct *c)
{
    r_point(r, &c->c1);
    r_fixed(r, c->c3, L);
    const uint8_t *p = gmpc_r_blob(r, GMP_SM2_MAX_PLAIN, &c->len);
    if (c->len)
        memcpy(c->c2, p, c->len);
}

static void w_ct(gmpc_wbuf *w, const sm2_ct *c)
{
    w_point(w, &c->c1);
    gmpc_w_bytes(w, c->c3, L);
    gmpc_w_blob(w, c->c2, c->len);
}

static int sm2_ct_encrypt(const gmpd_sm2_point *to, const uint8_t *in,
                          size_t n, sm2_ct *c)
{
    c->len = n;
    return gmpd_sm2_encrypt(to, in, n, &c->c1, c->c3, c->c2);
}

/* Decrypts with the encryption key at idx (needs the right). */
static int sm2_ct_decrypt(gmpd_session *s, uint32_t idx, const sm2_ct *c,
                          uint8_t *out)
{
    uint8_t d[L];
    int rc = c->len ? private_get(s, GMPD_KEY_SM2_ENC, idx, d)
                    : GMP_ERR_LENGTH;
    if (!rc)
        rc = gmpd_sm2_decrypt(d, &c->c1, c->c3, c->c2, c->len, out);
    OPENSSL_cleanse(d, sizeof d);
    return rc;
}

/* ---- access rights ---- */

/* Counts a guess at idx before it is checked: the record to check it
 * against, unless there is none or the count is used up. */
static int pwd_reserve(uint32_t vcm, uint32_t idx, gmpd_pin *p)
{
    pthread_mutex_lock(&g_pwd_mu);
    int rc = gmpd_keypin_get(gmpd->store, vcm, idx, p);
    if (!rc)
        rc = p->len == 0                  ? GMP_ERR_PIN_UNSET
             : p->fails >= GMPD_PIN_TRIES ? GMP_ERR_PIN_LOCKED
                                          : GMP_OK;
    if (!rc)
        rc = gmpd_keypin_fails(gmpd->store, vcm, idx, p->fails + 1);
    pthread_mutex_unlock(&g_pwd_mu);
    return rc;
}

/* A right guess clears the count, unless a new password has been set
 * meanwhile (which cleared it and is not what was checked). */
static int pwd_clear(uint32_t vcm, uint32_t idx, const gmpd_pin *p)
{
    gmpd_pin now;
    pthread_mutex_lock(&g_pwd_mu);
    int rc = gmpd_keypin_get(gmpd->store, vcm, idx, &now);
    if (!rc && now.len == p->len &&
        CRYPTO_memcmp(now.rec, p->rec, p->len) == 0)
        rc = gmpd_keypin_fails(gmpd->store, vcm, idx, 0);
    pthread_mutex_unlock(&g_pwd_mu);
    OPENSSL_cleanse(&now, sizeof now);
    return rc;
}

/* Checks the password and gives the generation it was checked against. */
static int pwd_verify(gmpd_session *s, uint32_t idx, const uint8_t *pwd,
                      size_t len, uint8_t gen[GEN_LEN])
{
    gmpd_pin p;
    uint32_t fails = 0;
    uint32_t vcm = s->tenant.vcm;
    int rc = pwd_reserve(vcm, idx, &p);
    if (!rc)
        rc = gmpd_pin_check(&p, pwd, len, &fails);
    if (!rc)
        rc = pwd_clear(vcm, idx, &p);
    if (!rc)
        rc = pwd_gen(&p, gen);
    if (rc == GMP_ERR_PIN && p.fails + 1 >= GMPD_PIN_TRIES)
        gmpd_log(GMPD_WARN, "tenant %s: password of SDF key pair %u locked "
                 "after %u wrong attempts", s->tenant.name, idx,
                 GMPD_PIN_TRIES);
    OPENSSL_cleanse(&p, sizeof p);
    return rc;
}

/* The handles of the pair's two keys; NOT_FOUND when neither is there. */
static int pair_handles(gmpd_session *s, uint32_t idx, sdf_right *r)
{
    gmpd_key_attr a;
    uint32_t vcm = s->tenant.vcm;
    if (!index_ok(idx))
        return GMP_ERR_NOT_FOUND;
    r->sign = gmpd_key_get_idx(gmpd->store, vcm, GMPD_KEY_SM2_SIGN, idx, &a,
                               NULL, 0, NULL) ? 0 : a.handle;
    r->enc = gmpd_key_get_idx(gmpd->store, vcm, GMPD_KEY_SM2_ENC, idx, &a,
                              NULL, 0, NULL) ? 0 : a.handle;
    return r->sign || r->enc ? GMP_OK : GMP_ERR_NOT_FOUND;
}

/* A password without a key pair behind it grants nothing.  The pair is
 * read before the password: should the operator replace it in between,
 * the right names the old keys or the old password and is void. */
static int op_unlock(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint32_t idx = gmpc_r_u32(r);
    size_t n = 0;
    const uint8_t *pwd = gmpc_r_blob(r, GMPD_PIN_MAX + 1, &n);
    sdf_right right = {.index = idx};
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = pair_handles(s, idx, &right);
    if (!rc)
        rc = pwd_verify(s, idx, pwd, n, right.gen);
    if (!rc)
        rc = right_grant(s, &right);
    OPENSSL_cleanse(&right, sizeof right);
    if (rc == GMP_ERR_PIN || rc == GMP_ERR_PIN_LOCKED)
        gmpd_log(GMPD_WARN, "session %016llx tenant %s: SDF key pair %u: %s",
                 (unsigned long long)s->id, s->tenant.name, idx,
                 gmp_strerror(rc));
    return rc;
}

static int op_lock(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint32_t idx = gmpc_r_u32(r);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    if (!index_ok(idx))
        return GMP_ERR_NOT_FOUND;
    right_drop(s, idx);
    return GMP_OK;
}

/* ---- SM2 ---- */

static int op_generate(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint8_t d[L];
    gmpd_sm2_point pub;
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = gmpd_sm2_keygen(d, &pub);
    if (!rc) {
        gmpc_w_bytes(w, d, L);
        w_point(w, &pub);
    }
    OPENSSL_cleanse(d, sizeof d);
    return rc;
}

static int op_public(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint8_t usage = gmpc_r_u8(r);
    uint32_t idx = gmpc_r_u32(r);
    gmpd_sm2_point pub;
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    if (!pair_type(usage))
        return GMP_ERR_ARG;
    int rc = public_get(s, pair_type(usage), idx, &pub);
    if (!rc)
        w_point(w, &pub);
    return rc;
}

static int op_sign(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint32_t idx = gmpc_r_u32(r);
    uint8_t e[L], d[L], sig_r[L], sig_s[L];
    r_fixed(r, e, L);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = private_get(s, GMPD_KEY_SM2_SIGN, idx, d);
    if (!rc)
        rc = gmpd_sm2_sign(d, e, sig_r, sig_s);
    OPENSSL_cleanse(d, sizeof d);
    if (!rc) {
        gmpc_w_bytes(w, sig_r, L);
        gmpc_w_bytes(w, sig_s, L);
    }
    return rc;
}

static int op_verify(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    pub_ref k;
    uint8_t e[L], sig_r[L], sig_s[L];
    r_pub(r, &k);
    r_fixed(r, e, L);
    r_fixed(r, sig_r, L);
    r_fixed(r, sig_s, L);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = pub_resolve(s, &k);
    return rc ? rc : gmpd_sm2_verify(&k.pub, e, sig_r, sig_s);
}

static int op_encrypt(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    pub_ref k;
    size_t n = 0;
    r_pub(r, &k);
    const uint8_t *in = gmpc_r_blob(r, GMP_SM2_MAX_PLAIN, &n);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    sm2_ct c;
    int rc = n ? pub_resolve(s, &k) : GMP_ERR_LENGTH;
    if (!rc)
        rc = sm2_ct_encrypt(&k.pub, in, n, &c);
    if (!rc)
        w_ct(w, &c);
    return rc;
}

static int op_decrypt(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint32_t idx = gmpc_r_u32(r);
    sm2_ct c;
    uint8_t out[GMP_SM2_MAX_PLAIN];
    r_ct(r, &c);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = sm2_ct_decrypt(s, idx, &c, out);
    if (!rc)
        gmpc_w_blob(w, out, c.len);
    OPENSSL_cleanse(out, sizeof out);
    return rc;
}

static int op_z(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    gmpd_sm2_point pub;
    uint8_t z[L];
    size_t n = 0;
    r_point(r, &pub);
    const uint8_t *id = gmpc_r_blob(r, GMP_SM2_MAX_ID, &n);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = gmpd_sm2_z(NULL, id, n, &pub, z);
    if (!rc)
        gmpc_w_bytes(w, z, L);
    return rc;
}

/* ---- session keys ---- */

/* One SM4-ECB block under the KEK at idx, by the engine. */
static int kek_block(gmpd_session *s, uint32_t idx, bool decrypt,
                     const uint8_t in[SESSION_KEY_LEN],
                     uint8_t out[SESSION_KEY_LEN])
{
    uint8_t kek[GMP_SM4_KEY_LEN], buf[64];
    size_t n = sizeof buf, fin = sizeof buf;
    int rc = internal_get(s, GMPD_KEY_KEK, idx, kek, sizeof kek, NULL);
    gmpd_engine_args a = {.flags = decrypt ? GMP_TASK_DECRYPT : 0,
                          .key = kek, .key_len = sizeof kek};
    gmpd_engine_ctx *c = rc ? NULL : gmpd_engine_new(GMP_ALG_SM4_ECB, &a, &rc);
    OPENSSL_cleanse(kek, sizeof kek);
    if (c && !(rc = gmpd_engine_update(c, in, SESSION_KEY_LEN, buf, &n)))
        rc = gmpd_engine_final(c, buf + n, &fin);
    if (c && !rc && n + fin != SESSION_KEY_LEN)
        rc = GMP_ERR_INTERNAL;
    if (c && !rc)
        memcpy(out, buf, SESSION_KEY_LEN);
    gmpd_engine_free(c);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

static int op_kek_wrap_new(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint32_t idx = gmpc_r_u32(r);
    uint16_t alg = gmpc_r_u16(r);
    uint8_t k[SESSION_KEY_LEN], wrapped[SESSION_KEY_LEN];
    uint32_t handle = 0;
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = alg == GMP_ALG_SM4_ECB ? gmpd_engine_random(k, sizeof k)
                                    : GMP_ERR_ALG;
    if (!rc)
        rc = kek_block(s, idx, false, k, wrapped);
    if (!rc)
        rc = session_key(s, k, &handle);
    OPENSSL_cleanse(k, sizeof k);
    if (!rc) {
        gmpc_w_blob(w, wrapped, sizeof wrapped);
        gmpc_w_u32(w, handle);
    }
    return rc;
}

static int op_kek_unwrap(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint32_t idx = gmpc_r_u32(r);
    uint16_t alg = gmpc_r_u16(r);
    size_t n = 0;
    const uint8_t *wrapped = gmpc_r_blob(r, GMP_MAX_KEY_LEN, &n);
    uint8_t k[SESSION_KEY_LEN];
    uint32_t handle = 0;
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = alg != GMP_ALG_SM4_ECB      ? GMP_ERR_ALG
             : n != SESSION_KEY_LEN      ? GMP_ERR_LENGTH
                                         : kek_block(s, idx, true, wrapped, k);
    if (!rc)
        rc = session_key(s, k, &handle);
    OPENSSL_cleanse(k, sizeof k);
    if (!rc)
        gmpc_w_u32(w, handle);
    return rc;
}

static int op_sm2_wrap_new(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    pub_ref k;
    sm2_ct c;
    uint8_t key[SESSION_KEY_LEN];
    uint32_t handle = 0;
    r_pub(r, &k);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = pub_resolve(s, &k);
    if (!rc)
        rc = gmpd_engine_random(key, sizeof key);
    if (!rc)
        rc = sm2_ct_encrypt(&k.pub, key, sizeof key, &c);
    if (!rc)
        rc = session_key(s, key, &handle);
    OPENSSL_cleanse(key, sizeof key);
    if (!rc) {
        w_ct(w, &c);
        gmpc_w_u32(w, handle);
    }
    return rc;
}

static int op_sm2_unwrap(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint32_t idx = gmpc_r_u32(r);
    sm2_ct c;
    uint8_t key[GMP_SM2_MAX_PLAIN];
    uint32_t handle = 0;
    r_ct(r, &c);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = c.len == SESSION_KEY_LEN ? sm2_ct_decrypt(s, idx, &c, key)
                                      : GMP_ERR_LENGTH;
    if (!rc)
        rc = session_key(s, key, &handle);
    OPENSSL_cleanse(key, sizeof key);
    if (!rc)
        gmpc_w_u32(w, handle);
    return rc;
}

static int op_sm2_rewrap(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint32_t idx = gmpc_r_u32(r);
    gmpd_sm2_point to;
    sm2_ct in, out;
    uint8_t plain[GMP_SM2_MAX_PLAIN];
    r_point(r, &to);
    r_ct(r, &in);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = sm2_ct_decrypt(s, idx, &in, plain);
    if (!rc)
        rc = sm2_ct_encrypt(&to, plain, in.len, &out);
    OPENSSL_cleanse(plain, sizeof plain);
    if (!rc)
        w_ct(w, &out);
    return rc;
}

/* ---- key agreement ---- */

static void r_party(gmpc_rbuf *r, gmpd_sm2_party *p)
{
    p->id = gmpc_r_blob(r, GMP_SM2_MAX_ID, &p->id_len);
    r_point(r, &p->pub);
    r_point(r, &p->tmp);
}

static bool agree_id_taken(const gmpd_sdf_state *st, uint64_t id)
{
    for (unsigned i = 0; i < AGREE_MAX; i++)
        if (st->agree[i].id == id)
            return true;
    return false;
}

/* Parks a started agreement under a new id; the oldest (or a free slot)
 * makes room. */
static int agree_park(gmpd_session *s, const sdf_agree *a, uint64_t id)
{
    pthread_mutex_lock(&s->mu);
    gmpd_sdf_state *st = state_locked(s);
    int rc = !st                     ? GMP_ERR_NOMEM
             : agree_id_taken(st, id) ? GMP_ERR_EXISTS
                                      : GMP_OK;
    if (!rc) {
        sdf_agree *slot = &st->agree[0];
        for (unsigned i = 0; i < AGREE_MAX; i++)
            if (st->agree[i].age < slot->age)
                slot = &st->agree[i];
        *slot = *a;
        slot->id = id;
        slot->age = ++st->agreements;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* A random id, not 0 (a free slot) and not one the session holds. */
static int agree_store(gmpd_session *s, const sdf_agree *a, uint64_t *id)
{
    int rc = GMP_ERR_EXISTS;
    for (int tries = 0; rc == GMP_ERR_EXISTS && tries < 4; tries++) {
        rc = gmpd_engine_random((uint8_t *)id, sizeof *id);
        if (!rc)
            rc = *id ? agree_park(s, a, *id) : GMP_ERR_EXISTS;
    }
    return rc == GMP_ERR_EXISTS ? GMP_ERR_INTERNAL : rc;
}

/* Takes an agreement out: it is used once. */
static int agree_take(gmpd_session *s, uint64_t id, sdf_agree *out)
{
    int rc = GMP_ERR_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    for (unsigned i = 0; s->sdf && id && i < AGREE_MAX; i++) {
        sdf_agree *a = &s->sdf->agree[i];
        if (a->id != id)
            continue;
        *out = *a;
        OPENSSL_cleanse(a, sizeof *a);
        rc = GMP_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int op_agree_start(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    sdf_agree a = {.index = gmpc_r_u32(r)};
    gmpd_sm2_point pub;
    const uint8_t *id = gmpc_r_blob(r, GMP_SM2_MAX_ID, &a.id_len);
    uint64_t agreement = 0;
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    if (a.id_len)
        memcpy(a.ident, id, a.id_len);
    int rc = public_get(s, GMPD_KEY_SM2_ENC, a.index, &pub);
    if (!rc)
        rc = gmpd_sm2_keygen(a.r, &a.tmp);
    if (!rc)
        rc = agree_store(s, &a, &agreement);
    OPENSSL_cleanse(&a.r, sizeof a.r);
    if (!rc) {
        gmpc_w_u64(w, agreement);
        w_point(w, &pub);
        w_point(w, &a.tmp);
    }
    return rc;
}

/* This side's half of an exchange, ending in a new session key. */
static int agree_key(gmpd_session *s, bool sponsor, uint32_t idx,
                     const uint8_t r[L], const gmpd_sm2_party *self,
                     const gmpd_sm2_party *peer, uint32_t *handle)
{
    uint8_t d[L], key[SESSION_KEY_LEN];
    int rc = private_get(s, GMPD_KEY_SM2_ENC, idx, d);
    if (!rc)
        rc = gmpd_sm2_exchange(NULL, sponsor, d, r, self, peer, key,
                               sizeof key);
    if (!rc)
        rc = session_key(s, key, handle);
    OPENSSL_cleanse(d, sizeof d);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

static int op_agree_finish(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint64_t id = gmpc_r_u64(r);
    gmpd_sm2_party peer, self;
    sdf_agree a;
    uint32_t handle = 0;
    r_party(r, &peer);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = agree_take(s, id, &a);
    if (rc)
        return rc;
    self = (gmpd_sm2_party){.id = a.ident, .id_len = a.id_len, .tmp = a.tmp};
    rc = public_get(s, GMPD_KEY_SM2_ENC, a.index, &self.pub);
    if (!rc)
        rc = agree_key(s, true, a.index, a.r, &self, &peer, &handle);
    OPENSSL_cleanse(&a, sizeof a);
    if (!rc)
        gmpc_w_u32(w, handle);
    return rc;
}

static int op_agree_respond(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint32_t idx = gmpc_r_u32(r);
    gmpd_sm2_party self = {0}, peer;
    uint8_t rnd[L];
    uint32_t handle = 0;
    self.id = gmpc_r_blob(r, GMP_SM2_MAX_ID, &self.id_len);
    r_party(r, &peer);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = public_get(s, GMPD_KEY_SM2_ENC, idx, &self.pub);
    if (!rc)
        rc = gmpd_sm2_keygen(rnd, &self.tmp);
    if (!rc)
        rc = agree_key(s, false, idx, rnd, &self, &peer, &handle);
    OPENSSL_cleanse(rnd, sizeof rnd);
    if (!rc) {
        w_point(w, &self.pub);
        w_point(w, &self.tmp);
        gmpc_w_u32(w, handle);
    }
    return rc;
}

/* ---- files ---- */

/* A write fits its file as a whole or is refused before any byte of it
 * is written: every request of a write says where the whole write ends,
 * checked here against the file with the store's errors (an offset past
 * the end first, then data running past it). */
static int file_fits(uint32_t vcm, const uint8_t *name, size_t nl,
                     uint32_t off, uint32_t end)
{
    uint32_t size = 0;
    int rc = gmpd_file_size(gmpd->store, vcm, name, nl, &size);
    if (!rc && off > size)
        rc = GMP_ERR_ARG;
    else if (!rc && end > size)
        rc = GMP_ERR_LENGTH;
    return rc;
}

static int op_file_write(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    size_t nl = 0, dl = 0;
    const uint8_t *name = gmpc_r_blob(r, GMPD_FILE_NAME_MAX, &nl);
    uint32_t off = gmpc_r_u32(r), end = gmpc_r_u32(r);
    const uint8_t *data = gmpc_r_blob(r, GMPC_FILE_CHUNK, &dl);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    if (end < off || end - off < dl)
        return GMP_ERR_ARG; /* a write that ends before this part of it */
    int rc = file_fits(s->tenant.vcm, name, nl, off, end);
    return rc ? rc : gmpd_file_write(gmpd->store, s->tenant.vcm, name, nl,
                                     off, data, dl);
}

static int op_file_create(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    size_t nl = 0;
    const uint8_t *name = gmpc_r_blob(r, GMPD_FILE_NAME_MAX, &nl);
    uint32_t size = gmpc_r_u32(r);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    return gmpd_file_create(gmpd->store, s->tenant.vcm, name, nl, size,
                            FILE_SPACE);
}

static int op_file_read(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    size_t nl = 0;
    const uint8_t *name = gmpc_r_blob(r, GMPD_FILE_NAME_MAX, &nl);
    uint32_t off = gmpc_r_u32(r), want = gmpc_r_u32(r);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    uint8_t buf[GMPC_FILE_CHUNK];
    size_t n = want < sizeof buf ? want : sizeof buf;
    int rc = gmpd_file_read(gmpd->store, s->tenant.vcm, name, nl, off, buf,
                            &n);
    if (!rc)
        gmpc_w_blob(w, buf, n);
    return rc;
}

static int op_file_delete(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    size_t nl = 0;
    const uint8_t *name = gmpc_r_blob(r, GMPD_FILE_NAME_MAX, &nl);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    return gmpd_file_delete(gmpd->store, s->tenant.vcm, name, nl);
}

static int op_info(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint64_t used = 0;
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = gmpd_file_used(gmpd->store, s->tenant.vcm, &used);
    if (!rc) {
        gmpc_w_u32(w, FILE_SPACE);
        gmpc_w_u32(w, (uint32_t)used);
        gmpc_w_u32(w, GMP_SDF_INDEX_MAX);
    }
    return rc;
}

/* Every operation reads its request to the end (GMP_ERR_PROTO if it is
 * not whole) before acting, and writes its reply, if it has one, to w. */
typedef int sdf_op(gmpd_session *s, gmpc_rbuf *r, gmpc_wbuf *w);

static sdf_op *const g_ops[GMPC_SDF_LAST + 1] = {
    [GMPC_SDF_INFO] = op_info,
    [GMPC_SDF_UNLOCK] = op_unlock,
    [GMPC_SDF_LOCK] = op_lock,
    [GMPC_SM2_GENERATE] = op_generate,
    [GMPC_SM2_PUBLIC] = op_public,
    [GMPC_SM2_SIGN] = op_sign,
    [GMPC_SM2_VERIFY] = op_verify,
    [GMPC_SM2_ENCRYPT] = op_encrypt,
    [GMPC_SM2_DECRYPT] = op_decrypt,
    [GMPC_SM2_Z] = op_z,
    [GMPC_KEK_WRAP_NEW] = op_kek_wrap_new,
    [GMPC_KEK_UNWRAP] = op_kek_unwrap,
    [GMPC_SM2_WRAP_NEW] = op_sm2_wrap_new,
    [GMPC_SM2_UNWRAP] = op_sm2_unwrap,
    [GMPC_SM2_REWRAP] = op_sm2_rewrap,
    [GMPC_AGREE_START] = op_agree_start,
    [GMPC_AGREE_FINISH] = op_agree_finish,
    [GMPC_AGREE_RESPOND] = op_agree_respond,
    [GMPC_FILE_CREATE] = op_file_create,
    [GMPC_FILE_READ] = op_file_read,
    [GMPC_FILE_WRITE] = op_file_write,
    [GMPC_FILE_DELETE] = op_file_delete,
};

int gmpd_sdf_request(gmpd_session *s, uint8_t op, gmpc_rbuf *r,
                     gmpc_wbuf *w)
{
    sdf_op *f = op <= GMPC_SDF_LAST ? g_ops[op] : NULL;
    return f ? f(s, r, w) : GMP_ERR_ARG;
}
