/* Client-side task: shards queued by the application thread, sent and
 * answered on the loop thread.  Every field below the mutex is guarded by
 * it. */
#ifndef GMP_CLIENT_TASK_H
#define GMP_CLIENT_TASK_H

#include "internal.h"

/* One item on its way.  A cipher update waits for its own output, so its
 * shards borrow the caller's input (no copy); the task counts their
 * writes and the update returns only once libuv is done with them.  A
 * digest update may return first, so its shards own a copy. */
typedef struct cshard {
    struct cshard *next;
    struct gmp_task *borrower;   /* set when data is the caller's */
    const uint8_t *data;
    uint32_t seq;
    uint32_t len;
    bool final;
    int refs;                /* the write and the result, loop thread only */
    int slot;                /* its shm slot (loop thread), or -1 */
    uint8_t ref[GMPC_SHM_REF_LEN]; /* the frame's payload when in a slot */
    uint64_t sent_ns;
    uint8_t own[];
} cshard;

/* What the application thread waits for (one waiter: the task's user). */
typedef enum task_wait { WAIT_NONE, WAIT_ROOM, WAIT_DONE } task_wait;

typedef struct cres {
    struct cres *next;
    uint32_t seq;
    uint32_t len;
    uint8_t data[];
} cres;

struct gmp_task {
    csess *s;
    rt *rt;
    uint64_t gen;
    uint64_t id, fresh;
    uint16_t alg;
    uint8_t flags, priority;
    uint32_t deadline_ms;
    bool digest;               /* digest or MAC: data is copied, output at final */
    bool aead;                 /* the final output ends with the tag */
    unsigned shard;
    uint64_t total_len;        /* declared at OPEN, 0 = unknown */
    unsigned q_cap;
    uint8_t *open_payload;
    size_t open_len;
    uint8_t tag[GMP_GCM_TAG_LEN];
    bool has_tag;
    cshard *fill;              /* digest bytes not yet a whole shard
                                  (application thread only, until
                                  gmp_task_free) */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int status;
    char msg[GMPC_MAX_MSG + 64];
    bool opened, final_queued, finished;
    bool lazy_open;            /* one-shot: data follows OPEN unanswered */
    bool open_pending;         /* OPEN sent, OPEN_OK not yet seen */
    int pin;                   /* the OPEN's connection, -1 before: every
                                  item follows it there, so the daemon sees
                                  the task first, and one io thread and one
                                  socket carry the task both ways (fewer
                                  wake-ups than spreading it) */
    bool kick_pending;         /* an OP_KICK is queued: no need for another */
    op *open_op;
    cshard *q_head, *q_tail;   /* queued, not yet sent */
    size_t q_bytes;
    uint32_t next_seq;
    uint64_t bytes_in;         /* cipher input so far (application thread) */
    uint32_t final_seq;        /* valid when final_queued */
    cshard *inflight_list;
    unsigned inflight, max_inflight;
    unsigned p, q;             /* server and client windows (R16) */
    uint32_t next_deliver;
    cres *ooo;                 /* results ahead of next_deliver */
    uint8_t *out;
    size_t out_cap, out_off;
    unsigned writes;           /* borrowed shards libuv still holds */
    task_wait waiting;
    uint32_t wait_seq;         /* WAIT_DONE: deliver up to here */
    size_t room;               /* WAIT_ROOM: queued + in flight bytes */
    double rtt_min_ns, bytes_per_ns;
    uint64_t last_ack_ns;
    bool pump_marked;          /* loop thread: in the session's pump list */
};

/* The application thread's two waits, checked by it and by the loop
 * thread before it wakes it (under t->mu). */
static inline bool task_done_ready(const struct gmp_task *t)
{
    return (t->status || t->next_deliver >= t->wait_seq) && t->writes == 0;
}

/* Hysteresis: the digest writer wakes once half its room is free, not for
 * every shard answered. */
static inline bool task_room_ready(const struct gmp_task *t)
{
    return t->status ||
           t->q_bytes + (size_t)t->inflight * t->shard <= t->room / 2;
}

#endif
