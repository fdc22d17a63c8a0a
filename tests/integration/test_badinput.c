/* Bad input against a live gmpoold: frames before authentication, wrong
 * secrets and tenants, garbage, oversize lengths, replayed freshness values,
 * task errors and per-session limits, each answered with its exact status
 * code and (where the daemon must) a closed connection.  While that abuse
 * runs in a loop, a second tenant keeps computing through the client
 * library and its results must still match in-process libcrypto; the second
 * tenant must not reach the first one's keys; and at the end the daemon
 * still serves and has logged one "reject" line per kind of rejection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "gmpool.h"
#include "harness.h"
#include "util.h"

#define T_MS 5000          /* per-reply timeout for raw reads */
#define MAX_TASKS 64u      /* the daemon's default limits.max_tasks */
#define WINDOW_BITS 1024u  /* the anti-replay window */

static gmpt_daemon *g_d;
static char g_tenant[GMPC_MAX_NAME + 1];     /* the default tenant */
static uint8_t g_secret[32];
static size_t g_secret_len;
static char g_bob_creds[200];
static uint8_t g_bob_secret[32];
static size_t g_bob_secret_len;
static uint8_t g_wrong_secret[32];

/* ---- raw protocol helpers ---- */

/* A new connection; reads the CHALLENGE and returns its nonce in snonce. */
static int raw_challenged(uint8_t snonce[GMPC_NONCE_LEN])
{
    int fd = gmpt_raw_connect(g_d);
    assert_true(fd >= 0);
    gmpc_hdr h;
    uint8_t *p = NULL;
    assert_int_equal(gmpt_raw_read_frame(fd, &h, &p, T_MS), 0);
    assert_int_equal(h.type, GMPC_T_CHALLENGE);
    assert_int_equal(h.len, GMPC_NONCE_LEN);
    if (snonce)
        memcpy(snonce, p, GMPC_NONCE_LEN);
    free(p);
    return fd;
}

/* A connection authenticated as the default tenant (a new session). */
static int raw_authed(void)
{
    int fd = gmpt_raw_connect(g_d);
    assert_true(fd >= 0);
    assert_int_equal(gmpt_raw_auth(fd, g_tenant, g_secret, g_secret_len, NULL),
                     GMP_OK);
    return fd;
}

/* Builds an AUTH frame answering snonce into out; returns its length. */
static size_t auth_frame(const uint8_t snonce[GMPC_NONCE_LEN],
                         const char *tenant, const uint8_t *secret,
                         size_t secret_len, uint64_t session_id, uint8_t *out,
                         size_t cap)
{
    gmpc_auth a = {.session_id = session_id};
    snprintf(a.tenant, sizeof a.tenant, "%s", tenant);
    assert_int_equal(gmpc_random(a.cnonce, sizeof a.cnonce), GMP_OK);
    assert_int_equal(gmpc_auth_mac(secret, secret_len, tenant, snonce,
                                   a.cnonce, session_id, a.mac),
                     GMP_OK);
    uint8_t buf[256];
    gmpc_wbuf w = {buf, sizeof buf, 0, false};
    assert_int_equal(gmpc_auth_encode(&a, &w), GMP_OK);
    gmpc_hdr h = {.type = GMPC_T_AUTH, .len = (uint32_t)w.len};
    size_t n = gmpc_frame_build(&h, buf, out, cap);
    assert_true(n > 0);
    return n;
}

static void send_frame(int fd, uint8_t type, uint64_t task, uint32_t seq,
                       const void *payload, uint32_t len)
{
    gmpc_hdr h = {.type = type, .task_id = task, .seq = seq, .len = len};
    assert_int_equal(gmpt_raw_send_frame(fd, &h, payload), 0);
}

static void read_frame(int fd, gmpc_hdr *h, uint8_t **payload)
{
    if (gmpt_raw_read_frame(fd, h, payload, T_MS) != 0)
        fail_msg("no reply frame within %d ms (EOF, timeout or garbage)",
                 T_MS);
}

/* After a fatal error the daemon must send nothing more and close: the
 * next read is EOF (or a reset), never more bytes. */
static void expect_eof(int fd)
{
    uint8_t buf[4096];
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, T_MS);
        if (r == 0)
            fail_msg("connection still open %d ms after a fatal error", T_MS);
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return;
        if (n < 0)
            fail_msg("read: %s", strerror(errno));
        gmpc_hdr h;
        size_t used;
        int st;
        if ((size_t)n >= GMPC_HDR_LEN &&
            gmpc_frame_parse(buf, (size_t)n, &h, &used, &st) != GMPC_SKIP)
            fail_msg("daemon sent a %s frame after a fatal error",
                     gmpc_type_name(h.type));
        fail_msg("daemon sent %zd bytes after a fatal error", n);
    }
}

/* The next frame is an ERROR for task `task` with `status`; when `closes`,
 * it carries GMPC_F_CLOSE and the daemon then closes the connection. */
static void expect_error(int fd, uint64_t task, int status, bool closes)
{
    gmpc_hdr h;
    uint8_t *p = NULL;
    read_frame(fd, &h, &p);
    if (h.type != GMPC_T_ERROR)
        fail_msg("expected ERROR %s, got a %s frame (status %u)",
                 gmp_strerror(status), gmpc_type_name(h.type), h.status);
    if (h.status != status)
        fail_msg("expected %s (%d), got %s (%u): %s", gmp_strerror(status),
                 status, gmp_strerror(h.status), h.status, (char *)p);
    assert_int_equal(h.task_id, task);
    assert_int_equal(h.flags & GMPC_F_CLOSE, closes ? GMPC_F_CLOSE : 0);
    assert_true(h.len > 0 && h.len <= GMPC_MAX_MSG); /* a message */
    free(p);
    if (closes)
        expect_eof(fd);
}

/* The connection is still usable: PING is answered by PONG.  Frames for
 * task `tolerate` (late results or errors of a task just refused) may come
 * first; anything else is a failure. */
static void expect_alive(int fd, uint64_t tolerate)
{
    static const uint64_t ping_id = 0x50494e4750494e47ull;
    send_frame(fd, GMPC_T_PING, ping_id, 0, NULL, 0);
    for (;;) {
        gmpc_hdr h;
        read_frame(fd, &h, NULL);
        if (h.type == GMPC_T_PONG) {
            assert_int_equal(h.task_id, ping_id);
            return;
        }
        if (tolerate && h.task_id == tolerate &&
            (h.type == GMPC_T_RESULT || h.type == GMPC_T_ERROR))
            continue;
        fail_msg("expected PONG, got %s (task %016llx status %u)",
                 gmpc_type_name(h.type), (unsigned long long)h.task_id,
                 h.status);
    }
}

static void send_open(int fd, uint64_t task, uint16_t alg, uint64_t fresh,
                      uint8_t flags, const uint8_t *key, size_t key_len,
                      const uint8_t *iv, size_t iv_len)
{
    gmpc_open o = {.key_len = key_len, .iv_len = iv_len};
    if (key_len)
        memcpy(o.key, key, key_len);
    if (iv_len)
        memcpy(o.iv, iv, iv_len);
    uint8_t buf[160];
    gmpc_wbuf w = {buf, sizeof buf, 0, false};
    assert_int_equal(gmpc_open_encode(&o, &w), GMP_OK);
    gmpc_hdr h = {.type = GMPC_T_OPEN, .task_id = task, .alg = alg,
                  .fresh = fresh, .flags = flags, .priority = 4,
                  .len = (uint32_t)w.len};
    assert_int_equal(gmpt_raw_send_frame(fd, &h, buf), 0);
}

