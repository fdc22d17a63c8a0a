/* Small shared helpers: crypto primitives over libcrypto's default
 * provider, addresses, credentials files, hex, clocks. */
#ifndef GMPC_UTIL_H
#define GMPC_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

/* A library context with only the default provider loaded, so that daemon
 * and client code never recurse into the gmpool provider. */
OSSL_LIB_CTX *gmpc_libctx(void);

int gmpc_hmac_sm3(const uint8_t *key, size_t key_len, const void *msg,
                  size_t msg_len, uint8_t out[32]);
int gmpc_random(void *buf, size_t n);
/* Nonces and ids from the kernel (getrandom), not OpenSSL's DRBG: the
 * client makes them in a forked child, where another thread of the parent
 * may have left OpenSSL's global RAND lock held. */
int gmpc_nonce(void *buf, size_t n);

uint64_t gmpc_now_ns(void);      /* CLOCK_MONOTONIC */
uint64_t gmpc_wall_ms(void);     /* CLOCK_REALTIME */

/* Names thread th "<prefix><n>" (n < 0: just the prefix) for top -H, ps -L
 * and perf; Linux keeps 15 characters. */
void gmpc_thread_name(pthread_t th, const char *prefix, int n);

/* hex: returns bytes decoded or -1 */
int gmpc_hex_decode(const char *hex, uint8_t *out, size_t cap);
void gmpc_hex_encode(const uint8_t *in, size_t n, char *out /* 2n+1 */);

/* "unix:PATH" or "tcp:HOST:PORT" */
typedef struct gmpc_addr {
    bool is_unix;
    char path[108];
    char host[64];
    int port;
} gmpc_addr;
int gmpc_addr_parse(const char *s, gmpc_addr *a);

/* Default data dir, always absolute: $GMPOOL_DATA_DIR,
 * $XDG_DATA_HOME/gmpool, $HOME/.local/share/gmpool, or the passwd home's
 * .local/share/gmpool.  Daemon and clients share this, so they agree. */
int gmpc_default_data_dir(char *out, size_t cap);
#define GMPC_DEFAULT_TCP_PORT 7805
/* A relative path made absolute against the working directory, without
 * trailing slashes; false when it does not fit. */
bool gmpc_path_absolute(const char *in, char *out, size_t cap);

/* Credentials file (INI, mode 0600):
 *   [gmpool]
 *   server = unix:/path  (optional)
 *   tenant = default
 *   secret = 64 hex digits */
typedef struct gmpc_creds {
    char server[256];
    char tenant[64];
    uint8_t secret[32];
    size_t secret_len;
} gmpc_creds;
int gmpc_creds_load(const char *path, gmpc_creds *c, char *err, size_t n);
/* Writes atomically (temp file + rename), mode 0600. */
int gmpc_creds_save(const char *path, const gmpc_creds *c, char *err,
                    size_t n);

/* snprintf that never overflows and reports truncation as false */
/* Text written into a fixed buffer (admin replies): what does not fit is
 * cut, never overrun, and the text stays NUL-terminated. */
typedef struct gmpc_text {
    char *p;
    size_t cap, len;
} gmpc_text;
void gmpc_say(gmpc_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

bool gmpc_fmt(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
