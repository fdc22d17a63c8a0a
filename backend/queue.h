/* Per-VCM priority queues with the R4 threshold policy (docs/scheduling.md).
 * Pure data structure: no I/O, no locks, time passed in by the caller. */
#ifndef GMPD_QUEUE_H
#define GMPD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMPD_PRIO_LEVELS 8 /* 0 = highest priority .. 7 = lowest */

/* One job (packet) header, R3: {priority, type, id, len}.  Intrusive: the
 * daemon embeds it in its own shard record. */
typedef struct gmpd_job {
    struct gmpd_job *next;
    uint8_t priority;
    uint8_t type;          /* service type, gmpd_svc */
    uint64_t id;           /* task id */
    uint32_t len;          /* payload bytes */
    uint32_t node;         /* node this job must run on (0 = any) */
    uint64_t enq_ns;       /* set by gmpd_pq_push */
    void *owner;           /* caller's task pointer, for gmpd_pq_remove_owner */
} gmpd_job;

/* Threshold of one level: over it when the packet count is above
 * max_count (0 = no count limit) or the oldest packet has waited longer
 * than max_wait_ns (0 = no wait limit). */
typedef struct gmpd_threshold {
    uint32_t max_count;
    uint64_t max_wait_ns;
} gmpd_threshold;

typedef struct gmpd_pqueue gmpd_pqueue;

gmpd_pqueue *gmpd_pq_new(void);
void gmpd_pq_free(gmpd_pqueue *q);   /* does not free jobs */
void gmpd_pq_push(gmpd_pqueue *q, gmpd_job *j, uint64_t now_ns);
/* Next job by R4: levels over threshold are served exclusively, highest
 * first, until they drop below; otherwise a sweep from high to low takes
 * one job per non-empty level in turn, resuming where it left off.  A job
 * for which accept(job, arg) is false is passed over (its node is busy),
 * and so is every later job of the same task (order within a task holds).
 * accept may be NULL.  Returns NULL when nothing is eligible. */
gmpd_job *gmpd_pq_pop(gmpd_pqueue *q, uint64_t now_ns,
                      bool (*accept)(const gmpd_job *, void *), void *arg);
void gmpd_pq_set_threshold(gmpd_pqueue *q, unsigned level, gmpd_threshold t);
gmpd_threshold gmpd_pq_get_threshold(const gmpd_pqueue *q, unsigned level);
size_t gmpd_pq_depth(const gmpd_pqueue *q, int level); /* level -1: all */
uint64_t gmpd_pq_bytes(const gmpd_pqueue *q);
/* Unlink every job whose owner == owner; calls drop(job, arg) for each. */
size_t gmpd_pq_remove_owner(gmpd_pqueue *q, const void *owner,
                            void (*drop)(gmpd_job *, void *), void *arg);
/* Is level over its threshold now? (for status displays and tests) */
bool gmpd_pq_over(const gmpd_pqueue *q, unsigned level, uint64_t now_ns);

#endif
