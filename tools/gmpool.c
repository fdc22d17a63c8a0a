/* gmpool: push SM3/SM4/random work through the pool from the shell.
 *   gmpool sm3 [FILE...]                      like sm3sum
 *   gmpool enc -c sm4-cbc -K HEX -iv HEX [-d] [-nopad] [-in F] [-out F]
 *   gmpool rand N                             N random bytes as hex
 *   gmpool ping
 * Server and credentials: GMPOOL_SERVER / GMPOOL_CREDENTIALS or the
 * daemon's defaults; --shard BYTES, --connections N and --window N (the
 * client window q cap; 1 = one shard at a time) tune the pipeline. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gmpool.h"
#include "util.h"

#define CHUNK (4u * 1024u * 1024u)

static gmp_options g_opt;

static int die(int rc, const char *what)
{
    fprintf(stderr, "gmpool: %s: %s (%s)\n", what, gmp_strerror(rc),
            gmp_client_last_error());
    return 1;
}

static FILE *open_in(const char *path)
{
    FILE *f = !path || strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        fprintf(stderr, "gmpool: %s: %s\n", path, strerror(errno));
    return f;
}

static int sm3_file(gmp_client *c, const char *path, uint8_t *buf)
{
    FILE *f = open_in(path);
    if (!f)
        return 1;
    gmp_task *t;
    int rc = gmp_digest_open(c, GMP_ALG_SM3, NULL, &t);
    size_t n;
    while (rc == GMP_OK && (n = fread(buf, 1, CHUNK, f)) > 0)
        rc = gmp_task_update(t, buf, n, NULL, NULL);
    uint8_t md[32];
    size_t mdlen = sizeof md;
    if (rc == GMP_OK)
        rc = gmp_task_final(t, md, &mdlen);
    gmp_task_free(t);
    if (f != stdin)
        fclose(f);
    if (rc != GMP_OK)
        return die(rc, path ? path : "-");
    char hex[65];
    gmpc_hex_encode(md, 32, hex);
    printf("%s  %s\n", hex, path ? path : "-");
    return 0;
}

static int cmd_sm3(gmp_client *c, int argc, char **argv)
{
    uint8_t *buf = malloc(CHUNK);
    int rc = 0;
    if (!buf)
        return 1;
    if (argc == 0)
        rc = sm3_file(c, NULL, buf);
    for (int i = 0; i < argc; i++)
        rc |= sm3_file(c, argv[i], buf);
    free(buf);
    return rc;
}

static const struct {
    const char *name;
    gmp_alg alg;
} g_ciphers[] = {{"sm4-ecb", GMP_ALG_SM4_ECB}, {"sm4-cbc", GMP_ALG_SM4_CBC},
                 {"sm4-ctr", GMP_ALG_SM4_CTR}, {"sm4-ofb", GMP_ALG_SM4_OFB},
                 {"sm4-cfb", GMP_ALG_SM4_CFB}};

typedef struct enc_args {
    gmp_alg alg;
    unsigned flags;
    uint8_t key[16], iv[16];
    int key_len, iv_len;
    const char *in, *out;
} enc_args;

static int parse_enc(int argc, char **argv, enc_args *a)
{
    a->flags = GMP_TASK_PAD;
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "-d") == 0)
            a->flags |= GMP_TASK_DECRYPT;
        else if (strcmp(argv[i], "-e") == 0)
            a->flags &= ~GMP_TASK_DECRYPT;
        else if (strcmp(argv[i], "-nopad") == 0)
            a->flags &= ~GMP_TASK_PAD;
        else if (v && strcmp(argv[i], "-c") == 0) {
            for (size_t k = 0; k < sizeof g_ciphers / sizeof *g_ciphers; k++)
                if (strcasecmp(v, g_ciphers[k].name) == 0)
                    a->alg = g_ciphers[k].alg;
            i++;
        } else if (v && strcmp(argv[i], "-K") == 0) {
            a->key_len = gmpc_hex_decode(argv[++i], a->key, sizeof a->key);
        } else if (v && strcmp(argv[i], "-iv") == 0) {
            a->iv_len = gmpc_hex_decode(argv[++i], a->iv, sizeof a->iv);
        } else if (v && strcmp(argv[i], "-in") == 0) {
            a->in = argv[++i];
        } else if (v && strcmp(argv[i], "-out") == 0) {
            a->out = argv[++i];
        } else {
            fprintf(stderr, "gmpool enc: bad argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (!a->alg || a->key_len != 16 || a->iv_len < 0) {
        fprintf(stderr, "gmpool enc: needs -c sm4-MODE and -K with 32 hex "
                        "digits (and -iv for all modes but ECB)\n");
        return -1;
    }
    if (a->alg != GMP_ALG_SM4_CBC && a->alg != GMP_ALG_SM4_ECB)
        a->flags &= ~GMP_TASK_PAD;
    return 0;
}

static int enc_stream(gmp_task *t, FILE *in, FILE *out)
{
    uint8_t *buf = malloc(CHUNK), *ob = malloc(CHUNK + 32);
    int rc = buf && ob ? GMP_OK : GMP_ERR_NOMEM;
    size_t n, on;
    while (rc == GMP_OK && (n = fread(buf, 1, CHUNK, in)) > 0) {
        on = CHUNK + 32;
        rc = gmp_task_update(t, buf, n, ob, &on);
        if (rc == GMP_OK && fwrite(ob, 1, on, out) != on)
            rc = GMP_ERR_ARG;
    }
    on = 32;
    if (rc == GMP_OK)
        rc = gmp_task_final(t, ob, &on);
    if (rc == GMP_OK && fwrite(ob, 1, on, out) != on)
        rc = GMP_ERR_ARG;
    free(buf);
    free(ob);
    return rc;
}

static int cmd_enc(gmp_client *c, int argc, char **argv)
{
    enc_args a = {0};
    if (parse_enc(argc, argv, &a) < 0)
        return 2;
    FILE *in = open_in(a.in);
    FILE *out = !a.out || strcmp(a.out, "-") == 0 ? stdout : fopen(a.out, "wb");
    if (!in || !out) {
        if (!out)
            fprintf(stderr, "gmpool: %s: %s\n", a.out, strerror(errno));
        return 1;
    }
    gmp_task *t;
    int rc = gmp_cipher_open(c, a.alg, a.flags, a.key, 16, 0, a.iv,
                             (size_t)a.iv_len, NULL, &t);
    if (rc == GMP_OK)
        rc = enc_stream(t, in, out);
    gmp_task_free(t);
    if (in != stdin)
        fclose(in);
    if (out != stdout && fclose(out) != 0 && rc == GMP_OK)
        rc = GMP_ERR_ARG;
    return rc == GMP_OK ? 0 : die(rc, "enc");
}

static int cmd_rand(gmp_client *c, int argc, char **argv)
{
    long n = argc == 1 ? strtol(argv[0], NULL, 10) : -1;
    if (n <= 0 || n > 1 << 20) {
        fprintf(stderr, "gmpool rand: N must be 1..1048576\n");
        return 2;
    }
    uint8_t *buf = malloc((size_t)n);
    char *hex = malloc(2 * (size_t)n + 1);
    int rc = buf && hex ? gmp_random(c, buf, (size_t)n) : GMP_ERR_NOMEM;
    if (rc == GMP_OK) {
        gmpc_hex_encode(buf, (size_t)n, hex);
        puts(hex);
    }
    free(buf);
    free(hex);
    return rc == GMP_OK ? 0 : die(rc, "rand");
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--server") == 0)
            g_opt.server = argv[i + 1];
        else if (strcmp(argv[i], "--credentials") == 0)
            g_opt.credentials = argv[i + 1];
        else if (strcmp(argv[i], "--shard") == 0)
            g_opt.shard_size = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--connections") == 0)
            g_opt.connections = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--window") == 0)
            g_opt.window = (unsigned)atoi(argv[i + 1]);
        else
            break;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: gmpool [--server ADDR] [--credentials FILE] "
                        "[--shard N] [--connections N] [--window N]\n"
                        "              sm3|enc|rand|ping ...\n");
        return 2;
    }
    gmp_client *c;
    int rc = gmp_client_open(&c, &g_opt);
    if (rc != GMP_OK)
        return die(rc, "open");
    const char *cmd = argv[i++];
    int ret;
    if (strcmp(cmd, "sm3") == 0)
        ret = cmd_sm3(c, argc - i, argv + i);
    else if (strcmp(cmd, "enc") == 0)
        ret = cmd_enc(c, argc - i, argv + i);
    else if (strcmp(cmd, "rand") == 0)
        ret = cmd_rand(c, argc - i, argv + i);
    else if (strcmp(cmd, "ping") == 0)
        ret = (rc = gmp_client_connect(c)) == GMP_OK ? (puts("ok"), 0)
                                                     : die(rc, "ping");
    else {
        fprintf(stderr, "gmpool: unknown command '%s'\n", cmd);
        ret = 2;
    }
    gmp_client_close(c);
    return ret;
}
