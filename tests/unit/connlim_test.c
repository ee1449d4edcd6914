/* connlim_test.c - per-department connection counters: limits, ids, threads. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"
#include "connlim.h"
#include "tap.h"

#define CONNLIM_TEST_THREADS 8
#define CONNLIM_TEST_ROUNDS 20000

/*
 * Scripts against one fresh slot: '+' must be counted, 'x' must be
 * refused at the limit, '-' releases one.
 */
static const struct {
	const char *name;
	uint64_t max;
	const char *ops;
	uint64_t left; /* count at the end */
} scripts[] = {
	{ "limit 1", 1, "+x-+x", 1 },
	{ "limit 2, release and take again", 2, "++x-+x--++x", 2 },
	{ "limit 3, all released", 3, "+++xx---", 0 },
	{ "no limit (0) only counts", 0, "++++++++++-", 9 },
	{ "limit 1000000", 1000000, "++-", 1 },
};

static int
connlim_test_script(size_t i)
{
	struct connlim *t;
	struct connlim_slot *s;
	const char *op;
	int ok = 1, rc;

	if ((t = connlim_new()) == NULL ||
	    (s = connlim_slot_get(t, "renshe")) == NULL) {
		connlim_free(t);
		return 0;
	}
	for (op = scripts[i].ops; *op != '\0'; op++) {
		if (*op == '-') {
			connlim_put(s);
			continue;
		}
		rc = connlim_take(s, scripts[i].max);
		if ((*op == '+' && rc != 0) || (*op == 'x' && rc != -1)) {
			tap_diag("op %zu ('%c'): got %d",
			    (size_t)(op - scripts[i].ops), *op, rc);
			ok = 0;
		}
	}
	if (connlim_count(s) != scripts[i].left) {
		tap_diag("count %llu, want %llu",
		    (unsigned long long)connlim_count(s),
		    (unsigned long long)scripts[i].left);
		ok = 0;
	}
	connlim_free(t);
	return ok;
}

static void
connlim_test_ids(void)
{
	char big[CONNLIM_MAX_ID + 2], id[32];
	struct connlim_slot *a, *b, *a2, *s = NULL;
	struct connlim *t;
	size_t i;
	int ok = 1;

	if ((t = connlim_new()) == NULL) {
		tap_ok(0, "connlim_new");
		return;
	}
	a = connlim_slot_get(t, "renshe");
	b = connlim_slot_get(t, "gongan");
	tap_ok(a != NULL && b != NULL && a != b, "two ids, two slots");
	tap_streq(connlim_id(a), "renshe", "a slot knows its id");
	(void)connlim_take(a, 0);
	(void)connlim_take(a, 0);
	/* A reload: the new policy's departments are looked up again. */
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "dept-%zu", i);
		if (connlim_slot_get(t, id) == NULL)
			ok = 0;
	}
	a2 = connlim_slot_get(t, "renshe");
	tap_ok(ok && a2 == a && connlim_count(a2) == 2,
	    "the same id finds the same slot and count after others are added");
	tap_ok(connlim_count(b) == 0, "another department's count is its own");
	tap_ok(connlim_slot_get(t, "") == NULL, "an empty id is refused");
	memset(big, 'd', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tap_ok(connlim_slot_get(t, big) == NULL, "an id of %d bytes is refused",
	    CONNLIM_MAX_ID + 1);
	big[CONNLIM_MAX_ID] = '\0';
	tap_ok(connlim_slot_get(t, big) != NULL, "an id of %d bytes is taken",
	    CONNLIM_MAX_ID);

	for (i = connlim_nslots(t); i < CONNLIM_MAX_SLOTS; i++) {
		snprintf(id, sizeof(id), "fill-%zu", i);
		if ((s = connlim_slot_get(t, id)) == NULL)
			break;
	}
	tap_ok(connlim_nslots(t) == CONNLIM_MAX_SLOTS,
	    "the table fills to %d slots", CONNLIM_MAX_SLOTS);
	tap_ok(connlim_slot_get(t, "one-too-many") == NULL,
	    "a new id beyond CONNLIM_MAX_SLOTS is refused");
	tap_ok(connlim_slot_get(t, "renshe") == a,
	    "a known id is still found in a full table");
	connlim_free(t);
}

struct connlim_test_arg {
	struct connlim_slot *s;
	uint64_t max;
	atomic_int *held; /* connections the threads hold now */
	atomic_int *peak;
	int churn; /* take and put; else take until refused, keep */
	int taken;
};

static void *
connlim_test_thread(void *arg)
{
	struct connlim_test_arg *a = arg;
	int i, now, peak;

	for (i = 0; i < CONNLIM_TEST_ROUNDS; i++) {
		if (connlim_take(a->s, a->max) == -1) {
			if (!a->churn)
				break;
			continue;
		}
		a->taken++;
		now = atomic_fetch_add(a->held, 1) + 1;
		peak = atomic_load(a->peak);
		while (now > peak &&
		    !atomic_compare_exchange_weak(a->peak, &peak, now))
			;
		if (a->churn) {
			atomic_fetch_sub(a->held, 1);
			connlim_put(a->s);
		}
	}
	return NULL;
}

/* Threads racing for one slot never hold more than max between them. */
static void
connlim_test_threads(int churn, uint64_t max)
{
	struct connlim_test_arg args[CONNLIM_TEST_THREADS];
	pthread_t th[CONNLIM_TEST_THREADS];
	atomic_int held, peak;
	struct connlim *t;
	struct connlim_slot *s;
	int i, total = 0, started = 0;

	atomic_init(&held, 0);
	atomic_init(&peak, 0);
	if ((t = connlim_new()) == NULL ||
	    (s = connlim_slot_get(t, "renshe")) == NULL) {
		tap_ok(0, "threads: set up");
		connlim_free(t);
		return;
	}
	for (i = 0; i < CONNLIM_TEST_THREADS; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].s = s;
		args[i].max = max;
		args[i].held = &held;
		args[i].peak = &peak;
		args[i].churn = churn;
		if (pthread_create(&th[i], NULL, connlim_test_thread,
		        &args[i]) != 0)
			break;
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		total += args[i].taken;
	}
	if (churn) {
		tap_ok(started == CONNLIM_TEST_THREADS &&
		        atomic_load(&peak) <= (int)max && connlim_count(s) == 0,
		    "%d threads take and put under limit %llu: peak %d, "
		    "count back to 0 (%llu)",
		    started, (unsigned long long)max, atomic_load(&peak),
		    (unsigned long long)connlim_count(s));
	} else {
		tap_ok(started == CONNLIM_TEST_THREADS && total == (int)max &&
		        connlim_count(s) == max,
		    "%d threads take until refused: exactly %llu counted "
		    "(%d taken, count %llu)",
		    started, (unsigned long long)max, total,
		    (unsigned long long)connlim_count(s));
	}
	connlim_free(t);
}

int
main(void)
{
	size_t i;

	for (i = 0; i < nitems(scripts); i++)
		tap_ok(connlim_test_script(i), "script: %s (%s)",
		    scripts[i].name, scripts[i].ops);
	connlim_test_ids();
	connlim_test_threads(0, 100);
	connlim_test_threads(0, 1);
	connlim_test_threads(1, 3);
	connlim_free(NULL);
	tap_ok(1, "connlim_free(NULL) is a no-op");
	tap_done();
	tap_exit();
}
