/* The agent's state directory: its key pair, its registration, the last-known-good
 * configuration, what it applied, its status. Every file is mode 0600 and written atomically, so
 * a crash leaves the old file or the new one, never half of either. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/file.h"
#include "config/key.h"
#include "crypto/crypto.h"
#include "secureguard/sg_errors.h"

#define STATE_FILE_MAX (64u << 20)

int agent_state_dir(const char *dir, char *why, size_t n)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(why, n, "%s: %s", dir, strerror(errno));
		return SG_EIO;
	}
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(why, n, "%s: not a directory", dir);
		return SG_EIO;
	}
	/* Secrets live here: a directory others may write into is not ours to trust. */
	if (st.st_mode & 022) {
		snprintf(why, n, "%s: group or others may write to it (chmod 700)", dir);
		return SG_EPERM;
	}
	return 0;
}

int agent_state_write(const char *dir, const char *name, const char *data, size_t len)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return SG_EIO;
	return sg_file_replace(path, data, len, 0600) ? SG_EIO : 0;
}

int agent_state_write_json(const char *dir, const char *name, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	if (!s)
		return SG_ENOMEM;
	rc = agent_state_write(dir, name, s, strlen(s));
	sg_memzero(s, strlen(s)); /* configurations carry secrets */
	free(s);
	return rc;
}

static char *read_file(const char *path, size_t *len, char *why, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char *buf = NULL;
	size_t off = 0;

	if (fd < 0) {
		snprintf(why, n, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > STATE_FILE_MAX) {
		snprintf(why, n, "%s: not a regular file of at most 64 MiB", path);
		goto fail;
	}
	if (st.st_mode & 077) {
		snprintf(why, n, "%s: group or others may read it (chmod 600)", path);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(why, n, "out of memory");
		goto fail;
	}
	while (off < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	buf[off] = 0;
	close(fd);
	*len = off;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

json_t *agent_state_read_json(const char *dir, const char *name, char *why, size_t n)
{
	char path[4096];
	size_t len = 0;
	char *buf;
	json_error_t err;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	buf = read_file(path, &len, why, n);
	if (!buf)
		return NULL;
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (!j)
		snprintf(why, n, "%s: line %d: %s", path, err.line, err.text);
	sg_memzero(buf, len);
	free(buf);
	return j;
}

int agent_state_key(const char *dir, bool make, uint8_t priv[32], uint8_t pub[32], char *why,
		    size_t n)
{
	char path[4096], b64[SG_KEY_BASE64_LEN + 2];
	size_t len = 0;
	char *buf;
	int rc;

	snprintf(path, sizeof(path), "%s/agent.key", dir);
	buf = read_file(path, &len, why, n);
	if (buf) {
		while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
			buf[--len] = 0;
		rc = sg_key_from_base64(priv, buf, len);
		sg_memzero(buf, len);
		free(buf);
		if (rc) {
			snprintf(why, n, "%s: not a base64 X25519 private key", path);
			return SG_EPARSE;
		}
	} else if (!make) {
		return SG_ENOENT;
	} else {
		if (!sg_random_bytes(priv, 32)) {
			snprintf(why, n, "no randomness");
			return SG_ECRYPTO;
		}
		sg_x25519_clamp(priv);
		sg_key_to_base64(b64, priv);
		strcat(b64, "\n");
		rc = agent_state_write(dir, "agent.key", b64, strlen(b64));
		sg_memzero(b64, sizeof(b64));
		if (rc) {
			snprintf(why, n, "%s: cannot write", path);
			return rc;
		}
	}
	if (!sg_x25519_public(pub, priv)) {
		snprintf(why, n, "%s: the key does not give a public key", path);
		return SG_ECRYPTO;
	}
	return 0;
}
