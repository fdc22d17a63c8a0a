/* Module state: initialisation, locking, slots, sessions and login.  The
 * Cryptoki entry points themselves are in api.c.
 *
 * Fork: the state remembers the pid that initialised it.  In a child,
 * every call answers CKR_CRYPTOKI_NOT_INITIALIZED until C_Initialize,
 * which drops the inherited state without touching the parent's
 * connections or locks (they belong to threads the child does not have). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "module.h"

p11_global G;

/* ---- locking ---- */

struct p11_mutex {
    void *cb;                 /* the application's mutex, when it gave us */
    pthread_mutex_t os;
};

static CK_C_INITIALIZE_ARGS g_locks; /* callbacks, when used */

CK_RV p11_locking_setup(const CK_C_INITIALIZE_ARGS *a)
{
    memset(&g_locks, 0, sizeof g_locks);
    if (!a)
        return CKR_OK;
    int given = !!a->CreateMutex + !!a->DestroyMutex + !!a->LockMutex +
                !!a->UnlockMutex;
    if (given != 0 && given != 4)
        return CKR_ARGUMENTS_BAD;
    if (a->flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS)
        return CKR_NEED_TO_CREATE_THREADS; /* the client has a loop thread */
    /* with CKF_OS_LOCKING_OK either will do; OS locks are cheaper */
    if (given == 4 && !(a->flags & CKF_OS_LOCKING_OK))
        g_locks = *a;
    return CKR_OK;
}

CK_RV p11_mutex_new(p11_mutex **out)
{
    p11_mutex *m = calloc(1, sizeof *m);
    if (!m)
        return CKR_HOST_MEMORY;
    CK_RV rv = g_locks.CreateMutex ? g_locks.CreateMutex(&m->cb)
               : pthread_mutex_init(&m->os, NULL) ? CKR_GENERAL_ERROR
                                                  : CKR_OK;
    if (rv) {
        free(m);
        return rv;
    }
    *out = m;
    return CKR_OK;
}

void p11_mutex_free(p11_mutex *m)
{
    if (!m)
        return;
    if (m->cb)
        g_locks.DestroyMutex(m->cb);
    else
        pthread_mutex_destroy(&m->os);
    free(m);
}

void p11_lock(p11_mutex *m)
{
    if (m->cb)
        g_locks.LockMutex(m->cb);
    else
        pthread_mutex_lock(&m->os);
}

void p11_unlock(p11_mutex *m)
{
    if (m->cb)
        g_locks.UnlockMutex(m->cb);
    else
        pthread_mutex_unlock(&m->os);
}

/* ---- status mapping ---- */

CK_RV p11_from_gmp(int status)
{
    switch (status) {
    case GMP_OK:
        return CKR_OK;
    case GMP_ERR_NOMEM:
        return CKR_HOST_MEMORY;
    case GMP_ERR_LIMIT:
        return CKR_DEVICE_MEMORY;
    case GMP_ERR_FORKED:
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    case GMP_ERR_PIN:
        return CKR_PIN_INCORRECT;
    case GMP_ERR_PIN_LOCKED:
        return CKR_PIN_LOCKED;
    case GMP_ERR_PIN_UNSET:
        return CKR_USER_PIN_NOT_INITIALIZED;
    case GMP_ERR_LOGIN:
        return CKR_USER_NOT_LOGGED_IN;
    case GMP_ERR_NOT_FOUND:
        return CKR_OBJECT_HANDLE_INVALID;
    case GMP_ERR_KEY:
        return CKR_KEY_TYPE_INCONSISTENT;
    case GMP_ERR_DENIED:
        return CKR_ATTRIBUTE_SENSITIVE;
    case GMP_ERR_LENGTH:
        return CKR_DATA_LEN_RANGE;
    case GMP_ERR_ARG:
        return CKR_ARGUMENTS_BAD;
    default: /* the pool cannot be reached or failed */
        return CKR_DEVICE_ERROR;
    }
}

/* ---- initialisation ---- */

bool p11_is_init(void)
{
    return G.init && G.pid == getpid();
}

/* C_Initialize and C_Finalize one at a time: threads of one application
 * (pkcs11-tool --test-threads, for one) may race to initialise.  An OS
 * lock, since the application's callbacks are not known yet; a child
 * gets it fresh (a parent thread may have held it at fork). */
static pthread_mutex_t g_init_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;

static void init_mu_child(void)
{
    pthread_mutex_init(&g_init_mu, NULL);
}

static void init_mu_setup(void)
{
    pthread_atfork(NULL, NULL, init_mu_child);
}

void p11_init_lock(void)
{
    pthread_once(&g_init_once, init_mu_setup);
    pthread_mutex_lock(&g_init_mu);
}

