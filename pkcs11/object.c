/* Secret-key objects: PKCS#11 attributes over the pool's keystore.  The
 * pool keeps what it enforces (type, length, sensitive, extractable,
 * token, private) and the value; the rest (label, id, dates, usage flags)
 * travels as an opaque blob stored with the key:
 *   version u8 (1) || bools u32 || keygen mechanism u32 || label blob ||
 *   id blob || start date (8) || end date (8)                           */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "p11.h"
#include "proto.h"

#define APP_VERSION 1
#define NO_MECH 0xFFFFFFFFu

/* ---- blob ---- */

static size_t app_encode(const p11_key *k, uint8_t *buf, size_t cap)
{
    gmpc_wbuf w = {buf, cap, 0, false};
    gmpc_w_u8(&w, APP_VERSION);
    gmpc_w_u32(&w, k->bools);
    gmpc_w_u32(&w, k->gen_mech == CK_UNAVAILABLE_INFORMATION
                       ? NO_MECH
                       : (uint32_t)k->gen_mech);
    gmpc_w_blob(&w, k->label, k->label_len);
    gmpc_w_blob(&w, k->id, k->id_len);
    gmpc_w_bytes(&w, &k->start, sizeof k->start);
    gmpc_w_bytes(&w, &k->end, sizeof k->end);
    return w.overflow ? 0 : w.len;
}

/* A key made outside PKCS#11 (gmp_key_*, gmpoolctl, SDF) has no blob:
 * it gets the usage of its type and no label or id. */
static void app_defaults(p11_key *k)
{
    k->bools = P11B_ENCRYPT | P11B_DECRYPT | P11B_SIGN | P11B_VERIFY |
               P11B_MODIFIABLE | P11B_COPYABLE | P11B_DESTROYABLE;
    k->gen_mech = CK_UNAVAILABLE_INFORMATION;
    memset(&k->start, 0, sizeof k->start);
    memset(&k->end, 0, sizeof k->end);
}

static void app_decode(p11_key *k, const uint8_t *p, size_t n)
{
    gmpc_rbuf r = {p, n, 0, false};
    size_t ll = 0, il = 0;
    app_defaults(k);
    if (n == 0 || gmpc_r_u8(&r) != APP_VERSION)
        return;
    uint32_t bools = gmpc_r_u32(&r), mech = gmpc_r_u32(&r);
    const uint8_t *label = gmpc_r_blob(&r, P11_LABEL_MAX, &ll);
    const uint8_t *id = gmpc_r_blob(&r, P11_ID_MAX, &il);
    const uint8_t *start = gmpc_r_bytes(&r, sizeof k->start);
    const uint8_t *end = gmpc_r_bytes(&r, sizeof k->end);
    if (!gmpc_r_done(&r))
        return;
    k->bools = bools;
    k->gen_mech = mech == NO_MECH ? CK_UNAVAILABLE_INFORMATION : mech;
    memcpy(k->label, label, ll);
    k->label_len = ll;
    memcpy(k->id, id, il);
    k->id_len = il;
    memcpy(&k->start, start, sizeof k->start);
    memcpy(&k->end, end, sizeof k->end);
}

static CK_KEY_TYPE key_type_of(uint16_t t)
{
    return t == GMP_KEY_SM4   ? CKK_SM4
           : t == GMP_KEY_AES ? CKK_AES
                              : CKK_GENERIC_SECRET;
}

/* 0 for a key type the pool does not keep. */
static uint16_t gmp_type_of(CK_KEY_TYPE t)
{
    return t == CKK_SM4              ? GMP_KEY_SM4
           : t == CKK_AES            ? GMP_KEY_AES
           : t == CKK_GENERIC_SECRET ? GMP_KEY_GENERIC
                                     : 0;
}