static void send_open_sm3(int fd, uint64_t task, uint64_t fresh)
{
    send_open(fd, task, GMP_ALG_SM3, fresh, 0, NULL, 0, NULL, 0);
}

static void expect_open_ok(int fd, uint64_t task)
{
    gmpc_hdr h;
    uint8_t *p = NULL;
    read_frame(fd, &h, &p);
    if (h.type != GMPC_T_OPEN_OK)
        fail_msg("OPEN of task %016llx: expected OPEN_OK, got %s %s: %s",
                 (unsigned long long)task, gmpc_type_name(h.type),
                 h.type == GMPC_T_ERROR ? gmp_strerror(h.status) : "",
                 p ? (char *)p : "");
    assert_int_equal(h.task_id, task);
    assert_true(h.window >= 1);
    free(p);
}

static void fill_random(void *p, size_t n)
{
    assert_int_equal(gmpc_random(p, n), GMP_OK);
}

/* 100 random bytes that cannot be the start of a frame. */
static void garbage(uint8_t buf[100])
{
    fill_random(buf, 100);
    buf[0] = 0xA5; /* not the first byte of the "GMPF" magic */
}

/* ---- the abuse scenarios (tests 1-6, and test 7 loops them) ---- */

static void abuse_noauth(void)
{
    /* PING before AUTH */
    int fd = raw_challenged(NULL);
    send_frame(fd, GMPC_T_PING, 0x1001, 0, NULL, 0);
    expect_error(fd, 0x1001, GMP_ERR_NOAUTH, true);
    close(fd);

    /* a well-formed OPEN before AUTH */
    fd = raw_challenged(NULL);
    send_open_sm3(fd, 0x1002, 1);
    expect_error(fd, 0x1002, GMP_ERR_NOAUTH, true);
    close(fd);

}

/* A frame before AUTH, then a valid AUTH in the same write: the daemon
 * closes on the first, so the AUTH must not be answered. */
static void abuse_noauth_pipelined(void)
{
    uint8_t snonce[GMPC_NONCE_LEN];
    int fd = raw_challenged(snonce);
    uint8_t buf[GMPC_HDR_LEN + 256];
    gmpc_hdr ping = {.type = GMPC_T_PING, .task_id = 0x1003};
    size_t n = gmpc_frame_build(&ping, NULL, buf, sizeof buf);
    n += auth_frame(snonce, g_tenant, g_secret, g_secret_len, 0, buf + n,
                    sizeof buf - n);
    assert_int_equal(gmpt_raw_send(fd, buf, n), 0);
    expect_error(fd, 0x1003, GMP_ERR_NOAUTH, true);
    close(fd);
}

static void abuse_auth(void)
{
    uint8_t snonce[GMPC_NONCE_LEN], buf[2 * (GMPC_HDR_LEN + 256)];
    size_t n;

    /* wrong secret for the default tenant (through the harness) */
    int fd = gmpt_raw_connect(g_d);
    assert_true(fd >= 0);
    assert_int_equal(gmpt_raw_auth(fd, g_tenant, g_wrong_secret,
                                   sizeof g_wrong_secret, NULL),
                     GMP_ERR_AUTH);
    expect_eof(fd);
    close(fd);

    /* wrong secret again, checking the frame itself */
    fd = raw_challenged(snonce);
    n = auth_frame(snonce, g_tenant, g_wrong_secret, sizeof g_wrong_secret, 0,
                   buf, sizeof buf);
    assert_int_equal(gmpt_raw_send(fd, buf, n), 0);
    expect_error(fd, 0, GMP_ERR_AUTH, true);
    close(fd);

    /* unknown tenant */
    fd = raw_challenged(snonce);
    n = auth_frame(snonce, "mallory", g_secret, g_secret_len, 0, buf,
                   sizeof buf);
    assert_int_equal(gmpt_raw_send(fd, buf, n), 0);
    expect_error(fd, 0, GMP_ERR_AUTH, true);
    close(fd);

    /* another tenant's (valid) secret */
    fd = raw_challenged(snonce);
    n = auth_frame(snonce, g_tenant, g_bob_secret, g_bob_secret_len, 0, buf,
                   sizeof buf);
    assert_int_equal(gmpt_raw_send(fd, buf, n), 0);
    expect_error(fd, 0, GMP_ERR_AUTH, true);
    close(fd);

    /* joining sessions: default's own session works (control); bob with
     * his valid secret cannot join default's session; nobody can join a
     * session that does not exist */
    uint64_t sid = 0;
    int owner = gmpt_raw_connect(g_d);
    assert_true(owner >= 0);
    assert_int_equal(gmpt_raw_auth(owner, g_tenant, g_secret, g_secret_len,
                                   &sid),
                     GMP_OK);
    assert_true(sid != 0);
    uint64_t join = sid;
    fd = gmpt_raw_connect(g_d);
    assert_true(fd >= 0);
    assert_int_equal(gmpt_raw_auth(fd, g_tenant, g_secret, g_secret_len,
                                   &join),
                     GMP_OK);
    assert_int_equal(join, sid);
    close(fd);
    fd = raw_challenged(snonce);
    n = auth_frame(snonce, "bob", g_bob_secret, g_bob_secret_len, sid, buf,
                   sizeof buf);
    assert_int_equal(gmpt_raw_send(fd, buf, n), 0);
    expect_error(fd, 0, GMP_ERR_AUTH, true);
    close(fd);
    fd = raw_challenged(snonce);
    n = auth_frame(snonce, g_tenant, g_secret, g_secret_len, sid ^ 0x5a5a5a5a,
                   buf, sizeof buf);
    assert_int_equal(gmpt_raw_send(fd, buf, n), 0);
    expect_error(fd, 0, GMP_ERR_AUTH, true);
    close(fd);
    expect_alive(owner, 0);
    close(owner);

    /* a malformed AUTH payload: refused and closed */
    fd = raw_challenged(NULL);
    static const uint8_t short_auth[4] = {0x00, 0x05, 0x61, 0x62};
    send_frame(fd, GMPC_T_AUTH, 0, 0, short_auth, 4);
    gmpc_hdr h;
    uint8_t *p = NULL;
    read_frame(fd, &h, &p);
    assert_int_equal(h.type, GMPC_T_ERROR);
    if (h.status != GMP_ERR_PROTO && h.status != GMP_ERR_NOAUTH &&
        h.status != GMP_ERR_AUTH)
        fail_msg("malformed AUTH answered with %s", gmp_strerror(h.status));
    assert_int_equal(h.flags & GMPC_F_CLOSE, GMPC_F_CLOSE);
    free(p);
    expect_eof(fd);
    close(fd);

    /* the client library with a wrong secret, and with an unknown tenant */
    char hex[65];
    gmpc_hex_encode(g_wrong_secret, sizeof g_wrong_secret, hex);
    const char *tenants[] = {"default", "nosuchtenant"};
    for (size_t i = 0; i < 2; i++) {
        gmp_options o = {.server = g_d->sock, .tenant = tenants[i],
                         .secret_hex = hex, .timeout_ms = 10000};
        gmp_client *c = NULL;
        uint8_t md[GMP_SM3_DIGEST_LEN];
        assert_int_equal(gmp_client_open(&c, &o), GMP_OK);
        assert_int_equal(gmp_digest(c, GMP_ALG_SM3, "abc", 3, md),
                         GMP_ERR_AUTH);
        const char *e = gmp_client_last_error();
        assert_non_null(e);
        assert_true(e[0] != '\0');
        gmp_client_close(c);
    }
}

