/* gmpool PKCS#11 vendor constants for the Chinese SM algorithms.
 *
 * The SM3/SM4 numbers are those of the Thales Luna HSMs, which other
 * vendors copy, so applications written for them work unchanged.  SM4-CTR,
 * SM4-MAC and SM4-GCM have no Luna number; gmpool's are in 0x80000B20..22
 * (see docs/pkcs11.md for their parameters). */
#ifndef GMPOOL_PKCS11_H
#define GMPOOL_PKCS11_H

#define CKK_SM4 0x80000015UL

#define CKM_SM3 0x80000B01UL
#define CKM_SM3_HMAC 0x80000B02UL
#define CKM_SM4_KEY_GEN 0x80000B10UL
#define CKM_SM4_ECB 0x80000B11UL
#define CKM_SM4_CBC 0x80000B12UL         /* parameter: 16-byte IV */
#define CKM_SM4_CBC_PAD 0x80000B13UL     /* PKCS#7 padding */
#define CKM_SM4_CTR 0x80000B20UL         /* CK_AES_CTR_PARAMS */
#define CKM_SM4_MAC 0x80000B21UL         /* CBC-MAC, zero IV, zero padding
                                            (GM/T 0018 SGD_SM4_MAC), 16 bytes */
#define CKM_SM4_GCM 0x80000B22UL         /* CK_GCM_PARAMS */

/* PKCS#11 3.0 values that older pkcs11.h files (NSS 3.87's) lack. */
#ifndef CKR_AEAD_DECRYPT_FAILED
#define CKR_AEAD_DECRYPT_FAILED 0x00000035UL
#endif
#ifndef CKA_UNIQUE_ID
#define CKA_UNIQUE_ID 0x00000004UL
#endif

#endif