CK_RV p11_key_load(p11_slot *sl, CK_OBJECT_HANDLE h, p11_key *k)
{
    gmp_key_info info;
    if (h == CK_INVALID_HANDLE || h > UINT32_MAX)
        return CKR_OBJECT_HANDLE_INVALID;
    int rc = gmp_key_get_info(sl->cli, (uint32_t)h, &info);
    if (rc == GMP_ERR_NOT_FOUND || rc == GMP_ERR_KEY)
        return CKR_OBJECT_HANDLE_INVALID;
    if (rc)
        return p11_from_gmp(rc);
    memset(k, 0, sizeof *k);
    k->handle = h;
    k->key_type = key_type_of(info.type);
    k->value_len = info.len;
    k->gflags = info.flags;
    app_decode(k, info.app, info.app_len);
    return CKR_OK;
}

/* ---- reading attributes ---- */

typedef struct attr_val {
    const void *p;
    size_t n;
    CK_BBOOL b;
    CK_ULONG ul;
} attr_val;

static void val_bool(attr_val *v, bool b)
{
    v->b = b ? CK_TRUE : CK_FALSE;
    v->p = &v->b;
    v->n = sizeof v->b;
}

static void val_ulong(attr_val *v, CK_ULONG x)
{
    v->ul = x;
    v->p = &v->ul;
    v->n = sizeof v->ul;
}

static const struct {
    CK_ATTRIBUTE_TYPE type;
    uint32_t bit;
} g_bool_attrs[] = {
    {CKA_ENCRYPT, P11B_ENCRYPT},
    {CKA_DECRYPT, P11B_DECRYPT},
    {CKA_SIGN, P11B_SIGN},
    {CKA_VERIFY, P11B_VERIFY},
    {CKA_WRAP, P11B_WRAP},
    {CKA_UNWRAP, P11B_UNWRAP},
    {CKA_DERIVE, P11B_DERIVE},
    {CKA_MODIFIABLE, P11B_MODIFIABLE},
    {CKA_COPYABLE, P11B_COPYABLE},
    {CKA_DESTROYABLE, P11B_DESTROYABLE},
    {CKA_LOCAL, P11B_LOCAL},
    {CKA_ALWAYS_SENSITIVE, P11B_ALWAYS_SENSITIVE},
    {CKA_NEVER_EXTRACTABLE, P11B_NEVER_EXTRACTABLE},
    {CKA_WRAP_WITH_TRUSTED, P11B_WRAP_WITH_TRUSTED},
    {CKA_TRUSTED, P11B_TRUSTED},
};
#define N_BOOL_ATTRS (sizeof g_bool_attrs / sizeof g_bool_attrs[0])

static uint32_t bool_bit(CK_ATTRIBUTE_TYPE t)
{
    for (size_t i = 0; i < N_BOOL_ATTRS; i++)
        if (g_bool_attrs[i].type == t)
            return g_bool_attrs[i].bit;
    return 0;
}

static bool gflag_attr(const p11_key *k, CK_ATTRIBUTE_TYPE t, attr_val *v)
{
    uint32_t f = t == CKA_TOKEN         ? GMP_KEYF_TOKEN
                 : t == CKA_PRIVATE     ? GMP_KEYF_PRIVATE
                 : t == CKA_SENSITIVE   ? GMP_KEYF_SENSITIVE
                 : t == CKA_EXTRACTABLE ? GMP_KEYF_EXTRACTABLE
                                        : 0;
    if (f)
        val_bool(v, k->gflags & f);
    return f != 0;
}

