/* gmpoold internals shared by net.c, session.c, sched.c, admin.c, main.c.
 *
 * Threads (R17): the main thread runs the acceptor loop (listeners, admin
 * socket, signals); io threads each run a libuv loop owning a set of
 * connections (read, reassemble frames, enqueue, write replies); worker
 * threads are the local compute nodes.  The scheduler core (queue.c,
 * node.c) is guarded by one mutex in sched.c. */
#ifndef GMPD_H
#define GMPD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "engine.h"
#include "gmpool.h"
#include "load.h"
#include "node.h"
#include "proto.h"
#include "queue.h"
#include "store.h"

/* ---- log.c ---- */
void gmpd_log_set_level(int level);
void gmpd_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define GMPD_ERR 0
#define GMPD_WARN 1
#define GMPD_INFO 2
#define GMPD_DEBUG 3

typedef struct gmpd_io gmpd_io;
typedef struct gmpd_conn gmpd_conn;
typedef struct gmpd_session gmpd_session;
typedef struct gmpd_task gmpd_task;
typedef struct gmpd_shard gmpd_shard;
typedef struct gmpd_sdf_state gmpd_sdf_state;

/* A client's shared-memory region (GMPC_T_SHM), mapped once per session
 * and kept while any shard computes in it. */
typedef struct gmpd_shm {
    atomic_int refs;
    uint8_t *base;
    uint32_t size;
} gmpd_shm;

/* One unit of work: a data shard or the final step of a task. */
struct gmpd_shard {
    gmpd_job job;            /* job.owner = task; must stay first */
    gmpd_shard *next;        /* reorder buffer / up-queue link */
    gmpd_task *task;
    gmpd_conn *conn;         /* reply goes here (holds a reference) */
    uint32_t seq;
    bool final;
    int status;              /* result status */
    uint32_t len;            /* input bytes */
    uint32_t out_len;        /* output bytes (in data, in place) */
    uint32_t cap;
    gmpd_engine_pos pos;     /* parallel tasks: where the item sits */
    uint8_t *buf;            /* input, then the output after it: data, or
                                the client's slot in shm */
    gmpd_shm *shm;           /* set when buf is in the client's region */
    uint32_t shm_off;
    uint8_t ref[GMPC_SHM_REF_LEN]; /* the result's reference, when shm */
    uint8_t data[];          /* cap bytes when not shm */
};

typedef enum task_state { TASK_OPEN, TASK_DONE, TASK_FAILED } task_state;

struct gmpd_task {
    pthread_mutex_t mu;
    atomic_int refs;
    gmpd_session *sess;
    uint64_t id;
    uint16_t alg;
    uint8_t priority;
    uint8_t flags;
    gmpd_svc svc;
    uint32_t node;           /* node the task is bound to */
    uint32_t move_to;        /* serial: node it moves to once none of its
                                jobs is left on `node` (scheduler lock) */
    uint32_t deadline_ms;    /* relative to arrival, 0 = none */
    uint64_t ttsa_id;        /* id in the TTSA model, 0 = not in it */
    uint64_t placed_len;     /* bytes accounted on the node */
    uint64_t done_len;       /* serial: bytes computed (by its node) */
    gmpd_engine_ctx *ctx;    /* chaining state, used by one worker at a
                                time (a serial task may change node) */
    /* Parallel modes (CTR, ECB, CBC decryption): items run on any node,
     * each from its stream position; a node other than t->node computes
     * with its own context, made on first use from the kept key. */
    bool parallel;
    gmpd_engine_pos stream;  /* position of the next item released */
    gmpd_engine_ctx **node_ctx; /* by node id, 1..n_node_ctx-1 */
    uint32_t n_node_ctx;
    gmpd_engine_args args;   /* key and iv point into keep[] */
    uint8_t keep[GMP_MAX_KEY_LEN + GMP_MAX_IV_LEN];
    task_state state;
    int status;
    uint32_t next_seq;       /* next sequence to release to the queue */
    gmpd_shard *pending;     /* out-of-order shards, sorted by seq */
    uint32_t n_pending;
    bool final_seen;
    uint32_t final_seq;      /* valid when final_seen */
    bool sched_ended;        /* counted out of the scheduler */
};

struct gmpd_session {
    pthread_mutex_t mu;
    atomic_int refs;
    uint64_t id;
    gmpd_tenant tenant;
    int conns;               /* live connections */
    /* open tasks: small open-addressed table keyed by task id */
    gmpd_task **tasks;
    uint32_t tasks_cap;
    uint32_t n_tasks;
    _Atomic uint64_t buffered; /* shard bytes held for this session */
    atomic_bool logged_in;   /* user PIN given (token.c) */
    gmpd_sdf_state *sdf;     /* SDF access rights, agreements (sdf.c) */
    gmpd_shm *shm;           /* shared-memory lane, under mu; NULL = none */
    /* anti-replay window over task freshness values */
    uint64_t fresh_top;
    uint64_t fresh_bits[16]; /* 1024 values below fresh_top */
    gmpd_session *next;      /* registry link */
};

