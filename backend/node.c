/* Compute node descriptors and speed-proportional placement (R5, R6).
 *
 * A fixed array in insertion order.  Removed nodes keep their descriptor
 * (all services DOWN) so that work still bound to them is accounted when
 * it finishes.  Placement is greedy "finishes soonest": each task goes to
 * the candidate with the smallest (queued_bytes + len) / speed, which over
 * many equal tasks gives every node a share proportional to its speed.
 * See docs/scheduling.md. */
#include "node.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Size assumed for a task of unknown length: one typical shard (R15). */
#define UNKNOWN_LEN 16384u

struct gmpd_nodeset {
    gmpd_node node[GMPD_MAX_NODES];
    size_t n;
};

gmpd_nodeset *gmpd_nodeset_new(void)
{
    return calloc(1, sizeof(gmpd_nodeset));
}

void gmpd_nodeset_free(gmpd_nodeset *ns)
{
    free(ns);
}

static bool speeds_valid(const double speed[GMPD_SVC_COUNT])
{
    for (int s = 0; s < GMPD_SVC_COUNT; s++)
        if (!isfinite(speed[s]) || speed[s] < 0)
            return false;
    return true;
}

int gmpd_nodeset_add(gmpd_nodeset *ns, uint32_t id,
                     const double speed[GMPD_SVC_COUNT])
{
    if (id == 0 || !speed || !speeds_valid(speed) ||
        ns->n == GMPD_MAX_NODES || gmpd_nodeset_get(ns, id))
        return -1;
    gmpd_node *nd = &ns->node[ns->n++];

    memset(nd, 0, sizeof(*nd));
    nd->id = id;
    for (int s = 0; s < GMPD_SVC_COUNT; s++) {
        nd->speed[s] = speed[s];
        nd->status[s] = GMPD_NODE_UP;
    }
    return 0;
}

int gmpd_nodeset_remove(gmpd_nodeset *ns, uint32_t id)
{
    return gmpd_nodeset_set_status(ns, id, GMPD_NODE_DOWN);
}

int gmpd_nodeset_set_status(gmpd_nodeset *ns, uint32_t id,
                            gmpd_node_status st)
{
    gmpd_node *nd = gmpd_nodeset_get(ns, id);

    if (!nd)
        return -1;
    for (int s = 0; s < GMPD_SVC_COUNT; s++)
        nd->status[s] = (uint8_t)st;
    return 0;
}

gmpd_node *gmpd_nodeset_get(gmpd_nodeset *ns, uint32_t id)
{
    for (size_t i = 0; i < ns->n; i++)
        if (ns->node[i].id == id)
            return &ns->node[i];
    return NULL;
}

size_t gmpd_nodeset_count(const gmpd_nodeset *ns)
{
    return ns->n;
}

gmpd_node *gmpd_nodeset_at(gmpd_nodeset *ns, size_t i)
{
    return i < ns->n ? &ns->node[i] : NULL;
}

int gmpd_nodeset_assign(gmpd_nodeset *ns, uint32_t id, uint32_t vcm)
{
    gmpd_node *nd = gmpd_nodeset_get(ns, id);

    if (!nd)
        return -1;
    nd->owner_vcm = vcm;   /* accounting stays: bound work runs on */
    return 0;
}

static bool serves(const gmpd_node *nd, uint32_t owner, gmpd_svc svc)
{
    return nd->owner_vcm == owner && nd->status[svc] == GMPD_NODE_UP &&
           nd->speed[svc] > 0;
}

/* The owner whose nodes serve vcm for svc: vcm itself when it has a node
 * that can take the work now, else the free pool (0).  Falling back when
 * the VCM's own nodes are all down keeps the tenant served. */
static uint32_t pool_of(const gmpd_nodeset *ns, uint32_t vcm, gmpd_svc svc)
{
    for (size_t i = 0; vcm && i < ns->n; i++)
        if (serves(&ns->node[i], vcm, svc))
            return vcm;
    return 0;
}

/* Does a finish earlier than b?  Equal finish times go to the lower id, so
 * placement does not depend on the order nodes were added in. */
static bool sooner(double fa, const gmpd_node *a, double fb,
                   const gmpd_node *b)
{
    return fa < fb || (fa == fb && a->id < b->id);
}

gmpd_node *gmpd_nodeset_place(gmpd_nodeset *ns, uint32_t vcm, gmpd_svc svc,
                              uint64_t len)
{
    if ((unsigned)svc >= GMPD_SVC_COUNT)
        return NULL;
    uint32_t owner = pool_of(ns, vcm, svc);
    uint64_t need = len ? len : UNKNOWN_LEN;
    gmpd_node *best = NULL;
    double best_f = 0;

    for (size_t i = 0; i < ns->n; i++) {
        gmpd_node *nd = &ns->node[i];
        if (!serves(nd, owner, svc))
            continue;
        double f = ((double)nd->queued_bytes + (double)need) / nd->speed[svc];
        if (!best || sooner(f, nd, best_f, best)) {
            best = nd;
            best_f = f;
        }
    }
    if (best) {
        best->queued_bytes += need;
        best->tasks++;
    }
    return best;
}

static uint64_t sub_sat(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

void gmpd_nodeset_done(gmpd_nodeset *ns, uint32_t id, uint64_t bytes,
                       uint32_t jobs)
{
    gmpd_node *nd = gmpd_nodeset_get(ns, id);

    if (!nd)
        return;
    nd->queued_bytes = sub_sat(nd->queued_bytes, bytes);
    nd->queued_jobs = (uint32_t)sub_sat(nd->queued_jobs, jobs);
    nd->done_bytes += bytes;
    nd->done_jobs += jobs;
}

void gmpd_nodeset_task_end(gmpd_nodeset *ns, uint32_t id)
{
    gmpd_node *nd = gmpd_nodeset_get(ns, id);

    if (nd && nd->tasks)
        nd->tasks--;
}

void gmpd_nodeset_move(gmpd_nodeset *ns, uint32_t from, uint32_t to,
                       uint64_t bytes)
{
    gmpd_node *a = gmpd_nodeset_get(ns, from), *b = gmpd_nodeset_get(ns, to);

    if (!a || !b || a == b)
        return;
    a->queued_bytes = sub_sat(a->queued_bytes, bytes);
    if (a->tasks)
        a->tasks--;
    b->queued_bytes += bytes;
    b->tasks++;
}

double gmpd_nodeset_capacity(const gmpd_nodeset *ns, uint32_t vcm,
                             gmpd_svc svc)
{
    if ((unsigned)svc >= GMPD_SVC_COUNT)
        return 0;
    uint32_t owner = pool_of(ns, vcm, svc);
    double sum = 0;

    for (size_t i = 0; i < ns->n; i++)
        if (serves(&ns->node[i], owner, svc))
            sum += ns->node[i].speed[svc];
    return sum;
}
