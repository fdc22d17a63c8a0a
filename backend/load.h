/* Live-load table (R7): per node and per host, queue depth, bytes/s,
 * status, heartbeat.  A small interface; the in-memory implementation is the
 * default, a Redis one follows (same ops). */
#ifndef GMPD_LOAD_H
#define GMPD_LOAD_H

#include <stddef.h>
#include <stdint.h>

#define GMPD_HOST_LEN 64

typedef struct gmpd_load_rec {
    char host[GMPD_HOST_LEN];  /* host name */
    uint32_t node;             /* node id; 0 = the host's own row */
    uint32_t vcm;              /* owner VCM of the node, 0 = free */
    uint32_t queue_depth;      /* jobs waiting */
    double bytes_per_s;        /* recent throughput */
    int status;                /* gmpd_node_status */
    uint64_t heartbeat_ms;     /* wall clock of the last update */
} gmpd_load_rec;

typedef struct gmpd_load gmpd_load;

typedef struct gmpd_load_ops {
    int (*put)(gmpd_load *l, const gmpd_load_rec *r);
    int (*get)(gmpd_load *l, const char *host, uint32_t node,
               gmpd_load_rec *out);      /* 0 or GMP_ERR_NOT_FOUND */
    int (*del)(gmpd_load *l, const char *host, uint32_t node);
    /* Calls cb for every record; stops early when cb returns non-zero. */
    int (*list)(gmpd_load *l, int (*cb)(const gmpd_load_rec *, void *),
                void *arg);
    void (*free)(gmpd_load *l);
} gmpd_load_ops;

struct gmpd_load {
    const gmpd_load_ops *ops;
};

/* Thread-safe in-memory table. */
gmpd_load *gmpd_load_mem_new(void);

/* Exponentially weighted rate meter with an injected clock. */
typedef struct gmpd_rate {
    double rate;        /* units per second */
    uint64_t last_ns;
    uint64_t pending;   /* units since last_ns */
} gmpd_rate;

void gmpd_rate_add(gmpd_rate *r, uint64_t units, uint64_t now_ns);
double gmpd_rate_get(gmpd_rate *r, uint64_t now_ns);

#endif
