/* gateway/uidl_tool.c: `popgate -c FILE uidl import|export|stats|forget`; see uidl_tool.h.
 *
 * The CSV (RFC 4180, common/csv.h) has a header row naming its columns in any order:
 * user, uidl, message_id and size are required; date, from and subject may be there (an
 * export of an old store often has them) and are not used for matching; any other column is
 * a mistake. An import is one transaction: a line that is wrong names itself, and nothing of
 * the file is kept. The file's order is each user's matching order (cache_add_pending()),
 * so rows go in file order, a user's consecutive rows in batches. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../common/cache.h"
#include "../common/content_key.h"
#include "../common/csv.h"
#include "../pop3/pop3_sasl.h"
#include "privileges.h"
#include "uidl_tool.h"

#define WAIT_MS 10000		/* a write waits this long for another writer's lock */
#define IMPORT_BATCH 1024	/* a user's rows handed to cache_add_pending() at once */
#define PROGRESS_EVERY 100000	/* rows between two progress lines on stderr */
#define READ_CHUNK 65536
#define USER_MAX POP3_SASL_FIELD_MAX	/* longer: no login could name the user */
#define NO_MSGID SIZE_MAX

enum col { C_USER, C_UIDL, C_MSGID, C_SIZE, C_DATE, C_FROM, C_SUBJECT, NCOL };
#define NREQUIRED 4	/* the columns before C_DATE */

static const char *const col_name[NCOL] = {
	[C_USER] = "user", [C_UIDL] = "uidl", [C_MSGID] = "message_id", [C_SIZE] = "size",
	[C_DATE] = "date", [C_FROM] = "from", [C_SUBJECT] = "subject",
};

int
gw_uidl_parse(int argc, char **argv, struct gw_uidl_cmd *cmd_r)
{
	memset(cmd_r, 0, sizeof(*cmd_r));
	if (argc < 2 || strcmp(argv[0], "uidl") != 0)
		return -1;
	if (strcmp(argv[1], "import") == 0 && argc == 3) {
		cmd_r->op = GW_UIDL_IMPORT;
		cmd_r->arg = argv[2];
	} else if (strcmp(argv[1], "export") == 0 && argc == 2) {
		cmd_r->op = GW_UIDL_EXPORT;
	} else if (strcmp(argv[1], "export") == 0 && argc == 4 && strcmp(argv[2], "--user") == 0) {
		cmd_r->op = GW_UIDL_EXPORT;
		cmd_r->arg = argv[3];
	} else if (strcmp(argv[1], "export") == 0 && argc == 3 &&
	    strncmp(argv[2], "--user=", 7) == 0) {
		cmd_r->op = GW_UIDL_EXPORT;
		cmd_r->arg = argv[2] + 7;
	} else if (strcmp(argv[1], "stats") == 0 && argc == 2) {
		cmd_r->op = GW_UIDL_STATS;
	} else if (strcmp(argv[1], "forget") == 0 && argc == 3) {
		cmd_r->op = GW_UIDL_FORGET;
		cmd_r->arg = argv[2];
	} else {
		return -1;
	}
	if (cmd_r->arg != NULL && cmd_r->arg[0] == '\0')
		return -1;
	return 0;
}

/* --- waiting for the gateway's lock ---------------------------------------------------- */

struct waiter {
	const char *path;
	struct timespec start;
	bool said;
};

