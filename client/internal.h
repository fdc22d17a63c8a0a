/* libgmpool-client internals.
 *
 * One background libuv loop thread per process (rt.c) owns every socket.
 * Application threads post ops to it through a mutex-guarded list plus
 * uv_async_send and wait on a condition variable.  A csess (session.c) is a
 * client's pool of connections sharing one daemon session (R15); a task
 * (task.c) cuts data into shards and keeps x = min(p - s, q) more in
 * flight as results return (R16). */
#ifndef GMP_CLIENT_INTERNAL_H
#define GMP_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "gmpool.h"
#include "proto.h"
#include "util.h"

#define GMP_MAX_CONNS 16

typedef struct rt rt;
typedef struct csess csess;
typedef struct cconn cconn;
typedef struct op op;

/* Thread-local detail of the last error, for gmp_client_last_error(). */
int gmp_fail(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One control frame (PING, RANDOM, KEY) and its reply payload (malloc'd,
 * the caller frees), over the client's session. */
int gmp_ctrl(gmp_client *c, uint8_t type, const void *payload, size_t len,
             uint8_t **reply, size_t *reply_len);

/* One KEY frame (keystore, token, SDF operations): the encoded request
 * and its reply payload (malloc'd, the caller frees). */
int gmp_key_ctrl(gmp_client *c, const gmpc_wbuf *w, uint8_t **reply,
                 size_t *reply_len);

/* The client's session of this process generation, or NULL. */
csess *gmp_client_sess(gmp_client *c);

/* ---- ops: the only way application threads touch the loop ---- */
typedef enum op_kind {
    OP_CTRL,        /* send one control frame, wait for its reply */
    OP_OPEN,        /* open a task */
    OP_KICK,        /* task has new shards queued */
    OP_TASK_FREE,   /* abort if needed, unlink */
    OP_CLOSE,       /* close the session's connections */
    OP_RELOGIN      /* the loop's own: repeat the user PIN login on a new
                       daemon session */
} op_kind;

struct op {
    op *next;
    op_kind kind;
    csess *s;
    struct gmp_task *task;
    /* OP_CTRL request/reply */
    gmpc_hdr hdr;
    uint8_t *payload;
    size_t payload_len;
    uint8_t *reply;          /* malloc'd reply payload */
    size_t reply_len;
    gmpc_hdr reply_hdr;
    /* completion */
    bool done;
    int status;
    char msg[GMPC_MAX_MSG + 1];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool wait;               /* someone waits; else loop frees it */
};

/* rt.c */
rt *rt_get(uint64_t *gen);
uint64_t rt_generation(void);
uv_loop_t *rt_loop(rt *r);
/* Post an op; when op->wait, blocks until the loop completes it. */
int rt_submit(rt *r, op *o);
op *op_new(op_kind kind, csess *s);
void op_free(op *o);
void op_complete(op *o, int status, const char *msg);

/* session.c */
typedef struct csess_cfg {
    gmpc_addr addr;
    char server[256];
    char tenant[GMPC_MAX_NAME + 1];
    uint8_t secret[64];
    size_t secret_len;
    unsigned n_conns;
    unsigned shard;
    unsigned window;
    unsigned timeout_ms;
} csess_cfg;

csess *csess_new(rt *r, const csess_cfg *cfg);
/* After OP_CLOSE (or in a forked child, which only frees). */
void csess_free(csess *s);
/* loop thread only: */
void csess_handle_op(op *o);
/* One control frame on the next connection; the payload is copied. */
int csess_send(csess *s, gmpc_hdr *h, const void *payload, size_t len);
/* The same on connection *conn when >= 0, else on the next one, whose
 * index goes to *conn. */
int csess_send_on(csess *s, int *conn, gmpc_hdr *h, const void *payload,
                  size_t len);
/* Several shard frames in one write on one connection (pin, when >= 0,
 * says which); their payloads are not copied: written(arg) is called for
 * each once libuv is done with them, unless *sync says the socket took
 * them all at once. */
typedef struct csend {
    gmpc_hdr h;
    const void *payload;
    size_t len;
    void *arg;
} csend;
int csess_send_many(csess *s, int pin, csend *items, unsigned n,
                    void (*written)(void *), bool *sync);
/* The session's shared-memory region (shm.h), or NULL. */
struct cshm *csess_shm(csess *s);
/* The connection large tasks open on: the region's (0) while the session
 * has one, else -1 (the next connection). */
int csess_stream_conn(csess *s);
/* Pump the task once the frames of the current read are handled, so the
 * shards that several replies free go out in one write. */
void csess_pump_later(csess *s, struct gmp_task *t);
void csess_route_add(csess *s, uint64_t id, struct gmp_task *t, op *ctrl);
void csess_route_del(csess *s, uint64_t id);
uint64_t csess_new_id(csess *s);
void csess_outstanding(csess *s, int delta);
/* Any thread: after a successful login the PIN is kept (cleansed on
 * logout, a failed repeat, close) so that the login survives a daemon
 * restart: the next session logs in again before any other request.
 * len 0 forgets it. */
void csess_remember_pin(csess *s, const void *pin, size_t len);
bool csess_logged_in(csess *s);

/* task.c, loop thread only */
/* An OP_KICK arrived: clear the pending mark, pump when connected. */
void task_kicked(struct gmp_task *t, bool ready);
void task_on_frame(struct gmp_task *t, const gmpc_hdr *h, const uint8_t *p);
void task_pump(struct gmp_task *t);
void task_fail(struct gmp_task *t, int status, const char *msg);
void task_on_free(struct gmp_task *t, op *o);
void task_send_open(struct gmp_task *t, op *o);
/* client.c: frees a task (loop thread, after task_on_free). */
void task_destroy(struct gmp_task *t);

#endif
