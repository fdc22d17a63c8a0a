/* Wire codec: round trips, truncated, oversize, garbage, interleaved. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gmpool.h"
#include "proto.h"
#include "uvwrite.h"

static size_t make(uint8_t type, uint64_t task, uint32_t seq, const char *pl,
                   uint8_t *out, size_t cap)
{
    gmpc_hdr h = {.type = type, .task_id = task, .seq = seq, .fresh = 77,
                  .priority = 3, .alg = GMP_ALG_SM3, .window = 9,
                  .deadline_ms = 1234, .len = (uint32_t)(pl ? strlen(pl) : 0)};
    return gmpc_frame_build(&h, pl, out, cap);
}

static void roundtrip(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = make(GMPC_T_SHARD, 0x1122334455667788ull, 42, "hello", buf,
                    sizeof buf);
    assert_int_equal(n, GMPC_HDR_LEN + 5);
    gmpc_hdr h;
    size_t used;
    int st;
    assert_int_equal(gmpc_frame_parse(buf, n, &h, &used, &st), GMPC_FRAME);
    assert_int_equal(used, n);
    assert_int_equal(h.type, GMPC_T_SHARD);
    assert_true(h.task_id == 0x1122334455667788ull);
    assert_int_equal(h.seq, 42);
    assert_int_equal(h.fresh, 77);
    assert_int_equal(h.priority, 3);
    assert_int_equal(h.alg, GMP_ALG_SM3);
    assert_int_equal(h.window, 9);
    assert_int_equal(h.deadline_ms, 1234);
    assert_memory_equal(buf + GMPC_HDR_LEN, "hello", 5);
}

/* Every prefix of a frame asks for more and never reads past n. */
static void truncated(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = make(GMPC_T_OPEN, 5, 0, "payload!", buf, sizeof buf);
    for (size_t k = 0; k < n; k++) {
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, buf, k);
        gmpc_hdr h;
        size_t used = 99;
        int st;
        assert_int_equal(gmpc_frame_parse(copy, k, &h, &used, &st),
                         GMPC_NEED_MORE);
        assert_int_equal(used, 0);
        free(copy);
    }
}

static void oversize(void **state)
{
    (void)state;
    uint8_t buf[GMPC_HDR_LEN];
    gmpc_hdr h = {.type = GMPC_T_SHARD, .len = GMPC_MAX_PAYLOAD + 1};
    gmpc_hdr_encode(&h, buf);
    size_t used;
    int st;
    gmpc_hdr out;
    assert_int_equal(gmpc_frame_parse(buf, sizeof buf, &out, &used, &st),
                     GMPC_BAD);
    assert_int_equal(st, GMP_ERR_TOO_BIG);
    /* build refuses too */
    uint8_t big[64];
    assert_int_equal(gmpc_frame_build(&h, NULL, big, sizeof big), 0);
    /* payload that does not fit the caller's buffer */
    h.len = 100;
    assert_int_equal(gmpc_frame_build(&h, big, big, sizeof big), 0);
}

static void bad_type_and_version(void **state)
{
    (void)state;
    uint8_t buf[GMPC_HDR_LEN];
    gmpc_hdr h = {.type = GMPC_T_MAX_};
    gmpc_hdr_encode(&h, buf);
    gmpc_hdr out;
    size_t used;
    int st;
    assert_int_equal(gmpc_frame_parse(buf, sizeof buf, &out, &used, &st),
                     GMPC_BAD);
    assert_int_equal(st, GMP_ERR_PROTO);
    h.type = GMPC_T_PING;
    gmpc_hdr_encode(&h, buf);
    buf[4] = 2; /* version */
    /* the CRC no longer matches: not a header at all */
    assert_int_equal(gmpc_frame_parse(buf, sizeof buf, &out, &used, &st),
                     GMPC_SKIP);
}

/* Garbage before a frame is skipped, including a fake magic with a bad
 * CRC, and the real frame behind it is found. */
static void garbage_resync(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t g = 0;
    memcpy(buf, "junk", 4);
    g += 4;
    memcpy(buf + g, "GMPF", 4); /* stray magic */
    memset(buf + g + 4, 0xAB, 60);
    g += 64;
    size_t n = make(GMPC_T_PING, 9, 1, "x", buf + g, sizeof buf - g);
    size_t off = 0, skipped = 0;
    gmpc_hdr h;
    for (;;) {
        size_t used;
        int st;
        gmpc_parse r = gmpc_frame_parse(buf + off, g + n - off, &h, &used, &st);
        if (r == GMPC_SKIP) {
            assert_true(used > 0);
            off += used;
            skipped += used;
            continue;
        }
        assert_int_equal(r, GMPC_FRAME);
        break;
    }
    assert_int_equal(skipped, g);
    assert_int_equal(h.type, GMPC_T_PING);
    assert_true(h.task_id == 9);
}

