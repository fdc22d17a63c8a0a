/* R5/R6 node set: speed-proportional placement, VCM ownership while
 * serving, removal, accounting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>   /* NAN, INFINITY only: no libm needed */

#include "node.h"

#define TASK_LEN 65536u
#define NTASKS 6000

static gmpd_nodeset *ns;

static int setup(void **state)
{
    (void)state;
    ns = gmpd_nodeset_new();
    return ns ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gmpd_nodeset_free(ns);
    ns = NULL;
    return 0;
}

/* Adds a node with the same speed for hash and cipher, none for random. */
static void add(uint32_t id, double speed)
{
    const double s[GMPD_SVC_COUNT] = { speed, speed, 0 };
    assert_int_equal(gmpd_nodeset_add(ns, id, s), 0);
}

static uint32_t place(uint32_t vcm, uint64_t len)
{
    gmpd_node *nd = gmpd_nodeset_place(ns, vcm, GMPD_SVC_HASH, len);
    assert_non_null(nd);
    return nd->id;
}

/* count[id] / NTASKS within tol (relative) of speed[id] / sum */
static void assert_shares(const unsigned count[5], const double speed[5],
                          double tol)
{
    double sum = 0;
    for (int id = 1; id <= 4; id++)
        sum += speed[id];
    for (int id = 1; id <= 4; id++) {
        double want = NTASKS * speed[id] / sum;
        double err = count[id] / want - 1;
        if (err < 0)
            err = -err;
        if (err > tol)
            fail_msg("node %d: %u tasks, want %.0f (%.1f %% off)", id,
                     count[id], want, 100 * err);
    }
}

static const double speeds[5] = { 0, 1, 1, 2, 2 };

static void add_1122(void)
{
    for (uint32_t id = 1; id <= 4; id++)
        add(id, speeds[id]);
}

/* Tasks that never finish pile up in proportion to speed. */
static void test_share_no_completion(void **state)
{
    (void)state;
    add_1122();
    unsigned count[5] = { 0 };
    for (int t = 0; t < NTASKS; t++)
        count[place(0, TASK_LEN)]++;
    assert_shares(count, speeds, 0.03);
    for (uint32_t id = 1; id <= 4; id++) {
        gmpd_node *nd = gmpd_nodeset_get(ns, id);
        assert_int_equal(nd->tasks, count[id]);
        assert_int_equal(nd->queued_bytes, (uint64_t)count[id] * TASK_LEN);
    }
}

static uint64_t lcg;

static uint32_t rnd(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(lcg >> 33);
}

/* Which node finishes a job next: a shuffled deck holding each node id
 * `speed` times, so over any stretch a node completes work in proportion
 * to its speed, in a pseudo-random order. */
static uint32_t next_finisher(void)
{
    static uint32_t deck[6];
    static unsigned left;
    if (!left) {
        uint32_t d[6] = { 1, 2, 3, 3, 4, 4 };
        for (unsigned i = 5; i > 0; i--) {
            unsigned j = rnd() % (i + 1);
            uint32_t x = d[i];
            d[i] = d[j];
            d[j] = x;
        }
        for (unsigned i = 0; i < 6; i++)
            deck[i] = d[i];
        left = 6;
    }
    return deck[--left];
}

/* Nodes finishing at their speeds while tasks keep arriving: the share of
 * new tasks still follows speed, because a node that got ahead of its
 * share has more queued and loses the next ties. */
static void test_share_with_completions(void **state)
{
    (void)state;
    add_1122();
    lcg = 42;
    unsigned count[5] = { 0 };
    uint64_t done = 0;
    for (int t = 0; t < NTASKS; t++) {
        count[place(0, TASK_LEN)]++;
        uint32_t id = next_finisher();
        if (gmpd_nodeset_get(ns, id)->queued_bytes) {
            gmpd_nodeset_done(ns, id, TASK_LEN, 1);
            gmpd_nodeset_task_end(ns, id);
            done++;
        }
    }
    assert_shares(count, speeds, 0.03);

    uint64_t queued = 0, done_bytes = 0;
    for (uint32_t id = 1; id <= 4; id++) {
        queued += gmpd_nodeset_get(ns, id)->queued_bytes;
        done_bytes += gmpd_nodeset_get(ns, id)->done_bytes;
    }
    assert_int_equal(done_bytes, done * TASK_LEN);
    assert_int_equal(queued + done_bytes, (uint64_t)NTASKS * TASK_LEN);
}

/* Equal finish times go to the lowest id, whatever the insertion order. */
static void test_ties_lowest_id(void **state)
{
    (void)state;
    add(9, 1);
    add(3, 1);
    add(5, 1);
    assert_int_equal(place(0, 100), 3);
    assert_int_equal(place(0, 100), 5);
    assert_int_equal(place(0, 100), 9);
    assert_int_equal(place(0, 100), 3);
}

