/* Integration test harness: a real gmpoold on a temp data dir and socket,
 * started and stopped by the test, plus raw-socket helpers for feeding the
 * daemon bad input. */
#ifndef GMPT_HARNESS_H
#define GMPT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gmpool.h"
#include "proto.h"

typedef struct gmpt_daemon {
    pid_t pid;
    char dir[128];           /* data dir (mkdtemp, short for sun_path) */
    char sock[160];          /* unix:... */
    char tcp[64];            /* tcp:127.0.0.1:PORT */
    char admin[160];         /* unix:.../admin.sock */
    char creds[160];         /* DIR/credentials */
    char log[160];           /* DIR/gmpoold.log */
    int port;
} gmpt_daemon;

/* Starts gmpoold (path from $GMPOOLD) and waits until it answers; aborts
 * the test on failure.  extra: NULL-terminated extra flags or NULL. */
gmpt_daemon *gmpt_start(const char *const *extra);
/* SIGTERM, wait for a clean exit (status 0), remove the data dir. */
void gmpt_stop(gmpt_daemon *d);
/* Stop and start again on the same data dir and addresses. */
void gmpt_restart(gmpt_daemon *d);
/* Stop (clean exit checked) without removing anything; resume starts it
 * again on the same data dir and addresses. */
void gmpt_pause(gmpt_daemon *d);
void gmpt_resume(gmpt_daemon *d);
/* Runs gmpoolctl (path from $GMPOOLCTL) --admin d->admin ARGS; returns the
 * exit status and its stdout (malloc'd, caller frees) in *out if out. */
int gmpt_ctl(gmpt_daemon *d, char **out, const char *args);
/* gmpt_ctl with `input` and a newline on stdin, where gmpoolctl reads PINs
 * and passwords: through a file in d->dir, removed again.  -1 when that
 * file cannot be written. */
int gmpt_ctl_input(gmpt_daemon *d, char **out, const char *args,
                   const char *input);
/* The number printed right after the text `after` in gmpoolctl ARGS'
 * output (a counter of `status`, say) in *n; -1 when gmpoolctl fails or
 * its output has no such text followed by a number. */
int gmpt_ctl_number(gmpt_daemon *d, const char *args, const char *after,
                    unsigned long long *n);
/* gmp_options for the default tenant over the unix socket. */
gmp_options gmpt_options(gmpt_daemon *d);

/* ---- repeatable random test data ---- */
/* Seeds the generator from $GMPT_SEED, else `fallback`, and says which on
 * stderr so a failing run can be repeated. */
void gmpt_seed(uint64_t fallback);
uint64_t gmpt_rand(void);                    /* xorshift64 */
uint8_t *gmpt_random_bytes(size_t n);        /* malloc'd, never NULL */

/* ---- raw protocol ---- */
int gmpt_raw_connect(gmpt_daemon *d);              /* unix socket fd */
int gmpt_raw_send(int fd, const void *p, size_t n);
int gmpt_raw_send_frame(int fd, const gmpc_hdr *h, const void *payload);
/* Reads one frame (timeout_ms); payload (malloc'd) in *payload if given.
 * Returns 0, or -1 on EOF/timeout/garbage. */
int gmpt_raw_read_frame(int fd, gmpc_hdr *h, uint8_t **payload,
                        int timeout_ms);
/* true when the peer closed the connection within timeout_ms. */
bool gmpt_raw_closed(int fd, int timeout_ms);
/* Full challenge-response with a tenant and secret; returns 0 and the
 * AUTH_OK header, or the error status the daemon sent. */
int gmpt_raw_auth(int fd, const char *tenant, const uint8_t *secret,
                  size_t secret_len, uint64_t *session_id);
/* Load tenant/secret from a credentials file. */
int gmpt_load_creds(const char *path, char *tenant, size_t tcap,
                    uint8_t secret[32], size_t *secret_len);

#endif
