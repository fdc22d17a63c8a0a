/* The gmpool OpenSSL 3 provider: shared context, settings and errors.
 * One file per operation family (digest.c, mac.c, cipher.c), as in
 * OpenSSL's providers/implementations/. */
#ifndef GMPROV_H
#define GMPROV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>

#include "gmpool.h"

#define GMPROV_NAME "gmpool"
#define GMPROV_PROPS "provider=gmpool"

/* Reason codes on the ERR queue (strings in prov.c). */
enum {
    GMPROV_R_POOL = 1,           /* the pool refused or failed a call */
    GMPROV_R_CONFIG,             /* bad provider setting */
    GMPROV_R_DUP_POOLED,         /* duplicating a context whose state is in the pool */
    GMPROV_R_BAD_PARAM,
    GMPROV_R_BAD_KEY_LENGTH,
    GMPROV_R_BAD_IV_LENGTH,
    GMPROV_R_STATE,              /* call out of order */
    GMPROV_R_WRONG_FINAL_BLOCK_LENGTH,
    GMPROV_R_BAD_DECRYPT,
    GMPROV_R_OUTPUT_TOO_SMALL,
    GMPROV_R_LOCAL                /* the in-process default provider failed */
};

typedef struct gmprov_settings {
    char server[256];
    char credentials[1024];
    unsigned shard_size;
    unsigned window;
    unsigned priority;
    unsigned deadline_ms;
    size_t local_threshold;      /* below this, compute in-process */
} gmprov_settings;

typedef struct gmprov_ctx {
    const OSSL_CORE_HANDLE *core;
    OSSL_LIB_CTX *libctx;
    gmprov_settings set;
    pthread_mutex_t mu;
    gmp_client *client;          /* opened on first pooled call */
} gmprov_ctx;

void gmprov_err(gmprov_ctx *p, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Puts a failed pool call on the ERR queue; returns 0 for chaining. */
int gmprov_pool_err(gmprov_ctx *p, int status, const char *what);
/* The pool client, opened on first use (NULL with an error raised). */
gmp_client *gmprov_client(gmprov_ctx *p);
gmp_task_options gmprov_task_options(gmprov_ctx *p, uint64_t total);

extern const OSSL_DISPATCH gmprov_sm3_functions[];
extern const OSSL_DISPATCH gmprov_hmac_functions[];
extern const OSSL_DISPATCH gmprov_sm4_ecb_functions[];
extern const OSSL_DISPATCH gmprov_sm4_cbc_functions[];
extern const OSSL_DISPATCH gmprov_sm4_ctr_functions[];
extern const OSSL_DISPATCH gmprov_sm4_ofb_functions[];
extern const OSSL_DISPATCH gmprov_sm4_cfb_functions[];
extern const OSSL_DISPATCH gmprov_sm4_gcm_functions[];

#endif
