/* gmpool-sim: discrete-event simulator that drives the TTSA core
 * (backend/ttsa.c, the code gmpoold runs) with Poisson arrivals and
 * reproduces the paper's two experiments (docs/scheduling.md). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ttsa.h"

#define S_ 1e9

typedef struct cfg {
    unsigned tasks;
    double interval_ms;
    uint64_t seed;
    unsigned hosts, hosts_on, vcms_per_host;
    unsigned window;             /* the core's max_window, 0 = default */
    double period_s;             /* the core's t_p, 0 = default */
    double len_lo, len_hi;       /* task length, MI, uniform */
    double slack_lo, slack_hi;   /* deadline = a + l/1000 * U(slack) s */
} cfg;

typedef struct result {
    double ct_ms, miss, cpu, thr, band, hosts, cost, wall_s;
    double call_us, call_max_ms;   /* wall time per core call: mean, max */
    uint64_t up1, up2, up3, migr;
    uint64_t dropped;              /* refused at submit or dropped */
} result;

/* Wall time spent inside the core's submit/finish/tick calls. */
typedef struct timing {
    double sum_s, max_s;
    uint64_t calls;
} timing;

/* ---- deterministic RNG (splitmix64) ---- */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_u01(uint64_t *s)
{
    return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

/* ---- completion events: binary min-heap ---- */
typedef struct ev {
    uint64_t t, id;
} ev;

typedef struct heap {
    ev *a;
    size_t n, cap;
} heap;

static int heap_push(heap *h, uint64_t t, uint64_t id)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        ev *a = realloc(h->a, cap * sizeof *a);
        if (!a)
            return -1;
        h->a = a, h->cap = cap;
    }
    size_t i = h->n++;
    while (i && h->a[(i - 1) / 2].t > t) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = (ev){t, id};
    return 0;
}

static ev heap_pop(heap *h)
{
    ev top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->a[c + 1].t < h->a[c].t)
            c++;
        if (h->a[c].t >= last.t)
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

