/* TTSA core (R8-R13).  See ttsa.h for the interface and
 * docs/scheduling.md for how each equation of the paper maps here.
 *
 * Cost of one scheduling decision (an arrival, a completion or a tick),
 * with W waiting tasks, n = min(W, horizon) of them re-planned, V live
 * VCMs, H servers, T VCM types:
 *  - O(log W) to find the task's slot in the EDF window plus one memmove
 *    of the pointers behind it;
 *  - the pass: each of the n tasks scans the V live VCMs a bounded number
 *    of times (twice, four times for a task that misses) and, when none
 *    meets its deadline inside the band, tries ScaleUp: step 1 and 3 are
 *    O(T * H); step 2's trials (O(H * m * (V + H)) per type, m VCMs moved)
 *    run once per type per pass and after each change to the pool, and
 *    otherwise a cached earliest ready time rules step 2 out in O(T);
 *  so O(log W + W + n * (V + T * H)) plus one step-2 sweep per VCM the
 *  pass creates.  Defaults: horizon 256, V <= 256, H <= 64, T <= 4, so a
 *  decision is bounded however long the window grows.  Measured with
 *  gmpool-sim (docs/scheduling.md, "Cost per scheduling decision"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ttsa.h"

#define NS 1e9

typedef struct task task;
struct task {
    uint64_t id, a, d;
    double len;            /* l_i, MI */
    uint64_t st;           /* planned start st_ijk */
    uint32_t vcm;          /* planned or bound VCM, 0 = none */
    bool bound;            /* in a VCM queue (non-rolling / place) */
    bool running;
    task *next;            /* VCM queue link */
};

typedef struct host {
    gmpd_ttsa_res spec;
    bool on;
    uint64_t ready_at;     /* boot finished */
    double used_mips, used_mem;
    double thr;            /* live throughput, Mb/s (eq. 5-8) */
    double pthr;           /* thr plus tasks the current plan starts now */
    double busy_mips;
    double parea;          /* throughput integral of this period (eq. 9) */
    double mean_thr;       /* eq. 9 over the last period */
    uint32_t n_vcm;
} host;

typedef struct vcm {
    bool used;
    uint32_t host;
    gmpd_ttsa_res r;
    uint64_t ready_at;     /* created / migrated */
    uint64_t idle_since;
    task *run;             /* executing task */
    uint64_t busy_until;
    uint64_t rt;           /* ready time rt_jk while planning (eq. 11) */
    uint64_t qready;       /* ready time after its queue (bound tasks) */
    task *qhead, *qtail;   /* bound tasks, FIFO */
    task *first;           /* first task of the current plan */
    uint32_t planned;      /* tasks bound (nq) plus planned in the window */
    uint32_t nq;           /* bound tasks in qhead..qtail */
} vcm;

struct gmpd_ttsa {
    gmpd_ttsa_params p;
    gmpd_ttsa_ops ops;
    void *arg;
    host h[GMPD_TTSA_MAX_HOSTS + 1];   /* 1-based */
    uint32_t n_host;
    vcm v[GMPD_TTSA_MAX_VCMS + 1];     /* 1-based */
    uint32_t live[GMPD_TTSA_MAX_VCMS]; /* ids of used VCMs, ascending */
    uint32_t n_vlive;
    task **win;                        /* EDF-sorted waiting tasks */
    uint32_t n_win;
    task **tab;                        /* id -> task, linear probing */
    uint32_t tab_mask, n_live;
    uint64_t last_acct, next_period;
    task **late;                       /* plan scratch, horizon long */
    /* ScaleUp knowledge valid for one pass while the pool is unchanged
     * (within a pass servers only get busier, so both stay true): */
    bool up_failed;                    /* no step had room at all */
    bool s2_known[GMPD_TTSA_MAX_TYPES];
    uint64_t s2_ready[GMPD_TTSA_MAX_TYPES]; /* earliest a step-2 VCM of
                                              the type could be ready,
                                              UINT64_MAX: none */
    gmpd_ttsa_stats st;
    gmpd_ttsa_decision log[GMPD_TTSA_LOG];
    uint32_t log_pos, log_n;
};

static bool rolling(const gmpd_ttsa *s)
{
    return s->p.variant == GMPD_TTSA || s->p.variant == GMPD_NMTTSA;
}

static bool migrating(const gmpd_ttsa *s)
{
    return s->p.variant == GMPD_TTSA || s->p.variant == GMPD_NRTTSA;
}

static void note(gmpd_ttsa *s, uint64_t now, const char *what, uint64_t tid,
                 uint32_t vid, uint32_t h1, uint32_t h2)
{
    s->log[s->log_pos] = (gmpd_ttsa_decision){now, what, tid, vid, h1, h2};
    s->log_pos = (s->log_pos + 1) % GMPD_TTSA_LOG;
    if (s->log_n < GMPD_TTSA_LOG)
        s->log_n++;
}

/* ---- parameters ---- */

void gmpd_ttsa_defaults(gmpd_ttsa_params *p)
{
    *p = (gmpd_ttsa_params){
        .variant = GMPD_TTSA,
        .band_lo = 0.70,
        .band_hi = 0.85,
        .mb_per_mi = 0.1,
        .vcm_create_ns = 1000000000ull,
        .host_boot_ns = 20000000000ull,
        /* t_p: longer than the slowest migration of the default types
         * (512 MB at 1 Gb/s, 4.1 s), so a period's moves are done before
         * the next consolidation looks, and long enough that eq. 9
         * averages over several tasks rather than one start or finish */
        .period_ns = 10000000000ull,
        .idle_grace_ns = 5000000000ull,
        .horizon = 256,
        .max_window = 32768,
        .min_vcms = 1,
        .n_types = 2,
        .types = {{1000, 256, 1000}, {2000, 512, 1000}},
    };
}

static const char *const names[] = {"TTSA", "NRTTSA", "NMTTSA", "NRMTTSA"};

const char *gmpd_ttsa_variant_name(gmpd_ttsa_variant v)
{
    return (unsigned)v < 4 ? names[v] : "?";
}

int gmpd_ttsa_variant_parse(const char *str, gmpd_ttsa_variant *v)
{
    for (unsigned i = 0; str && i < 4; i++)
        if (strcasecmp(str, names[i]) == 0) {
            *v = (gmpd_ttsa_variant)i;
            return 0;
        }
    return -1;
}

