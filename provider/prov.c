/* Provider entry point: dispatch tables, settings from the provider's
 * config section and the environment, errors with reason strings. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

#include "prov.h"

/* Measured crossover (docs/provider.md): below about this many bytes a
 * round trip to the pool costs more than computing here. */
#define DEFAULT_LOCAL_THRESHOLD (128u * 1024u)

static OSSL_FUNC_core_new_error_fn *c_new_error;
static OSSL_FUNC_core_set_error_debug_fn *c_set_error_debug;
static OSSL_FUNC_core_vset_error_fn *c_vset_error;
static OSSL_FUNC_core_get_params_fn *c_get_params;

void gmprov_err(gmprov_ctx *p, int reason, const char *fmt, ...)
{
    va_list ap;
    if (!c_new_error || !c_vset_error)
        return;
    c_new_error(p ? p->core : NULL);
    c_set_error_debug(p ? p->core : NULL, "gmpool", 0, "gmpool");
    va_start(ap, fmt);
    c_vset_error(p ? p->core : NULL, (uint32_t)reason, fmt, ap);
    va_end(ap);
}

int gmprov_pool_err(gmprov_ctx *p, int status, const char *what)
{
    gmprov_err(p, GMPROV_R_POOL, "%s: %s (%s)", what, gmp_strerror(status),
               gmp_client_last_error());
    return 0;
}

gmp_client *gmprov_client(gmprov_ctx *p)
{
    pthread_mutex_lock(&p->mu);
    if (!p->client) {
        gmp_options o = {
            .server = p->set.server[0] ? p->set.server : NULL,
            .credentials = p->set.credentials[0] ? p->set.credentials : NULL,
            .shard_size = p->set.shard_size,
            .window = p->set.window,
        };
        int rc = gmp_client_open(&p->client, &o);
        if (rc != GMP_OK)
            gmprov_pool_err(p, rc, "cannot set up the gmpool client");
    }
    gmp_client *c = p->client;
    pthread_mutex_unlock(&p->mu);
    return c;
}

gmp_task_options gmprov_task_options(gmprov_ctx *p, uint64_t total)
{
    gmp_task_options o = {.priority = (uint8_t)p->set.priority,
                          .deadline_ms = p->set.deadline_ms,
                          .total_len = total};
    return o;
}

/* ---- settings ---- */

typedef struct setting {
    const char *key, *env;
} setting;

static const setting g_settings[] = {
    {"server", "GMPOOL_SERVER"},
    {"credentials", "GMPOOL_CREDENTIALS"},
    {"shard_size", "GMPOOL_SHARD_SIZE"},
    {"window", "GMPOOL_WINDOW"},
    {"priority", "GMPOOL_PRIORITY"},
    {"deadline", "GMPOOL_DEADLINE_MS"},
    {"local_threshold", "GMPOOL_LOCAL_THRESHOLD"},
};
#define N_SETTINGS (sizeof g_settings / sizeof g_settings[0])

static bool parse_uint(const char *s, unsigned long max, unsigned long *v)
{
    char *end;
    unsigned long x = strtoul(s, &end, 10);
    if (end == s || *end || x > max)
        return false;
    *v = x;
    return true;
}

static bool apply(gmprov_ctx *p, const char *key, const char *val)
{
    gmprov_settings *s = &p->set;
    unsigned long v;
    if (strcmp(key, "server") == 0)
        return snprintf(s->server, sizeof s->server, "%s", val) <
               (int)sizeof s->server;
    if (strcmp(key, "credentials") == 0)
        return snprintf(s->credentials, sizeof s->credentials, "%s", val) <
               (int)sizeof s->credentials;
    if (strcmp(key, "shard_size") == 0 && parse_uint(val, GMP_SHARD_MAX, &v) &&
        v >= GMP_SHARD_MIN && v % 16 == 0)
        return s->shard_size = (unsigned)v, true;
    if (strcmp(key, "window") == 0 && parse_uint(val, 1024, &v) && v)
        return s->window = (unsigned)v, true;
    if (strcmp(key, "priority") == 0 && parse_uint(val, 7, &v))
        return s->priority = (unsigned)v, true;
    if (strcmp(key, "deadline") == 0 && parse_uint(val, UINT32_MAX, &v))
        return s->deadline_ms = (unsigned)v, true;
    if (strcmp(key, "local_threshold") == 0 &&
        parse_uint(val, 1ul << 40, &v))
        return s->local_threshold = v, true;
    return false;
}

/* The provider section of openssl.cnf first, then the environment, which
 * wins so one run can be tuned without editing the file. */
