/* TTSA: real-time threshold scheduling with a rolling window (R8-R13,
 * docs/scheduling.md).  Pure: no I/O, no threads, no clock of its own —
 * every call takes `now` (ns, any monotonic origin).  The daemon and
 * gmpool-sim drive the same code; what "start a VCM" or "power on a host"
 * means is supplied through gmpd_ttsa_ops. */
#ifndef GMPD_TTSA_H
#define GMPD_TTSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMPD_TTSA_MAX_HOSTS 64
#define GMPD_TTSA_MAX_VCMS 256
#define GMPD_TTSA_MAX_TYPES 4
#define GMPD_TTSA_MAX_WINDOW 65536
#define GMPD_TTSA_LOG 64

/* R13: TTSA and its three baselines. */
typedef enum gmpd_ttsa_variant {
    GMPD_TTSA = 0,     /* rolling window + migration */
    GMPD_NRTTSA = 1,   /* no rolling window */
    GMPD_NMTTSA = 2,   /* no migration */
    GMPD_NRMTTSA = 3,  /* neither */
} gmpd_ttsa_variant;

/* A host h_k = {c_k, r_k, n_k} or a VCM type {c(v), r(v), n(v)}. */
typedef struct gmpd_ttsa_res {
    double mips;       /* CPU capacity, million instructions per second */
    double mem_mb;     /* memory, MB */
    double bw_mbps;    /* network bandwidth, Mb/s */
} gmpd_ttsa_res;

typedef struct gmpd_ttsa_params {
    gmpd_ttsa_variant variant;
    double band_lo, band_hi;   /* R10 band, fraction of host bandwidth */
    double mb_per_mi;          /* data a task moves per MI of work: a busy
                                  VCM's throughput is min(c * this, n) */
    uint64_t vcm_create_ns;    /* ct(V) */
    uint64_t host_boot_ns;     /* st(h) */
    uint64_t period_ns;        /* t_p: throughput refresh and ScaleDown */
    uint64_t idle_grace_ns;    /* an idle VCM is shut only after this */
    uint32_t horizon;          /* window tasks re-planned per event */
    uint32_t max_window;       /* submit fails beyond this many waiting */
    uint32_t min_vcms;         /* ScaleDown keeps at least these */
    uint32_t n_types;          /* VCM types, smallest first */
    gmpd_ttsa_res types[GMPD_TTSA_MAX_TYPES];
} gmpd_ttsa_params;

/* The VCM controller's hands.  Any member may be NULL.  A non-zero return
 * from host_power or vcm_start makes that step fail (the core then tries
 * the next one).  In ScaleUp step 2, vcm_start is asked before the
 * vcm_migrate calls that make room for the new VCM (nothing moves unless
 * it is accepted); the model counts the VCM ready once those migrations
 * and ct(V) are done.  task_start tells the driver that a task begins on a
 * VCM now and when the model expects it to end (the simulator schedules
 * its completion there; the daemon ignores it). */
typedef struct gmpd_ttsa_ops {
    int (*host_power)(void *arg, uint32_t host, bool on);
    int (*vcm_start)(void *arg, uint32_t vcm, uint32_t host,
                     const gmpd_ttsa_res *type);
    void (*vcm_stop)(void *arg, uint32_t vcm);
    void (*vcm_migrate)(void *arg, uint32_t vcm, uint32_t from, uint32_t to);
    void (*task_start)(void *arg, uint64_t task, uint32_t vcm,
                       uint64_t start_ns, uint64_t finish_ns);
} gmpd_ttsa_ops;

typedef struct gmpd_ttsa gmpd_ttsa;

/* 1 Gb/s hosts, band 70-85 %, see docs/scheduling.md for the rest. */
void gmpd_ttsa_defaults(gmpd_ttsa_params *p);
const char *gmpd_ttsa_variant_name(gmpd_ttsa_variant v);
/* "ttsa", "nrttsa", "nmttsa", "nrmttsa" (any case); 0 or -1. */
int gmpd_ttsa_variant_parse(const char *s, gmpd_ttsa_variant *v);
/* NULL when p is NULL or out of range (band not 0 < lo <= hi <= 1, no
 * VCM type, a non-finite or non-positive capacity, ...). */
gmpd_ttsa *gmpd_ttsa_new(const gmpd_ttsa_params *p, const gmpd_ttsa_ops *ops,
                         void *arg);
void gmpd_ttsa_free(gmpd_ttsa *s);

/* The pool: hosts (powered on or not) and initial VCMs.  Return the new
 * id (>= 1) or -1. */
int gmpd_ttsa_add_host(gmpd_ttsa *s, const gmpd_ttsa_res *spec, bool on,
                       uint64_t now);
