/* Local compute nodes (worker threads) and the dispatcher that moves jobs
 * from the per-VCM priority queues (R3/R4) into each node's down queue.
 * There is no dispatcher thread: whoever changes the picture (a submit, a
 * finished job) pumps under the one scheduler mutex, so a freed node slot
 * is refilled at once. */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmpd.h"
#include "gmpool.h"
#include "ttsa.h"
#include "util.h"

/* Jobs a node may hold beyond the one it computes: enough to hide the
 * hand-over, few enough that R4 priorities still decide the order. */
#define DOWN_DEPTH 2

typedef struct worker {
    pthread_t th;
    uint32_t node;
    pthread_cond_t cv;
    gmpd_shard *head, *tail;
    int depth;
    bool busy;
    const gmpd_task *cur;    /* task of the job being computed */
    unsigned incoming;       /* serial tasks moving here */
    bool parked;             /* stopped by ScaleDown: no new tasks */
    bool admin_down;         /* `node down` by the operator */
    gmpd_rate rate;
    uint64_t waits, wait_ns; /* idle with tasks bound: waiting for shards */
} worker;

typedef struct vcm_queue {
    uint32_t vcm;
    gmpd_pqueue *q;
} vcm_queue;

static struct {
    pthread_mutex_t mu;
    gmpd_nodeset *ns;
    worker *w;
    int n;
    bool stop;
    vcm_queue *vq;
    size_t n_vq, cap_vq;
    size_t rr;
    uint32_t active_tasks;
    uint64_t inflight;
    uint64_t moves;          /* serial tasks moved to an idle node */
    int idle;                /* workers neither computing nor holding jobs */
    /* TTSA (R8-R13): this host is the model's one server, each node one
     * VCM; see docs/scheduling.md "TTSA in gmpoold". */
    gmpd_ttsa *tt;
    const gmpd_node_ops *ops;
    void *ops_arg;
    uint32_t vcm_node[GMPD_TTSA_MAX_VCMS + 1]; /* model VCM -> node; kept
                                                  after stop for the log */
    uint32_t node_vcm[GMPD_MAX_NODES + 1];     /* node -> VCM, 0 = stopped */
    uint64_t next_tid;
    double speed[GMPD_SVC_COUNT];              /* mean node speed, MB/s */
    uint32_t nodes_min;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static worker *worker_of(uint32_t node)
{
    return node >= 1 && node <= (uint32_t)S.n ? &S.w[node - 1] : NULL;
}

static bool node_serves(const gmpd_node *nd, uint32_t vcm, gmpd_svc svc);

/* Neither computing nor holding jobs (S.idle counts these). */
static bool worker_idle(const worker *w)
{
    return !w->busy && !w->head;
}

/* ---- serial tasks follow idle nodes ----
 * A serial task's chaining state lives in the task, so any local node may
 * continue it once none of its jobs waits or runs on its current node.
 * Placement balances tasks by their declared bytes, but two nodes never
 * run at quite the same speed (less so on a VM's CPUs): the node that
 * finishes its tasks first would idle while the other still has several,
 * and the slowest task decides when a batch of jobs is done.  So a node
 * with nothing to do takes over a task from a busy node that has at least
 * two tasks more.  Moving on any idle moment instead (a node waiting for
 * its tasks' next shards) moved ~500 tasks a second to and fro for no
 * measurable gain. */

static bool task_on(const worker *w, const gmpd_task *t)
{
    if (w->cur == t)
        return true;
    for (const gmpd_shard *s = w->head; s; s = s->next)
        if (s->task == t)
            return true;
    return false;
}

/* An idle node that may serve t and has two tasks fewer than t's node w. */
static worker *idle_for(const gmpd_task *t, const worker *w)
{
    const gmpd_node *from = gmpd_nodeset_get(S.ns, w->node);
    /* Asked for every job a full node refuses: the count spares the walk
     * over the nodes while all of them are busy, the usual case. */
    if (!S.idle || t->ttsa_id || !from || from->tasks < 2)
        return NULL;  /* the TTSA model keeps its own placement */
    for (int i = 0; i < S.n; i++) {
        worker *v = &S.w[i];
        const gmpd_node *to = gmpd_nodeset_get(S.ns, v->node);
        if (v != w && worker_idle(v) && !v->incoming &&
            from->tasks >= to->tasks + 2 &&
            node_serves(to, t->sess->tenant.vcm, t->svc))
            return v;
    }
    return NULL;
}

static void move_task(gmpd_task *t)
{
    uint64_t left = t->placed_len > t->done_len ? t->placed_len - t->done_len
                                                : 0;
    gmpd_nodeset_move(S.ns, t->node, t->move_to, left);
    worker_of(t->move_to)->incoming--;
    t->node = t->move_to;
    t->move_to = 0;
    S.moves++;
}

/* The node a serial task's next job goes to, or NULL while it waits for
 * its jobs on the node it leaves. */
static worker *serial_worker(gmpd_task *t)
{
    worker *w = worker_of(t->node);
    if (w && !t->move_to && w->depth >= DOWN_DEPTH) {
        worker *v = idle_for(t, w);
        if (v) {
            t->move_to = v->node;
            v->incoming++;
        }
    }
    if (w && t->move_to) {
        if (task_on(w, t))
            return NULL;
        if (node_serves(gmpd_nodeset_get(S.ns, t->move_to),
                        t->sess->tenant.vcm, t->svc))
            move_task(t);
        else { /* parked or taken down meanwhile */
            worker_of(t->move_to)->incoming--;
            t->move_to = 0;
        }
        w = worker_of(t->node);
    }
    return w;
}

/* A job of a parallel task (node 0) goes to the least loaded node that
 * may serve its task, the task's own node on a tie. */
static worker *pick_worker(const gmpd_job *j)
{
    if (j->node)
        return serial_worker(j->owner);
    const gmpd_task *t = j->owner;
    worker *best = NULL;
    for (int i = 0; i < S.n; i++) {
        worker *w = &S.w[i];
        const gmpd_node *nd = gmpd_nodeset_get(S.ns, w->node);
        if (w->node != t->node &&
            !node_serves(nd, t->sess->tenant.vcm, t->svc))
            continue;
        if (!best || w->depth < best->depth ||
            (w->depth == best->depth && w->node == t->node))
            best = w;
    }
    return best;
}

/* The pop's acceptance test; *arg gets the worker, so that the job taken
 * (the first accepted) needs no second pick. */
static bool node_has_room(const gmpd_job *j, void *arg)
{
    worker *w = pick_worker(j);
    *(worker **)arg = w;
    return w && w->depth < DOWN_DEPTH;
}

static gmpd_pqueue *vcm_q(uint32_t vcm)
{
    for (size_t i = 0; i < S.n_vq; i++)
        if (S.vq[i].vcm == vcm)
            return S.vq[i].q;
    if (S.n_vq == S.cap_vq) {
        size_t cap = S.cap_vq ? S.cap_vq * 2 : 8;
        vcm_queue *v = realloc(S.vq, cap * sizeof *v);
        if (!v)
            return NULL;
        S.vq = v;
        S.cap_vq = cap;
    }
    gmpd_pqueue *q = gmpd_pq_new();
    if (!q)
        return NULL;
    for (unsigned l = 0; l < GMPD_PRIO_LEVELS; l++) {
        gmpd_threshold t = {gmpd->cfg.thresholds[l],
                            (uint64_t)gmpd->cfg.wait_ms[l] * 1000000u};
        gmpd_pq_set_threshold(q, l, t);
    }
    S.vq[S.n_vq++] = (vcm_queue){vcm, q};
    return q;
}

static void down_push(worker *w, gmpd_shard *s)
{
    if (worker_idle(w))
        S.idle--;
    s->next = NULL;
    if (w->tail)
        w->tail->next = s;
    else
        w->head = s;
    w->tail = s;
    w->depth++;
    S.inflight++;
    pthread_cond_signal(&w->cv);
}

/* When every node's down queue is full nothing can move: no need to walk
 * the priority queues (a large task keeps dozens of shards there). */
static bool any_room(void)
{
    for (int i = 0; i < S.n; i++)
        if (S.w[i].depth < DOWN_DEPTH)
            return true;
    return false;
}

/* Round-robin over VCMs (tenants are isolated from each other); inside a
 * VCM the R4 policy picks. */
static void pump(void)
{
    uint64_t now = gmpc_now_ns();
    bool moved = true;
    while (moved && S.n_vq && any_room()) {
        moved = false;
        for (size_t k = 0; k < S.n_vq; k++) {
            size_t i = (S.rr + k) % S.n_vq;
            worker *w = NULL;
            gmpd_job *j = gmpd_pq_pop(S.vq[i].q, now, node_has_room, &w);
            if (!j)
                continue;
            down_push(w, (gmpd_shard *)j);
            S.rr = i + 1;
            moved = true;
        }
    }
}

void gmpd_sched_submit(gmpd_shard *s)
{
    gmpd_task *t = s->task;
    s->job.priority = t->priority;
    s->job.type = (uint8_t)t->svc;
    s->job.id = t->id;
    s->job.len = s->len;
    s->job.node = t->parallel ? 0 : t->node;
    s->job.owner = t;
    pthread_mutex_lock(&S.mu);
    gmpd_pqueue *q = vcm_q(t->sess->tenant.vcm);
    if (!q) {
        pthread_mutex_unlock(&S.mu);
        s->status = GMP_ERR_NOMEM;
        gmpd_net_post_result(s);
        return;
    }
    gmpd_pq_push(q, &s->job, gmpc_now_ns());
    pump();
    pthread_mutex_unlock(&S.mu);
}

/* The context node `node` computes task t with: the task's own on its
 * node; for a parallel task elsewhere, that node's copy, made on first use
 * (only this node's worker touches its slot). */
static gmpd_engine_ctx *node_ctx(gmpd_task *t, uint32_t node, int *status)
{
    if (!t->parallel || node == t->node)
        return t->ctx;
    if (node >= t->n_node_ctx)
        return NULL;
    if (!t->node_ctx[node])
        t->node_ctx[node] = gmpd_engine_new(t->alg, &t->args, status);
    return t->node_ctx[node];
}

/* A serial task runs on its node only, in sequence order, so the chaining
 * state in t->ctx needs no lock.  An item of a parallel task computes from
 * its stream position on whichever node took it; its task may already
 * have answered its final item (results travel in any order). */
static void compute(gmpd_shard *s, uint32_t node)
{
    gmpd_task *t = s->task;
    pthread_mutex_lock(&t->mu);
    bool live = t->state == TASK_OPEN ||
                (t->parallel && t->state == TASK_DONE && !s->final);
    int st = t->status;
    pthread_mutex_unlock(&t->mu);
    if (!live) {
        s->status = st ? st : GMP_ERR_STATE;
        return;
    }
    uint8_t *out = s->buf + s->len;
    size_t outl = 0;
    s->status = GMP_ERR_INTERNAL;
    gmpd_engine_ctx *ctx = node_ctx(t, node, &s->status);
    if (ctx && t->parallel) {
        s->status = gmpd_engine_update_at(ctx, &s->pos, s->buf, s->len,
                                          s->final, out, &outl);
    } else if (ctx) {
        s->status = GMP_OK;
        if (s->len)
            s->status = gmpd_engine_update(ctx, s->buf, s->len, out, &outl);
        if (s->status == GMP_OK && s->final) {
            size_t fl = 0;
            s->status = gmpd_engine_final(ctx, out + outl, &fl);
            outl += fl;
        }
    }
    s->out_len = (uint32_t)outl;
    if (s->status != GMP_OK || s->final) {
        pthread_mutex_lock(&t->mu);
        if (t->state == TASK_OPEN)
            t->state = s->status == GMP_OK ? TASK_DONE : TASK_FAILED;
        if (s->status != GMP_OK && !t->status)
            t->status = s->status;
        pthread_mutex_unlock(&t->mu);
    }
}

/* A node's results wait for a few more of its shards (RESULT_BATCH at
 * most, and RESULT_HOLD_NS since the first) so that one wake-up of an io
 * thread carries several: on a small VM each cross-CPU wake-up costs the
 * computing core more than a 16 KB shard's copies.  At 16 KB and 250 MB/s
 * a shard takes ~65 us, so the earlier 150 us hold flushed every 2-3
 * shards; 600 us halved the io threads' wake-ups.  They go at once when
 * the node has nothing else to do, and with a final result: an application
 * waits for it, and a small job is nothing else (small jobs beside bulk
 * work on one node: p50 750 -> 200 us, docs/performance.md step 14).  Held
 * results still count in S.inflight, so the shutdown drain waits for them. */
#define RESULT_BATCH 16
#define RESULT_HOLD_NS 600000u

/* ---- small jobs beside bulk work ----
 * A small job's frame waits for an io thread, and a SCHED_BATCH io thread
 * (net.c) waits for a computing node's time slice to end: 3-4 ms on this
 * kernel, so small jobs beside bulk work on every core saw p99 ~8 ms.
 * While small jobs come in (one in the last SMALL_RECENT_NS), a busy node
 * yields every SMALL_YIELD_NS, so their frames are read within about that
 * (p99 ~8 -> ~1.5 ms, docs/performance.md step 15).  Only then: yielding
 * always cost bulk work ~3 % more transport CPU (the io threads' switches
 * rose from ~580 to ~3 200 a second at four SM3 threads). */
#define SMALL_JOB_MAX (64u * 1024u)
#define SMALL_RECENT_NS 100000000u
#define SMALL_YIELD_NS 250000u

static _Atomic uint64_t g_small_ns; /* when the last small job came in */

void gmpd_sched_note_open(uint64_t len)
{
    if (len && len <= SMALL_JOB_MAX)
        atomic_store_explicit(&g_small_ns, gmpc_now_ns(),
                              memory_order_relaxed);
}

static bool small_jobs_waiting(uint64_t now, uint64_t last_yield)
{
    uint64_t small = atomic_load_explicit(&g_small_ns, memory_order_relaxed);
    return small && now - small < SMALL_RECENT_NS &&
           now - last_yield >= SMALL_YIELD_NS;
}

typedef struct held {
    gmpd_shard *head, **tail;
    unsigned n;
    uint64_t since;
} held;

static unsigned held_flush(held *h)
{
    unsigned n = h->n;
    if (n)
        gmpd_net_post_results(h->head);
    h->head = NULL;
    h->tail = &h->head;
    h->n = 0;
    return n;
}

static void held_add(held *h, gmpd_shard *s, uint64_t now)
{
    s->next = NULL;
    *h->tail = s;
    h->tail = &s->next;
    if (h->n++ == 0)
        h->since = now;
}

/* Sleeps until a job comes or the scheduler stops.  A node that sleeps
 * while tasks are bound to it waits for their next shards: counted, as
 * it shows windows too small to cover the round trip to the clients. */
static void wait_for_jobs(worker *w)
{
    if (w->head || S.stop)
        return;
    const gmpd_node *n = gmpd_nodeset_get(S.ns, w->node);
    uint64_t t0 = 0;
    if (n && n->tasks) {
        w->waits++;
        t0 = gmpc_now_ns();
    }
    while (!w->head && !S.stop)
        pthread_cond_wait(&w->cv, &S.mu);
    if (t0)
        w->wait_ns += gmpc_now_ns() - t0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    held h = {NULL, &h.head, 0, 0};
    uint64_t last_yield = 0;
    pthread_mutex_lock(&S.mu);
    for (;;) {
        if (!w->head && h.n) { /* about to sleep: answer first */
            pthread_mutex_unlock(&S.mu);
            unsigned n = held_flush(&h);
            pthread_mutex_lock(&S.mu);
            S.inflight -= n;
            continue;
        }
        wait_for_jobs(w);
        if (!w->head)
            break;
        gmpd_shard *s = w->head;
        w->head = s->next;
        if (!w->head)
            w->tail = NULL;
        w->busy = true;
        w->cur = s->task;
        pthread_mutex_unlock(&S.mu);
        compute(s, w->node);
        uint32_t len = s->len;
        uint32_t placed = s->task->node; /* where placement counted it */
        /* Before held_add: once its result is posted the task may go.
         * Read under S.mu, by move_task, only after w->cur no longer
         * points at the task (set under the lock below). */
        if (!s->task->parallel)
            s->task->done_len += len;
        uint64_t now = gmpc_now_ns();
        bool final = s->final;
        held_add(&h, s, now);
        unsigned posted = 0;
        if (final || h.n >= RESULT_BATCH || now - h.since >= RESULT_HOLD_NS)
            posted = held_flush(&h);
        /* A final result is awaited: the io thread just woken runs
         * SCHED_BATCH (net.c) and would wait for this node's time slice
         * to end, so the node hands it the core (one small job at a time
         * beside bulk work on every node: p50 2.5-3.3 -> 0.2-0.9 ms,
         * docs/performance.md step 14); so it does every quarter of a
         * millisecond while small jobs come in (above).  On an idle core
         * it returns at once. */
        if (final || small_jobs_waiting(now, last_yield)) {
            sched_yield();
            last_yield = now;
        }
        pthread_mutex_lock(&S.mu);
        w->busy = false;
        w->cur = NULL;
        w->depth--;
        if (worker_idle(w))
            S.idle++;
        S.inflight -= posted;
        gmpd_nodeset_done(S.ns, placed, len, 1);
        gmpd_rate_add(&w->rate, len, now);
        pump();
    }
    pthread_mutex_unlock(&S.mu);
    return NULL;
}

/* ---- starting and stopping nodes (gmpd_node_ops) ---- */

/* A node serves new tasks unless ScaleDown parked it or the operator took
 * it down; the two are kept apart so neither undoes the other. */
static void node_apply(const worker *w)
{
    bool up = !w->parked && !w->admin_down;
    gmpd_nodeset_set_status(S.ns, w->node,
                            up ? GMPD_NODE_UP : GMPD_NODE_DOWN);
}

/* Local nodes are worker threads: unparking makes placement see the node
 * again; parking hides it.  A parked thread still drains the jobs of
 * tasks already bound to it (their chaining state lives there), then
 * sleeps on its condition variable, which nothing signals until a job is
 * pushed to it. */
static int local_start(void *arg, uint32_t node)
{
    (void)arg;
    worker *w = worker_of(node);
    if (!w || !w->parked)
        return -1;
    w->parked = false;
    node_apply(w);
    gmpd_log(GMPD_INFO, "node %u unparked", node);
    return 0;
}

static void local_stop(void *arg, uint32_t node)
{
    (void)arg;
    worker *w = worker_of(node);
    if (!w || w->parked)
        return;
    w->parked = true;
    node_apply(w);
    gmpd_log(GMPD_INFO, "node %u parked", node);
}

static const gmpd_node_ops local_ops = {"local threads", local_start,
                                        local_stop};

/* ---- TTSA: the model's hands (called under S.mu) ---- */

/* ScaleUp made VCM `vcm`: bind it to the lowest stopped node the
 * operator has not taken down, and start that node. */
static int tt_vcm_start(void *arg, uint32_t vcm, uint32_t host,
                        const gmpd_ttsa_res *type)
{
    (void)arg, (void)host, (void)type;
    for (int i = 0; i < S.n; i++) {
        worker *w = &S.w[i];
        if (S.node_vcm[w->node] || w->admin_down ||
            S.ops->start(S.ops_arg, w->node) != 0)
            continue;
        S.node_vcm[w->node] = vcm;
        S.vcm_node[vcm] = w->node;
        return 0;
    }
    return -1;
}

static void tt_vcm_stop(void *arg, uint32_t vcm)
{
    (void)arg;
    uint32_t node = vcm <= GMPD_TTSA_MAX_VCMS ? S.vcm_node[vcm] : 0;
    if (!node || S.node_vcm[node] != vcm)
        return;
    S.node_vcm[node] = 0;
    S.ops->stop(S.ops_arg, node);
}

/* Work of a task in model units: 1 unit = 1 MB of SM3 on a mean node,
 * so a node's capacity c(v) is the mean SM3 speed and a cipher task of
 * the same size weighs more by the ratio of the measured speeds. */
static double work_units(gmpd_svc svc, uint64_t len)
{
    double mb = (double)len / 1e6;
    double sp = S.speed[svc] > 0 ? S.speed[svc] : S.speed[GMPD_SVC_HASH];
    return mb * S.speed[GMPD_SVC_HASH] / sp;
}

static void mean_speeds(void)
{
    for (int k = 0; k < GMPD_SVC_COUNT; k++) {
        double sum = 0;
        for (int i = 0; i < S.n; i++)
            sum += gmpd_nodeset_get(S.ns, S.w[i].node)->speed[k];
        S.speed[k] = S.n ? sum / S.n : 0;
    }
    if (!(S.speed[GMPD_SVC_HASH] > 0))
        S.speed[GMPD_SVC_HASH] = 1;   /* keeps the model's units finite */
}

static gmpd_ttsa_params ttsa_params(void)
{
    const gmpd_config *c = &gmpd->cfg;
    gmpd_ttsa_params p;
    gmpd_ttsa_defaults(&p);
    double unit = S.speed[GMPD_SVC_HASH];
    p.variant = (gmpd_ttsa_variant)c->ttsa_variant;
    p.band_lo = c->band_low / 100.0;
    p.band_hi = c->band_high / 100.0;
    p.mb_per_mi = 8;        /* a busy node moves its speed in Mb/s */
    p.vcm_create_ns = 0;    /* unparking a thread is immediate */
    p.period_ns = (uint64_t)c->scale_period_ms * 1000000u;
    p.idle_grace_ns = (uint64_t)c->node_idle_ms * 1000000u;
    p.min_vcms = S.nodes_min;
    p.n_types = 1;          /* local threads are alike */
    p.types[0] = (gmpd_ttsa_res){unit, 1, unit * 8};
    return p;
}

/* One server (this host, its bandwidth the sum of its nodes' rates, room
 * for exactly S.n VCMs) and nodes_min running VCMs. */
static int ttsa_setup(void)
{
    int n = gmpd->cfg.nodes_min;
    S.nodes_min = (uint32_t)(n <= 0 || n > S.n ? S.n : n);
    S.ops = &local_ops;
    for (int i = 0; i < S.n; i++) {
        S.w[i].parked = true;
        node_apply(&S.w[i]);
    }
    mean_speeds();
    gmpd_ttsa_params p = ttsa_params();
    gmpd_ttsa_ops ops = {.vcm_start = tt_vcm_start, .vcm_stop = tt_vcm_stop};
    S.tt = gmpd_ttsa_new(&p, &ops, NULL);
    uint64_t now = gmpc_now_ns();
    double unit = p.types[0].mips;
    gmpd_ttsa_res host = {unit * S.n, S.n, unit * 8 * S.n};
    if (!S.tt || gmpd_ttsa_add_host(S.tt, &host, true, now) != 1)
        return GMP_ERR_INTERNAL;
    for (uint32_t i = 0; i < S.nodes_min; i++)
        if (gmpd_ttsa_add_vcm(S.tt, 1, 0, now) < 0)
            return GMP_ERR_INTERNAL;
    return GMP_OK;
}

int gmpd_sched_start(int n_nodes)
{
    S.ns = gmpd_nodeset_new();
    S.w = calloc((size_t)n_nodes, sizeof *S.w);
    if (!S.ns || !S.w)
        return GMP_ERR_NOMEM;
    for (int i = 0; i < n_nodes; i++) {
        worker *w = &S.w[i];
        w->node = (uint32_t)i + 1;
        pthread_cond_init(&w->cv, NULL);
        /* R5: each node's speed per service type, measured on this host. */
        double speed[GMPD_SVC_COUNT];
        for (int k = 0; k < GMPD_SVC_COUNT; k++)
            speed[k] = gmpd_engine_measure((gmpd_svc)k);
        gmpd_nodeset_add(S.ns, w->node, speed);
        gmpd_log(GMPD_INFO, "node %u up: sm3 %.0f MB/s, sm4 %.0f MB/s",
                 w->node, speed[GMPD_SVC_HASH], speed[GMPD_SVC_CIPHER]);
    }
    S.n = n_nodes;
    S.idle = n_nodes;
    int rc = ttsa_setup();
    if (rc != GMP_OK) {
        S.n = 0;   /* no threads to join in gmpd_sched_stop */
        return rc;
    }
    for (int i = 0; i < n_nodes; i++) {
        if (pthread_create(&S.w[i].th, NULL, worker_main, &S.w[i]) != 0)
            return GMP_ERR_INTERNAL;
        gmpc_thread_name(S.w[i].th, "gmpd-node", (int)S.w[i].node);
    }
    return GMP_OK;
}

void gmpd_sched_stop(void)
{
    pthread_mutex_lock(&S.mu);
    S.stop = true;
    for (int i = 0; i < S.n; i++)
        pthread_cond_signal(&S.w[i].cv);
    pthread_mutex_unlock(&S.mu);
    for (int i = 0; i < S.n; i++) {
        pthread_join(S.w[i].th, NULL);
        pthread_cond_destroy(&S.w[i].cv);
    }
    for (size_t i = 0; i < S.n_vq; i++)
        gmpd_pq_free(S.vq[i].q);
    free(S.vq);
    free(S.w);
    gmpd_nodeset_free(S.ns);
    gmpd_ttsa_free(S.tt);
    S.tt = NULL;
    memset(S.vcm_node, 0, sizeof S.vcm_node);
    memset(S.node_vcm, 0, sizeof S.node_vcm);
    S.vq = NULL;
    S.n_vq = S.cap_vq = 0;
    S.w = NULL;
    S.n = 0;
    S.ns = NULL;
    S.stop = false;
}

/* May node nd take a new task of VCM vcm for svc?  The rule of
 * gmpd_nodeset_place: the tenant's own UP nodes, else the free pool. */
static bool node_serves(const gmpd_node *nd, uint32_t vcm, gmpd_svc svc)
{
    uint32_t owner = 0;
    for (int i = 0; vcm && i < S.n && !owner; i++) {
        const gmpd_node *o = gmpd_nodeset_get(S.ns, S.w[i].node);
        if (o->owner_vcm == vcm && o->status[svc] == GMPD_NODE_UP &&
            o->speed[svc] > 0)
            owner = vcm;
    }
    return nd->owner_vcm == owner && nd->status[svc] == GMPD_NODE_UP &&
           nd->speed[svc] > 0;
}

/* TTSA placement (R10/R11) of a deadline task; 0 when the model has no
 * answer the tenant may use (window full, the chosen node is the
 * operator's `down` or not in the tenant's pool): the caller then places
 * by speed. */
static uint32_t ttsa_place(gmpd_task *t, uint64_t len, uint64_t now)
{
    uint64_t tid = ++S.next_tid;
    uint64_t d = now + (uint64_t)t->deadline_ms * 1000000u;
    uint32_t v = 0;
    if (!S.tt || gmpd_ttsa_place(S.tt, tid, work_units(t->svc, len), d, now,
                                 &v) != 0)
        return 0;
    uint32_t id = v <= GMPD_TTSA_MAX_VCMS ? S.vcm_node[v] : 0;
    gmpd_node *nd = id ? gmpd_nodeset_get(S.ns, id) : NULL;
    if (!nd || !node_serves(nd, t->sess->tenant.vcm, t->svc)) {
        gmpd_ttsa_drop(S.tt, tid, now);   /* placed by speed, not run here */
        return 0;
    }
    nd->queued_bytes += len;   /* the accounting gmpd_nodeset_place does */
    nd->tasks++;
    t->ttsa_id = tid;
    return id;
}

void gmpd_sched_place(gmpd_task *t, uint64_t len)
{
    uint64_t now = gmpc_now_ns();
    pthread_mutex_lock(&S.mu);
    uint32_t id = t->deadline_ms ? ttsa_place(t, len, now) : 0;
    if (!id) {
        gmpd_node *n = gmpd_nodeset_place(S.ns, t->sess->tenant.vcm, t->svc,
                                          len);
        id = n ? n->id : 0;
    }
    if (id)
        S.active_tasks++;
    pthread_mutex_unlock(&S.mu);
    t->node = id;
}

void gmpd_sched_tick(void)
{
    pthread_mutex_lock(&S.mu);
    if (S.tt)
        gmpd_ttsa_tick(S.tt, gmpc_now_ns());
    pthread_mutex_unlock(&S.mu);
}

/* A quarter period, so ScaleDown runs at most a quarter late. */
uint64_t gmpd_sched_tick_ms(void)
{
    uint64_t ms = gmpd->cfg.scale_period_ms / 4;
    return ms < 10 ? 10 : ms > 250 ? 250 : ms;
}

void gmpd_sched_task_end(gmpd_task *t)
{
    pthread_mutex_lock(&S.mu);
    if (t->ttsa_id && S.tt)
        gmpd_ttsa_finish(S.tt, t->ttsa_id, gmpc_now_ns());
    gmpd_nodeset_task_end(S.ns, t->node);
    if (t->move_to) {
        worker_of(t->move_to)->incoming--;
        t->move_to = 0;
    }
    if (S.active_tasks)
        S.active_tasks--;
    pthread_mutex_unlock(&S.mu);
}

typedef struct cancel_ctx {
    gmpd_shard *list;
} cancel_ctx;

static void cancel_one(gmpd_job *j, void *arg)
{
    cancel_ctx *c = arg;
    gmpd_shard *s = (gmpd_shard *)j;
    s->next = c->list;
    c->list = s;
}

size_t gmpd_sched_cancel(gmpd_task *t)
{
    cancel_ctx c = {NULL};
    size_t n = 0;
    pthread_mutex_lock(&S.mu);
    gmpd_pqueue *q = vcm_q(t->sess->tenant.vcm);
    if (q)
        n = gmpd_pq_remove_owner(q, t, cancel_one, &c);
    pthread_mutex_unlock(&S.mu);
    /* Answered as failed so the client is never left waiting. */
    int status = t->status ? t->status : GMP_ERR_STATE;
    for (gmpd_shard *s = c.list; s; s = s->next)
        s->status = status;
    gmpd_net_post_results(c.list);
    return n;
}

bool gmpd_sched_idle(void)
{
    pthread_mutex_lock(&S.mu);
    bool idle = S.inflight == 0;
    for (size_t i = 0; idle && i < S.n_vq; i++)
        idle = gmpd_pq_depth(S.vq[i].q, -1) == 0;
    pthread_mutex_unlock(&S.mu);
    return idle;
}

uint32_t gmpd_sched_active_tasks(void)
{
    pthread_mutex_lock(&S.mu);
    uint32_t n = S.active_tasks;
    pthread_mutex_unlock(&S.mu);
    return n;
}

int gmpd_sched_nodes(void)
{
    return S.n;
}

int gmpd_sched_assign(uint32_t node, uint32_t vcm)
{
    pthread_mutex_lock(&S.mu);
    int rc = gmpd_nodeset_assign(S.ns, node, vcm);
    pthread_mutex_unlock(&S.mu);
    return rc == 0 ? GMP_OK : GMP_ERR_NOT_FOUND;
}

/* R5: a node leaves or rejoins service while the pool runs. */
int gmpd_sched_node_status(uint32_t node, bool up)
{
    pthread_mutex_lock(&S.mu);
    worker *w = worker_of(node);
    int rc = w ? 0 : -1;
    if (w) {
        w->admin_down = !up;
        node_apply(w);
    }
    pthread_mutex_unlock(&S.mu);
    if (rc == 0)
        gmpd_log(GMPD_INFO, "node %u %s", node, up ? "up" : "down");
    return rc == 0 ? GMP_OK : GMP_ERR_NOT_FOUND;
}

int gmpd_sched_set_threshold(uint32_t vcm, unsigned level, uint32_t count,
                             uint32_t wait_ms)
{
    if (level >= GMPD_PRIO_LEVELS)
        return GMP_ERR_ARG;
    gmpd_threshold t = {count, (uint64_t)wait_ms * 1000000u};
    int rc = GMP_OK;
    pthread_mutex_lock(&S.mu);
    if (vcm == 0) {
        /* 0 = every VCM, now and later */
        gmpd->cfg.thresholds[level] = count;
        gmpd->cfg.wait_ms[level] = wait_ms;
        for (size_t i = 0; i < S.n_vq; i++)
            gmpd_pq_set_threshold(S.vq[i].q, level, t);
    } else {
        gmpd_pqueue *q = vcm_q(vcm);
        if (q)
            gmpd_pq_set_threshold(q, level, t);
        else
            rc = GMP_ERR_NOMEM;
    }
    pthread_mutex_unlock(&S.mu);
    return rc;
}

static void status_nodes(char *out, size_t cap, size_t *off, uint64_t now)
{
    *off += (size_t)snprintf(out + *off, cap - *off,
                             "%-5s %-5s %-6s %9s %9s %7s %6s %12s %10s %9s "
                             "%9s\n",
                             "NODE", "VCM", "STATUS", "SM3MB/s", "SM4MB/s",
                             "QUEUED", "TASKS", "DONE_BYTES", "BYTES/s",
                             "WAITS", "WAIT_MS");
    for (int i = 0; i < S.n && *off < cap; i++) {
        gmpd_node *n = gmpd_nodeset_get(S.ns, S.w[i].node);
        if (!n)
            continue;
        *off += (size_t)snprintf(
            out + *off, cap - *off,
            "%-5u %-5u %-6s %9.0f %9.0f %7d %6u %12llu %10.0f %9llu "
            "%9llu\n", n->id, n->owner_vcm,
            S.w[i].admin_down ? "down" : S.w[i].parked ? "parked" : "up",
            n->speed[GMPD_SVC_HASH], n->speed[GMPD_SVC_CIPHER],
            S.w[i].depth, n->tasks, (unsigned long long)n->done_bytes,
            gmpd_rate_get(&S.w[i].rate, now),
            (unsigned long long)S.w[i].waits,
            (unsigned long long)(S.w[i].wait_ns / 1000000u));
    }
}

static void status_vcms(char *out, size_t cap, size_t *off, uint64_t now)
{
    if (*off < cap)
        *off += (size_t)snprintf(out + *off, cap - *off,
                                 "\n%-5s %7s  %s\n", "VCM", "QUEUED",
                                 "DEPTH BY PRIORITY 0..7 (* = over threshold)");
    for (size_t i = 0; i < S.n_vq && *off < cap; i++) {
        gmpd_pqueue *q = S.vq[i].q;
        *off += (size_t)snprintf(out + *off, cap - *off, "%-5u %7zu ",
                                 S.vq[i].vcm, gmpd_pq_depth(q, -1));
        for (unsigned l = 0; l < GMPD_PRIO_LEVELS && *off < cap; l++)
            *off += (size_t)snprintf(out + *off, cap - *off, " %zu%s",
                                     gmpd_pq_depth(q, (int)l),
                                     gmpd_pq_over(q, l, now) ? "*" : "");
        if (*off < cap)
            *off += (size_t)snprintf(out + *off, cap - *off, "\n");
    }
}

void gmpd_sched_status(char *out, size_t cap)
{
    size_t off = 0;
    uint64_t now = gmpc_now_ns();
    out[0] = '\0';
    pthread_mutex_lock(&S.mu);
    status_nodes(out, cap, &off, now);
    status_vcms(out, cap, &off, now);
    if (off < cap)
        snprintf(out + off, cap - off,
                 "\nactive tasks %u, jobs on nodes %llu, serial tasks moved "
                 "%llu\n", S.active_tasks, (unsigned long long)S.inflight,
                 (unsigned long long)S.moves);
    pthread_mutex_unlock(&S.mu);
}

void gmpd_sched_publish_load(void)
{
    uint64_t now = gmpc_now_ns(), wall = gmpc_wall_ms();
    gmpd_load_rec host = {.node = 0, .heartbeat_ms = wall};
    snprintf(host.host, sizeof host.host, "%s", gmpd->host);
    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < S.n; i++) {
        gmpd_node *n = gmpd_nodeset_get(S.ns, S.w[i].node);
        gmpd_load_rec r = host;
        r.node = n->id;
        r.vcm = n->owner_vcm;
        r.queue_depth = (uint32_t)S.w[i].depth;
        r.bytes_per_s = gmpd_rate_get(&S.w[i].rate, now);
        r.status = n->status[0];
        host.queue_depth += r.queue_depth;
        host.bytes_per_s += r.bytes_per_s;
        gmpd->load->ops->put(gmpd->load, &r);
    }
    for (size_t i = 0; i < S.n_vq; i++)
        host.queue_depth += (uint32_t)gmpd_pq_depth(S.vq[i].q, -1);
    pthread_mutex_unlock(&S.mu);
    gmpd->load->ops->put(gmpd->load, &host);
}

