/* The PKCS#11 module through its function list against a live daemon:
 * interfaces and initialisation, token info and login (PIN checked by the
 * pool), SM3/SM4/AES/SHA-2/HMAC known answers, multi-MB multi-part
 * operations against libcrypto with random split points, the length-query
 * convention, calls out of order, mechanism and key mismatches, objects
 * (create, generate, find, attributes, sensitive values, token objects
 * across a restart, handles of other sessions and tenants), threads with
 * OS locks and with the application's mutex callbacks, and fork. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <pkcs11.h>

#include "gmpool-pkcs11.h"
#include "harness.h"
#include "util.h"

#define PIN "1234"

static gmpt_daemon *g_d;
static void *g_lib;
static CK_FUNCTION_LIST_3_0 *F;
static char g_bob[256];

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = strlen(h) / 2;
    assert_int_equal(gmpc_hex_decode(h, out, n), (int)n);
    return n;
}

static void set_pin(const char *tenant, const char *pin)
{
    char args[200];
    snprintf(args, sizeof args, "tenant pin %s", tenant);
    assert_int_equal(gmpt_ctl_input(g_d, NULL, args, pin), 0);
}

static CK_SESSION_HANDLE open_rw(CK_SLOT_ID slot)
{
    CK_SESSION_HANDLE s;
    assert_int_equal(F->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                      NULL, NULL, &s), CKR_OK);
    return s;
}

static void login(CK_SESSION_HANDLE s)
{
    assert_int_equal(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)PIN, 4),
                     CKR_OK);
}

static int setup(void **state)
{
    (void)state;
    gmpt_seed(0x9E3779B97F4A7C15ull);
    g_d = gmpt_start(NULL);
    set_pin("default", PIN);
    char args[400];
    snprintf(g_bob, sizeof g_bob, "%s/bob.cred", g_d->dir);
    snprintf(args, sizeof args, "-o '%s' tenant add bob", g_bob);
    assert_int_equal(gmpt_ctl(g_d, NULL, args), 0);
    set_pin("bob", "bobs-pin");
    char creds[600];
    snprintf(creds, sizeof creds, "%s:%s", g_d->creds, g_bob);
    setenv("GMPOOL_CREDENTIALS", creds, 1); /* slot 0: default, 1: bob */
    g_lib = dlopen(getenv("GMPOOL_PKCS11_MODULE"), RTLD_NOW);
    if (!g_lib)
        fprintf(stderr, "dlopen: %s\n", dlerror());
    assert_non_null(g_lib);
    CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(g_lib, "C_GetInterface");
    assert_non_null(gi);
    CK_INTERFACE_PTR i = NULL;
    assert_int_equal(gi(NULL, NULL, &i, 0), CKR_OK);
    F = i->pFunctionList;
    assert_int_equal(F->version.major, 3);
    assert_int_equal(F->C_Initialize(NULL), CKR_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    F->C_Finalize(NULL);
    gmpt_stop(g_d);
    return 0;
}

/* ---- interfaces and initialisation ---- */