/* Unknown length counts as one 16 KiB shard. */
static void test_len_zero(void **state)
{
    (void)state;
    add(1, 1);
    add(2, 1);
    assert_int_equal(place(0, 0), 1);
    assert_int_equal(gmpd_nodeset_get(ns, 1)->queued_bytes, 16384);
    assert_int_equal(place(0, 16383), 2);   /* 16383 < 16384 + 16383 */
    assert_int_equal(place(0, 1), 2);       /* 16384 < 16385 */
    assert_int_equal(place(0, 0), 1);
}

static void test_vcm_uses_own_nodes(void **state)
{
    (void)state;
    add_1122();
    assert_int_equal(gmpd_nodeset_assign(ns, 3, 7), 0);
    assert_int_equal(gmpd_nodeset_assign(ns, 4, 7), 0);
    assert_int_equal(gmpd_nodeset_assign(ns, 99, 7), -1);
    for (int t = 0; t < 100; t++) {
        uint32_t own = place(7, TASK_LEN);
        assert_true(own == 3 || own == 4);
        uint32_t other = place(8, TASK_LEN);   /* owns none: free pool */
        assert_true(other == 1 || other == 2);
        uint32_t pool = place(0, TASK_LEN);
        assert_true(pool == 1 || pool == 2);
    }
    assert_int_equal(gmpd_nodeset_get(ns, 3)->tasks, 50);
    assert_int_equal(gmpd_nodeset_get(ns, 4)->tasks, 50);
}

/* A node taken from a VCM while it serves: its bound work is still
 * accounted, new tasks go elsewhere at once. */
static void test_unassign_while_serving(void **state)
{
    (void)state;
    add_1122();
    gmpd_nodeset_assign(ns, 3, 7);
    gmpd_nodeset_assign(ns, 4, 7);
    for (int t = 0; t < 10; t++)
        place(7, TASK_LEN);
    gmpd_node *n4 = gmpd_nodeset_get(ns, 4);
    uint64_t q4 = n4->queued_bytes;
    assert_int_equal(q4, 5 * TASK_LEN);

    assert_int_equal(gmpd_nodeset_assign(ns, 4, 0), 0);   /* back to pool */
    for (int t = 0; t < 10; t++)
        assert_int_equal(place(7, TASK_LEN), 3);
    assert_int_equal(n4->queued_bytes, q4);
    assert_int_equal(n4->tasks, 5);
    gmpd_nodeset_done(ns, 4, TASK_LEN, 1);
    gmpd_nodeset_task_end(ns, 4);
    assert_int_equal(n4->queued_bytes, q4 - TASK_LEN);
    assert_int_equal(n4->done_bytes, TASK_LEN);
    assert_int_equal(n4->tasks, 4);

    /* the last node leaves: VCM 7 now uses the free pool, node 3 too */
    gmpd_nodeset_assign(ns, 3, 0);
    uint32_t seen = 0;
    for (int t = 0; t < 40; t++)
        seen |= 1u << place(7, TASK_LEN);
    assert_int_equal(seen, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4));
    assert_true(gmpd_nodeset_capacity(ns, 7, GMPD_SVC_HASH) == 6);
}

static void test_removed_gets_nothing(void **state)
{
    (void)state;
    add_1122();
    place(0, TASK_LEN);
    place(0, TASK_LEN);   /* node 4 */
    assert_int_equal(gmpd_nodeset_remove(ns, 4), 0);
    assert_int_equal(gmpd_nodeset_remove(ns, 77), -1);
    for (int t = 0; t < 300; t++)
        assert_int_not_equal(place(0, TASK_LEN), 4);

    gmpd_node *n4 = gmpd_nodeset_get(ns, 4);
    assert_non_null(n4);                          /* descriptor kept */
    assert_int_equal(n4->status[GMPD_SVC_HASH], GMPD_NODE_DOWN);
    assert_int_equal(n4->status[GMPD_SVC_CIPHER], GMPD_NODE_DOWN);
    assert_int_equal(n4->queued_bytes, TASK_LEN);
    gmpd_nodeset_done(ns, 4, TASK_LEN, 1);        /* in-flight work ends */
    assert_int_equal(n4->queued_bytes, 0);
    assert_int_equal(n4->done_jobs, 1);
    assert_true(gmpd_nodeset_capacity(ns, 0, GMPD_SVC_HASH) == 4);

    for (uint32_t id = 1; id <= 3; id++)
        gmpd_nodeset_remove(ns, id);
    assert_null(gmpd_nodeset_place(ns, 0, GMPD_SVC_HASH, TASK_LEN));
    assert_true(gmpd_nodeset_capacity(ns, 0, GMPD_SVC_HASH) == 0);

    /* back in service: placement resumes on it */
    assert_int_equal(gmpd_nodeset_set_status(ns, 4, GMPD_NODE_UP), 0);
    assert_int_equal(gmpd_nodeset_set_status(ns, 77, GMPD_NODE_UP), -1);
    assert_int_equal(place(0, TASK_LEN), 4);
    assert_true(gmpd_nodeset_capacity(ns, 0, GMPD_SVC_HASH) == 2);
}

