/* connlim.h - open client connections counted per department. */
#ifndef CONNLIM_H
#define CONNLIM_H

#include <stddef.h>
#include <stdint.h>

#define CONNLIM_MAX_SLOTS 65536 /* department ids counted since start */
#define CONNLIM_MAX_ID 128      /* bytes of a department id */

/*
 * The table: one counter per department id, made when a policy naming it
 * is loaded and kept until the table is freed, so a department present in
 * the old and the new policy of a reload keeps its count. Slots are found
 * under a mutex (at policy load); counting is lock-free (atomics), from
 * any thread.
 */
struct connlim;
struct connlim_slot;

/* An empty table, or NULL when out of memory. */
struct connlim *connlim_new(void);
/* Free t and every slot; no slot may be used after. NULL is a no-op. */
void connlim_free(struct connlim *t);

/*
 * The slot of department id, made (with a count of 0) when there is none.
 * Returns a slot borrowed from t, or NULL: id empty or longer than
 * CONNLIM_MAX_ID, the table holds CONNLIM_MAX_SLOTS, or out of memory.
 */
struct connlim_slot *connlim_slot_get(struct connlim *t, const char *id);
size_t connlim_nslots(struct connlim *t);

/*
 * Count one connection against s unless that makes more than max (0: no
 * limit, count only). Returns 0 when counted, -1 at the limit.
 */
int connlim_take(struct connlim_slot *s, uint64_t max);
/* Release a connection counted by connlim_take. */
void connlim_put(struct connlim_slot *s);
uint64_t connlim_count(const struct connlim_slot *s);
const char *connlim_id(const struct connlim_slot *s);

#endif /* CONNLIM_H */
