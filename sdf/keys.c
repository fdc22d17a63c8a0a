/* Session keys: made in the pool under a KEK, for an internal or external
 * SM2 public key, by SM2 key agreement, or imported; each is a 128-bit
 * SM4 key owned by the session and named by the pool's handle.  The
 * digital envelope exchange re-encrypts a key without it leaving the
 * pool. */
#include <stddef.h>
#include <string.h>

#include "sdf_int.h"

/* KEK wrapping is SM4-ECB of the 16-byte key. */
static int kek_alg(unsigned int id)
{
    return id == SGD_SM4_ECB ? SDR_OK : sdf_sm4_refused(id);
}

static bool id_ok(const unsigned char *id, unsigned int len)
{
    return (id || len == 0) && len <= GMP_SM2_MAX_ID;
}

SDF_API int SDF_GenerateKeyWithKEK(void *hSessionHandle,
                                   unsigned int uiKeyBits,
                                   unsigned int uiAlgID,
                                   unsigned int uiKEKIndex,
                                   unsigned char *pucKey,
                                   unsigned int *puiKeyLength,
                                   void **phKeyHandle)
{
    sdf_session *s;
    uint32_t handle = 0;
    size_t wl = GMP_SM4_KEY_LEN;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = kek_alg(uiAlgID);
    if (rv == SDR_OK && uiKeyBits != SDF_KEY_BITS)
        rv = SDR_INARGERR;
    else if (rv == SDR_OK && (!pucKey || !puiKeyLength || !phKeyHandle))
        rv = SDR_OUTARGERR;
    if (rv == SDR_OK)
        rv = sdf_rv(gmp_kek_wrap_new(s->cli, uiKEKIndex, GMP_ALG_SM4_ECB,
                                     pucKey, &wl, &handle));
    if (rv == SDR_OK) {
        *puiKeyLength = (unsigned int)wl;
        rv = sdf_key_out(s, handle, phKeyHandle);
    }
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_ImportKeyWithKEK(void *hSessionHandle, unsigned int uiAlgID,
                                 unsigned int uiKEKIndex,
                                 unsigned char *pucKey,
                                 unsigned int uiKeyLength, void **phKeyHandle)
{
    sdf_session *s;
    uint32_t handle = 0;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = kek_alg(uiAlgID);
    if (rv == SDR_OK && (!pucKey || uiKeyLength != GMP_SM4_KEY_LEN))
        rv = SDR_INARGERR;
    else if (rv == SDR_OK && !phKeyHandle)
        rv = SDR_OUTARGERR;
    if (rv == SDR_OK)
        rv = sdf_rv(gmp_kek_unwrap(s->cli, uiKEKIndex, GMP_ALG_SM4_ECB, pucKey,
                                   uiKeyLength, &handle));
    if (rv == SDR_OK)
        rv = sdf_key_out(s, handle, phKeyHandle);
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_ImportKey(void *hSessionHandle, unsigned char *pucKey,
                          unsigned int uiKeyLength, void **phKeyHandle)
{
    sdf_session *s;
    uint32_t handle = 0;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    if (!pucKey || uiKeyLength != GMP_SM4_KEY_LEN)
        rv = SDR_INARGERR;
    else if (!phKeyHandle)
        rv = SDR_OUTARGERR;
    else
        rv = sdf_rv(gmp_key_import(s->cli, GMP_KEY_SM4, GMP_KEYF_SENSITIVE,
                                   "sdf", pucKey, uiKeyLength, &handle));
    if (rv == SDR_OK)
        rv = sdf_key_out(s, handle, phKeyHandle);
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_DestroyKey(void *hSessionHandle, void *hKeyHandle)
{
    sdf_session *s;
    uint32_t handle = 0;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = sdf_key_in(s, hKeyHandle, &handle);
    if (rv == SDR_OK) {
        int rc = gmp_key_destroy(s->cli, handle);
        sdf_handle_del(&s->keys, handle); /* gone for this session anyway */
        rv = rc == GMP_ERR_NOT_FOUND ? SDR_OK : sdf_rv(rc);
    }
    sdf_session_put(s);
    return rv;
}

/* ---- with SM2 ---- */

/* A new key for an SM2 public key: internal (index) or given (pub). */
static int wrap_new(void *h, unsigned int bits, const gmp_sm2_key *k,
                    int key_rv, ECCCipher *out, void **ph)
{
    sdf_session *s;
    gmp_sm2_cipher c;
    uint32_t handle = 0;
    int rv = sdf_session_get(h, &s);
    if (rv != SDR_OK)
        return rv;
    rv = key_rv;
    if (rv == SDR_OK && bits != SDF_KEY_BITS)
        rv = SDR_INARGERR;
    else if (rv == SDR_OK && (!out || !ph))
        rv = SDR_OUTARGERR;
    if (rv == SDR_OK)
        rv = sdf_rv(gmp_sm2_wrap_new(s->cli, k, &c, &handle));
    if (rv == SDR_OK)
        rv = sdf_key_out(s, handle, ph);
    if (rv == SDR_OK)
        sdf_cipher_out(&c, out);
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_GenerateKeyWithIPK_ECC(void *hSessionHandle,
                                       unsigned int uiIPKIndex,
                                       unsigned int uiKeyBits,
                                       ECCCipher *pucKey, void **phKeyHandle)
{
    gmp_sm2_key k = {.index = uiIPKIndex, .usage = GMP_SM2_ENC};
    return wrap_new(hSessionHandle, uiKeyBits, &k,
                    uiIPKIndex ? SDR_OK : SDR_KEYNOTEXIST, pucKey,
                    phKeyHandle);
}

SDF_API int SDF_GenerateKeyWithEPK_ECC(void *hSessionHandle,
                                       unsigned int uiKeyBits,
                                       unsigned int uiAlgID,
                                       ECCrefPublicKey *pucPublicKey,
                                       ECCCipher *pucKey, void **phKeyHandle)
{
    gmp_sm2_key k = {0};
    int key_rv = sdf_sm2_enc_alg(uiAlgID) ? sdf_pub_in(pucPublicKey, &k.pub)
                                          : SDR_ALGNOTSUPPORT;
    return wrap_new(hSessionHandle, uiKeyBits, &k, key_rv, pucKey,
                    phKeyHandle);
}

SDF_API int SDF_ImportKeyWithISK_ECC(void *hSessionHandle,
                                     unsigned int uiISKIndex,
                                     ECCCipher *pucKey, void **phKeyHandle)
{
    sdf_session *s;
    gmp_sm2_cipher c;
    uint32_t handle = 0;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    /* not a session key: refused before C is read */
    rv = !pucKey                       ? SDR_INARGERR
         : pucKey->L != GMP_SM4_KEY_LEN ? SDR_KEYERR
                                        : sdf_cipher_in(pucKey, &c);
    if (rv == SDR_OK && !phKeyHandle)
        rv = SDR_OUTARGERR;
    if (rv == SDR_OK)
        rv = sdf_rv(gmp_sm2_unwrap(s->cli, uiISKIndex, &c, &handle));
    if (rv == SDR_OK)
        rv = sdf_key_out(s, handle, phKeyHandle);
    sdf_session_put(s);
    return rv == SDR_VERIFYERR ? SDR_ENCDATAERR : rv;
}

SDF_API int SDF_ExchangeDigitEnvelopeBaseOnECC(void *hSessionHandle,
                                               unsigned int uiKeyIndex,
                                               unsigned int uiAlgID,
                                               ECCrefPublicKey *pucPublicKey,
                                               ECCCipher *pucEncDataIn,
                                               ECCCipher *pucEncDataOut)
{
    sdf_session *s;
    gmp_sm2_point to;
    gmp_sm2_cipher in, out;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = sdf_sm2_enc_alg(uiAlgID) ? sdf_pub_in(pucPublicKey, &to)
                                  : SDR_ALGNOTSUPPORT;
    if (rv == SDR_OK)
        rv = sdf_cipher_in(pucEncDataIn, &in);
    if (rv == SDR_OK && !pucEncDataOut)
        rv = SDR_OUTARGERR;
    if (rv == SDR_OK)
        rv = sdf_rv(gmp_sm2_rewrap(s->cli, uiKeyIndex, &to, &in, &out));
    if (rv == SDR_OK)
        sdf_cipher_out(&out, pucEncDataOut);
    sdf_session_put(s);
    return rv == SDR_VERIFYERR ? SDR_ENCDATAERR : rv;
}

/* ---- key agreement (GM/T 0003.3, with the encryption key pair) ---- */

/* Records a started agreement under a new handle; when the pool has
 * dropped its oldest to make room, so does this list. */
static uintptr_t agreement_add(sdf_session *s, uint64_t id)
{
    if (s->n_agreements == GMP_SM2_AGREE_MAX)
        memmove(s->agreements, s->agreements + 1,
                --s->n_agreements * sizeof *s->agreements);
    sdf_agreement *a = &s->agreements[s->n_agreements++];
    a->handle = sdf_handle_next();
    a->id = id;
    return a->handle;
}

/* The slot of the agreement behind a handle this session holds, or -1. */
static ptrdiff_t agreement_find(const sdf_session *s, void *h)
{
    for (size_t i = 0; h && i < s->n_agreements; i++)
        if (s->agreements[i].handle == (uintptr_t)h)
            return (ptrdiff_t)i;
    return -1;
}

/* Takes an agreement out of the list: it is used once, come what may. */
static uint64_t agreement_take(sdf_session *s, size_t i)
{
    uint64_t id = s->agreements[i].id;
    memmove(s->agreements + i, s->agreements + i + 1,
            (s->n_agreements - i - 1) * sizeof *s->agreements);
    s->n_agreements--;
    return id;
}

SDF_API int SDF_GenerateAgreementDataWithECC(
    void *hSessionHandle, unsigned int uiISKIndex, unsigned int uiKeyBits,
    unsigned char *pucSponsorID, unsigned int uiSponsorIDLength,
    ECCrefPublicKey *pucSponsorPublicKey,
    ECCrefPublicKey *pucSponsorTmpPublicKey, void **phAgreementHandle)
{
    sdf_session *s;
    gmp_sm2_point pub, tmp;
    uint64_t agreement = 0;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    if (uiKeyBits != SDF_KEY_BITS || !id_ok(pucSponsorID, uiSponsorIDLength))
        rv = SDR_INARGERR;
    else if (!pucSponsorPublicKey || !pucSponsorTmpPublicKey ||
             !phAgreementHandle)
        rv = SDR_OUTARGERR;
    else {
        const unsigned char *id = pucSponsorID;
        sdf_id_or_default(&id, &uiSponsorIDLength);
        rv = sdf_rv(gmp_sm2_agree_start(s->cli, uiISKIndex, id,
                                        uiSponsorIDLength, &pub, &tmp,
                                        &agreement));
    }
    if (rv == SDR_OK) {
        sdf_pub_out(&pub, pucSponsorPublicKey);
        sdf_pub_out(&tmp, pucSponsorTmpPublicKey);
        *phAgreementHandle = (void *)agreement_add(s, agreement);
    }
    sdf_session_put(s);
    return rv;
}

/* The other side's ID and public keys. */
static int party_in(const unsigned char *id, unsigned int id_len,
                    const ECCrefPublicKey *pub, const ECCrefPublicKey *tmp,
                    gmp_sm2_party *p)
{
    if (!id_ok(id, id_len))
        return SDR_INARGERR;
    sdf_id_or_default(&id, &id_len);
    p->id = id;
    p->id_len = id_len;
    int rv = sdf_pub_in(pub, &p->pub);
    return rv == SDR_OK ? sdf_pub_in(tmp, &p->tmp) : rv;
}

SDF_API int SDF_GenerateKeyWithECC(void *hSessionHandle,
                                   unsigned char *pucResponseID,
                                   unsigned int uiResponseIDLength,
                                   ECCrefPublicKey *pucResponsePublicKey,
                                   ECCrefPublicKey *pucResponseTmpPublicKey,
                                   void *hAgreementHandle, void **phKeyHandle)
{
    sdf_session *s;
    gmp_sm2_party peer;
    uint32_t handle = 0;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    /* an agreement this session started and has not finished */
    ptrdiff_t i = agreement_find(s, hAgreementHandle);
    rv = i < 0 ? SDR_STEPERR
               : party_in(pucResponseID, uiResponseIDLength,
                          pucResponsePublicKey, pucResponseTmpPublicKey,
                          &peer);
    if (rv == SDR_OK && !phKeyHandle)
        rv = SDR_OUTARGERR;
    if (rv == SDR_OK)
        rv = sdf_rv(gmp_sm2_agree_finish(s->cli, agreement_take(s, (size_t)i),
                                         &peer, &handle));
    if (rv == SDR_OK)
        rv = sdf_key_out(s, handle, phKeyHandle);
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_GenerateAgreementDataAndKeyWithECC(
    void *hSessionHandle, unsigned int uiISKIndex, unsigned int uiKeyBits,
    unsigned char *pucResponseID, unsigned int uiResponseIDLength,
    unsigned char *pucSponsorID, unsigned int uiSponsorIDLength,
    ECCrefPublicKey *pucSponsorPublicKey,
    ECCrefPublicKey *pucSponsorTmpPublicKey,
    ECCrefPublicKey *pucResponsePublicKey,
    ECCrefPublicKey *pucResponseTmpPublicKey, void **phKeyHandle)
{
    sdf_session *s;
    gmp_sm2_party sponsor;
    gmp_sm2_point pub, tmp;
    uint32_t handle = 0;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = uiKeyBits == SDF_KEY_BITS && id_ok(pucResponseID, uiResponseIDLength)
             ? party_in(pucSponsorID, uiSponsorIDLength, pucSponsorPublicKey,
                        pucSponsorTmpPublicKey, &sponsor)
             : SDR_INARGERR;
    if (rv == SDR_OK && (!pucResponsePublicKey || !pucResponseTmpPublicKey ||
                         !phKeyHandle))
        rv = SDR_OUTARGERR;
    const unsigned char *id = pucResponseID;
    sdf_id_or_default(&id, &uiResponseIDLength);
    if (rv == SDR_OK)
        rv = sdf_rv(gmp_sm2_agree_respond(s->cli, uiISKIndex, id,
                                          uiResponseIDLength, &sponsor, &pub,
                                          &tmp, &handle));
    if (rv == SDR_OK)
        rv = sdf_key_out(s, handle, phKeyHandle);
    if (rv == SDR_OK) {
        sdf_pub_out(&pub, pucResponsePublicKey);
        sdf_pub_out(&tmp, pucResponseTmpPublicKey);
    }
    sdf_session_put(s);
    return rv;
}
