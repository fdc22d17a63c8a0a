/* gmpool client API: pooled SM3/SM4 through the gmpoold daemon.
 *
 * One process-wide background libuv loop thread owns every connection; the
 * calls below may be made from any application thread.  A child process
 * after fork() re-initialises lazily: handles and tasks created before the
 * fork fail with GMP_ERR_FORKED, new ones work.
 */
#ifndef GMPOOL_H
#define GMPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GMPOOL_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define GMP_API __attribute__((visibility("default")))
#else
#define GMP_API
#endif

/* Status codes.  The same numbers travel in reply frames (docs/protocol.md). */
typedef enum gmp_status {
    GMP_OK = 0,
    GMP_ERR_PROTO = 1,        /* malformed frame or call out of protocol order */
    GMP_ERR_AUTH = 2,         /* authentication failed */
    GMP_ERR_NOAUTH = 3,       /* request before authentication */
    GMP_ERR_REPLAY = 4,       /* task freshness value already used */
    GMP_ERR_TOO_BIG = 5,      /* a length over its hard bound */
    GMP_ERR_ALG = 6,          /* unknown or unsupported algorithm */
    GMP_ERR_KEY = 7,          /* bad key, key length or key handle */
    GMP_ERR_IV = 8,           /* bad IV length */
    GMP_ERR_NO_TASK = 9,      /* unknown task id */
    GMP_ERR_SEQ = 10,         /* shard sequence out of range or duplicated */
    GMP_ERR_LIMIT = 11,       /* per-session limit (open tasks, buffered bytes) */
    GMP_ERR_LENGTH = 12,      /* data length not valid for the mode */
    GMP_ERR_NOT_FOUND = 13,   /* no such tenant, key or node */
    GMP_ERR_EXISTS = 14,      /* already exists */
    GMP_ERR_DENIED = 15,      /* not permitted (e.g. sensitive key value) */
    GMP_ERR_SHUTDOWN = 16,    /* daemon is shutting down */
    GMP_ERR_INTERNAL = 17,    /* daemon-side failure (libcrypto, SQLite) */
    GMP_ERR_ARG = 18,         /* bad argument to a client call */
    GMP_ERR_CONN = 19,        /* cannot reach the daemon / connection lost */
    GMP_ERR_CONFIG = 20,      /* missing or unreadable credentials/config */
    GMP_ERR_FORKED = 21,      /* object created in the parent before fork() */
    GMP_ERR_STATE = 22,       /* call out of order (update after final ...) */
    GMP_ERR_BUFFER = 23,      /* output buffer too small */
    GMP_ERR_TIMEOUT = 24,     /* daemon did not answer in time */
    GMP_ERR_NOMEM = 25,
    GMP_ERR_NO_NODE = 26,     /* no compute node in service for the task */
    GMP_ERR_PIN = 27,         /* wrong user PIN */
    GMP_ERR_PIN_LOCKED = 28,  /* too many wrong PINs; the operator resets it */
    GMP_ERR_PIN_UNSET = 29,   /* the tenant has no user PIN yet */
    GMP_ERR_LOGIN = 30,       /* needs a logged-in session (private keys) */
    GMP_ERR_VERIFY = 31,      /* signature invalid, or ciphertext fails its check */
    GMP_ERR_MAX_
} gmp_status;

/* Algorithm identifiers (wire values). */
typedef enum gmp_alg {
    GMP_ALG_NONE = 0,
    GMP_ALG_SM3 = 0x0001,
    GMP_ALG_SHA256 = 0x0002,
    GMP_ALG_SHA384 = 0x0003,
    GMP_ALG_SHA512 = 0x0004,
    GMP_ALG_SM4_ECB = 0x0101,
    GMP_ALG_SM4_CBC = 0x0102,
    GMP_ALG_SM4_CTR = 0x0103,
    GMP_ALG_SM4_OFB = 0x0104,
    GMP_ALG_SM4_CFB = 0x0105,
    GMP_ALG_SM4_GCM = 0x0106,    /* AEAD: AAD at open, tag after final */
    GMP_ALG_AES_ECB = 0x0111,    /* AES-128/192/256 by key length */
    GMP_ALG_AES_CBC = 0x0112,
    GMP_ALG_AES_CTR = 0x0113,
    GMP_ALG_AES_GCM = 0x0116,
    GMP_ALG_HMAC_SM3 = 0x0201,   /* MAC: key at open, tag at final */
    GMP_ALG_HMAC_SHA256 = 0x0202,
    GMP_ALG_HMAC_SHA384 = 0x0203,
    GMP_ALG_HMAC_SHA512 = 0x0204
} gmp_alg;

