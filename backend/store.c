/* Tenants and the per-VCM keystore in SQLite (DIR/gmpool.db), with every
 * secret wrapped under keys derived from DIR/master.key.
 *
 * Wrapped blob (tenant secrets and key values alike):
 *
 *   version (1) || iv (16) || SM4-CTR(k_enc, iv, value) || tag (32)
 *   tag = HMAC-SM3(k_mac, aad || version || iv || ct)
 *   k_enc = HMAC-SM3(master, "gmpool wrap enc")[0..16]
 *   k_mac = HMAC-SM3(master, "gmpool wrap mac")
 *
 * The aad binds a blob to its row so that a blob copied into another row
 * (another tenant, another VCM's key) or a row whose security attributes
 * were edited fails the MAC:
 *   tenants: "tenant" || name
 *   PINs:    "pin" || name
 *   keys:    "key" || vcm (u32 BE) || handle (u32 BE) || type (u16 BE)
 *            || flags (u32 BE) [|| idx (u32 BE), SDF internal keys only]
 *   SDF key passwords: "sdfpin" || vcm (u32 BE) || idx (u32 BE)
 * The two prefixes differ in their first byte and each layout is fixed or
 * ends in a name drawn from an alphabet without the version byte, so no
 * aad of one kind can be read as another.
 *
 * Every public call takes s->mu; SQLite is opened FULLMUTEX as well, which
 * costs nothing and protects against a future caller forgetting the lock.
 * List callbacks run after the lock is released, so they may call back
 * into the store. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gmpool.h"
#include "util.h"

#define MASTER_LEN 32
#define WRAP_VERSION 1
#define WRAP_IV 16
#define WRAP_TAG 32
#define WRAP_HDR (1 + WRAP_IV)
#define WRAP_OVERHEAD (WRAP_HDR + WRAP_TAG)
#define WRAP_MAX (GMPD_KEY_MAX + WRAP_OVERHEAD)
#define AAD_MAX (sizeof "tenant" + GMPD_NAME_MAX)
#define SCHEMA_VERSION 3
#define BUSY_TIMEOUT_MS 5000

struct gmpd_store {
    pthread_mutex_t mu;
    bool mu_ok;
    sqlite3 *db;
    EVP_CIPHER *ctr;
    uint8_t k_enc[16];
    uint8_t k_mac[32];
};

typedef struct wrap_aad {
    uint8_t b[AAD_MAX];
    size_t n;
} wrap_aad;

/* The store has no error channel after open (the header returns only a
 * status), so integrity and SQLite failures are reported on stderr, which
 * gmpoold's log captures. */
static void store_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void store_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gmpoold: store: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- wrapping ---------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An index moves a key to another SDF slot, so it is bound like the
 * handle; keys without one keep the version 2 layout. */
static void aad_key(wrap_aad *a, const gmpd_key_attr *k, uint32_t flags)
{
    memcpy(a->b, "key", 3);
    put_be32(a->b + 3, k->vcm);
    put_be32(a->b + 7, k->handle);
    a->b[11] = (uint8_t)(k->type >> 8);
    a->b[12] = (uint8_t)k->type;
    put_be32(a->b + 13, flags);
    a->n = 17;
    if (k->idx) {
        put_be32(a->b + 17, k->idx);
        a->n = 21;
    }
}

static void aad_keypin(wrap_aad *a, uint32_t vcm, uint32_t idx)
{
    memcpy(a->b, "sdfpin", 6);
    put_be32(a->b + 6, vcm);
    put_be32(a->b + 10, idx);
    a->n = 14;
}

static void aad_named(wrap_aad *a, const char *prefix, const char *name)
{
    size_t p = strlen(prefix), n = strnlen(name, GMPD_NAME_MAX);
    memcpy(a->b, prefix, p);
    memcpy(a->b + p, name, n);
    a->n = p + n;
}

static void aad_tenant(wrap_aad *a, const char *name)
{
    aad_named(a, "tenant", name);
}

/* CTR is its own inverse, so one function seals and opens. */
static int wrap_ctr(const gmpd_store *s, const uint8_t *iv,
                    const uint8_t *in, size_t n, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    int ok = ctx && EVP_EncryptInit_ex2(ctx, s->ctr, s->k_enc, iv, NULL) &&
             EVP_EncryptUpdate(ctx, out, &l1, in, (int)n) &&
             EVP_EncryptFinal_ex(ctx, out + l1, &l2) &&
             (size_t)(l1 + l2) == n;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? GMP_OK : GMP_ERR_INTERNAL;
}

/* tag over aad || version || iv || ct, where blob holds the last three. */
static int wrap_tag(const gmpd_store *s, const wrap_aad *a,
                    const uint8_t *blob, size_t n, uint8_t tag[WRAP_TAG])
{
    uint8_t msg[AAD_MAX + WRAP_HDR + GMPD_KEY_MAX];
    if (n > WRAP_HDR + GMPD_KEY_MAX)
        return GMP_ERR_INTERNAL;
    memcpy(msg, a->b, a->n);
    memcpy(msg + a->n, blob, n);
    return gmpc_hmac_sm3(s->k_mac, sizeof s->k_mac, msg, a->n + n, tag);
}

static int wrap_seal(const gmpd_store *s, const wrap_aad *a,
                     const uint8_t *val, size_t n, uint8_t blob[WRAP_MAX],
                     size_t *blob_len)
{
    if (n > GMPD_KEY_MAX)
        return GMP_ERR_INTERNAL;
    blob[0] = WRAP_VERSION;
    int rc = gmpc_random(blob + 1, WRAP_IV);
    if (!rc)
        rc = wrap_ctr(s, blob + 1, val, n, blob + WRAP_HDR);
    if (!rc)
        rc = wrap_tag(s, a, blob, WRAP_HDR + n, blob + WRAP_HDR + n);
    *blob_len = n + WRAP_OVERHEAD;
    return rc;
}

/* Verifies the tag before decrypting anything: a blob that fails is
 * reported as GMP_ERR_INTERNAL and its plaintext is never produced. */
static int wrap_open(const gmpd_store *s, const wrap_aad *a,
                     const uint8_t *blob, size_t blen,
                     uint8_t val[GMPD_KEY_MAX], size_t *n)
{
    uint8_t tag[WRAP_TAG];
    if (!blob || blen < WRAP_OVERHEAD || blen > WRAP_MAX ||
        blob[0] != WRAP_VERSION)
        return GMP_ERR_INTERNAL;
    size_t ctn = blen - WRAP_OVERHEAD;
    if (wrap_tag(s, a, blob, WRAP_HDR + ctn, tag) != GMP_OK)
        return GMP_ERR_INTERNAL;
    if (CRYPTO_memcmp(tag, blob + WRAP_HDR + ctn, WRAP_TAG) != 0)
        return GMP_ERR_INTERNAL;
    *n = ctn;
    return wrap_ctr(s, blob + 1, blob + WRAP_HDR, ctn, val);
}

/* ---- SQLite helpers ---------------------------------------------------- */