static void test_interfaces(void **state)
{
    (void)state;
    CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(g_lib, "C_GetInterface");
    CK_C_GetInterfaceList gl =
        (CK_C_GetInterfaceList)dlsym(g_lib, "C_GetInterfaceList");
    CK_C_GetFunctionList gf =
        (CK_C_GetFunctionList)dlsym(g_lib, "C_GetFunctionList");
    assert_non_null(gl);
    assert_non_null(gf);
    assert_null(dlsym(g_lib, "C_Initialize")); /* only the entry points */
    CK_ULONG n = 0;
    assert_int_equal(gl(NULL, &n), CKR_OK);
    assert_int_equal(n, 2);
    CK_INTERFACE list[2];
    n = 1;
    assert_int_equal(gl(list, &n), CKR_BUFFER_TOO_SMALL);
    n = 2;
    assert_int_equal(gl(list, &n), CKR_OK);
    CK_INTERFACE_PTR i = (CK_INTERFACE_PTR)1;
    CK_VERSION v240 = {2, 40}, v99 = {9, 9};
    assert_int_equal(gi((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &i, 0), CKR_OK);
    assert_int_equal(((CK_FUNCTION_LIST_PTR)i->pFunctionList)->version.minor,
                     40);
    /* no match is an error and never CKR_OK with NULL */
    assert_int_not_equal(gi((CK_UTF8CHAR_PTR) "Vendor X", NULL, &i, 0),
                         CKR_OK);
    assert_null(i);
    assert_int_not_equal(gi(NULL, &v99, &i, 0), CKR_OK);
    assert_int_not_equal(gi(NULL, NULL, &i, CKF_INTERFACE_FORK_SAFE), CKR_OK);
    assert_int_equal(gi(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
    CK_FUNCTION_LIST_PTR f2;
    assert_int_equal(gf(&f2), CKR_OK);
    assert_ptr_equal(f2->C_Initialize, F->C_Initialize);
}

static CK_RV cb_create(CK_VOID_PTR_PTR m)
{
    pthread_mutex_t *p = malloc(sizeof *p);
    pthread_mutex_init(p, NULL);
    *m = p;
    return CKR_OK;
}
static CK_RV cb_destroy(CK_VOID_PTR m)
{
    pthread_mutex_destroy(m);
    free(m);
    return CKR_OK;
}
static int g_cb_locks;
static CK_RV cb_lock(CK_VOID_PTR m)
{
    __atomic_add_fetch(&g_cb_locks, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(m);
    return CKR_OK;
}
static CK_RV cb_unlock(CK_VOID_PTR m)
{
    pthread_mutex_unlock(m);
    return CKR_OK;
}

static void test_initialize(void **state)
{
    (void)state;
    CK_INFO info;
    assert_int_equal(F->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    assert_int_equal(F->C_Finalize((CK_VOID_PTR)1), CKR_ARGUMENTS_BAD);
    assert_int_equal(F->C_Finalize(NULL), CKR_OK);
    assert_int_equal(F->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_int_equal(F->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    CK_C_INITIALIZE_ARGS half = {.CreateMutex = cb_create};
    assert_int_equal(F->C_Initialize(&half), CKR_ARGUMENTS_BAD);
    CK_C_INITIALIZE_ARGS os = {.flags = CKF_OS_LOCKING_OK};
    assert_int_equal(F->C_Initialize(&os), CKR_OK);
    assert_int_equal(F->C_GetInfo(&info), CKR_OK);
    assert_int_equal(info.cryptokiVersion.major, 3);
    assert_memory_equal(info.manufacturerID, "gmpool ", 7);
}

/* Threads racing to initialise: exactly one wins, the module ends up
 * with one set of slots. */
static pthread_barrier_t g_init_barrier;

static void *init_racer(void *arg)
{
    (void)arg;
    CK_C_INITIALIZE_ARGS os = {.flags = CKF_OS_LOCKING_OK};
    pthread_barrier_wait(&g_init_barrier);
    return (void *)(uintptr_t)F->C_Initialize(&os);
}

static void test_initialize_race(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        assert_int_equal(F->C_Finalize(NULL), CKR_OK);
        pthread_t th[6];
        pthread_barrier_init(&g_init_barrier, NULL, 6);
        for (int i = 0; i < 6; i++)
            assert_int_equal(pthread_create(&th[i], NULL, init_racer, NULL), 0);
        int won = 0;
        for (int i = 0; i < 6; i++) {
            void *r;
            pthread_join(th[i], &r);
            CK_RV rv = (CK_RV)(uintptr_t)r;
            assert_true(rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED);
            won += rv == CKR_OK;
        }
        pthread_barrier_destroy(&g_init_barrier);
        assert_int_equal(won, 1);
        CK_ULONG n = 0;
        assert_int_equal(F->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
        assert_int_equal(n, 2);
    }
}

/* ---- token, slots, login ---- */

static void test_token(void **state)
{
    (void)state;
    CK_ULONG n = 0;
    assert_int_equal(F->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    assert_int_equal(n, 2);
    CK_SLOT_ID slots[2];
    n = 1;
    assert_int_equal(F->C_GetSlotList(CK_TRUE, slots, &n),
                     CKR_BUFFER_TOO_SMALL);
    n = 2;
    assert_int_equal(F->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    CK_TOKEN_INFO ti;
    assert_int_equal(F->C_GetTokenInfo(slots[1], &ti), CKR_OK);
    assert_memory_equal(ti.label, "bob ", 4);
    assert_int_equal(F->C_GetTokenInfo(slots[0], &ti), CKR_OK);
    assert_memory_equal(ti.label, "default ", 8);
    CK_FLAGS want = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED |
                    CKF_USER_PIN_INITIALIZED;
    assert_int_equal(ti.flags & want, want);
    assert_int_equal(F->C_GetTokenInfo(7, &ti), CKR_SLOT_ID_INVALID);
    CK_MECHANISM_TYPE mechs[64];
    n = 64;
    assert_int_equal(F->C_GetMechanismList(0, mechs, &n), CKR_OK);
    int found = 0;
    for (CK_ULONG i = 0; i < n; i++)
        found += mechs[i] == CKM_SM3 || mechs[i] == CKM_SM4_CBC_PAD ||
                 mechs[i] == CKM_AES_GCM;
    assert_int_equal(found, 3);
    CK_MECHANISM_INFO mi;
    assert_int_equal(F->C_GetMechanismInfo(0, CKM_SM4_ECB, &mi), CKR_OK);
    assert_true(mi.flags & CKF_ENCRYPT);
    assert_int_equal(F->C_GetMechanismInfo(0, CKM_RSA_PKCS, &mi),
                     CKR_MECHANISM_INVALID);
}

static void test_login(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_rw(0), ro;
    CK_SESSION_INFO si;
    CK_TOKEN_INFO ti;
    assert_int_equal(F->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro),
                     CKR_OK);
    assert_int_equal(F->C_OpenSession(0, 0, NULL, NULL, &ro),
                     CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    assert_int_equal(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "9999", 4),
                     CKR_PIN_INCORRECT);
    assert_int_equal(F->C_GetTokenInfo(0, &ti), CKR_OK);
    assert_true(ti.flags & CKF_USER_PIN_COUNT_LOW);
    assert_int_equal(F->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)PIN, 4),
                     CKR_USER_TYPE_INVALID);
    assert_int_equal(F->C_Logout(s), CKR_USER_NOT_LOGGED_IN);
    login(s);
    assert_int_equal(F->C_GetTokenInfo(0, &ti), CKR_OK);
    assert_false(ti.flags & CKF_USER_PIN_COUNT_LOW); /* reset by success */
    assert_int_equal(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)PIN, 4),
                     CKR_USER_ALREADY_LOGGED_IN);
    assert_int_equal(F->C_GetSessionInfo(ro, &si), CKR_OK);
    assert_int_equal(si.state, CKS_RO_USER_FUNCTIONS); /* login is per app */
    assert_int_equal(F->C_GetSessionInfo(s, &si), CKR_OK);
    assert_int_equal(si.state, CKS_RW_USER_FUNCTIONS);
    /* C_SetPIN: read-only session, wrong old PIN, bad length, then ok */
    assert_int_equal(F->C_SetPIN(ro, (CK_UTF8CHAR_PTR)PIN, 4,
                                 (CK_UTF8CHAR_PTR) "5678", 4),
                     CKR_SESSION_READ_ONLY);
    assert_int_equal(F->C_SetPIN(s, (CK_UTF8CHAR_PTR) "0000", 4,
                                 (CK_UTF8CHAR_PTR) "5678", 4),
                     CKR_PIN_INCORRECT);
    assert_int_equal(F->C_SetPIN(s, (CK_UTF8CHAR_PTR)PIN, 4,
                                 (CK_UTF8CHAR_PTR) "56", 2),
                     CKR_PIN_LEN_RANGE);
    assert_int_equal(F->C_SetPIN(s, (CK_UTF8CHAR_PTR)PIN, 4,
                                 (CK_UTF8CHAR_PTR) "5678", 4), CKR_OK);
    assert_int_equal(F->C_Logout(s), CKR_OK);
    assert_int_equal(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)PIN, 4),
                     CKR_PIN_INCORRECT);
    assert_int_equal(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "5678", 4),
                     CKR_OK);
    assert_int_equal(F->C_SetPIN(s, (CK_UTF8CHAR_PTR) "5678", 4,
                                 (CK_UTF8CHAR_PTR)PIN, 4), CKR_OK);
    assert_int_equal(F->C_CloseSession(s), CKR_OK);
    assert_int_equal(F->C_CloseSession(ro), CKR_OK);
    /* closing the last session logged the application out */
    s = open_rw(0);
    assert_int_equal(F->C_GetSessionInfo(s, &si), CKR_OK);
    assert_int_equal(si.state, CKS_RW_PUBLIC_SESSION);
    assert_int_equal(F->C_CloseSession(s), CKR_OK);
    assert_int_equal(F->C_CloseSession(s), CKR_SESSION_HANDLE_INVALID);
}

/* ---- keys and known answers ---- */

static CK_OBJECT_HANDLE import_key(CK_SESSION_HANDLE s, CK_KEY_TYPE type,
                                   const uint8_t *v, size_t n, bool priv,
                                   bool sensitive)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL t = CK_TRUE, f = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_VALUE, (void *)v, n},
        {CKA_PRIVATE, priv ? &t : &f, sizeof t},
        {CKA_SENSITIVE, sensitive ? &t : &f, sizeof t},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    assert_int_equal(F->C_CreateObject(s, tmpl, 5, &h), CKR_OK);
    return h;
}

