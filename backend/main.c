/* gmpoold: the pool daemon.  Runs in the foreground (systemd style). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gmpd.h"
#include "gmpool.h"
#include "util.h"

#define DRAIN_MS 5000

gmpd_daemon *gmpd;

static uv_signal_t g_sigint, g_sigterm;
static uv_timer_t g_load_timer, g_drain_timer, g_sched_timer;
static uint64_t g_drain_start;
static int g_drain_phase;

/* First start: create the default tenant and its credentials file, which
 * names the first listen address so clients find the daemon. */
static int first_start(void)
{
    if (gmpd_tenant_count(gmpd->store) > 0)
        return GMP_OK;
    gmpd_tenant t;
    int rc = gmpd_tenant_add(gmpd->store, "default", &t);
    if (rc != GMP_OK)
        return rc;
    gmpc_creds c = {0};
    snprintf(c.server, sizeof c.server, "%s", gmpd->cfg.listen[0]);
    snprintf(c.tenant, sizeof c.tenant, "%s", t.name);
    memcpy(c.secret, t.secret, sizeof t.secret);
    c.secret_len = sizeof t.secret;
    char path[PATH_MAX + 16], err[256];
    snprintf(path, sizeof path, "%s/credentials", gmpd->cfg.data_dir);
    rc = gmpc_creds_save(path, &c, err, sizeof err);
    memset(&c, 0, sizeof c);
    memset(&t, 0, sizeof t);
    if (rc != GMP_OK)
        gmpd_log(GMPD_ERR, "%s", err);
    else
        gmpd_log(GMPD_INFO, "created tenant 'default', credentials in %s",
                 path);
    return rc;
}

static void on_load_timer(uv_timer_t *t)
{
    (void)t;
    gmpd_sched_publish_load();
}

/* TTSA's clock (R11/R12): band check and ScaleDown every period; the
 * core itself has no clock. */
static void on_sched_timer(uv_timer_t *t)
{
    (void)t;
    gmpd_sched_tick();
}

/* Shutdown, step by step on a timer so the main loop stays responsive:
 * 0) in-flight work is answered (up to DRAIN_MS), 1) every connection
 * gets a SHUTDOWN error and is closed, 2) what those closes cancelled is
 * answered, then the loop ends. */
static void on_drain(uv_timer_t *t)
{
    uint64_t waited = (gmpc_now_ns() - g_drain_start) / 1000000u;
    if (g_drain_phase == 0 && (gmpd_sched_idle() || waited > DRAIN_MS)) {
        gmpd_net_close_all();
        g_drain_phase = 1;
        return;
    }
    if (g_drain_phase == 1 && gmpd_sched_idle() &&
        gmpd_net_conn_count() == 0) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        uv_close((uv_handle_t *)&g_load_timer, NULL);
        uv_close((uv_handle_t *)&g_sched_timer, NULL);
        uv_close((uv_handle_t *)&g_sigint, NULL);
        uv_close((uv_handle_t *)&g_sigterm, NULL);
        uv_stop(gmpd->main_loop);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (atomic_exchange(&gmpd->shutting_down, true))
        return;
    gmpd_log(GMPD_INFO, "signal %d: shutting down", signum);
    gmpd_net_stop_listening();
    g_drain_start = gmpc_now_ns();
    uv_timer_init(gmpd->main_loop, &g_drain_timer);
    uv_timer_start(&g_drain_timer, on_drain, 0, 10);
}

static int start(void)
{
    char err[512];
    int rc = gmpd_store_open(&gmpd->store, gmpd->cfg.data_dir, err,
                             sizeof err);
    if (rc != GMP_OK) {
        gmpd_log(GMPD_ERR, "%s", err);
        return rc;
    }
    if ((rc = first_start()) != GMP_OK)
        return rc;
    if (gmpd_engine_init() != GMP_OK) {
        gmpd_log(GMPD_ERR, "libcrypto lacks SM3/SM4 in its default provider");
        return GMP_ERR_INTERNAL;
    }
    gmpd->load = gmpd_load_mem_new();
    if (!gmpd->load)
        return GMP_ERR_NOMEM;
    if ((rc = gmpd_sched_start(gmpd->cfg.nodes)) != GMP_OK ||
        (rc = gmpd_net_start()) != GMP_OK)
        return rc;
    return gmpd_net_listen();
}

static void stop(void)
{
    if (gmpd->n_io)
        gmpd_net_join();
    gmpd_sched_stop();
    if (gmpd->load)
        gmpd->load->ops->free(gmpd->load);
    if (gmpd->store)
        gmpd_store_close(gmpd->store);
    gmpd_engine_cleanup();
}

static void run_loop(uv_loop_t *loop)
{
    uv_signal_init(loop, &g_sigint);
    uv_signal_init(loop, &g_sigterm);
    uv_signal_start(&g_sigint, on_signal, SIGINT);
    uv_signal_start(&g_sigterm, on_signal, SIGTERM);
    uv_timer_init(loop, &g_load_timer);
    uv_timer_start(&g_load_timer, on_load_timer, 1000, 1000);
    uv_timer_init(loop, &g_sched_timer);
    uv_timer_start(&g_sched_timer, on_sched_timer, gmpd_sched_tick_ms(),
                   gmpd_sched_tick_ms());
    uv_run(loop, UV_RUN_DEFAULT);
    /* let closing handles finish */
    uv_run(loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
    static gmpd_daemon d;
    char err[512];
    gmpd = &d;
    signal(SIGPIPE, SIG_IGN);
    gmpd_config_defaults(&d.cfg);
    int rc = gmpd_config_from_args(&d.cfg, argc, argv, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc != GMP_OK) {
        fprintf(stderr, "gmpoold: %s\n", err);
        return 2;
    }
    gmpd_log_set_level(d.cfg.log_level);
    gethostname(d.host, sizeof d.host - 1);
    uv_loop_t loop;
    uv_loop_init(&loop);
    d.main_loop = &loop;
    rc = start();
    if (rc == GMP_OK) {
        gmpd_log(GMPD_INFO, "ready: %d io threads, %d nodes, data %s",
                 d.cfg.io_threads, d.cfg.nodes, d.cfg.data_dir);
        run_loop(&loop);
    } else {
        atomic_store(&d.shutting_down, true);
        gmpd_net_stop_listening();
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    stop();
    uv_loop_close(&loop);
    gmpd_log(GMPD_INFO, "stopped");
    return rc == GMP_OK ? 0 : 1;
}
