/* TTSA core (R8-R13): EDF order of the rolling window, deadline
 * feasibility, placement on the lowest-throughput server, the three
 * ScaleUp steps, all-or-nothing consolidation and the band. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "ttsa.h"

#define S_ 1000000000ull   /* one second in ns */

/* task_start callback log */
static uint64_t started[64];
static uint32_t started_vcm[64];
static int n_started;

static void on_start(void *arg, uint64_t task, uint32_t vcm, uint64_t st,
                     uint64_t fin)
{
    (void)arg, (void)st, (void)fin;
    if (n_started < 64) {
        started[n_started] = task;
        started_vcm[n_started] = vcm;
        n_started++;
    }
}

/* vcm_start refuses while this is set (a driver out of nodes) */
static bool refuse_start;
static int n_vcm_start;

static int on_vcm_start(void *arg, uint32_t vcm, uint32_t host,
                        const gmpd_ttsa_res *type)
{
    (void)arg, (void)vcm, (void)host, (void)type;
    n_vcm_start++;
    return refuse_start ? -1 : 0;
}

/* host_power refuses while this is set */
static bool refuse_power;

static int on_host_power(void *arg, uint32_t host, bool on)
{
    (void)arg, (void)host, (void)on;
    return refuse_power ? -1 : 0;
}

static const gmpd_ttsa_ops ops = {.task_start = on_start,
                                  .vcm_start = on_vcm_start,
                                  .host_power = on_host_power};

static gmpd_ttsa *mk(gmpd_ttsa_variant v, void (*tweak)(gmpd_ttsa_params *))
{
    gmpd_ttsa_params p;
    gmpd_ttsa_defaults(&p);
    p.variant = v;
    p.period_ns = S_;   /* the tests tick in seconds */
    if (tweak)
        tweak(&p);
    n_started = n_vcm_start = 0;
    refuse_start = refuse_power = false;
    gmpd_ttsa *s = gmpd_ttsa_new(&p, &ops, NULL);
    assert_non_null(s);
    return s;
}

static uint32_t host(gmpd_ttsa *s, double mips, double bw, bool on)
{
    gmpd_ttsa_res r = {mips, 65536, bw};
    int id = gmpd_ttsa_add_host(s, &r, on, 0);
    assert_true(id > 0);
    return (uint32_t)id;
}

static uint32_t vcm(gmpd_ttsa *s, uint32_t h, unsigned type)
{
    int id = gmpd_ttsa_add_vcm(s, h, type, 0);
    assert_true(id > 0);
    return (uint32_t)id;
}

static uint32_t vcm_host(gmpd_ttsa *s, uint32_t id)
{
    gmpd_ttsa_vcm_info v[GMPD_TTSA_MAX_VCMS];
    size_t n = gmpd_ttsa_vcms(s, v, GMPD_TTSA_MAX_VCMS);
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id)
            return v[i].host;
    return 0;
}

static gmpd_ttsa_stats stats(gmpd_ttsa *s, uint64_t now)
{
    gmpd_ttsa_stats st;
    gmpd_ttsa_get_stats(s, now, &st);
    return st;
}

/* R9: waiting tasks sit in the window in earliest-deadline order and start
 * in that order; without the window (NRTTSA) they keep arrival order. */
static void test_edf_order(void **state)
{
    (void)state;
    for (int nr = 0; nr < 2; nr++) {
        gmpd_ttsa *s = mk(nr ? GMPD_NRTTSA : GMPD_TTSA, NULL);
        vcm(s, host(s, 10000, 1000, true), 0);
        assert_int_equal(gmpd_ttsa_submit(s, 1, 10000, 100 * S_, 0), 0);
        assert_int_equal(gmpd_ttsa_submit(s, 2, 1000, 90 * S_, S_), 0);
        assert_int_equal(gmpd_ttsa_submit(s, 3, 1000, 30 * S_, S_), 0);
        assert_int_equal(gmpd_ttsa_submit(s, 4, 1000, 60 * S_, S_), 0);
        gmpd_ttsa_task_info w[8];
        assert_int_equal(gmpd_ttsa_window(s, w, 8), 3);
        if (!nr) {
            assert_int_equal(w[0].id, 3);
            assert_int_equal(w[1].id, 4);
            assert_int_equal(w[2].id, 2);
        }
        assert_int_equal(stats(s, S_).vcms, 1);   /* all feasible */
        uint64_t t = 10 * S_;
        for (int k = 0; k < 4; k++, t += S_)
            assert_int_equal(gmpd_ttsa_finish(s, started[k], t), 0);
        const uint64_t want[2][4] = {{1, 3, 4, 2}, {1, 2, 3, 4}};
        for (int k = 0; k < 4; k++)
            assert_int_equal(started[k], want[nr][k]);
        gmpd_ttsa_stats st = stats(s, t);
        assert_int_equal(st.finished, 4);
        assert_int_equal(st.missed, 0);
        assert_int_equal(gmpd_ttsa_finish(s, 99, t), -1);
        gmpd_ttsa_free(s);
    }
}

