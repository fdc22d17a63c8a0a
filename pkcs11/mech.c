/* The mechanism table: what the token offers and how each maps onto a
 * pool task.  Key sizes follow the PKCS#11 convention of each key type:
 * bytes for AES and SM4, bits for generic secrets and HMAC. */
#include "p11.h"

#define NOKEY CK_UNAVAILABLE_INFORMATION
#define ENC (CKF_ENCRYPT | CKF_DECRYPT | CKF_HW)
#define MAC (CKF_SIGN | CKF_VERIFY | CKF_HW)
#define DIG (CKF_DIGEST | CKF_HW)
#define GEN (CKF_GENERATE | CKF_HW)

static const p11_mech g_mechs[] = {
    {CKM_SM3, MK_DIGEST, GMP_ALG_SM3, NOKEY, {0, 0, DIG}, 32, false, false},
    {CKM_SHA256, MK_DIGEST, GMP_ALG_SHA256, NOKEY, {0, 0, DIG}, 32, false,
     false},
    {CKM_SHA384, MK_DIGEST, GMP_ALG_SHA384, NOKEY, {0, 0, DIG}, 48, false,
     false},
    {CKM_SHA512, MK_DIGEST, GMP_ALG_SHA512, NOKEY, {0, 0, DIG}, 64, false,
     false},
    {CKM_SM3_HMAC, MK_HMAC, GMP_ALG_HMAC_SM3, CKK_GENERIC_SECRET,
     {8, 512, MAC}, 32, false, false},
    {CKM_SHA256_HMAC, MK_HMAC, GMP_ALG_HMAC_SHA256, CKK_GENERIC_SECRET,
     {8, 512, MAC}, 32, false, false},
    {CKM_SHA384_HMAC, MK_HMAC, GMP_ALG_HMAC_SHA384, CKK_GENERIC_SECRET,
     {8, 512, MAC}, 48, false, false},
    {CKM_SHA512_HMAC, MK_HMAC, GMP_ALG_HMAC_SHA512, CKK_GENERIC_SECRET,
     {8, 512, MAC}, 64, false, false},
    {CKM_SM4_KEY_GEN, MK_KEYGEN, 0, CKK_SM4, {16, 16, GEN}, 0, false, false},
    {CKM_SM4_ECB, MK_CIPHER, GMP_ALG_SM4_ECB, CKK_SM4, {16, 16, ENC}, 0,
     false, true},
    {CKM_SM4_CBC, MK_CIPHER, GMP_ALG_SM4_CBC, CKK_SM4, {16, 16, ENC}, 0,
     false, true},
    {CKM_SM4_CBC_PAD, MK_CIPHER, GMP_ALG_SM4_CBC, CKK_SM4, {16, 16, ENC}, 0,
     true, true},
    {CKM_SM4_CTR, MK_CIPHER, GMP_ALG_SM4_CTR, CKK_SM4, {16, 16, ENC}, 0,
     false, false},
    {CKM_SM4_MAC, MK_CBCMAC, GMP_ALG_SM4_CBC, CKK_SM4, {16, 16, MAC}, 16,
     false, true},
    {CKM_SM4_GCM, MK_AEAD, GMP_ALG_SM4_GCM, CKK_SM4, {16, 16, ENC}, 0,
     false, false},
    {CKM_AES_KEY_GEN, MK_KEYGEN, 0, CKK_AES, {16, 32, GEN}, 0, false, false},
    {CKM_AES_ECB, MK_CIPHER, GMP_ALG_AES_ECB, CKK_AES, {16, 32, ENC}, 0,
     false, true},
    {CKM_AES_CBC, MK_CIPHER, GMP_ALG_AES_CBC, CKK_AES, {16, 32, ENC}, 0,
     false, true},
    {CKM_AES_CBC_PAD, MK_CIPHER, GMP_ALG_AES_CBC, CKK_AES, {16, 32, ENC}, 0,
     true, true},
    {CKM_AES_CTR, MK_CIPHER, GMP_ALG_AES_CTR, CKK_AES, {16, 32, ENC}, 0,
     false, false},
    {CKM_AES_GCM, MK_AEAD, GMP_ALG_AES_GCM, CKK_AES, {16, 32, ENC}, 0,
     false, false},
    {CKM_GENERIC_SECRET_KEY_GEN, MK_KEYGEN, 0, CKK_GENERIC_SECRET,
     {8, 512, GEN}, 0, false, false},
};

#define N_MECHS (sizeof g_mechs / sizeof g_mechs[0])

const p11_mech *p11_mech_find(CK_MECHANISM_TYPE t)
{
    for (size_t i = 0; i < N_MECHS; i++)
        if (g_mechs[i].type == t)
            return &g_mechs[i];
    return NULL;
}

size_t p11_mech_count(void)
{
    return N_MECHS;
}

const p11_mech *p11_mech_at(size_t i)
{
    return i < N_MECHS ? &g_mechs[i] : NULL;
}
