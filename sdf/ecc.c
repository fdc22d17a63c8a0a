/* SM2 public keys, key pairs, signatures and encryption.  The standard's
 * structures hold 256-bit values right-aligned in 64-byte fields; a value
 * with anything in the upper half, or a public key whose bits are not
 * 256, is refused.  Signatures are over e, the caller's 32-byte digest
 * (SDF_HashInit with a public key and ID makes it, Z included).  All of
 * it is computed in the pool. */
#include <stddef.h>
#include <string.h>

#include "sdf_int.h"

#define VLEN GMP_SM2_LEN
#define PAD (ECCref_MAX_LEN - VLEN)

static bool high_zero(const unsigned char *v)
{
    static const unsigned char zero[PAD];
    return memcmp(v, zero, PAD) == 0;
}

static void put(unsigned char *field, const uint8_t v[VLEN])
{
    memset(field, 0, PAD);
    memcpy(field + PAD, v, VLEN);
}

int sdf_pub_in(const ECCrefPublicKey *k, gmp_sm2_point *p)
{
    if (!k || k->bits != SDF_ECC_BITS || !high_zero(k->x) || !high_zero(k->y))
        return SDR_INARGERR;
    memcpy(p->x, k->x + PAD, VLEN);
    memcpy(p->y, k->y + PAD, VLEN);
    return SDR_OK;
}

void sdf_pub_out(const gmp_sm2_point *p, ECCrefPublicKey *k)
{
    k->bits = SDF_ECC_BITS;
    put(k->x, p->x);
    put(k->y, p->y);
}

/* GM/T 0009 names this ID for a signer who gives none; an empty ID would
 * otherwise hash as ENTL 0 and match no other implementation's Z. */
static const char default_id[] = "1234567812345678";

void sdf_id_or_default(const unsigned char **id, unsigned int *len)
{
    if (*len == 0) {
        *id = (const unsigned char *)default_id;
        *len = sizeof default_id - 1;
    }
}

/* C is declared with one byte; the caller provides L of them. */
static unsigned char *cipher_c(ECCCipher *e)
{
    return (unsigned char *)e + offsetof(ECCCipher, C);
}

int sdf_cipher_in(const ECCCipher *e, gmp_sm2_cipher *c)
{
    if (!e || !high_zero(e->x) || !high_zero(e->y) || e->L == 0 ||
        e->L > GMP_SM2_MAX_PLAIN)
        return SDR_INARGERR;
    memcpy(c->c1.x, e->x + PAD, VLEN);
    memcpy(c->c1.y, e->y + PAD, VLEN);
    memcpy(c->c3, e->M, VLEN);
    c->len = e->L;
    memcpy(c->c2, (const unsigned char *)e + offsetof(ECCCipher, C), e->L);
    return SDR_OK;
}

void sdf_cipher_out(const gmp_sm2_cipher *c, ECCCipher *e)
{
    put(e->x, c->c1.x);
    put(e->y, c->c1.y);
    memcpy(e->M, c->c3, VLEN);
    e->L = c->len;
    memcpy(cipher_c(e), c->c2, c->len);
}

static int sig_in(const ECCSignature *sig, uint8_t r[VLEN], uint8_t s[VLEN])
{
    if (!sig || !high_zero(sig->r) || !high_zero(sig->s))
        return SDR_INARGERR;
    memcpy(r, sig->r + PAD, VLEN);
    memcpy(s, sig->s + PAD, VLEN);
    return SDR_OK;
}

/* ---- public keys and key pairs ---- */

