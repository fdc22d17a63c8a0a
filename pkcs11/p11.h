/* Internal interfaces of the gmpool PKCS#11 module.
 *
 * One slot per credentials file (GMPOOL_CREDENTIALS, ':'-separated; else
 * the daemon's default credentials), each with one token: the tenant's
 * VCM.  A slot owns one gmp_client, so every session of the application
 * shares one pool session and one login state, as PKCS#11 wants.  Object
 * handles are the pool's key handles (never reused). */
#ifndef GMP_P11_H
#define GMP_P11_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pkcs11.h>

#include "gmpool-pkcs11.h"
#include "gmpool.h"


#define P11_MAX_SLOTS 8
#define P11_LABEL_MAX 128  /* CKA_LABEL bytes */
#define P11_ID_MAX 128     /* CKA_ID bytes */

/* ---- locking: OS locks or the application's callbacks ---- */
typedef struct p11_mutex p11_mutex;
CK_RV p11_mutex_new(p11_mutex **out);
void p11_mutex_free(p11_mutex *m);
void p11_lock(p11_mutex *m);
void p11_unlock(p11_mutex *m);
CK_RV p11_locking_setup(const CK_C_INITIALIZE_ARGS *a);

/* ---- mechanisms (mech.c) ---- */
typedef enum p11_kind {
    MK_DIGEST,
    MK_HMAC,
    MK_CIPHER,
    MK_AEAD,
    MK_CBCMAC,
    MK_KEYGEN
} p11_kind;

typedef struct p11_mech {
    CK_MECHANISM_TYPE type;
    p11_kind kind;
    uint16_t alg;            /* gmp_alg of the pool task */
    CK_KEY_TYPE key_type;    /* CK_UNAVAILABLE_INFORMATION: no key */
    CK_MECHANISM_INFO info;
    uint8_t out_len;         /* digest/MAC bytes */
    bool pad;                /* PKCS#7 done by the module (CBC_PAD) */
    bool block;              /* data in whole 16-byte blocks */
} p11_mech;

const p11_mech *p11_mech_find(CK_MECHANISM_TYPE t);
size_t p11_mech_count(void);
const p11_mech *p11_mech_at(size_t i);

/* ---- key objects (object.c) ---- */
typedef struct p11_key {
    CK_OBJECT_HANDLE handle;
    CK_KEY_TYPE key_type;
    CK_ULONG value_len;
    uint32_t gflags;          /* GMP_KEYF_* */
    uint32_t bools;           /* P11B_* */
    CK_MECHANISM_TYPE gen_mech;
    uint8_t label[P11_LABEL_MAX];
    size_t label_len;
    uint8_t id[P11_ID_MAX];
    size_t id_len;
    CK_DATE start, end;
} p11_key;

enum {
    P11B_ENCRYPT = 1u << 0,
    P11B_DECRYPT = 1u << 1,
    P11B_SIGN = 1u << 2,
    P11B_VERIFY = 1u << 3,
    P11B_WRAP = 1u << 4,
    P11B_UNWRAP = 1u << 5,
    P11B_DERIVE = 1u << 6,
    P11B_MODIFIABLE = 1u << 7,
    P11B_COPYABLE = 1u << 8,
    P11B_DESTROYABLE = 1u << 9,
    P11B_LOCAL = 1u << 10,
    P11B_ALWAYS_SENSITIVE = 1u << 11,
    P11B_NEVER_EXTRACTABLE = 1u << 12,
    P11B_WRAP_WITH_TRUSTED = 1u << 13,
    P11B_TRUSTED = 1u << 14
};

typedef struct p11_slot p11_slot;
typedef struct p11_session p11_session;

CK_RV p11_key_load(p11_slot *sl, CK_OBJECT_HANDLE h, p11_key *k);
CK_RV p11_key_create(p11_session *s, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                     const CK_MECHANISM *gen, CK_OBJECT_HANDLE_PTR out);
CK_RV p11_key_get_attrs(p11_slot *sl, const p11_key *k, CK_ATTRIBUTE_PTR t,
                        CK_ULONG n);
CK_RV p11_key_set_attrs(p11_session *s, p11_key *k, CK_ATTRIBUTE_PTR t,
                        CK_ULONG n);
bool p11_key_matches(p11_slot *sl, const p11_key *k, CK_ATTRIBUTE_PTR t,
                     CK_ULONG n);

/* ---- crypto operations (crypto.c) ---- */
typedef enum p11_opcat {
    OPC_DIGEST,
    OPC_ENCRYPT,
    OPC_DECRYPT,
    OPC_SIGN,
    OPC_VERIFY,
    OPC_N
} p11_opcat;

typedef struct p11_op p11_op;
void p11_op_free(p11_op *o);
typedef struct p11_session p11_session;
CK_RV p11_op_init(p11_session *s, p11_opcat cat, const CK_MECHANISM *mech,
                  CK_OBJECT_HANDLE key);
void p11_op_end(p11_session *s, p11_opcat cat);
/* out NULL for digest/sign/verify updates */
CK_RV p11_op_update(p11_session *s, p11_opcat cat, const uint8_t *in,
                    CK_ULONG len, uint8_t *out, CK_ULONG_PTR outlen);
CK_RV p11_op_final(p11_session *s, p11_opcat cat, uint8_t *out,
                   CK_ULONG_PTR outlen);
CK_RV p11_op_single(p11_session *s, p11_opcat cat, const uint8_t *in,
                    CK_ULONG len, uint8_t *out, CK_ULONG_PTR outlen);
CK_RV p11_op_verify(p11_session *s, const uint8_t *in, CK_ULONG len,
                    bool single, const uint8_t *sig, CK_ULONG sig_len);

/* ---- slots and sessions (module.c) ---- */
struct p11_slot {
    CK_SLOT_ID id;
    char credentials[PATH_MAX];   /* "" = the default */
    gmp_client *cli;          /* holds the login state too */
};

struct p11_session {
    CK_SESSION_HANDLE handle;
    p11_slot *slot;
    CK_FLAGS flags;               /* CKF_RW_SESSION | CKF_SERIAL_SESSION */
    p11_mutex *mu;                /* one call at a time on a session */
    int refs;                     /* under the module lock */
    bool closed;
    p11_op *op[OPC_N];
    /* C_FindObjects state */
    bool finding;
    CK_OBJECT_HANDLE *found;
    size_t n_found, found_pos;
};

/* Session objects: recorded so C_CloseSession destroys them. */
void p11_session_object_add(p11_session *s, CK_OBJECT_HANDLE h);
void p11_session_object_forget(CK_OBJECT_HANDLE h);
bool p11_logged_in(p11_slot *sl);

CK_RV p11_from_gmp(int status);

#endif
