/* open-loop: HTTP/1.1 load at a fixed rate whatever the answers do, for
 * bench-latency.sh (the C successor of open-loop.py, which took a third of
 * this machine's two CPUs at 2,000 requests/s and so slowed what it measured).
 *
 * usage: open-loop URL RATE SECONDS MODE [TOKEN [SAMPLE [WARMUP]]]
 *
 * MODE post: POST URL/elections (a new election each); for one request in
 * SAMPLE (0: none) the election is read back (GET URL/elections/ID until
 * 200, at most 10 s) to time when the change is visible.  The checks wait
 * 2 ms apart, or 5 % of the time since the request was scheduled when that
 * is longer, so a figure is at most about 5 % late and slow visibility
 * does not turn the checks into a load of their own.  MODE get: GET
 * URL/livez, the baseline (same web server and program, no work).
 *
 * Request i is scheduled at start + i/RATE and sent then on a free
 * keep-alive connection (a new one when all are busy, up to
 * MAX_CONNECTIONS; past that it waits for one).  The schedule never waits
 * for answers and every latency counts from the scheduled time, as wrk2
 * and vegeta count, so a slow answer cannot hide the requests queued
 * behind it.  With WARMUP, the rate runs that many seconds first,
 * unmeasured, and SECONDS are measured after it without a pause.
 *
 * Prints one JSON object: sent, answered, errors (refused or broken
 * connections, malformed answers), statuses, connections opened, the
 * schedule lag (how late the last request went out), and n, p50, p90,
 * p99, p99.9 and max in milliseconds of the answers and of the
 * visibility.  Exits 2 on bad usage, 1 when it cannot run at all. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, epoll_pwait2 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 256
#define READBACK_SECONDS 10.0
#define MAX_STATUS 600
#define ANSWER_MAX (1 << 20)
#define MAX_FAILURE_KINDS 8

enum job_kind { JOB_POST, JOB_GET, JOB_CHECK };

struct job {
	enum job_kind kind;
	long index;
	double t_sched; /* when the request (for a check: its POST) was due */
	double t_next;  /* a check: when to look again */
	double deadline;
	bool measured;
	char id[64]; /* a check: the election */
};

struct conn {
	int fd;
	bool connecting, idle;
	struct job *job;
	char out[1024];
	size_t out_len, out_off;
	char *in;
	size_t in_len, in_cap;
};

struct samples {
	double *v;
	size_t n, cap;
};

static struct {
	struct sockaddr_in addr;
	char host[128], prefix[256], auth[512];
	enum job_kind mode;
	long sample;
	int epfd, live, opened;
	long errors, answered;
	long statuses[MAX_STATUS];
	struct {
		char what[160];
		long measured;
	} failures[MAX_FAILURE_KINDS];
	size_t nfailures;
	struct samples answers, visible;
	struct conn *conns[MAX_CONNECTIONS];
	/* Jobs due but waiting for a connection, first in first out. */
	struct job **ready;
	size_t ready_head, ready_tail, ready_cap;
	/* Checks waiting for their time. */
	struct job **checks;
	size_t nchecks, checks_cap;
	long pending; /* jobs not finished yet */
} g;

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (!q) {
		fprintf(stderr, "open-loop: out of memory\n");
		exit(1);
	}
	return q;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sample_add(struct samples *s, double v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->v = xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n++] = v;
}

static void push_ready(struct job *j)
{
	if (g.ready_tail == g.ready_cap) {
		/* Compact first; grow only when the queue is really full. */
		memmove(g.ready, g.ready + g.ready_head,
			(g.ready_tail - g.ready_head) * sizeof *g.ready);
		g.ready_tail -= g.ready_head;
		g.ready_head = 0;
		if (g.ready_tail == g.ready_cap) {
			g.ready_cap = g.ready_cap ? 2 * g.ready_cap : 1024;
			g.ready = xrealloc(g.ready, g.ready_cap * sizeof *g.ready);
		}
	}
	g.ready[g.ready_tail++] = j;
}