static int64_t
elapsed_ms(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* After a failed cache call: try again? Yes while another connection holds the lock (the
 * gateway records a login in a few milliseconds; another import may take longer), for up to
 * WAIT_MS, saying so once. */
static bool
wait_again(struct waiter *w, struct cache *c)
{
	struct timespec pause = { 0, 50 * 1000000 };

	if (!cache_busy(c))
		return false;
	if (w->start.tv_sec == 0 && w->start.tv_nsec == 0)
		clock_gettime(CLOCK_MONOTONIC, &w->start);
	if (elapsed_ms(&w->start) >= WAIT_MS)
		return false;
	if (!w->said) {
		fprintf(stderr, "popgate: cache %s is locked by another writer: waiting up to %d s\n",
		    w->path, WAIT_MS / 1000);
		w->said = true;
	}
	nanosleep(&pause, NULL);
	return true;
}

/* --- import ----------------------------------------------------------------------------- */

struct import {
	const struct gw_config *cfg;
	struct cache *c;
	const char *name;		/* the file, as messages name it */
	int col[NCOL];			/* [column] its field, -1: absent */
	size_t ncols;
	/* The batch: consecutive rows of one user, in file order. */
	char user[USER_MAX];		/* gw_config_user_key() form */
	size_t n;
	struct {
		size_t uidl, msgid;	/* offsets of NUL-terminated strings in text; msgid
					   NO_MSGID: none */
		uint64_t size;
	} row[IMPORT_BATCH];
	struct cache_pending pending[IMPORT_BATCH];
	struct buf text;
	void *users;			/* tsearch() tree of the users of the file */
	uint64_t nusers, rows, added;
	char error[400];
};

static int __attribute__((format(printf, 2, 3)))
bad(struct import *im, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(im->error, sizeof(im->error), fmt, ap);
	va_end(ap);
	return -1;
}

/* A field's bytes for a message: at most 60, anything outside printable ASCII as '?'. */
static const char *
shown(const struct slice *s, char out[64])
{
	size_t n = s->len < 60 ? s->len : 60, i;

	for (i = 0; i < n; i++)
		out[i] = s->p[i] >= 0x20 && s->p[i] < 0x7f ? (char)s->p[i] : '?';
	if (s->len > n)
		out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
	return out;
}

static bool
is_blank(const struct csv_record *rec)
{
	return rec->n == 1 && rec->field[0].len == 0;
}

static int
import_header(struct import *im, const struct csv_record *rec)
{
	char tmp[64];

	for (size_t k = 0; k < NCOL; k++)
		im->col[k] = -1;
	for (size_t f = 0; f < rec->n; f++) {
		const struct slice *s = &rec->field[f];
		size_t k;

		for (k = 0; k < NCOL; k++)
			if (s->len == strlen(col_name[k]) &&
			    strncasecmp((const char *)s->p, col_name[k], s->len) == 0)
				break;
		if (k == NCOL)
			return bad(im, "unknown column \"%s\" (the columns are user, uidl, "
			    "message_id and size, and may be date, from and subject)", shown(s, tmp));
		if (im->col[k] >= 0)
			return bad(im, "column \"%s\" twice", col_name[k]);
		im->col[k] = (int)f;
	}
	for (size_t k = 0; k < NREQUIRED; k++)
		if (im->col[k] < 0)
			return bad(im, "no column \"%s\": the header row must name user, uidl, "
			    "message_id and size", col_name[k]);
	im->ncols = rec->n;
	return 0;
}

static int
flush(struct import *im, const char **error_r)
{
	const char *base = (const char *)buf_data(&im->text);
	size_t added;

	if (im->n == 0)
		return 0;
	for (size_t i = 0; i < im->n; i++) {
		im->pending[i].uidl = base + im->row[i].uidl;
		im->pending[i].ckey = NULL;
		im->pending[i].msgid = im->row[i].msgid == NO_MSGID ? NULL : base + im->row[i].msgid;
		im->pending[i].size = im->row[i].size;
	}
	if (cache_add_pending(im->c, im->user, gw_config_mailbox(im->cfg, im->user), im->pending, im->n, &added,
	    error_r) < 0)
		return -1;
	im->added += added;
	im->n = 0;
	buf_reset(&im->text);
	return 0;
}

static int
cmp_user(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The batch's user becomes `user`. 0, or -1 with *error_r (a cache failure). */
static int
switch_user(struct import *im, const char *user, const char **error_r)
{
	char *copy;
	void *node;
	bool rows;

	if (flush(im, error_r) < 0)
		return -1;
	snprintf(im->user, sizeof(im->user), "%s", user);
	if ((copy = strdup(user)) == NULL || (node = tsearch(copy, &im->users, cmp_user)) == NULL) {
		free(copy);
		*error_r = "out of memory";
		return -1;
	}
	if (*(char **)node != copy) {
		free(copy);		/* seen before */
		return 0;
	}
	im->nusers++;
	if (cache_user_has_rows(im->c, user, gw_config_mailbox(im->cfg, user), &rows, error_r) < 0)
		return -1;
	if (rows)
		fprintf(stderr, "popgate: %s has logged in through popgate already: his client "
		    "knows popgate's UIDLs, the file's are not imported for him\n", user);
	return 0;
}

static int
parse_size(const struct slice *s, uint64_t *size_r)
{
	uint64_t v = 0;

	if (s->len == 0)
		return -1;
	for (size_t i = 0; i < s->len; i++) {
		unsigned d = (unsigned)s->p[i] - '0';

		if (d > 9 || v > ((uint64_t)INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*size_r = v;
	return 0;
}

/* One data row. 0; -1 with im->error (the row is wrong); -2 with *error_r (the cache). */
static int
import_row(struct import *im, const struct csv_record *rec, const char **error_r)
{
	const struct slice *user = &rec->field[im->col[C_USER]];
	const struct slice *uidl = &rec->field[im->col[C_UIDL]];
	const struct slice *msgid = &rec->field[im->col[C_MSGID]];
	const struct slice *size = &rec->field[im->col[C_SIZE]];
	char name[USER_MAX], key[USER_MAX], id[CONTENT_MSGID_MAX], tmp[64];
	uint64_t bytes;
	size_t len;

	if (rec->n != im->ncols)
		return bad(im, "%zu fields, the header row has %zu", rec->n, im->ncols);
	if (user->len == 0)
		return bad(im, "no user");
	if (user->len >= sizeof(name))
		return bad(im, "user longer than %zu octets", sizeof(name) - 1);
	if (memchr(user->p, '\0', user->len) || memchr(user->p, '\r', user->len) ||
	    memchr(user->p, '\n', user->len))
		return bad(im, "user \"%s\" holds a NUL, CR or LF (no login can)", shown(user, tmp));
	memcpy(name, user->p, user->len);
	name[user->len] = '\0';
	gw_config_user_key(im->cfg, name, key, sizeof(key));
	if (uidl->len < 1 || uidl->len >= CACHE_UIDL_MAX)
		return bad(im, "uidl \"%s\" is not a UIDL (1 to 70 characters)", shown(uidl, tmp));
	for (size_t i = 0; i < uidl->len; i++)
		if (uidl->p[i] < 0x21 || uidl->p[i] > 0x7e)
			return bad(im, "uidl \"%s\" is not a UIDL (no space or control character, "
			    "ASCII only: RFC 1939 §7)", shown(uidl, tmp));
	if (memchr(msgid->p, '\0', msgid->len))
		return bad(im, "message_id holds a NUL");
	/* Empty, or longer than the cache keeps: matched by size (content_key.h). */
	len = content_msgid_normalize((const char *)msgid->p, msgid->len, id);
	if (parse_size(size, &bytes) < 0)
		return bad(im, "size \"%s\" is not a number of octets", shown(size, tmp));
	if ((im->n == IMPORT_BATCH || strcmp(key, im->user) != 0) &&
	    switch_user(im, key, error_r) < 0)
		return -2;
	im->row[im->n].uidl = buf_len(&im->text);
	buf_append(&im->text, uidl->p, uidl->len);
	buf_append(&im->text, "", 1);
	im->row[im->n].msgid = NO_MSGID;
	if (len > 0) {
		im->row[im->n].msgid = buf_len(&im->text);
		buf_append(&im->text, id, len + 1);
	}
	if (im->text.failed) {
		*error_r = "out of memory";
		return -2;
	}
	im->row[im->n++].size = bytes;
	im->rows++;
	return 0;
}

/* Reads the file into the open transaction. 0, or -1 having said why. */
static int
import_stream(struct import *im, int fd)
{
	struct csv_parser p;
	struct csv_record rec;
	struct buf in = { 0 };
	const char *error = NULL;
	bool eof = false, header = false;
	int rc = -1, row;

	csv_init(&p, 0, 0);
	for (;;) {
		enum csv_result r = csv_next(&p, &in, eof, &rec);

		if (r == CSV_MORE) {
			uint8_t *room = buf_reserve(&in, READ_CHUNK);
			ssize_t n;

			if (room == NULL) {
				fprintf(stderr, "popgate: %s: out of memory\n", im->name);
				break;
			}
			while ((n = read(fd, room, READ_CHUNK)) < 0 && errno == EINTR)
				;
			if (n < 0) {
				fprintf(stderr, "popgate: %s: cannot read: %s\n", im->name,
				    strerror(errno));
				break;
			}
			buf_commit(&in, (size_t)n);
			eof = n == 0;
			continue;
		}
		if (r == CSV_END) {
			if (!header) {
				fprintf(stderr, "popgate: %s:1: no header row (user,uidl,message_id,"
				    "size)\n", im->name);
				break;
			}
			if (flush(im, &error) < 0) {
				fprintf(stderr, "popgate: %s: %s\n", im->name, error);
				break;
			}
			rc = 0;
			break;
		}
		if (r == CSV_ERROR) {
			fprintf(stderr, "popgate: %s:%" PRIu64 ": %s\n", im->name, rec.line, rec.error);
			break;
		}
		if (is_blank(&rec))
			continue;
		if (!header) {
			if (import_header(im, &rec) < 0) {
				fprintf(stderr, "popgate: %s:%" PRIu64 ": %s\n", im->name, rec.line,
				    im->error);
				break;
			}
			header = true;
			continue;
		}
		if ((row = import_row(im, &rec, &error)) == -1)
			fprintf(stderr, "popgate: %s:%" PRIu64 ": %s\n", im->name, rec.line, im->error);
		if (row == -2)
			fprintf(stderr, "popgate: %s: %s\n", im->name, error);
		if (row != 0)
			break;
		if (im->rows % PROGRESS_EVERY == 0)
			fprintf(stderr, "popgate: %s: %" PRIu64 " rows\n", im->name, im->rows);
	}
	csv_free(&p);
	buf_free(&in);
	return rc;
}

static int
run_import(const struct gw_config *cfg, struct cache *c, int fd, const char *name)
{
	struct import *im;
	struct waiter w = { .path = cfg->cache_path };
	const char *error = NULL;
	int rc = 1;

	if ((im = calloc(1, sizeof(*im))) == NULL) {
		fprintf(stderr, "popgate: out of memory\n");
		return 1;
	}
	im->cfg = cfg;
	im->c = c;
	im->name = name;
	while (cache_begin(c, &error) < 0) {
		if (!wait_again(&w, c)) {
			fprintf(stderr, "popgate: cache %s: %s%s; %s: nothing imported\n",
			    cfg->cache_path, error, w.said ? " (still, after 10 s)" : "", name);
			goto out;
		}
	}
	if (import_stream(im, fd) < 0) {
		cache_rollback(c);
		fprintf(stderr, "popgate: %s: nothing imported\n", name);
		goto out;
	}
	if (cache_commit(c, &error) < 0) {
		fprintf(stderr, "popgate: cache %s: %s; %s: nothing imported\n", cfg->cache_path,
		    error, name);
		goto out;
	}
	printf("imported %" PRIu64 " rows for %" PRIu64 " users (%" PRIu64 " already known)\n",
	    im->added, im->nusers, im->rows - im->added);
	rc = 0;
out:
	tdestroy(im->users, free);
	buf_free(&im->text);
	free(im);
	return rc;
}

/* --- export, stats, forget ------------------------------------------------------------ */

/* RFC 4180 §2.6-2.7: quoted when it holds a comma, a quote or a line break. */
static void
put_field(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, f);
		return;
	}
	putc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			putc('"', f);
		putc(*s, f);
	}
	putc('"', f);
}

static int
export_row(void *ctx, const struct cache_export_row *r)
{
	FILE *f = ctx;

	put_field(f, r->user);
	putc(',', f);
	put_field(f, r->uidl);
	putc(',', f);
	if (r->msgid[0] != '\0') {
		/* The cache keeps a Message-ID without its brackets (content_msgid_normalize());
		 * given back with them, an import reads the same id, whatever brackets it had. */
		char id[CONTENT_MSGID_MAX + 2];

		snprintf(id, sizeof(id), "<%s>", r->msgid);
		put_field(f, id);
	}
	fprintf(f, ",%" PRIu64 "\r\n", r->size);
	return ferror(f) ? 1 : 0;
}

static int
run_export(const struct gw_config *cfg, struct cache *c, const char *user)
{
	char key[USER_MAX];
	const char *error = NULL;
	int rc;

	if (user != NULL)
		gw_config_user_key(cfg, user, key, sizeof(key));
	fputs("user,uidl,message_id,size\r\n", stdout);
	/* Every user: [upstream]'s mailbox (a domain section naming another is not listed). */
	rc = cache_export(c, user ? key : NULL, user ? gw_config_mailbox(cfg, key) : cfg->up_mailbox,
	    export_row, stdout, &error);
	if (rc < 0) {
		fprintf(stderr, "popgate: cache %s: %s\n", cfg->cache_path, error);
		return 1;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "popgate: writing the export: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

static int
run_stats(const struct gw_config *cfg, struct cache *c)
{
	struct cache_totals t;
	const char *error = NULL;

	if (cache_totals(c, &t, &error) < 0) {
		fprintf(stderr, "popgate: cache %s: %s\n", cfg->cache_path, error);
		return 1;
	}
	printf("users %" PRIu64 "\nrows %" PRIu64 "\npending %" PRIu64 "\n", t.users, t.rows,
	    t.pending);
	return 0;
}

static int
run_forget(const struct gw_config *cfg, struct cache *c, const char *user)
{
	struct waiter w = { .path = cfg->cache_path };
	char key[USER_MAX];
	const char *error = NULL;
	uint64_t removed;

	gw_config_user_key(cfg, user, key, sizeof(key));
	while (cache_forget(c, key, &removed, &error) < 0) {
		if (!wait_again(&w, c)) {
			fprintf(stderr, "popgate: cache %s: %s%s\n", cfg->cache_path, error,
			    w.said ? " (still, after 10 s)" : "");
			return 1;
		}
	}
	printf("removed %" PRIu64 " rows of %s\n", removed, key);
	return 0;
}

int
gw_uidl_run(const struct gw_config *cfg, const struct gw_uidl_cmd *cmd)
{
	const char *error = NULL;
	struct cache *c;
	int fd = -1, rc;

	if (cfg->cache_path[0] == '\0') {
		fprintf(stderr, "popgate: [cache] path is empty: there is no cache\n");
		return 1;
	}
	/* The file is opened first, as the user who ran the tool: it may be root's. */
	if (cmd->op == GW_UIDL_IMPORT) {
		if (strcmp(cmd->arg, "-") == 0)
			fd = STDIN_FILENO;
		else if ((fd = open(cmd->arg, O_RDONLY | O_CLOEXEC)) < 0) {
			fprintf(stderr, "popgate: %s: %s\n", cmd->arg, strerror(errno));
			return 1;
		}
	}
	/* Then the gateway's user, before the cache is opened: files SQLite creates (the
	 * database, its -wal and -shm) must be the gateway's, or it could not open them. */
	if (gw_privileges_drop(cfg, GW_PRIV_TOOL, &error) < 0) {
		fprintf(stderr, "popgate: %s\n", error);
		rc = 1;
		goto out;
	}
	if (cmd->op != GW_UIDL_IMPORT && access(cfg->cache_path, F_OK) < 0) {
		/* Reading or forgetting creates no cache: a wrong path says so. */
		fprintf(stderr, "popgate: cache %s: %s\n", cfg->cache_path, strerror(errno));
		rc = 1;
		goto out;
	}
	if ((c = cache_open(cfg->cache_path, &error)) == NULL) {
		fprintf(stderr, "popgate: %s\n", error);
		rc = 1;
		goto out;
	}
	switch (cmd->op) {
	case GW_UIDL_IMPORT:
		rc = run_import(cfg, c, fd, strcmp(cmd->arg, "-") == 0 ? "stdin" : cmd->arg);
		break;
	case GW_UIDL_EXPORT:
		rc = run_export(cfg, c, cmd->arg);
		break;
	case GW_UIDL_STATS:
		rc = run_stats(cfg, c);
		break;
	default:
		rc = run_forget(cfg, c, cmd->arg);
		break;
	}
	cache_free(&c);
out:
	if (fd > STDIN_FILENO)
		close(fd);
	return rc;
}
