/* SM4 on a session key through the pool's shard pipeline: SDF_Encrypt,
 * SDF_Decrypt, SDF_CalculateMAC.  No padding: data is whole blocks in
 * every mode, and the caller's IV is updated in place so that the next
 * call continues the chain (CBC and CFB: the last ciphertext block; OFB:
 * the last keystream block; MAC: the MAC, CBC-MAC from the IV given).
 * One call is one pool task, so a large buffer is cut into shards and
 * pipelined by the client library. */
#include <stdlib.h>
#include <string.h>

#include "sdf_int.h"

#define BLK GMP_SM4_BLOCK
#define MAC_CHUNK (1024u * 1024u) /* CBC-MAC scratch */

/* The pool's mode for an SDF algorithm id: the four cipher modes, or the
 * MAC (CBC underneath). */
static int mode_of(unsigned int id, bool mac, gmp_alg *alg)
{
    switch (id) {
    case SGD_SM4_ECB:
        *alg = GMP_ALG_SM4_ECB;
        break;
    case SGD_SM4_CBC:
        *alg = GMP_ALG_SM4_CBC;
        break;
    case SGD_SM4_CFB:
        *alg = GMP_ALG_SM4_CFB;
        break;
    case SGD_SM4_OFB:
        *alg = GMP_ALG_SM4_OFB;
        break;
    case SGD_SM4_MAC:
        *alg = GMP_ALG_SM4_CBC;
        return mac ? SDR_OK : SDR_ALGMODNOTSUPPORT;
    default:
        return sdf_sm4_refused(id);
    }
    return mac ? SDR_ALGMODNOTSUPPORT : SDR_OK;
}

static int sym_rv(int rc)
{
    int rv = sdf_rv(rc);
    return rv == SDR_UNKNOWERR ? SDR_SYMOPERR : rv;
}

static int task_open(sdf_session *s, uint32_t key, gmp_alg alg, bool decrypt,
                     const uint8_t *iv, size_t len, gmp_task **t)
{
    gmp_task_options o = {.priority = 4, .total_len = len};
    bool has_iv = alg != GMP_ALG_SM4_ECB;
    return gmp_cipher_open(s->cli, alg, decrypt ? GMP_TASK_DECRYPT : 0, NULL,
                           0, key, has_iv ? iv : NULL, has_iv ? BLK : 0, &o,
                           t);
}

/* Whole blocks in, as many out; out may be in. */
static int sm4_run(sdf_session *s, uint32_t key, gmp_alg alg, bool decrypt,
                   const uint8_t *iv, const uint8_t *in, size_t len,
                   uint8_t *out)
{
    gmp_task *t = NULL;
    uint8_t tail[2 * BLK];
    size_t n1 = len, n2 = sizeof tail;
    int rc = task_open(s, key, alg, decrypt, iv, len, &t);
    if (rc == GMP_OK)
        rc = gmp_task_update(t, in, len, out, &n1);
    if (rc == GMP_OK)
        rc = gmp_task_final(t, tail, &n2);
    if (rc == GMP_OK && (n1 != len || n2 != 0))
        rc = GMP_ERR_INTERNAL;
    gmp_task_free(t);
    return rc;
}

static void next_iv(gmp_alg alg, bool decrypt, const uint8_t last_in[BLK],
                    const uint8_t last_out[BLK], uint8_t iv[BLK])
{
    if (alg == GMP_ALG_SM4_CBC || alg == GMP_ALG_SM4_CFB)
        memcpy(iv, decrypt ? last_in : last_out, BLK);
    else if (alg == GMP_ALG_SM4_OFB)
        for (unsigned i = 0; i < BLK; i++)
            iv[i] = last_in[i] ^ last_out[i];
}

static int check_data(gmp_alg alg, const unsigned char *iv,
                      const unsigned char *in, unsigned int len)
{
    if ((!in && len) || len % BLK)
        return SDR_INARGERR;
    return alg != GMP_ALG_SM4_ECB && !iv ? SDR_INARGERR : SDR_OK;
}

/* NULL out: only the length it would write. */
static int sm4_crypt_in(sdf_session *s, void *h_key, unsigned int alg_id,
                        unsigned char *iv, const unsigned char *in,
                        unsigned int len, unsigned char *out,
                        unsigned int *out_len, bool decrypt)
{
    gmp_alg alg = GMP_ALG_NONE;
    uint32_t key = 0;
    uint8_t last_in[BLK];
    int rv = mode_of(alg_id, false, &alg);
    if (rv == SDR_OK)
        rv = sdf_key_in(s, h_key, &key);
    if (rv == SDR_OK)
        rv = check_data(alg, iv, in, len);
    if (rv == SDR_OK && !out_len)
        rv = SDR_OUTARGERR;
    if (rv != SDR_OK || !out || len == 0) {
        if (rv == SDR_OK)
            *out_len = len;
        return rv;
    }
    memcpy(last_in, in + len - BLK, BLK); /* out may overwrite in */
    rv = sym_rv(sm4_run(s, key, alg, decrypt, iv, in, len, out));
    if (rv == SDR_OK) {
        next_iv(alg, decrypt, last_in, out + len - BLK, iv);
        *out_len = len;
    }
    return rv;
}

