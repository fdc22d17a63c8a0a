/* Per-VCM priority queues and the R4 dispatcher policy.
 *
 * Eight FIFOs, one per priority level, each an intrusive singly-linked list
 * through gmpd_job.next.  gmpd_pq_pop chooses the level:
 *
 *   1. Any non-empty level over its threshold is served exclusively, highest
 *      priority first, for as long as it stays over.
 *   2. Otherwise a round-robin sweep: `cursor` names the level to serve next;
 *      the first level at or after it with an eligible job gives one job and
 *      the cursor moves past it.  Step 1 never moves the cursor, so after an
 *      over-threshold episode the sweep picks up where it left off.
 *
 * The policy is work-conserving: when every job of an over-threshold level
 * is refused by `accept` (their nodes are busy), the next over level and
 * then the sweep may serve, since nothing in the over level could run now.
 * See docs/scheduling.md. */
#include "queue.h"

#include <stdlib.h>

/* Bounds that keep one pop cheap whatever the queue holds. */
#define SCAN_MAX 64       /* jobs examined per level per pop */
#define SKIP_MAX 16       /* distinct refused tasks remembered per level */

typedef struct pq_level {
    gmpd_job *head;
    gmpd_job *tail;
    size_t count;
    uint64_t bytes;
    gmpd_threshold th;
} pq_level;

struct gmpd_pqueue {
    pq_level lv[GMPD_PRIO_LEVELS];
    unsigned cursor;     /* next level the sweep serves */
    size_t count;
    uint64_t bytes;
};

/* Refused task ids of the level being scanned. */
typedef struct skipset {
    uint64_t id[SKIP_MAX];
    unsigned n;
} skipset;

gmpd_pqueue *gmpd_pq_new(void)
{
    return calloc(1, sizeof(gmpd_pqueue));
}

void gmpd_pq_free(gmpd_pqueue *q)
{
    free(q);
}

/* Out-of-range priorities go to the lowest level rather than being lost. */
static unsigned level_of(const gmpd_job *j)
{
    return j->priority < GMPD_PRIO_LEVELS ? j->priority
                                          : GMPD_PRIO_LEVELS - 1;
}

void gmpd_pq_push(gmpd_pqueue *q, gmpd_job *j, uint64_t now_ns)
{
    pq_level *l = &q->lv[level_of(j)];

    j->next = NULL;
    j->enq_ns = now_ns;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->count++;
    l->bytes += j->len;
    q->count++;
    q->bytes += j->len;
}

/* Unlinks j, whose predecessor is prev (NULL when j is the head). */
static void unlink_job(gmpd_pqueue *q, pq_level *l, gmpd_job *prev,
                       gmpd_job *j)
{
    if (prev)
        prev->next = j->next;
    else
        l->head = j->next;
    if (l->tail == j)
        l->tail = prev;
    j->next = NULL;
    l->count--;
    l->bytes -= j->len;
    q->count--;
    q->bytes -= j->len;
}

static bool level_over(const pq_level *l, uint64_t now_ns)
{
    if (!l->head)
        return false;
    if (l->th.max_count && l->count > l->th.max_count)
        return true;
    /* The head is the oldest job: pushes append and enq_ns is set on push.
     * A clock that steps back reads as no wait at all. */
    return l->th.max_wait_ns && now_ns > l->head->enq_ns &&
           now_ns - l->head->enq_ns > l->th.max_wait_ns;
}

static bool skip_has(const skipset *s, uint64_t id)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->id[i] == id)
            return true;
    return false;
}

/* The first job of level l that accept takes, unlinked, or NULL.  Once a
 * task has a job refused, its later jobs are passed over too, so a task's
 * jobs never overtake each other.  Stops when it cannot remember another
 * refused task, since passing one over unremembered could reorder it. */
