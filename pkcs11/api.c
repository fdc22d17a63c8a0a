/* The Cryptoki entry points (PKCS#11 3.0): argument checks, then the
 * module (module.c), objects (object.c) and operations (crypto.c).  Only
 * C_GetFunctionList, C_GetInterfaceList and C_GetInterface are exported;
 * the rest are reached through the function lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "module.h"

#define EXPORT __attribute__((visibility("default")))
#define LIB_VERSION {0, 1}

static void pad(CK_UTF8CHAR *dst, size_t n, const char *src)
{
    size_t l = strlen(src);
    memset(dst, ' ', n);
    memcpy(dst, src, l < n ? l : n);
}

/* ---- general ---- */

CK_RV C_Initialize(CK_VOID_PTR args)
{
    /* pReserved is ignored: NSS passes its module parameters there */
    p11_init_lock();
    CK_RV rv = p11_initialize(args);
    p11_init_unlock();
    return rv;
}

CK_RV C_Finalize(CK_VOID_PTR reserved)
{
    if (reserved)
        return CKR_ARGUMENTS_BAD;
    p11_init_lock();
    CK_RV rv = p11_is_init() ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
    if (!rv)
        p11_finalize();
    p11_init_unlock();
    return rv;
}

CK_RV C_GetInfo(CK_INFO_PTR info)
{
    if (!p11_is_init())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (!info)
        return CKR_ARGUMENTS_BAD;
    memset(info, 0, sizeof *info);
    info->cryptokiVersion = (CK_VERSION){3, 0};
    pad(info->manufacturerID, sizeof info->manufacturerID, "gmpool");
    pad(info->libraryDescription, sizeof info->libraryDescription,
        "gmpool pooled SM3/SM4/AES token");
    info->libraryVersion = (CK_VERSION)LIB_VERSION;
    return CKR_OK;
}

/* The standard's convention for returned arrays: NULL asks for the
 * count, a short array gets CKR_BUFFER_TOO_SMALL; *count is n either way. */
static CK_RV list_out(CK_ULONG_PTR list, CK_ULONG_PTR count, size_t n,
                      CK_ULONG (*at)(size_t))
{
    CK_RV rv = CKR_OK;
    if (list && *count < n)
        rv = CKR_BUFFER_TOO_SMALL;
    else if (list)
        for (size_t i = 0; i < n; i++)
            list[i] = at(i);
    *count = n;
    return rv;
}

static CK_ULONG slot_id_at(size_t i)
{
    return G.slots[i].id;
}

static CK_ULONG mech_type_at(size_t i)
{
    return p11_mech_at(i)->type;
}

CK_RV C_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list,
                           CK_ULONG_PTR count)
{
    if (!p11_is_init())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (!count)
        return CKR_ARGUMENTS_BAD;
    (void)present; /* every slot always holds its token */
    return list_out(list, count, G.n_slots, slot_id_at);
}

/* The checks every slot call starts with, in the standard's order:
 * initialised, a known slot, then the output argument. */
static CK_RV slot_call(CK_SLOT_ID id, const void *out, p11_slot **sl)
{
    if (!p11_is_init())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    *sl = p11_slot_get(id);
    if (!*sl)
        return CKR_SLOT_ID_INVALID;
    return out ? CKR_OK : CKR_ARGUMENTS_BAD;
}

CK_RV C_GetSlotInfo(CK_SLOT_ID id, CK_SLOT_INFO_PTR info)
{
    p11_slot *sl;
    CK_RV rv = slot_call(id, info, &sl);
    if (rv)
        return rv;
    char desc[96];
    const char *cred = strrchr(sl->credentials, '/');
    snprintf(desc, sizeof desc, "gmpool slot %lu (%.40s)", (unsigned long)id,
             sl->credentials[0] ? (cred ? cred + 1 : sl->credentials)
                                : "default credentials");
    memset(info, 0, sizeof *info);
    pad(info->slotDescription, sizeof info->slotDescription, desc);
    pad(info->manufacturerID, sizeof info->manufacturerID, "gmpool");
    info->flags = CKF_TOKEN_PRESENT;
    info->hardwareVersion = (CK_VERSION)LIB_VERSION;
    info->firmwareVersion = (CK_VERSION)LIB_VERSION;
    return CKR_OK;
}