/* R8/eq. 1-3: a task no VCM can finish by its deadline makes a new VCM
 * (ScaleUp step 1 on the active server); a feasible one does not. */
static void test_deadline_feasibility(void **state)
{
    (void)state;
    gmpd_ttsa *s = mk(GMPD_TTSA, NULL);
    vcm(s, host(s, 10000, 1000, true), 0);
    gmpd_ttsa_submit(s, 1, 10000, 100 * S_, 0);         /* busy to 10 s */
    gmpd_ttsa_submit(s, 2, 1000, 20 * S_, 0);           /* 11 s <= 20 s */
    assert_int_equal(stats(s, 0).scale_up[0], 0);
    gmpd_ttsa_submit(s, 3, 1000, 5 * S_, 0);   /* 12 s > 5 s: infeasible */
    gmpd_ttsa_stats st = stats(s, 0);
    assert_int_equal(st.scale_up[0], 1);
    assert_int_equal(st.vcms, 2);
    /* the new VCM is ready after ct = 1 s; task 3 starts there then */
    assert_int_equal(gmpd_ttsa_next_tick(s), S_);
    gmpd_ttsa_tick(s, S_);
    assert_int_equal(n_started, 2);
    assert_int_equal(started[1], 3);
    assert_int_equal(started_vcm[1], 2);
    assert_int_equal(gmpd_ttsa_finish(s, 3, 2 * S_), 0);
    assert_int_equal(stats(s, 2 * S_).missed, 0);
    gmpd_ttsa_free(s);
}

/* R10: among feasible VCMs, one on the server with the lowest live
 * throughput; ties to the earliest finish, then the lowest id. */
static void test_placement(void **state)
{
    (void)state;
    gmpd_ttsa *s = mk(GMPD_TTSA, NULL);
    uint32_t h1 = host(s, 10000, 1000, true), h2 = host(s, 10000, 1000, true);
    uint32_t v1 = vcm(s, h1, 0), v2 = vcm(s, h1, 0), v3 = vcm(s, h2, 0);
    vcm(s, h2, 0);
    for (uint64_t id = 1; id <= 3; id++)
        gmpd_ttsa_submit(s, id, 5000, 100 * S_, 0);
    assert_int_equal(n_started, 3);
    assert_int_equal(started_vcm[0], v1);   /* tie: lowest id */
    assert_int_equal(started_vcm[1], v3);   /* h2 has 0 Mb/s, h1 100 */
    assert_int_equal(started_vcm[2], v2);   /* 100 = 100: lowest id */
    gmpd_ttsa_host_info hi[2];
    assert_int_equal(gmpd_ttsa_hosts(s, hi, 2), 2);
    assert_true(fabs(hi[0].thr_mbps - 200) < 1e-6);
    assert_true(fabs(hi[1].thr_mbps - 100) < 1e-6);
    gmpd_ttsa_free(s);
}

/* Two VCM types for the ScaleUp tests: 1000 MIPS/256 MB, 500 MIPS/128 MB */
static void two_types(gmpd_ttsa_params *p)
{
    p->n_types = 2;
    p->types[0] = (gmpd_ttsa_res){1000, 256, 1000};
    p->types[1] = (gmpd_ttsa_res){500, 128, 1000};
}

static void one_type(gmpd_ttsa_params *p)
{
    p->n_types = 1;
    p->types[0] = (gmpd_ttsa_res){1000, 256, 1000};
}

/* Hosts of 2500 MIPS: h1 = 1000 + 500 + 500, h2 = 1000 + 1000, so 500
 * MIPS are free on each and a 1000-MIPS VCM fits nowhere.  Every VCM is
 * busy until 3 s.  Host 3 is off. */
