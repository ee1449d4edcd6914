/* connlim.c - open client connections counted per department. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connlim.h"

#define CONNLIM_NBUCKETS 1024 /* a power of two */

struct connlim_slot {
	struct connlim_slot *next; /* in its bucket */
	atomic_uint_fast64_t n;    /* connections counted now */
	char id[];                 /* the department id */
};

struct connlim {
	pthread_mutex_t mtx; /* the buckets and nslots */
	struct connlim_slot *bucket[CONNLIM_NBUCKETS];
	size_t nslots;
};

/* FNV-1a: department ids are short and few; any spread will do. */
static uint32_t
connlim_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

struct connlim *
connlim_new(void)
{
	struct connlim *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if (pthread_mutex_init(&t->mtx, NULL) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

void
connlim_free(struct connlim *t)
{
	struct connlim_slot *s, *next;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < CONNLIM_NBUCKETS; i++) {
		for (s = t->bucket[i]; s != NULL; s = next) {
			next = s->next;
			free(s);
		}
	}
	pthread_mutex_destroy(&t->mtx);
	free(t);
}

struct connlim_slot *
connlim_slot_get(struct connlim *t, const char *id)
{
	struct connlim_slot *s = NULL;
	size_t len = strnlen(id, CONNLIM_MAX_ID + 1);
	uint32_t b;

	if (len == 0 || len > CONNLIM_MAX_ID)
		return NULL;
	b = connlim_hash(id, len) & (CONNLIM_NBUCKETS - 1);
	pthread_mutex_lock(&t->mtx);
	for (s = t->bucket[b]; s != NULL; s = s->next)
		if (strcmp(s->id, id) == 0)
			goto out;
	if (t->nslots >= CONNLIM_MAX_SLOTS)
		goto out;
	if ((s = malloc(sizeof(*s) + len + 1)) == NULL)
		goto out;
	atomic_init(&s->n, 0);
	memcpy(s->id, id, len + 1);
	s->next = t->bucket[b];
	t->bucket[b] = s;
	t->nslots++;
out:
	pthread_mutex_unlock(&t->mtx);
	return s;
}

size_t
connlim_nslots(struct connlim *t)
{
	size_t n;

	pthread_mutex_lock(&t->mtx);
	n = t->nslots;
	pthread_mutex_unlock(&t->mtx);
	return n;
}

int
connlim_take(struct connlim_slot *s, uint64_t max)
{
	uint_fast64_t n;

	if (max == 0) {
		atomic_fetch_add(&s->n, 1);
		return 0;
	}
	/*
	 * Compare and swap, not add then undo: an undone add would make a
	 * connection elsewhere see the department full for a moment.
	 */
	n = atomic_load(&s->n);
	do {
		if (n >= max)
			return -1;
	} while (!atomic_compare_exchange_weak(&s->n, &n, n + 1));
	return 0;
}

void
connlim_put(struct connlim_slot *s)
{
	atomic_fetch_sub(&s->n, 1);
}

uint64_t
connlim_count(const struct connlim_slot *s)
{
	return atomic_load(&s->n);
}

const char *
connlim_id(const struct connlim_slot *s)
{
	return s->id;
}
