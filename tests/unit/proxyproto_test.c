/* proxyproto_test.c - PROXY protocol v1/v2 headers, good and bad. */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "proxyproto.h"
#include "tap.h"

struct row {
	const char *name;
	const char *in; /* v1 text */
	int want;       /* bytes, PROXYPROTO_PARTIAL or PROXYPROTO_ERROR */
	const char *src;
	int sport;
};

static const struct row v1[] = {
	{ "tcp4", "PROXY TCP4 10.30.4.21 10.0.0.1 53122 8443\r\nGET", 43,
	    "10.30.4.21", 53122 },
	{ "tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 1 443\r\n", 42,
	    "2001:db8::1", 1 },
	{ "port zero", "PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", 36, "1.2.3.4",
	    0 },
	{ "unknown", "PROXY UNKNOWN\r\n", 15, NULL, 0 },
	{ "unknown with addresses",
	    "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", 59,
	    NULL, 0 },
	{ "partial signature", "PROX", PROXYPROTO_PARTIAL, NULL, 0 },
	{ "partial line", "PROXY TCP4 10.30.4.21 10", PROXYPROTO_PARTIAL, NULL,
	    0 },
	{ "partial before LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r",
	    PROXYPROTO_PARTIAL, NULL, 0 },
	{ "not proxy", "GET / HTTP/1.1\r\n", PROXYPROTO_ERROR, NULL, 0 },
	{ "TLS instead", "\x16\x03\x01", PROXYPROTO_ERROR, NULL, 0 },
	{ "lower case", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXYPROTO_ERROR,
	    NULL, 0 },
	{ "bare LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", PROXYPROTO_ERROR, NULL,
	    0 },
	{ "two spaces", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", PROXYPROTO_ERROR,
	    NULL, 0 },
	{ "trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
	    PROXYPROTO_ERROR, NULL, 0 },
	{ "tab", "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", PROXYPROTO_ERROR, NULL,
	    0 },
	{ "missing port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", PROXYPROTO_ERROR,
	    NULL, 0 },
	{ "extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
	    PROXYPROTO_ERROR, NULL, 0 },
	{ "port too big", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
	    PROXYPROTO_ERROR, NULL, 0 },
	{ "port leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
	    PROXYPROTO_ERROR, NULL, 0 },
	{ "port sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", PROXYPROTO_ERROR,
	    NULL, 0 },
	{ "v6 address under TCP4", "PROXY TCP4 ::1 ::1 1 2\r\n",
	    PROXYPROTO_ERROR, NULL, 0 },
	{ "v4 address under TCP6", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
	    PROXYPROTO_ERROR, NULL, 0 },
	{ "octal-looking v4", "PROXY TCP4 010.1.1.1 5.6.7.8 1 2\r\n",
	    PROXYPROTO_ERROR, NULL, 0 },
	{ "short v4", "PROXY TCP4 10.1 5.6.7.8 1 2\r\n", PROXYPROTO_ERROR, NULL,
	    0 },
	{ "UDP4", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", PROXYPROTO_ERROR, NULL,
	    0 },
	{ "control byte", "PROXY TCP4 1.2.3.4\x01 5.6.7.8 1 2\r\n",
	    PROXYPROTO_ERROR, NULL, 0 },
	{ "too long without LF",
	    "PROXY UNKNOWN "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    PROXYPROTO_ERROR, NULL, 0 },
};

static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a,
	0x51, 0x55, 0x49, 0x54, 0x0a };

static size_t
v2(unsigned char *b, int vercmd, int fam, size_t alen, size_t tlv)
{
	size_t i, n = alen + tlv;

	memcpy(b, sig, 12);
	b[12] = (unsigned char)vercmd;
	b[13] = (unsigned char)fam;
	b[14] = (unsigned char)(n >> 8);
	b[15] = (unsigned char)n;
	for (i = 0; i < n; i++)
		b[16 + i] = (unsigned char)(i + 1);
	return 16 + n;
}

static void
check_src(const struct proxyproto_addr *a, const char *want, int port,
    const char *name)
{
	char buf[INET6_ADDRSTRLEN] = "";
	int got = -1;

	if (a->src.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)&a->src;

		inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf));
		got = ntohs(s->sin_port);
	} else if (a->src.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)&a->src;

		inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf));
		got = ntohs(s->sin6_port);
	}
	tap_ok(strcmp(buf, want) == 0, "%s: source address %s", name, buf);
	tap_ok(got == port, "%s: source port %d", name, got);
}

