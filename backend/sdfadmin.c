/* admin `sdf ...`: the operator's side of the SDF front end's internal
 * keys (sdf.c) in a tenant's VCM: KEKs and SM2 key pairs by index, and the
 * password guarding each pair.  Key values are generated here and never
 * shown; `list` shows indexes, the start of each public key and the state
 * of the password.  gmpoolctl reads passwords from stdin and appends them
 * to the command. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gmpd.h"
#include "gmpool.h"
#include "sm2.h"
#include "util.h"

static int tenant_vcm(const char *name, uint32_t *vcm)
{
    gmpd_tenant t;
    int rc = gmpd_tenant_get(gmpd->store, name, &t);
    *vcm = rc ? 0 : t.vcm;
    OPENSSL_cleanse(&t, sizeof t);
    return rc;
}

static int parse_index(const char *s, uint32_t *idx)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > GMP_SDF_INDEX_MAX)
        return GMP_ERR_ARG;
    *idx = (uint32_t)v;
    return GMP_OK;
}

static const char *type_name(uint16_t type)
{
    return type == GMPD_KEY_KEK        ? "kek"
           : type == GMPD_KEY_SM2_SIGN ? "sm2-sign"
                                       : "sm2-enc";
}

/* A new internal key: 16 random bytes for a KEK, an SM2 private key for a
 * pair's half. */
static int key_add(uint32_t vcm, uint16_t type, uint32_t idx)
{
    uint8_t v[GMPD_SM2_LEN];
    gmpd_sm2_point pub;
    size_t len = type == GMPD_KEY_KEK ? GMP_SM4_KEY_LEN : GMPD_SM2_LEN;
    int rc = type == GMPD_KEY_KEK ? gmpd_engine_random(v, len)
                                  : gmpd_sm2_keygen(v, &pub);
    gmpd_key_attr a = {.vcm = vcm, .type = type, .idx = idx,
                       .flags = GMP_KEYF_TOKEN | GMP_KEYF_SENSITIVE};
    gmpc_fmt(a.label, sizeof a.label, "sdf-%s-%u", type_name(type), idx);
    if (!rc)
        rc = gmpd_key_put(gmpd->store, &a, v, len, NULL);
    OPENSSL_cleanse(v, sizeof v);
    return rc;
}

static int key_delete(uint32_t vcm, uint16_t type, uint32_t idx)
{
    gmpd_key_attr a;
    int rc = gmpd_key_get_idx(gmpd->store, vcm, type, idx, &a, NULL, 0,
                              NULL);
    return rc ? rc : gmpd_key_delete(gmpd->store, vcm, a.handle);
}

static int password_set(uint32_t vcm, uint32_t idx, const char *pwd)
{
    uint8_t rec[GMPD_PIN_REC_LEN];
    int rc = gmpd_pin_record((const uint8_t *)pwd, strlen(pwd), rec);
    if (!rc)
        rc = gmpd_keypin_set(gmpd->store, vcm, idx, rec, sizeof rec);
    OPENSSL_cleanse(rec, sizeof rec);
    return rc;
}

/* A password of a PIN's length, or what is wrong with it. */
static int password_ok(const char *pwd, gmpc_text *o)
{
    size_t n = strlen(pwd);
    if (n >= GMPD_PIN_MIN && n <= GMPD_PIN_MAX)
        return GMP_OK;
    gmpc_say(o, "a password has %u to %u bytes\n", GMPD_PIN_MIN, GMPD_PIN_MAX);
    return GMP_ERR_ARG;
}

static bool pair_exists(uint32_t vcm, uint32_t idx)
{
    gmpd_key_attr a;
    return gmpd_key_get_idx(gmpd->store, vcm, GMPD_KEY_SM2_SIGN, idx, &a,
                            NULL, 0, NULL) == GMP_OK ||
           gmpd_key_get_idx(gmpd->store, vcm, GMPD_KEY_SM2_ENC, idx, &a,
                            NULL, 0, NULL) == GMP_OK;
}

/* Both halves and the password, or nothing. */
static int pair_add(uint32_t vcm, uint32_t idx, const char *pwd, gmpc_text *o)
{
    int rc = password_ok(pwd, o);
    if (rc)
        return rc;
    if (pair_exists(vcm, idx))
        return GMP_ERR_EXISTS;
    rc = key_add(vcm, GMPD_KEY_SM2_SIGN, idx);
    if (!rc)
        rc = key_add(vcm, GMPD_KEY_SM2_ENC, idx);
    if (!rc)
        rc = password_set(vcm, idx, pwd);
    if (rc) {
        key_delete(vcm, GMPD_KEY_SM2_SIGN, idx);
        key_delete(vcm, GMPD_KEY_SM2_ENC, idx);
    }
    return rc;
}

static int pair_delete(uint32_t vcm, uint32_t idx)
{
    int r1 = key_delete(vcm, GMPD_KEY_SM2_SIGN, idx);
    int r2 = key_delete(vcm, GMPD_KEY_SM2_ENC, idx);
    int r3 = gmpd_keypin_set(gmpd->store, vcm, idx, NULL, 0);
    if (r1 == GMP_ERR_NOT_FOUND && r2 == GMP_ERR_NOT_FOUND)
        return GMP_ERR_NOT_FOUND;
    return r1 && r1 != GMP_ERR_NOT_FOUND   ? r1
           : r2 && r2 != GMP_ERR_NOT_FOUND ? r2
                                           : r3;
}

typedef struct list_ctx {
    gmpc_text *o;
    uint32_t vcm;
} list_ctx;

