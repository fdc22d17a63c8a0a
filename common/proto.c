#include "proto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gmpool.h"
#include "util.h"

/* ---- big-endian primitives ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* CRC-32/IEEE by table: every frame header is checked on both sides, and
 * bit by bit the 44 bytes took ~3 400 instructions per header (callgrind),
 * more than the rest of framing a shard.  Entry i is the CRC of byte i. */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

/* CRC-32 (IEEE) of the header: a cheap guard so that resynchronising after
 * garbage does not lock onto a stray magic value. */
uint32_t gmpc_crc32(const void *data, size_t n)
{
    const uint8_t *p = data;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        crc = (crc >> 8) ^ crc_table[(crc ^ p[i]) & 0xFFu];
    return ~crc;
}

/* Header layout (48 bytes, big-endian), docs/protocol.md:
 *  0 magic u32 | 4 version u8 | 5 type u8 | 6 priority u8 | 7 flags u8
 *  8 alg u16 | 10 status u16 | 12 window u32 | 16 task_id u64
 * 24 fresh u64 | 32 seq u32 | 36 len u32 | 40 deadline_ms u32 | 44 crc u32 */
void gmpc_hdr_encode(const gmpc_hdr *h, uint8_t out[GMPC_HDR_LEN])
{
    put32(out, GMPC_MAGIC);
    out[4] = GMPC_VERSION;
    out[5] = h->type;
    out[6] = h->priority;
    out[7] = h->flags;
    put16(out + 8, h->alg);
    put16(out + 10, h->status);
    put32(out + 12, h->window);
    put64(out + 16, h->task_id);
    put64(out + 24, h->fresh);
    put32(out + 32, h->seq);
    put32(out + 36, h->len);
    put32(out + 40, h->deadline_ms);
    put32(out + 44, gmpc_crc32(out, 44));
}

static void hdr_decode(const uint8_t *in, gmpc_hdr *h)
{
    h->version = in[4];
    h->type = in[5];
    h->priority = in[6];
    h->flags = in[7];
    h->alg = get16(in + 8);
    h->status = get16(in + 10);
    h->window = get32(in + 12);
    h->task_id = get64(in + 16);
    h->fresh = get64(in + 24);
    h->seq = get32(in + 32);
    h->len = get32(in + 36);
    h->deadline_ms = get32(in + 40);
}

/* Offset of the next byte that could start the magic, or n. */
static size_t next_magic(const uint8_t *buf, size_t n, size_t from)
{
    static const uint8_t m[4] = {0x47, 0x4D, 0x50, 0x46};
    for (size_t i = from; i < n; i++) {
        size_t k = 0;
        while (k < 4 && i + k < n && buf[i + k] == m[k])
            k++;
        if (k == 4 || i + k == n)
            return i;
    }
    return n;
}

gmpc_parse gmpc_frame_parse(const uint8_t *buf, size_t n, gmpc_hdr *h,
                            size_t *consumed, int *status)
{
    *consumed = 0;
    *status = GMP_OK;
    size_t start = next_magic(buf, n, 0);
    if (start > 0) {
        *consumed = start;
        return GMPC_SKIP;
    }
    if (n < GMPC_HDR_LEN)
        return GMPC_NEED_MORE;
    if (get32(buf + 44) != gmpc_crc32(buf, 44)) {
        /* Not a header after all: drop the magic's first byte, rescan. */
        *consumed = next_magic(buf, n, 1);
        return GMPC_SKIP;
    }
    hdr_decode(buf, h);
    if (h->version != GMPC_VERSION || h->type == 0 ||
        h->type >= GMPC_T_MAX_) {
        *status = GMP_ERR_PROTO;
        return GMPC_BAD;
    }
    if (h->len > GMPC_MAX_PAYLOAD) {
        *status = GMP_ERR_TOO_BIG;
        return GMPC_BAD;
    }
    if (n - GMPC_HDR_LEN < h->len)
        return GMPC_NEED_MORE;
    *consumed = GMPC_HDR_LEN + h->len;
    return GMPC_FRAME;
}

