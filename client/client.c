/* Public client API (include/gmpool.h): configuration, tasks as seen from
 * application threads, one-shot helpers, random and keystore requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "task.h"

struct gmp_client {
    pthread_mutex_t mu;
    csess_cfg cfg;
    csess *s;
    rt *rt;
    uint64_t gen;
    uint64_t fresh;            /* task freshness counter */
};

#define MAX_RANDOM_REQ 65536u

/* ---- configuration ---- */

static int load_creds(const gmp_options *o, gmpc_creds *cr, char *path,
                      size_t cap, char *err, size_t errlen)
{
    const char *p = o && o->credentials ? o->credentials
                                         : getenv("GMPOOL_CREDENTIALS");
    char dir[4096];
    if (p && *p) {
        snprintf(path, cap, "%s", p);
    } else {
        if (gmpc_default_data_dir(dir, sizeof dir) != GMP_OK) {
            snprintf(err, errlen, "no credentials: set GMPOOL_CREDENTIALS");
            return GMP_ERR_CONFIG;
        }
        if (!gmpc_fmt(path, cap, "%s/credentials", dir)) {
            snprintf(err, errlen, "data directory path too long");
            return GMP_ERR_CONFIG;
        }
    }
    return gmpc_creds_load(path, cr, err, errlen);
}

static int resolve_secret(const gmp_options *o, csess_cfg *cfg,
                          gmpc_creds *cr, char *err, size_t errlen)
{
    char path[4096];
    if (o && o->tenant && o->secret_hex) {
        int n = gmpc_hex_decode(o->secret_hex, cfg->secret, sizeof cfg->secret);
        if (n <= 0 || strlen(o->tenant) > GMPC_MAX_NAME) {
            snprintf(err, errlen, "bad tenant name or secret in options");
            return GMP_ERR_CONFIG;
        }
        snprintf(cfg->tenant, sizeof cfg->tenant, "%s", o->tenant);
        cfg->secret_len = (size_t)n;
        return GMP_OK;
    }
    int rc = load_creds(o, cr, path, sizeof path, err, errlen);
    if (rc != GMP_OK)
        return rc;
    snprintf(cfg->tenant, sizeof cfg->tenant, "%s", cr->tenant);
    memcpy(cfg->secret, cr->secret, cr->secret_len);
    cfg->secret_len = cr->secret_len;
    return GMP_OK;
}

static int resolve_server(const gmp_options *o, csess_cfg *cfg,
                          const gmpc_creds *cr, char *err, size_t errlen)
{
    const char *srv = o && o->server ? o->server : getenv("GMPOOL_SERVER");
    char dir[4096];
    if ((!srv || !*srv) && cr->server[0])
        srv = cr->server;
    if (!srv || !*srv) {
        if (gmpc_default_data_dir(dir, sizeof dir) != GMP_OK) {
            snprintf(err, errlen, "no server: set GMPOOL_SERVER");
            return GMP_ERR_CONFIG;
        }
        if (!gmpc_fmt(cfg->server, sizeof cfg->server, "unix:%s/gmpoold.sock",
                      dir)) {
            snprintf(err, errlen, "data directory path too long");
            return GMP_ERR_CONFIG;
        }
    } else {
        snprintf(cfg->server, sizeof cfg->server, "%s", srv);
    }
    if (gmpc_addr_parse(cfg->server, &cfg->addr) != GMP_OK) {
        snprintf(err, errlen, "bad server address '%s'", cfg->server);
        return GMP_ERR_CONFIG;
    }
    return GMP_OK;
}

static int resolve_limits(const gmp_options *o, csess_cfg *cfg, char *err,
                          size_t errlen)
{
    cfg->n_conns = o && o->connections ? o->connections : 4;
    cfg->shard = o && o->shard_size ? o->shard_size : GMP_SHARD_DEFAULT;
    cfg->window = o && o->window ? o->window : 64;
    cfg->timeout_ms = o && o->timeout_ms ? o->timeout_ms : 30000;
    if (cfg->n_conns > GMP_MAX_CONNS || cfg->shard < GMP_SHARD_MIN ||
        cfg->shard > GMP_SHARD_MAX || cfg->shard % GMP_SM4_BLOCK ||
        cfg->window > 1024) {
        snprintf(err, errlen,
                 "bad options: connections 1..%d, shard %u..%u bytes "
                 "(multiple of 16), window 1..1024",
                 GMP_MAX_CONNS, GMP_SHARD_MIN, GMP_SHARD_MAX);
        return GMP_ERR_ARG;
    }
    return GMP_OK;
}

