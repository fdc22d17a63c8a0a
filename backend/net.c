/* The multi-reactor (R17).  The main loop accepts and hands each socket to
 * an io thread; an io thread reads, reassembles frames, authenticates,
 * enqueues shards and writes the replies that workers post back to it. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "gmpd.h"
#include "gmpool.h"
#include "util.h"
#include "uvwrite.h"

#define AUTH_TIMEOUT_MS 10000
#define IN_CHUNK (256 * 1024)
#define MAX_RANDOM 65536u

typedef struct fd_item {
    struct fd_item *next;
    uv_os_sock_t fd;
    bool is_unix;
} fd_item;

/* RESULT and FINAL_OK frames of one connection gathered during one wake-up
 * of its io thread and written with one writev: one syscall and one
 * wake-up of the client per batch instead of per shard. */
#define BATCH_MAX 64

typedef struct wbatch {
    uv_write_t req;
    gmpd_conn *conn;
    struct wbatch *next;     /* the io thread's batches to flush */
    unsigned n, nb;
    gmpd_shard *shards[BATCH_MAX];
    uint8_t hdrs[BATCH_MAX][GMPC_HDR_LEN];
    uv_buf_t bufs[2 * BATCH_MAX];
} wbatch;

struct gmpd_io {
    uv_loop_t loop;
    uv_async_t async;
    pthread_t th;
    pthread_mutex_t mu;
    fd_item *fds;            /* new connections */
    gmpd_shard *results;     /* the up queue from the workers */
    gmpd_shard **results_tail;
    bool close_all, stop;
    gmpd_conn *conns;
    atomic_size_t n_conns;
    wbatch *batches;         /* io thread only */
};

typedef struct listener {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    bool is_unix, is_admin;
    char path[108];
} listener;

static listener g_listeners[GMPD_MAX_LISTEN + 1];
static int g_n_listeners;
static gmpd_conn *g_admin_conns; /* admin connections live on the main loop */

/* ---- writing ---- */

typedef struct wreq {
    uv_write_t req;
    gmpd_conn *conn;
    gmpd_shard *shard;       /* result payload lives in the shard */
    bool close_after;
    uint8_t hdr[GMPC_HDR_LEN];
    uint8_t payload[];
} wreq;

static void conn_close(gmpd_conn *c);

static void on_write(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    gmpd_conn *c = w->conn;
    if (w->shard)
        gmpd_shard_free(w->shard);
    if (status < 0 || w->close_after)
        conn_close(c);
    gmpd_conn_unref(c);
    free(w);
}

static void send_raw(gmpd_conn *c, gmpc_hdr *h, const void *payload,
                     size_t len, gmpd_shard *sh, bool close_after)
{
    bool copy = payload && !sh;
    wreq *w = malloc(sizeof *w + (copy ? len : 0));
    if (!w) {
        gmpd_shard_free(sh);
        conn_close(c);
        return;
    }
    w->conn = c;
    atomic_fetch_add(&c->refs, 1);
    w->shard = sh;
    w->close_after = close_after;
    h->len = (uint32_t)len;
    gmpc_hdr_encode(h, w->hdr);
    if (copy && len)
        memcpy(w->payload, payload, len);
    uv_buf_t bufs[2] = {uv_buf_init((char *)w->hdr, GMPC_HDR_LEN),
                        uv_buf_init(copy ? (char *)w->payload
                                         : (char *)payload,
                                    (unsigned)len)};
    if (uv_write(&w->req, c->stream, bufs, len ? 2 : 1, on_write) < 0) {
        if (sh)
            gmpd_shard_free(sh);
        conn_close(c);
        gmpd_conn_unref(c);
        free(w);
    }
}

static void send_frame(gmpd_conn *c, uint8_t type, const gmpc_hdr *req,
                       const void *payload, size_t len)
{
    gmpc_hdr h = {.type = type};
    if (req) {
        h.task_id = req->task_id;
        h.seq = req->seq;
        h.alg = req->alg;
    }
    send_raw(c, &h, payload, len, NULL, false);
}

