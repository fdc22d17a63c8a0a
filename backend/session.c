/* Sessions (one per client pool of connections, R15) and their tasks:
 * open, shard reordering by sequence, release in order to the scheduler,
 * abort.  Lock order: session->mu, then task->mu, then the scheduler's. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "gmpd.h"
#include "gmpool.h"
#include "util.h"

/* How far ahead of the next expected sequence a shard may arrive. */
#define REORDER_SPAN 4096u

static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static gmpd_session *g_sessions;
static uint32_t g_n_sessions;

gmpd_session *gmpd_session_new(const gmpd_tenant *t)
{
    pthread_mutex_lock(&g_reg_mu);
    bool full = g_n_sessions >= gmpd->cfg.max_sessions;
    pthread_mutex_unlock(&g_reg_mu);
    if (full) {
        gmpd_log(GMPD_WARN, "session limit %u reached",
                 gmpd->cfg.max_sessions);
        return NULL;
    }
    gmpd_session *s = calloc(1, sizeof *s);
    uint32_t cap = gmpd->cfg.max_tasks;
    if (!s || !(s->tasks = calloc(cap, sizeof *s->tasks))) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->refs, 1);
    s->tasks_cap = cap;
    s->tenant = *t;
    s->conns = 1;
    do
        gmpc_random(&s->id, sizeof s->id);
    while (s->id == 0);
    pthread_mutex_lock(&g_reg_mu);
    s->next = g_sessions;
    g_sessions = s;
    g_n_sessions++;
    pthread_mutex_unlock(&g_reg_mu);
    return s;
}

gmpd_session *gmpd_session_find(uint64_t id, const char *tenant)
{
    pthread_mutex_lock(&g_reg_mu);
    gmpd_session *s = g_sessions;
    while (s && !(s->id == id && strcmp(s->tenant.name, tenant) == 0))
        s = s->next;
    if (s) {
        pthread_mutex_lock(&s->mu);
        bool live = s->conns > 0; /* else being torn down */
        if (live) {
            s->conns++;
            atomic_fetch_add(&s->refs, 1);
        }
        pthread_mutex_unlock(&s->mu);
        if (!live)
            s = NULL;
    }
    pthread_mutex_unlock(&g_reg_mu);
    return s;
}

static void registry_remove(gmpd_session *s)
{
    pthread_mutex_lock(&g_reg_mu);
    for (gmpd_session **pp = &g_sessions; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            g_n_sessions--;
            break;
        }
    pthread_mutex_unlock(&g_reg_mu);
}

/* The last connection of a session is gone: its tasks can never be
 * answered, so they are dropped with their queued shards (R17: socket
 * close frees the task's shards). */
void gmpd_session_conn_gone(gmpd_session *s)
{
    pthread_mutex_lock(&s->mu);
    bool last = --s->conns == 0;
    pthread_mutex_unlock(&s->mu);
    if (!last) {
        gmpd_session_unref(s);
        return;
    }
    registry_remove(s);
    for (;;) {
        gmpd_task *t = NULL;
        pthread_mutex_lock(&s->mu);
        for (uint32_t i = 0; i < s->tasks_cap && !t; i++)
            if (s->tasks[i]) {
                t = s->tasks[i];
                atomic_fetch_add(&t->refs, 1);
            }
        pthread_mutex_unlock(&s->mu);
        if (!t)
            break;
        gmpd_task_close(t, GMP_ERR_CONN);
        gmpd_task_unref(t);
    }
    gmpd_key_purge_session(gmpd->store, s->id);
    gmpd_session_unref(s);
}

static void shm_unref(gmpd_shm *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        munmap(m->base, m->size);
        free(m);
        atomic_fetch_sub(&gmpd->shm_regions, 1);
    }
}

/* Only a memfd sealed against shrinking can be mapped safely: a region
 * the client could truncate would fault (SIGBUS) under a computing node. */
static const char *shm_check(int fd, uint32_t size)
{
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0)
        return "the descriptor is not a sealable memfd";
    if (!(seals & F_SEAL_SHRINK))
        return "the memfd is not sealed against shrinking";
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size < size)
        return "the memfd is smaller than the region";
    return NULL;
}

