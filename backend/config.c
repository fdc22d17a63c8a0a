/* gmpoold configuration: embedded defaults, then an INI file (inih), then
 * command-line flags, each overriding the one before.  The file and the
 * flags go through one setter (cfg_apply) so both validate the same way;
 * docs/configuration.md lists every key. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmpool.h"
#include "util.h"

#define MSG_MAX 400
#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

/* What one pass (a file, or the flags) set explicitly.  A data_dir change
 * re-derives listen/admin only while they still hold derived values; the
 * header has no room for these bits, so at entry they are inferred by
 * comparing with what the current data_dir would derive. */
typedef struct cfg_state {
    bool listen_set;
    bool admin_set;
    bool listen_replaced; /* this source's first listen cleared the list */
} cfg_state;

/* ---- defaults and derived values --------------------------------------- */

static void derive_listen(const char *dir, char listen[][GMPD_ADDR_MAX],
                          int *n)
{
    /* A truncated address is longer than any unix socket path, so
     * cfg_check reports it instead of binding somewhere unexpected. */
    gmpc_fmt(listen[0], GMPD_ADDR_MAX, "unix:%s/gmpoold.sock", dir);
    gmpc_fmt(listen[1], GMPD_ADDR_MAX, "tcp:127.0.0.1:%d",
             GMPC_DEFAULT_TCP_PORT);
    *n = 2;
}

static void derive_admin(const char *dir, char admin[GMPD_ADDR_MAX])
{
    gmpc_fmt(admin, GMPD_ADDR_MAX, "unix:%s/admin.sock", dir);
}

static bool listen_is_derived(const gmpd_config *c)
{
    char l[GMPD_MAX_LISTEN][GMPD_ADDR_MAX];
    int n = 0;
    derive_listen(c->data_dir, l, &n);
    if (c->n_listen != n)
        return false;
    for (int i = 0; i < n; i++)
        if (strcmp(c->listen[i], l[i]) != 0)
            return false;
    return true;
}

static bool admin_is_derived(const gmpd_config *c)
{
    char a[GMPD_ADDR_MAX];
    derive_admin(c->data_dir, a);
    return strcmp(c->admin, a) == 0;
}

static void state_init(const gmpd_config *c, cfg_state *st)
{
    st->listen_set = !listen_is_derived(c);
    st->admin_set = !admin_is_derived(c);
    st->listen_replaced = false;
}

