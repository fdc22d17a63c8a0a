/* The compute engine against in-process libcrypto (the reference): every
 * algorithm whose implementation the engine switches to libgcrypt, and the
 * position-based items of the parallel modes, with random lengths, split
 * points and item orders. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "engine.h"
#include "gmpool.h"

static uint64_t g_seed = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(void)
{
    g_seed ^= g_seed << 13;
    g_seed ^= g_seed >> 7;
    g_seed ^= g_seed << 17;
    return g_seed;
}

static uint8_t *rnd_bytes(size_t n)
{
    uint8_t *p = malloc(n + 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
    return p;
}

/* Lengths that cross block and shard edges, then random ones. */
static size_t pick_len(int i, size_t max)
{
    static const size_t edges[] = {0, 1, 15, 16, 17, 31, 32, 33, 4096, 65543};
    return i < 10 ? edges[i] : (size_t)(rnd() % max);
}

static int setup(void **state)
{
    (void)state;
    const char *s = getenv("GMPT_SEED");
    if (s && *s)
        g_seed = strtoull(s, NULL, 0) | 1;
    fprintf(stderr, "seed 0x%llx (set GMPT_SEED to repeat)\n",
            (unsigned long long)g_seed);
    return gmpd_engine_init() == GMP_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gmpd_engine_cleanup();
    return 0;
}

typedef struct cipher_case {
    uint16_t alg;
    const char *evp;
    unsigned flags;
    bool block;              /* whole blocks only (no padding) */
} cipher_case;

static const cipher_case g_ciphers[] = {
    {GMP_ALG_SM4_CTR, "SM4-CTR", 0, false},
    {GMP_ALG_SM4_CTR, "SM4-CTR", GMP_TASK_DECRYPT, false},
    {GMP_ALG_SM4_CBC, "SM4-CBC", GMP_TASK_DECRYPT, true},
    {GMP_ALG_SM4_CBC, "SM4-CBC", 0, true},
    {GMP_ALG_SM4_ECB, "SM4-ECB", 0, true},
    {GMP_ALG_SM4_ECB, "SM4-ECB", GMP_TASK_DECRYPT, true},
    {GMP_ALG_AES_CTR, "AES-128-CTR", 0, false},
    {GMP_ALG_AES_CBC, "AES-128-CBC", GMP_TASK_DECRYPT, true},
};
#define N_CIPHERS (sizeof g_ciphers / sizeof g_ciphers[0])

static size_t ref_cipher(const cipher_case *k, const uint8_t *key,
                         const uint8_t *iv, const uint8_t *in, size_t len,
                         uint8_t *out)
{
    EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, k->evp, "provider=default");
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0, enc = (k->flags & GMP_TASK_DECRYPT) ? 0 : 1;
    bool has_iv = k->alg != GMP_ALG_SM4_ECB;
    assert_true(EVP_CipherInit_ex2(x, ci, key, has_iv ? iv : NULL, enc, NULL));
    EVP_CIPHER_CTX_set_padding(x, 0);
    assert_true(EVP_CipherUpdate(x, out, &l1, in, (int)len));
    assert_true(EVP_CipherFinal_ex(x, out + l1, &l2));
    EVP_CIPHER_CTX_free(x);
    EVP_CIPHER_free(ci);
    return (size_t)(l1 + l2);
}

static gmpd_engine_ctx *new_ctx(const cipher_case *k, const uint8_t *key,
                                const uint8_t *iv)
{
    gmpd_engine_args a = {.flags = k->flags, .key = key, .key_len = 16,
                          .iv = iv,
                          .iv_len = k->alg == GMP_ALG_SM4_ECB ? 0 : 16};
    int st;
    gmpd_engine_ctx *c = gmpd_engine_new(k->alg, &a, &st);
    assert_non_null(c);
    return c;
}

/* Random cut points: n item lengths summing to len. */
static size_t cut(size_t len, size_t *lens, size_t max_items)
{
    size_t n = 0, off = 0;
    while (off < len && n + 1 < max_items) {
        size_t l = 1 + (size_t)(rnd() % (len - off));
        if (rnd() % 3 == 0)
            l = 1 + (size_t)(rnd() % 40); /* small, mid-block pieces */
        l = l > len - off ? len - off : l;
        lens[n++] = l;
        off += l;
    }
    if (off < len || n == 0)
        lens[n++] = len - off;
    return n;
}

/* The libgcrypt paths are the ones in use here (Debian 12's 1.10 has
 * SM3 and SM4), so the differential tests below exercise them. */
