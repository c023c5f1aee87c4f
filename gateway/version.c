/* gateway/version.c: `popgate -V`; see version.h. Built-with and running versions are both
 * printed because a distribution upgrades a shared library without rebuilding popgate: a bug
 * report needs the one that ran. */
#include <ev.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <sqlite3.h>

#include "version.h"

void
gw_version_print(FILE *out)
{
	fprintf(out, "popgate %s\n", POPGATE_VERSION);
	fprintf(out, "OpenSSL: built with %s, running %s\n", OPENSSL_VERSION_TEXT,
	    OpenSSL_version(OPENSSL_VERSION));
	fprintf(out, "SQLite: built with %s, running %s\n", SQLITE_VERSION, sqlite3_libversion());
	fprintf(out, "libev: built with %d.%d, running %d.%d\n", EV_VERSION_MAJOR,
	    EV_VERSION_MINOR, ev_version_major(), ev_version_minor());
	/* ini.h has no version macro and the library no version call */
	fprintf(out, "inih: linked (it reports no version)\n");
}