/* Connection owned by one io thread. */
struct gmpd_conn {
    uv_stream_t *stream;     /* uv_tcp_t or uv_pipe_t, allocated */
    gmpd_io *io;
    atomic_int refs;
    bool closing;
    bool doomed;             /* an error that closes it was sent: read no more */
    bool authed;
    bool is_admin;
    uint8_t snonce[GMPC_NONCE_LEN];
    gmpd_session *sess;
    gmpc_inbuf in;           /* reassembly buffer */
    uv_timer_t auth_timer;
    int handles;             /* libuv handles not yet closed */
    gmpd_conn *prev, *next;  /* the io thread's list */
    struct wbatch *batch;    /* results to write when the io thread's
                                current wake-up is done */
    char peer[64];
};

typedef struct gmpd_daemon {
    gmpd_config cfg;
    gmpd_store *store;
    gmpd_load *load;
    char host[64];
    atomic_bool shutting_down;
    uv_loop_t *main_loop;
    gmpd_io **io;
    int n_io;
    atomic_uint next_io;
    atomic_int shm_regions;       /* client regions mapped now */
    _Atomic uint64_t shm_items;   /* items computed in them, ever */
} gmpd_daemon;

extern gmpd_daemon *gmpd;

/* ---- net.c ---- */
int gmpd_net_start(void);                /* io threads */
int gmpd_net_listen(void);              /* listeners on the main loop */
void gmpd_net_stop_listening(void);
void gmpd_net_close_all(void);           /* tell io threads to close conns */
void gmpd_net_join(void);
/* Called from workers: queue a finished shard for its connection's io
 * thread to answer. */
void gmpd_net_post_result(gmpd_shard *s);
/* The same for a list (linked by next): one lock and one wake-up per io
 * thread instead of one per shard. */
void gmpd_net_post_results(gmpd_shard *list);
void gmpd_conn_unref(gmpd_conn *c);
size_t gmpd_net_conn_count(void);

/* ---- session.c ---- */
gmpd_session *gmpd_session_new(const gmpd_tenant *t);
gmpd_session *gmpd_session_find(uint64_t id, const char *tenant);
void gmpd_session_conn_gone(gmpd_session *s);
void gmpd_session_unref(gmpd_session *s);
/* Anti-replay; returns GMP_OK and records the value, or GMP_ERR_REPLAY. */
int gmpd_session_fresh(gmpd_session *s, uint64_t fresh);
int gmpd_task_open(gmpd_session *s, const gmpc_hdr *h, const gmpc_open *o,
                   gmpd_task **out);
gmpd_task *gmpd_task_get(gmpd_session *s, uint64_t id);  /* +1 ref */
void gmpd_task_unref(gmpd_task *t);
/* Hand a shard (seq order may be arbitrary) to the task; releases every
 * shard now in sequence to the scheduler.  Takes ownership of s. */
int gmpd_task_add_shard(gmpd_task *t, gmpd_shard *s);
/* Fail the task: pending and queued shards are answered with status; it
 * stays in the table so late shards get the same status. */
void gmpd_task_abort(gmpd_task *t, int status);
/* Abort and unlink (client ABORT, session end). */
void gmpd_task_close(gmpd_task *t, int status);
/* The final result was answered: unlink the task from its session. */
void gmpd_task_finish(gmpd_task *t);
uint32_t gmpd_session_window(void);
/* Maps the client's memfd (sealed against shrinking, at least size bytes)
 * as the session's region; the caller keeps fd.  GMP_OK, or an error
 * status with *why saying what was wrong. */
int gmpd_session_attach_shm(gmpd_session *s, int fd, uint32_t size,
                            const char **why);
/* NULL with *rc = GMP_ERR_LIMIT (session buffer full), GMP_ERR_NOMEM, or
 * GMP_ERR_PROTO (a shared-memory reference that is not in the region). */
gmpd_shard *gmpd_shard_new(gmpd_task *t, gmpd_conn *c, const gmpc_hdr *h,
                           const uint8_t *payload, int *rc);
void gmpd_shard_free(gmpd_shard *s);

/* ---- sched.c ---- */
/* How TTSA's ScaleUp/ScaleDown start and stop a compute node.  Local
 * worker threads implement it by unparking/parking (sched.c); libvirt
 * VCMs will implement the same two hands.  start: the node takes new
 * tasks again (non-zero = could not, ScaleUp tries its next step).  stop:
 * the node takes no new tasks; work already bound to it still finishes.
 * Both are called with the scheduler lock held and must not block. */