/* Everything but CKA_VALUE, which needs the pool. */
static CK_RV attr_value(const p11_key *k, CK_ATTRIBUTE_TYPE t, attr_val *v,
                        char uid[24])
{
    uint32_t bit = bool_bit(t);
    if (bit) {
        val_bool(v, k->bools & bit);
        return CKR_OK;
    }
    if (gflag_attr(k, t, v))
        return CKR_OK;
    switch (t) {
    case CKA_CLASS:
        val_ulong(v, CKO_SECRET_KEY);
        return CKR_OK;
    case CKA_KEY_TYPE:
        val_ulong(v, k->key_type);
        return CKR_OK;
    case CKA_VALUE_LEN:
        val_ulong(v, k->value_len);
        return CKR_OK;
    case CKA_KEY_GEN_MECHANISM:
        val_ulong(v, k->gen_mech);
        return CKR_OK;
    case CKA_LABEL:
        v->p = k->label;
        v->n = k->label_len;
        return CKR_OK;
    case CKA_ID:
        v->p = k->id;
        v->n = k->id_len;
        return CKR_OK;
    case CKA_START_DATE:
    case CKA_END_DATE: {
        const CK_DATE *d = t == CKA_START_DATE ? &k->start : &k->end;
        static const CK_DATE empty;
        v->p = d;
        v->n = memcmp(d, &empty, sizeof empty) ? sizeof *d : 0;
        return CKR_OK;
    }
    case CKA_UNIQUE_ID:
        v->n = (size_t)snprintf(uid, 24, "%lu", (unsigned long)k->handle);
        v->p = uid;
        return CKR_OK;
    default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
}

/* The value, if the pool lets it out. */
static CK_RV value_read(p11_slot *sl, const p11_key *k, uint8_t *buf,
                        size_t *n)
{
    if ((k->gflags & GMP_KEYF_SENSITIVE) ||
        !(k->gflags & GMP_KEYF_EXTRACTABLE))
        return CKR_ATTRIBUTE_SENSITIVE;
    *n = GMP_MAX_KEY_LEN;
    int rc = gmp_key_export(sl->cli, (uint32_t)k->handle, buf, n);
    return rc == GMP_ERR_DENIED ? CKR_ATTRIBUTE_SENSITIVE : p11_from_gmp(rc);
}

static CK_RV attr_fetch(p11_slot *sl, const p11_key *k, CK_ATTRIBUTE_TYPE t,
                        attr_val *v, uint8_t *scratch, char uid[24])
{
    if (t != CKA_VALUE)
        return attr_value(k, t, v, uid);
    size_t n = 0;
    CK_RV rv = value_read(sl, k, scratch, &n);
    v->p = scratch;
    v->n = n;
    return rv;
}

/* C_GetAttributeValue: every attribute is answered; the call returns the
 * last of the three errors the standard allows, as its examples do. */
CK_RV p11_key_get_attrs(p11_slot *sl, const p11_key *k, CK_ATTRIBUTE_PTR t,
                        CK_ULONG n)
{
    CK_RV ret = CKR_OK;
    uint8_t scratch[GMP_MAX_KEY_LEN];
    char uid[24];
    for (CK_ULONG i = 0; i < n; i++) {
        attr_val v = {0};
        CK_RV rv = attr_fetch(sl, k, t[i].type, &v, scratch, uid);
        if (rv == CKR_OK && t[i].pValue && t[i].ulValueLen < v.n)
            rv = CKR_BUFFER_TOO_SMALL;
        if (rv == CKR_OK && t[i].pValue && v.n)
            memcpy(t[i].pValue, v.p, v.n);
        if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE &&
            rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_BUFFER_TOO_SMALL) {
            ret = rv; /* the pool failed: no point going on */
            break;
        }
        t[i].ulValueLen = rv == CKR_OK ? v.n : CK_UNAVAILABLE_INFORMATION;
        if (rv != CKR_OK)
            ret = rv;
    }
    OPENSSL_cleanse(scratch, sizeof scratch);
    return ret;
}

bool p11_key_matches(p11_slot *sl, const p11_key *k, CK_ATTRIBUTE_PTR t,
                     CK_ULONG n)
{
    uint8_t scratch[GMP_MAX_KEY_LEN];
    char uid[24];
    bool ok = true;
    for (CK_ULONG i = 0; ok && i < n; i++) {
        attr_val v = {0};
        ok = attr_fetch(sl, k, t[i].type, &v, scratch, uid) == CKR_OK &&
             v.n == t[i].ulValueLen &&
             (v.n == 0 || (t[i].pValue && memcmp(v.p, t[i].pValue, v.n) == 0));
    }
    OPENSSL_cleanse(scratch, sizeof scratch);
    return ok;
}

/* ---- writing attributes (C_CreateObject, C_GenerateKey, C_Set...) ---- */

typedef enum tmpl_mode { TM_IMPORT, TM_GENERATE, TM_SET } tmpl_mode;

typedef struct key_tmpl {
    p11_key k;
    tmpl_mode mode;
    bool has_class, has_type, has_len;
    CK_OBJECT_CLASS cls;
    CK_ULONG len;
    const uint8_t *value;
    size_t value_len;
} key_tmpl;