static void random_garbage_never_crashes(void **state)
{
    (void)state;
    uint8_t buf[4096];
    srand(1);
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(rand() % (int)sizeof buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rand();
        size_t off = 0;
        while (off < n) {
            gmpc_hdr h;
            size_t used;
            int st;
            gmpc_parse r = gmpc_frame_parse(buf + off, n - off, &h, &used, &st);
            if (r == GMPC_NEED_MORE || r == GMPC_BAD)
                break;
            assert_true(used > 0 && used <= n - off);
            off += used;
        }
    }
}

/* Two frames back to back, fed in odd-sized chunks, come out intact. */
static void interleaved_chunks(void **state)
{
    (void)state;
    uint8_t stream[1024], acc[1024];
    size_t n1 = make(GMPC_T_SHARD, 1, 0, "first-frame", stream, sizeof stream);
    size_t n2 = make(GMPC_T_SHARD, 2, 1, "second", stream + n1,
                     sizeof stream - n1);
    size_t total = n1 + n2, have = 0, fed = 0;
    int frames = 0;
    while (fed < total || have) {
        size_t chunk = fed < total ? (fed % 7) + 1 : 0;
        if (chunk > total - fed)
            chunk = total - fed;
        memcpy(acc + have, stream + fed, chunk);
        have += chunk;
        fed += chunk;
        gmpc_hdr h;
        size_t used;
        int st;
        gmpc_parse r = gmpc_frame_parse(acc, have, &h, &used, &st);
        if (r == GMPC_FRAME) {
            frames++;
            assert_true(h.task_id == (uint64_t)frames);
            memmove(acc, acc + used, have - used);
            have -= used;
        } else {
            assert_int_equal(r, GMPC_NEED_MORE);
            if (fed == total)
                break;
        }
    }
    assert_int_equal(frames, 2);
}

static void payload_codecs(void **state)
{
    (void)state;
    uint8_t buf[512];
    gmpc_wbuf w = {buf, sizeof buf, 0, false};
    gmpc_auth a = {.tenant = "alice", .session_id = 7};
    memset(a.cnonce, 1, sizeof a.cnonce);
    memset(a.mac, 2, sizeof a.mac);
    assert_int_equal(gmpc_auth_encode(&a, &w), GMP_OK);
    gmpc_auth b;
    assert_int_equal(gmpc_auth_decode(buf, w.len, &b), GMP_OK);
    assert_string_equal(b.tenant, "alice");
    assert_true(b.session_id == 7);
    /* truncated and trailing bytes are refused */
    assert_int_equal(gmpc_auth_decode(buf, w.len - 1, &b), GMP_ERR_PROTO);
    assert_int_equal(gmpc_auth_decode(buf, w.len + 1, &b), GMP_ERR_PROTO);
    /* tenant name with a control character */
    buf[2] = '\n';
    assert_int_equal(gmpc_auth_decode(buf, w.len, &b), GMP_ERR_PROTO);

    gmpc_open o = {.key_handle = 0, .key_len = 16, .iv_len = 16,
                   .total_len = 1ull << 40};
    memset(o.key, 3, 16);
    w = (gmpc_wbuf){buf, sizeof buf, 0, false};
    assert_int_equal(gmpc_open_encode(&o, &w), GMP_OK);
    gmpc_open p;
    assert_int_equal(gmpc_open_decode(buf, w.len, &p), GMP_OK);
    assert_int_equal(p.key_len, 16);
    assert_true(p.total_len == 1ull << 40);
    /* a key blob longer than any key */
    buf[4] = 0;
    buf[5] = 65;
    assert_int_equal(gmpc_open_decode(buf, w.len, &p), GMP_ERR_PROTO);
}

static void writer_overflow(void **state)
{
    (void)state;
    uint8_t buf[6];
    gmpc_wbuf w = {buf, sizeof buf, 0, false};
    gmpc_w_u32(&w, 1);
    gmpc_w_u32(&w, 2);
    assert_true(w.overflow);
    assert_int_equal(w.len, 4);
}