static sqlite3_stmt *sql_prep(gmpd_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        store_warn("SQL error: %s", sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Only for constant statements without parameters (pragmas, BEGIN). */
static int sql_exec(gmpd_store *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        store_warn("SQL error in '%.40s': %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return GMP_ERR_INTERNAL;
    }
    return GMP_OK;
}

/* Steps a statement that returns no row and finalizes it. */
static int sql_done(gmpd_store *s, sqlite3_stmt *st)
{
    if (!st)
        return GMP_ERR_INTERNAL;
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r == SQLITE_DONE)
        return GMP_OK;
    if (r == SQLITE_CONSTRAINT)
        return GMP_ERR_EXISTS;
    store_warn("SQL error: %s", sqlite3_errmsg(s->db));
    return GMP_ERR_INTERNAL;
}

/* IMMEDIATE takes the write lock up front, so read-then-write sequences
 * (next VCM id, placeholder row then its wrapped value) are atomic even
 * against another process sharing the file. */
static int tx_begin(gmpd_store *s)
{
    return sql_exec(s, "BEGIN IMMEDIATE");
}

static int tx_end(gmpd_store *s, int rc)
{
    if (rc == GMP_OK)
        rc = sql_exec(s, "COMMIT");
    if (rc != GMP_OK && sqlite3_get_autocommit(s->db) == 0)
        sql_exec(s, "ROLLBACK");
    return rc;
}

static void lock(gmpd_store *s)
{
    pthread_mutex_lock(&s->mu);
}

static void unlock(gmpd_store *s)
{
    pthread_mutex_unlock(&s->mu);
}

/* ---- open: data dir, master key, database ------------------------------ */

/* mkdir -p with mode 0700 for every component we create. */
static int dir_make(const char *dir, char *err, size_t errlen)
{
    char p[PATH_MAX];
    if (!gmpc_fmt(p, sizeof p, "%s", dir)) {
        gmpc_fmt(err, errlen, "data dir path too long");
        return GMP_ERR_CONFIG;
    }
    for (char *q = p + 1;; q++) {
        bool end = *q == '\0';
        if (*q != '/' && !end)
            continue;
        *q = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            gmpc_fmt(err, errlen, "cannot create data dir %s: %s", p,
                     strerror(errno));
            return GMP_ERR_CONFIG;
        }
        if (end)
            return GMP_OK;
        *q = '/';
    }
}

/* Anyone who can write the directory could swap master.key or gmpool.db,
 * so it must be ours and closed to group and others for writing. */
static int dir_check(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        gmpc_fmt(err, errlen, "cannot stat data dir %s: %s", dir,
                 strerror(errno));
        return GMP_ERR_CONFIG;
    }
    if (!S_ISDIR(st.st_mode)) {
        gmpc_fmt(err, errlen, "data dir %s is not a directory", dir);
        return GMP_ERR_CONFIG;
    }
    if (st.st_uid != geteuid()) {
        gmpc_fmt(err, errlen,
                 "data dir %s is owned by uid %u, not by the current uid %u",
                 dir, (unsigned)st.st_uid, (unsigned)geteuid());
        return GMP_ERR_CONFIG;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        gmpc_fmt(err, errlen,
                 "data dir %s is group/world-writable (mode %03o); "
                 "run chmod 700 %s",
                 dir, (unsigned)(st.st_mode & 0777), dir);
        return GMP_ERR_CONFIG;
    }
    return GMP_OK;
}

/* A secret file must be a regular file of ours with no group/other bits. */
static int file_check(int fd, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        gmpc_fmt(err, errlen, "%s is not a regular file", path);
        return GMP_ERR_CONFIG;
    }
    if (st.st_uid != geteuid()) {
        gmpc_fmt(err, errlen, "%s is owned by uid %u, not by uid %u", path,
                 (unsigned)st.st_uid, (unsigned)geteuid());
        return GMP_ERR_CONFIG;
    }
    if (st.st_mode & 0077) {
        gmpc_fmt(err, errlen,
                 "%s has mode %04o; it must be 0600 (chmod 600 %s)", path,
                 (unsigned)(st.st_mode & 07777), path);
        return GMP_ERR_CONFIG;
    }
    return GMP_OK;
}

static bool read_full(int fd, uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        buf += r;
        n -= (size_t)r;
    }
    return true;
}

static bool write_full(int fd, const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        buf += r;
        n -= (size_t)r;
    }
    return true;
}

