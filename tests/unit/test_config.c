/* Configuration tests: defaults, the INI file, flags overriding the file,
 * data-dir re-derivation, and that every bad input is refused with a
 * message naming where it came from. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "gmpool.h"

#define DATA "/srv/gmp-test"

typedef struct fixture {
    char dir[64];        /* mkdtemp dir for config files */
    char file[128];      /* dir/gmpoold.conf */
    gmpd_config c;
    char err[1024];
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gmpool-config-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->file, sizeof f->file, "%s/gmpoold.conf", f->dir);
    setenv("GMPOOL_DATA_DIR", DATA, 1);
    gmpd_config_defaults(&f->c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static const char *conf(fixture *f, const char *text)
{
    FILE *fp = fopen(f->file, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return f->file;
}

static int load(fixture *f, const char *text)
{
    f->err[0] = '\0';
    return gmpd_config_load(&f->c, conf(f, text), f->err, sizeof f->err);
}

/* Expects a load failure whose message is exactly "FILE:LINE: msg". */
static void load_fails(fixture *f, const char *text, int line,
                       const char *msg)
{
    char want[1024];
    gmpd_config_defaults(&f->c);
    assert_int_equal(load(f, text), GMP_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:%d: %s", f->file, line, msg);
    assert_string_equal(f->err, want);
}

#define ARGS(...) ((char *[]){"gmpoold", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"gmpoold", __VA_ARGS__}) / \
                         sizeof(char *)))
#define FROM_ARGS(f, ...)                                                 \
    gmpd_config_from_args(&(f)->c, ARGC(__VA_ARGS__), ARGS(__VA_ARGS__), \
                          (f)->err, sizeof(f)->err)

static void test_defaults(void **state)
{
    fixture *f = *state;
    const gmpd_config *c = &f->c;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_string_equal(c->data_dir, DATA);
    assert_int_equal(c->n_listen, 2);
    assert_string_equal(c->listen[0], "unix:" DATA "/gmpoold.sock");
    assert_string_equal(c->listen[1], "tcp:127.0.0.1:7805");
    assert_string_equal(c->admin, "unix:" DATA "/admin.sock");
    assert_string_equal(c->config_file, "");
    assert_int_equal(c->io_threads, 2);
    assert_int_equal(c->nodes, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    assert_true(c->nodes >= 1);
    assert_int_equal(c->window_max, 64);
    assert_int_equal(c->max_tasks, 64);
    assert_int_equal(c->max_buffered, 64u << 20);
    assert_int_equal(c->max_sessions, 1024);
    assert_int_equal(c->log_level, 2);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(c->thresholds[i], 0);
        assert_int_equal(c->wait_ms[i], 0);
    }
    assert_int_equal(c->nodes_min, 0);   /* all nodes active */
    assert_int_equal(c->node_idle_ms, 5000);
    assert_int_equal(c->scale_period_ms, 1000);
    assert_int_equal(c->default_deadline_ms, 0);
    assert_int_equal(c->band_low, 70);
    assert_int_equal(c->band_high, 85);
    assert_int_equal(c->ttsa_variant, GMPD_CFG_TTSA);
    assert_int_equal(c->n_tenant_deadlines, 0);
    assert_int_equal(gmpd_config_deadline(c, "default"), 0);
    /* no flags: the defaults are valid as they are */
    char *argv[] = {"gmpoold", NULL};
    assert_int_equal(gmpd_config_from_args(&f->c, 1, argv, f->err,
                                           sizeof f->err), GMP_OK);
}

static void test_default_data_dir_fallbacks(void **state)
{
    fixture *f = *state;
    char cwd[512], want[600];
    unsetenv("GMPOOL_DATA_DIR");
    setenv("XDG_DATA_HOME", "/xdg", 1);
    gmpd_config_defaults(&f->c);
    assert_string_equal(f->c.data_dir, "/xdg/gmpool");
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", "/home/someone", 1);
    gmpd_config_defaults(&f->c);
    assert_string_equal(f->c.data_dir, "/home/someone/.local/share/gmpool");
    assert_string_equal(f->c.admin,
                        "unix:/home/someone/.local/share/gmpool/admin.sock");
    /* relative: anchored at the working directory, trailing '/' dropped */
    setenv("GMPOOL_DATA_DIR", "rel/dir/", 1);
    gmpd_config_defaults(&f->c);
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(want, sizeof want, "%s/rel/dir", strcmp(cwd, "/") ? cwd : "");
    assert_string_equal(f->c.data_dir, want);
}

static void test_file_all_keys(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f,
                          "# full example\n"
                          "[server]\n"
                          "data_dir = /var/lib/gmpool\n"
                          "listen = unix:/run/gmpool/a.sock\n"
                          "listen = tcp:0.0.0.0:7000 ; inline comment\n"
                          "listen = tcp:[::1]:7001\n"
                          "admin = unix:/run/gmpool/admin.sock\n"
                          "io_threads = 4\n"
                          "nodes = 16\n"
                          "log_level = 3\n"
                          "\n"
                          "[limits]\n"
                          "window_max = 128\n"
                          "max_tasks = 10\n"
                          "max_buffered = 256M\n"
                          "max_sessions = 50\n"
                          "[queue]\n"
                          "threshold.0 = 100\n"
                          "threshold.7 = 5\n"
                          "wait_ms.3 = 250\n"),
                     GMP_OK);
    const gmpd_config *c = &f->c;
    assert_string_equal(c->config_file, f->file);
    assert_string_equal(c->data_dir, "/var/lib/gmpool");
    assert_int_equal(c->n_listen, 3);
    assert_string_equal(c->listen[0], "unix:/run/gmpool/a.sock");
    assert_string_equal(c->listen[1], "tcp:0.0.0.0:7000");
    assert_string_equal(c->listen[2], "tcp:[::1]:7001");
    assert_string_equal(c->admin, "unix:/run/gmpool/admin.sock");
    assert_int_equal(c->io_threads, 4);
    assert_int_equal(c->nodes, 16);
    assert_int_equal(c->log_level, 3);
    assert_int_equal(c->window_max, 128);
    assert_int_equal(c->max_tasks, 10);
    assert_int_equal(c->max_buffered, 256u << 20);
    assert_int_equal(c->max_sessions, 50);
    assert_int_equal(c->thresholds[0], 100);
    assert_int_equal(c->thresholds[7], 5);
    assert_int_equal(c->thresholds[1], 0);
    assert_int_equal(c->wait_ms[3], 250);
}

