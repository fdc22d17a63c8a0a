/* Live-load table (R7), in-memory implementation, and the rate meter.
 *
 * The table is an array of rows in insertion order behind one mutex.  It is
 * bounded (MAX_ROWS), so the linear lookup stays cheap; a Redis-backed
 * table implements the same ops for several hosts. */
#include "load.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gmpool.h"

#define MAX_ROWS 4096

typedef struct mem_load {
    gmpd_load base;          /* first: gmpd_load * converts to mem_load * */
    pthread_mutex_t mu;      /* guards everything below */
    gmpd_load_rec *rows;
    size_t n, cap;
} mem_load;

static mem_load *mem_of(gmpd_load *l)
{
    return (mem_load *)l;
}

/* A host name must be non-empty and NUL-terminated within its field. */
static bool host_ok(const char *host)
{
    return host && host[0] && memchr(host, '\0', GMPD_HOST_LEN) != NULL;
}

/* Index of (host, node) or -1.  Caller holds mu. */
static long find(const mem_load *m, const char *host, uint32_t node)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->rows[i].node == node && strcmp(m->rows[i].host, host) == 0)
            return (long)i;
    return -1;
}

/* Makes room for one more row.  Caller holds mu. */
static int reserve(mem_load *m)
{
    if (m->n < m->cap)
        return 0;
    if (m->cap == MAX_ROWS)
        return GMP_ERR_LIMIT;
    size_t cap = m->cap ? m->cap * 2 : 64;
    if (cap > MAX_ROWS)
        cap = MAX_ROWS;
    gmpd_load_rec *rows = realloc(m->rows, cap * sizeof(*rows));
    if (!rows)
        return GMP_ERR_NOMEM;
    m->rows = rows;
    m->cap = cap;
    return 0;
}

static int mem_put(gmpd_load *l, const gmpd_load_rec *r)
{
    if (!r || !host_ok(r->host))
        return GMP_ERR_ARG;
    mem_load *m = mem_of(l);
    int rc = 0;

    pthread_mutex_lock(&m->mu);
    long i = find(m, r->host, r->node);
    if (i < 0 && (rc = reserve(m)) == 0)
        i = (long)m->n++;
    if (i >= 0)
        m->rows[i] = *r;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_get(gmpd_load *l, const char *host, uint32_t node,
                   gmpd_load_rec *out)
{
    if (!host_ok(host) || !out)
        return GMP_ERR_ARG;
    mem_load *m = mem_of(l);

    pthread_mutex_lock(&m->mu);
    long i = find(m, host, node);
    if (i >= 0)
        *out = m->rows[i];
    pthread_mutex_unlock(&m->mu);
    return i >= 0 ? 0 : GMP_ERR_NOT_FOUND;
}

static int mem_del(gmpd_load *l, const char *host, uint32_t node)
{
    if (!host_ok(host))
        return GMP_ERR_ARG;
    mem_load *m = mem_of(l);

    pthread_mutex_lock(&m->mu);
    long i = find(m, host, node);
    if (i >= 0) {
        /* memmove, not swap-with-last: list keeps insertion order */
        memmove(&m->rows[i], &m->rows[i + 1],
                (m->n - (size_t)i - 1) * sizeof(m->rows[0]));
        m->n--;
    }
    pthread_mutex_unlock(&m->mu);
    return i >= 0 ? 0 : GMP_ERR_NOT_FOUND;
}

/* Calls cb on a snapshot taken under the lock, so cb may itself use the
 * table (put from a list callback would otherwise deadlock) and a slow cb
 * does not stall the writers.  Returns 0 after the last row, cb's non-zero
 * value when it stopped early, or GMP_ERR_NOMEM. */
static int mem_list(gmpd_load *l, int (*cb)(const gmpd_load_rec *, void *),
                    void *arg)
{
    if (!cb)
        return GMP_ERR_ARG;
    mem_load *m = mem_of(l);
    gmpd_load_rec *snap = NULL;
    size_t n;

    pthread_mutex_lock(&m->mu);
    n = m->n;
    if (n && (snap = malloc(n * sizeof(*snap))) != NULL)
        memcpy(snap, m->rows, n * sizeof(*snap));
    pthread_mutex_unlock(&m->mu);
    if (n && !snap)
        return GMP_ERR_NOMEM;

    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cb(&snap[i], arg);
    free(snap);
    return rc;
}

static void mem_free(gmpd_load *l)
{
    mem_load *m = mem_of(l);

    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m->rows);
    free(m);
}

static const gmpd_load_ops mem_ops = {
    .put = mem_put,
    .get = mem_get,
    .del = mem_del,
    .list = mem_list,
    .free = mem_free,
};

gmpd_load *gmpd_load_mem_new(void)
{
    mem_load *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->base.ops = &mem_ops;
    return &m->base;
}

/* ---- rate meter ----
 *
 * EWMA of the rate seen over each interval: over an interval of dt with u
 * units, rate += (1 - 2^(-dt/H)) * (u/dt - rate), H = 1 s.  A steady
 * stream converges to its true rate whatever the interval lengths, and with
 * no units the rate halves every second.  Intervals shorter than MIN_DT
 * are folded into the next one so that bursts of adds stay cheap and
 * u/dt stays meaningful.  A zeroed gmpd_rate starts at its first call. */

#define HALF_LIFE_NS 1000000000.0
#define MIN_DT_NS 1000000u   /* 1 ms */
#define LN2 0.69314718055994530942

/* 1 - e^(-y) for 0 <= y <= LN2 by its alternating series, accurate for
 * small y where 1 - exp(-y) would cancel.  Written out so that gmpd_core
 * needs no libm. */
static double one_minus_exp_neg(double y)
{
    double term = y, sum = 0;

    for (int k = 1; k <= 20 && term != 0; k++) {
        sum += term;
        term *= -y / (k + 1);
    }
    return sum;
}

/* The EWMA weight of an interval of x half-lives: 1 - 2^(-x). */
static double decay_weight(double x)
{
    if (x >= 64)
        return 1;
    double keep = 1;   /* 2^(-whole half-lives) */
    while (x >= 1) {
        keep *= 0.5;
        x -= 1;
    }
    return (1 - keep) + keep * one_minus_exp_neg(x * LN2);
}

static void rate_update(gmpd_rate *r, uint64_t now_ns)
{
    if (r->last_ns == 0) {
        r->last_ns = now_ns;
        return;
    }
    /* Also covers a clock that steps back: wait for it to pass last_ns. */
    if (now_ns < r->last_ns || now_ns - r->last_ns < MIN_DT_NS)
        return;
    double dt = (double)(now_ns - r->last_ns);
    double alpha = decay_weight(dt / HALF_LIFE_NS);
    double inst = (double)r->pending * 1e9 / dt;

    r->rate += alpha * (inst - r->rate);
    r->pending = 0;
    r->last_ns = now_ns;
}

void gmpd_rate_add(gmpd_rate *r, uint64_t units, uint64_t now_ns)
{
    r->pending += units;
    rate_update(r, now_ns);
}

double gmpd_rate_get(gmpd_rate *r, uint64_t now_ns)
{
    rate_update(r, now_ns);
    return r->rate;
}
