/* cfgset.c - what one decision needs, loaded and swapped as one set. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cfgset.h"
#include "conf.h"
#include "diag.h"
#include "geo.h"
#include "policy.h"
#include "tz.h"
#include "xmalloc.h"

struct cfgset *
cfgset_load(const char *path, const char *policy, int64_t now, struct diag *dg)
{
	struct policy_env env;
	struct cfgset *s;
	char err[256];

	s = xcalloc(1, sizeof(*s));
	if ((s->conf = conf_load(path, dg)) == NULL)
		goto fail;
	if ((s->tz = tz_load(s->conf->timezone, err, sizeof(err))) == NULL) {
		diag_error(dg, path, s->conf->timezone_line,
		    s->conf->timezone_col, "timezone \"%s\": %s",
		    s->conf->timezone, err);
		goto fail;
	}
	if ((s->geo = geo_open(s->conf->geoip_country_db,
	         s->conf->geoip_zone_db, dg)) == NULL)
		goto fail;
	memset(&env, 0, sizeof(env));
	env.tz = s->tz;
	env.now = now;
	env.have_country_db = s->conf->geoip_country_db != NULL;
	env.have_zone_db = s->conf->geoip_zone_db != NULL;
	if ((s->policy = policy_load(policy ? policy : s->conf->policy, &env,
	         dg)) == NULL)
		goto fail;
	return s;
fail:
	cfgset_free(s);
	return NULL;
}

void
cfgset_free(struct cfgset *s)
{
	if (s == NULL)
		return;
	policy_unref(s->policy);
	geo_free(s->geo);
	tz_free(s->tz);
	conf_free(s->conf);
	free(s);
}
