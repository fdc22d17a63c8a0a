/* The tenant's token: its user PIN and the login state of a session.
 *
 * A PIN is never stored: the store keeps a verifier record (wrapped under
 * the master key like a secret):
 *   version (1) || iterations (u32 BE) || salt (16) || PBKDF2-HMAC-SM3 (32)
 * Consecutive wrong PINs are counted in the store and lock the PIN at
 * GMPD_PIN_TRIES until the operator sets a new one (gmpoolctl tenant pin);
 * the count survives a restart, so restarting does not buy more guesses. */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "gmpd.h"
#include "gmpool.h"
#include "util.h"

#define PIN_REC_VERSION 1
#define PIN_SALT 16
#define PIN_DK 32
#define PIN_REC_LEN GMPD_PIN_REC_LEN
_Static_assert(PIN_REC_LEN == 1 + 4 + PIN_SALT + PIN_DK, "PIN record");
#define PIN_ITER 10000u

/* One verifier at a time: the failure count is read, compared and
 * written back as a unit, so parallel guesses cannot share a count. */
static pthread_mutex_t pin_mu = PTHREAD_MUTEX_INITIALIZER;

static int pin_derive(const uint8_t *pin, size_t len, const uint8_t *salt,
                      uint32_t iter, uint8_t dk[PIN_DK])
{
    EVP_KDF *kdf = EVP_KDF_fetch(gmpc_libctx(), "PBKDF2", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                          (void *)pin, len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
                                          PIN_SALT),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_ITER, &iter),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SM3", 0),
        OSSL_PARAM_construct_end()};
    int ok = ctx && EVP_KDF_derive(ctx, dk, PIN_DK, p) > 0;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? GMP_OK : GMP_ERR_INTERNAL;
}

static bool pin_len_ok(size_t len)
{
    return len >= GMPD_PIN_MIN && len <= GMPD_PIN_MAX;
}

int gmpd_pin_record(const uint8_t *pin, size_t len,
                    uint8_t rec[GMPD_PIN_REC_LEN])
{
    if (!pin_len_ok(len))
        return GMP_ERR_ARG;
    rec[0] = PIN_REC_VERSION;
    rec[1] = (uint8_t)(PIN_ITER >> 24);
    rec[2] = (uint8_t)(PIN_ITER >> 16);
    rec[3] = (uint8_t)(PIN_ITER >> 8);
    rec[4] = (uint8_t)PIN_ITER;
    int rc = gmpc_random(rec + 5, PIN_SALT);
    if (!rc)
        rc = pin_derive(pin, len, rec + 5, PIN_ITER, rec + 5 + PIN_SALT);
    return rc;
}

int gmpd_pin_set(const char *tenant, const uint8_t *pin, size_t len)
{
    uint8_t rec[PIN_REC_LEN];
    int rc = gmpd_pin_record(pin, len, rec);
    pthread_mutex_lock(&pin_mu);
    if (!rc)
        rc = gmpd_tenant_pin_set(gmpd->store, tenant, rec, sizeof rec);
    pthread_mutex_unlock(&pin_mu);
    OPENSSL_cleanse(rec, sizeof rec);
    return rc;
}

static int pin_compare(const gmpd_pin *p, const uint8_t *pin, size_t len)
{
    uint8_t dk[PIN_DK];
    if (p->len != PIN_REC_LEN || p->rec[0] != PIN_REC_VERSION)
        return GMP_ERR_INTERNAL;
    uint32_t iter = (uint32_t)p->rec[1] << 24 | (uint32_t)p->rec[2] << 16 |
                    (uint32_t)p->rec[3] << 8 | p->rec[4];
    int rc = pin_derive(pin, len, p->rec + 5, iter, dk);
    if (!rc && CRYPTO_memcmp(dk, p->rec + 5 + PIN_SALT, PIN_DK) != 0)
        rc = GMP_ERR_PIN;
    OPENSSL_cleanse(dk, sizeof dk);
    return rc;
}

/* A wrong length counts as a wrong PIN: it is a guess like any other. */
int gmpd_pin_check(const gmpd_pin *p, const uint8_t *pin, size_t len,
                   uint32_t *fails)
{
    int rc = p->len == 0                ? GMP_ERR_PIN_UNSET
             : p->fails >= GMPD_PIN_TRIES ? GMP_ERR_PIN_LOCKED
             : pin_len_ok(len)            ? pin_compare(p, pin, len)
                                          : GMP_ERR_PIN;
    *fails = rc == GMP_OK ? 0 : rc == GMP_ERR_PIN ? p->fails + 1 : p->fails;
    return rc;
}

static int pin_verify(const char *tenant, const uint8_t *pin, size_t len)
{
    gmpd_pin p;
    uint32_t fails = 0;
    int rc = gmpd_tenant_pin_get(gmpd->store, tenant, &p);
    if (!rc)
        rc = gmpd_pin_check(&p, pin, len, &fails);
    if ((rc == GMP_OK || rc == GMP_ERR_PIN) && fails != p.fails)
        gmpd_tenant_pin_fails(gmpd->store, tenant, fails);
    if (rc == GMP_ERR_PIN && fails >= GMPD_PIN_TRIES)
        gmpd_log(GMPD_WARN, "tenant %s: user PIN locked after %u wrong "
                 "attempts", tenant, GMPD_PIN_TRIES);
    OPENSSL_cleanse(&p, sizeof p);
    return rc;
}

int gmpd_token_login(gmpd_session *s, const uint8_t *pin, size_t len)
{
    pthread_mutex_lock(&pin_mu);
    int rc = pin_verify(s->tenant.name, pin, len);
    pthread_mutex_unlock(&pin_mu);
    if (rc == GMP_OK)
        atomic_store(&s->logged_in, true);
    return rc;
}

void gmpd_token_logout(gmpd_session *s)
{
    atomic_store(&s->logged_in, false);
}

int gmpd_token_set_pin(gmpd_session *s, const uint8_t *old, size_t old_len,
                       const uint8_t *pin, size_t len)
{
    if (!pin_len_ok(len))
        return GMP_ERR_ARG;
    pthread_mutex_lock(&pin_mu);
    int rc = pin_verify(s->tenant.name, old, old_len);
    pthread_mutex_unlock(&pin_mu);
    return rc ? rc : gmpd_pin_set(s->tenant.name, pin, len);
}

int gmpd_token_info(gmpd_session *s, gmpd_token_state *out)
{
    gmpd_pin p;
    memset(out, 0, sizeof *out);
    int rc = gmpd_tenant_pin_get(gmpd->store, s->tenant.name, &p);
    if (rc)
        return rc;
    out->pin_set = p.len != 0;
    out->fails = p.fails;
    out->locked = p.fails >= GMPD_PIN_TRIES;
    out->logged_in = atomic_load(&s->logged_in);
    OPENSSL_cleanse(&p, sizeof p);
    return GMP_OK;
}

bool gmpd_token_may_see(gmpd_session *s, uint32_t key_flags)
{
    return !(key_flags & GMP_KEYF_PRIVATE) || atomic_load(&s->logged_in);
}
