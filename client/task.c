/* The shard pipeline of one task, loop-thread side (R15/R16): send the
 * first m shards at once, then after each result send x = min(p - s, q)
 * more, where p is the window the server returned, s the shards sent but
 * not answered and q the client's own window from its measured network
 * throughput.  Results may arrive out of order over several connections;
 * their output is delivered in sequence order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm.h"
#include "task.h"

static void shard_unref(cshard *sh)
{
    if (--sh->refs <= 0)
        free(sh);
}

/* Wakes the application thread only when what it waits for holds. */
static void wake_locked(gmp_task *t)
{
    if ((t->waiting == WAIT_DONE && task_done_ready(t)) ||
        (t->waiting == WAIT_ROOM && task_room_ready(t)))
        pthread_cond_signal(&t->cv);
}

static void on_shard_written(void *arg)
{
    cshard *sh = arg;
    gmp_task *t = sh->borrower;
    if (t) {
        pthread_mutex_lock(&t->mu);
        t->writes--;
        wake_locked(t);
        pthread_mutex_unlock(&t->mu);
    }
    shard_unref(sh);
}

static void free_list(cshard *sh)
{
    while (sh) {
        cshard *n = sh->next;
        shard_unref(sh);
        sh = n;
    }
}

static void drop_results(gmp_task *t)
{
    while (t->ooo) {
        cres *n = t->ooo->next;
        free(t->ooo);
        t->ooo = n;
    }
}

/* Locked variant: the caller holds t->mu. */
static void fail_locked(gmp_task *t, int status, const char *msg)
{
    if (!t->status) {
        t->status = status;
        snprintf(t->msg, sizeof t->msg, "%s", msg && *msg ? msg
                                                          : gmp_strerror(status));
    }
    free_list(t->q_head);
    t->q_head = t->q_tail = NULL;
    t->q_bytes = 0;
    for (cshard *sh = t->inflight_list; sh; sh = sh->next)
        cshm_park(csess_shm(t->s), sh->slot, t->id, sh->seq);
    free_list(t->inflight_list);
    t->inflight_list = NULL;
    csess_outstanding(t->s, -(int)t->inflight - (t->open_pending ? 1 : 0));
    t->inflight = 0;
    t->open_pending = false;
    drop_results(t);
    if (t->open_op) {
        op_complete(t->open_op, t->status, t->msg);
        t->open_op = NULL;
    }
    wake_locked(t);
}

void task_fail(gmp_task *t, int status, const char *msg)
{
    pthread_mutex_lock(&t->mu);
    fail_locked(t, status, msg);
    pthread_mutex_unlock(&t->mu);
}

/* A lazy (one-shot) open completes once OPEN is written: the data goes
 * after it on the same connection without waiting for OPEN_OK, and an
 * OPEN the daemon refuses fails the task like any other reply. */
void task_send_open(gmp_task *t, op *o)
{
    gmpc_hdr h = {.type = GMPC_T_OPEN, .task_id = t->id, .fresh = t->fresh,
                  .alg = t->alg, .flags = t->flags, .priority = t->priority,
                  .deadline_ms = t->deadline_ms};
    pthread_mutex_lock(&t->mu);
    t->open_op = t->lazy_open ? NULL : o;
    pthread_mutex_unlock(&t->mu);
    csess_route_add(t->s, t->id, t, NULL);
    csess_outstanding(t->s, 1);
    bool small = t->total_len && t->total_len <= 2 * (uint64_t)t->shard;
    int conn = small ? -1 : csess_stream_conn(t->s);
    if (csess_send_on(t->s, &conn, &h, t->open_payload, t->open_len) !=
        GMP_OK) {
        csess_route_del(t->s, t->id);
        csess_outstanding(t->s, -1);
        task_fail(t, GMP_ERR_CONN, "no connection to gmpoold");
        if (t->lazy_open)
            op_complete(o, GMP_ERR_CONN, "no connection to gmpoold");
        return;
    }
    pthread_mutex_lock(&t->mu);
    t->open_pending = true;
    t->pin = conn;
    if (t->lazy_open) {
        t->opened = true;
        t->p = 2;
    }
    pthread_mutex_unlock(&t->mu);
    if (t->lazy_open)
        op_complete(o, GMP_OK, NULL);
}