static void finish(struct job *j, int status, const char *failure, const char *body);

static void conn_close(struct conn *c)
{
	epoll_ctl(g.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	for (int i = 0; i < MAX_CONNECTIONS; i++)
		if (g.conns[i] == c)
			g.conns[i] = NULL;
	g.live--;
	free(c->in);
	free(c);
}

/* Why requests failed ("connect: Connection refused"), with counts. */
static const char *failure_kind(const char *what, int errnum)
{
	char key[160];
	size_t i;

	snprintf(key, sizeof key, "%s%s%s", what, errnum ? ": " : "",
		 errnum ? strerror(errnum) : "");
	for (i = 0; i < g.nfailures; i++)
		if (strcmp(g.failures[i].what, key) == 0)
			break;
	if (i == g.nfailures && g.nfailures < MAX_FAILURE_KINDS)
		snprintf(g.failures[g.nfailures++].what, sizeof g.failures[0].what, "%s", key);
	return i < g.nfailures ? g.failures[i].what : "other";
}

/* A broken connection ends its job as an error; an idle one just goes. */
static void conn_fail(struct conn *c, const char *what, int errnum)
{
	struct job *j = c->job;

	conn_close(c);
	if (j)
		finish(j, 0, failure_kind(what, errnum), NULL);
}

static struct conn *conn_open(void)
{
	struct conn *c;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c = xrealloc(NULL, sizeof *c);
	memset(c, 0, sizeof *c);
	c->fd = fd;
	if (connect(fd, (struct sockaddr *)&g.addr, sizeof g.addr) != 0) {
		if (errno != EINPROGRESS) {
			int e = errno; /* for the caller's count of failures */

			close(fd);
			free(c);
			errno = e;
			return NULL;
		}
		c->connecting = true;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
	if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		free(c);
		return NULL;
	}
	for (int i = 0; i < MAX_CONNECTIONS; i++)
		if (!g.conns[i]) {
			g.conns[i] = c;
			break;
		}
	g.live++;
	g.opened++;
	return c;
}

static void conn_write(struct conn *c)
{
	while (!c->connecting && c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_fail(c, "write", errno);
			return;
		}
		c->out_off += (size_t)n;
	}
}

static void conn_send(struct conn *c, struct job *j)
{
	char body[64];
	int blen = 0, n;

	c->job = j;
	c->idle = false;
	c->in_len = 0;
	if (j->kind == JOB_POST) {
		blen = snprintf(body, sizeof body, "{\"name\":\"bench %ld\"}", j->index);
		n = snprintf(c->out, sizeof c->out,
			     "POST %s/elections HTTP/1.1\r\nHost: %s\r\n%s"
			     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			     g.prefix, g.host, g.auth, blen, body);
	} else if (j->kind == JOB_CHECK) {
		n = snprintf(c->out, sizeof c->out,
			     "GET %s/elections/%s HTTP/1.1\r\nHost: %s\r\n%s\r\n", g.prefix, j->id,
			     g.host, g.auth);
	} else {
		n = snprintf(c->out, sizeof c->out, "GET %s/livez HTTP/1.1\r\nHost: %s\r\n\r\n",
			     g.prefix, g.host);
	}
	c->out_len = (size_t)n;
	c->out_off = 0;
	conn_write(c);
}

/* Jobs due go out on idle connections, or on new ones up to the cap. */
static void dispatch(void)
{
	while (g.ready_head < g.ready_tail) {
		struct conn *c = NULL;

		for (int i = 0; i < MAX_CONNECTIONS && !c; i++)
			if (g.conns[i] && g.conns[i]->idle)
				c = g.conns[i];
		if (!c && g.live < MAX_CONNECTIONS) {
			c = conn_open();
			if (!c) {
				finish(g.ready[g.ready_head++], 0, failure_kind("connect", errno),
				       NULL);
				continue;
			}
		}
		if (!c)
			return;
		conn_send(c, g.ready[g.ready_head++]);
	}
}

