/* gateway/uidl_tool.h: the offline UIDL tools, `popgate -c FILE uidl ...` (DESIGN.md "UIDLs
 * and the cache"): loading the UIDLs an old POP3 store knew (a CSV file) as pending rows,
 * matched to the IMAP messages at each user's first login; writing the cache out as the same
 * CSV; its totals; forgetting a user. They run by hand, beside a running gateway (SQLite's
 * WAL lets both use the file), as [server] user, and end: plain stdio, no event loop, no cache
 * thread. Not for: a live migration (the gateway reads the old server at the first login). */
#ifndef POPGATE_UIDL_TOOL_H
#define POPGATE_UIDL_TOOL_H

#include "config.h"

/* For popgate's usage text: the command lines, then what each does. */
#define GW_UIDL_USAGE \
	"       popgate -c FILE uidl import CSV\n" \
	"       popgate -c FILE uidl export [--user USER]\n" \
	"       popgate -c FILE uidl stats\n" \
	"       popgate -c FILE uidl forget USER\n"
#define GW_UIDL_HELP \
	"  uidl import   load old UIDLs from CSV (a file, or - for stdin; columns user,uidl,\n" \
	"                message_id,size), matched at each user's first login; all or nothing\n" \
	"  uidl export   the cache's UIDLs as the same CSV, to stdout\n" \
	"  uidl stats    users, rows, and pending rows (imported, not matched yet)\n" \
	"  uidl forget   remove all of a user's UIDLs\n"

enum gw_uidl_op { GW_UIDL_IMPORT, GW_UIDL_EXPORT, GW_UIDL_STATS, GW_UIDL_FORGET };

struct gw_uidl_cmd {
	enum gw_uidl_op op;
	const char *arg;	/* import: the file ("-": stdin); export: --user's value or NULL;
				   forget: the user; points into argv */
};

/* argv[0] is "uidl". 0, or -1 when the words are not a uidl command (the caller prints the
 * usage and exits 2). */
int gw_uidl_parse(int argc, char **argv, struct gw_uidl_cmd *cmd_r);

/* Runs cmd with cfg's [cache] path, [upstream] mailbox and [server] user: the exit status,
 * 0 (done; what it did on stdout) or 1 (failed; why on stderr, "popgate: ..."). An import
 * opens its file first, then becomes [server] user, then opens the cache. */
int gw_uidl_run(const struct gw_config *cfg, const struct gw_uidl_cmd *cmd);

#endif
