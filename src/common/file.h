#ifndef SG_COMMON_FILE_H
#define SG_COMMON_FILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Replaces the file at path with data, or leaves the old file as it was.
 *
 * The bytes go to "path.tmp.PID" (opened with O_NOFOLLOW, mode set with fchmod since a stale
 * temporary file would keep its old mode under O_TRUNC), are fsync'd, and the temporary file is
 * renamed over path; then the directory is fsync'd so that the rename itself survives a crash.
 * On any failure the temporary file is removed and path is untouched.
 *
 * Returns 0, or the errno value of the step that failed (ENAMETOOLONG for a path that does not
 * fit). Used for every small state file we keep: agents' and gateways' last-known-good
 * configs, wg-quick's saved config, the CRL number, token files.
 */
int sg_file_replace(const char *path, const void *data, size_t len, mode_t mode);

#endif