static void test_size_suffixes(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *text;
        uint64_t want;
    } ok[] = {
        {"[limits]\nmax_buffered = 1048576\n", 1048576},
        {"[limits]\nmax_buffered = 1024K\n", 1048576},
        {"[limits]\nmax_buffered = 2048k\n", 2097152},
        {"[limits]\nmax_buffered = 3m\n", 3u << 20},
        {"[limits]\nmax_buffered = 2G\n", 2ull << 30},
        {"[limits]\nmax_buffered = 64G\n", 64ull << 30},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(load(f, ok[i].text), GMP_OK);
        assert_int_equal(f->c.max_buffered, ok[i].want);
    }
    const char *bad[] = {"1023K", "65G", "1T", "1MB", "M", "-1M",
                         "99999999999999999999G", "18014398509481984K",
                         "1.5M", "0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "[limits]\nmax_buffered = %s\n", bad[i]);
        gmpd_config_defaults(&f->c);
        assert_int_equal(load(f, text), GMP_ERR_CONFIG);
        assert_non_null(strstr(f->err, ":2: max_buffered: bad value"));
        assert_int_equal(f->c.max_buffered, 64u << 20); /* unchanged */
    }
}

static void test_file_unknown_keys(void **state)
{
    fixture *f = *state;
    load_fails(f, "[server]\nio_threads = 3\nbogus = 1\n", 3,
               "unknown key 'bogus' in [server]");
    load_fails(f, "[nope]\nx = 1\n", 2, "unknown key 'x' in [nope]");
    load_fails(f, "top = 1\n", 1, "unknown key 'top' in []");
    load_fails(f, "[limits]\nio_threads = 2\n", 2,
               "unknown key 'io_threads' in [limits]");
    load_fails(f, "[queue]\nthreshold.8 = 1\n", 2,
               "unknown key 'threshold.8' in [queue]");
    load_fails(f, "[queue]\nthreshold = 1\n", 2,
               "unknown key 'threshold' in [queue]");
    load_fails(f, "[queue]\nwait_ms.01 = 1\n", 2,
               "unknown key 'wait_ms.01' in [queue]");
    /* the first error is reported even when more follow */
    load_fails(f, "[server]\n\n; c\nx = 1\ny = 2\n", 4,
               "unknown key 'x' in [server]");
}