static CK_FLAGS token_flags(const gmp_token_info *t)
{
    CK_FLAGS f = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED;
    if (t->flags & GMP_TOKEN_PIN_SET)
        f |= CKF_USER_PIN_INITIALIZED;
    if (t->flags & GMP_TOKEN_PIN_LOCKED)
        f |= CKF_USER_PIN_LOCKED;
    else if (t->pin_fails && t->pin_fails + 1 == t->pin_tries)
        f |= CKF_USER_PIN_FINAL_TRY;
    else if (t->pin_fails)
        f |= CKF_USER_PIN_COUNT_LOW;
    return f;
}

CK_RV C_GetTokenInfo(CK_SLOT_ID id, CK_TOKEN_INFO_PTR info)
{
    p11_slot *sl;
    CK_RV rv = slot_call(id, info, &sl);
    if (rv)
        return rv;
    gmp_token_info t;
    int rc = gmp_token_get_info(sl->cli, &t);
    if (rc)
        return p11_from_gmp(rc);
    char serial[24];
    snprintf(serial, sizeof serial, "VCM-%u", t.vcm);
    memset(info, 0, sizeof *info);
    pad(info->label, sizeof info->label, t.tenant);
    pad(info->manufacturerID, sizeof info->manufacturerID, "gmpool");
    pad(info->model, sizeof info->model, "gmpoold VCM");
    pad(info->serialNumber, sizeof info->serialNumber, serial);
    info->flags = token_flags(&t);
    info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    p11_slot_counts(sl, &info->ulSessionCount, &info->ulRwSessionCount);
    info->ulMaxPinLen = GMP_PIN_MAX;
    info->ulMinPinLen = GMP_PIN_MIN;
    info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->hardwareVersion = (CK_VERSION)LIB_VERSION;
    info->firmwareVersion = (CK_VERSION)LIB_VERSION;
    memset(info->utcTime, ' ', sizeof info->utcTime); /* no clock */
    return CKR_OK;
}

CK_RV C_GetMechanismList(CK_SLOT_ID id, CK_MECHANISM_TYPE_PTR list,
                                CK_ULONG_PTR count)
{
    p11_slot *sl;
    CK_RV rv = slot_call(id, count, &sl);
    if (rv)
        return rv;
    return list_out(list, count, p11_mech_count(), mech_type_at);
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID id, CK_MECHANISM_TYPE type,
                                CK_MECHANISM_INFO_PTR info)
{
    p11_slot *sl;
    CK_RV rv = slot_call(id, info, &sl);
    if (rv)
        return rv;
    const p11_mech *m = p11_mech_find(type);
    if (!m)
        return CKR_MECHANISM_INVALID;
    *info = m->info;
    return CKR_OK;
}

