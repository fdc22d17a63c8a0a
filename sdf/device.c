/* Devices and sessions, the handle registry, device information, random
 * numbers and private-key access rights.
 *
 * The registry (g_mu) holds every open device and session.  Their handles
 * are numbers counted up from 1 and never reused, looked up here, so a
 * closed handle stays closed even where its memory has been reused, and a
 * handle is never dereferenced.  A call finds its session here, takes a
 * reference and the session's mutex; closing takes the session out of the
 * registry first, so later calls fail cleanly while the struct lives
 * until the last reference goes.  Across fork() the registry lock is held
 * (pthread_atfork) so a child never inherits it locked; devices and
 * sessions remember the pid that opened them and a child gets
 * SDR_OPENDEVICE / SDR_OPENSESSION for them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdf_int.h"

typedef struct sdf_device {
    uintptr_t handle;
    pid_t pid;
} sdf_device;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static sdf_device **g_devs;
static size_t g_n_devs, g_cap_devs;
static sdf_session **g_sess;
static size_t g_n_sess, g_cap_sess;
static uintptr_t g_last_handle; /* registry lock */

static void lock_registry(void)
{
    pthread_mutex_lock(&g_mu);
}

static void unlock_registry(void)
{
    pthread_mutex_unlock(&g_mu);
}

static void registry_init(void)
{
    pthread_atfork(lock_registry, unlock_registry, unlock_registry);
}

/* ---- a small pointer set (registry lock held) ---- */

static bool ptr_add(void ***v, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 8;
        void **nv = realloc(*v, c * sizeof *nv);
        if (!nv)
            return false;
        *v = nv;
        *cap = c;
    }
    (*v)[(*n)++] = p;
    return true;
}

static bool ptr_del(void **v, size_t *n, const void *p)
{
    for (size_t i = 0; i < *n; i++)
        if (v[i] == p) {
            v[i] = v[--*n];
            return true;
        }
    return false;
}

/* The open device or session behind a handle, opened by this process
 * (a child after fork gets none of its parent's), or NULL. */
static sdf_device *dev_find(void *h)
{
    for (size_t i = 0; h && i < g_n_devs; i++)
        if (g_devs[i]->handle == (uintptr_t)h)
            return g_devs[i]->pid == getpid() ? g_devs[i] : NULL;
    return NULL;
}

static sdf_session *sess_find(void *h)
{
    for (size_t i = 0; h && i < g_n_sess; i++)
        if (g_sess[i]->handle == (uintptr_t)h)
            return g_sess[i]->pid == getpid() ? g_sess[i] : NULL;
    return NULL;
}

static uintptr_t next_handle_locked(void)
{
    if (++g_last_handle == 0)
        g_last_handle = 1;
    return g_last_handle;
}

/* Counted, never reused: a stale handle never names a newer object. */
uintptr_t sdf_handle_next(void)
{
    pthread_once(&g_once, registry_init);
    lock_registry();
    uintptr_t h = next_handle_locked();
    unlock_registry();
    return h;
}

/* ---- status mapping ---- */

int sdf_rv(int status)
{
    switch (status) {
    case GMP_OK:
        return SDR_OK;
    case GMP_ERR_CONN:
    case GMP_ERR_TIMEOUT:
    case GMP_ERR_PROTO:
    case GMP_ERR_SHUTDOWN:
    case GMP_ERR_AUTH:
    case GMP_ERR_NOAUTH:
        return SDR_COMMFAIL;
    case GMP_ERR_FORKED:
        return SDR_OPENSESSION;
    case GMP_ERR_NOMEM:
    case GMP_ERR_LIMIT:
        return SDR_NOBUFFER;
    case GMP_ERR_ALG:
        return SDR_ALGNOTSUPPORT;
    case GMP_ERR_KEY:
        return SDR_KEYERR;
    case GMP_ERR_NOT_FOUND:
        return SDR_KEYNOTEXIST;
    case GMP_ERR_LOGIN:
        return SDR_PARDENY;
    case GMP_ERR_PIN:
    case GMP_ERR_PIN_LOCKED:
    case GMP_ERR_PIN_UNSET:
        return SDR_PRKRERR;
    case GMP_ERR_VERIFY:
        return SDR_VERIFYERR;
    case GMP_ERR_ARG:
    case GMP_ERR_LENGTH:
    case GMP_ERR_TOO_BIG:
    case GMP_ERR_IV:
        return SDR_INARGERR;
    case GMP_ERR_BUFFER:
        return SDR_OUTARGERR;
    case GMP_ERR_STATE:
        return SDR_STEPERR;
    case GMP_ERR_NO_NODE:
        return SDR_HARDFAIL;
    default:
        return SDR_UNKNOWERR;
    }
}

