/* TTSA inside gmpoold (R8-R12): deadline tasks are placed by the TTSA core,
 * ScaleUp unparks a local node when no active node meets a deadline (as
 * far as the R10 band allows), ScaleDown parks idle nodes again, and the
 * results stay correct throughout.  Each test starts its own daemon with
 * a short idle period so the whole file runs in a few seconds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "gmpool.h"
#include "harness.h"

#define TASK_LEN (16u << 20)  /* ~20-100 ms of SM3 per node: longer than */
#define DEADLINE_MS 5u        /* the deadline, so one node cannot do two */
#define BURST 3

static char g_conf_dir[64];

/* Writes a config file and starts gmpoold on it with --nodes nodes. */
static gmpt_daemon *start_with(const char *conf, const char *nodes)
{
    static char path[128];
    snprintf(g_conf_dir, sizeof g_conf_dir, "/tmp/gmpt-conf.XXXXXX");
    assert_non_null(mkdtemp(g_conf_dir));
    snprintf(path, sizeof path, "%s/gmpoold.conf", g_conf_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(conf, f);
    assert_int_equal(fclose(f), 0);
    const char *extra[] = {"--config", path, "--nodes", nodes, NULL};
    return gmpt_start(extra);
}

static void stop_and_clean(gmpt_daemon *d)
{
    char path[128];
    gmpt_stop(d);
    snprintf(path, sizeof path, "%s/gmpoold.conf", g_conf_dir);
    unlink(path);
    rmdir(g_conf_dir);
}

static char *ctl(gmpt_daemon *d, const char *args)
{
    char *out = NULL;
    assert_int_equal(gmpt_ctl(d, &out, args), 0);
    assert_non_null(out);
    return out;
}

/* true when `gmpoolctl sched` contains want within timeout_ms. */
static bool sched_shows(gmpt_daemon *d, const char *want, int timeout_ms)
{
    for (int waited = 0;; waited += 50) {
        char *out = ctl(d, "sched");
        bool hit = strstr(out, want) != NULL;
        if (hit || waited >= timeout_ms)
            fprintf(stderr, "%s", out);
        free(out);
        if (hit)
            return true;
        if (waited >= timeout_ms)
            return false;
        usleep(50 * 1000);
    }
}

static void sm3_ref(const uint8_t *p, size_t n, uint8_t out[32])
{
    unsigned len = 0;
    EVP_MD *md = EVP_MD_fetch(NULL, "SM3", "provider=default");
    assert_non_null(md);
    assert_int_equal(EVP_Digest(p, n, out, &len, md, NULL), 1);
    assert_int_equal(len, 32);
    EVP_MD_free(md);
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    uint32_t x = 2463534242u + seed;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

typedef struct burst {
    gmp_client *c;
    gmp_task *t[BURST];
    uint8_t *in[BURST];
} burst;

/* Opens all tasks first: each is placed at OPEN, and none can finish
 * before its data arrives, so the daemon sees them all at once. */
static void burst_open(gmpt_daemon *d, burst *b, uint32_t deadline_ms)
{
    gmp_options o = gmpt_options(d);
    assert_int_equal(gmp_client_open(&b->c, &o), GMP_OK);
    gmp_task_options to = {.priority = 4, .deadline_ms = deadline_ms,
                           .total_len = TASK_LEN};
    /* inputs first: the model counts a task as running from its OPEN,
     * so the opens must come close together */
    for (int i = 0; i < BURST; i++)
        b->in[i] = pattern(TASK_LEN, (unsigned)i + deadline_ms);
    for (int i = 0; i < BURST; i++) {
        assert_int_equal(gmp_digest_open(b->c, GMP_ALG_SM3, &to, &b->t[i]),
                         GMP_OK);
    }
}

/* Feeds every task and checks each digest against libcrypto's. */
static void burst_finish(burst *b)
{
    for (int i = 0; i < BURST; i++)
        assert_int_equal(gmp_task_update(b->t[i], b->in[i], TASK_LEN, NULL,
                                         NULL), GMP_OK);
    for (int i = 0; i < BURST; i++) {
        uint8_t got[32], want[32];
        size_t n = sizeof got;
        assert_int_equal(gmp_task_final(b->t[i], got, &n), GMP_OK);
        assert_int_equal(n, 32);
        sm3_ref(b->in[i], TASK_LEN, want);
        assert_memory_equal(got, want, 32);
        gmp_task_free(b->t[i]);
        free(b->in[i]);
    }
    gmp_client_close(b->c);
}

/* Three nodes, one active.  A burst of deadline tasks unparks a second
 * node (ScaleUp step 1) but not the third: with two of three nodes busy
 * the server runs at 67 % of its bandwidth and a third would take it to
 * 100 %, over the 85 % top of the band (R10).  Idle, ScaleDown parks
 * back to one node.  Tasks without a deadline never unpark anything. */
static void scale_up_and_down(void **state)
{
    (void)state;
    gmpt_daemon *d = start_with("[server]\nnodes_min = 1\n"
                                "node_idle_ms = 300\n"
                                "scale_period_ms = 100\n", "3");
    assert_true(sched_shows(d, "nodes: 1 active, 2 parked (min 1, max 3)",
                            0));
    assert_true(sched_shows(d, "variant TTSA, band 70-85 %", 0));

    burst b;
    burst_open(d, &b, DEADLINE_MS);
    assert_true(sched_shows(d, "nodes: 2 active, 1 parked", 0));
    assert_true(sched_shows(d, "scaleup-1", 0));
    char *nl = ctl(d, "node list");
    assert_non_null(strstr(nl, "parked"));
    free(nl);
    burst_finish(&b);

    assert_true(sched_shows(d, "nodes: 1 active, 2 parked", 10000));
    assert_true(sched_shows(d, "vcm-stop", 0));

    burst_open(d, &b, 0);   /* no deadline: speed-proportional placement */
    assert_true(sched_shows(d, "nodes: 1 active, 2 parked", 0));
    burst_finish(&b);
    stop_and_clean(d);
}

/* The deadline can come from the configuration: the tenant's own
 * deadline_ms.TENANT (here the default tenant's).  With the band's top at
 * 100 % both nodes may run. */
static void tenant_deadline_and_band(void **state)
{
    (void)state;
    gmpt_daemon *d = start_with("[server]\nnodes_min = 1\n"
                                "node_idle_ms = 300\n"
                                "scale_period_ms = 100\n"
                                "[queue]\nband_high = 100\n"
                                "variant = nmttsa\n"
                                "default_deadline_ms = 0\n"
                                "deadline_ms.default = 5\n", "2");
    assert_true(sched_shows(d, "variant NMTTSA, band 70-100 %", 0));
    burst b;
    burst_open(d, &b, 0);
    assert_true(sched_shows(d, "nodes: 2 active, 0 parked", 0));
    burst_finish(&b);
    assert_true(sched_shows(d, "nodes: 1 active, 1 parked", 10000));
    stop_and_clean(d);
}

/* Default configuration: every node active, and deadline tasks run. */
static void defaults_all_active(void **state)
{
    (void)state;
    gmpt_daemon *d = start_with("[server]\n", "2");
    assert_true(sched_shows(d, "nodes: 2 active, 0 parked (min 2, max 2)",
                            0));
    burst b;
    burst_open(d, &b, DEADLINE_MS);
    burst_finish(&b);
    assert_true(sched_shows(d, "nodes: 2 active, 0 parked", 0));
    stop_and_clean(d);
}

static unsigned long long serial_moves(gmpt_daemon *d)
{
    unsigned long long n = 0;
    assert_int_equal(gmpt_ctl_number(d, "status", "serial tasks moved ", &n),
                     0);
    return n;
}

/* SM3 tasks placed while node 2 was down all sit on node 1; once node 2
 * is back, it takes tasks over instead of idling (their chaining state
 * travels with the task), and every digest stays right. */
static void serial_tasks_follow_idle_nodes(void **state)
{
    (void)state;
    gmpt_daemon *d = start_with("[server]\n", "2");
    free(ctl(d, "node down 2"));
    burst b;
    burst_open(d, &b, 0);
    free(ctl(d, "node up 2"));
    assert_int_equal(serial_moves(d), 0);
    burst_finish(&b);
    assert_true(serial_moves(d) >= 1);
    stop_and_clean(d);
}

/* The sum of column `name` of the node table of `gmpoolctl status`. */
static unsigned long long node_column_sum(gmpt_daemon *d, const char *name)
{
    char *out = NULL;
    assert_int_equal(gmpt_ctl(d, &out, "status"), 0);
    const char *line = out ? strstr(out, "\nNODE ") : NULL;
    assert_non_null(line);
    int col = -1, i = 0;
    char head[512];
    const char *eol = strchr(line + 1, '\n');
    assert_non_null(eol);
    snprintf(head, sizeof head, "%.*s", (int)(eol - line - 1), line + 1);
    for (char *sv, *tok = strtok_r(head, " ", &sv); tok;
         tok = strtok_r(NULL, " ", &sv), i++)
        if (strcmp(tok, name) == 0)
            col = i;
    assert_true(col >= 0);
    unsigned long long sum = 0;
    for (line = eol + 1; *line >= '0' && *line <= '9';
         line = strchr(line, '\n') + 1) {
        const char *p = line;
        for (int k = 0; k < col; k++)
            p += strcspn(p, " "), p += strspn(p, " ");
        sum += strtoull(p, NULL, 10);
    }
    free(out);
    return sum;
}

/* R16: each node has a budget of 64 shards in flight, shared among the
 * tasks open; a task gets at most the cap (window_max, 64).  Two nodes:
 * the second task still gets 64 (a serial task feeds only its node), the
 * third 128 / 3, the fourth 32.  Read off the OPEN_OK frames.  A node
 * that goes idle while a task is bound to it waits for that task's next
 * shard: the WAITS column counts it. */
static void window_budget_per_node(void **state)
{
    (void)state;
    gmpt_daemon *d = start_with("[server]\n", "2");
    char tenant[GMPC_MAX_NAME + 1];
    uint8_t secret[32];
    size_t secret_len;
    assert_int_equal(gmpt_load_creds(d->creds, tenant, sizeof tenant, secret,
                                     &secret_len),
                     0);
    int fd = gmpt_raw_connect(d);
    assert_true(fd >= 0);
    assert_int_equal(gmpt_raw_auth(fd, tenant, secret, secret_len, NULL),
                     GMP_OK);
    static const uint32_t want[] = {64, 64, 42, 32};
    for (unsigned i = 0; i < 4; i++) {
        uint8_t buf[160];
        gmpc_open o = {0};
        gmpc_wbuf w = {buf, sizeof buf, 0, false};
        assert_int_equal(gmpc_open_encode(&o, &w), GMP_OK);
        gmpc_hdr h = {.type = GMPC_T_OPEN, .task_id = 0x51 + i,
                      .alg = GMP_ALG_SM3, .fresh = 1 + i, .priority = 4,
                      .len = (uint32_t)w.len};
        assert_int_equal(gmpt_raw_send_frame(fd, &h, buf), 0);
        assert_int_equal(gmpt_raw_read_frame(fd, &h, NULL, 5000), 0);
        assert_int_equal(h.type, GMPC_T_OPEN_OK);
        assert_int_equal(h.window, want[i]);
    }
    assert_int_equal(node_column_sum(d, "WAITS"), 0);
    gmpc_hdr h = {.type = GMPC_T_SHARD, .task_id = 0x51, .len = 64};
    uint8_t data[64] = {1};
    assert_int_equal(gmpt_raw_send_frame(fd, &h, data), 0);
    assert_int_equal(gmpt_raw_read_frame(fd, &h, NULL, 5000), 0);
    assert_int_equal(h.type, GMPC_T_RESULT);
    /* the node counts the wait once it has posted the result */
    unsigned long long waits = 0;
    for (int i = 0; i < 100 && !waits; i++, usleep(20000))
        waits = node_column_sum(d, "WAITS");
    assert_true(waits >= 1);
    close(fd);
    stop_and_clean(d);
}

/* Threads' policies by name prefix: every thread named so has `want`. */
static unsigned threads_with_policy(const gmpt_daemon *d, const char *prefix,
                                    int want)
{
    char dir[64], path[352], comm[32];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)d->pid);
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    unsigned n = 0;
    for (struct dirent *e; (e = readdir(dp));) {
        snprintf(path, sizeof path, "%s/%s/comm", dir, e->d_name);
        FILE *f = e->d_name[0] == '.' ? NULL : fopen(path, "r");
        bool named = f && fgets(comm, sizeof comm, f) &&
                     strncmp(comm, prefix, strlen(prefix)) == 0;
        if (f)
            fclose(f);
        if (named) {
            assert_int_equal(sched_getscheduler(atoi(e->d_name)), want);
            n++;
        }
    }
    closedir(dp);
    return n;
}

