/* R4 priority queues: FIFO levels, the sweep, threshold episodes, the
 * accept filter and accounting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "queue.h"

#define MS 1000000ull
#define POOL 512

/* Jobs live in one pool per test; the queue only links them. */
typedef struct fixture {
    gmpd_pqueue *q;
    gmpd_job job[POOL];
    size_t used;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->q = gmpd_pq_new();
    assert_non_null(f->q);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    gmpd_pq_free(f->q);
    free(f);
    return 0;
}

static gmpd_job *push(fixture *f, unsigned prio, uint64_t id, uint32_t len,
                      uint32_t node, void *owner, uint64_t now)
{
    assert_true(f->used < POOL);
    gmpd_job *j = &f->job[f->used++];
    memset(j, 0, sizeof(*j));
    j->priority = (uint8_t)prio;
    j->id = id;
    j->len = len;
    j->node = node;
    j->owner = owner;
    gmpd_pq_push(f->q, j, now);
    return j;
}

/* Fills every level with n jobs, pushed round by round (not level by level)
 * so that push order cannot explain pop order.  Task id = 100*level + k. */
static void fill(fixture *f, unsigned n)
{
    for (unsigned k = 0; k < n; k++)
        for (unsigned l = GMPD_PRIO_LEVELS; l-- > 0;)
            push(f, l, 100 * l + k, 10, 0, NULL, 0);
}

static unsigned pop_level(fixture *f, uint64_t now)
{
    gmpd_job *j = gmpd_pq_pop(f->q, now, NULL, NULL);
    assert_non_null(j);
    assert_null(j->next);
    return j->priority;
}

static void test_empty(void **state)
{
    fixture *f = *state;
    assert_null(gmpd_pq_pop(f->q, 0, NULL, NULL));
    assert_int_equal(gmpd_pq_depth(f->q, -1), 0);
    assert_int_equal(gmpd_pq_bytes(f->q), 0);
    for (unsigned l = 0; l < GMPD_PRIO_LEVELS; l++) {
        gmpd_threshold t = gmpd_pq_get_threshold(f->q, l);
        assert_int_equal(t.max_count, 0);   /* default: no thresholds */
        assert_int_equal(t.max_wait_ns, 0);
        assert_false(gmpd_pq_over(f->q, l, 0));
    }
}

static void test_fifo_within_level(void **state)
{
    fixture *f = *state;
    gmpd_job *in[6];
    for (unsigned i = 0; i < 6; i++)
        in[i] = push(f, 3, i + 1, 100 + i, 0, NULL, i * MS);
    assert_int_equal(in[2]->enq_ns, 2 * MS);
    for (unsigned i = 0; i < 6; i++)
        assert_ptr_equal(gmpd_pq_pop(f->q, 10 * MS, NULL, NULL), in[i]);
    assert_null(gmpd_pq_pop(f->q, 10 * MS, NULL, NULL));
    /* emptied level takes new jobs again (tail was reset) */
    gmpd_job *a = push(f, 3, 9, 1, 0, NULL, 0);
    gmpd_job *b = push(f, 3, 9, 1, 0, NULL, 0);
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, NULL, NULL), a);
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, NULL, NULL), b);
}

static void test_sweep_order(void **state)
{
    fixture *f = *state;
    fill(f, 3);
    for (unsigned round = 0; round < 3; round++)
        for (unsigned l = 0; l < GMPD_PRIO_LEVELS; l++) {
            gmpd_job *j = gmpd_pq_pop(f->q, 0, NULL, NULL);
            assert_non_null(j);
            assert_int_equal(j->priority, l);
            assert_int_equal(j->id, 100 * l + round);   /* FIFO too */
        }
    assert_null(gmpd_pq_pop(f->q, 0, NULL, NULL));
}

static void test_sweep_skips_empty_levels(void **state)
{
    fixture *f = *state;
    for (unsigned k = 0; k < 3; k++) {
        push(f, 2, k, 1, 0, NULL, 0);
        push(f, 5, k, 1, 0, NULL, 0);
    }
    assert_int_equal(pop_level(f, 0), 2);
    assert_int_equal(pop_level(f, 0), 5);
    /* the cursor is at 6 now: the sweep goes on downwards, wraps, and
     * only then reaches the level-1 job pushed at the same time */
    push(f, 6, 7, 1, 0, NULL, 0);
    push(f, 1, 7, 1, 0, NULL, 0);
    assert_int_equal(pop_level(f, 0), 6);
    assert_int_equal(pop_level(f, 0), 1);
    assert_int_equal(pop_level(f, 0), 2);
    assert_int_equal(pop_level(f, 0), 5);
}