/* The client MAC and the server proof differ and bind each input. */
static void auth_macs(void **state)
{
    (void)state;
    uint8_t secret[32] = {1}, sn[32] = {2}, cn[32] = {3};
    uint8_t m1[32], m2[32], m3[32], proof[32];
    assert_int_equal(gmpc_auth_mac(secret, 32, "t", sn, cn, 0, m1), GMP_OK);
    assert_int_equal(gmpc_auth_mac(secret, 32, "t", sn, cn, 1, m2), GMP_OK);
    assert_int_equal(gmpc_auth_mac(secret, 32, "u", sn, cn, 0, m3), GMP_OK);
    assert_int_equal(gmpc_server_proof(secret, 32, "t", sn, cn, 0, proof), GMP_OK);
    assert_memory_not_equal(m1, m2, 32);
    assert_memory_not_equal(m1, m3, 32);
    assert_memory_not_equal(m1, proof, 32);
    uint8_t again[32];
    gmpc_auth_mac(secret, 32, "t", sn, cn, 0, again);
    assert_memory_equal(m1, again, 32);
}

/* The reassembly buffer keeps unconsumed bytes and shrinks when idle. */
static void inbuf(void **state)
{
    (void)state;
    gmpc_inbuf b = {0};
    size_t avail;
    uint8_t *p = gmpc_inbuf_room(&b, 16, &avail);
    assert_non_null(p);
    assert_true(avail >= 16);
    memcpy(p, "0123456789", 10);
    b.len = 10;
    gmpc_inbuf_consume(&b, 4, 16);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.p, "456789", 6);
    p = gmpc_inbuf_room(&b, 1000, &avail);
    assert_true(avail >= 1000);
    assert_memory_equal(b.p, "456789", 6);
    gmpc_inbuf_consume(&b, 100, 16); /* more than held: empties */
    assert_int_equal(b.len, 0);
    assert_null(b.p); /* released: cap was over 4 chunks */
    gmpc_inbuf_free(&b);
}

static void strerror_total(void **state)
{
    (void)state;
    for (int i = 0; i < GMP_ERR_MAX_; i++)
        assert_string_not_equal(gmp_strerror(i), "unknown error");
    assert_string_equal(gmp_strerror(-1), "unknown error");
    assert_string_equal(gmp_strerror(GMP_ERR_MAX_), "unknown error");
}

/* CRC-32/IEEE: the check value, the protocol.md worked example header,
 * and random buffers against the bit-by-bit definition. */
static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void crc32_values(void **state)
{
    (void)state;
    assert_int_equal(gmpc_crc32("123456789", 9), 0xCBF43926u);
    gmpc_hdr h = {.type = GMPC_T_SHARD, .priority = 4,
                  .alg = GMP_ALG_SM4_CBC, .task_id = 0x0123456789ABCDEFull,
                  .seq = 5, .len = 16384};
    uint8_t out[GMPC_HDR_LEN];
    gmpc_hdr_encode(&h, out);
    static const uint8_t crc[4] = {0xe8, 0xe0, 0xfc, 0xab};
    assert_memory_equal(out + 44, crc, 4);
    uint8_t buf[300];
    uint32_t x = 12345;
    for (int r = 0; r < 200; r++) {
        size_t n = (size_t)(r * 37) % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
        assert_int_equal(gmpc_crc32(buf, n), crc_bitwise(buf, n));
    }
}

/* gmpc_write_now over a socketpair: what the socket takes at once, what
 * it takes only in part (the rest queued from mid-buffer), and a peer
 * that is gone (an error, reported once). */
typedef struct wn_peer {
    int fd;
    uint8_t *got;
    size_t want, len;
} wn_peer;

static void *wn_read(void *arg)
{
    wn_peer *p = arg;
    while (p->len < p->want) {
        ssize_t n = read(p->fd, p->got + p->len, p->want - p->len);
        if (n <= 0)
            break;
        p->len += (size_t)n;
    }
    return NULL;
}

static int g_wn_calls, g_wn_status;

static void wn_done(uv_write_t *req, int status)
{
    (void)req;
    g_wn_calls++;
    g_wn_status = status;
}