GMP_API int gmp_client_open(gmp_client **out, const gmp_options *o)
{
    if (!out)
        return gmp_fail(GMP_ERR_ARG, "gmp_client_open: out is NULL");
    *out = NULL;
    gmp_client *c = calloc(1, sizeof *c);
    if (!c)
        return gmp_fail(GMP_ERR_NOMEM, "out of memory");
    gmpc_creds cr = {0};
    char err[512] = "";
    int rc = resolve_limits(o, &c->cfg, err, sizeof err);
    if (rc == GMP_OK)
        rc = resolve_secret(o, &c->cfg, &cr, err, sizeof err);
    if (rc == GMP_OK)
        rc = resolve_server(o, &c->cfg, &cr, err, sizeof err);
    OPENSSL_cleanse(&cr, sizeof cr);
    if (rc != GMP_OK) {
        OPENSSL_cleanse(c, sizeof *c);
        free(c);
        return gmp_fail(rc, "%s", err);
    }
    pthread_mutex_init(&c->mu, NULL);
    c->gen = rt_generation();
    *out = c;
    return GMP_OK;
}

/* The client's session on the current process generation; a child after
 * fork() abandons the parent's (its loop thread is not there) and starts
 * afresh. */
static csess *sess_of(gmp_client *c, uint64_t *gen)
{
    uint64_t g;
    rt *r = rt_get(&g);
    if (!r)
        return NULL;
    if (c->gen != g) {
        pthread_mutex_init(&c->mu, NULL);
        c->s = NULL;
        c->gen = g;
    }
    pthread_mutex_lock(&c->mu);
    if (!c->s) {
        c->s = csess_new(r, &c->cfg);
        c->rt = r;
    }
    csess *s = c->s;
    pthread_mutex_unlock(&c->mu);
    *gen = g;
    return s;
}

GMP_API void gmp_client_close(gmp_client *c)
{
    if (!c)
        return;
    if (c->s && c->gen == rt_generation()) {
        op *o = op_new(OP_CLOSE, c->s);
        if (o) {
            rt_submit(c->rt, o);
            op_free(o);
            csess_free(c->s);
        }
    }
    OPENSSL_cleanse(&c->cfg, sizeof c->cfg);
    free(c);
}

csess *gmp_client_sess(gmp_client *c)
{
    return c && c->s && c->gen == rt_generation() ? c->s : NULL;
}

/* ---- control requests ---- */

int gmp_ctrl(gmp_client *c, uint8_t type, const void *payload, size_t len,
                uint8_t **reply, size_t *reply_len)
{
    uint64_t gen;
    csess *s = sess_of(c, &gen);
    if (!s)
        return gmp_fail(GMP_ERR_NOMEM, "cannot start the client loop");
    op *o = op_new(OP_CTRL, s);
    if (!o || (len && !(o->payload = malloc(len)))) {
        op_free(o);
        return gmp_fail(GMP_ERR_NOMEM, "out of memory");
    }
    o->hdr.type = type;
    if (len)
        memcpy(o->payload, payload, len);
    o->payload_len = len;
    int rc = rt_submit(c->rt, o);
    if (rc != GMP_OK) {
        gmp_fail(rc, "%s", o->msg[0] ? o->msg : gmp_strerror(rc));
    } else if (reply) {
        *reply = o->reply;
        *reply_len = o->reply_len;
        o->reply = NULL;
    }
    op_free(o);
    return rc;
}

GMP_API int gmp_client_connect(gmp_client *c)
{
    if (!c)
        return gmp_fail(GMP_ERR_ARG, "client is NULL");
    return gmp_ctrl(c, GMPC_T_PING, NULL, 0, NULL, NULL);
}

GMP_API int gmp_random(gmp_client *c, void *buf, size_t len)
{
    if (!c || (!buf && len))
        return gmp_fail(GMP_ERR_ARG, "gmp_random: NULL argument");
    uint8_t *p = buf;
    while (len) {
        uint32_t n = len > MAX_RANDOM_REQ ? MAX_RANDOM_REQ : (uint32_t)len;
        uint8_t req[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16),
                          (uint8_t)(n >> 8), (uint8_t)n};
        uint8_t *reply = NULL;
        size_t rl = 0;
        int rc = gmp_ctrl(c, GMPC_T_RANDOM, req, 4, &reply, &rl);
        if (rc == GMP_OK && rl != n)
            rc = gmp_fail(GMP_ERR_PROTO, "short random reply");
        if (rc == GMP_OK)
            memcpy(p, reply, n);
        free(reply);
        if (rc != GMP_OK)
            return rc;
        p += n;
        len -= n;
    }
    return GMP_OK;
}

/* ---- tasks ---- */

void task_destroy(gmp_task *t)
{
    free(t->fill);
    free(t->open_payload);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    OPENSSL_cleanse(t, sizeof *t);
    free(t);
}

/* lazy: the one-shot helpers, which do not need OPEN's answer before
 * sending their data (task_send_open). */