static gmpd_ttsa *scaleup_pool(gmpd_ttsa_variant var, double h2_mips)
{
    gmpd_ttsa *s = mk(var, two_types);
    uint32_t h1 = host(s, 2500, 1000, true), h2 = host(s, h2_mips, 1000, true);
    host(s, 2500, 1000, false);
    vcm(s, h1, 0), vcm(s, h1, 1), vcm(s, h1, 1);
    vcm(s, h2, 0), vcm(s, h2, 0);
    const double len[5] = {3000, 3000, 3000, 1500, 1500};
    for (int i = 0; i < 5; i++)
        gmpd_ttsa_submit(s, (uint64_t)i + 1, len[i], 1000 * S_, 0);
    gmpd_ttsa_vcm_info v[8];
    assert_int_equal(gmpd_ttsa_vcms(s, v, 8), 5);
    for (int i = 0; i < 5; i++)
        assert_true(v[i].busy);
    return s;
}

/* A task of 2000 MI due at 4.5 s: existing VCMs finish it at 5 s; a
 * 500-MIPS VCM at 1 + 4 = 5 s; a 1000-MIPS one at 1 + 2 = 3 s if it can
 * be placed, or 1.024 + 1 + 2 s after migrating a 128 MB VCM (eq. 12). */
#define X_LEN 2000
#define X_DUE (4 * S_ + S_ / 2)

static void test_scaleup_step1(void **state)
{
    (void)state;
    /* with 1000 MIPS free on h2 the new VCM goes there directly */
    gmpd_ttsa *s = scaleup_pool(GMPD_TTSA, 3000);
    gmpd_ttsa_submit(s, 10, X_LEN, X_DUE, 0);
    gmpd_ttsa_stats st = stats(s, 0);
    assert_int_equal(st.scale_up[0], 1);
    assert_int_equal(vcm_host(s, 6), 2);
    assert_int_equal(st.scale_up[1] + st.scale_up[2], 0);
    assert_int_equal(st.migrations, 0);
    gmpd_ttsa_free(s);
}

static void test_scaleup_step2(void **state)
{
    (void)state;
    gmpd_ttsa *s = scaleup_pool(GMPD_TTSA, 2500);
    gmpd_ttsa_submit(s, 10, X_LEN, X_DUE, 0);
    gmpd_ttsa_stats st = stats(s, 0);
    assert_int_equal(st.scale_up[0], 0);
    assert_int_equal(st.scale_up[1], 1);
    assert_int_equal(st.migrations, 1);
    assert_int_equal(st.hosts_on, 2);
    assert_int_equal(vcm_host(s, 2), 2);   /* smallest VCM moved h1 -> h2 */
    assert_int_equal(vcm_host(s, 6), 1);   /* new VCM where it was */
    /* it starts once ready (mt + ct) and meets the deadline */
    for (int i = 0; i < 10 && started[n_started - 1] != 10; i++)
        gmpd_ttsa_tick(s, gmpd_ttsa_next_tick(s));
    assert_int_equal(started[n_started - 1], 10);
    assert_int_equal(started_vcm[n_started - 1], 6);
    assert_int_equal(gmpd_ttsa_finish(s, 10, 4100000000ull), 0);
    assert_int_equal(stats(s, 4100000000ull).missed, 0);
    gmpd_ttsa_free(s);
}

static void test_scaleup_step3(void **state)
{
    (void)state;
    gmpd_ttsa *s = scaleup_pool(GMPD_NMTTSA, 2500);   /* no migration */
    gmpd_ttsa_submit(s, 10, X_LEN, X_DUE, 0);
    gmpd_ttsa_stats st = stats(s, 0);
    assert_int_equal(st.scale_up[0] + st.scale_up[1], 0);
    assert_int_equal(st.scale_up[2], 1);
    assert_int_equal(st.migrations, 0);
    assert_int_equal(st.hosts_on, 3);
    assert_int_equal(vcm_host(s, 6), 3);
    /* a second boot does not start while one is under way */
    gmpd_ttsa_submit(s, 11, X_LEN, X_DUE, 0);
    assert_int_equal(stats(s, 0).hosts_on, 3);
    gmpd_ttsa_free(s);
}

/* Defect 5: step 2 migrates only when the VCM it makes room for can be
 * created: here the driver refuses every new VCM, so nothing moves, on
 * this pass or the next. */