/* Threads by name (top -H), and the io threads' policy: SCHED_BATCH, so
 * that their wake-ups do not preempt a computing node (step 13 of
 * docs/performance.md); the nodes keep the default. */
static void thread_names_and_policies(void **state)
{
    (void)state;
    gmpt_daemon *d = start_with("[server]\nio_threads = 2\n", "2");
    assert_int_equal(threads_with_policy(d, "gmpd-node", SCHED_OTHER), 2);
    assert_int_equal(threads_with_policy(d, "gmpd-io", SCHED_BATCH), 2);
    stop_and_clean(d);
}

/* The test process back on the default policy, also when a check of
 * real_time_policy_kept failed while it was real-time. */
static int default_policy(void **state)
{
    (void)state;
    struct sched_param other = {0};
    return sched_setscheduler(0, SCHED_OTHER, &other);
}

/* An operator who runs gmpoold under a real-time policy (chrt -f) keeps it
 * for the io threads: a SCHED_BATCH io thread beside real-time nodes would
 * not run while they compute.  Work still goes through. */
static void real_time_policy_kept(void **state)
{
    (void)state;
    struct sched_param rt = {.sched_priority = 1};
    if (sched_setscheduler(0, SCHED_FIFO, &rt) != 0) {
        const char *ci = getenv("CI");
        fprintf(stderr, "SCHED_FIFO refused here: %m\n");
        assert_false(ci && strcmp(ci, "true") == 0);
        skip();
    }
    /* the daemon inherits the policy across fork and exec */
    gmpt_daemon *d = start_with("[server]\nio_threads = 2\n", "1");
    assert_int_equal(default_policy(NULL), 0);
    assert_int_equal(threads_with_policy(d, "gmpd-io", SCHED_FIFO), 2);
    assert_int_equal(threads_with_policy(d, "gmpd-node", SCHED_FIFO), 1);
    gmp_options o = gmpt_options(d);
    gmp_client *c = NULL;
    assert_int_equal(gmp_client_open(&c, &o), GMP_OK);
    uint8_t *in = pattern(1u << 20, 7), md[32], ref[32];
    assert_int_equal(gmp_digest(c, GMP_ALG_SM3, in, 1u << 20, md), GMP_OK);
    sm3_ref(in, 1u << 20, ref);
    assert_memory_equal(md, ref, 32);
    free(in);
    gmp_client_close(c);
    stop_and_clean(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scale_up_and_down),
        cmocka_unit_test(tenant_deadline_and_band),
        cmocka_unit_test(defaults_all_active),
        cmocka_unit_test(serial_tasks_follow_idle_nodes),
        cmocka_unit_test(window_budget_per_node),
        cmocka_unit_test(thread_names_and_policies),
        cmocka_unit_test_teardown(real_time_policy_kept, default_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