static void digest_kat(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE m,
                       const char *msg, const char *hex)
{
    CK_MECHANISM mech = {m, NULL, 0};
    uint8_t want[64], got[64];
    CK_ULONG n = unhex(hex, want), len = 0;
    assert_int_equal(F->C_DigestInit(s, &mech), CKR_OK);
    assert_int_equal(F->C_Digest(s, (CK_BYTE_PTR)msg, strlen(msg), NULL, &len),
                     CKR_OK);
    assert_int_equal(len, n);
    len = n - 1;
    assert_int_equal(F->C_Digest(s, (CK_BYTE_PTR)msg, strlen(msg), got, &len),
                     CKR_BUFFER_TOO_SMALL);
    len = sizeof got;
    assert_int_equal(F->C_Digest(s, (CK_BYTE_PTR)msg, strlen(msg), got, &len),
                     CKR_OK);
    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
}

static void cipher_kat(CK_SESSION_HANDLE s, CK_MECHANISM *m,
                       CK_OBJECT_HANDLE k, const char *pt_hex,
                       const char *ct_hex)
{
    uint8_t pt[64], ct[64], out[80];
    size_t pn = unhex(pt_hex, pt), cn = unhex(ct_hex, ct);
    CK_ULONG n = sizeof out;
    assert_int_equal(F->C_EncryptInit(s, m, k), CKR_OK);
    assert_int_equal(F->C_Encrypt(s, pt, pn, out, &n), CKR_OK);
    assert_int_equal(n, cn);
    assert_memory_equal(out, ct, cn);
    n = sizeof out;
    assert_int_equal(F->C_DecryptInit(s, m, k), CKR_OK);
    assert_int_equal(F->C_Decrypt(s, ct, cn, out, &n), CKR_OK);
    assert_int_equal(n, pn);
    assert_memory_equal(out, pt, pn);
}

