/* peer_test.c - certificate identity extraction, testing.md I01-I13. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "compat.h"
#include "peer.h"
#include "tap.h"

/*
 * Certificates come from $PEER_CERTS, which tests/unit/peer_test.sh fills
 * with certs/mkpki.sh and tests/unit/mkcerts_special.py, plus expect.txt:
 * one line per certificate, tab-separated, as the openssl CLI sees it:
 *
 *   path  serial  sha256  notAfter  subject  issuer
 *
 * serial without leading zeros, sha256 lower hex, notAfter ISO 8601 and
 * subject/issuer from -nameopt RFC2253,-esc_msb. A path followed by "!"
 * alone is a file the openssl CLI refuses to read.
 */

#define PEER_TEST_MAX_CHECKS 12
#define PEER_TEST_LINE_MAX 65536

enum peer_test_load {
	PT_OK = 0,  /* peer_from_cert returns 0 */
	PT_FAIL,    /* peer_from_cert returns -1 */
	PT_NOPARSE, /* OpenSSL itself will not decode the certificate */
};

/*
 * A check is a small string:
 *   s.OU=Finance  subject attribute OK with this exact value
 *   s.OU!         UNUSABLE          s.OU-   ABSENT
 *   s.OU#255      OK, this many bytes   (i. for the issuer)
 *   dn=... idn=... serial=...  exact strings
 *   dnpre=...     dn starts with this
 *   dntrunc, idntrunc   cut, ending in "..."
 *   uri0=... dns1=...   the kept SAN at that index
 *   nuri=N ndns=N over=N
 */