static void default_data_dir(char *out, size_t cap)
{
    if (gmpc_default_data_dir(out, cap) != GMP_OK)
        out[0] = '\0'; /* left empty: cfg_check asks for --data-dir */
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

void gmpd_config_defaults(gmpd_config *c)
{
    memset(c, 0, sizeof *c);
    default_data_dir(c->data_dir, sizeof c->data_dir);
    derive_listen(c->data_dir, c->listen, &c->n_listen);
    derive_admin(c->data_dir, c->admin);
    c->io_threads = 2;
    c->nodes = online_cpus();
    c->window_max = 64;
    c->max_tasks = 64;
    c->max_buffered = 64 * MIB;
    c->max_sessions = 1024;
    c->log_level = 2;
    /* thresholds and wait_ms stay 0: R4 thresholds disabled */
    c->node_idle_ms = 5000;
    c->scale_period_ms = 1000;
    c->band_low = 70;
    c->band_high = 85;
    /* nodes_min 0 (all nodes active), default_deadline_ms 0 (none),
     * variant TTSA */
}

/* ---- value parsing ----------------------------------------------------- */

/* Digits only (no sign, no blanks), optionally one K/M/G suffix (powers
 * of 1024, either case) when suffix is set. */
static bool parse_num(const char *v, bool suffix, unsigned long long *out)
{
    if (!v || v[0] < '0' || v[0] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno)
        return false;
    unsigned long long mul = 1;
    if (suffix && *end) {
        const char *sfx = "KkMmGg";
        const char *hit = strchr(sfx, *end);
        if (!hit)
            return false;
        mul = (hit - sfx) < 2 ? KIB : (hit - sfx) < 4 ? MIB : GIB;
        end++;
    }
    if (*end || x > ULLONG_MAX / mul)
        return false;
    *out = x * mul;
    return true;
}

/* Listen addresses: unix:/absolute/path (path < 108 bytes) or
 * tcp:HOST:PORT (port 1..65535).  The daemon parses them again when it
 * binds; this is only the early, well-reported check. */
static bool addr_valid(const char *s, bool unix_only, char *msg, size_t n)
{
    gmpc_addr a;
    if (gmpc_addr_parse(s, &a) != GMP_OK) {
        gmpc_fmt(msg, n,
                 "bad address '%s' (expected unix:/absolute/path, path "
                 "under 108 bytes, or tcp:HOST:PORT, port 1..65535)", s);
        return false;
    }
    if (unix_only && !a.is_unix) {
        gmpc_fmt(msg, n, "'%s' must be a unix:/absolute/path address", s);
        return false;
    }
    return true;
}

/* ---- setters ----------------------------------------------------------- */

typedef enum num_kind { NUM_INT, NUM_U32, NUM_U64 } num_kind;

typedef struct num_key {
    const char *section, *name;
    size_t off;
    num_kind kind;
    unsigned long long lo, hi;
    bool suffix;
} num_key;

#define OFF(f) offsetof(gmpd_config, f)

static const num_key num_keys[] = {
    {"server", "io_threads", OFF(io_threads), NUM_INT, 1, 64, false},
    {"server", "nodes", OFF(nodes), NUM_INT, 1, 256, false},
    {"server", "log_level", OFF(log_level), NUM_INT, 0, 3, false},
    {"limits", "window_max", OFF(window_max), NUM_U32, 1, 1024, false},
    {"limits", "max_tasks", OFF(max_tasks), NUM_U32, 1, 4096, false},
    /* at least one maximal shard must fit */
    {"limits", "max_buffered", OFF(max_buffered), NUM_U64, GMP_SHARD_MAX,
     64 * GIB, true},
    {"limits", "max_sessions", OFF(max_sessions), NUM_U32, 1, 65536, false},
    {"server", "nodes_min", OFF(nodes_min), NUM_INT, 0, 256, false},
    {"server", "node_idle_ms", OFF(node_idle_ms), NUM_U32, 1, 3600000, false},
    {"server", "scale_period_ms", OFF(scale_period_ms), NUM_U32, 10, 3600000,
     false},
    {"queue", "default_deadline_ms", OFF(default_deadline_ms), NUM_U32, 0,
     86400000, false},
    {"queue", "band_low", OFF(band_low), NUM_U32, 1, 100, false},
    {"queue", "band_high", OFF(band_high), NUM_U32, 1, 100, false},
};

#define THRESHOLD_MAX 1000000u
#define WAIT_MS_MAX 3600000u

static void num_store(gmpd_config *c, size_t off, num_kind kind,
                      unsigned long long v)
{
    char *p = (char *)c + off;
    if (kind == NUM_INT) {
        int x = (int)v;
        memcpy(p, &x, sizeof x);
    } else if (kind == NUM_U32) {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, sizeof x);
    } else {
        uint64_t x = v;
        memcpy(p, &x, sizeof x);
    }
}

static int num_set(gmpd_config *c, const num_key *k, const char *value,
                   char *msg, size_t n)
{
    unsigned long long v;
    if (!parse_num(value, k->suffix, &v) || v < k->lo || v > k->hi) {
        gmpc_fmt(msg, n, "bad value '%s' (expected %llu..%llu%s)", value,
                 k->lo, k->hi, k->suffix ? ", optional K/M/G suffix" : "");
        return GMP_ERR_CONFIG;
    }
    num_store(c, k->off, k->kind, v);
    return GMP_OK;
}

/* [queue] threshold.N / wait_ms.N, N = priority level 0..7. */
static int queue_set(gmpd_config *c, const char *name, const char *value,
                     char *msg, size_t n)
{
    bool thr = strncmp(name, "threshold.", 10) == 0;
    bool wait = strncmp(name, "wait_ms.", 8) == 0;
    const char *lvl = thr ? name + 10 : wait ? name + 8 : "";
    if (lvl[0] < '0' || lvl[0] > '7' || lvl[1] != '\0')
        return GMP_ERR_NOT_FOUND;
    num_key k = {"queue", name, 0, NUM_U32, 0,
                 thr ? THRESHOLD_MAX : WAIT_MS_MAX, false};
    k.off = thr ? OFF(thresholds) : OFF(wait_ms);
    k.off += (size_t)(lvl[0] - '0') * sizeof(uint32_t);
    return num_set(c, &k, value, msg, n);
}

static const char *const variant_names[] = {"ttsa", "nrttsa", "nmttsa",
                                            "nrmttsa"};