static void test_known_answers(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_rw(0);
    /* GB/T 32905 example 1; FIPS 180-2 */
    digest_kat(s, CKM_SM3, "abc",
               "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
    digest_kat(s, CKM_SHA256, "abc",
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    digest_kat(s, CKM_SHA512, "abc",
               "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
               "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    /* GB/T 32907 example 1 */
    uint8_t kv[32];
    size_t kn = unhex("0123456789abcdeffedcba9876543210", kv);
    CK_OBJECT_HANDLE sm4 = import_key(s, CKK_SM4, kv, kn, false, false);
    CK_MECHANISM ecb = {CKM_SM4_ECB, NULL, 0};
    cipher_kat(s, &ecb, sm4, "0123456789abcdeffedcba9876543210",
               "681edf34d206965e86b3e94f536e4246");
    /* FIPS-197 C.1; SP 800-38A F.2.1 */
    kn = unhex("000102030405060708090a0b0c0d0e0f", kv);
    CK_OBJECT_HANDLE aes = import_key(s, CKK_AES, kv, kn, false, false);
    CK_MECHANISM aecb = {CKM_AES_ECB, NULL, 0};
    cipher_kat(s, &aecb, aes, "00112233445566778899aabbccddeeff",
               "69c4e0d86a7b0430d8cdb78070b4c55a");
    kn = unhex("2b7e151628aed2a6abf7158809cf4f3c", kv);
    CK_OBJECT_HANDLE aes2 = import_key(s, CKK_AES, kv, kn, false, false);
    uint8_t iv[16];
    unhex("000102030405060708090a0b0c0d0e0f", iv);
    CK_MECHANISM acbc = {CKM_AES_CBC, iv, 16};
    cipher_kat(s, &acbc, aes2, "6bc1bee22e409f96e93d7e117393172a",
               "7649abac8119b246cee98e9b12e9197d");
    /* RFC 4231 test case 2 with a generic secret */
    CK_OBJECT_HANDLE hk = import_key(s, CKK_GENERIC_SECRET,
                                     (const uint8_t *)"Jefe", 4, false, false);
    CK_MECHANISM hm = {CKM_SHA256_HMAC, NULL, 0};
    const char *msg = "what do ya want for nothing?";
    uint8_t mac[32], want[32];
    CK_ULONG n = sizeof mac;
    unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
          want);
    assert_int_equal(F->C_SignInit(s, &hm, hk), CKR_OK);
    assert_int_equal(F->C_Sign(s, (CK_BYTE_PTR)msg, strlen(msg), mac, &n),
                     CKR_OK);
    assert_memory_equal(mac, want, 32);
    assert_int_equal(F->C_VerifyInit(s, &hm, hk), CKR_OK);
    assert_int_equal(F->C_Verify(s, (CK_BYTE_PTR)msg, strlen(msg), mac, 32),
                     CKR_OK);
    mac[5] ^= 1;
    assert_int_equal(F->C_VerifyInit(s, &hm, hk), CKR_OK);
    assert_int_equal(F->C_Verify(s, (CK_BYTE_PTR)msg, strlen(msg), mac, 32),
                     CKR_SIGNATURE_INVALID);
    assert_int_equal(F->C_VerifyInit(s, &hm, hk), CKR_OK);
    assert_int_equal(F->C_Verify(s, (CK_BYTE_PTR)msg, strlen(msg), mac, 31),
                     CKR_SIGNATURE_LEN_RANGE);
    /* SM4-MAC: CBC-MAC with zero IV and zero padding, 16 bytes */
    CK_MECHANISM sm = {CKM_SM4_MAC, NULL, 0};
    uint8_t data[40], padded[48] = {0}, cbc[48], zero[16] = {0};
    memset(data, 0x5a, sizeof data);
    memcpy(padded, data, sizeof data);
    int l1 = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    unhex("0123456789abcdeffedcba9876543210", kv);
    assert_true(EVP_EncryptInit_ex2(c, EVP_sm4_cbc(), kv, zero, NULL));
    EVP_CIPHER_CTX_set_padding(c, 0);
    assert_true(EVP_EncryptUpdate(c, cbc, &l1, padded, sizeof padded));
    EVP_CIPHER_CTX_free(c);
    n = sizeof mac;
    assert_int_equal(F->C_SignInit(s, &sm, sm4), CKR_OK);
    assert_int_equal(F->C_SignUpdate(s, data, 7), CKR_OK);
    assert_int_equal(F->C_SignUpdate(s, data + 7, sizeof data - 7), CKR_OK);
    assert_int_equal(F->C_SignFinal(s, mac, &n), CKR_OK);
    assert_int_equal(n, 16);
    assert_memory_equal(mac, cbc + 32, 16);
    assert_int_equal(F->C_CloseSession(s), CKR_OK);
}

/* ---- multi-part against libcrypto ---- */

/* Feeds in through Update calls at random split points (some empty). */
static size_t crypt_parts(CK_SESSION_HANDLE s, bool dec, const uint8_t *in,
                          size_t len, uint8_t *out)
{
    size_t off = 0, done = 0;
    while (off < len) {
        size_t part = gmpt_rand() % 4 == 0 ? gmpt_rand() % 64
                                           : gmpt_rand() % (1u << 20);
        part = part > len - off ? len - off : part;
        CK_ULONG n = len + 32 - done;
        CK_RV rv = dec ? F->C_DecryptUpdate(s, (CK_BYTE_PTR)in + off, part,
                                            out + done, &n)
                       : F->C_EncryptUpdate(s, (CK_BYTE_PTR)in + off, part,
                                            out + done, &n);
        assert_int_equal(rv, CKR_OK);
        off += part;
        done += n;
    }
    CK_ULONG n = len + 32 - done;
    CK_RV rv = dec ? F->C_DecryptFinal(s, out + done, &n)
                   : F->C_EncryptFinal(s, out + done, &n);
    assert_int_equal(rv, CKR_OK);
    return done + n;
}

static size_t evp_ref(const char *name, bool dec, const uint8_t *key,
                      const uint8_t *iv, const uint8_t *in, size_t len,
                      uint8_t *out, bool pad)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    assert_true(EVP_CipherInit_ex2(x, c, key, iv, dec ? 0 : 1, NULL));
    EVP_CIPHER_CTX_set_padding(x, pad);
    assert_true(EVP_CipherUpdate(x, out, &l1, in, (int)len));
    assert_true(EVP_CipherFinal_ex(x, out + l1, &l2));
    EVP_CIPHER_CTX_free(x);
    EVP_CIPHER_free(c);
    return (size_t)(l1 + l2);
}

static void diff_cipher(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE mt,
                        CK_KEY_TYPE kt, size_t key_len, const char *evp,
                        bool pad, bool block)
{
    uint8_t key[32], iv[16];
    gmpc_random(key, sizeof key);
    gmpc_random(iv, sizeof iv);
    CK_OBJECT_HANDLE k = import_key(s, kt, key, key_len, false, true);
    CK_AES_CTR_PARAMS ctr = {128, {0}};
    memcpy(ctr.cb, iv, 16);
    bool is_ctr = mt == CKM_AES_CTR || mt == CKM_SM4_CTR;
    CK_MECHANISM m = {mt, is_ctr ? (void *)&ctr : iv,
                      is_ctr ? sizeof ctr : 16};
    if (mt == CKM_AES_ECB || mt == CKM_SM4_ECB)
        m.pParameter = NULL, m.ulParameterLen = 0;
    size_t len = 1 + gmpt_rand() % (6u << 20);
    if (block && !pad)
        len = (len + 15) & ~(size_t)15;
    uint8_t *in = gmpt_random_bytes(len), *ref = malloc(len + 32),
            *got = malloc(len + 32), *back = malloc(len + 32);
    size_t rn = evp_ref(evp, false, key, iv, in, len, ref, pad);
    assert_int_equal(F->C_EncryptInit(s, &m, k), CKR_OK);
    size_t gn = crypt_parts(s, false, in, len, got);
    assert_int_equal(gn, rn);
    assert_memory_equal(got, ref, rn);
    assert_int_equal(F->C_DecryptInit(s, &m, k), CKR_OK);
    size_t bn = crypt_parts(s, true, got, gn, back);
    assert_int_equal(bn, len);
    assert_memory_equal(back, in, len);
    /* and single-part, decrypting with libcrypto */
    CK_ULONG n = len + 32;
    assert_int_equal(F->C_EncryptInit(s, &m, k), CKR_OK);
    assert_int_equal(F->C_Encrypt(s, in, len, got, &n), CKR_OK);
    assert_int_equal(evp_ref(evp, true, key, iv, got, n, back, pad), len);
    assert_memory_equal(back, in, len);
    assert_int_equal(F->C_DestroyObject(s, k), CKR_OK);
    free(in), free(ref), free(got), free(back);
}

/* SM4-MAC over megabytes: a small update, then one over the module's
 * 1 MB scratch chunk, then the rest; equal to the last block of
 * libcrypto's SM4-CBC over the zero-padded data. */
static void mac_multipart(CK_SESSION_HANDLE s)
{
    uint8_t key[16], zero[16] = {0}, mac[16];
    gmpc_random(key, sizeof key);
    size_t len = (3u << 20) + gmpt_rand() % 4096, padded = (len + 15) & ~15ul;
    uint8_t *in = gmpt_random_bytes(padded), *ct = malloc(padded);
    memset(in + len, 0, padded - len);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0;
    assert_true(EVP_EncryptInit_ex2(c, EVP_sm4_cbc(), key, zero, NULL));
    EVP_CIPHER_CTX_set_padding(c, 0);
    assert_true(EVP_EncryptUpdate(c, ct, &l, in, (int)padded));
    EVP_CIPHER_CTX_free(c);
    CK_OBJECT_HANDLE k = import_key(s, CKK_SM4, key, 16, false, false);
    CK_MECHANISM m = {CKM_SM4_MAC, NULL, 0};
    size_t first = 20, second = (1u << 20) + 4097;
    assert_int_equal(F->C_SignInit(s, &m, k), CKR_OK);
    assert_int_equal(F->C_SignUpdate(s, in, first), CKR_OK);
    assert_int_equal(F->C_SignUpdate(s, in + first, second), CKR_OK);
    assert_int_equal(F->C_SignUpdate(s, in + first + second,
                                     len - first - second),
                     CKR_OK);
    CK_ULONG n = sizeof mac;
    assert_int_equal(F->C_SignFinal(s, mac, &n), CKR_OK);
    assert_int_equal(n, 16);
    assert_memory_equal(mac, ct + padded - 16, 16);
    free(in);
    free(ct);
}

static void test_multipart(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_rw(0);
    diff_cipher(s, CKM_SM4_CBC_PAD, CKK_SM4, 16, "SM4-CBC", true, true);
    diff_cipher(s, CKM_SM4_CBC, CKK_SM4, 16, "SM4-CBC", false, true);
    diff_cipher(s, CKM_SM4_ECB, CKK_SM4, 16, "SM4-ECB", false, true);
    diff_cipher(s, CKM_SM4_CTR, CKK_SM4, 16, "SM4-CTR", false, false);
    diff_cipher(s, CKM_AES_CBC_PAD, CKK_AES, 32, "AES-256-CBC", true, true);
    diff_cipher(s, CKM_AES_CTR, CKK_AES, 24, "AES-192-CTR", false, false);
    diff_cipher(s, CKM_AES_ECB, CKK_AES, 16, "AES-128-ECB", false, true);
    /* digests: multi-part at random splits equal a one-shot libcrypto */
    static const struct {
        CK_MECHANISM_TYPE m;
        const char *md;
    } d[] = {{CKM_SM3, "SM3"}, {CKM_SHA384, "SHA384"}};
    for (size_t i = 0; i < 2; i++) {
        size_t len = gmpt_rand() % (5u << 20);
        uint8_t *in = gmpt_random_bytes(len), ref[64], got[64];
        unsigned rn = 0;
        EVP_MD *md = EVP_MD_fetch(NULL, d[i].md, NULL);
        assert_true(EVP_Digest(in, len, ref, &rn, md, NULL));
        EVP_MD_free(md);
        CK_MECHANISM m = {d[i].m, NULL, 0};
        assert_int_equal(F->C_DigestInit(s, &m), CKR_OK);
        for (size_t off = 0; off < len;) {
            size_t part = gmpt_rand() % (1u << 19);
            part = part > len - off ? len - off : part;
            assert_int_equal(F->C_DigestUpdate(s, in + off, part), CKR_OK);
            off += part;
        }
        CK_ULONG n = sizeof got;
        assert_int_equal(F->C_DigestFinal(s, got, &n), CKR_OK);
        assert_int_equal(n, rn);
        assert_memory_equal(got, ref, rn);
        free(in);
    }
    mac_multipart(s);
    assert_int_equal(F->C_CloseSession(s), CKR_OK);
}

static void test_gcm(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_rw(0);
    uint8_t key[16], iv[12], aad[20], tag[16];
    gmpc_random(key, sizeof key);
    gmpc_random(iv, sizeof iv);
    gmpc_random(aad, sizeof aad);
    CK_OBJECT_HANDLE k = import_key(s, CKK_AES, key, 16, false, false);
    CK_GCM_PARAMS_V3 gp = {iv, 12, 96, aad, sizeof aad, 128};
    CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof gp};
    size_t len = 1 + gmpt_rand() % (3u << 20);
    uint8_t *in = gmpt_random_bytes(len), *ct = malloc(len + 16),
            *ref = malloc(len), *back = malloc(len + 16);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int l = 0;
    assert_true(EVP_EncryptInit_ex2(x, EVP_aes_128_gcm(), key, iv, NULL));
    assert_true(EVP_EncryptUpdate(x, NULL, &l, aad, sizeof aad));
    assert_true(EVP_EncryptUpdate(x, ref, &l, in, (int)len));
    assert_true(EVP_EncryptFinal_ex(x, ref + l, &l));
    assert_true(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, tag));
    EVP_CIPHER_CTX_free(x);
    assert_int_equal(F->C_EncryptInit(s, &m, k), CKR_OK);
    size_t n = crypt_parts(s, false, in, len, ct);
    assert_int_equal(n, len + 16);
    assert_memory_equal(ct, ref, len);
    assert_memory_equal(ct + len, tag, 16);
    assert_int_equal(F->C_DecryptInit(s, &m, k), CKR_OK);
    assert_int_equal(crypt_parts(s, true, ct, n, back), len);
    assert_memory_equal(back, in, len);
    /* a changed tag: no plaintext, the AEAD error */
    ct[len + 3] ^= 0x40;
    CK_ULONG bn = len + 16;
    assert_int_equal(F->C_DecryptInit(s, &m, k), CKR_OK);
    assert_int_equal(F->C_Decrypt(s, ct, n, back, &bn),
                     CKR_AEAD_DECRYPT_FAILED);
    assert_int_equal(F->C_DecryptUpdate(s, ct, n, back, &bn),
                     CKR_OPERATION_NOT_INITIALIZED);
    free(in), free(ct), free(ref), free(back);
    assert_int_equal(F->C_CloseSession(s), CKR_OK);
}

