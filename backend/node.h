/* Compute node descriptors and speed-proportional placement (R5, R6).
 * node_i = R(E_i, B_i, {T_j, P_j, S_j}): id, owner VCM (0 = free pool) and
 * per service type its speed and status.  Pure: no I/O, no locks. */
#ifndef GMPD_NODE_H
#define GMPD_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gmpd_svc {
    GMPD_SVC_HASH = 0,
    GMPD_SVC_CIPHER = 1,
    GMPD_SVC_RANDOM = 2,
    GMPD_SVC_COUNT
} gmpd_svc;

typedef enum gmpd_node_status {
    GMPD_NODE_UP = 0,
    GMPD_NODE_DOWN = 1,     /* takes no new tasks, e.g. being removed */
} gmpd_node_status;

#define GMPD_MAX_NODES 256

typedef struct gmpd_node {
    uint32_t id;                     /* E_i, >= 1 */
    uint32_t owner_vcm;              /* B_i, 0 = free */
    double speed[GMPD_SVC_COUNT];    /* P_j, bytes/s (relative is fine) */
    uint8_t status[GMPD_SVC_COUNT];  /* S_j, gmpd_node_status */
    /* live accounting */
    uint64_t queued_bytes;           /* placed but not finished */
    uint32_t queued_jobs;
    uint32_t tasks;                  /* tasks bound to the node */
    uint64_t done_bytes;
    uint64_t done_jobs;
} gmpd_node;

typedef struct gmpd_nodeset gmpd_nodeset;

gmpd_nodeset *gmpd_nodeset_new(void);
void gmpd_nodeset_free(gmpd_nodeset *ns);
/* Returns 0, or -1 when id is 0, taken, or the set is full. */
int gmpd_nodeset_add(gmpd_nodeset *ns, uint32_t id,
                     const double speed[GMPD_SVC_COUNT]);
/* A removed node takes no new work; remove fails (-1) while it is unknown. */
int gmpd_nodeset_remove(gmpd_nodeset *ns, uint32_t id);
/* Take a node out of service (DOWN: no new tasks, bound work finishes)
 * or back (UP), for every service type.  -1 when the id is unknown. */
int gmpd_nodeset_set_status(gmpd_nodeset *ns, uint32_t id,
                            gmpd_node_status st);
gmpd_node *gmpd_nodeset_get(gmpd_nodeset *ns, uint32_t id);
size_t gmpd_nodeset_count(const gmpd_nodeset *ns);
gmpd_node *gmpd_nodeset_at(gmpd_nodeset *ns, size_t i);
/* Assign a node to a VCM (owner 0 returns it to the free pool).  Work
 * already bound to the node keeps running; placement changes at once. */
int gmpd_nodeset_assign(gmpd_nodeset *ns, uint32_t id, uint32_t vcm);
/* Choose a node for a new task of `len` bytes (len 0 = unknown: use one
 * shard's worth) of VCM `vcm`: among UP nodes owned by vcm, or when it owns
 * none, among UP free nodes, the one that would finish soonest,
 * min((queued_bytes + len) / speed[svc]), ties to the lowest id.  Over many
 * equal tasks each node's share is proportional to its speed.  Adds len to
 * the node's queued_bytes and counts the task.  NULL if none is UP. */
gmpd_node *gmpd_nodeset_place(gmpd_nodeset *ns, uint32_t vcm, gmpd_svc svc,
                              uint64_t len);
/* Account finished work (or the remainder of an aborted task). */
void gmpd_nodeset_done(gmpd_nodeset *ns, uint32_t id, uint64_t bytes,
                       uint32_t jobs);
void gmpd_nodeset_task_end(gmpd_nodeset *ns, uint32_t id);
/* A task moves from node `from` to node `to` with `bytes` still to do. */
void gmpd_nodeset_move(gmpd_nodeset *ns, uint32_t from, uint32_t to,
                       uint64_t bytes);
/* Sum of the speeds of the nodes serving vcm for svc (R6 throughput). */
double gmpd_nodeset_capacity(const gmpd_nodeset *ns, uint32_t vcm,
                             gmpd_svc svc);

#endif