static void test_scaleup_step2_needs_start(void **state)
{
    (void)state;
    gmpd_ttsa *s = scaleup_pool(GMPD_TTSA, 2500);
    refuse_start = true;
    gmpd_ttsa_submit(s, 10, X_LEN, X_DUE, 0);
    gmpd_ttsa_submit(s, 11, X_LEN, X_DUE, 0);
    gmpd_ttsa_stats st = stats(s, 0);
    assert_true(n_vcm_start > 5);          /* it was asked */
    assert_int_equal(st.scale_up[0] + st.scale_up[1], 0);
    assert_int_equal(st.migrations, 0);
    assert_int_equal(vcm_host(s, 2), 1);
    gmpd_ttsa_free(s);
}

/* Step 2 never moves a VCM onto a server that is still booting: h2 is
 * full, so task 10 powers on h3 (step 3); task 11 could then have room
 * on h1 by moving a 500-MIPS VCM to h3, but h3 is not up for 20 s. */
static void test_scaleup_step2_not_to_booting(void **state)
{
    (void)state;
    gmpd_ttsa *s = scaleup_pool(GMPD_TTSA, 2000);
    gmpd_ttsa_submit(s, 10, X_LEN, X_DUE, 0);
    assert_int_equal(stats(s, 0).scale_up[2], 1);
    gmpd_ttsa_submit(s, 11, X_LEN, X_DUE, 0);
    gmpd_ttsa_stats st = stats(s, 0);
    assert_int_equal(st.migrations, 0);
    assert_int_equal(st.scale_up[1], 0);
    gmpd_ttsa_free(s);
}

/* Step 3 waits for a booting server only while that server has room for
 * another VCM: h2 takes one VCM, so once it is taken a backlog may boot
 * h3 at the same time. */
static void test_scaleup_step3_parallel(void **state)
{
    (void)state;
    gmpd_ttsa *s = mk(GMPD_NMTTSA, one_type);
    vcm(s, host(s, 1000, 1000, true), 0);
    host(s, 1000, 1000, false);
    host(s, 1000, 1000, false);
    gmpd_ttsa_submit(s, 1, 100000, 1000 * S_, 0);   /* V1 busy 100 s */
    gmpd_ttsa_submit(s, 2, 1000, 22 * S_, 0);   /* 21 + 1 s on h2 */
    assert_int_equal(stats(s, 0).hosts_on, 2);
    gmpd_ttsa_submit(s, 3, 1000, 22 * S_, 0);
    gmpd_ttsa_stats st = stats(s, 0);
    assert_int_equal(st.hosts_on, 3);
    assert_int_equal(st.scale_up[2], 2);
    gmpd_ttsa_free(s);
}

/* Defect 2: the cost of a pass.  A backlog of 40 tasks that all miss
 * (due in 0.5 s, ct is 1 s) is re-planned at every arrival: step 2's
 * trials (every server, every type) run once per type per pass and after
 * each VCM made, not again for each waiting task. */
static void test_scaleup_cost(void **state)
{
    (void)state;
    gmpd_ttsa *s = scaleup_pool(GMPD_TTSA, 2500);
    gmpd_ttsa_stats st0 = stats(s, 0);
    for (uint64_t id = 10; id < 50; id++)
        gmpd_ttsa_submit(s, id, 1000, S_ / 2, 0);
    gmpd_ttsa_stats st = stats(s, 0);
    uint64_t plans = st.plans - st0.plans;
    uint64_t made = st.scale_up[0] + st.scale_up[1] + st.scale_up[2];
    assert_int_equal(plans, 40);
    assert_true(st.planned - st0.planned > 500);   /* a real backlog */
    /* 2 types x 2 servers up, per pass and per VCM made */
    assert_true(st.trials - st0.trials <= (plans + made) * 2 * 2);
    gmpd_ttsa_free(s);
}

static void long_grace(gmpd_ttsa_params *p)
{
    p->idle_grace_ns = 1000 * S_;   /* no VCM is shut: only step 2 */
}