static int task_open(gmp_client *c, gmp_alg alg, unsigned flags,
                     const gmpc_open *op_payload, const gmp_task_options *o,
                     bool digest, bool lazy, gmp_task **out)
{
    uint64_t gen;
    csess *s = sess_of(c, &gen);
    gmp_task *t = s ? calloc(1, sizeof *t) : NULL;
    size_t cap = 160 + op_payload->aad_len;
    if (!t || !(t->open_payload = malloc(cap))) {
        free(t);
        return gmp_fail(GMP_ERR_NOMEM, "out of memory");
    }
    gmpc_wbuf w = {t->open_payload, cap, 0, false};
    gmpc_open_encode(op_payload, &w);
    t->open_len = w.len;
    t->aead = alg == GMP_ALG_SM4_GCM || alg == GMP_ALG_AES_GCM;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->s = s;
    t->rt = c->rt;
    t->gen = gen;
    t->alg = (uint16_t)alg;
    t->flags = (uint8_t)flags;
    t->priority = o ? o->priority : 4;
    t->deadline_ms = o ? o->deadline_ms : 0;
    t->digest = digest;
    t->lazy_open = lazy;
    t->pin = -1;
    t->shard = c->cfg.shard;
    t->total_len = op_payload->total_len;
    t->q_cap = t->q = c->cfg.window;
    pthread_mutex_lock(&c->mu);
    t->fresh = ++c->fresh;
    pthread_mutex_unlock(&c->mu);
    gmpc_nonce(&t->id, sizeof t->id);
    t->id |= 1;
    op *open = op_new(OP_OPEN, s);
    if (!open) {
        task_destroy(t);
        return gmp_fail(GMP_ERR_NOMEM, "out of memory");
    }
    open->task = t;
    open->wait = !lazy; /* lazy: a refused OPEN fails the task later */
    int rc = rt_submit(c->rt, open);
    if (rc != GMP_OK) {
        gmp_fail(rc, "%s", open->msg[0] ? open->msg : gmp_strerror(rc));
        op_free(open);
        gmp_task_free(t);
        return rc;
    }
    if (!lazy)
        op_free(open);
    *out = t;
    return GMP_OK;
}

static int digest_open(gmp_client *c, gmp_alg alg, const gmp_task_options *o,
                       bool lazy, gmp_task **out)
{
    if (!out)
        return gmp_fail(GMP_ERR_ARG, "out is NULL");
    *out = NULL;
    if (!c)
        return gmp_fail(GMP_ERR_ARG, "client is NULL");
    if (o && o->priority > 7)
        return gmp_fail(GMP_ERR_ARG, "priority must be 0..7");
    gmpc_open op_payload = {.total_len = o ? o->total_len : 0};
    return task_open(c, alg, 0, &op_payload, o, true, lazy, out);
}

/* RFC 2104: a key longer than the digest's block is replaced by its
 * hash.  Keys up to GMP_MAX_KEY_LEN travel as they are. */
static int mac_key(gmp_alg alg, const uint8_t *key, size_t key_len,
                   gmpc_open *dst)
{
    static const struct {
        gmp_alg alg;
        const char *md;
        size_t block;
    } mds[] = {{GMP_ALG_HMAC_SM3, "SM3", 64},
               {GMP_ALG_HMAC_SHA256, "SHA2-256", 64},
               {GMP_ALG_HMAC_SHA384, "SHA2-384", 128},
               {GMP_ALG_HMAC_SHA512, "SHA2-512", 128}};
    if (key_len <= GMP_MAX_KEY_LEN) {
        if (key_len)
            memcpy(dst->key, key, key_len);
        dst->key_len = key_len;
        return GMP_OK; /* the daemon judges the algorithm */
    }
    size_t i = 0;
    while (i < sizeof mds / sizeof mds[0] && mds[i].alg != alg)
        i++;
    if (i == sizeof mds / sizeof mds[0])
        return gmp_fail(GMP_ERR_ALG, "not an HMAC algorithm");
    if (key_len <= mds[i].block)
        return gmp_fail(GMP_ERR_KEY, "HMAC keys of %u..%zu bytes cannot be "
                        "sent to the pool", GMP_MAX_KEY_LEN + 1, mds[i].block);
    unsigned n = 0;
    EVP_MD *md = EVP_MD_fetch(gmpc_libctx(), mds[i].md, NULL);
    int ok = md && EVP_Digest(key, key_len, dst->key, &n, md, NULL);
    EVP_MD_free(md);
    dst->key_len = n;
    return ok ? GMP_OK : gmp_fail(GMP_ERR_INTERNAL, "cannot hash the HMAC key");
}

GMP_API int gmp_mac_open(gmp_client *c, gmp_alg alg, const uint8_t *key,
                         size_t key_len, const gmp_task_options *o,
                         gmp_task **out)
{
    if (!out)
        return gmp_fail(GMP_ERR_ARG, "out is NULL");
    *out = NULL;
    uint32_t handle = o ? o->key_handle : 0;
    if (!c || (!key && key_len))
        return gmp_fail(GMP_ERR_ARG, "NULL argument");
    if ((key_len == 0) == (handle == 0))
        return gmp_fail(GMP_ERR_KEY, "HMAC needs a key or a key handle");
    if (o && o->priority > 7)
        return gmp_fail(GMP_ERR_ARG, "priority must be 0..7");
    gmpc_open op_payload = {.total_len = o ? o->total_len : 0,
                            .key_handle = handle};
    int rc = mac_key(alg, key, key_len, &op_payload);
    if (rc == GMP_OK)
        rc = task_open(c, alg, 0, &op_payload, o, true, false, out);
    OPENSSL_cleanse(&op_payload, sizeof op_payload);
    return rc;
}