int gmpd_ttsa_add_vcm(gmpd_ttsa *s, uint32_t host, unsigned type,
                      uint64_t now);

/* Arrival of t_i = {a = now, l = len_mi, d = deadline_ns}: rolling variants
 * insert it in the window and re-schedule the window; the others place it
 * at once on a VCM's queue.  0, or -1 (bad input, duplicate id, window
 * full). */
int gmpd_ttsa_submit(gmpd_ttsa *s, uint64_t id, double len_mi,
                     uint64_t deadline_ns, uint64_t now);
/* Arrival that must be bound to a VCM now (the daemon: a task's chaining
 * state lives on one node).  Same placement and ScaleUp; *vcm gets the
 * choice.  0 or -1. */
int gmpd_ttsa_place(gmpd_ttsa *s, uint64_t id, double len_mi,
                    uint64_t deadline_ns, uint64_t now, uint32_t *vcm);
/* t_i finished (f_i = now) or was dropped.  Frees its VCM; rolling
 * variants re-schedule.  0, or -1 when the id is unknown. */
int gmpd_ttsa_finish(gmpd_ttsa *s, uint64_t id, uint64_t now);
/* t_i leaves the model without completing (the driver refused or lost
 * it): counted as dropped, never as finished or missed.  Frees its VCM
 * like gmpd_ttsa_finish.  0, or -1 when the id is unknown. */
int gmpd_ttsa_drop(gmpd_ttsa *s, uint64_t id, uint64_t now);
/* Periodic work: VCMs that became ready start tasks; every period_ns the
 * band check and ScaleDown run. */
void gmpd_ttsa_tick(gmpd_ttsa *s, uint64_t now);
/* When tick has something to do next. */
uint64_t gmpd_ttsa_next_tick(const gmpd_ttsa *s);

/* ---- inspection (status displays, tests, the simulator) ---- */
typedef struct gmpd_ttsa_stats {
    uint64_t submitted, started, finished, missed, dropped;
    double sum_ct_s;          /* sum of f - a over finished tasks */
    double thr_area;          /* integral of host throughput, Mb */
    double busy_mips_area;    /* integral of busy MIPS, MI */
    double cap_mips_area;     /* integral of powered-on MIPS, MI */
    double on_s;              /* host-seconds powered on */
    double in_band_s;         /* host-seconds inside the band */
    uint64_t scale_up[3];     /* ScaleUp successes by step 1..3 */
    uint64_t vcms_stopped, hosts_off, migrations, consolidations;
    uint64_t plans, planned;  /* re-schedules, tasks examined by them */
    uint64_t trials;          /* ScaleUp step-2 trials run (their cost) */
    uint32_t hosts_on, vcms, window;
} gmpd_ttsa_stats;

typedef struct gmpd_ttsa_host_info {
    uint32_t id;
    bool on;
    double thr_mbps;          /* live */
    double bw_mbps, mips, mips_used;
    uint32_t vcms;
} gmpd_ttsa_host_info;

typedef struct gmpd_ttsa_vcm_info {
    uint32_t id, host;
    double mips, mem_mb, bw_mbps;
    bool busy;
    uint64_t ready_ns;        /* creation (and its server's boot) done;
                                 live migration does not delay it */
    uint32_t queued;          /* tasks bound (queue) or planned (window) */
} gmpd_ttsa_vcm_info;

typedef struct gmpd_ttsa_task_info {
    uint64_t id, a, d, st;    /* st: planned start, 0 = not placed */
    double len_mi;
    uint32_t vcm;             /* planned VCM, 0 = none */
} gmpd_ttsa_task_info;

typedef struct gmpd_ttsa_decision {
    uint64_t t;
    const char *what;         /* static string */
    uint64_t task;
    uint32_t vcm, host, host2;
} gmpd_ttsa_decision;

/* Brings the time integrals up to now first. */
void gmpd_ttsa_get_stats(gmpd_ttsa *s, uint64_t now, gmpd_ttsa_stats *out);
const gmpd_ttsa_params *gmpd_ttsa_get_params(const gmpd_ttsa *s);
size_t gmpd_ttsa_hosts(const gmpd_ttsa *s, gmpd_ttsa_host_info *out,
                       size_t cap);
size_t gmpd_ttsa_vcms(const gmpd_ttsa *s, gmpd_ttsa_vcm_info *out, size_t cap);
/* Waiting tasks in EDF order (rolling) or VCM queue order (others). */
size_t gmpd_ttsa_window(const gmpd_ttsa *s, gmpd_ttsa_task_info *out,
                        size_t cap);
/* Most recent first. */
size_t gmpd_ttsa_decisions(const gmpd_ttsa *s, gmpd_ttsa_decision *out,
                           size_t cap);

#endif