/* ---- `gmpoolctl sched` ---- */

typedef struct text {
    char *p;
    size_t cap, off;
} text;

static void put(text *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(text *o, const char *fmt, ...)
{
    if (o->off + 1 >= o->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->off, o->cap - o->off, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->off += (size_t)n < o->cap - o->off ? (size_t)n
                                               : o->cap - o->off - 1;
}

static void sched_head(text *o, uint64_t now)
{
    const gmpd_ttsa_params *p = gmpd_ttsa_get_params(S.tt);
    gmpd_ttsa_host_info h;
    gmpd_ttsa_stats st;
    gmpd_ttsa_hosts(S.tt, &h, 1);
    gmpd_ttsa_get_stats(S.tt, now, &st);
    uint32_t active = 0;
    for (int i = 0; i < S.n; i++)
        active += S.node_vcm[S.w[i].node] != 0;
    put(o, "variant %s, band %.0f-%.0f %%, period %llu ms, node idle %llu "
           "ms, nodes via %s\n",
        gmpd_ttsa_variant_name(p->variant), p->band_lo * 100,
        p->band_hi * 100, (unsigned long long)(p->period_ns / 1000000u),
        (unsigned long long)(p->idle_grace_ns / 1000000u), S.ops->name);
    put(o, "nodes: %u active, %u parked (min %u, max %d)\n", active,
        (uint32_t)S.n - active, S.nodes_min, S.n);
    put(o, "server: throughput %.0f of %.0f Mb/s (%.0f %%), node capacity "
           "%.0f units/s (1 unit = 1 MB of SM3)\n",
        h.thr_mbps, h.bw_mbps, h.bw_mbps > 0 ? 100 * h.thr_mbps / h.bw_mbps : 0,
        p->types[0].mips);
    put(o, "tasks: %llu placed, %llu finished, %llu missed; scaleup %llu, "
           "nodes parked %llu\n",
        (unsigned long long)st.submitted, (unsigned long long)st.finished,
        (unsigned long long)st.missed,
        (unsigned long long)(st.scale_up[0] + st.scale_up[1] + st.scale_up[2]),
        (unsigned long long)st.vcms_stopped);
}

static void sched_nodes(text *o)
{
    gmpd_ttsa_vcm_info v[GMPD_TTSA_MAX_VCMS];
    size_t nv = gmpd_ttsa_vcms(S.tt, v, GMPD_TTSA_MAX_VCMS);
    put(o, "\n%-5s %-7s %-5s %-5s %7s\n", "NODE", "STATE", "VCM", "BUSY",
        "QUEUED");
    for (int i = 0; i < S.n; i++) {
        uint32_t node = S.w[i].node, vcm = S.node_vcm[node];
        const gmpd_ttsa_vcm_info *vi = NULL;
        for (size_t k = 0; vcm && k < nv && !vi; k++)
            if (v[k].id == vcm)
                vi = &v[k];
        const char *state = S.w[i].admin_down ? "down"
                            : S.w[i].parked   ? "parked"
                                              : "active";
        if (vi)
            put(o, "%-5u %-7s %-5u %-5s %7u\n", node, state, vcm,
                vi->busy ? "yes" : "no", vi->queued);
        else
            put(o, "%-5u %-7s %-5s %-5s %7s\n", node, state, "-", "-", "-");
    }
}

#define SHOW_MAX 32

static void sched_window(text *o, uint64_t now)
{
    gmpd_ttsa_task_info w[SHOW_MAX];
    size_t n = gmpd_ttsa_window(S.tt, w, SHOW_MAX);
    put(o, "\nwindow: %zu waiting (first %d shown)\n", n, SHOW_MAX);
    if (n)
        put(o, "%-10s %10s %12s %-5s %-5s\n", "TASK", "UNITS",
            "DEADLINE_MS", "VCM", "NODE");
    for (size_t i = 0; i < n; i++) {
        uint32_t vcm = w[i].vcm;
        double left = ((double)w[i].d - (double)now) / 1e6;
        put(o, "%-10llu %10.2f %12.0f %-5u %-5u\n",
            (unsigned long long)w[i].id, w[i].len_mi, left, vcm,
            vcm <= GMPD_TTSA_MAX_VCMS ? S.vcm_node[vcm] : 0);
    }
}

static void sched_log(text *o, uint64_t now)
{
    gmpd_ttsa_decision d[SHOW_MAX];
    size_t n = gmpd_ttsa_decisions(S.tt, d, SHOW_MAX);
    put(o, "\ndecisions (most recent first):\n");
    if (n)
        put(o, "%10s %-12s %-10s %-5s %-5s\n", "AGO_MS", "WHAT", "TASK",
            "VCM", "NODE");
    for (size_t i = 0; i < n; i++) {
        uint64_t ago = now > d[i].t ? (now - d[i].t) / 1000000u : 0;
        uint32_t vcm = d[i].vcm;
        put(o, "%10llu %-12s %-10llu %-5u %-5u\n", (unsigned long long)ago,
            d[i].what, (unsigned long long)d[i].task, vcm,
            vcm <= GMPD_TTSA_MAX_VCMS ? S.vcm_node[vcm] : 0);
    }
}

void gmpd_sched_ttsa_status(char *out, size_t cap)
{
    text o = {out, cap, 0};
    if (!cap)
        return;
    out[0] = '\0';
    uint64_t now = gmpc_now_ns();
    pthread_mutex_lock(&S.mu);
    if (S.tt) {
        sched_head(&o, now);
        sched_nodes(&o);
        sched_window(&o, now);
        sched_log(&o, now);
    }
    pthread_mutex_unlock(&S.mu);
}
