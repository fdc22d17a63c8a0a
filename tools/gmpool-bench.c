/* gmpool-bench: the async windowed sharding experiment of paper 002
 * (BRIEF R14-R19) on this pool.  One large job computed four ways, side by
 * side in one run, in rotating order so drift hits every mode alike:
 *   engine  - in-process, the daemon's own engine (the "directly attached
 *             device": the paper's loss figure compares against this);
 *   openssl - in-process plain OpenSSL, what a user would otherwise run;
 *   sync    - through gmpoold, window 1 (send a shard, wait, send the next);
 *   async   - through gmpoold, the R16 dynamic window.
 * Then a concurrency run (fig. 8: many client threads at once) and the
 * latency of small jobs, on an idle pool and beside bulk work on every
 * node ("busy").  Prints tables, writes CSV, renders PNG charts
 * with gnuplot.  Starts its own gmpoold unless given --server. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "engine.h"
#include "gmpool.h"
#include "util.h"

#define MB (1024u * 1024u)
#define KB 1024u
#define MAX_LIST 16

typedef struct alg_def {
    const char *name;
    uint16_t alg;
    unsigned flags;
    const char *evp;
    bool digest;
} alg_def;

static const alg_def g_alg_defs[] = {
    {"sm3", GMP_ALG_SM3, 0, "SM3", true},
    {"sm4-cbc-enc", GMP_ALG_SM4_CBC, 0, "SM4-CBC", false},
    {"sm4-cbc-dec", GMP_ALG_SM4_CBC, GMP_TASK_DECRYPT, "SM4-CBC", false},
    {"sm4-ctr", GMP_ALG_SM4_CTR, 0, "SM4-CTR", false},
    {"sm4-ecb", GMP_ALG_SM4_ECB, 0, "SM4-ECB", false},
};
#define N_ALG_DEFS (sizeof g_alg_defs / sizeof g_alg_defs[0])

typedef enum mode { M_ENGINE, M_OPENSSL, M_SYNC, M_ASYNC, N_MODES } mode;
static const char *const g_mode_names[N_MODES] = {"engine", "openssl", "sync",
                                                  "async"};

typedef struct list {
    unsigned v[MAX_LIST];
    unsigned n;
} list;

typedef struct cfg {
    const alg_def *algs[N_ALG_DEFS];
    unsigned n_algs;
    const alg_def *conc_algs[N_ALG_DEFS];
    unsigned n_conc_algs;
    list payload_mb, shard_kb, threads, small_threads;
    unsigned reps, conc_payload_mb, conc_shard_kb, small_ops;
    unsigned window, connections, nodes;
    const char *server, *credentials, *gmpoold, *outdir;
    bool charts, progress, no_single, no_conc, no_small;
    unsigned modes;          /* bit per mode of the single-task run */
    const char *daemon_args[8]; /* extra arguments for the gmpoold we start */
    unsigned n_daemon_args;
} cfg;

static cfg C;
static uint8_t g_key[16], g_iv[16];

/* ---- the daemon we start (and must stop) ---- */

static pid_t g_daemon = 0;
static char g_dir[64];