void p11_init_unlock(void)
{
    pthread_mutex_unlock(&g_init_mu);
}

static CK_RV slot_add(const char *credentials)
{
    if (G.n_slots == P11_MAX_SLOTS)
        return CKR_OK; /* more files than slots: the rest are ignored */
    p11_slot *sl = &G.slots[G.n_slots];
    memset(sl, 0, sizeof *sl);
    sl->id = G.n_slots;
    snprintf(sl->credentials, sizeof sl->credentials, "%s", credentials);
    gmp_options o = {.credentials = credentials[0] ? sl->credentials : NULL};
    int rc = gmp_client_open(&sl->cli, &o);
    if (rc)
        return rc == GMP_ERR_CONFIG ? CKR_GENERAL_ERROR : p11_from_gmp(rc);
    G.n_slots++;
    return CKR_OK;
}

/* GMPOOL_CREDENTIALS may name several files, ':'-separated: one slot (one
 * tenant's token) each.  Without it, the daemon's default credentials. */
static CK_RV slots_open(void)
{
    const char *env = getenv("GMPOOL_CREDENTIALS");
    if (!env || !*env)
        return slot_add("");
    char *list = strdup(env), *save = NULL;
    if (!list)
        return CKR_HOST_MEMORY;
    CK_RV rv = CKR_OK;
    for (char *f = strtok_r(list, ":", &save); f && !rv;
         f = strtok_r(NULL, ":", &save))
        rv = slot_add(f);
    free(list);
    return rv;
}

static void session_free(p11_session *s)
{
    for (int i = 0; i < OPC_N; i++)
        p11_op_free(s->op[i]);
    free(s->found);
    p11_mutex_free(s->mu);
    free(s);
}

/* A child drops what it inherited without touching it: the parent's
 * locks may be held by threads that do not exist here. */
static void forget_inherited(void)
{
    for (size_t i = 0; i < G.n_slots; i++)
        gmp_client_close(G.slots[i].cli); /* frees only, in a child */
    free(G.sess);
    free(G.objs);
    memset(&G, 0, sizeof G);
}

CK_RV p11_initialize(const CK_C_INITIALIZE_ARGS *a)
{
    if (p11_is_init())
        return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    if (G.init)
        forget_inherited();
    CK_RV rv = p11_locking_setup(a);
    if (!rv)
        rv = p11_mutex_new(&G.mu);
    if (!rv)
        rv = slots_open();
    if (rv) {
        p11_finalize();
        return rv;
    }
    G.next_handle = 1;
    G.pid = getpid();
    G.init = true;
    return CKR_OK;
}

/* Closing the clients ends their pool sessions, and the pool drops the
 * session objects with them. */
void p11_finalize(void)
{
    for (size_t i = 0; i < G.n_sess; i++)
        session_free(G.sess[i]);
    for (size_t i = 0; i < G.n_slots; i++)
        gmp_client_close(G.slots[i].cli);
    free(G.sess);
    free(G.objs);
    p11_mutex_free(G.mu);
    memset(&G, 0, sizeof G);
}

/* ---- slots ---- */

p11_slot *p11_slot_get(CK_SLOT_ID id)
{
    return id < G.n_slots ? &G.slots[id] : NULL;
}

/* The client holds the login (and repeats it after a daemon restart). */
bool p11_logged_in(p11_slot *sl)
{
    return gmp_logged_in(sl->cli) != 0;
}

void p11_slot_counts(p11_slot *sl, CK_ULONG *all, CK_ULONG *rw)
{
    *all = *rw = 0;
    p11_lock(G.mu);
    for (size_t i = 0; i < G.n_sess; i++) {
        if (G.sess[i]->slot != sl)
            continue;
        (*all)++;
        *rw += (G.sess[i]->flags & CKF_RW_SESSION) != 0;
    }
    p11_unlock(G.mu);
}

/* ---- sessions ---- */

CK_RV p11_session_open(p11_slot *sl, CK_FLAGS flags, CK_SESSION_HANDLE *out)
{
    p11_session *s = calloc(1, sizeof *s);
    if (!s)
        return CKR_HOST_MEMORY;
    CK_RV rv = p11_mutex_new(&s->mu);
    if (rv) {
        free(s);
        return rv;
    }
    s->slot = sl;
    s->flags = flags & (CKF_RW_SESSION | CKF_SERIAL_SESSION);
    s->refs = 1; /* the table's */
    p11_lock(G.mu);
    if (G.n_sess == G.cap_sess) {
        size_t cap = G.cap_sess ? 2 * G.cap_sess : 16;
        p11_session **v = realloc(G.sess, cap * sizeof *v);
        if (!v) {
            p11_unlock(G.mu);
            session_free(s);
            return CKR_HOST_MEMORY;
        }
        G.sess = v;
        G.cap_sess = cap;
    }
    s->handle = G.next_handle++;
    G.sess[G.n_sess++] = s;
    p11_unlock(G.mu);
    *out = s->handle;
    return CKR_OK;
}

