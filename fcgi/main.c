/* photovote.fcgi: the FastCGI program of the HTTP API.
 *
 * Where requests come from, in this order:
 *   --listen ADDR        a socket of our own: "HOST:PORT", ":PORT" or a
 *                        Unix socket path (nginx fastcgi_pass, Apache
 *                        mod_proxy_fcgi);
 *   LISTEN_FDS/LISTEN_PID systemd socket activation (fd 3);
 *   fd 0                 a listening socket set up by the web server that
 *                        spawned us (lighttpd bin-path, Apache mod_fcgid).
 *
 * Threads: N request threads each loop on FCGX_Accept_r on the shared
 * listening socket; one publisher thread owns the broker connection; the
 * main thread waits for signals.  SIGTERM/SIGINT: stop accepting, let
 * requests in progress finish, close the broker connection, exit 0.  The
 * request threads are woken from accept() by SIGUSR2 (no restart), sent
 * repeatedly while a thread is in accept until it has noticed, so there is
 * no race with a thread that is just about to block, and a thread busy
 * with a request is not interrupted.  SIGHUP reopens the log. */
#include <errno.h>
#include <fcgiapp.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "request.h"
#include "thread.h"
#include "xalloc.h"

#ifndef PV_CONFIG_FILE
#define PV_CONFIG_FILE "/etc/photovote/photovote.conf"
#endif

#define LISTEN_BACKLOG 128

struct worker {
	pthread_t thread;
	struct pv_api_thread ctx;
	/* The request's path, kept here: allocating 4 KB twice per request
	 * sent glibc's malloc into consolidating its free lists every time. */
	char path[PV_REQUEST_PATH_MAX];
	char prefix[PV_REQUEST_PATH_MAX];
	int listen_fd;
	atomic_bool in_accept; /* only then is it woken by SIGUSR2 */
	atomic_bool done;
};

static atomic_bool stopping;

static void on_wake(int sig)
{
	(void)sig;
}

/* A request's body as the handlers read it, counted. */
struct input {
	FCGX_Request *r;
	long long got;
};

static int fcgi_read(void *ctx, char *buf, int n)
{
	struct input *in = ctx;
	int got = FCGX_GetStr(buf, n, in->r->in);

	if (got < n && FCGX_GetError(in->r->in))
		return -1;
	in->got += got;
	return got;
}

static void write_response(FCGX_Request *r, const struct pv_http_response *resp)
{
	struct pv_buf head = PV_BUF_INIT;

	/* libfcgi's own printf knows no %zu: format here. */
	pv_buf_printf(&head,
		      "Status: %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		      "Cache-Control: no-store\r\n%s\r\n",
		      resp->status, pv_http_reason(resp->status), resp->content_type,
		      resp->body.len, resp->headers.data ? resp->headers.data : "");
	FCGX_PutStr(head.data, (int)head.len, r->out);
	pv_buf_free(&head);
	if (resp->body.len)
		FCGX_PutStr(resp->body.data, (int)resp->body.len, r->out);
}

/* Serves one request; true when its body was read to the end. */
static bool serve(struct worker *w, FCGX_Request *r)
{
	struct input in = {.r = r};
	struct pv_http_response resp;
	long long length;

	pv_http_response_init(&resp);
	length = pv_request_serve(&w->ctx, r->envp, fcgi_read, &in, w->path, w->prefix, &resp);
	write_response(r, &resp);
	pv_http_response_clear(&resp);
	return length <= 0 || in.got >= length;
}

/* libfcgi ends a connection gracefully: it shuts its side down and then
 * waits until the web server closes the other, so that input left unread
 * cannot turn into a TCP reset that loses the answer.  That wait costs the
 * thread a sleep and a wake-up on every request.  When the input has been
 * read to its end (the empty FCGI_STDIN record that closes it, which the
 * server sends with the body) nothing is left to reset, and a plain close
 * (FCGX_Detach's) will do. */
