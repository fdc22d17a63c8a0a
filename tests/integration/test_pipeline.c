/* The client pipeline against a live gmpoold: known answers (GB/T 32905,
 * GB/T 32907), differential tests against in-process libcrypto with random
 * lengths, shard sizes and split points, the R16 window really keeping
 * several shards in flight, keys by handle, threads, fork, and a daemon
 * restart in the middle of a job. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "gmpool.h"
#include "harness.h"
#include "util.h"

static gmpt_daemon *g_d;

static gmp_client *client(unsigned shard)
{
    gmp_options o = gmpt_options(g_d);
    o.shard_size = shard;
    gmp_client *c;
    assert_int_equal(gmp_client_open(&c, &o), GMP_OK);
    return c;
}

static void hex(const char *h, uint8_t *out, size_t n)
{
    assert_int_equal(gmpc_hex_decode(h, out, n), (int)n);
}

static int setup(void **state)
{
    (void)state;
    gmpt_seed(0x9e3779b97f4a7c15ull);
    g_d = gmpt_start(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gmpt_stop(g_d);
    return 0;
}

/* ---- known answers ---- */

static void kat_sm3(void **state)
{
    (void)state;
    gmp_client *c = client(0);
    uint8_t md[32], want[32];
    assert_int_equal(gmp_digest(c, GMP_ALG_SM3, "abc", 3, md), GMP_OK);
    hex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
        want, 32);
    assert_memory_equal(md, want, 32);
    char m[65] = "";
    for (int i = 0; i < 16; i++)
        strcat(m, "abcd");
    assert_int_equal(gmp_digest(c, GMP_ALG_SM3, m, 64, md), GMP_OK);
    hex("debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732",
        want, 32);
    assert_memory_equal(md, want, 32);
    gmp_client_close(c);
}

static void kat_sm4(void **state)
{
    (void)state;
    gmp_client *c = client(0);
    uint8_t key[16], want[16], out[48];
    size_t n = sizeof out;
    hex("0123456789abcdeffedcba9876543210", key, 16);
    hex("681edf34d206965e86b3e94f536e4246", want, 16);
    assert_int_equal(gmp_cipher(c, GMP_ALG_SM4_ECB, 0, key, 16, NULL, 0, key,
                                16, out, &n),
                     GMP_OK);
    assert_int_equal(n, 16);
    assert_memory_equal(out, want, 16);
    n = sizeof out;
    assert_int_equal(gmp_cipher(c, GMP_ALG_SM4_ECB, GMP_TASK_DECRYPT, key, 16,
                                NULL, 0, want, 16, out, &n),
                     GMP_OK);
    assert_memory_equal(out, key, 16);
    gmp_client_close(c);
}

/* GB/T 32907's 1 000 000-round example: E^1000000(P).  CBC with a zero IV
 * over P followed by zero blocks computes exactly that chain, so the whole
 * million rounds run in the pool as one sharded, serial task. */
static void kat_sm4_million(void **state)
{
    (void)state;
    const size_t rounds = 1000000, len = rounds * 16;
    gmp_client *c = client(256 * 1024);
    uint8_t key[16], want[16], iv[16] = {0};
    hex("0123456789abcdeffedcba9876543210", key, 16);
    hex("595298c7c6fd271f0402f804c33d3f66", want, 16);
    uint8_t *in = calloc(1, len), *out = malloc(len + 32);
    assert_non_null(in);
    assert_non_null(out);
    memcpy(in, key, 16);
    size_t n = len + 32;
    assert_int_equal(gmp_cipher(c, GMP_ALG_SM4_CBC, 0, key, 16, iv, 16, in,
                                len, out, &n),
                     GMP_OK);
    assert_int_equal(n, len);
    assert_memory_equal(out + len - 16, want, 16);
    free(in);
    free(out);
    gmp_client_close(c);
}

/* ---- differential against in-process libcrypto ---- */

typedef struct alg_case {
    gmp_alg alg;
    const char *name;
    bool iv, pad;
} alg_case;

/* Without padding, ECB, CTR and CBC decryption spread over both nodes of
 * the test daemon, item by item from their stream positions. */
static const alg_case g_algs[] = {
    {GMP_ALG_SM4_ECB, "SM4-ECB", false, true},
    {GMP_ALG_SM4_ECB, "SM4-ECB", false, false},
    {GMP_ALG_SM4_CBC, "SM4-CBC", true, true},
    {GMP_ALG_SM4_CBC, "SM4-CBC", true, false},
    {GMP_ALG_SM4_CTR, "SM4-CTR", true, false},
    {GMP_ALG_SM4_OFB, "SM4-OFB", true, false},
    {GMP_ALG_SM4_CFB, "SM4-CFB", true, false},
};

static size_t ref_cipher(const alg_case *a, int enc, const uint8_t *key,
                         const uint8_t *iv, const uint8_t *in, size_t len,
                         uint8_t *out)
{
    EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, a->name, "provider=default");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    assert_true(EVP_CipherInit_ex2(ctx, ci, key, a->iv ? iv : NULL, enc, NULL));
    EVP_CIPHER_CTX_set_padding(ctx, a->pad);
    assert_true(EVP_CipherUpdate(ctx, out, &l1, in, (int)len));
    assert_true(EVP_CipherFinal_ex(ctx, out + l1, &l2));
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(ci);
    return (size_t)(l1 + l2);
}

