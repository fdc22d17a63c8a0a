/* A client's pool of connections to gmpoold (R15), all on the background
 * loop thread.  Connection 0 authenticates and gets the session; the others
 * join it, so shards of one task may travel on any of them.  Any broken
 * connection fails every outstanding request with a clear error and the
 * next request reconnects: nothing waits forever. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "shm.h"
#include "task.h"
#include "uvwrite.h"

#define TICK_MS 100
#define IN_CHUNK (256 * 1024)

typedef enum cc_state { CC_IDLE, CC_CONNECTING, CC_AUTH, CC_READY } cc_state;

struct cconn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_handle_t h;
        uv_stream_t st;
    } h;
    uv_connect_t creq;
    csess *s;
    int idx;
    cc_state st;
    bool open;               /* handle initialised, not yet closed */
    gmpc_inbuf in;
    uint8_t cnonce[GMPC_NONCE_LEN];
    uint8_t snonce[GMPC_NONCE_LEN];
};

typedef struct route {
    uint64_t id;
    gmp_task *task;
    op *ctrl;
} route;

/* S_LOGIN: authenticated, repeating the user's login before anything
 * else is sent. */
typedef enum s_state { S_DOWN, S_CONNECTING, S_LOGIN, S_READY } s_state;

struct csess {
    rt *rt;
    csess_cfg cfg;
    cconn conns[GMP_MAX_CONNS];
    bool timer_on;
    uv_timer_t timer;
    s_state st;
    int handles;             /* conn handles still open */
    uint64_t session_id;
    op *wait_head, *wait_tail;
    route *routes;
    size_t n_routes, cap_routes;
    uint64_t next_id;
    unsigned rr;
    int outstanding;
    uint64_t last_rx, connect_start;
    op *close_op;
    pthread_mutex_t pin_mu;  /* pin, pin_len (set by application threads) */
    uint8_t pin[GMP_PIN_MAX];
    size_t pin_len;
    atomic_bool logged_in;
    gmp_task **pumps;        /* tasks to pump after this read */
    size_t n_pumps, cap_pumps;
    cshm *shm;               /* this daemon session's region, or NULL */
    uint64_t shm_id;         /* the SHM request awaiting its answer */
};

static void conn_start(csess *s, int idx);
static void fail_all(csess *s, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

csess *csess_new(rt *r, const csess_cfg *cfg)
{
    csess *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->rt = r;
    s->cfg = *cfg;
    pthread_mutex_init(&s->pin_mu, NULL);
    gmpc_nonce(&s->next_id, sizeof s->next_id);
    s->next_id = (s->next_id >> 2) | 1;
    return s;
}

void csess_remember_pin(csess *s, const void *pin, size_t len)
{
    pthread_mutex_lock(&s->pin_mu);
    OPENSSL_cleanse(s->pin, sizeof s->pin);
    s->pin_len = len <= sizeof s->pin ? len : 0;
    if (s->pin_len)
        memcpy(s->pin, pin, s->pin_len);
    atomic_store(&s->logged_in, s->pin_len > 0);
    pthread_mutex_unlock(&s->pin_mu);
}

void csess_free(csess *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s->pin, sizeof s->pin);
    pthread_mutex_destroy(&s->pin_mu);
    free(s->pumps);
    cshm_free(s->shm);
    free(s);
}

cshm *csess_shm(csess *s)
{
    return s->shm;
}

/* Over the shared-memory lane a large task's frames are references of a
 * few dozen bytes: sharing one socket, the tasks' frames go out in one
 * writev, and gmpoold reads them and answers them with one wake-up of one
 * io thread.  gmpool-bench, 8 SM3 tasks: the daemon's io and the client's
 * loop CPU per unit of node CPU fell from 0.10 to 0.07 against spreading
 * the tasks over four connections.  Jobs of a shard or two still take
 * turns over all connections: there four sockets gave 8 threads ~7 % more
 * operations per second than one. */
int csess_stream_conn(csess *s)
{
    return s->shm && s->conns[0].st == CC_READY ? 0 : -1;
}