/* R12: a source's VCMs all move, and the source powers off, or none move. */
static void test_consolidation(void **state)
{
    (void)state;
    gmpd_ttsa *s = mk(GMPD_TTSA, long_grace);
    uint32_t h1 = host(s, 3000, 1000, true), h2 = host(s, 3000, 1000, true);
    vcm(s, h1, 0);
    vcm(s, h2, 0);
    gmpd_ttsa_tick(s, S_);
    gmpd_ttsa_stats st = stats(s, S_);
    assert_int_equal(st.consolidations, 1);
    assert_int_equal(st.migrations, 1);
    assert_int_equal(st.hosts_on, 1);
    assert_int_equal(vcm_host(s, 1), h2);
    gmpd_ttsa_free(s);

    /* 2 + 2 VCMs of 1000 on 3000-MIPS hosts: only one of the source's two
     * would fit on the other host, so nothing moves. */
    s = mk(GMPD_TTSA, long_grace);
    h1 = host(s, 3000, 1000, true), h2 = host(s, 3000, 1000, true);
    vcm(s, h1, 0), vcm(s, h1, 0), vcm(s, h2, 0), vcm(s, h2, 0);
    gmpd_ttsa_tick(s, S_);
    st = stats(s, S_);
    assert_int_equal(st.consolidations, 0);
    assert_int_equal(st.migrations, 0);
    assert_int_equal(st.hosts_on, 2);
    gmpd_ttsa_free(s);

    /* no migration variant: never consolidates */
    s = mk(GMPD_NRMTTSA, long_grace);
    h1 = host(s, 3000, 1000, true), h2 = host(s, 3000, 1000, true);
    vcm(s, h1, 0), vcm(s, h2, 0);
    gmpd_ttsa_tick(s, S_);
    assert_int_equal(stats(s, S_).hosts_on, 2);
    gmpd_ttsa_free(s);
}

/* Defect 4: consolidation counts what it already moved onto a server in
 * the same pass.  D runs 7 busy VCMs (700 Mb/s, inside the band); S1 and
 * S2 run one each (100 Mb/s, under it).  D has room under 850 Mb/s for
 * one of them, not both. */
static void test_consolidation_band(void **state)
{
    (void)state;
    gmpd_ttsa *s = mk(GMPD_TTSA, long_grace);
    uint32_t d = host(s, 10000, 1000, true);
    for (int i = 0; i < 7; i++)
        vcm(s, d, 0);
    for (uint64_t id = 1; id <= 7; id++)
        gmpd_ttsa_submit(s, id, 100000, 1000 * S_, 0);
    uint32_t s1 = host(s, 10000, 1000, true), s2 = host(s, 10000, 1000, true);
    vcm(s, s1, 0), vcm(s, s2, 0);
    gmpd_ttsa_submit(s, 8, 100000, 1000 * S_, 0);
    gmpd_ttsa_submit(s, 9, 100000, 1000 * S_, 0);
    gmpd_ttsa_host_info hi[3];
    gmpd_ttsa_hosts(s, hi, 3);
    assert_true(fabs(hi[0].thr_mbps - 700) < 1e-6);
    assert_true(fabs(hi[1].thr_mbps - 100) < 1e-6);
    assert_true(fabs(hi[2].thr_mbps - 100) < 1e-6);
    gmpd_ttsa_tick(s, S_);
    gmpd_ttsa_stats st = stats(s, S_);
    assert_int_equal(st.consolidations, 1);
    assert_int_equal(st.hosts_on, 2);
    gmpd_ttsa_hosts(s, hi, 3);
    assert_true(fabs(hi[0].thr_mbps - 800) < 1e-6);   /* not 900 */
    gmpd_ttsa_free(s);
}

static void no_grace(gmpd_ttsa_params *p)
{
    p->idle_grace_ns = 0;
}

/* R10/R12 band: placement keeps a server at or under 85 % (8 busy VCMs of
 * 100 Mb/s on 1 Gb/s) and scales up for the 9th; a server inside the band
 * keeps its idle VCMs, one under it loses them. */