/* Runs a cipher task with the input split at random points. */
static size_t pool_cipher(gmp_client *c, const alg_case *a, unsigned flags,
                          const uint8_t *key, const uint8_t *iv,
                          const uint8_t *in, size_t len, uint8_t *out)
{
    gmp_task *t;
    gmp_task_options o = {.priority = (uint8_t)(gmpt_rand() % 8)};
    assert_int_equal(gmp_cipher_open(c, a->alg, flags, key, 16, 0, iv,
                                     a->iv ? 16 : 0, &o, &t),
                     GMP_OK);
    size_t off = 0, outl = 0;
    while (off < len) {
        size_t n = 1 + (size_t)(gmpt_rand() % (len - off));
        if (gmpt_rand() % 4 == 0)
            n = len - off;
        size_t cap = n + 16;
        assert_int_equal(gmp_task_update(t, in + off, n, out + outl, &cap),
                         GMP_OK);
        off += n;
        outl += cap;
    }
    size_t cap = 32;
    assert_int_equal(gmp_task_final(t, out + outl, &cap), GMP_OK);
    gmp_task_free(t);
    return outl + cap;
}

/* Items computed in clients' shared memory, from gmpoolctl status. */
static unsigned long long shm_items(void)
{
    unsigned long long n = 0;
    assert_int_equal(gmpt_ctl_number(g_d, "status", "regions, ", &n), 0);
    return n;
}

/* One SM4-CBC and one SM3 job of 3 MB, checked against libcrypto. */
static void cbc_and_sm3(gmp_client *c)
{
    const size_t len = 3u << 20;
    const alg_case *a = &g_algs[2];
    uint8_t *key = gmpt_random_bytes(16), *iv = gmpt_random_bytes(16);
    uint8_t *in = gmpt_random_bytes(len), *ref = malloc(len + 32),
            *got = malloc(len + 64), md[32], want[32];
    unsigned mdl;
    size_t rl = ref_cipher(a, 1, key, iv, in, len, ref);
    assert_int_equal(pool_cipher(c, a, GMP_TASK_PAD, key, iv, in, len, got),
                     rl);
    assert_memory_equal(got, ref, rl);
    assert_true(EVP_Digest(in, len, want, &mdl, EVP_sm3(), NULL));
    assert_int_equal(gmp_digest(c, GMP_ALG_SM3, in, len, md), GMP_OK);
    assert_memory_equal(md, want, 32);
    free(key), free(iv), free(in), free(ref), free(got);
}

/* Over a unix socket the items travel in the client's shared memory;
 * GMPOOL_SHM=0 keeps them in the socket, with the same results. */
static void shm_lane(void **state)
{
    (void)state;
    unsigned long long before = shm_items();
    gmp_client *c = client(0);
    cbc_and_sm3(c);
    gmp_client_close(c);
    unsigned long long after = shm_items();
    assert_true(after >= before + 2 * (3u << 20) / (16u << 10));
    setenv("GMPOOL_SHM", "0", 1);
    c = client(0);
    cbc_and_sm3(c);
    gmp_client_close(c);
    unsetenv("GMPOOL_SHM");
    assert_true(shm_items() == after);
}

/* Freeing a digest task with its shards in flight parks their slots until
 * the daemon answers them; they come back, so after more aborts than the
 * region has slots a job still runs through shared memory. */
static void shm_slots_come_back(void **state)
{
    (void)state;
    const size_t len = 4u << 20;
    uint8_t *in = gmpt_random_bytes(len);
    gmp_client *c = client(0);
    for (int i = 0; i < 12; i++) {
        gmp_task *t;
        assert_int_equal(gmp_digest_open(c, GMP_ALG_SM3, NULL, &t), GMP_OK);
        assert_int_equal(gmp_task_update(t, in, len, NULL, NULL), GMP_OK);
        gmp_task_free(t);
    }
    uint8_t md[32];
    assert_int_equal(gmp_digest(c, GMP_ALG_SM3, in, 16, md), GMP_OK);
    unsigned long long before = shm_items();
    cbc_and_sm3(c);
    unsigned long long used = shm_items() - before;
    /* 192 shards of 16 KB; without the slots back none would be in shm */
    assert_true(used >= 2 * (3u << 20) / (16u << 10) * 3 / 4);
    gmp_client_close(c);
    free(in);
}

static size_t pick_len(int i, size_t max)
{
    static const size_t edges[] = {0, 1, 15, 16, 17, 4095, 4096, 16384,
                                   16385, 65536 + 7};
    if (i < (int)(sizeof edges / sizeof *edges))
        return edges[i];
    return (size_t)(gmpt_rand() % max);
}

static void diff_cipher(void **state)
{
    (void)state;
    size_t n_algs = sizeof g_algs / sizeof *g_algs;
    for (int i = 0; i < 28; i++) {
        const alg_case *a = &g_algs[i % n_algs];
        unsigned shard = GMP_SHARD_MIN << (gmpt_rand() % 9); /* 4 KiB..1 MiB */
        gmp_client *c = client(shard);
        size_t len = pick_len(i, 6u << 20);
        if (!a->pad && (a->alg == GMP_ALG_SM4_CBC || a->alg == GMP_ALG_SM4_ECB))
            len &= ~(size_t)15;
        uint8_t *key = gmpt_random_bytes(16), *iv = gmpt_random_bytes(16);
        uint8_t *in = gmpt_random_bytes(len), *ref = malloc(len + 32),
                *got = malloc(len + 64), *back = malloc(len + 64);
        size_t rl = ref_cipher(a, 1, key, iv, in, len, ref);
        unsigned pad = a->pad ? GMP_TASK_PAD : 0;
        size_t gl = pool_cipher(c, a, pad, key, iv, in, len, got);
        assert_int_equal(gl, rl);
        assert_memory_equal(got, ref, rl);
        size_t bl = pool_cipher(c, a, pad | GMP_TASK_DECRYPT, key, iv, ref, rl,
                                back);
        assert_int_equal(bl, len);
        assert_memory_equal(back, in, len);
        free(key), free(iv), free(in), free(ref), free(got), free(back);
        gmp_client_close(c);
    }
}