static void test_file_bad_numbers(void **state)
{
    fixture *f = *state;
    load_fails(f, "[server]\nio_threads = abc\n", 2,
               "io_threads: bad value 'abc' (expected 1..64)");
    load_fails(f, "[server]\nio_threads = -1\n", 2,
               "io_threads: bad value '-1' (expected 1..64)");
    load_fails(f, "[server]\nio_threads = 2x\n", 2,
               "io_threads: bad value '2x' (expected 1..64)");
    load_fails(f, "[server]\nio_threads =\n", 2,
               "io_threads: bad value '' (expected 1..64)");
    load_fails(f, "[server]\nnodes = 99999999999999999999999\n", 2,
               "nodes: bad value '99999999999999999999999' "
               "(expected 1..256)");
}

static void test_file_ranges(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *section, *key;
        unsigned long long lo, hi;
    } r[] = {
        {"server", "io_threads", 1, 64},    {"server", "nodes", 1, 256},
        {"server", "log_level", 0, 3},      {"limits", "window_max", 1, 1024},
        {"limits", "max_tasks", 1, 4096},   {"limits", "max_sessions", 1, 65536},
        {"queue", "threshold.3", 0, 1000000}, {"queue", "wait_ms.5", 0, 3600000},
        {"server", "nodes_min", 0, 256},
        {"server", "node_idle_ms", 1, 3600000},
        {"server", "scale_period_ms", 10, 3600000},
        {"queue", "default_deadline_ms", 0, 86400000},
        {"queue", "deadline_ms.alice", 0, 86400000},
    };
    char text[256], msg[256];
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        unsigned long long edge[] = {r[i].lo, r[i].hi};
        for (int e = 0; e < 2; e++) {
            snprintf(text, sizeof text, "[%s]\n%s = %llu\n", r[i].section,
                     r[i].key, edge[e]);
            assert_int_equal(load(f, text), GMP_OK);
        }
        unsigned long long out[] = {r[i].lo - 1, r[i].hi + 1};
        for (int e = r[i].lo == 0; e < 2; e++) {
            snprintf(text, sizeof text, "[%s]\n%s = %llu\n", r[i].section,
                     r[i].key, out[e]);
            snprintf(msg, sizeof msg, "%s: bad value '%llu' (expected "
                     "%llu..%llu)", r[i].key, out[e], r[i].lo, r[i].hi);
            load_fails(f, text, 2, msg);
        }
    }
}

