/* Store tests: files and modes, master key handling, tenants, keys,
 * isolation between VCMs, session purge, that the database holds only
 * wrapped, authenticated secrets, and the SDF tables of schema 3
 * (internal keys by index, key passwords, files, migration from 2). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gmpool.h"
#include "store.h"

typedef struct fixture {
    char base[64];        /* mkdtemp dir, removed in teardown */
    char dir[256];        /* data dir inside it, created by the store */
    gmpd_store *s;
    char err[512];
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void path_in(const fixture *f, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", f->dir, name);
}

static int reopen(fixture *f)
{
    gmpd_store_close(f->s);
    f->s = NULL;
    return gmpd_store_open(&f->s, f->dir, f->err, sizeof f->err);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->base, sizeof f->base, "/tmp/gmpool-store-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    snprintf(f->dir, sizeof f->dir, "%s/sub/data", f->base);
    assert_int_equal(gmpd_store_open(&f->s, f->dir, f->err, sizeof f->err),
                     GMP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    gmpd_store_close(f->s);
    chmod(f->dir, 0700); /* tests may have loosened it */
    nftw(f->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void assert_mode(const fixture *f, const char *name, mode_t mode)
{
    char p[PATH_MAX];
    struct stat st;
    path_in(f, name, p, sizeof p);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, mode);
}

static void read_master(const fixture *f, uint8_t mk[32])
{
    char p[PATH_MAX];
    path_in(f, "master.key", p, sizeof p);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(mk, 1, 32, fp), 32);
    assert_int_equal(fgetc(fp), EOF);
    fclose(fp);
}

static gmpd_key_attr attr_of(uint32_t vcm, uint32_t flags, uint64_t session,
                             const char *label)
{
    gmpd_key_attr a;
    memset(&a, 0, sizeof a);
    a.vcm = vcm;
    a.type = GMP_KEY_SM4;
    a.flags = flags;
    a.session = session;
    snprintf(a.label, sizeof a.label, "%s", label);
    return a;
}

static uint32_t put_key(fixture *f, uint32_t vcm, uint32_t flags,
                        uint64_t session, const uint8_t *v, size_t n)
{
    gmpd_key_attr a = attr_of(vcm, flags, session, "k");
    uint32_t h = 0;
    assert_int_equal(gmpd_key_put(f->s, &a, v, n, &h), GMP_OK);
    assert_true(h >= 1);
    return h;
}

static void test_open_creates_private_files(void **state)
{
    fixture *f = *state;
    gmpd_tenant t;
    /* a write makes sure the WAL file exists */
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    assert_mode(f, "", 0700);
    assert_mode(f, "master.key", 0600);
    assert_mode(f, "gmpool.db", 0600);
    assert_mode(f, "gmpool.db-wal", 0600);
    assert_mode(f, "gmpool.db-shm", 0600);
    char p[PATH_MAX];
    struct stat st;
    path_in(f, "master.key", p, sizeof p);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 32);
}

static void test_open_ignores_umask(void **state)
{
    fixture *f = *state;
    char dir2[256];
    gmpd_store *s2 = NULL;
    snprintf(dir2, sizeof dir2, "%s/other", f->base);
    mode_t old = umask(0);
    int rc = gmpd_store_open(&s2, dir2, f->err, sizeof f->err);
    umask(old);
    assert_int_equal(rc, GMP_OK);
    gmpd_store_close(s2);
    fixture g = *f;
    snprintf(g.dir, sizeof g.dir, "%s", dir2);
    assert_mode(&g, "", 0700);
    assert_mode(&g, "master.key", 0600);
    assert_mode(&g, "gmpool.db", 0600);
}

static void test_reopen_same_master_key(void **state)
{
    fixture *f = *state;
    uint8_t mk1[32], mk2[32];
    gmpd_tenant t1, t2;
    read_master(f, mk1);
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t1), GMP_OK);
    assert_int_equal(reopen(f), GMP_OK);
    read_master(f, mk2);
    assert_memory_equal(mk1, mk2, 32);
    assert_int_equal(gmpd_tenant_get(f->s, "alpha", &t2), GMP_OK);
    assert_memory_equal(t1.secret, t2.secret, GMPD_SECRET_LEN);
    assert_int_equal(t1.vcm, t2.vcm);
}

static void test_tenant_add_get_remove(void **state)
{
    fixture *f = *state;
    gmpd_tenant t, g;
    static const uint8_t zero[GMPD_SECRET_LEN];
    assert_int_equal(gmpd_tenant_count(f->s), 0);
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    assert_string_equal(t.name, "alpha");
    assert_true(t.id >= 1);
    assert_true(t.vcm >= 1);
    assert_true(t.created > 0);
    assert_memory_not_equal(t.secret, zero, GMPD_SECRET_LEN);
    assert_int_equal(gmpd_tenant_get(f->s, "alpha", &g), GMP_OK);
    assert_memory_equal(&t, &g, sizeof t);
    assert_int_equal(gmpd_tenant_count(f->s), 1);
    assert_int_equal(gmpd_tenant_remove(f->s, "alpha"), GMP_OK);
    assert_int_equal(gmpd_tenant_get(f->s, "alpha", &g), GMP_ERR_NOT_FOUND);
    assert_int_equal(gmpd_tenant_remove(f->s, "alpha"), GMP_ERR_NOT_FOUND);
    assert_int_equal(gmpd_tenant_count(f->s), 0);
}