static void diff_sm3(void **state)
{
    (void)state;
    for (int i = 0; i < 16; i++) {
        unsigned shard = GMP_SHARD_MIN << (gmpt_rand() % 9);
        gmp_client *c = client(shard);
        size_t len = pick_len(i, 8u << 20);
        uint8_t *in = gmpt_random_bytes(len), ref[32], md[32];
        unsigned mdl;
        assert_true(EVP_Digest(in, len, ref, &mdl, EVP_sm3(), NULL));
        gmp_task *t;
        assert_int_equal(gmp_digest_open(c, GMP_ALG_SM3, NULL, &t), GMP_OK);
        for (size_t off = 0; off < len;) {
            size_t n = 1 + (size_t)(gmpt_rand() % (len - off));
            assert_int_equal(gmp_task_update(t, in + off, n, NULL, NULL),
                             GMP_OK);
            off += n;
        }
        size_t n = 32;
        assert_int_equal(gmp_task_final(t, md, &n), GMP_OK);
        assert_memory_equal(md, ref, 32);
        gmp_task_free(t);
        free(in);
        gmp_client_close(c);
    }
}

/* 64 MB each way, the largest size the issue names. */
static void diff_64mb(void **state)
{
    (void)state;
    const size_t len = 64u << 20;
    gmp_client *c = client(0);
    uint8_t *in = gmpt_random_bytes(len), ref[32], md[32];
    unsigned mdl;
    assert_true(EVP_Digest(in, len, ref, &mdl, EVP_sm3(), NULL));
    assert_int_equal(gmp_digest(c, GMP_ALG_SM3, in, len, md), GMP_OK);
    assert_memory_equal(md, ref, 32);
    uint8_t key[16] = {1}, iv[16] = {2};
    uint8_t *out = malloc(len + 32), *want = malloc(len + 32);
    size_t n = len + 32;
    static const alg_case ctr = {GMP_ALG_SM4_CTR, "SM4-CTR", true, false};
    size_t wl = ref_cipher(&ctr, 1, key, iv, in, len, want);
    assert_int_equal(gmp_cipher(c, GMP_ALG_SM4_CTR, 0, key, 16, iv, 16, in,
                                len, out, &n),
                     GMP_OK);
    assert_int_equal(n, wl);
    assert_memory_equal(out, want, wl);
    free(in), free(out), free(want);
    gmp_client_close(c);
}

/* R15/R16: a large task really has several shards in flight at once. */
static void window_in_flight(void **state)
{
    (void)state;
    gmp_client *c = client(GMP_SHARD_MIN);
    size_t len = 8u << 20;
    uint8_t *in = gmpt_random_bytes(len), md[32];
    gmp_task *t;
    assert_int_equal(gmp_digest_open(c, GMP_ALG_SM3, NULL, &t), GMP_OK);
    assert_int_equal(gmp_task_update(t, in, len, NULL, NULL), GMP_OK);
    size_t n = 32;
    assert_int_equal(gmp_task_final(t, md, &n), GMP_OK);
    fprintf(stderr, "max shards in flight: %u\n", gmp_task_max_inflight(t));
    assert_true(gmp_task_max_inflight(t) >= 4);
    gmp_task_free(t);
    gmp_client_close(c);
    /* window 1 is the synchronous scheme: one shard at a time, ever (a
     * parallel mode too, which could otherwise use both nodes) */
    gmp_options o = gmpt_options(g_d);
    o.shard_size = GMP_SHARD_MIN;
    o.window = 1;
    assert_int_equal(gmp_client_open(&c, &o), GMP_OK);
    assert_int_equal(gmp_digest_open(c, GMP_ALG_SM3, NULL, &t), GMP_OK);
    assert_int_equal(gmp_task_update(t, in, 1u << 20, NULL, NULL), GMP_OK);
    n = 32;
    assert_int_equal(gmp_task_final(t, md, &n), GMP_OK);
    assert_int_equal(gmp_task_max_inflight(t), 1);
    gmp_task_free(t);
    uint8_t key[16] = {3}, iv[16] = {4}, *out = malloc(len);
    assert_int_equal(gmp_cipher_open(c, GMP_ALG_SM4_CTR, 0, key, 16, 0, iv,
                                     16, NULL, &t),
                     GMP_OK);
    n = len;
    assert_int_equal(gmp_task_update(t, in, len, out, &n), GMP_OK);
    assert_int_equal(gmp_task_max_inflight(t), 1);
    gmp_task_free(t);
    free(out);
    free(in);
    gmp_client_close(c);
}

static void random_bytes_pool(void **state)
{
    (void)state;
    gmp_client *c = client(0);
    size_t n = 200000;
    uint8_t *a = calloc(1, n), *b = calloc(1, n), *z = calloc(1, n);
    assert_int_equal(gmp_random(c, a, n), GMP_OK);
    assert_int_equal(gmp_random(c, b, n), GMP_OK);
    assert_memory_not_equal(a, z, n);
    assert_memory_not_equal(a, b, n);
    free(a), free(b), free(z);
    gmp_client_close(c);
}