/* TTSA keys: band (percent, low <= high), variant, deadlines. */
static void test_ttsa_keys(void **state)
{
    fixture *f = *state;
    gmpd_config *c = &f->c;
    assert_int_equal(load(f, "[server]\nnodes_min = 1\nnode_idle_ms = 300\n"
                             "scale_period_ms = 100\n"
                             "[queue]\nband_low = 50\nband_high = 100\n"
                             "variant = NRMttsa\ndefault_deadline_ms = 250\n"
                             "deadline_ms.alice = 40\n"
                             "deadline_ms.b-o_b.2 = 0\n"
                             "deadline_ms.alice = 30\n"),
                     GMP_OK);
    assert_int_equal(c->nodes_min, 1);
    assert_int_equal(c->node_idle_ms, 300);
    assert_int_equal(c->scale_period_ms, 100);
    assert_int_equal(c->band_low, 50);
    assert_int_equal(c->band_high, 100);
    assert_int_equal(c->ttsa_variant, GMPD_CFG_NRMTTSA);
    assert_int_equal(c->n_tenant_deadlines, 2);   /* alice replaced */
    assert_int_equal(gmpd_config_deadline(c, "alice"), 30);
    assert_int_equal(gmpd_config_deadline(c, "b-o_b.2"), 0);
    assert_int_equal(gmpd_config_deadline(c, "carol"), 250);
    assert_int_equal(gmpd_config_deadline(c, NULL), 250);

    static const char *const v[] = {"ttsa", "nrttsa", "nmttsa", "nrmttsa"};
    for (int i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof text, "[queue]\nvariant = %s\n", v[i]);
        gmpd_config_defaults(c);
        assert_int_equal(load(f, text), GMP_OK);
        assert_int_equal(c->ttsa_variant, i);
    }
    /* low == high is a band of one value: allowed */
    gmpd_config_defaults(c);
    assert_int_equal(load(f, "[queue]\nband_low = 80\nband_high = 80\n"),
                     GMP_OK);

    load_fails(f, "[queue]\nvariant = edf\n", 2,
               "variant: bad value 'edf' (expected ttsa, nrttsa, nmttsa "
               "or nrmttsa)");
    load_fails(f, "[queue]\nvariant =\n", 2,
               "variant: bad value '' (expected ttsa, nrttsa, nmttsa "
               "or nrmttsa)");
    load_fails(f, "[queue]\nband_high = 0\n", 2,
               "band_high: bad value '0' (expected 1..100)");
    load_fails(f, "[queue]\nband_low = 101\n", 2,
               "band_low: bad value '101' (expected 1..100)");
    load_fails(f, "[queue]\ndeadline_ms.bad/name = 5\n", 2,
               "deadline_ms.bad/name: bad tenant name 'bad/name'");
    load_fails(f, "[queue]\ndeadline_ms. = 5\n", 2,
               "deadline_ms.: bad tenant name ''");
    load_fails(f, "[queue]\ndeadline_ms.. = 5\n", 2,
               "deadline_ms..: bad tenant name '.'");
    load_fails(f, "[server]\nband_low = 50\n", 2,
               "unknown key 'band_low' in [server]");

    /* the band is checked once every source is applied */
    gmpd_config_defaults(c);
    assert_int_equal(load(f, "[queue]\nband_low = 90\n"), GMP_ERR_CONFIG);
    assert_string_equal(f->err, "band_low 90% is above band_high 85%");

    /* a bounded table: the 33rd tenant is refused */
    gmpd_config_defaults(c);
    char big[4096] = "[queue]\n";
    for (int i = 0; i <= GMPD_MAX_TENANT_DEADLINES; i++) {
        size_t n = strlen(big);
        snprintf(big + n, sizeof big - n, "deadline_ms.t%d = %d\n", i, i);
    }
    assert_int_equal(load(f, big), GMP_ERR_CONFIG);
    char want[256];
    snprintf(want, sizeof want, "%s:%d: deadline_ms.t%d: more than %d "
             "tenant deadlines", f->file, GMPD_MAX_TENANT_DEADLINES + 2,
             GMPD_MAX_TENANT_DEADLINES, GMPD_MAX_TENANT_DEADLINES);
    assert_string_equal(f->err, want);
}

