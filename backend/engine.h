/* The algorithm table: every computation the nodes do goes through here,
 * on libcrypto's default provider fetched explicitly (never the gmpool
 * provider, which would recurse); GCM on libgcrypt.  AES has a row per
 * key length. */
#ifndef GMPD_ENGINE_H
#define GMPD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node.h"

typedef enum gmpd_alg_kind {
    GMPD_KIND_DIGEST,
    GMPD_KIND_MAC,
    GMPD_KIND_CIPHER,
    GMPD_KIND_AEAD
} gmpd_alg_kind;

typedef struct gmpd_alg_info {
    uint16_t alg;            /* gmp_alg */
    const char *name;        /* libcrypto name */
    gmpd_alg_kind kind;
    gmpd_svc svc;
    uint16_t key_type;       /* gmp_key_type a stored key must have, or 0 */
    uint8_t key_len;         /* cipher key bytes (0: any, for MACs) */
    uint8_t iv_len;          /* cipher IV bytes (0 = none) */
    uint8_t block;           /* data must be a multiple (no padding) */
    uint8_t out_len;         /* digest length */
    bool can_pad;            /* PKCS#7 padding allowed (ECB/CBC) */
} gmpd_alg_info;

typedef struct gmpd_engine_ctx gmpd_engine_ctx;

int gmpd_engine_init(void);   /* fetches every algorithm once */
void gmpd_engine_cleanup(void);
/* The first row of alg: its kind, service and key type. */
const gmpd_alg_info *gmpd_engine_find(uint16_t alg);

/* What a task brings to its engine context. */
typedef struct gmpd_engine_args {
    unsigned flags;                  /* GMP_TASK_* */
    const uint8_t *key;
    size_t key_len;
    const uint8_t *iv;
    size_t iv_len;
    const uint8_t *aad;              /* AEAD only */
    size_t aad_len;
} gmpd_engine_args;

/* Creates a context; returns NULL with *status set (ALG/KEY/IV/...). */
gmpd_engine_ctx *gmpd_engine_new(uint16_t alg, const gmpd_engine_args *a,
                                 int *status);
/* out must hold in_len + 16 bytes. */
int gmpd_engine_update(gmpd_engine_ctx *c, const uint8_t *in, size_t in_len,
                       uint8_t *out, size_t *out_len);
/* out must hold 64 bytes: the last output, then for AEAD the 16-byte tag. */
int gmpd_engine_final(gmpd_engine_ctx *c, uint8_t *out, size_t *out_len);
void gmpd_engine_free(gmpd_engine_ctx *c);
/* The library that computes alg with task flags (GMP_TASK_*):
 * "libcrypto" or "libgcrypt"; "none" for an unknown alg. */
const char *gmpd_engine_impl(uint16_t alg, unsigned flags);

/* ---- parallel modes (CTR, ECB, CBC decryption; no padding) ----
 * An item of such a task can be computed on any node, apart from the
 * others, from where it sits in the task's input stream. */
bool gmpd_engine_parallel(uint16_t alg, unsigned flags);

#define GMPD_POS_PRE 32
/* Where an item sits: the stream's bytes before it, and the last of
 * them (a partial block and the previous ciphertext block). */
typedef struct gmpd_engine_pos {
    uint64_t offset;
    uint8_t pre[GMPD_POS_PRE];
    uint8_t pre_len;         /* min(offset, GMPD_POS_PRE) */
} gmpd_engine_pos;

/* Moves a stream position past len more input bytes. */
void gmpd_engine_pos_advance(gmpd_engine_pos *p, const uint8_t *in,
                             size_t len);
/* One item of a parallel task at pos, on a context of the same task (any
 * of its copies, e.g. one per node): out gets what EVP would have produced
 * for these bytes in stream order (whole blocks for ECB/CBC); final also
 * checks the stream ends on a block (GMP_ERR_LENGTH).  out holds in_len +
 * 16 bytes. */
int gmpd_engine_update_at(gmpd_engine_ctx *c, const gmpd_engine_pos *pos,
                          const uint8_t *in, size_t in_len, bool final,
                          uint8_t *out, size_t *out_len);
/* Random bytes from the default provider's DRBG. */
int gmpd_engine_random(uint8_t *buf, size_t len);
/* Measures MB/s of one service type over ~20 ms of real work. */
double gmpd_engine_measure(gmpd_svc svc);

#endif