static const char *password_state(uint32_t vcm, uint32_t idx)
{
    gmpd_pin p;
    const char *st = gmpd_keypin_get(gmpd->store, vcm, idx, &p) ? "?"
                     : p.len == 0                               ? "unset"
                     : p.fails >= GMPD_PIN_TRIES                ? "locked"
                                                                : "set";
    OPENSSL_cleanse(&p, sizeof p);
    return st;
}

static int list_row(const gmpd_key_attr *a, void *arg)
{
    list_ctx *l = arg;
    char hex[17] = "-";
    uint8_t d[GMPD_SM2_LEN];
    gmpd_sm2_point pub;
    if (!a->idx)
        return 0;
    bool pair = a->type != GMPD_KEY_KEK;
    if (pair && gmpd_key_get(gmpd->store, l->vcm, a->handle, NULL, d,
                             sizeof d, NULL) == GMP_OK &&
        gmpd_sm2_public(NULL, d, &pub) == GMP_OK)
        gmpc_hex_encode(pub.x, 8, hex);
    OPENSSL_cleanse(d, sizeof d);
    gmpc_say(l->o, "%-9s %5u %8u %-16s %s\n", type_name(a->type), a->idx,
             a->handle, hex, pair ? password_state(l->vcm, a->idx) : "-");
    return 0;
}

static int cmd_list(uint32_t vcm, gmpc_text *o)
{
    list_ctx l = {o, vcm};
    gmpc_say(o, "%-9s %5s %8s %-16s %s\n", "KIND", "INDEX", "HANDLE",
             "PUBLIC X", "PASSWORD");
    return gmpd_key_list(gmpd->store, vcm, list_row, &l);
}

/* What a command acts on: the tenant's VCM, an index, a password. */
typedef struct sdf_args {
    uint32_t vcm, idx;
    const char *pwd;
} sdf_args;

static int run_list(const sdf_args *a, gmpc_text *o)
{
    return cmd_list(a->vcm, o);
}

static int run_kek_add(const sdf_args *a, gmpc_text *o)
{
    (void)o;
    return key_add(a->vcm, GMPD_KEY_KEK, a->idx);
}

static int run_kek_delete(const sdf_args *a, gmpc_text *o)
{
    (void)o;
    return key_delete(a->vcm, GMPD_KEY_KEK, a->idx);
}

static int run_pair_add(const sdf_args *a, gmpc_text *o)
{
    return pair_add(a->vcm, a->idx, a->pwd, o);
}

static int run_pair_delete(const sdf_args *a, gmpc_text *o)
{
    (void)o;
    return pair_delete(a->vcm, a->idx);
}

/* A new password, also after a lock-out: rights given under the old one
 * end with it (sdf.c). */
static int run_password(const sdf_args *a, gmpc_text *o)
{
    int rc = password_ok(a->pwd, o);
    if (rc)
        return rc;
    return pair_exists(a->vcm, a->idx) ? password_set(a->vcm, a->idx, a->pwd)
                                       : GMP_ERR_NOT_FOUND;
}

/* Each form by its words and exact length, so that no count of arguments
 * can turn one command into another.  PASSWORD is what gmpoolctl read
 * from stdin and appended. */
typedef struct sdf_form {
    const char *kind, *verb;   /* verb NULL: the form has none */
    int argc;                  /* with "sdf" */
    bool index, password;
    int (*run)(const sdf_args *a, gmpc_text *o);
} sdf_form;

static const sdf_form forms[] = {
    {"list", NULL, 3, false, false, run_list},
    {"kek", "add", 5, true, false, run_kek_add},
    {"kek", "delete", 5, true, false, run_kek_delete},
    {"keypair", "add", 6, true, true, run_pair_add},
    {"keypair", "delete", 5, true, false, run_pair_delete},
    {"password", NULL, 5, true, true, run_password},
};

#define USAGE                                                               \
    "usage: sdf list TENANT\n"                                              \
    "       sdf kek add|delete TENANT INDEX\n"                              \
    "       sdf keypair add TENANT INDEX PASSWORD\n"                        \
    "       sdf keypair delete TENANT INDEX\n"                              \
    "       sdf password TENANT INDEX PASSWORD\n"                           \
    "(gmpoolctl reads PASSWORD from stdin)\n"

static const sdf_form *form_of(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        const sdf_form *f = &forms[i];
        if (argc == f->argc && strcmp(argv[1], f->kind) == 0 &&
            (!f->verb || strcmp(argv[2], f->verb) == 0))
            return f;
    }
    return NULL;
}

int gmpd_sdf_admin(int argc, char **argv, char *out, size_t cap)
{
    gmpc_text text = {out, cap, 0}, *o = &text;
    if (cap)
        out[0] = '\0';
    const sdf_form *f = argc >= 2 ? form_of(argc, argv) : NULL;
    if (!f) {
        gmpc_say(o, USAGE);
        return GMP_ERR_ARG;
    }
    char **rest = argv + (f->verb ? 3 : 2); /* TENANT [INDEX [PASSWORD]] */
    sdf_args a = {.pwd = f->password ? rest[2] : NULL};
    int rc = tenant_vcm(rest[0], &a.vcm);
    if (rc == GMP_ERR_NOT_FOUND)
        gmpc_say(o, "no tenant %s\n", rest[0]);
    if (!rc && f->index && parse_index(rest[1], &a.idx) != GMP_OK) {
        gmpc_say(o, "an index is 1..%u\n", GMP_SDF_INDEX_MAX);
        rc = GMP_ERR_ARG;
    }
    return rc ? rc : f->run(&a, o);
}