/* Round-trip time beyond the fastest seen that q must cover: on a busy
 * host a thread of the client or the daemon may wait a scheduler slice
 * (a few ms) before it runs, and the node must not run dry meanwhile.
 * Measured with gmpool-bench (docs/performance.md): with the bare minimum
 * RTT q settled at 3 and SM3 through the pool ran at 0.6 x in-process;
 * with 2 ms the node still ran dry ~1700 times per 192 MB of SM3 (its
 * context switches), with 8 ms (q reaches the window cap) ~300 times, once
 * results also come back in batches of up to 16 shards. */
#define Q_SLACK_NS 8e6

/* q from the network: enough shards to cover throughput x (round trip +
 * slack), at least two so a shard is always on the wire while one
 * computes. */
static void update_q(gmp_task *t, cshard *sh, uint64_t now)
{
    double rtt = (double)(now - sh->sent_ns);
    if (t->rtt_min_ns == 0 || rtt < t->rtt_min_ns)
        t->rtt_min_ns = rtt;
    if (t->last_ack_ns && now > t->last_ack_ns) {
        double bpn = (double)sh->len / (double)(now - t->last_ack_ns);
        t->bytes_per_ns = t->bytes_per_ns ? 0.8 * t->bytes_per_ns + 0.2 * bpn
                                          : bpn;
    }
    t->last_ack_ns = now;
    double bdp = t->bytes_per_ns * (t->rtt_min_ns + Q_SLACK_NS) /
                 (double)t->shard;
    unsigned q = bdp < (double)t->q_cap ? (unsigned)bdp + 2 : t->q_cap;
    t->q = q > t->q_cap ? t->q_cap : q;
}

#define PUMP_BATCH 64

/* Shards of SHM_MIN bytes and more go through the session's region when
 * a slot is free.  Copied there, the caller's bytes are no longer held. */
#define SHM_MIN 512u

static bool to_shm(cshm *m, cshard *sh)
{
    if (sh->len < SHM_MIN || (sh->slot = cshm_take(m)) < 0)
        return false;
    uint32_t off = cshm_off(m, sh->slot);
    memcpy(cshm_at(m, off), sh->data, sh->len);
    gmpc_shm_ref_encode(sh->ref, off, sh->len);
    sh->borrower = NULL;
    return true;
}

/* Moves up to n queued shards in flight and writes them in one go. */
static int send_batch(gmp_task *t, unsigned n, uint64_t now)
{
    csend items[PUMP_BATCH];
    unsigned k = 0, borrowed = 0;
    cshm *m = csess_shm(t->s);
    while (k < n && t->q_head) {
        cshard *sh = t->q_head;
        t->q_head = sh->next;
        if (!t->q_head)
            t->q_tail = NULL;
        t->q_bytes -= sh->len;
        bool shm = to_shm(m, sh);
        items[k] = (csend){
            .h = {.type = sh->final ? GMPC_T_FINAL : GMPC_T_SHARD,
                  .task_id = t->id, .seq = sh->seq, .alg = t->alg,
                  .priority = t->priority, .flags = shm ? GMPC_F_SHM : 0},
            .payload = shm ? sh->ref : sh->data,
            .len = shm ? GMPC_SHM_REF_LEN : sh->len, .arg = sh};
        sh->refs = 2;
        sh->sent_ns = now;
        sh->next = t->inflight_list;
        t->inflight_list = sh;
        borrowed += sh->borrower != NULL;
        k++;
    }
    t->inflight += k;
    if (t->inflight > t->max_inflight)
        t->max_inflight = t->inflight;
    csess_outstanding(t->s, (int)k);
    bool sync;
    int rc = csess_send_many(t->s, t->pin, items, k, on_shard_written,
                             &sync);
    if (rc != GMP_OK || sync) {
        for (unsigned i = 0; i < k; i++)
            ((cshard *)items[i].arg)->refs = 1; /* no write holds it */
        return rc;
    }
    t->writes += borrowed;
    return GMP_OK;
}