/* A wrong AUTH and the right one in the same write: one try per
 * connection, the second must not be answered. */
static void abuse_auth_pipelined(void)
{
    uint8_t snonce[GMPC_NONCE_LEN], buf[2 * (GMPC_HDR_LEN + 256)];
    int fd = raw_challenged(snonce);
    size_t n = auth_frame(snonce, g_tenant, g_wrong_secret,
                          sizeof g_wrong_secret, 0, buf, sizeof buf);
    n += auth_frame(snonce, g_tenant, g_secret, g_secret_len, 0, buf + n,
                    sizeof buf - n);
    assert_int_equal(gmpt_raw_send(fd, buf, n), 0);
    expect_error(fd, 0, GMP_ERR_AUTH, true);
    close(fd);
}

static void abuse_garbage(void)
{
    uint8_t junk[100], hdr[GMPC_HDR_LEN];

    /* on a fresh connection */
    int fd = raw_challenged(NULL);
    garbage(junk);
    assert_int_equal(gmpt_raw_send(fd, junk, sizeof junk), 0);
    expect_error(fd, 0, GMP_ERR_PROTO, true);
    close(fd);

    /* on an authenticated one */
    fd = raw_authed();
    garbage(junk);
    assert_int_equal(gmpt_raw_send(fd, junk, sizeof junk), 0);
    expect_error(fd, 0, GMP_ERR_PROTO, true);
    close(fd);

    /* the magic followed by a header whose CRC does not match */
    fd = raw_authed();
    gmpc_hdr h = {.type = GMPC_T_PING, .task_id = 0x3001};
    gmpc_hdr_encode(&h, hdr);
    hdr[20] ^= 0x40;
    assert_int_equal(gmpt_raw_send(fd, hdr, sizeof hdr), 0);
    expect_error(fd, 0, GMP_ERR_PROTO, true);
    close(fd);

    /* intact headers (good CRC) with a bad version or an unknown type */
    static const struct {
        uint8_t version, type;
    } bad[] = {{GMPC_VERSION + 1, GMPC_T_PING}, {GMPC_VERSION, 0},
               {GMPC_VERSION, 0xEE}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fd = raw_authed();
        h = (gmpc_hdr){.type = GMPC_T_PING, .task_id = 0x3002 + i};
        gmpc_hdr_encode(&h, hdr);
        hdr[4] = bad[i].version;
        hdr[5] = bad[i].type;
        uint32_t crc = gmpc_crc32(hdr, 44);
        hdr[44] = (uint8_t)(crc >> 24);
        hdr[45] = (uint8_t)(crc >> 16);
        hdr[46] = (uint8_t)(crc >> 8);
        hdr[47] = (uint8_t)crc;
        assert_int_equal(gmpt_raw_send(fd, hdr, sizeof hdr), 0);
        expect_error(fd, 0x3002 + i, GMP_ERR_PROTO, true);
        close(fd);
    }

    /* a server-to-client frame type sent by the client */
    fd = raw_authed();
    send_frame(fd, GMPC_T_RESULT, 0x3010, 0, NULL, 0);
    expect_error(fd, 0x3010, GMP_ERR_PROTO, true);
    close(fd);

    /* an OPEN whose payload does not decode */
    fd = raw_authed();
    gmpc_hdr o = {.type = GMPC_T_OPEN, .task_id = 0x3011, .fresh = 1,
                  .alg = GMP_ALG_SM3, .len = 3};
    assert_int_equal(gmpt_raw_send_frame(fd, &o, "\x00\x00\x00"), 0);
    expect_error(fd, 0x3011, GMP_ERR_PROTO, true);
    close(fd);
}

/* After a fatal protocol error on an authenticated connection, frames
 * that follow in the same write must not be executed or answered. */
static void abuse_proto_pipelined(void)
{
    int fd = raw_authed();
    uint8_t buf[3 * GMPC_HDR_LEN];
    gmpc_hdr bad = {.type = GMPC_T_RESULT, .task_id = 0x3020};
    gmpc_hdr ping = {.type = GMPC_T_PING, .task_id = 0x3021};
    size_t n = gmpc_frame_build(&bad, NULL, buf, sizeof buf);
    n += gmpc_frame_build(&ping, NULL, buf + n, sizeof buf - n);
    assert_int_equal(n, 2 * GMPC_HDR_LEN);
    assert_int_equal(gmpt_raw_send(fd, buf, n), 0);
    expect_error(fd, 0x3020, GMP_ERR_PROTO, true);
    close(fd);
}

static void abuse_too_big(void)
{
    uint8_t hdr[GMPC_HDR_LEN];

    /* a header announcing GMPC_MAX_PAYLOAD + 1 bytes, before and after
     * authentication; only the header is sent */
    for (int authed = 0; authed < 2; authed++) {
        int fd = authed ? raw_authed() : raw_challenged(NULL);
        gmpc_hdr h = {.type = authed ? GMPC_T_SHARD : GMPC_T_AUTH,
                      .task_id = 0x4001 + (uint64_t)authed,
                      .len = GMPC_MAX_PAYLOAD + 1};
        gmpc_hdr_encode(&h, hdr);
        assert_int_equal(gmpt_raw_send(fd, hdr, sizeof hdr), 0);
        expect_error(fd, 0x4001 + (uint64_t)authed, GMP_ERR_TOO_BIG, true);
        close(fd);
    }

    /* a shard over GMP_SHARD_MAX but within the frame bound: refused for
     * its task only; the connection goes on */
    int fd = raw_authed();
    uint8_t *big = calloc(1, GMPC_MAX_PAYLOAD);
    assert_non_null(big);
    const uint32_t lens[] = {GMP_SHARD_MAX + 1, GMPC_MAX_PAYLOAD};
    for (uint64_t i = 0; i < 2; i++) {
        uint64_t task = 0x4010 + i;
        send_open_sm3(fd, task, 1 + i);
        expect_open_ok(fd, task);
        send_frame(fd, GMPC_T_SHARD, task, 0, big, lens[i]);
        expect_error(fd, task, GMP_ERR_TOO_BIG, false);
        expect_alive(fd, 0);
    }
    free(big);

    /* a RANDOM request over its bound */
    uint8_t req[4] = {0, 1, 0, 1}; /* 65537 */
    send_frame(fd, GMPC_T_RANDOM, 0x4020, 0, req, 4);
    expect_error(fd, 0x4020, GMP_ERR_TOO_BIG, false);
    expect_alive(fd, 0);
    close(fd);
}