static void on_signal(int sig)
{
    if (g_daemon > 0)
        kill(g_daemon, SIGTERM);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void daemon_stop(void)
{
    if (g_daemon <= 0)
        return;
    kill(g_daemon, SIGTERM);
    int st = 0;
    for (int i = 0; i < 400 && waitpid(g_daemon, &st, WNOHANG) == 0; i++)
        sleep_ms(25);
    if (waitpid(g_daemon, &st, WNOHANG) == 0) {
        kill(g_daemon, SIGKILL);
        waitpid(g_daemon, &st, 0);
    }
    fprintf(stderr, "gmpool-bench: stopped gmpoold pid %d\n", (int)g_daemon);
    g_daemon = 0;
    nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* $GMPOOLD, else the build tree's backend/gmpoold beside tools/, else
 * gmpoold on PATH. */
static const char *daemon_path(const char *argv0, char *buf, size_t cap)
{
    if (C.gmpoold)
        return C.gmpoold;
    const char *env = getenv("GMPOOLD");
    if (env && *env)
        return env;
    const char *slash = strrchr(argv0, '/');
    if (slash && gmpc_fmt(buf, cap, "%.*s/../backend/gmpoold",
                          (int)(slash - argv0), argv0) &&
        access(buf, X_OK) == 0)
        return buf;
    return "gmpoold";
}

static void daemon_exec(const char *bin)
{
    char data[80], sock[96], admin[96], nodes[16], log[96];
    snprintf(data, sizeof data, "%s", g_dir);
    snprintf(sock, sizeof sock, "unix:%s/gmpoold.sock", g_dir);
    snprintf(admin, sizeof admin, "unix:%s/admin.sock", g_dir);
    snprintf(log, sizeof log, "%s/gmpoold.log", g_dir);
    snprintf(nodes, sizeof nodes, "%u", C.nodes);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
    const char *argv[20] = {bin, "--data-dir", data, "--listen", sock,
                            "--admin", admin};
    int n = 7;
    if (C.nodes) {
        argv[n++] = "--nodes";
        argv[n++] = nodes;
    }
    for (unsigned i = 0; i < C.n_daemon_args; i++)
        argv[n++] = C.daemon_args[i];
    argv[n] = NULL;
    execvp(bin, (char *const *)argv);
    _exit(127);
}

static int daemon_start(const char *argv0, char *server, size_t scap,
                        char *creds, size_t ccap)
{
    char buf[4096];
    const char *bin = daemon_path(argv0, buf, sizeof buf);
    snprintf(g_dir, sizeof g_dir, "/tmp/gmpool-bench.XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("gmpool-bench: mkdtemp");
        return -1;
    }
    snprintf(server, scap, "unix:%s/gmpoold.sock", g_dir);
    snprintf(creds, ccap, "%s/credentials", g_dir);
    g_daemon = fork();
    if (g_daemon < 0)
        return -1;
    if (g_daemon == 0)
        daemon_exec(bin);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "gmpool-bench: started %s pid %d in %s\n", bin,
            (int)g_daemon, g_dir);
    return 0;
}

/* ---- CPU time: the cost of moving the work, apart from computing it ---- */

static uint64_t cpu_self_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The daemon we started: the sum of its threads' time on a CPU
 * (/proc/PID/task/TID/schedstat, nanoseconds); 0 when unknown. */
static uint64_t cpu_daemon_ns(void)
{
    char path[64];
    if (g_daemon <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/task", (int)g_daemon);
    DIR *d = opendir(path);
    uint64_t sum = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        char f[384];
        unsigned long long ns = 0;
        if (e->d_name[0] == '.')
            continue;
        snprintf(f, sizeof f, "%s/%s/schedstat", path, e->d_name);
        FILE *fp = fopen(f, "r");
        if (fp && fscanf(fp, "%llu", &ns) == 1)
            sum += ns;
        if (fp)
            fclose(fp);
    }
    if (d)
        closedir(d);
    return sum;
}

static gmp_client *client_open(unsigned shard, unsigned window)
{
    gmp_options o = {.server = C.server, .credentials = C.credentials,
                     .shard_size = shard, .window = window,
                     .connections = C.connections, .timeout_ms = 60000};
    gmp_client *c = NULL;
    if (gmp_client_open(&c, &o) != GMP_OK) {
        fprintf(stderr, "gmpool-bench: %s\n", gmp_client_last_error());
        return NULL;
    }
    return c;
}

/* Waits for a daemon we started to answer (credentials file first). */
static int daemon_wait(void)
{
    for (int i = 0; i < 400; i++) {
        int st;
        if (g_daemon > 0 && waitpid(g_daemon, &st, WNOHANG) == g_daemon) {
            fprintf(stderr, "gmpool-bench: gmpoold exited at start\n");
            g_daemon = 0;
            return -1;
        }
        if (access(C.credentials, R_OK) == 0) {
            gmp_client *c = client_open(0, 0);
            int rc = c ? gmp_client_connect(c) : GMP_ERR_CONN;
            gmp_client_close(c);
            if (rc == GMP_OK)
                return 0;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "gmpool-bench: gmpoold did not answer\n");
    return -1;
}

/* ---- one job, four ways ---- */

typedef struct job {
    const alg_def *a;
    const uint8_t *in;
    size_t len;
    uint8_t *out;            /* len + 64 bytes */
    size_t out_len;
} job;

static int run_engine(job *j)
{
    gmpd_engine_args args = {.flags = j->a->flags};
    if (!j->a->digest) {
        args.key = g_key;
        args.key_len = 16;
        args.iv = g_iv;
        args.iv_len = j->a->alg == GMP_ALG_SM4_ECB ? 0 : 16;
    }
    int st;
    gmpd_engine_ctx *c = gmpd_engine_new(j->a->alg, &args, &st);
    if (!c)
        return st;
    size_t n1 = 0, n2 = 0;
    st = gmpd_engine_update(c, j->in, j->len, j->out, &n1);
    if (st == GMP_OK)
        st = gmpd_engine_final(c, j->out + n1, &n2);
    gmpd_engine_free(c);
    j->out_len = n1 + n2;
    return st;
}

static int run_openssl(job *j)
{
    if (j->a->digest) {
        unsigned n = 0;
        EVP_MD *md = EVP_MD_fetch(NULL, j->a->evp, NULL);
        int ok = md && EVP_Digest(j->in, j->len, j->out, &n, md, NULL);
        EVP_MD_free(md);
        j->out_len = n;
        return ok ? GMP_OK : GMP_ERR_INTERNAL;
    }
    EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, j->a->evp, NULL);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    int enc = (j->a->flags & GMP_TASK_DECRYPT) ? 0 : 1;
    int ok = ci && x &&
             EVP_CipherInit_ex2(x, ci, g_key,
                                j->a->alg == GMP_ALG_SM4_ECB ? NULL : g_iv,
                                enc, NULL) &&
             EVP_CIPHER_CTX_set_padding(x, 0) &&
             EVP_CipherUpdate(x, j->out, &n1, j->in, (int)j->len) &&
             EVP_CipherFinal_ex(x, j->out + n1, &n2);
    EVP_CIPHER_CTX_free(x);
    EVP_CIPHER_free(ci);
    j->out_len = (size_t)n1 + (size_t)n2;
    return ok ? GMP_OK : GMP_ERR_INTERNAL;
}

static int run_pool(job *j, gmp_client *c)
{
    if (j->a->digest) {
        j->out_len = 32;
        return gmp_digest(c, (gmp_alg)j->a->alg, j->in, j->len, j->out);
    }
    size_t n = j->len + 64;
    size_t iv_len = j->a->alg == GMP_ALG_SM4_ECB ? 0 : 16;
    int rc = gmp_cipher(c, (gmp_alg)j->a->alg, j->a->flags, g_key, 16, g_iv,
                        iv_len, j->in, j->len, j->out, &n);
    j->out_len = n;
    return rc;
}

static int run_mode(job *j, mode m, gmp_client *sync_c, gmp_client *async_c)
{
    switch (m) {
    case M_ENGINE:
        return run_engine(j);
    case M_OPENSSL:
        return run_openssl(j);
    case M_SYNC:
        return run_pool(j, sync_c);
    default:
        return run_pool(j, async_c);
    }
}

/* ---- progress bar (stderr) ---- */

static unsigned g_done, g_total;

static void progress(const char *what)
{
    if (!C.progress || !g_total)
        return;
    unsigned w = 30, fill = g_done * w / g_total;
    char bar[64];
    for (unsigned i = 0; i < w; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[w] = '\0';
    fprintf(stderr, "\r[%s] %3u%% %-40.40s", bar, g_done * 100 / g_total,
            what);
    if (g_done == g_total)
        fputc('\n', stderr);
    fflush(stderr);
}

static void tick(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tick(const char *fmt, ...)
{
    char what[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    g_done++;
    progress(what);
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
    double s[64];
    if (n == 0)
        return 0;
    n = n > 64 ? 64 : n;
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void min_max(const double *v, unsigned n, double *lo, double *hi)
{
    *lo = *hi = n ? v[0] : 0;
    for (unsigned i = 1; i < n; i++) {
        *lo = v[i] < *lo ? v[i] : *lo;
        *hi = v[i] > *hi ? v[i] : *hi;
    }
}

/* Jain's fairness index over per-thread throughputs. */
static double jain(const double *x, unsigned n)
{
    double s = 0, s2 = 0;
    for (unsigned i = 0; i < n; i++) {
        s += x[i];
        s2 += x[i] * x[i];
    }
    return s2 > 0 ? s * s / ((double)n * s2) : 0;
}

static double mb_s(size_t bytes, uint64_t ns)
{
    return ns ? (double)bytes / MB / ((double)ns / 1e9) : 0;
}

static FILE *csv_open(const char *name, const char *header)
{
    char path[4096];
    if (!gmpc_fmt(path, sizeof path, "%s/%s", C.outdir, name))
        return NULL;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "gmpool-bench: cannot write %s: %s\n", path,
                strerror(errno));
        return NULL;
    }
    fprintf(f, "%s\n", header);
    return f;
}

/* ---- single-task run (fig. 7) ---- */

/* Medians per (alg, payload, shard), for the charts. */
static double g_med[N_ALG_DEFS][MAX_LIST][MAX_LIST][N_MODES];

typedef struct bufs {
    uint8_t *in, *ref, *out;
    size_t cap;
} bufs;

static bool g_mismatch;

static bool same_output(const job *j, const job *ref)
{
    return j->out_len == ref->out_len &&
           memcmp(j->out, ref->out, j->out_len) == 0;
}

/* Outputs are poisoned before every run, so that an answer never written
 * cannot pass for the previous mode's, left in the same buffer. */
static void poison(uint8_t *out, const job *ref)
{
    memset(out, 0xa5, ref->out_len);
}

static void check_output(const job *j, const job *ref, mode m, unsigned rep)
{
    if (same_output(j, ref))
        return;
    g_mismatch = true;
    fprintf(stderr, "\ngmpool-bench: %s %zu bytes rep %u: %s output differs "
            "from OpenSSL's\n", j->a->name, j->len, rep, g_mode_names[m]);
}

/* Left out by --modes (profiling): its cells hold a placeholder 1. */
static bool mode_skipped(mode m)
{
    return !(C.modes & (1u << m));
}

/* One (alg, payload, shard) cell: reps x modes, the modes' order rotated
 * every repetition. */
static int single_cell(const alg_def *a, size_t len, unsigned shard,
                       bufs *b, FILE *raw, FILE *sum, double *store)
{
    gmp_client *sc = client_open(shard, 1), *ac = client_open(shard, C.window);
    double rate[N_MODES][64] = {{0}}, r_sync[64], r_async[64], r_ossl[64];
    double cpu[N_MODES][64] = {{0}}; /* CPU ns per byte, client + daemon */
    job ref = {a, b->in, len, b->ref, 0};
    int rc = sc && ac ? run_openssl(&ref) : GMP_ERR_CONN;
    if (rc == GMP_OK && ((rc = gmp_client_connect(sc)) != GMP_OK ||
                         (rc = gmp_client_connect(ac)) != GMP_OK))
        fprintf(stderr, "gmpool-bench: %s\n", gmp_client_last_error());
    unsigned reps = C.reps > 64 ? 64 : C.reps;
    for (unsigned r = 0; rc == GMP_OK && r < reps; r++) {
        for (unsigned k = 0; rc == GMP_OK && k < N_MODES; k++) {
            mode m = (mode)((k + r) % N_MODES);
            if (mode_skipped(m)) {
                rate[m][r] = 1;
                continue;
            }
            job j = {a, b->in, len, b->out, 0};
            poison(b->out, &ref);
            uint64_t c0 = cpu_self_ns(), d0 = cpu_daemon_ns();
            uint64_t t0 = gmpc_now_ns();
            rc = run_mode(&j, m, sc, ac);
            uint64_t ns = gmpc_now_ns() - t0;
            uint64_t cns = cpu_self_ns() - c0, dns = cpu_daemon_ns() - d0;
            cpu[m][r] = (double)(cns + dns) / (double)len;
            if (rc != GMP_OK) {
                fprintf(stderr, "\ngmpool-bench: %s %s: %s\n", a->name,
                        g_mode_names[m], gmp_client_last_error());
                break;
            }
            check_output(&j, &ref, m, r);
            rate[m][r] = mb_s(len, ns);
            fprintf(raw, "%s,%s,%zu,%u,%u,%s,%.2f,%.1f,%.1f\n", a->name,
                    gmpd_engine_impl(a->alg, a->flags), len / MB, shard / KB,
                    r, g_mode_names[m], rate[m][r], (double)cns / 1e6,
                    (double)dns / 1e6);
            tick("%s %zuMB/%uKB %s", a->name, len / MB, shard / KB,
                 g_mode_names[m]);
        }
        r_sync[r] = rate[M_SYNC][r] / rate[M_ENGINE][r];
        r_async[r] = rate[M_ASYNC][r] / rate[M_ENGINE][r];
        r_ossl[r] = rate[M_ASYNC][r] / rate[M_OPENSSL][r];
    }
    gmp_client_close(sc);
    gmp_client_close(ac);
    if (rc != GMP_OK)
        return rc;
    double med[N_MODES], lo, hi;
    for (unsigned m = 0; m < N_MODES; m++)
        store[m] = med[m] = median(rate[m], reps);
    min_max(r_async, reps, &lo, &hi);
    double rs = median(r_sync, reps), ra = median(r_async, reps),
           ro = median(r_ossl, reps);
    /* CPU spent for the job through the pool over the engine's alone:
     * 1.00 would be free transport (0 when the daemon is not ours) */
    double cx = g_daemon > 0 ? median(cpu[M_ASYNC], reps) /
                                   median(cpu[M_ENGINE], reps)
                             : 0;
    printf("%-12s %5zu %5u %8.1f %8.1f %8.1f %8.1f   %5.2f   %5.2f "
           "(%4.2f-%4.2f)  %5.2f %5.2f\n", a->name, len / MB, shard / KB,
           med[M_ENGINE], med[M_OPENSSL], med[M_SYNC], med[M_ASYNC], rs, ra,
           lo, hi, ro, cx);
    fflush(stdout);
    fprintf(sum, "%s,%s,%zu,%u,%.2f,%.2f,%.2f,%.2f,%.3f,%.3f,%.3f,%.3f,%.3f,"
            "%.3f\n", a->name, gmpd_engine_impl(a->alg, a->flags), len / MB,
            shard / KB, med[M_ENGINE], med[M_OPENSSL], med[M_SYNC],
            med[M_ASYNC], rs, ra, lo, hi, ro, cx);
    return GMP_OK;
}

static int run_single(bufs *b)
{
    FILE *raw = csv_open("single_raw.csv",
                         "alg,impl,payload_mb,shard_kb,rep,mode,mb_s,"
                         "cpu_client_ms,cpu_daemon_ms");
    FILE *sum = csv_open("single.csv",
                         "alg,impl,payload_mb,shard_kb,engine_mb_s,"
                         "openssl_mb_s,sync_mb_s,async_mb_s,sync_ratio,"
                         "async_ratio,async_ratio_min,async_ratio_max,"
                         "async_vs_openssl,async_cpu_ratio");
    int rc = raw && sum ? GMP_OK : GMP_ERR_CONFIG;
    printf("\nSingle task: MB/s (median of %u), ratios to the same engine "
           "in-process\n", C.reps);
    printf("%-12s %5s %5s %8s %8s %8s %8s   %5s   %5s %11s  %5s %5s\n",
           "alg", "MB", "shard", "engine", "openssl", "sync", "async",
           "sync/", "async/", "(spread)", "async/", "CPU");
    printf("%-12s %5s %5s %8s %8s %8s %8s   %5s   %5s %11s  %5s %5s\n", "",
           "", "KB", "", "", "", "", "eng", "eng", "", "ossl", "x eng");
    for (unsigned i = 0; rc == GMP_OK && i < C.n_algs; i++)
        for (unsigned p = 0; rc == GMP_OK && p < C.payload_mb.n; p++)
            for (unsigned s = 0; rc == GMP_OK && s < C.shard_kb.n; s++)
                rc = single_cell(C.algs[i], (size_t)C.payload_mb.v[p] * MB,
                                 C.shard_kb.v[s] * KB, b, raw, sum,
                                 g_med[i][p][s]);
    if (raw)
        fclose(raw);
    if (sum)
        fclose(sum);
    return rc;
}

/* ---- concurrency run (fig. 8) ---- */

typedef struct worker {
    pthread_t th;
    job j;
    mode m;
    gmp_client *c;
    pthread_barrier_t *go;
    uint64_t t0, t1;
    int rc;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(w->go);
    w->t0 = gmpc_now_ns();
    w->rc = run_mode(&w->j, w->m, w->c, w->c);
    w->t1 = gmpc_now_ns();
    return NULL;
}

typedef struct conc_result {
    double agg, jain, min_thr, max_thr;
    double cpu_ms;           /* client and daemon CPU of the whole run */
} conc_result;

/* Every thread's answer against in-process OpenSSL's (ref). */
static void conc_check(const worker *w, unsigned n, mode m, const job *ref)
{
    for (unsigned i = 0; i < n; i++)
        if (w[i].rc == GMP_OK && !same_output(&w[i].j, ref)) {
            g_mismatch = true;
            fprintf(stderr, "\ngmpool-bench: concurrency %s x%u %s: thread "
                    "%u's output differs from OpenSSL's\n", ref->a->name, n,
                    g_mode_names[m], i);
            return;
        }
}

static int conc_once(unsigned n, mode m, gmp_client *c, uint8_t **outs,
                     const job *ref, conc_result *res)
{
    worker *w = calloc(n, sizeof *w);
    double *thr = calloc(n, sizeof *thr);
    pthread_barrier_t go;
    if (!w || !thr) {
        free(w);
        free(thr);
        return GMP_ERR_NOMEM;
    }
    pthread_barrier_init(&go, NULL, n);
    for (unsigned i = 0; i < n; i++)
        poison(outs[i], ref);
    uint64_t c0 = cpu_self_ns(), d0 = cpu_daemon_ns();
    for (unsigned i = 0; i < n; i++) {
        w[i] = (worker){.j = {ref->a, ref->in, ref->len, outs[i], 0}, .m = m,
                        .c = c, .go = &go};
        pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    }
    uint64_t start = UINT64_MAX, end = 0;
    int rc = GMP_OK;
    for (unsigned i = 0; i < n; i++) {
        pthread_join(w[i].th, NULL);
        start = w[i].t0 < start ? w[i].t0 : start;
        end = w[i].t1 > end ? w[i].t1 : end;
        thr[i] = mb_s(ref->len, w[i].t1 - w[i].t0);
        if (w[i].rc != GMP_OK)
            rc = w[i].rc;
    }
    pthread_barrier_destroy(&go);
    conc_check(w, n, m, ref);
    res->cpu_ms = (double)(cpu_self_ns() - c0 + cpu_daemon_ns() - d0) / 1e6;
    res->agg = mb_s(ref->len * n, end - start);
    res->jain = jain(thr, n);
    min_max(thr, n, &res->min_thr, &res->max_thr);
    free(w);
    free(thr);
    return rc;
}

static const mode g_conc_modes[] = {M_ENGINE, M_OPENSSL, M_SYNC, M_ASYNC};
#define N_CONC_MODES 4

static int conc_cell(unsigned n, uint8_t **outs, const job *ref, FILE *raw,
                     FILE *sum)
{
    const alg_def *a = ref->a;
    unsigned shard = C.conc_shard_kb * KB, reps = C.reps > 64 ? 64 : C.reps;
    gmp_client *sc = client_open(shard, 1), *ac = client_open(shard, C.window);
    double agg[N_CONC_MODES][64], fair[N_CONC_MODES][64];
    int rc = sc && ac ? GMP_OK : GMP_ERR_CONN;
    for (unsigned r = 0; rc == GMP_OK && r < reps; r++)
        for (unsigned k = 0; rc == GMP_OK && k < N_CONC_MODES; k++) {
            unsigned mi = (k + r) % N_CONC_MODES;
            mode m = g_conc_modes[mi];
            conc_result res;
            if (mode_skipped(m)) {
                agg[mi][r] = fair[mi][r] = 1;
                continue;
            }
            rc = conc_once(n, m, m == M_SYNC ? sc : ac, outs, ref, &res);
            if (rc != GMP_OK) {
                fprintf(stderr, "\ngmpool-bench: concurrency %s %s x%u: %s\n",
                        a->name, g_mode_names[m], n, gmp_strerror(rc));
                break;
            }
            agg[mi][r] = res.agg;
            fair[mi][r] = res.jain;
            fprintf(raw, "%s,%u,%u,%s,%.2f,%.4f,%.2f,%.2f,%.1f\n", a->name, n,
                    r, g_mode_names[m], res.agg, res.jain, res.min_thr,
                    res.max_thr, res.cpu_ms);
            tick("%s x%u %s", a->name, n, g_mode_names[m]);
        }
    gmp_client_close(sc);
    gmp_client_close(ac);
    if (rc != GMP_OK)
        return rc;
    double med[N_CONC_MODES], jn[N_CONC_MODES];
    for (unsigned m = 0; m < N_CONC_MODES; m++) {
        med[m] = median(agg[m], reps);
        jn[m] = median(fair[m], reps);
    }
    double rs = med[M_SYNC] / med[M_ENGINE], ra = med[M_ASYNC] / med[M_ENGINE];
    printf("%-12s %7u %8.1f %8.1f %8.1f %8.1f   %5.2f   %5.2f   %5.3f "
           "%5.3f %5.3f\n", a->name, n, med[M_ENGINE], med[M_OPENSSL],
           med[M_SYNC], med[M_ASYNC], rs, ra, jn[M_ENGINE], jn[M_SYNC],
           jn[M_ASYNC]);
    fflush(stdout);
    fprintf(sum, "%s,%u,%.2f,%.2f,%.2f,%.2f,%.3f,%.3f,%.4f,%.4f,%.4f\n",
            a->name, n, med[M_ENGINE], med[M_OPENSSL], med[M_SYNC],
            med[M_ASYNC], rs, ra, jn[M_ENGINE], jn[M_SYNC], jn[M_ASYNC]);
    return GMP_OK;
}

static int run_conc(const uint8_t *in)
{
    unsigned maxn = 0;
    size_t len = (size_t)C.conc_payload_mb * MB;
    for (unsigned i = 0; i < C.threads.n; i++)
        maxn = C.threads.v[i] > maxn ? C.threads.v[i] : maxn;
    /* one output per thread, and OpenSSL's answer last */
    uint8_t **outs = calloc(maxn + 1, sizeof *outs);
    for (unsigned i = 0; outs && i <= maxn; i++)
        if ((outs[i] = malloc(len + 64)))
            memset(outs[i], 0, len + 64); /* no page faults while timed */
    FILE *raw = csv_open("concurrency_raw.csv",
                         "alg,threads,rep,mode,aggregate_mb_s,jain,"
                         "min_thread_mb_s,max_thread_mb_s,cpu_ms");
    FILE *sum = csv_open("concurrency.csv",
                         "alg,threads,engine_mb_s,openssl_mb_s,sync_mb_s,"
                         "async_mb_s,sync_ratio,async_ratio,jain_engine,"
                         "jain_sync,jain_async");
    int rc = raw && sum && outs ? GMP_OK : GMP_ERR_NOMEM;
    for (unsigned i = 0; outs && i <= maxn; i++)
        if (!outs[i])
            rc = GMP_ERR_NOMEM;
    printf("\nConcurrency: %u MB per thread, %u KB shards; aggregate MB/s "
           "(median of %u), Jain fairness of per-thread MB/s\n",
           C.conc_payload_mb, C.conc_shard_kb, C.reps);
    printf("%-12s %7s %8s %8s %8s %8s   %5s   %5s   %5s %5s %5s\n", "alg",
           "threads", "engine", "openssl", "sync", "async", "sync/",
           "async/", "Jain", "Jain", "Jain");
    printf("%-12s %7s %8s %8s %8s %8s   %5s   %5s   %5s %5s %5s\n", "", "",
           "", "", "", "", "eng", "eng", "eng", "sync", "async");
    for (unsigned a = 0; rc == GMP_OK && a < C.n_conc_algs; a++) {
        job ref = {C.conc_algs[a], in, len, outs[maxn], 0};
        rc = run_openssl(&ref);
        for (unsigned t = 0; rc == GMP_OK && t < C.threads.n; t++)
            rc = conc_cell(C.threads.v[t], outs, &ref, raw, sum);
    }
    if (raw)
        fclose(raw);
    if (sum)
        fclose(sum);
    for (unsigned i = 0; outs && i <= maxn; i++)
        free(outs[i]);
    free(outs);
    return rc;
}

/* ---- small jobs: latency and operations per second ---- */

typedef struct small_w {
    pthread_t th;
    const alg_def *a;
    gmp_client *c;           /* NULL: in-process engine */
    const uint8_t *in;
    size_t len;
    unsigned ops;
    double *lat_us;
    pthread_barrier_t *go;
    int rc;
    bool differs;            /* an answer was not OpenSSL's */
} small_w;

/* Every answer is compared with in-process OpenSSL's, computed first. */
static void *small_main(void *arg)
{
    small_w *w = arg;
    uint8_t out[1024 + 64], ref_out[1024 + 64];
    job ref = {w->a, w->in, w->len, ref_out, 0};
    if (run_openssl(&ref) != GMP_OK)
        w->rc = GMP_ERR_INTERNAL;
    pthread_barrier_wait(w->go);
    for (unsigned i = 0; i < w->ops && w->rc == GMP_OK; i++) {
        job j = {w->a, w->in, w->len, out, 0};
        poison(out, &ref);
        uint64_t t0 = gmpc_now_ns();
        w->rc = w->c ? run_pool(&j, w->c) : run_engine(&j);
        w->lat_us[i] = (double)(gmpc_now_ns() - t0) / 1e3;
        w->differs |= w->rc == GMP_OK && !same_output(&j, &ref);
    }
    return NULL;
}

static double percentile(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = (size_t)(p * (double)(n - 1) + 0.5);
    return n ? v[k] : 0;
}

/* The "busy" rows: small jobs while one bulk SM3 task per node, at a lower
 * priority, keeps every node computing. */
typedef struct bulk_bg {
    pthread_t th[64];
    unsigned n;
    gmp_client *c;
    const uint8_t *in;
    size_t len;
    atomic_bool stop;
    uint8_t want[GMP_SM3_DIGEST_LEN]; /* OpenSSL's digest of in */
    pthread_mutex_t mu;      /* rc, msg and differs */
    int rc;
    char msg[256];
    bool differs;
} bulk_bg;

static void *bulk_main(void *arg)
{
    bulk_bg *b = arg;
    gmp_task_options o = {.priority = 6, .total_len = b->len};
    while (!atomic_load(&b->stop)) {
        gmp_task *t = NULL;
        uint8_t md[GMP_SM3_DIGEST_LEN];
        size_t n = sizeof md;
        memset(md, 0xa5, sizeof md); /* an unwritten digest must not pass */
        int rc = gmp_digest_open(b->c, GMP_ALG_SM3, &o, &t);
        if (rc == GMP_OK)
            rc = gmp_task_update(t, b->in, b->len, NULL, NULL);
        if (rc == GMP_OK)
            rc = gmp_task_final(t, md, &n);
        gmp_task_free(t);
        if (rc == GMP_OK && memcmp(md, b->want, sizeof md) != 0) {
            pthread_mutex_lock(&b->mu);
            b->differs = true;
            pthread_mutex_unlock(&b->mu);
        }
        if (rc != GMP_OK) {
            pthread_mutex_lock(&b->mu);
            if (b->rc == GMP_OK) {
                snprintf(b->msg, sizeof b->msg, "bulk task: %s",
                         gmp_client_last_error());
                b->rc = rc;
            }
            pthread_mutex_unlock(&b->mu);
            break;
        }
    }
    return NULL;
}

static void bulk_start(bulk_bg *b, gmp_client *c, const uint8_t *in)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = C.nodes ? C.nodes : cpus > 0 ? (unsigned)cpus : 1;
    b->c = c;
    b->in = in;
    b->len = (size_t)C.conc_payload_mb * MB;
    job ref = {&g_alg_defs[0], in, b->len, b->want, 0};
    b->rc = run_openssl(&ref);
    snprintf(b->msg, sizeof b->msg, "%s",
             b->rc == GMP_OK ? "" : "OpenSSL's SM3 failed");
    b->differs = false;
    atomic_store(&b->stop, false);
    pthread_mutex_init(&b->mu, NULL);
    for (b->n = 0; b->n < want && b->n < 64; b->n++)
        if (pthread_create(&b->th[b->n], NULL, bulk_main, b) != 0)
            break;
    usleep(200000); /* their first shards reach the nodes */
}

static int bulk_stop(bulk_bg *b)
{
    atomic_store(&b->stop, true);
    for (unsigned i = 0; i < b->n; i++)
        pthread_join(b->th[i], NULL);
    pthread_mutex_destroy(&b->mu);
    if (b->rc != GMP_OK)
        fprintf(stderr, "gmpool-bench: %s\n", b->msg);
    if (b->differs) {
        g_mismatch = true;
        fprintf(stderr, "\ngmpool-bench: bulk SM3 task beside small jobs: "
                "digest differs from OpenSSL's\n");
    }
    return b->rc;
}

typedef enum small_how { S_ENGINE, S_POOL, S_BUSY, S_N } small_how;
static const char *const g_small_how[S_N] = {"engine", "pool", "busy"};

static int small_cell(const alg_def *a, size_t len, unsigned n, small_how how,
                      gmp_client *c, const uint8_t *in, FILE *f)
{
    small_w *w = calloc(n, sizeof *w);
    double *lat = calloc((size_t)n * C.small_ops, sizeof *lat);
    pthread_barrier_t go;
    bulk_bg bg;
    if (!w || !lat) {
        free(w);
        free(lat);
        return GMP_ERR_NOMEM;
    }
    if (how == S_BUSY)
        bulk_start(&bg, c, in);
    pthread_barrier_init(&go, NULL, n);
    uint64_t t0 = gmpc_now_ns();
    for (unsigned i = 0; i < n; i++) {
        w[i] = (small_w){.a = a, .c = how == S_ENGINE ? NULL : c, .in = in,
                         .len = len, .ops = C.small_ops,
                         .lat_us = lat + (size_t)i * C.small_ops, .go = &go};
        pthread_create(&w[i].th, NULL, small_main, &w[i]);
    }
    int rc = GMP_OK;
    for (unsigned i = 0; i < n; i++) {
        pthread_join(w[i].th, NULL);
        rc = w[i].rc != GMP_OK ? w[i].rc : rc;
    }
    double secs = (double)(gmpc_now_ns() - t0) / 1e9;
    int bulk_rc = how == S_BUSY ? bulk_stop(&bg) : GMP_OK;
    rc = rc == GMP_OK ? bulk_rc : rc;
    for (unsigned i = 0; i < n; i++)
        if (w[i].differs && !g_mismatch) {
            g_mismatch = true;
            fprintf(stderr, "\ngmpool-bench: small %s %zu bytes (%s): "
                    "output differs from OpenSSL's\n", a->name, len,
                    g_small_how[how]);
        }
    pthread_barrier_destroy(&go);
    size_t total = (size_t)n * C.small_ops;
    double ops = (double)total / secs, p50 = percentile(lat, total, 0.5),
           p99 = percentile(lat, total, 0.99);
    if (rc == GMP_OK) {
        printf("%-12s %6zu %7u %-7s %10.0f %9.1f %9.1f\n", a->name, len, n,
               g_small_how[how], ops, p50, p99);
        fprintf(f, "%s,%zu,%u,%s,%.1f,%.2f,%.2f\n", a->name, len, n,
                g_small_how[how], ops, p50, p99);
    }
    tick("small %s %zuB x%u %s", a->name, len, n, g_small_how[how]);
    free(w);
    free(lat);
    return rc;
}

static int run_small(const uint8_t *in)
{
    static const size_t sizes[] = {64, 1024};
    static const alg_def *algs[] = {&g_alg_defs[0], &g_alg_defs[1]};
    FILE *f = csv_open("small.csv", "alg,bytes,threads,mode,ops_s,p50_us,"
                                    "p99_us");
    gmp_client *c = client_open(0, C.window);
    int rc = f && c ? gmp_client_connect(c) : GMP_ERR_CONN;
    printf("\nSmall jobs: %u one-shot jobs per thread (busy: beside one bulk "
           "SM3 task per node at priority 6)\n", C.small_ops);
    printf("%-12s %6s %7s %-7s %10s %9s %9s\n", "alg", "bytes", "threads",
           "mode", "ops/s", "p50 us", "p99 us");
    for (unsigned a = 0; rc == GMP_OK && a < 2; a++)
        for (unsigned s = 0; rc == GMP_OK && s < 2; s++)
            for (unsigned t = 0; rc == GMP_OK && t < C.small_threads.n; t++)
                for (int how = 0; rc == GMP_OK && how < S_N; how++)
                    rc = small_cell(algs[a], sizes[s], C.small_threads.v[t],
                                    (small_how)how, c, in, f);
    if (rc != GMP_OK)
        fprintf(stderr, "gmpool-bench: small jobs: %s\n",
                gmp_client_last_error());
    gmp_client_close(c);
    if (f)
        fclose(f);
    return rc;
}

/* ---- charts (gnuplot) ---- */

/* single_ALG.dat: payload, engine and openssl (mean over the shard
 * sizes: they do not depend on it), then sync and async per shard size. */
static int write_dat(unsigned i)
{
    char path[4096];
    if (!gmpc_fmt(path, sizeof path, "%s/single_%s.dat", C.outdir,
                  C.algs[i]->name))
        return -1;
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "# payload_mb engine openssl");
    for (unsigned s = 0; s < C.shard_kb.n; s++)
        fprintf(f, " sync_%ukb async_%ukb", C.shard_kb.v[s], C.shard_kb.v[s]);
    fprintf(f, "\n");
    for (unsigned p = 0; p < C.payload_mb.n; p++) {
        double e = 0, o = 0;
        for (unsigned s = 0; s < C.shard_kb.n; s++) {
            e += g_med[i][p][s][M_ENGINE] / C.shard_kb.n;
            o += g_med[i][p][s][M_OPENSSL] / C.shard_kb.n;
        }
        fprintf(f, "%u %.2f %.2f", C.payload_mb.v[p], e, o);
        for (unsigned s = 0; s < C.shard_kb.n; s++)
            fprintf(f, " %.2f %.2f", g_med[i][p][s][M_SYNC],
                    g_med[i][p][s][M_ASYNC]);
        fprintf(f, "\n");
    }
    fclose(f);
    return 0;
}

static void chart_single(FILE *g)
{
    for (unsigned i = 0; i < C.n_algs; i++) {
        const char *n = C.algs[i]->name;
        if (write_dat(i) != 0)
            continue;
        fprintf(g, "set datafile separator whitespace\n");
        fprintf(g, "set output '%s/single_%s.png'\n", C.outdir, n);
        fprintf(g, "set title '%s: one task, MB/s by payload (fig. 7)'\n", n);
        fprintf(g, "set xlabel 'payload (MB)'\nset ylabel 'MB/s'\n"
                   "set logscale x 2\nset key outside right\n"
                   "set yrange [0:*]\n");
        fprintf(g, "plot '%s/single_%s.dat' using 1:2 with linespoints lw 2 "
                   "lc 'black' title 'engine in-process', '' using 1:3 with "
                   "linespoints dt 3 lc 'gray' title 'openssl in-process'",
                C.outdir, n);
        for (unsigned s = 0; s < C.shard_kb.n; s++)
            fprintf(g, ", '' using 1:%u with linespoints title 'async %uKB'"
                       ", '' using 1:%u with linespoints dt 2 title "
                       "'sync %uKB'", 5 + 2 * s, C.shard_kb.v[s], 4 + 2 * s,
                    C.shard_kb.v[s]);
        fprintf(g, "\nunset logscale x\nset yrange [*:*]\n");
    }
}

static void chart_conc(FILE *g)
{
    for (unsigned i = 0; i < C.n_conc_algs; i++) {
        const char *n = C.conc_algs[i]->name;
        fprintf(g, "set datafile separator ','\n");
        fprintf(g, "set output '%s/concurrency_%s.png'\n", C.outdir, n);
        fprintf(g, "set title '%s: %u MB per thread, %u KB shards (fig. 8)'\n",
                n, C.conc_payload_mb, C.conc_shard_kb);
        fprintf(g, "set xlabel 'client threads'\nset ylabel 'aggregate MB/s'\n"
                   "set logscale x 2\nset key outside right\nplot ");
        for (unsigned m = 0; m < N_MODES; m++)
            fprintf(g, "%s'%s/concurrency.csv' using (strcol(1) eq '%s' ? "
                       "$2 : 1/0):%u with linespoints title '%s'",
                    m ? ", " : "", C.outdir, n, m + 3, g_mode_names[m]);
        fprintf(g, "\nunset logscale x\n");
    }
}

static int render_charts(void)
{
    char path[4096], cmd[4200];
    if (!gmpc_fmt(path, sizeof path, "%s/charts.gp", C.outdir))
        return -1;
    FILE *g = fopen(path, "w");
    if (!g)
        return -1;
    fprintf(g, "set terminal png size 900,500\nset grid\n");
    if (!C.no_single)
        chart_single(g);
    if (!C.no_conc)
        chart_conc(g);
    fclose(g);
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", path);
    int st = system(cmd);
    if (st != 0) {
        fprintf(stderr, "gmpool-bench: gnuplot failed (is it installed?)\n");
        return -1;
    }
    return 0;
}

/* ---- options ---- */

static int parse_list(const char *s, list *l)
{
    l->n = 0;
    char *end;
    while (*s && l->n < MAX_LIST) {
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v == 0 || v > 65536)
            return -1;
        l->v[l->n++] = (unsigned)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return l->n ? 0 : -1;
}

static int parse_modes(const char *s, unsigned *mask)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    *mask = 0;
    for (char *sv, *t = strtok_r(buf, ",", &sv); t;
         t = strtok_r(NULL, ",", &sv)) {
        unsigned m = 0;
        while (m < N_MODES && strcmp(g_mode_names[m], t) != 0)
            m++;
        if (m == N_MODES)
            return -1;
        *mask |= 1u << m;
    }
    return *mask ? 0 : -1;
}