int gmpd_session_attach_shm(gmpd_session *s, int fd, uint32_t size,
                            const char **why)
{
    if (size == 0 || size > GMPC_SHM_MAX) {
        *why = "region size out of range";
        return GMP_ERR_ARG;
    }
    if ((*why = shm_check(fd, size)))
        return GMP_ERR_ARG;
    gmpd_shm *m = calloc(1, sizeof *m);
    void *base = m ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
                          fd, 0)
                   : MAP_FAILED;
    if (base == MAP_FAILED) {
        free(m);
        *why = "cannot map the region";
        return GMP_ERR_NOMEM;
    }
    atomic_init(&m->refs, 1);
    atomic_fetch_add(&gmpd->shm_regions, 1);
    m->base = base;
    m->size = size;
    pthread_mutex_lock(&s->mu);
    bool had = s->shm != NULL;
    if (!had)
        s->shm = m;
    pthread_mutex_unlock(&s->mu);
    if (had) {
        shm_unref(m);
        *why = "the session already has a region";
        return GMP_ERR_STATE;
    }
    return GMP_OK;
}

void gmpd_session_unref(gmpd_session *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    OPENSSL_cleanse(s->tenant.secret, sizeof s->tenant.secret);
    shm_unref(s->shm);
    gmpd_sdf_session_free(s);
    pthread_mutex_destroy(&s->mu);
    free(s->tasks);
    free(s);
}

static bool fresh_bit(gmpd_session *s, uint64_t diff, bool set)
{
    uint64_t *w = &s->fresh_bits[diff / 64], m = 1ull << (diff % 64);
    bool was = *w & m;
    if (set)
        *w |= m;
    return was;
}

/* Shift the window so that bit 0 stands for the new top value. */
static void fresh_advance(gmpd_session *s, uint64_t by)
{
    const unsigned nbits = 64 * 16;
    if (by >= nbits) {
        memset(s->fresh_bits, 0, sizeof s->fresh_bits);
        return;
    }
    for (int i = nbits - 1; i >= 0; i--) {
        bool v = (uint64_t)i >= by && fresh_bit(s, (uint64_t)i - by, false);
        uint64_t *w = &s->fresh_bits[i / 64], m = 1ull << (i % 64);
        *w = v ? (*w | m) : (*w & ~m);
    }
}

/* Anti-replay window in the style of IPsec: values may arrive out of order
 * across the session's connections, but each is accepted once, and values
 * 1024 or more below the highest seen are refused. */