static const struct {
	const char *name;
	const char *file;
	enum peer_test_load load;
	const char *checks[PEER_TEST_MAX_CHECKS];
} cases[] = {
	/* testing.md "Identity -> department mapping tests". */
	{ "I01 baseline subject, issuer and SANs", "special/i01-baseline.crt",
	    PT_OK,
	    { "s.O=Test Gov", "s.OU=Finance", "s.CN=ledger-app", "s.L-",
	        "s.serialNumber-", "dn=CN=ledger-app,OU=Finance,O=Test Gov",
	        "nuri=1", "uri0=urn:test-gov:finance:ledger-app", "ndns=1",
	        "dns0=ledger-app.finance.test", "over=0" } },
	{ "I02 CN holding /OU=Admin stays in CN, OU is Finance",
	    "special/i02-slash.crt", PT_OK,
	    { "s.OU=Finance", "s.CN=x/OU=Admin",
	        "dn=CN=x/OU=Admin,OU=Finance,O=Test Gov" } },
	{ "I03 CN holding ,OU=Admin stays in CN, comma escaped in dn",
	    "special/i03-comma.crt", PT_OK,
	    { "s.OU=Finance", "s.CN=x,OU=Admin",
	        "dn=CN=x\\,OU=Admin,OU=Finance,O=Test Gov" } },
	{ "I04 two OU RDNs make OU unusable", "special/i04-two-ou.crt", PT_OK,
	    { "s.OU!", "s.O=Test Gov", "s.CN=two-ou",
	        "dn=CN=two-ou,OU=Finance,OU=Admin,O=Test Gov" } },
	{ "I04 OU twice in one multi-valued RDN is unusable",
	    "special/i04-mv-ou.crt", PT_OK,
	    { "s.OU!", "s.CN=mv-ou",
	        "dn=CN=mv-ou,OU=Finance+OU=Admin,O=Test Gov" } },
	{ "I05 OU with an embedded NUL is unusable, NUL escaped in dn",
	    "special/i05-nul.crt", PT_OK,
	    { "s.OU!", "s.CN=nul-ou",
	        "dn=CN=nul-ou,OU=Finance\\00Admin,O=Test Gov" } },
	{ "I06 lower case kept exactly", "special/i06-lower.crt", PT_OK,
	    { "s.OU=finance" } },
	{ "I06 upper case kept exactly", "special/i06-upper.crt", PT_OK,
	    { "s.OU=FINANCE" } },
	{ "I06 trailing space kept, escaped in dn",
	    "special/i06-trailing-space.crt", PT_OK,
	    { "s.OU=Finance ", "dn=CN=trailing,OU=Finance\\ ,O=Test Gov" } },
	{ "I06 leading space kept, escaped in dn",
	    "special/i06-leading-space.crt", PT_OK,
	    { "s.OU= Finance", "dn=CN=leading,OU=\\ Finance,O=Test Gov" } },
	{ "I06 fullwidth letter kept as UTF-8", "special/i06-fullwidth.crt",
	    PT_OK,
	    { "s.OU=\xef\xbc\xa6inance",
	        "dn=CN=fullwidth,OU=\xef\xbc\xa6inance,O=Test Gov" } },
	{ "I07 BMPString OU converted to UTF-8", "special/i07-bmp.crt", PT_OK,
	    { "s.OU=Finance", "dn=CN=bmp,OU=Finance,O=Test Gov" } },
	{ "I07 BMPString CJK O converted to UTF-8", "special/i07-bmp-cjk.crt",
	    PT_OK,
	    { "s.O=\xe5\x8d\x97\xe5\xae\x81\xe5\xb8\x82\xe8\xb4\xa2\xe6\x94\xbf"
	      "\xe5\xb1\x80",
	        "dn=CN=bmp-cjk,OU=Finance,O=\xe5\x8d\x97\xe5\xae\x81\xe5\xb8"
	        "\x82\xe8\xb4\xa2\xe6\x94\xbf\xe5\xb1\x80" } },
	{ "I07 TeletexString OU converted", "special/i07-teletex.crt", PT_OK,
	    { "s.OU=Finance" } },
	{ "I07 UniversalString OU converted", "special/i07-universal.crt",
	    PT_OK, { "s.OU=Finance" } },
	{ "I08 no OU: absent, the rest kept", "special/i08-no-ou.crt", PT_OK,
	    { "s.OU-", "s.O=Test Gov", "s.CN=no-ou" } },
	{ "I08 empty subject: all absent, dn empty, issuer kept",
	    "special/i08-empty-subject.crt", PT_OK,
	    { "s.CN-", "s.OU-", "s.O-", "s.L-", "s.ST-", "s.C-",
	        "s.serialNumber-", "dn=", "i.CN=Nanning E-Gov Department CA",
	        "nuri=1" } },
	{ "I09 issuer fields of a Police-issued Finance certificate",
	    "special/i09-police-issued.crt", PT_OK,
	    { "s.OU=Finance", "i.OU=Police", "i.CN=Police Sub-CA",
	        "i.O=Test Gov", "idn=CN=Police Sub-CA,OU=Police,O=Test Gov" } },
	{ "I09 issuer fields of a department CA certificate",
	    "special/i01-baseline.crt", PT_OK,
	    { "i.C=CN", "i.O=Nanning E-Gov", "i.CN=Nanning E-Gov Department CA",
	        "i.OU-",
	        "idn=CN=Nanning E-Gov Department CA,O=Nanning E-Gov,C=CN" } },
	{ "I12 8 KiB CN is unusable, dn bounded and marked",
	    "special/i12-long-cn.crt", PT_OK,
	    { "s.CN!", "s.OU=Finance", "dntrunc", "dnpre=CN=AAAAAAAA" } },
	{ "I13 CR/LF in CN: unusable, escaped in dn", "special/i13-crlf.crt",
	    PT_OK,
	    { "s.CN!",
	        "dn=CN=evil\\0D\\0AX-Govgate-Department: gongan,OU=Finance,"
	        "O=Test Gov" } },
	{ "I13 quotes kept in fields, escaped in dn", "special/i13-quote.crt",
	    PT_OK,
	    { "s.CN=say \"hi\"", "s.OU=Fin\"ance",
	        "dn=CN=say \\\"hi\\\",OU=Fin\\\"ance,O=Test Gov" } },
	{ "RFC 4514 specials escaped, '=' and inner '#' not",
	    "special/i13-specials.crt", PT_OK,
	    { "s.CN= #a+b;c<d>e\\f=g ",
	        "dn=CN=\\ #a\\+b\\;c\\<d\\>e\\\\f=g\\ ,OU=Finance,O=Test "
	        "Gov" } },

	/* The demo PKI's departments, as the example policy matches them. */
	{ "gongan subject O", "gongan.crt", PT_OK,
	    { "s.O=Nanning Public Security Bureau",
	        "s.CN=gongan-household-app" } },
	{ "renshe subject and SANs", "renshe.crt", PT_OK,
	    { "s.O=Nanning Human Resources and Social Security Bureau",
	        "s.OU=Information Center", "s.CN=renshe-pension-app", "s.C=CN",
	        "s.L=Nanning", "s.ST=Guangxi", "nuri=1",
	        "uri0=urn:nanning-egov:dept:renshe:renshe-pension-app",
	        "dns0=renshe-pension-app.egov.test",
	        "i.CN=Nanning E-Gov Department CA" } },
	{ "minzheng subject O", "minzheng.crt", PT_OK,
	    { "s.O=Nanning Civil Affairs Bureau" } },
	{ "weijian subject O", "weijian.crt", PT_OK,
	    { "s.O=Nanning Health Commission" } },
	{ "shichang subject O", "shichang.crt", PT_OK,
	    { "s.O=Nanning Market Regulation Administration" } },
	{ "budongchan subject O", "budongchan.crt", PT_OK,
	    { "s.O=Nanning Real Estate Registration Center" } },
	{ "dashuju subject O", "dashuju.crt", PT_OK,
	    { "s.O=Nanning Big Data Development Bureau" } },
	{ "gateway: DNS SANs kept, IP SANs ignored", "gateway.crt", PT_OK,
	    { "ndns=2", "dns0=gateway.test", "dns1=localhost", "nuri=0",
	        "over=0", "i.CN=Nanning E-Gov Server CA" } },

	/* SANs. */
	{ "more URIs than PEER_MAX_SAN: 8 kept, overflow",
	    "special/san-many.crt", PT_OK,
	    { "nuri=8", "uri0=urn:test:0", "uri7=urn:test:7", "ndns=3",
	        "dns2=h2.test", "over=1" } },
	{ "NUL in a URI SAN: dropped, overflow", "special/raw-san-nul.crt",
	    PT_OK, { "nuri=0", "over=1" } },
	{ "space in a URI SAN: dropped, overflow", "special/raw-san-space.crt",
	    PT_OK, { "nuri=0", "over=1" } },
	{ "non-ASCII in a URI SAN: dropped, overflow",
	    "special/raw-san-high.crt", PT_OK, { "nuri=0", "over=1" } },
	{ "duplicated SAN extension: none kept, overflow",
	    "special/raw-san-duplicate-ext.crt", PT_OK,
	    { "nuri=0", "ndns=0", "over=1" } },

	/* Serial numbers. */
	{ "serial 0x0A without its leading zero", "special/serial-small.crt",
	    PT_OK, { "serial=A" } },
	{ "serial 0x80AB without the DER sign octet",
	    "special/serial-high-bit.crt", PT_OK, { "serial=80AB" } },
	{ "serial zero is \"0\"", "special/raw-serial-zero.crt", PT_OK,
	    { "serial=0" } },
	{ "negative serial keeps its sign", "special/raw-serial-negative.crt",
	    PT_OK, { "serial=-7FFF" } },
	{ "20-octet serial", "special/raw-serial-20-octets.crt", PT_OK,
	    { "serial=7FEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE" } },
	{ "33-octet serial refused", "special/raw-serial-33-octets.crt",
	    PT_FAIL, { NULL } },

	/* Attribute values outside the profile. */
	{ "DEL in CN: unusable, escaped in dn", "special/raw-cn-del.crt", PT_OK,
	    { "s.CN!", "dn=CN=a\\7Fb,OU=Finance,O=Test Gov" } },
	{ "OU encoded as a SEQUENCE: unusable, DER hex in dn",
	    "special/raw-ou-sequence.crt", PT_OK,
	    { "s.OU!", "dn=CN=raw,OU=#3003020105,O=Test Gov" } },
	{ "OU of PEER_MAX_FIELD - 1 bytes fits", "special/raw-ou-255.crt",
	    PT_OK, { "s.OU#255" } },
	{ "OU of PEER_MAX_FIELD bytes is unusable", "special/raw-ou-256.crt",
	    PT_OK, { "s.OU!", "s.CN=raw" } },
	{ "issuer with two O: issuer O unusable, the rest kept",
	    "special/raw-issuer-two-o.crt", PT_OK,
	    { "i.O!", "i.CN=Nanning E-Gov Department CA", "s.O=Test Gov" } },
	{ "every field at its limit: arena fails closed",
	    "special/raw-arena-full.crt", PT_OK,
	    { "s.C#255", "s.CN#255", "s.serialNumber#255", "i.C#255",
	        "i.serialNumber#255", "nuri=0", "over=1", "dntrunc",
	        "idntrunc" } },

	/* What OpenSSL 3 refuses to decode never reaches peer_from_cert. */
	{ "invalid UTF-8 in a UTF8String is not decoded",
	    "special/raw-ou-bad-utf8.crt", PT_NOPARSE, { NULL } },
	{ "overlong UTF-8 is not decoded", "special/raw-ou-overlong.crt",
	    PT_NOPARSE, { NULL } },
	{ "BMPString surrogate is not decoded",
	    "special/raw-ou-bmp-surrogate.crt", PT_NOPARSE, { NULL } },
	{ "odd-length BMPString is not decoded", "special/raw-ou-bmp-odd.crt",
	    PT_NOPARSE, { NULL } },
	{ "invalid UTF-8 in CN is not decoded",
	    "special/raw-cn-invalid-utf8.crt", PT_NOPARSE, { NULL } },
};