static const char *find_header(const char *head, size_t len, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *p = head; p && p < head + len;) {
		const char *eol = memmem(p, (size_t)(head + len - p), "\r\n", 2);

		if (!eol)
			break;
		if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':')
			return p + nlen + 1;
		p = eol + 2;
	}
	return NULL;
}

/* Whether c->in holds a whole answer; then its status, body (dechunked in
 * place) and whether the server closes the connection.  -1: malformed. */
static int parse_answer(struct conn *c, int *status, char **body, size_t *body_len, bool *close)
{
	char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	const char *v;
	size_t head_len;

	if (!end)
		return c->in_len > 16384 ? -1 : 0;
	head_len = (size_t)(end - c->in) + 4;
	if (sscanf(c->in, "HTTP/1.%*d %d", status) != 1 || *status < 100 || *status >= MAX_STATUS)
		return -1;
	v = find_header(c->in, head_len, "Connection");
	*close = v && strncasecmp(v + strspn(v, " "), "close", 5) == 0;
	*body = c->in + head_len;
	if ((v = find_header(c->in, head_len, "Content-Length"))) {
		size_t n = strtoul(v, NULL, 10);

		if (c->in_len < head_len + n)
			return 0;
		*body_len = n;
		return 1;
	}
	if ((v = find_header(c->in, head_len, "Transfer-Encoding")) && strstr(v, "chunked")) {
		/* Walk the chunks until the last one; only then copy their data
		 * down over the chunk lines (an answer still arriving is walked
		 * again from the start). */
		char *lim = c->in + c->in_len;

		for (int copy = 0; copy < 2; copy++) {
			char *p = *body, *w = *body;

			for (;;) {
				char *eol = memmem(p, (size_t)(lim - p), "\r\n", 2), *q;
				unsigned long n;

				if (!eol)
					return 0;
				n = strtoul(p, &q, 16);
				if (q == p || n > ANSWER_MAX)
					return -1;
				p = eol + 2;
				if (n == 0)
					break;
				if ((size_t)(lim - p) < n + 2)
					return 0;
				if (copy)
					memmove(w, p, n);
				w += n;
				p += n + 2;
			}
			if (lim - p < 2)
				return 0;
			*body_len = (size_t)(w - *body);
		}
		return 1;
	}
	*body_len = 0; /* no body (a 204, a 304) */
	return 1;
}

static void conn_read(struct conn *c)
{
	bool eof = false;

	for (;;) {
		if (c->in_cap - c->in_len < 4096) {
			if (c->in_cap > ANSWER_MAX) {
				conn_fail(c, "answer over 1 MiB", 0);
				return;
			}
			c->in_cap = c->in_cap ? 2 * c->in_cap : 8192;
			c->in = xrealloc(c->in, c->in_cap);
		}
		ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n < 0) {
			conn_fail(c, "read", errno);
			return;
		}
		if (n == 0) { /* the answer may have come just before the end */
			eof = true;
			break;
		}
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
	}
	if (!c->job) {
		if (eof)
			conn_close(c);
		return;
	}
	int status = 0, rc;
	char *body = NULL;
	size_t body_len = 0;
	bool close_it = false;

	rc = parse_answer(c, &status, &body, &body_len, &close_it);
	if (rc < 0) {
		conn_fail(c, "malformed answer", 0);
		return;
	}
	if (rc == 0) {
		if (eof)
			conn_fail(c, "closed by the server before the answer", 0);
		return;
	}
	struct job *j = c->job;

	c->job = NULL;
	c->idle = !close_it && !eof;
	body[body_len] = '\0';
	finish(j, status, NULL, body); /* before the connection and its buffer go */
	if (!c->idle)
		conn_close(c);
}

/* The election id out of a 202's body, "election_id":"...": a ULID, taken
 * only when it is safe in a URL path. */
