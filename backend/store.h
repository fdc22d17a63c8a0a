/* Tenants and the per-VCM keystore, in SQLite under the data directory.
 * Secrets and key values are wrapped by the master key (DIR/master.key,
 * mode 0600, 32 random bytes created on first start).  Thread-safe: one
 * mutex serialises the SQLite connection. */
#ifndef GMPD_STORE_H
#define GMPD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "gmpool.h"

#define GMPD_NAME_MAX 63
#define GMPD_SECRET_LEN 32
#define GMPD_KEY_MAX 64
#define GMPD_APP_MAX GMP_KEY_APP_MAX

/* Internal keys of the SDF front end (backend/sdf.c), addressed by type
 * and index, never through the generic KEY operations (keys.c hides
 * every key with an index). */
#define GMPD_KEY_KEK 0x101        /* SM4 key-encryption key */
#define GMPD_KEY_SM2_SIGN 0x102   /* SM2 private scalar, signing pair */
#define GMPD_KEY_SM2_ENC 0x103    /* SM2 private scalar, encryption pair */

typedef struct gmpd_store gmpd_store;

typedef struct gmpd_tenant {
    uint32_t id;
    char name[GMPD_NAME_MAX + 1];
    uint8_t secret[GMPD_SECRET_LEN];
    uint32_t vcm;                 /* the tenant's VCM (R1: tenant -> VCM) */
    int64_t created;              /* unix seconds */
} gmpd_tenant;

typedef struct gmpd_key_attr {
    uint32_t handle;
    uint32_t vcm;
    uint16_t type;                /* gmp_key_type */
    uint32_t len;
    uint32_t flags;               /* GMP_KEYF_* */
    uint64_t session;             /* owning session for session objects */
    char label[GMPD_NAME_MAX + 1];
    uint16_t app_len;
    uint8_t app[GMPD_APP_MAX];    /* opaque to the daemon (PKCS#11 attrs) */
    uint32_t idx;                 /* SDF index of an internal key, or 0 */
} gmpd_key_attr;

/* Opens (creating) DIR/gmpool.db and DIR/master.key.  On failure returns
 * a gmp_status and writes a message to err. */
int gmpd_store_open(gmpd_store **out, const char *data_dir, char *err,
                    size_t errlen);
void gmpd_store_close(gmpd_store *s);

/* Tenants.  name: 1..63 of [A-Za-z0-9._-].  add generates the secret and
 * a new VCM id; returns GMP_ERR_EXISTS / GMP_ERR_ARG. */
int gmpd_tenant_add(gmpd_store *s, const char *name, gmpd_tenant *out);
int gmpd_tenant_get(gmpd_store *s, const char *name, gmpd_tenant *out);
int gmpd_tenant_remove(gmpd_store *s, const char *name);
/* cb returns non-zero to stop. */
int gmpd_tenant_list(gmpd_store *s,
                     int (*cb)(const gmpd_tenant *, void *), void *arg);
int gmpd_tenant_count(gmpd_store *s);

/* The user PIN of a tenant: a verifier record (at most GMPD_KEY_MAX
 * bytes, wrapped like a secret; token.c defines its content) and a count
 * of consecutive failures.  len 0 = no PIN set.  set also clears the
 * count; set with n 0 removes the PIN. */
typedef struct gmpd_pin {
    uint8_t rec[GMPD_KEY_MAX];
    size_t len;
    uint32_t fails;
} gmpd_pin;

int gmpd_tenant_pin_set(gmpd_store *s, const char *name, const uint8_t *rec,
                        size_t n);
int gmpd_tenant_pin_get(gmpd_store *s, const char *name, gmpd_pin *out);
int gmpd_tenant_pin_fails(gmpd_store *s, const char *name, uint32_t fails);

/* Keys, always addressed within one VCM: a handle of another VCM is
 * GMP_ERR_NOT_FOUND.  Session objects (no GMP_KEYF_TOKEN) carry the
 * owning session id and are dropped by gmpd_key_purge_session and at
 * open (a restart ends every session). */
int gmpd_key_put(gmpd_store *s, const gmpd_key_attr *attr,
                 const uint8_t *value, size_t len, uint32_t *handle);
int gmpd_key_get(gmpd_store *s, uint32_t vcm, uint32_t handle,
                 gmpd_key_attr *attr, uint8_t *value, size_t cap,
                 size_t *len);
/* Rewrites flags, label and app of the key attr->handle in attr->vcm
 * (type, length and value stay); the caller decides what may change. */
int gmpd_key_update(gmpd_store *s, const gmpd_key_attr *attr);
int gmpd_key_delete(gmpd_store *s, uint32_t vcm, uint32_t handle);
int gmpd_key_list(gmpd_store *s, uint32_t vcm,
                  int (*cb)(const gmpd_key_attr *, void *), void *arg);
int gmpd_key_purge_session(gmpd_store *s, uint64_t session);

/* SDF internal keys: at most one key of each type at an index of a VCM
 * (gmpd_key_put with attr->idx set gives GMP_ERR_EXISTS for a second).
 * The index is bound into the wrapping, like the handle. */
int gmpd_key_get_idx(gmpd_store *s, uint32_t vcm, uint16_t type,
                     uint32_t idx, gmpd_key_attr *attr, uint8_t *value,
                     size_t cap, size_t *len);

/* The password guarding the key pairs at an SDF index: a verifier record
 * and a failure count, like a tenant's PIN.  set with n 0 removes it. */
int gmpd_keypin_set(gmpd_store *s, uint32_t vcm, uint32_t idx,
                    const uint8_t *rec, size_t n);
int gmpd_keypin_get(gmpd_store *s, uint32_t vcm, uint32_t idx,
                    gmpd_pin *out);
int gmpd_keypin_fails(gmpd_store *s, uint32_t vcm, uint32_t idx,
                      uint32_t fails);

/* SDF files of a VCM: a name of 1..GMPD_FILE_NAME_MAX bytes and a fixed
 * size given at create, zero-filled.  Create fails with GMP_ERR_EXISTS,
 * or GMP_ERR_LIMIT when the VCM's files would pass `space` bytes; read
 * and write with GMP_ERR_NOT_FOUND, GMP_ERR_ARG for an offset past the
 * end and (write) GMP_ERR_LENGTH for data running past it.  read copies
 * up to *len bytes and sets *len to the bytes read. */
#define GMPD_FILE_NAME_MAX 128
int gmpd_file_create(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                     size_t name_len, uint32_t size, uint64_t space);
/* The size a file was created with; GMP_ERR_NOT_FOUND if there is none. */
int gmpd_file_size(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                   size_t name_len, uint32_t *size);
int gmpd_file_read(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                   size_t name_len, uint32_t off, uint8_t *buf, size_t *len);
int gmpd_file_write(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                    size_t name_len, uint32_t off, const uint8_t *buf,
                    size_t len);
int gmpd_file_delete(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                     size_t name_len);
/* Bytes of file data the VCM holds. */
int gmpd_file_used(gmpd_store *s, uint32_t vcm, uint64_t *used);

#endif