static bool res_ok(const gmpd_ttsa_res *r)
{
    return isfinite(r->mips) && isfinite(r->mem_mb) && isfinite(r->bw_mbps) &&
           r->mips > 0 && r->mem_mb >= 0 && r->bw_mbps > 0 &&
           r->mips < 1e12 && r->mem_mb < 1e12 && r->bw_mbps < 1e12;
}

static bool params_ok(const gmpd_ttsa_params *p)
{
    if (!p || (unsigned)p->variant > 3 || !(p->band_lo > 0) ||
        !(p->band_lo <= p->band_hi) || !(p->band_hi <= 1) ||
        !isfinite(p->mb_per_mi) || p->mb_per_mi < 0 || p->period_ns == 0 ||
        p->horizon == 0 || p->horizon > GMPD_TTSA_MAX_WINDOW ||
        p->max_window == 0 ||
        p->max_window > GMPD_TTSA_MAX_WINDOW || p->n_types == 0 ||
        p->n_types > GMPD_TTSA_MAX_TYPES)
        return false;
    for (uint32_t i = 0; i < p->n_types; i++)
        if (!res_ok(&p->types[i]))
            return false;
    return true;
}

gmpd_ttsa *gmpd_ttsa_new(const gmpd_ttsa_params *p, const gmpd_ttsa_ops *ops,
                         void *arg)
{
    if (!params_ok(p))
        return NULL;
    gmpd_ttsa *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->p = *p;
    if (ops)
        s->ops = *ops;
    s->arg = arg;
    uint32_t cap = 16;
    while (cap < 2 * p->max_window)
        cap *= 2;
    s->win = calloc(p->max_window, sizeof *s->win);
    s->tab = calloc(cap, sizeof *s->tab);
    s->late = calloc(p->horizon, sizeof *s->late);
    if (!s->win || !s->tab || !s->late) {
        gmpd_ttsa_free(s);
        return NULL;
    }
    s->tab_mask = cap - 1;
    s->next_period = p->period_ns;
    return s;
}

void gmpd_ttsa_free(gmpd_ttsa *s)
{
    if (!s)
        return;
    if (s->tab)
        for (uint32_t i = 0; i <= s->tab_mask; i++)
            free(s->tab[i]);
    free(s->tab);
    free(s->win);
    free(s->late);
    free(s);
}

/* ---- id table: linear probing with backward-shift delete ---- */

static uint32_t slot_of(const gmpd_ttsa *s, uint64_t id)
{
    uint64_t x = id * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32) & s->tab_mask;
}

static task *tab_get(const gmpd_ttsa *s, uint64_t id)
{
    for (uint32_t i = slot_of(s, id);; i = (i + 1) & s->tab_mask) {
        if (!s->tab[i] || s->tab[i]->id == id)
            return s->tab[i];
    }
}

static void tab_put(gmpd_ttsa *s, task *t)
{
    uint32_t i = slot_of(s, t->id);
    while (s->tab[i])
        i = (i + 1) & s->tab_mask;
    s->tab[i] = t;
    s->n_live++;
}

static void tab_del(gmpd_ttsa *s, task *t)
{
    uint32_t i = slot_of(s, t->id);
    while (s->tab[i] != t)
        i = (i + 1) & s->tab_mask;
    s->tab[i] = NULL;
    s->n_live--;
    for (uint32_t j = (i + 1) & s->tab_mask; s->tab[j];
         j = (j + 1) & s->tab_mask) {
        uint32_t home = slot_of(s, s->tab[j]->id);
        /* move back when its home is not in (i, j] (cyclically) */
        if ((j > i && (home <= i || home > j)) ||
            (j < i && home <= i && home > j)) {
            s->tab[i] = s->tab[j];
            s->tab[j] = NULL;
            i = j;
        }
    }
}

/* ---- time integrals (metrics and eq. 9) ---- */

static void account(gmpd_ttsa *s, uint64_t now)
{
    if (now <= s->last_acct) {
        return;
    }
    double dt = (double)(now - s->last_acct) / NS;
    for (uint32_t k = 1; k <= s->n_host; k++) {
        host *h = &s->h[k];
        if (!h->on)
            continue;
        double f = h->thr / h->spec.bw_mbps;
        s->st.thr_area += h->thr * dt;
        s->st.busy_mips_area += h->busy_mips * dt;
        s->st.cap_mips_area += h->spec.mips * dt;
        s->st.on_s += dt;
        if (f >= s->p.band_lo - 1e-9 && f <= s->p.band_hi + 1e-9)
            s->st.in_band_s += dt;
        h->parea += h->thr * dt;
    }
    s->last_acct = now;
}

/* ---- the model: eq. (1), (2), (10), (11) ---- */

static uint64_t tct_ns(const vcm *v, double len)
{
    double t = len / v->r.mips * NS;   /* eq. 1: TCT = l / c(v) */
    return t < 1.8e19 ? (uint64_t)t : UINT64_MAX / 4;
}

