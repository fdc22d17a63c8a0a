/* Writing a batch of frames on a libuv stream, shared by the daemon's
 * result batches and the client's shard batches. */
#ifndef GMPC_UVWRITE_H
#define GMPC_UVWRITE_H

#include <stdbool.h>

#include <uv.h>

/* One writev now; libuv queues only what the socket did not take, so a
 * batch that fits costs no write request, callback or epoll change.
 * bufs[0..nb) is advanced past what was written.  *queued says whether
 * req went to uv_write (cb runs later); when it did not, the return is 0
 * (all written) or uv_write's negative error, and cb never runs. */
int gmpc_write_now(uv_stream_t *st, uv_write_t *req, uv_buf_t *bufs,
                   unsigned nb, uv_write_cb cb, bool *queued);

#endif
