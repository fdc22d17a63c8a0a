/* Module-wide state shared by module.c and api.c. */
#ifndef GMP_P11_MODULE_H
#define GMP_P11_MODULE_H

#include <sys/types.h>

#include "p11.h"

typedef struct p11_sobj {
    CK_OBJECT_HANDLE handle;
    CK_SESSION_HANDLE session;
} p11_sobj;

typedef struct p11_global {
    bool init;
    pid_t pid;                 /* the process that initialised */
    p11_mutex *mu;             /* the tables below and slot login state */
    p11_slot slots[P11_MAX_SLOTS];
    size_t n_slots;
    p11_session **sess;
    size_t n_sess, cap_sess;
    CK_SESSION_HANDLE next_handle;
    p11_sobj *objs;            /* session objects and their session */
    size_t n_objs, cap_objs;
} p11_global;

extern p11_global G;

bool p11_is_init(void);
/* Held around C_Initialize and C_Finalize. */
void p11_init_lock(void);
void p11_init_unlock(void);
CK_RV p11_initialize(const CK_C_INITIALIZE_ARGS *a);
void p11_finalize(void);

p11_slot *p11_slot_get(CK_SLOT_ID id);
void p11_slot_counts(p11_slot *sl, CK_ULONG *all, CK_ULONG *rw);
size_t p11_slot_sessions(p11_slot *sl, CK_SESSION_HANDLE **out);

CK_RV p11_session_open(p11_slot *sl, CK_FLAGS flags, CK_SESSION_HANDLE *out);
CK_RV p11_session_get(CK_SESSION_HANDLE h, p11_session **out);
void p11_session_put(p11_session *s);
void p11_session_close(p11_session *s);
CK_STATE p11_session_state(p11_session *s);

#endif