/* GMP_ERR_NOT_FOUND when the file does not exist yet. */
static int master_read(const char *path, uint8_t mk[MASTER_LEN], char *err,
                       size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return GMP_ERR_NOT_FOUND;
    if (fd < 0) {
        gmpc_fmt(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return GMP_ERR_CONFIG;
    }
    int rc = file_check(fd, path, err, errlen);
    struct stat st;
    if (!rc && (fstat(fd, &st) != 0 || st.st_size != MASTER_LEN)) {
        gmpc_fmt(err, errlen, "%s has %lld bytes, expected %d (damaged?)",
                 path, (long long)st.st_size, MASTER_LEN);
        rc = GMP_ERR_CONFIG;
    }
    if (!rc && !read_full(fd, mk, MASTER_LEN)) {
        gmpc_fmt(err, errlen, "cannot read %s: %s", path, strerror(errno));
        rc = GMP_ERR_CONFIG;
    }
    close(fd);
    return rc;
}

static void dir_sync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* O_EXCL: if another gmpoold raced us to it, read theirs instead. A
 * half-written key is removed so the next start does not trip on it. */
static int master_create(const char *dir, const char *path,
                         uint8_t mk[MASTER_LEN], char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    if (fd < 0 && errno == EEXIST)
        return master_read(path, mk, err, errlen);
    if (fd < 0) {
        gmpc_fmt(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return GMP_ERR_CONFIG;
    }
    int rc = gmpc_random(mk, MASTER_LEN);
    if (rc)
        gmpc_fmt(err, errlen, "no random bytes for the master key");
    else if (!write_full(fd, mk, MASTER_LEN) || fsync(fd) != 0) {
        gmpc_fmt(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = GMP_ERR_CONFIG;
    }
    close(fd);
    if (rc)
        unlink(path);
    else
        dir_sync(dir);
    return rc;
}

static int derive_keys(gmpd_store *s, const uint8_t mk[MASTER_LEN])
{
    static const char enc_label[] = "gmpool wrap enc";
    static const char mac_label[] = "gmpool wrap mac";
    uint8_t t[32];
    int rc = gmpc_hmac_sm3(mk, MASTER_LEN, enc_label, sizeof enc_label - 1, t);
    memcpy(s->k_enc, t, sizeof s->k_enc);
    OPENSSL_cleanse(t, sizeof t);
    if (!rc)
        rc = gmpc_hmac_sm3(mk, MASTER_LEN, mac_label, sizeof mac_label - 1,
                           s->k_mac);
    OSSL_LIB_CTX *lc = gmpc_libctx();
    if (!rc && lc)
        s->ctr = EVP_CIPHER_fetch(lc, "SM4-CTR", NULL);
    return rc || !s->ctr ? GMP_ERR_INTERNAL : GMP_OK;
}

static int master_load(gmpd_store *s, const char *dir, char *err,
                       size_t errlen)
{
    char kpath[PATH_MAX], dbpath[PATH_MAX];
    uint8_t mk[MASTER_LEN];
    if (!gmpc_fmt(kpath, sizeof kpath, "%s/master.key", dir) ||
        !gmpc_fmt(dbpath, sizeof dbpath, "%s/gmpool.db", dir)) {
        gmpc_fmt(err, errlen, "data dir path too long");
        return GMP_ERR_CONFIG;
    }
    int rc = master_read(kpath, mk, err, errlen);
    /* A fresh key would make every wrapped row unreadable: refuse rather
     * than silently orphan an existing database. */
    if (rc == GMP_ERR_NOT_FOUND && access(dbpath, F_OK) == 0) {
        gmpc_fmt(err, errlen,
                 "%s exists but %s is missing: restore master.key, or "
                 "remove gmpool.db* to start empty", dbpath, kpath);
        return GMP_ERR_CONFIG;
    }
    if (rc == GMP_ERR_NOT_FOUND)
        rc = master_create(dir, kpath, mk, err, errlen);
    if (!rc && derive_keys(s, mk) != GMP_OK) {
        gmpc_fmt(err, errlen, "libcrypto: cannot derive wrapping keys "
                              "(SM3/SM4 missing from the default provider?)");
        rc = GMP_ERR_INTERNAL;
    }
    OPENSSL_cleanse(mk, sizeof mk);
    return rc;
}

/* The file is created here rather than by SQLite so its mode is 0600
 * whatever the umask (changing the umask is process-wide and racy); SQLite
 * gives the -wal and -shm files the mode of the database file. */
static int db_precreate(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        gmpc_fmt(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return GMP_ERR_CONFIG;
    }
    int rc = file_check(fd, path, err, errlen);
    close(fd);
    return rc;
}

static const char schema_sql[] =
    "CREATE TABLE tenants("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT UNIQUE NOT NULL,"
    " vcm INTEGER UNIQUE NOT NULL,"
    " secret BLOB NOT NULL," /* wrapped */
    " created INTEGER);"
    /* AUTOINCREMENT: a handle is never reused, so a stale handle held by
     * a client cannot reach a newer key. */
    "CREATE TABLE keys("
    " handle INTEGER PRIMARY KEY AUTOINCREMENT,"
    " vcm INTEGER NOT NULL, type INTEGER, len INTEGER, flags INTEGER,"
    " session INTEGER, label TEXT,"
    " value BLOB);" /* wrapped */
    "CREATE INDEX keys_vcm ON keys(vcm);"
    "CREATE INDEX keys_session ON keys(session);"
    /* last_vcm: VCM ids are never reused either, so a removed tenant's id
     * cannot alias a new tenant in live load tables or shared Redis. */
    "CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta VALUES('last_vcm', 0);"
    "PRAGMA user_version = 1;";

/* Version 2: the user PIN (wrapped verifier, failure count) and the
 * attributes a front end keeps with a key (opaque to the daemon). */
static const char schema_v2_sql[] =
    "ALTER TABLE tenants ADD COLUMN pin BLOB;"
    "ALTER TABLE tenants ADD COLUMN pin_fails INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE keys ADD COLUMN app BLOB;"
    "PRAGMA user_version = 2;";

/* Version 3: the SDF front end's internal keys by index (one of each
 * type per index and VCM), the passwords guarding its key pairs, and its
 * files. */
static const char schema_v3_sql[] =
    "ALTER TABLE keys ADD COLUMN idx INTEGER NOT NULL DEFAULT 0;"
    "CREATE UNIQUE INDEX keys_idx ON keys(vcm, type, idx) WHERE idx > 0;"
    "CREATE TABLE sdf_pins("
    " vcm INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " rec BLOB NOT NULL," /* wrapped */
    " fails INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(vcm, idx));"
    "CREATE TABLE sdf_files("
    " vcm INTEGER NOT NULL, name BLOB NOT NULL, data BLOB NOT NULL,"
    " PRIMARY KEY(vcm, name));"
    "PRAGMA user_version = 3;";

static int schema_version(gmpd_store *s, int *v)
{
    sqlite3_stmt *st = sql_prep(s, "PRAGMA user_version");
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return GMP_ERR_INTERNAL;
    }
    *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return GMP_OK;
}

/* Read and create under one write lock so two daemons starting on the
 * same fresh directory do not both create the schema. */
static int schema_ensure(gmpd_store *s, char *err, size_t errlen)
{
    int v = 0;
    int rc = tx_begin(s);
    if (!rc)
        rc = schema_version(s, &v);
    /* a newer gmpoold's database is refused, an older one upgraded step
     * by step */
    if (!rc && (v < 0 || v > SCHEMA_VERSION)) {
        gmpc_fmt(err, errlen,
                 "gmpool.db has schema version %d, this gmpoold knows %d",
                 v, SCHEMA_VERSION);
        rc = GMP_ERR_CONFIG;
    }
    if (!rc && v == 0)
        rc = sql_exec(s, schema_sql);
    if (!rc && v <= 1)
        rc = sql_exec(s, schema_v2_sql);
    if (!rc && v <= 2)
        rc = sql_exec(s, schema_v3_sql);
    rc = tx_end(s, rc);
    if (rc && err[0] == '\0')
        gmpc_fmt(err, errlen, "gmpool.db: %s", sqlite3_errmsg(s->db));
    return rc;
}

static int db_open(gmpd_store *s, const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (!gmpc_fmt(path, sizeof path, "%s/gmpool.db", dir)) {
        gmpc_fmt(err, errlen, "data dir path too long");
        return GMP_ERR_CONFIG;
    }
    int rc = db_precreate(path, err, errlen);
    if (rc)
        return rc;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX |
                SQLITE_OPEN_NOFOLLOW;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        gmpc_fmt(err, errlen, "cannot open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        return GMP_ERR_CONFIG;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    /* secure_delete: freed pages are zeroed, so a deleted key's wrapped
     * blob does not linger in the file. */
    if (sql_exec(s, "PRAGMA journal_mode=WAL") ||
        sql_exec(s, "PRAGMA secure_delete=ON")) {
        gmpc_fmt(err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
        return GMP_ERR_CONFIG;
    }
    return schema_ensure(s, err, errlen);
}

/* A restart ends every session, so their keys go with it. */
static int purge_all_sessions(gmpd_store *s)
{
    sqlite3_stmt *st =
        sql_prep(s, "DELETE FROM keys WHERE (flags & ?1) = 0");
    if (st)
        sqlite3_bind_int64(st, 1, GMP_KEYF_TOKEN);
    return sql_done(s, st);
}

int gmpd_store_open(gmpd_store **out, const char *data_dir, char *err,
                    size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!out || !data_dir || !*data_dir) {
        gmpc_fmt(err, errlen, "no data dir");
        return GMP_ERR_ARG;
    }
    *out = NULL;
    gmpd_store *s = calloc(1, sizeof *s);
    if (!s)
        return GMP_ERR_NOMEM;
    s->mu_ok = pthread_mutex_init(&s->mu, NULL) == 0;
    int rc = s->mu_ok ? dir_make(data_dir, err, errlen) : GMP_ERR_INTERNAL;
    if (!rc)
        rc = dir_check(data_dir, err, errlen);
    if (!rc)
        rc = master_load(s, data_dir, err, errlen);
    if (!rc)
        rc = db_open(s, data_dir, err, errlen);
    if (!rc && purge_all_sessions(s) != GMP_OK) {
        gmpc_fmt(err, errlen, "gmpool.db: %s", sqlite3_errmsg(s->db));
        rc = GMP_ERR_INTERNAL;
    }
    if (rc) {
        gmpd_store_close(s);
        return rc;
    }
    *out = s;
    return GMP_OK;
}

void gmpd_store_close(gmpd_store *s)
{
    if (!s)
        return;
    sqlite3_close_v2(s->db);
    EVP_CIPHER_free(s->ctr);
    OPENSSL_cleanse(s->k_enc, sizeof s->k_enc);
    OPENSSL_cleanse(s->k_mac, sizeof s->k_mac);
    if (s->mu_ok)
        pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- tenants ----------------------------------------------------------- */

/* "." and ".." are refused as well: tools may name files after tenants. */
static bool name_valid(const char *name)
{
    if (!name)
        return false;
    size_t n = strnlen(name, GMPD_NAME_MAX + 1);
    if (n == 0 || n > GMPD_NAME_MAX)
        return false;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static int vcm_next(gmpd_store *s, uint32_t *vcm)
{
    sqlite3_stmt *st = sql_prep(
        s, "UPDATE meta SET value = value + 1 WHERE name = 'last_vcm' "
           "RETURNING value");
    int rc = GMP_ERR_INTERNAL;
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(st, 0);
        if (v >= 1 && v <= UINT32_MAX) {
            *vcm = (uint32_t)v;
            rc = GMP_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int tenant_exists(gmpd_store *s, const char *name)
{
    sqlite3_stmt *st = sql_prep(s, "SELECT 1 FROM tenants WHERE name = ?1");
    if (!st)
        return GMP_ERR_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r == SQLITE_ROW)
        return GMP_ERR_EXISTS;
    return r == SQLITE_DONE ? GMP_OK : GMP_ERR_INTERNAL;
}

static int tenant_insert(gmpd_store *s, gmpd_tenant *t)
{
    uint8_t blob[WRAP_MAX];
    size_t blen = 0;
    wrap_aad aad;
    int rc = tenant_exists(s, t->name);
    if (!rc)
        rc = vcm_next(s, &t->vcm);
    aad_tenant(&aad, t->name);
    if (!rc)
        rc = wrap_seal(s, &aad, t->secret, sizeof t->secret, blob, &blen);
    if (rc)
        return rc;
    sqlite3_stmt *st = sql_prep(s, "INSERT INTO tenants(name, vcm, secret, "
                                   "created) VALUES(?1, ?2, ?3, ?4)");
    if (st) {
        sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, t->vcm);
        sqlite3_bind_blob(st, 3, blob, (int)blen, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, t->created);
    }
    rc = sql_done(s, st);
    sqlite3_int64 id = sqlite3_last_insert_rowid(s->db);
    if (!rc && (id < 1 || id > UINT32_MAX))
        rc = GMP_ERR_INTERNAL;
    t->id = (uint32_t)id;
    return rc;
}

int gmpd_tenant_add(gmpd_store *s, const char *name, gmpd_tenant *out)
{
    if (!s || !name_valid(name))
        return GMP_ERR_ARG;
    gmpd_tenant t;
    memset(&t, 0, sizeof t);
    memcpy(t.name, name, strlen(name));
    t.created = (int64_t)time(NULL);
    if (gmpc_random(t.secret, sizeof t.secret) != GMP_OK)
        return GMP_ERR_INTERNAL;
    lock(s);
    int rc = tx_begin(s);
    if (!rc)
        rc = tenant_insert(s, &t);
    rc = tx_end(s, rc);
    unlock(s);
    if (!rc && out)
        *out = t;
    OPENSSL_cleanse(&t, sizeof t);
    return rc;
}

/* Columns: id, name, vcm, secret, created. */
static int tenant_from_row(gmpd_store *s, sqlite3_stmt *st, gmpd_tenant *t)
{
    const char *name = (const char *)sqlite3_column_text(st, 1);
    uint8_t val[GMPD_KEY_MAX];
    size_t n = 0;
    wrap_aad aad;
    memset(t, 0, sizeof *t);
    t->id = (uint32_t)sqlite3_column_int64(st, 0);
    if (!name || !name_valid(name))
        return GMP_ERR_INTERNAL;
    memcpy(t->name, name, strlen(name));
    t->vcm = (uint32_t)sqlite3_column_int64(st, 2);
    t->created = sqlite3_column_int64(st, 4);
    aad_tenant(&aad, t->name);
    int rc = wrap_open(s, &aad, sqlite3_column_blob(st, 3),
                       (size_t)sqlite3_column_bytes(st, 3), val, &n);
    if (!rc && n != GMPD_SECRET_LEN)
        rc = GMP_ERR_INTERNAL;
    if (!rc)
        memcpy(t->secret, val, GMPD_SECRET_LEN);
    else
        store_warn("tenant '%s': wrapped secret fails its MAC (gmpool.db "
                   "modified outside gmpoold, or a different master.key)",
                   t->name);
    OPENSSL_cleanse(val, sizeof val);
    return rc;
}

int gmpd_tenant_get(gmpd_store *s, const char *name, gmpd_tenant *out)
{
    if (!s || !name_valid(name))
        return GMP_ERR_ARG;
    gmpd_tenant t = {0};
    lock(s);
    sqlite3_stmt *st = sql_prep(s, "SELECT id, name, vcm, secret, created "
                                   "FROM tenants WHERE name = ?1");
    int rc = GMP_ERR_INTERNAL;
    if (st) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        rc = r == SQLITE_ROW    ? tenant_from_row(s, st, &t)
             : r == SQLITE_DONE ? GMP_ERR_NOT_FOUND
                                : GMP_ERR_INTERNAL;
    }
    sqlite3_finalize(st);
    unlock(s);
    if (!rc && out)
        *out = t;
    OPENSSL_cleanse(&t, sizeof t);
    return rc;
}

static int tenant_vcm(gmpd_store *s, const char *name, uint32_t *vcm)
{
    sqlite3_stmt *st = sql_prep(s, "SELECT vcm FROM tenants WHERE name = ?1");
    if (!st)
        return GMP_ERR_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *vcm = (uint32_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return r == SQLITE_ROW    ? GMP_OK
           : r == SQLITE_DONE ? GMP_ERR_NOT_FOUND
                              : GMP_ERR_INTERNAL;
}

static int tenant_delete(gmpd_store *s, const char *name)
{
    uint32_t vcm = 0;
    int rc = tenant_vcm(s, name, &vcm);
    if (rc)
        return rc;
    static const char *const per_vcm[] = {
        "DELETE FROM keys WHERE vcm = ?1",
        "DELETE FROM sdf_pins WHERE vcm = ?1",
        "DELETE FROM sdf_files WHERE vcm = ?1"};
    sqlite3_stmt *st;
    for (size_t i = 0; !rc && i < sizeof per_vcm / sizeof *per_vcm; i++) {
        st = sql_prep(s, per_vcm[i]);
        if (st)
            sqlite3_bind_int64(st, 1, vcm);
        rc = sql_done(s, st);
    }
    if (rc)
        return rc;
    st = sql_prep(s, "DELETE FROM tenants WHERE name = ?1");
    if (st)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return sql_done(s, st);
}

int gmpd_tenant_remove(gmpd_store *s, const char *name)
{
    if (!s || !name_valid(name))
        return GMP_ERR_ARG;
    lock(s);
    int rc = tx_begin(s);
    if (!rc)
        rc = tenant_delete(s, name);
    rc = tx_end(s, rc);
    unlock(s);
    return rc;
}

/* A growable array of rows collected under the lock, handed to the
 * callback after it is released. */
typedef struct row_vec {
    void *v;
    size_t n, cap, size;
} row_vec;

static void *row_vec_push(row_vec *rv)
{
    if (rv->n == rv->cap) {
        size_t cap = rv->cap ? rv->cap * 2 : 16;
        void *p = realloc(rv->v, cap * rv->size);
        if (!p)
            return NULL;
        rv->v = p;
        rv->cap = cap;
    }
    return (char *)rv->v + rv->n++ * rv->size;
}

static void row_vec_free(row_vec *rv)
{
    if (rv->v)
        OPENSSL_cleanse(rv->v, rv->cap * rv->size);
    free(rv->v);
}

static int tenant_collect(gmpd_store *s, row_vec *rv)
{
    sqlite3_stmt *st = sql_prep(s, "SELECT id, name, vcm, secret, created "
                                   "FROM tenants ORDER BY id");
    if (!st)
        return GMP_ERR_INTERNAL;
    int r = SQLITE_DONE, rc = GMP_OK;
    while (!rc && (r = sqlite3_step(st)) == SQLITE_ROW) {
        gmpd_tenant *t = row_vec_push(rv);
        rc = t ? tenant_from_row(s, st, t) : GMP_ERR_NOMEM;
    }
    if (!rc && r != SQLITE_DONE)
        rc = GMP_ERR_INTERNAL;
    sqlite3_finalize(st);
    return rc;
}

int gmpd_tenant_list(gmpd_store *s,
                     int (*cb)(const gmpd_tenant *, void *), void *arg)
{
    if (!s || !cb)
        return GMP_ERR_ARG;
    row_vec rv = {.size = sizeof(gmpd_tenant)};
    lock(s);
    int rc = tenant_collect(s, &rv);
    unlock(s);
    const gmpd_tenant *t = rv.v;
    for (size_t i = 0; !rc && i < rv.n; i++)
        if (cb(&t[i], arg) != 0)
            break;
    row_vec_free(&rv);
    return rc;
}

/* Returns the number of tenants, or -1 on a database error. */
int gmpd_tenant_count(gmpd_store *s)
{
    if (!s)
        return -1;
    lock(s);
    sqlite3_stmt *st = sql_prep(s, "SELECT COUNT(*) FROM tenants");
    int n = -1;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    unlock(s);
    return n;
}

/* ---- user PINs --------------------------------------------------------- */

static int pin_write(gmpd_store *s, const char *name, const uint8_t *rec,
                     size_t n)
{
    uint8_t blob[WRAP_MAX];
    size_t blen = 0;
    wrap_aad aad;
    aad_named(&aad, "pin", name);
    int rc = n ? wrap_seal(s, &aad, rec, n, blob, &blen) : GMP_OK;
    if (rc)
        return rc;
    sqlite3_stmt *st = sql_prep(
        s, "UPDATE tenants SET pin = ?1, pin_fails = 0 WHERE name = ?2");
    if (st) {
        if (n)
            sqlite3_bind_blob(st, 1, blob, (int)blen, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    }
    rc = sql_done(s, st);
    if (!rc && sqlite3_changes(s->db) == 0)
        rc = GMP_ERR_NOT_FOUND;
    return rc;
}

int gmpd_tenant_pin_set(gmpd_store *s, const char *name, const uint8_t *rec,
                        size_t n)
{
    if (!s || !name_valid(name) || (n && !rec) || n > GMPD_KEY_MAX)
        return GMP_ERR_ARG;
    lock(s);
    int rc = pin_write(s, name, rec, n);
    unlock(s);
    return rc;
}

static int pin_read(gmpd_store *s, sqlite3_stmt *st, const char *name,
                    gmpd_pin *out)
{
    wrap_aad aad;
    aad_named(&aad, "pin", name);
    out->fails = (uint32_t)sqlite3_column_int64(st, 1);
    if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        return GMP_OK;
    int rc = wrap_open(s, &aad, sqlite3_column_blob(st, 0),
                       (size_t)sqlite3_column_bytes(st, 0), out->rec,
                       &out->len);
    if (rc)
        store_warn("tenant '%s': wrapped PIN fails its MAC", name);
    return rc;
}

int gmpd_tenant_pin_get(gmpd_store *s, const char *name, gmpd_pin *out)
{
    if (!s || !out || !name_valid(name))
        return GMP_ERR_ARG;
    memset(out, 0, sizeof *out);
    lock(s);
    sqlite3_stmt *st =
        sql_prep(s, "SELECT pin, pin_fails FROM tenants WHERE name = ?1");
    int rc = GMP_ERR_INTERNAL;
    if (st) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        rc = r == SQLITE_ROW    ? pin_read(s, st, name, out)
             : r == SQLITE_DONE ? GMP_ERR_NOT_FOUND
                                : GMP_ERR_INTERNAL;
    }
    sqlite3_finalize(st);
    unlock(s);
    return rc;
}

int gmpd_tenant_pin_fails(gmpd_store *s, const char *name, uint32_t fails)
{
    if (!s || !name_valid(name))
        return GMP_ERR_ARG;
    lock(s);
    sqlite3_stmt *st =
        sql_prep(s, "UPDATE tenants SET pin_fails = ?1 WHERE name = ?2");
    if (st) {
        sqlite3_bind_int64(st, 1, fails);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    }
    int rc = sql_done(s, st);
    unlock(s);
    return rc;
}

/* ---- keys -------------------------------------------------------------- */

static int key_attr_check(const gmpd_key_attr *a, size_t len)
{
    if (len < 1 || len > GMPD_KEY_MAX)
        return GMP_ERR_KEY;
    if (memchr(a->label, '\0', sizeof a->label) == NULL)
        return GMP_ERR_ARG;
    bool internal = a->type == GMPD_KEY_KEK || a->type == GMPD_KEY_SM2_SIGN ||
                    a->type == GMPD_KEY_SM2_ENC;
    if (a->type != GMP_KEY_GENERIC && a->type != GMP_KEY_SM4 &&
        a->type != GMP_KEY_AES && !internal)
        return GMP_ERR_KEY;
    if (internal != (a->idx != 0))
        return GMP_ERR_ARG; /* an index exactly for the internal types */
    const uint32_t known = GMP_KEYF_SENSITIVE | GMP_KEYF_EXTRACTABLE |
                           GMP_KEYF_TOKEN | GMP_KEYF_PRIVATE;
    if ((a->flags & ~known) || a->app_len > GMPD_APP_MAX)
        return GMP_ERR_ARG;
    return a->vcm == 0 ? GMP_ERR_NOT_FOUND : GMP_OK;
}

static int vcm_exists(gmpd_store *s, uint32_t vcm)
{
    sqlite3_stmt *st = sql_prep(s, "SELECT 1 FROM tenants WHERE vcm = ?1");
    if (!st)
        return GMP_ERR_INTERNAL;
    sqlite3_bind_int64(st, 1, vcm);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    return r == SQLITE_ROW    ? GMP_OK
           : r == SQLITE_DONE ? GMP_ERR_NOT_FOUND
                              : GMP_ERR_INTERNAL;
}

static int key_insert_row(gmpd_store *s, const gmpd_key_attr *a, size_t len,
                          uint32_t *handle)
{
    sqlite3_stmt *st = sql_prep(
        s, "INSERT INTO keys(vcm, type, len, flags, session, label, app, "
           "idx, value) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, x'')");
    if (st) {
        sqlite3_bind_int64(st, 1, a->vcm);
        sqlite3_bind_int64(st, 2, a->type);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)len);
        sqlite3_bind_int64(st, 4, a->flags);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)a->session);
        sqlite3_bind_text(st, 6, a->label, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 7, a->app, a->app_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, a->idx);
    }
    int rc = sql_done(s, st);
    sqlite3_int64 h = sqlite3_last_insert_rowid(s->db);
    if (!rc && (h < 1 || h > UINT32_MAX)) {
        store_warn("key handle space exhausted");
        rc = GMP_ERR_INTERNAL;
    }
    *handle = (uint32_t)h;
    return rc;
}

/* The handle is part of the aad but is only known once the row exists:
 * insert a row with an empty value, wrap, then fill it in, all inside one
 * IMMEDIATE transaction so no reader ever sees the placeholder. */
static int key_insert(gmpd_store *s, const gmpd_key_attr *a,
                      const uint8_t *value, size_t len, uint32_t *handle)
{
    uint8_t blob[WRAP_MAX];
    size_t blen = 0;
    wrap_aad aad;
    gmpd_key_attr k = *a;
    int rc = vcm_exists(s, a->vcm);
    if (!rc)
        rc = key_insert_row(s, a, len, handle);
    k.handle = *handle;
    aad_key(&aad, &k, a->flags);
    if (!rc)
        rc = wrap_seal(s, &aad, value, len, blob, &blen);
    if (rc)
        return rc;
    sqlite3_stmt *st =
        sql_prep(s, "UPDATE keys SET value = ?1 WHERE handle = ?2");
    if (st) {
        sqlite3_bind_blob(st, 1, blob, (int)blen, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, *handle);
    }
    return sql_done(s, st);
}

int gmpd_key_put(gmpd_store *s, const gmpd_key_attr *attr,
                 const uint8_t *value, size_t len, uint32_t *handle)
{
    if (!s || !attr || !value)
        return GMP_ERR_ARG;
    int rc = key_attr_check(attr, len);
    if (rc)
        return rc;
    uint32_t h = 0;
    lock(s);
    rc = tx_begin(s);
    if (!rc)
        rc = key_insert(s, attr, value, len, &h);
    rc = tx_end(s, rc);
    unlock(s);
    if (!rc && handle)
        *handle = h;
    return rc;
}

/* Columns: handle, vcm, type, len, flags, session, label, app, idx. */
static void key_attr_from_row(sqlite3_stmt *st, gmpd_key_attr *a)
{
    const char *label = (const char *)sqlite3_column_text(st, 6);
    size_t app_len = (size_t)sqlite3_column_bytes(st, 7);
    memset(a, 0, sizeof *a);
    if (app_len <= GMPD_APP_MAX) { /* longer ones are never written */
        a->app_len = (uint16_t)app_len;
        if (app_len)
            memcpy(a->app, sqlite3_column_blob(st, 7), app_len);
    }
    a->handle = (uint32_t)sqlite3_column_int64(st, 0);
    a->vcm = (uint32_t)sqlite3_column_int64(st, 1);
    a->type = (uint16_t)sqlite3_column_int64(st, 2);
    a->len = (uint32_t)sqlite3_column_int64(st, 3);
    a->flags = (uint32_t)sqlite3_column_int64(st, 4);
    a->session = (uint64_t)sqlite3_column_int64(st, 5);
    a->idx = (uint32_t)sqlite3_column_int64(st, 8);
    if (label)
        gmpc_fmt(a->label, sizeof a->label, "%.*s", GMPD_NAME_MAX, label);
}

/* Always unwraps, even when the caller wants only the attributes: the MAC
 * also covers type and flags, so edited attributes are caught here. */
static int key_from_row(gmpd_store *s, sqlite3_stmt *st, gmpd_key_attr *a,
                        uint8_t val[GMPD_KEY_MAX], size_t *n)
{
    wrap_aad aad;
    key_attr_from_row(st, a);
    aad_key(&aad, a, a->flags);
    int rc = wrap_open(s, &aad, sqlite3_column_blob(st, 9),
                       (size_t)sqlite3_column_bytes(st, 9), val, n);
    if (!rc && *n != a->len)
        rc = GMP_ERR_INTERNAL;
    if (rc)
        store_warn("key %u of VCM %u fails its MAC (gmpool.db modified "
                   "outside gmpoold, or a different master.key)",
                   a->handle, a->vcm);
    return rc;
}

static int key_read(gmpd_store *s, uint32_t vcm, uint32_t handle,
                    gmpd_key_attr *a, uint8_t val[GMPD_KEY_MAX], size_t *n)
{
    sqlite3_stmt *st = sql_prep(
        s, "SELECT handle, vcm, type, len, flags, session, label, app, "
           "idx, value FROM keys WHERE handle = ?1 AND vcm = ?2");
    if (!st)
        return GMP_ERR_INTERNAL;
    sqlite3_bind_int64(st, 1, handle);
    sqlite3_bind_int64(st, 2, vcm);
    int r = sqlite3_step(st);
    int rc = r == SQLITE_ROW    ? key_from_row(s, st, a, val, n)
             : r == SQLITE_DONE ? GMP_ERR_NOT_FOUND
                                : GMP_ERR_INTERNAL;
    sqlite3_finalize(st);
    return rc;
}

int gmpd_key_get(gmpd_store *s, uint32_t vcm, uint32_t handle,
                 gmpd_key_attr *attr, uint8_t *value, size_t cap,
                 size_t *len)
{
    if (!s)
        return GMP_ERR_ARG;
    gmpd_key_attr a;
    uint8_t val[GMPD_KEY_MAX];
    size_t n = 0;
    lock(s);
    int rc = key_read(s, vcm, handle, &a, val, &n);
    unlock(s);
    if (!rc && attr)
        *attr = a;
    if (!rc && len)
        *len = n;
    if (!rc && value && cap < n)
        rc = GMP_ERR_BUFFER;
    else if (!rc && value)
        memcpy(value, val, n);
    OPENSSL_cleanse(val, sizeof val);
    return rc;
}

/* Flags are in the aad, so a change re-wraps the value. */
static int key_rewrite(gmpd_store *s, const gmpd_key_attr *na)
{
    gmpd_key_attr a;
    uint8_t val[GMPD_KEY_MAX], blob[WRAP_MAX];
    size_t n = 0, blen = 0;
    wrap_aad aad;
    int rc = key_read(s, na->vcm, na->handle, &a, val, &n);
    aad_key(&aad, &a, na->flags);
    if (!rc)
        rc = wrap_seal(s, &aad, val, n, blob, &blen);
    OPENSSL_cleanse(val, sizeof val);
    if (rc)
        return rc;
    sqlite3_stmt *st = sql_prep(s, "UPDATE keys SET flags = ?1, label = ?2, "
                                   "app = ?3, value = ?4 WHERE handle = ?5");
    if (st) {
        sqlite3_bind_int64(st, 1, na->flags);
        sqlite3_bind_text(st, 2, na->label, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, na->app, na->app_len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 4, blob, (int)blen, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, na->handle);
    }
    return sql_done(s, st);
}

int gmpd_key_update(gmpd_store *s, const gmpd_key_attr *attr)
{
    if (!s || !attr)
        return GMP_ERR_ARG;
    int rc = key_attr_check(attr, 1);
    if (rc)
        return rc;
    lock(s);
    rc = tx_begin(s);
    if (!rc)
        rc = key_rewrite(s, attr);
    rc = tx_end(s, rc);
    unlock(s);
    return rc;
}

int gmpd_key_delete(gmpd_store *s, uint32_t vcm, uint32_t handle)
{
    if (!s)
        return GMP_ERR_ARG;
    lock(s);
    sqlite3_stmt *st =
        sql_prep(s, "DELETE FROM keys WHERE handle = ?1 AND vcm = ?2");
    if (st) {
        sqlite3_bind_int64(st, 1, handle);
        sqlite3_bind_int64(st, 2, vcm);
    }
    int rc = sql_done(s, st);
    if (!rc && sqlite3_changes(s->db) == 0)
        rc = GMP_ERR_NOT_FOUND;
    unlock(s);
    return rc;
}

/* Attributes only: listing does not unwrap (gmpd_key_get verifies). */
static int key_collect(gmpd_store *s, uint32_t vcm, row_vec *rv)
{
    sqlite3_stmt *st = sql_prep(
        s, "SELECT handle, vcm, type, len, flags, session, label, app, "
           "idx FROM keys WHERE vcm = ?1 ORDER BY handle");
    if (!st)
        return GMP_ERR_INTERNAL;
    sqlite3_bind_int64(st, 1, vcm);
    int r = SQLITE_DONE, rc = GMP_OK;
    while (!rc && (r = sqlite3_step(st)) == SQLITE_ROW) {
        gmpd_key_attr *a = row_vec_push(rv);
        if (a)
            key_attr_from_row(st, a);
        else
            rc = GMP_ERR_NOMEM;
    }
    if (!rc && r != SQLITE_DONE)
        rc = GMP_ERR_INTERNAL;
    sqlite3_finalize(st);
    return rc;
}

int gmpd_key_list(gmpd_store *s, uint32_t vcm,
                  int (*cb)(const gmpd_key_attr *, void *), void *arg)
{
    if (!s || !cb)
        return GMP_ERR_ARG;
    row_vec rv = {.size = sizeof(gmpd_key_attr)};
    lock(s);
    int rc = key_collect(s, vcm, &rv);
    unlock(s);
    const gmpd_key_attr *a = rv.v;
    for (size_t i = 0; !rc && i < rv.n; i++)
        if (cb(&a[i], arg) != 0)
            break;
    row_vec_free(&rv);
    return rc;
}

int gmpd_key_purge_session(gmpd_store *s, uint64_t session)
{
    if (!s)
        return GMP_ERR_ARG;
    lock(s);
    sqlite3_stmt *st = sql_prep(
        s, "DELETE FROM keys WHERE session = ?1 AND (flags & ?2) = 0");
    if (st) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)session);
        sqlite3_bind_int64(st, 2, GMP_KEYF_TOKEN);
    }
    int rc = sql_done(s, st);
    unlock(s);
    return rc;
}

