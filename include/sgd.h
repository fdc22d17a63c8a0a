/* GM/T 0006-2012 algorithm identifiers and the key size limits of the
 * GM/T 0018-2012 data structures (sdf.h).  The values are the standard's,
 * so a program compiled against another vendor's sgd.h passes the same
 * numbers.  gmpool's SDF library implements SM3, SM4 and SM2; the other
 * identifiers are listed so that programs using them still compile, and
 * the library answers them with SDR_ALGNOTSUPPORT (docs/sdf.md). */
#ifndef GMPOOL_SGD_H
#define GMPOOL_SGD_H

/* Symmetric algorithms: the family in bits 8..15, the mode in bits 0..7. */
#define SGD_SM1_ECB 0x00000101
#define SGD_SM1_CBC 0x00000102
#define SGD_SM1_CFB 0x00000104
#define SGD_SM1_OFB 0x00000108
#define SGD_SM1_MAC 0x00000110
#define SGD_SSF33_ECB 0x00000201
#define SGD_SSF33_CBC 0x00000202
#define SGD_SSF33_CFB 0x00000204
#define SGD_SSF33_OFB 0x00000208
#define SGD_SSF33_MAC 0x00000210
#define SGD_SM4_ECB 0x00000401
#define SGD_SM4_CBC 0x00000402
#define SGD_SM4_CFB 0x00000404
#define SGD_SM4_OFB 0x00000408
#define SGD_SM4_MAC 0x00000410
/* SMS4 is SM4's earlier name; some programs still spell it so. */
#define SGD_SMS4_ECB SGD_SM4_ECB
#define SGD_SMS4_CBC SGD_SM4_CBC
#define SGD_SMS4_CFB SGD_SM4_CFB
#define SGD_SMS4_OFB SGD_SM4_OFB
#define SGD_SMS4_MAC SGD_SM4_MAC
#define SGD_ZUC_EEA3 0x00000801
#define SGD_ZUC_EIA3 0x00000802

/* Asymmetric algorithms. */
#define SGD_RSA 0x00010000
#define SGD_SM2 0x00020100
#define SGD_SM2_1 0x00020200 /* SM2 signature */
#define SGD_SM2_2 0x00020400 /* SM2 key exchange */
#define SGD_SM2_3 0x00020800 /* SM2 encryption */

/* Hash algorithms. */
#define SGD_SM3 0x00000001
#define SGD_SHA1 0x00000002
#define SGD_SHA256 0x00000004

/* Key size limits of the data structures.  ECC coordinates and scalars
 * sit right-aligned, big-endian, in ECCref_MAX_LEN bytes: a 256-bit SM2
 * value fills the last 32 bytes and the first 32 are zero. */
#define RSAref_MAX_BITS 2048
#define RSAref_MAX_LEN ((RSAref_MAX_BITS + 7) / 8)
#define RSAref_MAX_PBITS ((RSAref_MAX_BITS + 1) / 2)
#define RSAref_MAX_PLEN ((RSAref_MAX_PBITS + 7) / 8)
#define ECCref_MAX_BITS 512
#define ECCref_MAX_LEN ((ECCref_MAX_BITS + 7) / 8)

#endif
