/* SM3 through the pool: one digest task from SDF_HashInit to
 * SDF_HashFinal, so large updates are copied and pipelined by the client
 * library.  With a public key, the hash starts with the signer's Z value
 * (computed in the pool), so the result is the e an SM2 signature signs.
 * A public key without an ID takes GM/T 0009's default ID. */
#include <string.h>

#include "sdf_int.h"

static void hash_end(sdf_session *s)
{
    gmp_task_free(s->hash);
    s->hash = NULL;
}

static int hash_start(sdf_session *s, const ECCrefPublicKey *pub,
                      const unsigned char *id, unsigned int id_len)
{
    gmp_sm2_point p;
    uint8_t z[GMP_SM2_LEN];
    gmp_task_options o = {.priority = 4};
    if (pub && sdf_pub_in(pub, &p) != SDR_OK)
        return SDR_INARGERR;
    if ((!id && id_len) || id_len > GMP_SM2_MAX_ID)
        return SDR_INARGERR;
    if (pub)
        sdf_id_or_default(&id, &id_len);
    int rc = pub ? gmp_sm2_z(s->cli, &p, id, id_len, z) : GMP_OK;
    if (rc == GMP_OK)
        rc = gmp_digest_open(s->cli, GMP_ALG_SM3, &o, &s->hash);
    if (rc == GMP_OK && pub)
        rc = gmp_task_update(s->hash, z, sizeof z, NULL, NULL);
    if (rc != GMP_OK)
        hash_end(s);
    return sdf_rv(rc);
}

/* A new HashInit abandons a hash in progress, as a card does. */
SDF_API int SDF_HashInit(void *hSessionHandle, unsigned int uiAlgID,
                         ECCrefPublicKey *pucPublicKey, unsigned char *pucID,
                         unsigned int uiIDLength)
{
    sdf_session *s;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    hash_end(s);
    rv = uiAlgID == SGD_SM3 ? hash_start(s, pucPublicKey, pucID, uiIDLength)
                            : SDR_ALGNOTSUPPORT;
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_HashUpdate(void *hSessionHandle, unsigned char *pucData,
                           unsigned int uiDataLength)
{
    sdf_session *s;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    if (!s->hash)
        rv = SDR_STEPERR;
    else if (!pucData && uiDataLength)
        rv = SDR_INARGERR;
    else if (uiDataLength)
        rv = sdf_rv(gmp_task_update(s->hash, pucData, uiDataLength, NULL,
                                    NULL));
    if (rv != SDR_OK && rv != SDR_STEPERR && rv != SDR_INARGERR)
        hash_end(s); /* the pool's task failed: the hash cannot go on */
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_HashFinal(void *hSessionHandle, unsigned char *pucHash,
                          unsigned int *puiHashLength)
{
    sdf_session *s;
    size_t n = GMP_SM3_DIGEST_LEN;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    if (!s->hash)
        rv = SDR_STEPERR;
    else if (!pucHash || !puiHashLength)
        rv = SDR_OUTARGERR; /* the hash stays open for a proper call */
    else
        rv = sdf_rv(gmp_task_final(s->hash, pucHash, &n));
    if (rv == SDR_OK)
        *puiHashLength = (unsigned int)n;
    if (rv != SDR_STEPERR && rv != SDR_OUTARGERR)
        hash_end(s);
    sdf_session_put(s);
    return rv;
}