static int load_settings(gmprov_ctx *p)
{
    char *vals[N_SETTINGS] = {0};
    OSSL_PARAM req[N_SETTINGS + 1];
    p->set.priority = 4;
    p->set.local_threshold = DEFAULT_LOCAL_THRESHOLD;
    for (size_t i = 0; i < N_SETTINGS; i++)
        req[i] = OSSL_PARAM_construct_utf8_ptr(g_settings[i].key, &vals[i], 0);
    req[N_SETTINGS] = OSSL_PARAM_construct_end();
    if (c_get_params && !c_get_params(p->core, req))
        return 0;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *env = getenv(g_settings[i].env);
        const char *v = env && *env ? env : vals[i];
        if (v && !apply(p, g_settings[i].key, v)) {
            /* the reason strings are not registered yet during init, so
             * the detail text says what went wrong on its own */
            gmprov_err(p, GMPROV_R_CONFIG,
                       "bad gmpool provider setting: '%s' for %s (%s)", v,
                       g_settings[i].key, env && *env ? g_settings[i].env
                                                      : "provider section");
            return 0;
        }
    }
    return 1;
}

/* ---- provider functions ---- */

static const OSSL_ALGORITHM g_digests[] = {
    {"SM3:1.2.156.10197.1.401", GMPROV_PROPS, gmprov_sm3_functions,
     "SM3 computed in the gmpool pool"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM g_macs[] = {
    {"HMAC", GMPROV_PROPS, gmprov_hmac_functions,
     "HMAC (SM3) computed in the gmpool pool"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM g_ciphers[] = {
    {"SM4-ECB:1.2.156.10197.1.104.1", GMPROV_PROPS, gmprov_sm4_ecb_functions,
     NULL},
    {"SM4-CBC:SM4:1.2.156.10197.1.104.2", GMPROV_PROPS,
     gmprov_sm4_cbc_functions, NULL},
    {"SM4-OFB:SM4-OFB128:1.2.156.10197.1.104.3", GMPROV_PROPS,
     gmprov_sm4_ofb_functions, NULL},
    {"SM4-CFB:SM4-CFB128:1.2.156.10197.1.104.4", GMPROV_PROPS,
     gmprov_sm4_cfb_functions, NULL},
    {"SM4-CTR:1.2.156.10197.1.104.7", GMPROV_PROPS, gmprov_sm4_ctr_functions,
     NULL},
    {"SM4-GCM:1.2.156.10197.1.104.8", GMPROV_PROPS, gmprov_sm4_gcm_functions,
     "SM4-GCM, which OpenSSL 3.0's default provider lacks"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM *query(void *provctx, int op, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (op) {
    case OSSL_OP_DIGEST:
        return g_digests;
    case OSSL_OP_MAC:
        return g_macs;
    case OSSL_OP_CIPHER:
        return g_ciphers;
    default:
        return NULL;
    }
}

static const OSSL_PARAM *gettable_params(void *provctx)
{
    static const OSSL_PARAM p[] = {
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL,
                        0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
        OSSL_PARAM_END};
    (void)provctx;
    return p;
}

static int get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;
    (void)provctx;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p && !OSSL_PARAM_set_utf8_ptr(p, "gmpool: pooled SM3/SM4"))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p && !OSSL_PARAM_set_utf8_ptr(p, GMPOOL_VERSION_STRING))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p && !OSSL_PARAM_set_utf8_ptr(p, "gmpool " GMPOOL_VERSION_STRING))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

static const OSSL_ITEM *reason_strings(void *provctx)
{
    static const OSSL_ITEM r[] = {
        {GMPROV_R_POOL, "gmpool pool call failed"},
        {GMPROV_R_CONFIG, "bad gmpool provider setting"},
        {GMPROV_R_DUP_POOLED, "cannot duplicate a context whose state is in the pool"},
        {GMPROV_R_BAD_PARAM, "bad parameter"},
        {GMPROV_R_BAD_KEY_LENGTH, "bad key length"},
        {GMPROV_R_BAD_IV_LENGTH, "bad IV length"},
        {GMPROV_R_STATE, "call out of order"},
        {GMPROV_R_WRONG_FINAL_BLOCK_LENGTH, "wrong final block length"},
        {GMPROV_R_BAD_DECRYPT, "bad decrypt"},
        {GMPROV_R_OUTPUT_TOO_SMALL, "output buffer too small"},
        {GMPROV_R_LOCAL, "in-process computation failed"},
        {0, NULL}};
    (void)provctx;
    return r;
}

static void teardown(void *provctx)
{
    gmprov_ctx *p = provctx;
    if (p->client)
        gmp_client_close(p->client);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static const OSSL_DISPATCH g_provider_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))teardown},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))query},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))get_params},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))reason_strings},
    {0, NULL}};

static void take_core_functions(const OSSL_DISPATCH *in)
{
    for (; in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_NEW_ERROR:
            c_new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            c_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            c_vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        case OSSL_FUNC_CORE_GET_PARAMS:
            c_get_params = OSSL_FUNC_core_get_params(in);
            break;
        default:
            break;
        }
    }
}

__attribute__((visibility("default"))) int
OSSL_provider_init(const OSSL_CORE_HANDLE *core, const OSSL_DISPATCH *in,
                   const OSSL_DISPATCH **out, void **provctx)
{
    take_core_functions(in);
    gmprov_ctx *p = calloc(1, sizeof *p);
    if (!p)
        return 0;
    p->core = core;
    pthread_mutex_init(&p->mu, NULL);
    if (!load_settings(p)) {
        teardown(p);
        return 0;
    }
    *provctx = p;
    *out = g_provider_functions;
    return 1;
}