static const char *peer_test_dir;

/* Read a PEM certificate from the test directory, or NULL. */
static X509 *
pt_load(const char *file)
{
	char path[4096];
	BIO *bio = NULL;
	X509 *x = NULL;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", peer_test_dir,
	        file) >= sizeof(path))
		return NULL;
	if ((bio = BIO_new_file(path, "r")) == NULL)
		goto out;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
out:
	BIO_free(bio);
	ERR_clear_error();
	return x;
}

static int
pt_utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0, k, j;
	uint32_t c;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf)
			k = 2, c = s[i] & 0x1f;
		else if (s[i] >= 0xe0 && s[i] <= 0xef)
			k = 3, c = s[i] & 0x0f;
		else if (s[i] >= 0xf0 && s[i] <= 0xf4)
			k = 4, c = s[i] & 0x07;
		else
			return 0;
		if (n - i < k)
			return 0;
		for (j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
		    (k == 4 && (c < 0x10000 || c > 0x10ffff)))
			return 0;
		i += k;
	}
	return 1;
}

/*
 * A DN fit for a header or a JSON line: bounded, no control bytes, valid
 * UTF-8, and every '"' escaped by an odd run of backslashes.
 */
static int
pt_dn_safe(const struct peer *p, struct peer_str s, const char **why)
{
	const char *d = peer_str(p, s);
	size_t i, bs = 0;

	*why = "ok";
	if (s.len > PEER_MAX_DN - 1 || strlen(d) != s.len) {
		*why = "length";
		return 0;
	}
	for (i = 0; i < s.len; i++) {
		if ((unsigned char)d[i] < 0x20 || d[i] == 0x7f) {
			*why = "control byte";
			return 0;
		}
		if (d[i] == '"' && bs % 2 == 0) {
			*why = "unescaped quote";
			return 0;
		}
		bs = d[i] == '\\' ? bs + 1 : 0;
	}
	if (!pt_utf8_ok((const unsigned char *)d, s.len)) {
		*why = "invalid UTF-8";
		return 0;
	}
	return 1;
}