static void finish(FCGX_Request *r, bool body_read)
{
	if (body_read && FCGX_GetChar(r->in) == EOF && !FCGX_GetError(r->in))
		FCGX_Detach(r);
	FCGX_Finish_r(r);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	FCGX_Request r;
	sigset_t wake;

	sigemptyset(&wake);
	sigaddset(&wake, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	if (FCGX_InitRequest(&r, w->listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
		pv_log_fatalx("fcgi", "FCGX_InitRequest failed");
	while (!atomic_load(&stopping)) {
		int rc;

		atomic_store(&w->in_accept, true);
		rc = FCGX_Accept_r(&r);
		atomic_store(&w->in_accept, false);
		if (rc < 0) {
			if (!atomic_load(&stopping))
				pv_log_warnx("fcgi", "FCGX_Accept_r: %s", strerror(-rc));
			break;
		}
		finish(&r, serve(w, &r));
	}
	FCGX_Free(&r, 1);
	pv_api_thread_clear(&w->ctx);
	atomic_store(&w->done, true);
	return NULL;
}

/* fd 3 when systemd passed us exactly our sockets, else -1. */
static int systemd_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (!pid || !fds || atol(pid) != (long)getpid() || atoi(fds) < 1)
		return -1;
	if (atoi(fds) > 1)
		pv_log_warnx("fcgi", "LISTEN_FDS=%s: using the first socket only", fds);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 3;
}

/* Waits for a signal in `sigs`; until the broker connection is up it looks
 * every READY_POLL_MS and, once it is, tells the service manager we are
 * ready (Type=notify).  Requests are accepted all along: readiness is what
 * systemd and the units ordered after us see. */
#define READY_POLL_MS 100
static int wait_signal(const sigset_t *sigs, struct pv_api *api, bool *ready)
{
	struct timespec poll = {0, READY_POLL_MS * 1000L * 1000L};
	int sig;

	while (!*ready) {
		if (pv_amqp_publisher_connected(api->publisher)) {
			pv_notify_ready("serving; connected to the broker");
			*ready = true;
			break;
		}
		sig = sigtimedwait(sigs, NULL, &poll);
		if (sig > 0)
			return sig;
	}
	while (sigwait(sigs, &sig) != 0)
		;
	return sig;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: photovote.fcgi [-c FILE] [--listen ADDR] [--threads N]\n"
		"  -c, --config FILE   configuration (default: $PHOTOVOTE_CONFIG or %s)\n"
		"  -l, --listen ADDR   listen on HOST:PORT, :PORT or a Unix socket path\n"
		"                      (default: socket activation, or the socket on fd 0\n"
		"                      when spawned by the web server)\n"
		"  -t, --threads N     request threads (default: [http] threads)\n"
		"  -h, --help          this text\n",
		PV_CONFIG_FILE);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, 'l'},
		{"threads", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		/* Not in the usage: for the tests of the OpenAPI document. */
		{"list-routes", no_argument, NULL, 'R'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = getenv("PHOTOVOTE_CONFIG"), *listen_addr = NULL;
	struct sigaction sa = {.sa_handler = on_wake};
	struct pv_config *cfg;
	struct pv_error err;
	struct worker *workers;
	struct pv_api *api;
	sigset_t sigs;
	int c, nthreads = 0, listen_fd, sig = 0;

	while ((c = getopt_long(argc, argv, "c:l:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'l': listen_addr = optarg; break;
		case 't':
			nthreads = atoi(optarg);
			if (nthreads < 1 || nthreads > 256) {
				fprintf(stderr, "photovote.fcgi: --threads must be 1..256\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		case 'R': pv_api_print_routes(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	pv_log_init("photovote.fcgi", PV_LOG_STDERR, PV_LOG_INFO);
	if (!config_path)
		config_path = PV_CONFIG_FILE;
	if (pv_config_load(config_path, NULL, &cfg, &err) != PV_OK)
		pv_log_fatalx("config", "%s", err.msg);
	pv_daemon_log_configure("photovote.fcgi", cfg);
	if (!nthreads)
		nthreads = (int)pv_config_int(cfg, "http", "threads");

	if (FCGX_Init() != 0)
		pv_log_fatalx("fcgi", "FCGX_Init failed");
	if (listen_addr) {
		/* Our own Unix socket replaces a stale one from a previous run. */
		if (strchr(listen_addr, '/'))
			unlink(listen_addr);
		listen_fd = FCGX_OpenSocket(listen_addr, LISTEN_BACKLOG);
		if (listen_fd < 0)
			pv_log_fatal("fcgi", "cannot listen on %s", listen_addr);
	} else if ((listen_fd = systemd_fd()) < 0) {
		if (FCGX_IsCGI())
			pv_log_fatalx("fcgi", "not started by a web server or systemd; "
					      "use --listen ADDR");
		listen_fd = 0;
	}

	/* Signals are for the main thread (sigwait) and SIGUSR2 for waking the
	 * request threads; every thread starts with them blocked. */
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	api = pv_api_new(cfg);
	pv_log_info("fcgi", "%d request threads, auth %s, body limit %zu", nthreads,
		    api->auth_mode == PV_AUTH_TOKEN ? "token" : "remote_user", api->body_limit);
	workers = pv_xcalloc((size_t)nthreads, sizeof *workers);
	for (int i = 0; i < nthreads; i++) {
		workers[i].ctx.api = api;
		workers[i].listen_fd = listen_fd;
		pv_thread_start(&workers[i].thread, worker_main, &workers[i], "fcgi",
				"a request thread");
	}

	sigdelset(&sigs, SIGUSR2);
	pv_notify_status("waiting for the broker");
	for (bool ready = false;;) {
		sig = wait_signal(&sigs, api, &ready);
		if (sig == SIGHUP) {
			pv_log_reopen();
			continue;
		}
		break;
	}
	pv_log_info("fcgi", "signal %d: finishing requests in progress", sig);
	pv_notify_stopping();
	atomic_store(&stopping, true);
	FCGX_ShutdownPending();
	for (int i = 0; i < nthreads; i++) {
		while (!atomic_load(&workers[i].done)) {
			struct timespec ts = {0, 50 * 1000 * 1000};

			/* A request in progress is left alone to finish. */
			if (atomic_load(&workers[i].in_accept))
				pthread_kill(workers[i].thread, SIGUSR2);
			nanosleep(&ts, NULL);
		}
		pthread_join(workers[i].thread, NULL);
	}
	free(workers);
	pv_api_free(api);
	pv_config_free(cfg);
	pv_log_info("fcgi", "stopped");
	return 0;
}
