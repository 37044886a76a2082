/* Prometheus registry and listener (design in prom.h). */
#include "prom.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

#define LABEL_MAX 64
#define REQUEST_MAX 2048
#define IO_TIMEOUT_MS 1000

const double pv_prom_seconds_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					  0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t pv_prom_seconds_nbuckets =
	sizeof pv_prom_seconds_buckets / sizeof pv_prom_seconds_buckets[0];
const double pv_prom_count_buckets[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
const size_t pv_prom_count_nbuckets =
	sizeof pv_prom_count_buckets / sizeof pv_prom_count_buckets[0];

enum kind { COUNTER, GAUGE, HISTOGRAM };
static const char *const kind_names[] = {
	[COUNTER] = "counter", [GAUGE] = "gauge", [HISTOGRAM] = "histogram"};

struct series {
	char label[LABEL_MAX];
	double value;     /* counter, gauge; histogram: the sum */
	uint64_t count;   /* histogram */
	uint64_t *bucket; /* histogram: cumulative is computed when rendering */
};

struct pv_prom_family {
	struct pv_prom *owner;
	struct pv_prom_family *next;
	enum kind kind;
	char *name, *help, *label;
	double *bounds;
	size_t nbounds;
	size_t nseries;
	struct series series[PV_PROM_MAX_SERIES];
};

struct pv_prom {
	pthread_mutex_t lock;
	struct pv_prom_family *head, *tail;
	pthread_t thread;
	bool listening;
	atomic_bool stop;
	int fd;
};

double pv_prom_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct pv_prom *pv_prom_new(void)
{
	struct pv_prom *p = pv_xcalloc(1, sizeof *p);

	pthread_mutex_init(&p->lock, NULL);
	p->fd = -1;
	return p;
}

void pv_prom_free(struct pv_prom *p)
{
	if (!p)
		return;
	if (p->listening) {
		atomic_store(&p->stop, true);
		pthread_join(p->thread, NULL);
	}
	if (p->fd >= 0)
		close(p->fd);
	for (struct pv_prom_family *f = p->head, *next; f; f = next) {
		next = f->next;
		for (size_t i = 0; i < f->nseries; i++)
			free(f->series[i].bucket);
		free(f->name);
		free(f->help);
		free(f->label);
		free(f->bounds);
		free(f);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static struct series *series_get(struct pv_prom_family *f, const char *v);

static struct pv_prom_family *family(struct pv_prom *p, enum kind kind, const char *name,
				     const char *help, const char *label)
{
	struct pv_prom_family *f = pv_xcalloc(1, sizeof *f);

	f->owner = p;
	f->kind = kind;
	f->name = pv_xstrdup(name);
	f->help = pv_xstrdup(help);
	f->label = label ? pv_xstrdup(label) : NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = f;
	else
		p->head = f;
	p->tail = f;
	pthread_mutex_unlock(&p->lock);
	return f;
}

/* A family without a label shows its zero before the first event. */
static struct pv_prom_family *unlabelled_zero(struct pv_prom_family *f)
{
	if (!f->label) {
		pthread_mutex_lock(&f->owner->lock);
		series_get(f, NULL);
		pthread_mutex_unlock(&f->owner->lock);
	}
	return f;
}

struct pv_prom_family *pv_prom_counter(struct pv_prom *p, const char *name, const char *help,
				       const char *label)
{
	return unlabelled_zero(family(p, COUNTER, name, help, label));
}

struct pv_prom_family *pv_prom_gauge(struct pv_prom *p, const char *name, const char *help,
				     const char *label)
{
	return unlabelled_zero(family(p, GAUGE, name, help, label));
}

struct pv_prom_family *pv_prom_histogram(struct pv_prom *p, const char *name, const char *help,
					 const char *label, const double *bounds, size_t nbounds)
{
	struct pv_prom_family *f = family(p, HISTOGRAM, name, help, label);

	f->bounds = pv_xmalloc(nbounds * sizeof *bounds);
	memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
	f->nbounds = nbounds;
	return unlabelled_zero(f);
}

/* The series of label value v, created on first use; the last slot takes
 * every value beyond the cap.  Called with the lock held. */
static struct series *series_get(struct pv_prom_family *f, const char *v)
{
	struct series *s;

	if (!v)
		v = "";
	for (size_t i = 0; i < f->nseries; i++)
		if (strcmp(f->series[i].label, v) == 0)
			return &f->series[i];
	if (f->nseries == PV_PROM_MAX_SERIES)
		return &f->series[PV_PROM_MAX_SERIES - 1];
	s = &f->series[f->nseries++];
	snprintf(s->label, sizeof s->label, "%s", f->nseries == PV_PROM_MAX_SERIES ? "other" : v);
	if (f->kind == HISTOGRAM)
		s->bucket = pv_xcalloc(f->nbounds, sizeof *s->bucket);
	return s;
}

void pv_prom_inc(struct pv_prom_family *f, const char *label_value, double by)
{
	pthread_mutex_lock(&f->owner->lock);
	series_get(f, label_value)->value += by;
	pthread_mutex_unlock(&f->owner->lock);
}

void pv_prom_set(struct pv_prom_family *f, const char *label_value, double value)
{
	pthread_mutex_lock(&f->owner->lock);
	series_get(f, label_value)->value = value;
	pthread_mutex_unlock(&f->owner->lock);
}

void pv_prom_observe(struct pv_prom_family *f, const char *label_value, double sample)
{
	struct series *s;

	pthread_mutex_lock(&f->owner->lock);
	s = series_get(f, label_value);
	for (size_t b = 0; b < f->nbounds; b++)
		if (sample <= f->bounds[b]) {
			s->bucket[b]++;
			break;
		}
	s->count++;
	s->value += sample;
	pthread_mutex_unlock(&f->owner->lock);
}

/* Label values come from closed sets, but are escaped all the same. */
static void put_label(struct pv_buf *out, const struct pv_prom_family *f, const char *value,
		      const char *le)
{
	bool any = false;

	if (f->label) {
		pv_buf_printf(out, "{%s=\"", f->label);
		for (const char *c = value; *c; c++) {
			if (*c == '\\' || *c == '"')
				pv_buf_printf(out, "\\%c", *c);
			else if (*c == '\n')
				pv_buf_puts(out, "\\n");
			else
				pv_buf_append(out, c, 1);
		}
		pv_buf_puts(out, "\"");
		any = true;
	}
	if (le)
		pv_buf_printf(out, "%sle=\"%s\"", any ? "," : "{", le);
	if (any || le)
		pv_buf_puts(out, "}");
}

static void render_series(struct pv_buf *out, const struct pv_prom_family *f,
			  const struct series *s)
{
	uint64_t cumulative = 0;
	char le[32];

	if (f->kind != HISTOGRAM) {
		pv_buf_puts(out, f->name);
		put_label(out, f, s->label, NULL);
		pv_buf_printf(out, " %.17g\n", s->value);
		return;
	}
	for (size_t b = 0; b < f->nbounds; b++) {
		cumulative += s->bucket[b];
		snprintf(le, sizeof le, "%g", f->bounds[b]);
		pv_buf_printf(out, "%s_bucket", f->name);
		put_label(out, f, s->label, le);
		pv_buf_printf(out, " %llu\n", (unsigned long long)cumulative);
	}
	pv_buf_printf(out, "%s_bucket", f->name);
	put_label(out, f, s->label, "+Inf");
	pv_buf_printf(out, " %llu\n%s_sum", (unsigned long long)s->count, f->name);
	put_label(out, f, s->label, NULL);
	pv_buf_printf(out, " %.9g\n%s_count", s->value, f->name);
	put_label(out, f, s->label, NULL);
	pv_buf_printf(out, " %llu\n", (unsigned long long)s->count);
}

void pv_prom_render(struct pv_prom *p, struct pv_buf *out)
{
	pthread_mutex_lock(&p->lock);
	for (const struct pv_prom_family *f = p->head; f; f = f->next) {
		pv_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
			      kind_names[f->kind]);
		for (size_t i = 0; i < f->nseries; i++)
			render_series(out, f, &f->series[i]);
	}
	pthread_mutex_unlock(&p->lock);
}

/* ---- the listener ---- */

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the scraper went away: nothing to tell it */
		data += n;
		len -= (size_t)n;
	}
}

