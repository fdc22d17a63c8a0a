/* SM2 on libcrypto's default provider (gmpc_libctx): key pairs, signatures
 * over a precomputed digest e, encryption as C1 C3 C2, the Z value and the
 * GM/T 0003.3 key exchange.  Scalars and coordinates are 32 bytes,
 * big-endian.  No I/O and no state: the daemon's SDF operations and the
 * unit tests run the same code.  Every function returns a gmp_status. */
#ifndef GMPD_SM2_H
#define GMPD_SM2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ec.h>

#define GMPD_SM2_LEN 32
#define GMPD_SM2_ID_MAX 8191 /* the Z value counts ID bits in 16 bits */

typedef struct gmpd_sm2_point {
    uint8_t x[GMPD_SM2_LEN];
    uint8_t y[GMPD_SM2_LEN];
} gmpd_sm2_point;

int gmpd_sm2_keygen(uint8_t d[GMPD_SM2_LEN], gmpd_sm2_point *pub);
/* pub = d.G on g (NULL: the SM2 curve); GMP_ERR_KEY unless 1 <= d <= n-2. */
int gmpd_sm2_public(const EC_GROUP *g, const uint8_t d[GMPD_SM2_LEN],
                    gmpd_sm2_point *pub);
int gmpd_sm2_sign(const uint8_t d[GMPD_SM2_LEN],
                  const uint8_t e[GMPD_SM2_LEN], uint8_t r[GMPD_SM2_LEN],
                  uint8_t s[GMPD_SM2_LEN]);
/* GMP_OK when the signature is valid, GMP_ERR_VERIFY when not, GMP_ERR_KEY
 * for a public key off the curve. */
int gmpd_sm2_verify(const gmpd_sm2_point *pub, const uint8_t e[GMPD_SM2_LEN],
                    const uint8_t r[GMPD_SM2_LEN],
                    const uint8_t s[GMPD_SM2_LEN]);
/* C2 has as many bytes as the plaintext (n >= 1). */
int gmpd_sm2_encrypt(const gmpd_sm2_point *pub, const uint8_t *in, size_t n,
                     gmpd_sm2_point *c1, uint8_t c3[GMPD_SM2_LEN],
                     uint8_t *c2);
/* GMP_ERR_VERIFY when the ciphertext does not decrypt (C3 mismatch, C1
 * off the curve). */
int gmpd_sm2_decrypt(const uint8_t d[GMPD_SM2_LEN], const gmpd_sm2_point *c1,
                     const uint8_t c3[GMPD_SM2_LEN], const uint8_t *c2,
                     size_t n, uint8_t *out);
/* Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA) on g (NULL: SM2). */
int gmpd_sm2_z(const EC_GROUP *g, const uint8_t *id, size_t id_len,
               const gmpd_sm2_point *pub, uint8_t z[GMPD_SM2_LEN]);

/* One side of a key exchange as the other side sees it. */
typedef struct gmpd_sm2_party {
    const uint8_t *id;
    size_t id_len;
    gmpd_sm2_point pub;        /* static public key */
    gmpd_sm2_point tmp;        /* ephemeral public key R */
} gmpd_sm2_party;

/* The shared key of the GM/T 0003.3 exchange (without the optional
 * confirmation hashes) from this side's static private key d and
 * ephemeral private key r, where self->tmp = r.G.  The initiator is the
 * standard's A (SDF's sponsor): K = KDF(xU || yU || ZA || ZB, key_len). */
int gmpd_sm2_exchange(const EC_GROUP *g, bool initiator,
                      const uint8_t d[GMPD_SM2_LEN],
                      const uint8_t r[GMPD_SM2_LEN],
                      const gmpd_sm2_party *self, const gmpd_sm2_party *peer,
                      uint8_t *key, size_t key_len);

#endif