static double vcm_rate(const gmpd_ttsa *s, const gmpd_ttsa_res *r)
{
    double x = r->mips * s->p.mb_per_mi;
    return x < r->bw_mbps ? x : r->bw_mbps;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Earliest time v can take new work (creation, migration, running task). */
static uint64_t vcm_free_at(const vcm *v, uint64_t now)
{
    uint64_t t = max64(now, v->ready_at);
    return v->run ? max64(t, v->busy_until) : t;
}

static void start_task(gmpd_ttsa *s, uint32_t id, task *t, uint64_t now)
{
    vcm *v = &s->v[id];
    host *h = &s->h[v->host];
    t->running = true;
    t->vcm = id;
    t->st = now;
    v->run = t;
    v->busy_until = now + tct_ns(v, t->len);
    h->thr += vcm_rate(s, &v->r);
    h->busy_mips += v->r.mips;
    s->st.started++;
    if (s->ops.task_start)
        s->ops.task_start(s->arg, t->id, id, now, v->busy_until);
}

/* ---- VCM controller: create, stop, migrate, power ---- */

/* Powered on and booted. */
static bool host_up(const host *h, uint64_t now)
{
    return h->on && h->ready_at <= now;
}

static bool host_fits(const host *h, const gmpd_ttsa_res *r)
{
    return h->on && h->used_mips + r->mips <= h->spec.mips + 1e-9 &&
           h->used_mem + r->mem_mb <= h->spec.mem_mb + 1e-9;
}

static uint32_t vcm_slot(const gmpd_ttsa *s)
{
    if (s->n_vlive >= GMPD_TTSA_MAX_VCMS)
        return 0;
    for (uint32_t i = 1; i <= GMPD_TTSA_MAX_VCMS; i++)
        if (!s->v[i].used)
            return i;
    return 0;
}

/* The live list keeps ascending ids so that every scan over it breaks
 * ties the way a scan over all slots would (lowest id first). */
static void live_add(gmpd_ttsa *s, uint32_t id)
{
    uint32_t j = s->n_vlive;
    while (j > 0 && s->live[j - 1] > id) {
        s->live[j] = s->live[j - 1];
        j--;
    }
    s->live[j] = id;
    s->n_vlive++;
}

static void live_del(gmpd_ttsa *s, uint32_t id)
{
    uint32_t j = 0;
    while (s->live[j] != id)
        j++;
    memmove(&s->live[j], &s->live[j + 1],
            (s->n_vlive - j - 1) * sizeof *s->live);
    s->n_vlive--;
}

/* The pool changed (a VCM or server came or went, a VCM moved): what
 * ScaleUp learnt earlier in this pass no longer holds. */
static void pool_changed(gmpd_ttsa *s)
{
    s->up_failed = false;
    memset(s->s2_known, 0, sizeof s->s2_known);
}

/* A free slot and the driver's consent to a VCM of type r on host hid:
 * its id, or 0 when either is missing. */
static uint32_t vcm_begin(gmpd_ttsa *s, uint32_t hid, const gmpd_ttsa_res *r)
{
    uint32_t id = vcm_slot(s);
    if (!id)
        return 0;
    if (s->ops.vcm_start && s->ops.vcm_start(s->arg, id, hid, r) != 0)
        return 0;
    return id;
}

/* The model's side of a VCM vcm_begin() got consent for. */
static void vcm_commit(gmpd_ttsa *s, uint32_t id, uint32_t hid,
                       const gmpd_ttsa_res *r, uint64_t ready_at)
{
    vcm *v = &s->v[id];
    *v = (vcm){.used = true, .host = hid, .r = *r, .ready_at = ready_at,
               .idle_since = ready_at, .rt = ready_at, .qready = ready_at};
    host *h = &s->h[hid];
    h->used_mips += r->mips;
    h->used_mem += r->mem_mb;
    h->n_vcm++;
    s->st.vcms++;
    live_add(s, id);
    pool_changed(s);
}

static uint32_t create_vcm(gmpd_ttsa *s, uint32_t hid, const gmpd_ttsa_res *r,
                           uint64_t ready_at)
{
    if (!host_fits(&s->h[hid], r))
        return 0;
    uint32_t id = vcm_begin(s, hid, r);
    if (id)
        vcm_commit(s, id, hid, r, ready_at);
    return id;
}

static void stop_vcm(gmpd_ttsa *s, uint32_t id, uint64_t now)
{
    vcm *v = &s->v[id];
    host *h = &s->h[v->host];
    h->used_mips -= v->r.mips;
    h->used_mem -= v->r.mem_mb;
    h->n_vcm--;
    v->used = false;
    live_del(s, id);
    pool_changed(s);
    s->st.vcms--;
    s->st.vcms_stopped++;
    note(s, now, "vcm-stop", 0, id, v->host, 0);
    if (s->ops.vcm_stop)
        s->ops.vcm_stop(s->arg, id);
}

/* eq. 12: mt(V) = r(V) / n(V), memory (MB, so 8 Mb each) over bandwidth. */
static uint64_t mt_ns(const vcm *v)
{
    return (uint64_t)(v->r.mem_mb * 8.0 / v->r.bw_mbps * NS);
}

/* Live migration: the VCM keeps serving while it moves and its load moves
 * with it, so its own ready time does not change; mt only delays a VCM
 * that step 2 creates in the room it leaves (eq. 13). */
static void migrate(gmpd_ttsa *s, uint32_t id, uint32_t to, uint64_t now)
{
    vcm *v = &s->v[id];
    host *a = &s->h[v->host], *b = &s->h[to];
    a->used_mips -= v->r.mips;
    a->used_mem -= v->r.mem_mb;
    a->n_vcm--;
    b->used_mips += v->r.mips;
    b->used_mem += v->r.mem_mb;
    b->n_vcm++;
    if (v->run) {
        double rate = vcm_rate(s, &v->r);
        a->thr -= rate;
        b->thr += rate;
        a->pthr -= rate;
        b->pthr += rate;
        a->busy_mips -= v->r.mips;
        b->busy_mips += v->r.mips;
    }
    if (s->ops.vcm_migrate)
        s->ops.vcm_migrate(s->arg, id, v->host, to);
    note(s, now, "migrate", 0, id, v->host, to);
    v->host = to;
    s->st.migrations++;
    pool_changed(s);
}

static bool power(gmpd_ttsa *s, uint32_t hid, bool on, uint64_t now)
{
    host *h = &s->h[hid];
    if (s->ops.host_power && s->ops.host_power(s->arg, hid, on) != 0)
        return false;
    h->on = on;
    h->ready_at = on ? now + s->p.host_boot_ns : 0;
    h->thr = h->pthr = h->busy_mips = h->parea = h->mean_thr = 0;
    pool_changed(s);
    if (!on) {
        s->st.hosts_off++;
        s->st.hosts_on--;
    } else {
        s->st.hosts_on++;
    }
    note(s, now, on ? "host-on" : "host-off", 0, 0, hid, 0);
    return true;
}

/* ---- ScaleUp (R11) ---- */

/* Finish time of t on a new VCM of type r ready at `ready`. */
static uint64_t new_finish(const task *t, const gmpd_ttsa_res *r,
                           uint64_t ready)
{
    vcm tmp = {.r = *r};
    return max64(ready, t->a) + tct_ns(&tmp, t->len);
}

/* Step 1: an active server with room whose throughput stays inside the
 * band, the one closest to the band's top with the least MIPS left. */
static uint32_t step1_host(const gmpd_ttsa *s, const gmpd_ttsa_res *r)
{
    uint32_t best = 0;
    for (uint32_t k = 1; k <= s->n_host; k++) {
        const host *h = &s->h[k];
        if (!host_fits(h, r) ||
            h->pthr + vcm_rate(s, r) > s->p.band_hi * h->spec.bw_mbps)
            continue;
        const host *b = best ? &s->h[best] : NULL;
        double left = h->spec.mips - h->used_mips;
        if (!b || h->pthr > b->pthr ||
            (h->pthr == b->pthr && left < b->spec.mips - b->used_mips))
            best = k;
    }
    return best;
}

/* The smallest VCM on host k not yet moved, idle ones first on ties. */
static uint32_t step2_pick(const gmpd_ttsa *s, uint32_t k, const bool *moved)
{
    uint32_t pick = 0;
    for (uint32_t j = 0; j < s->n_vlive; j++) {
        uint32_t i = s->live[j];
        const vcm *v = &s->v[i], *p = &s->v[pick];
        if (v->host != k || moved[i])
            continue;
        if (!pick || v->r.mips < p->r.mips ||
            (v->r.mips == p->r.mips && !v->run && p->run))
            pick = i;
    }
    return pick;
}

/* Step 2 trial: can moving VCMs (smallest first) off host k onto other
 * booted hosts (best fit, band kept) free room for r?  Fills moves[] with
 * (vcm, destination) pairs; returns how many, or -1. */
static int step2_trial(gmpd_ttsa *s, uint32_t k, const gmpd_ttsa_res *r,
                       uint32_t moves[][2], uint64_t now)
{
    s->st.trials++;
    double fm[GMPD_TTSA_MAX_HOSTS + 1], fr[GMPD_TTSA_MAX_HOSTS + 1],
        ft[GMPD_TTSA_MAX_HOSTS + 1];
    for (uint32_t j = 1; j <= s->n_host; j++) {
        fm[j] = s->h[j].spec.mips - s->h[j].used_mips;
        fr[j] = s->h[j].spec.mem_mb - s->h[j].used_mem;
        ft[j] = s->p.band_hi * s->h[j].spec.bw_mbps - s->h[j].pthr;
    }
    bool moved[GMPD_TTSA_MAX_VCMS + 1] = {false};
    int n = 0;
    while (fm[k] + 1e-9 < r->mips || fr[k] + 1e-9 < r->mem_mb) {
        uint32_t pick = step2_pick(s, k, moved);
        if (!pick)
            return -1;
        const vcm *v = &s->v[pick];
        double rate = v->run ? vcm_rate(s, &v->r) : 0;
        uint32_t dst = 0;    /* best fit: least MIPS left after the move */
        for (uint32_t j = 1; j <= s->n_host; j++)
            if (j != k && host_up(&s->h[j], now) &&
                fm[j] + 1e-9 >= v->r.mips &&
                fr[j] + 1e-9 >= v->r.mem_mb && ft[j] >= rate &&
                (!dst || fm[j] < fm[dst]))
                dst = j;
        if (!dst)
            return -1;
        moved[pick] = true;
        fm[dst] -= v->r.mips, fr[dst] -= v->r.mem_mb, ft[dst] -= rate;
        fm[k] += v->r.mips, fr[k] += v->r.mem_mb;
        moves[n][0] = pick, moves[n][1] = dst;
        n++;
    }
    return n;
}

/* When a step-2 VCM of type r on host k would be ready (eq. 13: the
 * slowest of the migrations, then ct), or UINT64_MAX when k cannot make
 * room.  *n gets the number of moves (0: k has room already). */
static uint64_t step2_ready(gmpd_ttsa *s, uint32_t k,
                            const gmpd_ttsa_res *r, uint32_t moves[][2],
                            int *n, uint64_t now)
{
    if (!host_up(&s->h[k], now))
        return UINT64_MAX;
    *n = step2_trial(s, k, r, moves, now);
    if (*n <= 0)   /* no room, or room without moving: step 1's case */
        return UINT64_MAX;
    uint64_t mt_max = 0;
    for (int i = 0; i < *n; i++)
        mt_max = max64(mt_max, mt_ns(&s->v[moves[i][0]]));
    return now + mt_max + s->p.vcm_create_ns;
}

/* Is a new VCM of type r ready at `ready` worth making for t: it meets
 * the deadline, or at least finishes before `beat`? */
static bool worth(const task *t, const gmpd_ttsa_res *r, uint64_t ready,
                  uint64_t beat)
{
    uint64_t f = new_finish(t, r, ready);
    return f <= t->d || f < beat;
}

/* A server still booting with room for another VCM of the smallest
 * type: new work can wait for it rather than boot one more. */
static bool host_booting(const gmpd_ttsa *s, uint64_t now)
{
    for (uint32_t k = 1; k <= s->n_host; k++)
        if (s->h[k].on && s->h[k].ready_at > now &&
            host_fits(&s->h[k], &s->p.types[0]))
            return true;
    return false;
}

/* Step 3: power on the first server that is off and make a VCM there,
 * ready after its boot and ct.  While a booting server still has room,
 * tasks arriving meanwhile get VCMs there through step 1 instead; once it
 * is full, a backlog may boot the next one at the same time.  `tid` is
 * the task it is for (0: none, for the decision log). */
static uint32_t step3(gmpd_ttsa *s, uint64_t tid, uint64_t now)
{
    if (host_booting(s, now))
        return 0;
    for (uint32_t k = 1; k <= s->n_host; k++) {
        if (s->h[k].on || !power(s, k, true, now))
            continue;
        const gmpd_ttsa_res *r = &s->p.types[0];
        uint32_t id = create_vcm(s, k, r, s->h[k].ready_at + s->p.vcm_create_ns);
        if (id) {
            s->st.scale_up[2]++;
            note(s, now, "scaleup-3", tid, id, k, 0);
        }
        return id;
    }
    return 0;
}

static uint32_t step1(gmpd_ttsa *s, const task *t, uint64_t beat,
                      uint64_t now, bool *room)
{
    for (uint32_t ty = 0; ty < s->p.n_types; ty++) {
        const gmpd_ttsa_res *r = &s->p.types[ty];
        uint32_t k = step1_host(s, r);
        if (!k)
            continue;
        *room = true;
        uint64_t ready = max64(now, s->h[k].ready_at) + s->p.vcm_create_ns;
        if (!worth(t, r, ready, beat))
            continue;
        uint32_t id = create_vcm(s, k, r, ready);
        if (id) {
            s->st.scale_up[0]++;
            note(s, now, "scaleup-1", t->id, id, k, 0);
            return id;
        }
    }
    return 0;
}

/* Step 2 for type ty: the first server (by id) where moving VCMs away
 * frees room for a VCM worth making for t.  Failing that, records the
 * earliest ready time any server offers, so that the rest of the pass
 * skips step 2 for the tasks it cannot help (without this, each waiting
 * task of a backlog re-ran every trial). */
static uint32_t step2_type(gmpd_ttsa *s, const task *t, unsigned ty,
                           uint64_t beat, uint64_t now, bool *room)
{
    const gmpd_ttsa_res *r = &s->p.types[ty];
    uint64_t best = UINT64_MAX;
    for (uint32_t k = 1; k <= s->n_host; k++) {
        uint32_t moves[GMPD_TTSA_MAX_VCMS][2];
        int n = 0;
        uint64_t ready = step2_ready(s, k, r, moves, &n, now);
        if (ready == UINT64_MAX)
            continue;
        *room = true;
        best = ready < best ? ready : best;
        if (!worth(t, r, ready, beat))
            continue;
        /* slot and consent first: never move VCMs for nothing */
        uint32_t id = vcm_begin(s, k, r);
        if (!id)
            continue;
        for (int i = 0; i < n; i++)
            migrate(s, moves[i][0], moves[i][1], now);
        vcm_commit(s, id, k, r, ready);
        s->st.scale_up[1]++;
        note(s, now, "scaleup-2", t->id, id, k, 0);
        return id;
    }
    s->s2_known[ty] = true;
    s->s2_ready[ty] = best;
    return 0;
}

static uint32_t step2(gmpd_ttsa *s, const task *t, uint64_t beat,
                      uint64_t now, bool *room)
{
    if (!migrating(s) || s->n_vlive >= GMPD_TTSA_MAX_VCMS)
        return 0;
    for (uint32_t ty = 0; ty < s->p.n_types; ty++) {
        uint64_t known = s->s2_ready[ty];
        if (s->s2_known[ty]) {
            *room |= known != UINT64_MAX;
            if (known == UINT64_MAX ||
                !worth(t, &s->p.types[ty], known, beat))
                continue;
        }
        uint32_t id = step2_type(s, t, ty, beat, now, room);
        if (id)
            return id;
    }
    return 0;
}

/* A new VCM for t that meets its deadline, or at least beats `beat` (the
 * earliest finish among existing VCMs) — steps 1, 2 (with migration), 3
 * in that order.  Returns its id or 0. */
static uint32_t scale_up(gmpd_ttsa *s, const task *t, uint64_t beat,
                         uint64_t now)
{
    bool room = false;   /* some step had room; only t's deadline and
                            `beat` ruled it out */
    uint32_t id = step1(s, t, beat, now, &room);
    if (!id)
        id = step2(s, t, beat, now, &room);
    if (!id)
        id = step3(s, t->id, now);
    if (!id && !room)
        s->up_failed = true;
    return id;
}

/* ---- TTSA placement (R10) ---- */

/* A placement pass starts: each VCM's ready time after its running and
 * bound tasks (eq. 11), the servers' planned throughput from the live
 * one, and nothing ScaleUp learnt in an earlier pass. */
static void pass_begin(gmpd_ttsa *s, uint64_t now)
{
    for (uint32_t j = 0; j < s->n_vlive; j++) {
        vcm *v = &s->v[s->live[j]];
        v->rt = max64(vcm_free_at(v, now), v->qready);
    }
    for (uint32_t k = 1; k <= s->n_host; k++)
        s->h[k].pthr = s->h[k].thr;
    pool_changed(s);
}

/* The VCM for t given each VCM's rt: among those that meet the deadline
 * on servers that stay inside the band, the one on the server with the
 * lowest live throughput (ties: earliest finish, lowest id).  With
 * band_ok false, the band is ignored.  *earliest gets the earliest finish
 * over all VCMs and *efin_vcm that VCM. */
static uint32_t choose(const gmpd_ttsa *s, const task *t, uint64_t now,
                       bool band_ok, uint64_t *earliest, uint32_t *efin_vcm)
{
    uint32_t best = 0;
    uint64_t best_fin = 0;
    *earliest = UINT64_MAX;
    *efin_vcm = 0;
    for (uint32_t j = 0; j < s->n_vlive; j++) {
        uint32_t i = s->live[j];
        const vcm *v = &s->v[i];
        uint64_t st = max64(v->rt, t->a);             /* eq. 10 */
        uint64_t fin = st + tct_ns(v, t->len);        /* eq. 2 */
        if (fin < *earliest)
            *earliest = fin, *efin_vcm = i;
        if (fin > t->d)                               /* eq. 3 */
            continue;
        const host *h = &s->h[v->host];
        double add = st <= now ? vcm_rate(s, &v->r) : 0;
        if (band_ok && h->pthr + add > s->p.band_hi * h->spec.bw_mbps &&
            h->pthr > 0)
            continue;
        const host *bh = best ? &s->h[s->v[best].host] : NULL;
        if (!best || h->pthr < bh->pthr ||
            (h->pthr == bh->pthr && fin < best_fin))
            best = i, best_fin = fin;
    }
    return best;
}

/* Full decision for one task: feasible in band, else ScaleUp, else
 * feasible over band, else earliest finish (a miss). */
static uint32_t decide(gmpd_ttsa *s, const task *t, uint64_t now)
{
    uint64_t early;
    uint32_t evcm;
    uint32_t id = choose(s, t, now, true, &early, &evcm);
    if (id)
        return id;
    /* The pool only changes through our own steps during one pass, so
     * once ScaleUp found no room at all it will find none for the rest of
     * the pass: skip it (keeps a pass O(horizon * V) under overload). */
    id = s->up_failed ? 0 : scale_up(s, t, early, now);
    if (id)
        return id;
    id = choose(s, t, now, false, &early, &evcm);
    return id ? id : evcm;
}

/* ---- rolling window (R9) ---- */

/* Put t on VCM id in the current plan (eq. 10, 11). */
static void assign(gmpd_ttsa *s, task *t, uint32_t id, uint64_t now)
{
    t->vcm = id;
    if (!id)
        return;
    vcm *v = &s->v[id];
    t->st = max64(v->rt, t->a);
    v->rt = t->st + tct_ns(v, t->len);
    v->planned++;
    if (!v->first) {
        v->first = t;
        if (t->st <= now)
            s->h[v->host].pthr += vcm_rate(s, &v->r);
    }
}

static void plan(gmpd_ttsa *s, uint64_t now)
{
    s->st.plans++;
    pass_begin(s, now);
    for (uint32_t j = 0; j < s->n_vlive; j++) {
        vcm *v = &s->v[s->live[j]];
        v->first = NULL;
        v->planned = v->nq;   /* bound tasks stay counted */
    }
    uint32_t n = s->n_win < s->p.horizon ? s->n_win : s->p.horizon;
    uint32_t n_late = 0;
    for (uint32_t i = 0; i < n; i++) {
        task *t = s->win[i];
        uint32_t id = decide(s, t, now);
        vcm *v = id ? &s->v[id] : NULL;
        /* A task that misses its deadline wherever it goes is planned
         * after the ones that can still make it (EDF's domino effect:
         * serving a lost task first would make the next ones late too). */
        if (v && max64(v->rt, t->a) + tct_ns(v, t->len) > t->d) {
            s->late[n_late++] = t;
            continue;
        }
        assign(s, t, id, now);
    }
    /* Decide again for the late ones, in EDF order: each now sees the
     * VCMs' ready times with the late tasks ahead of it, so ScaleUp is
     * judged against where the task would really finish. */
    for (uint32_t i = 0; i < n_late; i++)
        assign(s, s->late[i], decide(s, s->late[i], now), now);
    s->st.planned += n;
    /* Step 6: dispatch each idle VCM's first planned task. */
    for (uint32_t j = 0; j < s->n_vlive; j++) {
        uint32_t i = s->live[j];
        vcm *v = &s->v[i];
        if (v->run || !v->first || v->first->st > now)
            continue;
        task *t = v->first;
        uint32_t w = 0;   /* unlink from the window (keeps EDF order) */
        while (s->win[w] != t)
            w++;
        memmove(&s->win[w], &s->win[w + 1],
                (s->n_win - w - 1) * sizeof *s->win);
        s->n_win--;
        v->first = NULL;
        v->planned--;
        start_task(s, i, t, now);
    }
}

/* Insert keeping (d, id) order: binary search, one memmove. */
static void win_insert(gmpd_ttsa *s, task *t)
{
    uint32_t lo = 0, hi = s->n_win;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        const task *m = s->win[mid];
        if (m->d < t->d || (m->d == t->d && m->id < t->id))
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&s->win[lo + 1], &s->win[lo], (s->n_win - lo) * sizeof *s->win);
    s->win[lo] = t;
    s->n_win++;
}

