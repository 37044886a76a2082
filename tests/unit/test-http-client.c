/* lib/http_client.c: header capture, the body cap, failure naming, the
 * transport hook, and, against a tiny HTTP/1.1 server this test runs on
 * loopback in its own threads, keep-alive, requests as sent, timeouts,
 * broken connections and the bound on concurrent requests.  The server
 * cases skip (saying why) where no loopback socket can be had, as in some
 * build chroots. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http_client.h"

#include "pv_test.h"

/* ---- the server ------------------------------------------------------------ */

#define MAX_CONNS 64

static struct {
	int listen_fd;
	int port;
	int stop[2]; /* readable once the server stops */
	pthread_t acceptor;
	pthread_mutex_t lock;
	pthread_t conn_threads[MAX_CONNS];
	int conn_fds[MAX_CONNS];
	int conns; /* accepted */
	int busy, max_busy;
	char last_method[16];
	char last_test_header[64];
	char last_body[256];
} srv;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits ms or until the server stops; true when it stopped. */
static bool wait_or_stop(int ms)
{
	struct pollfd p = {srv.stop[0], POLLIN, 0};

	return poll(&p, 1, ms) > 0;
}

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

static void answer(int fd, const char *status_line, const char *headers, const char *body,
		   size_t body_len)
{
	char head[512];
	int n = snprintf(head, sizeof head, "%s\r\n%sContent-Length: %zu\r\n\r\n", status_line,
			 headers, body_len);

	send_all(fd, head, (size_t)n);
	send_all(fd, body, body_len);
}

/* Reads one request into buf (headers and body); false at the end. */
static bool read_request(int fd, char *buf, size_t size, size_t *head_len, size_t *body_len)
{
	size_t got = 0, want = 0;
	char *end = NULL;

	for (;;) {
		struct pollfd p[2] = {{fd, POLLIN, 0}, {srv.stop[0], POLLIN, 0}};
		ssize_t n;

		if (poll(p, 2, -1) < 0 || p[1].revents)
			return false;
		n = recv(fd, buf + got, size - 1 - got, 0);
		if (n <= 0)
			return false;
		got += (size_t)n;
		buf[got] = '\0';
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			const char *cl = strstr(buf, "Content-Length: ");
			*head_len = (size_t)(end + 4 - buf);
			want = cl && cl < end ? (size_t)atol(cl + 16) : 0;
		}
		if (end && got >= *head_len + want) {
			*body_len = want;
			return true;
		}
		if (got + 1 >= size)
			return false;
	}
}

static void serve(int fd, const char *method, const char *path, const char *body, size_t body_len)
{
	if (strcmp(path, "/ok") == 0) {
		answer(fd, "HTTP/1.1 200 OK Fine",
		       "Location:  /streams/x/7 \r\nes-currentversion: 7\r\nX-Other: no\r\n",
		       "hello", 5);
	} else if (strncmp(path, "/big/", 5) == 0) {
		size_t n = (size_t)atol(path + 5);
		char *b = malloc(n ? n : 1);

		memset(b, 'x', n);
		answer(fd, "HTTP/1.1 200 OK", "", b, n);
		free(b);
	} else if (strcmp(path, "/slow") == 0) {
		if (!wait_or_stop(200))
			answer(fd, "HTTP/1.1 200 OK", "", "slow", 4);
	} else if (strcmp(path, "/hang") == 0) {
		wait_or_stop(5000);
	} else if (strcmp(path, "/echo") == 0) {
		char out[300];
		int n = snprintf(out, sizeof out, "%s %.*s", method, (int)body_len, body);

		answer(fd, "HTTP/1.1 200 OK", "", out, (size_t)n);
	} else {
		answer(fd, "HTTP/1.1 404 Not Found", "", "", 0);
	}
}