static int variant_set(gmpd_config *c, const char *value, char *msg, size_t n)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(value, variant_names[i]) == 0) {
            c->ttsa_variant = i;
            return GMP_OK;
        }
    gmpc_fmt(msg, n, "bad value '%s' (expected ttsa, nrttsa, nmttsa or "
                     "nrmttsa)", value);
    return GMP_ERR_CONFIG;
}

/* Tenant names as the store accepts them (store.c name_valid). */
#define TENANT_MAX 63
static bool tenant_name_ok(const char *s)
{
    size_t n = strnlen(s, TENANT_MAX + 1);
    if (n == 0 || n > TENANT_MAX || strcmp(s, ".") == 0 ||
        strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789._-", s[i]))
            return false;
    return true;
}

/* [queue] deadline_ms.TENANT: that tenant's default deadline; a later
 * line for the same tenant replaces the earlier one. */
static int tenant_deadline_set(gmpd_config *c, const char *tenant,
                               const char *value, char *msg, size_t n)
{
    unsigned long long v;
    if (!tenant_name_ok(tenant)) {
        gmpc_fmt(msg, n, "bad tenant name '%s'", tenant);
        return GMP_ERR_CONFIG;
    }
    if (!parse_num(value, false, &v) || v > 86400000u) {
        gmpc_fmt(msg, n, "bad value '%s' (expected 0..86400000)", value);
        return GMP_ERR_CONFIG;
    }
    int i = 0;
    while (i < c->n_tenant_deadlines &&
           strcmp(c->tenant_deadline[i].tenant, tenant) != 0)
        i++;
    if (i == GMPD_MAX_TENANT_DEADLINES) {
        gmpc_fmt(msg, n, "more than %d tenant deadlines",
                 GMPD_MAX_TENANT_DEADLINES);
        return GMP_ERR_CONFIG;
    }
    gmpc_fmt(c->tenant_deadline[i].tenant,
             sizeof c->tenant_deadline[i].tenant, "%s", tenant);
    c->tenant_deadline[i].ms = (uint32_t)v;
    if (i == c->n_tenant_deadlines)
        c->n_tenant_deadlines++;
    return GMP_OK;
}

uint32_t gmpd_config_deadline(const gmpd_config *c, const char *tenant)
{
    for (int i = 0; tenant && i < c->n_tenant_deadlines; i++)
        if (strcmp(c->tenant_deadline[i].tenant, tenant) == 0)
            return c->tenant_deadline[i].ms;
    return c->default_deadline_ms;
}

static int data_dir_set(gmpd_config *c, cfg_state *st, const char *value,
                        char *msg, size_t n)
{
    if (value[0] != '/') {
        gmpc_fmt(msg, n, "'%s' is not an absolute path", value);
        return GMP_ERR_CONFIG;
    }
    char d[PATH_MAX];
    /* room for the longest file name under it ("/gmpool.db-wal") */
    if (!gmpc_path_absolute(value, d, sizeof d - 16)) {
        gmpc_fmt(msg, n, "path too long");
        return GMP_ERR_CONFIG;
    }
    memcpy(c->data_dir, d, strlen(d) + 1);
    if (!st->listen_set)
        derive_listen(c->data_dir, c->listen, &c->n_listen);
    if (!st->admin_set)
        derive_admin(c->data_dir, c->admin);
    return GMP_OK;
}

/* The first listen of a source replaces the list; later ones append. */
static int listen_add(gmpd_config *c, cfg_state *st, const char *value,
                      char *msg, size_t n)
{
    if (!addr_valid(value, false, msg, n))
        return GMP_ERR_CONFIG;
    if (!st->listen_replaced) {
        c->n_listen = 0;
        st->listen_replaced = st->listen_set = true;
    }
    for (int i = 0; i < c->n_listen; i++) {
        if (strcmp(c->listen[i], value) == 0) {
            gmpc_fmt(msg, n, "'%s' is listed twice", value);
            return GMP_ERR_CONFIG;
        }
    }
    if (c->n_listen >= GMPD_MAX_LISTEN) {
        gmpc_fmt(msg, n, "more than %d listen addresses", GMPD_MAX_LISTEN);
        return GMP_ERR_CONFIG;
    }
    /* fits: gmpc_addr_parse bounds unix paths and tcp hosts well below
     * GMPD_ADDR_MAX */
    gmpc_fmt(c->listen[c->n_listen++], GMPD_ADDR_MAX, "%s", value);
    return GMP_OK;
}

static int admin_set(gmpd_config *c, cfg_state *st, const char *value,
                     char *msg, size_t n)
{
    /* the admin socket is guarded by file permissions: unix only */
    if (!addr_valid(value, true, msg, n))
        return GMP_ERR_CONFIG;
    gmpc_fmt(c->admin, sizeof c->admin, "%s", value);
    st->admin_set = true;
    return GMP_OK;
}

/* Applies one setting.  GMP_ERR_NOT_FOUND: no such key (the caller
 * reports it with its location); GMP_ERR_CONFIG: bad value, msg set. */
static int cfg_apply(gmpd_config *c, cfg_state *st, const char *section,
                     const char *name, const char *value, char *msg,
                     size_t n)
{
    for (size_t i = 0; i < sizeof num_keys / sizeof num_keys[0]; i++)
        if (strcmp(section, num_keys[i].section) == 0 &&
            strcmp(name, num_keys[i].name) == 0)
            return num_set(c, &num_keys[i], value, msg, n);
    if (strcmp(section, "queue") == 0 && strcmp(name, "variant") == 0)
        return variant_set(c, value, msg, n);
    if (strcmp(section, "queue") == 0 &&
        strncmp(name, "deadline_ms.", 12) == 0)
        return tenant_deadline_set(c, name + 12, value, msg, n);
    if (strcmp(section, "queue") == 0)
        return queue_set(c, name, value, msg, n);
    if (strcmp(section, "server") != 0)
        return GMP_ERR_NOT_FOUND;
    if (strcmp(name, "data_dir") == 0)
        return data_dir_set(c, st, value, msg, n);
    if (strcmp(name, "listen") == 0)
        return listen_add(c, st, value, msg, n);
    if (strcmp(name, "admin") == 0)
        return admin_set(c, st, value, msg, n);
    return GMP_ERR_NOT_FOUND;
}

/* The whole configuration, once every source is applied. */
static int cfg_check(const gmpd_config *c, char *err, size_t errlen)
{
    char msg[MSG_MAX];
    if (c->data_dir[0] != '/') {
        gmpc_fmt(err, errlen, "no data directory: set --data-dir, "
                              "GMPOOL_DATA_DIR or HOME");
        return GMP_ERR_CONFIG;
    }
    if (c->n_listen < 1 || c->n_listen > GMPD_MAX_LISTEN) {
        gmpc_fmt(err, errlen, "no listen address");
        return GMP_ERR_CONFIG;
    }
    for (int i = 0; i < c->n_listen; i++) {
        if (!addr_valid(c->listen[i], false, msg, sizeof msg)) {
            gmpc_fmt(err, errlen, "listen: %s; shorten the data dir or "
                                  "set listen explicitly", msg);
            return GMP_ERR_CONFIG;
        }
        if (strcmp(c->listen[i], c->admin) == 0) {
            gmpc_fmt(err, errlen, "admin address %s is also a listen "
                                  "address", c->admin);
            return GMP_ERR_CONFIG;
        }
    }
    if (!addr_valid(c->admin, true, msg, sizeof msg)) {
        gmpc_fmt(err, errlen, "admin: %s", msg);
        return GMP_ERR_CONFIG;
    }
    if (c->band_low > c->band_high) {
        gmpc_fmt(err, errlen, "band_low %u%% is above band_high %u%%",
                 c->band_low, c->band_high);
        return GMP_ERR_CONFIG;
    }
    return GMP_OK;
}

/* ---- INI file ---------------------------------------------------------- */

typedef struct cfg_parse {
    gmpd_config *c;
    cfg_state *st;
    const char *file;
    FILE *f;
    char *buf;
    size_t cap;
    int line;
    bool failed;
    char err[MSG_MAX + PATH_MAX];
} cfg_parse;

static void cfg_fail(cfg_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cfg_fail(cfg_parse *p, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    if (p->failed)
        return; /* the first error is the one worth reading */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gmpc_fmt(p->err, sizeof p->err, "%s:%d: %s", p->file, p->line, msg);
    p->failed = true;
}

/* inih's handler is not told the line number, so the reader counts
 * lines itself: one call, one whole line. */
static char *cfg_reader(char *str, int num, void *stream)
{
    cfg_parse *p = stream;
    if (p->failed)
        return NULL; /* stop at the first error */
    ssize_t n = getline(&p->buf, &p->cap, p->f);
    if (n < 0)
        return NULL;
    p->line++;
    if (strlen(p->buf) != (size_t)n) {
        cfg_fail(p, "NUL byte in line");
        return NULL;
    }
    if (n >= num) {
        cfg_fail(p, "line too long (max %d bytes)", num - 2);
        return NULL;
    }
    memcpy(str, p->buf, (size_t)n + 1);
    return str;
}

static int cfg_handler(void *user, const char *section, const char *name,
                       const char *value)
{
    cfg_parse *p = user;
    char msg[MSG_MAX];
    if (p->failed)
        return 0;
    int rc = cfg_apply(p->c, p->st, section, name, value, msg, sizeof msg);
    if (rc == GMP_ERR_NOT_FOUND)
        cfg_fail(p, "unknown key '%s' in [%s]", name, section);
    else if (rc != GMP_OK)
        cfg_fail(p, "%s: %s", name, msg);
    return rc == GMP_OK;
}

static FILE *cfg_open(const char *path, char *err, size_t errlen)
{
    struct stat st;
    FILE *f = fopen(path, "re");
    if (!f) {
        gmpc_fmt(err, errlen, "cannot read config %s: %s", path,
                 strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        gmpc_fmt(err, errlen, "config %s is not a regular file", path);
        fclose(f);
        return NULL;
    }
    return f;
}

static int load_file(gmpd_config *c, cfg_state *st, const char *path,
                     char *err, size_t errlen)
{
    if (!path || !*path) {
        gmpc_fmt(err, errlen, "empty config file name");
        return GMP_ERR_CONFIG;
    }
    cfg_parse p = {.c = c, .st = st, .file = path};
    p.f = cfg_open(path, err, errlen);
    if (!p.f)
        return GMP_ERR_CONFIG;
    st->listen_replaced = false;
    int r = ini_parse_stream(cfg_reader, &p, cfg_handler, &p);
    fclose(p.f);
    free(p.buf);
    if (p.failed)
        gmpc_fmt(err, errlen, "%s", p.err);
    else if (r > 0)
        gmpc_fmt(err, errlen, "%s:%d: syntax error (expected [section] "
                              "or key = value)", path, r);
    else if (r < 0)
        gmpc_fmt(err, errlen, "%s: out of memory", path);
    if (p.failed || r != 0)
        return GMP_ERR_CONFIG;
    if (!gmpc_fmt(c->config_file, sizeof c->config_file, "%s", path))
        c->config_file[0] = '\0';
    return GMP_OK;
}

int gmpd_config_load(gmpd_config *c, const char *path, char *err,
                     size_t errlen)
{
    char dummy[1];
    cfg_state st;
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!c)
        return GMP_ERR_ARG;
    state_init(c, &st);
    int rc = load_file(c, &st, path, err, errlen);
    return rc ? rc : cfg_check(c, err, errlen);
}

/* ---- flags ------------------------------------------------------------- */

enum {
    OPT_CONFIG = 'c', OPT_DATA_DIR = 'd', OPT_LISTEN = 'l',
    OPT_ADMIN = 'a', OPT_IO_THREADS = 't', OPT_NODES = 'n',
    OPT_LOG_LEVEL = 'v', OPT_HELP = 'h', OPT_VERSION = 'V'
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"admin", required_argument, NULL, OPT_ADMIN},
    {"io-threads", required_argument, NULL, OPT_IO_THREADS},
    {"nodes", required_argument, NULL, OPT_NODES},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}};