void gmpc_shm_ref_encode(uint8_t out[GMPC_SHM_REF_LEN], uint32_t off,
                         uint32_t len)
{
    put32(out, off);
    put32(out + 4, len);
}

bool gmpc_shm_ref_decode(const uint8_t *p, size_t n, uint32_t *off,
                         uint32_t *len)
{
    if (n != GMPC_SHM_REF_LEN)
        return false;
    *off = get32(p);
    *len = get32(p + 4);
    return true;
}

bool gmpc_shm_fits(uint64_t size, uint32_t off, uint64_t n)
{
    return off <= size && n <= size - off;
}

size_t gmpc_frame_build(const gmpc_hdr *h, const void *payload, uint8_t *out,
                        size_t cap)
{
    if (h->len > GMPC_MAX_PAYLOAD || cap < GMPC_HDR_LEN + (size_t)h->len)
        return 0;
    gmpc_hdr_encode(h, out);
    if (h->len)
        memcpy(out + GMPC_HDR_LEN, payload, h->len);
    return GMPC_HDR_LEN + h->len;
}

/* ---- reassembly buffer ---- */

uint8_t *gmpc_inbuf_room(gmpc_inbuf *b, size_t chunk, size_t *avail)
{
    if (b->cap - b->len < chunk) {
        uint8_t *p = realloc(b->p, b->len + chunk);
        if (!p) {
            *avail = 0;
            return NULL;
        }
        b->p = p;
        b->cap = b->len + chunk;
    }
    *avail = b->cap - b->len;
    return b->p + b->len;
}

void gmpc_inbuf_consume(gmpc_inbuf *b, size_t n, size_t chunk)
{
    if (n > b->len)
        n = b->len;
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    if (b->len == 0 && b->cap > 4 * chunk)
        gmpc_inbuf_free(b);
}

