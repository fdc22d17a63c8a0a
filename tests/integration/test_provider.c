/* The gmpool provider through EVP against a live daemon: OpenSSL's SM3/SM4
 * evp test vectors and GB/T examples, differential tests against the
 * default provider with random lengths and split points (in-process below
 * the threshold, pooled above it, and everything pooled), HMAC-SM3,
 * SM4-GCM, parameters, dupctx, threads, fork, and the daemon going away. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "harness.h"
#include "util.h"

static gmpt_daemon *g_d;
static OSSL_LIB_CTX *g_hybrid;   /* default threshold: local, then pooled */
static OSSL_LIB_CTX *g_pooled;   /* threshold 0: everything in the pool */
static OSSL_LIB_CTX *g_ref;      /* the default provider alone */
static OSSL_PROVIDER *g_provs[5];
static int g_n_provs;

static size_t unhex(const char *h, uint8_t **out)
{
    size_t n = strlen(h) / 2;
    *out = malloc(n ? n : 1);
    assert_int_equal(gmpc_hex_decode(h, *out, n), (int)n);
    return n;
}

static OSSL_LIB_CTX *provider_ctx(const char *threshold)
{
    OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();
    assert_non_null(lc);
    setenv("GMPOOL_LOCAL_THRESHOLD", threshold, 1);
    assert_true(OSSL_PROVIDER_set_default_search_path(
        lc, getenv("GMPOOL_PROVIDER_DIR")));
    assert_non_null(g_provs[g_n_provs++] = OSSL_PROVIDER_load(lc, "gmpool"));
    assert_non_null(g_provs[g_n_provs++] = OSSL_PROVIDER_load(lc, "default"));
    unsetenv("GMPOOL_LOCAL_THRESHOLD");
    return lc;
}