static void keys_by_handle(void **state)
{
    (void)state;
    gmp_client *c = client(0);
    uint8_t key[16], want[16], out[48], val[64];
    hex("0123456789abcdeffedcba9876543210", key, 16);
    hex("681edf34d206965e86b3e94f536e4246", want, 16);
    uint32_t h;
    assert_int_equal(gmp_key_import(c, GMP_KEY_SM4,
                                    GMP_KEYF_SENSITIVE | GMP_KEYF_TOKEN, "kat",
                                    key, 16, &h),
                     GMP_OK);
    gmp_key_info info;
    assert_int_equal(gmp_key_get_info(c, h, &info), GMP_OK);
    assert_int_equal(info.type, GMP_KEY_SM4);
    assert_int_equal(info.len, 16);
    assert_string_equal(info.label, "kat");
    gmp_task *t;
    assert_int_equal(gmp_cipher_open(c, GMP_ALG_SM4_ECB, 0, NULL, 0, h, NULL,
                                     0, NULL, &t),
                     GMP_OK);
    size_t n = sizeof out, f = 32;
    assert_int_equal(gmp_task_update(t, key, 16, out, &n), GMP_OK);
    assert_int_equal(gmp_task_final(t, out + n, &f), GMP_OK);
    assert_int_equal(n + f, 16);
    assert_memory_equal(out, want, 16);
    gmp_task_free(t);
    size_t vl = sizeof val;
    assert_int_equal(gmp_key_export(c, h, val, &vl), GMP_ERR_DENIED);
    uint32_t g;
    assert_int_equal(gmp_key_generate(c, GMP_KEY_AES, GMP_KEYF_EXTRACTABLE,
                                      "gen", 32, &g),
                     GMP_OK);
    vl = sizeof val;
    assert_int_equal(gmp_key_export(c, g, val, &vl), GMP_OK);
    assert_int_equal(vl, 32);
    assert_int_equal(gmp_key_destroy(c, h), GMP_OK);
    assert_int_equal(gmp_cipher_open(c, GMP_ALG_SM4_ECB, 0, NULL, 0, h, NULL,
                                     0, NULL, &t),
                     GMP_ERR_KEY);
    assert_int_equal(gmp_key_get_info(c, h, &info), GMP_ERR_NOT_FOUND);
    gmp_client_close(c);
}

static void bad_calls(void **state)
{
    (void)state;
    gmp_client *c = client(0);
    gmp_task *t;
    uint8_t key[16] = {0}, buf[64];
    size_t n;
    assert_int_equal(gmp_cipher_open(c, GMP_ALG_SM4_CBC, 0, key, 15, 0, key,
                                     16, NULL, &t),
                     GMP_ERR_KEY);
    assert_true(strlen(gmp_client_last_error()) > 0);
    assert_int_equal(gmp_cipher_open(c, GMP_ALG_SM4_CBC, 0, key, 16, 0, key,
                                     8, NULL, &t),
                     GMP_ERR_IV);
    assert_int_equal(gmp_cipher_open(c, (gmp_alg)0x4242, 0, key, 16, 0, NULL,
                                     0, NULL, &t),
                     GMP_ERR_ALG);
    /* the one-shot helpers send their data without waiting for OPEN's
     * answer: a refused OPEN still fails them with its own status, and the
     * session goes on */
    uint8_t big[40000] = {0}, ref_md[32];
    n = sizeof big;
    assert_int_equal(gmp_cipher(c, GMP_ALG_SM4_CBC, 0, key, 15, key, 16, big,
                                100, big, &n),
                     GMP_ERR_KEY);
    assert_int_equal(n, 0);
    n = sizeof big;
    assert_int_equal(gmp_cipher(c, GMP_ALG_SM4_CTR, 0, key, 16, key, 8, buf,
                                20, big, &n),
                     GMP_ERR_IV);
    assert_int_equal(gmp_digest(c, (gmp_alg)0x4242, big, sizeof big, ref_md),
                     GMP_ERR_ALG);
    assert_int_equal(gmp_digest(c, GMP_ALG_SM3, "abc", 3, ref_md), GMP_OK);
    assert_int_equal(gmp_digest_open(c, GMP_ALG_SM3, NULL, NULL), GMP_ERR_ARG);
    assert_int_equal(gmp_digest_open(NULL, GMP_ALG_SM3, NULL, &t),
                     GMP_ERR_ARG);
    assert_int_equal(gmp_task_update(NULL, buf, 1, NULL, NULL), GMP_ERR_ARG);
    /* unaligned CBC without padding fails at final with a length error */
    assert_int_equal(gmp_cipher_open(c, GMP_ALG_SM4_CBC, 0, key, 16, 0, key,
                                     16, NULL, &t),
                     GMP_OK);
    n = 4; /* too small for in_len + 16 */
    assert_int_equal(gmp_task_update(t, buf, 20, buf, &n), GMP_ERR_BUFFER);
    n = sizeof buf;
    assert_int_equal(gmp_task_update(t, buf, 20, buf, &n), GMP_OK);
    n = sizeof buf;
    assert_int_equal(gmp_task_final(t, buf, &n), GMP_ERR_LENGTH);
    gmp_task_free(t);
    /* calls out of order */
    assert_int_equal(gmp_digest_open(c, GMP_ALG_SM3, NULL, &t), GMP_OK);
    n = 32;
    assert_int_equal(gmp_task_final(t, buf, &n), GMP_OK);
    assert_int_equal(gmp_task_update(t, buf, 1, NULL, NULL), GMP_ERR_STATE);
    assert_int_equal(gmp_task_final(t, buf, &n), GMP_ERR_STATE);
    gmp_task_free(t);
    gmp_options o = gmpt_options(g_d);
    gmp_client *c2;
    o.shard_size = 1000;
    assert_int_equal(gmp_client_open(&c2, &o), GMP_ERR_ARG);
    assert_null(c2);
    o = gmpt_options(g_d);
    o.credentials = "/nonexistent/credentials";
    assert_int_equal(gmp_client_open(&c2, &o), GMP_ERR_CONFIG);
    assert_true(strstr(gmp_client_last_error(), "/nonexistent") != NULL);
    gmp_client_close(c);
}