/* The operator initialises tokens and PINs with gmpoolctl. */
CK_RV C_InitToken(CK_SLOT_ID id, CK_UTF8CHAR_PTR pin, CK_ULONG len,
                         CK_UTF8CHAR_PTR label)
{
    p11_slot *sl;
    CK_RV rv = slot_call(id, "", &sl);
    return rv ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

/* ---- sessions ---- */

CK_RV C_OpenSession(CK_SLOT_ID id, CK_FLAGS flags, CK_VOID_PTR app,
                           CK_NOTIFY notify, CK_SESSION_HANDLE_PTR out)
{
    p11_slot *sl;
    CK_RV rv = slot_call(id, "", &sl);
    if (rv)
        return rv;
    if (!(flags & CKF_SERIAL_SESSION))
        return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
    if (!out)
        return CKR_ARGUMENTS_BAD;
    return p11_session_open(sl, flags, out);
}

CK_RV C_CloseSession(CK_SESSION_HANDLE h)
{
    p11_session *s;
    CK_RV rv = p11_session_get(h, &s);
    if (!rv)
        p11_session_close(s);
    return rv;
}

CK_RV C_CloseAllSessions(CK_SLOT_ID id)
{
    p11_slot *sl;
    CK_RV rv = slot_call(id, "", &sl);
    if (rv)
        return rv;
    CK_SESSION_HANDLE *v = NULL;
    size_t n = p11_slot_sessions(sl, &v);
    if (!v)
        return CKR_HOST_MEMORY;
    for (size_t i = 0; i < n; i++)
        C_CloseSession(v[i]);
    free(v);
    return CKR_OK;
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
    p11_session *s;
    CK_RV rv = p11_session_get(h, &s);
    if (rv)
        return rv;
    if (info) {
        info->slotID = s->slot->id;
        info->state = p11_session_state(s);
        info->flags = s->flags;
        info->ulDeviceError = 0;
    }
    p11_session_put(s);
    return info ? CKR_OK : CKR_ARGUMENTS_BAD;
}

CK_RV C_GetOperationState(CK_SESSION_HANDLE h, CK_BYTE_PTR state,
                                 CK_ULONG_PTR len)
{
    p11_session *s;
    CK_RV rv = p11_session_get(h, &s);
    if (rv)
        return rv;
    p11_session_put(s);
    return CKR_STATE_UNSAVEABLE; /* the state lives in the pool */
}

CK_RV C_SetOperationState(CK_SESSION_HANDLE h, CK_BYTE_PTR state,
                                 CK_ULONG len, CK_OBJECT_HANDLE enc,
                                 CK_OBJECT_HANDLE auth)
{
    p11_session *s;
    CK_RV rv = p11_session_get(h, &s);
    if (rv)
        return rv;
    p11_session_put(s);
    return CKR_SAVED_STATE_INVALID;
}

static CK_RV pin_status(int rc)
{
    return rc == GMP_ERR_ARG ? CKR_PIN_LEN_RANGE : p11_from_gmp(rc);
}

CK_RV C_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user,
                     CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    p11_session *s;
    CK_RV rv = p11_session_get(h, &s);
    if (rv)
        return rv;
    if (user != CKU_USER)
        rv = CKR_USER_TYPE_INVALID; /* no SO or context logins here */
    else if (!pin)
        rv = CKR_ARGUMENTS_BAD;     /* no protected authentication path */
    else if (p11_logged_in(s->slot))
        rv = CKR_USER_ALREADY_LOGGED_IN;
    else
        rv = pin_status(gmp_login(s->slot->cli, pin, len));
    p11_session_put(s);
    return rv;
}

CK_RV C_Logout(CK_SESSION_HANDLE h)
{
    p11_session *s;
    CK_RV rv = p11_session_get(h, &s);
    if (rv)
        return rv;
    if (!p11_logged_in(s->slot))
        rv = CKR_USER_NOT_LOGGED_IN;
    else
        rv = p11_from_gmp(gmp_logout(s->slot->cli));
    p11_session_put(s);
    return rv;
}

CK_RV C_InitPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    p11_session *s;
    CK_RV rv = p11_session_get(h, &s);
    if (rv)
        return rv;
    p11_session_put(s);
    return CKR_USER_NOT_LOGGED_IN; /* needs the SO: gmpoolctl tenant pin */
}

CK_RV C_SetPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR old,
                      CK_ULONG old_len, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    p11_session *s;
    CK_RV rv = p11_session_get(h, &s);
    if (rv)
        return rv;
    if (!old || !pin)
        rv = CKR_ARGUMENTS_BAD;
    else if (!(s->flags & CKF_RW_SESSION))
        rv = CKR_SESSION_READ_ONLY;
    else
        rv = pin_status(gmp_set_pin(s->slot->cli, old, old_len, pin, len));
    p11_session_put(s);
    return rv;
}

/* ---- objects ---- */

/* Runs body with s taken; body sets rv. */
#define IN_SESSION(h, body)                                                  \
    do {                                                                     \
        p11_session *s;                                                      \
        CK_RV rv = p11_session_get(h, &s);                                   \
        if (rv)                                                              \
            return rv;                                                       \
        body;                                                                \
        p11_session_put(s);                                                  \
        return rv;                                                           \
    } while (0)