static int setup(void **state)
{
    (void)state;
    gmpt_seed(0x2545F4914F6CDD1Dull);
    g_d = gmpt_start(NULL);
    setenv("GMPOOL_SERVER", g_d->sock, 1);
    setenv("GMPOOL_CREDENTIALS", g_d->creds, 1);
    g_hybrid = provider_ctx("65536");
    g_pooled = provider_ctx("0");
    g_ref = OSSL_LIB_CTX_new();
    assert_non_null(g_provs[g_n_provs++] = OSSL_PROVIDER_load(g_ref, "default"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < g_n_provs; i++)
        OSSL_PROVIDER_unload(g_provs[i]); /* runs the provider's teardown */
    OSSL_LIB_CTX_free(g_hybrid);
    OSSL_LIB_CTX_free(g_pooled);
    OSSL_LIB_CTX_free(g_ref);
    gmpt_stop(g_d);
    return 0;
}

/* ---- helpers over EVP ---- */

static void digest(OSSL_LIB_CTX *lc, const char *props, const uint8_t *in,
                   size_t len, uint8_t md[32], bool split)
{
    EVP_MD *m = EVP_MD_fetch(lc, "SM3", props);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_non_null(m);
    assert_true(EVP_DigestInit_ex2(c, m, NULL));
    for (size_t off = 0; off < len;) {
        size_t n = split ? 1 + (size_t)(gmpt_rand() % (len - off)) : len - off;
        assert_true(EVP_DigestUpdate(c, in + off, n));
        off += n;
    }
    unsigned int l = 0;
    assert_true(EVP_DigestFinal_ex(c, md, &l));
    assert_int_equal(l, 32);
    EVP_MD_CTX_free(c);
    EVP_MD_free(m);
}

static void hmac(OSSL_LIB_CTX *lc, const char *props, const uint8_t *key,
                 size_t klen, const uint8_t *in, size_t len, uint8_t out[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(lc, "HMAC", props);
    EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string("digest", "SM3", 0),
                      OSSL_PARAM_construct_end()};
    size_t ol = 0;
    assert_non_null(c);
    assert_true(EVP_MAC_init(c, key, klen, p));
    for (size_t off = 0; off < len;) {
        size_t n = 1 + (size_t)(gmpt_rand() % (len - off));
        assert_true(EVP_MAC_update(c, in + off, n));
        off += n;
    }
    assert_true(EVP_MAC_final(c, out, &ol, 32));
    assert_int_equal(ol, 32);
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(mac);
}

/* Runs a cipher with random update sizes; returns the output length, or
 * -1 when final refuses (bad padding / length). */
static long cipher(OSSL_LIB_CTX *lc, const char *props, const char *name,
                   int enc, int pad, const uint8_t *key, const uint8_t *iv,
                   const uint8_t *in, size_t len, uint8_t *out)
{
    EVP_CIPHER *ci = EVP_CIPHER_fetch(lc, name, props);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_non_null(ci);
    assert_true(EVP_CipherInit_ex2(c, ci, key, iv, enc, NULL));
    EVP_CIPHER_CTX_set_padding(c, pad);
    size_t off = 0, outl = 0;
    while (off < len) {
        size_t n = 1 + (size_t)(gmpt_rand() % (len - off));
        if (gmpt_rand() % 3 == 0)
            n = len - off < 65536 ? len - off : 65536; /* openssl enc's size */
        int k = 0;
        assert_true(EVP_CipherUpdate(c, out + outl, &k, in + off, (int)n));
        off += n;
        outl += (size_t)k;
    }
    int k = 0;
    long r = EVP_CipherFinal_ex(c, out + outl, &k) ? (long)(outl + (size_t)k)
                                                    : -1;
    EVP_CIPHER_CTX_free(c);
    EVP_CIPHER_free(ci);
    return r;
}

/* ---- known answers ---- */

static const struct {
    const char *in, *out;
} g_sm3[] = {
    {"616263",
     "66C7F0F462EEEDD9D1F2D46BDC10E4E24167C4875CF2F7A2297DA02B8F4BA8E0"},
    {"6162636461626364616263646162636461626364616263646162636461626364"
     "6162636461626364616263646162636461626364616263646162636461626364",
     "DEBE9FF92275B8A138604889C18E5A4D6FDB70E5387E5765293DCBA39C0C5732"},
    {"0090414C494345313233405941484F4F2E434F4D787968B4FA32C3FD2417842E73BBFE"
     "FF2F3C848B6831D7E0EC65228B3937E49863E4C6D3B23B0C849CF84241484BFE48F61D"
     "59A5B16BA06E6E12D1DA27C5249A421DEBD61B62EAB6746434EBC3CC315E32220B3BAD"
     "D50BDC4C4E6C147FEDD43D0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1"
     "A85841B9E46E09A20AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04"
     "FF4DF2548A7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798"
     "E857",
     "F4A38489E32B45B6F876E3AC2168CA392362DC8F23459C1D1146FC3DBFB7BC9A"},
};

/* From OpenSSL's test/recipes/30-test_evp_data/evpciph_sm4.txt */
static const struct {
    const char *name, *key, *iv, *pt, *ct;
} g_sm4[] = {
    {"SM4-ECB", "0123456789ABCDEFFEDCBA9876543210", NULL,
     "0123456789ABCDEFFEDCBA9876543210", "681EDF34D206965E86B3E94F536E4246"},
    {"SM4-CBC", "0123456789ABCDEFFEDCBA9876543210",
     "0123456789ABCDEFFEDCBA9876543210",
     "0123456789ABCDEFFEDCBA98765432100123456789ABCDEFFEDCBA9876543210",
     "2677F46B09C122CC975533105BD4A22AF6125F7275CE552C3A2BBCF533DE8A3B"},
    {"SM4-OFB", "0123456789ABCDEFFEDCBA9876543210",
     "0123456789ABCDEFFEDCBA9876543210",
     "0123456789ABCDEFFEDCBA98765432100123456789ABCDEFFEDCBA9876543210",
     "693D9A535BAD5BB1786F53D7253A7056F2075D28B5235F58D50027E4177D2BCE"},
    {"SM4-CFB", "0123456789ABCDEFFEDCBA9876543210",
     "0123456789ABCDEFFEDCBA9876543210",
     "0123456789ABCDEFFEDCBA98765432100123456789ABCDEFFEDCBA9876543210",
     "693D9A535BAD5BB1786F53D7253A70569ED258A85A0467CC92AAB393DD978995"},
    {"SM4-CTR", "0123456789ABCDEFFEDCBA9876543210",
     "0123456789ABCDEFFEDCBA9876543210",
     "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
     "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
     "C2B4759E78AC3CF43D0852F4E8D5F9FD7256E8A5FCB65A350EE00630912E4449"
     "2A0B17E1B85B060D0FBA612D8A95831638B361FD5FFACD942F081485A83CA35D"},
};

static void kat_vectors(void **state)
{
    (void)state;
    OSSL_LIB_CTX *ctxs[] = {g_hybrid, g_pooled};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < sizeof g_sm3 / sizeof *g_sm3; i++) {
            uint8_t *in, *want, md[32];
            size_t n = unhex(g_sm3[i].in, &in);
            unhex(g_sm3[i].out, &want);
            digest(ctxs[k], "provider=gmpool", in, n, md, true);
            assert_memory_equal(md, want, 32);
            free(in), free(want);
        }
        for (size_t i = 0; i < sizeof g_sm4 / sizeof *g_sm4; i++) {
            uint8_t *key, *iv = NULL, *pt, *ct, out[160];
            unhex(g_sm4[i].key, &key);
            if (g_sm4[i].iv)
                unhex(g_sm4[i].iv, &iv);
            size_t n = unhex(g_sm4[i].pt, &pt);
            unhex(g_sm4[i].ct, &ct);
            assert_int_equal(cipher(ctxs[k], "provider=gmpool", g_sm4[i].name,
                                    1, 0, key, iv, pt, n, out),
                             (long)n);
            assert_memory_equal(out, ct, n);
            assert_int_equal(cipher(ctxs[k], "provider=gmpool", g_sm4[i].name,
                                    0, 0, key, iv, ct, n, out),
                             (long)n);
            assert_memory_equal(out, pt, n);
            free(key), free(iv), free(pt), free(ct);
        }
    }
}

