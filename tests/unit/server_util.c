/* Unit tests of the management server's helpers: prefixes and the address allocator, encodings,
 * the PNG writer's checksums, sealing private keys at rest, password hashes, input checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/cursor.h"
#include "server/srv_int.h"
#include "server/webauthn.h"

static void test_prefix_parse(void **state)
{
	struct srv_prefix p;
	const char *why;
	char out[64];

	(void)state;
	assert_int_equal(srv_prefix_parse(&p, "10.1.0.0/16", false, &why), 0);
	assert_int_equal(p.family, 4);
	assert_int_equal(p.len, 16);
	srv_prefix_format(out, &p);
	assert_string_equal(out, "10.1.0.0/16");
	assert_int_equal(srv_prefix_parse(&p, "fd00:0:0::/64", false, &why), 0);
	srv_prefix_format(out, &p);
	assert_string_equal(out, "fd00::/64"); /* canonical form */
	assert_int_equal(srv_prefix_parse(&p, "10.1.0.1/16", false, &why), SG_EPARSE);
	assert_non_null(strstr(why, "host bits"));
	assert_int_equal(srv_prefix_parse(&p, "10.1.0.1/16", true, &why), 0);
	srv_prefix_format(out, &p);
	assert_string_equal(out, "10.1.0.0/16");
	assert_int_equal(srv_prefix_parse(&p, "10.1.0.0/33", false, &why), SG_EPARSE);
	assert_int_equal(srv_prefix_parse(&p, "10.1.0.0/-1", false, &why), SG_EPARSE);
	assert_int_equal(srv_prefix_parse(&p, "10.1.0.0", false, &why), SG_EPARSE);
	assert_int_equal(srv_prefix_parse(&p, "10.1.0.0/", false, &why), SG_EPARSE);
	assert_int_equal(srv_prefix_parse(&p, "fd00::/129", false, &why), SG_EPARSE);
	assert_int_equal(srv_prefix_parse(&p, "bogus/8", false, &why), SG_EPARSE);
}

static void test_alloc_v4(void **state)
{
	struct srv_prefix p;
	const char *why;
	char out[64];
	char *used[] = {"10.0.0.1", "10.0.0.3", "10.9.9.9", "fd00::2", NULL};

	(void)state;
	assert_int_equal(srv_prefix_parse(&p, "10.0.0.0/30", false, &why), 0);
	/* /30: hosts .1 and .2 only (no network, no broadcast address). */
	assert_int_equal(srv_alloc_addr(out, &p, NULL, 0), 0);
	assert_string_equal(out, "10.0.0.1");
	assert_int_equal(srv_alloc_addr(out, &p, used, 1), 0);
	assert_string_equal(out, "10.0.0.2");
	{
		char *full[] = {"10.0.0.2", "10.0.0.1"};

		assert_int_equal(srv_alloc_addr(out, &p, full, 2), SG_EFULL);
	}
	assert_int_equal(srv_prefix_parse(&p, "10.0.0.0/24", false, &why), 0);
	/* Lowest free, ignoring addresses outside the prefix and of the other family. */
	assert_int_equal(srv_alloc_addr(out, &p, used, 5), 0);
	assert_string_equal(out, "10.0.0.2");
	{
		char *busy[254];
		char bufs[254][16];

		for (int i = 0; i < 254; i++) {
			snprintf(bufs[i], sizeof(bufs[i]), "10.0.0.%d", 254 - i);
			busy[i] = bufs[i];
		}
		assert_int_equal(srv_alloc_addr(out, &p, busy, 253), 0);
		assert_string_equal(out, "10.0.0.1");
		assert_int_equal(srv_alloc_addr(out, &p, busy, 254), SG_EFULL);
	}
}

