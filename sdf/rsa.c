/* RSA: the pool computes SM2, SM3 and SM4 only, so every RSA function of
 * GM/T 0018 answers SDR_NOTSUPPORT (docs/sdf.md) without touching its
 * arguments. */
#include "sdf_int.h"

SDF_API int SDF_ExportSignPublicKey_RSA(void *hSessionHandle,
                                        unsigned int uiKeyIndex,
                                        RSArefPublicKey *pucPublicKey)
{
    return SDR_NOTSUPPORT;
}

SDF_API int SDF_ExportEncPublicKey_RSA(void *hSessionHandle,
                                       unsigned int uiKeyIndex,
                                       RSArefPublicKey *pucPublicKey)
{
    return SDR_NOTSUPPORT;
}

SDF_API int SDF_GenerateKeyPair_RSA(void *hSessionHandle,
                                    unsigned int uiKeyBits,
                                    RSArefPublicKey *pucPublicKey,
                                    RSArefPrivateKey *pucPrivateKey)
{
    return SDR_NOTSUPPORT;
}

SDF_API int SDF_GenerateKeyWithIPK_RSA(void *hSessionHandle,
                                       unsigned int uiIPKIndex,
                                       unsigned int uiKeyBits,
                                       unsigned char *pucKey,
                                       unsigned int *puiKeyLength,
                                       void **phKeyHandle)
{
    return SDR_NOTSUPPORT;
}

SDF_API int SDF_GenerateKeyWithEPK_RSA(void *hSessionHandle,
                                       unsigned int uiKeyBits,
                                       RSArefPublicKey *pucPublicKey,
                                       unsigned char *pucKey,
                                       unsigned int *puiKeyLength,
                                       void **phKeyHandle)
{
    return SDR_NOTSUPPORT;
}

SDF_API int SDF_ImportKeyWithISK_RSA(void *hSessionHandle,
                                     unsigned int uiISKIndex,
                                     unsigned char *pucKey,
                                     unsigned int uiKeyLength,
                                     void **phKeyHandle)
{
    return SDR_NOTSUPPORT;
}

SDF_API int SDF_ExchangeDigitEnvelopeBaseOnRSA(void *hSessionHandle,
                                               unsigned int uiKeyIndex,
                                               RSArefPublicKey *pucPublicKey,
                                               unsigned char *pucDEInput,
                                               unsigned int uiDELength,
                                               unsigned char *pucDEOutput,
                                               unsigned int *puiDELength)
{
    return SDR_NOTSUPPORT;
}

SDF_API int SDF_ExternalPublicKeyOperation_RSA(void *hSessionHandle,
                                               RSArefPublicKey *pucPublicKey,
                                               unsigned char *pucDataInput,
                                               unsigned int uiInputLength,
                                               unsigned char *pucDataOutput,
                                               unsigned int *puiOutputLength)
{
    return SDR_NOTSUPPORT;
}

SDF_API int SDF_InternalPublicKeyOperation_RSA(void *hSessionHandle,
                                               unsigned int uiKeyIndex,
                                               unsigned char *pucDataInput,
                                               unsigned int uiInputLength,
                                               unsigned char *pucDataOutput,
                                               unsigned int *puiOutputLength)
{
    return SDR_NOTSUPPORT;
}

SDF_API int SDF_InternalPrivateKeyOperation_RSA(void *hSessionHandle,
                                                unsigned int uiKeyIndex,
                                                unsigned char *pucDataInput,
                                                unsigned int uiInputLength,
                                                unsigned char *pucDataOutput,
                                                unsigned int *puiOutputLength)
{
    return SDR_NOTSUPPORT;
}