/* ---- devices ---- */

/* A device is the tenant: opening one checks that the pool answers with
 * these credentials, and holds no connection itself. */
SDF_API int SDF_OpenDevice(void **phDeviceHandle)
{
    if (!phDeviceHandle)
        return SDR_OUTARGERR;
    *phDeviceHandle = NULL;
    pthread_once(&g_once, registry_init);
    gmp_client *c = NULL;
    int rc = gmp_client_open(&c, NULL);
    if (rc == GMP_OK)
        rc = gmp_client_connect(c);
    gmp_client_close(c);
    if (rc != GMP_OK)
        return SDR_OPENDEVICE;
    sdf_device *d = calloc(1, sizeof *d);
    if (!d)
        return SDR_NOBUFFER;
    d->pid = getpid();
    lock_registry();
    d->handle = next_handle_locked();
    bool ok = ptr_add((void ***)&g_devs, &g_n_devs, &g_cap_devs, d);
    unlock_registry();
    if (!ok) {
        free(d);
        return SDR_NOBUFFER;
    }
    *phDeviceHandle = (void *)d->handle;
    return SDR_OK;
}

static void session_free(sdf_session *s)
{
    gmp_task_free(s->hash);
    gmp_client_close(s->cli); /* the pool drops its session keys */
    free(s->keys.v);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void session_unref(sdf_session *s)
{
    lock_registry();
    bool last = --s->refs == 0;
    unlock_registry();
    if (last)
        session_free(s);
}

/* Ends a session already taken out of the registry: waits for a call in
 * progress, then lets the last reference free it. */
static void session_end(sdf_session *s)
{
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    pthread_mutex_unlock(&s->mu);
    session_unref(s);
}

/* Open sessions go with their device. */
SDF_API int SDF_CloseDevice(void *hDeviceHandle)
{
    lock_registry();
    sdf_device *d = dev_find(hDeviceHandle);
    if (d)
        ptr_del((void **)g_devs, &g_n_devs, d);
    unlock_registry();
    if (!d)
        return SDR_OPENDEVICE;
    for (;;) {
        sdf_session *s = NULL;
        lock_registry();
        for (size_t i = 0; i < g_n_sess && !s; i++)
            if (g_sess[i]->dev == d->handle)
                s = g_sess[i];
        if (s)
            ptr_del((void **)g_sess, &g_n_sess, s);
        unlock_registry();
        if (!s)
            break;
        session_end(s);
    }
    free(d);
    return SDR_OK;
}

/* ---- sessions ---- */

static sdf_session *session_new(uintptr_t dev)
{
    sdf_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (gmp_client_open(&s->cli, NULL) != GMP_OK ||
        gmp_client_connect(s->cli) != GMP_OK) {
        gmp_client_close(s->cli);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->dev = dev;
    s->pid = getpid();
    s->refs = 1;
    return s;
}

SDF_API int SDF_OpenSession(void *hDeviceHandle, void **phSessionHandle)
{
    if (!phSessionHandle)
        return SDR_OUTARGERR;
    *phSessionHandle = NULL;
    lock_registry();
    bool ok = dev_find(hDeviceHandle) != NULL;
    unlock_registry();
    if (!ok)
        return SDR_OPENDEVICE;
    sdf_session *s = session_new((uintptr_t)hDeviceHandle);
    if (!s)
        return SDR_OPENSESSION;
    lock_registry();
    /* the device may have closed meanwhile */
    ok = dev_find(hDeviceHandle) &&
         ptr_add((void ***)&g_sess, &g_n_sess, &g_cap_sess, s);
    if (ok)
        s->handle = next_handle_locked();
    unlock_registry();
    if (!ok) {
        session_free(s);
        return SDR_OPENSESSION;
    }
    *phSessionHandle = (void *)s->handle;
    return SDR_OK;
}

SDF_API int SDF_CloseSession(void *hSessionHandle)
{
    lock_registry();
    sdf_session *s = sess_find(hSessionHandle);
    if (s)
        ptr_del((void **)g_sess, &g_n_sess, s);
    unlock_registry();
    if (!s)
        return SDR_OPENSESSION;
    session_end(s);
    return SDR_OK;
}

int sdf_session_get(void *h, sdf_session **out)
{
    lock_registry();
    sdf_session *s = sess_find(h);
    if (s)
        s->refs++;
    unlock_registry();
    if (!s)
        return SDR_OPENSESSION;
    pthread_mutex_lock(&s->mu);
    if (s->closed) { /* closed while this call waited for it */
        pthread_mutex_unlock(&s->mu);
        session_unref(s);
        return SDR_OPENSESSION;
    }
    *out = s;
    return SDR_OK;
}

void sdf_session_put(sdf_session *s)
{
    pthread_mutex_unlock(&s->mu);
    session_unref(s);
}

/* ---- handles a session made ---- */

static bool handle_has(const sdf_handles *h, uint32_t v)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i] == v)
            return true;
    return false;
}