/* Key types stored in a tenant's keystore. */
typedef enum gmp_key_type {
    GMP_KEY_GENERIC = 1,
    GMP_KEY_SM4 = 2,
    GMP_KEY_AES = 3
} gmp_key_type;

/* Key attribute flags. */
#define GMP_KEYF_SENSITIVE   0x01u /* value never leaves the pool */
#define GMP_KEYF_EXTRACTABLE 0x02u /* may be exported (wrapped) */
#define GMP_KEYF_TOKEN       0x04u /* persists; else lives with the session */
#define GMP_KEYF_PRIVATE     0x08u /* seen and used only after gmp_login */

/* Task flags. */
#define GMP_TASK_DECRYPT 0x01u /* cipher direction; encrypt when clear */
#define GMP_TASK_PAD     0x02u /* PKCS#7 padding for ECB/CBC */

#define GMP_SHARD_MIN (4u * 1024u)
#define GMP_SHARD_MAX (1024u * 1024u)
#define GMP_SHARD_DEFAULT (16u * 1024u)
#define GMP_SM3_DIGEST_LEN 32u
#define GMP_MAX_DIGEST_LEN 64u
#define GMP_SM4_KEY_LEN 16u
#define GMP_SM4_BLOCK 16u
#define GMP_MAX_KEY_LEN 64u
#define GMP_MAX_IV_LEN 16u
#define GMP_MAX_AAD_LEN 65535u
#define GMP_GCM_TAG_LEN 16u
#define GMP_KEY_APP_MAX 512u  /* front-end attributes kept with a key */
#define GMP_PIN_MIN 4u
#define GMP_PIN_MAX 64u

typedef struct gmp_client gmp_client;
typedef struct gmp_task gmp_task;

/* Client options.  Zero/NULL fields take their defaults: server and
 * credentials from GMPOOL_SERVER / GMPOOL_CREDENTIALS, else the daemon's
 * default credentials file (which also names the server). */
typedef struct gmp_options {
    const char *server;        /* "unix:PATH" or "tcp:HOST:PORT" */
    const char *credentials;   /* path of a credentials file */
    const char *tenant;        /* tenant name, overrides the file */
    const char *secret_hex;    /* tenant secret (hex), overrides the file */
    unsigned connections;      /* sockets in the pool (default 4, max 16) */
    unsigned shard_size;       /* bytes per shard, 4 KiB..1 MiB (default 16 KiB) */
    unsigned window;           /* client window: cap of q and of the shards
                                  in flight per task (default 64; 1 = send,
                                  wait, send) */
    unsigned timeout_ms;       /* per-reply timeout (default 30000) */
} gmp_options;

/* Per-task options. */
typedef struct gmp_task_options {
    uint8_t priority;          /* 0 = highest .. 7 = lowest (default 4) */
    uint32_t deadline_ms;      /* 0 = none */
    uint64_t total_len;        /* 0 = unknown */
    uint32_t key_handle;       /* gmp_mac_open/gmp_aead_open: a stored key
                                  instead of key bytes */
} gmp_task_options;

GMP_API const char *gmp_strerror(int status);

