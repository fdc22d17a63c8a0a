/* R7 live-load table (in-memory) and the EWMA rate meter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "gmpool.h"
#include "load.h"

#define SEC 1000000000ull
#define MS 1000000ull
#define MAX_ROWS 4096

static gmpd_load *ld;

static int setup(void **state)
{
    (void)state;
    ld = gmpd_load_mem_new();
    return ld ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ld->ops->free(ld);
    ld = NULL;
    return 0;
}

static gmpd_load_rec rec(const char *host, uint32_t node, uint32_t depth)
{
    gmpd_load_rec r;
    memset(&r, 0, sizeof(r));
    snprintf(r.host, sizeof(r.host), "%s", host);
    r.node = node;
    r.vcm = node * 3;
    r.queue_depth = depth;
    r.bytes_per_s = depth * 1000.0;   /* tied to depth: torn rows show */
    r.heartbeat_ms = depth;
    return r;
}

static int put(const char *host, uint32_t node, uint32_t depth)
{
    gmpd_load_rec r = rec(host, node, depth);
    return ld->ops->put(ld, &r);
}

static void test_put_get_overwrite(void **state)
{
    (void)state;
    gmpd_load_rec out;
    assert_int_equal(ld->ops->get(ld, "a", 1, &out), GMP_ERR_NOT_FOUND);
    assert_int_equal(put("a", 1, 5), 0);
    assert_int_equal(put("a", 0, 6), 0);     /* host row: a different key */
    assert_int_equal(put("b", 1, 7), 0);
    assert_int_equal(ld->ops->get(ld, "a", 1, &out), 0);
    assert_string_equal(out.host, "a");
    assert_int_equal(out.queue_depth, 5);
    assert_int_equal(out.vcm, 3);
    assert_int_equal(put("a", 1, 9), 0);
    assert_int_equal(ld->ops->get(ld, "a", 1, &out), 0);
    assert_int_equal(out.queue_depth, 9);
    assert_true(out.bytes_per_s == 9000.0);
    assert_int_equal(ld->ops->get(ld, "a", 0, &out), 0);
    assert_int_equal(out.queue_depth, 6);
    assert_int_equal(ld->ops->get(ld, "c", 1, &out), GMP_ERR_NOT_FOUND);

    assert_int_equal(ld->ops->del(ld, "a", 1), 0);
    assert_int_equal(ld->ops->del(ld, "a", 1), GMP_ERR_NOT_FOUND);
    assert_int_equal(ld->ops->get(ld, "a", 1, &out), GMP_ERR_NOT_FOUND);
    assert_int_equal(ld->ops->get(ld, "b", 1, &out), 0);
}