/* GB/T 32907's 1 000 000 rounds, as a CBC chain over zero blocks (see
 * test_pipeline.c), 16 MB through the provider. */
static void kat_million(void **state)
{
    (void)state;
    const size_t len = 1000000u * 16;
    uint8_t *key, *want, iv[16] = {0};
    unhex("0123456789ABCDEFFEDCBA9876543210", &key);
    unhex("595298C7C6FD271F0402F804C33D3F66", &want);
    uint8_t *in = calloc(1, len), *out = malloc(len + 16);
    memcpy(in, key, 16);
    assert_int_equal(cipher(g_hybrid, "provider=gmpool", "SM4-CBC", 1, 0, key,
                            iv, in, len, out),
                     (long)len);
    assert_memory_equal(out + len - 16, want, 16);
    free(in), free(out), free(key), free(want);
}

/* ---- differential against the default provider ---- */

static const struct {
    const char *name;
    bool iv;
    int pad;
} g_modes[] = {
    {"SM4-ECB", false, 1}, {"SM4-ECB", false, 0}, {"SM4-CBC", true, 1},
    {"SM4-CBC", true, 0},  {"SM4-CTR", true, 0},  {"SM4-OFB", true, 0},
    {"SM4-CFB", true, 0},
};

static size_t pick_len(int i)
{
    static const size_t edges[] = {0, 1, 15, 16, 17, 65535, 65536, 65537};
    if (i < 8)
        return edges[i];
    return (size_t)(gmpt_rand() % (3u << 20));
}