/* Open a client.  Connects lazily on first use; cheap to keep around. */
GMP_API int gmp_client_open(gmp_client **out, const gmp_options *opt);
GMP_API void gmp_client_close(gmp_client *c);
/* Human-readable detail of the last error on this client (thread-local). */
GMP_API const char *gmp_client_last_error(void);
/* Connect and authenticate now (otherwise done on first task). */
GMP_API int gmp_client_connect(gmp_client *c);

/* Digest task (SM3).  update() copies the data and may return before the
 * daemon has acknowledged it; final() waits for everything. */
GMP_API int gmp_digest_open(gmp_client *c, gmp_alg alg, const gmp_task_options *o,
                    gmp_task **out);
/* Cipher task with an ephemeral key sent with the task, or with a stored
 * key addressed by handle (key == NULL, key_len == 0). */
GMP_API int gmp_cipher_open(gmp_client *c, gmp_alg alg, unsigned flags,
                    const uint8_t *key, size_t key_len, uint32_t key_handle,
                    const uint8_t *iv, size_t iv_len,
                    const gmp_task_options *o, gmp_task **out);
/* MAC task (HMAC-SM3, HMAC-SHA-2): like a digest, keyed; final writes the
 * tag (the digest's length).  The key is given, or stored and named by
 * o->key_handle (key NULL, key_len 0).  Keys longer than the digest's
 * block are first hashed, as HMAC specifies; SHA-384/512 keys of 65..128
 * bytes are refused with GMP_ERR_KEY (store them instead). */
GMP_API int gmp_mac_open(gmp_client *c, gmp_alg alg, const uint8_t *key,
                         size_t key_len, const gmp_task_options *o,
                         gmp_task **out);
/* AEAD task (SM4-GCM, AES-GCM): the AAD goes with the open; the key is
 * given, or stored and named by o->key_handle.  Each update returns
 * as many bytes as it was given; final returns none.  After final,
 * gmp_task_get_tag gives the 16-byte tag computed over the ciphertext: for
 * encryption the tag to send, for decryption the one to compare (the
 * caller compares, in constant time, with the tag it received). */
GMP_API int gmp_aead_open(gmp_client *c, gmp_alg alg, unsigned flags,
                          const uint8_t *key, size_t key_len,
                          const uint8_t *iv, size_t iv_len,
                          const uint8_t *aad, size_t aad_len,
                          const gmp_task_options *o, gmp_task **out);
GMP_API int gmp_task_get_tag(gmp_task *t, uint8_t *tag, size_t tag_len);
/* Digest: out/out_len unused (may be NULL).  Cipher: writes the output that
 * is ready to out; *out_len is its capacity on entry and the bytes written
 * on return.  Room needed: in_len for the stream modes; for ECB/CBC the
 * whole blocks of (bytes pending + in_len), plus 16 when decrypting with
 * padding (in_len + 16 always suffices, as with EVP). */
GMP_API int gmp_task_update(gmp_task *t, const void *in, size_t in_len,
                    void *out, size_t *out_len);
/* Digest: writes the digest.  Cipher: writes the last block(s). */
GMP_API int gmp_task_final(gmp_task *t, void *out, size_t *out_len);
/* Abort (if still open) and free. */
GMP_API void gmp_task_free(gmp_task *t);
/* Shards of this task sent but not yet answered, at most ever (test aid). */
GMP_API unsigned gmp_task_max_inflight(const gmp_task *t);

/* One-shot helpers. */
GMP_API int gmp_digest(gmp_client *c, gmp_alg alg, const void *in, size_t len,
               uint8_t out[GMP_SM3_DIGEST_LEN]);
GMP_API int gmp_cipher(gmp_client *c, gmp_alg alg, unsigned flags,
               const uint8_t *key, size_t key_len,
               const uint8_t *iv, size_t iv_len,
               const void *in, size_t in_len, void *out, size_t *out_len);
GMP_API int gmp_random(gmp_client *c, void *buf, size_t len);