CK_RV C_CreateObject(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t,
                            CK_ULONG n, CK_OBJECT_HANDLE_PTR out)
{
    IN_SESSION(h, rv = out ? p11_key_create(s, t, n, NULL, out)
                           : CKR_ARGUMENTS_BAD);
}

CK_RV C_CopyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                          CK_ATTRIBUTE_PTR t, CK_ULONG n,
                          CK_OBJECT_HANDLE_PTR out)
{
    IN_SESSION(h, rv = CKR_FUNCTION_NOT_SUPPORTED);
}

static CK_RV destroy(p11_session *s, CK_OBJECT_HANDLE obj)
{
    p11_key k;
    CK_RV rv = p11_key_load(s->slot, obj, &k);
    if (rv)
        return rv;
    if (!(k.bools & P11B_DESTROYABLE))
        return CKR_ACTION_PROHIBITED;
    if ((k.gflags & GMP_KEYF_TOKEN) && !(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    int rc = gmp_key_destroy(s->slot->cli, (uint32_t)obj);
    if (rc == GMP_OK)
        p11_session_object_forget(obj);
    return p11_from_gmp(rc);
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj)
{
    IN_SESSION(h, rv = destroy(s, obj));
}

CK_RV C_GetObjectSize(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                             CK_ULONG_PTR size)
{
    p11_key k;
    IN_SESSION(h, rv = size ? p11_key_load(s->slot, obj, &k)
                            : CKR_ARGUMENTS_BAD;
               if (!rv) *size = CK_UNAVAILABLE_INFORMATION);
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                                 CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    p11_key k;
    IN_SESSION(h, rv = (!t && n) ? CKR_ARGUMENTS_BAD
                                 : p11_key_load(s->slot, obj, &k);
               if (!rv) rv = p11_key_get_attrs(s->slot, &k, t, n));
}

CK_RV C_SetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                                 CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    p11_key k;
    IN_SESSION(h, rv = (!t && n) ? CKR_ARGUMENTS_BAD
                                 : p11_key_load(s->slot, obj, &k);
               if (!rv) rv = p11_key_set_attrs(s, &k, t, n));
}

/* The pool lists what this client may see; the template is matched
 * here.  The result is fixed at C_FindObjectsInit, as the standard
 * allows. */
static CK_RV find_collect(p11_session *s, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    uint32_t page[256];
    size_t got = 0, cap = 0;
    uint32_t after = 0;
    do {
        int rc = gmp_key_list(s->slot->cli, after, page, 256, &got);
        if (rc)
            return p11_from_gmp(rc);
        for (size_t i = 0; i < got; i++) {
            p11_key k;
            if (p11_key_load(s->slot, page[i], &k) != CKR_OK ||
                !p11_key_matches(s->slot, &k, t, n))
                continue; /* destroyed meanwhile, or no match */
            if (s->n_found == cap) {
                cap = cap ? 2 * cap : 16;
                CK_OBJECT_HANDLE *v = realloc(s->found, cap * sizeof *v);
                if (!v)
                    return CKR_HOST_MEMORY;
                s->found = v;
            }
            s->found[s->n_found++] = page[i];
        }
        after = got ? page[got - 1] : after;
    } while (got == 256);
    return CKR_OK;
}

static CK_RV find_init(p11_session *s, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    if (s->finding)
        return CKR_OPERATION_ACTIVE;
    if (!t && n)
        return CKR_ARGUMENTS_BAD;
    s->n_found = s->found_pos = 0;
    CK_RV rv = find_collect(s, t, n);
    s->finding = rv == CKR_OK;
    return rv;
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t,
                               CK_ULONG n)
{
    IN_SESSION(h, rv = find_init(s, t, n));
}

static CK_RV find_next(p11_session *s, CK_OBJECT_HANDLE_PTR out, CK_ULONG max,
                       CK_ULONG_PTR count)
{
    if (!s->finding)
        return CKR_OPERATION_NOT_INITIALIZED;
    if (!out || !count)
        return CKR_ARGUMENTS_BAD;
    CK_ULONG n = 0;
    while (n < max && s->found_pos < s->n_found)
        out[n++] = s->found[s->found_pos++];
    *count = n;
    return CKR_OK;
}

CK_RV C_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out,
                           CK_ULONG max, CK_ULONG_PTR count)
{
    IN_SESSION(h, rv = find_next(s, out, max, count));
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE h)
{
    IN_SESSION(h, rv = s->finding ? CKR_OK : CKR_OPERATION_NOT_INITIALIZED;
               s->finding = false);
}

