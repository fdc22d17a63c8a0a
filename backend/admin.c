/* Admin commands, reached only over the owner-only admin socket.  Each
 * command writes a plain-text reply; the status goes in the frame. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmpd.h"
#include "gmpool.h"
#include "util.h"

static int parse_u32(const char *s, uint32_t *v)
{
    char *end;
    errno = 0;
    unsigned long x = s ? strtoul(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || x > UINT32_MAX)
        return GMP_ERR_ARG;
    *v = (uint32_t)x;
    return GMP_OK;
}

static int tenant_row(const gmpd_tenant *t, void *arg)
{
    gmpd_pin p;
    const char *pin = "?";
    if (gmpd_tenant_pin_get(gmpd->store, t->name, &p) == GMP_OK)
        pin = p.len == 0                    ? "unset"
              : p.fails >= GMPD_PIN_TRIES ? "locked"
                                            : "set";
    gmpc_say(arg, "%-24s %6u %10lld %-6s\n", t->name, t->vcm,
        (long long)t->created, pin);
    return 0;
}

static int cmd_tenant(int argc, char **argv, gmpc_text *o)
{
    gmpd_tenant t;
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        gmpc_say(o, "%-24s %6s %10s %-6s\n", "TENANT", "VCM", "CREATED", "PIN");
        return gmpd_tenant_list(gmpd->store, tenant_row, o);
    }
    /* the token's user PIN: set, or reset after a lock-out */
    if (argc == 4 && strcmp(argv[1], "pin") == 0) {
        int rc = gmpd_pin_set(argv[2], (const uint8_t *)argv[3],
                              strlen(argv[3]));
        if (rc == GMP_ERR_ARG)
            gmpc_say(o, "a PIN has %u to %u bytes\n", GMPD_PIN_MIN, GMPD_PIN_MAX);
        return rc;
    }
    if (argc != 3)
        return GMP_ERR_ARG;
    if (strcmp(argv[1], "add") == 0) {
        int rc = gmpd_tenant_add(gmpd->store, argv[2], &t);
        if (rc == GMP_OK) {
            char hex[2 * GMPD_SECRET_LEN + 1];
            gmpc_hex_encode(t.secret, sizeof t.secret, hex);
            /* the reply is a ready credentials file for the tenant */
            gmpc_say(o,
                "# gmpool credentials for tenant %s (VCM %u): keep private\n"
                "[gmpool]\nserver = %s\ntenant = %s\nsecret = %s\n",
                t.name, t.vcm, gmpd->cfg.listen[0], t.name, hex);
        }
        return rc;
    }
    if (strcmp(argv[1], "remove") == 0)
        return gmpd_tenant_remove(gmpd->store, argv[2]);
    return GMP_ERR_ARG;
}

static int cmd_node(int argc, char **argv, gmpc_text *o)
{
    uint32_t node, vcm = 0;
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        gmpd_sched_status(o->p + o->len, o->cap - o->len);
        o->len += strlen(o->p + o->len);
        return GMP_OK;
    }
    if (argc == 4 && strcmp(argv[1], "assign") == 0 &&
        parse_u32(argv[2], &node) == GMP_OK &&
        parse_u32(argv[3], &vcm) == GMP_OK)
        return gmpd_sched_assign(node, vcm);
    if (argc == 3 && strcmp(argv[1], "unassign") == 0 &&
        parse_u32(argv[2], &node) == GMP_OK)
        return gmpd_sched_assign(node, 0);
    if (argc == 3 && (strcmp(argv[1], "down") == 0 ||
                      strcmp(argv[1], "up") == 0) &&
        parse_u32(argv[2], &node) == GMP_OK)
        return gmpd_sched_node_status(node, argv[1][0] == 'u');
    return GMP_ERR_ARG;
}