/* An error reply with a code and a message; one log line per rejection. */
static void send_error(gmpd_conn *c, const gmpc_hdr *req, int status,
                       bool close, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void send_error(gmpd_conn *c, const gmpc_hdr *req, int status,
                       bool close, const char *fmt, ...)
{
    char msg[GMPC_MAX_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gmpd_log(status == GMP_ERR_SHUTDOWN ? GMPD_DEBUG : GMPD_WARN,
             "reject %s%s%s: %s (%s)%s", c->peer,
             c->sess ? " tenant " : "", c->sess ? c->sess->tenant.name : "",
             msg, gmp_strerror(status), close ? ", closing" : "");
    if (c->closing)
        return;
    gmpc_hdr h = {.type = GMPC_T_ERROR, .status = (uint16_t)status,
                  .flags = close ? GMPC_F_CLOSE : 0};
    if (req) {
        h.task_id = req->task_id;
        h.seq = req->seq;
        h.alg = req->alg;
    }
    send_raw(c, &h, msg, strlen(msg), NULL, close);
    if (close) {
        /* Frames already read behind this one must not run either (a
         * pipelined second AUTH guess, say). */
        c->doomed = true;
        uv_read_stop(c->stream);
    }
}

/* ---- connection lifetime ---- */

void gmpd_conn_unref(gmpd_conn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    gmpc_inbuf_free(&c->in);
    free(c->stream);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    gmpd_conn *c = h->data;
    if (--c->handles > 0)
        return;
    gmpd_io *io = c->io;
    gmpd_conn **head = io ? &io->conns : &g_admin_conns;
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (io)
        atomic_fetch_sub(&io->n_conns, 1);
    if (c->sess)
        gmpd_session_conn_gone(c->sess);
    c->sess = NULL;
    gmpd_conn_unref(c);
}

static void conn_close(gmpd_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_read_stop(c->stream);
    uv_close((uv_handle_t *)c->stream, on_handle_closed);
    uv_close((uv_handle_t *)&c->auth_timer, on_handle_closed);
}

static void on_auth_timeout(uv_timer_t *t)
{
    gmpd_conn *c = t->data;
    if (!c->authed)
        send_error(c, NULL, GMP_ERR_NOAUTH, true,
                   "no authentication within %d ms", AUTH_TIMEOUT_MS);
}

/* ---- frame handlers ---- */

static void handle_auth(gmpd_conn *c, const gmpc_hdr *h, const uint8_t *p)
{
    gmpc_auth a;
    gmpd_tenant t;
    if (h->type != GMPC_T_AUTH) {
        send_error(c, h, GMP_ERR_NOAUTH, true,
                   "%s before authentication", gmpc_type_name(h->type));
        return;
    }
    if (gmpc_auth_decode(p, h->len, &a) != GMP_OK) {
        send_error(c, h, GMP_ERR_PROTO, true, "malformed AUTH payload");
        return;
    }
    bool ok = gmpd_tenant_get(gmpd->store, a.tenant, &t) == GMP_OK &&
              gmpc_auth_verify(t.secret, sizeof t.secret, c->snonce, &a);
    gmpd_session *s = NULL;
    if (ok)
        s = a.session_id ? gmpd_session_find(a.session_id, a.tenant)
                         : gmpd_session_new(&t);
    if (!s) {
        OPENSSL_cleanse(&t, sizeof t);
        if (ok && !a.session_id)
            send_error(c, h, GMP_ERR_LIMIT, true, "session limit %u reached",
                       gmpd->cfg.max_sessions);
        else
            send_error(c, h, GMP_ERR_AUTH, true,
                       "authentication failed for '%s'%s", a.tenant,
                       ok ? " (no such session to join)" : "");
        return;
    }
    gmpc_auth_ok ok_msg = {.session_id = s->id, .vcm = s->tenant.vcm,
                           .max_tasks = gmpd->cfg.max_tasks,
                           .max_shard = GMP_SHARD_MAX,
                           .window = gmpd_session_window()};
    gmpc_server_proof(t.secret, sizeof t.secret, a.tenant, c->snonce,
                      a.cnonce, s->id, ok_msg.proof);
    OPENSSL_cleanse(&t, sizeof t);
    uint8_t buf[128];
    gmpc_wbuf w = {buf, sizeof buf, 0, false};
    gmpc_auth_ok_encode(&ok_msg, &w);
    c->sess = s;
    c->authed = true;
    uv_timer_stop(&c->auth_timer);
    gmpd_log(GMPD_DEBUG, "%s authenticated as %s (session %016llx)", c->peer,
             s->tenant.name, (unsigned long long)s->id);
    send_frame(c, GMPC_T_AUTH_OK, h, buf, w.len);
}

static void handle_open(gmpd_conn *c, const gmpc_hdr *h, const uint8_t *p)
{
    gmpc_open o;
    gmpd_task *t;
    if (gmpc_open_decode(p, h->len, &o) != GMP_OK) {
        send_error(c, h, GMP_ERR_PROTO, true, "malformed OPEN payload");
        return;
    }
    int rc = gmpd_task_open(c->sess, h, &o, &t);
    OPENSSL_cleanse(&o, sizeof o);
    if (rc != GMP_OK) {
        send_error(c, h, rc, false, "cannot open task %016llx alg 0x%04x",
                   (unsigned long long)h->task_id, h->alg);
        return;
    }
    gmpc_hdr r = {.type = GMPC_T_OPEN_OK, .task_id = h->task_id,
                  .alg = h->alg, .window = gmpd_session_window()};
    send_raw(c, &r, NULL, 0, NULL, false);
    gmpd_task_unref(t);
}

static void handle_shard(gmpd_conn *c, const gmpc_hdr *h, const uint8_t *p)
{
    if (atomic_load(&gmpd->shutting_down)) {
        send_error(c, h, GMP_ERR_SHUTDOWN, false, "gmpoold is shutting down");
        return;
    }
    gmpd_task *t = gmpd_task_get(c->sess, h->task_id);
    if (!t) {
        send_error(c, h, GMP_ERR_NO_TASK, false, "no open task %016llx",
                   (unsigned long long)h->task_id);
        return;
    }
    int rc = GMP_OK;
    gmpd_shard *sh = NULL;
    if (h->len > GMP_SHARD_MAX)
        rc = GMP_ERR_TOO_BIG;
    else if (!(sh = gmpd_shard_new(t, c, h, p, &rc)))
        ;
    else if ((rc = gmpd_task_add_shard(t, sh)) != GMP_OK)
        gmpd_shard_free(sh);
    if (rc != GMP_OK) {
        send_error(c, h, rc, false, "shard %u of task %016llx refused",
                   h->seq, (unsigned long long)h->task_id);
        gmpd_task_abort(t, rc);
    }
    gmpd_task_unref(t);
}

static void handle_abort(gmpd_conn *c, const gmpc_hdr *h)
{
    gmpd_task *t = gmpd_task_get(c->sess, h->task_id);
    if (t) {
        gmpd_task_close(t, GMP_ERR_STATE);
        gmpd_task_unref(t);
    }
}

static void handle_random(gmpd_conn *c, const gmpc_hdr *h, const uint8_t *p)
{
    gmpc_rbuf r = {p, h->len, 0, false};
    uint32_t n = gmpc_r_u32(&r);
    if (!gmpc_r_done(&r)) {
        send_error(c, h, GMP_ERR_PROTO, true, "malformed RANDOM payload");
        return;
    }
    if (n == 0 || n > MAX_RANDOM) {
        send_error(c, h, n > MAX_RANDOM ? GMP_ERR_TOO_BIG : GMP_ERR_ARG,
                   false, "random request of %u bytes (1..%u)", n,
                   MAX_RANDOM);
        return;
    }
    uint8_t *buf = malloc(n);
    if (!buf || gmpd_engine_random(buf, n) != GMP_OK)
        send_error(c, h, GMP_ERR_INTERNAL, false, "random generator failed");
    else
        send_frame(c, GMPC_T_RANDOM_OK, h, buf, n);
    free(buf);
}

static void handle_key(gmpd_conn *c, const gmpc_hdr *h, const uint8_t *p)
{
    uint8_t out[8 + 4 * GMPC_KEY_LIST_MAX];
    size_t out_len = 0;
    int rc = gmpd_key_request(c->sess, p, h->len, out, sizeof out, &out_len);
    if (rc == GMP_ERR_PROTO)
        send_error(c, h, rc, true, "malformed KEY payload");
    else if (rc != GMP_OK)
        send_error(c, h, rc, false, "key request refused");
    else
        send_frame(c, GMPC_T_KEY_OK, h, out, out_len);
    OPENSSL_cleanse(out, sizeof out);
}

static void free_handle(uv_handle_t *h);

/* The descriptor that came with the frame (client unix sockets are ipc
 * pipes), as our own copy; -1 when there is not exactly one. */
static int take_fd(gmpd_conn *c)
{
    uv_pipe_t *tmp;
    if (c->stream->type != UV_NAMED_PIPE ||
        uv_pipe_pending_count((uv_pipe_t *)c->stream) != 1 ||
        !(tmp = malloc(sizeof *tmp)))
        return -1;
    uv_pipe_init(c->stream->loop, tmp, 0);
    uv_os_fd_t fd = -1;
    int own = -1;
    if (uv_accept(c->stream, (uv_stream_t *)tmp) == 0 &&
        uv_fileno((uv_handle_t *)tmp, &fd) == 0)
        own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    uv_close((uv_handle_t *)tmp, free_handle);
    return own;
}

/* SHM: the client's memfd rides with the frame.  A refusal is not fatal:
 * the client keeps sending its bytes inline. */
static void handle_shm(gmpd_conn *c, const gmpc_hdr *h, const uint8_t *p)
{
    gmpc_rbuf r = {p, h->len, 0, false};
    uint32_t size = gmpc_r_u32(&r);
    int fd = take_fd(c);
    const char *why = "SHM needs a memfd (SCM_RIGHTS, unix sockets only)";
    int rc = GMP_ERR_ARG;
    if (!gmpc_r_done(&r)) {
        if (fd >= 0)
            close(fd);
        send_error(c, h, GMP_ERR_PROTO, true, "malformed SHM payload");
        return;
    }
    if (fd >= 0) {
        rc = gmpd_session_attach_shm(c->sess, fd, size, &why);
        close(fd);
    }
    if (rc != GMP_OK)
        send_error(c, h, rc, false, "shared memory refused: %s", why);
    else
        send_frame(c, GMPC_T_SHM_OK, h, NULL, 0);
}

static void handle_admin(gmpd_conn *c, const gmpc_hdr *h, const uint8_t *p)
{
    char *argv[33], buf[4096];
    int argc = 0;
    if (h->type != GMPC_T_ADMIN || h->len == 0 || h->len >= sizeof buf) {
        send_error(c, h, GMP_ERR_PROTO, true, "bad admin request");
        return;
    }
    memcpy(buf, p, h->len);
    buf[h->len] = '\0';
    for (size_t i = 0; i < h->len && argc < 32; i += strlen(buf + i) + 1)
        argv[argc++] = buf + i;
    argv[argc] = NULL;
    size_t cap = 256 * 1024;
    char *out = malloc(cap);
    if (!out) {
        send_error(c, h, GMP_ERR_NOMEM, false, "out of memory");
        return;
    }
    out[0] = '\0';
    int rc = gmpd_admin_run(argc, argv, out, cap);
    gmpc_hdr r = {.type = GMPC_T_ADMIN_OK, .status = (uint16_t)rc};
    send_raw(c, &r, out, strlen(out), NULL, false);
    free(out);
}

static void handle_frame(gmpd_conn *c, const gmpc_hdr *h, const uint8_t *p)
{
    if (c->is_admin) {
        handle_admin(c, h, p);
        return;
    }
    if (!c->authed) {
        handle_auth(c, h, p);
        return;
    }
    switch (h->type) {
    case GMPC_T_OPEN:
        handle_open(c, h, p);
        break;
    case GMPC_T_SHARD:
    case GMPC_T_FINAL:
        handle_shard(c, h, p);
        break;
    case GMPC_T_ABORT:
        handle_abort(c, h);
        break;
    case GMPC_T_RANDOM:
        handle_random(c, h, p);
        break;
    case GMPC_T_KEY:
        handle_key(c, h, p);
        break;
    case GMPC_T_PING:
        send_frame(c, GMPC_T_PONG, h, NULL, 0);
        break;
    case GMPC_T_SHM:
        handle_shm(c, h, p);
        break;
    default:
        send_error(c, h, GMP_ERR_PROTO, true, "unexpected %s frame",
                   gmpc_type_name(h->type));
    }
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    gmpd_conn *c = hd->data;
    size_t avail;
    uint8_t *p = gmpc_inbuf_room(&c->in, IN_CHUNK, &avail);
    (void)suggested;
    *buf = uv_buf_init((char *)p, (unsigned)avail);
}

static size_t parse_frames(gmpd_conn *c)
{
    size_t off = 0;
    while (!c->closing && !c->doomed) {
        gmpc_hdr h;
        size_t used;
        int status;
        gmpc_parse r = gmpc_frame_parse(c->in.p + off, c->in.len - off, &h,
                                        &used, &status);
        if (r == GMPC_NEED_MORE)
            break;
        if (r == GMPC_SKIP) {
            /* A byte stream loses nothing: garbage means a broken peer. */
            send_error(c, NULL, GMP_ERR_PROTO, true,
                       "%zu garbage bytes where a frame should start", used);
            break;
        }
        if (r == GMPC_BAD) {
            send_error(c, &h, status, true, "%s frame header: type %u len %u",
                       status == GMP_ERR_TOO_BIG ? "oversize" : "invalid",
                       h.type, h.len);
            break;
        }
        handle_frame(c, &h, c->in.p + off + GMPC_HDR_LEN);
        off += used;
    }
    return off;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    gmpd_conn *c = st->data;
    (void)buf;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->in.len += (size_t)n;
    atomic_fetch_add(&c->refs, 1); /* handlers may close it */
    size_t used = parse_frames(c);
    /* One descriptor may wait for the rest of its SHM frame; more are
     * a peer filling our descriptor table. */
    if (!c->closing && !c->doomed && c->stream->type == UV_NAMED_PIPE &&
        uv_pipe_pending_count((uv_pipe_t *)c->stream) > 1)
        send_error(c, NULL, GMP_ERR_PROTO, true,
                   "file descriptors without SHM frames");
    if (!c->closing && !c->doomed)
        gmpc_inbuf_consume(&c->in, used, IN_CHUNK);
    gmpd_conn_unref(c);
}

static gmpd_conn *conn_new(uv_loop_t *loop, gmpd_io *io, bool is_unix)
{
    gmpd_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->stream = malloc(is_unix ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t));
    if (!c->stream) {
        free(c);
        return NULL;
    }
    if (is_unix) /* a client's (io) may pass its SHM memfd */
        uv_pipe_init(loop, (uv_pipe_t *)c->stream, io != NULL);
    else
        uv_tcp_init(loop, (uv_tcp_t *)c->stream);
    uv_timer_init(loop, &c->auth_timer);
    c->stream->data = c;
    c->auth_timer.data = c;
    c->handles = 2;
    c->io = io;
    atomic_init(&c->refs, 1);
    return c;
}

static void conn_link(gmpd_conn *c, gmpd_conn **head)
{
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static void peer_name(gmpd_conn *c, bool is_unix)
{
    if (is_unix) {
        snprintf(c->peer, sizeof c->peer, "unix#%p", (void *)c);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[48] = "?";
    if (uv_tcp_getpeername((uv_tcp_t *)c->stream, (struct sockaddr *)&ss,
                           &len) == 0)
        uv_ip_name((struct sockaddr *)&ss, ip, sizeof ip);
    snprintf(c->peer, sizeof c->peer, "tcp:%s", ip);
}

static void conn_start(gmpd_conn *c)
{
    gmpc_random(c->snonce, sizeof c->snonce);
    gmpc_hdr h = {.type = GMPC_T_CHALLENGE};
    send_raw(c, &h, c->snonce, sizeof c->snonce, NULL, false);
    uv_timer_start(&c->auth_timer, on_auth_timeout, AUTH_TIMEOUT_MS, 0);
    uv_read_start(c->stream, on_alloc, on_read);
}

static void io_attach(gmpd_io *io, fd_item *it)
{
    gmpd_conn *c = conn_new(&io->loop, io, it->is_unix);
    int rc = c ? 0 : UV_ENOMEM;
    if (c && it->is_unix)
        rc = uv_pipe_open((uv_pipe_t *)c->stream, it->fd);
    else if (c)
        rc = uv_tcp_open((uv_tcp_t *)c->stream, it->fd);
    if (rc < 0) {
        gmpd_log(GMPD_WARN, "cannot adopt connection: %s", uv_strerror(rc));
        if (c) {
            conn_link(c, &io->conns);
            atomic_fetch_add(&io->n_conns, 1);
            conn_close(c);
        } else {
            close(it->fd);
        }
        return;
    }
    if (!it->is_unix)
        uv_tcp_nodelay((uv_tcp_t *)c->stream, 1);
    peer_name(c, it->is_unix);
    conn_link(c, &io->conns);
    atomic_fetch_add(&io->n_conns, 1);
    conn_start(c);
}

/* ---- results from the workers ---- */

static void on_batch_written(uv_write_t *req, int status)
{
    wbatch *b = (wbatch *)req;
    for (unsigned i = 0; i < b->n; i++)
        gmpd_shard_free(b->shards[i]);
    if (status < 0)
        conn_close(b->conn);
    gmpd_conn_unref(b->conn);
    free(b);
}

/* The batch's frames in one go (gmpc_write_now). */
static void batch_flush(wbatch *b)
{
    gmpd_conn *c = b->conn;
    c->batch = NULL;
    if (c->closing) {
        on_batch_written(&b->req, 0);
        return;
    }
    bool queued;
    int rc = gmpc_write_now(c->stream, &b->req, b->bufs, b->nb,
                            on_batch_written, &queued);
    if (!queued)
        on_batch_written(&b->req, rc);
}

static void flush_batches(gmpd_io *io)
{
    while (io->batches) {
        wbatch *b = io->batches;
        io->batches = b->next;
        batch_flush(b);
    }
}

/* Small outputs (a digest) travel inline; a shard of the client's region
 * leaves the rest in its slot and the reply says where (GMPC_F_SHM). */
#define SHM_INLINE_MAX 64u

static const uint8_t *result_payload(gmpd_shard *sh, gmpc_hdr *h)
{
    if (sh->shm && sh->out_len > SHM_INLINE_MAX) {
        gmpc_shm_ref_encode(sh->ref, sh->shm_off + sh->len, sh->out_len);
        h->flags |= GMPC_F_SHM;
        h->len = GMPC_SHM_REF_LEN;
        return sh->ref;
    }
    h->len = sh->out_len;
    return sh->buf + sh->len;
}

/* Queues a result frame for the connection's next batch write. */
static void batch_add(gmpd_io *io, gmpd_conn *c, gmpc_hdr *h,
                      gmpd_shard *sh)
{
    wbatch *b = c->batch;
    if (b && b->n == BATCH_MAX) {
        for (wbatch **pp = &io->batches; *pp; pp = &(*pp)->next)
            if (*pp == b) {
                *pp = b->next;
                break;
            }
        batch_flush(b);
        b = NULL;
    }
    const uint8_t *payload = result_payload(sh, h);
    if (!b) {
        b = malloc(sizeof *b);
        if (!b) {
            send_raw(c, h, payload, h->len, sh, false);
            return;
        }
        b->conn = c;
        atomic_fetch_add(&c->refs, 1);
        b->n = b->nb = 0;
        b->next = io->batches;
        io->batches = b;
        c->batch = b;
    }
    gmpc_hdr_encode(h, b->hdrs[b->n]);
    b->bufs[b->nb++] = uv_buf_init((char *)b->hdrs[b->n], GMPC_HDR_LEN);
    if (h->len)
        b->bufs[b->nb++] = uv_buf_init((char *)payload, h->len);
    b->shards[b->n++] = sh;
}

static void answer_shard(gmpd_shard *sh, uint32_t window)
{
    gmpd_conn *c = sh->conn;
    gmpd_task *t = sh->task;
    int status = sh->status;
    bool final = sh->final;
    gmpc_hdr h = {.task_id = t->id, .seq = sh->seq, .alg = t->alg};
    atomic_fetch_add(&t->refs, 1);
    if (c->closing) {
        gmpd_shard_free(sh);
    } else if (status == GMP_OK) {
        h.type = final ? GMPC_T_FINAL_OK : GMPC_T_RESULT;
        h.window = window;
        batch_add(c->io, c, &h, sh);
    } else {
        gmpd_shard_free(sh);
        send_error(c, &h, status, false, "shard %u of task %016llx failed",
                   h.seq, (unsigned long long)h.task_id);
    }
    if (status != GMP_OK)
        gmpd_task_abort(t, status);
    else if (final)
        gmpd_task_finish(t);
    gmpd_task_unref(t);
}

static void io_close_all(gmpd_io *io)
{
    for (gmpd_conn *c = io->conns; c; c = c->next)
        if (!c->closing)
            send_error(c, NULL, GMP_ERR_SHUTDOWN, true,
                       "gmpoold is shutting down");
}

static void on_io_async(uv_async_t *a)
{
    gmpd_io *io = a->data;
    pthread_mutex_lock(&io->mu);
    fd_item *fds = io->fds;
    gmpd_shard *res = io->results;
    io->fds = NULL;
    io->results = NULL;
    io->results_tail = &io->results;
    bool close_all = io->close_all, stop = io->stop;
    pthread_mutex_unlock(&io->mu);
    while (fds) {
        fd_item *n = fds->next;
        io_attach(io, fds);
        free(fds);
        fds = n;
    }
    /* p once per wake-up: it takes the scheduler lock */
    uint32_t window = res ? gmpd_session_window() : 0;
    while (res) {
        gmpd_shard *n = res->next;
        answer_shard(res, window);
        res = n;
    }
    flush_batches(io);
    if (close_all)
        io_close_all(io);
    if (stop)
        uv_close((uv_handle_t *)&io->async, NULL);
}

static void io_wake(gmpd_io *io)
{
    uv_async_send(&io->async);
}

void gmpd_net_post_results(gmpd_shard *list)
{
    while (list) {
        /* take every result of the first one's io thread, in order */
        gmpd_io *io = list->conn->io;
        gmpd_shard *head = NULL, **tail = &head, **pp = &list;
        while (*pp) {
            gmpd_shard *sh = *pp;
            if (sh->conn->io != io) {
                pp = &sh->next;
                continue;
            }
            *pp = sh->next;
            sh->next = NULL;
            *tail = sh;
            tail = &sh->next;
        }
        pthread_mutex_lock(&io->mu);
        *io->results_tail = head;
        io->results_tail = tail;
        pthread_mutex_unlock(&io->mu);
        io_wake(io);
    }
}

void gmpd_net_post_result(gmpd_shard *s)
{
    s->next = NULL;
    gmpd_net_post_results(s);
}

/* An io thread's wake-ups do not preempt a computing node (SCHED_BATCH):
 * it runs when a core frees up or the node's time slice ends, and then
 * answers everything that came meanwhile.  With the default policy it
 * preempted the node that had just woken it, inside that node's
 * uv_async_send, and then spun in libuv (uv__async_spin) until the node
 * ran again: ~1 % of the CPU under SM3 load, for batches no larger.
 * docs/performance.md, step 13. */
static void io_thread_policy(void)
{
    struct sched_param sp = {0};
    int policy;
    /* under a real-time policy (set by the operator) io stays level with
     * the nodes: a batch thread would wait on them for good */
    if (pthread_getschedparam(pthread_self(), &policy, &sp) != 0 ||
        policy != SCHED_OTHER)
        return;
    int rc = pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    if (rc != 0)
        gmpd_log(GMPD_DEBUG, "io thread: SCHED_BATCH refused: %s",
                 strerror(rc));
}

static void *io_main(void *arg)
{
    gmpd_io *io = arg;
    io_thread_policy();
    uv_run(&io->loop, UV_RUN_DEFAULT);
    return NULL;
}

int gmpd_net_start(void)
{
    int n = gmpd->cfg.io_threads;
    gmpd->io = calloc((size_t)n, sizeof *gmpd->io);
    if (!gmpd->io)
        return GMP_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        gmpd_io *io = calloc(1, sizeof *io);
        if (!io)
            return GMP_ERR_NOMEM;
        gmpd->io[i] = io;
        uv_loop_init(&io->loop);
        uv_async_init(&io->loop, &io->async, on_io_async);
        io->async.data = io;
        pthread_mutex_init(&io->mu, NULL);
        io->results_tail = &io->results;
        if (pthread_create(&io->th, NULL, io_main, io) != 0)
            return GMP_ERR_INTERNAL;
        gmpc_thread_name(io->th, "gmpd-io", i);
        gmpd->n_io = i + 1;
    }
    return GMP_OK;
}

/* ---- accepting (main loop) ---- */

static void hand_over(listener *l, uv_stream_t *client)
{
    uv_os_fd_t fd;
    fd_item *it = malloc(sizeof *it);
    if (!it || uv_fileno((uv_handle_t *)client, &fd) < 0 ||
        (it->fd = dup(fd)) < 0) {
        free(it);
        return;
    }
    it->is_unix = l->is_unix;
    unsigned k = atomic_fetch_add(&gmpd->next_io, 1) % (unsigned)gmpd->n_io;
    gmpd_io *io = gmpd->io[k];
    pthread_mutex_lock(&io->mu);
    it->next = io->fds;
    io->fds = it;
    pthread_mutex_unlock(&io->mu);
    io_wake(io);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static bool admin_peer_ok(uv_pipe_t *p)
{
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof cred;
    return uv_fileno((uv_handle_t *)p, &fd) == 0 &&
           getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
           cred.uid == geteuid();
}

static void accept_admin(listener *l)
{
    gmpd_conn *c = conn_new(gmpd->main_loop, NULL, true);
    if (!c)
        return;
    conn_link(c, &g_admin_conns);
    if (uv_accept((uv_stream_t *)&l->h, c->stream) < 0 ||
        !admin_peer_ok((uv_pipe_t *)c->stream)) {
        gmpd_log(GMPD_WARN, "admin connection refused: not the owner");
        conn_close(c);
        return;
    }
    c->is_admin = true;
    c->authed = true;
    snprintf(c->peer, sizeof c->peer, "admin");
    uv_read_start(c->stream, on_alloc, on_read);
}

static void on_connection(uv_stream_t *server, int status)
{
    listener *l = server->data;
    if (status < 0 || atomic_load(&gmpd->shutting_down))
        return;
    if (l->is_admin) {
        accept_admin(l);
        return;
    }
    uv_stream_t *client =
        malloc(l->is_unix ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t));
    if (!client)
        return;
    if (l->is_unix)
        uv_pipe_init(gmpd->main_loop, (uv_pipe_t *)client, 0);
    else
        uv_tcp_init(gmpd->main_loop, (uv_tcp_t *)client);
    if (uv_accept(server, client) == 0)
        hand_over(l, client);
    uv_close((uv_handle_t *)client, free_handle);
}

/* Is a daemon answering on this socket path? */
static bool socket_live(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = fd >= 0 &&
                connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
    if (fd >= 0)
        close(fd);
    return live;
}

static int listen_unix(listener *l, const char *path)
{
    struct stat st;
    /* A socket left by a previous run is replaced; a live one or anything
     * else is not. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode) || socket_live(path))
            return UV_EADDRINUSE;
        unlink(path);
    }
    uv_pipe_init(gmpd->main_loop, &l->h.pipe, 0);
    l->is_unix = true;
    snprintf(l->path, sizeof l->path, "%s", path);
    mode_t old = umask(0177);
    int rc = uv_pipe_bind(&l->h.pipe, path);
    umask(old);
    if (rc == 0)
        rc = chmod(path, 0600) == 0 ? 0 : uv_translate_sys_error(errno);
    return rc ? rc : uv_listen((uv_stream_t *)&l->h, 128, on_connection);
}

static int listen_tcp(listener *l, const gmpc_addr *a)
{
    struct sockaddr_storage ss;
    int rc = uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)&ss);
    if (rc)
        rc = uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)&ss);
    if (rc)
        return rc;
    uv_tcp_init(gmpd->main_loop, &l->h.tcp);
    rc = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0);
    return rc ? rc : uv_listen((uv_stream_t *)&l->h, 128, on_connection);
}

static int listen_one(const char *addr, bool admin)
{
    gmpc_addr a;
    if (gmpc_addr_parse(addr, &a) != GMP_OK || (admin && !a.is_unix)) {
        gmpd_log(GMPD_ERR, "bad listen address '%s'", addr);
        return GMP_ERR_CONFIG;
    }
    listener *l = &g_listeners[g_n_listeners];
    memset(l, 0, sizeof *l);
    l->is_admin = admin;
    int rc = a.is_unix ? listen_unix(l, a.path) : listen_tcp(l, &a);
    l->h.tcp.data = l;
    if (l->h.tcp.loop) /* initialised: close it at shutdown */
        g_n_listeners++;
    if (rc < 0) {
        gmpd_log(GMPD_ERR, "cannot listen on %s: %s", addr, uv_strerror(rc));
        return GMP_ERR_CONFIG;
    }
    gmpd_log(GMPD_INFO, "listening on %s%s", addr, admin ? " (admin)" : "");
    return GMP_OK;
}

int gmpd_net_listen(void)
{
    for (int i = 0; i < gmpd->cfg.n_listen; i++)
        if (listen_one(gmpd->cfg.listen[i], false) != GMP_OK)
            return GMP_ERR_CONFIG;
    return listen_one(gmpd->cfg.admin, true);
}

void gmpd_net_stop_listening(void)
{
    for (int i = 0; i < g_n_listeners; i++) {
        listener *l = &g_listeners[i];
        if (!uv_is_closing((uv_handle_t *)&l->h))
            uv_close((uv_handle_t *)&l->h, NULL);
        if (l->is_unix && l->path[0])
            unlink(l->path);
    }
    for (gmpd_conn *c = g_admin_conns; c; c = c->next)
        conn_close(c);
}

static void io_flag(bool close_all, bool stop)
{
    for (int i = 0; i < gmpd->n_io; i++) {
        gmpd_io *io = gmpd->io[i];
        pthread_mutex_lock(&io->mu);
        io->close_all |= close_all;
        io->stop |= stop;
        pthread_mutex_unlock(&io->mu);
        io_wake(io);
    }
}

void gmpd_net_close_all(void)
{
    io_flag(true, false);
}

size_t gmpd_net_conn_count(void)
{
    size_t n = 0;
    for (int i = 0; i < gmpd->n_io; i++)
        n += atomic_load(&gmpd->io[i]->n_conns);
    return n;
}

void gmpd_net_join(void)
{
    io_flag(false, true);
    for (int i = 0; i < gmpd->n_io; i++) {
        gmpd_io *io = gmpd->io[i];
        pthread_join(io->th, NULL);
        /* anything posted after the loop ended */
        while (io->results) {
            gmpd_shard *n = io->results->next;
            gmpd_shard_free(io->results);
            io->results = n;
        }
        uv_loop_close(&io->loop);
        pthread_mutex_destroy(&io->mu);
        free(io);
    }
    free(gmpd->io);
    gmpd->io = NULL;
    gmpd->n_io = 0;
}