void gmpc_inbuf_free(gmpc_inbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- bounded payload writer / reader ---- */

static uint8_t *w_room(gmpc_wbuf *w, size_t n)
{
    if (w->overflow || w->cap - w->len < n) {
        w->overflow = true;
        return NULL;
    }
    uint8_t *p = w->p + w->len;
    w->len += n;
    return p;
}

void gmpc_w_u8(gmpc_wbuf *w, uint8_t v)
{
    uint8_t *p = w_room(w, 1);
    if (p)
        *p = v;
}

void gmpc_w_u16(gmpc_wbuf *w, uint16_t v)
{
    uint8_t *p = w_room(w, 2);
    if (p)
        put16(p, v);
}

void gmpc_w_u32(gmpc_wbuf *w, uint32_t v)
{
    uint8_t *p = w_room(w, 4);
    if (p)
        put32(p, v);
}

void gmpc_w_u64(gmpc_wbuf *w, uint64_t v)
{
    uint8_t *p = w_room(w, 8);
    if (p)
        put64(p, v);
}

void gmpc_w_bytes(gmpc_wbuf *w, const void *src, size_t n)
{
    uint8_t *p = w_room(w, n);
    if (p && n)
        memcpy(p, src, n);
}

void gmpc_w_blob(gmpc_wbuf *w, const void *src, size_t n)
{
    if (n > UINT16_MAX) {
        w->overflow = true;
        return;
    }
    gmpc_w_u16(w, (uint16_t)n);
    gmpc_w_bytes(w, src, n);
}

static const uint8_t *r_take(gmpc_rbuf *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

uint8_t gmpc_r_u8(gmpc_rbuf *r)
{
    const uint8_t *p = r_take(r, 1);
    return p ? *p : 0;
}

uint16_t gmpc_r_u16(gmpc_rbuf *r)
{
    const uint8_t *p = r_take(r, 2);
    return p ? get16(p) : 0;
}

uint32_t gmpc_r_u32(gmpc_rbuf *r)
{
    const uint8_t *p = r_take(r, 4);
    return p ? get32(p) : 0;
}

uint64_t gmpc_r_u64(gmpc_rbuf *r)
{
    const uint8_t *p = r_take(r, 8);
    return p ? get64(p) : 0;
}

const uint8_t *gmpc_r_bytes(gmpc_rbuf *r, size_t n)
{
    return r_take(r, n);
}

const uint8_t *gmpc_r_blob(gmpc_rbuf *r, size_t max, size_t *n)
{
    size_t len = gmpc_r_u16(r);
    *n = 0;
    if (r->bad || len > max) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r_take(r, len);
    if (p)
        *n = len;
    return p;
}

bool gmpc_r_done(const gmpc_rbuf *r)
{
    return !r->bad && r->off == r->len;
}

/* ---- message payloads ---- */

static bool name_ok(const uint8_t *p, size_t n)
{
    if (n == 0 || n > GMPC_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
    return true;
}

int gmpc_auth_encode(const gmpc_auth *a, gmpc_wbuf *w)
{
    gmpc_w_blob(w, a->tenant, strlen(a->tenant));
    gmpc_w_bytes(w, a->cnonce, GMPC_NONCE_LEN);
    gmpc_w_bytes(w, a->mac, GMPC_MAC_LEN);
    gmpc_w_u64(w, a->session_id);
    return w->overflow ? GMP_ERR_TOO_BIG : GMP_OK;
}

int gmpc_auth_decode(const uint8_t *p, size_t n, gmpc_auth *a)
{
    gmpc_rbuf r = {p, n, 0, false};
    size_t tl;
    const uint8_t *t = gmpc_r_blob(&r, GMPC_MAX_NAME, &tl);
    const uint8_t *cn = gmpc_r_bytes(&r, GMPC_NONCE_LEN);
    const uint8_t *mac = gmpc_r_bytes(&r, GMPC_MAC_LEN);
    a->session_id = gmpc_r_u64(&r);
    if (!gmpc_r_done(&r) || !name_ok(t, tl))
        return GMP_ERR_PROTO;
    memcpy(a->tenant, t, tl);
    a->tenant[tl] = '\0';
    memcpy(a->cnonce, cn, GMPC_NONCE_LEN);
    memcpy(a->mac, mac, GMPC_MAC_LEN);
    return GMP_OK;
}

int gmpc_auth_ok_encode(const gmpc_auth_ok *a, gmpc_wbuf *w)
{
    gmpc_w_bytes(w, a->proof, GMPC_MAC_LEN);
    gmpc_w_u64(w, a->session_id);
    gmpc_w_u32(w, a->vcm);
    gmpc_w_u32(w, a->max_tasks);
    gmpc_w_u32(w, a->max_shard);
    gmpc_w_u32(w, a->window);
    return w->overflow ? GMP_ERR_TOO_BIG : GMP_OK;
}

int gmpc_auth_ok_decode(const uint8_t *p, size_t n, gmpc_auth_ok *a)
{
    gmpc_rbuf r = {p, n, 0, false};
    const uint8_t *proof = gmpc_r_bytes(&r, GMPC_MAC_LEN);
    a->session_id = gmpc_r_u64(&r);
    a->vcm = gmpc_r_u32(&r);
    a->max_tasks = gmpc_r_u32(&r);
    a->max_shard = gmpc_r_u32(&r);
    a->window = gmpc_r_u32(&r);
    if (!gmpc_r_done(&r))
        return GMP_ERR_PROTO;
    memcpy(a->proof, proof, GMPC_MAC_LEN);
    return GMP_OK;
}

int gmpc_open_encode(const gmpc_open *o, gmpc_wbuf *w)
{
    if (o->key_len > sizeof o->key || o->iv_len > sizeof o->iv)
        return GMP_ERR_TOO_BIG;
    gmpc_w_u32(w, o->key_handle);
    gmpc_w_blob(w, o->key, o->key_len);
    gmpc_w_blob(w, o->iv, o->iv_len);
    gmpc_w_u64(w, o->total_len);
    if (o->aad_len)
        gmpc_w_blob(w, o->aad, o->aad_len);
    return w->overflow ? GMP_ERR_TOO_BIG : GMP_OK;
}

int gmpc_open_decode(const uint8_t *p, size_t n, gmpc_open *o)
{
    gmpc_rbuf r = {p, n, 0, false};
    o->key_handle = gmpc_r_u32(&r);
    const uint8_t *k = gmpc_r_blob(&r, sizeof o->key, &o->key_len);
    const uint8_t *iv = gmpc_r_blob(&r, sizeof o->iv, &o->iv_len);
    o->total_len = gmpc_r_u64(&r);
    o->aad = NULL;
    o->aad_len = 0;
    if (!r.bad && r.off < r.len)
        o->aad = gmpc_r_blob(&r, UINT16_MAX, &o->aad_len);
    if (!gmpc_r_done(&r))
        return GMP_ERR_PROTO;
    if (o->key_len)
        memcpy(o->key, k, o->key_len);
    if (o->iv_len)
        memcpy(o->iv, iv, o->iv_len);
    return GMP_OK;
}

/* The MAC binds both nonces, the tenant name and the session (joined by
 * the client, or handed out by the server), each with a distinct label so a server proof can never pass as a client
 * MAC or the other way round. */
static int transcript_mac(const char *label, const uint8_t *secret,
                          size_t secret_len, const char *tenant,
                          const uint8_t *n1, const uint8_t *n2,
                          uint64_t session_id, uint8_t out[GMPC_MAC_LEN])
{
    uint8_t msg[32 + GMPC_MAX_NAME + 1 + 2 * GMPC_NONCE_LEN + 8];
    gmpc_wbuf w = {msg, sizeof msg, 0, false};
    gmpc_w_bytes(&w, label, strlen(label) + 1);
    gmpc_w_blob(&w, tenant, strlen(tenant));
    gmpc_w_bytes(&w, n1, GMPC_NONCE_LEN);
    gmpc_w_bytes(&w, n2, GMPC_NONCE_LEN);
    gmpc_w_u64(&w, session_id);
    if (w.overflow)
        return GMP_ERR_ARG;
    return gmpc_hmac_sm3(secret, secret_len, msg, w.len, out);
}

int gmpc_auth_mac(const uint8_t *secret, size_t secret_len,
                  const char *tenant, const uint8_t snonce[GMPC_NONCE_LEN],
                  const uint8_t cnonce[GMPC_NONCE_LEN], uint64_t session_id,
                  uint8_t out[GMPC_MAC_LEN])
{
    return transcript_mac("gmpool client v1", secret, secret_len, tenant,
                          snonce, cnonce, session_id, out);
}

int gmpc_server_proof(const uint8_t *secret, size_t secret_len,
                      const char *tenant,
                      const uint8_t snonce[GMPC_NONCE_LEN],
                      const uint8_t cnonce[GMPC_NONCE_LEN],
                      uint64_t session_id, uint8_t out[GMPC_MAC_LEN])
{
    return transcript_mac("gmpool server v1", secret, secret_len, tenant,
                          cnonce, snonce, session_id, out);
}

bool gmpc_auth_verify(const uint8_t *secret, size_t secret_len,
                      const uint8_t snonce[GMPC_NONCE_LEN], const gmpc_auth *a)
{
    uint8_t mac[GMPC_MAC_LEN];
    return gmpc_auth_mac(secret, secret_len, a->tenant, snonce, a->cnonce,
                         a->session_id, mac) == GMP_OK &&
           CRYPTO_memcmp(mac, a->mac, sizeof mac) == 0;
}

bool gmpc_server_proof_verify(const uint8_t *secret, size_t secret_len,
                              const char *tenant,
                              const uint8_t snonce[GMPC_NONCE_LEN],
                              const uint8_t cnonce[GMPC_NONCE_LEN],
                              uint64_t session_id,
                              const uint8_t proof[GMPC_MAC_LEN])
{
    uint8_t want[GMPC_MAC_LEN];
    return gmpc_server_proof(secret, secret_len, tenant, snonce, cnonce,
                             session_id, want) == GMP_OK &&
           CRYPTO_memcmp(want, proof, sizeof want) == 0;
}

const char *gmpc_type_name(unsigned type)
{
    static const char *names[GMPC_T_MAX_] = {
        "?",      "CHALLENGE", "AUTH",     "AUTH_OK",   "OPEN",
        "OPEN_OK", "SHARD",    "RESULT",   "FINAL",     "FINAL_OK",
        "ABORT",  "RANDOM",    "RANDOM_OK", "KEY",      "KEY_OK",
        "ADMIN",  "ADMIN_OK",  "PING",     "PONG",      "ERROR",
        "SHM",    "SHM_OK"};
    return type < GMPC_T_MAX_ ? names[type] : "?";
}

const char *gmp_strerror(int status)
{
    static const char *msgs[GMP_ERR_MAX_] = {
        [GMP_OK] = "success",
        [GMP_ERR_PROTO] = "protocol error",
        [GMP_ERR_AUTH] = "authentication failed",
        [GMP_ERR_NOAUTH] = "not authenticated",
        [GMP_ERR_REPLAY] = "task freshness value already used (replay)",
        [GMP_ERR_TOO_BIG] = "length over its bound",
        [GMP_ERR_ALG] = "unknown or unsupported algorithm",
        [GMP_ERR_KEY] = "bad key",
        [GMP_ERR_IV] = "bad IV",
        [GMP_ERR_NO_TASK] = "unknown task",
        [GMP_ERR_SEQ] = "bad shard sequence",
        [GMP_ERR_LIMIT] = "session limit reached",
        [GMP_ERR_LENGTH] = "data length not valid for the mode",
        [GMP_ERR_NOT_FOUND] = "not found",
        [GMP_ERR_EXISTS] = "already exists",
        [GMP_ERR_DENIED] = "not permitted",
        [GMP_ERR_SHUTDOWN] = "daemon shutting down",
        [GMP_ERR_INTERNAL] = "internal error in the daemon",
        [GMP_ERR_ARG] = "bad argument",
        [GMP_ERR_CONN] = "cannot reach gmpoold or connection lost",
        [GMP_ERR_CONFIG] = "missing or bad configuration or credentials",
        [GMP_ERR_FORKED] = "object belongs to the parent process",
        [GMP_ERR_STATE] = "call out of order",
        [GMP_ERR_BUFFER] = "output buffer too small",
        [GMP_ERR_TIMEOUT] = "timed out waiting for gmpoold",
        [GMP_ERR_NOMEM] = "out of memory",
        [GMP_ERR_NO_NODE] = "no compute node in service",
        [GMP_ERR_PIN] = "wrong PIN",
        [GMP_ERR_PIN_LOCKED] = "PIN locked after too many wrong attempts",
        [GMP_ERR_PIN_UNSET] = "no user PIN set for this tenant",
        [GMP_ERR_LOGIN] = "not logged in",
        [GMP_ERR_VERIFY] = "signature or ciphertext check failed",
    };
    if (status < 0 || status >= GMP_ERR_MAX_ || !msgs[status])
        return "unknown error";
    return msgs[status];
}

bool gmpc_key_len_ok(uint16_t type, size_t len)
{
    switch (type) {
    case GMP_KEY_SM4:
        return len == GMP_SM4_KEY_LEN;
    case GMP_KEY_AES:
        return len == 16 || len == 24 || len == 32;
    case GMP_KEY_GENERIC:
        return len >= 1 && len <= GMP_MAX_KEY_LEN;
    default:
        return false;
    }
}