static int
pt_is_cut(const struct peer *p, struct peer_str s)
{
	return s.len >= 3 && memcmp(peer_str(p, s) + s.len - 3, "...", 3) == 0;
}

/* Run one check string against p; one TAP line. */
static void
pt_check(const char *row, const struct peer *p, const char *chk)
{
	const struct peer_name *pn;
	enum peer_attr a;
	char attr[32];
	const char *rest, *v;
	size_t n;
	int idx;

	if ((chk[0] == 's' || chk[0] == 'i') && chk[1] == '.') {
		pn = chk[0] == 's' ? &p->subject : &p->issuer;
		n = strcspn(chk + 2, "=!-#");
		if (n >= sizeof(attr)) {
			tap_ok(0, "%s: bad check \"%s\"", row, chk);
			return;
		}
		memcpy(attr, chk + 2, n);
		attr[n] = '\0';
		rest = chk + 2 + n;
		if (peer_attr_parse(attr, &a) == -1) {
			tap_ok(0, "%s: bad attribute in \"%s\"", row, chk);
			return;
		}
		switch (rest[0]) {
		case '=':
			if (tap_ok(pn->state[a] == PEER_ATTR_OK, "%s: %s OK",
			        row, chk))
				tap_streq(peer_str(p, pn->val[a]), rest + 1,
				    "%s: %s value", row, chk);
			break;
		case '#':
			tap_ok(pn->state[a] == PEER_ATTR_OK &&
			        pn->val[a].len == (size_t)atoi(rest + 1) &&
			        strlen(peer_str(p, pn->val[a])) ==
			            pn->val[a].len,
			    "%s: %s", row, chk);
			break;
		case '!':
			tap_ok(pn->state[a] == PEER_ATTR_UNUSABLE &&
			        pn->val[a].len == 0,
			    "%s: %s unusable", row, chk);
			break;
		case '-':
			tap_ok(pn->state[a] == PEER_ATTR_ABSENT &&
			        pn->val[a].len == 0,
			    "%s: %s absent", row, chk);
			break;
		default:
			tap_ok(0, "%s: bad check \"%s\"", row, chk);
		}
		return;
	}
	if (strncmp(chk, "dn=", 3) == 0) {
		tap_streq(peer_str(p, p->dn), chk + 3, "%s: dn", row);
	} else if (strncmp(chk, "idn=", 4) == 0) {
		tap_streq(peer_str(p, p->issuer_dn), chk + 4, "%s: issuer dn",
		    row);
	} else if (strncmp(chk, "dnpre=", 6) == 0) {
		tap_ok(strncmp(peer_str(p, p->dn), chk + 6, strlen(chk + 6)) ==
		        0,
		    "%s: dn starts \"%s\"", row, chk + 6);
	} else if (strcmp(chk, "dntrunc") == 0) {
		tap_ok(pt_is_cut(p, p->dn), "%s: dn cut with \"...\"", row);
	} else if (strcmp(chk, "idntrunc") == 0) {
		tap_ok(pt_is_cut(p, p->issuer_dn),
		    "%s: issuer dn cut with \"...\"", row);
	} else if (strncmp(chk, "serial=", 7) == 0) {
		tap_streq(peer_str(p, p->serial), chk + 7, "%s: serial", row);
	} else if (strncmp(chk, "nuri=", 5) == 0) {
		tap_ok(p->n_san_uri == atoi(chk + 5), "%s: %s (got %d)", row,
		    chk, p->n_san_uri);
	} else if (strncmp(chk, "ndns=", 5) == 0) {
		tap_ok(p->n_san_dns == atoi(chk + 5), "%s: %s (got %d)", row,
		    chk, p->n_san_dns);
	} else if (strncmp(chk, "over=", 5) == 0) {
		tap_ok(p->san_overflow == atoi(chk + 5), "%s: %s", row, chk);
	} else if ((strncmp(chk, "uri", 3) == 0 ||
	               strncmp(chk, "dns", 3) == 0) &&
	    chk[3] >= '0' && chk[3] <= '9' && chk[4] == '=') {
		idx = chk[3] - '0';
		if (chk[0] == 'u')
			v = idx < p->n_san_uri ? peer_str(p, p->san_uri[idx])
			                       : NULL;
		else
			v = idx < p->n_san_dns ? peer_str(p, p->san_dns[idx])
			                       : NULL;
		tap_streq(v, chk + 5, "%s: %.4s", row, chk);
	} else {
		tap_ok(0, "%s: unknown check \"%s\"", row, chk);
	}
}