/* ---- the length-query convention, order, mismatches ---- */

static void test_lengths_and_order(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_rw(0);
    uint8_t key[16], iv[16] = {0}, in[100], out[128], back[128];
    gmpc_random(key, sizeof key);
    gmpc_random(in, sizeof in);
    CK_OBJECT_HANDLE k = import_key(s, CKK_SM4, key, 16, false, false);
    CK_MECHANISM pad = {CKM_SM4_CBC_PAD, iv, 16};
    CK_ULONG n = 0;
    assert_int_equal(F->C_EncryptInit(s, &pad, k), CKR_OK);
    assert_int_equal(F->C_EncryptInit(s, &pad, k), CKR_OPERATION_ACTIVE);
    assert_int_equal(F->C_Encrypt(s, in, 100, NULL, &n), CKR_OK);
    assert_int_equal(n, 112);
    n = 111;
    assert_int_equal(F->C_Encrypt(s, in, 100, out, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 112);
    assert_int_equal(F->C_Encrypt(s, in, 100, out, &n), CKR_OK); /* still on */
    assert_int_equal(n, 112);
    assert_int_equal(F->C_Encrypt(s, in, 100, out, &n),
                     CKR_OPERATION_NOT_INITIALIZED);
    /* empty updates (NULL data) are no-ops for every kind of operation */
    CK_MECHANISM ctr_m = {CKM_SM4_CTR, NULL, 0}, mac_m = {CKM_SM4_MAC, NULL, 0};
    CK_AES_CTR_PARAMS cp = {128, {0}};
    uint8_t scratch[32];
    ctr_m.pParameter = &cp;
    ctr_m.ulParameterLen = sizeof cp;
    CK_MECHANISM *empties[] = {&pad, &ctr_m};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(F->C_EncryptInit(s, empties[i], k), CKR_OK);
        n = sizeof scratch;
        assert_int_equal(F->C_EncryptUpdate(s, NULL, 0, scratch, &n), CKR_OK);
        assert_int_equal(n, 0);
        n = sizeof scratch;
        assert_int_equal(F->C_EncryptFinal(s, scratch, &n), CKR_OK);
    }
    assert_int_equal(F->C_SignInit(s, &mac_m, k), CKR_OK);
    assert_int_equal(F->C_SignUpdate(s, NULL, 0), CKR_OK);
    n = sizeof scratch;
    assert_int_equal(F->C_SignFinal(s, scratch, &n), CKR_OK);
    assert_int_equal(n, 16);
    /* CBC_PAD decryption: the bound, then an exact buffer smaller than it */
    assert_int_equal(F->C_DecryptInit(s, &pad, k), CKR_OK);
    CK_ULONG bn = 0;
    assert_int_equal(F->C_Decrypt(s, out, 112, NULL, &bn), CKR_OK);
    assert_int_equal(bn, 112);
    bn = 99;
    assert_int_equal(F->C_Decrypt(s, out, 112, back, &bn),
                     CKR_BUFFER_TOO_SMALL);
    assert_int_equal(bn, 100);
    assert_int_equal(F->C_Decrypt(s, out, 112, back, &bn), CKR_OK);
    assert_int_equal(bn, 100);
    assert_memory_equal(back, in, 100);
    /* multi-part: an Update's length query consumes nothing */
    assert_int_equal(F->C_EncryptInit(s, &pad, k), CKR_OK);
    n = 0;
    assert_int_equal(F->C_EncryptUpdate(s, in, 40, NULL, &n), CKR_OK);
    assert_int_equal(n, 32);
    n = 16;
    assert_int_equal(F->C_EncryptUpdate(s, in, 40, out, &n),
                     CKR_BUFFER_TOO_SMALL);
    n = sizeof out;
    assert_int_equal(F->C_EncryptUpdate(s, in, 40, out, &n), CKR_OK);
    assert_int_equal(n, 32);
    assert_int_equal(F->C_Encrypt(s, in, 10, out, &n), CKR_OPERATION_ACTIVE);
    CK_ULONG m = sizeof out - 32;
    assert_int_equal(F->C_EncryptUpdate(s, in + 40, 60, out + 32, &m), CKR_OK);
    CK_ULONG f = 0;
    assert_int_equal(F->C_EncryptFinal(s, NULL, &f), CKR_OK);
    assert_int_equal(f, 16);
    f = 16;
    assert_int_equal(F->C_EncryptFinal(s, out + 32 + m, &f), CKR_OK);
    assert_int_equal(32 + m + f, 112);
    /* out of order */
    assert_int_equal(F->C_EncryptUpdate(s, in, 16, out, &n),
                     CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(F->C_DigestFinal(s, out, &n),
                     CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(F->C_SignFinal(s, out, &n), CKR_OPERATION_NOT_INITIALIZED);
    CK_OBJECT_HANDLE hs[2];
    assert_int_equal(F->C_FindObjects(s, hs, 2, &n),
                     CKR_OPERATION_NOT_INITIALIZED);
    assert_int_equal(F->C_FindObjectsFinal(s), CKR_OPERATION_NOT_INITIALIZED);
    /* unaligned data with a mode that does not pad ends the operation */
    CK_MECHANISM cbc = {CKM_SM4_CBC, iv, 16};
    n = sizeof out;
    assert_int_equal(F->C_EncryptInit(s, &cbc, k), CKR_OK);
    assert_int_equal(F->C_Encrypt(s, in, 20, out, &n), CKR_DATA_LEN_RANGE);
    assert_int_equal(F->C_EncryptInit(s, &cbc, k), CKR_OK);
    assert_int_equal(F->C_EncryptUpdate(s, in, 20, out, &n), CKR_OK);
    n = sizeof out;
    assert_int_equal(F->C_EncryptFinal(s, out, &n), CKR_DATA_LEN_RANGE);
    /* mismatches */
    CK_MECHANISM aes = {CKM_AES_CBC, iv, 16}, sha = {CKM_SHA256, NULL, 0};
    CK_MECHANISM badiv = {CKM_SM4_CBC, iv, 8};
    assert_int_equal(F->C_EncryptInit(s, &aes, k), CKR_KEY_TYPE_INCONSISTENT);
    assert_int_equal(F->C_EncryptInit(s, &sha, k), CKR_MECHANISM_INVALID);
    assert_int_equal(F->C_EncryptInit(s, &badiv, k),
                     CKR_MECHANISM_PARAM_INVALID);
    assert_int_equal(F->C_EncryptInit(s, &cbc, 0xfffffff0),
                     CKR_KEY_HANDLE_INVALID);
    assert_int_equal(F->C_EncryptInit(s, NULL, k), CKR_ARGUMENTS_BAD);
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE noenc = {CKA_ENCRYPT, &no, sizeof no};
    assert_int_equal(F->C_SetAttributeValue(s, k, &noenc, 1), CKR_OK);
    assert_int_equal(F->C_EncryptInit(s, &cbc, k),
                     CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert_int_equal(F->C_DecryptInit(s, &cbc, k), CKR_OK);
    assert_int_equal(F->C_SessionCancel(s, CKF_DECRYPT), CKR_OK);
    assert_int_equal(F->C_DecryptUpdate(s, in, 16, out, &n),
                     CKR_OPERATION_NOT_INITIALIZED);
    /* random */
    uint8_t r1[1000] = {0}, r2[1000] = {0};
    assert_int_equal(F->C_GenerateRandom(s, r1, sizeof r1), CKR_OK);
    assert_int_equal(F->C_GenerateRandom(s, r2, sizeof r2), CKR_OK);
    assert_memory_not_equal(r1, r2, sizeof r1);
    assert_int_equal(F->C_SeedRandom(s, r1, 8), CKR_RANDOM_SEED_NOT_SUPPORTED);
    assert_int_equal(F->C_GenerateRandom(s, NULL, 8), CKR_ARGUMENTS_BAD);
    assert_int_equal(F->C_GenerateRandom(0x7777, r1, 8),
                     CKR_SESSION_HANDLE_INVALID);
    assert_int_equal(F->C_CloseSession(s), CKR_OK);
}

/* ---- objects ---- */

static CK_ULONG find(CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG n,
                     CK_OBJECT_HANDLE *out, CK_ULONG max)
{
    CK_ULONG got = 0;
    assert_int_equal(F->C_FindObjectsInit(s, t, n), CKR_OK);
    assert_int_equal(F->C_FindObjects(s, out, max, &got), CKR_OK);
    assert_int_equal(F->C_FindObjectsFinal(s), CKR_OK);
    return got;
}

static CK_OBJECT_HANDLE gen_key(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE mt,
                                CK_ULONG len, bool token, const char *label,
                                CK_RV want)
{
    CK_MECHANISM m = {mt, NULL, 0};
    CK_BBOOL t = CK_TRUE, f = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_TOKEN, token ? &t : &f, sizeof t},
        {CKA_SENSITIVE, &t, sizeof t},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, "\x01\x02", 2},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    assert_int_equal(F->C_GenerateKey(s, &m, tmpl, 5, &h), want);
    return h;
}

static void test_objects(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_rw(0), ro;
    assert_int_equal(F->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro),
                     CKR_OK);
    uint8_t v[32];
    gmpc_random(v, sizeof v);
    /* private objects need the user */
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ATTRIBUTE priv[] = {{CKA_CLASS, &cls, sizeof cls},
                           {CKA_KEY_TYPE, &kt, sizeof kt},
                           {CKA_VALUE, v, 32}};
    CK_OBJECT_HANDLE h;
    assert_int_equal(F->C_CreateObject(s, priv, 3, &h),
                     CKR_USER_NOT_LOGGED_IN);
    assert_int_equal(F->C_CreateObject(s, priv, 2, &h),
                     CKR_TEMPLATE_INCOMPLETE);
    gen_key(ro, CKM_AES_KEY_GEN, 32, true, "ro", CKR_SESSION_READ_ONLY);
    login(s);
    gen_key(s, CKM_AES_KEY_GEN, 20, false, "bad", CKR_ATTRIBUTE_VALUE_INVALID);
    gen_key(s, CKM_AES_KEY_GEN, 16, false, "x", CKR_OK);
    CK_OBJECT_HANDLE sk = gen_key(s, CKM_SM4_KEY_GEN, 16, false, "p11-sm4",
                                  CKR_OK);
    /* a sensitive key's value stays in the pool */
    uint8_t buf[64];
    CK_ATTRIBUTE val = {CKA_VALUE, buf, sizeof buf};
    assert_int_equal(F->C_GetAttributeValue(s, sk, &val, 1),
                     CKR_ATTRIBUTE_SENSITIVE);
    assert_int_equal(val.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    CK_BBOOL b = 0, f = CK_FALSE;
    CK_ULONG vl = 0;
    CK_ATTRIBUTE get[] = {{CKA_ALWAYS_SENSITIVE, &b, sizeof b},
                          {CKA_VALUE_LEN, &vl, sizeof vl},
                          {CKA_LABEL, NULL, 0}};
    assert_int_equal(F->C_GetAttributeValue(s, sk, get, 3), CKR_OK);
    assert_true(b);
    assert_int_equal(vl, 16);
    assert_int_equal(get[2].ulValueLen, 7);
    CK_ATTRIBUTE unsens = {CKA_SENSITIVE, &f, sizeof f};
    assert_int_equal(F->C_SetAttributeValue(s, sk, &unsens, 1),
                     CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE bogus = {CKA_MODULUS, buf, 4};
    assert_int_equal(F->C_GetAttributeValue(s, sk, &bogus, 1),
                     CKR_ATTRIBUTE_TYPE_INVALID);
    /* a readable key: its value, then made sensitive, then not readable */
    CK_OBJECT_HANDLE ak = import_key(s, CKK_AES, v, 32, true, false);
    val.ulValueLen = sizeof buf;
    assert_int_equal(F->C_GetAttributeValue(s, ak, &val, 1), CKR_OK);
    assert_int_equal(val.ulValueLen, 32);
    assert_memory_equal(buf, v, 32);
    CK_BBOOL t = CK_TRUE;
    CK_ATTRIBUTE sens = {CKA_SENSITIVE, &t, sizeof t};
    assert_int_equal(F->C_SetAttributeValue(s, ak, &sens, 1), CKR_OK);
    val.ulValueLen = sizeof buf;
    assert_int_equal(F->C_GetAttributeValue(s, ak, &val, 1),
                     CKR_ATTRIBUTE_SENSITIVE);
    /* find by label and by class+id */
    CK_OBJECT_HANDLE found[8];
    CK_ATTRIBUTE bylabel = {CKA_LABEL, "p11-sm4", 7};
    assert_int_equal(find(s, &bylabel, 1, found, 8), 1);
    assert_int_equal(found[0], sk);
    CK_ATTRIBUTE byid[] = {{CKA_CLASS, &cls, sizeof cls},
                           {CKA_ID, "\x01\x02", 2}};
    assert_true(find(s, byid, 2, found, 8) >= 2);
    /* after logout the private keys are invisible */
    assert_int_equal(F->C_Logout(s), CKR_OK);
    assert_int_equal(find(s, &bylabel, 1, found, 8), 0);
    assert_int_equal(F->C_GetAttributeValue(s, sk, get, 3),
                     CKR_OBJECT_HANDLE_INVALID);
    login(s);
    /* a session object dies with its session */
    CK_SESSION_HANDLE s2 = open_rw(0);
    CK_OBJECT_HANDLE tmp = import_key(s2, CKK_SM4, v, 16, false, false);
    assert_int_equal(F->C_GetAttributeValue(s, tmp, get + 1, 1), CKR_OK);
    assert_int_equal(F->C_CloseSession(s2), CKR_OK);
    assert_int_equal(F->C_GetAttributeValue(s, tmp, get + 1, 1),
                     CKR_OBJECT_HANDLE_INVALID);
    uint8_t iv[16] = {0};
    CK_MECHANISM ecb = {CKM_SM4_ECB, NULL, 0};
    assert_int_equal(F->C_EncryptInit(s, &ecb, tmp), CKR_KEY_HANDLE_INVALID);
    /* another tenant's key is not a handle here */
    CK_SESSION_HANDLE b2 = open_rw(1);
    assert_int_equal(F->C_Login(b2, CKU_USER, (CK_UTF8CHAR_PTR) "bobs-pin", 8),
                     CKR_OK);
    CK_OBJECT_HANDLE bk = import_key(b2, CKK_SM4, v, 16, true, false);
    CK_MECHANISM cbc = {CKM_SM4_CBC, iv, 16};
    assert_int_equal(F->C_EncryptInit(s, &cbc, bk), CKR_KEY_HANDLE_INVALID);
    assert_int_equal(F->C_DestroyObject(s, bk), CKR_OBJECT_HANDLE_INVALID);
    assert_int_equal(F->C_DestroyObject(b2, bk), CKR_OK);
    assert_int_equal(F->C_DestroyObject(b2, bk), CKR_OBJECT_HANDLE_INVALID);
    assert_int_equal(F->C_CloseSession(b2), CKR_OK);
    assert_int_equal(F->C_CloseSession(ro), CKR_OK);
    assert_int_equal(F->C_CloseSession(s), CKR_OK);
}

/* A token key outlives a daemon restart and computes the same. */
static void test_token_objects_persist(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_rw(0);
    login(s);
    CK_OBJECT_HANDLE k = gen_key(s, CKM_SM4_KEY_GEN, 16, true, "persist",
                                 CKR_OK);
    uint8_t in[64], c1[64], c2[64];
    memset(in, 7, sizeof in);
    CK_MECHANISM ecb = {CKM_SM4_ECB, NULL, 0};
    CK_ULONG n = sizeof c1;
    assert_int_equal(F->C_EncryptInit(s, &ecb, k), CKR_OK);
    assert_int_equal(F->C_Encrypt(s, in, 64, c1, &n), CKR_OK);
    assert_int_equal(F->C_Finalize(NULL), CKR_OK);
    gmpt_restart(g_d);
    assert_int_equal(F->C_Initialize(NULL), CKR_OK);
    s = open_rw(0);
    login(s);
    CK_OBJECT_HANDLE found[4];
    CK_ATTRIBUTE bylabel = {CKA_LABEL, "persist", 7};
    assert_int_equal(find(s, &bylabel, 1, found, 4), 1);
    assert_int_equal(found[0], k);
    n = sizeof c2;
    assert_int_equal(F->C_EncryptInit(s, &ecb, k), CKR_OK);
    assert_int_equal(F->C_Encrypt(s, in, 64, c2, &n), CKR_OK);
    assert_memory_equal(c1, c2, 64);
    assert_int_equal(F->C_DestroyObject(s, k), CKR_OK);
    assert_int_equal(F->C_CloseSession(s), CKR_OK);
}

/* A daemon restart under a live module: the login is repeated on the new
 * pool session, so the user's private token key works on; once the PIN
 * has changed meanwhile, the repeat fails and the session is public. */
static void test_login_survives_restart(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_rw(0);
    login(s);
    CK_OBJECT_HANDLE k = gen_key(s, CKM_SM4_KEY_GEN, 16, true, "relogin",
                                 CKR_OK);
    CK_MECHANISM ecb = {CKM_SM4_ECB, NULL, 0};
    uint8_t in[32] = {1}, c1[32], c2[32];
    CK_ULONG n = sizeof c1;
    assert_int_equal(F->C_EncryptInit(s, &ecb, k), CKR_OK);
    assert_int_equal(F->C_Encrypt(s, in, 32, c1, &n), CKR_OK);
    gmpt_restart(g_d);
    CK_SESSION_INFO si;
    assert_int_equal(F->C_GetSessionInfo(s, &si), CKR_OK);
    assert_int_equal(si.state, CKS_RW_USER_FUNCTIONS);
    n = sizeof c2;
    assert_int_equal(F->C_EncryptInit(s, &ecb, k), CKR_OK);
    assert_int_equal(F->C_Encrypt(s, in, 32, c2, &n), CKR_OK);
    assert_memory_equal(c1, c2, 32);
    /* the operator changes the PIN, then the daemon restarts */
    set_pin("default", "other-pin");
    gmpt_restart(g_d);
    assert_int_equal(F->C_EncryptInit(s, &ecb, k), CKR_KEY_HANDLE_INVALID);
    assert_int_equal(F->C_GetSessionInfo(s, &si), CKR_OK);
    assert_int_equal(si.state, CKS_RW_PUBLIC_SESSION);
    assert_int_equal(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "other-pin", 9),
                     CKR_OK);
    assert_int_equal(F->C_DestroyObject(s, k), CKR_OK);
    assert_int_equal(F->C_CloseSession(s), CKR_OK);
    set_pin("default", PIN);
}

/* Ten wrong PINs in a row lock the token until the operator sets a new
 * PIN; the count survives a new module instance (it is in the pool). */
static void test_pin_lockout(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_rw(1);
    CK_TOKEN_INFO ti;
    for (int i = 0; i < 9; i++)
        assert_int_equal(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "nope", 4),
                         CKR_PIN_INCORRECT);
    assert_int_equal(F->C_GetTokenInfo(1, &ti), CKR_OK);
    assert_true(ti.flags & CKF_USER_PIN_FINAL_TRY);
    assert_int_equal(F->C_Finalize(NULL), CKR_OK);
    assert_int_equal(F->C_Initialize(NULL), CKR_OK);
    s = open_rw(1);
    assert_int_equal(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "nope", 4),
                     CKR_PIN_INCORRECT);
    assert_int_equal(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "bobs-pin", 8),
                     CKR_PIN_LOCKED); /* even the right one now */
    assert_int_equal(F->C_GetTokenInfo(1, &ti), CKR_OK);
    assert_true(ti.flags & CKF_USER_PIN_LOCKED);
    set_pin("bob", "bobs-pin");
    assert_int_equal(F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "bobs-pin", 8),
                     CKR_OK);
    assert_int_equal(F->C_CloseSession(s), CKR_OK);
}