static void test_tenant_duplicate(void **state)
{
    fixture *f = *state;
    gmpd_tenant t1, t2;
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t1), GMP_OK);
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", NULL), GMP_ERR_EXISTS);
    assert_int_equal(gmpd_tenant_get(f->s, "alpha", &t2), GMP_OK);
    assert_memory_equal(t1.secret, t2.secret, GMPD_SECRET_LEN);
    assert_int_equal(gmpd_tenant_count(f->s), 1);
}

static void test_tenant_bad_names(void **state)
{
    fixture *f = *state;
    char long63[64], long64[65];
    memset(long63, 'a', 63);
    long63[63] = '\0';
    memset(long64, 'b', 64);
    long64[64] = '\0';
    const char *bad[] = {"", "a b", "a/b", "x\n", "caf\xc3\xa9", "a:b",
                         ".", "..", long64, "semi;colon"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(gmpd_tenant_add(f->s, bad[i], NULL), GMP_ERR_ARG);
        assert_int_equal(gmpd_tenant_get(f->s, bad[i], NULL), GMP_ERR_ARG);
        assert_int_equal(gmpd_tenant_remove(f->s, bad[i]), GMP_ERR_ARG);
    }
    assert_int_equal(gmpd_tenant_add(f->s, NULL, NULL), GMP_ERR_ARG);
    assert_int_equal(gmpd_tenant_add(f->s, long63, NULL), GMP_OK);
    assert_int_equal(gmpd_tenant_add(f->s, "A-z_0.9", NULL), GMP_OK);
    assert_int_equal(gmpd_tenant_count(f->s), 2);
}

static void test_vcm_ids_unique(void **state)
{
    fixture *f = *state;
    gmpd_tenant a, b, c, d;
    assert_int_equal(gmpd_tenant_add(f->s, "a", &a), GMP_OK);
    assert_int_equal(gmpd_tenant_add(f->s, "b", &b), GMP_OK);
    assert_int_equal(gmpd_tenant_add(f->s, "c", &c), GMP_OK);
    assert_int_equal(a.vcm, 1);
    assert_int_equal(b.vcm, 2);
    assert_int_equal(c.vcm, 3);
    assert_memory_not_equal(a.secret, b.secret, GMPD_SECRET_LEN);
    /* ids are not reused after a removal, even across a restart */
    assert_int_equal(gmpd_tenant_remove(f->s, "c"), GMP_OK);
    assert_int_equal(reopen(f), GMP_OK);
    assert_int_equal(gmpd_tenant_add(f->s, "d", &d), GMP_OK);
    assert_int_equal(d.vcm, 4);
    assert_true(d.id > c.id);
}

typedef struct list_acc {
    gmpd_store *s;
    int n;
    int stop_after;
    char names[8][GMPD_NAME_MAX + 1];
    uint32_t handles[8];
} list_acc;

static int tenant_cb(const gmpd_tenant *t, void *arg)
{
    list_acc *acc = arg;
    /* the lock is not held here: calling back into the store works */
    assert_true(gmpd_tenant_count(acc->s) >= 1);
    snprintf(acc->names[acc->n++], sizeof acc->names[0], "%s", t->name);
    return acc->n == acc->stop_after;
}

static void test_tenant_list(void **state)
{
    fixture *f = *state;
    list_acc acc = {.s = f->s};
    assert_int_equal(gmpd_tenant_list(f->s, tenant_cb, &acc), GMP_OK);
    assert_int_equal(acc.n, 0);
    assert_int_equal(gmpd_tenant_add(f->s, "one", NULL), GMP_OK);
    assert_int_equal(gmpd_tenant_add(f->s, "two", NULL), GMP_OK);
    assert_int_equal(gmpd_tenant_add(f->s, "three", NULL), GMP_OK);
    assert_int_equal(gmpd_tenant_list(f->s, tenant_cb, &acc), GMP_OK);
    assert_int_equal(acc.n, 3);
    assert_string_equal(acc.names[0], "one");
    assert_string_equal(acc.names[1], "two");
    assert_string_equal(acc.names[2], "three");
    list_acc stop = {.s = f->s, .stop_after = 2};
    assert_int_equal(gmpd_tenant_list(f->s, tenant_cb, &stop), GMP_OK);
    assert_int_equal(stop.n, 2);
}