/* queue threshold LEVEL COUNT [WAIT_MS [VCM]] */
static int cmd_queue(int argc, char **argv, gmpc_text *o)
{
    uint32_t level, count, wait_ms = 0, vcm = 0;
    if (argc == 2 && strcmp(argv[1], "show") == 0) {
        gmpc_say(o, "%-6s %10s %10s\n", "LEVEL", "COUNT", "WAIT_MS");
        for (int l = 0; l < 8; l++)
            gmpc_say(o, "%-6d %10u %10u\n", l, gmpd->cfg.thresholds[l],
                gmpd->cfg.wait_ms[l]);
        return GMP_OK;
    }
    if (argc < 4 || argc > 6 || strcmp(argv[1], "threshold") != 0 ||
        parse_u32(argv[2], &level) != GMP_OK ||
        parse_u32(argv[3], &count) != GMP_OK ||
        (argc > 4 && parse_u32(argv[4], &wait_ms) != GMP_OK) ||
        (argc > 5 && parse_u32(argv[5], &vcm) != GMP_OK))
        return GMP_ERR_ARG;
    return gmpd_sched_set_threshold(vcm, level, count, wait_ms);
}

/* The record keeps the wall clock of its last update; an operator wants
 * its age. */
static int load_row(const gmpd_load_rec *r, void *arg)
{
    uint64_t now = gmpc_wall_ms();
    gmpc_say(arg, "%-16s %5u %5u %7u %12.0f %-5s %14llu\n", r->host, r->node,
        r->vcm, r->queue_depth, r->bytes_per_s,
        r->status == GMPD_NODE_UP ? "up" : "down",
        (unsigned long long)(now > r->heartbeat_ms ? now - r->heartbeat_ms
                                                   : 0));
    return 0;
}

static int cmd_status(gmpc_text *o)
{
    gmpd_sched_publish_load();
    gmpc_say(o, "host %s, %zu connections, %d tenants\n", gmpd->host,
        gmpd_net_conn_count(), gmpd_tenant_count(gmpd->store));
    gmpc_say(o, "shared memory: %d regions, %llu items\n\n",
        atomic_load(&gmpd->shm_regions),
        (unsigned long long)atomic_load(&gmpd->shm_items));
    gmpd_sched_status(o->p + o->len, o->cap - o->len);
    o->len += strlen(o->p + o->len);
    gmpc_say(o, "\n%-16s %5s %5s %7s %12s %-5s %14s\n", "HOST", "NODE", "VCM",
        "QUEUED", "BYTES/s", "STATE", "HEARTBEAT_AGE_MS");
    return gmpd->load->ops->list(gmpd->load, load_row, o);
}

/* TTSA: waiting tasks, band, variant, active/parked nodes, decisions. */
static int cmd_sched(gmpc_text *o)
{
    gmpd_sched_ttsa_status(o->p + o->len, o->cap - o->len);
    o->len += strlen(o->p + o->len);
    return GMP_OK;
}

/* sdf ...: the SDF front end's internal keys (sdfadmin.c) */
static int cmd_sdf(int argc, char **argv, gmpc_text *o)
{
    int rc = gmpd_sdf_admin(argc, argv, o->p + o->len, o->cap - o->len);
    o->len += strlen(o->p + o->len);
    return rc;
}

int gmpd_admin_run(int argc, char **argv, char *out, size_t cap)
{
    gmpc_text o = {out, cap, 0};
    int rc = GMP_ERR_ARG;
    if (argc >= 1 && strcmp(argv[0], "tenant") == 0)
        rc = cmd_tenant(argc, argv, &o);
    else if (argc >= 1 && strcmp(argv[0], "node") == 0)
        rc = cmd_node(argc, argv, &o);
    else if (argc >= 1 && strcmp(argv[0], "queue") == 0)
        rc = cmd_queue(argc, argv, &o);
    else if (argc == 1 && strcmp(argv[0], "status") == 0)
        rc = cmd_status(&o);
    else if (argc == 1 && strcmp(argv[0], "sched") == 0)
        rc = cmd_sched(&o);
    else if (argc >= 1 && strcmp(argv[0], "sdf") == 0)
        rc = cmd_sdf(argc, argv, &o);
    else if (argc == 1 && strcmp(argv[0], "ping") == 0)
        rc = GMP_OK;
    if (rc != GMP_OK && o.len == 0)
        gmpc_say(&o, "%s\n", gmp_strerror(rc));
    gmpd_log(GMPD_INFO, "admin: %s %s -> %s", argc ? argv[0] : "",
             argc > 1 ? argv[1] : "", gmp_strerror(rc));
    return rc;
}
