#include "uvwrite.h"

/* Drops the first n bytes of bufs; returns the index of the first buffer
 * with bytes left (nb when none). */
static unsigned bufs_skip(uv_buf_t *bufs, unsigned nb, size_t n)
{
    unsigned i = 0;
    while (i < nb && n >= bufs[i].len)
        n -= bufs[i++].len;
    if (i < nb) {
        bufs[i].base += n;
        bufs[i].len -= n;
    }
    return i;
}

int gmpc_write_now(uv_stream_t *st, uv_write_t *req, uv_buf_t *bufs,
                   unsigned nb, uv_write_cb cb, bool *queued)
{
    size_t total = 0;
    for (unsigned i = 0; i < nb; i++)
        total += bufs[i].len;
    *queued = false;
    int done = nb ? uv_try_write(st, bufs, nb) : 0;
    if (done >= 0 && (size_t)done == total)
        return 0;
    unsigned first = bufs_skip(bufs, nb, done > 0 ? (size_t)done : 0);
    int rc = uv_write(req, st, bufs + first, nb - first, cb);
    *queued = rc == 0;
    return rc;
}