static void test_key_put_get_delete(void **state)
{
    fixture *f = *state;
    gmpd_tenant t;
    uint8_t v[16], out[GMPD_KEY_MAX];
    for (int i = 0; i < 16; i++)
        v[i] = (uint8_t)(0xA0 + i);
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    gmpd_key_attr a = attr_of(t.vcm, GMP_KEYF_TOKEN | GMP_KEYF_SENSITIVE, 9,
                              "my label");
    uint32_t h = 0, h2 = 0;
    assert_int_equal(gmpd_key_put(f->s, &a, v, sizeof v, &h), GMP_OK);
    assert_int_equal(gmpd_key_put(f->s, &a, v, sizeof v, &h2), GMP_OK);
    assert_true(h >= 1);
    assert_true(h2 > h);

    gmpd_key_attr g;
    size_t len = 0;
    assert_int_equal(gmpd_key_get(f->s, t.vcm, h, &g, out, sizeof out, &len),
                     GMP_OK);
    assert_int_equal(len, sizeof v);
    assert_memory_equal(out, v, sizeof v);
    assert_int_equal(g.handle, h);
    assert_int_equal(g.vcm, t.vcm);
    assert_int_equal(g.type, GMP_KEY_SM4);
    assert_int_equal(g.len, sizeof v);
    assert_int_equal(g.flags, GMP_KEYF_TOKEN | GMP_KEYF_SENSITIVE);
    assert_int_equal(g.session, 9);
    assert_string_equal(g.label, "my label");

    /* attributes only; then a buffer too small reports the length */
    len = 0;
    assert_int_equal(gmpd_key_get(f->s, t.vcm, h, &g, NULL, 0, &len), GMP_OK);
    assert_int_equal(len, sizeof v);
    len = 0;
    assert_int_equal(gmpd_key_get(f->s, t.vcm, h, NULL, out, 15, &len),
                     GMP_ERR_BUFFER);
    assert_int_equal(len, sizeof v);

    assert_int_equal(gmpd_key_delete(f->s, t.vcm, h), GMP_OK);
    assert_int_equal(gmpd_key_get(f->s, t.vcm, h, &g, out, sizeof out, &len),
                     GMP_ERR_NOT_FOUND);
    assert_int_equal(gmpd_key_delete(f->s, t.vcm, h), GMP_ERR_NOT_FOUND);
    assert_int_equal(gmpd_key_get(f->s, t.vcm, 0, &g, NULL, 0, &len),
                     GMP_ERR_NOT_FOUND);
    /* handles are not reused */
    uint32_t h3 = put_key(f, t.vcm, GMP_KEYF_TOKEN, 0, v, sizeof v);
    assert_true(h3 > h2);
}

static void test_key_bad_input(void **state)
{
    fixture *f = *state;
    gmpd_tenant t;
    uint8_t v[GMPD_KEY_MAX + 1] = {1};
    uint32_t h = 0;
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    gmpd_key_attr a = attr_of(t.vcm, GMP_KEYF_TOKEN, 0, "x");
    assert_int_equal(gmpd_key_put(f->s, &a, v, 0, &h), GMP_ERR_KEY);
    assert_int_equal(gmpd_key_put(f->s, &a, v, GMPD_KEY_MAX + 1, &h),
                     GMP_ERR_KEY);
    assert_int_equal(gmpd_key_put(f->s, &a, v, GMPD_KEY_MAX, &h), GMP_OK);
    assert_int_equal(gmpd_key_put(f->s, &a, NULL, 16, &h), GMP_ERR_ARG);
    gmpd_key_attr b = a;
    memset(b.label, 'L', sizeof b.label); /* 64 bytes, unterminated */
    assert_int_equal(gmpd_key_put(f->s, &b, v, 16, &h), GMP_ERR_ARG);
    b = a;
    b.type = 99;
    assert_int_equal(gmpd_key_put(f->s, &b, v, 16, &h), GMP_ERR_KEY);
    b = a;
    b.flags = 0x80;
    assert_int_equal(gmpd_key_put(f->s, &b, v, 16, &h), GMP_ERR_ARG);
    b = a;
    b.vcm = t.vcm + 100; /* no tenant owns it */
    assert_int_equal(gmpd_key_put(f->s, &b, v, 16, &h), GMP_ERR_NOT_FOUND);
}

static int key_cb(const gmpd_key_attr *a, void *arg)
{
    list_acc *acc = arg;
    acc->handles[acc->n++] = a->handle;
    return acc->n == acc->stop_after;
}

static void test_cross_vcm_isolation(void **state)
{
    fixture *f = *state;
    gmpd_tenant ta, tb;
    uint8_t v[16] = {7}, out[GMPD_KEY_MAX];
    size_t len;
    assert_int_equal(gmpd_tenant_add(f->s, "a", &ta), GMP_OK);
    assert_int_equal(gmpd_tenant_add(f->s, "b", &tb), GMP_OK);
    uint32_t ha = put_key(f, ta.vcm, GMP_KEYF_TOKEN, 0, v, sizeof v);
    uint32_t hb = put_key(f, tb.vcm, GMP_KEYF_TOKEN, 0, v, sizeof v);
    assert_int_equal(gmpd_key_get(f->s, tb.vcm, ha, NULL, out, sizeof out,
                                  &len), GMP_ERR_NOT_FOUND);
    assert_int_equal(gmpd_key_delete(f->s, tb.vcm, ha), GMP_ERR_NOT_FOUND);
    assert_int_equal(gmpd_key_get(f->s, ta.vcm, ha, NULL, out, sizeof out,
                                  &len), GMP_OK);
    list_acc la = {0}, lb = {0};
    assert_int_equal(gmpd_key_list(f->s, ta.vcm, key_cb, &la), GMP_OK);
    assert_int_equal(gmpd_key_list(f->s, tb.vcm, key_cb, &lb), GMP_OK);
    assert_int_equal(la.n, 1);
    assert_int_equal(la.handles[0], ha);
    assert_int_equal(lb.n, 1);
    assert_int_equal(lb.handles[0], hb);
    /* removing a tenant removes its VCM's keys and nothing else */
    assert_int_equal(gmpd_tenant_remove(f->s, "a"), GMP_OK);
    la.n = 0;
    assert_int_equal(gmpd_key_list(f->s, ta.vcm, key_cb, &la), GMP_OK);
    assert_int_equal(la.n, 0);
    assert_int_equal(gmpd_key_get(f->s, tb.vcm, hb, NULL, out, sizeof out,
                                  &len), GMP_OK);
}