/* Plain strict priority would serve all of level 0 first. */
static void test_not_strict_priority(void **state)
{
    fixture *f = *state;
    for (unsigned k = 0; k < 10; k++)
        push(f, 0, k, 1, 0, NULL, 0);
    push(f, 7, 99, 1, 0, NULL, 0);
    assert_int_equal(pop_level(f, 0), 0);
    assert_int_equal(pop_level(f, 0), 7);
    assert_int_equal(pop_level(f, 0), 0);
}

/* Level 5 goes over its count threshold mid-sweep: it is served alone until
 * its count is back at the threshold, then the sweep resumes at the level
 * it was about to serve (2), not at the top. */
static void test_over_count_exclusive_then_resume(void **state)
{
    fixture *f = *state;
    fill(f, 4);
    assert_int_equal(pop_level(f, 0), 0);
    assert_int_equal(pop_level(f, 0), 1);

    for (unsigned k = 0; k < 4; k++)
        push(f, 5, 500 + k, 10, 0, NULL, 0);       /* level 5: 8 jobs */
    gmpd_threshold t = { .max_count = 5, .max_wait_ns = 0 };
    gmpd_pq_set_threshold(f->q, 5, t);
    assert_true(gmpd_pq_over(f->q, 5, 0));

    for (unsigned k = 0; k < 3; k++)
        assert_int_equal(pop_level(f, 0), 5);
    assert_int_equal(gmpd_pq_depth(f->q, 5), 5);
    assert_false(gmpd_pq_over(f->q, 5, 0));        /* at, not over */

    static const unsigned resume[] = { 2, 3, 4, 5, 6, 7, 0, 1, 2 };
    for (unsigned i = 0; i < sizeof(resume) / sizeof(resume[0]); i++)
        assert_int_equal(pop_level(f, 0), resume[i]);
}

/* Two levels over: the higher priority one is served first, to its
 * threshold, then the other, then the sweep. */
static void test_two_over_higher_first(void **state)
{
    fixture *f = *state;
    fill(f, 1);
    for (unsigned k = 0; k < 3; k++) {
        push(f, 6, 600 + k, 1, 0, NULL, 0);         /* level 6: 4 */
        push(f, 2, 200 + k, 1, 0, NULL, 0);         /* level 2: 4 */
    }
    gmpd_threshold t = { .max_count = 1, .max_wait_ns = 0 };
    gmpd_pq_set_threshold(f->q, 6, t);
    gmpd_pq_set_threshold(f->q, 2, t);

    static const unsigned want[] = { 2, 2, 2, 6, 6, 6, 0, 1, 2, 3, 4, 5, 6,
                                     7 };
    for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(pop_level(f, 0), want[i]);
    assert_int_equal(gmpd_pq_depth(f->q, -1), 0);
}

/* Wait threshold on the injected clock: once level 7's oldest job has
 * waited over 100 ms it is served ahead of the sweep, and the sweep then
 * resumes at its cursor. */
static void test_wait_threshold(void **state)
{
    fixture *f = *state;
    gmpd_threshold t = { .max_count = 0, .max_wait_ns = 100 * MS };
    gmpd_pq_set_threshold(f->q, 7, t);

    push(f, 7, 70, 1, 0, NULL, 0);
    for (unsigned k = 0; k < 5; k++) {
        push(f, 0, k, 1, 0, NULL, 0);
        push(f, 1, 10 + k, 1, 0, NULL, 0);
    }

    assert_false(gmpd_pq_over(f->q, 7, 100 * MS));  /* exactly at limit */
    assert_true(gmpd_pq_over(f->q, 7, 100 * MS + 1));
    assert_int_equal(pop_level(f, 50 * MS), 0);     /* cursor -> 1 */
    gmpd_job *j = gmpd_pq_pop(f->q, 101 * MS, NULL, NULL);
    assert_int_equal(j->id, 70);                    /* ahead of level 1 */
    assert_int_equal(pop_level(f, 102 * MS), 1);    /* sweep resumes */
    assert_int_equal(pop_level(f, 103 * MS), 0);    /* 2..7 empty: wrap */

    push(f, 7, 71, 1, 0, NULL, 150 * MS);
    assert_int_equal(pop_level(f, 200 * MS), 1);    /* cursor -> 2 */
    assert_false(gmpd_pq_over(f->q, 7, 250 * MS));
    assert_true(gmpd_pq_over(f->q, 7, 251 * MS));
    j = gmpd_pq_pop(f->q, 251 * MS, NULL, NULL);
    assert_int_equal(j->id, 71);
    assert_false(gmpd_pq_over(f->q, 7, 251 * MS));  /* level now empty */
    assert_int_equal(pop_level(f, 252 * MS), 0);

    /* a clock stepping back reads as no wait, never as a huge one */
    push(f, 7, 72, 1, 0, NULL, 300 * MS);
    assert_false(gmpd_pq_over(f->q, 7, 10 * MS));
}