static CK_RV get_bool(const CK_ATTRIBUTE *a, bool *b)
{
    if (!a->pValue || a->ulValueLen != sizeof(CK_BBOOL))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    CK_BBOOL v = *(const CK_BBOOL *)a->pValue;
    if (v != CK_TRUE && v != CK_FALSE)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    *b = v == CK_TRUE;
    return CKR_OK;
}

static CK_RV get_ulong(const CK_ATTRIBUTE *a, CK_ULONG *v)
{
    if (!a->pValue || a->ulValueLen != sizeof(CK_ULONG))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    memcpy(v, a->pValue, sizeof *v);
    return CKR_OK;
}

static CK_RV get_bytes(const CK_ATTRIBUTE *a, uint8_t *dst, size_t *n,
                       size_t max)
{
    if ((!a->pValue && a->ulValueLen) || a->ulValueLen > max)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    if (a->ulValueLen)
        memcpy(dst, a->pValue, a->ulValueLen);
    *n = a->ulValueLen;
    return CKR_OK;
}

static CK_RV get_date(const CK_ATTRIBUTE *a, CK_DATE *d)
{
    if (a->ulValueLen == 0) {
        memset(d, 0, sizeof *d);
        return CKR_OK;
    }
    if (!a->pValue || a->ulValueLen != sizeof *d)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    memcpy(d, a->pValue, sizeof *d);
    return CKR_OK;
}

/* Security flags held by the pool.  After creation they only tighten. */
static CK_RV set_gflag(key_tmpl *t, const CK_ATTRIBUTE *a, uint32_t f)
{
    bool b;
    CK_RV rv = get_bool(a, &b);
    if (rv)
        return rv;
    bool cur = t->k.gflags & f;
    if (t->mode == TM_SET && b != cur) {
        bool tighten = (f == GMP_KEYF_SENSITIVE && b) ||
                       (f == GMP_KEYF_EXTRACTABLE && !b);
        if (!tighten)
            return CKR_ATTRIBUTE_READ_ONLY;
    }
    t->k.gflags = b ? t->k.gflags | f : t->k.gflags & ~f;
    return CKR_OK;
}

static CK_RV set_bool(key_tmpl *t, const CK_ATTRIBUTE *a, uint32_t bit)
{
    bool b;
    CK_RV rv = get_bool(a, &b);
    if (rv)
        return rv;
    const uint32_t computed = P11B_LOCAL | P11B_ALWAYS_SENSITIVE |
                              P11B_NEVER_EXTRACTABLE;
    bool cur = t->k.bools & bit;
    if (bit & computed)
        return CKR_ATTRIBUTE_READ_ONLY;
    if (bit == P11B_TRUSTED && b)
        return CKR_ATTRIBUTE_READ_ONLY; /* only an SO may, and there is none */
    if (t->mode == TM_SET && b != cur &&
        ((bit == P11B_MODIFIABLE) || (bit == P11B_COPYABLE && b) ||
         (bit == P11B_WRAP_WITH_TRUSTED && !b)))
        return CKR_ATTRIBUTE_READ_ONLY;
    t->k.bools = b ? t->k.bools | bit : t->k.bools & ~bit;
    return CKR_OK;
}

static CK_RV set_fixed(key_tmpl *t, const CK_ATTRIBUTE *a)
{
    if (t->mode == TM_SET)
        return CKR_ATTRIBUTE_READ_ONLY;
    switch (a->type) {
    case CKA_CLASS:
        t->has_class = true;
        return get_ulong(a, &t->cls);
    case CKA_KEY_TYPE:
        t->has_type = true;
        return get_ulong(a, &t->k.key_type);
    case CKA_VALUE_LEN:
        if (t->mode != TM_GENERATE)
            return CKR_TEMPLATE_INCONSISTENT;
        t->has_len = true;
        return get_ulong(a, &t->len);
    default: /* CKA_VALUE */
        if (t->mode != TM_IMPORT)
            return CKR_TEMPLATE_INCONSISTENT;
        if (!a->pValue || a->ulValueLen == 0 ||
            a->ulValueLen > GMP_MAX_KEY_LEN)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        t->value = a->pValue;
        t->value_len = a->ulValueLen;
        return CKR_OK;
    }
}

