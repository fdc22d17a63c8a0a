/* Use the gmpool token like any PKCS#11 token: load the module, log in,
 * make an SM4 key in the pool, encrypt and decrypt a file with SM4-CBC
 * and hash it with SM3.
 *   pkcs11_sm4 MODULE PIN FILE
 * MODULE is the path of libgmpool-pkcs11.so; the token is the tenant of
 * GMPOOL_CREDENTIALS (default: the daemon's default credentials).  Uses
 * only the Cryptoki headers (NSS's or p11-kit's pkcs11.h) and
 * gmpool-pkcs11.h for the SM mechanism numbers. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pkcs11.h>

#include <gmpool-pkcs11.h>

static CK_FUNCTION_LIST_PTR F;

static int check(const char *what, CK_RV rv)
{
    if (rv != CKR_OK)
        fprintf(stderr, "%s: CKR 0x%lx\n", what, (unsigned long)rv);
    return rv != CKR_OK;
}

static unsigned char *read_file(const char *path, CK_ULONG *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (CK_ULONG)n;
    return p;
}

/* SM4-CBC-PAD encryption then decryption in one session; returns 0 when
 * the round trip gives the input back. */
static int round_trip(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                      unsigned char *in, CK_ULONG len)
{
    unsigned char iv[16] = {0};
    CK_MECHANISM cbc = {CKM_SM4_CBC_PAD, iv, sizeof iv};
    CK_ULONG elen = 0, dlen = 0;
    if (check("C_EncryptInit", F->C_EncryptInit(s, &cbc, key)) ||
        check("C_Encrypt (length)", F->C_Encrypt(s, in, len, NULL, &elen)))
        return 1;
    unsigned char *enc = malloc(elen), *dec = malloc(elen);
    int bad = !enc || !dec ||
              check("C_Encrypt", F->C_Encrypt(s, in, len, enc, &elen)) ||
              check("C_DecryptInit", F->C_DecryptInit(s, &cbc, key));
    dlen = elen;
    bad = bad || check("C_Decrypt", F->C_Decrypt(s, enc, elen, dec, &dlen)) ||
          dlen != len || memcmp(dec, in, len) != 0;
    if (!bad)
        printf("SM4-CBC-PAD: %lu bytes -> %lu encrypted -> decrypted back\n",
               (unsigned long)len, (unsigned long)elen);
    free(enc);
    free(dec);
    return bad;
}

static int digest(CK_SESSION_HANDLE s, unsigned char *in, CK_ULONG len)
{
    CK_MECHANISM sm3 = {CKM_SM3, NULL, 0};
    unsigned char md[32];
    CK_ULONG n = sizeof md;
    if (check("C_DigestInit", F->C_DigestInit(s, &sm3)) ||
        check("C_Digest", F->C_Digest(s, in, len, md, &n)))
        return 1;
    printf("SM3: ");
    for (CK_ULONG i = 0; i < n; i++)
        printf("%02x", md[i]);
    printf("\n");
    return 0;
}

static int run(const char *pin, unsigned char *data, CK_ULONG len)
{
    CK_SLOT_ID slot;
    CK_ULONG n = 1;
    CK_SESSION_HANDLE s;
    if (check("C_GetSlotList", F->C_GetSlotList(CK_TRUE, &slot, &n)) ||
        check("C_OpenSession",
              F->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                               NULL, NULL, &s)) ||
        check("C_Login", F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin,
                                    strlen(pin))))
        return 1;
    /* a session key, generated in the pool; its value never leaves it */
    CK_MECHANISM gen = {CKM_SM4_KEY_GEN, NULL, 0};
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {{CKA_SENSITIVE, &yes, sizeof yes},
                           {CKA_LABEL, "example", 7}};
    CK_OBJECT_HANDLE key;
    int bad = check("C_GenerateKey", F->C_GenerateKey(s, &gen, tmpl, 2, &key)) ||
              round_trip(s, key, data, len) || digest(s, data, len);
    F->C_CloseSession(s);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODULE PIN FILE\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW);
    CK_C_GetFunctionList get =
        lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
    if (!get || get(&F) != CKR_OK) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    CK_ULONG len = 0;
    unsigned char *data = read_file(argv[3], &len);
    if (!data) {
        perror(argv[3]);
        return 1;
    }
    int bad = check("C_Initialize", F->C_Initialize(NULL)) ||
              run(argv[2], data, len);
    F->C_Finalize(NULL);
    free(data);
    return bad;
}