static void *connection(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[8192];
	size_t head_len, body_len;

	while (read_request(fd, buf, sizeof buf, &head_len, &body_len)) {
		char method[16] = "", path[128] = "";
		const char *h = strstr(buf, "\r\nX-Test: ");

		sscanf(buf, "%15s %127s", method, path);
		pthread_mutex_lock(&srv.lock);
		snprintf(srv.last_method, sizeof srv.last_method, "%s", method);
		snprintf(srv.last_test_header, sizeof srv.last_test_header, "%.*s",
			 h ? (int)strcspn(h + 10, "\r") : 0, h ? h + 10 : "");
		snprintf(srv.last_body, sizeof srv.last_body, "%.*s", (int)body_len,
			 buf + head_len);
		if (++srv.busy > srv.max_busy)
			srv.max_busy = srv.busy;
		pthread_mutex_unlock(&srv.lock);
		if (strcmp(path, "/close") == 0) {
			pthread_mutex_lock(&srv.lock);
			srv.busy--;
			pthread_mutex_unlock(&srv.lock);
			break;
		}
		serve(fd, method, path, buf + head_len, body_len);
		pthread_mutex_lock(&srv.lock);
		srv.busy--;
		pthread_mutex_unlock(&srv.lock);
	}
	shutdown(fd, SHUT_RDWR);
	return NULL;
}

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p[2] = {{srv.listen_fd, POLLIN, 0}, {srv.stop[0], POLLIN, 0}};
		int fd;

		if (poll(p, 2, -1) < 0 || p[1].revents)
			return NULL;
		fd = accept(srv.listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&srv.lock);
		if (srv.conns == MAX_CONNS) {
			pthread_mutex_unlock(&srv.lock);
			close(fd);
			continue;
		}
		srv.conn_fds[srv.conns] = fd;
		pthread_create(&srv.conn_threads[srv.conns], NULL, connection,
			       (void *)(intptr_t)fd);
		srv.conns++;
		pthread_mutex_unlock(&srv.lock);
	}
}