static void diff_ciphers(void **state)
{
    (void)state;
    for (int i = 0; i < 42; i++) {
        int mi = i % 7;
        OSSL_LIB_CTX *lc = (i / 7) % 2 ? g_pooled : g_hybrid;
        size_t len = i < 16 ? pick_len(i % 8) : pick_len(8);
        bool block = strcmp(g_modes[mi].name, "SM4-ECB") == 0 ||
                     strcmp(g_modes[mi].name, "SM4-CBC") == 0;
        if (block && !g_modes[mi].pad)
            len &= ~(size_t)15; /* no padding: whole blocks only */
        uint8_t *key = gmpt_random_bytes(16), *iv = gmpt_random_bytes(16);
        uint8_t *in = gmpt_random_bytes(len), *a = malloc(len + 32),
                *b = malloc(len + 32), *back = malloc(len + 32);
        const char *n = g_modes[mi].name;
        int pad = g_modes[mi].pad;
        const uint8_t *ivp = g_modes[mi].iv ? iv : NULL;
        long la = cipher(lc, "provider=gmpool", n, 1, pad, key, ivp, in, len, a);
        long lb = cipher(g_ref, NULL, n, 1, pad, key, ivp, in, len, b);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, (size_t)la);
        /* encrypted here, decrypted there, and the other way round */
        assert_int_equal(cipher(g_ref, NULL, n, 0, pad, key, ivp, a, (size_t)la,
                                back),
                         (long)len);
        assert_memory_equal(back, in, len);
        assert_int_equal(cipher(lc, "provider=gmpool", n, 0, pad, key, ivp, b,
                                (size_t)lb, back),
                         (long)len);
        assert_memory_equal(back, in, len);
        free(key), free(iv), free(in), free(a), free(b), free(back);
    }
}

static void diff_digests(void **state)
{
    (void)state;
    for (int i = 0; i < 24; i++) {
        OSSL_LIB_CTX *lc = i % 2 ? g_pooled : g_hybrid;
        size_t len = i < 16 ? pick_len(i % 8) : pick_len(8);
        uint8_t *in = gmpt_random_bytes(len), x[32], y[32];
        digest(lc, "provider=gmpool", in, len, x, true);
        digest(g_ref, NULL, in, len, y, false);
        assert_memory_equal(x, y, 32);
        size_t kl = 1 + (size_t)(gmpt_rand() % 150);
        uint8_t *key = gmpt_random_bytes(kl);
        hmac(lc, "provider=gmpool", key, kl, in, len, x);
        hmac(g_ref, NULL, key, kl, in, len, y);
        assert_memory_equal(x, y, 32);
        free(in), free(key);
    }
}

/* The largest size the issue names, once each way. */
static void diff_64mb(void **state)
{
    (void)state;
    const size_t len = 64u << 20;
    uint8_t *in = gmpt_random_bytes(len), x[32], y[32], key[16] = {7}, iv[16] = {9};
    uint8_t *a = malloc(len + 32), *b = malloc(len + 32);
    digest(g_hybrid, "provider=gmpool", in, len, x, true);
    digest(g_ref, NULL, in, len, y, false);
    assert_memory_equal(x, y, 32);
    long la = cipher(g_hybrid, "provider=gmpool", "SM4-CBC", 1, 1, key, iv, in,
                     len, a);
    long lb = cipher(g_ref, NULL, "SM4-CBC", 1, 1, key, iv, in, len, b);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, (size_t)la);
    free(in), free(a), free(b);
}

/* ---- SM4-GCM: absent from OpenSSL 3.0's default provider ---- */

