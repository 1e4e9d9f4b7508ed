/* Capability reduction with raw prctl/capset; see privs.h. */
#include "net/privs.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const int kept_caps[] = {CAP_NET_ADMIN, CAP_NET_BIND_SERVICE};

static bool cap_kept(int cap)
{
	for (size_t i = 0; i < sizeof(kept_caps) / sizeof(kept_caps[0]); i++)
		if (kept_caps[i] == cap)
			return true;
	return false;
}

int privs_no_dump(void)
{
	return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : -errno;
}

/* Remembers the first failing step; later steps still run, each one narrows what is left. */
static void note(int *err, const char **why, const char *step)
{
	if (*err == 0) {
		*err = -errno;
		*why = step;
	}
}

int privs_drop(const char **why)
{
	int err = 0;

	/* Bounding set first: dropping from it needs CAP_SETPCAP, which goes last. The kernel
	 * answers EINVAL past its last capability. */
	for (int cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
			break;
		if (!cap_kept(cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
			note(&err, why, "PR_CAPBSET_DROP");
			break;
		}
	}
	/* uid 0 would regain the full set on execve; NOROOT stops that (and is locked). */
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED, 0, 0, 0) != 0)
		note(&err, why, "PR_SET_SECUREBITS");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
		note(&err, why, "PR_CAP_AMBIENT_CLEAR_ALL");

	/* Keep the kept capabilities we actually hold: capset cannot add to the permitted set. */
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct cur[_LINUX_CAPABILITY_U32S_3], next[_LINUX_CAPABILITY_U32S_3];
	memset(&hdr, 0, sizeof(hdr));
	memset(cur, 0, sizeof(cur));
	memset(next, 0, sizeof(next));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &hdr, cur) != 0) {
		note(&err, why, "capget");
	} else {
		for (size_t i = 0; i < sizeof(kept_caps) / sizeof(kept_caps[0]); i++) {
			int cap = kept_caps[i];
			uint32_t bit = 1u << (cap % 32);
			next[cap / 32].permitted |= cur[cap / 32].permitted & bit;
			next[cap / 32].effective |= cur[cap / 32].permitted & bit;
		}
		hdr.version = _LINUX_CAPABILITY_VERSION_3;
		hdr.pid = 0;
		if (syscall(SYS_capset, &hdr, next) != 0)
			note(&err, why, "capset");
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		note(&err, why, "PR_SET_NO_NEW_PRIVS");
	return err;
}
