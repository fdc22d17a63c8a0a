/* Hash a file with SM3 and encrypt it with SM4-CBC through gmpool.
 *   sm3_sm4 FILE
 * Finds the daemon through GMPOOL_SERVER / GMPOOL_CREDENTIALS, or the
 * default credentials file that gmpoold writes on first start. */
#include <stdio.h>
#include <stdlib.h>

#include <gmpool.h>

static int fail(const char *what, int rc)
{
    fprintf(stderr, "%s: %s (%s)\n", what, gmp_strerror(rc),
            gmp_client_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    gmp_client *c;
    int rc = gmp_client_open(&c, NULL);
    if (rc != GMP_OK)
        return fail("open", rc);

    /* Stream the file: update copies the data and returns while the
     * shards are still being computed in the pool. */
    gmp_task *t;
    static unsigned char buf[1 << 20], out[(1 << 20) + 32];
    rc = gmp_digest_open(c, GMP_ALG_SM3, NULL, &t);
    size_t n;
    while (rc == GMP_OK && (n = fread(buf, 1, sizeof buf, f)) > 0)
        rc = gmp_task_update(t, buf, n, NULL, NULL);
    unsigned char md[32];
    size_t mdlen = sizeof md;
    if (rc == GMP_OK)
        rc = gmp_task_final(t, md, &mdlen);
    gmp_task_free(t);
    if (rc != GMP_OK)
        return fail("sm3", rc);
    for (size_t i = 0; i < mdlen; i++)
        printf("%02x", md[i]);
    printf("  %s\n", argv[1]);

    /* SM4-CBC with PKCS#7 padding: update returns its own output. */
    const unsigned char key[16] = "0123456789abcdef", iv[16] = {0};
    rewind(f);
    rc = gmp_cipher_open(c, GMP_ALG_SM4_CBC, GMP_TASK_PAD, key, 16, 0, iv, 16,
                         NULL, &t);
    size_t total = 0;
    while (rc == GMP_OK && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        size_t outlen = sizeof out;
        rc = gmp_task_update(t, buf, n, out, &outlen);
        total += outlen;
    }
    size_t outlen = sizeof out;
    if (rc == GMP_OK)
        rc = gmp_task_final(t, out, &outlen);
    gmp_task_free(t);
    fclose(f);
    if (rc != GMP_OK)
        return fail("sm4-cbc", rc);
    printf("sm4-cbc ciphertext: %zu bytes\n", total + outlen);
    gmp_client_close(c);
    return 0;
}