static int server_start(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;

	(void)state;
	memset(&srv, 0, sizeof srv);
	pthread_mutex_init(&srv.lock, NULL);
	srv.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (srv.listen_fd < 0 || bind(srv.listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(srv.listen_fd, 16) != 0 ||
	    getsockname(srv.listen_fd, (struct sockaddr *)&a, &len) != 0 || pipe(srv.stop) != 0) {
		if (srv.listen_fd >= 0)
			close(srv.listen_fd);
		srv.listen_fd = -1;
		return 0; /* the cases skip */
	}
	srv.port = ntohs(a.sin_port);
	pthread_create(&srv.acceptor, NULL, acceptor, NULL);
	return 0;
}

static int server_stop(void **state)
{
	(void)state;
	if (srv.listen_fd < 0)
		return 0;
	(void)!write(srv.stop[1], "x", 1);
	pthread_join(srv.acceptor, NULL);
	for (int i = 0; i < srv.conns; i++) {
		pthread_join(srv.conn_threads[i], NULL);
		close(srv.conn_fds[i]);
	}
	close(srv.listen_fd);
	close(srv.stop[0]);
	close(srv.stop[1]);
	pthread_mutex_destroy(&srv.lock);
	return 0;
}

#define NEED_SERVER()                                                                              \
	do {                                                                                       \
		if (srv.listen_fd < 0)                                                             \
			skip(); /* no loopback socket here */                                      \
	} while (0)

static struct pv_http_client *client(long timeout_ms, size_t max_body, size_t in_flight)
{
	struct pv_http_client_options o = {.who = "test",
					   .timeout_ms = timeout_ms,
					   .http1_1 = true,
					   .max_body = max_body,
					   .in_flight = in_flight};
	struct pv_http_client *h = NULL;
	struct pv_error err;

	assert_int_equal(pv_http_client_open(&o, &h, &err), PV_OK);
	return h;
}

static char *url(const char *path)
{
	static char buf[8][128];
	static int next;
	char *u = buf[next++ % 8];

	snprintf(u, sizeof buf[0], "http://127.0.0.1:%d%s", srv.port, path);
	return u;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static const char *const want[] = {"Location", "ES-CurrentVersion", NULL};

/* ---- without a server ------------------------------------------------------ */

static void headers_are_kept_as_asked(void **state)
{
	struct pv_http_answer a;
	char *v;

	(void)state;
	pv_http_answer_init(&a, want);
	pv_http_answer_header(&a, "HTTP/1.1 100 Continue\r\n", 23);
	pv_http_answer_header(&a, "Location: /a\r\n", 14);
	assert_string_equal(pv_http_answer_get(&a, "location"), "/a");
	/* A new status line starts the header set again. */
	pv_http_answer_header(&a, "HTTP/1.1 400 Wrong \x01 version\r\n", 30);
	assert_null(pv_http_answer_get(&a, "Location"));
	assert_null(strchr(a.reason, '\x01'));
	assert_non_null(strstr(a.reason, "Wrong"));
	pv_http_answer_header(&a, "location:\t/b \r\n", 15);
	pv_http_answer_header(&a, "ES-CurrentVersion: 1\r\n", 22);
	pv_http_answer_header(&a, "es-currentversion:  2 \r\n", 24);
	pv_http_answer_header(&a, "X-Unasked: 3\r\n", 14);
	pv_http_answer_header(&a, "no colon here\r\n", 15);
	assert_string_equal(pv_http_answer_get(&a, "Location"), "/b");
	assert_string_equal(pv_http_answer_get(&a, "ES-CurrentVersion"), "2");
	assert_null(pv_http_answer_get(&a, "X-Unasked"));
	v = pv_http_answer_take(&a, "Location");
	assert_string_equal(v, "/b");
	assert_null(pv_http_answer_get(&a, "Location"));
	free(v);
	pv_http_answer_clear(&a);
	assert_null(pv_http_answer_get(&a, "ES-CurrentVersion"));
}

static void the_body_stops_at_the_cap(void **state)
{
	struct pv_buf b = PV_BUF_INIT;
	struct pv_http_answer a;

	(void)state;
	assert_true(pv_http_client_body_add(&b, 10, "123456", 6));
	assert_false(pv_http_client_body_add(&b, 10, "12345", 5));
	assert_int_equal(b.len, 6);
	assert_true(pv_http_client_body_add(&b, 10, "1234", 4));
	assert_false(pv_http_client_body_add(&b, 10, "1", 1));
	/* No overflow in the comparison. */
	assert_false(pv_http_client_body_add(&b, 10, "1", SIZE_MAX));
	assert_int_equal(b.len, 10);
	pv_buf_free(&b);

	pv_http_answer_init(&a, NULL);
	a.max_body = 4;
	assert_true(pv_http_answer_body(&a, "ab", 2));
	assert_false(pv_http_answer_body(&a, "cde", 3));
	assert_true(a.too_large);
	assert_int_equal(a.body.len, 2);
	pv_http_answer_clear(&a);
}

static void libcurl_failures_are_named_once(void **state)
{
	struct pv_error err;
	enum pv_http_failure f;
	char expected[256];

	(void)state;
	assert_int_equal(pv_http_client_curl_error(&err, CURLE_COULDNT_CONNECT, "", &f,
						   "esdb: POST %s", "http://h/streams/X"),
			 PV_ERR_UNAVAILABLE);
	assert_int_equal(f, PV_HTTP_UNSENT);
	/* libcurl's own words differ between releases ("Couldn't" in 7.88,
	 * "Could not" in 8.x): the one linked says them. */
	snprintf(expected, sizeof expected, "esdb: POST http://h/streams/X: libcurl: %s",
		 curl_easy_strerror(CURLE_COULDNT_CONNECT));
	assert_string_equal(err.msg, expected);
	assert_int_equal(
		pv_http_client_curl_error(&err, CURLE_RECV_ERROR, "Connection reset", &f, "x"),
		PV_ERR_UNAVAILABLE);
	assert_int_equal(f, PV_HTTP_BROKEN);
	assert_string_equal(err.msg, "x: libcurl: Connection reset");
	assert_int_equal(pv_http_client_curl_error(&err, CURLE_OPERATION_TIMEDOUT, NULL, &f, "x"),
			 PV_ERR_TIMEOUT);
	assert_int_equal(f, PV_HTTP_TIMED_OUT);
	assert_int_equal(pv_http_client_curl_error(&err, CURLE_SSL_CACERT_BADFILE, NULL, &f, "x"),
			 PV_ERR_CONFIG);
	assert_int_equal(f, PV_HTTP_FAILED);
	assert_int_equal(pv_http_client_curl_error(&err, CURLE_TOO_MANY_REDIRECTS, NULL, NULL, "x"),
			 PV_ERR_HTTP);
}

static enum pv_err hook_refuses(void *ctx, const char *method, const char *u,
				struct pv_http_answer *a, struct pv_error *err)
{
	(void)ctx;
	(void)method;
	(void)u;
	(void)a;
	return pv_error_set(err, PV_ERR_UNAVAILABLE, "nobody home");
}

static enum pv_err hook_floods(void *ctx, const char *method, const char *u,
			       struct pv_http_answer *a, struct pv_error *err)
{
	(void)ctx;
	(void)method;
	(void)u;
	(void)err;
	pv_http_answer_header(a, "HTTP/1.1 200 OK\r\n", 17);
	pv_http_answer_status(a, 200);
	pv_http_answer_body(a, "0123456789", 10);
	return PV_OK;
}

static void the_transport_hook_answers(void **state)
{
	struct pv_http_client *h = client(1000, 8, 2);
	struct pv_http_call rq = {.method = "GET", .url = "http://127.0.0.1:1/x"};
	struct pv_http_answer a;
	struct pv_error err;

	(void)state;
	pv_http_answer_init(&a, NULL);
	pv_http_client_set_transport(h, hook_refuses, NULL);
	assert_true(pv_http_client_is_hooked(h));
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_ERR_UNAVAILABLE);
	assert_int_equal(a.failure, PV_HTTP_BROKEN);
	assert_string_equal(err.msg, "test: GET http://127.0.0.1:1/x: nobody home");
	pv_http_client_set_transport(h, hook_floods, NULL);
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_ERR_TOO_LARGE);
	assert_non_null(strstr(err.msg, "larger than 8 bytes"));
	assert_int_equal(a.status, 0);
	pv_http_answer_clear(&a);
	pv_http_client_close(h);
}

