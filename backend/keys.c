/* KEY frames: the tenant's keystore and token operations (store.c does
 * the SQLite and wrapping, token.c the PIN; this file validates and
 * encodes).  Private keys are invisible until the session logs in, so
 * every lookup goes through key_find. */
#include <string.h>

#include <openssl/crypto.h>

#include "gmpd.h"
#include "gmpool.h"
#include "util.h"

#define KEY_FLAGS_KNOWN                                                      \
    (GMP_KEYF_SENSITIVE | GMP_KEYF_EXTRACTABLE | GMP_KEYF_TOKEN |             \
     GMP_KEYF_PRIVATE)

static void read_label(gmpc_rbuf *r, gmpd_key_attr *a)
{
    size_t n = 0;
    const uint8_t *label = gmpc_r_blob(r, GMPD_NAME_MAX, &n);
    if (n)
        memcpy(a->label, label, n);
    a->label[n] = '\0';
}

static void read_app(gmpc_rbuf *r, gmpd_key_attr *a)
{
    size_t n = 0;
    const uint8_t *app = gmpc_r_blob(r, GMPD_APP_MAX, &n);
    if (n)
        memcpy(a->app, app, n);
    a->app_len = (uint16_t)n;
}

/* After the fields are read: everything consumed, printable label, known
 * flags, and a private key only from a logged-in session. */