/* ---- threads and fork ---- */

static void *worker(void *arg)
{
    CK_SLOT_ID slot = (CK_SLOT_ID)(uintptr_t)arg;
    CK_SESSION_HANDLE s;
    if (F->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
        return (void *)1;
    CK_MECHANISM m = {CKM_SM3, NULL, 0};
    uint8_t data[70000], out[32], ref[32];
    unsigned rn = 0;
    memset(data, (int)slot, sizeof data);
    EVP_Digest(data, sizeof data, ref, &rn, EVP_sm3(), NULL);
    uintptr_t bad = 0;
    for (int i = 0; i < 20; i++) {
        CK_ULONG n = sizeof out;
        bad |= F->C_DigestInit(s, &m) != CKR_OK;
        bad |= F->C_Digest(s, data, sizeof data, out, &n) != CKR_OK;
        bad |= memcmp(out, ref, 32) != 0;
    }
    bad |= F->C_CloseSession(s) != CKR_OK;
    return (void *)bad;
}

static void run_threads(void)
{
    pthread_t th[8];
    for (uintptr_t i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker,
                                        (void *)(i % 2)), 0);
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
}

static void test_threads(void **state)
{
    (void)state;
    run_threads(); /* OS locks */
    assert_int_equal(F->C_Finalize(NULL), CKR_OK);
    CK_C_INITIALIZE_ARGS cb = {.CreateMutex = cb_create,
                               .DestroyMutex = cb_destroy,
                               .LockMutex = cb_lock,
                               .UnlockMutex = cb_unlock};
    assert_int_equal(F->C_Initialize(&cb), CKR_OK);
    g_cb_locks = 0;
    run_threads();
    assert_true(g_cb_locks > 0); /* the application's mutexes were used */
    assert_int_equal(F->C_Finalize(NULL), CKR_OK);
    CK_C_INITIALIZE_ARGS nothreads = {.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS};
    assert_int_equal(F->C_Initialize(&nothreads), CKR_NEED_TO_CREATE_THREADS);
    assert_int_equal(F->C_Initialize(NULL), CKR_OK);
}

