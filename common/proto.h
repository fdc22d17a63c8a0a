/* gmpool wire protocol codec (docs/protocol.md).  Pure functions: no I/O,
 * no allocation policy beyond the caller's buffers. */
#ifndef GMPC_PROTO_H
#define GMPC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMPC_MAGIC 0x474D5046u /* "GMPF": the API_FLAG start marker */
#define GMPC_VERSION 1u
#define GMPC_HDR_LEN 48u
/* Hard bound on any payload: the largest shard plus room for a reply. */
#define GMPC_MAX_PAYLOAD (1024u * 1024u + 64u)
#define GMPC_MAX_MSG 256u      /* error message bytes */
#define GMPC_NONCE_LEN 32u
#define GMPC_MAC_LEN 32u
#define GMPC_MAX_NAME 63u      /* tenant name, key label */

typedef enum gmpc_type {
    GMPC_T_CHALLENGE = 1,   /* s->c: server nonce */
    GMPC_T_AUTH = 2,        /* c->s: tenant, client nonce, HMAC */
    GMPC_T_AUTH_OK = 3,     /* s->c: server proof, session info */
    GMPC_T_OPEN = 4,        /* c->s: open task */
    GMPC_T_OPEN_OK = 5,     /* s->c: task opened, initial window */
    GMPC_T_SHARD = 6,       /* c->s: data shard `seq` */
    GMPC_T_RESULT = 7,      /* s->c: shard result (output bytes) */
    GMPC_T_FINAL = 8,       /* c->s: last item, seq = shard count */
    GMPC_T_FINAL_OK = 9,    /* s->c: digest / last cipher bytes */
    GMPC_T_ABORT = 10,      /* c->s: drop task */
    GMPC_T_RANDOM = 11,     /* c->s: payload u32 count */
    GMPC_T_RANDOM_OK = 12,
    GMPC_T_KEY = 13,        /* c->s: keystore op (op u8, then its fields) */
    GMPC_T_KEY_OK = 14,
    GMPC_T_ADMIN = 15,      /* admin socket: NUL-separated argv */
    GMPC_T_ADMIN_OK = 16,   /* admin reply: text */
    GMPC_T_PING = 17,
    GMPC_T_PONG = 18,
    GMPC_T_ERROR = 19,      /* s->c: status + message */
    GMPC_T_SHM = 20,        /* c->s, unix sockets: a shared-memory region
                               (its memfd rides along, SCM_RIGHTS) */
    GMPC_T_SHM_OK = 21,
    GMPC_T_MAX_
} gmpc_type;

/* Header flags. */
#define GMPC_F_CLOSE 0x80u  /* on ERROR: the server closes the connection */
/* On SHARD/FINAL and RESULT/FINAL_OK: the payload is a gmpc_shm_ref and
 * the bytes are in the session's shared-memory region. */
#define GMPC_F_SHM 0x40u

typedef struct gmpc_hdr {
    uint8_t version;
    uint8_t type;
    uint8_t priority;
    uint8_t flags;          /* task flags on OPEN, GMPC_F_* on replies */
    uint16_t alg;
    uint16_t status;        /* replies */
    uint32_t window;        /* replies: server window p */
    uint64_t task_id;
    uint64_t fresh;         /* task freshness value */
    uint32_t seq;
    uint32_t len;           /* payload length */
    uint32_t deadline_ms;
} gmpc_hdr;

typedef enum gmpc_parse {
    GMPC_NEED_MORE = 0,   /* not enough bytes yet */
    GMPC_FRAME = 1,       /* a whole frame at the start of the buffer */
    GMPC_SKIP = 2,        /* *consumed bytes are garbage: drop them */
    GMPC_BAD = 3          /* a valid header that breaks a bound (*status) */
} gmpc_parse;

/* Encode a header into out[GMPC_HDR_LEN] (fills magic, version, crc). */
void gmpc_hdr_encode(const gmpc_hdr *h, uint8_t out[GMPC_HDR_LEN]);

