/*
 * echo_client.c - hostlab's classic str_cli echo client (UNP 5.12-5.16).
 *
 * usage: echo_client [--sigpipe=default|ignore] [--lines N] [--interval-ms M]
 *                    [--twice] [--gap-ms G] HOST [PORT]
 *
 * HOST is a numeric IPv4 or IPv6 address; PORT defaults to 9998. For each
 * line (read from stdin with fgets, or generated with --lines N, M ms apart)
 * the client writes it, then blocks in read for the echo; it never looks at
 * the socket between lines, which is the point of UNP 5.12. --twice writes
 * the first byte, sleeps --gap-ms (default 1000) and writes the rest with no
 * read in between, as in UNP 5.13: the first write draws the RST, the second
 * raises SIGPIPE. With --sigpipe=default (the default) that signal kills the
 * client before it prints anything; with --sigpipe=ignore write fails with
 * EPIPE and the client exits 12.
 *
 * Exit codes match package echo: 0 all lines echoed, 1 other, 2 usage,
 * 10 EOF ("server terminated prematurely"), 11 ECONNRESET, 12 EPIPE,
 * 13 ETIMEDOUT, 14 EHOSTUNREACH, 15 ENETUNREACH, 16 ECONNREFUSED.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "hostlab_event.h"

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void emit_exit(int code, const char *outcome)
{
	struct ev e;

	ev_begin(&e, "exit");
	ev_kint(&e, "code", code);
	ev_kstr(&e, "outcome", outcome);
	ev_end(&e);
}

/* fail reports a failed socket call and exits with its errno's code. */
static void fail(const char *op, long seq, int err)
{
	struct ev e;

	ev_begin(&e, "error");
	ev_kstr(&e, "op", op);
	if (seq > 0)
		ev_kint(&e, "seq", seq);
	ev_kstr(&e, "errno", errno_name(err));
	ev_kstr(&e, "err", strerror(err));
	ev_end(&e);
	fprintf(stderr, "%s: %s (errno %s)\n", op, strerror(err), errno_name(err));
	emit_exit(exit_code(err), errno_name(err));
	exit(exit_code(err));
}

/* send_part writes all of p, logging each write(2). */
static void send_part(int fd, long seq, const char *p, size_t n)
{
	struct ev e;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			fail("write", seq, errno);
		ev_begin(&e, "write");
		ev_kint(&e, "seq", seq);
		ev_kint(&e, "bytes", w);
		ev_end(&e);
		p += w;
		n -= (size_t)w;
	}
}

/* echo_line sends one line and blocks in read until its echo is back. */
static void echo_line(int fd, long seq, const char *line, int twice, long gap_ms)
{
	size_t len = strlen(line), got = 0;
	char buf[4096];
	struct ev e;

	if (twice && len > 1) {
		send_part(fd, seq, line, 1);
		sleep_ms(gap_ms);
		send_part(fd, seq, line + 1, len - 1);
	} else {
		send_part(fd, seq, line, len);
	}
	while (got < len) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("read", seq, errno);
		if (n == 0) {
			ev_begin(&e, "eof");
			ev_kstr(&e, "op", "read");
			ev_kint(&e, "seq", seq);
			ev_kstr(&e, "errno", "EOF");
			ev_end(&e);
			fprintf(stderr, "server terminated prematurely\n");
			emit_exit(10, "EOF");
			exit(10);
		}
		ev_begin(&e, "read");
		ev_kint(&e, "seq", seq);
		ev_kint(&e, "bytes", n);
		ev_end(&e);
		got += (size_t)n;
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: echo_client [--sigpipe=default|ignore] [--lines N] "
			"[--interval-ms M] [--twice] [--gap-ms G] HOST [PORT]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *host = NULL, *sigpipe = "default";
	long lines = -1, interval_ms = 1000, gap_ms = 1000, port = 9998;
	int twice = 0, fd, nargs = 0;
	struct sockaddr_storage ss, local;
	socklen_t slen, llen = sizeof local;
	struct ev e;
	char line[4096];

	for (int i = 1; i < argc; i++) {
		char *a = argv[i], *v = strchr(a, '=');
		if (strncmp(a, "--", 2) == 0 && strcmp(a, "--twice") != 0) {
			if (v)
				*v++ = '\0';
			else if (i + 1 < argc)
				v = argv[++i];
			else
				return usage();
		}
		if (strcmp(a, "--twice") == 0)
			twice = 1;
		else if (strcmp(a, "--sigpipe") == 0)
			sigpipe = v;
		else if (strcmp(a, "--lines") == 0)
			lines = atol(v);
		else if (strcmp(a, "--interval-ms") == 0)
			interval_ms = atol(v);
		else if (strcmp(a, "--gap-ms") == 0)
			gap_ms = atol(v);
		else if (a[0] == '-')
			return usage();
		else if (nargs++ == 0)
			host = a;
		else
			port = atol(a);
	}
	if (!host || nargs > 2)
		return usage();
	if (strcmp(sigpipe, "ignore") == 0)
		signal(SIGPIPE, SIG_IGN);
	else if (strcmp(sigpipe, "default") != 0)
		return usage();

	memset(&ss, 0, sizeof ss);
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((unsigned short)port);
			slen = sizeof *s4;
		} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((unsigned short)port);
			slen = sizeof *s6;
		} else {
			fprintf(stderr, "echo_client: %s: not a numeric address\n", host);
			return 2;
		}
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		fail("socket", 0, errno);
	ev_begin(&e, "connecting");
	ev_addr(&e, "peer", &ss);
	ev_end(&e);
	if (connect(fd, (struct sockaddr *)&ss, slen) < 0)
		fail("connect", 0, errno);
	getsockname(fd, (struct sockaddr *)&local, &llen);
	ev_begin(&e, "connect");
	ev_addr(&e, "local", &local);
	ev_addr(&e, "peer", &ss);
	ev_end(&e);

	if (lines >= 0) {
		for (long seq = 1; seq <= lines; seq++) {
			if (seq > 1)
				sleep_ms(interval_ms);
			snprintf(line, sizeof line, "hostlab-echo %ld\n", seq);
			echo_line(fd, seq, line, twice, gap_ms);
		}
	} else {
		for (long seq = 1; fgets(line, sizeof line, stdin) != NULL; seq++)
			echo_line(fd, seq, line, twice, gap_ms);
	}
	close(fd);
	ev_begin(&e, "close");
	ev_end(&e);
	emit_exit(0, "done");
	return 0;
}
