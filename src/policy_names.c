/*
 * policy_names.c - the names of reason codes and sharing types (contract
 * section 4.1), one table for the policy engine, explain and the audit
 * records alike; apart from the engine, so that audit links without it.
 */
#include "config.h"

#include <string.h>

#include "policy.h"

static const char *const policy_reason_names[POLICY_NREASONS] = {
	[POLICY_R_NONE] = "none",
	[POLICY_R_OWNER] = "owner",
	[POLICY_R_OPEN] = "open",
	[POLICY_R_UNCONDITIONAL] = "unconditional",
	[POLICY_R_GRANT] = "grant",
	[POLICY_R_BAD_REQUEST] = "bad_request",
	[POLICY_R_NO_CLIENT_CERT] = "no_client_cert",
	[POLICY_R_UNKNOWN_DEPARTMENT] = "unknown_department",
	[POLICY_R_COUNTRY_BLOCKED] = "country_blocked",
	[POLICY_R_ZONE_MISMATCH] = "zone_mismatch",
	[POLICY_R_NO_RESOURCE] = "no_resource",
	[POLICY_R_SUSPENDED] = "suspended",
	[POLICY_R_NOT_SHARED] = "not_shared",
	[POLICY_R_INSUFFICIENT_CLEARANCE] = "insufficient_clearance",
	[POLICY_R_NO_GRANT] = "no_grant",
	[POLICY_R_GRANT_NOT_YET_VALID] = "grant_not_yet_valid",
	[POLICY_R_GRANT_EXPIRED] = "grant_expired",
	[POLICY_R_OUTSIDE_HOURS] = "outside_hours",
	[POLICY_R_METHOD_NOT_GRANTED] = "method_not_granted",
	[POLICY_R_PURPOSE_REQUIRED] = "purpose_required",
	[POLICY_R_PURPOSE_MISMATCH] = "purpose_mismatch",
	[POLICY_R_CASE_REQUIRED] = "case_required",
	[POLICY_R_RATE_LIMITED] = "rate_limited",
	[POLICY_R_CONNECTION_LIMIT] = "connection_limit",
	[POLICY_R_AUDIT_UNAVAILABLE] = "audit_unavailable",
};

const char *
policy_reason_str(enum policy_reason r)
{
	return (unsigned)r < POLICY_NREASONS ? policy_reason_names[r] : "?";
}

int
policy_reason_parse(const char *s, enum policy_reason *out)
{
	int i;

	for (i = 1; i < POLICY_NREASONS; i++) {
		if (strcmp(s, policy_reason_names[i]) == 0) {
			*out = (enum policy_reason)i;
			return 0;
		}
	}
	return -1;
}

const char *
policy_sharing_str(enum policy_sharing s)
{
	switch (s) {
	case POLICY_SHARE_OPEN:
		return "open";
	case POLICY_SHARE_UNCONDITIONAL:
		return "unconditional";
	case POLICY_SHARE_CONDITIONAL:
		return "conditional";
	case POLICY_SHARE_NONE:
		return "none";
	}
	return "?";
}