/* Shards go out in batches of at least a quarter window while others are
 * in flight: one write, one read and one wake-up on each side carry
 * several shards, and the daemon answers a batch on the connection it
 * came by, in batches again. */
static unsigned min_batch(const gmp_task *t)
{
    unsigned w = t->p < t->q ? t->p : t->q;
    return w / 4 ? w / 4 : 1;
}

/* x = min(p - s, q) (R16), and never more than q_cap in flight: the
 * client's own bound (gmp_options.window), so that window 1 is the
 * synchronous scheme. */
static void pump_locked(gmp_task *t)
{
    if (!t->opened || t->status || t->inflight >= t->p ||
        t->inflight >= t->q_cap)
        return;
    unsigned x = t->p - t->inflight;
    if (x > t->q)
        x = t->q;
    if (x > t->q_cap - t->inflight)
        x = t->q_cap - t->inflight;
    if (t->inflight && x < min_batch(t) &&
        t->q_bytes >= (size_t)min_batch(t) * t->shard)
        return;
    uint64_t now = gmpc_now_ns();
    while (x && t->q_head) {
        unsigned n = x < PUMP_BATCH ? x : PUMP_BATCH;
        if (send_batch(t, n, now) != GMP_OK) {
            fail_locked(t, GMP_ERR_CONN, "no connection to gmpoold");
            return;
        }
        x -= n;
    }
}

void task_pump(gmp_task *t)
{
    pthread_mutex_lock(&t->mu);
    pump_locked(t);
    pthread_mutex_unlock(&t->mu);
}

void task_kicked(gmp_task *t, bool ready)
{
    pthread_mutex_lock(&t->mu);
    t->kick_pending = false;
    if (ready)
        pump_locked(t);
    pthread_mutex_unlock(&t->mu);
}

static void deliver(gmp_task *t, const uint8_t *p, size_t len)
{
    if (len && (!t->out || t->out_cap - t->out_off < len)) {
        fail_locked(t, GMP_ERR_BUFFER, "output buffer too small");
        return;
    }
    if (len)
        memcpy(t->out + t->out_off, p, len);
    t->out_off += len;
    t->next_deliver++;
}

/* Output goes out in sequence order; early results wait in t->ooo. */
static void on_result(gmp_task *t, uint32_t seq, const uint8_t *p,
                      uint32_t len)
{
    if (seq != t->next_deliver) {
        cres *r = malloc(sizeof *r + len);
        if (!r) {
            fail_locked(t, GMP_ERR_NOMEM, "out of memory");
            return;
        }
        r->seq = seq;
        r->len = len;
        memcpy(r->data, p, len);
        cres **pp = &t->ooo;
        while (*pp && (*pp)->seq < r->seq)
            pp = &(*pp)->next;
        r->next = *pp;
        *pp = r;
        return;
    }
    deliver(t, p, len);
    while (!t->status && t->ooo && t->ooo->seq == t->next_deliver) {
        cres *r = t->ooo;
        t->ooo = r->next;
        deliver(t, r->data, r->len);
        free(r);
    }
}

static cshard *take_inflight(gmp_task *t, uint32_t seq)
{
    for (cshard **pp = &t->inflight_list; *pp; pp = &(*pp)->next)
        if ((*pp)->seq == seq) {
            cshard *sh = *pp;
            *pp = sh->next;
            return sh;
        }
    return NULL;
}

/* The reply's output: its payload, or a reference into the shard's own
 * slot (GMPC_F_SHM); NULL when the reference points anywhere else. */