/* ---- bound tasks (non-rolling variants, place) ---- */

static void queue_start(gmpd_ttsa *s, uint32_t id, uint64_t now)
{
    vcm *v = &s->v[id];
    if (v->run || !v->qhead || v->ready_at > now)
        return;
    task *t = v->qhead;
    v->qhead = t->next;
    if (!v->qhead)
        v->qtail = NULL;
    v->planned--;
    v->nq--;
    start_task(s, id, t, now);
}

/* qready from scratch: the running task's end, then the queue (eq. 10,
 * 11).  A task that ended early or left the queue frees the VCM sooner
 * than the projection made when the tasks were bound. */
static void requeue(gmpd_ttsa *s, uint32_t id, uint64_t now)
{
    vcm *v = &s->v[id];
    uint64_t rt = vcm_free_at(v, now);
    for (task *q = v->qhead; q; q = q->next) {
        q->st = max64(rt, q->a);
        rt = q->st + tct_ns(v, q->len);
    }
    v->qready = rt;
}

static uint32_t bind(gmpd_ttsa *s, task *t, uint64_t now)
{
    pass_begin(s, now);
    uint32_t id = decide(s, t, now);
    if (!id)
        return 0;
    vcm *v = &s->v[id];
    t->vcm = id;
    t->bound = true;
    t->st = max64(v->rt, t->a);
    v->qready = t->st + tct_ns(v, t->len);
    t->next = NULL;
    if (v->qtail)
        v->qtail->next = t;
    else
        v->qhead = t;
    v->qtail = t;
    v->planned++;
    v->nq++;
    queue_start(s, id, now);
    return id;
}