/* ---- SDF internal keys, key passwords, files --------------------------- */

int gmpd_key_get_idx(gmpd_store *s, uint32_t vcm, uint16_t type,
                     uint32_t idx, gmpd_key_attr *attr, uint8_t *value,
                     size_t cap, size_t *len)
{
    if (!s || idx == 0)
        return GMP_ERR_ARG;
    lock(s);
    sqlite3_stmt *st = sql_prep(s, "SELECT handle FROM keys WHERE vcm = ?1 "
                                   "AND type = ?2 AND idx = ?3");
    int r = SQLITE_ERROR;
    uint32_t handle = 0;
    if (st) {
        sqlite3_bind_int64(st, 1, vcm);
        sqlite3_bind_int64(st, 2, type);
        sqlite3_bind_int64(st, 3, idx);
        r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            handle = (uint32_t)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    unlock(s);
    if (r != SQLITE_ROW)
        return r == SQLITE_DONE ? GMP_ERR_NOT_FOUND : GMP_ERR_INTERNAL;
    /* the row read again under its handle: the MAC binds type and idx */
    int rc = gmpd_key_get(s, vcm, handle, attr, value, cap, len);
    if (rc == GMP_OK && attr && (attr->type != type || attr->idx != idx))
        rc = GMP_ERR_INTERNAL;
    return rc;
}

int gmpd_keypin_set(gmpd_store *s, uint32_t vcm, uint32_t idx,
                    const uint8_t *rec, size_t n)
{
    if (!s || idx == 0 || (n && !rec) || n > GMPD_KEY_MAX)
        return GMP_ERR_ARG;
    uint8_t blob[WRAP_MAX];
    size_t blen = 0;
    wrap_aad aad;
    aad_keypin(&aad, vcm, idx);
    int rc = n ? wrap_seal(s, &aad, rec, n, blob, &blen) : GMP_OK;
    if (rc)
        return rc;
    lock(s);
    sqlite3_stmt *st =
        n ? sql_prep(s, "INSERT OR REPLACE INTO sdf_pins(vcm, idx, rec, "
                        "fails) VALUES(?1, ?2, ?3, 0)")
          : sql_prep(s, "DELETE FROM sdf_pins WHERE vcm = ?1 AND idx = ?2");
    if (st) {
        sqlite3_bind_int64(st, 1, vcm);
        sqlite3_bind_int64(st, 2, idx);
        if (n)
            sqlite3_bind_blob(st, 3, blob, (int)blen, SQLITE_STATIC);
    }
    rc = sql_done(s, st);
    unlock(s);
    return rc;
}

/* Columns: rec, fails. */
static int keypin_read(gmpd_store *s, sqlite3_stmt *st, uint32_t vcm,
                       uint32_t idx, gmpd_pin *out)
{
    wrap_aad aad;
    aad_keypin(&aad, vcm, idx);
    out->fails = (uint32_t)sqlite3_column_int64(st, 1);
    int rc = wrap_open(s, &aad, sqlite3_column_blob(st, 0),
                       (size_t)sqlite3_column_bytes(st, 0), out->rec,
                       &out->len);
    if (rc)
        store_warn("SDF key password %u of VCM %u fails its MAC", idx, vcm);
    return rc;
}

int gmpd_keypin_get(gmpd_store *s, uint32_t vcm, uint32_t idx,
                    gmpd_pin *out)
{
    if (!s || !out || idx == 0)
        return GMP_ERR_ARG;
    memset(out, 0, sizeof *out);
    lock(s);
    sqlite3_stmt *st = sql_prep(s, "SELECT rec, fails FROM sdf_pins "
                                   "WHERE vcm = ?1 AND idx = ?2");
    int rc = GMP_ERR_INTERNAL;
    if (st) {
        sqlite3_bind_int64(st, 1, vcm);
        sqlite3_bind_int64(st, 2, idx);
        int r = sqlite3_step(st);
        rc = r == SQLITE_ROW    ? keypin_read(s, st, vcm, idx, out)
             : r == SQLITE_DONE ? GMP_OK /* no password: len 0 */
                                : GMP_ERR_INTERNAL;
    }
    sqlite3_finalize(st);
    unlock(s);
    return rc;
}

int gmpd_keypin_fails(gmpd_store *s, uint32_t vcm, uint32_t idx,
                      uint32_t fails)
{
    if (!s)
        return GMP_ERR_ARG;
    lock(s);
    sqlite3_stmt *st = sql_prep(s, "UPDATE sdf_pins SET fails = ?1 "
                                   "WHERE vcm = ?2 AND idx = ?3");
    if (st) {
        sqlite3_bind_int64(st, 1, fails);
        sqlite3_bind_int64(st, 2, vcm);
        sqlite3_bind_int64(st, 3, idx);
    }
    int rc = sql_done(s, st);
    unlock(s);
    return rc;
}

static bool file_name_ok(const uint8_t *name, size_t n)
{
    return name && n >= 1 && n <= GMPD_FILE_NAME_MAX;
}

static int file_used_locked(gmpd_store *s, uint32_t vcm, uint64_t *used)
{
    sqlite3_stmt *st = sql_prep(s, "SELECT COALESCE(SUM(LENGTH(data)), 0) "
                                   "FROM sdf_files WHERE vcm = ?1");
    int rc = GMP_ERR_INTERNAL;
    if (st) {
        sqlite3_bind_int64(st, 1, vcm);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *used = (uint64_t)sqlite3_column_int64(st, 0);
            rc = GMP_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

int gmpd_file_used(gmpd_store *s, uint32_t vcm, uint64_t *used)
{
    if (!s || !used)
        return GMP_ERR_ARG;
    lock(s);
    int rc = file_used_locked(s, vcm, used);
    unlock(s);
    return rc;
}

static int file_insert(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                       size_t name_len, uint32_t size, uint64_t space)
{
    uint64_t used = 0;
    int rc = vcm_exists(s, vcm);
    if (!rc)
        rc = file_used_locked(s, vcm, &used);
    if (!rc && used + size > space)
        rc = GMP_ERR_LIMIT;
    if (rc)
        return rc;
    sqlite3_stmt *st = sql_prep(s, "INSERT INTO sdf_files(vcm, name, data) "
                                   "VALUES(?1, ?2, zeroblob(?3))");
    if (st) {
        sqlite3_bind_int64(st, 1, vcm);
        sqlite3_bind_blob(st, 2, name, (int)name_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, size);
    }
    return sql_done(s, st);
}

int gmpd_file_create(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                     size_t name_len, uint32_t size, uint64_t space)
{
    if (!s || !file_name_ok(name, name_len))
        return GMP_ERR_ARG;
    lock(s);
    int rc = tx_begin(s);
    if (!rc)
        rc = file_insert(s, vcm, name, name_len, size, space);
    rc = tx_end(s, rc);
    unlock(s);
    return rc;
}

/* The row id of a file, for incremental blob I/O, and the bytes from off
 * to its end; GMP_ERR_ARG for an offset past the end. */
static int file_at(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                   size_t name_len, uint32_t off, sqlite3_int64 *row,
                   uint32_t *room)
{
    sqlite3_stmt *st = sql_prep(s, "SELECT rowid, LENGTH(data) FROM "
                                   "sdf_files WHERE vcm = ?1 AND name = ?2");
    if (!st)
        return GMP_ERR_INTERNAL;
    sqlite3_bind_int64(st, 1, vcm);
    sqlite3_bind_blob(st, 2, name, (int)name_len, SQLITE_STATIC);
    uint32_t size = 0;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *row = sqlite3_column_int64(st, 0);
        size = (uint32_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_ROW)
        return r == SQLITE_DONE ? GMP_ERR_NOT_FOUND : GMP_ERR_INTERNAL;
    if (off > size)
        return GMP_ERR_ARG;
    *room = size - off;
    return GMP_OK;
}

/* Reads or writes n bytes at off of an existing file (bounds checked by
 * the caller). */
static int file_io(gmpd_store *s, sqlite3_int64 row, bool write,
                   uint32_t off, void *buf, size_t n)
{
    sqlite3_blob *b = NULL;
    if (sqlite3_blob_open(s->db, "main", "sdf_files", "data", row, write,
                          &b) != SQLITE_OK) {
        store_warn("SQL error: %s", sqlite3_errmsg(s->db));
        sqlite3_blob_close(b);
        return GMP_ERR_INTERNAL;
    }
    int r = n == 0  ? SQLITE_OK
            : write ? sqlite3_blob_write(b, buf, (int)n, (int)off)
                    : sqlite3_blob_read(b, buf, (int)n, (int)off);
    if (sqlite3_blob_close(b) != SQLITE_OK || r != SQLITE_OK) {
        store_warn("SQL error: %s", sqlite3_errmsg(s->db));
        return GMP_ERR_INTERNAL;
    }
    return GMP_OK;
}

int gmpd_file_size(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                   size_t name_len, uint32_t *size)
{
    if (!s || !file_name_ok(name, name_len) || !size)
        return GMP_ERR_ARG;
    sqlite3_int64 row = 0;
    lock(s);
    int rc = file_at(s, vcm, name, name_len, 0, &row, size);
    unlock(s);
    return rc;
}

int gmpd_file_read(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                   size_t name_len, uint32_t off, uint8_t *buf, size_t *len)
{
    if (!s || !file_name_ok(name, name_len) || !len || (!buf && *len))
        return GMP_ERR_ARG;
    sqlite3_int64 row = 0;
    uint32_t room = 0;
    lock(s);
    int rc = file_at(s, vcm, name, name_len, off, &row, &room);
    if (!rc && *len > room)
        *len = room;
    if (!rc)
        rc = file_io(s, row, false, off, buf, *len);
    unlock(s);
    if (rc)
        *len = 0;
    return rc;
}

int gmpd_file_write(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                    size_t name_len, uint32_t off, const uint8_t *buf,
                    size_t len)
{
    if (!s || !file_name_ok(name, name_len) || (!buf && len))
        return GMP_ERR_ARG;
    sqlite3_int64 row = 0;
    uint32_t room = 0;
    lock(s);
    int rc = file_at(s, vcm, name, name_len, off, &row, &room);
    if (!rc && len > room)
        rc = GMP_ERR_LENGTH;
    if (!rc)
        rc = file_io(s, row, true, off, (void *)buf, len);
    unlock(s);
    return rc;
}

int gmpd_file_delete(gmpd_store *s, uint32_t vcm, const uint8_t *name,
                     size_t name_len)
{
    if (!s || !file_name_ok(name, name_len))
        return GMP_ERR_ARG;
    lock(s);
    sqlite3_stmt *st = sql_prep(s, "DELETE FROM sdf_files WHERE vcm = ?1 "
                                   "AND name = ?2");
    if (st) {
        sqlite3_bind_int64(st, 1, vcm);
        sqlite3_bind_blob(st, 2, name, (int)name_len, SQLITE_STATIC);
    }
    int rc = sql_done(s, st);
    if (!rc && sqlite3_changes(s->db) == 0)
        rc = GMP_ERR_NOT_FOUND;
    unlock(s);
    return rc;
}
