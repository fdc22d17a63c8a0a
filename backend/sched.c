/* Local compute nodes (worker threads) and the dispatcher that moves jobs
 * from the per-VCM priority queues (R3/R4) into each node's down queue.
 * There is no dispatcher thread: whoever changes the picture (a submit, a
 * finished job) pumps under the one scheduler mutex, so a freed node slot
 * is refilled at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmpd.h"
#include "gmpool.h"
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
    gmpd_rate rate;
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
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static worker *worker_of(uint32_t node)
{
    return node >= 1 && node <= (uint32_t)S.n ? &S.w[node - 1] : NULL;
}

static bool node_has_room(const gmpd_job *j, void *arg)
{
    (void)arg;
    worker *w = worker_of(j->node);
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

/* Round-robin over VCMs (tenants are isolated from each other); inside a
 * VCM the R4 policy picks. */
static void pump(void)
{
    uint64_t now = gmpc_now_ns();
    bool moved = true;
    while (moved && S.n_vq) {
        moved = false;
        for (size_t k = 0; k < S.n_vq; k++) {
            size_t i = (S.rr + k) % S.n_vq;
            gmpd_job *j = gmpd_pq_pop(S.vq[i].q, now, node_has_room, NULL);
            if (!j)
                continue;
            down_push(worker_of(j->node), (gmpd_shard *)j);
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
    s->job.node = t->node;
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

/* Runs on the task's node only, in sequence order, so the chaining state
 * in t->ctx needs no lock. */
static void compute(gmpd_shard *s)
{
    gmpd_task *t = s->task;
    pthread_mutex_lock(&t->mu);
    bool live = t->state == TASK_OPEN;
    int st = t->status;
    pthread_mutex_unlock(&t->mu);
    if (!live) {
        s->status = st ? st : GMP_ERR_STATE;
        return;
    }
    uint8_t *out = s->data + s->len;
    size_t outl = 0;
    if (s->len)
        s->status = gmpd_engine_update(t->ctx, s->data, s->len, out, &outl);
    if (s->status == GMP_OK && s->final) {
        size_t fl = 0;
        s->status = gmpd_engine_final(t->ctx, out + outl, &fl);
        outl += fl;
    }
    s->out_len = (uint32_t)outl;
    if (s->status != GMP_OK || s->final) {
        pthread_mutex_lock(&t->mu);
        t->state = s->status == GMP_OK ? TASK_DONE : TASK_FAILED;
        if (s->status != GMP_OK)
            t->status = s->status;
        pthread_mutex_unlock(&t->mu);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_mutex_lock(&S.mu);
    for (;;) {
        while (!w->head && !S.stop)
            pthread_cond_wait(&w->cv, &S.mu);
        if (!w->head)
            break;
        gmpd_shard *s = w->head;
        w->head = s->next;
        if (!w->head)
            w->tail = NULL;
        w->busy = true;
        pthread_mutex_unlock(&S.mu);
        compute(s);
        uint32_t len = s->len;
        gmpd_net_post_result(s);
        pthread_mutex_lock(&S.mu);
        w->busy = false;
        w->depth--;
        S.inflight--;
        gmpd_nodeset_done(S.ns, w->node, len, 1);
        gmpd_rate_add(&w->rate, len, gmpc_now_ns());
        pump();
    }
    pthread_mutex_unlock(&S.mu);
    return NULL;
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
    for (int i = 0; i < n_nodes; i++)
        if (pthread_create(&S.w[i].th, NULL, worker_main, &S.w[i]) != 0)
            return GMP_ERR_INTERNAL;
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
    S.vq = NULL;
    S.n_vq = S.cap_vq = 0;
    S.w = NULL;
    S.n = 0;
    S.ns = NULL;
    S.stop = false;
}

uint32_t gmpd_sched_place(uint32_t vcm, gmpd_svc svc, uint64_t len)
{
    pthread_mutex_lock(&S.mu);
    gmpd_node *n = gmpd_nodeset_place(S.ns, vcm, svc, len);
    uint32_t id = n ? n->id : 0;
    if (n)
        S.active_tasks++;
    pthread_mutex_unlock(&S.mu);
    return id;
}

void gmpd_sched_task_end(gmpd_task *t)
{
    pthread_mutex_lock(&S.mu);
    gmpd_nodeset_task_end(S.ns, t->node);
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
    while (c.list) {
        gmpd_shard *s = c.list;
        c.list = s->next;
        s->status = t->status ? t->status : GMP_ERR_STATE;
        gmpd_net_post_result(s);
    }
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
    int rc = gmpd_nodeset_set_status(S.ns, node,
                                     up ? GMPD_NODE_UP : GMPD_NODE_DOWN);
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
                             "%-5s %-5s %-6s %9s %9s %7s %6s %12s %10s\n",
                             "NODE", "VCM", "STATUS", "SM3MB/s", "SM4MB/s",
                             "QUEUED", "TASKS", "DONE_BYTES", "BYTES/s");
    for (int i = 0; i < S.n && *off < cap; i++) {
        gmpd_node *n = gmpd_nodeset_get(S.ns, S.w[i].node);
        if (!n)
            continue;
        *off += (size_t)snprintf(
            out + *off, cap - *off,
            "%-5u %-5u %-6s %9.0f %9.0f %7d %6u %12llu %10.0f\n", n->id,
            n->owner_vcm, n->status[0] == GMPD_NODE_UP ? "up" : "down",
            n->speed[GMPD_SVC_HASH], n->speed[GMPD_SVC_CIPHER],
            S.w[i].depth, n->tasks, (unsigned long long)n->done_bytes,
            gmpd_rate_get(&S.w[i].rate, now));
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
        snprintf(out + off, cap - off, "\nactive tasks %u, jobs on nodes %llu\n",
                 S.active_tasks, (unsigned long long)S.inflight);
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
