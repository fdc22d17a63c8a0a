/* RSA: the pool computes SM2, SM3 and SM4 only, so every RSA function of
 * GM/T 0018 answers SDR_NOTSUPPORT (docs/sdf.md) without touching its
 * arguments.  The parameter lists are sdf.h's, which the compiler checks
 * each definition against. */
#include "sdf_int.h"

#define NOT_SUPPORTED(name, ...) \
    SDF_API int name(__VA_ARGS__) { return SDR_NOTSUPPORT; }

NOT_SUPPORTED(SDF_ExportSignPublicKey_RSA, void *s, unsigned int idx,
              RSArefPublicKey *pub)
NOT_SUPPORTED(SDF_ExportEncPublicKey_RSA, void *s, unsigned int idx,
              RSArefPublicKey *pub)
NOT_SUPPORTED(SDF_GenerateKeyPair_RSA, void *s, unsigned int bits,
              RSArefPublicKey *pub, RSArefPrivateKey *priv)
NOT_SUPPORTED(SDF_GenerateKeyWithIPK_RSA, void *s, unsigned int idx,
              unsigned int bits, unsigned char *key, unsigned int *key_len,
              void **h)
NOT_SUPPORTED(SDF_GenerateKeyWithEPK_RSA, void *s, unsigned int bits,
              RSArefPublicKey *pub, unsigned char *key,
              unsigned int *key_len, void **h)
NOT_SUPPORTED(SDF_ImportKeyWithISK_RSA, void *s, unsigned int idx,
              unsigned char *key, unsigned int key_len, void **h)
NOT_SUPPORTED(SDF_ExchangeDigitEnvelopeBaseOnRSA, void *s, unsigned int idx,
              RSArefPublicKey *pub, unsigned char *in, unsigned int in_len,
              unsigned char *out, unsigned int *out_len)
NOT_SUPPORTED(SDF_ExternalPublicKeyOperation_RSA, void *s,
              RSArefPublicKey *pub, unsigned char *in, unsigned int in_len,
              unsigned char *out, unsigned int *out_len)
NOT_SUPPORTED(SDF_InternalPublicKeyOperation_RSA, void *s, unsigned int idx,
              unsigned char *in, unsigned int in_len, unsigned char *out,
              unsigned int *out_len)
NOT_SUPPORTED(SDF_InternalPrivateKeyOperation_RSA, void *s, unsigned int idx,
              unsigned char *in, unsigned int in_len, unsigned char *out,
              unsigned int *out_len)