/* ---- operations ---- */

#define OP_INIT(name, cat)                                                   \
    CK_RV name(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,               \
                      CK_OBJECT_HANDLE key)                                  \
    {                                                                        \
        IN_SESSION(h, rv = p11_op_init(s, cat, m, key));                     \
    }
#define OP_SINGLE(name, cat)                                                 \
    CK_RV name(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG len,     \
                      CK_BYTE_PTR out, CK_ULONG_PTR out_len)                 \
    {                                                                        \
        IN_SESSION(h, rv = p11_op_single(s, cat, in, len, out, out_len));    \
    }
#define OP_UPDATE(name, cat)                                                 \
    CK_RV name(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG len,     \
                      CK_BYTE_PTR out, CK_ULONG_PTR out_len)                 \
    {                                                                        \
        IN_SESSION(h, rv = p11_op_update(s, cat, in, len, out, out_len));    \
    }
#define OP_FEED(name, cat)                                                   \
    CK_RV name(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG len)     \
    {                                                                        \
        IN_SESSION(h, rv = p11_op_update(s, cat, in, len, NULL, NULL));      \
    }
#define OP_FINAL(name, cat)                                                  \
    CK_RV name(CK_SESSION_HANDLE h, CK_BYTE_PTR out,                  \
                      CK_ULONG_PTR out_len)                                  \
    {                                                                        \
        IN_SESSION(h, rv = p11_op_final(s, cat, out, out_len));              \
    }

OP_INIT(C_EncryptInit, OPC_ENCRYPT)
OP_SINGLE(C_Encrypt, OPC_ENCRYPT)
OP_UPDATE(C_EncryptUpdate, OPC_ENCRYPT)
OP_FINAL(C_EncryptFinal, OPC_ENCRYPT)
OP_INIT(C_DecryptInit, OPC_DECRYPT)
OP_SINGLE(C_Decrypt, OPC_DECRYPT)
OP_UPDATE(C_DecryptUpdate, OPC_DECRYPT)
OP_FINAL(C_DecryptFinal, OPC_DECRYPT)
OP_SINGLE(C_Digest, OPC_DIGEST)
OP_FEED(C_DigestUpdate, OPC_DIGEST)
OP_FINAL(C_DigestFinal, OPC_DIGEST)
OP_INIT(C_SignInit, OPC_SIGN)
OP_SINGLE(C_Sign, OPC_SIGN)
OP_FEED(C_SignUpdate, OPC_SIGN)
OP_FINAL(C_SignFinal, OPC_SIGN)
OP_INIT(C_VerifyInit, OPC_VERIFY)
OP_FEED(C_VerifyUpdate, OPC_VERIFY)

CK_RV C_DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m)
{
    IN_SESSION(h, rv = p11_op_init(s, OPC_DIGEST, m, CK_INVALID_HANDLE));
}

CK_RV C_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG len,
                      CK_BYTE_PTR sig, CK_ULONG sig_len)
{
    IN_SESSION(h, rv = p11_op_verify(s, in, len, true, sig, sig_len));
}

CK_RV C_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig,
                           CK_ULONG sig_len)
{
    IN_SESSION(h, rv = p11_op_verify(s, NULL, 0, false, sig, sig_len));
}

CK_RV C_GenerateKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
                           CK_ATTRIBUTE_PTR t, CK_ULONG n,
                           CK_OBJECT_HANDLE_PTR out)
{
    IN_SESSION(h, rv = (m && out) ? p11_key_create(s, t, n, m, out)
                                  : CKR_ARGUMENTS_BAD);
}

CK_RV C_SeedRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR seed, CK_ULONG len)
{
    IN_SESSION(h, rv = CKR_RANDOM_SEED_NOT_SUPPORTED);
}