static int parse_algs(const char *s, const alg_def **out, unsigned *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *sv, *t = strtok_r(buf, ",", &sv); t;
         t = strtok_r(NULL, ",", &sv)) {
        unsigned i = 0;
        while (i < N_ALG_DEFS && strcmp(g_alg_defs[i].name, t) != 0)
            i++;
        if (i == N_ALG_DEFS || *n == N_ALG_DEFS)
            return -1;
        out[(*n)++] = &g_alg_defs[i];
    }
    return *n ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: gmpool-bench [options]\n"
        "  -q, --quick             small sets (the test suite's smoke run)\n"
        "  -a, --algs LIST         sm3,sm4-cbc-enc,sm4-cbc-dec,sm4-ctr"
        "[,sm4-ecb]\n"
        "  -p, --payloads LIST     MB (default 1,8,16,32,64,128,256)\n"
        "  -s, --shards LIST       KB (default 16,32,64,128)\n"
        "  -t, --threads LIST      concurrency run (default 1,2,4,8,16,32,64)\n"
        "      --conc-algs LIST    algorithms of the concurrency run "
        "(default sm3,sm4-cbc-enc)\n"
        "      --conc-payload MB   per thread (default 32)\n"
        "      --conc-shard KB     (default 16)\n"
        "  -r, --reps N            repetitions of every cell (default 3)\n"
        "  -m, --modes LIST        modes to run (default engine,openssl,"
        "sync,async;\n"
        "                          for profiling one of them)\n"
        "      --small-ops N       one-shot small jobs per thread (default "
        "2000), on an idle\n"
        "                          pool and beside bulk work (busy)\n"
        "  -w, --window N          async client window cap (default: the "
        "client's)\n"
        "      --connections N     sockets per client (default: the "
        "client's)\n"
        "      --nodes N           nodes of the gmpoold we start\n"
        "      --server ADDR       use this gmpoold (with --credentials)\n"
        "      --credentials FILE\n"
        "      --gmpoold PATH      daemon to start ($GMPOOLD)\n"
        "      --daemon-arg ARG    one more argument for it (repeatable, "
        "up to 8)\n"
        "  -o, --out DIR           CSV and PNG here (default .)\n"
        "      --no-charts, --no-single, --no-conc, --no-small\n"
        "      --progress / --no-progress  (default: when stderr is a tty)\n");
}