bool csess_logged_in(csess *s)
{
    return atomic_load(&s->logged_in);
}

uint64_t csess_new_id(csess *s)
{
    return s->next_id++;
}

void csess_outstanding(csess *s, int delta)
{
    if (s->outstanding == 0 && delta > 0)
        s->last_rx = gmpc_now_ns();
    s->outstanding += delta;
    if (s->outstanding < 0)
        s->outstanding = 0;
}

/* ---- routes: reply task_id -> task or control request ---- */

void csess_route_add(csess *s, uint64_t id, gmp_task *t, op *ctrl)
{
    if (s->n_routes == s->cap_routes) {
        size_t cap = s->cap_routes ? 2 * s->cap_routes : 16;
        route *r = realloc(s->routes, cap * sizeof *r);
        if (!r)
            return; /* the reply is dropped; the op times out */
        s->routes = r;
        s->cap_routes = cap;
    }
    s->routes[s->n_routes++] = (route){id, t, ctrl};
}

static route *route_find(csess *s, uint64_t id)
{
    for (size_t i = 0; i < s->n_routes; i++)
        if (s->routes[i].id == id)
            return &s->routes[i];
    return NULL;
}

void csess_route_del(csess *s, uint64_t id)
{
    route *r = route_find(s, id);
    if (r)
        *r = s->routes[--s->n_routes];
}

/* ---- writing ---- */

/* A control frame: its payload is copied into the request. */
typedef struct wreq {
    uv_write_t req;
    uint8_t hdr[GMPC_HDR_LEN];
    uint8_t copy[];
} wreq;

static void on_write(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as a read error too */
    free(req);
}

static cconn *pick_conn(csess *s)
{
    for (unsigned k = 0; k < s->cfg.n_conns; k++) {
        cconn *c = &s->conns[(s->rr + k) % s->cfg.n_conns];
        if (c->st == CC_READY) {
            s->rr = (unsigned)(c - s->conns) + 1;
            return c;
        }
    }
    return NULL;
}

static int conn_send(cconn *c, gmpc_hdr *h, const void *payload, size_t len)
{
    wreq *w = malloc(sizeof *w + len);
    if (!w)
        return GMP_ERR_NOMEM;
    h->len = (uint32_t)len;
    gmpc_hdr_encode(h, w->hdr);
    if (len)
        memcpy(w->copy, payload, len);
    uv_buf_t b[2] = {uv_buf_init((char *)w->hdr, GMPC_HDR_LEN),
                     uv_buf_init((char *)w->copy, (unsigned)len)};
    int rc = uv_write(&w->req, &c->h.st, b, len ? 2 : 1, on_write);
    if (rc < 0) {
        free(w);
        return GMP_ERR_CONN;
    }
    return GMP_OK;
}

int csess_send(csess *s, gmpc_hdr *h, const void *payload, size_t len)
{
    cconn *c = pick_conn(s);
    if (!c)
        return GMP_ERR_CONN;
    return conn_send(c, h, payload, len);
}

static cconn *pinned_conn(csess *s, int pin)
{
    if (pin < 0)
        return pick_conn(s);
    cconn *c = pin < GMP_MAX_CONNS ? &s->conns[pin] : NULL;
    return c && c->st == CC_READY ? c : NULL;
}

int csess_send_on(csess *s, int *conn, gmpc_hdr *h, const void *payload,
                  size_t len)
{
    cconn *c = pinned_conn(s, *conn);
    if (!c)
        return GMP_ERR_CONN;
    *conn = (int)(c - s->conns);
    return conn_send(c, h, payload, len);
}

/* One write request for n frames: n headers and n callback arguments. */
typedef struct wmany {
    uv_write_t req;
    void (*written)(void *);
    unsigned n;
    void **args;
    uint8_t (*hdrs)[GMPC_HDR_LEN];
    uv_buf_t *bufs;
} wmany;

static void on_write_many(uv_write_t *req, int status)
{
    wmany *w = (wmany *)req;
    (void)status; /* a failed write shows up as a read error too */
    for (unsigned i = 0; i < w->n; i++)
        w->written(w->args[i]);
    free(w);
}