static void
pt_cases(void)
{
	struct peer *p;
	char err[256];
	X509 *x;
	size_t i, j;
	int rc;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return;
	for (i = 0; i < nitems(cases); i++) {
		x = pt_load(cases[i].file);
		if (cases[i].load == PT_NOPARSE) {
			tap_ok(x == NULL, "%s", cases[i].name);
			X509_free(x);
			continue;
		}
		if (!tap_ok(x != NULL, "%s: %s loads", cases[i].name,
		        cases[i].file))
			continue;
		err[0] = '\0';
		rc = peer_from_cert(x, p, err, sizeof(err));
		X509_free(x);
		if (cases[i].load == PT_FAIL) {
			tap_ok(rc == -1 && err[0] != '\0' && !p->present &&
			        p->arena_used == 0,
			    "%s: -1, \"%s\", nothing kept", cases[i].name, err);
			continue;
		}
		if (!tap_ok(rc == 0 && p->present, "%s: extracted",
		        cases[i].name))
			tap_diag("error: %s", err);
		for (j = 0; j < PEER_TEST_MAX_CHECKS && cases[i].checks[j]; j++)
			pt_check(cases[i].name, p, cases[i].checks[j]);
	}
	free(p);
}

/* Seconds since the epoch of "YYYY-MM-DD HH:MM:SSZ", or -1. */
static int64_t
pt_iso_time(const char *s)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	        &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	return (int64_t)t;
}