/* Keystore of the tenant's VCM. */
typedef struct gmp_key_info {
    uint32_t handle;
    uint16_t type;             /* gmp_key_type */
    uint32_t len;              /* value length in bytes */
    uint32_t flags;            /* GMP_KEYF_* */
    char label[64];
    uint16_t app_len;
    uint8_t app[GMP_KEY_APP_MAX]; /* front-end attributes (gmp_key_update) */
} gmp_key_info;

GMP_API int gmp_key_import(gmp_client *c, uint16_t type, uint32_t flags,
                   const char *label, const uint8_t *value, size_t len,
                   uint32_t *handle);
GMP_API int gmp_key_generate(gmp_client *c, uint16_t type, uint32_t flags,
                     const char *label, size_t len, uint32_t *handle);
/* Either of the two (value NULL: generate len bytes) with the front end's
 * attribute blob (gmp_key_info.app) stored in the same request. */
GMP_API int gmp_key_create(gmp_client *c, uint16_t type, uint32_t flags,
                           const char *label, const uint8_t *value, size_t len,
                           const uint8_t *app, size_t app_len,
                           uint32_t *handle);
GMP_API int gmp_key_get_info(gmp_client *c, uint32_t handle, gmp_key_info *info);
/* Refused with GMP_ERR_DENIED for sensitive or non-extractable keys. */
GMP_API int gmp_key_export(gmp_client *c, uint32_t handle, uint8_t *value,
                   size_t *len);
GMP_API int gmp_key_destroy(gmp_client *c, uint32_t handle);
/* The keys this client may see with handle > after, in handle order; *n
 * gets how many were written (at most cap).  Page on with the last one. */
GMP_API int gmp_key_list(gmp_client *c, uint32_t after, uint32_t *handles,
                         size_t cap, size_t *n);
/* Replaces flags, label and the opaque attribute blob app.  Flags only
 * tighten: SENSITIVE may be set, EXTRACTABLE cleared; TOKEN and PRIVATE
 * stay as created (else GMP_ERR_DENIED). */
GMP_API int gmp_key_update(gmp_client *c, uint32_t handle, uint32_t flags,
                           const char *label, const uint8_t *app,
                           size_t app_len);

/* The tenant's token.  The user PIN (set by the operator with gmpoolctl
 * tenant pin) is checked by the daemon; a logged-in client sees and may
 * create GMP_KEYF_PRIVATE keys.  Login covers every connection of the
 * client.  GMP_TOKEN_PIN_TRIES wrong PINs in a row lock it. */
#define GMP_TOKEN_PIN_SET    0x1u
#define GMP_TOKEN_PIN_LOCKED 0x2u
#define GMP_TOKEN_LOGGED_IN  0x4u
typedef struct gmp_token_info {
    uint32_t flags;            /* GMP_TOKEN_* */
    uint32_t pin_fails;        /* wrong PINs since the last right one */
    uint32_t pin_tries;        /* wrong PINs that lock it */
    uint32_t vcm;              /* the tenant's VCM */
    char tenant[64];
} gmp_token_info;

GMP_API int gmp_token_get_info(gmp_client *c, gmp_token_info *info);
/* The client keeps the PIN of a successful login (wiped at logout and
 * close) and repeats the login when it reconnects to a restarted daemon;
 * if that fails (PIN changed or locked) the client is logged out. */
GMP_API int gmp_login(gmp_client *c, const void *pin, size_t len);
GMP_API int gmp_logout(gmp_client *c);
/* 1 while logged in (no round trip), else 0. */
GMP_API int gmp_logged_in(gmp_client *c);
GMP_API int gmp_set_pin(gmp_client *c, const void *old_pin, size_t old_len,
                        const void *new_pin, size_t new_len);

/* ---- SM2 and the SDF (GM/T 0018) keystore ----
 * Each VCM keeps internal keys by index (gmpoolctl sdf ...): KEKs, and at
 * a key-pair index an SM2 signing and an SM2 encryption key pair guarded
 * by one password.  Private keys and KEKs never leave the pool: a client
 * unlocks an index with its password (GMP_ERR_LOGIN until then;
 * GMP_SDF_TRIES wrong passwords in a row lock it) and the daemon signs,
 * decrypts and agrees keys with them.  Session keys made here are SM4 keys
 * in the keystore, owned by the client's session: use them by handle with
 * gmp_cipher_open, remove them with gmp_key_destroy.  SM2 is computed by
 * libcrypto in the daemon. */