static void abuse_replay(void)
{
    int fd = gmpt_raw_connect(g_d);
    assert_true(fd >= 0);
    assert_int_equal(gmpt_raw_auth(fd, g_tenant, g_secret, g_secret_len, NULL),
                     GMP_OK);

    send_open_sm3(fd, 0x5001, 5);      /* A */
    expect_open_ok(fd, 0x5001);
    send_open_sm3(fd, 0x5002, 5);      /* B, same freshness */
    expect_error(fd, 0x5002, GMP_ERR_REPLAY, false);
    send_open_sm3(fd, 0x5003, 0);      /* zero is never fresh */
    expect_error(fd, 0x5003, GMP_ERR_REPLAY, false);
    send_open_sm3(fd, 0x5004, 5000);
    expect_open_ok(fd, 0x5004);
    send_open_sm3(fd, 0x5005, 3000);   /* far below the window */
    expect_error(fd, 0x5005, GMP_ERR_REPLAY, false);
    send_open_sm3(fd, 0x5006, 5000 - WINDOW_BITS); /* just outside */
    expect_error(fd, 0x5006, GMP_ERR_REPLAY, false);
    send_open_sm3(fd, 0x5007, 5);      /* A's value, now out of window */
    expect_error(fd, 0x5007, GMP_ERR_REPLAY, false);
    /* inside the window and unused: accepted once, out of order */
    send_open_sm3(fd, 0x5008, 4500);
    expect_open_ok(fd, 0x5008);
    send_open_sm3(fd, 0x5009, 4500);
    expect_error(fd, 0x5009, GMP_ERR_REPLAY, false);
    send_open_sm3(fd, 0x500a, 5000);
    expect_error(fd, 0x500a, GMP_ERR_REPLAY, false);

    /* the connection is still usable and a refused OPEN left no task */
    expect_alive(fd, 0);
    send_frame(fd, GMPC_T_FINAL, 0x5002, 0, "abc", 3);
    expect_error(fd, 0x5002, GMP_ERR_NO_TASK, false);
    send_open_sm3(fd, 0x500b, 5001);
    expect_open_ok(fd, 0x500b);
    /* and a task opened on it works end to end: SM3("abc") */
    send_frame(fd, GMPC_T_FINAL, 0x500b, 0, "abc", 3);
    gmpc_hdr h;
    uint8_t *p = NULL, want[32];
    read_frame(fd, &h, &p);
    assert_int_equal(h.type, GMPC_T_FINAL_OK);
    assert_int_equal(h.task_id, 0x500b);
    assert_int_equal(h.len, 32);
    assert_int_equal(gmpc_hex_decode("66c7f0f462eeedd9d1f2d46bdc10e4e2"
                                     "4167c4875cf2f7a2297da02b8f4ba8e0",
                                     want, 32),
                     32);
    assert_memory_equal(p, want, 32);
    free(p);
    close(fd);
}

static void abuse_tasks(void)
{
    uint8_t key[16], iv[16], data[100];
    uint64_t fresh = 1;
    fill_random(key, sizeof key);
    fill_random(iv, sizeof iv);
    fill_random(data, sizeof data);
    int fd = raw_authed();

    /* shard and final for a task never opened */
    send_frame(fd, GMPC_T_SHARD, 0x6001, 0, data, sizeof data);
    expect_error(fd, 0x6001, GMP_ERR_NO_TASK, false);
    send_frame(fd, GMPC_T_FINAL, 0x6001, 0, NULL, 0);
    expect_error(fd, 0x6001, GMP_ERR_NO_TASK, false);

    /* duplicate seq 0 after seq 0 was released (its RESULT came back) */
    send_open_sm3(fd, 0x6002, fresh++);
    expect_open_ok(fd, 0x6002);
    send_frame(fd, GMPC_T_SHARD, 0x6002, 0, data, sizeof data);
    gmpc_hdr h;
    read_frame(fd, &h, NULL);
    assert_int_equal(h.type, GMPC_T_RESULT);
    assert_int_equal(h.task_id, 0x6002);
    assert_int_equal(h.seq, 0);
    send_frame(fd, GMPC_T_SHARD, 0x6002, 0, data, sizeof data);
    expect_error(fd, 0x6002, GMP_ERR_SEQ, false);
    expect_alive(fd, 0);

    /* duplicate of a shard still waiting for its predecessors */
    send_open_sm3(fd, 0x6003, fresh++);
    expect_open_ok(fd, 0x6003);
    send_frame(fd, GMPC_T_SHARD, 0x6003, 2, data, sizeof data);
    send_frame(fd, GMPC_T_SHARD, 0x6003, 2, data, sizeof data);
    expect_error(fd, 0x6003, GMP_ERR_SEQ, false);
    /* the refusal failed the task, and the first shard 2, accepted and
     * waiting, still gets its one answer: an error for the task */
    expect_error(fd, 0x6003, GMP_ERR_SEQ, false);
    expect_alive(fd, 0);

    /* a FINAL alone is a whole task; nothing may follow a final item: a
     * shard above a FINAL still waiting for seq 0 is SEQ, and the FINAL
     * fails with it */
    send_open_sm3(fd, 0x6A01, fresh++);
    expect_open_ok(fd, 0x6A01);
    send_frame(fd, GMPC_T_FINAL, 0x6A01, 0, "abc", 3);
    read_frame(fd, &h, NULL);
    assert_int_equal(h.type, GMPC_T_FINAL_OK);
    send_open_sm3(fd, 0x6A02, fresh++);
    expect_open_ok(fd, 0x6A02);
    send_frame(fd, GMPC_T_FINAL, 0x6A02, 1, NULL, 0);
    send_frame(fd, GMPC_T_SHARD, 0x6A02, 2, data, sizeof data);
    expect_error(fd, 0x6A02, GMP_ERR_SEQ, false);
    expect_error(fd, 0x6A02, GMP_ERR_SEQ, false); /* the held FINAL */
    expect_alive(fd, 0);

    /* a sequence number far ahead of the reorder span */
    send_open_sm3(fd, 0x6004, fresh++);
    expect_open_ok(fd, 0x6004);
    send_frame(fd, GMPC_T_SHARD, 0x6004, 0x7fffffffu, data, sizeof data);
    expect_error(fd, 0x6004, GMP_ERR_SEQ, false);
    expect_alive(fd, 0);

    /* unknown algorithm, bad key length, bad IV length */
    send_open(fd, 0x6005, 0x7777, fresh++, 0, NULL, 0, NULL, 0);
    expect_error(fd, 0x6005, GMP_ERR_ALG, false);
    send_open(fd, 0x6006, GMP_ALG_SM4_CBC, fresh++, 0, key, 15, iv, 16);
    expect_error(fd, 0x6006, GMP_ERR_KEY, false);
    send_open(fd, 0x6007, GMP_ALG_SM4_CBC, fresh++, 0, key, 16, iv, 8);
    expect_error(fd, 0x6007, GMP_ERR_IV, false);
    send_open(fd, 0x6008, GMP_ALG_SM4_CBC, fresh++, 0, key, 16, NULL, 0);
    expect_error(fd, 0x6008, GMP_ERR_IV, false);
    /* a stored-key handle that does not exist */
    gmpc_open ko = {.key_handle = 0x7fff1234, .iv_len = 16};
    memcpy(ko.iv, iv, 16);
    uint8_t ob[160];
    gmpc_wbuf w = {ob, sizeof ob, 0, false};
    assert_int_equal(gmpc_open_encode(&ko, &w), GMP_OK);
    gmpc_hdr oh = {.type = GMPC_T_OPEN, .task_id = 0x6009,
                   .alg = GMP_ALG_SM4_CBC, .fresh = fresh++,
                   .len = (uint32_t)w.len};
    assert_int_equal(gmpt_raw_send_frame(fd, &oh, ob), 0);
    expect_error(fd, 0x6009, GMP_ERR_KEY, false);
    /* control: the same cipher with good lengths opens */
    send_open(fd, 0x600a, GMP_ALG_SM4_CBC, fresh++, 0, key, 16, iv, 16);
    expect_open_ok(fd, 0x600a);
    /* an id already open */
    send_open_sm3(fd, 0x600a, fresh++);
    expect_error(fd, 0x600a, GMP_ERR_EXISTS, false);
    expect_alive(fd, 0);
    close(fd);

    /* per-session open-task limit on a new session */
    fd = raw_authed();
    fresh = 1;
    for (uint64_t i = 0; i < MAX_TASKS; i++) {
        send_open_sm3(fd, 0x6100 + i, fresh++);
        expect_open_ok(fd, 0x6100 + i);
    }
    send_open_sm3(fd, 0x6100 + MAX_TASKS, fresh++);
    expect_error(fd, 0x6100 + MAX_TASKS, GMP_ERR_LIMIT, false);
    /* aborting one frees its slot */
    send_frame(fd, GMPC_T_ABORT, 0x6100, 0, NULL, 0);
    send_open_sm3(fd, 0x6100 + MAX_TASKS, fresh++);
    expect_open_ok(fd, 0x6100 + MAX_TASKS);
    send_open_sm3(fd, 0x6200, fresh++);
    expect_error(fd, 0x6200, GMP_ERR_LIMIT, false);
    expect_alive(fd, 0);
    close(fd);
}