/* '+': stop at the first non-option instead of permuting argv;
 * ':': report a missing value as ':' rather than '?'. */
static const char short_opts[] = "+:hV";

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [options]\n"
            "Pooled SM3/SM4 crypto daemon.\n\n"
            "  --config FILE     read FILE first (flags override it)\n"
            "  --data-dir DIR    tenants, keys, sockets (default "
            "$GMPOOL_DATA_DIR,\n"
            "                    $XDG_DATA_HOME/gmpool, "
            "~/.local/share/gmpool)\n"
            "  --listen ADDR     unix:/PATH or tcp:HOST:PORT; repeatable "
            "(default\n"
            "                    unix:DATA/gmpoold.sock and "
            "tcp:127.0.0.1:7805)\n"
            "  --admin ADDR      admin socket, unix:/PATH "
            "(default unix:DATA/admin.sock)\n"
            "  --io-threads N    I/O sub-reactors, 1..64 (default 2)\n"
            "  --nodes N         local compute node threads, 1..256 "
            "(default: CPUs)\n"
            "  --log-level N     0 error, 1 warning, 2 info, 3 debug "
            "(default 2)\n"
            "  -h, --help        show this help\n"
            "  -V, --version     show the version\n\n"
            "See docs/configuration.md for the configuration file.\n",
            prog);
}

