/* cmd_explain.c - `govgate explain`: decide one request offline, step by step.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfgset.h"
#include "cmd.h"
#include "conf.h"
#include "diag.h"
#include "offline.h"
#include "peer.h"
#include "policy.h"
#include "tz.h"

static void
explain_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: govgate explain -c FILE [--cert PEM] [--from IP] "
	    "[-H 'Name: value']...\n"
	    "                       [--at TIME] [--listener NAME] [--json] "
	    "METHOD PATH\n\n"
	    "Decide one request offline, exactly as serve would, and show "
	    "each step of the\n"
	    "decision, the deciding grant, suspension or step, and on a "
	    "denial every\n"
	    "candidate grant with why it failed.\n\n"
	    "  -c, --config FILE   the gateway config (govgate.yaml)\n"
	    "      --cert PEM      the client certificate (none: no "
	    "certificate)\n"
	    "      --from IP       source address, looked up in the GeoIP "
	    "databases\n"
	    "  -H, --header H      a request header, e.g. -H 'X-Purpose: "
	    "pension-eligibility'\n"
	    "      --at TIME       clock as RFC 3339, e.g. "
	    "2026-11-25T10:00:00+08:00 (default: now)\n"
	    "      --listener NAME the listener it arrives on (default: the "
	    "first)\n"
	    "      --json          one JSON object instead of text\n"
	    "  -h, --help          this text\n\n"
	    "Exit status: 0 allowed, 1 denied, 2 usage or config error.\n");
}

static const char *
explain_step_note(const struct policy *p, const struct policy_decision *d,
    const struct offline_req *r, enum policy_step s, char *buf, size_t len)
{
	buf[0] = '\0';
	switch (s) {
	case POLICY_STEP_PARSE:
		if (d->outcome[s] == POLICY_OUT_PASS)
			snprintf(buf, len, "path %.*s", (int)d->norm_len,
			    r->norm);
		break;
	case POLICY_STEP_CERT:
		if (r->peer.present)
			snprintf(buf, len, "%s (serial %s)",
			    peer_str(&r->peer, r->peer.dn),
			    peer_str(&r->peer, r->peer.serial));
		break;
	case POLICY_STEP_DEPARTMENT:
		if (d->department)
			snprintf(buf, len, "%s (%s)", d->department->id,
			    d->department->name ? d->department->name : "");
		break;
	case POLICY_STEP_COUNTRY:
		if (d->outcome[s] != POLICY_OUT_NOT_REACHED)
			snprintf(buf, len, "%s %s",
			    r->have_from ? r->from : "-",
			    r->geo.country[0] ? r->geo.country : "unknown");
		break;
	case POLICY_STEP_ZONE:
		if (d->outcome[s] != POLICY_OUT_NOT_REACHED)
			snprintf(buf, len, "zone %s",
			    r->geo.zone[0] ? r->geo.zone : "(none)");
		break;
	case POLICY_STEP_RESOURCE:
		if (d->resource)
			snprintf(buf, len, "%s (owner %s, %s, %s)",
			    d->resource->id, d->resource->owner->id,
			    policy_level_str(p, d->resource->classification),
			    policy_sharing_str(d->resource->sharing));
		break;
	case POLICY_STEP_SUSPENSION:
		if (d->suspension && d->step == s)
			snprintf(buf, len, "%s: %s", d->suspension->id,
			    d->suspension->reason);
		break;
	case POLICY_STEP_CLEARANCE:
		if (d->department && d->resource &&
		    d->outcome[s] != POLICY_OUT_NOT_REACHED)
			snprintf(buf, len, "%s vs %s",
			    policy_level_str(p, d->department->clearance),
			    policy_level_str(p, d->resource->classification));
		break;
	case POLICY_STEP_GRANT:
		if (d->grant)
			snprintf(buf, len, "%s", d->grant->id);
		break;
	default:
		break;
	}
	return buf;
}

static void
explain_text(const struct cfgset *set, const struct policy_decision *d,
    const struct offline_req *r)
{
	const struct policy *p = set->policy;
	char note[1200], ts[40];
	size_t i, n;
	int s;

	tz_format_utc_us(r->at_sec, r->at_nsec, ts, sizeof(ts));
	printf("request    %s %s\n", r->method, r->target);
	printf("at         %s (timezone %s)\n", ts, set->conf->timezone);
	printf("policy     revision \"%s\", sha256 %s\n", policy_revision(p),
	    policy_sha256(p));
	printf("\nsteps\n");
	for (s = 0; s < POLICY_NSTEPS; s++)
		printf("  %-12s %-12s %s\n",
		    policy_step_str((enum policy_step)s),
		    policy_outcome_str((enum policy_outcome)d->outcome[s]),
		    explain_step_note(p, d, r, (enum policy_step)s, note,
		        sizeof(note)));
	printf("\ndecision   %s, reason %s, status %d",
	    d->allow ? "allow" : "deny", policy_reason_str(d->reason),
	    d->status);
	if (d->grant)
		printf(", grant %s", d->grant->id);
	printf(" (step %s)\n", policy_step_str(d->step));
	if (!d->allow && d->detail)
		printf("why        %s\n", d->detail);
	if (d->suspension)
		printf("suspension %s: %s\n", d->suspension->id,
		    d->suspension->reason);
	if (d->mask)
		printf("mask       %s\n", d->mask->id);
	if (d->shadow)
		printf("shadow     %s would %s (%s)\n", d->shadow->id,
		    d->shadow_reason == POLICY_R_GRANT ? "allow" : "deny",
		    policy_reason_str(d->shadow_reason));
	n = d->ncandidates < POLICY_MAX_CANDIDATES ? d->ncandidates
	                                           : POLICY_MAX_CANDIDATES;
	if (n > 0) {
		printf("candidates\n");
		for (i = 0; i < n; i++)
			printf("  %-24s %s\n", d->cand[i].grant->id,
			    d->cand[i].reason == POLICY_R_GRANT
			        ? "all conditions hold"
			        : policy_reason_str(d->cand[i].reason));
		if (d->ncandidates > n)
			printf("  (%zu more)\n", d->ncandidates - n);
	}
}

static void
explain_json(const struct cfgset *set, const struct policy_decision *d,
    const struct offline_req *r)
{
	const struct policy *p = set->policy;
	char note[1200];
	size_t i, n;
	int s;

	printf("{\"decision\":\"%s\",\"reason\":\"%s\",\"status\":%d,",
	    d->allow ? "allow" : "deny", policy_reason_str(d->reason),
	    d->status);
	printf("\"department\":");
	offline_json_str(stdout, d->department ? d->department->id : NULL);
	printf(",\"resource\":");
	offline_json_str(stdout, d->resource ? d->resource->id : NULL);
	printf(",\"grant\":");
	offline_json_str(stdout, d->grant ? d->grant->id : NULL);
	printf(",\"step\":\"%s\",\"detail\":", policy_step_str(d->step));
	offline_json_str(stdout, d->allow ? NULL : d->detail);
	printf(",\"path\":");
	offline_json_str(stdout,
	    d->outcome[POLICY_STEP_PARSE] == POLICY_OUT_PASS ? r->norm : NULL);
	printf(",\"suspension\":");
	offline_json_str(stdout, d->suspension ? d->suspension->id : NULL);
	printf(",\"mask\":");
	offline_json_str(stdout, d->mask ? d->mask->id : NULL);
	printf(",\"shadow\":");
	if (d->shadow) {
		printf("{\"grant\":");
		offline_json_str(stdout, d->shadow->id);
		printf(",\"decision\":\"%s\",\"reason\":\"%s\"}",
		    d->shadow_reason == POLICY_R_GRANT ? "allow" : "deny",
		    policy_reason_str(d->shadow_reason));
	} else
		printf("null");
	printf(",\"policy\":{\"revision\":");
	offline_json_str(stdout, policy_revision(p));
	printf(",\"sha256\":\"%s\"},\"steps\":[", policy_sha256(p));
	for (s = 0; s < POLICY_NSTEPS; s++) {
		printf("%s{\"step\":\"%s\",\"outcome\":\"%s\",\"note\":",
		    s ? "," : "", policy_step_str((enum policy_step)s),
		    policy_outcome_str((enum policy_outcome)d->outcome[s]));
		offline_json_str(stdout,
		    explain_step_note(p, d, r, (enum policy_step)s, note,
		        sizeof(note)));
		printf("}");
	}
	printf("],\"candidates\":[");
	n = d->ncandidates < POLICY_MAX_CANDIDATES ? d->ncandidates
	                                           : POLICY_MAX_CANDIDATES;
	for (i = 0; i < n; i++) {
		printf("%s{\"grant\":", i ? "," : "");
		offline_json_str(stdout, d->cand[i].grant->id);
		printf(",\"reason\":\"%s\"}",
		    policy_reason_str(d->cand[i].reason));
	}
	printf("]}\n");
}

int
cmd_explain(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "cert", required_argument, NULL, 'C' },
		{ "from", required_argument, NULL, 'f' },
		{ "header", required_argument, NULL, 'H' },
		{ "at", required_argument, NULL, 'a' },
		{ "listener", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct offline_req r;
	struct policy_input in;
	struct policy_decision d;
	struct cfgset *set = NULL;
	struct diag dg;
	const char *config = NULL, *cert = NULL, *from = NULL, *at = NULL;
	const char *listener = NULL;
	char err[512], line[POLICY_MAX_PATH + 32];
	char **headers = NULL;
	size_t nheaders = 0, i;
	int ch, json = 0, ret = 2;
	const struct conf_listener *l = NULL;

	diag_init(&dg);
	offline_init(&r);
	headers = calloc((size_t)argc + 1, sizeof(*headers));
	if (headers == NULL)
		goto out;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+c:H:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'C':
			cert = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 'H':
			headers[nheaders++] = optarg;
			break;
		case 'a':
			at = optarg;
			break;
		case 'l':
			listener = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			explain_usage(stdout);
			ret = 0;
			goto out;
		default:
			explain_usage(stderr);
			goto out;
		}
	}
	if (config == NULL || argc - optind != 2) {
		explain_usage(stderr);
		goto out;
	}
	snprintf(line, sizeof(line), "%s %s", argv[optind], argv[optind + 1]);
	if (offline_set_request(&r, line, err, sizeof(err)) == -1)
		goto usage_err;
	for (i = 0; i < nheaders; i++)
		if (offline_add_header(&r, headers[i], err, sizeof(err)) == -1)
			goto usage_err;
	if (at != NULL && offline_set_at(&r, at, err, sizeof(err)) == -1)
		goto usage_err;
	if ((set = cfgset_load(config, NULL, r.at_sec, &dg)) == NULL) {
		diag_print(&dg, stderr);
		goto out;
	}
	if (listener == NULL)
		l = set->conf->nlisteners ? &set->conf->listeners[0] : NULL;
	for (i = 0; listener != NULL && i < set->conf->nlisteners; i++)
		if (strcmp(set->conf->listeners[i].name, listener) == 0)
			l = &set->conf->listeners[i];
	if (listener != NULL && l == NULL) {
		snprintf(err, sizeof(err), "no listener named \"%s\"",
		    listener);
		goto usage_err;
	}
	r.cert_optional =
	    l != NULL && l->tls.client_auth == CONF_CLIENT_AUTH_OPTIONAL;
	if (cert != NULL && strcmp(cert, "none") != 0 &&
	    offline_load_cert(&r, cert, err, sizeof(err)) == -1)
		goto usage_err;
	if (from != NULL &&
	    offline_set_from(&r, set->geo, from, err, sizeof(err)) == -1)
		goto usage_err;
	offline_input(&r, set->policy, &in);
	in.dry_run = 1;
	policy_decide(set->policy, &in, &d);
	if (json)
		explain_json(set, &d, &r);
	else
		explain_text(set, &d, &r);
	ret = d.allow ? 0 : 1;
	goto out;
usage_err:
	fprintf(stderr, "govgate explain: %s\n", err);
out:
	cfgset_free(set);
	offline_clear(&r);
	diag_clear(&dg);
	free(headers);
	return ret;
}