/* ---- against the server ------------------------------------------------------ */

static void an_answer_and_its_headers(void **state)
{
	struct pv_http_client *h;
	struct pv_http_call rq = {.method = "GET"};
	struct pv_http_answer a;
	struct pv_error err;

	(void)state;
	NEED_SERVER();
	h = client(5000, 1000, 1);
	pv_http_answer_init(&a, want);
	rq.url = url("/ok");
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_OK);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.reason, "OK Fine");
	assert_string_equal(a.body.data, "hello");
	assert_string_equal(pv_http_answer_get(&a, "Location"), "/streams/x/7");
	assert_string_equal(pv_http_answer_get(&a, "ES-CurrentVersion"), "7");
	/* Kept alive: the second request goes over the same connection. */
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_OK);
	assert_int_equal(a.status, 200);
	assert_int_equal(srv.conns, 1);
	/* Any status is an answer. */
	rq.url = url("/nowhere");
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_OK);
	assert_int_equal(a.status, 404);
	assert_null(pv_http_answer_get(&a, "Location"));
	pv_http_answer_clear(&a);
	pv_http_client_close(h);
}

static void requests_go_out_as_made(void **state)
{
	struct pv_http_client *h;
	struct pv_http_header_list hs = {0};
	struct pv_http_call rq = {.method = "PUT", .body = "{\"a\":1}", .body_len = 7};
	struct pv_http_answer a;
	struct pv_error err;

	(void)state;
	NEED_SERVER();
	h = client(5000, 1000, 1);
	pv_http_answer_init(&a, NULL);
	pv_http_header_list_add(&hs, "X-Test", "one two");
	rq.headers = &hs;
	rq.url = url("/echo");
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_OK);
	assert_string_equal(a.body.data, "PUT {\"a\":1}");
	assert_string_equal(srv.last_test_header, "one two");
	rq = (struct pv_http_call){.method = "POST", .url = url("/echo")};
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_OK);
	assert_string_equal(a.body.data, "POST ");
	rq = (struct pv_http_call){.method = "DELETE", .url = url("/echo")};
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_OK);
	assert_string_equal(a.body.data, "DELETE ");
	rq = (struct pv_http_call){.method = "GET", .url = url("/echo")};
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_OK);
	assert_string_equal(a.body.data, "GET ");
	assert_string_equal(srv.last_test_header, "");
	pv_http_header_list_clear(&hs);
	pv_http_answer_clear(&a);
	pv_http_client_close(h);
}

static void a_body_over_the_cap_stops_the_transfer(void **state)
{
	struct pv_http_client *h;
	struct pv_http_call rq = {.method = "GET"};
	struct pv_http_answer a;
	struct pv_error err;

	(void)state;
	NEED_SERVER();
	h = client(5000, 1000, 1);
	pv_http_answer_init(&a, NULL);
	rq.url = url("/big/1000");
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_OK);
	assert_int_equal(a.body.len, 1000);
	rq.url = url("/big/1001");
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_ERR_TOO_LARGE);
	assert_true(a.body.len <= 1000);
	assert_int_equal(a.status, 0);
	assert_non_null(strstr(err.msg, "answer larger than 1000 bytes"));
	rq.url = url("/big/3000000");
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_ERR_TOO_LARGE);
	assert_true(a.body.len <= 1000);
	/* Still usable afterwards. */
	rq.url = url("/ok");
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_OK);
	assert_int_equal(a.status, 200);
	pv_http_answer_clear(&a);
	pv_http_client_close(h);
}