static int child_checks(void)
{
    CK_INFO info;
    CK_SESSION_HANDLE s;
    if (F->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED)
        return 2;
    if (F->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s) !=
        CKR_CRYPTOKI_NOT_INITIALIZED)
        return 3;
    if (F->C_Initialize(NULL) != CKR_OK)
        return 4;
    if (F->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
        return 5;
    uint8_t r[16];
    if (F->C_GenerateRandom(s, r, sizeof r) != CKR_OK)
        return 6;
    return F->C_Finalize(NULL) == CKR_OK ? 0 : 7;
}

static void test_fork(void **state)
{
    (void)state;
    CK_SESSION_HANDLE s = open_rw(0);
    uint8_t r[16];
    assert_int_equal(F->C_GenerateRandom(s, r, sizeof r), CKR_OK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_checks());
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* the parent's session is undisturbed */
    assert_int_equal(F->C_GenerateRandom(s, r, sizeof r), CKR_OK);
    assert_int_equal(F->C_CloseSession(s), CKR_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interfaces),
        cmocka_unit_test(test_initialize),
        cmocka_unit_test(test_initialize_race),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_login),
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_gcm),
        cmocka_unit_test(test_lengths_and_order),
        cmocka_unit_test(test_objects),
        cmocka_unit_test(test_token_objects_persist),
        cmocka_unit_test(test_login_survives_restart),
        cmocka_unit_test(test_pin_lockout),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_fork),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
