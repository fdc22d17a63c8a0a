#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "harness: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

static const char *env_or_die(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        die("environment variable %s is not set", name);
    return v;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        die("cannot find a free port");
    close(fd);
    return ntohs(sa.sin_port);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *g_extra[16];

static void spawn(gmpt_daemon *d)
{
    const char *bin = env_or_die("GMPOOLD");
    const char *argv[40];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--data-dir";
    argv[n++] = d->dir;
    argv[n++] = "--listen";
    argv[n++] = d->sock;
    argv[n++] = "--listen";
    argv[n++] = d->tcp;
    argv[n++] = "--admin";
    argv[n++] = d->admin;
    argv[n++] = "--nodes";
    argv[n++] = "2";
    for (int i = 0; g_extra[i] && n < 38; i++)
        argv[n++] = g_extra[i];
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid < 0)
        die("fork failed");
    if (d->pid == 0) {
        /* a test that dies (an assert, a sanitizer abort) takes its
         * daemon with it instead of leaving it running */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
}

static bool answering(gmpt_daemon *d)
{
    int fd = gmpt_raw_connect(d);
    if (fd < 0)
        return false;
    gmpc_hdr h;
    bool ok = gmpt_raw_read_frame(fd, &h, NULL, 1000) == 0 &&
              h.type == GMPC_T_CHALLENGE;
    close(fd);
    return ok;
}

static void wait_ready(gmpt_daemon *d)
{
    for (int i = 0; i < 300; i++) {
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid)
            die("gmpoold exited at start; see %s", d->log);
        if (access(d->creds, R_OK) == 0 && answering(d))
            return;
        sleep_ms(50);
    }
    die("gmpoold did not come up; see %s", d->log);
}

gmpt_daemon *gmpt_start(const char *const *extra)
{
    gmpt_daemon *d = calloc(1, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "/tmp/gmpt.XXXXXX");
    if (!d || !mkdtemp(d->dir))
        die("mkdtemp failed");
    d->port = free_port();
    snprintf(d->sock, sizeof d->sock, "unix:%s/gmpoold.sock", d->dir);
    snprintf(d->tcp, sizeof d->tcp, "tcp:127.0.0.1:%d", d->port);
    snprintf(d->admin, sizeof d->admin, "unix:%s/admin.sock", d->dir);
    snprintf(d->creds, sizeof d->creds, "%s/credentials", d->dir);
    snprintf(d->log, sizeof d->log, "%s.log", d->dir);
    memset(g_extra, 0, sizeof g_extra);
    for (int i = 0; extra && extra[i] && i < 15; i++)
        g_extra[i] = extra[i];
    spawn(d);
    wait_ready(d);
    return d;
}