static void gcm(void **state)
{
    (void)state;
    uint8_t *key, *iv, *aad, *pt, *ct, *tag, out[64], got[16];
    unhex("0123456789abcdeffedcba9876543210", &key);
    unhex("00001234567800000000abcd", &iv);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", &aad);
    unhex("aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
          "eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa",
          &pt);
    unhex("17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735"
          "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d",
          &ct);
    unhex("83de3541e4c2b58177e065a9bf7b62ec", &tag);
    assert_null(EVP_CIPHER_fetch(g_ref, "SM4-GCM", NULL));
    ERR_clear_error();
    EVP_CIPHER *ci = EVP_CIPHER_fetch(g_hybrid, "SM4-GCM", "provider=gmpool");
    assert_non_null(ci);
    assert_int_equal(EVP_CIPHER_get_mode(ci), EVP_CIPH_GCM_MODE);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0, f = 0;
    assert_true(EVP_EncryptInit_ex2(c, ci, key, iv, NULL));
    assert_true(EVP_EncryptUpdate(c, NULL, &l, aad, 7));
    assert_true(EVP_EncryptUpdate(c, NULL, &l, aad + 7, 13));
    assert_true(EVP_EncryptUpdate(c, out, &l, pt, 21));
    assert_int_equal(l, 21);
    assert_true(EVP_EncryptUpdate(c, out + 21, &l, pt + 21, 43));
    assert_true(EVP_EncryptFinal_ex(c, out + 64, &f));
    assert_int_equal(f, 0);
    assert_memory_equal(out, ct, 64);
    assert_true(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, got));
    assert_memory_equal(got, tag, 16);
    /* decrypt with the right tag, then with a wrong one */
    for (int bad = 0; bad < 2; bad++) {
        memcpy(got, tag, 16);
        got[0] ^= (uint8_t)bad;
        assert_true(EVP_DecryptInit_ex2(c, ci, key, iv, NULL));
        assert_true(EVP_DecryptUpdate(c, NULL, &l, aad, 20));
        assert_true(EVP_DecryptUpdate(c, out, &l, ct, 64));
        assert_true(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, got));
        assert_int_equal(EVP_DecryptFinal_ex(c, out + 64, &f), bad ? 0 : 1);
        assert_memory_equal(out, pt, 64);
    }
    ERR_clear_error();
    EVP_CIPHER_CTX_free(c);
    EVP_CIPHER_free(ci);
    free(key), free(iv), free(aad), free(pt), free(ct), free(tag);
}

/* ---- names, parameters, dupctx ---- */

static void same_parameters(void **state)
{
    (void)state;
    static const char *names[] = {"SM4-ECB", "SM4-CBC", "SM4",
                                  "SM4-CTR", "SM4-OFB", "SM4-CFB",
                                  "1.2.156.10197.1.104.2"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        EVP_CIPHER *a = EVP_CIPHER_fetch(g_hybrid, names[i], "provider=gmpool");
        EVP_CIPHER *b = EVP_CIPHER_fetch(g_ref, names[i], NULL);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(EVP_CIPHER_get_key_length(a),
                         EVP_CIPHER_get_key_length(b));
        assert_int_equal(EVP_CIPHER_get_iv_length(a),
                         EVP_CIPHER_get_iv_length(b));
        assert_int_equal(EVP_CIPHER_get_block_size(a),
                         EVP_CIPHER_get_block_size(b));
        assert_int_equal(EVP_CIPHER_get_mode(a), EVP_CIPHER_get_mode(b));
        assert_string_equal(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(a)),
                            "gmpool");
        EVP_CIPHER_free(a);
        EVP_CIPHER_free(b);
    }
    EVP_MD *m = EVP_MD_fetch(g_hybrid, "SM3", "provider=gmpool");
    assert_int_equal(EVP_MD_get_size(m), 32);
    assert_int_equal(EVP_MD_get_block_size(m), 64);
    EVP_MD_free(m);
    m = EVP_MD_fetch(g_hybrid, "1.2.156.10197.1.401", "provider=gmpool");
    assert_non_null(m);
    EVP_MD_free(m);
}

/* A short digest is duplicated like any other; one whose state is in the
 * pool refuses with a clear reason instead of a wrong answer. */
static void dupctx(void **state)
{
    (void)state;
    EVP_MD *m = EVP_MD_fetch(g_hybrid, "SM3", "provider=gmpool");
    EVP_MD_CTX *a = EVP_MD_CTX_new(), *b = EVP_MD_CTX_new();
    uint8_t x[32], y[32], ref[32];
    unsigned l;
    assert_true(EVP_DigestInit_ex2(a, m, NULL));
    assert_true(EVP_DigestUpdate(a, "ab", 2));
    assert_true(EVP_MD_CTX_copy_ex(b, a));
    assert_true(EVP_DigestUpdate(a, "c", 1));
    assert_true(EVP_DigestUpdate(b, "c", 1));
    assert_true(EVP_DigestFinal_ex(a, x, &l));
    assert_true(EVP_DigestFinal_ex(b, y, &l));
    digest(g_ref, NULL, (const uint8_t *)"abc", 3, ref, false);
    assert_memory_equal(x, ref, 32);
    assert_memory_equal(y, ref, 32);
    uint8_t *big = gmpt_random_bytes(1u << 20);
    assert_true(EVP_DigestInit_ex2(a, m, NULL));
    assert_true(EVP_DigestUpdate(a, big, 1u << 20));
    ERR_clear_error();
    assert_false(EVP_MD_CTX_copy_ex(b, a));
    char buf[256];
    ERR_error_string_n(ERR_peek_error(), buf, sizeof buf);
    assert_non_null(strstr(buf, "cannot duplicate"));
    ERR_clear_error();
    free(big);
    EVP_MD_CTX_free(a);
    EVP_MD_CTX_free(b);
    EVP_MD_free(m);
}