/* A VCM whose own nodes are all down is served from the free pool. */
static void test_own_nodes_down_falls_back(void **state)
{
    (void)state;
    add(1, 1);
    add(2, 1);
    gmpd_nodeset_assign(ns, 2, 7);
    assert_int_equal(place(7, 1), 2);
    gmpd_nodeset_get(ns, 2)->status[GMPD_SVC_HASH] = GMPD_NODE_DOWN;
    assert_int_equal(place(7, 1), 1);
    /* the cipher service of node 2 is still up and still its own */
    gmpd_node *c = gmpd_nodeset_place(ns, 7, GMPD_SVC_CIPHER, 1);
    assert_int_equal(c->id, 2);
}

static void test_add_rejects(void **state)
{
    (void)state;
    const double ok[GMPD_SVC_COUNT] = { 1, 1, 1 };
    const double neg[GMPD_SVC_COUNT] = { 1, -1, 1 };
    const double nan_[GMPD_SVC_COUNT] = { NAN, 1, 1 };
    const double inf[GMPD_SVC_COUNT] = { 1, 1, INFINITY };
    assert_int_equal(gmpd_nodeset_add(ns, 0, ok), -1);
    assert_int_equal(gmpd_nodeset_add(ns, 1, ok), 0);
    assert_int_equal(gmpd_nodeset_add(ns, 1, ok), -1);
    assert_int_equal(gmpd_nodeset_add(ns, 2, neg), -1);
    assert_int_equal(gmpd_nodeset_add(ns, 2, nan_), -1);
    assert_int_equal(gmpd_nodeset_add(ns, 2, inf), -1);
    assert_int_equal(gmpd_nodeset_add(ns, 2, NULL), -1);
    gmpd_nodeset_remove(ns, 1);
    assert_int_equal(gmpd_nodeset_add(ns, 1, ok), -1);   /* still known */
    assert_int_equal(gmpd_nodeset_count(ns), 1);

    for (uint32_t id = 2; id <= GMPD_MAX_NODES; id++)
        assert_int_equal(gmpd_nodeset_add(ns, id, ok), 0);
    assert_int_equal(gmpd_nodeset_add(ns, 100000, ok), -1);  /* full */
    assert_int_equal(gmpd_nodeset_count(ns), GMPD_MAX_NODES);
    assert_int_equal(gmpd_nodeset_at(ns, 0)->id, 1);
    assert_int_equal(gmpd_nodeset_at(ns, GMPD_MAX_NODES - 1)->id,
                     GMPD_MAX_NODES);
    assert_null(gmpd_nodeset_at(ns, GMPD_MAX_NODES));
    assert_null(gmpd_nodeset_get(ns, 0));
}

static void test_capacity(void **state)
{
    (void)state;
    add_1122();
    const double cipher_only[GMPD_SVC_COUNT] = { 0, 8, 0 };
    assert_int_equal(gmpd_nodeset_add(ns, 5, cipher_only), 0);
    assert_true(gmpd_nodeset_capacity(ns, 0, GMPD_SVC_HASH) == 6);
    assert_true(gmpd_nodeset_capacity(ns, 0, GMPD_SVC_CIPHER) == 14);
    assert_true(gmpd_nodeset_capacity(ns, 0, GMPD_SVC_RANDOM) == 0);
    assert_null(gmpd_nodeset_place(ns, 0, GMPD_SVC_RANDOM, 1));
    assert_null(gmpd_nodeset_place(ns, 0, GMPD_SVC_COUNT, 1));
    assert_true(gmpd_nodeset_capacity(ns, 0, GMPD_SVC_COUNT) == 0);

    gmpd_nodeset_assign(ns, 2, 7);
    gmpd_nodeset_assign(ns, 4, 7);
    assert_true(gmpd_nodeset_capacity(ns, 7, GMPD_SVC_HASH) == 3);
    assert_true(gmpd_nodeset_capacity(ns, 0, GMPD_SVC_HASH) == 3);
    /* a VCM without nodes is served by (and sized as) the free pool */
    assert_true(gmpd_nodeset_capacity(ns, 8, GMPD_SVC_CIPHER) == 11);
    /* hash for VCM 5 never lands on the cipher-only node */
    for (int t = 0; t < 20; t++)
        assert_int_not_equal(place(5, 1), 5);
}

static void test_done_saturates(void **state)
{
    (void)state;
    add(1, 1);
    place(0, 100);
    gmpd_node *n = gmpd_nodeset_get(ns, 1);
    n->queued_jobs = 2;
    gmpd_nodeset_done(ns, 1, 500, 5);
    assert_int_equal(n->queued_bytes, 0);
    assert_int_equal(n->queued_jobs, 0);
    assert_int_equal(n->done_bytes, 500);
    assert_int_equal(n->done_jobs, 5);
    gmpd_nodeset_task_end(ns, 1);
    gmpd_nodeset_task_end(ns, 1);
    assert_int_equal(n->tasks, 0);
    gmpd_nodeset_done(ns, 42, 1, 1);    /* unknown: ignored */
    gmpd_nodeset_task_end(ns, 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_share_no_completion, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_share_with_completions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ties_lowest_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_len_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vcm_uses_own_nodes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unassign_while_serving, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_removed_gets_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_own_nodes_down_falls_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_saturates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