static void stop_process(gmpt_daemon *d)
{
    kill(d->pid, SIGTERM);
    for (int i = 0; i < 400; i++) {
        int st;
        pid_t r = waitpid(d->pid, &st, WNOHANG);
        if (r == d->pid) {
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                die("gmpoold did not exit cleanly; see %s", d->log);
            return;
        }
        sleep_ms(25);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    die("gmpoold did not stop within 10 s of SIGTERM; see %s", d->log);
}

void gmpt_stop(gmpt_daemon *d)
{
    char cmd[300];
    stop_process(d);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", d->dir, d->log);
    if (system(cmd) != 0)
        fprintf(stderr, "harness: cannot remove %s\n", d->dir);
    free(d);
}

void gmpt_restart(gmpt_daemon *d)
{
    gmpt_pause(d);
    gmpt_resume(d);
}

void gmpt_pause(gmpt_daemon *d)
{
    stop_process(d);
}

void gmpt_resume(gmpt_daemon *d)
{
    spawn(d);
    wait_ready(d);
}

int gmpt_ctl(gmpt_daemon *d, char **out, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' --admin '%s' %s", env_or_die("GMPOOLCTL"),
             d->admin, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    if (buf)
        buf[len] = '\0';
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int gmpt_ctl_input(gmpt_daemon *d, char **out, const char *args,
                   const char *input)
{
    char path[300], cmd[600];
    snprintf(path, sizeof path, "%s/ctl-input.txt", d->dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    bool written = fprintf(f, "%s\n", input) > 0;
    if (fclose(f) != 0 || !written) {
        unlink(path);
        return -1;
    }
    snprintf(cmd, sizeof cmd, "%s < '%s'", args, path);
    int rc = gmpt_ctl(d, out, cmd);
    unlink(path);
    return rc;
}

int gmpt_ctl_number(gmpt_daemon *d, const char *args, const char *after,
                    unsigned long long *n)
{
    char *out = NULL;
    int rc = gmpt_ctl(d, &out, args);
    const char *p = rc == 0 && out ? strstr(out, after) : NULL;
    char *end = NULL;
    if (p) {
        p += strlen(after);
        *n = strtoull(p, &end, 10);
    }
    free(out);
    return p && end != p ? 0 : -1;
}

static uint64_t g_seed = 0x9e3779b97f4a7c15ull;

void gmpt_seed(uint64_t fallback)
{
    const char *s = getenv("GMPT_SEED");
    g_seed = s && *s ? strtoull(s, NULL, 0) : fallback;
    if (!g_seed)
        g_seed = 1; /* xorshift's one bad state */
    fprintf(stderr, "seed 0x%llx (set GMPT_SEED to repeat)\n",
            (unsigned long long)g_seed);
}

uint64_t gmpt_rand(void)
{
    g_seed ^= g_seed << 13;
    g_seed ^= g_seed >> 7;
    g_seed ^= g_seed << 17;
    return g_seed;
}

uint8_t *gmpt_random_bytes(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory for %zu test bytes", n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)gmpt_rand();
    return p;
}

gmp_options gmpt_options(gmpt_daemon *d)
{
    gmp_options o = {.server = d->sock, .credentials = d->creds,
                     .timeout_ms = 10000};
    return o;
}

int gmpt_raw_connect(gmpt_daemon *d)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", d->sock + 5);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int gmpt_raw_send(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int gmpt_raw_send_frame(int fd, const gmpc_hdr *h, const void *payload)
{
    size_t cap = GMPC_HDR_LEN + h->len;
    uint8_t *buf = malloc(cap);
    size_t n = buf ? gmpc_frame_build(h, payload, buf, cap) : 0;
    int rc = n ? gmpt_raw_send(fd, buf, n) : -1;
    free(buf);
    return rc;
}

static int read_exact(int fd, uint8_t *p, size_t n, int timeout_ms)
{
    while (n) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, timeout_ms) <= 0)
            return -1;
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int gmpt_raw_read_frame(int fd, gmpc_hdr *h, uint8_t **payload, int timeout_ms)
{
    uint8_t hdr[GMPC_HDR_LEN];
    size_t used;
    int st;
    if (read_exact(fd, hdr, sizeof hdr, timeout_ms) < 0)
        return -1;
    gmpc_hdr tmp;
    gmpc_parse r = gmpc_frame_parse(hdr, sizeof hdr, &tmp, &used, &st);
    if (r != GMPC_FRAME && r != GMPC_NEED_MORE)
        return -1;
    *h = tmp;
    uint8_t *p = malloc(h->len + 1u);
    if (!p || read_exact(fd, p, h->len, timeout_ms) < 0) {
        free(p);
        return -1;
    }
    p[h->len] = '\0';
    if (payload)
        *payload = p;
    else
        free(p);
    return 0;
}

bool gmpt_raw_closed(int fd, int timeout_ms)
{
    uint8_t buf[4096];
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, timeout_ms) <= 0)
            return false;
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return true;
        if (r < 0)
            return false;
    }
}

int gmpt_raw_auth(int fd, const char *tenant, const uint8_t *secret,
                  size_t secret_len, uint64_t *session_id)
{
    gmpc_hdr h;
    uint8_t *p = NULL;
    if (gmpt_raw_read_frame(fd, &h, &p, 5000) < 0 ||
        h.type != GMPC_T_CHALLENGE || h.len != GMPC_NONCE_LEN) {
        free(p);
        return GMP_ERR_PROTO;
    }
    gmpc_auth a = {.session_id = session_id ? *session_id : 0};
    snprintf(a.tenant, sizeof a.tenant, "%s", tenant);
    gmpc_random(a.cnonce, sizeof a.cnonce);
    gmpc_auth_mac(secret, secret_len, tenant, p, a.cnonce, a.session_id,
                  a.mac);
    free(p);
    uint8_t buf[256];
    gmpc_wbuf w = {buf, sizeof buf, 0, false};
    gmpc_auth_encode(&a, &w);
    gmpc_hdr q = {.type = GMPC_T_AUTH, .len = (uint32_t)w.len};
    if (gmpt_raw_send_frame(fd, &q, buf) < 0 ||
        gmpt_raw_read_frame(fd, &h, &p, 5000) < 0)
        return GMP_ERR_CONN;
    int rc = h.type == GMPC_T_AUTH_OK ? GMP_OK : (h.status ? h.status : -1);
    if (rc == GMP_OK && session_id) {
        gmpc_auth_ok ok;
        if (gmpc_auth_ok_decode(p, h.len, &ok) == GMP_OK)
            *session_id = ok.session_id;
    }
    free(p);
    return rc;
}

int gmpt_load_creds(const char *path, char *tenant, size_t tcap,
                    uint8_t secret[32], size_t *secret_len)
{
    gmpc_creds c;
    char err[256];
    if (gmpc_creds_load(path, &c, err, sizeof err) != GMP_OK)
        return -1;
    snprintf(tenant, tcap, "%s", c.tenant);
    memcpy(secret, c.secret, c.secret_len);
    *secret_len = c.secret_len;
    return 0;
}