int gmpd_session_fresh(gmpd_session *s, uint64_t fresh)
{
    if (fresh == 0)
        return GMP_ERR_REPLAY;
    int rc = GMP_OK;
    pthread_mutex_lock(&s->mu);
    if (fresh > s->fresh_top) {
        fresh_advance(s, fresh - s->fresh_top);
        s->fresh_top = fresh;
        fresh_bit(s, 0, true);
    } else if (s->fresh_top - fresh >= 64 * 16 ||
               fresh_bit(s, s->fresh_top - fresh, true)) {
        rc = GMP_ERR_REPLAY;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static gmpd_task **task_slot(gmpd_session *s, uint64_t id)
{
    for (uint32_t i = 0; i < s->tasks_cap; i++)
        if (s->tasks[i] && s->tasks[i]->id == id)
            return &s->tasks[i];
    return NULL;
}

static int task_key(gmpd_session *s, const gmpd_alg_info *ai,
                    const gmpc_open *o, uint8_t *key, size_t *key_len)
{
    if (ai->kind == GMPD_KIND_DIGEST)
        return (o->key_len || o->key_handle || o->iv_len) ? GMP_ERR_ARG
                                                           : GMP_OK;
    if (ai->kind != GMPD_KIND_AEAD && o->aad_len)
        return GMP_ERR_ARG;
    if (!o->key_handle) {
        memcpy(key, o->key, o->key_len);
        *key_len = o->key_len;
        return GMP_OK;
    }
    if (o->key_len)
        return GMP_ERR_ARG; /* a handle or a key, not both */
    gmpd_key_attr a;
    int rc = gmpd_key_find(s, o->key_handle, &a, key, GMP_MAX_KEY_LEN,
                           key_len);
    if (rc == GMP_ERR_NOT_FOUND)
        return GMP_ERR_KEY;
    /* a MAC takes any secret; a cipher its own key type or a generic one */
    if (rc == GMP_OK && ai->key_type && a.type != ai->key_type &&
        a.type != GMP_KEY_GENERIC)
        rc = GMP_ERR_KEY;
    return rc;
}

/* Keeps what other nodes need to make their own context of the task. */
static int task_parallel(gmpd_task *t, const gmpd_engine_args *a)
{
    t->n_node_ctx = (uint32_t)gmpd_sched_nodes() + 1;
    t->node_ctx = calloc(t->n_node_ctx, sizeof *t->node_ctx);
    if (!t->node_ctx)
        return GMP_ERR_NOMEM;
    t->parallel = true;
    t->args = *a;
    memcpy(t->keep, a->key, a->key_len);
    memcpy(t->keep + GMP_MAX_KEY_LEN, a->iv, a->iv_len);
    t->args.key = t->keep;
    t->args.iv = t->keep + GMP_MAX_KEY_LEN;
    return GMP_OK;
}

static gmpd_task *task_new(gmpd_session *s, const gmpc_hdr *h,
                           const gmpd_alg_info *ai, const gmpc_open *o,
                           int *rc)
{
    uint8_t key[GMP_MAX_KEY_LEN];
    size_t key_len = 0;
    *rc = task_key(s, ai, o, key, &key_len);
    if (*rc != GMP_OK)
        return NULL;
    gmpd_task *t = calloc(1, sizeof *t);
    if (!t) {
        *rc = GMP_ERR_NOMEM;
        return NULL;
    }
    gmpd_engine_args args = {.flags = h->flags, .key = key,
                             .key_len = key_len, .iv = o->iv,
                             .iv_len = o->iv_len, .aad = o->aad,
                             .aad_len = o->aad_len};
    t->ctx = gmpd_engine_new(h->alg, &args, rc);
    if (t->ctx && gmpd_sched_nodes() > 1 &&
        gmpd_engine_parallel(h->alg, h->flags))
        *rc = task_parallel(t, &args);
    OPENSSL_cleanse(key, sizeof key);
    if (!t->ctx || *rc != GMP_OK) {
        gmpd_engine_free(t->ctx);
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    atomic_init(&t->refs, 1);
    t->sess = s;
    atomic_fetch_add(&s->refs, 1);
    t->id = h->task_id;
    t->alg = h->alg;
    t->flags = h->flags;
    t->priority = h->priority;
    t->svc = ai->svc;
    return t;
}

int gmpd_task_open(gmpd_session *s, const gmpc_hdr *h, const gmpc_open *o,
                   gmpd_task **out)
{
    *out = NULL;
    if (atomic_load(&gmpd->shutting_down))
        return GMP_ERR_SHUTDOWN;
    const gmpd_alg_info *ai = gmpd_engine_find(h->alg);
    if (!ai)
        return GMP_ERR_ALG;
    if (h->priority >= GMPD_PRIO_LEVELS || (h->flags & ~3u))
        return GMP_ERR_ARG;
    int rc = gmpd_session_fresh(s, h->fresh);
    if (rc != GMP_OK)
        return rc;
    pthread_mutex_lock(&s->mu);
    gmpd_task **slot = NULL;
    if (task_slot(s, h->task_id))
        rc = GMP_ERR_EXISTS;
    else if (s->n_tasks >= s->tasks_cap)
        rc = GMP_ERR_LIMIT;
    for (uint32_t i = 0; rc == GMP_OK && i < s->tasks_cap && !slot; i++)
        if (!s->tasks[i])
            slot = &s->tasks[i];
    gmpd_task *t = rc == GMP_OK ? task_new(s, h, ai, o, &rc) : NULL;
    if (t) {
        *slot = t;
        s->n_tasks++;
    }
    pthread_mutex_unlock(&s->mu);
    if (!t)
        return rc;
    t->placed_len = o->total_len ? o->total_len : GMP_SHARD_DEFAULT;
    gmpd_sched_note_open(o->total_len);
    /* The client's deadline (relative to arrival), else its tenant's
     * default from the configuration; 0 = none (R8). */
    t->deadline_ms = h->deadline_ms ? h->deadline_ms
                                    : gmpd_config_deadline(&gmpd->cfg,
                                                           s->tenant.name);
    gmpd_sched_place(t, t->placed_len);
    if (!t->node) {
        gmpd_task_close(t, GMP_ERR_NO_NODE);
        return GMP_ERR_NO_NODE;
    }
    atomic_fetch_add(&t->refs, 1);
    *out = t;
    return GMP_OK;
}

gmpd_task *gmpd_task_get(gmpd_session *s, uint64_t id)
{
    pthread_mutex_lock(&s->mu);
    gmpd_task **slot = task_slot(s, id);
    gmpd_task *t = slot ? *slot : NULL;
    if (t)
        atomic_fetch_add(&t->refs, 1);
    pthread_mutex_unlock(&s->mu);
    return t;
}

void gmpd_task_unref(gmpd_task *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    gmpd_engine_free(t->ctx);
    for (uint32_t i = 0; i < t->n_node_ctx; i++)
        gmpd_engine_free(t->node_ctx[i]);
    free(t->node_ctx);
    pthread_mutex_destroy(&t->mu);
    gmpd_session_unref(t->sess);
    OPENSSL_cleanse(t, sizeof *t);
    free(t);
}

/* Once per task: it no longer counts against the nodes and the window. */
static void task_sched_end(gmpd_task *t)
{
    pthread_mutex_lock(&t->mu);
    bool first = t->node && !t->sched_ended;
    t->sched_ended = true;
    pthread_mutex_unlock(&t->mu);
    if (first)
        gmpd_sched_task_end(t);
}

/* Unlink from the session's table (once); drops the table's reference. */
static void task_detach(gmpd_task *t)
{
    gmpd_session *s = t->sess;
    bool found = false;
    pthread_mutex_lock(&s->mu);
    gmpd_task **slot = task_slot(s, t->id);
    if (slot && *slot == t) {
        *slot = NULL;
        s->n_tasks--;
        found = true;
    }
    pthread_mutex_unlock(&s->mu);
    if (found) {
        task_sched_end(t);
        gmpd_task_unref(t);
    }
}

void gmpd_task_abort(gmpd_task *t, int status)
{
    pthread_mutex_lock(&t->mu);
    if (t->state == TASK_OPEN) {
        t->state = TASK_FAILED;
        t->status = status;
    }
    gmpd_shard *p = t->pending;
    t->pending = NULL;
    t->n_pending = 0;
    pthread_mutex_unlock(&t->mu);
    for (gmpd_shard *s = p; s; s = s->next)
        s->status = status;
    gmpd_net_post_results(p);
    gmpd_sched_cancel(t);
    task_sched_end(t);
}

/* A failed task stays in the session's table, answering late shards with
 * its own failure status, until the client drops it with ABORT (or the
 * session ends): the client sees one consistent error, whichever of its
 * connections the answers come back on. */
void gmpd_task_close(gmpd_task *t, int status)
{
    gmpd_task_abort(t, status);
    task_detach(t);
}

void gmpd_task_finish(gmpd_task *t)
{
    task_detach(t);
}

static int shard_check(gmpd_task *t, const gmpd_shard *sh)
{
    if (t->final_seen && sh->seq > t->final_seq)
        return GMP_ERR_SEQ; /* nothing comes after the final item */
    if (t->state != TASK_OPEN)
        return t->status ? t->status : GMP_ERR_STATE;
    if (sh->seq < t->next_seq || sh->seq - t->next_seq >= REORDER_SPAN)
        return GMP_ERR_SEQ;
    if (sh->final && t->final_seen)
        return GMP_ERR_SEQ;
    for (gmpd_shard *p = t->pending; p; p = p->next)
        if (p->seq == sh->seq || (p->final && sh->seq > p->seq) ||
            (sh->final && p->seq > sh->seq))
            return GMP_ERR_SEQ;
    return GMP_OK;
}

static void pending_insert(gmpd_task *t, gmpd_shard *sh)
{
    gmpd_shard **pp = &t->pending;
    while (*pp && (*pp)->seq < sh->seq)
        pp = &(*pp)->next;
    sh->next = *pp;
    *pp = sh;
    t->n_pending++;
}

/* Shards are released to the queue strictly in sequence order, under the
 * task lock, so a serial mode's node sees them in order even when they
 * arrived on different connections and io threads, and an item of a
 * parallel task learns here where it sits in the stream (the pre-
 * processing of chaining state R17 gives the workers). */
int gmpd_task_add_shard(gmpd_task *t, gmpd_shard *sh)
{
    pthread_mutex_lock(&t->mu);
    int rc = shard_check(t, sh);
    if (rc != GMP_OK) {
        pthread_mutex_unlock(&t->mu);
        return rc;
    }
    if (sh->final) {
        t->final_seen = true;
        t->final_seq = sh->seq;
    }
    pending_insert(t, sh);
    while (t->pending && t->pending->seq == t->next_seq) {
        gmpd_shard *p = t->pending;
        t->pending = p->next;
        t->n_pending--;
        t->next_seq++;
        if (t->parallel) {
            p->pos = t->stream;
            gmpd_engine_pos_advance(&t->stream, p->buf, p->len);
        }
        gmpd_sched_submit(p);
    }
    pthread_mutex_unlock(&t->mu);
    return GMP_OK;
}

/* Shards in flight per node, shared among the tasks open.  A serial task
 * (SM3, CBC encryption) feeds only its own node, which runs dry whenever
 * its next shards are not there yet.  With 32 per node (two such tasks on
 * two nodes, the cap split between them), on a busy 2-vCPU host the nodes
 * waited 200-400 times a second, 4-9 % of their time; with 64, 1-4 %;
 * 128 did no better (the WAITS column of `gmpoolctl status`,
 * docs/performance.md). */
#define WINDOW_PER_NODE 64u

/* R16: the server window p.  The nodes' budget is shared among the tasks
 * now open, so one large task cannot crowd out small ones, and a lone
 * task gets the whole cap. */
uint32_t gmpd_session_window(void)
{
    uint32_t cap = gmpd->cfg.window_max;
    uint32_t budget = WINDOW_PER_NODE * (uint32_t)gmpd_sched_nodes();
    if (budget < cap)
        budget = cap;
    uint32_t active = gmpd_sched_active_tasks();
    uint32_t p = budget / (active ? active : 1);
    if (p > cap)
        p = cap;
    uint32_t floor = cap < 2 ? cap : 2; /* two: one computing, one on the wire */
    return p < floor ? floor : p;
}

/* A shard whose bytes are in the session's region: no copy, the output
 * goes after the input in the client's slot. */
static gmpd_shard *shard_in_shm(gmpd_session *s, const gmpc_hdr *h,
                                const uint8_t *payload, uint32_t *len,
                                int *rc)
{
    uint32_t off;
    gmpd_shm *m = NULL;
    *rc = GMP_ERR_PROTO;
    if (!gmpc_shm_ref_decode(payload, h->len, &off, len))
        return NULL;
    if (*len > GMP_SHARD_MAX) {
        *rc = GMP_ERR_TOO_BIG;
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    if (s->shm && gmpc_shm_fits(s->shm->size, off,
                                2ull * *len + GMPC_SHM_SPARE)) {
        m = s->shm;
        atomic_fetch_add(&m->refs, 1);
    }
    pthread_mutex_unlock(&s->mu);
    gmpd_shard *sh = m ? calloc(1, sizeof *sh) : NULL;
    if (!sh) {
        *rc = m ? GMP_ERR_NOMEM : GMP_ERR_PROTO;
        shm_unref(m);
        return NULL;
    }
    atomic_fetch_add(&gmpd->shm_items, 1);
    sh->shm = m;
    sh->shm_off = off;
    sh->buf = m->base + off;
    sh->cap = 2 * *len + GMPC_SHM_SPARE;
    return sh;
}

/* Room for the output after the input: an update adds at most a block
 * (padding), a final at most a 64-byte digest or a block and a tag.  Only
 * the header is cleared: the data area is written before read, and
 * zeroing up to 2 MB per shard is pure cost on the hot path. */
static gmpd_shard *shard_copied(const gmpc_hdr *h, const uint8_t *payload,
                                int *rc)
{
    uint32_t cap = 2 * h->len + 16 + 64;
    gmpd_shard *sh = malloc(sizeof *sh + cap);
    if (!sh) {
        *rc = GMP_ERR_NOMEM;
        return NULL;
    }
    memset(sh, 0, sizeof *sh);
    sh->buf = sh->data;
    sh->cap = cap;
    if (h->len)
        memcpy(sh->data, payload, h->len);
    return sh;
}

gmpd_shard *gmpd_shard_new(gmpd_task *t, gmpd_conn *c, const gmpc_hdr *h,
                           const uint8_t *payload, int *rc)
{
    gmpd_session *s = t->sess;
    bool shm = h->flags & GMPC_F_SHM;
    uint32_t len = h->len;
    gmpd_shard *sh = shm ? shard_in_shm(s, h, payload, &len, rc)
                         : shard_copied(h, payload, rc);
    if (!sh)
        return NULL;
    uint64_t held = atomic_fetch_add(&s->buffered, (uint64_t)len);
    sh->len = len; /* counted: gmpd_shard_free gives it back */
    sh->task = t;
    atomic_fetch_add(&t->refs, 1);
    sh->conn = c;
    atomic_fetch_add(&c->refs, 1);
    if (held + len > gmpd->cfg.max_buffered) {
        gmpd_shard_free(sh);
        *rc = GMP_ERR_LIMIT;
        return NULL;
    }
    *rc = GMP_OK;
    sh->seq = h->seq;
    sh->final = h->type == GMPC_T_FINAL;
    return sh;
}

void gmpd_shard_free(gmpd_shard *sh)
{
    if (!sh)
        return;
    atomic_fetch_sub(&sh->task->sess->buffered, (uint64_t)sh->len);
    gmpd_task_unref(sh->task);
    gmpd_conn_unref(sh->conn);
    shm_unref(sh->shm);
    free(sh);
}
