/* A crypto-card program written only against sdf.h (GM/T 0018-2012), as
 * legacy applications are: it opens the device and a session, hashes a
 * file with SM3, makes a session key under a KEK and encrypts the file
 * with it in SM4-CBC, decrypts it in a second session with the same key
 * imported from its KEK-wrapped form, and signs the file's digest (SM3
 * with the signer's Z value) with an internal SM2 key pair and verifies
 * the signature.  It builds against any vendor's libsdf, or gmpool's:
 *
 *   cc sdf_legacy.c -lgmpool-sdf
 *
 * usage: sdf_legacy FILE KEK_INDEX KEY_INDEX PASSWORD */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdf.h"

#define CHUNK 65536

static const char signer_id[] = "1234567812345678";

static int check(int rv, const char *what)
{
    if (rv != SDR_OK)
        fprintf(stderr, "sdf_legacy: %s failed: 0x%08X\n", what,
                (unsigned)rv);
    return rv;
}

static void print_hex(const char *label, const unsigned char *p, size_t n)
{
    printf("%s", label);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

/* The whole file, zero-padded to SM4 blocks (SDF does no padding). */
static unsigned char *read_file(const char *path, unsigned int *len,
                                unsigned int *padded)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0, got;
    if (!f)
        return NULL;
    do {
        if (n + CHUNK + 16 > cap) { /* room for the padding too */
            unsigned char *nb = realloc(buf, cap = n + 4 * CHUNK);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, CHUNK, f);
        n += got;
    } while (got == CHUNK);
    fclose(f);
    *len = (unsigned int)n;
    *padded = (unsigned int)((n + 15) / 16 * 16);
    if (*padded == 0)
        *padded = 16;
    memset(buf + n, 0, *padded - n);
    return buf;
}

/* SM3 of the data in chunks; with a public key, Z comes first. */
static int hash(void *s, ECCrefPublicKey *pub, const unsigned char *data,
                unsigned int len, unsigned char md[32])
{
    unsigned int mdlen = 0;
    int rv = SDF_HashInit(s, SGD_SM3, pub,
                          pub ? (unsigned char *)signer_id : NULL,
                          pub ? (unsigned int)strlen(signer_id) : 0);
    for (unsigned int off = 0; rv == SDR_OK && off < len; off += CHUNK)
        rv = SDF_HashUpdate(s, (unsigned char *)data + off,
                            len - off < CHUNK ? len - off : CHUNK);
    if (rv == SDR_OK)
        rv = SDF_HashFinal(s, md, &mdlen);
    return rv;
}

/* Encrypt in session s1 with a new KEK-wrapped key; decrypt in s2 with
 * the key imported from the wrapped blob. */
static int round_trip(void *s1, void *s2, unsigned int kek,
                      unsigned char *data, unsigned int n)
{
    unsigned char wrapped[64], iv[16] = {0}, iv2[16] = {0};
    unsigned int wlen = 0, outlen = 0;
    void *k1 = NULL, *k2 = NULL;
    unsigned char *enc = malloc(n), *dec = malloc(n);
    int rv = enc && dec ? SDR_OK : SDR_NOBUFFER;
    if (rv == SDR_OK)
        rv = check(SDF_GenerateKeyWithKEK(s1, 128, SGD_SM4_ECB, kek, wrapped,
                                          &wlen, &k1), "GenerateKeyWithKEK");
    if (rv == SDR_OK)
        rv = check(SDF_Encrypt(s1, k1, SGD_SM4_CBC, iv, data, n, enc,
                               &outlen), "Encrypt");
    if (rv == SDR_OK)
        rv = check(SDF_ImportKeyWithKEK(s2, SGD_SM4_ECB, kek, wrapped, wlen,
                                        &k2), "ImportKeyWithKEK");
    if (rv == SDR_OK)
        rv = check(SDF_Decrypt(s2, k2, SGD_SM4_CBC, iv2, enc, n, dec,
                               &outlen), "Decrypt");
    if (rv == SDR_OK && (outlen != n || memcmp(dec, data, n) != 0)) {
        fprintf(stderr, "sdf_legacy: decrypted data differs\n");
        rv = SDR_SYMOPERR;
    }
    if (rv == SDR_OK)
        printf("SM4-CBC with a KEK-wrapped session key: %u bytes encrypted "
               "and decrypted\n", n);
    if (k1)
        SDF_DestroyKey(s1, k1);
    if (k2)
        SDF_DestroyKey(s2, k2);
    free(enc);
    free(dec);
    return rv;
}

static int sign_verify(void *s, unsigned int idx, const char *pwd,
                       const unsigned char *data, unsigned int len)
{
    ECCrefPublicKey pub;
    ECCSignature sig;
    unsigned char e[32];
    int rv = check(SDF_GetPrivateKeyAccessRight(s, idx, (unsigned char *)pwd,
                                                (unsigned int)strlen(pwd)),
                   "GetPrivateKeyAccessRight");
    if (rv == SDR_OK)
        rv = check(SDF_ExportSignPublicKey_ECC(s, idx, &pub),
                   "ExportSignPublicKey_ECC");
    if (rv == SDR_OK)
        rv = check(hash(s, &pub, data, len, e), "SM3 with Z");
    if (rv == SDR_OK)
        rv = check(SDF_InternalSign_ECC(s, idx, e, 32, &sig),
                   "InternalSign_ECC");
    if (rv == SDR_OK)
        rv = check(SDF_ExternalVerify_ECC(s, SGD_SM2_1, &pub, e, 32, &sig),
                   "ExternalVerify_ECC");
    if (rv == SDR_OK) {
        print_hex("signature r= ", sig.r + 32, 32);
        print_hex("signature s= ", sig.s + 32, 32);
        printf("signature verified\n");
    }
    SDF_ReleasePrivateKeyAccessRight(s, idx);
    return rv;
}

int main(int argc, char **argv)
{
    void *dev = NULL, *s1 = NULL, *s2 = NULL;
    unsigned char md[32];
    unsigned int len = 0, padded = 0;
    if (argc != 5) {
        fprintf(stderr, "usage: sdf_legacy FILE KEK_INDEX KEY_INDEX "
                        "PASSWORD\n");
        return 2;
    }
    unsigned char *data = read_file(argv[1], &len, &padded);
    if (!data) {
        fprintf(stderr, "sdf_legacy: cannot read %s\n", argv[1]);
        return 1;
    }
    int rv = check(SDF_OpenDevice(&dev), "OpenDevice");
    if (rv == SDR_OK)
        rv = check(SDF_OpenSession(dev, &s1), "OpenSession");
    if (rv == SDR_OK)
        rv = check(SDF_OpenSession(dev, &s2), "OpenSession");
    if (rv == SDR_OK)
        rv = check(hash(s1, NULL, data, len, md), "SM3");
    if (rv == SDR_OK)
        print_hex("SM3= ", md, sizeof md);
    if (rv == SDR_OK)
        rv = round_trip(s1, s2, (unsigned int)atoi(argv[2]), data, padded);
    if (rv == SDR_OK)
        rv = sign_verify(s1, (unsigned int)atoi(argv[3]), argv[4], data, len);
    if (s2)
        SDF_CloseSession(s2);
    if (s1)
        SDF_CloseSession(s1);
    if (dev)
        SDF_CloseDevice(dev);
    free(data);
    return rv == SDR_OK ? 0 : 1;
}