/* ---- threads, fork, the daemon going away ---- */

static void *thread_main(void *arg)
{
    int *fails = arg;
    size_t len = 3u << 19;
    uint8_t *in = malloc(len), x[32], y[32];
    for (size_t i = 0; i < len; i++)
        in[i] = (uint8_t)(i * 7 + (size_t)(uintptr_t)arg);
    for (int r = 0; r < 3; r++) {
        EVP_MD *m = EVP_MD_fetch(g_hybrid, "SM3", "provider=gmpool");
        EVP_MD *d = EVP_MD_fetch(g_ref, "SM3", NULL);
        unsigned l;
        if (!m || !d || !EVP_Digest(in, len, x, &l, m, NULL) ||
            !EVP_Digest(in, len, y, &l, d, NULL) || memcmp(x, y, 32))
            (*fails)++;
        EVP_MD_free(m);
        EVP_MD_free(d);
    }
    free(in);
    return NULL;
}

static void threads(void **state)
{
    (void)state;
    pthread_t th[8];
    int fails[8] = {0};
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, thread_main, &fails[i]);
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(fails[i], 0);
    }
}

static void fork_child(void **state)
{
    (void)state;
    uint8_t *in = gmpt_random_bytes(1u << 20), x[32], y[32];
    digest(g_pooled, "provider=gmpool", in, 1u << 20, x, false);
    pid_t pid = fork();
    if (pid == 0) {
        uint8_t z[32];
        EVP_MD *m = EVP_MD_fetch(g_pooled, "SM3", "provider=gmpool");
        unsigned l;
        int ok = m && EVP_Digest(in, 1u << 20, z, &l, m, NULL) &&
                 memcmp(z, x, 32) == 0;
        _exit(ok ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    digest(g_pooled, "provider=gmpool", in, 1u << 20, y, false);
    assert_memory_equal(x, y, 32);
    free(in);
}

static void daemon_down(void **state)
{
    (void)state;
    uint8_t *in = gmpt_random_bytes(1u << 20), md[32];
    EVP_MD *m = EVP_MD_fetch(g_hybrid, "SM3", "provider=gmpool");
    unsigned l;
    gmpt_pause(g_d);
    ERR_clear_error();
    uint64_t t0 = gmpc_now_ns();
    assert_false(EVP_Digest(in, 1u << 20, md, &l, m, NULL));
    assert_true(gmpc_now_ns() - t0 < 15000000000ull); /* an error, not a hang */
    char buf[512];
    ERR_error_string_n(ERR_peek_error(), buf, sizeof buf);
    fprintf(stderr, "with the daemon down: %s\n", buf);
    assert_non_null(strstr(buf, "gmpool pool call failed"));
    ERR_clear_error();
    gmpt_resume(g_d);
    uint8_t ref[32];
    digest(g_ref, NULL, in, 1u << 20, ref, false);
    assert_true(EVP_Digest(in, 1u << 20, md, &l, m, NULL));
    assert_memory_equal(md, ref, 32);
    EVP_MD_free(m);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kat_vectors),  cmocka_unit_test(kat_million),
        cmocka_unit_test(diff_ciphers), cmocka_unit_test(diff_digests),
        cmocka_unit_test(diff_64mb),    cmocka_unit_test(gcm),
        cmocka_unit_test(same_parameters), cmocka_unit_test(dupctx),
        cmocka_unit_test(threads),      cmocka_unit_test(fork_child),
        cmocka_unit_test(daemon_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
