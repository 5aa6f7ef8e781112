/*
 * Metrics: counters kept in the daemon, served later as Prometheus text.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "proxy.h"

static struct {
	uint64_t	requests;
	uint64_t	tunnels;
	uint64_t	upstream_errors;
	uint64_t	reloads_ok;
	uint64_t	reloads_failed;
} metrics;

/* Serve metrics on ADDR (not yet: say so). */
int
metrics_listen(const char *addr, char *err, size_t errlen)
{
	snprintf(err, errlen, "--metrics is not implemented yet");
	return -1;
}

/* Count one finished request. */
void
metrics_request(struct conn *c, const char *verdict, int status)
{
	metrics.requests++;
}

/* A tunnel opened (+1) or closed (-1). */
void
metrics_tunnel(int delta)
{
	metrics.tunnels += (uint64_t)delta;
}

/* A policy reload succeeded (1) or failed (0). */
void
metrics_reload(int ok)
{
	if (ok)
		metrics.reloads_ok++;
	else
		metrics.reloads_failed++;
}

/* The engine could not be reached or answered badly. */
void
metrics_upstream_error(void)
{
	metrics.upstream_errors++;
}

/* Stop serving metrics. */
void
metrics_close(void)
{
}
