/* tests/unit/test_metrics.c: the Prometheus text of popgate's numbers (common/metrics.c):
 * which bucket an observation falls in, cumulative buckets with _count as the +Inf one, every
 * family with HELP and TYPE before its samples, every series of the fixed label sets present
 * (zeros too), the gauge never negative, and a buffer that cannot take the text said so. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../common/metrics.h"

static char *
text_of(const struct metrics_values *v)
{
	struct buf out = { 0 };
	char *s;

	assert_int_equal(metrics_format(v, &out), 0);
	s = strndup((const char *)buf_data(&out), buf_len(&out));
	buf_free(&out);
	assert_non_null(s);
	return s;
}

static void
assert_has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void
test_bucket(void **state)
{
	static const struct {
		double s;
		size_t want;
	} cases[] = {
		{ -1, 0 }, { 0, 0 }, { 0.001, 0 }, { 0.0010001, 1 }, { 0.0025, 1 }, { 0.003, 2 },
		{ 0.3, 8 }, { 1, 9 }, { 2.5, 10 }, { 9.99, 11 }, { 10, 11 }, { 10.01, 12 },
		{ 1e9, 12 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(metrics_bucket(cases[i].s), cases[i].want);
	/* bounds ascend */
	for (size_t i = 1; i < METRICS_BUCKETS; i++)
		assert_true(metrics_bucket_le[i - 1] < metrics_bucket_le[i]);
}

static void
test_zeros_list_every_series(void **state)
{
	struct metrics_values v;
	char *t;

	(void)state;
	memset(&v, 0, sizeof(v));
	t = text_of(&v);
	assert_has_line(t, "# TYPE popgate_sessions_active gauge");
	assert_has_line(t, "popgate_sessions_active 0");
	assert_has_line(t, "# TYPE popgate_sessions_total counter");
	assert_has_line(t, "popgate_sessions_total 0");
	assert_has_line(t, "popgate_logins_total 0");
	assert_has_line(t, "popgate_login_failures_total{reason=\"bad_credentials\"} 0");
	assert_has_line(t, "popgate_login_failures_total{reason=\"plaintext_refused\"} 0");
	assert_has_line(t, "popgate_pop3_commands_total{command=\"USER\"} 0");
	assert_has_line(t, "popgate_pop3_commands_total{command=\"LAST\"} 0");
	assert_has_line(t, "popgate_pop3_commands_total{command=\"other\"} 0");
	assert_has_line(t, "popgate_client_sent_bytes_total 0");
	assert_has_line(t, "popgate_uidl_cache_hits_total 0");
	assert_has_line(t, "popgate_uidl_cache_misses_total 0");
	assert_has_line(t, "popgate_uidl_cache_errors_total 0");
	assert_has_line(t, "popgate_errors_total{kind=\"upstream_timeout\"} 0");
	assert_has_line(t, "popgate_errors_total{kind=\"tls_handshake\"} 0");
	assert_has_line(t, "# TYPE popgate_upstream_login_duration_seconds histogram");
	assert_has_line(t, "popgate_upstream_login_duration_seconds_bucket{le=\"+Inf\"} 0");
	assert_has_line(t, "popgate_upstream_login_duration_seconds_sum 0.000000");
	assert_has_line(t, "popgate_upstream_login_duration_seconds_count 0");
	free(t);
}

/* Every sample's family was announced by HELP and TYPE before it, and a family is not
 * announced twice; labels and values are plain. */