/* One writev now (gmpc_write_now).  *sync is set when everything went
 * out at once: then written is never called. */
int csess_send_many(csess *s, int pin, csend *items, unsigned n,
                    void (*written)(void *), bool *sync)
{
    cconn *c = pinned_conn(s, pin);
    wmany *w = c ? malloc(sizeof *w + n * (sizeof(void *) + GMPC_HDR_LEN +
                                           2 * sizeof(uv_buf_t)))
                 : NULL;
    *sync = false;
    if (!w)
        return c ? GMP_ERR_NOMEM : GMP_ERR_CONN;
    w->written = written;
    w->n = n;
    w->bufs = (uv_buf_t *)(w + 1);
    w->args = (void **)(w->bufs + 2 * n);
    w->hdrs = (uint8_t(*)[GMPC_HDR_LEN])(w->args + n);
    unsigned nb = 0;
    for (unsigned i = 0; i < n; i++) {
        items[i].h.len = (uint32_t)items[i].len;
        gmpc_hdr_encode(&items[i].h, w->hdrs[i]);
        w->args[i] = items[i].arg;
        w->bufs[nb++] = uv_buf_init((char *)w->hdrs[i], GMPC_HDR_LEN);
        if (items[i].len)
            w->bufs[nb++] = uv_buf_init((char *)items[i].payload,
                                        (unsigned)items[i].len);
    }
    bool queued;
    int rc = gmpc_write_now(&c->h.st, &w->req, w->bufs, nb, on_write_many,
                            &queued);
    if (queued)
        return GMP_OK;
    free(w);
    *sync = rc == 0;
    return rc == 0 ? GMP_OK : GMP_ERR_CONN;
}

void csess_pump_later(csess *s, gmp_task *t)
{
    if (t->pump_marked)
        return;
    if (s->n_pumps == s->cap_pumps) {
        size_t cap = s->cap_pumps ? 2 * s->cap_pumps : 16;
        gmp_task **p = realloc(s->pumps, cap * sizeof *p);
        if (!p) {
            task_pump(t); /* no batching then, but no stall either */
            return;
        }
        s->pumps = p;
        s->cap_pumps = cap;
    }
    t->pump_marked = true;
    s->pumps[s->n_pumps++] = t;
}

/* Tasks live at least until an OP_TASK_FREE, which runs in another
 * callback, so the ones listed during this read are still here. */
static void flush_pumps(csess *s)
{
    for (size_t i = 0; i < s->n_pumps; i++) {
        s->pumps[i]->pump_marked = false;
        task_pump(s->pumps[i]);
    }
    s->n_pumps = 0;
}

/* ---- teardown ---- */

static void maybe_finish_close(csess *s);

static void on_conn_closed(uv_handle_t *h)
{
    cconn *c = h->data;
    csess *s = c->s;
    gmpc_inbuf_free(&c->in);
    s->handles--;
    maybe_finish_close(s);
}

static void conn_close(cconn *c)
{
    if (!c->open)
        return;
    c->open = false;
    c->st = CC_IDLE;
    uv_close(&c->h.h, on_conn_closed);
}