/* Whether row file is expected to fail peer_from_cert. */
static int
pt_expected_fail(const char *file)
{
	size_t i;

	for (i = 0; i < nitems(cases); i++)
		if (strcmp(cases[i].file, file) == 0 &&
		    cases[i].load == PT_FAIL)
			return 1;
	return 0;
}

/*
 * Compare a rendered dn with openssl's: equal, or when ours was cut, a
 * prefix of it.
 */
static void
pt_dn_vs_openssl(const char *file, const char *what, const struct peer *p,
    struct peer_str s, const char *want)
{
	const char *got = peer_str(p, s);
	const char *why = NULL;
	int safe;

	safe = pt_dn_safe(p, s, &why);
	tap_ok(safe, "%s: %s safe for headers and JSON (%s)", file, what, why);
	if (pt_is_cut(p, s))
		tap_ok(strncmp(got, want, s.len - 3) == 0,
		    "%s: cut %s is a prefix of openssl's", file, what);
	else
		tap_streq(got, want, "%s: %s as openssl renders it", file,
		    what);
}

/* One expect.txt line: every certificate checked against the CLI. */
static void
pt_expect_line(char *line, struct peer *p)
{
	char *f[6], *rest = line, err[256];
	X509 *x;
	int n, rc;

	line[strcspn(line, "\n")] = '\0';
	for (n = 0; n < 6; n++)
		f[n] = strsep(&rest, "\t");
	x = pt_load(f[0]);
	if (f[1] != NULL && strcmp(f[1], "!") == 0) {
		tap_ok(x == NULL, "%s: refused by openssl x509 and by d2i",
		    f[0]);
		X509_free(x);
		return;
	}
	if (!tap_ok(f[5] != NULL, "%s: expect.txt line has 6 fields", f[0])) {
		X509_free(x);
		return;
	}
	if (!tap_ok(x != NULL, "%s: loads", f[0]))
		return;
	err[0] = '\0';
	rc = peer_from_cert(x, p, err, sizeof(err));
	X509_free(x);
	if (pt_expected_fail(f[0])) {
		tap_ok(rc == -1, "%s: refused (%s)", f[0], err);
		return;
	}
	if (!tap_ok(rc == 0, "%s: extracted", f[0])) {
		tap_diag("error: %s", err);
		return;
	}
	tap_streq(peer_str(p, p->serial), f[1], "%s: serial as openssl", f[0]);
	tap_streq(peer_str(p, p->sha256), f[2], "%s: sha256 as openssl", f[0]);
	tap_ok(p->not_after == pt_iso_time(f[3]), "%s: notAfter %s", f[0],
	    f[3]);
	pt_dn_vs_openssl(f[0], "dn", p, p->dn, f[4]);
	pt_dn_vs_openssl(f[0], "issuer dn", p, p->issuer_dn, f[5]);
	tap_ok(p->arena_used <= PEER_ARENA, "%s: arena within bounds", f[0]);
}