GMP_API int gmp_aead_open(gmp_client *c, gmp_alg alg, unsigned flags,
                          const uint8_t *key, size_t key_len,
                          const uint8_t *iv, size_t iv_len,
                          const uint8_t *aad, size_t aad_len,
                          const gmp_task_options *o, gmp_task **out)
{
    if (!out)
        return gmp_fail(GMP_ERR_ARG, "out is NULL");
    *out = NULL;
    uint32_t handle = o ? o->key_handle : 0;
    if (!c || (!key && key_len) || !iv || (!aad && aad_len))
        return gmp_fail(GMP_ERR_ARG, "NULL argument");
    if ((key_len == 0) == (handle == 0))
        return gmp_fail(GMP_ERR_KEY, "AEAD needs a key or a key handle");
    if (key_len > GMP_MAX_KEY_LEN || iv_len == 0 || iv_len > GMP_MAX_IV_LEN ||
        aad_len > GMP_MAX_AAD_LEN)
        return gmp_fail(key_len > GMP_MAX_KEY_LEN ? GMP_ERR_KEY
                        : aad_len > GMP_MAX_AAD_LEN ? GMP_ERR_TOO_BIG
                                                    : GMP_ERR_IV,
                        "key, IV (1..16 bytes) or AAD (up to 65535) length");
    if ((o && o->priority > 7) || (flags & ~GMP_TASK_DECRYPT))
        return gmp_fail(GMP_ERR_ARG, "bad priority or flags");
    gmpc_open op_payload = {.key_handle = handle, .key_len = key_len,
                            .iv_len = iv_len,
                            .total_len = o ? o->total_len : 0, .aad = aad,
                            .aad_len = aad_len};
    if (key_len)
        memcpy(op_payload.key, key, key_len);
    memcpy(op_payload.iv, iv, iv_len);
    int rc = task_open(c, alg, flags, &op_payload, o, false, false, out);
    OPENSSL_cleanse(&op_payload, sizeof op_payload);
    return rc;
}

static int cipher_open(gmp_client *c, gmp_alg alg, unsigned flags,
                       const uint8_t *key, size_t key_len, uint32_t key_handle,
                       const uint8_t *iv, size_t iv_len,
                       const gmp_task_options *o, bool lazy, gmp_task **out)
{
    if (!out)
        return gmp_fail(GMP_ERR_ARG, "out is NULL");
    *out = NULL;
    if (!c || (!key && key_len) || (!iv && iv_len))
        return gmp_fail(GMP_ERR_ARG, "NULL argument");
    if (key_len > GMP_MAX_KEY_LEN || iv_len > GMP_MAX_IV_LEN)
        return gmp_fail(key_len > GMP_MAX_KEY_LEN ? GMP_ERR_KEY : GMP_ERR_IV,
                        "key or IV too long");
    if ((o && o->priority > 7) || (flags & ~(GMP_TASK_DECRYPT | GMP_TASK_PAD)))
        return gmp_fail(GMP_ERR_ARG, "bad priority or flags");
    gmpc_open op_payload = {.key_handle = key_handle,
                            .key_len = key_len,
                            .iv_len = iv_len,
                            .total_len = o ? o->total_len : 0};
    if (key_len)
        memcpy(op_payload.key, key, key_len);
    if (iv_len)
        memcpy(op_payload.iv, iv, iv_len);
    int rc = task_open(c, alg, flags, &op_payload, o, false, lazy, out);
    OPENSSL_cleanse(&op_payload, sizeof op_payload);
    return rc;
}

GMP_API int gmp_digest_open(gmp_client *c, gmp_alg alg,
                            const gmp_task_options *o, gmp_task **out)
{
    return digest_open(c, alg, o, false, out);
}

GMP_API int gmp_cipher_open(gmp_client *c, gmp_alg alg, unsigned flags,
                            const uint8_t *key, size_t key_len,
                            uint32_t key_handle, const uint8_t *iv,
                            size_t iv_len, const gmp_task_options *o,
                            gmp_task **out)
{
    return cipher_open(c, alg, flags, key, key_len, key_handle, iv, iv_len, o,
                       false, out);
}

static int task_check(gmp_task *t)
{
    if (t->gen != rt_generation())
        return gmp_fail(GMP_ERR_FORKED, "task belongs to the parent process");
    return GMP_OK;
}

/* Wakes the loop to send what is queued.  One pending kick is enough: the
 * loop clears the flag and pumps under the task lock, so shards queued
 * before it see that pump and later ones post a new kick. */