static void wn_open(uv_loop_t *loop, uv_pipe_t *pipe, int fd[2])
{
    int small = 4096;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
    setsockopt(fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(uv_pipe_init(loop, pipe, 0), 0);
    assert_int_equal(uv_pipe_open(pipe, fd[0]), 0);
}

static void wn_close(uv_loop_t *loop, uv_pipe_t *pipe)
{
    uv_close((uv_handle_t *)pipe, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void write_now(void **state)
{
    (void)state;
    static const size_t lens[] = {44, 300001, 7, 0, 262144, 44, 123457};
    enum { NB = sizeof lens / sizeof lens[0] };
    size_t total = 0;
    for (unsigned i = 0; i < NB; i++)
        total += lens[i];
    uint8_t *src = malloc(total), *got = malloc(total);
    assert_non_null(src);
    assert_non_null(got);
    for (size_t i = 0; i < total; i++)
        src[i] = (uint8_t)(i * 31 + i / 251);
    uv_loop_t loop;
    uv_pipe_t pipe;
    uv_write_t req;
    int fd[2];
    bool queued;

    /* fits: written at once, the callback never runs */
    wn_open(&loop, &pipe, fd);
    uv_buf_t few[2] = {uv_buf_init((char *)src, 44),
                       uv_buf_init((char *)src + 44, 100)};
    g_wn_calls = 0;
    assert_int_equal(gmpc_write_now((uv_stream_t *)&pipe, &req, few, 2,
                                    wn_done, &queued), 0);
    assert_false(queued);
    assert_int_equal(read(fd[1], got, total), 144);
    assert_memory_equal(got, src, 144);

    /* too much for the socket: the rest goes out through req */
    uv_buf_t bufs[NB];
    size_t off = 0;
    for (unsigned i = 0; i < NB; i++) {
        bufs[i] = uv_buf_init((char *)src + off, (unsigned)lens[i]);
        off += lens[i];
    }
    wn_peer peer = {fd[1], got, total, 0};
    pthread_t th;
    assert_int_equal(gmpc_write_now((uv_stream_t *)&pipe, &req, bufs, NB,
                                    wn_done, &queued), 0);
    assert_true(queued);
    assert_int_equal(pthread_create(&th, NULL, wn_read, &peer), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_int_equal(g_wn_calls, 1);
    assert_int_equal(g_wn_status, 0);
    assert_int_equal(peer.len, total);
    assert_memory_equal(got, src, total);
    wn_close(&loop, &pipe);
    close(fd[1]);

    /* the peer is gone: the error comes back once, one way or the other */
    wn_open(&loop, &pipe, fd);
    close(fd[1]);
    signal(SIGPIPE, SIG_IGN);
    g_wn_calls = 0;
    int rc = gmpc_write_now((uv_stream_t *)&pipe, &req, few, 2, wn_done,
                            &queued);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (queued) {
        assert_int_equal(rc, 0);
        assert_int_equal(g_wn_calls, 1);
        assert_true(g_wn_status < 0);
    } else {
        assert_true(rc < 0);
        assert_int_equal(g_wn_calls, 0);
    }
    wn_close(&loop, &pipe);
    free(src);
    free(got);
}

/* Shared-memory references: exact length, and bounds that cannot wrap. */
static void shm_refs(void **state)
{
    (void)state;
    uint8_t b[GMPC_SHM_REF_LEN];
    uint32_t off, len;
    gmpc_shm_ref_encode(b, 0x01020304u, 0xA0B0C0D0u);
    assert_int_equal(b[0], 1);
    assert_int_equal(b[7], 0xD0);
    assert_true(gmpc_shm_ref_decode(b, sizeof b, &off, &len));
    assert_int_equal(off, 0x01020304u);
    assert_int_equal(len, 0xA0B0C0D0u);
    assert_false(gmpc_shm_ref_decode(b, sizeof b - 1, &off, &len));
    assert_false(gmpc_shm_ref_decode(b, sizeof b + 1, &off, &len));
    assert_true(gmpc_shm_fits(4096, 0, 4096));
    assert_true(gmpc_shm_fits(4096, 4096, 0));
    assert_false(gmpc_shm_fits(4096, 4096, 1));
    assert_false(gmpc_shm_fits(4096, 4097, 0));
    assert_false(gmpc_shm_fits(4096, 1, 4096));
    assert_false(gmpc_shm_fits(4096, 0xFFFFFFFFu, 2));
    assert_false(gmpc_shm_fits(4096, 16, UINT64_MAX));
    assert_string_equal(gmpc_type_name(GMPC_T_SHM), "SHM");
    assert_string_equal(gmpc_type_name(GMPC_T_SHM_OK), "SHM_OK");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip),
        cmocka_unit_test(truncated),
        cmocka_unit_test(oversize),
        cmocka_unit_test(bad_type_and_version),
        cmocka_unit_test(garbage_resync),
        cmocka_unit_test(random_garbage_never_crashes),
        cmocka_unit_test(interleaved_chunks),
        cmocka_unit_test(payload_codecs),
        cmocka_unit_test(writer_overflow),
        cmocka_unit_test(auth_macs),
        cmocka_unit_test(inbuf),
        cmocka_unit_test(strerror_total),
        cmocka_unit_test(crc32_values),
        cmocka_unit_test(write_now),
        cmocka_unit_test(shm_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