/* ---- arrivals and completions ---- */

static task *task_new(gmpd_ttsa *s, uint64_t id, double len, uint64_t d,
                      uint64_t now)
{
    if (!s || !isfinite(len) || len <= 0 || len > 1e15 ||
        s->n_live >= s->p.max_window || tab_get(s, id))
        return NULL;
    task *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    *t = (task){.id = id, .a = now, .d = d, .len = len};
    tab_put(s, t);
    account(s, now);
    s->st.submitted++;
    return t;
}

int gmpd_ttsa_submit(gmpd_ttsa *s, uint64_t id, double len_mi,
                     uint64_t deadline_ns, uint64_t now)
{
    task *t = task_new(s, id, len_mi, deadline_ns, now);
    if (!t)
        return -1;
    if (rolling(s)) {
        win_insert(s, t);
        plan(s, now);
    } else {
        bind(s, t, now);
        if (!t->vcm)   /* no VCM at all: keep it until one exists */
            win_insert(s, t);
    }
    return 0;
}

int gmpd_ttsa_place(gmpd_ttsa *s, uint64_t id, double len_mi,
                    uint64_t deadline_ns, uint64_t now, uint32_t *vcm_out)
{
    task *t = task_new(s, id, len_mi, deadline_ns, now);
    if (!t)
        return -1;
    uint32_t v = bind(s, t, now);
    if (!v) {
        tab_del(s, t);
        s->st.dropped++;
        free(t);
        return -1;
    }
    if (vcm_out)
        *vcm_out = v;
    return 0;
}

