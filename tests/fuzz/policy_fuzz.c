/*
 * policy_fuzz.c - fuzz the policy loader and, when a policy loads, the
 * decision pipeline on a few fixed requests.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "fuzz.h"
#include "peer.h"
#include "policy.h"
#include "tz.h"

static const char *const policy_fuzz_requests[] = {
	"GET /psb/v1/persons/1",
	"GET /a/b/c",
	"POST /open/x",
	"GET /",
	"GET /a/../b/%41",
};

static void
policy_fuzz_decide(const struct policy *p)
{
	struct policy_input in;
	struct policy_decision d;
	struct peer id;
	char norm[64];
	const char *sp;
	size_t i;

	memset(&id, 0, sizeof(id));
	id.present = 1;
	peer_put(&id, "HR", 2, &id.subject.val[PEER_ATTR_O]);
	id.subject.state[PEER_ATTR_O] = PEER_ATTR_OK;
	peer_put(&id, "A", 1, &id.serial);
	for (i = 0; i < sizeof(policy_fuzz_requests) / sizeof(char *); i++) {
		memset(&in, 0, sizeof(in));
		sp = strchr(policy_fuzz_requests[i], ' ');
		in.method = policy_fuzz_requests[i];
		in.method_len = (size_t)(sp - in.method);
		in.path = sp + 1;
		in.path_len = strlen(in.path);
		in.peer = &id;
		in.country = "CN";
		in.zone = "hr-net";
		in.purpose = "p";
		in.purpose_len = 1;
		in.now_sec = 1795572000;
		in.norm = norm;
		in.normsz = sizeof(norm);
		policy_decide(p, &in, &d);
		if (d.allow && d.resource == NULL && d.reason != POLICY_R_OPEN)
			abort(); /* an allow always names its resource */
		if (d.status == 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_env env;
	struct policy *p;
	struct tz *zone;
	struct diag dg;
	char path[] = "/tmp/policy_fuzz.XXXXXX", err[128];
	int fd;

	if (size > 65536)
		return 0;
	if ((zone = tz_load("UTC", err, sizeof(err))) == NULL)
		abort();
	if ((fd = mkstemp(path)) == -1)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	memset(&env, 0, sizeof(env));
	env.tz = zone;
	env.now = 1795572000;
	env.have_country_db = env.have_zone_db = 1;
	diag_init(&dg);
	p = policy_load(path, &env, &dg);
	unlink(path);
	if (p == NULL && dg.nerrors == 0)
		abort(); /* a refusal always says why */
	if (p != NULL)
		policy_fuzz_decide(p);
	policy_unref(p);
	diag_clear(&dg);
	tz_free(zone);
	return 0;
}
