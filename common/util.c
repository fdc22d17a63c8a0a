#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include "gmpool.h"

static OSSL_LIB_CTX *g_libctx;
static pthread_once_t g_libctx_once = PTHREAD_ONCE_INIT;

static void libctx_init(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    if (ctx && OSSL_PROVIDER_load(ctx, "default"))
        g_libctx = ctx;
    else
        OSSL_LIB_CTX_free(ctx);
}

OSSL_LIB_CTX *gmpc_libctx(void)
{
    pthread_once(&g_libctx_once, libctx_init);
    return g_libctx;
}

int gmpc_hmac_sm3(const uint8_t *key, size_t key_len, const void *msg,
                  size_t msg_len, uint8_t out[32])
{
    OSSL_LIB_CTX *lc = gmpc_libctx();
    if (!lc)
        return GMP_ERR_INTERNAL;
    EVP_MAC *mac = EVP_MAC_fetch(lc, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SM3", 0),
        OSSL_PARAM_construct_end()};
    size_t outl = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, key_len, params) &&
             EVP_MAC_update(ctx, msg, msg_len) &&
             EVP_MAC_final(ctx, out, &outl, 32) && outl == 32;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? GMP_OK : GMP_ERR_INTERNAL;
}

int gmpc_random(void *buf, size_t n)
{
    OSSL_LIB_CTX *lc = gmpc_libctx();
    if (!lc || n > INT32_MAX)
        return GMP_ERR_INTERNAL;
    return RAND_bytes_ex(lc, buf, n, 0) == 1 ? GMP_OK : GMP_ERR_INTERNAL;
}

int gmpc_nonce(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return GMP_ERR_INTERNAL;
        p += got;
        n -= (size_t)got;
    }
    return GMP_OK;
}

uint64_t gmpc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void gmpc_thread_name(pthread_t th, const char *prefix, int n)
{
    char name[16];
    if (n < 0)
        snprintf(name, sizeof name, "%s", prefix);
    else
        snprintf(name, sizeof name, "%.10s%d", prefix, n % 10000);
    pthread_setname_np(th, name);
}

uint64_t gmpc_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int gmpc_hex_decode(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

void gmpc_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void gmpc_say(gmpc_text *t, const char *fmt, ...)
{
    if (t->len + 1 >= t->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    size_t room = t->cap - t->len - 1;
    if (n > 0)
        t->len += (size_t)n < room ? (size_t)n : room;
}

bool gmpc_fmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

int gmpc_addr_parse(const char *s, gmpc_addr *a)
{
    memset(a, 0, sizeof *a);
    if (!s)
        return GMP_ERR_ARG;
    if (strncmp(s, "unix:", 5) == 0) {
        const char *p = s + 5;
        if (p[0] != '/' || strlen(p) >= sizeof a->path)
            return GMP_ERR_ARG;
        a->is_unix = true;
        strcpy(a->path, p);
        return GMP_OK;
    }
    if (strncmp(s, "tcp:", 4) != 0)
        return GMP_ERR_ARG;
    const char *hp = s + 4, *colon = strrchr(hp, ':');
    if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof a->host)
        return GMP_ERR_ARG;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
        return GMP_ERR_ARG;
    memcpy(a->host, hp, (size_t)(colon - hp));
    a->port = (int)port;
    return GMP_OK;
}

bool gmpc_path_absolute(const char *in, char *out, size_t cap)
{
    char cwd[4096];
    bool ok;
    if (in[0] == '/')
        ok = gmpc_fmt(out, cap, "%s", in);
    else
        ok = getcwd(cwd, sizeof cwd) &&
             gmpc_fmt(out, cap, "%s/%s", strcmp(cwd, "/") ? cwd : "", in);
    size_t n = ok ? strlen(out) : 0;
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return ok;
}

int gmpc_default_data_dir(char *out, size_t cap)
{
    char d[4096];
    const char *e = getenv("GMPOOL_DATA_DIR"), *x = getenv("XDG_DATA_HOME"),
               *home = getenv("HOME");
    bool ok;
    if (e && *e)
        ok = gmpc_fmt(d, sizeof d, "%s", e);
    else if (x && *x)
        ok = gmpc_fmt(d, sizeof d, "%s/gmpool", x);
    else if (home && *home)
        ok = gmpc_fmt(d, sizeof d, "%s/.local/share/gmpool", home);
    else {
        /* no HOME (started by init, say): the passwd entry's home */
        const struct passwd *pw = getpwuid(getuid());
        ok = pw && pw->pw_dir &&
             gmpc_fmt(d, sizeof d, "%s/.local/share/gmpool", pw->pw_dir);
    }
    return ok && gmpc_path_absolute(d, out, cap) ? GMP_OK : GMP_ERR_CONFIG;
}

struct creds_parse {
    gmpc_creds *c;
    char *err;
    size_t errlen;
    int bad;
};

static int creds_line(void *user, const char *section, const char *name,
                      const char *value)
{
    struct creds_parse *p = user;
    if (strcmp(section, "gmpool") != 0) {
        p->bad = 1;
        return 0;
    }
    if (strcmp(name, "server") == 0)
        return gmpc_fmt(p->c->server, sizeof p->c->server, "%s", value);
    if (strcmp(name, "tenant") == 0)
        return gmpc_fmt(p->c->tenant, sizeof p->c->tenant, "%s", value);
    if (strcmp(name, "secret") == 0) {
        int n = gmpc_hex_decode(value, p->c->secret, sizeof p->c->secret);
        if (n <= 0)
            return 0;
        p->c->secret_len = (size_t)n;
        return 1;
    }
    p->bad = 1;
    return 0;
}

int gmpc_creds_load(const char *path, gmpc_creds *c, char *err, size_t n)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "r");
    if (!f) {
        gmpc_fmt(err, n, "cannot read credentials %s: %s", path,
                 strerror(errno));
        return GMP_ERR_CONFIG;
    }
    struct creds_parse p = {c, err, n, 0};
    int line = ini_parse_file(f, creds_line, &p);
    fclose(f);
    if (line != 0) {
        gmpc_fmt(err, n, "%s:%d: bad credentials line", path, line);
        return GMP_ERR_CONFIG;
    }
    if (!c->tenant[0] || !c->secret_len) {
        gmpc_fmt(err, n, "%s: needs tenant and secret", path);
        return GMP_ERR_CONFIG;
    }
    return GMP_OK;
}

int gmpc_creds_save(const char *path, const gmpc_creds *c, char *err,
                    size_t n)
{
    char tmp[4096], hex[2 * sizeof c->secret + 1];
    if (!gmpc_fmt(tmp, sizeof tmp, "%s.tmp", path)) {
        gmpc_fmt(err, n, "path too long");
        return GMP_ERR_CONFIG;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        gmpc_fmt(err, n, "cannot write %s: %s", tmp, strerror(errno));
        return GMP_ERR_CONFIG;
    }
    gmpc_hex_encode(c->secret, c->secret_len, hex);
    FILE *f = fdopen(fd, "w");
    int ok = f && fprintf(f,
                          "# gmpool credentials: keep private (mode 0600)\n"
                          "[gmpool]\nserver = %s\ntenant = %s\nsecret = %s\n",
                          c->server, c->tenant, hex) > 0;
    ok = ok && fflush(f) == 0 && fsync(fd) == 0;
    if (f)
        fclose(f);
    else
        close(fd);
    memset(hex, 0, sizeof hex);
    if (!ok || rename(tmp, path) != 0) {
        gmpc_fmt(err, n, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return GMP_ERR_CONFIG;
    }
    return GMP_OK;
}