/* ---- group setup ---- */

static int setup(void **state)
{
    (void)state;
    g_d = gmpt_start(NULL);
    if (gmpt_load_creds(g_d->creds, g_tenant, sizeof g_tenant, g_secret,
                        &g_secret_len) != 0) {
        fprintf(stderr, "cannot load %s\n", g_d->creds);
        return -1;
    }
    snprintf(g_bob_creds, sizeof g_bob_creds, "%s/bob.credentials", g_d->dir);
    char args[300];
    snprintf(args, sizeof args, "-o '%s' tenant add bob", g_bob_creds);
    char *out = NULL;
    int rc = gmpt_ctl(g_d, &out, args);
    free(out);
    struct stat st;
    char bob[GMPC_MAX_NAME + 1];
    if (rc != 0 || stat(g_bob_creds, &st) != 0 ||
        (st.st_mode & 0777) != 0600 ||
        gmpt_load_creds(g_bob_creds, bob, sizeof bob, g_bob_secret,
                        &g_bob_secret_len) != 0 ||
        strcmp(bob, "bob") != 0) {
        fprintf(stderr, "gmpoolctl tenant add bob failed (exit %d)\n", rc);
        return -1;
    }
    do
        gmpc_random(g_wrong_secret, sizeof g_wrong_secret);
    while (memcmp(g_wrong_secret, g_secret, sizeof g_wrong_secret) == 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gmpt_stop(g_d);
    return 0;
}

/* ---- tests ---- */

static void t1_noauth(void **state)
{
    (void)state;
    abuse_noauth();
}

static void t1b_noauth_pipelined(void **state)
{
    (void)state;
    abuse_noauth_pipelined();
}

static void t2_auth(void **state)
{
    (void)state;
    abuse_auth();
}

static void t2b_auth_pipelined(void **state)
{
    (void)state;
    abuse_auth_pipelined();
}

static void t3_garbage(void **state)
{
    (void)state;
    abuse_garbage();
}

static void t3b_proto_pipelined(void **state)
{
    (void)state;
    abuse_proto_pipelined();
}

static void t4_too_big(void **state)
{
    (void)state;
    abuse_too_big();
}

static void t5_replay(void **state)
{
    (void)state;
    abuse_replay();
}

static void t6_tasks(void **state)
{
    (void)state;
    abuse_tasks();
}

/* Test 7: bob computes through the client library while the main thread
 * abuses the daemon.  No cmocka asserts off the main thread: the worker
 * records, the main thread checks. */
#define BOB_DIGEST_LEN (16u * 1024u * 1024u)
#define BOB_CIPHER_LEN (8u * 1024u * 1024u)

typedef struct bob_run {
    atomic_bool done;
    int open_rc, digest_rc, cipher_rc, ref_rc;
    bool digest_match, cipher_match;
    size_t cipher_len;
    char err[GMPC_MAX_MSG + 64];
} bob_run;

static int ref_sm4_cbc(const uint8_t *key, const uint8_t *iv,
                       const uint8_t *in, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    int ok = ctx && EVP_EncryptInit_ex(ctx, EVP_sm4_cbc(), NULL, key, iv) &&
             EVP_CIPHER_CTX_set_padding(ctx, 0) &&
             EVP_EncryptUpdate(ctx, out, &n1, in, (int)len) &&
             EVP_EncryptFinal_ex(ctx, out + n1, &n2) &&
             (size_t)(n1 + n2) == len;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

static void *bob_main(void *arg)
{
    bob_run *r = arg;
    gmp_options o = {.server = g_d->sock, .credentials = g_bob_creds,
                     .timeout_ms = 30000};
    gmp_client *c = NULL;
    uint8_t *in = malloc(BOB_DIGEST_LEN);
    uint8_t *out = malloc(BOB_CIPHER_LEN + 32), *ref = malloc(BOB_CIPHER_LEN);
    uint8_t md[32], md_ref[32], key[16], iv[16];
    unsigned md_len = 0;
    r->open_rc = r->digest_rc = r->cipher_rc = r->ref_rc = -1;
    if (!in || !out || !ref || gmpc_random(in, BOB_DIGEST_LEN) != GMP_OK ||
        gmpc_random(key, 16) != GMP_OK || gmpc_random(iv, 16) != GMP_OK)
        goto done;
    r->open_rc = gmp_client_open(&c, &o);
    if (r->open_rc != GMP_OK)
        goto done;
    r->digest_rc = gmp_digest(c, GMP_ALG_SM3, in, BOB_DIGEST_LEN, md);
    if (r->digest_rc != GMP_OK)
        snprintf(r->err, sizeof r->err, "digest: %s", gmp_client_last_error());
    r->ref_rc = EVP_Digest(in, BOB_DIGEST_LEN, md_ref, &md_len, EVP_sm3(),
                           NULL) && md_len == 32
                    ? 0
                    : -1;
    r->digest_match = r->digest_rc == GMP_OK && r->ref_rc == 0 &&
                      memcmp(md, md_ref, 32) == 0;
    size_t n = BOB_CIPHER_LEN + 32;
    r->cipher_rc = gmp_cipher(c, GMP_ALG_SM4_CBC, 0, key, 16, iv, 16, in,
                              BOB_CIPHER_LEN, out, &n);
    if (r->cipher_rc != GMP_OK)
        snprintf(r->err, sizeof r->err, "cipher: %s", gmp_client_last_error());
    r->cipher_len = n;
    if (r->ref_rc == 0)
        r->ref_rc = ref_sm4_cbc(key, iv, in, BOB_CIPHER_LEN, ref);
    r->cipher_match = r->cipher_rc == GMP_OK && r->ref_rc == 0 &&
                      n == BOB_CIPHER_LEN &&
                      memcmp(out, ref, BOB_CIPHER_LEN) == 0;
done:
    gmp_client_close(c);
    free(in);
    free(out);
    free(ref);
    atomic_store(&r->done, true);
    return NULL;
}

static void t7_isolation(void **state)
{
    (void)state;
    static bob_run r;
    memset(&r, 0, sizeof r);
    atomic_init(&r.done, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bob_main, &r), 0);
    uint64_t t0 = gmpc_now_ns();
    unsigned rounds = 0;
    /* at least one full round of abuse overlapping bob's work, at most 60 s */
    do {
        abuse_noauth();
        abuse_auth();
        abuse_garbage();
        abuse_too_big();
        abuse_replay();
        abuse_tasks();
        rounds++;
    } while (!atomic_load(&r.done) &&
             gmpc_now_ns() - t0 < 60ull * 1000000000ull);
    pthread_join(th, NULL);
    fprintf(stderr, "isolation: %u abuse rounds in %.2f s\n", rounds,
            (double)(gmpc_now_ns() - t0) / 1e9);
    assert_int_equal(r.open_rc, GMP_OK);
    if (r.digest_rc != GMP_OK || r.cipher_rc != GMP_OK)
        fail_msg("bob's calls failed: digest %s, cipher %s (%s)",
                 gmp_strerror(r.digest_rc), gmp_strerror(r.cipher_rc), r.err);
    assert_int_equal(r.ref_rc, 0);
    assert_int_equal(r.cipher_len, BOB_CIPHER_LEN);
    assert_true(r.digest_match);
    assert_true(r.cipher_match);
}

/* Test 8: bob cannot reach default's keys; export rules. */
static void t8_keys(void **state)
{
    (void)state;
    gmp_options od = gmpt_options(g_d);
    gmp_options ob = {.server = g_d->sock, .credentials = g_bob_creds,
                      .timeout_ms = 10000};
    gmp_client *def = NULL, *bob = NULL;
    assert_int_equal(gmp_client_open(&def, &od), GMP_OK);
    assert_int_equal(gmp_client_open(&bob, &ob), GMP_OK);

    uint8_t key16[16], iv[16], pt[64], ct[64 + 32], ref[64];
    fill_random(key16, sizeof key16);
    fill_random(iv, sizeof iv);
    fill_random(pt, sizeof pt);
    assert_int_equal(ref_sm4_cbc(key16, iv, pt, sizeof pt, ref), 0);
    uint32_t h = 0;
    assert_int_equal(gmp_key_import(def, GMP_KEY_SM4, GMP_KEYF_TOKEN, "k",
                                    key16, 16, &h),
                     GMP_OK);
    assert_true(h != 0);

    /* control: default itself can use the key by handle */
    gmp_task *t = NULL;
    assert_int_equal(gmp_cipher_open(def, GMP_ALG_SM4_CBC, 0, NULL, 0, h, iv,
                                     16, NULL, &t),
                     GMP_OK);
    size_t n1 = sizeof ct, n2;
    assert_int_equal(gmp_task_update(t, pt, sizeof pt, ct, &n1), GMP_OK);
    n2 = sizeof ct - n1;
    assert_int_equal(gmp_task_final(t, ct + n1, &n2), GMP_OK);
    gmp_task_free(t);
    assert_int_equal(n1 + n2, sizeof pt);
    assert_memory_equal(ct, ref, sizeof pt);

    /* bob: the handle does not exist for him */
    t = NULL;
    assert_int_equal(gmp_cipher_open(bob, GMP_ALG_SM4_CBC, 0, NULL, 0, h, iv,
                                     16, NULL, &t),
                     GMP_ERR_KEY);
    assert_null(t);
    gmp_key_info info;
    assert_int_equal(gmp_key_get_info(bob, h, &info), GMP_ERR_NOT_FOUND);
    uint8_t val[GMP_MAX_KEY_LEN];
    size_t vl = sizeof val;
    assert_int_equal(gmp_key_export(bob, h, val, &vl), GMP_ERR_NOT_FOUND);
    assert_int_equal(gmp_key_destroy(bob, h), GMP_ERR_NOT_FOUND);
    /* ... and his attempts left default's key intact */
    assert_int_equal(gmp_key_get_info(def, h, &info), GMP_OK);
    assert_int_equal(info.handle, h);
    assert_int_equal(info.type, GMP_KEY_SM4);
    assert_int_equal(info.len, 16);
    assert_int_equal(info.flags, GMP_KEYF_TOKEN);
    assert_string_equal(info.label, "k");

    /* export rules */
    uint32_t hs = 0, hn = 0, hx = 0;
    assert_int_equal(gmp_key_import(def, GMP_KEY_SM4,
                                    GMP_KEYF_SENSITIVE | GMP_KEYF_EXTRACTABLE,
                                    "sensitive", key16, 16, &hs),
                     GMP_OK);
    assert_int_equal(gmp_key_import(def, GMP_KEY_SM4, 0, "plain", key16, 16,
                                    &hn),
                     GMP_OK);
    assert_int_equal(gmp_key_import(def, GMP_KEY_SM4, GMP_KEYF_EXTRACTABLE,
                                    "extractable", key16, 16, &hx),
                     GMP_OK);
    vl = sizeof val;
    assert_int_equal(gmp_key_export(def, hs, val, &vl), GMP_ERR_DENIED);
    vl = sizeof val;
    assert_int_equal(gmp_key_export(def, hn, val, &vl), GMP_ERR_DENIED);
    vl = sizeof val;
    assert_int_equal(gmp_key_export(def, h, val, &vl), GMP_ERR_DENIED);
    vl = sizeof val;
    memset(val, 0, sizeof val);
    assert_int_equal(gmp_key_export(def, hx, val, &vl), GMP_OK);
    assert_int_equal(vl, 16);
    assert_memory_equal(val, key16, 16);
    /* bob cannot export default's extractable key either */
    vl = sizeof val;
    assert_int_equal(gmp_key_export(bob, hx, val, &vl), GMP_ERR_NOT_FOUND);

    assert_int_equal(gmp_key_destroy(def, h), GMP_OK);
    assert_int_equal(gmp_key_get_info(def, h, &info), GMP_ERR_NOT_FOUND);
    gmp_client_close(bob);
    gmp_client_close(def);
}

/* Test 9: the daemon still serves, logged every kind of rejection, and
 * never logged a secret. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static bool log_has_reject(const char *log, const char *what)
{
    for (const char *line = log; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *r = memmem(line, len, "reject ", 7);
        if (r && memmem(r, len - (size_t)(r - line), what, strlen(what)))
            return true;
        line = end ? end + 1 : NULL;
    }
    return false;
}

static void t9_still_serving(void **state)
{
    (void)state;
    gmp_options o = gmpt_options(g_d);
    gmp_client *c = NULL;
    uint8_t md[32], want[32];
    assert_int_equal(gmp_client_open(&c, &o), GMP_OK);
    assert_int_equal(gmp_digest(c, GMP_ALG_SM3, "abc", 3, md), GMP_OK);
    assert_int_equal(gmpc_hex_decode("66c7f0f462eeedd9d1f2d46bdc10e4e2"
                                     "4167c4875cf2f7a2297da02b8f4ba8e0",
                                     want, 32),
                     32);
    assert_memory_equal(md, want, 32);
    gmp_client_close(c);

    char *log = read_file(g_d->log);
    /* one kind of line per rejection triggered above: message words, and
     * the status text the daemon appends in parentheses */
    static const char *const words[] = {
        "before authentication", "authentication failed", "garbage",
        "oversize", "invalid frame header", "unexpected", "malformed OPEN",
        "refused", "no open task", "cannot open task", "key request refused",
    };
    static const int codes[] = {
        GMP_ERR_NOAUTH, GMP_ERR_AUTH,   GMP_ERR_PROTO,     GMP_ERR_TOO_BIG,
        GMP_ERR_REPLAY, GMP_ERR_NO_TASK, GMP_ERR_SEQ,      GMP_ERR_ALG,
        GMP_ERR_KEY,    GMP_ERR_IV,     GMP_ERR_LIMIT,     GMP_ERR_EXISTS,
        GMP_ERR_DENIED, GMP_ERR_NOT_FOUND,
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!log_has_reject(log, words[i]))
            fail_msg("no 'reject ... %s' line in %s", words[i], g_d->log);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "(%s)", gmp_strerror(codes[i]));
        if (!log_has_reject(log, what))
            fail_msg("no 'reject ... %s' line in %s", what, g_d->log);
    }
    /* the closing ones say so */
    assert_true(log_has_reject(log, "authentication failed for 'mallory'"));
    assert_true(log_has_reject(log, ", closing"));
    /* a sanitizer build of the daemon reported nothing so far */
    if (strstr(log, "runtime error:") || strstr(log, "Sanitizer"))
        fail_msg("sanitizer report in %s", g_d->log);
    /* no secret ever reaches the log */
    const struct {
        const uint8_t *p;
        size_t n;
    } secrets[] = {{g_secret, g_secret_len},
                   {g_bob_secret, g_bob_secret_len},
                   {g_wrong_secret, sizeof g_wrong_secret}};
    for (size_t i = 0; i < 3; i++) {
        char hex[65];
        gmpc_hex_encode(secrets[i].p, secrets[i].n, hex);
        if (strcasestr(log, hex))
            fail_msg("a tenant secret appears in %s", g_d->log);
    }
    free(log);
}