static void test_session_purge(void **state)
{
    fixture *f = *state;
    gmpd_tenant t;
    uint8_t v[16] = {1, 2, 3};
    size_t len;
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    uint32_t s7 = put_key(f, t.vcm, 0, 7, v, sizeof v);
    uint32_t s8 = put_key(f, t.vcm, GMP_KEYF_SENSITIVE, 8, v, sizeof v);
    uint32_t tok = put_key(f, t.vcm, GMP_KEYF_TOKEN, 7, v, sizeof v);
    assert_int_equal(gmpd_key_purge_session(f->s, 7), GMP_OK);
    assert_int_equal(gmpd_key_get(f->s, t.vcm, s7, NULL, NULL, 0, &len),
                     GMP_ERR_NOT_FOUND);
    assert_int_equal(gmpd_key_get(f->s, t.vcm, s8, NULL, NULL, 0, &len),
                     GMP_OK);
    assert_int_equal(gmpd_key_get(f->s, t.vcm, tok, NULL, NULL, 0, &len),
                     GMP_OK);
    list_acc acc = {.stop_after = 1};
    assert_int_equal(gmpd_key_list(f->s, t.vcm, key_cb, &acc), GMP_OK);
    assert_int_equal(acc.n, 1); /* the callback stopped the listing */
}

static void test_reopen_purges_sessions_keeps_tokens(void **state)
{
    fixture *f = *state;
    gmpd_tenant t;
    uint8_t v[32], out[GMPD_KEY_MAX];
    size_t len = 0;
    for (int i = 0; i < 32; i++)
        v[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    uint32_t ses = put_key(f, t.vcm, GMP_KEYF_EXTRACTABLE, 5, v, 16);
    uint32_t tok = put_key(f, t.vcm, GMP_KEYF_TOKEN, 5, v, sizeof v);
    assert_int_equal(reopen(f), GMP_OK);
    assert_int_equal(gmpd_key_get(f->s, t.vcm, ses, NULL, NULL, 0, &len),
                     GMP_ERR_NOT_FOUND);
    gmpd_key_attr g;
    assert_int_equal(gmpd_key_get(f->s, t.vcm, tok, &g, out, sizeof out,
                                  &len), GMP_OK);
    assert_int_equal(len, sizeof v);
    assert_memory_equal(out, v, sizeof v);
    assert_int_equal(g.flags, GMP_KEYF_TOKEN);
}

static void sql_on(const fixture *f, const char *sql, int64_t handle,
                   const void *blob, int blen)
{
    char p[PATH_MAX];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    path_in(f, "gmpool.db", p, sizeof p);
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (blob)
        sqlite3_bind_blob(st, 1, blob, blen, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, handle);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Reads one blob column of one row through a second connection. */
static int blob_of(const fixture *f, const char *sql, int64_t id,
                   uint8_t *out, int cap)
{
    char p[PATH_MAX];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    path_in(f, "gmpool.db", p, sizeof p);
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_bytes(st, 0);
    assert_true(n <= cap);
    memcpy(out, sqlite3_column_blob(st, 0), (size_t)n);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_tamper_detected(void **state)
{
    fixture *f = *state;
    gmpd_tenant t;
    uint8_t v[16] = {9, 9, 9}, out[GMPD_KEY_MAX], blob[256];
    size_t len;
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    uint32_t h1 = put_key(f, t.vcm, GMP_KEYF_TOKEN, 0, v, sizeof v);
    uint32_t h2 = put_key(f, t.vcm, GMP_KEYF_TOKEN, 0, v, sizeof v);
    uint32_t h3 = put_key(f, t.vcm, GMP_KEYF_TOKEN | GMP_KEYF_SENSITIVE, 0,
                          v, sizeof v);
    const char *sel = "SELECT value FROM keys WHERE handle = ?1";
    int n = blob_of(f, sel, h1, blob, sizeof blob);
    assert_int_equal(n, 1 + 16 + 16 + 32);

    /* 1: one bit of ciphertext flipped */
    blob[20] ^= 1;
    sql_on(f, "UPDATE keys SET value = ?1 WHERE handle = ?2", h1, blob, n);
    assert_int_equal(gmpd_key_get(f->s, t.vcm, h1, NULL, out, sizeof out,
                                  &len), GMP_ERR_INTERNAL);
    /* 2: a valid blob moved to another row (the aad binds the handle) */
    blob[20] ^= 1;
    sql_on(f, "UPDATE keys SET value = ?1 WHERE handle = ?2", h2, blob, n);
    assert_int_equal(gmpd_key_get(f->s, t.vcm, h2, NULL, out, sizeof out,
                                  &len), GMP_ERR_INTERNAL);
    /* 3: the sensitive flag cleared behind the store's back */
    sql_on(f, "UPDATE keys SET flags = 4 WHERE handle = ?2", h3, NULL, 0);
    assert_int_equal(gmpd_key_get(f->s, t.vcm, h3, NULL, NULL, 0, &len),
                     GMP_ERR_INTERNAL);
    /* 4: the tenant secret */
    n = blob_of(f, "SELECT secret FROM tenants WHERE id = ?1", t.id, blob,
                sizeof blob);
    blob[n - 1] ^= 0x80;
    sql_on(f, "UPDATE tenants SET secret = ?1 WHERE id = ?2", t.id, blob, n);
    assert_int_equal(gmpd_tenant_get(f->s, "alpha", NULL), GMP_ERR_INTERNAL);
    list_acc acc = {.s = f->s};
    assert_int_equal(gmpd_tenant_list(f->s, tenant_cb, &acc),
                     GMP_ERR_INTERNAL);
    assert_int_equal(acc.n, 0);
}

static void write_file(const char *path, const void *buf, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    fclose(fp);
}

static void test_master_key_checks(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX];
    uint8_t mk[32];
    path_in(f, "master.key", p, sizeof p);
    read_master(f, mk);
    gmpd_store_close(f->s);
    f->s = NULL;

    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(gmpd_store_open(&f->s, f->dir, f->err, sizeof f->err),
                     GMP_ERR_CONFIG);
    assert_null(f->s);
    assert_non_null(strstr(f->err, "master.key"));
    assert_non_null(strstr(f->err, "0644"));

    assert_int_equal(chmod(p, 0600), 0);
    write_file(p, mk, 31);
    assert_int_equal(gmpd_store_open(&f->s, f->dir, f->err, sizeof f->err),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "31 bytes"));

    /* a missing key next to an existing database is not silently replaced */
    assert_int_equal(unlink(p), 0);
    assert_int_equal(gmpd_store_open(&f->s, f->dir, f->err, sizeof f->err),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "missing"));
    assert_int_equal(access(p, F_OK), -1);

    write_file(p, mk, 32);
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(gmpd_store_open(&f->s, f->dir, f->err, sizeof f->err),
                     GMP_OK);
}

