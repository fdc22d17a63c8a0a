/* gmpoold configuration: embedded defaults, an INI file (inih), flags. */
#ifndef GMPD_CONFIG_H
#define GMPD_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define GMPD_MAX_LISTEN 8
#define GMPD_ADDR_MAX 256
#define GMPD_MAX_TENANT_DEADLINES 32

typedef struct gmpd_config {
    char data_dir[PATH_MAX];
    char listen[GMPD_MAX_LISTEN][GMPD_ADDR_MAX]; /* "unix:PATH", "tcp:H:P" */
    int n_listen;
    char admin[GMPD_ADDR_MAX];       /* "unix:PATH" */
    char config_file[PATH_MAX];
    int io_threads;                  /* sub-reactors, default 2 */
    int nodes;                       /* local node threads, default nproc */
    uint32_t window_max;             /* server window p cap, default 64 */
    uint32_t max_tasks;              /* open tasks per session, default 64 */
    uint64_t max_buffered;           /* buffered bytes per session, 64 MiB */
    uint32_t max_sessions;           /* default 1024 */
    uint32_t thresholds[8];          /* R4 packet-count threshold per level */
    uint32_t wait_ms[8];             /* R4 mean-wait threshold per level */
    int log_level;                   /* 0 error .. 3 debug, default 2 */
    /* TTSA in the daemon (R8-R13, docs/scheduling.md) */
    int nodes_min;                   /* nodes active at start and kept by
                                        ScaleDown; 0 = all (default) */
    uint32_t node_idle_ms;           /* idle before ScaleDown parks, 5000 */
    uint32_t scale_period_ms;        /* band check / ScaleDown period, 1000 */
    uint32_t default_deadline_ms;    /* for tasks without one, 0 = none */
    uint32_t band_low, band_high;    /* R10 band, percent, 70 / 85 */
    int ttsa_variant;                /* GMPD_CFG_TTSA..GMPD_CFG_NRMTTSA */
    int n_tenant_deadlines;
    struct {
        char tenant[64];
        uint32_t ms;
    } tenant_deadline[GMPD_MAX_TENANT_DEADLINES];
} gmpd_config;

/* Same order and values as gmpd_ttsa_variant (ttsa.h), which config.c
 * cannot include: it is built without the scheduler core. */
enum { GMPD_CFG_TTSA, GMPD_CFG_NRTTSA, GMPD_CFG_NMTTSA, GMPD_CFG_NRMTTSA };

/* Deadline for a task of `tenant` whose client gave none: its
 * [queue] deadline_ms.TENANT, else default_deadline_ms (0 = none). */
uint32_t gmpd_config_deadline(const gmpd_config *c, const char *tenant);

/* Defaults: data dir $GMPOOL_DATA_DIR, else $XDG_DATA_HOME/gmpool, else
 * $HOME/.local/share/gmpool; listen unix:DATA/gmpoold.sock and
 * tcp:127.0.0.1:7805; admin unix:DATA/admin.sock. */
void gmpd_config_defaults(gmpd_config *c);
/* INI sections [server] [limits] [queue]; see docs/configuration.md. */
int gmpd_config_load(gmpd_config *c, const char *path, char *err,
                     size_t errlen);
/* Flags: --data-dir DIR --listen ADDR (repeatable; the first --listen
 * replaces the defaults) --admin ADDR --config FILE --io-threads N
 * --nodes N --log-level N --help --version.  --config is read first
 * so flags override the file.  Returns 0, 1 for --help/--version (already
 * printed), or a gmp_status with err set. */
int gmpd_config_from_args(gmpd_config *c, int argc, char **argv, char *err,
                          size_t errlen);
/* After data_dir changed, recompute the listen/admin defaults that were
 * derived from it (unless set explicitly). */

#endif