/* The per-session buffer and the daemon's session count are bounded: going
 * over either is a clear LIMIT, never memory growth or a hang.  Runs on a
 * daemon of its own with small limits. */
static void t10_limits(void **state)
{
    (void)state;
    char cfg[64];
    snprintf(cfg, sizeof cfg, "/tmp/gmpt-limits.%d.ini", (int)getpid());
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("[limits]\nmax_buffered = 1M\nmax_sessions = 2\n", f);
    fclose(f);
    const char *extra[] = {"--config", cfg, NULL};
    gmpt_daemon *shared = g_d;
    char tenant[sizeof g_tenant];
    uint8_t secret[32];
    size_t secret_len = g_secret_len;
    memcpy(tenant, g_tenant, sizeof tenant);
    memcpy(secret, g_secret, sizeof secret);
    g_d = gmpt_start(extra);
    assert_int_equal(gmpt_load_creds(g_d->creds, g_tenant, sizeof g_tenant,
                                     g_secret, &g_secret_len),
                     0);

    /* shard 1 waits for shard 0 and holds the whole 1 MiB; shard 2 is
     * over the limit: the task fails and the held shard is answered */
    int fd = raw_authed();
    send_open_sm3(fd, 0x7001, 1);
    expect_open_ok(fd, 0x7001);
    uint8_t *big = calloc(1, GMP_SHARD_MAX);
    send_frame(fd, GMPC_T_SHARD, 0x7001, 1, big, GMP_SHARD_MAX);
    send_frame(fd, GMPC_T_SHARD, 0x7001, 2, big, GMP_SHARD_MAX);
    expect_error(fd, 0x7001, GMP_ERR_LIMIT, false);
    expect_error(fd, 0x7001, GMP_ERR_LIMIT, false);
    expect_alive(fd, 0);
    free(big);

    /* two sessions are allowed, a third is refused and closed */
    int fd2 = raw_authed();
    int fd3 = gmpt_raw_connect(g_d);
    assert_true(fd3 >= 0);
    assert_int_equal(gmpt_raw_auth(fd3, g_tenant, g_secret, g_secret_len,
                                   NULL),
                     GMP_ERR_LIMIT);
    assert_true(gmpt_raw_closed(fd3, T_MS));
    close(fd3);
    close(fd2);
    close(fd);

    gmpt_stop(g_d);
    unlink(cfg);
    g_d = shared;
    memcpy(g_tenant, tenant, sizeof tenant);
    memcpy(g_secret, secret, sizeof secret);
    g_secret_len = secret_len;
}

