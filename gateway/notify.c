/* gateway/notify.c: sd_notify(3) for the master; see notify.h. */
#include <time.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "notify.h"

void
gw_notify_ready(const char *status)
{
	/* STATUS= is for people; its text has no newline (it would start a new field). */
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
	gw_daemon_ready();
}

void
gw_notify_reloading(void)
{
	struct timespec ts;

	/* MONOTONIC_USEC: systemd 253's Type=notify-reload matches it against its SIGHUP;
	 * older managers ignore the field. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
}

void
gw_notify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping: open sessions may finish");
}