static void unqueue(vcm *v, task *t)
{
    task **pp = &v->qhead, *prev = NULL;
    while (*pp && *pp != t)
        prev = *pp, pp = &(*pp)->next;
    if (!*pp)
        return;
    *pp = t->next;
    if (v->qtail == t)
        v->qtail = prev;
    v->planned--;
    v->nq--;
}

static void count_end(gmpd_ttsa *s, const task *t, bool done, uint64_t now)
{
    if (!done) {
        s->st.dropped++;
        return;
    }
    s->st.finished++;
    s->st.sum_ct_s += (double)(now - t->a) / NS;
    if (now > t->d)
        s->st.missed++;
}

static void win_remove(gmpd_ttsa *s, const task *t)
{
    for (uint32_t w = 0; w < s->n_win; w++)
        if (s->win[w] == t) {
            memmove(&s->win[w], &s->win[w + 1],
                    (s->n_win - w - 1) * sizeof *s->win);
            s->n_win--;
            return;
        }
}

/* t leaves the model: completed (done) or dropped. */
static int task_end(gmpd_ttsa *s, uint64_t id, bool done, uint64_t now)
{
    task *t = s ? tab_get(s, id) : NULL;
    if (!t)
        return -1;
    account(s, now);
    vcm *v = t->vcm ? &s->v[t->vcm] : NULL;
    bool waiting = false;
    if (t->running && v && v->run == t) {
        host *h = &s->h[v->host];
        h->thr -= vcm_rate(s, &v->r);
        h->busy_mips -= v->r.mips;
        if (h->thr < 1e-9)
            h->thr = h->busy_mips = 0;
        v->run = NULL;
        v->idle_since = now;
        count_end(s, t, done, now);
    } else if (t->bound && v) {
        /* the daemon's tasks share a node, so they may end before the
         * model started them: still a completion */
        unqueue(v, t);
        count_end(s, t, done, now);
    } else {
        win_remove(s, t);   /* never started: dropped either way */
        count_end(s, t, false, now);
        waiting = true;
    }
    uint32_t vid = t->vcm;
    tab_del(s, t);
    free(t);
    /* re-plan whenever the window changed: the plan may still point at t */
    if (rolling(s) || s->n_win || waiting)
        plan(s, now);
    if (vid && s->v[vid].used) {
        queue_start(s, vid, now);
        requeue(s, vid, now);
    }
    return 0;
}