/* Look at the start of buf:
 *  NEED_MORE  - wait for more input (*consumed = 0);
 *  FRAME      - *h is decoded and the frame is GMPC_HDR_LEN + h->len bytes,
 *               all present in buf (*consumed = that);
 *  SKIP       - the first *consumed bytes cannot start a frame (garbage
 *               before the next possible magic); drop them and call again;
 *  BAD        - header is intact but its length or type breaks a bound;
 *               *status says which (GMP_ERR_TOO_BIG / GMP_ERR_PROTO).  The
 *               stream cannot be trusted after this. */
gmpc_parse gmpc_frame_parse(const uint8_t *buf, size_t n, gmpc_hdr *h,
                            size_t *consumed, int *status);

/* Build a whole frame (header + payload) into out, capacity cap.  Returns
 * the frame length or 0 if it does not fit / payload too big. */
size_t gmpc_frame_build(const gmpc_hdr *h, const void *payload,
                        uint8_t *out, size_t cap);

/* ---- reassembly buffer for one byte stream ---- */
typedef struct gmpc_inbuf {
    uint8_t *p;
    size_t len, cap;
} gmpc_inbuf;

/* Room for at least `chunk` more bytes after the data; NULL when out of
 * memory.  *avail is the room given. */
uint8_t *gmpc_inbuf_room(gmpc_inbuf *b, size_t chunk, size_t *avail);
/* Drop the first n bytes (frames handled); an emptied buffer much larger
 * than `chunk` is released so idle streams stay small. */
void gmpc_inbuf_consume(gmpc_inbuf *b, size_t n, size_t chunk);
void gmpc_inbuf_free(gmpc_inbuf *b);

/* ---- payload helpers: a bounded big-endian reader/writer ---- */
typedef struct gmpc_wbuf {
    uint8_t *p;
    size_t cap, len;
    bool overflow;
} gmpc_wbuf;

typedef struct gmpc_rbuf {
    const uint8_t *p;
    size_t len, off;
    bool bad;
} gmpc_rbuf;

void gmpc_w_u8(gmpc_wbuf *w, uint8_t v);
void gmpc_w_u16(gmpc_wbuf *w, uint16_t v);
void gmpc_w_u32(gmpc_wbuf *w, uint32_t v);
void gmpc_w_u64(gmpc_wbuf *w, uint64_t v);
void gmpc_w_bytes(gmpc_wbuf *w, const void *p, size_t n);
/* u16 length + bytes */
void gmpc_w_blob(gmpc_wbuf *w, const void *p, size_t n);

uint8_t gmpc_r_u8(gmpc_rbuf *r);
uint16_t gmpc_r_u16(gmpc_rbuf *r);
uint32_t gmpc_r_u32(gmpc_rbuf *r);
uint64_t gmpc_r_u64(gmpc_rbuf *r);
const uint8_t *gmpc_r_bytes(gmpc_rbuf *r, size_t n);
/* u16 length + bytes, length must be <= max; returns pointer, sets *n. */
const uint8_t *gmpc_r_blob(gmpc_rbuf *r, size_t max, size_t *n);
/* true when the reader consumed exactly all bytes without error. */
bool gmpc_r_done(const gmpc_rbuf *r);

/* ---- message payloads ---- */

/* Shared-memory lane (docs/protocol.md §6.5).  SHM: region size u32.  A
 * reference: offset u32, length u32, within the region.  An item's output
 * goes right after its input: the slot holds 2 x len + GMPC_SHM_SPARE. */
#define GMPC_SHM_REF_LEN 8u
#define GMPC_SHM_SPARE 80u
#define GMPC_SHM_MAX (64u * 1024u * 1024u)

void gmpc_shm_ref_encode(uint8_t out[GMPC_SHM_REF_LEN], uint32_t off,
                         uint32_t len);
/* False when the payload is not a reference. */
bool gmpc_shm_ref_decode(const uint8_t *p, size_t n, uint32_t *off,
                         uint32_t *len);
/* Does [off, off + n) lie inside a region of `size` bytes? */
bool gmpc_shm_fits(uint64_t size, uint32_t off, uint64_t n);