/* SDF_Encrypt and SDF_Decrypt, in the session behind h. */
static int sm4_crypt(void *h, void *h_key, unsigned int alg_id,
                     unsigned char *iv, const unsigned char *in,
                     unsigned int len, unsigned char *out,
                     unsigned int *out_len, bool decrypt)
{
    sdf_session *s;
    int rv = sdf_session_get(h, &s);
    if (rv != SDR_OK)
        return rv;
    rv = sm4_crypt_in(s, h_key, alg_id, iv, in, len, out, out_len, decrypt);
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_Encrypt(void *hSessionHandle, void *hKeyHandle,
                        unsigned int uiAlgID, unsigned char *pucIV,
                        unsigned char *pucData, unsigned int uiDataLength,
                        unsigned char *pucEncData,
                        unsigned int *puiEncDataLength)
{
    return sm4_crypt(hSessionHandle, hKeyHandle, uiAlgID, pucIV, pucData,
                     uiDataLength, pucEncData, puiEncDataLength, false);
}

SDF_API int SDF_Decrypt(void *hSessionHandle, void *hKeyHandle,
                        unsigned int uiAlgID, unsigned char *pucIV,
                        unsigned char *pucEncData,
                        unsigned int uiEncDataLength, unsigned char *pucData,
                        unsigned int *puiDataLength)
{
    return sm4_crypt(hSessionHandle, hKeyHandle, uiAlgID, pucIV, pucEncData,
                     uiEncDataLength, pucData, puiDataLength, true);
}

/* CBC-MAC: one CBC task over the data; its ciphertext is scratch, only
 * the last block is kept. */
static int cbc_mac(sdf_session *s, uint32_t key, const uint8_t *iv,
                   const uint8_t *in, size_t len, uint8_t mac[BLK])
{
    size_t room = len < MAC_CHUNK ? len : MAC_CHUNK;
    uint8_t *scratch = malloc(room), tail[2 * BLK];
    gmp_task *t = NULL;
    int rc = scratch ? task_open(s, key, GMP_ALG_SM4_CBC, false, iv, len, &t)
                     : GMP_ERR_NOMEM;
    for (size_t off = 0; rc == GMP_OK && off < len; off += room) {
        size_t n = len - off < room ? len - off : room, got = n;
        rc = gmp_task_update(t, in + off, n, scratch, &got);
        if (rc == GMP_OK && got != n)
            rc = GMP_ERR_INTERNAL;
        if (rc == GMP_OK)
            memcpy(mac, scratch + n - BLK, BLK);
    }
    size_t n2 = sizeof tail;
    if (rc == GMP_OK)
        rc = gmp_task_final(t, tail, &n2);
    gmp_task_free(t);
    free(scratch);
    return rc;
}

SDF_API int SDF_CalculateMAC(void *hSessionHandle, void *hKeyHandle,
                             unsigned int uiAlgID, unsigned char *pucIV,
                             unsigned char *pucData, unsigned int uiDataLength,
                             unsigned char *pucMAC,
                             unsigned int *puiMACLength)
{
    sdf_session *s;
    gmp_alg alg = GMP_ALG_NONE;
    uint32_t key = 0;
    uint8_t mac[BLK] = {0};
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = mode_of(uiAlgID, true, &alg);
    if (rv == SDR_OK)
        rv = sdf_key_in(s, hKeyHandle, &key);
    if (rv == SDR_OK && (uiDataLength == 0 || !pucIV))
        rv = SDR_INARGERR;
    if (rv == SDR_OK)
        rv = check_data(alg, pucIV, pucData, uiDataLength);
    if (rv == SDR_OK && !puiMACLength)
        rv = SDR_OUTARGERR;
    if (rv == SDR_OK && pucMAC) {
        int rc = cbc_mac(s, key, pucIV, pucData, uiDataLength, mac);
        rv = rc == GMP_OK ? SDR_OK : sdf_rv(rc);
        if (rv == SDR_UNKNOWERR)
            rv = SDR_MACERR;
    }
    if (rv == SDR_OK && pucMAC) {
        memcpy(pucMAC, mac, BLK);
        memcpy(pucIV, mac, BLK);
    }
    if (rv == SDR_OK)
        *puiMACLength = BLK;
    sdf_session_put(s);
    return rv;
}