static void kick(gmp_task *t)
{
    pthread_mutex_lock(&t->mu);
    bool pending = t->kick_pending;
    t->kick_pending = true;
    pthread_mutex_unlock(&t->mu);
    if (pending)
        return;
    op *o = op_new(OP_KICK, t->s);
    if (!o) {
        pthread_mutex_lock(&t->mu);
        t->kick_pending = false;
        pthread_mutex_unlock(&t->mu);
        return;
    }
    o->task = t;
    o->wait = false;
    rt_submit(t->rt, o);
}

static void enqueue(gmp_task *t, cshard *sh, bool final)
{
    sh->next = NULL;
    sh->seq = t->next_seq++;
    sh->final = final;
    sh->slot = -1;
    if (final)
        t->final_seq = sh->seq;
    sh->refs = 1;
    if (t->q_tail)
        t->q_tail->next = sh;
    else
        t->q_head = sh;
    t->q_tail = sh;
    t->q_bytes += sh->len;
}

/* A shard over the caller's bytes (cipher: update waits for it). */
static int enqueue_borrowed(gmp_task *t, const uint8_t *p, size_t len,
                            bool final)
{
    cshard *sh = malloc(sizeof *sh);
    if (!sh)
        return GMP_ERR_NOMEM;
    sh->borrower = t;
    sh->data = p;
    sh->len = (uint32_t)len;
    enqueue(t, sh, final);
    return GMP_OK;
}

static int task_error(gmp_task *t)
{
    return gmp_fail(t->status, "%s", t->msg);
}

/* The digest shard being filled: data is copied once, straight into the
 * shard that will travel.  Application thread only, like t->fill (until
 * gmp_task_free). */
static cshard *fill_shard(gmp_task *t)
{
    if (!t->fill && (t->fill = malloc(sizeof *t->fill + t->shard))) {
        t->fill->borrower = NULL;
        t->fill->data = t->fill->own;
        t->fill->len = 0;
    }
    return t->fill;
}

/* Queues a whole digest shard; waits, when more than a few windows' worth
 * is outstanding, until half of that has drained.  Returns false once the
 * task has failed. */
