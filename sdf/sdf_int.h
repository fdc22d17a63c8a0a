/* libgmpool-sdf internals.
 *
 * A device stands for the tenant whose credentials the client library
 * finds (GMPOOL_CREDENTIALS, GMPOOL_SERVER or the daemon's defaults); a
 * session is one client of the pool (gmp_client): its own connections and
 * its own daemon session, which holds its access rights and session keys.
 * Handles are checked against a registry before use, so a stale, closed or
 * made-up handle gets an error code and is never dereferenced.  Key
 * handles are the pool's numbers, recorded per session; agreement handles
 * are the library's own, each naming the pool's (random) agreement id. */
#ifndef GMP_SDF_INT_H
#define GMP_SDF_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "gmpool.h"
#include "sdf.h"

#define SDF_API __attribute__((visibility("default")))

/* The handles a session made, so that others are refused. */
typedef struct sdf_handles {
    uint32_t *v;
    size_t n, cap;
} sdf_handles;

/* A started key agreement: the caller's handle and the pool's id. */
typedef struct sdf_agreement {
    uintptr_t handle;
    uint64_t id;
} sdf_agreement;

typedef struct sdf_session {
    uintptr_t handle;        /* the caller's, never reused */
    uintptr_t dev;           /* the handle of the device it was opened on */
    pid_t pid;
    pthread_mutex_t mu;      /* one call at a time; the fields below */
    bool closed;
    int refs;                /* registry lock */
    gmp_client *cli;
    sdf_handles keys;        /* session keys */
    sdf_agreement agreements[GMP_SM2_AGREE_MAX]; /* oldest first */
    size_t n_agreements;
    gmp_task *hash;          /* between HashInit and HashFinal */
} sdf_session;

/* The session behind a handle, locked and referenced; SDR_OPENSESSION for
 * a handle that is not (or no longer, or in a forked child not) open. */
int sdf_session_get(void *h, sdf_session **out);
void sdf_session_put(sdf_session *s);

/* gmp_status -> SDR_* for the common cases; callers map their own
 * (files, signatures) first. */
int sdf_rv(int status);

/* A handle value this process has never handed out (never 0). */
uintptr_t sdf_handle_next(void);

/* Forgets a session key's handle (SDF_DestroyKey). */
void sdf_handle_del(sdf_handles *h, uint32_t v);
/* A new session key's handle, recorded and handed out; on failure the
 * key is destroyed again. */
int sdf_key_out(sdf_session *s, uint32_t handle, void **out);
/* The pool's handle of a session key this session owns. */
int sdf_key_in(sdf_session *s, void *h, uint32_t *out);

/* ECC structures <-> the client's: right-aligned 256-bit values. */
int sdf_pub_in(const ECCrefPublicKey *k, gmp_sm2_point *p);
void sdf_pub_out(const gmp_sm2_point *p, ECCrefPublicKey *k);
int sdf_cipher_in(const ECCCipher *e, gmp_sm2_cipher *c);
void sdf_cipher_out(const gmp_sm2_cipher *c, ECCCipher *e);

/* An SM2 ID of 0 bytes becomes the default ID 1234567812345678, in the
 * hash's Z and in key agreement alike. */
void sdf_id_or_default(const unsigned char **id, unsigned int *len);

/* SM2 encryption's algorithm ids: SGD_SM2_3, or SGD_SM2 for SM2 whole. */
static inline bool sdf_sm2_enc_alg(unsigned int id)
{
    return id == SGD_SM2_3 || id == SGD_SM2;
}

/* An SM4 id a call does not take is a mode it lacks; any other id an
 * algorithm (the family is the id without its low byte). */
static inline int sdf_sm4_refused(unsigned int id)
{
    return (id & 0xFFFFFF00u) == (SGD_SM4_ECB & 0xFFFFFF00u)
               ? SDR_ALGMODNOTSUPPORT
               : SDR_ALGNOTSUPPORT;
}

#define SDF_KEY_BITS 128 /* session keys are SM4 */
#define SDF_ECC_BITS 256

#endif