static CK_RV tmpl_apply(key_tmpl *t, const CK_ATTRIBUTE *a)
{
    uint32_t bit = bool_bit(a->type);
    if (bit)
        return set_bool(t, a, bit);
    switch (a->type) {
    case CKA_TOKEN:
    case CKA_PRIVATE:
        if (t->mode == TM_SET) {
            attr_val v;
            gflag_attr(&t->k, a->type, &v);
            bool b;
            CK_RV rv = get_bool(a, &b);
            return rv ? rv : (b == v.b) ? CKR_OK : CKR_ATTRIBUTE_READ_ONLY;
        }
        return set_gflag(t, a, a->type == CKA_TOKEN ? GMP_KEYF_TOKEN
                                                    : GMP_KEYF_PRIVATE);
    case CKA_SENSITIVE:
        return set_gflag(t, a, GMP_KEYF_SENSITIVE);
    case CKA_EXTRACTABLE:
        return set_gflag(t, a, GMP_KEYF_EXTRACTABLE);
    case CKA_LABEL:
        return get_bytes(a, t->k.label, &t->k.label_len, P11_LABEL_MAX);
    case CKA_ID:
        return get_bytes(a, t->k.id, &t->k.id_len, P11_ID_MAX);
    case CKA_START_DATE:
        return get_date(a, &t->k.start);
    case CKA_END_DATE:
        return get_date(a, &t->k.end);
    case CKA_CLASS:
    case CKA_KEY_TYPE:
    case CKA_VALUE_LEN:
    case CKA_VALUE:
        return set_fixed(t, a);
    case CKA_KEY_GEN_MECHANISM:
    case CKA_UNIQUE_ID:
        return CKR_ATTRIBUTE_READ_ONLY;
    default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
}

static CK_RV tmpl_parse(key_tmpl *t, CK_ATTRIBUTE_PTR a, CK_ULONG n)
{
    if (!a && n)
        return CKR_ARGUMENTS_BAD;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_RV rv = tmpl_apply(t, &a[i]);
        if (rv)
            return rv;
    }
    return CKR_OK;
}

/* The pool's label: CKA_LABEL when it is short printable ASCII, so that
 * gmpoolctl and the other front ends show something useful. */
static void pool_label(const p11_key *k, char out[GMPC_MAX_NAME + 1])
{
    bool ok = k->label_len <= GMPC_MAX_NAME;
    for (size_t i = 0; ok && i < k->label_len; i++)
        ok = k->label[i] >= 0x20 && k->label[i] <= 0x7e;
    size_t n = ok ? k->label_len : 0;
    memcpy(out, k->label, n);
    out[n] = '\0';
}

static bool len_ok(CK_KEY_TYPE type, CK_ULONG len)
{
    return gmpc_key_len_ok(gmp_type_of(type), len);
}

/* Class and type present and consistent with the mechanism; the length
 * right for the type. */
static CK_RV tmpl_check(key_tmpl *t, const CK_MECHANISM *gen)
{
    if (t->has_class && t->cls != CKO_SECRET_KEY)
        return t->mode == TM_IMPORT && t->cls != CKO_SECRET_KEY
                   ? CKR_ATTRIBUTE_VALUE_INVALID
                   : CKR_TEMPLATE_INCONSISTENT;
    if (t->mode == TM_IMPORT) {
        if (!t->has_class || !t->has_type || !t->value)
            return CKR_TEMPLATE_INCOMPLETE;
        t->len = t->value_len;
        return len_ok(t->k.key_type, t->len) ? CKR_OK
                                             : CKR_ATTRIBUTE_VALUE_INVALID;
    }
    const p11_mech *m = p11_mech_find(gen->mechanism);
    if (!m || m->kind != MK_KEYGEN)
        return CKR_MECHANISM_INVALID;
    if (gen->pParameter || gen->ulParameterLen)
        return CKR_MECHANISM_PARAM_INVALID;
    if (t->has_type && t->k.key_type != m->key_type)
        return CKR_TEMPLATE_INCONSISTENT;
    t->k.key_type = m->key_type;
    if (!t->has_len && m->key_type == CKK_SM4) {
        t->len = 16;
        t->has_len = true;
    }
    if (!t->has_len)
        return CKR_TEMPLATE_INCOMPLETE;
    return len_ok(t->k.key_type, t->len) ? CKR_OK
                                         : CKR_ATTRIBUTE_VALUE_INVALID;
}