static void test_alloc_v6(void **state)
{
	struct srv_prefix p;
	const char *why;
	char out[64];
	char *used[] = {"fd00:1::1", "fd00:1::2", "fd00:2::3"};

	(void)state;
	assert_int_equal(srv_prefix_parse(&p, "fd00:1::/64", false, &why), 0);
	assert_int_equal(srv_alloc_addr(out, &p, used, 3), 0);
	assert_string_equal(out, "fd00:1::3");
	assert_int_equal(srv_prefix_parse(&p, "fd00:1::100/120", false, &why), 0);
	assert_int_equal(srv_alloc_addr(out, &p, used, 3), 0);
	assert_string_equal(out, "fd00:1::101");
}

static void test_checksums(void **state)
{
	(void)state;
	/* CRC-32/ISO-HDLC check value (the "123456789" catalogue entry); Adler-32 of
	 * "Wikipedia" (RFC 1950's algorithm, a widely quoted example). */
	assert_int_equal(srv_crc32((const uint8_t *)"123456789", 9, 0), 0xcbf43926u);
	assert_int_equal(srv_adler32((const uint8_t *)"Wikipedia", 9), 0x11e60398u);
	assert_int_equal(srv_adler32(NULL, 0), 1);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_png(void **state)
{
	/* 9 x 2 image: checks row packing across a byte boundary. */
	uint8_t pix[18] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	size_t len = 0, off = 8;
	uint8_t *png = srv_png_write(pix, 9, 2, &len);
	const char *types[] = {"IHDR", "IDAT", "IEND"};

	(void)state;
	assert_non_null(png);
	assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
	for (int i = 0; i < 3; i++) {
		uint32_t n = rd32(png + off);

		assert_memory_equal(png + off + 4, types[i], 4);
		assert_int_equal(rd32(png + off + 8 + n), srv_crc32(png + off + 4, n + 4, 0));
		if (i == 0) {
			assert_int_equal(rd32(png + off + 8), 9);
			assert_int_equal(rd32(png + off + 12), 2);
		}
		if (i == 1) {
			const uint8_t *z = png + off + 8;
			/* zlib header, one final stored block of 2 rows x (1 filter + 2 data). */
			static const uint8_t raw[6] = {0, 0x7f, 0x00, 0, 0xff, 0x80};

			assert_int_equal(z[0], 0x78);
			assert_int_equal((z[0] << 8 | z[1]) % 31, 0);
			assert_int_equal(z[2], 1);
			assert_int_equal(z[3] | z[4] << 8, 6);
			assert_int_equal((z[5] | z[6] << 8) ^ 0xffff, 6);
			/* pixel 0 black (bit 0), 1..7 white; pixel 8 black, padding white. */
			assert_int_equal(z[7 + 1], 0x7f);
			assert_int_equal(z[7 + 2] & 0x80, 0);
			assert_memory_equal(z + 7 + 3, raw + 3, 3);
			assert_int_equal(rd32(z + 7 + 6), srv_adler32(z + 7, 6));
		}
		off += 12 + n;
	}
	assert_int_equal(off, len);
	free(png);
	assert_null(srv_png_write(pix, 0, 2, &len));
	png = srv_qr_png("secureguard", &len);
	assert_non_null(png);
	free(png);
}

static void test_base64(void **state)
{
	uint8_t in[5] = {0xfb, 0xff, 0x00, 0x10, 0x7e}, out[8];
	char s[16];

	(void)state;
	srv_b64url(s, in, 5);
	assert_string_equal(s, "-_8AEH4");
	assert_int_equal(srv_b64url_decode(out, sizeof(out), s, strlen(s)), 5);
	assert_memory_equal(out, in, 5);
	srv_b64(s, in, 5);
	assert_string_equal(s, "+/8AEH4=");
	assert_int_equal(srv_b64_decode(out, sizeof(out), s, strlen(s)), 5);
	assert_int_equal(srv_b64_decode(out, sizeof(out), "+/8AEH5=", 8), SG_EPARSE); /* pad bits */
	assert_int_equal(srv_b64url_decode(out, sizeof(out), "a+b", 3), SG_EPARSE);
	assert_int_equal(srv_b64url_decode(out, 2, "AAAAAA", 6), SG_ERANGE);
	/* One spelling per byte string: no padding in base64url, exact padding in base64, no
	 * characters outside the alphabet, zero trailing bits. */
	assert_int_equal(srv_b64url_decode(out, sizeof(out), "-_8AEH4=", 8), SG_EPARSE);
	assert_int_equal(srv_b64url_decode(out, sizeof(out), "-_8AEH4==", 9), SG_EPARSE);
	assert_int_equal(srv_b64url_decode(out, sizeof(out), "-_8AEH5", 7), SG_EPARSE);
	assert_int_equal(srv_b64url_decode(out, sizeof(out), "-_8AEH4 ", 8), SG_EPARSE);
	assert_int_equal(srv_b64url_decode(out, sizeof(out), "-_8A", 4), 3);
	assert_int_equal(srv_b64url_decode(out, sizeof(out), "-_8AE", 5), SG_EPARSE);
	assert_int_equal(srv_b64_decode(out, sizeof(out), "+/8AEH4", 7), SG_EPARSE);
	assert_int_equal(srv_b64_decode(out, sizeof(out), "+/8AEH4==", 9), SG_EPARSE);
	assert_int_equal(srv_b64_decode(out, sizeof(out), "+/8AEH==", 8), SG_EPARSE);
	assert_int_equal(srv_b64_decode(out, sizeof(out), "+/8AEA==", 8), 4);
	assert_int_equal(srv_b64_decode(out, sizeof(out), "+/8A====", 8), SG_EPARSE);
	assert_int_equal(srv_b64_decode(out, sizeof(out), "-_8AEH4=", 8), SG_EPARSE);
	assert_int_equal(srv_b64_decode(out, sizeof(out), "", 0), 0);
}

static void test_seal(void **state)
{
	struct srv s;
	char *blob, *back;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_true(sg_random_bytes(s.enc_key, sizeof(s.enc_key)));
	blob = srv_seal(&s, "private key text", "id-1", "classic");
	assert_non_null(blob);
	assert_null(strstr(blob, "private"));
	back = srv_open(&s, blob, "id-1", "classic");
	assert_string_equal(back, "private key text");
	srv_free_secret(back);
	/* Bound to its row and kind. */
	assert_null(srv_open(&s, blob, "id-2", "classic"));
	assert_null(srv_open(&s, blob, "id-1", "fips"));
	blob[10] ^= 1;
	assert_null(srv_open(&s, blob, "id-1", "classic"));
	assert_null(srv_open(&s, "v2:AAAA", "id-1", "classic"));
	free(blob);
}

static void test_passwords(void **state)
{
	char *a = srv_pw_hash("correct horse battery", false);
	char *f = srv_pw_hash("correct horse battery", true);

	(void)state;
	assert_non_null(a);
	assert_non_null(f);
	assert_memory_equal(a, "$argon2id$", 10);
	assert_memory_equal(f, "$pbkdf2-sha384$i=210000$", 24);
	assert_int_equal(srv_pw_check(a, "correct horse battery", true), 1);
	assert_int_equal(srv_pw_check(f, "correct horse battery", true), 1);
	assert_int_equal(srv_pw_check(a, "correct horse batterx", true), 0);
	assert_int_equal(srv_pw_check(f, "correct horse batterx", true), 0);
	assert_int_equal(srv_pw_check("$pbkdf2-sha384$i=1$AAAA$AAAA", "x", true), 0);
	assert_int_equal(srv_pw_check("plain", "plain", true), 0);
	free(a);
	free(f);
}

static void test_inputs(void **state)
{
	(void)state;
	assert_true(srv_valid_endpoint("hub.example.com:51820"));
	assert_true(srv_valid_endpoint("192.0.2.1:1"));
	assert_true(srv_valid_endpoint("[2001:db8::1]:443"));
	assert_false(srv_valid_endpoint("hub:0"));
	assert_false(srv_valid_endpoint("hub:65536"));
	assert_false(srv_valid_endpoint("hub"));
	assert_false(srv_valid_endpoint("[10.0.0.1]:80"));
	assert_false(srv_valid_endpoint("a b:80"));
	assert_false(srv_valid_endpoint(":80"));
	assert_true(srv_valid_text("name", 64, false));
	assert_false(srv_valid_text("", 64, false));
	assert_true(srv_valid_text("", 64, true));
	assert_false(srv_valid_text("a\nb", 64, false));
	assert_false(srv_valid_text("abc", 2, false));
	assert_int_equal(srv_role_parse("admin"), ROLE_ADMIN);
	assert_int_equal(srv_role_parse("root"), ROLE_NONE);
}

static void test_uuid_tokens(void **state)
{
	char a[SRV_ID_LEN + 1], b[SRV_ID_LEN + 1], t[64], h[97];

	(void)state;
	srv_uuid(a);
	srv_uuid(b);
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[14], '4');
	assert_true(strchr("89ab", a[19]) != NULL);
	assert_string_not_equal(a, b);
	srv_new_token(t, "sgk_");
	assert_int_equal(strlen(t), 47);
	srv_token_hash(h, t);
	assert_int_equal(strlen(h), 96);
}