static bool election_id(const char *body, char *out, size_t cap)
{
	const char *p = strstr(body, "\"election_id\"");
	size_t n;

	if (!p || !(p = strchr(p + 13, '"')))
		return false;
	n = strcspn(++p, "\"");
	if (!n || n >= cap || !p[n] ||
	    strspn(p, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_") != n)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* A job's end: its answer, or the failure that ended it (counted). */
static void finish(struct job *j, int status, const char *failure, const char *body)
{
	double t = now();
	bool failed = failure != NULL;

	if (failed && j->measured) {
		g.errors++;
		for (size_t i = 0; i < g.nfailures; i++)
			g.failures[i].measured += g.failures[i].what == failure;
	}
	if (j->kind == JOB_CHECK) {
		if (!failed && status == 200 && j->measured) {
			sample_add(&g.visible, t - j->t_sched);
		} else if (!failed && status != 200 && t < j->deadline) {
			double wait = 0.05 * (t - j->t_sched);

			j->t_next = t + (wait > 0.002 ? wait : 0.002);
			if (g.nchecks == g.checks_cap) {
				g.checks_cap = g.checks_cap ? 2 * g.checks_cap : 64;
				g.checks = xrealloc(g.checks, g.checks_cap * sizeof *g.checks);
			}
			g.checks[g.nchecks++] = j;
			return;
		}
		g.pending--;
		return;
	}
	if (!failed && j->measured) {
		sample_add(&g.answers, t - j->t_sched);
		g.statuses[status]++;
		g.answered++;
	}
	if (!failed && j->kind == JOB_POST && status == 202 && g.sample > 0 &&
	    j->index % g.sample == 0 && election_id(body, j->id, sizeof j->id)) {
		j->kind = JOB_CHECK;
		j->deadline = t + READBACK_SECONDS;
		push_ready(j);
		return;
	}
	g.pending--;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void print_summary(const char *name, struct samples *s)
{
	static const double pcts[] = {50, 90, 99, 99.9, 100};
	static const char *const keys[] = {"p50", "p90", "p99", "p99.9", "max"};

	printf("\"%s\": {\"n\": %zu", name, s->n);
	qsort(s->v, s->n, sizeof *s->v, cmp_double);
	for (size_t k = 0; k < sizeof pcts / sizeof pcts[0]; k++) {
		if (!s->n) {
			printf(", \"%s\": null", keys[k]);
			continue;
		}
		size_t i = (size_t)(pcts[k] / 100.0 * (double)s->n);

		printf(", \"%s\": %.2f", keys[k], s->v[i < s->n ? i : s->n - 1] * 1000);
	}
	printf("}");
}

static void usage(void)
{
	fputs("usage: open-loop URL RATE SECONDS post|get [TOKEN [SAMPLE [WARMUP]]]\n"
	      "  URL is http://127.0.0.1:PORT[/PREFIX]\n",
	      stderr);
	exit(2);
}

static void parse_url(const char *url)
{
	unsigned port;
	int host_end = 0, port_end = 0;

	if (strncmp(url, "http://", 7) != 0 ||
	    sscanf(url + 7, "%*[^:/]%n:%u%n", &host_end, &port, &port_end) != 1 || !port_end ||
	    port == 0 || port > 65535 || host_end >= (int)sizeof g.host)
		usage();
	memcpy(g.host, url + 7, (size_t)host_end);
	g.host[host_end] = '\0';
	snprintf(g.prefix, sizeof g.prefix, "%s", url + 7 + port_end);
	g.addr.sin_family = AF_INET;
	g.addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, g.host, &g.addr.sin_addr) != 1) {
		fprintf(stderr, "open-loop: %s: an IPv4 address is needed\n", g.host);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	double rate, seconds, warmup = 0, start, lag = 0;
	long skip, n, next = 0;
	struct job *jobs;

	if (argc < 5 || argc > 8)
		usage();
	parse_url(argv[1]);
	rate = atof(argv[2]);
	seconds = atof(argv[3]);
	if (strcmp(argv[4], "post") == 0)
		g.mode = JOB_POST;
	else if (strcmp(argv[4], "get") == 0)
		g.mode = JOB_GET;
	else
		usage();
	if (argc > 5 && argv[5][0])
		snprintf(g.auth, sizeof g.auth, "Authorization: Bearer %s\r\n", argv[5]);
	g.sample = argc > 6 ? atol(argv[6]) : 50;
	if (argc > 7)
		warmup = atof(argv[7]);
	if (!(rate > 0 && rate <= 100000) || !(seconds > 0 && seconds <= 600) ||
	    !(warmup >= 0 && warmup <= 600) || g.sample < 0)
		usage();
	skip = (long)(rate * warmup + 0.5);
	n = (long)(rate * seconds + 0.5);
	jobs = xrealloc(NULL, (size_t)(skip + n) * sizeof *jobs);
	signal(SIGPIPE, SIG_IGN);
	g.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g.epfd < 0) {
		perror("open-loop: epoll_create1");
		return 1;
	}
	start = now() + 0.1;
	g.pending = skip + n;
	while (g.pending > 0) {
		double t = now(), wake = t + 1;

		/* Everything due goes out: the schedule, then the checks. */
		while (next < skip + n && start + (double)next / rate <= t) {
			struct job *j = &jobs[next];

			*j = (struct job){.kind = g.mode,
					  .index = next,
					  .t_sched = start + (double)next / rate,
					  .measured = next >= skip};
			push_ready(j);
			if (++next == skip + n)
				lag = t - j->t_sched;
		}
		for (size_t i = 0; i < g.nchecks;) {
			if (g.checks[i]->t_next <= t) {
				push_ready(g.checks[i]);
				g.checks[i] = g.checks[--g.nchecks];
			} else {
				if (g.checks[i]->t_next < wake)
					wake = g.checks[i]->t_next;
				i++;
			}
		}
		dispatch();
		if (next < skip + n && start + (double)next / rate < wake)
			wake = start + (double)next / rate;

		struct epoll_event evs[64];
		double d = wake - now();
		struct timespec to = {0, 0};

		if (d > 0) {
			to.tv_sec = (time_t)d;
			to.tv_nsec = (long)((d - (double)to.tv_sec) * 1e9);
		}
		int k = epoll_pwait2(g.epfd, evs, 64, &to, NULL);

		if (k < 0 && errno != EINTR) {
			perror("open-loop: epoll_pwait2");
			return 1;
		}
		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			bool alive = false;

			/* A connection closed earlier in this round is gone. */
			for (int m = 0; m < MAX_CONNECTIONS; m++)
				alive |= g.conns[m] == c;
			if (!alive)
				continue;
			if (c->connecting && (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
				int soerr = 0;
				socklen_t len = sizeof soerr;

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
				if (soerr) {
					conn_fail(c, "connect", soerr);
					continue;
				}
				c->connecting = false;
			}
			if (evs[i].events & EPOLLOUT)
				conn_write(c);
			alive = false;
			for (int m = 0; m < MAX_CONNECTIONS; m++)
				alive |= g.conns[m] == c;
			if (alive && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				conn_read(c);
		}
	}
	printf("{\"mode\": \"%s\", \"rate\": %g, \"seconds\": %g, \"warmup\": %g, \"sent\": %ld, "
	       "\"answered\": %ld, \"errors\": %ld, \"statuses\": {",
	       argv[4], rate, seconds, warmup, n, g.answered, g.errors);
	for (int s = 0, first = 1; s < MAX_STATUS; s++)
		if (g.statuses[s]) {
			printf("%s\"%d\": %ld", first ? "" : ", ", s, g.statuses[s]);
			first = 0;
		}
	printf("}, \"error_kinds\": {");
	for (size_t i = 0, first = 1; i < g.nfailures; i++)
		if (g.failures[i].measured) {
			printf("%s\"%s\": %ld", first ? "" : ", ", g.failures[i].what,
			       g.failures[i].measured);
			first = 0;
		}
	printf("}, \"connections\": %d, \"schedule_lag_ms\": %.1f, ", g.opened, lag * 1000);
	print_summary("answer_ms", &g.answers);
	printf(", ");
	print_summary("visible_ms", &g.visible);
	printf("}\n");
	return 0;
}