typedef struct gmpd_node_ops {
    const char *name;
    int (*start)(void *arg, uint32_t node);
    void (*stop)(void *arg, uint32_t node);
} gmpd_node_ops;

int gmpd_sched_start(int n_nodes);
void gmpd_sched_stop(void);
void gmpd_sched_submit(gmpd_shard *s);
/* Place a new task on a node: by TTSA when it has a deadline (sets
 * t->ttsa_id), else in proportion to node speed.  Sets t->node (0 when no
 * node serves it). */
void gmpd_sched_place(gmpd_task *t, uint64_t len);
/* A task of len bytes (declared at OPEN) came in: a small one makes
 * busy nodes yield more often for a while (sched.c, "small jobs"). */
void gmpd_sched_note_open(uint64_t len);
/* Periodic TTSA work (band check, ScaleDown); main loop timer. */
void gmpd_sched_tick(void);
/* Milliseconds between ticks. */
uint64_t gmpd_sched_tick_ms(void);
/* admin `sched`: window, band, variant, nodes, decisions. */
void gmpd_sched_ttsa_status(char *out, size_t cap);
void gmpd_sched_task_end(gmpd_task *t);
/* Remove queued jobs of a task (abort); returns how many. */
size_t gmpd_sched_cancel(gmpd_task *t);
bool gmpd_sched_idle(void);
uint32_t gmpd_sched_active_tasks(void);
int gmpd_sched_nodes(void);
/* admin */
int gmpd_sched_assign(uint32_t node, uint32_t vcm);
int gmpd_sched_node_status(uint32_t node, bool up);
int gmpd_sched_set_threshold(uint32_t vcm, unsigned level, uint32_t count,
                             uint32_t wait_ms);
void gmpd_sched_status(char *out, size_t cap);  /* text table */
void gmpd_sched_publish_load(void);

/* ---- keys.c ---- */
/* One KEY frame: validates, runs it on the session's VCM keystore and
 * encodes the reply payload. */
int gmpd_key_request(gmpd_session *s, const uint8_t *p, size_t n,
                     uint8_t *out, size_t cap, size_t *out_len);
/* A key the session may use (its VCM; private ones only after login),
 * else GMP_ERR_NOT_FOUND.  value may be NULL. */
int gmpd_key_find(gmpd_session *s, uint32_t handle, gmpd_key_attr *a,
                  uint8_t *value, size_t cap, size_t *len);

/* ---- sdf.c ---- */
/* KEY operations GMPC_SDF_FIRST..GMPC_SDF_LAST, the SDF front end's:
 * internal keys by index, access rights, SM2, session keys, files. */
int gmpd_sdf_request(gmpd_session *s, uint8_t op, gmpc_rbuf *r,
                     gmpc_wbuf *w);
/* The session's SDF state, when it ends. */
void gmpd_sdf_session_free(gmpd_session *s);
/* admin `sdf ...` (sdfadmin.c): the operator's side of the SDF keys;
 * the reply text goes to out (cap bytes, NUL-terminated). */
int gmpd_sdf_admin(int argc, char **argv, char *out, size_t cap);

/* ---- token.c: the tenant's token, user PIN and login state ---- */
#define GMPD_PIN_MIN GMP_PIN_MIN
#define GMPD_PIN_MAX GMP_PIN_MAX
#define GMPD_PIN_TRIES 10
typedef struct gmpd_token_state {
    bool pin_set, locked, logged_in;
    uint32_t fails;
} gmpd_token_state;
int gmpd_pin_set(const char *tenant, const uint8_t *pin, size_t len);
/* A verifier record of a PIN or password (PBKDF2-HMAC-SM3), and the check
 * of one with its lock-out policy: GMP_OK, GMP_ERR_PIN, GMP_ERR_PIN_LOCKED
 * or GMP_ERR_PIN_UNSET; *fails is the count to store back. */
#define GMPD_PIN_REC_LEN 53
int gmpd_pin_record(const uint8_t *pin, size_t len,
                    uint8_t rec[GMPD_PIN_REC_LEN]);
int gmpd_pin_check(const gmpd_pin *p, const uint8_t *pin, size_t len,
                   uint32_t *fails);
int gmpd_token_login(gmpd_session *s, const uint8_t *pin, size_t len);
void gmpd_token_logout(gmpd_session *s);
int gmpd_token_set_pin(gmpd_session *s, const uint8_t *old, size_t old_len,
                       const uint8_t *pin, size_t len);
int gmpd_token_info(gmpd_session *s, gmpd_token_state *out);
/* Private keys are invisible to a session that has not logged in. */
bool gmpd_token_may_see(gmpd_session *s, uint32_t key_flags);

/* ---- admin.c ---- */
/* Runs one admin command (argv) and writes the text reply. */
int gmpd_admin_run(int argc, char **argv, char *out, size_t cap);

#endif