/* Structural limits checked before a request body is parsed. */
static void test_json_prescan(void **state)
{
	char why[128], *deep, *wide;
	size_t n = 0;

	(void)state;
	{
		static const char ok[] = "{\"a\":[1,2,{\"b\":\"[[[[,,,\"}]}";

		assert_true(srv_json_prescan(ok, strlen(ok), why, sizeof(why)));
	}
	deep = malloc(200);
	assert_non_null(deep);
	for (int i = 0; i < 33; i++)
		deep[n++] = '[';
	for (int i = 0; i < 33; i++)
		deep[n++] = ']';
	assert_false(srv_json_prescan(deep, n, why, sizeof(why)));
	assert_non_null(strstr(why, "nested deeper than 32"));
	assert_true(srv_json_prescan(deep + 1, n - 2, why, sizeof(why))); /* 32 levels */
	free(deep);
	/* {"a":[{},{},...]} with 10000 elements: over the value count. */
	wide = malloc(8 + 3 * 10000);
	assert_non_null(wide);
	n = 0;
	memcpy(wide, "{\"a\":[", 6);
	n = 6;
	for (int i = 0; i < 10000; i++) {
		memcpy(wide + n, i ? ",{}" : "{}", i ? 3 : 2);
		n += i ? 3 : 2;
	}
	wide[n++] = ']';
	wide[n++] = '}';
	assert_false(srv_json_prescan(wide, n, why, sizeof(why)));
	assert_non_null(strstr(why, "more than 10000 values"));
	/* Escaped quotes do not end a string early. */
	{
		static const char esc[] = "{\"a\":\"\\\"[[[\"}";

		assert_true(srv_json_prescan(esc, strlen(esc), why, sizeof(why)));
	}
	free(wide);
}