static void test_file_bad_addresses(void **state)
{
    fixture *f = *state;
    const char *bad[] = {
        "unix:relative.sock", "unix:", "tcp:127.0.0.1", "tcp::80",
        "tcp:host:0", "tcp:host:65536", "tcp:host:80x", "udp:host:1",
        "/tmp/x.sock", ""};
    char text[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "[server]\nlisten = %s\n", bad[i]);
        gmpd_config_defaults(&f->c);
        assert_int_equal(load(f, text), GMP_ERR_CONFIG);
        assert_non_null(strstr(f->err, ":2: listen: bad address"));
    }
    /* 108 bytes of path do not fit sun_path with its NUL; 107 do */
    snprintf(text, sizeof text, "[server]\nlisten = unix:/%0107d\n", 0);
    gmpd_config_defaults(&f->c);
    assert_int_equal(load(f, text), GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, ":2: listen: bad address"));
    snprintf(text, sizeof text, "[server]\nlisten = unix:/%0106d\n", 0);
    assert_int_equal(load(f, text), GMP_OK);
    assert_int_equal(f->c.n_listen, 1);
    assert_int_equal(load(f, "[server]\nlisten = tcp:host:65535\n"), GMP_OK);

    gmpd_config_defaults(&f->c);
    assert_int_equal(load(f, "[server]\nadmin = tcp:127.0.0.1:9\n"),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, ":2: admin: 'tcp:127.0.0.1:9' must be a "
                                   "unix:/absolute/path address"));
    load_fails(f, "[server]\nlisten = tcp:a:1\nlisten = tcp:a:1\n", 3,
               "listen: 'tcp:a:1' is listed twice");
    load_fails(f,
               "[server]\nlisten = tcp:a:1\nlisten = tcp:a:2\n"
               "listen = tcp:a:3\nlisten = tcp:a:4\nlisten = tcp:a:5\n"
               "listen = tcp:a:6\nlisten = tcp:a:7\nlisten = tcp:a:8\n"
               "listen = tcp:a:9\n",
               10, "listen: more than 8 listen addresses");
    gmpd_config_defaults(&f->c);
    assert_int_equal(load(f, "[server]\nlisten = unix:/x/admin.sock\n"
                             "admin = unix:/x/admin.sock\n"),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "also a listen address"));
}

static void test_file_other_errors(void **state)
{
    fixture *f = *state;
    load_fails(f, "[server]\ndata_dir = relative/dir\n", 2,
               "data_dir: 'relative/dir' is not an absolute path");
    gmpd_config_defaults(&f->c);
    assert_int_equal(load(f, "[server]\nio_threads = 3\nthis is not ini\n"),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, ":3: syntax error"));
    gmpd_config_defaults(&f->c);
    assert_int_equal(load(f, "[server\n"), GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, ":1: syntax error"));

    char text[400];
    snprintf(text, sizeof text, "[server]\n; %0250d\nnodes = 1\n", 0);
    load_fails(f, text, 2, "line too long (max 198 bytes)");

    char missing[200];
    snprintf(missing, sizeof missing, "%s/absent.conf", f->dir);
    assert_int_equal(gmpd_config_load(&f->c, missing, f->err, sizeof f->err),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "cannot read config"));
    assert_int_equal(gmpd_config_load(&f->c, f->dir, f->err, sizeof f->err),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "not a regular file"));
}

static void test_file_listen_replaces_defaults(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "[server]\nlisten = tcp:127.0.0.1:9000\n"),
                     GMP_OK);
    assert_int_equal(f->c.n_listen, 1);
    assert_string_equal(f->c.listen[0], "tcp:127.0.0.1:9000");
    /* admin was not set: still derived */
    assert_string_equal(f->c.admin, "unix:" DATA "/admin.sock");
}

static void test_flags(void **state)
{
    fixture *f = *state;
    assert_int_equal(FROM_ARGS(f, "--io-threads", "7", "--nodes=3",
                               "--log-level", "0", "--admin",
                               "unix:/a/adm.sock"),
                     GMP_OK);
    assert_int_equal(f->c.io_threads, 7);
    assert_int_equal(f->c.nodes, 3);
    assert_int_equal(f->c.log_level, 0);
    assert_string_equal(f->c.admin, "unix:/a/adm.sock");
    assert_int_equal(f->c.n_listen, 2); /* untouched */
    assert_string_equal(f->c.config_file, "");

    gmpd_config_defaults(&f->c);
    assert_int_equal(FROM_ARGS(f, "--listen", "tcp:h:1", "--listen",
                               "unix:/s.sock"),
                     GMP_OK);
    assert_int_equal(f->c.n_listen, 2);
    assert_string_equal(f->c.listen[0], "tcp:h:1");
    assert_string_equal(f->c.listen[1], "unix:/s.sock");
}