static void
pt_expect_file(void)
{
	char path[4096], *line = NULL;
	struct peer *p = NULL;
	FILE *fp = NULL;
	int lines = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/expect.txt",
	        peer_test_dir) >= sizeof(path))
		goto out;
	if (!tap_ok((fp = fopen(path, "r")) != NULL, "expect.txt opens"))
		goto out;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (line = malloc(PEER_TEST_LINE_MAX)) == NULL)
		goto out;
	while (fgets(line, PEER_TEST_LINE_MAX, fp) != NULL) {
		pt_expect_line(line, p);
		lines++;
	}
	tap_ok(lines >= 40, "expect.txt lists %d certificates", lines);
out:
	if (fp != NULL)
		fclose(fp);
	free(line);
	free(p);
}

/* I10: a re-issued certificate keeps the subject, not the serial. */
static void
pt_reissue(void)
{
	struct peer *a = NULL, *b = NULL;
	char err[256];
	X509 *xa = NULL, *xb = NULL;

	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (b = calloc(1, sizeof(*b))) == NULL)
		goto out;
	xa = pt_load("special/i10-a.crt");
	xb = pt_load("special/i10-b.crt");
	if (!tap_ok(xa != NULL && xb != NULL &&
	            peer_from_cert(xa, a, err, sizeof(err)) == 0 &&
	            peer_from_cert(xb, b, err, sizeof(err)) == 0,
	        "I10 both certificates extracted"))
		goto out;
	tap_streq(peer_str(a, a->dn), peer_str(b, b->dn),
	    "I10 same subject dn");
	tap_streq(peer_str(a, a->subject.val[PEER_ATTR_OU]), "Finance",
	    "I10 first maps to OU Finance");
	tap_streq(peer_str(b, b->subject.val[PEER_ATTR_OU]), "Finance",
	    "I10 second maps to OU Finance");
	tap_ok(strcmp(peer_str(a, a->serial), peer_str(b, b->serial)) != 0,
	    "I10 serials differ (%s, %s)", peer_str(a, a->serial),
	    peer_str(b, b->serial));
	tap_ok(strcmp(peer_str(a, a->sha256), peer_str(b, b->sha256)) != 0,
	    "I10 fingerprints differ");
out:
	X509_free(xa);
	X509_free(xb);
	free(a);
	free(b);
}

static void
pt_attr_names(void)
{
	static const char *names[PEER_NATTRS] = { "CN", "OU", "O", "L", "ST",
		"C", "serialNumber" };
	static const char *bad[] = { "", "cn", "Cn", "CN ", "OU=", "E",
		"serialnumber", "SN", "commonName" };
	enum peer_attr a;
	size_t i;

	for (i = 0; i < PEER_NATTRS; i++) {
		tap_ok(peer_attr_parse(names[i], &a) == 0 && a == i,
		    "attr \"%s\" parses to %zu", names[i], i);
		tap_streq(peer_attr_name((enum peer_attr)i), names[i],
		    "attr %zu is named \"%s\"", i, names[i]);
	}
	for (i = 0; i < nitems(bad); i++)
		tap_ok(peer_attr_parse(bad[i], &a) == -1,
		    "attr \"%s\" is not a match field", bad[i]);
	tap_streq(peer_attr_name(PEER_NATTRS), "?", "out of range name");
}