int gmpd_ttsa_finish(gmpd_ttsa *s, uint64_t id, uint64_t now)
{
    return task_end(s, id, true, now);
}

int gmpd_ttsa_drop(gmpd_ttsa *s, uint64_t id, uint64_t now)
{
    return task_end(s, id, false, now);
}

/* ---- ScaleUp for a server above the band (R11) ---- */

/* A booted server other than `from` with room for a VCM of type r that
 * stays inside the band with it busy: the one closest to the band's top
 * (as step 1 chooses), or 0. */
static uint32_t band_room(const gmpd_ttsa *s, const gmpd_ttsa_res *r,
                          uint32_t from, uint64_t now)
{
    uint32_t best = 0;
    for (uint32_t k = 1; k <= s->n_host; k++) {
        const host *h = &s->h[k];
        if (k == from || !host_up(h, now) || !host_fits(h, r) ||
            h->thr + vcm_rate(s, r) > s->p.band_hi * h->spec.bw_mbps + 1e-9)
            continue;
        if (!best || h->thr > s->h[best].thr)
            best = k;
    }
    return best;
}

/* Host k ran above the band's top over the last period and still does.
 * Move busy VCMs off it (live migration) to servers that stay inside the
 * band until it is back under the top; when that is not possible (no
 * migration, or nowhere to go) and no server has room inside the band
 * for new work, ScaleUp step 3 powers one on. */
static void relieve(gmpd_ttsa *s, uint32_t k, uint64_t now)
{
    host *h = &s->h[k];
    double top = s->p.band_hi * h->spec.bw_mbps;
    double load = h->mean_thr < h->thr ? h->mean_thr : h->thr;
    for (uint32_t j = 0; migrating(s) && load > top + 1e-9 &&
                         j < s->n_vlive; j++) {
        uint32_t i = s->live[j];
        const vcm *v = &s->v[i];
        if (v->host != k || !v->run)
            continue;
        uint32_t to = band_room(s, &v->r, k, now);
        if (!to)
            break;
        migrate(s, i, to, now);
        load -= vcm_rate(s, &v->r);
    }
    if (load > top + 1e-9 && !band_room(s, &s->p.types[0], k, now))
        step3(s, 0, now);
}

static void relieve_all(gmpd_ttsa *s, uint64_t now)
{
    for (uint32_t k = 1; k <= s->n_host; k++) {
        const host *h = &s->h[k];
        if (host_up(h, now) &&
            h->mean_thr > s->p.band_hi * h->spec.bw_mbps + 1e-9)
            relieve(s, k, now);
    }
}

/* ---- ScaleDown (R12) ---- */

static bool vcm_idle(const gmpd_ttsa *s, const vcm *v, uint64_t now)
{
    return v->used && !v->run && !v->qhead && !v->first && v->ready_at <= now &&
           now - v->idle_since >= s->p.idle_grace_ns;
}

/* All of host src's VCMs onto other hosts (ascending order of ids in
 * `dst`, i.e. descending throughput), or none.  load[] is each server's
 * throughput of the last period plus what this ScaleDown pass already
 * moved onto it, so a pass never fills a destination above the band. */
static bool consolidate(gmpd_ttsa *s, uint32_t src, const uint32_t *dst,
                        uint32_t n_dst, double *load, uint64_t now)
{
    double fm[GMPD_TTSA_MAX_HOSTS + 1], fr[GMPD_TTSA_MAX_HOSTS + 1],
        ft[GMPD_TTSA_MAX_HOSTS + 1];
    uint32_t moves[GMPD_TTSA_MAX_VCMS][2];
    int n = 0;
    for (uint32_t j = 1; j <= s->n_host; j++) {
        fm[j] = s->h[j].spec.mips - s->h[j].used_mips;
        fr[j] = s->h[j].spec.mem_mb - s->h[j].used_mem;
        ft[j] = s->p.band_hi * s->h[j].spec.bw_mbps - load[j];
    }
    for (uint32_t j = 0; j < s->n_vlive; j++) {
        uint32_t i = s->live[j];
        const vcm *v = &s->v[i];
        if (v->host != src)
            continue;
        double rate = v->run ? vcm_rate(s, &v->r) : 0;
        uint32_t to = 0;
        for (uint32_t d = 0; d < n_dst && !to; d++) {
            uint32_t k = dst[d];
            if (k != src && host_up(&s->h[k], now) &&
                fm[k] + 1e-9 >= v->r.mips && fr[k] + 1e-9 >= v->r.mem_mb &&
                ft[k] + 1e-9 >= rate)
                to = k;
        }
        if (!to)
            return false;   /* R12: all of a source's VCMs or none */
        fm[to] -= v->r.mips, fr[to] -= v->r.mem_mb, ft[to] -= rate;
        moves[n][0] = i, moves[n][1] = to;
        n++;
    }
    for (int i = 0; i < n; i++) {
        const vcm *v = &s->v[moves[i][0]];
        load[moves[i][1]] += v->run ? vcm_rate(s, &v->r) : 0;
        migrate(s, moves[i][0], moves[i][1], now);
    }
    s->st.consolidations++;
    note(s, now, "consolidate", 0, 0, src, 0);
    return power(s, src, false, now);
}

static uint32_t hosts_on(const gmpd_ttsa *s)
{
    uint32_t n = 0;
    for (uint32_t k = 1; k <= s->n_host; k++)
        n += s->h[k].on;
    return n;
}