static void fail_all(csess *s, int status, const char *fmt, ...)
{
    char msg[GMPC_MAX_MSG + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (unsigned i = 0; i < GMP_MAX_CONNS; i++)
        conn_close(&s->conns[i]);
    /* The old daemon session may still write into its region: the next
     * one gets a new region. */
    cshm_free(s->shm);
    s->shm = NULL;
    s->shm_id = 0;
    s->st = S_DOWN;
    s->session_id = 0;
    s->outstanding = 0;
    /* detach first: failing may free routes' owners */
    route *routes = s->routes;
    size_t n = s->n_routes;
    s->routes = NULL;
    s->n_routes = s->cap_routes = 0;
    for (size_t i = 0; i < n; i++) {
        if (routes[i].task)
            task_fail(routes[i].task, status, msg);
        else
            op_complete(routes[i].ctrl, status, msg);
    }
    free(routes);
    op *w = s->wait_head;
    s->wait_head = s->wait_tail = NULL;
    while (w) {
        op *next = w->next;
        if (w->kind == OP_OPEN)
            task_fail(w->task, status, msg);
        op_complete(w, status, msg);
        w = next;
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    csess *s = h->data;
    s->timer_on = false;
    maybe_finish_close(s);
}

static void maybe_finish_close(csess *s)
{
    if (s->handles > 0)
        return;
    if (s->close_op) {
        if (s->timer_on) {
            if (!uv_is_closing((uv_handle_t *)&s->timer))
                uv_close((uv_handle_t *)&s->timer, on_timer_closed);
            return;
        }
        op_complete(s->close_op, GMP_OK, NULL);
        return;
    }
    if (s->wait_head && s->st == S_DOWN) {
        s->st = S_CONNECTING;
        s->connect_start = gmpc_now_ns();
        conn_start(s, 0);
    }
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    cconn *c = h->data;
    size_t avail;
    uint8_t *p = gmpc_inbuf_room(&c->in, IN_CHUNK, &avail);
    (void)suggested;
    *buf = uv_buf_init((char *)p, (unsigned)avail);
}

static void flush_waiting(csess *s)
{
    op *w = s->wait_head;
    s->wait_head = s->wait_tail = NULL;
    while (w) {
        op *next = w->next;
        w->next = NULL;
        csess_handle_op(w);
        w = next;
    }
}

static void on_challenge(cconn *c, const gmpc_hdr *h, const uint8_t *p)
{
    csess *s = c->s;
    gmpc_auth a = {.session_id = c->idx ? s->session_id : 0};
    uint8_t buf[256];
    gmpc_wbuf w = {buf, sizeof buf, 0, false};
    if (h->len != GMPC_NONCE_LEN) {
        fail_all(s, GMP_ERR_PROTO, "bad challenge from %s", s->cfg.server);
        return;
    }
    gmpc_nonce(c->cnonce, sizeof c->cnonce);
    memcpy(a.cnonce, c->cnonce, sizeof a.cnonce);
    snprintf(a.tenant, sizeof a.tenant, "%s", s->cfg.tenant);
    gmpc_auth_mac(s->cfg.secret, s->cfg.secret_len, a.tenant, p, a.cnonce,
                  a.session_id, a.mac);
    gmpc_auth_encode(&a, &w);
    gmpc_hdr r = {.type = GMPC_T_AUTH};
    c->st = CC_AUTH;
    memcpy(c->snonce, p, GMPC_NONCE_LEN); /* for the server's proof */
    if (conn_send(c, &r, buf, w.len) != GMP_OK)
        fail_all(s, GMP_ERR_CONN, "cannot send to %s", s->cfg.server);
}

static void send_ctrl(csess *s, op *o);

/* A new daemon session (the daemon restarted) knows no login: repeat it
 * before the waiting requests go out.  False when there is none to make. */
static bool relogin_start(csess *s)
{
    uint8_t req[2 + 4 + GMP_PIN_MAX];
    gmpc_wbuf w = {req, sizeof req, 0, false};
    pthread_mutex_lock(&s->pin_mu);
    if (s->pin_len) {
        gmpc_w_u8(&w, GMPC_TOKEN_LOGIN);
        gmpc_w_blob(&w, s->pin, s->pin_len);
    }
    pthread_mutex_unlock(&s->pin_mu);
    op *o = w.len ? op_new(OP_RELOGIN, s) : NULL;
    if (o && !(o->payload = malloc(w.len))) {
        op_free(o);
        o = NULL;
    }
    if (!o) {
        OPENSSL_cleanse(req, sizeof req);
        return false;
    }
    memcpy(o->payload, req, w.len);
    OPENSSL_cleanse(req, sizeof req);
    o->payload_len = w.len;
    o->hdr.type = GMPC_T_KEY;
    o->wait = false;
    s->st = S_LOGIN;
    send_ctrl(s, o);
    return true;
}

/* The PIN changed or locked meanwhile: the client is logged out. */
static void relogin_done(csess *s, op *o, int status)
{
    if (status != GMP_OK)
        csess_remember_pin(s, NULL, 0);
    op_free(o); /* cleanses the PIN in the payload */
    if (s->st == S_LOGIN) {
        s->st = S_READY;
        flush_waiting(s);
    }
}

/* Slots for a few windows of shards: the tasks of other threads share
 * them, and those that find none free send inline. */
static unsigned shm_slots(const csess *s)
{
    unsigned n = 4 * s->cfg.window;
    return n < 64 ? 64 : n > 512 ? 512 : n;
}

/* The shared-memory lane is offered on connection 0 of every new daemon
 * session over a unix socket (GMPOOL_SHM=0 turns it off); shards travel
 * inline until SHM_OK, and for good if the daemon refuses. */
static void shm_offer(csess *s, cconn *c)
{
    const char *env = getenv("GMPOOL_SHM");
    uv_os_fd_t fd;
    if (!s->cfg.addr.is_unix || (env && strcmp(env, "0") == 0) ||
        uv_stream_get_write_queue_size(&c->h.st) != 0 ||
        uv_fileno(&c->h.h, &fd) != 0 ||
        !(s->shm = cshm_new(s->cfg.shard, shm_slots(s))))
        return;
    uint8_t frame[GMPC_HDR_LEN + 4];
    gmpc_wbuf w = {frame + GMPC_HDR_LEN, 4, 0, false};
    gmpc_w_u32(&w, cshm_size(s->shm));
    s->shm_id = csess_new_id(s);
    gmpc_hdr h = {.type = GMPC_T_SHM, .task_id = s->shm_id, .len = 4};
    gmpc_hdr_encode(&h, frame);
    int n = cshm_offer(s->shm, fd, frame, sizeof frame);
    if (n == (int)sizeof frame)
        return;
    cshm_free(s->shm);
    s->shm = NULL;
    s->shm_id = 0;
    if (n > 0) /* part of a frame: the stream is broken */
        fail_all(s, GMP_ERR_CONN, "cannot send to %s", s->cfg.server);
}

static void on_shm_answer(csess *s, const gmpc_hdr *h)
{
    s->shm_id = 0;
    if (h->type == GMPC_T_SHM_OK) {
        cshm_set_ready(s->shm);
        return;
    }
    cshm_free(s->shm);
    s->shm = NULL;
}

static void on_auth_ok(cconn *c, const gmpc_hdr *h, const uint8_t *p)
{
    csess *s = c->s;
    gmpc_auth_ok ok;
    if (c->st != CC_AUTH || gmpc_auth_ok_decode(p, h->len, &ok) != GMP_OK ||
        !gmpc_server_proof_verify(s->cfg.secret, s->cfg.secret_len,
                                  s->cfg.tenant, c->snonce, c->cnonce,
                                  ok.session_id, ok.proof) ||
        (c->idx != 0 && ok.session_id != s->session_id)) {
        fail_all(s, GMP_ERR_AUTH,
                 "%s did not prove it knows tenant '%s' (wrong server?)",
                 s->cfg.server, s->cfg.tenant);
        return;
    }
    c->st = CC_READY;
    if (c->idx != 0)
        return;
    s->session_id = ok.session_id;
    s->st = S_READY;
    shm_offer(s, c);
    if (s->st != S_READY)
        return;
    for (unsigned i = 1; i < s->cfg.n_conns; i++)
        conn_start(s, (int)i);
    if (!relogin_start(s))
        flush_waiting(s);
}

static void on_frame(cconn *c, const gmpc_hdr *h, const uint8_t *p)
{
    csess *s = c->s;
    if (h->type == GMPC_T_CHALLENGE && c->st == CC_CONNECTING) {
        on_challenge(c, h, p);
        return;
    }
    if (h->type == GMPC_T_AUTH_OK) {
        on_auth_ok(c, h, p);
        return;
    }
    if (h->type == GMPC_T_ERROR &&
        ((h->flags & GMPC_F_CLOSE) || c->st != CC_READY)) {
        fail_all(s, h->status ? h->status : GMP_ERR_PROTO, "gmpoold: %.*s",
                 (int)(h->len < GMPC_MAX_MSG ? h->len : GMPC_MAX_MSG), p);
        return;
    }
    if (s->shm_id && h->task_id == s->shm_id) {
        on_shm_answer(s, h);
        return;
    }
    if (h->type == GMPC_T_RESULT || h->type == GMPC_T_FINAL_OK ||
        h->type == GMPC_T_ERROR)
        cshm_unpark(s->shm, h->task_id, h->seq);
    route *r = route_find(s, h->task_id);
    if (!r)
        return; /* late reply for something already given up */
    if (r->task) {
        task_on_frame(r->task, h, p);
        return;
    }
    op *o = r->ctrl;
    csess_route_del(s, h->task_id);
    csess_outstanding(s, -1);
    if (o->kind == OP_RELOGIN) {
        relogin_done(s, o, h->type == GMPC_T_ERROR ? GMP_ERR_PIN : GMP_OK);
        return;
    }
    o->reply_hdr = *h;
    if (h->len && (o->reply = malloc(h->len)))
        memcpy(o->reply, p, h->len);
    o->reply_len = o->reply ? h->len : 0;
    if (h->type == GMPC_T_ERROR) {
        char msg[GMPC_MAX_MSG + 16];
        snprintf(msg, sizeof msg, "gmpoold: %.*s",
                 (int)(h->len < GMPC_MAX_MSG ? h->len : GMPC_MAX_MSG), p);
        op_complete(o, h->status ? h->status : GMP_ERR_PROTO, msg);
    } else {
        op_complete(o, GMP_OK, NULL);
    }
}

static size_t parse(cconn *c)
{
    size_t off = 0;
    while (c->open) {
        gmpc_hdr h;
        size_t used;
        int st;
        gmpc_parse r = gmpc_frame_parse(c->in.p + off, c->in.len - off, &h,
                                        &used, &st);
        if (r == GMPC_NEED_MORE)
            break;
        if (r != GMPC_FRAME) {
            fail_all(c->s, GMP_ERR_PROTO, "garbled reply from %s",
                     c->s->cfg.server);
            break;
        }
        c->s->last_rx = gmpc_now_ns();
        on_frame(c, &h, c->in.p + off + GMPC_HDR_LEN);
        off += used;
    }
    return off;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    cconn *c = st->data;
    (void)buf;
    if (n < 0) {
        fail_all(c->s, GMP_ERR_CONN, "connection to %s lost: %s",
                 c->s->cfg.server, uv_strerror((int)n));
        return;
    }
    c->in.len += (size_t)n;
    size_t used = parse(c);
    if (c->open)
        gmpc_inbuf_consume(&c->in, used, IN_CHUNK);
    flush_pumps(c->s);
}

/* ---- connecting ---- */

static void on_connect(uv_connect_t *req, int status)
{
    cconn *c = req->handle->data;
    if (!c->open)
        return;
    if (status < 0) {
        fail_all(c->s, GMP_ERR_CONN, "cannot connect to %s: %s",
                 c->s->cfg.server, uv_strerror(status));
        return;
    }
    if (!c->s->cfg.addr.is_unix)
        uv_tcp_nodelay(&c->h.tcp, 1);
    uv_read_start(&c->h.st, on_alloc, on_read);
}

static int conn_connect_tcp(cconn *c, const gmpc_addr *a, uv_loop_t *loop)
{
    struct sockaddr_storage ss;
    int rc = uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)&ss);
    if (rc)
        rc = uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)&ss);
    if (rc)
        return rc;
    uv_tcp_init(loop, &c->h.tcp);
    c->open = true;
    c->s->handles++;
    return uv_tcp_connect(&c->creq, &c->h.tcp, (struct sockaddr *)&ss,
                          on_connect);
}