static void test_band(void **state)
{
    (void)state;
    gmpd_ttsa *s = mk(GMPD_TTSA, no_grace);
    uint32_t h1 = host(s, 10000, 1000, true);
    host(s, 10000, 1000, false);
    for (int i = 0; i < 10; i++)
        vcm(s, h1, 0);
    for (uint64_t id = 1; id <= 8; id++)
        gmpd_ttsa_submit(s, id, 100000, 1000 * S_, 0);
    /* the 9th can neither start now (band) nor wait (deadline) */
    gmpd_ttsa_submit(s, 9, 100000, 150 * S_, 0);
    gmpd_ttsa_host_info hi[2];
    gmpd_ttsa_hosts(s, hi, 2);
    assert_true(hi[0].thr_mbps <= 850 + 1e-6);
    assert_true(fabs(hi[0].thr_mbps - 800) < 1e-6);
    gmpd_ttsa_stats st = stats(s, 0);
    assert_int_equal(st.scale_up[2], 1);    /* h1 full: power on h2 */
    assert_int_equal(st.hosts_on, 2);
    gmpd_ttsa_tick(s, S_);                  /* 800 Mb/s: inside the band */
    st = stats(s, S_);
    assert_int_equal(st.vcms_stopped, 0);
    assert_true(st.in_band_s > 0.99 && st.in_band_s < 1.01);
    /* finish all but one: under the band, idle VCMs are shut */
    for (uint64_t id = 1; id <= 7; id++)
        gmpd_ttsa_finish(s, id, S_ + 1);
    gmpd_ttsa_tick(s, 2 * S_ + 2);
    st = stats(s, 2 * S_ + 2);
    assert_true(st.vcms_stopped >= 9);
    gmpd_ttsa_free(s);
}

/* Defect 1: tasks that miss wherever they go are planned last, but they
 * still occupy their VCM.  ScaleUp must see that: V1 is busy to 1.2 s and
 * tasks 2-5 (1 s each, due at 1.5 s) cannot make it anywhere.  A new VCM
 * (ready at 1 s) finishes each at 2 s; stacked on V1 and the VCMs already
 * made they would end at 2.2, 3 s and later, so each gets its own VCM. */