enum {
    O_CONC_ALGS = 256, O_CONC_PAYLOAD, O_CONC_SHARD, O_SMALL_OPS, O_CONNS,
    O_NODES, O_SERVER, O_CREDS, O_GMPOOLD, O_NO_CHARTS, O_NO_SINGLE,
    O_NO_CONC, O_NO_SMALL, O_PROGRESS, O_NO_PROGRESS, O_DAEMON_ARG
};

static const struct option g_opts[] = {
    {"quick", no_argument, NULL, 'q'},
    {"algs", required_argument, NULL, 'a'},
    {"payloads", required_argument, NULL, 'p'},
    {"shards", required_argument, NULL, 's'},
    {"threads", required_argument, NULL, 't'},
    {"reps", required_argument, NULL, 'r'},
    {"modes", required_argument, NULL, 'm'},
    {"window", required_argument, NULL, 'w'},
    {"out", required_argument, NULL, 'o'},
    {"conc-algs", required_argument, NULL, O_CONC_ALGS},
    {"conc-payload", required_argument, NULL, O_CONC_PAYLOAD},
    {"conc-shard", required_argument, NULL, O_CONC_SHARD},
    {"small-ops", required_argument, NULL, O_SMALL_OPS},
    {"connections", required_argument, NULL, O_CONNS},
    {"nodes", required_argument, NULL, O_NODES},
    {"server", required_argument, NULL, O_SERVER},
    {"credentials", required_argument, NULL, O_CREDS},
    {"gmpoold", required_argument, NULL, O_GMPOOLD},
    {"daemon-arg", required_argument, NULL, O_DAEMON_ARG},
    {"no-charts", no_argument, NULL, O_NO_CHARTS},
    {"no-single", no_argument, NULL, O_NO_SINGLE},
    {"no-conc", no_argument, NULL, O_NO_CONC},
    {"no-small", no_argument, NULL, O_NO_SMALL},
    {"progress", no_argument, NULL, O_PROGRESS},
    {"no-progress", no_argument, NULL, O_NO_PROGRESS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

static void defaults(void)
{
    parse_algs("sm3,sm4-cbc-enc,sm4-cbc-dec,sm4-ctr", C.algs, &C.n_algs);
    parse_algs("sm3,sm4-cbc-enc", C.conc_algs, &C.n_conc_algs);
    parse_list("1,8,16,32,64,128,256", &C.payload_mb);
    parse_list("16,32,64,128", &C.shard_kb);
    parse_list("1,2,4,8,16,32,64", &C.threads);
    parse_list("1,8", &C.small_threads);
    C.reps = 3;
    C.modes = (1u << N_MODES) - 1;
    C.conc_payload_mb = 32;
    C.conc_shard_kb = 16;
    C.small_ops = 2000;
    C.outdir = ".";
    C.charts = true;
    C.progress = isatty(2);
}

static void quick(void)
{
    parse_list("1,4", &C.payload_mb);
    parse_list("16,64", &C.shard_kb);
    parse_list("1,4", &C.threads);
    parse_list("1,4", &C.small_threads);
    C.reps = 1;
    C.conc_payload_mb = 2;
    C.small_ops = 50;
}

static int number(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int option(int o, const char *arg)
{
    switch (o) {
    case 'q': quick(); return 0;
    case 'a': return parse_algs(arg, C.algs, &C.n_algs);
    case 'p': return parse_list(arg, &C.payload_mb);
    case 's': return parse_list(arg, &C.shard_kb);
    case 't': return parse_list(arg, &C.threads);
    case 'r': return number(arg, 1, 64, &C.reps);
    case 'm': return parse_modes(arg, &C.modes);
    case 'w': return number(arg, 1, 1024, &C.window);
    case 'o': C.outdir = arg; return 0;
    case O_CONC_ALGS: return parse_algs(arg, C.conc_algs, &C.n_conc_algs);
    case O_CONC_PAYLOAD: return number(arg, 1, 1024, &C.conc_payload_mb);
    case O_CONC_SHARD: return number(arg, 4, 1024, &C.conc_shard_kb);
    case O_SMALL_OPS: return number(arg, 1, 1000000, &C.small_ops);
    case O_CONNS: return number(arg, 1, 16, &C.connections);
    case O_NODES: return number(arg, 1, 256, &C.nodes);
    case O_SERVER: C.server = arg; return 0;
    case O_CREDS: C.credentials = arg; return 0;
    case O_GMPOOLD: C.gmpoold = arg; return 0;
    case O_DAEMON_ARG:
        if (C.n_daemon_args == 8)
            return -1;
        C.daemon_args[C.n_daemon_args++] = arg;
        return 0;
    case O_NO_CHARTS: C.charts = false; return 0;
    case O_NO_SINGLE: C.no_single = true; return 0;
    case O_NO_CONC: C.no_conc = true; return 0;
    case O_NO_SMALL: C.no_small = true; return 0;
    case O_PROGRESS: C.progress = true; return 0;
    case O_NO_PROGRESS: C.progress = false; return 0;
    default: return -1;
    }
}

static int parse_args(int argc, char **argv)
{
    int o;
    defaults();
    while ((o = getopt_long(argc, argv, "qa:p:s:t:r:m:w:o:h", g_opts, NULL)) !=
           -1) {
        if (o == 'h') {
            usage(stdout);
            exit(0);
        }
        if (option(o, optarg) != 0) {
            usage(stderr);
            return -1;
        }
    }
    for (unsigned i = 0; i < C.shard_kb.n; i++)
        if (C.shard_kb.v[i] < 4 || C.shard_kb.v[i] > 1024)
            return -1;
    if (optind != argc || (C.server && !C.credentials)) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* ---- main ---- */

static unsigned count_steps(void)
{
    unsigned n = 0;
    if (!C.no_single)
        n += C.n_algs * C.payload_mb.n * C.shard_kb.n * C.reps *
             (unsigned)__builtin_popcount(C.modes);
    if (!C.no_conc)
        n += C.n_conc_algs * C.threads.n * C.reps *
             (unsigned)__builtin_popcount(C.modes);
    if (!C.no_small)
        n += 2 * 2 * C.small_threads.n * S_N;
    return n;
}

static int alloc_bufs(bufs *b)
{
    size_t max = (size_t)C.conc_payload_mb * MB;
    for (unsigned i = 0; i < C.payload_mb.n; i++)
        if ((size_t)C.payload_mb.v[i] * MB > max)
            max = (size_t)C.payload_mb.v[i] * MB;
    b->cap = max;
    b->in = malloc(max);
    b->ref = malloc(max + 64);
    b->out = malloc(max + 64);
    if (!b->in || !b->ref || !b->out)
        return -1;
    gmpc_random(b->in, max < 4096 ? max : 4096);
    for (size_t i = 4096; i < max; i++)
        b->in[i] = (uint8_t)(b->in[i - 4096] * 31u + (uint8_t)i);
    memset(b->ref, 0, max + 64);
    memset(b->out, 0, max + 64);
    return 0;
}

/* Other work on the machine skews every figure: say how busy it was. */
static void print_load(const char *when)
{
    char buf[128] = "";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fgets(buf, sizeof buf, f))
        buf[strcspn(buf, "\n")] = '\0';
    if (f)
        fclose(f);
    printf("load average %s: %s\n", when, buf[0] ? buf : "unknown");
}

static void print_header(void)
{
    printf("gmpool-bench %s: %ld CPUs online, nodes %s, server %s\n",
           GMPOOL_VERSION_STRING, sysconf(_SC_NPROCESSORS_ONLN),
           C.nodes ? "as asked" : "gmpoold's default", C.server);
    printf("engine:");
    for (unsigned i = 0; i < N_ALG_DEFS; i++)
        printf(" %s=%s", g_alg_defs[i].name,
               gmpd_engine_impl(g_alg_defs[i].alg, g_alg_defs[i].flags));
    printf("\n");
    print_load("at the start");
}

static int run_all(void)
{
    bufs b = {0};
    int rc = alloc_bufs(&b) == 0 ? GMP_OK : GMP_ERR_NOMEM;
    g_total = count_steps();
    print_header();
    if (rc == GMP_OK && !C.no_single)
        rc = run_single(&b);
    if (rc == GMP_OK && !C.no_conc)
        rc = run_conc(b.in);
    if (rc == GMP_OK && !C.no_small)
        rc = run_small(b.in);
    print_load("at the end");
    free(b.in);
    free(b.ref);
    free(b.out);
    return rc;
}

int main(int argc, char **argv)
{
    char server[128], creds[128];
    if (parse_args(argc, argv) != 0)
        return 2;
    mkdir(C.outdir, 0755);
    if (gmpd_engine_init() != GMP_OK) {
        fprintf(stderr, "gmpool-bench: engine init failed\n");
        return 1;
    }
    gmpc_random(g_key, sizeof g_key);
    gmpc_random(g_iv, sizeof g_iv);
    if (!C.server) {
        if (daemon_start(argv[0], server, sizeof server, creds,
                         sizeof creds) != 0)
            return 1;
        C.server = server;
        C.credentials = creds;
    }
    int rc = daemon_wait() == 0 ? run_all() : GMP_ERR_CONN;
    daemon_stop();
    gmpd_engine_cleanup();
    if (rc == GMP_OK && C.charts && render_charts() != 0)
        rc = GMP_ERR_INTERNAL;
    if (g_mismatch)
        fprintf(stderr, "gmpool-bench: OUTPUT MISMATCH (see above)\n");
    else if (rc == GMP_OK)
        printf("\nall outputs verified against in-process OpenSSL\n");
    return rc == GMP_OK && !g_mismatch ? 0 : 1;
}