#define GMP_SM2_LEN 32u
#define GMP_SM2_MAX_PLAIN 1024u /* bytes one SM2 encryption takes */
#define GMP_SM2_MAX_ID 1024u    /* signer / agreement IDs */
#define GMP_SDF_INDEX_MAX 1024u /* internal key indexes are 1..this */
#define GMP_SDF_TRIES 10u
#define GMP_SM2_AGREE_MAX 8u    /* open agreements per client; a ninth
                                   drops the oldest */
#define GMP_FILE_NAME_MAX 128u

typedef enum gmp_sm2_usage {
    GMP_SM2_SIGN = 1,
    GMP_SM2_ENC = 2
} gmp_sm2_usage;

typedef struct gmp_sm2_point {
    uint8_t x[GMP_SM2_LEN];
    uint8_t y[GMP_SM2_LEN];
} gmp_sm2_point;

/* A public key: the internal one of `usage` at `index`, or when index is
 * 0 the given `pub`. */
typedef struct gmp_sm2_key {
    uint32_t index;
    uint8_t usage;            /* gmp_sm2_usage */
    gmp_sm2_point pub;
} gmp_sm2_key;

/* SM2 ciphertext as C1 C3 C2; C2 has as many bytes as the plaintext. */
typedef struct gmp_sm2_cipher {
    gmp_sm2_point c1;
    uint8_t c3[GMP_SM2_LEN];
    uint32_t len;
    uint8_t c2[GMP_SM2_MAX_PLAIN];
} gmp_sm2_cipher;

/* The other side of a key agreement. */
typedef struct gmp_sm2_party {
    const void *id;
    size_t id_len;
    gmp_sm2_point pub;        /* static public key */
    gmp_sm2_point tmp;        /* ephemeral public key */
} gmp_sm2_party;

typedef struct gmp_sdf_info {
    uint32_t file_space;      /* bytes of file storage in the VCM */
    uint32_t file_used;
    uint32_t index_max;
} gmp_sdf_info;

GMP_API int gmp_sdf_get_info(gmp_client *c, gmp_sdf_info *info);
/* Access to the private keys at index for this client's session:
 * GMP_ERR_PIN, GMP_ERR_PIN_LOCKED, GMP_ERR_NOT_FOUND (no key pair). */
GMP_API int gmp_sdf_unlock(gmp_client *c, uint32_t index, const void *pwd,
                           size_t len);
GMP_API int gmp_sdf_lock(gmp_client *c, uint32_t index);

/* An ephemeral key pair; the private key is handed out (SDF's
 * GenerateKeyPair_ECC exports it by definition). */
GMP_API int gmp_sm2_generate(gmp_client *c, uint8_t d[GMP_SM2_LEN],
                             gmp_sm2_point *pub);
GMP_API int gmp_sm2_public(gmp_client *c, gmp_sm2_usage usage,
                           uint32_t index, gmp_sm2_point *pub);
/* Signs the digest e (which includes Z) with the signing key at index. */
GMP_API int gmp_sm2_sign(gmp_client *c, uint32_t index,
                         const uint8_t e[GMP_SM2_LEN], uint8_t r[GMP_SM2_LEN],
                         uint8_t s[GMP_SM2_LEN]);
/* GMP_OK, or GMP_ERR_VERIFY for a signature that does not verify. */
GMP_API int gmp_sm2_verify(gmp_client *c, const gmp_sm2_key *k,
                           const uint8_t e[GMP_SM2_LEN],
                           const uint8_t r[GMP_SM2_LEN],
                           const uint8_t s[GMP_SM2_LEN]);
GMP_API int gmp_sm2_encrypt(gmp_client *c, const gmp_sm2_key *k,
                            const void *in, size_t len, gmp_sm2_cipher *out);