static void conn_start(csess *s, int idx)
{
    cconn *c = &s->conns[idx];
    uv_loop_t *loop = rt_loop(s->rt);
    memset(c, 0, sizeof *c);
    c->s = s;
    c->idx = idx;
    c->st = CC_CONNECTING;
    c->h.h.data = c;
    int rc = 0;
    if (s->cfg.addr.is_unix) {
        uv_pipe_init(loop, &c->h.pipe, 0);
        c->open = true;
        s->handles++;
        uv_pipe_connect(&c->creq, &c->h.pipe, s->cfg.addr.path, on_connect);
    } else {
        rc = conn_connect_tcp(c, &s->cfg.addr, loop);
    }
    c->h.h.data = c;
    if (rc < 0)
        fail_all(s, GMP_ERR_CONN, "cannot connect to %s: %s", s->cfg.server,
                 uv_strerror(rc));
}

/* Nothing may wait forever: a daemon that stops answering fails every
 * outstanding request after the configured timeout. */
static void on_tick(uv_timer_t *t)
{
    csess *s = t->data;
    uint64_t now = gmpc_now_ns(), limit = (uint64_t)s->cfg.timeout_ms * 1000000u;
    if (s->st == S_CONNECTING && now - s->connect_start > limit)
        fail_all(s, GMP_ERR_TIMEOUT, "no answer from %s within %u ms",
                 s->cfg.server, s->cfg.timeout_ms);
    else if ((s->st == S_READY || s->st == S_LOGIN) && s->outstanding > 0 &&
             now - s->last_rx > limit)
        fail_all(s, GMP_ERR_TIMEOUT, "%s stopped answering for %u ms",
                 s->cfg.server, s->cfg.timeout_ms);
}