static void
test_shape(void **state)
{
	struct metrics_values v;
	char *t, *save = NULL, announced[4096] = " ";
	unsigned samples = 0, families = 0;

	(void)state;
	memset(&v, 0x11, sizeof(v));
	t = text_of(&v);
	for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], key[140];
		size_t n = strcspn(line, "{ ");

		if (strncmp(line, "# HELP ", 7) == 0) {
			sscanf(line + 7, "%127s", name);
			snprintf(key, sizeof(key), " %s ", name);
			assert_null(strstr(announced, key));
			strncat(announced, name, sizeof(announced) - strlen(announced) - 2);
			strcat(announced, " ");
			families++;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0)
			continue;
		assert_true(line[0] != '#');
		assert_true(n < sizeof(name));
		memcpy(name, line, n);
		name[n] = '\0';
		/* a histogram's series carry a suffix its family name lacks */
		for (const char *suf = "_bucket\0_sum\0_count\0"; *suf; suf += strlen(suf) + 1) {
			size_t sl = strlen(suf);

			snprintf(key, sizeof(key), " %.*s ", (int)(n - sl), name);
			if (n > sl && strcmp(name + n - sl, suf) == 0 && strstr(announced, key)) {
				name[n - sl] = '\0';
				break;
			}
		}
		snprintf(key, sizeof(key), " %s ", name);
		assert_non_null(strstr(announced, key));
		samples++;
	}
	assert_int_equal(families, 12);
	assert_int_equal(samples, 1 + 1 + 1 + MET_LOGIN_NR + 2 * (METRICS_BUCKETS + 3) +
	    MET_CMD_NR + 1 + 3 + MET_ERR_NR);
	free(t);
}

static void
test_histogram_is_cumulative(void **state)
{
	struct metrics_values v;
	struct metrics_hist *h = &v.hist[MET_H_UPSTREAM_CONNECT];
	char *t;

	(void)state;
	memset(&v, 0, sizeof(v));
	h->bucket[metrics_bucket(0.0005)] += 1;		/* le 0.001 */
	h->bucket[metrics_bucket(0.004)] += 2;		/* le 0.005 */
	h->bucket[metrics_bucket(60)] += 1;		/* +Inf only */
	h->sum_us = 60008500;
	t = text_of(&v);
	assert_has_line(t, "popgate_upstream_connect_duration_seconds_bucket{le=\"0.001\"} 1");
	assert_has_line(t, "popgate_upstream_connect_duration_seconds_bucket{le=\"0.0025\"} 1");
	assert_has_line(t, "popgate_upstream_connect_duration_seconds_bucket{le=\"0.005\"} 3");
	assert_has_line(t, "popgate_upstream_connect_duration_seconds_bucket{le=\"10\"} 3");
	assert_has_line(t, "popgate_upstream_connect_duration_seconds_bucket{le=\"+Inf\"} 4");
	assert_has_line(t, "popgate_upstream_connect_duration_seconds_sum 60.008500");
	assert_has_line(t, "popgate_upstream_connect_duration_seconds_count 4");
	assert_has_line(t, "popgate_upstream_login_duration_seconds_count 0");
	free(t);
}

static void
test_values_and_labels(void **state)
{
	struct metrics_values v;
	char *t;

	(void)state;
	memset(&v, 0, sizeof(v));
	v.sessions_active = -2;		/* a moment's race of two workers: never shown below 0 */
	v.sessions_total = 18446744073709551615ULL;
	v.login_failures[MET_LOGIN_IN_USE] = 7;
	v.commands[MET_CMD_RETR] = 3;
	v.errors[MET_ERR_UPSTREAM_CLOSED] = 2;
	v.client_sent_bytes = 123456789;
	t = text_of(&v);
	assert_has_line(t, "popgate_sessions_active 0");
	assert_has_line(t, "popgate_sessions_total 18446744073709551615");
	assert_has_line(t, "popgate_login_failures_total{reason=\"in_use\"} 7");
	assert_has_line(t, "popgate_pop3_commands_total{command=\"RETR\"} 3");
	assert_has_line(t, "popgate_errors_total{kind=\"upstream_closed\"} 2");
	assert_has_line(t, "popgate_client_sent_bytes_total 123456789");
	free(t);
	v.sessions_active = 5;
	t = text_of(&v);
	assert_has_line(t, "popgate_sessions_active 5");
	free(t);
}

static void
test_full_buffer_is_an_error(void **state)
{
	struct metrics_values v;
	struct buf out = { 0 };

	(void)state;
	memset(&v, 0, sizeof(v));
	buf_set_max(&out, 512);
	assert_int_equal(metrics_format(&v, &out), -1);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_zeros_list_every_series),
		cmocka_unit_test(test_shape),
		cmocka_unit_test(test_histogram_is_cumulative),
		cmocka_unit_test(test_values_and_labels),
		cmocka_unit_test(test_full_buffer_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