static void
pt_put(void)
{
	struct peer *p;
	struct peer_str s, first;
	char chunk[1000];
	int i, ok = 1;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return;
	tap_ok(peer_put(p, "abc", 3, &first) == 0 && first.len == 3 &&
	        strcmp(peer_str(p, first), "abc") == 0 && p->arena_used == 4,
	    "put copies and terminates");
	tap_ok(peer_put(p, "x", 0, &s) == 0 && s.len == 0 &&
	        strcmp(peer_str(p, s), "") == 0 && p->arena_used == 4,
	    "put of nothing takes no room");
	tap_ok(peer_put(p, "a\0b", 3, &s) == -1 && s.len == 0 &&
	        p->arena_used == 4,
	    "put refuses an embedded NUL");
	memset(chunk, 'z', sizeof(chunk));
	for (i = 0; i < 4; i++)
		ok &= peer_put(p, chunk, sizeof(chunk), &s) == 0;
	tap_ok(ok && p->arena_used == 4 + 4 * 1001, "four 1000-byte puts fit");
	tap_ok(peer_put(p, chunk, 87, &s) == 0 && p->arena_used == PEER_ARENA,
	    "a put that ends exactly at the arena's end fits");
	tap_ok(peer_put(p, "q", 1, &s) == -1 && s.len == 0,
	    "put into a full arena fails");
	tap_streq(peer_str(p, first), "abc", "earlier strings intact");
	free(p);
}

static void
pt_serial_canon(void)
{
	static const struct {
		const char *in;
		const char *want; /* NULL: -1 */
	} rows[] = {
		{ "3F8A21", "3F8A21" },
		{ "3f8a21", "3F8A21" },
		{ "0A", "A" },
		{ "000A", "A" },
		{ "0", "0" },
		{ "00", "0" },
		{ "-0", "0" },
		{ "-7fff", "-7FFF" },
		{ "-007FFF", "-7FFF" },
		{ "0a:3f", "A3F" },
		{ "75:DD:4F", "75DD4F" },
		{ "", NULL },
		{ "-", NULL },
		{ ":", NULL },
		{ ":0A", NULL },
		{ "0A:", NULL },
		{ "0A::3F", NULL },
		{ "0x3F", NULL },
		{ "3G", NULL },
		{ " 3F", NULL },
		{ "3F ", NULL },
		{ "--3F", NULL },
		{ "123456789012345678901234567890123456789012345678901234567890"
		  "1234",
		    "1234567890123456789012345678901234567890123456789012345678"
		    "901234" },
		{ "123456789012345678901234567890123456789012345678901234567890"
		  "12345",
		    NULL },
	};
	char out[2 * PEER_SERIAL_MAX_OCTETS + 2], small[3];
	const char *got = out;
	size_t i;
	int rc;

	for (i = 0; i < nitems(rows); i++) {
		rc = peer_serial_canon(rows[i].in, out, sizeof(out));
		if (rows[i].want == NULL)
			tap_ok(rc == -1, "serial \"%s\" refused", rows[i].in);
		else if (tap_ok(rc == 0, "serial \"%s\" accepted", rows[i].in))
			tap_streq(got, rows[i].want, "serial \"%s\" canonical",
			    rows[i].in);
	}
	tap_ok(peer_serial_canon("ABC", small, sizeof(small)) == -1,
	    "serial longer than out refused");
	tap_ok(peer_serial_canon("AB", small, sizeof(small)) == 0 &&
	        strcmp(small, "AB") == 0,
	    "serial exactly filling out");
	tap_ok(peer_serial_canon("0", small, 1) == -1, "out of one byte");
}

static void
pt_null_cert(void)
{
	struct peer *p;
	char err[128] = "";

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return;
	p->present = 1;
	tap_ok(peer_from_cert(NULL, p, err, sizeof(err)) == -1 && !p->present &&
	        err[0] != '\0',
	    "NULL certificate: -1, \"%s\", struct cleared", err);
	free(p);
}

int
main(void)
{
	pt_attr_names();
	pt_put();
	pt_serial_canon();
	pt_null_cert();
	peer_test_dir = getenv("PEER_CERTS");
	if (peer_test_dir == NULL || peer_test_dir[0] == '\0') {
		tap_diag("PEER_CERTS not set: certificate tests skipped "
		         "(run tests/unit/peer_test.sh)");
	} else {
		pt_cases();
		pt_reissue();
		pt_expect_file();
	}
	tap_done();
	tap_exit();
}