static void test_bad_args(void **state)
{
    (void)state;
    gmpd_load_rec r = rec("x", 1, 1), out;
    memset(r.host, 'h', sizeof(r.host));      /* no terminating NUL */
    assert_int_equal(ld->ops->put(ld, &r), GMP_ERR_ARG);
    r.host[0] = '\0';
    assert_int_equal(ld->ops->put(ld, &r), GMP_ERR_ARG);
    assert_int_equal(ld->ops->put(ld, NULL), GMP_ERR_ARG);
    assert_int_equal(ld->ops->get(ld, NULL, 1, &out), GMP_ERR_ARG);
    assert_int_equal(ld->ops->get(ld, "x", 1, NULL), GMP_ERR_ARG);
    assert_int_equal(ld->ops->del(ld, "", 1), GMP_ERR_ARG);
    assert_int_equal(ld->ops->list(ld, NULL, NULL), GMP_ERR_ARG);

    char longest[GMPD_HOST_LEN];
    memset(longest, 'h', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    assert_int_equal(put(longest, 1, 1), 0);
    assert_int_equal(ld->ops->get(ld, longest, 1, &out), 0);
}

typedef struct collect {
    gmpd_load_rec row[16];
    unsigned n;
    unsigned stop_after;   /* 0 = never */
} collect;

static int collect_cb(const gmpd_load_rec *r, void *arg)
{
    collect *c = arg;
    if (c->n < 16)
        c->row[c->n] = *r;
    c->n++;
    return c->stop_after && c->n == c->stop_after ? 77 : 0;
}

static void test_list_insertion_order(void **state)
{
    (void)state;
    collect c = { .n = 0 };
    assert_int_equal(ld->ops->list(ld, collect_cb, &c), 0);
    assert_int_equal(c.n, 0);

    put("z", 3, 1);
    put("a", 9, 2);
    put("m", 1, 3);
    put("a", 2, 4);
    put("z", 3, 5);                   /* overwrite keeps its place */
    ld->ops->del(ld, "a", 9);
    put("b", 0, 6);
    c.n = 0;
    assert_int_equal(ld->ops->list(ld, collect_cb, &c), 0);
    assert_int_equal(c.n, 4);
    static const char *want_host[] = { "z", "m", "a", "b" };
    static const uint32_t want_depth[] = { 5, 3, 4, 6 };
    for (unsigned i = 0; i < 4; i++) {
        assert_string_equal(c.row[i].host, want_host[i]);
        assert_int_equal(c.row[i].queue_depth, want_depth[i]);
    }

    c.n = 0;
    c.stop_after = 2;
    assert_int_equal(ld->ops->list(ld, collect_cb, &c), 77);
    assert_int_equal(c.n, 2);
}

/* A list callback may write to the table (it runs on a snapshot). */
static int reput_cb(const gmpd_load_rec *r, void *arg)
{
    gmpd_load_rec copy = *r;
    copy.queue_depth += 100;
    (void)arg;
    return ld->ops->put(ld, &copy);
}

static void test_list_callback_may_put(void **state)
{
    (void)state;
    put("a", 1, 1);
    put("a", 2, 2);
    assert_int_equal(ld->ops->list(ld, reput_cb, NULL), 0);
    gmpd_load_rec out;
    assert_int_equal(ld->ops->get(ld, "a", 2, &out), 0);
    assert_int_equal(out.queue_depth, 102);
}

static void test_limit(void **state)
{
    (void)state;
    char host[16];
    for (unsigned i = 0; i < MAX_ROWS; i++) {
        snprintf(host, sizeof(host), "h%u", i / 64);
        assert_int_equal(put(host, i % 64, i), 0);
    }
    assert_int_equal(put("new", 1, 1), GMP_ERR_LIMIT);
    assert_int_equal(put("h0", 5, 999), 0);          /* overwrite still ok */
    assert_int_equal(ld->ops->del(ld, "h3", 7), 0);
    assert_int_equal(put("new", 1, 1), 0);
    assert_int_equal(put("new", 2, 1), GMP_ERR_LIMIT);

    collect c = { .n = 0 };
    assert_int_equal(ld->ops->list(ld, collect_cb, &c), 0);
    assert_int_equal(c.n, MAX_ROWS);
}

/* ---- threads ---- */

#define WRITERS 4
#define NODES 250
#define ROUNDS 20

static void *writer(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    char host[16];
    snprintf(host, sizeof(host), "host%u", t);
    for (uint32_t round = 1; round <= ROUNDS; round++)
        for (uint32_t node = 1; node <= NODES; node++)
            if (put(host, node, round) != 0)
                return (void *)1;
    return NULL;
}

typedef struct check {
    unsigned rows;
    unsigned torn;
    uint32_t last_node[WRITERS];
    unsigned out_of_order;
} check;

static int check_cb(const gmpd_load_rec *r, void *arg)
{
    check *c = arg;
    unsigned t;
    c->rows++;
    if (r->bytes_per_s != r->queue_depth * 1000.0 || r->vcm != r->node * 3)
        c->torn++;
    if (sscanf(r->host, "host%u", &t) == 1 && t < WRITERS) {
        if (r->node <= c->last_node[t])
            c->out_of_order++;   /* each writer inserts nodes ascending */
        c->last_node[t] = r->node;
    }
    return 0;
}

static atomic_int writers_done;

static void *reader(void *arg)
{
    check *bad = arg;
    while (!atomic_load(&writers_done)) {
        check c;
        memset(&c, 0, sizeof(c));
        ld->ops->list(ld, check_cb, &c);
        bad->torn += c.torn;
        bad->out_of_order += c.out_of_order;
    }
    return NULL;
}

static void test_concurrent_puts(void **state)
{
    (void)state;
    pthread_t w[WRITERS], rd;
    check bad;
    memset(&bad, 0, sizeof(bad));
    atomic_store(&writers_done, 0);
    assert_int_equal(pthread_create(&rd, NULL, reader, &bad), 0);
    for (unsigned t = 0; t < WRITERS; t++)
        assert_int_equal(pthread_create(&w[t], NULL, writer,
                                        (void *)(uintptr_t)t), 0);
    for (unsigned t = 0; t < WRITERS; t++) {
        void *rc;
        pthread_join(w[t], &rc);
        assert_null(rc);
    }
    atomic_store(&writers_done, 1);
    pthread_join(rd, NULL);
    assert_int_equal(bad.torn, 0);
    assert_int_equal(bad.out_of_order, 0);

    check c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(ld->ops->list(ld, check_cb, &c), 0);
    assert_int_equal(c.rows, WRITERS * NODES);
    for (unsigned t = 0; t < WRITERS; t++) {
        char host[16];
        gmpd_load_rec out;
        snprintf(host, sizeof(host), "host%u", t);
        for (uint32_t node = 1; node <= NODES; node++) {
            assert_int_equal(ld->ops->get(ld, host, node, &out), 0);
            assert_int_equal(out.queue_depth, ROUNDS);
        }
    }
}

/* ---- rate meter ---- */

static void assert_near(double got, double want, double rel)
{
    double err = got - want;
    if (err < 0)
        err = -err;
    if (err > rel * want)
        fail_msg("got %.6g, want %.6g within %.3g %%", got, want, 100 * rel);
}

/* 1000 units every 10 ms: after 20 s (20 half-lives) the meter reads
 * 100 000 units/s. */
static uint64_t steady(gmpd_rate *r, uint64_t t, uint64_t until)
{
    for (; t < until; t += 10 * MS)
        gmpd_rate_add(r, 1000, t);
    return t;
}

static void test_rate_steady_and_decay(void **state)
{
    (void)state;
    gmpd_rate r = { 0 };
    uint64_t t = steady(&r, SEC, 21 * SEC) - 10 * MS;
    assert_near(gmpd_rate_get(&r, t), 100000, 0.001);

    /* no more units: halves every second, towards 0 */
    assert_near(gmpd_rate_get(&r, t + SEC), 50000, 1e-6);
    for (uint64_t dt = MS; dt <= SEC; dt += MS)   /* many small reads */
        gmpd_rate_get(&r, t + SEC + dt);
    assert_near(gmpd_rate_get(&r, t + 2 * SEC), 25000, 1e-6);
    assert_true(gmpd_rate_get(&r, t + 30 * SEC) < 0.001);
    assert_true(gmpd_rate_get(&r, t + 600 * SEC) >= 0);
}

/* The rate follows a step change with a ~1 s half-life. */
static void test_rate_step(void **state)
{
    (void)state;
    gmpd_rate r = { 0 };
    uint64_t t = steady(&r, SEC, 21 * SEC);
    double before = gmpd_rate_get(&r, t - 10 * MS);
    for (uint64_t end = t + SEC; t < end; t += 10 * MS)
        gmpd_rate_add(&r, 3000, t);               /* now 300 000/s */
    double after = gmpd_rate_get(&r, t - 10 * MS);
    assert_near(before, 100000, 0.001);
    assert_near(after, 200000, 0.02);             /* halfway after 1 s */
}

/* Irregular intervals and bursts at one instant still give the true rate,
 * never inf or NaN. */
static void test_rate_irregular(void **state)
{
    (void)state;
    gmpd_rate r = { 0 };
    uint64_t t = 5 * SEC;
    uint64_t x = 7;
    for (int i = 0; i < 4000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t dt = (x >> 40) % (20 * MS) + 1;  /* 1 ns .. 20 ms */
        t += dt;
        gmpd_rate_add(&r, dt / 1000, t);          /* 1e6 units/s */
        gmpd_rate_add(&r, 0, t);                  /* same instant */
    }
    double v = gmpd_rate_get(&r, t);
    assert_true(v == v);
    assert_near(v, 1e6, 0.02);
}

/* A zeroed meter starts at its first call; a clock stepping back does not
 * produce a negative or infinite rate. */
static void test_rate_start_and_clock_back(void **state)
{
    (void)state;
    gmpd_rate r = { 0 };
    gmpd_rate_add(&r, 1000000, 100 * SEC);
    assert_true(gmpd_rate_get(&r, 100 * SEC) == 0);
    double v = gmpd_rate_get(&r, 101 * SEC);
    assert_near(v, 500000, 1e-6);                 /* 1e6/s, weight 1/2 */
    gmpd_rate_add(&r, 1000, 50 * SEC);            /* clock went back */
    v = gmpd_rate_get(&r, 50 * SEC);
    assert_true(v >= 0 && v <= 500000);
    assert_true(gmpd_rate_get(&r, 102 * SEC) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_overwrite, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_insertion_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_callback_may_put, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_puts, setup,
                                        teardown),
        cmocka_unit_test(test_rate_steady_and_decay),
        cmocka_unit_test(test_rate_step),
        cmocka_unit_test(test_rate_irregular),
        cmocka_unit_test(test_rate_start_and_clock_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
