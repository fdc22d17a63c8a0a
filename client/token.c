/* The tenant's token over KEY frames: login state, PIN, and the key
 * listing and attribute updates a PKCS#11 or SDF front end needs. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gmpool.h"
#include "internal.h"
#include "proto.h"

GMP_API int gmp_token_get_info(gmp_client *c, gmp_token_info *info)
{
    uint8_t req[1] = {GMPC_TOKEN_INFO}, *reply = NULL;
    size_t rl = 0;
    if (!info)
        return gmp_fail(GMP_ERR_ARG, "info is NULL");
    gmpc_wbuf w = {req, sizeof req, sizeof req, false};
    int rc = gmp_key_ctrl(c, &w, &reply, &rl);
    if (rc == GMP_OK) {
        gmpc_rbuf r = {reply, rl, 0, false};
        info->flags = gmpc_r_u32(&r);
        info->pin_fails = gmpc_r_u32(&r);
        info->pin_tries = gmpc_r_u32(&r);
        info->vcm = gmpc_r_u32(&r);
        size_t n = 0;
        const uint8_t *name = gmpc_r_blob(&r, sizeof info->tenant - 1, &n);
        if (!gmpc_r_done(&r))
            rc = gmp_fail(GMP_ERR_PROTO, "bad token info reply");
        memset(info->tenant, 0, sizeof info->tenant);
        if (rc == GMP_OK && n)
            memcpy(info->tenant, name, n);
    }
    free(reply);
    return rc;
}

static int pin_request(gmp_client *c, uint8_t code, const void *p1, size_t n1,
                       const void *p2, size_t n2)
{
    uint8_t req[8 + 2 * (GMP_PIN_MAX + 1)];
    if ((!p1 && n1) || (!p2 && n2))
        return gmp_fail(GMP_ERR_ARG, "PIN is NULL");
    if (n1 > GMP_PIN_MAX + 1 || n2 > GMP_PIN_MAX + 1)
        n1 = n2 = GMP_PIN_MAX + 1; /* the daemon refuses it and counts it */
    gmpc_wbuf w = {req, sizeof req, 0, false};
    gmpc_w_u8(&w, code);
    if (code != GMPC_TOKEN_LOGOUT)
        gmpc_w_blob(&w, p1, n1);
    if (code == GMPC_TOKEN_SET_PIN)
        gmpc_w_blob(&w, p2, n2);
    int rc = gmp_key_ctrl(c, &w, NULL, NULL);
    OPENSSL_cleanse(req, sizeof req);
    return rc;
}

GMP_API int gmp_login(gmp_client *c, const void *pin, size_t len)
{
    int rc = pin_request(c, GMPC_TOKEN_LOGIN, pin, len, NULL, 0);
    csess *s = gmp_client_sess(c);
    if (rc == GMP_OK && s)
        csess_remember_pin(s, pin, len);
    return rc;
}

GMP_API int gmp_logout(gmp_client *c)
{
    csess *s = gmp_client_sess(c);
    if (s)
        csess_remember_pin(s, NULL, 0);
    return pin_request(c, GMPC_TOKEN_LOGOUT, NULL, 0, NULL, 0);
}

GMP_API int gmp_logged_in(gmp_client *c)
{
    csess *s = gmp_client_sess(c);
    return s && csess_logged_in(s);
}

GMP_API int gmp_set_pin(gmp_client *c, const void *old_pin, size_t old_len,
                        const void *new_pin, size_t new_len)
{
    int rc = pin_request(c, GMPC_TOKEN_SET_PIN, old_pin, old_len, new_pin,
                         new_len);
    csess *s = gmp_client_sess(c);
    if (rc == GMP_OK && s && csess_logged_in(s))
        csess_remember_pin(s, new_pin, new_len);
    return rc;
}

GMP_API int gmp_key_list(gmp_client *c, uint32_t after, uint32_t *handles,
                         size_t cap, size_t *n)
{
    uint8_t req[5], *reply = NULL;
    size_t rl = 0;
    if (!n || (!handles && cap))
        return gmp_fail(GMP_ERR_ARG, "NULL argument");
    *n = 0;
    gmpc_wbuf w = {req, sizeof req, 0, false};
    gmpc_w_u8(&w, GMPC_KEY_LIST);
    gmpc_w_u32(&w, after);
    int rc = gmp_key_ctrl(c, &w, &reply, &rl);
    gmpc_rbuf r = {reply, rl, 0, false};
    uint16_t count = rc == GMP_OK ? gmpc_r_u16(&r) : 0;
    for (uint16_t i = 0; i < count && *n < cap; i++)
        handles[(*n)++] = gmpc_r_u32(&r);
    if (rc == GMP_OK && r.bad)
        rc = gmp_fail(GMP_ERR_PROTO, "bad key list reply");
    free(reply);
    return rc;
}

GMP_API int gmp_key_update(gmp_client *c, uint32_t handle, uint32_t flags,
                           const char *label, const uint8_t *app,
                           size_t app_len)
{
    uint8_t req[16 + GMPC_MAX_NAME + GMP_KEY_APP_MAX];
    size_t ll = label ? strlen(label) : 0;
    if ((!app && app_len) || ll > GMPC_MAX_NAME || app_len > GMP_KEY_APP_MAX)
        return gmp_fail(GMP_ERR_ARG, "bad label or attribute blob");
    gmpc_wbuf w = {req, sizeof req, 0, false};
    gmpc_w_u8(&w, GMPC_KEY_UPDATE);
    gmpc_w_u32(&w, handle);
    gmpc_w_u32(&w, flags);
    gmpc_w_blob(&w, label ? label : "", ll);
    gmpc_w_blob(&w, app, app_len);
    return gmp_key_ctrl(c, &w, NULL, NULL);
}