static void fast_paths_chosen(void **state)
{
    (void)state;
    assert_string_equal(gmpd_engine_impl(GMP_ALG_SM3, 0), "libgcrypt");
    assert_string_equal(gmpd_engine_impl(GMP_ALG_SM4_CTR, 0), "libgcrypt");
    assert_string_equal(gmpd_engine_impl(GMP_ALG_SM4_CBC, GMP_TASK_DECRYPT),
                        "libgcrypt");
    assert_string_equal(gmpd_engine_impl(GMP_ALG_SM4_CBC, 0), "libcrypto");
    assert_string_equal(gmpd_engine_impl(GMP_ALG_SM4_CBC,
                                         GMP_TASK_DECRYPT | GMP_TASK_PAD),
                        "libcrypto");
    assert_true(gmpd_engine_parallel(GMP_ALG_SM4_CTR, 0));
    assert_true(gmpd_engine_parallel(GMP_ALG_SM4_CBC, GMP_TASK_DECRYPT));
    assert_false(gmpd_engine_parallel(GMP_ALG_SM4_CBC, 0));
    assert_false(gmpd_engine_parallel(GMP_ALG_SM4_ECB, GMP_TASK_PAD));
    assert_false(gmpd_engine_parallel(GMP_ALG_SM3, 0));
}

static void diff_sm3(void **state)
{
    (void)state;
    for (int i = 0; i < 40; i++) {
        size_t len = pick_len(i, 300000), lens[64];
        uint8_t *in = rnd_bytes(len), want[32], got[64];
        unsigned wl = 0;
        assert_true(EVP_Digest(in, len, want, &wl, EVP_sm3(), NULL));
        gmpd_engine_args a = {0};
        int st;
        gmpd_engine_ctx *c = gmpd_engine_new(GMP_ALG_SM3, &a, &st);
        assert_non_null(c);
        size_t n = cut(len, lens, 64), off = 0, ol;
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(gmpd_engine_update(c, in + off, lens[k], got,
                                                &ol),
                             GMP_OK);
            off += lens[k];
        }
        assert_int_equal(gmpd_engine_final(c, got, &ol), GMP_OK);
        assert_int_equal(ol, 32);
        assert_memory_equal(got, want, 32);
        gmpd_engine_free(c);
        free(in);
    }
}

/* Serial updates split at random points give libcrypto's bytes. */
static void diff_ciphers(void **state)
{
    (void)state;
    for (int i = 0; i < 80; i++) {
        const cipher_case *k = &g_ciphers[i % N_CIPHERS];
        size_t len = pick_len(i / (int)N_CIPHERS, 200000), lens[64];
        if (k->block)
            len &= ~(size_t)15;
        uint8_t *key = rnd_bytes(16), *iv = rnd_bytes(16),
                *in = rnd_bytes(len), *want = malloc(len + 32),
                *got = malloc(len + 64);
        size_t wl = ref_cipher(k, key, iv, in, len, want);
        gmpd_engine_ctx *c = new_ctx(k, key, iv);
        size_t n = cut(len, lens, 64), off = 0, o = 0, ol;
        for (size_t j = 0; j < n; j++) {
            assert_int_equal(gmpd_engine_update(c, in + off, lens[j], got + o,
                                                &ol),
                             GMP_OK);
            off += lens[j];
            o += ol;
        }
        assert_int_equal(gmpd_engine_final(c, got + o, &ol), GMP_OK);
        assert_int_equal(o + ol, wl);
        assert_memory_equal(got, want, wl);
        gmpd_engine_free(c);
        free(key), free(iv), free(in), free(want), free(got);
    }
}

/* Parallel items: cut at random points, positions taken in stream order
 * (as the daemon releases them), computed in a random order on two
 * contexts (two nodes); their outputs in sequence give libcrypto's. */
static void diff_parallel(void **state)
{
    (void)state;
    for (int i = 0; i < 120; i++) {
        const cipher_case *k = &g_ciphers[i % N_CIPHERS];
        if (!gmpd_engine_parallel(k->alg, k->flags))
            continue;
        size_t len = pick_len(i / (int)N_CIPHERS, 150000), lens[48];
        if (k->block)
            len &= ~(size_t)15;
        uint8_t *key = rnd_bytes(16), *iv = rnd_bytes(16),
                *in = rnd_bytes(len), *want = malloc(len + 32);
        size_t wl = ref_cipher(k, key, iv, in, len, want);
        size_t n = cut(len, lens, 48), off = 0;
        gmpd_engine_pos stream = {0}, pos[48];
        uint8_t *outs[48];
        size_t outl[48], order[48];
        for (size_t j = 0; j < n; j++) {
            pos[j] = stream;
            gmpd_engine_pos_advance(&stream, in + off, lens[j]);
            off += lens[j];
            outs[j] = malloc(lens[j] + 16);
            order[j] = j;
        }
        for (size_t j = n; j > 1; j--) { /* shuffle */
            size_t r = (size_t)(rnd() % j), t = order[j - 1];
            order[j - 1] = order[r];
            order[r] = t;
        }
        gmpd_engine_ctx *c[2] = {new_ctx(k, key, iv), new_ctx(k, key, iv)};
        for (size_t m = 0; m < n; m++) {
            size_t j = order[m];
            assert_int_equal(gmpd_engine_update_at(c[rnd() % 2], &pos[j],
                                                   in + pos[j].offset,
                                                   lens[j], j == n - 1,
                                                   outs[j], &outl[j]),
                             GMP_OK);
        }
        size_t o = 0;
        for (size_t j = 0; j < n; j++) {
            assert_true(o + outl[j] <= wl);
            assert_memory_equal(outs[j], want + o, outl[j]);
            o += outl[j];
            free(outs[j]);
        }
        assert_int_equal(o, wl);
        gmpd_engine_free(c[0]);
        gmpd_engine_free(c[1]);
        free(key), free(iv), free(in), free(want);
    }
}