static int opt_error(int opt, int argc, char **argv, char *err,
                     size_t errlen)
{
    const char *arg = optind >= 1 && optind <= argc ? argv[optind - 1] : "?";
    if (opt == ':')
        gmpc_fmt(err, errlen, "option '%s' needs a value", arg);
    else if (optopt == OPT_HELP || optopt == OPT_VERSION)
        /* only --help=x / --version=x get here with a known optopt */
        gmpc_fmt(err, errlen, "option '%s' takes no value", arg);
    else if (optopt)
        gmpc_fmt(err, errlen, "unknown option '-%c' (see --help)", optopt);
    else
        gmpc_fmt(err, errlen, "unknown or ambiguous option '%s' (see "
                              "--help)", arg);
    return GMP_ERR_CONFIG;
}

/* First pass: syntax, --help/--version, and where --config is, so the
 * file can be read before any flag is applied. */
static int args_scan(int argc, char **argv, const char **config, char *err,
                     size_t errlen)
{
    const char *prog = argc > 0 && argv[0] ? argv[0] : "gmpoold";
    int opt;
    optind = 0; /* full re-initialisation (GNU), so we can run twice */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, short_opts, long_opts, NULL)) !=
           -1) {
        if (opt == '?' || opt == ':')
            return opt_error(opt, argc, argv, err, errlen);
        if (opt == OPT_HELP) {
            usage(stdout, prog);
            return 1;
        }
        if (opt == OPT_VERSION) {
            printf("gmpoold %s\n", GMPOOL_VERSION_STRING);
            return 1;
        }
        if (opt == OPT_CONFIG)
            *config = optarg;
    }
    if (optind < argc) {
        gmpc_fmt(err, errlen, "unexpected argument '%s'", argv[optind]);
        return GMP_ERR_CONFIG;
    }
    return GMP_OK;
}