/* AUTH: tenant name blob, client nonce, mac, session id (u64: 0 = a new
 * session, else join that session from another connection). */
typedef struct gmpc_auth {
    char tenant[GMPC_MAX_NAME + 1];
    uint8_t cnonce[GMPC_NONCE_LEN];
    uint8_t mac[GMPC_MAC_LEN];
    uint64_t session_id;    /* 0 = new session */
} gmpc_auth;

/* AUTH_OK: server proof, session id, vcm id, limits. */
typedef struct gmpc_auth_ok {
    uint8_t proof[GMPC_MAC_LEN];
    uint64_t session_id;
    uint32_t vcm;
    uint32_t max_tasks;
    uint32_t max_shard;
    uint32_t window;
} gmpc_auth_ok;

/* OPEN payload: key handle (0 = none), key blob, iv blob, total length,
 * then for AEAD only an AAD blob (absent = none). */
typedef struct gmpc_open {
    uint32_t key_handle;
    uint8_t key[64];
    size_t key_len;
    uint8_t iv[16];
    size_t iv_len;
    uint64_t total_len;
    const uint8_t *aad;     /* points into the payload when decoded */
    size_t aad_len;
} gmpc_open;

/* KEY operations: the tenant's keystore and token.  [app] is an optional
 * trailing blob of front-end attributes (GMP_KEY_APP_MAX bytes). */
typedef enum gmpc_key_op {
    GMPC_KEY_IMPORT = 1,    /* type u16, flags u32, label blob, value blob,
                               [app] -> handle u32 */
    GMPC_KEY_GENERATE = 2,  /* type u16, flags u32, label blob, len u32,
                               [app] -> handle u32 */
    GMPC_KEY_INFO = 3,      /* handle u32 -> handle u32, type u16, len u32,
                               flags u32, label blob, app blob */
    GMPC_KEY_EXPORT = 4,    /* handle u32 -> value blob */
    GMPC_KEY_DESTROY = 5,   /* handle u32 */
    GMPC_KEY_LIST = 6,      /* after u32 -> n u16, n handles u32 (the keys
                               this session may see, handle > after) */
    GMPC_KEY_UPDATE = 7,    /* handle u32, flags u32, label blob, app blob */
    GMPC_TOKEN_INFO = 16,   /* -> flags u32 (GMPC_TOKF_*), fails u32,
                               tries u32, vcm u32, tenant blob */
    GMPC_TOKEN_LOGIN = 17,  /* pin blob */
    GMPC_TOKEN_LOGOUT = 18,
    GMPC_TOKEN_SET_PIN = 19, /* old pin blob, new pin blob */
    /* 32..63: the SDF front end (backend/sdf.c).  pt = x (32), y (32);
     * [pub] = index u32, usage u8, and pt when index is 0 (an external
     * key; else the internal key of that usage at index); [ct] = SM2
     * ciphertext: C1 pt, C3 (32), C2 blob.  Session keys are SM4. */
    GMPC_SDF_INFO = 32,     /* -> file space u32, used u32, index max u32 */
    GMPC_SDF_UNLOCK = 33,   /* index u32, password blob */
    GMPC_SDF_LOCK = 34,     /* index u32 */
    GMPC_SM2_GENERATE = 35, /* -> d (32), pt */
    GMPC_SM2_PUBLIC = 36,   /* usage u8, index u32 -> pt */
    GMPC_SM2_SIGN = 37,     /* index u32, e (32) -> r (32), s (32) */
    GMPC_SM2_VERIFY = 38,   /* [pub], e, r, s (32 each) */
    GMPC_SM2_ENCRYPT = 39,  /* [pub], data blob -> [ct] */
    GMPC_SM2_DECRYPT = 40,  /* index u32, [ct] -> data blob */
    GMPC_SM2_Z = 41,        /* pt, id blob -> z (32) */
    GMPC_KEK_WRAP_NEW = 42, /* kek index u32, alg u16 -> wrapped blob,
                               handle u32 */
    GMPC_KEK_UNWRAP = 43,   /* kek index u32, alg u16, wrapped blob ->
                               handle u32 */
    GMPC_SM2_WRAP_NEW = 44, /* [pub] -> [ct], handle u32 */
    GMPC_SM2_UNWRAP = 45,   /* index u32, [ct] -> handle u32 */
    GMPC_SM2_REWRAP = 46,   /* index u32, to pt, [ct] -> [ct] */
    GMPC_AGREE_START = 47,  /* index u32, id blob -> agreement u64, pub pt,
                               tmp pt */
    GMPC_AGREE_FINISH = 48, /* agreement u64, peer id blob, peer pub pt,
                               peer tmp pt -> handle u32 */
    GMPC_AGREE_RESPOND = 49, /* index u32, id blob, peer id blob, peer pub
                                pt, peer tmp pt -> pub pt, tmp pt, handle */
    GMPC_FILE_CREATE = 50,  /* name blob, size u32 */
    GMPC_FILE_READ = 51,    /* name blob, offset u32, len u32 -> data blob */
    GMPC_FILE_WRITE = 52,   /* name blob, offset u32, end u32, data blob */
    GMPC_FILE_DELETE = 53   /* name blob */
} gmpc_key_op;