/* A block-mode stream that does not end on a block fails at its final
 * item, as EVP's final does without padding. */
static void parallel_partial_final(void **state)
{
    (void)state;
    static const uint8_t key[16] = {1}, iv[16] = {2};
    uint8_t in[40] = {0}, out[64];
    size_t ol;
    gmpd_engine_ctx *c = new_ctx(&g_ciphers[2], key, iv);
    gmpd_engine_pos p = {0};
    assert_int_equal(gmpd_engine_update_at(c, &p, in, 20, false, out, &ol),
                     GMP_OK);
    assert_int_equal(ol, 16);
    gmpd_engine_pos_advance(&p, in, 20);
    assert_int_equal(gmpd_engine_update_at(c, &p, in + 20, 20, true, out,
                                           &ol),
                     GMP_ERR_LENGTH);
    gmpd_engine_free(c);
}

/* Every AES key length has its row (ECB, CBC, CTR against libcrypto;
 * GCM opens), and the argument errors each come back as their own code. */
static void rows_and_errors(void **state)
{
    (void)state;
    static const char *const modes[] = {"ECB", "CBC", "CTR"};
    static const uint16_t algs[] = {GMP_ALG_AES_ECB, GMP_ALG_AES_CBC,
                                    GMP_ALG_AES_CTR};
    static const uint8_t key[32] = {9}, iv[16] = {7}, in[32] = {5};
    uint8_t want[64], got[64];
    size_t ol, fl;
    int st;
    for (unsigned m = 0; m < 3; m++)
        for (size_t kl = 16; kl <= 32; kl += 8) {
            char name[16];
            snprintf(name, sizeof name, "AES-%zu-%s", kl * 8, modes[m]);
            cipher_case k = {algs[m], name, 0, true};
            size_t wl = ref_cipher(&k, key, iv, in, sizeof in, want);
            gmpd_engine_args a = {.key = key, .key_len = kl, .iv = iv,
                                  .iv_len = m ? 16 : 0};
            gmpd_engine_ctx *c = gmpd_engine_new(algs[m], &a, &st);
            assert_non_null(c);
            assert_int_equal(gmpd_engine_update(c, in, sizeof in, got, &ol),
                             GMP_OK);
            assert_int_equal(gmpd_engine_final(c, got + ol, &fl), GMP_OK);
            assert_int_equal(ol + fl, wl);
            assert_memory_equal(got, want, wl);
            gmpd_engine_free(c);
        }
    for (size_t kl = 16; kl <= 32; kl += 8) {
        gmpd_engine_args a = {.key = key, .key_len = kl, .iv = iv,
                              .iv_len = 12};
        gmpd_engine_ctx *c = gmpd_engine_new(GMP_ALG_AES_GCM, &a, &st);
        assert_non_null(c);
        gmpd_engine_free(c);
    }
    struct {
        uint16_t alg;
        gmpd_engine_args a;
        int want;
    } bad[] = {
        {GMP_ALG_AES_CBC, {.key = key, .key_len = 20, .iv = iv, .iv_len = 16},
         GMP_ERR_KEY},
        {0xFFFF, {0}, GMP_ERR_ALG},
        {GMP_ALG_SM4_CBC, {.key = key, .key_len = 16, .iv = iv, .iv_len = 8},
         GMP_ERR_IV},
        {GMP_ALG_SM4_CTR, {.flags = GMP_TASK_PAD, .key = key, .key_len = 16,
                           .iv = iv, .iv_len = 16},
         GMP_ERR_ARG},
        {GMP_ALG_HMAC_SM3, {0}, GMP_ERR_KEY},
        {GMP_ALG_SM3, {.key = key, .key_len = 16}, GMP_ERR_ARG},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = GMP_OK;
        assert_null(gmpd_engine_new(bad[i].alg, &bad[i].a, &st));
        assert_int_equal(st, bad[i].want);
    }
    assert_string_equal(gmpd_engine_impl(0xFFFF, 0), "none");
    /* a digest has no stream position */
    gmpd_engine_args none = {0};
    gmpd_engine_ctx *c = gmpd_engine_new(GMP_ALG_SM3, &none, &st);
    gmpd_engine_pos p = {0};
    assert_non_null(c);
    assert_int_equal(gmpd_engine_update_at(c, &p, in, 16, true, got, &ol),
                     GMP_ERR_INTERNAL);
    gmpd_engine_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fast_paths_chosen),
        cmocka_unit_test(diff_sm3),
        cmocka_unit_test(diff_ciphers),
        cmocka_unit_test(diff_parallel),
        cmocka_unit_test(parallel_partial_final),
        cmocka_unit_test(rows_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