int
main(void)
{
	struct proxyproto_addr a;
	unsigned char b[2048];
	const char *why;
	size_t i, n, k;
	int rc;

	for (i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
		rc = proxyproto_parse((const unsigned char *)v1[i].in,
		    strlen(v1[i].in), &a, &why);
		tap_ok(rc == v1[i].want, "v1 %s: %d", v1[i].name, rc);
		if (rc == PROXYPROTO_ERROR)
			tap_ok(why != NULL, "v1 %s: says why", v1[i].name);
		if (rc > 0 && v1[i].src)
			check_src(&a, v1[i].src, v1[i].sport, v1[i].name);
		if (rc > 0 && !v1[i].src)
			tap_ok(a.local, "v1 %s: keeps the socket's address",
			    v1[i].name);
	}
	/* Every proper prefix of a good v1 line is PARTIAL. */
	for (k = 1; k < 43; k++) {
		rc = proxyproto_parse((const unsigned char *)v1[0].in, k, &a,
		    &why);
		if (rc != PROXYPROTO_PARTIAL)
			break;
	}
	tap_ok(k == 43, "v1: every prefix is partial (stopped at %zu)", k);

	/* v2 TCP4 with a TLV, then its prefixes. */
	n = v2(b, 0x21, 0x11, 12, 7);
	b[16] = 10, b[17] = 30, b[18] = 4, b[19] = 21;
	b[24] = 0xcf, b[25] = 0x42;
	rc = proxyproto_parse(b, n + 5, &a, &why);
	tap_ok(rc == (int)n, "v2 tcp4 with TLV: %d", rc);
	check_src(&a, "10.30.4.21", 0xcf42, "v2 tcp4");
	for (k = 1; k < n; k++)
		if (proxyproto_parse(b, k, &a, &why) != PROXYPROTO_PARTIAL)
			break;
	tap_ok(k == n, "v2: every prefix is partial (stopped at %zu)", k);
	n = v2(b, 0x21, 0x21, 36, 0);
	memset(b + 16, 0, 16);
	b[31] = 1;
	b[48] = 0, b[49] = 80;
	rc = proxyproto_parse(b, n, &a, &why);
	tap_ok(rc == (int)n, "v2 tcp6: %d", rc);
	check_src(&a, "::1", 80, "v2 tcp6");
	n = v2(b, 0x20, 0x00, 0, 0);
	rc = proxyproto_parse(b, n, &a, &why);
	tap_ok(rc == 16 && a.local, "v2 LOCAL keeps the socket's address");
	n = v2(b, 0x31, 0x11, 12, 0);
	tap_ok(proxyproto_parse(b, n, &a, &why) == PROXYPROTO_ERROR,
	    "v2 version 3 refused");
	n = v2(b, 0x22, 0x11, 12, 0);
	tap_ok(proxyproto_parse(b, n, &a, &why) == PROXYPROTO_ERROR,
	    "v2 command 2 refused");
	n = v2(b, 0x21, 0x12, 12, 0);
	tap_ok(proxyproto_parse(b, n, &a, &why) == PROXYPROTO_ERROR,
	    "v2 UDP refused");
	n = v2(b, 0x21, 0x31, 216, 0);
	tap_ok(proxyproto_parse(b, n, &a, &why) == PROXYPROTO_ERROR,
	    "v2 UNIX family refused");
	n = v2(b, 0x21, 0x11, 8, 0);
	tap_ok(proxyproto_parse(b, n, &a, &why) == PROXYPROTO_ERROR,
	    "v2 length too short for IPv4 addresses");
	n = v2(b, 0x21, 0x21, 12, 0);
	tap_ok(proxyproto_parse(b, n, &a, &why) == PROXYPROTO_ERROR,
	    "v2 length too short for IPv6 addresses");
	v2(b, 0x21, 0x11, 12, 0);
	b[14] = 0x04, b[15] = 0x00;
	tap_ok(proxyproto_parse(b, 16, &a, &why) == PROXYPROTO_ERROR,
	    "v2 header over the limit refused before it is read");
	memcpy(b, sig, 12);
	b[3] = 0x0b;
	tap_ok(proxyproto_parse(b, 12, &a, &why) == PROXYPROTO_ERROR,
	    "v2 bad signature");
	tap_ok(proxyproto_parse(b, 0, &a, &why) == PROXYPROTO_PARTIAL,
	    "empty input is partial");
	tap_done();
	tap_exit();
}