/* With the encryption key at index; *len is the room at out on entry and
 * the plaintext length on return.  GMP_ERR_VERIFY: does not decrypt. */
GMP_API int gmp_sm2_decrypt(gmp_client *c, uint32_t index,
                            const gmp_sm2_cipher *in, void *out, size_t *len);
/* Z = SM3(ENTL || ID || a || b || xG || yG || x || y) */
GMP_API int gmp_sm2_z(gmp_client *c, const gmp_sm2_point *pub, const void *id,
                      size_t id_len, uint8_t z[GMP_SM2_LEN]);

/* Session keys.  A new key wrapped under the KEK at kek_index (alg
 * GMP_ALG_SM4_ECB; *wlen is the room on entry, 16 on return), a key
 * unwrapped from such a blob, a new key encrypted to an SM2 key, one
 * decrypted with the encryption key at index, and an SM2-wrapped key
 * re-encrypted to another public key without leaving the pool. */
GMP_API int gmp_kek_wrap_new(gmp_client *c, uint32_t kek_index, gmp_alg alg,
                             uint8_t *wrapped, size_t *wlen, uint32_t *handle);
GMP_API int gmp_kek_unwrap(gmp_client *c, uint32_t kek_index, gmp_alg alg,
                           const uint8_t *wrapped, size_t wlen,
                           uint32_t *handle);
GMP_API int gmp_sm2_wrap_new(gmp_client *c, const gmp_sm2_key *k,
                             gmp_sm2_cipher *out, uint32_t *handle);
GMP_API int gmp_sm2_unwrap(gmp_client *c, uint32_t index,
                           const gmp_sm2_cipher *in, uint32_t *handle);
GMP_API int gmp_sm2_rewrap(gmp_client *c, uint32_t index,
                           const gmp_sm2_point *to, const gmp_sm2_cipher *in,
                           gmp_sm2_cipher *out);

/* SM2 key agreement (GM/T 0003.3) with the encryption key pair at index,
 * giving a 16-byte session key.  The sponsor starts (its public keys go
 * to the responder) and finishes with the responder's; the responder
 * answers in one step.  An agreement is used once; its id is random, so
 * one kept from before a restart of the daemon names nothing there. */
GMP_API int gmp_sm2_agree_start(gmp_client *c, uint32_t index, const void *id,
                                size_t id_len, gmp_sm2_point *pub,
                                gmp_sm2_point *tmp, uint64_t *agreement);
GMP_API int gmp_sm2_agree_finish(gmp_client *c, uint64_t agreement,
                                 const gmp_sm2_party *responder,
                                 uint32_t *handle);
GMP_API int gmp_sm2_agree_respond(gmp_client *c, uint32_t index,
                                  const void *id, size_t id_len,
                                  const gmp_sm2_party *sponsor,
                                  gmp_sm2_point *pub, gmp_sm2_point *tmp,
                                  uint32_t *handle);

/* Files of the VCM: fixed size from create (zero-filled), names of
 * 1..GMP_FILE_NAME_MAX bytes.  read: *len is the most to read on entry and
 * the bytes read on return (fewer at the end of the file).  Errors:
 * GMP_ERR_EXISTS, GMP_ERR_NOT_FOUND, GMP_ERR_LIMIT (no space),
 * GMP_ERR_ARG (offset past the end), GMP_ERR_LENGTH (write past it). */
GMP_API int gmp_file_create(gmp_client *c, const void *name, size_t name_len,
                            uint32_t size);
GMP_API int gmp_file_read(gmp_client *c, const void *name, size_t name_len,
                          uint32_t offset, void *buf, size_t *len);
GMP_API int gmp_file_write(gmp_client *c, const void *name, size_t name_len,
                           uint32_t offset, const void *buf, size_t len);
GMP_API int gmp_file_delete(gmp_client *c, const void *name, size_t name_len);

#ifdef __cplusplus
}
#endif
#endif
