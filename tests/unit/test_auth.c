/* Challenge-response: a tenant's stored secret passes, every altered
 * input fails, and the server proof is bound to both nonces. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmpool.h"
#include "proto.h"
#include "store.h"
#include "util.h"

typedef struct fixture {
    char dir[64];
    gmpd_store *store;
    gmpd_tenant t;
    uint8_t snonce[GMPC_NONCE_LEN];
    gmpc_auth a;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    snprintf(f->dir, sizeof f->dir, "/tmp/gmpauth.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(gmpd_store_open(&f->store, f->dir, err, sizeof err),
                     GMP_OK);
    assert_int_equal(gmpd_tenant_add(f->store, "alice", &f->t), GMP_OK);
    gmpc_random(f->snonce, sizeof f->snonce);
    /* the client side: what libgmpool-client sends */
    snprintf(f->a.tenant, sizeof f->a.tenant, "alice");
    gmpc_random(f->a.cnonce, sizeof f->a.cnonce);
    assert_int_equal(gmpc_auth_mac(f->t.secret, sizeof f->t.secret, "alice",
                                   f->snonce, f->a.cnonce, 0, f->a.mac),
                     GMP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    gmpd_store_close(f->store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* The daemon's check, with the secret as it comes back from the store. */
static bool server_accepts(fixture *f, const gmpc_auth *a)
{
    gmpd_tenant t;
    return gmpd_tenant_get(f->store, a->tenant, &t) == GMP_OK &&
           gmpc_auth_verify(t.secret, sizeof t.secret, f->snonce, a);
}

static void good_response_passes(void **state)
{
    fixture *f = *state;
    assert_true(server_accepts(f, &f->a));
}

static void wrong_secret_fails(void **state)
{
    fixture *f = *state;
    gmpc_auth a = f->a;
    uint8_t secret[32];
    memcpy(secret, f->t.secret, 32);
    secret[0] ^= 1;
    gmpc_auth_mac(secret, 32, "alice", f->snonce, a.cnonce, 0, a.mac);
    assert_false(server_accepts(f, &a));
}

static void each_altered_input_fails(void **state)
{
    fixture *f = *state;
    gmpc_auth a = f->a;
    a.mac[31] ^= 0x80;
    assert_false(server_accepts(f, &a));
    a = f->a;
    a.cnonce[0] ^= 1; /* not the nonce the MAC covers */
    assert_false(server_accepts(f, &a));
    a = f->a;
    a.session_id = 42; /* joining a session needs a MAC over its id */
    assert_false(server_accepts(f, &a));
    /* another challenge: a captured response cannot be replayed */
    uint8_t other[GMPC_NONCE_LEN];
    memcpy(other, f->snonce, sizeof other);
    other[5] ^= 1;
    assert_false(gmpc_auth_verify(f->t.secret, 32, other, &f->a));
}

static void unknown_tenant_fails(void **state)
{
    fixture *f = *state;
    gmpc_auth a = f->a;
    snprintf(a.tenant, sizeof a.tenant, "mallory");
    assert_false(server_accepts(f, &a));
    /* another tenant's secret does not pass for alice */
    gmpd_tenant bob;
    assert_int_equal(gmpd_tenant_add(f->store, "bob", &bob), GMP_OK);
    a = f->a;
    gmpc_auth_mac(bob.secret, 32, "alice", f->snonce, a.cnonce, 0, a.mac);
    assert_false(server_accepts(f, &a));
}

static void server_proof(void **state)
{
    fixture *f = *state;
    uint8_t proof[GMPC_MAC_LEN];
    assert_int_equal(gmpc_server_proof(f->t.secret, 32, "alice", f->snonce,
                                       f->a.cnonce, 7, proof),
                     GMP_OK);
    assert_true(gmpc_server_proof_verify(f->t.secret, 32, "alice", f->snonce,
                                         f->a.cnonce, 7, proof));
    /* bound to the session id handed out */
    assert_false(gmpc_server_proof_verify(f->t.secret, 32, "alice", f->snonce,
                                          f->a.cnonce, 8, proof));
    /* the client MAC is not a valid proof (distinct labels) */
    assert_false(gmpc_server_proof_verify(f->t.secret, 32, "alice",
                                          f->snonce, f->a.cnonce, 0, f->a.mac));
    proof[0] ^= 1;
    assert_false(gmpc_server_proof_verify(f->t.secret, 32, "alice", f->snonce,
                                          f->a.cnonce, 7, proof));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(good_response_passes, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_secret_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(each_altered_input_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unknown_tenant_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(server_proof, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