static void test_threshold_change_at_run_time(void **state)
{
    fixture *f = *state;
    fill(f, 4);
    assert_int_equal(pop_level(f, 0), 0);

    gmpd_threshold t = { .max_count = 2, .max_wait_ns = 0 };
    gmpd_pq_set_threshold(f->q, 4, t);
    gmpd_threshold got = gmpd_pq_get_threshold(f->q, 4);
    assert_int_equal(got.max_count, 2);
    assert_int_equal(pop_level(f, 0), 4);           /* 4 -> 3, still over */

    t.max_count = 0;                                /* lifted again */
    gmpd_pq_set_threshold(f->q, 4, t);
    assert_int_equal(pop_level(f, 0), 1);           /* sweep resumes */

    t.max_count = 1;
    gmpd_pq_set_threshold(f->q, 6, t);
    assert_int_equal(pop_level(f, 0), 6);
    assert_int_equal(pop_level(f, 0), 6);
    assert_int_equal(pop_level(f, 0), 6);
    assert_int_equal(pop_level(f, 0), 2);

    /* out-of-range levels are ignored, not written */
    gmpd_pq_set_threshold(f->q, GMPD_PRIO_LEVELS, t);
    assert_int_equal(gmpd_pq_get_threshold(f->q, GMPD_PRIO_LEVELS).max_count,
                     0);
    assert_false(gmpd_pq_over(f->q, GMPD_PRIO_LEVELS, 0));
}

/* accept: refuses jobs bound to nodes in a busy set */
typedef struct busy {
    uint32_t node[4];
    unsigned calls;
} busy;

static bool not_busy(const gmpd_job *j, void *arg)
{
    busy *b = arg;
    b->calls++;
    for (unsigned i = 0; i < 4; i++)
        if (b->node[i] && b->node[i] == j->node)
            return false;
    return true;
}

static void test_accept_skips_busy_keeps_task_order(void **state)
{
    fixture *f = *state;
    /* task 1 runs on node 1; its third job could run anywhere, but must
     * still wait behind the first two. */
    gmpd_job *a1 = push(f, 0, 1, 10, 1, NULL, 0);
    gmpd_job *b1 = push(f, 0, 2, 10, 2, NULL, 0);
    gmpd_job *a2 = push(f, 0, 1, 10, 1, NULL, 0);
    gmpd_job *a3 = push(f, 0, 1, 10, 0, NULL, 0);
    gmpd_job *b2 = push(f, 0, 2, 10, 2, NULL, 0);
    gmpd_job *c1 = push(f, 0, 3, 10, 3, NULL, 0);

    busy b = { .node = { 1 } };
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, not_busy, &b), b1);
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, not_busy, &b), b2);
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, not_busy, &b), c1);   /* tail */
    assert_null(gmpd_pq_pop(f->q, 0, not_busy, &b));
    assert_int_equal(gmpd_pq_depth(f->q, 0), 3);
    assert_int_equal(gmpd_pq_bytes(f->q), 30);

    /* the tail was unlinked from the middle: a new push lands last */
    gmpd_job *d1 = push(f, 0, 4, 10, 0, NULL, 0);
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, not_busy, &b), d1);

    b.node[0] = 0;                                    /* node 1 free */
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, not_busy, &b), a1);
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, not_busy, &b), a2);
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, not_busy, &b), a3);
    assert_null(gmpd_pq_pop(f->q, 0, not_busy, &b));
    assert_int_equal(gmpd_pq_bytes(f->q), 0);
}

/* accept is asked once per refused task, not once per job */
static void test_accept_called_once_per_task(void **state)
{
    fixture *f = *state;
    for (unsigned k = 0; k < 10; k++)
        push(f, 0, 1, 1, 1, NULL, 0);
    gmpd_job *other = push(f, 0, 2, 1, 2, NULL, 0);
    busy b = { .node = { 1 } };
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, not_busy, &b), other);
    assert_int_equal(b.calls, 2);
}

/* Over-threshold level whose jobs all wait for a busy node: other levels
 * are served meanwhile (work conserving), and it is served once free. */
static void test_over_level_blocked_falls_through(void **state)
{
    fixture *f = *state;
    for (unsigned k = 0; k < 4; k++)
        push(f, 1, 10, 1, 1, NULL, 0);
    push(f, 3, 30, 1, 0, NULL, 0);
    gmpd_threshold t = { .max_count = 2, .max_wait_ns = 0 };
    gmpd_pq_set_threshold(f->q, 1, t);

    busy b = { .node = { 1 } };
    gmpd_job *j = gmpd_pq_pop(f->q, 0, not_busy, &b);
    assert_int_equal(j->priority, 3);
    b.node[0] = 0;
    assert_int_equal(gmpd_pq_pop(f->q, 0, not_busy, &b)->priority, 1);
}