static void on_start(void *arg, uint64_t task, uint32_t vcm, uint64_t st,
                     uint64_t fin)
{
    (void)vcm, (void)st;
    if (heap_push(arg, fin, task) != 0) {
        fprintf(stderr, "gmpool-sim: out of memory\n");
        exit(1);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void timed(timing *tm, double t0)
{
    double dt = now_s() - t0;
    tm->sum_s += dt;
    tm->max_s = dt > tm->max_s ? dt : tm->max_s;
    tm->calls++;
}

/* One run of one variant over the task trace made from c->seed. */
static int run(const cfg *c, gmpd_ttsa_variant var, result *r)
{
    double w0 = now_s();
    heap h = {0};
    gmpd_ttsa_params p;
    gmpd_ttsa_defaults(&p);
    p.variant = var;
    if (c->window)
        p.max_window = c->window;
    if (c->period_s > 0)
        p.period_ns = (uint64_t)(c->period_s * S_);
    gmpd_ttsa_ops ops = {.task_start = on_start};
    gmpd_ttsa *s = gmpd_ttsa_new(&p, &ops, &h);
    if (!s)
        return -1;
    /* CloudSim-like hosts: 4 x 2500 MIPS, 16 GB, 1 Gb/s */
    gmpd_ttsa_res hs = {10000, 16384, 1000};
    for (unsigned k = 0; k < c->hosts; k++)
        gmpd_ttsa_add_host(s, &hs, k < c->hosts_on, 0);
    for (unsigned k = 0; k < c->hosts_on; k++)
        for (unsigned i = 0; i < c->vcms_per_host; i++)
            gmpd_ttsa_add_vcm(s, k + 1, 0, 0);
    uint64_t rng = c->seed, t_arr = 0;
    unsigned sent = 0, refused = 0;
    double next_arr = 0;
    uint64_t last_progress = 0;
    gmpd_ttsa_stats st;
    timing tm = {0};
    for (;;) {
        gmpd_ttsa_get_stats(s, t_arr, &st);
        if (sent == c->tasks && st.finished + st.dropped + refused >= c->tasks)
            break;
        uint64_t ta = sent < c->tasks ? (uint64_t)next_arr : UINT64_MAX;
        uint64_t tc = h.n ? h.a[0].t : UINT64_MAX;
        uint64_t tt = gmpd_ttsa_next_tick(s);
        if (sent == c->tasks && !h.n && tt - last_progress > 3600 * S_) {
            fprintf(stderr, "gmpool-sim: %s stalled\n",
                    gmpd_ttsa_variant_name(var));
            break;
        }
        double t0 = now_s();
        if (tc <= ta && tc <= tt) {
            ev e = heap_pop(&h);
            t0 = now_s();
            gmpd_ttsa_finish(s, e.id, e.t);
            timed(&tm, t0);
            t_arr = last_progress = e.t;
        } else if (tt < ta) {
            gmpd_ttsa_tick(s, tt);
            timed(&tm, t0);
            t_arr = tt;
        } else {
            double len = c->len_lo + (c->len_hi - c->len_lo) * rng_u01(&rng);
            double slack =
                c->slack_lo + (c->slack_hi - c->slack_lo) * rng_u01(&rng);
            uint64_t d = ta + (uint64_t)(len / 1000.0 * slack * S_);
            t0 = now_s();
            if (gmpd_ttsa_submit(s, sent + 1, len, d, ta) != 0)
                refused++;   /* window full: the task is lost */
            timed(&tm, t0);
            sent++;
            t_arr = last_progress = ta;
            /* Poisson arrivals: exponential gaps with the mean interval */
            next_arr += -log(rng_u01(&rng)) * c->interval_ms * 1e6;
        }
    }
    gmpd_ttsa_get_stats(s, t_arr, &st);
    *r = (result){
        .ct_ms = st.finished ? st.sum_ct_s / st.finished * 1e3 : 0,
        .miss = st.finished ? (double)st.missed / st.finished : 0,
        .cpu = st.cap_mips_area ? st.busy_mips_area / st.cap_mips_area : 0,
        .thr = st.on_s ? st.thr_area / st.on_s : 0,
        .band = st.on_s ? st.in_band_s / st.on_s : 0,
        .hosts = t_arr ? st.on_s / ((double)t_arr / S_) : 0,
        .cost = st.plans ? (double)st.planned / st.plans : 0,
        .up1 = st.scale_up[0], .up2 = st.scale_up[1], .up3 = st.scale_up[2],
        .migr = st.migrations,
        .dropped = st.dropped + refused,
        .call_us = tm.calls ? tm.sum_s / tm.calls * 1e6 : 0,
        .call_max_ms = tm.max_s * 1e3,
    };
    r->wall_s = now_s() - w0;
    gmpd_ttsa_free(s);
    free(h.a);
    return 0;
}

static const char csv_head[] =
    "x,variant,mean_ct_ms,miss_ratio,cpu_util,mean_thr_mbps,band_share,"
    "mean_hosts,scaleup1,scaleup2,scaleup3,migrations,tasks_per_plan,dropped,"
    "wall_s,us_per_call,max_call_ms\n";

static void csv_row(FILE *f, double x, gmpd_ttsa_variant v, const result *r)
{
    fprintf(f,
            "%g,%s,%.1f,%.4f,%.4f,%.1f,%.4f,%.2f,%llu,%llu,%llu,%llu,%.2f,"
            "%llu,%.2f,%.1f,%.2f\n",
            x, gmpd_ttsa_variant_name(v), r->ct_ms, r->miss, r->cpu, r->thr,
            r->band, r->hosts, (unsigned long long)r->up1,
            (unsigned long long)r->up2, (unsigned long long)r->up3,
            (unsigned long long)r->migr, r->cost,
            (unsigned long long)r->dropped, r->wall_s, r->call_us,
            r->call_max_ms);
    fflush(f);
}

/* One chart per metric with one line per variant (gnuplot, pngcairo or
 * png).  Returns 0, or -1 when gnuplot failed or is missing. */
static int chart(const char *dir, const char *name, const char *xlabel)
{
    static const struct {
        int col;
        const char *metric, *label;
    } m[] = {{3, "ct", "mean completion time (ms)"},
             {4, "miss", "deadline-miss ratio"},
             {5, "cpu", "CPU utilisation"},
             {6, "thr", "mean server throughput (Mb/s)"},
             {7, "band", "share of time inside 70-85 %"}};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.gp", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "set terminal png size 800,500\nset datafile separator ','\n"
               "set key outside right\nset grid\n");
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        fprintf(f, "set output '%s/%s_%s.png'\nset xlabel '%s'\n"
                   "set ylabel '%s'\nplot ",
                dir, name, m[i].metric, xlabel, m[i].label);
        /* one variant's rows per line: filtering inside `using` leaves
         * undefined points between them, which breaks the lines */
        for (int v = 0; v < 4; v++)
            fprintf(f, "%s'< grep ,%s, %s/%s.csv' using 1:%d with "
                       "linespoints title '%s'",
                    v ? ", " : "",
                    gmpd_ttsa_variant_name((gmpd_ttsa_variant)v), dir, name,
                    m[i].col, gmpd_ttsa_variant_name((gmpd_ttsa_variant)v));
        fprintf(f, "\n");
    }
    fclose(f);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", path);
    int rc = system(cmd);
    if (rc != 0)
        return -1;   /* keep the script to look at */
    remove(path);    /* rendered: only the CSV and PNGs stay in DIR */
    return 0;
}

