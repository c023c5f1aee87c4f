/* gateway/version.h: popgate's version, and what `popgate -V` says about the libraries.
 *
 * The version is a fixed string, not `git describe`: a release tarball has no .git. Bump
 * POPGATE_VERSION here when tagging a release (it is in the start's log line and in -V). */
#ifndef POPGATE_VERSION_H
#define POPGATE_VERSION_H

#include <stdio.h>

#define POPGATE_VERSION "0.15.0"

/* Writes popgate's version, then each library it was built against (its header) and runs
 * with (the library loaded now, which a package upgrade may have changed): OpenSSL,
 * SQLite, libev, and inih, which reports no version. */
void gw_version_print(FILE *out);

#endif