/* Reads the request head (bounded, with a timeout) and answers it. */
static void serve(struct pv_prom *p, int fd)
{
	char req[REQUEST_MAX + 1] = "";
	size_t got = 0;
	struct pv_buf body = PV_BUF_INIT, head = PV_BUF_INIT;
	int status = 200;
	const char *reason = "OK";

	while (got < REQUEST_MAX && !strstr(req, "\r\n\r\n")) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, IO_TIMEOUT_MS) <= 0)
			return;
		n = recv(fd, req + got, REQUEST_MAX - got, 0);
		if (n <= 0)
			return;
		got += (size_t)n;
		req[got] = '\0';
	}
	if (strncmp(req, "GET /metrics ", 13) == 0 || strncmp(req, "GET /metrics?", 13) == 0) {
		pv_prom_render(p, &body);
	} else if (strncmp(req, "GET ", 4) != 0 && strncmp(req, "HEAD ", 5) != 0) {
		status = 405;
		reason = "Method Not Allowed";
		pv_buf_puts(&body, "only GET /metrics is served here\n");
	} else {
		status = 404;
		reason = "Not Found";
		pv_buf_puts(&body, "only GET /metrics is served here\n");
	}
	pv_buf_printf(&head,
		      "HTTP/1.1 %d %s\r\nContent-Type: text/plain; version=0.0.4; "
		      "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		      status, reason, body.len);
	send_all(fd, head.data, head.len);
	if (strncmp(req, "HEAD ", 5) != 0 && body.len)
		send_all(fd, body.data, body.len);
	pv_buf_free(&head);
	pv_buf_free(&body);
}