static bool digest_queue(gmp_task *t, cshard *sh)
{
    pthread_mutex_lock(&t->mu);
    bool ok = !t->status;
    if (ok) {
        t->room = (size_t)t->shard * (t->p > 8 ? t->p : 8) * 2;
        enqueue(t, sh, false);
    } else {
        free(sh);
    }
    if (ok && t->q_bytes + (size_t)t->inflight * t->shard > t->room) {
        pthread_mutex_unlock(&t->mu);
        kick(t);
        pthread_mutex_lock(&t->mu);
        t->waiting = WAIT_ROOM;
        while (!task_room_ready(t))
            pthread_cond_wait(&t->cv, &t->mu);
        t->waiting = WAIT_NONE;
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

/* Digest data is copied, so update may return before it is answered.  The
 * copy is made outside t->mu: the loop thread takes that lock for every
 * reply of the task, and copying half a room (up to 1 MB) under it stalled
 * the loop, and with it every other task of the client, for as long as the
 * copy ran, or longer when the copying thread was preempted. */
static int digest_update(gmp_task *t, const uint8_t *p, size_t len)
{
    bool nomem = false;
    while (len) {
        cshard *sh = fill_shard(t);
        if ((nomem = !sh))
            break;
        size_t n = t->shard - sh->len;
        n = n < len ? n : len;
        memcpy(sh->own + sh->len, p, n);
        sh->len += (uint32_t)n;
        p += n;
        len -= n;
        if (sh->len < t->shard)
            break;
        t->fill = NULL;
        if (!digest_queue(t, sh))
            break;
    }
    /* Part of the input is consumed: a retry would hash the wrong bytes,
     * so running out of memory fails the task. */
    if (nomem)
        task_fail(t, GMP_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&t->mu);
    int rc = t->status ? task_error(t) : GMP_OK;
    pthread_mutex_unlock(&t->mu);
    kick(t);
    return rc;
}

/* Output goes to out (cap bytes) from here on; under t->mu, before the
 * items that produce it are queued. */
static void out_begin(gmp_task *t, uint8_t *out, size_t cap)
{
    t->out = out;
    t->out_cap = cap;
    t->out_off = 0;
}

/* Called with t->mu held, the items queued: sends them and waits until
 * everything queued is delivered (or the task failed) and libuv holds
 * none of the caller's bytes; *out_len gets the output length.  Returns
 * rc, or the task's failure, with t->mu released. */
static int out_wait(gmp_task *t, int rc, size_t *out_len)
{
    pthread_mutex_unlock(&t->mu);
    kick(t);
    pthread_mutex_lock(&t->mu);
    t->wait_seq = t->next_seq;
    t->waiting = WAIT_DONE;
    while (!task_done_ready(t))
        pthread_cond_wait(&t->cv, &t->mu);
    t->waiting = WAIT_NONE;
    if (rc == GMP_OK && t->status)
        rc = task_error(t);
    *out_len = rc == GMP_OK ? t->out_off : 0;
    t->out = NULL;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* Queues p as shards that borrow the caller's bytes (the last one FINAL
 * when final) and waits for their output: cipher output is returned by
 * update, and the one-shot helpers wait anyway. */
static int run_items(gmp_task *t, const uint8_t *p, size_t len, bool final,
                      uint8_t *out, size_t *out_len)
{
    int rc = GMP_OK;
    pthread_mutex_lock(&t->mu);
    t->final_queued |= final;
    out_begin(t, out, *out_len);
    for (size_t off = 0; rc == GMP_OK && off < len; off += t->shard) {
        size_t n = len - off < t->shard ? len - off : t->shard;
        bool last = final && off + n == len;
        rc = enqueue_borrowed(t, p + off, n, last);
    }
    if (rc == GMP_OK && final && len == 0)
        rc = enqueue_borrowed(t, NULL, 0, true);
    return out_wait(t, rc, out_len);
}

/* Digest final: the staged tail rides in the FINAL frame. */
static int digest_final(gmp_task *t, uint8_t *out, size_t *out_len)
{
    pthread_mutex_lock(&t->mu);
    cshard *sh = fill_shard(t);
    if (!sh) {
        pthread_mutex_unlock(&t->mu);
        return gmp_fail(GMP_ERR_NOMEM, "out of memory");
    }
    t->fill = NULL;
    t->final_queued = true;
    out_begin(t, out, *out_len);
    enqueue(t, sh, true);
    return out_wait(t, GMP_OK, out_len);
}

/* The most output an update can produce: stream modes return in_len;
 * ECB/CBC the whole blocks of what is pending plus in_len, and, decrypting
 * with padding, the block held back by the last update (held only when
 * nothing was pending, as EVP does, so in_len + 16 always suffices). */
static size_t update_room(const gmp_task *t, size_t in_len)
{
    if (t->alg != GMP_ALG_SM4_ECB && t->alg != GMP_ALG_SM4_CBC &&
        t->alg != GMP_ALG_AES_ECB && t->alg != GMP_ALG_AES_CBC)
        return in_len;
    size_t pending = (size_t)(t->bytes_in % GMP_SM4_BLOCK);
    size_t whole = (pending + in_len) & ~(size_t)(GMP_SM4_BLOCK - 1);
    bool held = (t->flags & GMP_TASK_PAD) && (t->flags & GMP_TASK_DECRYPT) &&
                t->bytes_in > 0 && pending == 0;
    return whole + (held ? GMP_SM4_BLOCK : 0);
}

GMP_API int gmp_task_update(gmp_task *t, const void *in, size_t in_len,
                            void *out, size_t *out_len)
{
    if (!t || (!in && in_len))
        return gmp_fail(GMP_ERR_ARG, "gmp_task_update: NULL argument");
    int rc = task_check(t);
    if (rc != GMP_OK)
        return rc;
    if (t->final_queued)
        return gmp_fail(GMP_ERR_STATE, "update after final");
    if (t->status)
        return task_error(t);
    if (t->digest)
        return digest_update(t, in, in_len);
    size_t need = update_room(t, in_len);
    if (!out_len || (!out && *out_len) || *out_len < need)
        return gmp_fail(GMP_ERR_BUFFER,
                        "cipher update needs %zu bytes of output", need);
    rc = run_items(t, in, in_len, false, out, out_len);
    t->bytes_in += in_len;
    return rc;
}

/* The daemon appends the tag to the last output; keep it apart. */
static int aead_final(gmp_task *t, void *out, size_t *out_len)
{
    uint8_t buf[2 * GMP_SM4_BLOCK];
    size_t n = sizeof buf;
    int rc = run_items(t, NULL, 0, true, buf, &n);
    if (rc == GMP_OK && n < GMP_GCM_TAG_LEN)
        rc = gmp_fail(GMP_ERR_PROTO, "AEAD final without a tag");
    if (rc != GMP_OK) {
        *out_len = 0;
        return rc;
    }
    n -= GMP_GCM_TAG_LEN;
    memcpy(t->tag, buf + n, GMP_GCM_TAG_LEN);
    t->has_tag = true;
    memcpy(out, buf, n);
    *out_len = n;
    return GMP_OK;
}

GMP_API int gmp_task_get_tag(gmp_task *t, uint8_t *tag, size_t tag_len)
{
    if (!t || !tag || tag_len == 0 || tag_len > GMP_GCM_TAG_LEN)
        return gmp_fail(GMP_ERR_ARG, "gmp_task_get_tag: bad argument");
    if (!t->has_tag)
        return gmp_fail(GMP_ERR_STATE, "no tag before a successful final");
    memcpy(tag, t->tag, tag_len);
    return GMP_OK;
}

GMP_API int gmp_task_final(gmp_task *t, void *out, size_t *out_len)
{
    if (!t || !out || !out_len)
        return gmp_fail(GMP_ERR_ARG, "gmp_task_final: NULL argument");
    int rc = task_check(t);
    if (rc != GMP_OK)
        return rc;
    if (t->final_queued)
        return gmp_fail(GMP_ERR_STATE, "final called twice");
    if (t->status)
        return task_error(t);
    size_t need = t->digest ? GMP_SM3_DIGEST_LEN : 2 * GMP_SM4_BLOCK;
    if (*out_len < need)
        return gmp_fail(GMP_ERR_BUFFER, "final needs %zu bytes of output",
                        need);
    if (t->aead)
        return aead_final(t, out, out_len);
    if (!t->digest)
        return run_items(t, NULL, 0, true, out, out_len);
    return digest_final(t, out, out_len);
}

GMP_API void gmp_task_free(gmp_task *t)
{
    if (!t)
        return;
    if (t->gen != rt_generation()) {
        free(t->fill);
        free(t); /* the parent's; its locks may be held, do not touch them */
        return;
    }
    /* The loop thread aborts it if needed and frees it (csess_handle_op):
     * nothing here waits for that. */
    op *o = op_new(OP_TASK_FREE, t->s);
    if (!o) {
        task_destroy(t);
        return;
    }
    o->task = t;
    o->wait = false;
    rt_submit(t->rt, o);
}

GMP_API unsigned gmp_task_max_inflight(const gmp_task *t)
{
    return t ? t->max_inflight : 0;
}

/* ---- one-shot helpers ---- */

/* The one-shot helpers open lazily (their data follows OPEN at once) and
 * send their input with FINAL in one pass, its shards borrowing the
 * caller's bytes: one round trip to the daemon instead of two or three
 * for a small job, no copy for a large one. */
GMP_API int gmp_digest(gmp_client *c, gmp_alg alg, const void *in, size_t len,
                       uint8_t out[GMP_SM3_DIGEST_LEN])
{
    gmp_task *t;
    gmp_task_options o = {.priority = 4, .total_len = len};
    if (!out || (!in && len))
        return gmp_fail(GMP_ERR_ARG, "gmp_digest: NULL argument");
    int rc = digest_open(c, alg, &o, true, &t);
    size_t n = GMP_SM3_DIGEST_LEN;
    /* it waits for its answer anyway, so its shards borrow the input */
    if (rc == GMP_OK)
        rc = run_items(t, in, len, true, out, &n);
    gmp_task_free(t);
    return rc;
}

GMP_API int gmp_cipher(gmp_client *c, gmp_alg alg, unsigned flags,
                       const uint8_t *key, size_t key_len, const uint8_t *iv,
                       size_t iv_len, const void *in, size_t in_len, void *out,
                       size_t *out_len)
{
    gmp_task *t;
    gmp_task_options o = {.priority = 4, .total_len = in_len};
    if (!out || !out_len || *out_len < in_len + GMP_SM4_BLOCK)
        return gmp_fail(GMP_ERR_BUFFER, "output needs in_len + 16 bytes");
    if (!in && in_len)
        return gmp_fail(GMP_ERR_ARG, "gmp_cipher: NULL input");
    int rc = cipher_open(c, alg, flags, key, key_len, 0, iv, iv_len, &o, true,
                         &t);
    size_t cap = *out_len, n = cap, n2 = 0;
    if (rc == GMP_OK && !t->aead) {
        rc = run_items(t, in, in_len, true, out, &n);
    } else if (rc == GMP_OK) { /* the tag is kept apart by final */
        rc = gmp_task_update(t, in, in_len, out, &n);
        n2 = cap - n;
        if (rc == GMP_OK)
            rc = gmp_task_final(t, (uint8_t *)out + n, &n2);
    }
    gmp_task_free(t);
    *out_len = rc == GMP_OK ? n + n2 : 0;
    return rc;
}

/* ---- keystore ---- */

int gmp_key_ctrl(gmp_client *c, const gmpc_wbuf *w, uint8_t **reply,
                 size_t *reply_len)
{
    if (!c)
        return gmp_fail(GMP_ERR_ARG, "client is NULL");
    if (w->overflow)
        return gmp_fail(GMP_ERR_ARG, "key request too long");
    return gmp_ctrl(c, GMPC_T_KEY, w->p, w->len, reply, reply_len);
}

/* IMPORT (value given) or GENERATE (value NULL, len bytes), with the front
 * end's attribute blob stored in the same request. */
GMP_API int gmp_key_create(gmp_client *c, uint16_t type, uint32_t flags,
                           const char *label, const uint8_t *value, size_t len,
                           const uint8_t *app, size_t app_len,
                           uint32_t *handle)
{
    uint8_t req[32 + GMPC_MAX_NAME + GMP_MAX_KEY_LEN + GMP_KEY_APP_MAX];
    uint8_t *reply = NULL;
    size_t rl = 0, ll = label ? strlen(label) : 0;
    if (!handle || ll > GMPC_MAX_NAME || len > GMP_MAX_KEY_LEN ||
        (!app && app_len) || app_len > GMP_KEY_APP_MAX)
        return gmp_fail(GMP_ERR_ARG, "bad key arguments");
    gmpc_wbuf w = {req, sizeof req, 0, false};
    gmpc_w_u8(&w, value ? GMPC_KEY_IMPORT : GMPC_KEY_GENERATE);
    gmpc_w_u16(&w, type);
    gmpc_w_u32(&w, flags);
    gmpc_w_blob(&w, label ? label : "", ll);
    if (value)
        gmpc_w_blob(&w, value, len);
    else
        gmpc_w_u32(&w, (uint32_t)len);
    if (app_len)
        gmpc_w_blob(&w, app, app_len);
    int rc = gmp_key_ctrl(c, &w, &reply, &rl);
    OPENSSL_cleanse(req, sizeof req);
    gmpc_rbuf r = {reply, rl, 0, false};
    if (rc == GMP_OK) {
        *handle = gmpc_r_u32(&r);
        if (!gmpc_r_done(&r))
            rc = gmp_fail(GMP_ERR_PROTO, "bad key reply");
    }
    free(reply);
    return rc;
}

GMP_API int gmp_key_import(gmp_client *c, uint16_t type, uint32_t flags,
                           const char *label, const uint8_t *value, size_t len,
                           uint32_t *handle)
{
    if (!value)
        return gmp_fail(GMP_ERR_ARG, "value is NULL");
    return gmp_key_create(c, type, flags, label, value, len, NULL, 0, handle);
}

GMP_API int gmp_key_generate(gmp_client *c, uint16_t type, uint32_t flags,
                             const char *label, size_t len, uint32_t *handle)
{
    return gmp_key_create(c, type, flags, label, NULL, len, NULL, 0, handle);
}

static int key_by_handle(gmp_client *c, uint8_t op_code, uint32_t handle,
                         uint8_t **reply, size_t *rl)
{
    uint8_t req[5];
    gmpc_wbuf w = {req, sizeof req, 0, false};
    gmpc_w_u8(&w, op_code);
    gmpc_w_u32(&w, handle);
    return gmp_key_ctrl(c, &w, reply, rl);
}

GMP_API int gmp_key_get_info(gmp_client *c, uint32_t handle,
                             gmp_key_info *info)
{
    uint8_t *reply = NULL;
    size_t rl = 0, ll = 0;
    if (!info)
        return gmp_fail(GMP_ERR_ARG, "info is NULL");
    int rc = key_by_handle(c, GMPC_KEY_INFO, handle, &reply, &rl);
    if (rc == GMP_OK) {
        gmpc_rbuf r = {reply, rl, 0, false};
        memset(info, 0, sizeof *info);
        info->handle = gmpc_r_u32(&r);
        info->type = gmpc_r_u16(&r);
        info->len = gmpc_r_u32(&r);
        info->flags = gmpc_r_u32(&r);
        const uint8_t *l = gmpc_r_blob(&r, sizeof info->label - 1, &ll);
        size_t al = 0;
        const uint8_t *app = gmpc_r_blob(&r, GMP_KEY_APP_MAX, &al);
        if (!gmpc_r_done(&r)) {
            rc = gmp_fail(GMP_ERR_PROTO, "bad key info reply");
        } else {
            if (ll)
                memcpy(info->label, l, ll);
            if (al)
                memcpy(info->app, app, al);
            info->app_len = (uint16_t)al;
        }
    }
    free(reply);
    return rc;
}

GMP_API int gmp_key_export(gmp_client *c, uint32_t handle, uint8_t *value,
                           size_t *len)
{
    uint8_t *reply = NULL;
    size_t rl = 0, vl = 0;
    if (!value || !len)
        return gmp_fail(GMP_ERR_ARG, "NULL argument");
    int rc = key_by_handle(c, GMPC_KEY_EXPORT, handle, &reply, &rl);
    if (rc == GMP_OK) {
        gmpc_rbuf r = {reply, rl, 0, false};
        const uint8_t *v = gmpc_r_blob(&r, GMP_MAX_KEY_LEN, &vl);
        if (!gmpc_r_done(&r))
            rc = gmp_fail(GMP_ERR_PROTO, "bad key export reply");
        else if (vl > *len)
            rc = gmp_fail(GMP_ERR_BUFFER, "key needs %zu bytes", vl);
        else
            memcpy(value, v, vl);
        *len = vl;
    }
    if (reply)
        OPENSSL_cleanse(reply, rl);
    free(reply);
    return rc;
}

GMP_API int gmp_key_destroy(gmp_client *c, uint32_t handle)
{
    return key_by_handle(c, GMPC_KEY_DESTROY, handle, NULL, NULL);
}