/* Scanning is bounded: more distinct refused tasks than the skip set holds
 * (16) or more jobs than the scan limit (64) end the scan of a level. */
static void test_scan_bounds(void **state)
{
    fixture *f = *state;
    for (unsigned k = 0; k < 17; k++)
        push(f, 0, 1000 + k, 1, 1, NULL, 0);
    push(f, 0, 5, 1, 0, NULL, 0);
    busy b = { .node = { 1 } };
    assert_null(gmpd_pq_pop(f->q, 0, not_busy, &b));
    gmpd_job *low = push(f, 4, 6, 1, 0, NULL, 0);
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, not_busy, &b), low);

    for (unsigned k = 0; k < 70; k++)
        push(f, 2, 7, 1, 1, NULL, 0);
    push(f, 2, 8, 1, 0, NULL, 0);
    b.calls = 0;
    assert_null(gmpd_pq_pop(f->q, 0, not_busy, &b));
    assert_true(b.calls <= 2 * 16);
}

static void count_drop(gmpd_job *j, void *arg)
{
    unsigned *n = arg;
    (*n)++;
    j->len = 0xdead;   /* the caller owns the job again */
}

static void test_remove_owner(void **state)
{
    fixture *f = *state;
    int x, y;
    gmpd_job *keep[6];
    unsigned nk = 0;
    for (unsigned k = 0; k < 6; k++) {
        push(f, k % 3, 1, 100, 0, &x, 0);
        keep[nk++] = push(f, k % 3, 2, 1, 0, &y, 0);
    }
    push(f, 0, 1, 100, 0, &x, 0);                  /* x holds the tail */
    assert_int_equal(gmpd_pq_bytes(f->q), 706);

    unsigned dropped = 0;
    assert_int_equal(gmpd_pq_remove_owner(f->q, &x, count_drop, &dropped), 7);
    assert_int_equal(dropped, 7);
    assert_int_equal(gmpd_pq_depth(f->q, -1), 6);
    assert_int_equal(gmpd_pq_depth(f->q, 0), 2);
    assert_int_equal(gmpd_pq_bytes(f->q), 6);
    assert_int_equal(gmpd_pq_remove_owner(f->q, &x, NULL, NULL), 0);

    gmpd_job *late = push(f, 0, 3, 1, 0, &y, 0);   /* tail fixed */
    /* level 0 holds keep[0], keep[3], late; 1: keep[1], keep[4]; ... */
    static const unsigned order[] = { 0, 1, 2, 3, 4, 5 };
    for (unsigned i = 0; i < 6; i++)
        assert_ptr_equal(gmpd_pq_pop(f->q, 0, NULL, NULL), keep[order[i]]);
    assert_ptr_equal(gmpd_pq_pop(f->q, 0, NULL, NULL), late);
    assert_int_equal(gmpd_pq_depth(f->q, -1), 0);
}

static void test_depth_bytes(void **state)
{
    fixture *f = *state;
    push(f, 0, 1, 1000, 0, NULL, 0);
    push(f, 0, 1, 24, 0, NULL, 0);
    push(f, 7, 2, 5, 0, NULL, 0);
    push(f, 200, 3, 7, 0, NULL, 0);   /* out of range: lowest level */
    assert_int_equal(gmpd_pq_depth(f->q, -1), 4);
    assert_int_equal(gmpd_pq_depth(f->q, 0), 2);
    assert_int_equal(gmpd_pq_depth(f->q, 7), 2);
    assert_int_equal(gmpd_pq_depth(f->q, 3), 0);
    assert_int_equal(gmpd_pq_depth(f->q, GMPD_PRIO_LEVELS), 0);
    assert_int_equal(gmpd_pq_bytes(f->q), 1036);
    gmpd_pq_pop(f->q, 0, NULL, NULL);
    assert_int_equal(gmpd_pq_bytes(f->q), 36);
    gmpd_pq_pop(f->q, 0, NULL, NULL);
    gmpd_pq_pop(f->q, 0, NULL, NULL);
    gmpd_pq_pop(f->q, 0, NULL, NULL);
    assert_int_equal(gmpd_pq_bytes(f->q), 0);
    assert_int_equal(gmpd_pq_depth(f->q, -1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_within_level, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sweep_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_skips_empty_levels, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_not_strict_priority, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_over_count_exclusive_then_resume,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_over_higher_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_change_at_run_time,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_accept_skips_busy_keeps_task_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_called_once_per_task,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_level_blocked_falls_through,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