static void test_wrong_master_key(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX];
    uint8_t mk[32];
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", NULL), GMP_OK);
    read_master(f, mk);
    mk[0] ^= 1;
    path_in(f, "master.key", p, sizeof p);
    write_file(p, mk, 32);
    assert_int_equal(reopen(f), GMP_OK);
    assert_int_equal(gmpd_tenant_get(f->s, "alpha", NULL), GMP_ERR_INTERNAL);
}

static void test_data_dir_checks(void **state)
{
    fixture *f = *state;
    gmpd_store *s2 = NULL;
    assert_int_equal(chmod(f->dir, 0770), 0);
    assert_int_equal(gmpd_store_open(&s2, f->dir, f->err, sizeof f->err),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "group/world-writable"));
    assert_int_equal(chmod(f->dir, 0702), 0);
    assert_int_equal(gmpd_store_open(&s2, f->dir, f->err, sizeof f->err),
                     GMP_ERR_CONFIG);
    assert_int_equal(chmod(f->dir, 0700), 0);

    char file[256];
    snprintf(file, sizeof file, "%s/plain", f->base);
    write_file(file, "x", 1);
    assert_int_equal(gmpd_store_open(&s2, file, f->err, sizeof f->err),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "not a directory"));
    assert_int_equal(gmpd_store_open(&s2, "", f->err, sizeof f->err),
                     GMP_ERR_ARG);
    assert_null(s2);
}

static void test_db_checks(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX];
    path_in(f, "gmpool.db", p, sizeof p);
    gmpd_store_close(f->s);
    f->s = NULL;
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(gmpd_store_open(&f->s, f->dir, f->err, sizeof f->err),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "gmpool.db"));
    assert_int_equal(chmod(p, 0600), 0);
    sql_on(f, "PRAGMA user_version = 7", 0, NULL, 0);
    assert_int_equal(gmpd_store_open(&f->s, f->dir, f->err, sizeof f->err),
                     GMP_ERR_CONFIG);
    assert_non_null(strstr(f->err, "schema version 7"));
}

static bool file_contains(const char *path, const void *needle, size_t n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return false;
    static uint8_t buf[4 << 20];
    size_t got = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    return memmem(buf, got, needle, n) != NULL;
}