/* Creation-time attributes the standard computes. */
static void tmpl_finish(key_tmpl *t, const CK_MECHANISM *gen)
{
    bool generated = t->mode == TM_GENERATE;
    uint32_t computed = 0;
    if (generated)
        computed |= P11B_LOCAL;
    if (generated && (t->k.gflags & GMP_KEYF_SENSITIVE))
        computed |= P11B_ALWAYS_SENSITIVE;
    if (generated && !(t->k.gflags & GMP_KEYF_EXTRACTABLE))
        computed |= P11B_NEVER_EXTRACTABLE;
    t->k.bools |= computed;
    t->k.gen_mech = generated ? gen->mechanism : CK_UNAVAILABLE_INFORMATION;
}

CK_RV p11_key_create(p11_session *s, CK_ATTRIBUTE_PTR a, CK_ULONG n,
                     const CK_MECHANISM *gen, CK_OBJECT_HANDLE_PTR out)
{
    key_tmpl t = {.mode = gen ? TM_GENERATE : TM_IMPORT};
    app_defaults(&t.k);
    t.k.bools |= P11B_ENCRYPT | P11B_DECRYPT | P11B_SIGN | P11B_VERIFY;
    t.k.gflags = GMP_KEYF_PRIVATE | GMP_KEYF_EXTRACTABLE;
    CK_RV rv = tmpl_parse(&t, a, n);
    if (!rv)
        rv = tmpl_check(&t, gen);
    if (rv)
        return rv;
    if ((t.k.gflags & GMP_KEYF_TOKEN) && !(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    if ((t.k.gflags & GMP_KEYF_PRIVATE) && !p11_logged_in(s->slot))
        return CKR_USER_NOT_LOGGED_IN;
    tmpl_finish(&t, gen);
    uint8_t app[GMP_KEY_APP_MAX];
    char label[GMPC_MAX_NAME + 1];
    size_t app_len = app_encode(&t.k, app, sizeof app);
    pool_label(&t.k, label);
    uint32_t h = 0;
    int rc = gmp_key_create(s->slot->cli, gmp_type_of(t.k.key_type),
                            t.k.gflags, label, gen ? NULL : t.value, t.len,
                            app, app_len, &h);
    if (rc)
        return rc == GMP_ERR_LOGIN ? CKR_USER_NOT_LOGGED_IN : p11_from_gmp(rc);
    if (!(t.k.gflags & GMP_KEYF_TOKEN))
        p11_session_object_add(s, h);
    *out = h;
    return CKR_OK;
}

CK_RV p11_key_set_attrs(p11_session *s, p11_key *k, CK_ATTRIBUTE_PTR a,
                        CK_ULONG n)
{
    if (!(k->bools & P11B_MODIFIABLE))
        return CKR_ACTION_PROHIBITED;
    if ((k->gflags & GMP_KEYF_TOKEN) && !(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    key_tmpl t = {.k = *k, .mode = TM_SET};
    CK_RV rv = tmpl_parse(&t, a, n);
    if (rv)
        return rv;
    /* lowering a flag never makes a key "always" sensitive again */
    if (!(t.k.gflags & GMP_KEYF_SENSITIVE))
        t.k.bools &= ~(uint32_t)P11B_ALWAYS_SENSITIVE;
    uint8_t app[GMP_KEY_APP_MAX];
    char label[GMPC_MAX_NAME + 1];
    size_t app_len = app_encode(&t.k, app, sizeof app);
    pool_label(&t.k, label);
    int rc = gmp_key_update(s->slot->cli, (uint32_t)k->handle, t.k.gflags,
                            label, app, app_len);
    if (rc)
        return rc == GMP_ERR_DENIED ? CKR_ATTRIBUTE_READ_ONLY
                                    : p11_from_gmp(rc);
    *k = t.k;
    return CKR_OK;
}