static int export_pub(void *h, gmp_sm2_usage usage, unsigned int index,
                      ECCrefPublicKey *out)
{
    sdf_session *s;
    gmp_sm2_point p;
    int rv = sdf_session_get(h, &s);
    if (rv != SDR_OK)
        return rv;
    if (!out)
        rv = SDR_OUTARGERR;
    else
        rv = sdf_rv(gmp_sm2_public(s->cli, usage, index, &p));
    if (rv == SDR_OK)
        sdf_pub_out(&p, out);
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_ExportSignPublicKey_ECC(void *hSessionHandle,
                                        unsigned int uiKeyIndex,
                                        ECCrefPublicKey *pucPublicKey)
{
    return export_pub(hSessionHandle, GMP_SM2_SIGN, uiKeyIndex, pucPublicKey);
}

SDF_API int SDF_ExportEncPublicKey_ECC(void *hSessionHandle,
                                       unsigned int uiKeyIndex,
                                       ECCrefPublicKey *pucPublicKey)
{
    return export_pub(hSessionHandle, GMP_SM2_ENC, uiKeyIndex, pucPublicKey);
}

static bool sm2_alg(unsigned int id)
{
    return id == SGD_SM2 || id == SGD_SM2_1 || id == SGD_SM2_2 ||
           id == SGD_SM2_3;
}

SDF_API int SDF_GenerateKeyPair_ECC(void *hSessionHandle, unsigned int uiAlgID,
                                    unsigned int uiKeyBits,
                                    ECCrefPublicKey *pucPublicKey,
                                    ECCrefPrivateKey *pucPrivateKey)
{
    sdf_session *s;
    uint8_t d[VLEN];
    gmp_sm2_point p;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    if (!sm2_alg(uiAlgID))
        rv = SDR_ALGNOTSUPPORT;
    else if (uiKeyBits != SDF_ECC_BITS)
        rv = SDR_INARGERR;
    else if (!pucPublicKey || !pucPrivateKey)
        rv = SDR_OUTARGERR;
    else
        rv = sdf_rv(gmp_sm2_generate(s->cli, d, &p));
    if (rv == SDR_OK) {
        sdf_pub_out(&p, pucPublicKey);
        pucPrivateKey->bits = SDF_ECC_BITS;
        put(pucPrivateKey->K, d);
    }
    memset(d, 0, sizeof d);
    sdf_session_put(s);
    return rv;
}

/* ---- signatures ---- */

/* The digest e and the signature, checked before the pool is asked. */
static int verify_args(const unsigned char *e, unsigned int len,
                       const ECCSignature *sig, uint8_t r[VLEN],
                       uint8_t s[VLEN])
{
    if (!e || len != VLEN)
        return SDR_INARGERR;
    return sig_in(sig, r, s);
}

static int verify(sdf_session *s, const gmp_sm2_key *k,
                  const unsigned char *e, unsigned int len,
                  const ECCSignature *sig)
{
    uint8_t r[VLEN], sv[VLEN];
    int rv = verify_args(e, len, sig, r, sv);
    if (rv != SDR_OK)
        return rv;
    return sdf_rv(gmp_sm2_verify(s->cli, k, e, r, sv));
}

SDF_API int SDF_ExternalVerify_ECC(void *hSessionHandle, unsigned int uiAlgID,
                                   ECCrefPublicKey *pucPublicKey,
                                   unsigned char *pucDataInput,
                                   unsigned int uiInputLength,
                                   ECCSignature *pucSignature)
{
    sdf_session *s;
    gmp_sm2_key k = {0};
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    if (uiAlgID != SGD_SM2_1 && uiAlgID != SGD_SM2)
        rv = SDR_ALGNOTSUPPORT;
    else
        rv = sdf_pub_in(pucPublicKey, &k.pub);
    if (rv == SDR_OK)
        rv = verify(s, &k, pucDataInput, uiInputLength, pucSignature);
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_InternalVerify_ECC(void *hSessionHandle,
                                   unsigned int uiIPKIndex,
                                   unsigned char *pucData,
                                   unsigned int uiDataLength,
                                   ECCSignature *pucSignature)
{
    sdf_session *s;
    gmp_sm2_key k = {.index = uiIPKIndex, .usage = GMP_SM2_SIGN};
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    /* index 0 would mean "the key given", which this call has not */
    rv = uiIPKIndex == 0 ? SDR_KEYNOTEXIST
                         : verify(s, &k, pucData, uiDataLength, pucSignature);
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_InternalSign_ECC(void *hSessionHandle, unsigned int uiISKIndex,
                                 unsigned char *pucData,
                                 unsigned int uiDataLength,
                                 ECCSignature *pucSignature)
{
    sdf_session *s;
    uint8_t r[VLEN], sv[VLEN];
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    if (!pucData || uiDataLength != VLEN)
        rv = SDR_INARGERR;
    else if (!pucSignature)
        rv = SDR_OUTARGERR;
    else
        rv = sdf_rv(gmp_sm2_sign(s->cli, uiISKIndex, pucData, r, sv));
    if (rv == SDR_OK) {
        put(pucSignature->r, r);
        put(pucSignature->s, sv);
    }
    sdf_session_put(s);
    return rv == SDR_UNKNOWERR ? SDR_SIGNERR : rv;
}

/* ---- encryption ---- */

/* To the given public key, or (pub NULL) the encryption key at index. */
static int encrypt(void *h, const ECCrefPublicKey *pub, unsigned int index,
                   unsigned int alg, const unsigned char *in,
                   unsigned int len, ECCCipher *out)
{
    sdf_session *s;
    gmp_sm2_key k = {.index = index, .usage = GMP_SM2_ENC};
    gmp_sm2_cipher c;
    int rv = sdf_session_get(h, &s);
    if (rv != SDR_OK)
        return rv;
    if (!sdf_sm2_enc_alg(alg))
        rv = SDR_ALGNOTSUPPORT;
    else if (pub)
        rv = sdf_pub_in(pub, &k.pub);
    else if (index == 0) /* 0 would mean "the key given" on the wire */
        rv = SDR_KEYNOTEXIST;
    if (rv == SDR_OK && (!in || len == 0 || len > GMP_SM2_MAX_PLAIN))
        rv = SDR_INARGERR;
    else if (rv == SDR_OK && !out)
        rv = SDR_OUTARGERR;
    if (rv == SDR_OK)
        rv = sdf_rv(gmp_sm2_encrypt(s->cli, &k, in, len, &c));
    if (rv == SDR_OK)
        sdf_cipher_out(&c, out);
    sdf_session_put(s);
    return rv == SDR_UNKNOWERR ? SDR_PKOPERR : rv;
}

SDF_API int SDF_ExternalEncrypt_ECC(void *hSessionHandle, unsigned int uiAlgID,
                                    ECCrefPublicKey *pucPublicKey,
                                    unsigned char *pucData,
                                    unsigned int uiDataLength,
                                    ECCCipher *pucEncData)
{
    static const ECCrefPublicKey none; /* refused as a bad key */
    return encrypt(hSessionHandle, pucPublicKey ? pucPublicKey : &none, 0,
                   uiAlgID, pucData, uiDataLength, pucEncData);
}

SDF_API int SDF_InternalEncrypt_ECC(void *hSessionHandle,
                                    unsigned int uiIPKIndex,
                                    unsigned int uiAlgID,
                                    unsigned char *pucData,
                                    unsigned int uiDataLength,
                                    ECCCipher *pucEncData)
{
    return encrypt(hSessionHandle, NULL, uiIPKIndex, uiAlgID, pucData,
                   uiDataLength, pucEncData);
}

static int decrypt_args(unsigned int alg, const ECCCipher *in,
                        gmp_sm2_cipher *c, const unsigned char *out,
                        const unsigned int *out_len)
{
    if (!sdf_sm2_enc_alg(alg))
        return SDR_ALGNOTSUPPORT;
    int rv = sdf_cipher_in(in, c);
    if (rv == SDR_OK && (!out || !out_len))
        rv = SDR_OUTARGERR;
    return rv;
}

SDF_API int SDF_InternalDecrypt_ECC(void *hSessionHandle,
                                    unsigned int uiISKIndex,
                                    unsigned int uiAlgID,
                                    ECCCipher *pucEncData,
                                    unsigned char *pucData,
                                    unsigned int *puiDataLength)
{
    sdf_session *s;
    gmp_sm2_cipher c;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = decrypt_args(uiAlgID, pucEncData, &c, pucData, puiDataLength);
    size_t n = rv == SDR_OK ? c.len : 0; /* plaintext is as long as C2 */
    if (rv == SDR_OK)
        rv = sdf_rv(gmp_sm2_decrypt(s->cli, uiISKIndex, &c, pucData, &n));
    if (rv == SDR_OK)
        *puiDataLength = (unsigned int)n;
    sdf_session_put(s);
    return rv == SDR_VERIFYERR ? SDR_ENCDATAERR : rv;
}
