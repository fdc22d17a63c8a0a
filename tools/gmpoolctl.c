/* gmpoolctl: administer a running gmpoold over its owner-only admin
 * socket.  Commands are passed through; the daemon formats the reply. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "gmpool.h"
#include "proto.h"
#include "util.h"

static const char usage[] =
    "usage: gmpoolctl [--admin unix:PATH] [-o FILE] COMMAND\n"
    "  tenant add NAME        create a tenant; prints (or -o writes, mode 0600)\n"
    "                         its credentials file\n"
    "  tenant list | tenant remove NAME\n"
    "  tenant pin NAME        set the user PIN of the tenant's token (read\n"
    "                         from stdin; also clears a lock-out)\n"
    "  node list | node assign NODE VCM | node unassign NODE\n"
    "  node down NODE | node up NODE   take a node out of service and back\n"
    "  queue show | queue threshold LEVEL COUNT [WAIT_MS [VCM]]\n"
    "  sdf list TENANT        the SDF keys of the tenant's VCM\n"
    "  sdf kek add|delete TENANT INDEX      a KEK (SM4) at INDEX\n"
    "  sdf keypair add TENANT INDEX         SM2 signing and encryption key\n"
    "                         pairs at INDEX; their password from stdin\n"
    "  sdf keypair delete TENANT INDEX\n"
    "  sdf password TENANT INDEX            a new password for the pairs\n"
    "                         (stdin; also clears a lock-out)\n"
    "  sched                  TTSA: variant, band, active/parked nodes,\n"
    "                         waiting tasks, recent ScaleUp/ScaleDown\n"
    "  status                 live table of nodes, VCMs, queues, bytes/s\n"
    "                         (-w SECONDS before the command: refresh)\n"
    "  ping\n"
    "The admin socket defaults to DATA_DIR/admin.sock (GMPOOL_DATA_DIR).\n";

static int connect_admin(const char *addr)
{
    gmpc_addr a;
    if (gmpc_addr_parse(addr, &a) != GMP_OK || !a.is_unix) {
        fprintf(stderr, "gmpoolctl: admin address must be unix:PATH\n");
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", a.path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        fprintf(stderr, "gmpoolctl: cannot connect to %s: %s\n", a.path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends argv as one ADMIN frame and reads the reply frame. */
static int request(int fd, int argc, char **argv, gmpc_hdr *h, uint8_t **reply)
{
    static uint8_t buf[GMPC_HDR_LEN + GMPC_MAX_PAYLOAD];
    uint8_t payload[4096];
    size_t len = 0;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;
        if (len + n > sizeof payload - 1)
            return GMP_ERR_TOO_BIG;
        memcpy(payload + len, argv[i], n);
        len += n;
    }
    gmpc_hdr q = {.type = GMPC_T_ADMIN, .len = (uint32_t)len};
    size_t flen = gmpc_frame_build(&q, payload, buf, sizeof buf);
    if (!flen || write_all(fd, buf, flen) < 0)
        return GMP_ERR_CONN;
    size_t have = 0, used;
    for (;;) {
        int st;
        gmpc_parse r = gmpc_frame_parse(buf, have, h, &used, &st);
        if (r == GMPC_FRAME)
            break;
        if (r != GMPC_NEED_MORE)
            return GMP_ERR_PROTO;
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n <= 0)
            return GMP_ERR_CONN;
        have += (size_t)n;
    }
    *reply = buf + GMPC_HDR_LEN;
    return GMP_OK;
}

static int save_private(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, p, n) < 0 || close(fd) < 0) {
        fprintf(stderr, "gmpoolctl: cannot write %s: %s\n", path,
                strerror(errno));
        return 1;
    }
    return 0;
}