/* Takes the session for one call: a reference, then its lock. */
CK_RV p11_session_get(CK_SESSION_HANDLE h, p11_session **out)
{
    if (!p11_is_init())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    p11_session *s = NULL;
    p11_lock(G.mu);
    for (size_t i = 0; i < G.n_sess && !s; i++)
        if (G.sess[i]->handle == h)
            s = G.sess[i];
    if (s)
        s->refs++;
    p11_unlock(G.mu);
    if (!s)
        return CKR_SESSION_HANDLE_INVALID;
    p11_lock(s->mu);
    if (s->closed) {
        p11_session_put(s);
        return CKR_SESSION_HANDLE_INVALID;
    }
    *out = s;
    return CKR_OK;
}

void p11_session_put(p11_session *s)
{
    p11_unlock(s->mu);
    p11_lock(G.mu);
    bool last = --s->refs == 0;
    p11_unlock(G.mu);
    if (last)
        session_free(s);
}

/* Session objects of s, taken off the list; the caller destroys them. */
static size_t objects_take(p11_session *s, CK_OBJECT_HANDLE **out)
{
    size_t n = 0;
    CK_OBJECT_HANDLE *v = malloc((G.n_objs ? G.n_objs : 1) * sizeof *v);
    for (size_t i = 0; i < G.n_objs;) {
        if (G.objs[i].session != s->handle) {
            i++;
            continue;
        }
        if (v)
            v[n++] = G.objs[i].handle;
        G.objs[i] = G.objs[--G.n_objs];
    }
    *out = v;
    return n;
}

/* Called with s taken (p11_session_get); s is gone after it. */
void p11_session_close(p11_session *s)
{
    CK_OBJECT_HANDLE *objs = NULL;
    bool last_on_slot = true;
    p11_lock(G.mu);
    for (size_t i = 0; i < G.n_sess; i++) {
        if (G.sess[i] == s) {
            G.sess[i] = G.sess[--G.n_sess];
            i--;
        } else if (G.sess[i]->slot == s->slot) {
            last_on_slot = false;
        }
    }
    s->closed = true;
    s->refs--; /* the table's */
    size_t n = objects_take(s, &objs);
    p11_unlock(G.mu);
    for (size_t i = 0; i < n; i++)
        gmp_key_destroy(s->slot->cli, (uint32_t)objs[i]);
    free(objs);
    /* PKCS#11: closing the application's last session logs it out */
    if (last_on_slot)
        gmp_logout(s->slot->cli);
    p11_session_put(s);
}

/* The handles of the open sessions on sl (for C_CloseAllSessions). */
size_t p11_slot_sessions(p11_slot *sl, CK_SESSION_HANDLE **out)
{
    p11_lock(G.mu);
    CK_SESSION_HANDLE *v = malloc((G.n_sess ? G.n_sess : 1) * sizeof *v);
    size_t n = 0;
    for (size_t i = 0; v && i < G.n_sess; i++)
        if (G.sess[i]->slot == sl)
            v[n++] = G.sess[i]->handle;
    p11_unlock(G.mu);
    *out = v;
    return n;
}

CK_STATE p11_session_state(p11_session *s)
{
    bool user = p11_logged_in(s->slot);
    if (s->flags & CKF_RW_SESSION)
        return user ? CKS_RW_USER_FUNCTIONS : CKS_RW_PUBLIC_SESSION;
    return user ? CKS_RO_USER_FUNCTIONS : CKS_RO_PUBLIC_SESSION;
}

void p11_session_object_add(p11_session *s, CK_OBJECT_HANDLE h)
{
    p11_lock(G.mu);
    if (G.n_objs == G.cap_objs) {
        size_t cap = G.cap_objs ? 2 * G.cap_objs : 16;
        p11_sobj *v = realloc(G.objs, cap * sizeof *v);
        if (v) {
            G.objs = v;
            G.cap_objs = cap;
        }
    }
    /* out of memory: the object then lives until C_Finalize */
    if (G.n_objs < G.cap_objs)
        G.objs[G.n_objs++] = (p11_sobj){h, s->handle};
    p11_unlock(G.mu);
}

void p11_session_object_forget(CK_OBJECT_HANDLE h)
{
    p11_lock(G.mu);
    for (size_t i = 0; i < G.n_objs; i++)
        if (G.objs[i].handle == h)
            G.objs[i--] = G.objs[--G.n_objs];
    p11_unlock(G.mu);
}
