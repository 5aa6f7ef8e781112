/*
 * Addresses as the command line gives them: unix:/path, unix:///path,
 * tcp:HOST:PORT, tcp://HOST:PORT (IPv6 as [::1]), or systemd.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy.h"

/* Parse an ADDR into *a; on error write a message to err. */
int
addr_parse(const char *spec, struct address *a, char *err, size_t errlen)
{
	const char		*p;
	char			 host[256], *port;
	struct addrinfo		 hints, *ai;
	int			 rv;

	memset(a, 0, sizeof(*a));
	if (strlen(spec) >= sizeof(a->spec)) {
		snprintf(err, errlen, "%.64s...: address too long", spec);
		return -1;
	}
	strcpy(a->spec, spec);
	if (strcmp(spec, "systemd") == 0) {
		a->kind = ADDR_SYSTEMD;
		return 0;
	}
	if (strncmp(spec, "unix:", 5) == 0) {
		p = spec + 5;
		if (strncmp(p, "//", 2) == 0)
			p += 2;
		if (*p != '/') {
			snprintf(err, errlen, "%s: unix path must be absolute",
			    spec);
			return -1;
		}
		if (strlen(p) >= sizeof(a->path)) {
			snprintf(err, errlen, "%s: unix path too long", spec);
			return -1;
		}
		a->kind = ADDR_UNIX;
		strcpy(a->path, p);
		return 0;
	}
	if (strncmp(spec, "tcp:", 4) != 0) {
		snprintf(err, errlen, "%s: address must start with unix:, tcp: "
		    "or be systemd", spec);
		return -1;
	}
	p = spec + 4;
	if (strncmp(p, "//", 2) == 0)
		p += 2;
	if (strlen(p) >= sizeof(host)) {
		snprintf(err, errlen, "%s: bad tcp address", spec);
		return -1;
	}
	strcpy(host, p);
	if (host[0] == '[') {
		char *close = strchr(host, ']');

		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "%s: bad IPv6 address", spec);
			return -1;
		}
		*close = '\0';
		port = close + 2;
		memmove(host, host + 1, strlen(host + 1) + 1);
	} else {
		if ((port = strrchr(host, ':')) == NULL) {
			snprintf(err, errlen, "%s: tcp address needs a port",
			    spec);
			return -1;
		}
		*port++ = '\0';
	}
	if (*port == '\0' || strspn(port, "0123456789") != strlen(port) ||
	    atoi(port) < 1 || atoi(port) > 65535) {
		snprintf(err, errlen, "%s: bad port", spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rv = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "%s: %s", spec, gai_strerror(rv));
		return -1;
	}
	memcpy(&a->ss, ai->ai_addr, ai->ai_addrlen);
	a->sslen = ai->ai_addrlen;
	freeaddrinfo(ai);
	a->kind = ADDR_TCP;
	return 0;
}

/* Fill a sockaddr for connecting to a unix or tcp address. */
int
addr_sockaddr(const struct address *a, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_un	*sun = (struct sockaddr_un *)ss;

	memset(ss, 0, sizeof(*ss));
	if (a->kind == ADDR_UNIX) {
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, a->path, strlen(a->path) + 1);
		*len = sizeof(*sun);
		return 0;
	}
	if (a->kind == ADDR_TCP) {
		memcpy(ss, &a->ss, a->sslen);
		*len = a->sslen;
		return 0;
	}
	return -1;
}