static int handle_add(sdf_handles *h, uint32_t v)
{
    if (h->n == h->cap) {
        size_t c = h->cap ? 2 * h->cap : 8;
        uint32_t *nv = realloc(h->v, c * sizeof *nv);
        if (!nv)
            return SDR_NOBUFFER;
        h->v = nv;
        h->cap = c;
    }
    h->v[h->n++] = v;
    return SDR_OK;
}

/* Keeps the order: the oldest handle stays first. */
void sdf_handle_del(sdf_handles *h, uint32_t v)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i] == v) {
            memmove(h->v + i, h->v + i + 1, (h->n - i - 1) * sizeof *h->v);
            h->n--;
            return;
        }
}

int sdf_key_out(sdf_session *s, uint32_t handle, void **out)
{
    int rv = handle_add(&s->keys, handle);
    if (rv != SDR_OK) {
        gmp_key_destroy(s->cli, handle);
        return rv;
    }
    *out = (void *)(uintptr_t)handle;
    return SDR_OK;
}

int sdf_key_in(sdf_session *s, void *h, uint32_t *out)
{
    uintptr_t v = (uintptr_t)h;
    if (v == 0 || v > UINT32_MAX || !handle_has(&s->keys, (uint32_t)v))
        return SDR_KEYNOTEXIST;
    *out = (uint32_t)v;
    return SDR_OK;
}

/* ---- device information, random, access rights ---- */

static void fixed_str(unsigned char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    memset(dst, 0, cap);
    memcpy(dst, src, n < cap ? n : cap);
}

/* The truth about the pool: SM2 (256-bit), SM4 in the modes this library
 * offers, SM3, and the VCM's file storage as the buffer size. */
static int device_info(sdf_session *s, DEVICEINFO *info)
{
    gmp_sdf_info si;
    gmp_token_info ti;
    int rc = gmp_sdf_get_info(s->cli, &si);
    if (rc == GMP_OK)
        rc = gmp_token_get_info(s->cli, &ti);
    if (rc != GMP_OK)
        return sdf_rv(rc);
    char serial[32];
    snprintf(serial, sizeof serial, "VCM%013u", ti.vcm);
    memset(info, 0, sizeof *info);
    fixed_str(info->IssuerName, sizeof info->IssuerName, "gmpool");
    fixed_str(info->DeviceName, sizeof info->DeviceName, "gmpool pool");
    fixed_str(info->DeviceSerial, sizeof info->DeviceSerial, serial);
    info->DeviceVersion = 0x00000100; /* GMPOOL_VERSION_STRING 0.1.0 */
    info->StandardVersion = 1;
    info->AsymAlgAbility[0] = SGD_SM2_1 | SGD_SM2_2 | SGD_SM2_3;
    info->AsymAlgAbility[1] = SDF_ECC_BITS;
    info->SymAlgAbility = SGD_SM4_ECB | SGD_SM4_CBC | SGD_SM4_CFB |
                          SGD_SM4_OFB | SGD_SM4_MAC;
    info->HashAlgAbility = SGD_SM3;
    info->BufferSize = si.file_space;
    return SDR_OK;
}

SDF_API int SDF_GetDeviceInfo(void *hSessionHandle, DEVICEINFO *pstDeviceInfo)
{
    sdf_session *s;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = pstDeviceInfo ? device_info(s, pstDeviceInfo) : SDR_OUTARGERR;
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_GenerateRandom(void *hSessionHandle, unsigned int uiLength,
                               unsigned char *pucRandom)
{
    sdf_session *s;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    if (uiLength == 0)
        rv = SDR_INARGERR;
    else if (!pucRandom)
        rv = SDR_OUTARGERR;
    else if (gmp_random(s->cli, pucRandom, uiLength) != GMP_OK)
        rv = SDR_RANDERR;
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_GetPrivateKeyAccessRight(void *hSessionHandle,
                                         unsigned int uiKeyIndex,
                                         unsigned char *pucPassword,
                                         unsigned int uiPwdLength)
{
    sdf_session *s;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = !pucPassword ? SDR_INARGERR
                      : sdf_rv(gmp_sdf_unlock(s->cli, uiKeyIndex, pucPassword,
                                              uiPwdLength));
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_ReleasePrivateKeyAccessRight(void *hSessionHandle,
                                             unsigned int uiKeyIndex)
{
    sdf_session *s;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = sdf_rv(gmp_sdf_lock(s->cli, uiKeyIndex));
    sdf_session_put(s);
    return rv;
}
