/* KEY frames: the tenant's keystore operations (store.c does the SQLite
 * and wrapping; this file validates and encodes). */
#include <string.h>

#include <openssl/crypto.h>

#include "gmpd.h"
#include "gmpool.h"
#include "util.h"

static int key_len_ok(uint16_t type, size_t len)
{
    switch (type) {
    case GMP_KEY_SM4:
        return len == 16;
    case GMP_KEY_AES:
        return len == 16 || len == 24 || len == 32;
    case GMP_KEY_GENERIC:
        return len >= 1 && len <= GMP_MAX_KEY_LEN;
    default:
        return 0;
    }
}

static int key_create(gmpd_session *s, gmpc_rbuf *r, bool generate,
                      gmpc_wbuf *w)
{
    gmpd_key_attr a = {.vcm = s->tenant.vcm, .session = s->id};
    uint8_t value[GMP_MAX_KEY_LEN];
    size_t label_len, len = 0;
    a.type = gmpc_r_u16(r);
    a.flags = gmpc_r_u32(r);
    const uint8_t *label = gmpc_r_blob(r, GMPD_NAME_MAX, &label_len);
    const uint8_t *v = NULL;
    if (generate)
        len = gmpc_r_u32(r);
    else
        v = gmpc_r_blob(r, GMP_MAX_KEY_LEN, &len);
    if (!gmpc_r_done(r))
        return GMP_ERR_PROTO;
    for (size_t i = 0; i < label_len; i++)
        if (label[i] < 0x20 || label[i] > 0x7e)
            return GMP_ERR_ARG; /* printable labels only */
    if (a.flags & ~(GMP_KEYF_SENSITIVE | GMP_KEYF_EXTRACTABLE | GMP_KEYF_TOKEN))
        return GMP_ERR_ARG;
    if (!key_len_ok(a.type, len))
        return GMP_ERR_KEY;
    memcpy(a.label, label, label_len);
    a.label[label_len] = '\0';
    a.len = (uint32_t)len;
    if (generate && gmpc_random(value, len) != GMP_OK)
        return GMP_ERR_INTERNAL;
    if (!generate)
        memcpy(value, v, len);
    uint32_t handle = 0;
    int rc = gmpd_key_put(gmpd->store, &a, value, len, &handle);
    OPENSSL_cleanse(value, sizeof value);
    gmpc_w_u32(w, handle);
    return rc;
}

static int key_info(gmpd_session *s, uint32_t handle, gmpc_wbuf *w)
{
    gmpd_key_attr a;
    size_t len;
    int rc = gmpd_key_get(gmpd->store, s->tenant.vcm, handle, &a, NULL, 0,
                          &len);
    if (rc != GMP_OK)
        return rc;
    gmpc_w_u32(w, a.handle);
    gmpc_w_u16(w, a.type);
    gmpc_w_u32(w, a.len);
    gmpc_w_u32(w, a.flags);
    gmpc_w_blob(w, a.label, strlen(a.label));
    return GMP_OK;
}

/* A sensitive key's value never leaves the pool (PKCS#11 CKA_SENSITIVE). */
static int key_export(gmpd_session *s, uint32_t handle, gmpc_wbuf *w)
{
    gmpd_key_attr a;
    uint8_t value[GMP_MAX_KEY_LEN];
    size_t len = 0;
    int rc = gmpd_key_get(gmpd->store, s->tenant.vcm, handle, &a, value,
                          sizeof value, &len);
    if (rc == GMP_OK && ((a.flags & GMP_KEYF_SENSITIVE) ||
                         !(a.flags & GMP_KEYF_EXTRACTABLE)))
        rc = GMP_ERR_DENIED;
    if (rc == GMP_OK)
        gmpc_w_blob(w, value, len);
    OPENSSL_cleanse(value, sizeof value);
    return rc;
}

int gmpd_key_request(gmpd_session *s, const uint8_t *p, size_t n,
                     uint8_t *out, size_t cap, size_t *out_len)
{
    gmpc_rbuf r = {p, n, 0, false};
    gmpc_wbuf w = {out, cap, 0, false};
    uint8_t op = gmpc_r_u8(&r);
    int rc;
    if (op == GMPC_KEY_IMPORT || op == GMPC_KEY_GENERATE) {
        rc = key_create(s, &r, op == GMPC_KEY_GENERATE, &w);
    } else {
        uint32_t handle = gmpc_r_u32(&r);
        if (!gmpc_r_done(&r))
            return GMP_ERR_PROTO;
        if (op == GMPC_KEY_INFO)
            rc = key_info(s, handle, &w);
        else if (op == GMPC_KEY_EXPORT)
            rc = key_export(s, handle, &w);
        else if (op == GMPC_KEY_DESTROY)
            rc = gmpd_key_delete(gmpd->store, s->tenant.vcm, handle);
        else
            rc = GMP_ERR_ARG;
    }
    *out_len = w.len;
    return w.overflow ? GMP_ERR_INTERNAL : rc;
}