static void test_db_has_no_cleartext(void **state)
{
    fixture *f = *state;
    gmpd_tenant t;
    uint8_t v[GMPD_KEY_MAX];
    for (size_t i = 0; i < sizeof v; i++)
        v[i] = (uint8_t)(0x5A ^ (i * 31));
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    put_key(f, t.vcm, GMP_KEYF_TOKEN, 0, v, sizeof v);
    const char *names[] = {"gmpool.db", "gmpool.db-wal"};
    char p[PATH_MAX];
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < 2; i++) {
            path_in(f, names[i], p, sizeof p);
            assert_false(file_contains(p, v, 16));
            assert_false(file_contains(p, v + 48, 16));
            assert_false(file_contains(p, t.secret, 16));
        }
        /* close checkpoints the WAL into the main file: look again */
        assert_int_equal(reopen(f), GMP_OK);
    }
    path_in(f, "gmpool.db", p, sizeof p);
    assert_true(file_contains(p, "alpha", 5)); /* the search does work */
}

typedef struct worker {
    gmpd_store *s;
    int id;
    int failures;
} worker;

static int count_cb(const gmpd_key_attr *a, void *arg)
{
    (void)a;
    ++*(int *)arg;
    return 0;
}

/* Each thread works in its own tenant; the store must serialise them
 * without losing, mixing or corrupting rows. */
static void *worker_run(void *arg)
{
    worker *w = arg;
    char name[16];
    gmpd_tenant t;
    snprintf(name, sizeof name, "t%d", w->id);
    if (gmpd_tenant_add(w->s, name, &t) != GMP_OK) {
        w->failures++;
        return NULL;
    }
    uint32_t h[40];
    for (int i = 0; i < 40; i++) {
        uint8_t v[16], out[GMPD_KEY_MAX];
        size_t len = 0;
        memset(v, w->id * 40 + i, sizeof v);
        gmpd_key_attr a = attr_of(t.vcm, GMP_KEYF_TOKEN, 0, name);
        w->failures += gmpd_key_put(w->s, &a, v, sizeof v, &h[i]) != GMP_OK;
        w->failures += gmpd_key_get(w->s, t.vcm, h[i], NULL, out, sizeof out,
                                    &len) != GMP_OK;
        w->failures += len != sizeof v || memcmp(out, v, sizeof v) != 0;
    }
    for (int i = 0; i < 40; i += 2)
        w->failures += gmpd_key_delete(w->s, t.vcm, h[i]) != GMP_OK;
    int n = 0;
    w->failures += gmpd_key_list(w->s, t.vcm, count_cb, &n) != GMP_OK;
    w->failures += n != 20;
    return NULL;
}

