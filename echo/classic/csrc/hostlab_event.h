/*
 * hostlab_event.h - JSON-line events for hostlab's classic C echo programs.
 *
 * Each event is formatted into a stack buffer without stdio and written
 * with one write(2), so it is async-signal-safe (the server's SIGCHLD
 * handler uses it) and lines from a parent and its children never
 * interleave. The schema matches package echo's Event:
 *   {"v":1,"ev":"write","mono_ns":...,"real_ns":...,"role":"client","pid":...,...}
 */
#ifndef HOSTLAB_EVENT_H
#define HOSTLAB_EVENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct ev {
	char buf[768];
	size_t n;
};

static const char *ev_role = "client";

static inline void ev_raw(struct ev *e, const char *s)
{
	while (*s && e->n < sizeof e->buf - 3)
		e->buf[e->n++] = *s++;
}

static inline void ev_int(struct ev *e, long long v)
{
	char tmp[24];
	int i = 0;
	unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;

	do {
		tmp[i++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[i++] = '-';
	while (i > 0 && e->n < sizeof e->buf - 3)
		e->buf[e->n++] = tmp[--i];
}

/* ev_str appends a JSON string, escaping quotes, backslashes and controls. */
static inline void ev_str(struct ev *e, const char *s)
{
	ev_raw(e, "\"");
	for (; *s && e->n < sizeof e->buf - 5; s++) {
		if (*s == '"' || *s == '\\') {
			e->buf[e->n++] = '\\';
			e->buf[e->n++] = *s;
		} else if ((unsigned char)*s >= 0x20) {
			e->buf[e->n++] = *s;
		}
	}
	ev_raw(e, "\"");
}

static inline long long ev_clock(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0)
		return 0;
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void ev_begin(struct ev *e, const char *name)
{
	e->n = 0;
	ev_raw(e, "{\"v\":1,\"ev\":");
	ev_str(e, name);
	ev_raw(e, ",\"mono_ns\":");
	ev_int(e, ev_clock(CLOCK_MONOTONIC));
	ev_raw(e, ",\"real_ns\":");
	ev_int(e, ev_clock(CLOCK_REALTIME));
	ev_raw(e, ",\"role\":");
	ev_str(e, ev_role);
	ev_raw(e, ",\"pid\":");
	ev_int(e, getpid());
}

static inline void ev_kstr(struct ev *e, const char *key, const char *val)
{
	ev_raw(e, ",\"");
	ev_raw(e, key);
	ev_raw(e, "\":");
	ev_str(e, val);
}

static inline void ev_kint(struct ev *e, const char *key, long long val)
{
	ev_raw(e, ",\"");
	ev_raw(e, key);
	ev_raw(e, "\":");
	ev_int(e, val);
}

/* ev_end closes the object and writes the line to stdout, keeping errno. */
static inline void ev_end(struct ev *e)
{
	int saved = errno;
	size_t off = 0;

	e->buf[e->n++] = '}';
	e->buf[e->n++] = '\n';
	while (off < e->n) {
		ssize_t w = write(STDOUT_FILENO, e->buf + off, e->n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	errno = saved;
}

/* errno_name returns the symbolic name of err, e.g. "ECONNRESET". */
static inline const char *errno_name(int err)
{
	switch (err) {
	case ECONNRESET: return "ECONNRESET";
	case EPIPE: return "EPIPE";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENETUNREACH: return "ENETUNREACH";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNABORTED: return "ECONNABORTED";
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	case EBADF: return "EBADF";
	case ENOTCONN: return "ENOTCONN";
	case EADDRINUSE: return "EADDRINUSE";
	case EINVAL: return "EINVAL";
	}
	return "unknown";
}

/* exit_code maps a terminal errno to the exit code table of package echo. */
static inline int exit_code(int err)
{
	switch (err) {
	case ECONNRESET: return 11;
	case EPIPE: return 12;
	case ETIMEDOUT: return 13;
	case EHOSTUNREACH: return 14;
	case ENETUNREACH: return 15;
	case ECONNREFUSED: return 16;
	}
	return 1;
}

/* ev_addr appends key:"ADDR:PORT" for an IPv4 or IPv6 socket address. */
static inline void ev_addr(struct ev *e, const char *key, const struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN] = "?";
	char out[INET6_ADDRSTRLEN + 16];
	int port = 0;
	size_t k;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
		port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
		port = ntohs(s6->sin6_port);
	}
	k = 0;
	if (ss->ss_family == AF_INET6)
		out[k++] = '[';
	for (const char *h = host; *h && k < sizeof out - 10; h++)
		out[k++] = *h;
	if (ss->ss_family == AF_INET6)
		out[k++] = ']';
	out[k++] = ':';
	{
		char tmp[8];
		int i = 0;
		do {
			tmp[i++] = (char)('0' + port % 10);
			port /= 10;
		} while (port);
		while (i > 0)
			out[k++] = tmp[--i];
	}
	out[k] = '\0';
	ev_kstr(e, key, out);
}

#endif