/* Names and text (issue 20, item 11): invisible and control characters refused, no spaces at
 * the ends of a name, NFC, and the case-folded comparison key. */
/* RFC 6238 appendix B (SHA-1 rows, key "12345678901234567890"): the last 6 digits of the
 * 8-digit values, since the same truncated number mod 10^6 is the 6-digit code. */
static void test_totp(void **state)
{
	static const struct {
		uint64_t t;
		const char *code;
	} v[] = {{59, "287082"},	 {1111111109, "081804"}, {1111111111, "050471"},
		 {1234567890, "005924"}, {2000000000, "279037"}, {20000000000ULL, "353130"}};
	const uint8_t *key = (const uint8_t *)"12345678901234567890";
	char code[7], b32[SRV_TOTP_B32_LEN + 1], norm[SRV_RECOVERY_LEN + 1];
	uint8_t k[SRV_TOTP_KEY_LEN], k2[SRV_TOTP_KEY_LEN];

	(void)state;
	for (size_t i = 0; i < SG_ARRAY_LEN(v); i++) {
		assert_true(srv_totp_code(key, 20, v[i].t / 30, code));
		assert_string_equal(code, v[i].code);
	}
	/* The window: the code of the step before and after now, not two steps away; never a step
	 * at or before the last one used. */
	assert_true(srv_totp_code(key, 20, 1111111111 / 30 - 1, code));
	assert_int_equal(srv_totp_match(key, 20, code, 1111111111, 0), 1111111111 / 30 - 1);
	assert_int_equal(srv_totp_match(key, 20, code, 1111111111, 1111111111 / 30 - 1), 0);
	assert_true(srv_totp_code(key, 20, 1111111111 / 30 + 1, code));
	assert_int_equal(srv_totp_match(key, 20, code, 1111111111, 0), 1111111111 / 30 + 1);
	assert_true(srv_totp_code(key, 20, 1111111111 / 30 + 2, code));
	assert_int_equal(srv_totp_match(key, 20, code, 1111111111, 0), 0);
	assert_int_equal(srv_totp_match(key, 20, "05047", 1111111111, 0), 0);
	assert_int_equal(srv_totp_match(key, 20, "0504711", 1111111111, 0), 0);

	/* Base32 (RFC 4648 section 10 vectors, without padding) and the secret round trip. */
	sg_b32_encode(b32, (const uint8_t *)"foobar", 6);
	assert_string_equal(b32, "MZXW6YTBOI");
	sg_b32_encode(b32, (const uint8_t *)"f", 1);
	assert_string_equal(b32, "MY");
	sg_b32_encode(b32, key, 20);
	assert_string_equal(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	assert_true(srv_totp_secret(k, b32));
	assert_int_equal(strlen(b32), SRV_TOTP_B32_LEN);
	assert_int_equal(srv_totp_b32_decode(k2, b32), 0);
	assert_memory_equal(k, k2, sizeof(k));
	assert_int_equal(srv_totp_b32_decode(k2, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1"), SG_EPARSE);
	assert_int_equal(srv_totp_b32_decode(k2, "GEZDGNBV"), SG_EPARSE);

	/* Recovery codes: xxxx-xxxx-xxxx-xxxx; typed in capitals, without dashes or with spaces,
	 * they are the same code; anything else is not one. */
	assert_true(srv_recovery_code(norm));
	assert_int_equal(strlen(norm), SRV_RECOVERY_LEN);
	assert_true(norm[4] == '-' && norm[9] == '-' && norm[14] == '-');
	assert_true(srv_recovery_normalize(norm, "ABCD EFGH-ijkl mn23"));
	assert_string_equal(norm, "abcd-efgh-ijkl-mn23");
	assert_true(srv_recovery_normalize(norm, "abcdefghijklmn23"));
	assert_string_equal(norm, "abcd-efgh-ijkl-mn23");
	assert_false(srv_recovery_normalize(norm, "abcd-efgh-ijkl-mn2"));
	assert_false(srv_recovery_normalize(norm, "abcd-efgh-ijkl-mn234"));
	assert_false(srv_recovery_normalize(norm, "abcd-efgh-ijkl-mn28"));
	assert_false(srv_recovery_normalize(norm, "abcd-efgh-ijkl-mn2\xc3\xa9"));
}

static void test_text(void **state)
{
	const char *why = NULL;
	char *n;

	(void)state;
	assert_true(srv_text_check("office", true, &why));
	assert_true(srv_text_check("Büro Zürich", true, &why));
	assert_true(srv_text_check("d\xc3\xa9j\xc3\xa0 vu \xf0\x9f\x9a\x80", true, &why)); /* déjà vu 🚀 */
	assert_true(srv_text_check("", false, &why));
	assert_false(srv_text_check(" office", true, &why));
	assert_non_null(strstr(why, "space"));
	assert_false(srv_text_check("office ", true, &why));
	assert_false(srv_text_check("   ", true, &why));
	assert_false(srv_text_check("\xc2\xa0office", true, &why)); /* NO-BREAK SPACE first */
	assert_true(srv_text_check(" a description ", false, &why));
	assert_false(srv_text_check("a\xe2\x80\xae" "b", false, &why)); /* RIGHT-TO-LEFT OVERRIDE */
	assert_non_null(strstr(why, "invisible"));
	assert_false(srv_text_check("a\xe2\x80\x8b" "b", false, &why)); /* ZERO WIDTH SPACE */
	assert_false(srv_text_check("a\xe2\x81\xa6" "b", false, &why)); /* LEFT-TO-RIGHT ISOLATE */
	assert_false(srv_text_check("a\xc2\xad" "b", false, &why));	/* SOFT HYPHEN */
	assert_false(srv_text_check("a\x01" "b", false, &why));
	assert_false(srv_text_check("a\xee\x80\x80" "b", false, &why)); /* private use */
	assert_false(srv_text_check("a\xe2\x80\xa8" "b", false, &why)); /* LINE SEPARATOR */
	/* NFC: e + COMBINING ACUTE ACCENT becomes é. */
	n = srv_text_nfc("Cafe\xcc\x81");
	assert_string_equal(n, "Caf\xc3\xa9");
	free(n);
	/* The key: NFC and case-folded, so these three compare equal. */
	{
		char *a = srv_text_fold("VIEW@Example.COM"), *b = srv_text_fold("view@example.com");
		char *c = srv_text_fold("Caf\xc3\xa9"), *d = srv_text_fold("CAFE\xcc\x81");

		assert_string_equal(a, b);
		assert_string_equal(c, d);
		free(a);
		free(b);
		free(c);
		free(d);
	}
}

/* The relying party of passkeys from --public-url (docs/SERVER.md "Passkeys"), and the bounds
 * of the CBOR walk. */
static void test_webauthn(void **state)
{
	static const struct {
		const char *url, *origin, *rp;
	} ok[] = {
	    {"https://sg.example.com", "https://sg.example.com", "sg.example.com"},
	    {"https://SG.Example.com:443/console", "https://sg.example.com", "sg.example.com"},
	    {"https://sg.example.com:8443", "https://sg.example.com:8443", "sg.example.com"},
	    {"http://localhost:8080", "http://localhost:8080", "localhost"},
	    {"http://console.localhost", "http://console.localhost", "console.localhost"},
	};
	static const char *const bad[] = {"", "https://192.0.2.1", "https://[2001:db8::1]:8443",
					  "http://sg.example.com", "https://:443",
					  "https://sg.example.com:x"};
	char origin[256], rp[256], why[WA_WHY_LEN];
	const char *w;
	size_t len;
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_true(wa_relying_party(ok[i].url, origin, rp, &w));
		assert_string_equal(origin, ok[i].origin);
		assert_string_equal(rp, ok[i].rp);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(wa_relying_party(bad[i], origin, rp, &w));
		assert_non_null(w);
	}
	assert_false(wa_relying_party(NULL, origin, rp, &w));
	/* {1: [2, 3]} is 5 bytes at depth 2; one level less is refused. */
	assert_true(wa_cbor_walk((const uint8_t *)"\xa1\x01\x82\x02\x03\xff", 6, 2, &len, why,
				 sizeof(why)));
	assert_int_equal(len, 5);
	assert_false(wa_cbor_walk((const uint8_t *)"\xa1\x01\x82\x02\x03", 5, 1, &len, why,
				  sizeof(why)));
	assert_non_null(strstr(why, "deeper"));
	/* A map claiming more entries than there are bytes, a string running past the end, a tag,
	 * an indefinite length. */
	assert_false(wa_cbor_walk((const uint8_t *)"\xbb\xff\xff\xff\xff\xff\xff\xff\xff", 9, 4,
				  &len, why, sizeof(why)));
	assert_false(wa_cbor_walk((const uint8_t *)"\x58\x10\x00", 3, 4, &len, why, sizeof(why)));
	assert_false(wa_cbor_walk((const uint8_t *)"\xc0\x00", 2, 4, &len, why, sizeof(why)));
	assert_false(wa_cbor_walk((const uint8_t *)"\x5f\x40\xff", 3, 4, &len, why, sizeof(why)));
	assert_non_null(strstr(why, "byte 0"));
}

/* List cursors (cursor.c): a vector made by an independent implementation (Python's hmac,
 * tests/fuzz/corpus/cursor/uuid), round trips, and refusals of every kind of tampering. */
static void test_cursor(void **state)
{
	static const uint8_t key[SRV_CURSOR_KEY_LEN] = "fuzz cursor key, 32 bytes long!";
	static const uint8_t scope[] = "clients\0 AND network_id = $1";
	const char *vec = "AQAAAAAAACcQAAAAAAAAADIAAAGa-fJW-yQwYjljMmQ0ZS0xZjJhLTRiM2MtOGQ0ZS01ZjZhN2I4"
			  "YzlkMGUXnYCIn5br6umbIQm486TH";
	struct srv_cursor c, d = {.total = 3, .pos = 1, .key = 42};
	char enc[SRV_CURSOR_MAX + 1], bad[SRV_CURSOR_MAX + 2];
	const char *why = NULL;

	(void)state;
	assert_true(srv_cursor_decode(&c, key, scope, sizeof(scope), vec, &why));
	assert_int_equal(c.total, 10000);
	assert_int_equal(c.pos, 50);
	assert_int_equal(c.key, 1765130000123);
	assert_string_equal(c.id, "0b9c2d4e-1f2a-4b3c-8d4e-5f6a7b8c9d0e");
	assert_true(srv_cursor_encode(enc, key, scope, sizeof(scope), &c));
	assert_string_equal(enc, vec);
	assert_int_equal(strlen(enc), SRV_CURSOR_MAX); /* the longest: a UUID */

	/* An integer key alone (the logs), and each refusal names why. */
	assert_true(srv_cursor_encode(enc, key, scope, sizeof(scope), &d));
	assert_true(srv_cursor_decode(&c, key, scope, sizeof(scope), enc, &why));
	assert_true(c.total == 3 && c.pos == 1 && c.key == 42 && !c.id[0]);
	assert_false(srv_cursor_decode(&c, key, scope, sizeof(scope) - 1, enc, &why));
	assert_non_null(strstr(why, "filters"));
	assert_int_equal(c.key, 0); /* zeroed on refusal */
	for (size_t i = 0; i < strlen(enc); i++) {
		strcpy(bad, enc);
		bad[i] = bad[i] == 'x' ? 'y' : 'x';
		assert_false(srv_cursor_decode(&c, key, scope, sizeof(scope), bad, &why));
	}
	strcpy(bad, enc);
	bad[strlen(bad) - 1] = 0;
	assert_false(srv_cursor_decode(&c, key, scope, sizeof(scope), bad, &why));
	memset(bad, 'A', SRV_CURSOR_MAX + 1);
	bad[SRV_CURSOR_MAX + 1] = 0;
	assert_false(srv_cursor_decode(&c, key, scope, sizeof(scope), bad, &why));
	assert_non_null(strstr(why, "too long"));
	assert_false(srv_cursor_decode(&c, key, scope, sizeof(scope), "a+b/", &why));
	assert_non_null(strstr(why, "base64url"));
	assert_false(srv_cursor_decode(&c, key, scope, sizeof(scope), "", &why));

	/* What the server never writes is never encoded. */
	d.pos = -1;
	assert_false(srv_cursor_encode(enc, key, scope, sizeof(scope), &d));
	d.pos = 0;
	strcpy(d.id, "ABC");
	assert_false(srv_cursor_encode(enc, key, scope, sizeof(scope), &d));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefix_parse), cmocka_unit_test(test_alloc_v4),
	    cmocka_unit_test(test_alloc_v6),	 cmocka_unit_test(test_checksums),
	    cmocka_unit_test(test_png),		 cmocka_unit_test(test_base64),
	    cmocka_unit_test(test_seal),	 cmocka_unit_test(test_passwords),
	    cmocka_unit_test(test_inputs),	 cmocka_unit_test(test_uuid_tokens),
	    cmocka_unit_test(test_json_prescan), cmocka_unit_test(test_text),
	    cmocka_unit_test(test_totp),	 cmocka_unit_test(test_webauthn),
	    cmocka_unit_test(test_cursor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
