/* Files in the tenant's VCM, kept by the pool in its store: created with
 * a fixed size (zero-filled), read and written at an offset within it,
 * deleted.  Names are 1..128 bytes.  The pool's statuses become the
 * standard's file errors here. */
#include "sdf_int.h"

static bool name_ok(const unsigned char *name, unsigned int len)
{
    return name && len >= 1 && len <= GMP_FILE_NAME_MAX;
}

/* NOT_FOUND is the file, an offset past the end its own error. */
static int file_rv(int rc)
{
    switch (rc) {
    case GMP_ERR_NOT_FOUND:
        return SDR_FILENOEXIST;
    case GMP_ERR_EXISTS:
        return SDR_FILEEXSITS;
    case GMP_ERR_ARG:
        return SDR_FILEOFSERR;
    case GMP_ERR_LENGTH:
        return SDR_FILESIZEERR;
    default:
        return sdf_rv(rc);
    }
}

/* Larger than the whole storage is the file's size; larger than what is
 * left, the storage. */
static int create_rv(sdf_session *s, int rc, unsigned int size)
{
    gmp_sdf_info info;
    if (rc != GMP_ERR_LIMIT)
        return file_rv(rc);
    if (gmp_sdf_get_info(s->cli, &info) == GMP_OK && size > info.file_space)
        return SDR_FILESIZEERR;
    return SDR_NOBUFFER;
}

SDF_API int SDF_CreateFile(void *hSessionHandle, unsigned char *pucFileName,
                           unsigned int uiNameLen, unsigned int uiFileSize)
{
    sdf_session *s;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = name_ok(pucFileName, uiNameLen)
             ? create_rv(s, gmp_file_create(s->cli, pucFileName, uiNameLen,
                                            uiFileSize), uiFileSize)
             : SDR_INARGERR;
    sdf_session_put(s);
    return rv;
}

/* *puiReadLength: the most to read on entry, what was read on return. */
SDF_API int SDF_ReadFile(void *hSessionHandle, unsigned char *pucFileName,
                         unsigned int uiNameLen, unsigned int uiOffset,
                         unsigned int *puiReadLength, unsigned char *pucBuffer)
{
    sdf_session *s;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    if (!name_ok(pucFileName, uiNameLen))
        rv = SDR_INARGERR;
    else if (!puiReadLength || (!pucBuffer && *puiReadLength))
        rv = SDR_OUTARGERR;
    if (rv == SDR_OK) {
        size_t n = *puiReadLength;
        rv = file_rv(gmp_file_read(s->cli, pucFileName, uiNameLen, uiOffset,
                                   pucBuffer, &n));
        *puiReadLength = rv == SDR_OK ? (unsigned int)n : 0;
    }
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_WriteFile(void *hSessionHandle, unsigned char *pucFileName,
                          unsigned int uiNameLen, unsigned int uiOffset,
                          unsigned int uiWriteLength, unsigned char *pucBuffer)
{
    sdf_session *s;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    if (!name_ok(pucFileName, uiNameLen) || (!pucBuffer && uiWriteLength))
        rv = SDR_INARGERR;
    else
        rv = file_rv(gmp_file_write(s->cli, pucFileName, uiNameLen, uiOffset,
                                    pucBuffer, uiWriteLength));
    sdf_session_put(s);
    return rv;
}

SDF_API int SDF_DeleteFile(void *hSessionHandle, unsigned char *pucFileName,
                           unsigned int uiNameLen)
{
    sdf_session *s;
    int rv = sdf_session_get(hSessionHandle, &s);
    if (rv != SDR_OK)
        return rv;
    rv = name_ok(pucFileName, uiNameLen)
             ? file_rv(gmp_file_delete(s->cli, pucFileName, uiNameLen))
             : SDR_INARGERR;
    sdf_session_put(s);
    return rv;
}
