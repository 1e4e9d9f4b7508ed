/* Password hashing for admin users.
 *
 * Default: argon2id (RFC 9106) with the OWASP minimum parameters m = 19 MiB, t = 2, p = 1, in
 * libargon2's PHC string format. When settings.fips_required is on, argon2 is not an approved
 * algorithm, so new hashes use PBKDF2-HMAC-SHA-384 (SP 800-132) with 210000 iterations and a
 * 16-byte salt: "$pbkdf2-sha384$i=210000$<salt b64>$<hash b64>". Verification accepts both, so
 * turning the setting on or off never locks anyone out.
 *
 * PBKDF2 comes from the crypto module (sg_pbkdf2_sha384), so with a FIPS provider it is the
 * provider's (docs/FIPS.md).
 */
#include <argon2.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"
#include "server/srv_int.h"

#define ARGON_T	    2
#define ARGON_M	    19456
#define ARGON_P	    1
#define PBKDF2_ITER 210000
#define SALT_LEN    16
#define HASH_LEN    32
#define PBKDF2_LEN  48

static char *pbkdf2_hash(const char *pw, const uint8_t salt[SALT_LEN], unsigned iter)
{
	uint8_t h[PBKDF2_LEN];
	char s64[32], h64[72], *out;

	if (!sg_pbkdf2_sha384(h, sizeof(h), pw, strlen(pw), salt, SALT_LEN, iter))
		return NULL;
	srv_b64(s64, salt, SALT_LEN);
	srv_b64(h64, h, sizeof(h));
	sg_memzero(h, sizeof(h));
	out = malloc(160);
	if (out)
		snprintf(out, 160, "$pbkdf2-sha384$i=%u$%s$%s", iter, s64, h64);
	return out;
}

/* Password hashing is deliberately slow and memory-hungry; run concurrently without bound it
 * starves every other request of CPU (and argon2id of memory). At most one hash per online core
 * runs at a time; the rest wait their turn without holding anything else (callers release their
 * database connection first). */
static sem_t hash_slots;
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static bool hash_slots_ok;
/* Logins waiting for a slot hold a request worker each (httpd.c): unbounded, a brute force from
 * many addresses would take every worker and stall every other request behind password hashing.
 * So at most hash_waiting_max wait (srv_pw_limit_waiting); the others get 429 at once. Logins
 * from sources the account never logged in from (a brute force's) count apart, against half the
 * bound, so they cannot take the turns of a known source (the owner's usual address). */
static atomic_int hash_waiting[2]; /* [known] */
static atomic_int hash_waiting_max = 64;
static void hash_slots_init(void);

void srv_pw_limit_waiting(int n)
{
	atomic_store(&hash_waiting_max, n < 1 ? 1 : n);
}

/* slot_take, unless too many are waiting already: false then. */
static bool slot_take_bounded(bool known)
{
	int max = atomic_load(&hash_waiting_max);

	pthread_once(&hash_once, hash_slots_init);
	if (!hash_slots_ok || !sem_trywait(&hash_slots))
		return true;
	if (!known)
		max = max / 2 > 1 ? max / 2 : 1;
	if (atomic_fetch_add(&hash_waiting[known], 1) >= max) {
		atomic_fetch_sub(&hash_waiting[known], 1);
		return false;
	}
	while (sem_wait(&hash_slots) != 0)
		; /* EINTR */
	atomic_fetch_sub(&hash_waiting[known], 1);
	return true;
}

static void hash_slots_init(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	hash_slots_ok = sem_init(&hash_slots, 0, (unsigned)(n < 1 ? 1 : n > 256 ? 256 : n)) == 0;
}

static void slot_take(void)
{
	pthread_once(&hash_once, hash_slots_init);
	if (hash_slots_ok) {
		while (sem_wait(&hash_slots) != 0)
			; /* EINTR */
	}
}

static void slot_give(void)
{
	if (hash_slots_ok)
		sem_post(&hash_slots);
}

static char *pw_hash(const char *password, bool fips);
static bool pw_verify(const char *encoded, const char *password);

char *srv_pw_hash(const char *password, bool fips)
{
	char *out;

	slot_take();
	out = pw_hash(password, fips);
	slot_give();
	return out;
}

/* Password hashes verified since start: what /metrics shows, and what tests use to see that a
 * refused login (unknown account, locked, disabled) cost a hash too, without timing it. */
static _Atomic unsigned long long pw_checks;

unsigned long long srv_pw_checks(void)
{
	return atomic_load(&pw_checks);
}

int srv_pw_check(const char *encoded, const char *password, bool known)
{
	bool ok;

	if (!slot_take_bounded(known))
		return SG_EAGAIN;
	ok = pw_verify(encoded, password);
	atomic_fetch_add(&pw_checks, 1);
	slot_give();
	return ok;
}

static char *pw_hash(const char *password, bool fips)
{
	uint8_t salt[SALT_LEN];
	char *out;
	size_t len;

	if (!sg_random_bytes(salt, sizeof(salt)))
		return NULL;
	if (fips)
		return pbkdf2_hash(password, salt, PBKDF2_ITER);
	len = argon2_encodedlen(ARGON_T, ARGON_M, ARGON_P, SALT_LEN, HASH_LEN, Argon2_id);
	out = malloc(len);
	if (out && argon2id_hash_encoded(ARGON_T, ARGON_M, ARGON_P, password, strlen(password),
					 salt, SALT_LEN, HASH_LEN, out, len) != ARGON2_OK) {
		free(out);
		out = NULL;
	}
	return out;
}

static bool pw_verify(const char *encoded, const char *password)
{
	if (!strncmp(encoded, "$argon2id$", 10))
		return argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
	if (!strncmp(encoded, "$pbkdf2-sha384$i=", 17)) {
		unsigned iter;
		char s64[32];
		uint8_t salt[SALT_LEN + 2];
		char *again;
		bool ok;

		if (sscanf(encoded + 17, "%u$%31[^$]$", &iter, s64) != 2 || iter < 1000 ||
		    iter > 10000000 ||
		    srv_b64_decode(salt, sizeof(salt), s64, strlen(s64)) != SALT_LEN)
			return false;
		again = pbkdf2_hash(password, salt, iter);
		if (!again)
			return false;
		ok = strlen(again) == strlen(encoded) && sg_memeq(again, encoded, strlen(encoded));
		srv_free_secret(again);
		return ok;
	}
	return false;
}