static void scale_down(gmpd_ttsa *s, uint64_t now)
{
    /* 1) shut idle VCMs on servers under the band, then empty servers */
    for (uint32_t k = 1; k <= s->n_host; k++) {
        host *h = &s->h[k];
        if (!h->on || h->ready_at > now ||
            h->mean_thr >= s->p.band_lo * h->spec.bw_mbps)
            continue;
        for (uint32_t j = s->n_vlive; j-- > 0;) {   /* stop_vcm shrinks it */
            uint32_t i = s->live[j];
            if (s->v[i].host == k && vcm_idle(s, &s->v[i], now) &&
                s->st.vcms > s->p.min_vcms)
                stop_vcm(s, i, now);
        }
        if (h->n_vcm == 0 && hosts_on(s) > 1)
            power(s, k, false, now);
    }
    if (!migrating(s))
        return;
    /* 2) SH ascending, DH descending by throughput */
    uint32_t order[GMPD_TTSA_MAX_HOSTS], n = 0;
    for (uint32_t k = 1; k <= s->n_host; k++)
        if (s->h[k].on && s->h[k].ready_at <= now)
            order[n++] = k;
    for (uint32_t i = 1; i < n; i++)   /* insertion sort, n <= 64 */
        for (uint32_t j = i; j > 0 && s->h[order[j]].mean_thr <
                                          s->h[order[j - 1]].mean_thr; j--) {
            uint32_t x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    uint32_t dh[GMPD_TTSA_MAX_HOSTS];
    double load[GMPD_TTSA_MAX_HOSTS + 1];
    for (uint32_t i = 0; i < n; i++)
        dh[i] = order[n - 1 - i];
    for (uint32_t k = 1; k <= s->n_host; k++)
        load[k] = s->h[k].mean_thr;
    for (uint32_t i = 0; i < n && hosts_on(s) > 1; i++) {
        host *h = &s->h[order[i]];
        if (!h->on || load[order[i]] >= s->p.band_lo * h->spec.bw_mbps)
            continue;
        consolidate(s, order[i], dh, n, load, now);
    }
}

void gmpd_ttsa_tick(gmpd_ttsa *s, uint64_t now)
{
    if (!s)
        return;
    account(s, now);
    if (now >= s->next_period) {
        double per = (double)s->p.period_ns / NS;
        for (uint32_t k = 1; k <= s->n_host; k++) {
            s->h[k].mean_thr = s->h[k].parea / per;   /* eq. 9 */
            s->h[k].parea = 0;
        }
        s->next_period = now + s->p.period_ns;
        relieve_all(s, now);
        scale_down(s, now);
    }
    if (rolling(s) || s->n_win)
        plan(s, now);
    for (uint32_t j = 0; j < s->n_vlive; j++)
        queue_start(s, s->live[j], now);
}

uint64_t gmpd_ttsa_next_tick(const gmpd_ttsa *s)
{
    if (!s)
        return UINT64_MAX;
    uint64_t t = s->next_period;
    for (uint32_t j = 0; j < s->n_vlive; j++) {
        const vcm *v = &s->v[s->live[j]];
        if (v->ready_at > s->last_acct && v->ready_at < t &&
            (v->qhead || s->n_win))
            t = v->ready_at;
    }
    return t;
}

/* ---- pool setup ---- */

int gmpd_ttsa_add_host(gmpd_ttsa *s, const gmpd_ttsa_res *spec, bool on,
                       uint64_t now)
{
    if (!s || !spec || !res_ok(spec) || s->n_host >= GMPD_TTSA_MAX_HOSTS)
        return -1;
    account(s, now);
    uint32_t k = ++s->n_host;
    s->h[k] = (host){.spec = *spec, .on = on};
    if (on)
        s->st.hosts_on++;
    return (int)k;
}

int gmpd_ttsa_add_vcm(gmpd_ttsa *s, uint32_t hid, unsigned type, uint64_t now)
{
    if (!s || hid < 1 || hid > s->n_host || type >= s->p.n_types ||
        !s->h[hid].on)
        return -1;
    account(s, now);
    uint32_t id = create_vcm(s, hid, &s->p.types[type], now);
    return id ? (int)id : -1;
}

/* ---- inspection ---- */

void gmpd_ttsa_get_stats(gmpd_ttsa *s, uint64_t now, gmpd_ttsa_stats *out)
{
    account(s, now);
    *out = s->st;
    out->window = s->n_win;
}

const gmpd_ttsa_params *gmpd_ttsa_get_params(const gmpd_ttsa *s)
{
    return &s->p;
}

size_t gmpd_ttsa_hosts(const gmpd_ttsa *s, gmpd_ttsa_host_info *out,
                       size_t cap)
{
    size_t n = 0;
    for (uint32_t k = 1; k <= s->n_host && n < cap; k++) {
        const host *h = &s->h[k];
        out[n++] = (gmpd_ttsa_host_info){k, h->on, h->thr, h->spec.bw_mbps,
                                         h->spec.mips, h->used_mips,
                                         h->n_vcm};
    }
    return n;
}

size_t gmpd_ttsa_vcms(const gmpd_ttsa *s, gmpd_ttsa_vcm_info *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t i = 1; i <= GMPD_TTSA_MAX_VCMS && n < cap; i++) {
        const vcm *v = &s->v[i];
        if (v->used)
            out[n++] = (gmpd_ttsa_vcm_info){i, v->host, v->r.mips,
                                            v->r.mem_mb, v->r.bw_mbps,
                                            v->run != NULL, v->ready_at,
                                            v->planned};
    }
    return n;
}

static gmpd_ttsa_task_info info_of(const task *t)
{
    return (gmpd_ttsa_task_info){t->id, t->a, t->d, t->st, t->len, t->vcm};
}

size_t gmpd_ttsa_window(const gmpd_ttsa *s, gmpd_ttsa_task_info *out,
                        size_t cap)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s->n_win && n < cap; i++)
        out[n++] = info_of(s->win[i]);
    for (uint32_t i = 1; i <= GMPD_TTSA_MAX_VCMS && n < cap; i++)
        for (const task *t = s->v[i].used ? s->v[i].qhead : NULL;
             t && n < cap; t = t->next)
            out[n++] = info_of(t);
    return n;
}

size_t gmpd_ttsa_decisions(const gmpd_ttsa *s, gmpd_ttsa_decision *out,
                           size_t cap)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s->log_n && n < cap; i++)
        out[n++] = s->log[(s->log_pos + GMPD_TTSA_LOG - 1 - i) %
                          GMPD_TTSA_LOG];
    return n;
}