CK_RV C_GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR out,
                              CK_ULONG len)
{
    IN_SESSION(h, rv = (!out && len) ? CKR_ARGUMENTS_BAD
                                     : p11_from_gmp(gmp_random(s->slot->cli,
                                                               out, len)));
}

/* Cancels the operations named by flags (PKCS#11 3.0). */
static CK_RV session_cancel(p11_session *s, CK_FLAGS flags)
{
    static const CK_FLAGS f[OPC_N] = {CKF_DIGEST, CKF_ENCRYPT, CKF_DECRYPT,
                                      CKF_SIGN, CKF_VERIFY};
    for (int i = 0; i < OPC_N; i++)
        if (flags & f[i])
            p11_op_end(s, (p11_opcat)i);
    if (flags & CKF_FIND_OBJECTS)
        s->finding = false;
    return CKR_OK;
}

CK_RV C_SessionCancel(CK_SESSION_HANDLE h, CK_FLAGS flags)
{
    IN_SESSION(h, rv = session_cancel(s, flags));
}

CK_RV C_LoginUser(CK_SESSION_HANDLE h, CK_USER_TYPE user,
                         CK_UTF8CHAR_PTR pin, CK_ULONG len,
                         CK_UTF8CHAR_PTR name, CK_ULONG name_len)
{
    /* one user per token: the tenant; a name adds nothing */
    return C_Login(h, user, pin, len);
}

/* ---- what the token does not do ---- */

static CK_RV unsupported(void)
{
    return p11_is_init() ? CKR_FUNCTION_NOT_SUPPORTED
                         : CKR_CRYPTOKI_NOT_INITIALIZED;
}

CK_RV C_DigestKey(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k)
{
    return unsupported();
}

CK_RV C_SignRecoverInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
                               CK_OBJECT_HANDLE k)
{
    return unsupported();
}

CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
                                 CK_OBJECT_HANDLE k)
{
    return unsupported();
}

/* The signature shape shared by SignRecover, VerifyRecover and the four
 * dual-function updates. */
static CK_RV two_buffers(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG len,
                         CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    return unsupported();
}

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
                               CK_ATTRIBUTE_PTR pub, CK_ULONG npub,
                               CK_ATTRIBUTE_PTR priv, CK_ULONG npriv,
                               CK_OBJECT_HANDLE_PTR hpub,
                               CK_OBJECT_HANDLE_PTR hpriv)
{
    return unsupported();
}

CK_RV C_WrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
                       CK_OBJECT_HANDLE wk, CK_OBJECT_HANDLE k,
                       CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    return unsupported();
}

CK_RV C_UnwrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
                         CK_OBJECT_HANDLE uk, CK_BYTE_PTR in, CK_ULONG len,
                         CK_ATTRIBUTE_PTR t, CK_ULONG n,
                         CK_OBJECT_HANDLE_PTR out)
{
    return unsupported();
}

CK_RV C_DeriveKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
                         CK_OBJECT_HANDLE base, CK_ATTRIBUTE_PTR t,
                         CK_ULONG n, CK_OBJECT_HANDLE_PTR out)
{
    return unsupported();
}

CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE h)
{
    return p11_is_init() ? CKR_FUNCTION_NOT_PARALLEL
                         : CKR_CRYPTOKI_NOT_INITIALIZED;
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE h)
{
    return C_GetFunctionStatus(h);
}

CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR slot,
                                CK_VOID_PTR reserved)
{
    if (!p11_is_init())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    /* tokens never come or go */
    return (flags & CKF_DONT_BLOCK) ? CKR_NO_EVENT
                                    : CKR_FUNCTION_NOT_SUPPORTED;
}

/* PKCS#11 3.0 message-based functions: not offered. */
static CK_RV msg_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
                      CK_OBJECT_HANDLE k)
{
    return unsupported();
}

static CK_RV msg_final(CK_SESSION_HANDLE h)
{
    return unsupported();
}

static CK_RV msg_crypt(CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl,
                       CK_BYTE_PTR aad, CK_ULONG al, CK_BYTE_PTR in,
                       CK_ULONG il, CK_BYTE_PTR out, CK_ULONG_PTR ol)
{
    return unsupported();
}