static void test_threads(void **state)
{
    fixture *f = *state;
    pthread_t th[6];
    worker w[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (worker){.s = f->s, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(gmpd_tenant_count(f->s), 6);
}

/* ---- schema v3: SDF internal keys, key passwords, files ---- */

static gmpd_key_attr internal_attr(uint32_t vcm, uint16_t type, uint32_t idx)
{
    gmpd_key_attr a = attr_of(vcm, GMP_KEYF_TOKEN | GMP_KEYF_SENSITIVE, 0,
                              "sdf");
    a.type = type;
    a.idx = idx;
    return a;
}

static void test_internal_keys_by_index(void **state)
{
    fixture *f = *state;
    gmpd_tenant t, u;
    uint8_t v[32], out[GMPD_KEY_MAX];
    size_t len = 0;
    uint32_t h = 0, h2 = 0;
    memset(v, 0x42, sizeof v);
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    assert_int_equal(gmpd_tenant_add(f->s, "beta", &u), GMP_OK);
    gmpd_key_attr a = internal_attr(t.vcm, GMPD_KEY_SM2_SIGN, 7);
    assert_int_equal(gmpd_key_put(f->s, &a, v, 32, &h), GMP_OK);
    /* one key of a type per index; another type or VCM may share it */
    assert_int_equal(gmpd_key_put(f->s, &a, v, 32, &h2), GMP_ERR_EXISTS);
    a.type = GMPD_KEY_SM2_ENC;
    assert_int_equal(gmpd_key_put(f->s, &a, v, 32, &h2), GMP_OK);
    gmpd_key_attr b = internal_attr(u.vcm, GMPD_KEY_SM2_SIGN, 7);
    assert_int_equal(gmpd_key_put(f->s, &b, v, 32, &h2), GMP_OK);

    gmpd_key_attr g;
    assert_int_equal(gmpd_key_get_idx(f->s, t.vcm, GMPD_KEY_SM2_SIGN, 7, &g,
                                      out, sizeof out, &len), GMP_OK);
    assert_int_equal(g.handle, h);
    assert_int_equal(g.idx, 7);
    assert_int_equal(len, 32);
    assert_memory_equal(out, v, 32);
    assert_int_equal(gmpd_key_get_idx(f->s, t.vcm, GMPD_KEY_SM2_SIGN, 8, &g,
                                      out, sizeof out, &len),
                     GMP_ERR_NOT_FOUND);
    assert_int_equal(gmpd_key_get_idx(f->s, t.vcm, GMPD_KEY_KEK, 7, &g, out,
                                      sizeof out, &len), GMP_ERR_NOT_FOUND);
    assert_int_equal(gmpd_key_get_idx(f->s, t.vcm, GMPD_KEY_SM2_SIGN, 0, &g,
                                      out, sizeof out, &len), GMP_ERR_ARG);

    /* an index only with an internal type, and an internal type only
     * with an index */
    gmpd_key_attr bad = attr_of(t.vcm, GMP_KEYF_TOKEN, 0, "x");
    bad.idx = 3;
    assert_int_equal(gmpd_key_put(f->s, &bad, v, 16, &h2), GMP_ERR_ARG);
    bad = internal_attr(t.vcm, GMPD_KEY_KEK, 0);
    assert_int_equal(gmpd_key_put(f->s, &bad, v, 16, &h2), GMP_ERR_ARG);

    /* the index is bound into the wrapping: moving a key to another
     * index is caught */
    sql_on(f, "UPDATE keys SET idx = 9 WHERE handle = ?2", h, NULL, 0);
    assert_int_equal(gmpd_key_get_idx(f->s, t.vcm, GMPD_KEY_SM2_SIGN, 9, &g,
                                      out, sizeof out, &len),
                     GMP_ERR_INTERNAL);
}

static void test_key_passwords(void **state)
{
    fixture *f = *state;
    gmpd_tenant t;
    gmpd_pin p;
    uint8_t rec[40], blob[256];
    memset(rec, 0x17, sizeof rec);
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    assert_int_equal(gmpd_keypin_get(f->s, t.vcm, 1, &p), GMP_OK);
    assert_int_equal(p.len, 0); /* none yet */
    assert_int_equal(gmpd_keypin_set(f->s, t.vcm, 1, rec, sizeof rec),
                     GMP_OK);
    assert_int_equal(gmpd_keypin_set(f->s, t.vcm, 2, rec, sizeof rec),
                     GMP_OK);
    assert_int_equal(gmpd_keypin_fails(f->s, t.vcm, 1, 3), GMP_OK);
    assert_int_equal(gmpd_keypin_get(f->s, t.vcm, 1, &p), GMP_OK);
    assert_int_equal(p.len, sizeof rec);
    assert_int_equal(p.fails, 3);
    assert_memory_equal(p.rec, rec, sizeof rec);
    /* a new record clears the count */
    assert_int_equal(gmpd_keypin_set(f->s, t.vcm, 1, rec, sizeof rec),
                     GMP_OK);
    assert_int_equal(gmpd_keypin_get(f->s, t.vcm, 1, &p), GMP_OK);
    assert_int_equal(p.fails, 0);
    assert_int_equal(gmpd_keypin_set(f->s, t.vcm, 0, rec, sizeof rec),
                     GMP_ERR_ARG);
    /* a record copied to another index fails its MAC */
    int n = blob_of(f, "SELECT rec FROM sdf_pins WHERE idx = ?1", 1, blob,
                    sizeof blob);
    sql_on(f, "UPDATE sdf_pins SET rec = ?1 WHERE idx = ?2", 2, blob, n);
    assert_int_equal(gmpd_keypin_get(f->s, t.vcm, 2, &p), GMP_ERR_INTERNAL);
    assert_int_equal(gmpd_keypin_set(f->s, t.vcm, 1, NULL, 0), GMP_OK);
    assert_int_equal(gmpd_keypin_get(f->s, t.vcm, 1, &p), GMP_OK);
    assert_int_equal(p.len, 0);
}

static void test_files(void **state)
{
    fixture *f = *state;
    gmpd_tenant t, u;
    const uint8_t name[] = "cert\0bin"; /* names are bytes, NUL included */
    uint8_t buf[64], data[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    size_t len;
    uint64_t used = 0;
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    assert_int_equal(gmpd_tenant_add(f->s, "beta", &u), GMP_OK);
    assert_int_equal(gmpd_file_create(f->s, t.vcm, name, 8, 32, 100),
                     GMP_OK);
    assert_int_equal(gmpd_file_create(f->s, t.vcm, name, 8, 32, 100),
                     GMP_ERR_EXISTS);
    assert_int_equal(gmpd_file_create(f->s, t.vcm, name, 4, 69, 100),
                     GMP_ERR_LIMIT); /* 32 + 69 > 100 */
    assert_int_equal(gmpd_file_create(f->s, t.vcm, name, 4, 68, 100),
                     GMP_OK);
    assert_int_equal(gmpd_file_used(f->s, t.vcm, &used), GMP_OK);
    assert_int_equal(used, 100);
    /* another VCM has its own names and space */
    assert_int_equal(gmpd_file_create(f->s, u.vcm, name, 8, 100, 100),
                     GMP_OK);

    assert_int_equal(gmpd_file_write(f->s, t.vcm, name, 8, 30, data, 2),
                     GMP_OK);
    assert_int_equal(gmpd_file_write(f->s, t.vcm, name, 8, 30, data, 3),
                     GMP_ERR_LENGTH);
    assert_int_equal(gmpd_file_write(f->s, t.vcm, name, 8, 33, data, 0),
                     GMP_ERR_ARG);
    len = sizeof buf; /* more than there is: the rest of the file */
    assert_int_equal(gmpd_file_read(f->s, t.vcm, name, 8, 28, buf, &len),
                     GMP_OK);
    assert_int_equal(len, 4);
    const uint8_t want[4] = {0, 0, 1, 2};
    assert_memory_equal(buf, want, 4);
    len = 4;
    assert_int_equal(gmpd_file_read(f->s, t.vcm, name, 8, 32, buf, &len),
                     GMP_OK);
    assert_int_equal(len, 0);
    assert_int_equal(gmpd_file_read(f->s, t.vcm, name, 8, 33, buf, &len),
                     GMP_ERR_ARG);
    len = 4;
    assert_int_equal(gmpd_file_read(f->s, u.vcm, name, 8, 30, buf, &len),
                     GMP_OK);
    assert_int_equal(buf[0], 0); /* beta's file is its own */

    assert_int_equal(gmpd_file_delete(f->s, t.vcm, name, 8), GMP_OK);
    assert_int_equal(gmpd_file_delete(f->s, t.vcm, name, 8),
                     GMP_ERR_NOT_FOUND);
    len = 4;
    assert_int_equal(gmpd_file_read(f->s, t.vcm, name, 8, 0, buf, &len),
                     GMP_ERR_NOT_FOUND);
    uint8_t long_name[GMPD_FILE_NAME_MAX + 1] = {0};
    assert_int_equal(gmpd_file_create(f->s, t.vcm, long_name,
                                      sizeof long_name, 1, 100),
                     GMP_ERR_ARG);
    assert_int_equal(gmpd_file_create(f->s, t.vcm, name, 0, 1, 100),
                     GMP_ERR_ARG);
    /* removing a tenant removes its files and key passwords */
    uint8_t rec[8] = {1};
    assert_int_equal(gmpd_keypin_set(f->s, u.vcm, 1, rec, sizeof rec),
                     GMP_OK);
    assert_int_equal(gmpd_tenant_remove(f->s, "beta"), GMP_OK);
    assert_int_equal(gmpd_file_used(f->s, u.vcm, &used), GMP_OK);
    assert_int_equal(used, 0);
    gmpd_pin p;
    assert_int_equal(gmpd_keypin_get(f->s, u.vcm, 1, &p), GMP_OK);
    assert_int_equal(p.len, 0);
}

/* A version 2 database (keys, no SDF tables) opens as version 3 with its
 * keys intact. */
static void test_migration_from_v2(void **state)
{
    fixture *f = *state;
    gmpd_tenant t;
    uint8_t v[16] = {7, 7, 7}, out[GMPD_KEY_MAX];
    size_t len = 0;
    assert_int_equal(gmpd_tenant_add(f->s, "alpha", &t), GMP_OK);
    uint32_t h = put_key(f, t.vcm, GMP_KEYF_TOKEN, 0, v, sizeof v);
    gmpd_store_close(f->s);
    f->s = NULL;
    sql_on(f, "DROP TABLE sdf_pins", 0, NULL, 0);
    sql_on(f, "DROP TABLE sdf_files", 0, NULL, 0);
    sql_on(f, "DROP INDEX keys_idx", 0, NULL, 0);
    sql_on(f, "ALTER TABLE keys DROP COLUMN idx", 0, NULL, 0);
    sql_on(f, "PRAGMA user_version = 2", 0, NULL, 0);
    assert_int_equal(gmpd_store_open(&f->s, f->dir, f->err, sizeof f->err),
                     GMP_OK);
    assert_int_equal(gmpd_key_get(f->s, t.vcm, h, NULL, out, sizeof out,
                                  &len), GMP_OK);
    assert_memory_equal(out, v, sizeof v);
    gmpd_key_attr a = internal_attr(t.vcm, GMPD_KEY_KEK, 1);
    assert_int_equal(gmpd_key_put(f->s, &a, v, sizeof v, &h), GMP_OK);
    assert_int_equal(gmpd_file_create(f->s, t.vcm, v, 3, 16, 64), GMP_OK);
    assert_int_equal(reopen(f), GMP_OK);
    assert_int_equal(gmpd_key_get_idx(f->s, t.vcm, GMPD_KEY_KEK, 1, NULL,
                                      out, sizeof out, &len), GMP_OK);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_creates_private_files),
        T(test_open_ignores_umask),
        T(test_reopen_same_master_key),
        T(test_tenant_add_get_remove),
        T(test_tenant_duplicate),
        T(test_tenant_bad_names),
        T(test_vcm_ids_unique),
        T(test_tenant_list),
        T(test_key_put_get_delete),
        T(test_key_bad_input),
        T(test_cross_vcm_isolation),
        T(test_session_purge),
        T(test_reopen_purges_sessions_keeps_tokens),
        T(test_tamper_detected),
        T(test_master_key_checks),
        T(test_wrong_master_key),
        T(test_data_dir_checks),
        T(test_db_checks),
        T(test_db_has_no_cleartext),
        T(test_threads),
        T(test_internal_keys_by_index),
        T(test_key_passwords),
        T(test_files),
        T(test_migration_from_v2),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
