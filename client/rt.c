/* The process-wide background loop thread.  Never the default loop: the
 * application may run its own libuv.  Fork: the child drops its inherited
 * runtime without touching it (its thread does not exist there) and makes
 * a fresh one on next use; objects of the old generation fail with
 * GMP_ERR_FORKED.  So that the child inherits no lock the loop thread held
 * (OpenSSL's among them: 3.0 has no fork handlers), fork parks the loop
 * thread between callbacks first. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

struct rt {
    uv_loop_t loop;
    uv_async_t wake;
    pthread_t th;
    pthread_mutex_t mu;
    op *head, *tail;
    pthread_cond_t park_cv;     /* under mu */
    bool park_req, parked;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static rt *g_rt;
static uint64_t g_gen = 1;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static __thread char g_last_err[GMPC_MAX_MSG + 64];

int gmp_fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_err, sizeof g_last_err, fmt, ap);
    va_end(ap);
    return status;
}

GMP_API const char *gmp_client_last_error(void)
{
    return g_last_err;
}

/* The thread calling fork() waits until the loop thread sits in on_wake
 * holding nothing but r->mu's condition wait. */
static rt *g_parked;

static void atfork_prepare(void)
{
    pthread_mutex_lock(&g_mu);
    rt *r = g_rt;
    pthread_mutex_unlock(&g_mu);
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->park_req = true;
    pthread_mutex_unlock(&r->mu);
    uv_async_send(&r->wake);
    pthread_mutex_lock(&r->mu);
    while (!r->parked)
        pthread_cond_wait(&r->park_cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    g_parked = r;
}

static void atfork_parent(void)
{
    rt *r = g_parked;
    g_parked = NULL;
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->park_req = false;
    pthread_cond_broadcast(&r->park_cv);
    pthread_mutex_unlock(&r->mu);
}

static void atfork_child(void)
{
    /* The parent's loop thread is gone here; its locks may be held. */
    pthread_mutex_init(&g_mu, NULL);
    g_rt = NULL;
    g_parked = NULL;
    g_gen++;
}

static void once_init(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Called with r->mu held. */
static void park(rt *r)
{
    r->parked = true;
    pthread_cond_broadcast(&r->park_cv);
    while (r->park_req)
        pthread_cond_wait(&r->park_cv, &r->mu);
    r->parked = false;
}

static void on_wake(uv_async_t *a)
{
    rt *r = a->data;
    pthread_mutex_lock(&r->mu);
    if (r->park_req)
        park(r);
    op *o = r->head;
    r->head = r->tail = NULL;
    pthread_mutex_unlock(&r->mu);
    while (o) {
        op *n = o->next;
        o->next = NULL;
        csess_handle_op(o);
        o = n;
    }
}

static void *rt_main(void *arg)
{
    rt *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return NULL;
}

static rt *rt_create(void)
{
    rt *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->park_cv, NULL);
    if (uv_loop_init(&r->loop) != 0) {
        free(r);
        return NULL;
    }
    uv_async_init(&r->loop, &r->wake, on_wake);
    r->wake.data = r;
    /* The loop thread must not take signals meant for the application. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&r->th, NULL, rt_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        uv_close((uv_handle_t *)&r->wake, NULL);
        uv_run(&r->loop, UV_RUN_NOWAIT);
        uv_loop_close(&r->loop);
        free(r);
        return NULL;
    }
    gmpc_thread_name(r->th, "gmpool-loop", -1);
    pthread_detach(r->th);
    return r;
}

rt *rt_get(uint64_t *gen)
{
    pthread_once(&g_once, once_init);
    pthread_mutex_lock(&g_mu);
    if (!g_rt)
        g_rt = rt_create();
    rt *r = g_rt;
    *gen = g_gen;
    pthread_mutex_unlock(&g_mu);
    return r;
}

uint64_t rt_generation(void)
{
    pthread_once(&g_once, once_init);
    pthread_mutex_lock(&g_mu);
    uint64_t g = g_gen;
    pthread_mutex_unlock(&g_mu);
    return g;
}

uv_loop_t *rt_loop(rt *r)
{
    return &r->loop;
}

op *op_new(op_kind kind, csess *s)
{
    op *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->kind = kind;
    o->s = s;
    o->wait = true;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    return o;
}

void op_free(op *o)
{
    if (!o)
        return;
    /* payloads may carry a PIN or key bytes */
    if (o->payload)
        OPENSSL_cleanse(o->payload, o->payload_len);
    free(o->payload);
    free(o->reply);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o);
}

void op_complete(op *o, int status, const char *msg)
{
    pthread_mutex_lock(&o->mu);
    if (o->done) {
        pthread_mutex_unlock(&o->mu);
        return;
    }
    o->done = true;
    o->status = status;
    snprintf(o->msg, sizeof o->msg, "%s", msg ? msg : "");
    bool waited = o->wait;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    if (!waited)
        op_free(o);
}

int rt_submit(rt *r, op *o)
{
    bool wait = o->wait;
    pthread_mutex_lock(&r->mu);
    if (r->tail)
        r->tail->next = o;
    else
        r->head = o;
    r->tail = o;
    pthread_mutex_unlock(&r->mu);
    uv_async_send(&r->wake);
    if (!wait)
        return GMP_OK;
    /* The loop answers every op: replies, errors, its own timeouts. */
    pthread_mutex_lock(&o->mu);
    while (!o->done)
        pthread_cond_wait(&o->cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
    return o->status;
}