static CK_RV msg_crypt_begin(CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl,
                             CK_BYTE_PTR aad, CK_ULONG al)
{
    return unsupported();
}

static CK_RV msg_crypt_next(CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl,
                            CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out,
                            CK_ULONG_PTR ol, CK_FLAGS f)
{
    return unsupported();
}

static CK_RV msg_sign(CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl,
                      CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR sig,
                      CK_ULONG_PTR sl)
{
    return unsupported();
}

static CK_RV msg_verify(CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl,
                        CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR sig,
                        CK_ULONG sl)
{
    return unsupported();
}

static CK_RV msg_begin(CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pl)
{
    return unsupported();
}

/* ---- function lists and interfaces ---- */

/* Every C_ function is declared by pkcs11.h; the version script exports
 * only the three entry points. */


#define V2_FUNCTIONS                                                         \
    C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList, \
        C_GetSlotInfo, C_GetTokenInfo, C_GetMechanismList,                   \
        C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN,                \
        C_OpenSession, C_CloseSession, C_CloseAllSessions,                   \
        C_GetSessionInfo, C_GetOperationState, C_SetOperationState,          \
        C_Login, C_Logout, C_CreateObject, C_CopyObject, C_DestroyObject,    \
        C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue,           \
        C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal,                \
        C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal,           \
        C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal,           \
        C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey, C_DigestFinal, \
        C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_SignRecoverInit,    \
        two_buffers, C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal,  \
        C_VerifyRecoverInit, two_buffers, two_buffers, two_buffers,          \
        two_buffers, two_buffers, C_GenerateKey, C_GenerateKeyPair,          \
        C_WrapKey, C_UnwrapKey, C_DeriveKey, C_SeedRandom,                   \
        C_GenerateRandom, C_GetFunctionStatus, C_CancelFunction,             \
        C_WaitForSlotEvent

static CK_FUNCTION_LIST g_list_2 = {{2, 40}, V2_FUNCTIONS};

static CK_FUNCTION_LIST_3_0 g_list_3 = {
    {3, 0}, V2_FUNCTIONS,
    C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel,
    msg_init, msg_crypt, msg_crypt_begin, msg_crypt_next, msg_final,
    msg_init, msg_crypt, msg_crypt_begin, msg_crypt_next, msg_final,
    msg_init, msg_sign, msg_begin, msg_sign, msg_final,
    msg_init, msg_verify, msg_begin, msg_verify, msg_final};

static CK_INTERFACE g_ifaces[] = {
    {(CK_CHAR_PTR) "PKCS 11", &g_list_3, 0},
    {(CK_CHAR_PTR) "PKCS 11", &g_list_2, 0},
};
#define N_IFACES (sizeof g_ifaces / sizeof g_ifaces[0])

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    if (!out)
        return CKR_ARGUMENTS_BAD;
    *out = &g_list_2;
    return CKR_OK;
}

EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count)
{
    if (!count)
        return CKR_ARGUMENTS_BAD;
    CK_RV rv = CKR_OK;
    if (list && *count < N_IFACES)
        rv = CKR_BUFFER_TOO_SMALL;
    else if (list)
        memcpy(list, g_ifaces, sizeof g_ifaces);
    *count = N_IFACES;
    return rv;
}

static const CK_VERSION *iface_version(const CK_INTERFACE *i)
{
    return (const CK_VERSION *)i->pFunctionList; /* each list starts so */
}

/* No match is an error, never CKR_OK with a NULL interface. */
EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                            CK_INTERFACE_PTR_PTR out, CK_FLAGS flags)
{
    if (!out)
        return CKR_ARGUMENTS_BAD;
    *out = NULL;
    for (size_t i = 0; i < N_IFACES; i++) {
        const CK_INTERFACE *f = &g_ifaces[i];
        const CK_VERSION *v = iface_version(f);
        if (name && strcmp((const char *)name, (const char *)f->pInterfaceName))
            continue;
        if (version && (version->major != v->major ||
                        version->minor != v->minor))
            continue;
        if ((f->flags & flags) != flags)
            continue;
        *out = &g_ifaces[i];
        return CKR_OK;
    }
    return CKR_ARGUMENTS_BAD;
}