/* Runs each variant in mask at one x; rows go to stdout and, if given, f. */
static int run_variants(const cfg *c, unsigned mask, double x, FILE *f)
{
    for (int v = 0; v < 4; v++) {
        result r;
        if (!(mask & (1u << v)))
            continue;
        if (run(c, (gmpd_ttsa_variant)v, &r) != 0)
            return 1;
        if (f)
            csv_row(f, x, (gmpd_ttsa_variant)v, &r);
        csv_row(stdout, x, (gmpd_ttsa_variant)v, &r);
    }
    return 0;
}

static int experiment(const cfg *base, const char *dir, bool by_count,
                      unsigned mask, bool charts)
{
    char path[4096];
    const char *name = by_count ? "count" : "interval";
    snprintf(path, sizeof path, "%s/%s.csv", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "gmpool-sim: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fputs(csv_head, f);
    printf("# %s experiment -> %s\n%s", name, path, csv_head);
    for (int i = 0; i < 6; i++) {
        cfg c = *base;
        double x;
        if (by_count)
            x = c.tasks = 5000u * (unsigned)(i + 1);
        else if (i < 5)
            x = c.interval_ms = 60.0 * (i + 1);
        else
            break;
        if (run_variants(&c, mask, x, f) != 0) {
            fclose(f);
            return 1;
        }
    }
    fclose(f);
    if (charts && chart(dir, name, by_count ? "tasks" : "mean interval (ms)")) {
        fprintf(stderr, "gmpool-sim: chart step failed (is gnuplot "
                        "installed? scripts/deps.sh)\n");
        return 1;
    }
    return 0;
}

static const char usage[] =
    "usage: gmpool-sim [options]\n"
    "  -n, --tasks N         task count (default 10000)\n"
    "  -i, --interval MS     mean Poisson inter-arrival time (default 60)\n"
    "  -s, --seed S          RNG seed (default 1)\n"
    "  -v, --variant LIST    ttsa,nrttsa,nmttsa,nrmttsa or all (default)\n"
    "  -e, --experiment E    count (5000..30000 tasks at -i), interval\n"
    "                        (60..300 ms at -n), or both; writes CSV to -o\n"
    "  -d, --slack LO,HI     deadline = a + l/1000 MIPS * U(LO,HI) (1.2,2.5)\n"
    "  -p, --period S        refresh period t_p of eq. 9 and ScaleDown, s\n"
    "                        (default 10)\n"
    "  -w, --window N        tasks the core holds at most (default 32768);\n"
    "                        submissions beyond are refused and reported\n"
    "                        in the dropped column\n"
    "  -o, --out DIR         output directory (default sim-out)\n"
    "  -c, --charts          render PNG charts with gnuplot\n"
    "Without -e: one run per variant, CSV on stdout.\n";

int main(int argc, char **argv)
{
    cfg c = {.tasks = 10000, .interval_ms = 60, .seed = 1, .hosts = 16,
             .hosts_on = 2, .vcms_per_host = 4, .len_lo = 500,
             .len_hi = 3500, .slack_lo = 1.2, .slack_hi = 2.5};
    const char *exp = NULL, *dir = "sim-out";
    unsigned mask = 15;
    bool charts = false;
    static const struct option lo[] = {
        {"tasks", 1, 0, 'n'},   {"interval", 1, 0, 'i'},
        {"seed", 1, 0, 's'},    {"variant", 1, 0, 'v'},
        {"experiment", 1, 0, 'e'}, {"out", 1, 0, 'o'},
        {"charts", 0, 0, 'c'},  {"slack", 1, 0, 'd'},  {"window", 1, 0, 'w'},
        {"period", 1, 0, 'p'},
        {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    int o;
    char *end;
    while ((o = getopt_long(argc, argv, "n:i:s:v:e:d:w:p:o:ch", lo, NULL)) != -1) {
        switch (o) {
        case 'n': {
            unsigned long n = strtoul(optarg, &end, 10);
            if (*end || n == 0 || n > 1000000)
                goto bad;
            c.tasks = (unsigned)n;
            break;
        }
        case 'i':
            c.interval_ms = strtod(optarg, &end);
            if (*end || !(c.interval_ms > 0) || c.interval_ms > 1e6)
                goto bad;
            break;
        case 's':
            c.seed = strtoull(optarg, &end, 10);
            if (*end)
                goto bad;
            break;
        case 'v': {
            mask = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                gmpd_ttsa_variant v;
                if (strcmp(t, "all") == 0)
                    mask = 15;
                else if (gmpd_ttsa_variant_parse(t, &v) == 0)
                    mask |= 1u << v;
                else
                    goto bad;
            }
            break;
        }
        case 'e':
            if (strcmp(optarg, "count") && strcmp(optarg, "interval") &&
                strcmp(optarg, "both"))
                goto bad;
            exp = optarg;
            break;
        case 'd':
            if (sscanf(optarg, "%lf,%lf", &c.slack_lo, &c.slack_hi) != 2 ||
                !(c.slack_lo > 0) || !(c.slack_hi >= c.slack_lo) ||
                c.slack_hi > 1e6)
                goto bad;
            break;
        case 'w': {
            unsigned long n = strtoul(optarg, &end, 10);
            if (*end || n == 0 || n > GMPD_TTSA_MAX_WINDOW)
                goto bad;
            c.window = (unsigned)n;
            break;
        }
        case 'p':
            c.period_s = strtod(optarg, &end);
            if (*end || !(c.period_s >= 0.001) || c.period_s > 1e6)
                goto bad;
            break;
        case 'o':
            dir = optarg;
            break;
        case 'c':
            charts = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            goto bad;
        }
    }
    if (optind != argc || !mask)
        goto bad;
    if (!exp) {
        fputs(csv_head, stdout);
        return run_variants(&c, mask, c.tasks, NULL);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gmpool-sim: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int rc = 0;
    if (strcmp(exp, "interval") != 0)
        rc |= experiment(&c, dir, true, mask, charts);
    if (strcmp(exp, "count") != 0)
        rc |= experiment(&c, dir, false, mask, charts);
    return rc;
bad:
    fputs(usage, stderr);
    return 2;
}
