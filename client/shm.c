/* The client's half of the shared-memory lane (docs/protocol.md §6.5): a
 * sealed memfd cut into slots of 2 x shard + GMPC_SHM_SPARE bytes.  A
 * shard's bytes are copied into a free slot instead of travelling through
 * the socket (two kernel copies and their socket-buffer accounting), and
 * the daemon leaves the output right after them.  Loop thread only. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shm.h"

#define SLOT_ALIGN 64u

typedef struct parked {
    uint64_t task;           /* 0: the slot is not parked */
    uint32_t seq;
} parked;

struct cshm {
    uint8_t *base;
    uint32_t size, slot_bytes;
    unsigned n, n_free, n_parked;
    int fd;                  /* until sent to the daemon */
    bool ready;              /* the daemon mapped it (SHM_OK) */
    parked *parked;          /* by slot */
    uint32_t free_slots[];
};

cshm *cshm_new(unsigned shard, unsigned slots)
{
    uint64_t sb = (2ull * shard + GMPC_SHM_SPARE + SLOT_ALIGN - 1) &
                  ~(uint64_t)(SLOT_ALIGN - 1);
    if (slots > GMPC_SHM_MAX / sb)
        slots = (unsigned)(GMPC_SHM_MAX / sb);
    if (slots < CSHM_MIN_SLOTS)
        return NULL; /* shards too large to be worth a region */
    cshm *m = calloc(1, sizeof *m + slots * sizeof(uint32_t));
    if (!m || !(m->parked = calloc(slots, sizeof *m->parked))) {
        free(m);
        return NULL;
    }
    m->slot_bytes = (uint32_t)sb;
    m->n = m->n_free = slots;
    m->size = (uint32_t)(sb * slots);
    for (unsigned i = 0; i < slots; i++)
        m->free_slots[i] = slots - 1 - i;
    m->fd = memfd_create("gmpool-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (m->fd < 0 || ftruncate(m->fd, m->size) != 0 ||
        fcntl(m->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !=
            0 ||
        (m->base = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED,
                        m->fd, 0)) == MAP_FAILED) {
        m->base = NULL;
        cshm_free(m);
        return NULL;
    }
    return m;
}

void cshm_free(cshm *m)
{
    if (!m)
        return;
    if (m->fd >= 0)
        close(m->fd);
    if (m->base)
        munmap(m->base, m->size);
    free(m->parked);
    free(m);
}

/* One sendmsg on a socket nothing else is writing to: the frame and the
 * memfd (SCM_RIGHTS), which the daemon then holds mapped. */
int cshm_offer(cshm *m, int sock, const uint8_t *frame, size_t len)
{
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov = {(void *)frame, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl.space,
                         .msg_controllen = sizeof ctl.space};
    memset(&ctl, 0, sizeof ctl);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &m->fd, sizeof(int));
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    close(m->fd);
    m->fd = -1;
    return n < 0 ? -1 : (int)n;
}

uint32_t cshm_size(const cshm *m)
{
    return m->size;
}

void cshm_set_ready(cshm *m)
{
    m->ready = true;
}

int cshm_take(cshm *m)
{
    if (!m || !m->ready || m->n_free == 0)
        return -1;
    return (int)m->free_slots[--m->n_free];
}

void cshm_put(cshm *m, int slot)
{
    if (m && slot >= 0 && (unsigned)slot < m->n && m->n_free < m->n)
        m->free_slots[m->n_free++] = (uint32_t)slot;
}

uint32_t cshm_off(const cshm *m, int slot)
{
    return (uint32_t)slot * m->slot_bytes;
}

uint8_t *cshm_at(cshm *m, uint32_t off)
{
    return m->base + off;
}

/* Is [off, off + len) inside the slot? */
bool cshm_in_slot(const cshm *m, int slot, uint32_t off, uint32_t len)
{
    uint32_t start = cshm_off(m, slot);
    return slot >= 0 && (unsigned)slot < m->n && off >= start &&
           gmpc_shm_fits(m->slot_bytes, off - start, len);
}

void cshm_park(cshm *m, int slot, uint64_t task, uint32_t seq)
{
    if (m && slot >= 0 && (unsigned)slot < m->n && !m->parked[slot].task) {
        m->parked[slot] = (parked){task, seq};
        m->n_parked++;
    }
}

void cshm_unpark(cshm *m, uint64_t task, uint32_t seq)
{
    if (!m || !m->n_parked)
        return;
    for (unsigned i = 0; i < m->n; i++)
        if (m->parked[i].task == task && m->parked[i].seq == seq) {
            m->parked[i].task = 0;
            m->n_parked--;
            cshm_put(m, (int)i);
            return;
        }
}
