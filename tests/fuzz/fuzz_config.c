/* tests/fuzz/fuzz_config.c: the ini loader (gateway/config.c over inih) must answer any file
 * with 0 or -1 and a message, never crash or leak. The file is written to a memfd; a valid
 * [upstream] host is appended so most inputs reach the checks after parsing, and name
 * resolution stays on loopback. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gateway/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char tail[] = "\n[upstream]\nhost = 127.0.0.1\n";
	struct gw_config cfg;
	const char *error = NULL;
	char path[64];
	int fd;

	if ((fd = memfd_create("fuzz-config", 0)) < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size || write(fd, tail, sizeof(tail) - 1) < 0) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (gw_config_load(&cfg, path, &error) < 0 && (error == NULL || error[0] == '\0'))
		__builtin_trap();	/* every refusal names its reason */
	gw_config_free(&cfg);
	close(fd);
	return 0;
}