static int run(const char *admin, const char *out_file, int argc, char **argv)
{
    int fd = connect_admin(admin);
    if (fd < 0)
        return 1;
    gmpc_hdr h;
    uint8_t *reply;
    int rc = request(fd, argc, argv, &h, &reply);
    close(fd);
    if (rc != GMP_OK) {
        fprintf(stderr, "gmpoolctl: %s\n", gmp_strerror(rc));
        return 1;
    }
    if (h.type == GMPC_T_ERROR || h.status != GMP_OK) {
        fprintf(stderr, "gmpoolctl: %s: %.*s", gmp_strerror(h.status),
                (int)h.len, reply);
        return 1;
    }
    if (out_file)
        return save_private(out_file, reply, h.len);
    fwrite(reply, 1, h.len, stdout);
    return 0;
}

/* Commands that end in a secret (a PIN, a key-pair password): it comes
 * from stdin, never from the command line where other users could read
 * it.  Returns its prompt, or NULL for other commands. */
static const char *secret_prompt(int n, char **a)
{
    if (n == 3 && strcmp(a[0], "tenant") == 0 && strcmp(a[1], "pin") == 0)
        return "user PIN: ";
    if (n >= 2 && strcmp(a[0], "sdf") == 0 &&
        ((n == 4 && strcmp(a[1], "password") == 0) ||
         (n == 5 && strcmp(a[1], "keypair") == 0 &&
          strcmp(a[2], "add") == 0)))
        return "key pair password: ";
    return NULL;
}

/* tenant pin / sdf keypair add / sdf password with more words: a secret
 * on the command line, which the daemon could not tell from one read
 * here. */
static bool secret_on_command_line(int n, char **a)
{
    if (n > 3 && strcmp(a[0], "tenant") == 0 && strcmp(a[1], "pin") == 0)
        return true;
    return n >= 2 && strcmp(a[0], "sdf") == 0 &&
           ((n > 4 && strcmp(a[1], "password") == 0) ||
            (n > 5 && strcmp(a[1], "keypair") == 0 &&
             strcmp(a[2], "add") == 0));
}

static int read_secret(const char *prompt, char *pin, size_t cap)
{
    if (isatty(STDIN_FILENO))
        fputs(prompt, stderr);
    if (!fgets(pin, (int)cap, stdin)) {
        fprintf(stderr, "gmpoolctl: no %.*s on stdin\n",
                (int)strcspn(prompt, ":"), prompt);
        return -1;
    }
    pin[strcspn(pin, "\r\n")] = '\0';
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"admin", required_argument, NULL, 'a'},
        {"out", required_argument, NULL, 'o'},
        {"watch", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    char admin[PATH_MAX + 16] = "", dir[PATH_MAX];
    const char *out_file = NULL;
    int watch = 0, c;
    while ((c = getopt_long(argc, argv, "+a:o:w:h", opts, NULL)) != -1) {
        if (c == 'a')
            snprintf(admin, sizeof admin, "%s", optarg);
        else if (c == 'o')
            out_file = optarg;
        else if (c == 'w')
            watch = atoi(optarg);
        else {
            fputs(usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (!admin[0]) {
        if (gmpc_default_data_dir(dir, sizeof dir) != GMP_OK) {
            fprintf(stderr, "gmpoolctl: set --admin or GMPOOL_DATA_DIR\n");
            return 2;
        }
        snprintf(admin, sizeof admin, "unix:%s/admin.sock", dir);
    }
    char pin[GMP_PIN_MAX + 2], *args[8];
    int n = argc - optind;
    if (secret_on_command_line(n, argv + optind)) {
        fprintf(stderr, "gmpoolctl: PINs and passwords are read from stdin, "
                        "not the command line\n%s", usage);
        return 2;
    }
    const char *prompt = secret_prompt(n, argv + optind);
    if (prompt) {
        if (read_secret(prompt, pin, sizeof pin) < 0)
            return 1;
        memcpy(args, argv + optind, (size_t)n * sizeof *args);
        args[n] = pin;
        int rc = run(admin, out_file, n + 1, args);
        OPENSSL_cleanse(pin, sizeof pin);
        return rc;
    }
    for (;;) {
        if (watch > 0)
            fputs("\033[H\033[2J", stdout);
        int rc = run(admin, out_file, argc - optind, argv + optind);
        if (rc || watch <= 0)
            return rc;
        fflush(stdout);
        sleep((unsigned)watch);
    }
}
