/* proxyproto.c - strict PROXY protocol v1/v2 header parsing (pure). */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <string.h>

#include "proxyproto.h"

static const unsigned char proxyproto_sig2[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00,
	0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
static const char proxyproto_sig1[] = "PROXY ";

/* A decimal port: "0" or 1-65535 without leading zeros. */
static int
proxyproto_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int
proxyproto_sa(int family, const char *s, size_t len, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *sslen)
{
	char buf[INET6_ADDRSTRLEN];
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	size_t i;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		        (family == AF_INET6 &&
		            ((s[i] >= 'a' && s[i] <= 'f') ||
		                (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':'))))
			return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1)
			return -1;
		*sslen = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
			return -1;
		*sslen = sizeof(*sin6);
	}
	return 0;
}

/* v1: "PROXY TCP4 src dst sport dport\r\n" or "PROXY UNKNOWN...\r\n". */
static int
proxyproto_v1(const unsigned char *buf, size_t len, struct proxyproto_addr *out,
    const char **why)
{
	const char *f[6], *s = (const char *)buf;
	size_t flen[6], i, n = 0, end, start;
	uint16_t sport, dport;
	int family;

	for (end = 0; end < len && end < PROXYPROTO_V1_MAX; end++)
		if (buf[end] == '\n')
			break;
	if (end == len) {
		if (len >= PROXYPROTO_V1_MAX) {
			*why = "PROXY v1 line too long";
			return PROXYPROTO_ERROR;
		}
		/* Only printable ASCII, spaces and a final CR may come. */
		for (i = 0; i < len; i++)
			if ((buf[i] < 0x20 || buf[i] > 0x7e) &&
			    !(buf[i] == '\r' && i == len - 1)) {
				*why = "PROXY v1 line holds a control byte";
				return PROXYPROTO_ERROR;
			}
		return PROXYPROTO_PARTIAL;
	}
	if (end == PROXYPROTO_V1_MAX || end == 0 || buf[end - 1] != '\r') {
		*why = "PROXY v1 line does not end in CRLF within 107 bytes";
		return PROXYPROTO_ERROR;
	}
	/* Split "PROXY a b c d e" on single spaces. */
	for (i = 6, start = 6; i <= end - 1; i++) {
		if (i < end - 1 && buf[i] != ' ') {
			if (buf[i] < 0x21 || buf[i] > 0x7e) {
				*why = "PROXY v1 line holds a control byte";
				return PROXYPROTO_ERROR;
			}
			continue;
		}
		if (n == 6 || i == start) {
			*why = "PROXY v1 fields are not single-space separated";
			return PROXYPROTO_ERROR;
		}
		f[n] = s + start;
		flen[n++] = i - start;
		start = i + 1;
	}
	memset(out, 0, sizeof(*out));
	out->version = 1;
	if (n >= 1 && flen[0] == 7 && memcmp(f[0], "UNKNOWN", 7) == 0) {
		out->local = 1;
		return (int)end + 1;
	}
	if (n != 5) {
		*why = "PROXY v1 line needs protocol, two addresses, two ports";
		return PROXYPROTO_ERROR;
	}
	if (flen[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
		family = AF_INET;
	else if (flen[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
		family = AF_INET6;
	else {
		*why = "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN";
		return PROXYPROTO_ERROR;
	}
	if (proxyproto_port(f[3], flen[3], &sport) == -1 ||
	    proxyproto_port(f[4], flen[4], &dport) == -1) {
		*why = "PROXY v1 port is not a number from 0 to 65535";
		return PROXYPROTO_ERROR;
	}
	if (proxyproto_sa(family, f[1], flen[1], sport, &out->src,
	        &out->srclen) == -1 ||
	    proxyproto_sa(family, f[2], flen[2], dport, &out->dst,
	        &out->dstlen) == -1) {
		*why = "PROXY v1 address does not match its protocol";
		return PROXYPROTO_ERROR;
	}
	return (int)end + 1;
}

/* v2: signature, version/command, family/protocol, length, addresses. */
static int
proxyproto_v2(const unsigned char *buf, size_t len, struct proxyproto_addr *out,
    const char **why)
{
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	size_t total, need;

	if (len < 16)
		return PROXYPROTO_PARTIAL;
	if ((buf[12] & 0xf0) != 0x20) {
		*why = "PROXY v2 version is not 2";
		return PROXYPROTO_ERROR;
	}
	if ((buf[12] & 0x0f) > 1) {
		*why = "PROXY v2 command is not LOCAL or PROXY";
		return PROXYPROTO_ERROR;
	}
	total = 16 + ((size_t)buf[14] << 8 | buf[15]);
	if (total > PROXYPROTO_V2_MAX) {
		*why = "PROXY v2 header too long";
		return PROXYPROTO_ERROR;
	}
	memset(out, 0, sizeof(*out));
	out->version = 2;
	if ((buf[12] & 0x0f) == 0) {
		/* LOCAL: the balancer's own connection (health checks). */
		if (len < total)
			return PROXYPROTO_PARTIAL;
		out->local = 1;
		return (int)total;
	}
	switch (buf[13]) {
	case 0x11: /* TCP over IPv4 */
		need = 12;
		break;
	case 0x21: /* TCP over IPv6 */
		need = 36;
		break;
	default:
		*why = "PROXY v2 family is not TCP over IPv4 or IPv6";
		return PROXYPROTO_ERROR;
	}
	if (total - 16 < need) {
		*why = "PROXY v2 length too short for its addresses";
		return PROXYPROTO_ERROR;
	}
	if (len < total)
		return PROXYPROTO_PARTIAL;
	/* TLVs after the addresses are bounded by total and ignored. */
	if (buf[13] == 0x11) {
		sin = (struct sockaddr_in *)&out->src;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, buf + 16, 4);
		memcpy(&sin->sin_port, buf + 24, 2);
		out->srclen = sizeof(*sin);
		sin = (struct sockaddr_in *)&out->dst;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, buf + 20, 4);
		memcpy(&sin->sin_port, buf + 26, 2);
		out->dstlen = sizeof(*sin);
	} else {
		sin6 = (struct sockaddr_in6 *)&out->src;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, buf + 16, 16);
		memcpy(&sin6->sin6_port, buf + 48, 2);
		out->srclen = sizeof(*sin6);
		sin6 = (struct sockaddr_in6 *)&out->dst;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, buf + 32, 16);
		memcpy(&sin6->sin6_port, buf + 50, 2);
		out->dstlen = sizeof(*sin6);
	}
	return (int)total;
}

int
proxyproto_parse(const unsigned char *buf, size_t len,
    struct proxyproto_addr *out, const char **why)
{
	size_t n;

	*why = NULL;
	if (len == 0)
		return PROXYPROTO_PARTIAL;
	if (buf[0] == 'P') {
		n = len < 6 ? len : 6;
		if (memcmp(buf, proxyproto_sig1, n) != 0)
			goto bad;
		if (len < 6)
			return PROXYPROTO_PARTIAL;
		return proxyproto_v1(buf, len, out, why);
	}
	if (buf[0] == 0x0d) {
		n = len < 12 ? len : 12;
		if (memcmp(buf, proxyproto_sig2, n) != 0)
			goto bad;
		if (len < 12)
			return PROXYPROTO_PARTIAL;
		return proxyproto_v2(buf, len, out, why);
	}
bad:
	*why = "no PROXY protocol header";
	return PROXYPROTO_ERROR;
}
