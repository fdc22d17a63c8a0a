/* Shared-memory lane, client side (shm.c).  Loop thread only. */
#ifndef GMP_CLIENT_SHM_H
#define GMP_CLIENT_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Fewer slots than this and the region is not worth having. */
#define CSHM_MIN_SLOTS 8u

typedef struct cshm cshm;

/* A region of `slots` slots for shards of up to `shard` bytes (fewer when
 * GMPC_SHM_MAX is reached); NULL when it cannot be made. */
cshm *cshm_new(unsigned shard, unsigned slots);
void cshm_free(cshm *m);
/* Sends the SHM frame with the memfd; returns the bytes sent or -1.  The
 * client's descriptor is closed either way. */
int cshm_offer(cshm *m, int sock, const uint8_t *frame, size_t len);
uint32_t cshm_size(const cshm *m);
void cshm_set_ready(cshm *m);
/* A free slot, or -1 (none free, no region, or not yet accepted). */
int cshm_take(cshm *m);
void cshm_put(cshm *m, int slot);
uint32_t cshm_off(const cshm *m, int slot);
uint8_t *cshm_at(cshm *m, uint32_t off);
bool cshm_in_slot(const cshm *m, int slot, uint32_t off, uint32_t len);
/* The slot of an item whose task failed or was freed: the daemon may still
 * write it, so it is free again only once that item's reply arrives
 * (RESULT, FINAL_OK or ERROR: the daemon answers every item it took). */
void cshm_park(cshm *m, int slot, uint64_t task, uint32_t seq);
/* A reply to (task, seq): its parked slot, if any, is free again. */
void cshm_unpark(cshm *m, uint64_t task, uint32_t seq);

#endif