static gmpd_job *take(gmpd_pqueue *q, pq_level *l,
                      bool (*accept)(const gmpd_job *, void *), void *arg)
{
    skipset skip = { .n = 0 };
    gmpd_job *prev = NULL;
    unsigned seen = 0;

    for (gmpd_job *j = l->head; j && seen < SCAN_MAX;
         prev = j, j = j->next, seen++) {
        if (skip_has(&skip, j->id))
            continue;
        if (!accept || accept(j, arg)) {
            unlink_job(q, l, prev, j);
            return j;
        }
        if (skip.n == SKIP_MAX)
            return NULL;
        skip.id[skip.n++] = j->id;
    }
    return NULL;
}

static gmpd_job *pop_over(gmpd_pqueue *q, uint64_t now_ns,
                          bool (*accept)(const gmpd_job *, void *), void *arg)
{
    for (unsigned i = 0; i < GMPD_PRIO_LEVELS; i++) {
        if (!level_over(&q->lv[i], now_ns))
            continue;
        gmpd_job *j = take(q, &q->lv[i], accept, arg);
        if (j)
            return j;
    }
    return NULL;
}

static gmpd_job *pop_sweep(gmpd_pqueue *q,
                           bool (*accept)(const gmpd_job *, void *),
                           void *arg)
{
    for (unsigned k = 0; k < GMPD_PRIO_LEVELS; k++) {
        unsigned i = (q->cursor + k) % GMPD_PRIO_LEVELS;

        if (!q->lv[i].head)
            continue;
        gmpd_job *j = take(q, &q->lv[i], accept, arg);
        if (j) {
            q->cursor = (i + 1) % GMPD_PRIO_LEVELS;
            return j;
        }
    }
    return NULL;
}

gmpd_job *gmpd_pq_pop(gmpd_pqueue *q, uint64_t now_ns,
                      bool (*accept)(const gmpd_job *, void *), void *arg)
{
    if (!q->count)
        return NULL;
    gmpd_job *j = pop_over(q, now_ns, accept, arg);
    return j ? j : pop_sweep(q, accept, arg);
}

void gmpd_pq_set_threshold(gmpd_pqueue *q, unsigned level, gmpd_threshold t)
{
    if (level < GMPD_PRIO_LEVELS)
        q->lv[level].th = t;
}

gmpd_threshold gmpd_pq_get_threshold(const gmpd_pqueue *q, unsigned level)
{
    gmpd_threshold none = { 0, 0 };

    return level < GMPD_PRIO_LEVELS ? q->lv[level].th : none;
}

size_t gmpd_pq_depth(const gmpd_pqueue *q, int level)
{
    if (level < 0)
        return q->count;
    return level < GMPD_PRIO_LEVELS ? q->lv[level].count : 0;
}

uint64_t gmpd_pq_bytes(const gmpd_pqueue *q)
{
    return q->bytes;
}

static size_t remove_from(gmpd_pqueue *q, pq_level *l, const void *owner,
                          void (*drop)(gmpd_job *, void *), void *arg)
{
    gmpd_job *prev = NULL, *j = l->head;
    size_t n = 0;

    while (j) {
        gmpd_job *next = j->next;   /* drop may free j */

        if (j->owner == owner) {
            unlink_job(q, l, prev, j);
            if (drop)
                drop(j, arg);
            n++;
        } else {
            prev = j;
        }
        j = next;
    }
    return n;
}

size_t gmpd_pq_remove_owner(gmpd_pqueue *q, const void *owner,
                            void (*drop)(gmpd_job *, void *), void *arg)
{
    size_t n = 0;

    for (unsigned i = 0; i < GMPD_PRIO_LEVELS; i++)
        n += remove_from(q, &q->lv[i], owner, drop, arg);
    return n;
}

bool gmpd_pq_over(const gmpd_pqueue *q, unsigned level, uint64_t now_ns)
{
    return level < GMPD_PRIO_LEVELS && level_over(&q->lv[level], now_ns);
}
