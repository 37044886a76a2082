/* Confirmed, pipelined publishing (design in amqp_publisher.h).
 *
 * Jobs and who frees them.  A job is created by the request thread and
 * lives on one of two lists guarded by pub->lock:
 *
 *   queue   submitted, not yet published (FIFO);
 *   flight  published on the current channel, in delivery-tag order,
 *           waiting for basic.ack / basic.nack.
 *
 * The publisher thread moves jobs from queue to flight (assigning the next
 * delivery tag) and finishes them on a confirm, or with PV_ERR_UNAVAILABLE
 * when the connection goes.  Finishing a job sets state DONE and posts its
 * semaphore; the waiting request thread then reads the result and frees the
 * job.  The post comes only after pub->lock is released (finished jobs wait
 * on pub->finished until then): a thread woken while the publisher thread
 * still held the lock would at once block on it again, two more switches
 * per request on a busy machine.  A request thread that gives up (timeout)
 * sets `abandoned` instead, and then the publisher thread frees the job
 * when it would have finished it (or skips it unpublished if it is still
 * queued).  So a job is freed exactly once, by the side that sees the other
 * one gone; a job found DONE at the timeout is waited for until its post.
 *
 * Confirms may cover many tags at once (multiple = true): every job in
 * flight with a tag at or below it is finished.  A message the broker
 * could not route comes back as basic.return (header and body frames
 * follow) before its ack; the job is marked returned and the ack then
 * finishes it as a failure, because nothing would consume it.
 *
 * The connection is only ever touched by the publisher thread.  It sleeps
 * in poll() on the socket and an eventfd that submitters write to, never
 * longer than half a second, so heartbeats are sent and missed ones noticed.
 *
 * Health (pv_amqp_publisher_health): a connection can be open and still
 * useless, with the broker hung (SIGSTOP, a full disk) or blocking
 * publishers (connection.blocked, a memory or disk alarm).  The thread
 * notes when the broker last sent anything, and when it has heard nothing
 * for PING_MS it sends a basic.qos on the channel, whose qos-ok is the
 * broker's proof of life; blocked/unblocked arrive on channel 0 because
 * the connection announces that capability (amqp_conn.c). */

#include "amqp_publisher.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "thread.h"
#include "xalloc.h"

#define CHANNEL 1
/* Small and capped low: a broker that is back is found within a quarter
 * of a second (writes must work again within one), and a refused
 * connection costs a round trip. */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 250
#define PING_MS 500
#define POLL_MS 500

enum job_state { JOB_QUEUED, JOB_INFLIGHT, JOB_DONE };

struct job {
	struct job *next;
	enum job_state state;
	bool abandoned;
	bool returned;
	bool maybe_published; /* failed after it was handed to the socket */
	uint64_t tag;
	enum pv_err result;
	char reason[256];
	sem_t done;

	/* The message: one allocation with the job, strings after it. */
	char *routing_key;
	void *body;
	size_t body_len;
	char *content_type;
	char *message_id;
	char *type;
	uint64_t timestamp;
	char *user;
	char *correlation_id;
	char *source;
};

struct job_list {
	struct job *head;
	struct job *tail;
};

struct pv_amqp_publisher {
	struct pv_amqp_params params;
	pthread_t thread;
	int wake_fd;

	pthread_mutex_t lock;
	pthread_cond_t connected_cond;
	bool stop;
	bool connected;
	struct job_list queue;
	struct job_list flight;
	struct job *finished; /* done, to be posted once the lock is released */
	struct pv_amqp_publisher_stats stats;
	bool blocked;
	char blocked_reason[128];
	struct timespec heard; /* CLOCK_MONOTONIC: the broker's last frame */
	time_t heard_wall;     /* the same on the wall clock */
	char state_error[512]; /* why the last connection failed or ended */

	/* Publisher thread only. */
	amqp_connection_state_t conn;
	uint64_t next_tag;
	uint64_t return_remaining; /* body bytes of a basic.return still to skip */
	bool in_return;
	bool ping_out; /* a basic.qos waits for its qos-ok */
	char last_error[512];
};