static void test_scaleup_counts_late_tasks(void **state)
{
    (void)state;
    gmpd_ttsa *s = mk(GMPD_TTSA, one_type);
    vcm(s, host(s, 10000, 1000, true), 0);
    gmpd_ttsa_submit(s, 1, 1200, 100 * S_, 0);
    for (uint64_t id = 2; id <= 5; id++)
        gmpd_ttsa_submit(s, id, 1000, S_ + S_ / 2, 0);
    gmpd_ttsa_stats st = stats(s, 0);
    assert_int_equal(st.scale_up[0], 4);
    assert_int_equal(st.vcms, 5);
    gmpd_ttsa_task_info w[8];
    assert_int_equal(gmpd_ttsa_window(s, w, 8), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(w[i].st, S_);   /* each starts when its VCM is up */
    gmpd_ttsa_free(s);
}

/* Defect 3: a bound task (gmpd_ttsa_place) that ends early, or leaves the
 * queue before it starts, frees its VCM then, not when the model expected.
 * The host has room for a second VCM, so a stale ready time would show as
 * an unneeded ScaleUp. */
static void test_early_end_frees_vcm(void **state)
{
    (void)state;
    for (int queued = 0; queued < 2; queued++) {
        gmpd_ttsa *s = mk(GMPD_TTSA, one_type);
        uint32_t v1 = vcm(s, host(s, 2000, 1000, true), 0), v;
        assert_int_equal(gmpd_ttsa_place(s, 1, 10000, 100 * S_, 0, &v), 0);
        assert_int_equal(gmpd_ttsa_place(s, 2, 1000, 100 * S_, 0, &v), 0);
        assert_int_equal(v, v1);              /* queued behind task 1 */
        if (queued) {
            /* task 2 leaves the queue; task 1 runs on to 10 s */
            assert_int_equal(gmpd_ttsa_finish(s, 2, S_), 0);
            assert_int_equal(gmpd_ttsa_place(s, 3, 1000, 11 * S_ + S_ / 2, S_,
                                             &v), 0);
        } else {
            /* both end early (aborted): the VCM is free at 1.5 s */
            assert_int_equal(gmpd_ttsa_finish(s, 1, S_), 0);
            assert_int_equal(gmpd_ttsa_finish(s, 2, S_ + S_ / 2), 0);
            assert_int_equal(gmpd_ttsa_place(s, 3, 1000, 3 * S_, S_ + S_ / 2,
                                             &v), 0);
        }
        assert_int_equal(v, v1);
        assert_int_equal(stats(s, 2 * S_).scale_up[0], 0);
        gmpd_ttsa_free(s);
    }
}

/* A task the driver gives up on leaves the model as dropped, not
 * finished, and frees its VCM at once. */
static void test_drop(void **state)
{
    (void)state;
    gmpd_ttsa *s = mk(GMPD_TTSA, one_type);
    uint32_t v1 = vcm(s, host(s, 2000, 1000, true), 0), v;
    assert_int_equal(gmpd_ttsa_place(s, 1, 10000, 100 * S_, 0, &v), 0);
    assert_int_equal(gmpd_ttsa_place(s, 2, 1000, 100 * S_, 0, &v), 0);
    assert_int_equal(gmpd_ttsa_drop(s, 1, S_), 0);   /* running */
    assert_int_equal(gmpd_ttsa_drop(s, 2, S_), 0);   /* it had started */
    gmpd_ttsa_stats st = stats(s, S_);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(st.finished, 0);
    assert_int_equal(gmpd_ttsa_drop(s, 2, S_), -1);
    assert_int_equal(gmpd_ttsa_place(s, 3, 1000, 2 * S_ + 1, S_, &v), 0);
    assert_int_equal(v, v1);
    assert_int_equal(stats(s, S_).scale_up[0], 0);
    gmpd_ttsa_free(s);
}

static void keep_none(gmpd_ttsa_params *p)
{
    p->min_vcms = 0;
}

/* Without the rolling window a task waits in the window only while there
 * is no VCM at all.  Once planned on a VCM that is not up yet and then
 * removed, it must not keep that VCM from ever looking idle (the VCM kept
 * a pointer to the freed task). */
static void test_nr_window_drop(void **state)
{
    (void)state;
    gmpd_ttsa *s = mk(GMPD_NRTTSA, keep_none);
    host(s, 10000, 1000, false);
    refuse_power = true;                 /* nowhere to go: it waits */
    gmpd_ttsa_submit(s, 1, 1000, 100 * S_, 0);
    assert_int_equal(stats(s, 0).window, 1);
    refuse_power = false;                /* task 2 boots the host */
    gmpd_ttsa_submit(s, 2, 1000, 100 * S_, 0);
    gmpd_ttsa_tick(s, S_);               /* plans task 1 there too */
    gmpd_ttsa_task_info w[4];
    assert_int_equal(gmpd_ttsa_window(s, w, 4), 2);
    assert_int_equal(w[0].vcm, 1);
    assert_int_equal(w[0].st, 22 * S_);  /* behind task 2, bound there */
    assert_int_equal(gmpd_ttsa_finish(s, 1, 2 * S_), 0);
    assert_int_equal(stats(s, 2 * S_).dropped, 1);
    for (uint64_t t = 3 * S_; t < 40 * S_; t += S_) {
        gmpd_ttsa_tick(s, t);
        if (t == 22 * S_)                /* runs from 21 to 22 s */
            assert_int_equal(gmpd_ttsa_finish(s, 2, t), 0);
    }
    assert_int_equal(stats(s, 40 * S_).vcms_stopped, 1);
    gmpd_ttsa_free(s);
}

static void one_type_long_grace(gmpd_ttsa_params *p)
{
    one_type(p);
    long_grace(p);
}

/* h1 with all 10 VCMs busy: the tasks can only make their deadlines by
 * starting at once, so placement runs the server over the band. */
static gmpd_ttsa *over_band_pool(gmpd_ttsa_variant var, bool h2_on)
{
    gmpd_ttsa *s = mk(var, one_type_long_grace);
    uint32_t h1 = host(s, 10000, 1000, true);
    host(s, 10000, 1000, h2_on);
    for (int i = 0; i < 10; i++)
        vcm(s, h1, 0);
    for (uint64_t id = 1; id <= 10; id++)
        gmpd_ttsa_submit(s, id, 100000, 100 * S_, 0);
    gmpd_ttsa_host_info hi[2];
    gmpd_ttsa_hosts(s, hi, 2);
    assert_true(fabs(hi[0].thr_mbps - 1000) < 1e-6);
    return s;
}

/* R11's second trigger: a server above the band's top.  With migration,
 * busy VCMs move off it (live) until it is back under 850 Mb/s; without,
 * ScaleUp powers on a server for new work. */
static void test_above_band(void **state)
{
    (void)state;
    gmpd_ttsa *s = over_band_pool(GMPD_TTSA, true);
    gmpd_ttsa_tick(s, S_);
    gmpd_ttsa_host_info hi[2];
    gmpd_ttsa_hosts(s, hi, 2);
    assert_true(fabs(hi[0].thr_mbps - 800) < 1e-6);
    assert_true(fabs(hi[1].thr_mbps - 200) < 1e-6);
    assert_int_equal(stats(s, S_).migrations, 2);
    gmpd_ttsa_free(s);

    s = over_band_pool(GMPD_NMTTSA, false);
    gmpd_ttsa_tick(s, S_);
    gmpd_ttsa_stats st = stats(s, S_);
    assert_int_equal(st.migrations, 0);
    assert_int_equal(st.hosts_on, 2);
    gmpd_ttsa_free(s);
}

static void test_params(void **state)
{
    (void)state;
    gmpd_ttsa_params p, q;
    gmpd_ttsa_defaults(&p);
    assert_true(p.band_lo == 0.70 && p.band_hi == 0.85);
    q = p, q.band_lo = 0.9;                 /* lo > hi */
    assert_null(gmpd_ttsa_new(&q, NULL, NULL));
    q = p, q.band_lo = 0;
    assert_null(gmpd_ttsa_new(&q, NULL, NULL));
    q = p, q.band_hi = 1.5;
    assert_null(gmpd_ttsa_new(&q, NULL, NULL));
    q = p, q.band_hi = NAN;
    assert_null(gmpd_ttsa_new(&q, NULL, NULL));
    q = p, q.n_types = 0;
    assert_null(gmpd_ttsa_new(&q, NULL, NULL));
    q = p, q.types[0].mips = -1;
    assert_null(gmpd_ttsa_new(&q, NULL, NULL));
    q = p, q.variant = (gmpd_ttsa_variant)7;
    assert_null(gmpd_ttsa_new(&q, NULL, NULL));
    assert_null(gmpd_ttsa_new(NULL, NULL, NULL));
    gmpd_ttsa_variant v;
    assert_int_equal(gmpd_ttsa_variant_parse("nrmttsa", &v), 0);
    assert_int_equal(v, GMPD_NRMTTSA);
    assert_int_equal(gmpd_ttsa_variant_parse("x", &v), -1);
    assert_int_equal(gmpd_ttsa_variant_parse(NULL, &v), -1);

    gmpd_ttsa *s = gmpd_ttsa_new(&p, NULL, NULL);
    assert_non_null(s);
    gmpd_ttsa_res bad = {NAN, 1, 1};
    assert_int_equal(gmpd_ttsa_add_host(s, &bad, true, 0), -1);
    assert_int_equal(gmpd_ttsa_add_vcm(s, 1, 0, 0), -1);    /* no host */
    uint32_t h = host(s, 1000, 1000, true);
    assert_int_equal(gmpd_ttsa_add_vcm(s, h, 9, 0), -1);    /* no type */
    vcm(s, h, 0);
    assert_int_equal(gmpd_ttsa_add_vcm(s, h, 0, 0), -1);    /* full */
    assert_int_equal(gmpd_ttsa_submit(s, 1, -5, S_, 0), -1);
    assert_int_equal(gmpd_ttsa_submit(s, 1, NAN, S_, 0), -1);
    assert_int_equal(gmpd_ttsa_submit(s, 1, 10, S_, 0), 0);
    assert_int_equal(gmpd_ttsa_submit(s, 1, 10, S_, 0), -1);  /* dup */
    assert_int_equal(gmpd_ttsa_submit(NULL, 2, 10, S_, 0), -1);
    gmpd_ttsa_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edf_order),
        cmocka_unit_test(test_deadline_feasibility),
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_scaleup_step1),
        cmocka_unit_test(test_scaleup_step2),
        cmocka_unit_test(test_scaleup_step3),
        cmocka_unit_test(test_scaleup_step3_parallel),
        cmocka_unit_test(test_scaleup_cost),
        cmocka_unit_test(test_scaleup_step2_needs_start),
        cmocka_unit_test(test_scaleup_step2_not_to_booting),
        cmocka_unit_test(test_consolidation),
        cmocka_unit_test(test_consolidation_band),
        cmocka_unit_test(test_band),
        cmocka_unit_test(test_scaleup_counts_late_tasks),
        cmocka_unit_test(test_early_end_frees_vcm),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_nr_window_drop),
        cmocka_unit_test(test_above_band),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