static void *listener_main(void *arg)
{
	struct pv_prom *p = arg;

	while (!atomic_load(&p->stop)) {
		struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
		int fd;

		/* Woken twice a second to notice a stop. */
		if (poll(&pfd, 1, 500) <= 0)
			continue;
		fd = accept(p->fd, NULL, NULL);
		if (fd < 0) {
			if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
				pv_log_warn("metrics", "accept");
			continue;
		}
		serve(p, fd);
		close(fd);
	}
	return NULL;
}

enum pv_err pv_prom_listen(struct pv_prom *p, const char *addr, struct pv_error *err)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	const char *colon = strrchr(addr, ':');
	char host[64];
	char *end;
	long port;
	int one = 1, rc;

	if (!colon || (size_t)(colon - addr) >= sizeof host)
		return pv_error_set(err, PV_ERR_CONFIG, "metrics address \"%s\" is not HOST:PORT",
				    addr);
	snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
		return pv_error_set(err, PV_ERR_CONFIG, "metrics address \"%s\": bad port", addr);
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return pv_error_set(err, PV_ERR_CONFIG,
				    "metrics address \"%s\": \"%s\" is not an IPv4 address", addr,
				    host);
	sin.sin_port = htons((uint16_t)port);
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		return pv_error_set(err, PV_ERR_SYSTEM, "metrics: socket: %s", strerror(errno));
	setsockopt(p->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(p->fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(p->fd, 16) != 0) {
		int e = errno;

		close(p->fd);
		p->fd = -1;
		return pv_error_set(err, PV_ERR_SYSTEM, "metrics: cannot listen on %s: %s", addr,
				    strerror(e));
	}
	rc = pthread_create(&p->thread, NULL, listener_main, p);
	if (rc != 0) {
		close(p->fd);
		p->fd = -1;
		return pv_error_set(err, PV_ERR_SYSTEM, "metrics: starting the listener thread: %s",
				    strerror(rc));
	}
	p->listening = true;
	return PV_OK;
}