static void failures_say_how_they_failed(void **state)
{
	struct pv_http_client *h;
	struct pv_http_call rq = {.method = "POST"};
	struct pv_http_answer a;
	struct pv_error err;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	char dead[64], prefix[128];
	int fd;
	int64_t t0;

	(void)state;
	NEED_SERVER();
	h = client(300, 1000, 1);
	pv_http_answer_init(&a, NULL);

	/* A port nobody listens on: bound, then closed. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(dead, sizeof dead, "http://127.0.0.1:%d/streams/X", ntohs(sa.sin_port));
	rq.url = dead;
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_ERR_UNAVAILABLE);
	assert_int_equal(a.failure, PV_HTTP_UNSENT);
	snprintf(prefix, sizeof prefix, "test: POST %s: libcurl: ", dead);
	assert_memory_equal(err.msg, prefix, strlen(prefix));
	assert_int_equal(count(err.msg, "libcurl"), 1);
	assert_int_equal(count(err.msg, "test:"), 1);
	assert_int_equal(count(err.msg, dead), 1);

	/* Closed without an answer. */
	rq.url = url("/close");
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_ERR_UNAVAILABLE);
	assert_int_equal(a.failure, PV_HTTP_BROKEN);

	/* No answer within the timeout. */
	rq.url = url("/hang");
	t0 = now_ms();
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_ERR_TIMEOUT);
	assert_int_equal(a.failure, PV_HTTP_TIMED_OUT);
	assert_true(now_ms() - t0 < 3000);
	pv_http_client_close(h);

	/* A long poll's request gets its extra time on top of the timeout. */
	h = client(100, 1000, 1);
	rq = (struct pv_http_call){.method = "GET", .url = url("/slow")};
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_ERR_TIMEOUT);
	rq.extra_timeout_ms = 2000;
	assert_int_equal(pv_http_client_run(h, &rq, &a, &err), PV_OK);
	assert_int_equal(a.status, 200);
	pv_http_answer_clear(&a);
	pv_http_client_close(h);
}

static void concurrent_requests_stay_within_the_bound(void **state)
{
	enum { N = 9 };
	struct pv_http_client *h;
	struct pv_http_call rq[N];
	struct pv_http_answer a[N];
	struct pv_http_exchange x[N], *xs[N];
	int64_t t0;

	(void)state;
	NEED_SERVER();
	h = client(5000, 1000, 3);
	for (int i = 0; i < N; i++) {
		/* One of them is cut off: it fails alone. */
		rq[i] = (struct pv_http_call){.method = "GET",
					      .url = url(i == 4 ? "/close" : "/slow")};
		pv_http_answer_init(&a[i], NULL);
		x[i] = (struct pv_http_exchange){.rq = &rq[i], .resp = &a[i]};
		xs[i] = &x[i];
	}
	t0 = now_ms();
	pv_http_client_run_many(h, xs, N);
	for (int i = 0; i < N; i++) {
		if (i == 4) {
			assert_int_equal(x[i].code, PV_ERR_UNAVAILABLE);
			assert_int_equal(a[i].failure, PV_HTTP_BROKEN);
			continue;
		}
		assert_int_equal(x[i].code, PV_OK);
		assert_int_equal(a[i].status, 200);
		assert_string_equal(a[i].body.data, "slow");
	}
	/* Three at a time: never more, and the requests did overlap (one at
	 * a time would take 8 x 200 ms). */
	assert_int_equal(srv.max_busy, 3);
	assert_true(now_ms() - t0 < 8 * 200);
	/* Again, on the kept-alive connections. */
	pthread_mutex_lock(&srv.lock);
	int before = srv.conns;
	srv.max_busy = 0;
	pthread_mutex_unlock(&srv.lock);
	rq[4].url = url("/slow");
	pv_http_client_run_many(h, xs, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(x[i].code, PV_OK);
	assert_int_equal(srv.max_busy, 3);
	assert_true(srv.conns - before < N);
	for (int i = 0; i < N; i++)
		pv_http_answer_clear(&a[i]);
	pv_http_client_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(headers_are_kept_as_asked),
		cmocka_unit_test(the_body_stops_at_the_cap),
		cmocka_unit_test(libcurl_failures_are_named_once),
		cmocka_unit_test(the_transport_hook_answers),
		cmocka_unit_test_setup_teardown(an_answer_and_its_headers, server_start,
						server_stop),
		cmocka_unit_test_setup_teardown(requests_go_out_as_made, server_start, server_stop),
		cmocka_unit_test_setup_teardown(a_body_over_the_cap_stops_the_transfer,
						server_start, server_stop),
		cmocka_unit_test_setup_teardown(failures_say_how_they_failed, server_start,
						server_stop),
		cmocka_unit_test_setup_teardown(concurrent_requests_stay_within_the_bound,
						server_start, server_stop),
	};

	return PV_RUN_TESTS(tests);
}