static double seconds_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* The broker said something: it is alive.  Called with pub->lock held. */
static void heard(struct pv_amqp_publisher *pub)
{
	clock_gettime(CLOCK_MONOTONIC, &pub->heard);
	pub->heard_wall = time(NULL);
}

/* Copies s (NULL stays NULL) to *at and moves *at past it. */
static char *place(char **at, const char *s)
{
	char *copy = *at;
	size_t n;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	memcpy(copy, s, n);
	*at += n;
	return copy;
}

static size_t size_or_zero(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static struct job *job_new(const struct pv_amqp_message *m)
{
	const char *key = m->routing_key ? m->routing_key : "";
	size_t size = sizeof(struct job) + m->body_len + size_or_zero(key) +
		      size_or_zero(m->content_type) + size_or_zero(m->message_id) +
		      size_or_zero(m->type) + size_or_zero(m->user) +
		      size_or_zero(m->correlation_id) + size_or_zero(m->source);
	struct job *j = pv_xcalloc(1, size);
	char *at = (char *)(j + 1);

	if (sem_init(&j->done, 0, 0) != 0)
		pv_log_fatal("amqp", "sem_init");
	j->body = at;
	memcpy(at, m->body, m->body_len);
	at += m->body_len;
	j->body_len = m->body_len;
	j->routing_key = place(&at, key);
	j->content_type = place(&at, m->content_type);
	j->message_id = place(&at, m->message_id);
	j->type = place(&at, m->type);
	j->timestamp = m->timestamp;
	j->user = place(&at, m->user);
	j->correlation_id = place(&at, m->correlation_id);
	j->source = place(&at, m->source);
	return j;
}

static void job_free(struct job *j)
{
	sem_destroy(&j->done);
	free(j);
}

static void list_append(struct job_list *l, struct job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

/* Called with pub->lock held; j is on no list any more. */
static void job_finish(struct pv_amqp_publisher *pub, struct job *j, enum pv_err result,
		       const char *reason)
{
	if (result == PV_OK)
		pub->stats.acked++;
	else if (result == PV_ERR_BROKER)
		pub->stats.nacked++;
	else
		pub->stats.failed++;
	if (j->abandoned) {
		job_free(j);
		return;
	}
	/* Sent and then lost, nacked or timed out: the broker may hold it.  A
	 * returned message was routed to no queue, so nothing will see it. */
	j->maybe_published = result != PV_OK && j->state == JOB_INFLIGHT && !j->returned;
	j->state = JOB_DONE;
	j->result = result;
	snprintf(j->reason, sizeof j->reason, "%s", reason ? reason : "");
	j->next = pub->finished;
	pub->finished = j;
}

/* Releases pub->lock, then wakes the owners of the jobs finished under it.
 * A job may be freed by its owner as soon as it is posted: read next first. */
static void unlock_and_post(struct pv_amqp_publisher *pub)
{
	struct job *j = pub->finished;

	pub->finished = NULL;
	pthread_mutex_unlock(&pub->lock);
	while (j) {
		struct job *next = j->next;

		sem_post(&j->done);
		j = next;
	}
}

static void fail_list(struct pv_amqp_publisher *pub, struct job_list *l, const char *reason)
{
	struct job *j = l->head;

	while (j) {
		struct job *next = j->next;
		job_finish(pub, j, PV_ERR_UNAVAILABLE, reason);
		j = next;
	}
	l->head = l->tail = NULL;
}

static void wake(struct pv_amqp_publisher *pub)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: awake anyway. */
	if (write(pub->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
		pv_log_warn("amqp", "waking the publisher thread");
}

static void drain_wake(struct pv_amqp_publisher *pub)
{
	uint64_t v;

	if (read(pub->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
		pv_log_warn("amqp", "reading the publisher eventfd");
}

/* Sleeps ms unless woken for stop; returns true if stopping. */
static bool sleep_unless_stopped(struct pv_amqp_publisher *pub, int ms)
{
	struct pollfd pfd = {.fd = pub->wake_fd, .events = POLLIN};
	bool stop;

	if (poll(&pfd, 1, ms) > 0)
		drain_wake(pub);
	pthread_mutex_lock(&pub->lock);
	stop = pub->stop;
	pthread_mutex_unlock(&pub->lock);
	return stop;
}

static void drop_connection(struct pv_amqp_publisher *pub, const char *reason, bool polite)
{
	pthread_mutex_lock(&pub->lock);
	pub->connected = false;
	pub->blocked = false;
	snprintf(pub->state_error, sizeof pub->state_error, "%s", pub->last_error);
	fail_list(pub, &pub->flight, reason);
	fail_list(pub, &pub->queue, reason);
	unlock_and_post(pub);
	if (polite)
		pv_amqp_disconnect(pub->conn);
	else
		amqp_destroy_connection(pub->conn);
	pub->conn = NULL;
	pub->in_return = false;
}

static enum pv_err open_connection(struct pv_amqp_publisher *pub, struct pv_error *err)
{
	amqp_connection_state_t conn;
	enum pv_err rc;

	rc = pv_amqp_connect(&pub->params, &conn, err);
	if (rc != PV_OK)
		return rc;
	rc = pv_amqp_declare_topology(conn, &pub->params, err);
	if (rc == PV_OK) {
		amqp_confirm_select(conn, CHANNEL);
		rc = pv_amqp_reply_check(amqp_get_rpc_reply(conn), "confirm.select", err);
	}
	if (rc != PV_OK) {
		pv_amqp_disconnect(conn);
		return rc;
	}
	pub->conn = conn;
	pub->next_tag = 1;
	pub->in_return = false;
	pub->ping_out = false;
	return PV_OK;
}

static void set_header(amqp_table_entry_t *e, const char *key, const char *value)
{
	e->key = amqp_cstring_bytes(key);
	e->value.kind = AMQP_FIELD_KIND_UTF8;
	e->value.value.bytes = amqp_cstring_bytes(value);
}

static int publish_job(struct pv_amqp_publisher *pub, const struct job *j)
{
	amqp_basic_properties_t props;
	amqp_table_entry_t headers[3];
	int n = 0;

	memset(&props, 0, sizeof props);
	props._flags =
		AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG;
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props.timestamp = j->timestamp;
	props.app_id = amqp_cstring_bytes("photovote");
	if (j->content_type) {
		props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
		props.content_type = amqp_cstring_bytes(j->content_type);
	}
	if (j->message_id) {
		props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		props.message_id = amqp_cstring_bytes(j->message_id);
	}
	if (j->type) {
		props._flags |= AMQP_BASIC_TYPE_FLAG;
		props.type = amqp_cstring_bytes(j->type);
	}
	if (j->correlation_id) {
		props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
		props.correlation_id = amqp_cstring_bytes(j->correlation_id);
		set_header(&headers[n++], "correlation_id", j->correlation_id);
	}
	if (j->user)
		set_header(&headers[n++], "user", j->user);
	if (j->source)
		set_header(&headers[n++], "source", j->source);
	if (n) {
		props._flags |= AMQP_BASIC_HEADERS_FLAG;
		props.headers.num_entries = n;
		props.headers.entries = headers;
	}
	/* mandatory: an unroutable message comes back instead of vanishing. */
	return amqp_basic_publish(pub->conn, CHANNEL, amqp_cstring_bytes(pub->params.exchange),
				  amqp_cstring_bytes(j->routing_key), 1, 0, &props,
				  (amqp_bytes_t){.len = j->body_len, .bytes = j->body});
}

/* amqp_basic_publish() ends every message with a send() without MSG_MORE,
 * so each message would leave as its own TCP segment, which the broker
 * reads and handles one by one.  Corking the socket around a burst sends
 * it as few full segments instead.  Only an optimisation: a failure
 * changes nothing but the segment count. */
static void cork(struct pv_amqp_publisher *pub, int on)
{
	(void)setsockopt(amqp_get_sockfd(pub->conn), IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

/* Moves the queue into flight with tags, then publishes those jobs in one
 * burst.  Returns a librabbitmq status (< 0: the connection is unusable). */
static int publish_queued(struct pv_amqp_publisher *pub)
{
	struct job *batch = NULL, *last = NULL;
	uint64_t count = 0, sent = 0;
	int status = AMQP_STATUS_OK;

	pthread_mutex_lock(&pub->lock);
	for (struct job *j = pub->queue.head, *next; j; j = next) {
		next = j->next;
		if (j->abandoned) {
			job_free(j);
			continue;
		}
		j->state = JOB_INFLIGHT;
		j->tag = pub->next_tag++;
		list_append(&pub->flight, j);
		if (!batch)
			batch = j;
		last = j;
		count++;
	}
	pub->queue.head = pub->queue.tail = NULL;
	pthread_mutex_unlock(&pub->lock);
	if (!count)
		return AMQP_STATUS_OK;

	/* Jobs in flight are freed only by this thread, so the batch (which
	 * ends at `last`) stays valid while the lock is not held; their
	 * message fields never change after submission. */
	if (count > 1)
		cork(pub, 1);
	for (struct job *j = batch; j; j = j->next) {
		status = publish_job(pub, j);
		if (status < 0)
			break;
		sent++;
		if (j == last)
			break;
	}
	if (count > 1)
		cork(pub, 0);
	pthread_mutex_lock(&pub->lock);
	pub->stats.published += sent;
	pub->stats.batches++;
	pthread_mutex_unlock(&pub->lock);
	return status;
}

static void confirm(struct pv_amqp_publisher *pub, uint64_t tag, bool multiple, bool ack)
{
	struct job *prev = NULL, *j;

	pthread_mutex_lock(&pub->lock);
	j = pub->flight.head;
	while (j) {
		struct job *next = j->next;

		if (j->tag > tag)
			break;
		if (multiple || j->tag == tag) {
			if (prev)
				prev->next = next;
			else
				pub->flight.head = next;
			if (pub->flight.tail == j)
				pub->flight.tail = prev;
			if (!ack)
				job_finish(pub, j, PV_ERR_BROKER, "the broker refused the message");
			else if (j->returned)
				job_finish(pub, j, PV_ERR_BROKER,
					   "the broker could not route the message to a queue");
			else
				job_finish(pub, j, PV_OK, NULL);
		} else {
			prev = j;
		}
		j = next;
	}
	unlock_and_post(pub);
}

static void mark_returned(struct pv_amqp_publisher *pub, amqp_bytes_t message_id)
{
	pthread_mutex_lock(&pub->lock);
	for (struct job *j = pub->flight.head; j; j = j->next) {
		if (j->message_id && !j->returned && strlen(j->message_id) == message_id.len &&
		    memcmp(j->message_id, message_id.bytes, message_id.len) == 0) {
			j->returned = true;
			break;
		}
	}
	pthread_mutex_unlock(&pub->lock);
}

/* Handles one frame; returns false if the connection must be dropped
 * (reason in pub->last_error). */
static bool handle_frame(struct pv_amqp_publisher *pub, const amqp_frame_t *f)
{
	if (f->frame_type == AMQP_FRAME_HEADER) {
		if (pub->in_return) {
			const amqp_basic_properties_t *p = f->payload.properties.decoded;

			if (p && (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG))
				mark_returned(pub, p->message_id);
			pub->return_remaining = f->payload.properties.body_size;
			pub->in_return = pub->return_remaining > 0;
		}
		return true;
	}
	if (f->frame_type == AMQP_FRAME_BODY) {
		if (pub->in_return) {
			size_t len = f->payload.body_fragment.len;

			pub->return_remaining -=
				len < pub->return_remaining ? len : pub->return_remaining;
			pub->in_return = pub->return_remaining > 0;
		}
		return true;
	}
	if (f->frame_type != AMQP_FRAME_METHOD)
		return true;

	switch (f->payload.method.id) {
	case AMQP_BASIC_ACK_METHOD: {
		const amqp_basic_ack_t *m = f->payload.method.decoded;
		confirm(pub, m->delivery_tag, m->multiple, true);
		return true;
	}
	case AMQP_BASIC_NACK_METHOD: {
		const amqp_basic_nack_t *m = f->payload.method.decoded;
		confirm(pub, m->delivery_tag, m->multiple, false);
		return true;
	}
	case AMQP_BASIC_RETURN_METHOD: {
		const amqp_basic_return_t *m = f->payload.method.decoded;
		pv_log_warnx("amqp", "message returned by the broker: %u %.*s", m->reply_code,
			     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		pub->in_return = true;
		pub->return_remaining = 0;
		return true;
	}
	case AMQP_BASIC_QOS_OK_METHOD: pub->ping_out = false; return true;
	case AMQP_CONNECTION_BLOCKED_METHOD: {
		const amqp_connection_blocked_t *m = f->payload.method.decoded;

		pthread_mutex_lock(&pub->lock);
		pub->blocked = true;
		pub->stats.blocked++;
		pv_log_escape(pub->blocked_reason, sizeof pub->blocked_reason, m->reason.bytes,
			      m->reason.len);
		pthread_mutex_unlock(&pub->lock);
		pv_log_warnx("amqp", "RabbitMQ blocked publishing: %.*s", (int)m->reason.len,
			     (const char *)m->reason.bytes);
		return true;
	}
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		pthread_mutex_lock(&pub->lock);
		pub->blocked = false;
		pthread_mutex_unlock(&pub->lock);
		pv_log_info("amqp", "RabbitMQ unblocked publishing");
		return true;
	case AMQP_CHANNEL_CLOSE_METHOD: {
		const amqp_channel_close_t *m = f->payload.method.decoded;
		snprintf(pub->last_error, sizeof pub->last_error,
			 "RabbitMQ closed the channel: %u %.*s", m->reply_code,
			 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		return false;
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		const amqp_connection_close_t *m = f->payload.method.decoded;
		amqp_connection_close_ok_t ok;

		snprintf(pub->last_error, sizeof pub->last_error,
			 "RabbitMQ closed the connection: %u %.*s", m->reply_code,
			 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		amqp_send_method(pub->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
		return false;
	}
	default: return true;
	}
}

/* Asks the broker for a sign of life when it has been silent for PING_MS
 * (a basic.qos: harmless on a publishing channel, answered by qos-ok). */
static bool ping(struct pv_amqp_publisher *pub)
{
	amqp_basic_qos_t qos = {0};
	double silent;
	int status;

	if (pub->ping_out)
		return true;
	pthread_mutex_lock(&pub->lock);
	silent = seconds_since(&pub->heard);
	pthread_mutex_unlock(&pub->lock);
	if (silent * 1000 < PING_MS)
		return true;
	status = amqp_send_method(pub->conn, CHANNEL, AMQP_BASIC_QOS_METHOD, &qos);
	if (status < 0) {
		snprintf(pub->last_error, sizeof pub->last_error, "librabbitmq: basic.qos: %s",
			 amqp_error_string2(status));
		return false;
	}
	pub->ping_out = true;
	return true;
}

/* One round while connected: publish what is queued, wait for input or a
 * wake-up, read every complete frame.  False: drop the connection. */
static bool connected_round(struct pv_amqp_publisher *pub)
{
	struct timeval zero = {0, 0};
	amqp_frame_t frame;
	int status;

	status = publish_queued(pub);
	if (status < 0) {
		snprintf(pub->last_error, sizeof pub->last_error, "librabbitmq: basic.publish: %s",
			 amqp_error_string2(status));
		return false;
	}
	if (!amqp_frames_enqueued(pub->conn) && !amqp_data_in_buffer(pub->conn)) {
		struct pollfd pfd[2] = {
			{.fd = amqp_get_sockfd(pub->conn), .events = POLLIN},
			{.fd = pub->wake_fd, .events = POLLIN},
		};

		if (poll(pfd, 2, POLL_MS) < 0 && errno != EINTR) {
			snprintf(pub->last_error, sizeof pub->last_error, "poll: %s",
				 strerror(errno));
			return false;
		}
		if (pfd[1].revents & POLLIN)
			drain_wake(pub);
	}
	for (bool any = false;; any = true) {
		status = amqp_simple_wait_frame_noblock(pub->conn, &frame, &zero);
		if (status == AMQP_STATUS_TIMEOUT) {
			if (any) {
				pthread_mutex_lock(&pub->lock);
				heard(pub);
				pthread_mutex_unlock(&pub->lock);
			}
			break;
		}
		if (status < 0) {
			snprintf(pub->last_error, sizeof pub->last_error,
				 "librabbitmq: reading from the broker: %s",
				 amqp_error_string2(status));
			return false;
		}
		if (!handle_frame(pub, &frame))
			return false;
	}
	amqp_maybe_release_buffers(pub->conn);
	return ping(pub);
}

static void *publisher_main(void *arg)
{
	struct pv_amqp_publisher *pub = arg;
	int backoff = BACKOFF_MIN_MS;
	bool stop = false;

	while (!stop) {
		pthread_mutex_lock(&pub->lock);
		stop = pub->stop;
		pthread_mutex_unlock(&pub->lock);
		if (stop)
			break;
		if (!pub->conn) {
			struct pv_error err;

			if (open_connection(pub, &err) != PV_OK) {
				/* Say it once, not every backoff round. */
				if (strcmp(err.msg, pub->last_error) != 0)
					pv_log_warnx("amqp", "%s; retrying in the background",
						     err.msg);
				snprintf(pub->last_error, sizeof pub->last_error, "%s", err.msg);
				pthread_mutex_lock(&pub->lock);
				snprintf(pub->state_error, sizeof pub->state_error, "%s", err.msg);
				fail_list(pub, &pub->queue, "the broker is unavailable");
				unlock_and_post(pub);
				stop = sleep_unless_stopped(pub, backoff);
				backoff =
					backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			pv_log_info("amqp", "connected to %s:%d, topology declared, confirms on",
				    pub->params.host, pub->params.port);
			pub->last_error[0] = '\0';
			backoff = BACKOFF_MIN_MS;
			pthread_mutex_lock(&pub->lock);
			pub->connected = true;
			pub->stats.connects++;
			heard(pub);
			pthread_cond_broadcast(&pub->connected_cond);
			pthread_mutex_unlock(&pub->lock);
		}
		if (!connected_round(pub)) {
			pv_log_warnx("amqp", "%s; reconnecting", pub->last_error);
			drop_connection(pub, "the connection to the broker was lost", false);
		}
	}
	if (pub->conn)
		drop_connection(pub, "the publisher is shutting down", true);
	pthread_mutex_lock(&pub->lock);
	fail_list(pub, &pub->queue, "the publisher is shutting down");
	unlock_and_post(pub);
	return NULL;
}

static char *dup_param(const char *s)
{
	return pv_xstrdup(s ? s : "");
}

struct pv_amqp_publisher *pv_amqp_publisher_start(const struct pv_amqp_params *params)
{
	struct pv_amqp_publisher *pub = pv_xcalloc(1, sizeof *pub);

	pub->params = *params;
	pub->params.host = dup_param(params->host);
	pub->params.vhost = dup_param(params->vhost);
	pub->params.user = dup_param(params->user);
	pub->params.password = dup_param(params->password);
	pub->params.exchange = dup_param(params->exchange);
	pub->params.queue = dup_param(params->queue);
	pub->params.dead_letter_exchange = dup_param(params->dead_letter_exchange);
	pub->params.dead_letter_queue = dup_param(params->dead_letter_queue);
	pub->params.blocked_notifications = true;
	pub->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pub->wake_fd < 0)
		pv_log_fatal("amqp", "eventfd");
	pthread_mutex_init(&pub->lock, NULL);
	pv_cond_init_monotonic(&pub->connected_cond);
	pv_thread_start(&pub->thread, publisher_main, pub, "amqp", "the publisher thread");
	return pub;
}

void pv_amqp_publisher_stop(struct pv_amqp_publisher *pub)
{
	if (!pub)
		return;
	pthread_mutex_lock(&pub->lock);
	pub->stop = true;
	pthread_cond_broadcast(&pub->connected_cond); /* requests waiting for a connection */
	pthread_mutex_unlock(&pub->lock);
	wake(pub);
	pthread_join(pub->thread, NULL);
	close(pub->wake_fd);
	pthread_cond_destroy(&pub->connected_cond);
	pthread_mutex_destroy(&pub->lock);
	pv_amqp_params_clear(&pub->params);
	free(pub);
}

static void deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Waits (lock held) until connected, stopping, or deadline; true if connected. */
static bool await_connection(struct pv_amqp_publisher *pub, const struct timespec *deadline)
{
	while (!pub->connected && !pub->stop)
		if (pthread_cond_timedwait(&pub->connected_cond, &pub->lock, deadline) == ETIMEDOUT)
			break;
	return pub->connected && !pub->stop;
}

enum pv_err pv_amqp_publisher_publish(struct pv_amqp_publisher *pub,
				      const struct pv_amqp_message *msg, int connect_wait_ms,
				      int timeout_ms, bool *maybe_published, struct pv_error *err)
{
	struct timespec deadline;
	enum pv_err rc;
	struct job *j;
	bool first;
	int waited;

	if (maybe_published)
		*maybe_published = false;
	j = job_new(msg);
	deadline_after(&deadline, connect_wait_ms > 0 ? connect_wait_ms : 0);
	/* Checked and queued under one lock: a connection that drops right
	 * after this fails the queue, so nothing waits for a dead channel.
	 * While the connection is being made (at start, or again after the
	 * broker came back) the request waits for it rather than failing. */
	pthread_mutex_lock(&pub->lock);
	if (!await_connection(pub, &deadline)) {
		pub->stats.failed++;
		pthread_mutex_unlock(&pub->lock);
		job_free(j);
		return pv_error_set(err, PV_ERR_UNAVAILABLE, "not connected to the broker");
	}
	list_append(&pub->queue, j);
	/* A queue that was not empty has woken the thread already. */
	first = pub->queue.head == j;
	pthread_mutex_unlock(&pub->lock);
	if (first)
		wake(pub);

	deadline_after(&deadline, timeout_ms);
	while ((waited = sem_clockwait(&j->done, CLOCK_MONOTONIC, &deadline)) != 0 &&
	       errno == EINTR)
		;
	if (waited != 0) {
		pthread_mutex_lock(&pub->lock);
		if (j->state != JOB_DONE) {
			/* The publisher thread frees it now (see the top); one
			 * still queued is never sent. */
			if (maybe_published)
				*maybe_published = j->state == JOB_INFLIGHT;
			j->abandoned = true;
			pub->stats.timeouts++;
			pthread_mutex_unlock(&pub->lock);
			return pv_error_set(err, PV_ERR_TIMEOUT,
					    "no confirm from the broker within %d ms", timeout_ms);
		}
		pthread_mutex_unlock(&pub->lock);
		/* Finished just now: its post is on the way, and must land
		 * before the job is freed. */
		while (sem_wait(&j->done) != 0 && errno == EINTR)
			;
	}
	rc = j->result;
	if (rc != PV_OK) {
		pv_error_set(err, rc, "%s", j->reason);
		if (maybe_published)
			*maybe_published = j->maybe_published;
	}
	job_free(j);
	return rc;
}

bool pv_amqp_publisher_connected(struct pv_amqp_publisher *pub)
{
	bool c;

	pthread_mutex_lock(&pub->lock);
	c = pub->connected;
	pthread_mutex_unlock(&pub->lock);
	return c;
}

bool pv_amqp_publisher_wait_connected(struct pv_amqp_publisher *pub, int timeout_ms)
{
	struct timespec deadline;
	bool c;

	deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&pub->lock);
	while (!pub->connected) {
		if (pthread_cond_timedwait(&pub->connected_cond, &pub->lock, &deadline) ==
		    ETIMEDOUT)
			break;
	}
	c = pub->connected;
	pthread_mutex_unlock(&pub->lock);
	return c;
}

void pv_amqp_publisher_stats(struct pv_amqp_publisher *pub, struct pv_amqp_publisher_stats *out)
{
	pthread_mutex_lock(&pub->lock);
	*out = pub->stats;
	out->connected = pub->connected;
	pthread_mutex_unlock(&pub->lock);
}

void pv_amqp_publisher_health(struct pv_amqp_publisher *pub, struct pv_amqp_publisher_health *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&pub->lock);
	out->connected = pub->connected;
	out->blocked = pub->connected && pub->blocked;
	snprintf(out->blocked_reason, sizeof out->blocked_reason, "%s", pub->blocked_reason);
	out->silent_seconds = pub->connected ? seconds_since(&pub->heard) : -1;
	out->heard_at = pub->heard_wall;
	snprintf(out->error, sizeof out->error, "%s", pub->connected ? "" : pub->state_error);
	pthread_mutex_unlock(&pub->lock);
}