#define GMPC_SDF_FIRST 32u
#define GMPC_SDF_LAST 63u
#define GMPC_FILE_CHUNK 4096u   /* data bytes per FILE_READ/FILE_WRITE */

#define GMPC_TOKF_PIN_SET 0x1u
#define GMPC_TOKF_PIN_LOCKED 0x2u
#define GMPC_TOKF_LOGGED_IN 0x4u
#define GMPC_KEY_LIST_MAX 1024u /* handles per LIST reply */

/* A value length the key type allows (gmp_key_type; 0 or unknown: none). */
bool gmpc_key_len_ok(uint16_t type, size_t len);

int gmpc_auth_encode(const gmpc_auth *a, gmpc_wbuf *w);
int gmpc_auth_decode(const uint8_t *p, size_t n, gmpc_auth *a);
int gmpc_auth_ok_encode(const gmpc_auth_ok *a, gmpc_wbuf *w);
int gmpc_auth_ok_decode(const uint8_t *p, size_t n, gmpc_auth_ok *a);
int gmpc_open_encode(const gmpc_open *o, gmpc_wbuf *w);
int gmpc_open_decode(const uint8_t *p, size_t n, gmpc_open *o);
/* ERROR payload: UTF-8 message, at most GMPC_MAX_MSG bytes. */

/* HMAC-SM3 transcripts for the challenge-response. */
int gmpc_auth_mac(const uint8_t *secret, size_t secret_len,
                  const char *tenant, const uint8_t snonce[GMPC_NONCE_LEN],
                  const uint8_t cnonce[GMPC_NONCE_LEN], uint64_t session_id,
                  uint8_t out[GMPC_MAC_LEN]);
/* The server's proof also binds the session id it hands out, so a
 * man in the middle cannot move a client into another session. */
int gmpc_server_proof(const uint8_t *secret, size_t secret_len,
                      const char *tenant,
                      const uint8_t snonce[GMPC_NONCE_LEN],
                      const uint8_t cnonce[GMPC_NONCE_LEN],
                      uint64_t session_id, uint8_t out[GMPC_MAC_LEN]);

/* Constant-time checks of the two MACs above. */
bool gmpc_auth_verify(const uint8_t *secret, size_t secret_len,
                      const uint8_t snonce[GMPC_NONCE_LEN],
                      const gmpc_auth *a);
bool gmpc_server_proof_verify(const uint8_t *secret, size_t secret_len,
                              const char *tenant,
                              const uint8_t snonce[GMPC_NONCE_LEN],
                              const uint8_t cnonce[GMPC_NONCE_LEN],
                              uint64_t session_id,
                              const uint8_t proof[GMPC_MAC_LEN]);

const char *gmpc_type_name(unsigned type);
uint32_t gmpc_crc32(const void *p, size_t n);

#endif