typedef struct thread_arg {
    int idx;
    int failures;
} thread_arg;

static void *digest_thread(void *p)
{
    thread_arg *a = p;
    gmp_options o = gmpt_options(g_d);
    gmp_client *c;
    if (gmp_client_open(&c, &o) != GMP_OK) {
        a->failures++;
        return NULL;
    }
    size_t len = (size_t)(a->idx + 1) * 1000003;
    uint8_t *in = malloc(len), ref[32], md[32];
    for (size_t i = 0; i < len; i++)
        in[i] = (uint8_t)(i * 31 + (size_t)a->idx);
    unsigned mdl;
    EVP_Digest(in, len, ref, &mdl, EVP_sm3(), NULL);
    for (int r = 0; r < 3; r++)
        if (gmp_digest(c, GMP_ALG_SM3, in, len, md) != GMP_OK ||
            memcmp(md, ref, 32) != 0)
            a->failures++;
    free(in);
    gmp_client_close(c);
    return NULL;
}

static void threads(void **state)
{
    (void)state;
    pthread_t th[8];
    thread_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (thread_arg){i, 0};
        pthread_create(&th[i], NULL, digest_thread, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
}

/* Two applications of one tenant: each one's session keys are its own
 * (invisible, unusable, not destroyable by the other, not listed), token
 * keys are shared. */
static bool listed(gmp_client *c, uint32_t h)
{
    uint32_t v[64];
    size_t n = 0;
    assert_int_equal(gmp_key_list(c, 0, v, 64, &n), GMP_OK);
    for (size_t i = 0; i < n; i++)
        if (v[i] == h)
            return true;
    return false;
}

static void session_keys_private(void **state)
{
    (void)state;
    gmp_client *a = client(0), *b = client(0);
    uint8_t key[16] = {7}, out[32];
    uint32_t sk, tk;
    assert_int_equal(gmp_key_import(a, GMP_KEY_SM4, GMP_KEYF_EXTRACTABLE,
                                    "a-session", key, 16, &sk),
                     GMP_OK);
    assert_int_equal(gmp_key_import(a, GMP_KEY_SM4,
                                    GMP_KEYF_EXTRACTABLE | GMP_KEYF_TOKEN,
                                    "a-token", key, 16, &tk),
                     GMP_OK);
    gmp_key_info info;
    size_t n = sizeof out;
    gmp_task *t;
    assert_int_equal(gmp_key_get_info(b, sk, &info), GMP_ERR_NOT_FOUND);
    assert_int_equal(gmp_key_export(b, sk, out, &n), GMP_ERR_NOT_FOUND);
    assert_int_equal(gmp_cipher_open(b, GMP_ALG_SM4_ECB, 0, NULL, 0, sk, NULL,
                                     0, NULL, &t),
                     GMP_ERR_KEY);
    assert_int_equal(gmp_key_destroy(b, sk), GMP_ERR_NOT_FOUND);
    assert_false(listed(b, sk));
    assert_true(listed(a, sk));
    assert_int_equal(gmp_key_get_info(b, tk, &info), GMP_OK);
    assert_true(listed(b, tk));
    assert_int_equal(gmp_key_get_info(a, sk, &info), GMP_OK);
    assert_int_equal(gmp_key_destroy(b, tk), GMP_OK);
    assert_int_equal(gmp_key_destroy(a, sk), GMP_OK);
    /* a front end's attributes go with the key in the creating request */
    static const uint8_t app[3] = {1, 2, 3};
    static uint8_t too_long[GMP_KEY_APP_MAX + 1];
    assert_int_equal(gmp_key_create(a, GMP_KEY_AES, 0, "app", NULL, 32, app,
                                    sizeof app, &sk),
                     GMP_OK);
    assert_int_equal(gmp_key_get_info(a, sk, &info), GMP_OK);
    assert_int_equal(info.len, 32);
    assert_int_equal(info.app_len, sizeof app);
    assert_memory_equal(info.app, app, sizeof app);
    assert_int_equal(gmp_key_create(a, GMP_KEY_AES, 0, "app", NULL, 32,
                                    too_long, sizeof too_long, &sk),
                     GMP_ERR_ARG);
    gmp_client_close(a);
    gmp_client_close(b);
}

/* The daemon's own rules, below any front end: a private key needs a
 * login, a tenant without a PIN cannot log in, and updates only tighten
 * a key (SENSITIVE on, EXTRACTABLE off; TOKEN and PRIVATE fixed). */
static void key_and_token_rules(void **state)
{
    (void)state;
    char creds[300], args[400];
    snprintf(creds, sizeof creds, "%s/nopin.cred", g_d->dir);
    snprintf(args, sizeof args, "-o '%s' tenant add nopin", creds);
    assert_int_equal(gmpt_ctl(g_d, NULL, args), 0);
    gmp_options o = gmpt_options(g_d);
    o.credentials = creds;
    o.tenant = NULL;
    o.secret_hex = NULL;
    gmp_client *np, *c = client(0);
    assert_int_equal(gmp_client_open(&np, &o), GMP_OK);
    gmp_token_info ti;
    assert_int_equal(gmp_token_get_info(np, &ti), GMP_OK);
    assert_false(ti.flags & GMP_TOKEN_PIN_SET);
    assert_int_equal(gmp_login(np, "1234", 4), GMP_ERR_PIN_UNSET);
    assert_int_equal(gmp_logged_in(np), 0);
    gmp_client_close(np);

    uint8_t key[16] = {9};
    uint32_t h;
    assert_int_equal(gmp_key_import(c, GMP_KEY_SM4, GMP_KEYF_PRIVATE, "p",
                                    key, 16, &h),
                     GMP_ERR_LOGIN);
    assert_int_equal(gmp_key_import(c, GMP_KEY_SM4,
                                    GMP_KEYF_SENSITIVE | GMP_KEYF_EXTRACTABLE,
                                    "rules", key, 16, &h),
                     GMP_OK);
    uint32_t f = GMP_KEYF_SENSITIVE | GMP_KEYF_EXTRACTABLE;
    assert_int_equal(gmp_key_update(c, h, GMP_KEYF_EXTRACTABLE, "x", NULL, 0),
                     GMP_ERR_DENIED);                    /* unset SENSITIVE */
    assert_int_equal(gmp_key_update(c, h, f | GMP_KEYF_TOKEN, "x", NULL, 0),
                     GMP_ERR_DENIED);                    /* TOKEN is fixed */
    assert_int_equal(gmp_key_update(c, h, GMP_KEYF_SENSITIVE, "x", NULL, 0),
                     GMP_OK);                            /* unextractable */
    assert_int_equal(gmp_key_update(c, h, f, "x", NULL, 0),
                     GMP_ERR_DENIED);                    /* and stays so */
    gmp_key_info info;
    assert_int_equal(gmp_key_get_info(c, h, &info), GMP_OK);
    assert_int_equal(info.flags, GMP_KEYF_SENSITIVE);
    assert_string_equal(info.label, "x");
    assert_int_equal(gmp_key_destroy(c, h), GMP_OK);
    gmp_client_close(c);
}

/* The child re-initialises: its own loop and sockets, the parent's are
 * untouched, and the parent's task refuses to run in the child. */
static void fork_child(void **state)
{
    (void)state;
    gmp_client *c = client(0);
    uint8_t md[32];
    assert_int_equal(gmp_digest(c, GMP_ALG_SM3, "abc", 3, md), GMP_OK);
    gmp_task *t;
    assert_int_equal(gmp_digest_open(c, GMP_ALG_SM3, NULL, &t), GMP_OK);
    pid_t pid = fork();
    if (pid == 0) {
        uint8_t m2[32];
        int ok = gmp_task_update(t, "x", 1, NULL, NULL) == GMP_ERR_FORKED &&
                 gmp_digest(c, GMP_ALG_SM3, "abc", 3, m2) == GMP_OK &&
                 memcmp(md, m2, 32) == 0;
        gmp_task_free(t);
        gmp_client_close(c);
        _exit(ok ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the parent's task and connections still work */
    size_t n = 32;
    uint8_t m3[32], ref[32];
    unsigned rl;
    assert_int_equal(gmp_task_update(t, "abc", 3, NULL, NULL), GMP_OK);
    assert_int_equal(gmp_task_final(t, m3, &n), GMP_OK);
    EVP_Digest("abc", 3, ref, &rl, EVP_sm3(), NULL);
    assert_memory_equal(m3, ref, 32);
    gmp_task_free(t);
    gmp_client_close(c);
}

/* Forks while the loop thread is busy (connecting, authenticating,
 * answering digests for another thread) must not hand the child a lock
 * held in the parent: every child gets its digest, none hangs (the alarm
 * turns a hang into a failure). */
static atomic_bool g_hammer_stop;

/* New clients keep the loop thread authenticating (nonces, HMAC-SM3:
 * OpenSSL's locks), the digests keep it moving shards. */
static void *hammer(void *arg)
{
    (void)arg;
    static uint8_t big[70000];
    uint8_t md[32];
    while (!atomic_load(&g_hammer_stop)) {
        gmp_options o = gmpt_options(g_d);
        gmp_client *c;
        if (gmp_client_open(&c, &o) != GMP_OK)
            continue;
        gmp_digest(c, GMP_ALG_SM3, big, sizeof big, md);
        gmp_client_close(c);
    }
    return NULL;
}

static void fork_while_busy(void **state)
{
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    /* GCC 12's ASan allocator takes no lock around fork (LLVM added that
     * in 18, llvm-project PR 75290): a child forked while the hammer
     * thread refills its allocator cache hangs in its first malloc, in
     * ASan's code, not ours (seen: 4 hung children in 20 runs).  The plain
     * build runs this test; fork_child covers the child's path here. */
    skip();
#endif
    pthread_t th;
    atomic_store(&g_hammer_stop, false);
    assert_int_equal(pthread_create(&th, NULL, hammer, NULL), 0);
    int failed = 0;
    for (int i = 0; i < 100; i++) {
        usleep((useconds_t)(gmpt_rand() % 3000));
        pid_t pid = fork();
        if (pid == 0) {
            alarm(20);
            /* not client(): a failed assert would run the rest of the
             * suite in the child */
            gmp_options o = gmpt_options(g_d);
            gmp_client *cc;
            uint8_t md[32];
            int rc = gmp_client_open(&cc, &o);
            if (rc == GMP_OK) {
                rc = gmp_digest(cc, GMP_ALG_SM3, "abc", 3, md);
                gmp_client_close(cc);
            }
            if (rc != GMP_OK)
                fprintf(stderr, "fork child %d: %s\n", i, gmp_strerror(rc));
            _exit(rc == GMP_OK ? 0 : 1);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (WIFSIGNALED(st))
            fprintf(stderr, "fork child %d: signal %d\n", i, WTERMSIG(st));
        failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    atomic_store(&g_hammer_stop, true);
    pthread_join(th, NULL);
    assert_int_equal(failed, 0);
}

/* A daemon restart mid-job: the job fails with a clear error (never a
 * hang), and the next job on the same client succeeds. */
static void restart_mid_job(void **state)
{
    (void)state;
    gmp_client *c = client(0);
    uint8_t *in = gmpt_random_bytes(1u << 20), md[32];
    gmp_task *t;
    assert_int_equal(gmp_digest_open(c, GMP_ALG_SM3, NULL, &t), GMP_OK);
    assert_int_equal(gmp_task_update(t, in, 1u << 20, NULL, NULL), GMP_OK);
    gmpt_restart(g_d);
    size_t n = 32;
    int rc = gmp_task_update(t, in, 1u << 20, NULL, NULL);
    if (rc == GMP_OK)
        rc = gmp_task_final(t, md, &n);
    fprintf(stderr, "in-flight job after restart: %s (%s)\n",
            gmp_strerror(rc), gmp_client_last_error());
    assert_true(rc == GMP_ERR_CONN || rc == GMP_ERR_SHUTDOWN);
    assert_true(strlen(gmp_client_last_error()) > 0);
    gmp_task_free(t);
    uint8_t ref[32];
    unsigned rl;
    EVP_Digest(in, 1u << 20, ref, &rl, EVP_sm3(), NULL);
    assert_int_equal(gmp_digest(c, GMP_ALG_SM3, in, 1u << 20, md), GMP_OK);
    assert_memory_equal(md, ref, 32);
    free(in);
    gmp_client_close(c);
}

/* HMAC-SM3 in the pool equals libcrypto's, for short, block-size and
 * long (pre-hashed) keys and random split points. */
static void hmac_sm3(void **state)
{
    (void)state;
    static const size_t key_lens[] = {1, 16, 64, 65, 200};
    gmp_client *c = client(GMP_SHARD_MIN);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", "provider=default");
    for (size_t k = 0; k < sizeof key_lens / sizeof *key_lens; k++) {
        size_t len = (size_t)(gmpt_rand() % (1u << 20));
        uint8_t *key = gmpt_random_bytes(key_lens[k]), *in = gmpt_random_bytes(len);
        uint8_t want[32], got[32];
        size_t wl = 0, gl = 32;
        OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string("digest", "SM3", 0),
                          OSSL_PARAM_construct_end()};
        EVP_MAC_CTX *m = EVP_MAC_CTX_new(mac);
        assert_true(EVP_MAC_init(m, key, key_lens[k], p));
        assert_true(EVP_MAC_update(m, in, len));
        assert_true(EVP_MAC_final(m, want, &wl, sizeof want));
        EVP_MAC_CTX_free(m);
        gmp_task *t;
        assert_int_equal(gmp_mac_open(c, GMP_ALG_HMAC_SM3, key, key_lens[k],
                                      NULL, &t),
                         GMP_OK);
        for (size_t off = 0; off < len;) {
            size_t n = 1 + (size_t)(gmpt_rand() % (len - off));
            assert_int_equal(gmp_task_update(t, in + off, n, NULL, NULL),
                             GMP_OK);
            off += n;
        }
        assert_int_equal(gmp_task_final(t, got, &gl), GMP_OK);
        assert_int_equal(gl, 32);
        assert_memory_equal(got, want, 32);
        gmp_task_free(t);
        free(key), free(in);
    }
    /* HMAC-SHA-512 hashes a key over its 128-byte block with SHA-512 */
    uint8_t *key = gmpt_random_bytes(200), want[64], got[64];
    size_t wl = 0, gl = sizeof got;
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA2-512", 0),
                      OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *m = EVP_MAC_CTX_new(mac);
    assert_true(EVP_MAC_init(m, key, 200, p));
    assert_true(EVP_MAC_update(m, (const uint8_t *)"abc", 3));
    assert_true(EVP_MAC_final(m, want, &wl, sizeof want));
    EVP_MAC_CTX_free(m);
    EVP_MAC_free(mac);
    gmp_task *t;
    assert_int_equal(gmp_mac_open(c, GMP_ALG_HMAC_SHA512, key, 200, NULL, &t),
                     GMP_OK);
    assert_int_equal(gmp_task_update(t, "abc", 3, NULL, NULL), GMP_OK);
    assert_int_equal(gmp_task_final(t, got, &gl), GMP_OK);
    assert_int_equal(gl, 64);
    assert_memory_equal(got, want, 64);
    gmp_task_free(t);
    /* keys the client cannot send, and calls that name no key */
    assert_int_equal(gmp_mac_open(c, GMP_ALG_HMAC_SHA384, key, 100, NULL, &t),
                     GMP_ERR_KEY);
    assert_int_equal(gmp_mac_open(c, GMP_ALG_SM3, key, 100, NULL, &t),
                     GMP_ERR_ALG);
    assert_int_equal(gmp_mac_open(c, GMP_ALG_SM3, key, 16, NULL, &t),
                     GMP_ERR_ARG); /* the daemon: a digest takes no key */
    assert_int_equal(gmp_mac_open(c, GMP_ALG_HMAC_SM3, NULL, 0, NULL, &t),
                     GMP_ERR_KEY);
    free(key);
    gmp_client_close(c);
}

/* RFC 8998 A.1: SM4-GCM, which OpenSSL 3.0's default provider lacks, from
 * the pool; updates split at odd points; the tag of a tampered ciphertext
 * differs. */
static void sm4_gcm(void **state)
{
    (void)state;
    uint8_t key[16], iv[12], aad[20], pt[64], ct[64], tag[16];
    hex("0123456789ABCDEFFEDCBA9876543210", key, 16);
    hex("00001234567800000000ABCD", iv, 12);
    hex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2", aad, 20);
    hex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
        pt, 64);
    hex("17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D",
        ct, 64);
    hex("83DE3541E4C2B58177E065A9BF7B62EC", tag, 16);
    gmp_client *c = client(0);
    for (int dir = 0; dir < 2; dir++) {
        const uint8_t *in = dir ? ct : pt, *want = dir ? pt : ct;
        gmp_task *t;
        assert_int_equal(gmp_aead_open(c, GMP_ALG_SM4_GCM,
                                       dir ? GMP_TASK_DECRYPT : 0, key, 16, iv,
                                       12, aad, 20, NULL, &t),
                         GMP_OK);
        uint8_t out[128], got_tag[16];
        size_t off = 0, n;
        static const size_t cuts[] = {5, 16, 27, 64};
        size_t prev = 0;
        for (int i = 0; i < 4; i++) {
            n = sizeof out - off;
            assert_int_equal(gmp_task_update(t, in + prev, cuts[i] - prev,
                                             out + off, &n),
                             GMP_OK);
            off += n;
            prev = cuts[i];
        }
        n = 32;
        assert_int_equal(gmp_task_final(t, out + off, &n), GMP_OK);
        off += n;
        assert_int_equal(off, 64);
        assert_memory_equal(out, want, 64);
        assert_int_equal(gmp_task_get_tag(t, got_tag, 16), GMP_OK);
        assert_memory_equal(got_tag, tag, 16);
        gmp_task_free(t);
    }
    /* one flipped ciphertext bit: a different tag */
    ct[10] ^= 1;
    gmp_task *t;
    uint8_t out[96], got_tag[16];
    size_t n = sizeof out;
    assert_int_equal(gmp_aead_open(c, GMP_ALG_SM4_GCM, GMP_TASK_DECRYPT, key,
                                   16, iv, 12, aad, 20, NULL, &t),
                     GMP_OK);
    assert_int_equal(gmp_task_get_tag(t, got_tag, 16), GMP_ERR_STATE);
    assert_int_equal(gmp_task_update(t, ct, 64, out, &n), GMP_OK);
    n = 32;
    assert_int_equal(gmp_task_final(t, out, &n), GMP_OK);
    assert_int_equal(gmp_task_get_tag(t, got_tag, 16), GMP_OK);
    assert_memory_not_equal(got_tag, tag, 16);
    gmp_task_free(t);
    assert_int_equal(gmp_aead_open(c, GMP_ALG_SM4_GCM, 0, key, 16, iv, 0,
                                   NULL, 0, NULL, &t),
                     GMP_ERR_IV);
    gmp_client_close(c);
}

/* TCP transport and the tool both work too. */
static void tcp_and_tool(void **state)
{
    (void)state;
    gmp_options o = gmpt_options(g_d);
    o.server = g_d->tcp;
    o.connections = 3;
    gmp_client *c;
    assert_int_equal(gmp_client_open(&c, &o), GMP_OK);
    uint8_t md[32], want[32];
    assert_int_equal(gmp_digest(c, GMP_ALG_SM3, "abc", 3, md), GMP_OK);
    hex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
        want, 32);
    assert_memory_equal(md, want, 32);
    gmp_client_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kat_sm3),
        cmocka_unit_test(kat_sm4),
        cmocka_unit_test(kat_sm4_million),
        cmocka_unit_test(diff_cipher),
        cmocka_unit_test(diff_sm3),
        cmocka_unit_test(diff_64mb),
        cmocka_unit_test(shm_lane),
        cmocka_unit_test(shm_slots_come_back),
        cmocka_unit_test(window_in_flight),
        cmocka_unit_test(random_bytes_pool),
        cmocka_unit_test(keys_by_handle),
        cmocka_unit_test(session_keys_private),
        cmocka_unit_test(key_and_token_rules),
        cmocka_unit_test(bad_calls),
        cmocka_unit_test(threads),
        cmocka_unit_test(fork_child),
        cmocka_unit_test(fork_while_busy),
        cmocka_unit_test(hmac_sm3),
        cmocka_unit_test(sm4_gcm),
        cmocka_unit_test(tcp_and_tool),
        cmocka_unit_test(restart_mid_job),
    };
    if (getenv("GMPT_ONLY")) /* a pattern of test names, to chase one */
        cmocka_set_test_filter(getenv("GMPT_ONLY"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