static void wait_for_ready(csess *s, op *o)
{
    if (s->wait_tail)
        s->wait_tail->next = o;
    else
        s->wait_head = o;
    s->wait_tail = o;
    o->next = NULL;
    if (!s->timer_on) {
        uv_timer_init(rt_loop(s->rt), &s->timer);
        s->timer.data = s;
        uv_timer_start(&s->timer, on_tick, TICK_MS, TICK_MS);
        s->timer_on = true;
    }
    if (s->st == S_DOWN && s->handles == 0) {
        s->st = S_CONNECTING;
        s->connect_start = gmpc_now_ns();
        conn_start(s, 0);
    }
}

static void send_ctrl(csess *s, op *o)
{
    uint64_t id = csess_new_id(s);
    o->hdr.task_id = id;
    csess_route_add(s, id, NULL, o);
    csess_outstanding(s, 1);
    if (csess_send(s, &o->hdr, o->payload, o->payload_len) != GMP_OK) {
        csess_route_del(s, id);
        csess_outstanding(s, -1);
        op_complete(o, GMP_ERR_CONN, "no connection to gmpoold");
    }
}

/* A lazy OPEN may still wait for the session when its task is freed. */
static void drop_waiting_open(csess *s, gmp_task *t)
{
    op **pp = &s->wait_head, *last = NULL;
    while (*pp) {
        op *w = *pp;
        if (w->kind == OP_OPEN && w->task == t) {
            *pp = w->next;
            op_complete(w, GMP_ERR_STATE, "task freed");
            continue;
        }
        last = w;
        pp = &w->next;
    }
    s->wait_tail = last;
}

void csess_handle_op(op *o)
{
    csess *s = o->s;
    if (o->kind == OP_CLOSE) {
        s->close_op = o;
        fail_all(s, GMP_ERR_CONN, "client closed");
        maybe_finish_close(s);
        return;
    }
    if (o->kind == OP_KICK) {
        task_kicked(o->task, s->st == S_READY);
        op_complete(o, GMP_OK, NULL);
        return;
    }
    if (o->kind == OP_TASK_FREE) {
        gmp_task *t = o->task;
        drop_waiting_open(s, t);
        task_on_free(t, o);
        task_destroy(t);
        return;
    }
    if (s->st != S_READY) {
        wait_for_ready(s, o);
        return;
    }
    if (o->kind == OP_CTRL)
        send_ctrl(s, o);
    else
        task_send_open(o->task, o);
}