static const char *opt_key(int opt)
{
    switch (opt) {
    case OPT_DATA_DIR: return "data_dir";
    case OPT_LISTEN: return "listen";
    case OPT_ADMIN: return "admin";
    case OPT_IO_THREADS: return "io_threads";
    case OPT_NODES: return "nodes";
    case OPT_LOG_LEVEL: return "log_level";
    default: return NULL;
    }
}

static const char *opt_name(int opt)
{
    for (const struct option *o = long_opts; o->name; o++)
        if (o->val == opt)
            return o->name;
    return "?";
}

/* Second pass: apply every flag but --config, in order. */
static int args_apply(gmpd_config *c, cfg_state *st, int argc, char **argv,
                      char *err, size_t errlen)
{
    char msg[MSG_MAX], dir[PATH_MAX];
    int opt;
    optind = 0;
    opterr = 0;
    st->listen_replaced = false;
    while ((opt = getopt_long(argc, argv, short_opts, long_opts, NULL)) !=
           -1) {
        const char *key = opt_key(opt), *val = optarg;
        if (!key)
            continue;
        /* flags are relative to the working directory; the file's
         * data_dir must be absolute */
        if (opt == OPT_DATA_DIR && val[0] && val[0] != '/' &&
            gmpc_path_absolute(val, dir, sizeof dir))
            val = dir;
        if (cfg_apply(c, st, "server", key, val, msg, sizeof msg)) {
            gmpc_fmt(err, errlen, "--%s: %s", opt_name(opt), msg);
            return GMP_ERR_CONFIG;
        }
    }
    return GMP_OK;
}

int gmpd_config_from_args(gmpd_config *c, int argc, char **argv, char *err,
                          size_t errlen)
{
    char dummy[1];
    const char *config = NULL;
    cfg_state st;
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!c || argc < 0 || (argc > 0 && !argv))
        return GMP_ERR_ARG;
    int rc = argc > 0 ? args_scan(argc, argv, &config, err, errlen) : 0;
    if (rc)
        return rc;
    state_init(c, &st);
    if (config)
        rc = load_file(c, &st, config, err, errlen);
    if (!rc && argc > 0)
        rc = args_apply(c, &st, argc, argv, err, errlen);
    return rc ? rc : cfg_check(c, err, errlen);
}