static const uint8_t *reply_bytes(gmp_task *t, const cshard *sh,
                                  const gmpc_hdr *h, const uint8_t *p,
                                  uint32_t *len)
{
    uint32_t off;
    cshm *m = csess_shm(t->s);
    *len = h->len;
    if (!(h->flags & GMPC_F_SHM))
        return p;
    if (!m || !gmpc_shm_ref_decode(p, h->len, &off, len) ||
        !cshm_in_slot(m, sh->slot, off, *len))
        return NULL;
    return cshm_at(m, off);
}

static void on_shard_reply(gmp_task *t, const gmpc_hdr *h, const uint8_t *p)
{
    cshard *sh = take_inflight(t, h->seq);
    if (!sh)
        return; /* not ours (late, or already failed) */
    csess_outstanding(t->s, -1);
    t->inflight--;
    update_q(t, sh, gmpc_now_ns());
    uint32_t len;
    const uint8_t *out = reply_bytes(t, sh, h, p, &len);
    if (h->window)
        t->p = h->window;
    if (out)
        on_result(t, h->seq, out, len);
    else
        fail_locked(t, GMP_ERR_PROTO, "gmpoold: a result outside its slot");
    cshm_put(csess_shm(t->s), sh->slot); /* the daemon is done with it */
    shard_unref(sh);
    /* Done once everything up to the final item is delivered: results of
     * other connections may still be on their way after FINAL_OK. */
    if (t->final_queued && t->next_deliver > t->final_seq && !t->status) {
        t->finished = true;
        csess_route_del(t->s, t->id);
    }
    csess_pump_later(t->s, t);
    wake_locked(t);
}

/* An ERROR answers its item: the daemon is done with its slot. */
static void drop_answered(gmp_task *t, uint32_t seq)
{
    cshard *sh = take_inflight(t, seq);
    if (!sh)
        return;
    csess_outstanding(t->s, -1);
    t->inflight--;
    cshm_put(csess_shm(t->s), sh->slot);
    shard_unref(sh);
}

void task_on_frame(gmp_task *t, const gmpc_hdr *h, const uint8_t *p)
{
    pthread_mutex_lock(&t->mu);
    switch (h->type) {
    case GMPC_T_OPEN_OK:
        if (t->open_pending)
            csess_outstanding(t->s, -1);
        t->open_pending = false;
        t->opened = true;
        t->p = h->window ? h->window : 2;
        if (t->open_op) {
            op_complete(t->open_op, GMP_OK, NULL);
            t->open_op = NULL;
        }
        pump_locked(t);
        break;
    case GMPC_T_RESULT:
    case GMPC_T_FINAL_OK:
        on_shard_reply(t, h, p);
        break;
    case GMPC_T_ERROR: {
        char msg[GMPC_MAX_MSG + 16];
        drop_answered(t, h->seq);
        snprintf(msg, sizeof msg, "gmpoold: %.*s",
                 (int)(h->len < GMPC_MAX_MSG ? h->len : GMPC_MAX_MSG), p);
        csess_route_del(t->s, t->id);
        fail_locked(t, h->status ? h->status : GMP_ERR_PROTO, msg);
        break;
    }
    default:
        break;
    }
    pthread_mutex_unlock(&t->mu);
}

void task_on_free(gmp_task *t, op *o)
{
    pthread_mutex_lock(&t->mu);
    /* A failed task also waits in the daemon's table until dropped. */
    bool abort_remote = t->opened && !t->finished;
    fail_locked(t, GMP_ERR_STATE, "task freed");
    pthread_mutex_unlock(&t->mu);
    csess_route_del(t->s, t->id);
    if (abort_remote) {
        gmpc_hdr h = {.type = GMPC_T_ABORT, .task_id = t->id};
        csess_send(t->s, &h, NULL, 0);
    }
    op_complete(o, GMP_OK, NULL);
}