static int attr_check(gmpd_session *s, gmpc_rbuf *r, const gmpd_key_attr *a)
{
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    for (const char *c = a->label; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            return GMP_ERR_ARG;
    if (a->flags & ~KEY_FLAGS_KNOWN)
        return GMP_ERR_ARG;
    return gmpd_token_may_see(s, a->flags) ? GMP_OK : GMP_ERR_LOGIN;
}

static int key_create(gmpd_session *s, gmpc_rbuf *r, bool generate,
                      gmpc_wbuf *w)
{
    gmpd_key_attr a = {.vcm = s->tenant.vcm, .session = s->id};
    uint8_t value[GMP_MAX_KEY_LEN];
    size_t len = 0;
    const uint8_t *v = NULL;
    a.type = gmpc_r_u16(r);
    a.flags = gmpc_r_u32(r);
    read_label(r, &a);
    if (generate)
        len = gmpc_r_u32(r);
    else
        v = gmpc_r_blob(r, GMP_MAX_KEY_LEN, &len);
    if (r->off < r->len)
        read_app(r, &a);
    int rc = attr_check(s, r, &a);
    if (rc)
        return rc;
    if (!gmpc_key_len_ok(a.type, len))
        return GMP_ERR_KEY;
    a.len = (uint32_t)len;
    if (generate && gmpc_random(value, len) != GMP_OK)
        return GMP_ERR_INTERNAL;
    if (!generate)
        memcpy(value, v, len);
    uint32_t handle = 0;
    rc = gmpd_key_put(gmpd->store, &a, value, len, &handle);
    OPENSSL_cleanse(value, sizeof value);
    gmpc_w_u32(w, handle);
    return rc;
}

/* What a session may see of its VCM's keystore: not the SDF internal keys
 * (sdf.c alone reaches those, by index), private keys only after login,
 * and session keys only of its own session (another application's
 * session objects are not its).  Anything else, like another VCM's
 * handle, is GMP_ERR_NOT_FOUND, as if it never was. */
static bool key_visible(gmpd_session *s, const gmpd_key_attr *a)
{
    return !a->idx && gmpd_token_may_see(s, a->flags) &&
           ((a->flags & GMP_KEYF_TOKEN) || a->session == s->id);
}

int gmpd_key_find(gmpd_session *s, uint32_t handle, gmpd_key_attr *a,
                  uint8_t *value, size_t cap, size_t *len)
{
    size_t n = 0;
    int rc = gmpd_key_get(gmpd->store, s->tenant.vcm, handle, a, value, cap,
                          len ? len : &n);
    if (rc == GMP_OK && !key_visible(s, a)) {
        if (value)
            OPENSSL_cleanse(value, cap);
        rc = GMP_ERR_NOT_FOUND;
    }
    return rc;
}

static int key_info(gmpd_session *s, uint32_t handle, gmpc_wbuf *w)
{
    gmpd_key_attr a;
    int rc = gmpd_key_find(s, handle, &a, NULL, 0, NULL);
    if (rc != GMP_OK)
        return rc;
    gmpc_w_u32(w, a.handle);
    gmpc_w_u16(w, a.type);
    gmpc_w_u32(w, a.len);
    gmpc_w_u32(w, a.flags);
    gmpc_w_blob(w, a.label, strlen(a.label));
    gmpc_w_blob(w, a.app, a.app_len);
    return GMP_OK;
}

/* A sensitive or unextractable key's value never leaves the pool
 * (PKCS#11 CKA_SENSITIVE / CKA_EXTRACTABLE). */
static int key_export(gmpd_session *s, uint32_t handle, gmpc_wbuf *w)
{
    gmpd_key_attr a;
    uint8_t value[GMP_MAX_KEY_LEN];
    size_t len = 0;
    int rc = gmpd_key_find(s, handle, &a, value, sizeof value, &len);
    if (rc == GMP_OK && ((a.flags & GMP_KEYF_SENSITIVE) ||
                         !(a.flags & GMP_KEYF_EXTRACTABLE)))
        rc = GMP_ERR_DENIED;
    if (rc == GMP_OK)
        gmpc_w_blob(w, value, len);
    OPENSSL_cleanse(value, sizeof value);
    return rc;
}

static int key_destroy(gmpd_session *s, uint32_t handle)
{
    gmpd_key_attr a;
    int rc = gmpd_key_find(s, handle, &a, NULL, 0, NULL);
    return rc ? rc : gmpd_key_delete(gmpd->store, s->tenant.vcm, handle);
}

/* Security attributes only tighten (PKCS#11: CKA_SENSITIVE may go from
 * false to true, CKA_EXTRACTABLE from true to false); token and private
 * are fixed at creation. */
static int key_update(gmpd_session *s, gmpc_rbuf *r)
{
    gmpd_key_attr cur, a;
    uint32_t handle = gmpc_r_u32(r);
    memset(&a, 0, sizeof a);
    a.flags = gmpc_r_u32(r);
    read_label(r, &a);
    read_app(r, &a);
    int rc = attr_check(s, r, &a);
    if (!rc)
        rc = gmpd_key_find(s, handle, &cur, NULL, 0, NULL);
    if (rc)
        return rc;
    uint32_t fixed = GMP_KEYF_TOKEN | GMP_KEYF_PRIVATE;
    if ((a.flags & fixed) != (cur.flags & fixed) ||
        ((cur.flags & GMP_KEYF_SENSITIVE) && !(a.flags & GMP_KEYF_SENSITIVE)) ||
        (!(cur.flags & GMP_KEYF_EXTRACTABLE) &&
         (a.flags & GMP_KEYF_EXTRACTABLE)))
        return GMP_ERR_DENIED;
    a.handle = cur.handle;
    a.vcm = cur.vcm;
    a.type = cur.type;
    a.len = cur.len;
    a.session = cur.session;
    return gmpd_key_update(gmpd->store, &a);
}

typedef struct list_ctx {
    gmpd_session *s;
    uint32_t after;
    uint32_t handles[GMPC_KEY_LIST_MAX];
    uint16_t n;
} list_ctx;

static int list_one(const gmpd_key_attr *a, void *arg)
{
    list_ctx *l = arg;
    if (a->handle <= l->after || !key_visible(l->s, a))
        return 0;
    l->handles[l->n++] = a->handle;
    return l->n == GMPC_KEY_LIST_MAX;
}

static int key_list(gmpd_session *s, uint32_t after, gmpc_wbuf *w)
{
    list_ctx l = {.s = s, .after = after};
    int rc = gmpd_key_list(gmpd->store, s->tenant.vcm, list_one, &l);
    gmpc_w_u16(w, l.n);
    for (uint16_t i = 0; i < l.n; i++)
        gmpc_w_u32(w, l.handles[i]);
    return rc;
}

static int token_info(gmpd_session *s, gmpc_wbuf *w)
{
    gmpd_token_state t;
    int rc = gmpd_token_info(s, &t);
    uint32_t flags = (t.pin_set ? GMPC_TOKF_PIN_SET : 0) |
                     (t.locked ? GMPC_TOKF_PIN_LOCKED : 0) |
                     (t.logged_in ? GMPC_TOKF_LOGGED_IN : 0);
    gmpc_w_u32(w, flags);
    gmpc_w_u32(w, t.fails);
    gmpc_w_u32(w, GMPD_PIN_TRIES);
    gmpc_w_u32(w, s->tenant.vcm);
    gmpc_w_blob(w, s->tenant.name, strlen(s->tenant.name));
    return rc;
}

static int token_pin(gmpd_session *s, gmpc_rbuf *r, uint8_t op)
{
    size_t n1 = 0, n2 = 0;
    const uint8_t *p1 = gmpc_r_blob(r, GMPD_PIN_MAX + 1, &n1);
    const uint8_t *p2 = op == GMPC_TOKEN_SET_PIN
                            ? gmpc_r_blob(r, GMPD_PIN_MAX + 1, &n2)
                            : NULL;
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    int rc = op == GMPC_TOKEN_LOGIN ? gmpd_token_login(s, p1, n1)
                                    : gmpd_token_set_pin(s, p1, n1, p2, n2);
    if (rc == GMP_ERR_PIN || rc == GMP_ERR_PIN_LOCKED)
        gmpd_log(GMPD_WARN, "session %016llx tenant %s: %s",
                 (unsigned long long)s->id, s->tenant.name, gmp_strerror(rc));
    return rc;
}

static int by_handle(gmpd_session *s, uint8_t op, gmpc_rbuf *r, gmpc_wbuf *w)
{
    uint32_t handle = gmpc_r_u32(r);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    switch (op) {
    case GMPC_KEY_INFO:
        return key_info(s, handle, w);
    case GMPC_KEY_EXPORT:
        return key_export(s, handle, w);
    case GMPC_KEY_DESTROY:
        return key_destroy(s, handle);
    case GMPC_KEY_LIST:
        return key_list(s, handle, w);
    default:
        return GMP_ERR_ARG;
    }
}

int gmpd_key_request(gmpd_session *s, const uint8_t *p, size_t n,
                     uint8_t *out, size_t cap, size_t *out_len)
{
    gmpc_rbuf r = {p, n, 0, false};
    gmpc_wbuf w = {out, cap, 0, false};
    uint8_t op = gmpc_r_u8(&r);
    int rc;
    switch (op) {
    case GMPC_KEY_IMPORT:
    case GMPC_KEY_GENERATE:
        rc = key_create(s, &r, op == GMPC_KEY_GENERATE, &w);
        break;
    case GMPC_KEY_UPDATE:
        rc = key_update(s, &r);
        break;
    case GMPC_TOKEN_INFO:
        rc = gmpc_r_done(&r) ? token_info(s, &w) : GMP_ERR_PROTO;
        break;
    case GMPC_TOKEN_LOGIN:
    case GMPC_TOKEN_SET_PIN:
        rc = token_pin(s, &r, op);
        break;
    case GMPC_TOKEN_LOGOUT:
        rc = gmpc_r_done(&r) ? GMP_OK : GMP_ERR_PROTO;
        if (!rc)
            gmpd_token_logout(s);
        break;
    default:
        rc = op >= GMPC_SDF_FIRST && op <= GMPC_SDF_LAST
                 ? gmpd_sdf_request(s, op, &r, &w)
                 : by_handle(s, op, &r, &w);
    }
    *out_len = w.len;
    return w.overflow ? GMP_ERR_INTERNAL : rc;
}
