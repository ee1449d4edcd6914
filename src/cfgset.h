/* cfgset.h - what one decision needs, loaded and swapped as one set. */
#ifndef CFGSET_H
#define CFGSET_H

#include <stdint.h>

struct conf;
struct diag;
struct geo;
struct policy;
struct tz;

/*
 * The config, its time zone, the GeoIP databases and the policy. serve
 * builds a new set on SIGHUP and swaps it only when the whole set loads;
 * explain and policy test load the very same set.
 */
struct cfgset {
	struct conf *conf;
	struct tz *tz;
	struct geo *geo;
	struct policy *policy;
};

/*
 * Load the config at path and everything it names for deciding. policy
 * (NULL: the config's) overrides the policy path, for `policy diff`.
 * Returns an owned set, or NULL with every problem in dg.
 */
struct cfgset *cfgset_load(const char *path, const char *policy, int64_t now,
    struct diag *dg);
void cfgset_free(struct cfgset *s);

#endif /* CFGSET_H */