/* ---- Test 11: the shared-memory lane ---- */

/* A frame with a payload of its own length and, when nfd > 0, those
 * descriptors riding along (SCM_RIGHTS). */
static void send_with_fds(int fd, const gmpc_hdr *h, const void *payload,
                          const int *fds, int nfd)
{
    uint8_t buf[GMPC_HDR_LEN + 64];
    size_t n = gmpc_frame_build(h, payload, buf, sizeof buf);
    assert_true(n > 0);
    union {
        struct cmsghdr c;
        char space[CMSG_SPACE(2 * sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {buf, n};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfd) {
        m.msg_control = ctl.space;
        m.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfd * sizeof(int));
    }
    assert_int_equal(sendmsg(fd, &m, MSG_NOSIGNAL), (ssize_t)n);
}

static void send_shm(int fd, uint64_t id, uint32_t size, int memfd)
{
    uint8_t p[4] = {(uint8_t)(size >> 24), (uint8_t)(size >> 16),
                    (uint8_t)(size >> 8), (uint8_t)size};
    gmpc_hdr h = {.type = GMPC_T_SHM, .task_id = id, .len = 4};
    send_with_fds(fd, &h, p, &memfd, memfd >= 0);
}

static int memfd_of(size_t size, unsigned seals)
{
    int fd = memfd_create("t11", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    if (seals)
        assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
    return fd;
}

static void send_shm_item(int fd, uint8_t type, uint64_t task, uint32_t seq,
                          uint32_t off, uint32_t len)
{
    uint8_t ref[GMPC_SHM_REF_LEN];
    gmpc_shm_ref_encode(ref, off, len);
    gmpc_hdr h = {.type = type, .task_id = task, .seq = seq,
                  .flags = GMPC_F_SHM, .len = sizeof ref};
    assert_int_equal(gmpt_raw_send_frame(fd, &h, ref), 0);
}

#define SHM_SIZE (1u << 20)

/* Every way to offer a region wrongly is refused with ARG and the
 * connection stays; a good one is mapped once. */
static int shm_offers(uint8_t **base)
{
    int fd = raw_authed();
    send_shm(fd, 1, SHM_SIZE, -1);                 /* no descriptor */
    expect_error(fd, 1, GMP_ERR_ARG, false);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    send_shm(fd, 2, SHM_SIZE, devnull);            /* not a memfd */
    expect_error(fd, 2, GMP_ERR_ARG, false);
    close(devnull);
    int loose = memfd_of(SHM_SIZE, 0);
    send_shm(fd, 3, SHM_SIZE, loose);              /* could shrink */
    expect_error(fd, 3, GMP_ERR_ARG, false);
    close(loose);
    int small = memfd_of(4096, F_SEAL_SHRINK);
    send_shm(fd, 4, SHM_SIZE, small);              /* smaller than said */
    expect_error(fd, 4, GMP_ERR_ARG, false);
    send_shm(fd, 5, 0, small);                     /* empty */
    expect_error(fd, 5, GMP_ERR_ARG, false);
    send_shm(fd, 6, GMPC_SHM_MAX + 1, small);      /* too large */
    expect_error(fd, 6, GMP_ERR_ARG, false);
    close(small);
    expect_alive(fd, 0);
    int good = memfd_of(SHM_SIZE, F_SEAL_SHRINK | F_SEAL_GROW);
    send_shm(fd, 7, SHM_SIZE, good);
    gmpc_hdr h;
    read_frame(fd, &h, NULL);
    assert_int_equal(h.type, GMPC_T_SHM_OK);
    assert_int_equal(h.task_id, 7);
    send_shm(fd, 8, SHM_SIZE, good);               /* one per session */
    expect_error(fd, 8, GMP_ERR_STATE, false);
    *base = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, good, 0);
    assert_true(*base != MAP_FAILED);
    close(good);
    return fd;
}

/* SM4-ECB in the region: the output lands after the input and RESULT
 * says where; SM3's digest comes back inline. */
static void shm_compute(int fd, uint8_t *base)
{
    uint8_t key[16], out[4096];
    int outl = 0;
    fill_random(key, sizeof key);
    fill_random(base + 8192, 4096);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    assert_true(EVP_EncryptInit_ex(ctx, EVP_sm4_ecb(), NULL, key, NULL) &&
                EVP_CIPHER_CTX_set_padding(ctx, 0) &&
                EVP_EncryptUpdate(ctx, out, &outl, base + 8192, 4096));
    EVP_CIPHER_CTX_free(ctx);
    send_open(fd, 0xB001, GMP_ALG_SM4_ECB, 0xB001, 0, key, 16, NULL, 0);
    expect_open_ok(fd, 0xB001);
    send_shm_item(fd, GMPC_T_SHARD, 0xB001, 0, 8192, 4096);
    gmpc_hdr h;
    uint8_t *p = NULL;
    uint32_t off, len;
    read_frame(fd, &h, &p);
    assert_int_equal(h.type, GMPC_T_RESULT);
    assert_int_equal(h.flags & GMPC_F_SHM, GMPC_F_SHM);
    assert_true(gmpc_shm_ref_decode(p, h.len, &off, &len));
    free(p);
    assert_int_equal(off, 8192 + 4096);
    assert_int_equal(len, 4096);
    assert_memory_equal(base + off, out, 4096);

    uint8_t md[32];
    unsigned mdl;
    fill_random(base, 1000);
    assert_true(EVP_Digest(base, 1000, md, &mdl, EVP_sm3(), NULL));
    send_open_sm3(fd, 0xB002, 0xB002);
    expect_open_ok(fd, 0xB002);
    send_shm_item(fd, GMPC_T_FINAL, 0xB002, 0, 0, 1000);
    read_frame(fd, &h, &p);
    assert_int_equal(h.type, GMPC_T_FINAL_OK);
    assert_int_equal(h.flags & GMPC_F_SHM, 0);
    assert_int_equal(h.len, 32);
    assert_memory_equal(p, md, 32);
    free(p);
}

/* References outside the region, too long, or malformed fail the item's
 * task and nothing else; a session without a region has none to use. */
static void shm_bad_refs(int fd)
{
    send_open_sm3(fd, 0xB003, 0xB003);
    expect_open_ok(fd, 0xB003);
    send_shm_item(fd, GMPC_T_SHARD, 0xB003, 0, SHM_SIZE - 100, 4096);
    expect_error(fd, 0xB003, GMP_ERR_PROTO, false);
    send_open_sm3(fd, 0xB004, 0xB004);
    expect_open_ok(fd, 0xB004);
    send_shm_item(fd, GMPC_T_SHARD, 0xB004, 0, 0, GMP_SHARD_MAX + 1);
    expect_error(fd, 0xB004, GMP_ERR_TOO_BIG, false);
    send_open_sm3(fd, 0xB005, 0xB005);
    expect_open_ok(fd, 0xB005);
    gmpc_hdr h = {.type = GMPC_T_SHARD, .task_id = 0xB005,
                  .flags = GMPC_F_SHM, .len = 7};
    assert_int_equal(gmpt_raw_send_frame(fd, &h, "1234567"), 0);
    expect_error(fd, 0xB005, GMP_ERR_PROTO, false);
    expect_alive(fd, 0);

    int other = raw_authed();
    send_open_sm3(other, 0xB006, 0xB006);
    expect_open_ok(other, 0xB006);
    send_shm_item(other, GMPC_T_SHARD, 0xB006, 0, 0, 4096);
    expect_error(other, 0xB006, GMP_ERR_PROTO, false);
    expect_alive(other, 0);
    close(other);
}

/* Descriptors without an SHM frame would fill the daemon's table: the
 * connection is closed; so is a malformed SHM frame. */
static void shm_stray_fds(void)
{
    int fd = raw_authed();
    int fds[2] = {memfd_of(4096, 0), memfd_of(4096, 0)};
    gmpc_hdr h = {.type = GMPC_T_PING, .task_id = 9};
    send_with_fds(fd, &h, NULL, fds, 2);
    read_frame(fd, &h, NULL);
    assert_int_equal(h.type, GMPC_T_PONG);
    expect_error(fd, 0, GMP_ERR_PROTO, true);
    close(fd);
    fd = raw_authed();
    h = (gmpc_hdr){.type = GMPC_T_SHM, .task_id = 10, .len = 3};
    send_with_fds(fd, &h, "abc", fds, 1);
    expect_error(fd, 10, GMP_ERR_PROTO, true);
    close(fd);
    close(fds[0]);
    close(fds[1]);
}

static void t11_shm(void **state)
{
    (void)state;
    uint8_t *base;
    int fd = shm_offers(&base);
    shm_compute(fd, base);
    shm_bad_refs(fd);
    close(fd);
    munmap(base, SHM_SIZE);
    shm_stray_fds();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t1_noauth),       cmocka_unit_test(t1b_noauth_pipelined),
        cmocka_unit_test(t2_auth),         cmocka_unit_test(t2b_auth_pipelined),
        cmocka_unit_test(t3_garbage),      cmocka_unit_test(t3b_proto_pipelined),
        cmocka_unit_test(t4_too_big),
        cmocka_unit_test(t5_replay),       cmocka_unit_test(t6_tasks),
        cmocka_unit_test(t7_isolation),    cmocka_unit_test(t8_keys),
        cmocka_unit_test(t9_still_serving),
        cmocka_unit_test(t10_limits),      cmocka_unit_test(t11_shm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