static void test_flags_override_file(void **state)
{
    fixture *f = *state;
    conf(f, "[server]\nio_threads = 4\nnodes = 5\n"
            "listen = tcp:file:1\nlisten = tcp:file:2\n"
            "[limits]\nmax_tasks = 9\n");
    /* --config comes last but is read first */
    assert_int_equal(FROM_ARGS(f, "--io-threads", "8", "--listen",
                               "tcp:flag:1", "--config", f->file),
                     GMP_OK);
    assert_string_equal(f->c.config_file, f->file);
    assert_int_equal(f->c.io_threads, 8);
    assert_int_equal(f->c.nodes, 5);
    assert_int_equal(f->c.max_tasks, 9);
    assert_int_equal(f->c.n_listen, 1);
    assert_string_equal(f->c.listen[0], "tcp:flag:1");

    gmpd_config_defaults(&f->c);
    char opt[200];
    snprintf(opt, sizeof opt, "--config=%s", f->file);
    assert_int_equal(FROM_ARGS(f, opt), GMP_OK);
    assert_int_equal(f->c.n_listen, 2);
    assert_string_equal(f->c.listen[1], "tcp:file:2");

    /* an error in the file is reported with its location */
    conf(f, "[server]\nnodes = 0\n");
    gmpd_config_defaults(&f->c);
    assert_int_equal(FROM_ARGS(f, "--config", f->file), GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, ":2: nodes: bad value '0'"));
}

static void test_data_dir_rederive(void **state)
{
    fixture *f = *state;
    /* flag: listen and admin follow the new data dir */
    assert_int_equal(FROM_ARGS(f, "--data-dir", "/b"), GMP_OK);
    assert_string_equal(f->c.data_dir, "/b");
    assert_int_equal(f->c.n_listen, 2);
    assert_string_equal(f->c.listen[0], "unix:/b/gmpoold.sock");
    assert_string_equal(f->c.listen[1], "tcp:127.0.0.1:7805");
    assert_string_equal(f->c.admin, "unix:/b/admin.sock");

    /* explicit listen kept, admin still derived, whatever the order */
    gmpd_config_defaults(&f->c);
    assert_int_equal(FROM_ARGS(f, "--listen", "tcp:h:5", "--data-dir", "/c"),
                     GMP_OK);
    assert_int_equal(f->c.n_listen, 1);
    assert_string_equal(f->c.listen[0], "tcp:h:5");
    assert_string_equal(f->c.admin, "unix:/c/admin.sock");

    /* explicit admin kept */
    gmpd_config_defaults(&f->c);
    assert_int_equal(FROM_ARGS(f, "--admin", "unix:/adm.sock", "--data-dir",
                               "/d"), GMP_OK);
    assert_string_equal(f->c.admin, "unix:/adm.sock");
    assert_string_equal(f->c.listen[0], "unix:/d/gmpoold.sock");

    /* data_dir in the file */
    gmpd_config_defaults(&f->c);
    assert_int_equal(load(f, "[server]\ndata_dir = /e/\n"), GMP_OK);
    assert_string_equal(f->c.data_dir, "/e");
    assert_string_equal(f->c.listen[0], "unix:/e/gmpoold.sock");
    assert_string_equal(f->c.admin, "unix:/e/admin.sock");

    /* listen set in the file survives a later --data-dir flag */
    conf(f, "[server]\ndata_dir = /f\nlisten = unix:/f/gmpoold.sock\n");
    gmpd_config_defaults(&f->c);
    assert_int_equal(FROM_ARGS(f, "--config", f->file, "--data-dir", "/g"),
                     GMP_OK);
    assert_int_equal(f->c.n_listen, 1);
    assert_string_equal(f->c.listen[0], "unix:/f/gmpoold.sock");
    assert_string_equal(f->c.admin, "unix:/g/admin.sock");

    /* a relative flag value is anchored at the working directory */
    char cwd[512], want[600];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(want, sizeof want, "%s/rel", strcmp(cwd, "/") ? cwd : "");
    gmpd_config_defaults(&f->c);
    FROM_ARGS(f, "--data-dir", "rel");
    assert_string_equal(f->c.data_dir, want);
}

static void test_data_dir_too_long_for_socket(void **state)
{
    fixture *f = *state;
    char dir[200], opt[220];
    memset(dir, 'd', sizeof dir);
    dir[0] = '/';
    dir[sizeof dir - 1] = '\0';
    snprintf(opt, sizeof opt, "--data-dir=%s", dir);
    assert_int_equal(FROM_ARGS(f, opt), GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "shorten the data dir"));
    /* explicit short sockets make the same data dir usable */
    gmpd_config_defaults(&f->c);
    assert_int_equal(FROM_ARGS(f, opt, "--listen", "tcp:127.0.0.1:1",
                               "--admin", "unix:/tmp/a.sock"),
                     GMP_OK);
}

