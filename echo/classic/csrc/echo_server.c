/*
 * echo_server.c - hostlab's classic forking echo server (UNP 5.12-5.16).
 *
 * usage: echo_server [--sigterm ignore|default] [PORT]     (PORT 0 = any)
 *
 * The parent listens (default port 9998), accepts (restarting on EINTR) and
 * forks a child per connection; the child runs str_echo (read/write loop,
 * restarting on EINTR) until EOF and exits. A SIGCHLD handler reaps children
 * with waitpid(-1, &st, WNOHANG) in a loop. --sigterm ignore sets SIGTERM to
 * SIG_IGN before any fork, so the children inherit it and only SIGKILL ends
 * them. Events (listen, accept, child_exit, echo_eof, error) go to stdout as
 * JSON lines; see hostlab_event.h.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "hostlab_event.h"

static void on_sigchld(int signo)
{
	int st;
	pid_t pid;
	struct ev e;

	(void)signo;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		ev_begin(&e, "child_exit");
		ev_kint(&e, "child_pid", pid);
		if (WIFSIGNALED(st)) {
			const char *name = sigabbrev_np(WTERMSIG(st));
			char sig[16] = "SIG";
			if (name)
				strncat(sig, name, sizeof sig - 4);
			ev_kstr(&e, "signal", sig);
		} else {
			ev_kint(&e, "status", WEXITSTATUS(st));
		}
		ev_end(&e);
	}
}

static void emit_err(const char *op, int err)
{
	struct ev e;

	ev_begin(&e, "error");
	ev_kstr(&e, "op", op);
	ev_kstr(&e, "errno", errno_name(err));
	ev_kstr(&e, "err", strerror(err));
	ev_end(&e);
}

/* writen writes all n bytes, restarting on EINTR and short writes. */
static int writen(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* str_echo echoes fd until the client's EOF, then returns. */
static void str_echo(int fd)
{
	char buf[8192];
	long long total = 0;
	struct ev e;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			if (writen(fd, buf, (size_t)n) < 0) {
				emit_err("write", errno);
				exit(1);
			}
			total += n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		emit_err("read", errno);
		exit(1);
	}
	ev_begin(&e, "echo_eof");
	ev_kint(&e, "bytes", total);
	ev_end(&e);
}

int main(int argc, char **argv)
{
	int port = 9998, listenfd, one = 1;
	struct sockaddr_in addr;
	struct sockaddr_storage ss;
	socklen_t len;
	struct sigaction sa;
	struct ev e;

	ev_role = "server";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = NULL;
		if (strncmp(a, "--sigterm=", 10) == 0)
			v = a + 10;
		else if (strcmp(a, "--sigterm") == 0 && i + 1 < argc)
			v = argv[++i];
		if (v) {
			if (strcmp(v, "ignore") == 0)
				signal(SIGTERM, SIG_IGN);
			else if (strcmp(v, "default") != 0) {
				fprintf(stderr, "echo_server: --sigterm %s: want ignore or default\n", v);
				return 2;
			}
		} else if (a[0] >= '0' && a[0] <= '9') {
			port = atoi(a);
		} else {
			fprintf(stderr, "usage: echo_server [--sigterm ignore|default] [PORT]\n");
			return 2;
		}
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigchld;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: accept sees EINTR, as in UNP 5.9 */
	sigaction(SIGCHLD, &sa, NULL);

	listenfd = socket(AF_INET, SOCK_STREAM, 0);
	if (listenfd < 0) {
		emit_err("socket", errno);
		return 1;
	}
	setsockopt(listenfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	addr.sin_port = htons((unsigned short)port);
	if (bind(listenfd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		emit_err("bind", errno);
		return 1;
	}
	if (listen(listenfd, 1024) < 0) {
		emit_err("listen", errno);
		return 1;
	}
	len = sizeof ss;
	getsockname(listenfd, (struct sockaddr *)&ss, &len);
	ev_begin(&e, "listen");
	ev_addr(&e, "local", &ss);
	ev_kstr(&e, "mode", "fork");
	ev_end(&e);

	for (;;) {
		struct sockaddr_storage peer, local;
		socklen_t plen = sizeof peer, llen = sizeof local;
		pid_t pid;
		int connfd = accept(listenfd, (struct sockaddr *)&peer, &plen);

		if (connfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			emit_err("accept", errno);
			return 1;
		}
		getsockname(connfd, (struct sockaddr *)&local, &llen);
		pid = fork();
		if (pid == 0) {
			ev_role = "child";
			close(listenfd);
			str_echo(connfd);
			close(connfd);
			exit(0);
		}
		if (pid < 0)
			emit_err("fork", errno);
		else {
			ev_begin(&e, "accept");
			ev_kint(&e, "child_pid", pid);
			ev_addr(&e, "peer", &peer);
			ev_addr(&e, "local", &local);
			ev_end(&e);
		}
		close(connfd);
	}
}