static void test_flag_errors(void **state)
{
    fixture *f = *state;
    assert_int_equal(FROM_ARGS(f, "--bogus"), GMP_ERR_CONFIG);
    assert_string_equal(f->err,
                        "unknown or ambiguous option '--bogus' (see --help)");
    assert_int_equal(FROM_ARGS(f, "-x"), GMP_ERR_CONFIG);
    assert_string_equal(f->err, "unknown option '-x' (see --help)");
    assert_int_equal(FROM_ARGS(f, "--nodes"), GMP_ERR_CONFIG);
    assert_string_equal(f->err, "option '--nodes' needs a value");
    assert_int_equal(FROM_ARGS(f, "--help=yes"), GMP_ERR_CONFIG);
    assert_string_equal(f->err, "option '--help=yes' takes no value");
    assert_int_equal(FROM_ARGS(f, "stray"), GMP_ERR_CONFIG);
    assert_string_equal(f->err, "unexpected argument 'stray'");
    assert_int_equal(FROM_ARGS(f, "--nodes", "0"), GMP_ERR_CONFIG);
    assert_string_equal(f->err, "--nodes: bad value '0' (expected 1..256)");
    assert_int_equal(FROM_ARGS(f, "--io-threads", "65"), GMP_ERR_CONFIG);
    assert_string_equal(f->err,
                        "--io-threads: bad value '65' (expected 1..64)");
    assert_int_equal(FROM_ARGS(f, "--log-level", "4"), GMP_ERR_CONFIG);
    assert_int_equal(FROM_ARGS(f, "--listen", "tcp:x"), GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "--listen: bad address 'tcp:x'"));
    assert_int_equal(FROM_ARGS(f, "--admin", "tcp:x:1"), GMP_ERR_CONFIG);
    assert_int_equal(FROM_ARGS(f, "--config", "/nonexistent/x.conf"),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "cannot read config /nonexistent/x.conf"));
}

/* Runs from_args with stdout sent to a file; returns what was printed. */
static int run_captured(fixture *f, int argc, char **argv, char *out,
                        size_t cap)
{
    char path[128];
    snprintf(path, sizeof path, "%s/stdout", f->dir);
    fflush(stdout);
    int saved = dup(1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    int rc = gmpd_config_from_args(&f->c, argc, argv, f->err, sizeof f->err);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(out, 1, cap - 1, fp);
    out[n] = '\0';
    fclose(fp);
    return rc;
}

static void test_help_and_version(void **state)
{
    fixture *f = *state;
    char out[4096];
    assert_int_equal(run_captured(f, 2, ARGS("--version"), out, sizeof out),
                     1);
    assert_string_equal(out, "gmpoold " GMPOOL_VERSION_STRING "\n");
    assert_int_equal(run_captured(f, 2, ARGS("-V"), out, sizeof out), 1);
    assert_int_equal(run_captured(f, 2, ARGS("--help"), out, sizeof out), 1);
    const char *flags[] = {"--config", "--data-dir", "--listen", "--admin",
                           "--io-threads", "--nodes", "--log-level",
                           "--help", "--version"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        assert_non_null(strstr(out, flags[i]));
    /* help wins even over a config file that does not exist */
    assert_int_equal(run_captured(f, 4, ARGS("--config", "/nope", "-h"),
                                  out, sizeof out), 1);
    assert_non_null(strstr(out, "usage:"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_default_data_dir_fallbacks),
        T(test_file_all_keys),
        T(test_size_suffixes),
        T(test_file_unknown_keys),
        T(test_file_bad_numbers),
        T(test_file_ranges),
        T(test_ttsa_keys),
        T(test_file_bad_addresses),
        T(test_file_other_errors),
        T(test_file_listen_replaces_defaults),
        T(test_flags),
        T(test_flags_override_file),
        T(test_data_dir_rederive),
        T(test_data_dir_too_long_for_socket),
        T(test_flag_errors),
        T(test_help_and_version),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
