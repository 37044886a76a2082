/* The `kurrentdb` backend: KurrentDB / EventStoreDB over gRPC.
 *
 * Calls (event_store.client.streams.Streams): Append (the options, then one
 * message per event, in one request body), Read (a stream or $all, with a
 * count: the answer ends by itself), Delete (soft) and Tombstone (hard).
 * A unit of work's appends go in multi-stream AppendSession calls
 * (kurrentdb.protocol.v2.streams, KurrentDB 25.1 and later) where the
 * node's ServerFeatures offer it and [eventstore] append_sessions allows:
 * up to KDB_SESSION_MAX bytes of streams per call, each session atomic; a
 * session refused writes nothing, and its streams go again one Append each
 * for their own verdicts.  Otherwise, one Append per stream; those and the
 * unit's version checks go out at once, [eventstore] requests_in_flight at
 * a time (pv_grpc_call_many); each stream's append is atomic on its own.
 *
 * Events: data is the JSON text with content-type application/json, the
 * metadata JSON goes in custom_metadata (in a session, as the records'
 * properties: kurrentdb_props.h); ids are sent and asked for as UUID
 * strings.  An event whose content type is not JSON reads with data null.
 *
 * The category feed is $all read forwards with the server-side filter
 * "stream name starts with <category>-".  An event's position is its
 * prepare position in the log; $all is ordered by (commit, prepare), the
 * events of one append share a commit position, and a later append's
 * records all come after an earlier one's, so prepare positions increase
 * along the feed.  A read resumes from the last event delivered (a record's
 * position is the only place the server lets a read start) and skips what
 * it had; so that no append is ever cut in two by a checkpoint, a page ends
 * with a whole append (the last, possibly partial, one is left for the next
 * page, or completed when it is all the page holds).  Positions are not
 * dense (0, 1, 2, ...) as the postgres and esdb backends' are.  System
 * records ($-types: a tombstone's $streamDeleted) are skipped; the events
 * of a soft-deleted stream stay in $all, as on the server until a
 * scavenge.  A wait for new events polls the filtered read.
 *
 * The stream list scans the category's events in $all (no projection
 * needed, as with the server's defaults) and reads each stream's head.
 *
 * Nodes: the hosts of the connection string are tried in turn after a
 * transport failure; every call carries requires-leader when
 * nodePreference is leader, and a "not leader" answer names the leader, to
 * which the call goes again (writes are refused by a follower before they
 * are written, so that repeat is safe).  With +discover the hosts are
 * gossip seeds: before the first call, and again after a transport
 * failure, a seed's Gossip.Read names the cluster's members, and the calls
 * go to a live one in the state nodePreference asks for (the leader by
 * default); the redirects still follow a leader that changed since. */
#include "eventstore/kurrentdb.h"

#include "eventstore/grpc.h"
#include "eventstore/kurrentdb_conn.h"
#include "eventstore/kurrentdb_props.h"
#include "lib/eventstore/proto/gossip.pb-c.h"
#include "lib/eventstore/proto/serverfeatures.pb-c.h"
#include "lib/eventstore/proto/shared.pb-c.h"
#include "lib/eventstore/proto/streams.pb-c.h"
#include "lib/eventstore/proto/v2streams.pb-c.h"
#include "log.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define KDB_DEFAULT_DEADLINE_MS 10000L
#define KDB_REDIRECTS 3                       /* "not leader" answers followed per call */
#define KDB_ANSWER_MAX (256u * 1024u * 1024u) /* largest answer we hold */
#define KDB_PAGE_MAX 4096u                    /* events asked for per read */
#define KDB_SCAN_PAGE 1000u                   /* $all scan of the stream list */
#define KDB_POLL_MS 200                       /* a category wait's polling interval */

#define PATH_APPEND "/event_store.client.streams.Streams/Append"
#define PATH_READ "/event_store.client.streams.Streams/Read"
#define PATH_DELETE "/event_store.client.streams.Streams/Delete"
#define PATH_TOMBSTONE "/event_store.client.streams.Streams/Tombstone"
#define PATH_GOSSIP "/event_store.client.gossip.Gossip/Read"

typedef EventStore__Client__Empty Empty;
typedef EventStore__Client__StreamIdentifier StreamId;
typedef EventStore__Client__UUID Uuid;
typedef EventStore__Client__Streams__AppendReq AppendReq;
typedef EventStore__Client__Streams__AppendReq__Options AppendOptions;
typedef EventStore__Client__Streams__AppendReq__ProposedMessage Proposed;
typedef EventStore__Client__Streams__AppendReq__ProposedMessage__MetadataEntry ProposedMeta;
typedef EventStore__Client__Streams__AppendResp AppendResp;
typedef EventStore__Client__Streams__ReadReq ReadReq;
typedef EventStore__Client__Streams__ReadReq__Options ReadOptions;
typedef EventStore__Client__Streams__ReadReq__Options__StreamOptions ReadStreamOptions;
typedef EventStore__Client__Streams__ReadReq__Options__AllOptions ReadAllOptions;
typedef EventStore__Client__Streams__ReadReq__Options__Position ReadPosition;
typedef EventStore__Client__Streams__ReadReq__Options__FilterOptions FilterOptions;
typedef EventStore__Client__Streams__ReadReq__Options__FilterOptions__Expression FilterExpr;
typedef EventStore__Client__Streams__ReadReq__Options__UUIDOption UuidOption;
typedef EventStore__Client__Streams__ReadResp ReadResp;
typedef EventStore__Client__Streams__ReadResp__ReadEvent__RecordedEvent Recorded;
typedef EventStore__Client__Streams__DeleteReq DeleteReq;
typedef EventStore__Client__Streams__DeleteReq__Options DeleteOptions;
typedef EventStore__Client__Streams__TombstoneReq TombstoneReq;
typedef EventStore__Client__Streams__TombstoneReq__Options TombstoneOptions;

struct kdb {
	struct pv_es base;
	struct pv_grpc *grpc;
	struct pv_kdb_conn conn;
	size_t host; /* index of the host in use */
	long deadline_ms;
	char *user;             /* whose credentials go out (only over TLS); NULL: anonymous */
	int64_t actual_version; /* the last wrong-expected-version answer's, -1: none */
	bool discovered;        /* +discover: the node in use came from gossip */
	size_t in_flight;       /* a unit's calls at once */
	int last_status;        /* grpc-status of call()'s last answer; -1: none came */
	bool sessions_off;      /* [eventstore] append_sessions = false */
	int sessions;           /* the node offers AppendSession: 1, 0; -1: not asked yet */
};

/* A record read from $all, with its place in the log. */
struct all_record {
	struct pv_es_event ev;
	uint64_t commit;
	uint64_t prepare;
	bool system; /* a $-type record: counted for positions, never delivered */
};

/* ---- calls ---------------------------------------------------------------- */

/* What KurrentDB's "exception" metadata says, as pv_err (RpcExceptions.cs). */
static const struct {
	const char *exception;
	enum pv_err code;
	const char *meaning;
} exceptions[] = {
	{"stream-deleted", PV_ERR_GONE, "the stream is deleted for good (tombstoned)"},
	{"wrong-expected-version", PV_ERR_CONFLICT, "wrong expected version"},
	{"access-denied", PV_ERR_FORBIDDEN, "access denied"},
	{"maximum-append-size-exceeded", PV_ERR_TOO_LARGE,
	 "the append is over the server's "
	 "MaxAppendSize"},
	{"maximum-append-event-size-exceeded", PV_ERR_TOO_LARGE,
	 "an event is over the server's MaxAppendEventSize"},
	{"missing-required-metadata-property", PV_ERR_INVALID, "a required property is missing"},
	{"invalid-transaction", PV_ERR_INVALID, "invalid transaction"},
	{"stream-not-found", PV_ERR_NOT_FOUND, "no such stream"},
	/* Still "not leader" after following the leaders named: an election
	 * under way.  Never NOT_FOUND, the gRPC status it comes with. */
	{"not-leader", PV_ERR_UNAVAILABLE, "no leader took the call"},
};

/* A refusal of who makes the call says who that is (never the password):
 * an operator's first question is which credentials went out. */
static enum pv_err credentials_hint(const struct kdb *k, struct pv_error *err)
{
	const char *user = k->user;

	if (err->code != PV_ERR_FORBIDDEN && err->code != PV_ERR_UNAUTHORIZED)
		return err->code;
	if (!user)
		return pv_error_suffix(err,
				       "; no credentials went out, so the call is anonymous "
				       "(they go over TLS only: kurrentdb://USER:PASSWORD@host)");
	if (err->code == PV_ERR_UNAUTHORIZED)
		return pv_error_suffix(err, "; the server refused the password of user %s", user);
	return pv_error_suffix(err, "; user %s may not do this (the stream's ACL)", user);
}

/* The error of a call that answered a status other than OK. */
static enum pv_err status_error(struct kdb *k, const struct pv_grpc_reply *r, const char *what,
				struct pv_error *err)
{
	const char *exception = pv_grpc_reply_meta(r, "exception");

	for (size_t i = 0; exception && i < sizeof exceptions / sizeof exceptions[0]; i++)
		if (strcmp(exception, exceptions[i].exception) == 0) {
			if (exceptions[i].code == PV_ERR_CONFLICT) {
				const char *actual = pv_grpc_reply_meta(r, "actual-version");
				char *end;
				long long v = actual ? strtoll(actual, &end, 10) : -1;
				k->actual_version = actual && *actual && !*end && v >= 0 ? v : -1;
				return pv_error_set(err, PV_ERR_CONFLICT,
						    "kurrentdb: %s: wrong expected version (the "
						    "stream is at %s)",
						    what, actual && *actual ? actual : "no stream");
			}
			pv_error_set(err, exceptions[i].code, "kurrentdb: %s: %s (%s)", what,
				     exceptions[i].meaning, r->message);
			return credentials_hint(k, err);
		}
	pv_grpc_status_error(r, what, err);
	pv_error_prefix(err, "kurrentdb at %s", pv_grpc_target(k->grpc));
	return credentials_hint(k, err);
}

/* ---- nodes ------------------------------------------------------------------ */

typedef EventStore__Client__Gossip__ClusterInfo ClusterInfo;
typedef EventStore__Client__Gossip__MemberInfo MemberInfo;

#define VNODE(name) EVENT_STORE__CLIENT__GOSSIP__MEMBER_INFO__VNODE_STATE__##name

/* The member states each node preference takes, best first; a member in
 * none of them (catching up, shutting down, ...) is never used. */
static const struct {
	enum pv_kdb_node_preference preference;
	const char *name;
	int states[3];
	size_t n;
} wanted[] = {
	{PV_KDB_NODE_LEADER, "leader", {VNODE(Leader)}, 1},
	{PV_KDB_NODE_FOLLOWER,
	 "follower",
	 {VNODE(Follower), VNODE(Leader), VNODE(ReadOnlyReplica)},
	 3},
	{PV_KDB_NODE_READ_ONLY_REPLICA,
	 "read-only replica",
	 {VNODE(ReadOnlyReplica), VNODE(Follower), VNODE(Leader)},
	 3},
	{PV_KDB_NODE_RANDOM, "any", {VNODE(Leader), VNODE(Follower), VNODE(ReadOnlyReplica)}, 3},
};

static const char *preference_name(enum pv_kdb_node_preference p)
{
	for (size_t w = 0; w < sizeof wanted / sizeof wanted[0]; w++)
		if (wanted[w].preference == p)
			return wanted[w].name;
	return "?";
}

/* A member's address as it may go into a URL: a host name or an IP
 * address, nothing else (the answer is the network's). */
static bool plain_address(const char *a)
{
	size_t n = strlen(a);

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(a[i] >= 'a' && a[i] <= 'z') && !(a[i] >= 'A' && a[i] <= 'Z') &&
		    !(a[i] >= '0' && a[i] <= '9') && !strchr(".-:", a[i]))
			return false;
	return true;
}

/* The member of info that the connection's node preference picks: the
 * first live one in the first of its states that any member is in; NULL
 * when none is. */
static const MemberInfo *pick_member(const struct kdb *k, const ClusterInfo *info)
{
	for (size_t w = 0; w < sizeof wanted / sizeof wanted[0]; w++) {
		if (wanted[w].preference != k->conn.node_preference)
			continue;
		for (size_t s = 0; s < wanted[w].n; s++)
			for (size_t i = 0; i < info->n_members; i++) {
				const MemberInfo *m = info->members[i];

				if (m->is_alive && (int)m->state == wanted[w].states[s] &&
				    m->http_end_point && m->http_end_point->address &&
				    plain_address(m->http_end_point->address) &&
				    m->http_end_point->port > 0 && m->http_end_point->port < 65536)
					return m;
			}
	}
	return NULL;
}

/* Asks the seed in use for the cluster's members and moves to the member
 * picked; PV_OK with the target unchanged when none fits. */
static enum pv_err gossip_from_seed(struct kdb *k, bool *moved, struct pv_error *err)
{
	Empty empty = EVENT_STORE__CLIENT__EMPTY__INIT;
	struct pv_buf body = PV_BUF_INIT;
	struct pv_grpc_reply reply;
	ClusterInfo *info;
	const MemberInfo *m;
	const uint8_t *msg = NULL;
	size_t len = 0;
	enum pv_err rc;
	char what[300];

	*moved = false;
	pv_grpc_frame(&body, &empty.base);
	/* A failed call names the seed already; the rest say which seed. */
	rc = pv_grpc_call(k->grpc, PATH_GOSSIP, &body, NULL, k->deadline_ms, KDB_ANSWER_MAX, &reply,
			  err);
	pv_buf_free(&body);
	if (rc != PV_OK) {
		pv_grpc_reply_clear(&reply);
		return rc;
	}
	snprintf(what, sizeof what, "gossip from %s", pv_grpc_target(k->grpc));
	if (reply.status != PV_GRPC_OK)
		rc = pv_grpc_status_error(&reply, what, err);
	else if ((rc = pv_grpc_reply_next(&reply, &msg, &len, err)) != PV_OK)
		pv_error_prefix(err, "%s", what);
	else if (!msg)
		rc = pv_error_set(err, PV_ERR_PROTOCOL, "%s: no ClusterInfo in the answer", what);
	info = rc == PV_OK ? event_store__client__gossip__cluster_info__unpack(NULL, len, msg)
			   : NULL;
	pv_grpc_reply_clear(&reply);
	if (rc != PV_OK)
		return rc;
	if (!info)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "%s: protobuf-c cannot unpack the ClusterInfo", what);
	if ((m = pick_member(k, info))) {
		pv_log_info("kurrentdb", "%s: %zu member(s); using %s:%" PRIu32, what,
			    info->n_members, m->http_end_point->address, m->http_end_point->port);
		pv_grpc_retarget(k->grpc, m->http_end_point->address, (int)m->http_end_point->port);
		*moved = true;
	} else {
		rc = pv_error_set(err, PV_ERR_UNAVAILABLE,
				  "%s: none of the %zu member(s) is a live node of the kind "
				  "nodePreference=%s takes",
				  what, info->n_members, preference_name(k->conn.node_preference));
	}
	event_store__client__gossip__cluster_info__free_unpacked(info, NULL);
	return rc;
}

/* +discover: each seed in turn until one names a node to use. */
static enum pv_err discover(struct kdb *k, struct pv_error *err)
{
	for (size_t i = 0; i < k->conn.host_count; i++) {
		size_t at = (k->host + i) % k->conn.host_count;
		bool moved;

		pv_grpc_retarget(k->grpc, k->conn.hosts[at].host, k->conn.hosts[at].port);
		if (gossip_from_seed(k, &moved, err) == PV_OK && moved) {
			k->sessions = -1;
			k->host = at;
			k->discovered = true;
			return PV_OK;
		}
		if (i + 1 < k->conn.host_count)
			pv_log_warnx("kurrentdb", "%s; trying the next gossip seed", err->msg);
	}
	return pv_error_prefix(err, "no node found through %zu gossip seed(s)", k->conn.host_count);
}

/* The next host of the connection string, after a transport failure; with
 * +discover, gossip is asked again before the next call. */
static void next_host(struct kdb *k)
{
	k->sessions = -1; /* another node may be another version */
	if (k->conn.discover) {
		k->discovered = false;
		return;
	}
	if (k->conn.host_count < 2)
		return;
	k->host = (k->host + 1) % k->conn.host_count;
	pv_grpc_retarget(k->grpc, k->conn.hosts[k->host].host, k->conn.hosts[k->host].port);
}

static const char *const *node_headers(const struct kdb *k)
{
	static const char *const leader[] = {"requires-leader: true", NULL};
	static const char *const any_node[] = {"requires-leader: false", NULL};

	return k->conn.node_preference == PV_KDB_NODE_LEADER ? leader : any_node;
}

/* Makes a call, following "not leader" answers to the leader they name.
 * PV_OK: the reply holds the answer of status OK; any other status is
 * turned into the error (the reply is cleared then). */
static enum pv_err call(struct kdb *k, const char *path, const struct pv_buf *request,
			long deadline_ms, const char *what, struct pv_grpc_reply *reply,
			struct pv_error *err)
{
	const char *const *headers = node_headers(k);

	k->last_status = -1;
	if (k->conn.discover && !k->discovered && discover(k, err) != PV_OK)
		return pv_error_prefix(err, "kurrentdb: %s", what);
	for (int hop = 0;; hop++) {
		enum pv_err rc = pv_grpc_call(k->grpc, path, request, headers,
					      deadline_ms > 0 ? deadline_ms : k->deadline_ms,
					      KDB_ANSWER_MAX, reply, err);
		if (rc != PV_OK) {
			pv_grpc_reply_clear(reply);
			if (rc == PV_ERR_UNAVAILABLE)
				next_host(k);
			return pv_error_prefix(err, "kurrentdb: %s", what);
		}
		k->last_status = reply->status;
		if (reply->status == PV_GRPC_OK)
			return PV_OK;
		const char *exception = pv_grpc_reply_meta(reply, "exception");
		const char *host = pv_grpc_reply_meta(reply, "leader-endpoint-host");
		const char *port = pv_grpc_reply_meta(reply, "leader-endpoint-port");
		if (exception && strcmp(exception, "not-leader") == 0 && host && *host && port &&
		    hop < KDB_REDIRECTS) {
			char *end;
			long p = strtol(port, &end, 10);
			if (*end == '\0' && p > 0 && p < 65536) {
				pv_log_info("kurrentdb",
					    "%s is not the leader; the leader is %s:%ld",
					    pv_grpc_target(k->grpc), host, p);
				pv_grpc_retarget(k->grpc, host, (int)p);
				k->sessions = -1;
				pv_grpc_reply_clear(reply);
				continue;
			}
		}
		rc = status_error(k, reply, what, err);
		pv_grpc_reply_clear(reply);
		return rc;
	}
}

/* ---- messages ---------------------------------------------------------------- */

static void uuid_text(const Uuid *u, char out[PV_UUID_LEN + 1])
{
	out[0] = '\0';
	if (!u)
		return;
	if (u->value_case == EVENT_STORE__CLIENT__UUID__VALUE_STRING && u->string &&
	    strlen(u->string) == PV_UUID_LEN) {
		for (size_t i = 0; i <= PV_UUID_LEN; i++)
			out[i] = (char)(u->string[i] >= 'A' && u->string[i] <= 'F'
						? u->string[i] - 'A' + 'a'
						: u->string[i]);
	} else if (u->value_case == EVENT_STORE__CLIENT__UUID__VALUE_STRUCTURED && u->structured) {
		uint64_t hi = (uint64_t)u->structured->most_significant_bits;
		uint64_t lo = (uint64_t)u->structured->least_significant_bits;
		snprintf(out, PV_UUID_LEN + 1,
			 "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64,
			 hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48,
			 lo & UINT64_C(0xffffffffffff));
	}
}

static const char *recorded_meta(const Recorded *r, const char *key)
{
	for (size_t i = 0; i < r->n_metadata; i++)
		if (r->metadata[i]->key && strcmp(r->metadata[i]->key, key) == 0)
			return r->metadata[i]->value;
	return NULL;
}

/* "created": 100 ns ticks since the Unix epoch, as RFC 3339 UTC. */
static char *created_text(const char *ticks)
{
	char *end;
	long long t = ticks ? strtoll(ticks, &end, 10) : 0;
	time_t secs;
	struct tm tm;
	char buf[64];

	if (!ticks || *end || t < 0)
		return pv_xstrdup("");
	secs = (time_t)(t / 10000000);
	if (!gmtime_r(&secs, &tm))
		return pv_xstrdup("");
	size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof buf - n, ".%06lldZ", (t % 10000000) / 10);
	return pv_xstrdup(buf);
}

static bool utf8_text(const uint8_t *p, size_t n)
{
	/* The names we accept are text: not empty (protobuf-c leaves an empty
	 * one without a buffer), no NUL, and json can read them. */
	if (n == 0 || memchr(p, '\0', n))
		return false;
	json_t *j = json_stringn((const char *)p, n);
	if (!j)
		return false;
	json_decref(j);
	return true;
}

/* Fills e from a recorded event; position -1 for stream reads. */
static enum pv_err recorded_event(const Recorded *r, int64_t position, struct pv_es_event *e,
				  struct pv_error *err)
{
	const char *type = recorded_meta(r, "type");
	const char *content_type = recorded_meta(r, "content-type");
	json_error_t jerr;

	memset(e, 0, sizeof *e);
	uuid_text(r->id, e->id);
	if (!pv_uuid_valid(e->id) || !type || !r->stream_identifier ||
	    !utf8_text(r->stream_identifier->stream_name.data,
		       r->stream_identifier->stream_name.len) ||
	    r->stream_revision >= INT64_MAX) /* the next page starts at revision + 1 */
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "kurrentdb: a recorded event without a valid id, type, stream "
				    "name or revision");
	e->type = pv_xstrdup(type);
	e->stream = pv_xstrndup((const char *)r->stream_identifier->stream_name.data,
				r->stream_identifier->stream_name.len);
	e->number = (int64_t)r->stream_revision;
	e->position = position;
	e->created = created_text(recorded_meta(r, "created"));
	if (content_type && strcmp(content_type, "application/json") == 0) {
		e->data =
			json_loadb((const char *)r->data.data, r->data.len, JSON_DECODE_ANY, &jerr);
		if (!e->data) {
			char shown[256];
			pv_log_escape(shown, sizeof shown, e->stream, strlen(e->stream));
			pv_log_escape_in_place(jerr.text, sizeof jerr.text);
			pv_error_set(err, PV_ERR_PROTOCOL,
				     "kurrentdb: event %s of %s is not JSON: %s (line %d)", e->id,
				     shown, jerr.text, jerr.line);
			goto fail;
		}
	} else {
		e->data = json_null();
	}
	e->metadata = r->custom_metadata.len
			      ? json_loadb((const char *)r->custom_metadata.data,
					   r->custom_metadata.len, JSON_DECODE_ANY, NULL)
			      : NULL;
	/* Appended through AppendSession: the schema the server adds goes. */
	if (json_is_object(e->metadata) && pv_kdb_props_strip(e->metadata, e->type) &&
	    json_object_size(e->metadata) == 0) {
		json_decref(e->metadata);
		e->metadata = NULL;
	}
	if (!e->metadata)
		e->metadata = json_null();
	return PV_OK;
fail:
	json_decref(e->metadata);
	e->metadata = NULL;
	free(e->type);
	free(e->stream);
	free(e->created);
	json_decref(e->data);
	memset(e, 0, sizeof *e);
	return err->code;
}

static void stream_id(StreamId *id, const char *stream)
{
	event_store__client__stream_identifier__init(id);
	id->stream_name.data = (uint8_t *)stream;
	id->stream_name.len = strlen(stream);
}

/* ---- append ------------------------------------------------------------------ */

static enum pv_err check_events(const struct pv_es_new_event *events, size_t count,
				struct pv_error *err)
{
	if (count == 0)
		return pv_error_set(err, PV_ERR_INVALID, "kurrentdb: an append without events");
	for (size_t i = 0; i < count; i++) {
		const struct pv_es_new_event *ev = &events[i];
		size_t size;
		if (!ev->id || !pv_uuid_valid(ev->id))
			return pv_error_set(err, PV_ERR_INVALID,
					    "kurrentdb: event %zu: the id is not a UUID", i);
		if (!ev->type || !*ev->type)
			return pv_error_set(err, PV_ERR_INVALID, "kurrentdb: event %zu: empty type",
					    i);
		if (!json_is_object(ev->data) || (ev->metadata && !json_is_object(ev->metadata)))
			return pv_error_set(err, PV_ERR_INVALID,
					    "kurrentdb: event %zu: data and metadata must be JSON "
					    "objects",
					    i);
		size = json_dumpb(ev->data, NULL, 0, JSON_COMPACT);
		if (ev->metadata)
			size += json_dumpb(ev->metadata, NULL, 0, JSON_COMPACT);
		if (size > PV_ES_EVENT_MAX)
			return pv_error_set(
				err, PV_ERR_TOO_LARGE,
				"kurrentdb: event %zu: data and metadata are %zu bytes, "
				"more than the limit of %u",
				i, size, PV_ES_EVENT_MAX);
	}
	return PV_OK;
}

/* One stream's append, before anything goes out: a name, an expected
 * version that is one, and events check_events takes. */
static enum pv_err check_append(const char *stream, int64_t expected,
				const struct pv_es_new_event *events, size_t count,
				struct pv_error *err)
{
	if (!stream || !*stream)
		return pv_error_set(err, PV_ERR_INVALID, "kurrentdb: append: empty stream name");
	if (expected < PV_ES_STREAM_EXISTS || expected == -3)
		return pv_error_set(err, PV_ERR_INVALID,
				    "kurrentdb: append to %s: expected version %" PRId64
				    " is not one",
				    stream, expected);
	return check_events(events, count, err);
}

static char *dump(const json_t *j, size_t *len)
{
	char *s = json_dumps(j, JSON_COMPACT);

	if (!s)
		pv_oom("json_dumps", 0);
	*len = strlen(s);
	return s;
}

/* The expected revision into an options message's oneof: the four option
 * messages share the layout of their oneofs, set through these pointers. */
struct expected_fields {
	uint64_t *revision;
	Empty **no_stream, **any, **stream_exists;
	int *which;
	int case_revision, case_no_stream, case_any, case_stream_exists;
};

/* The fields of an options message's expected revision: AppendReq, DeleteReq
 * and TombstoneReq each have their own generated type, with the same fields. */
#define EXPECTED_FIELDS(o, MSG)                                                                                    \
	{                                                                                                          \
		&(o).revision, &(o).no_stream, &(o).any, &(o).stream_exists,                                       \
			(int *)&(o).expected_stream_revision_case,                                                 \
			EVENT_STORE__CLIENT__STREAMS__##MSG##_REQ__OPTIONS__EXPECTED_STREAM_REVISION_REVISION,     \
			EVENT_STORE__CLIENT__STREAMS__##MSG##_REQ__OPTIONS__EXPECTED_STREAM_REVISION_NO_STREAM,    \
			EVENT_STORE__CLIENT__STREAMS__##MSG##_REQ__OPTIONS__EXPECTED_STREAM_REVISION_ANY,          \
			EVENT_STORE__CLIENT__STREAMS__##MSG##_REQ__OPTIONS__EXPECTED_STREAM_REVISION_STREAM_EXISTS \
	}

static void set_expected(const struct expected_fields *f, int64_t expected, Empty *empty)
{
	if (expected >= 0) {
		*f->which = f->case_revision;
		*f->revision = (uint64_t)expected;
	} else if (expected == PV_ES_NO_STREAM) {
		*f->which = f->case_no_stream;
		*f->no_stream = empty;
	} else if (expected == PV_ES_STREAM_EXISTS) {
		*f->which = f->case_stream_exists;
		*f->stream_exists = empty;
	} else {
		*f->which = f->case_any;
		*f->any = empty;
	}
}

/* A success's revision fits the append: after `expected` (a revision) the
 * stream is at expected + count; whatever was expected it holds the count
 * events.  The caller takes the revision as the stream's version. */
/* A wrong expected version: the stream's version (-1: none) is in
 * *version, and it is not the one expected, or the caller would read the
 * stream, find it where it expected and try again, for ever. */
static enum pv_err append_conflict(const char *stream, int64_t expected, int64_t *version,
				   struct pv_error *err)
{
	if (*version == expected && expected >= PV_ES_NO_STREAM) {
		*version = -1;
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "kurrentdb: append to %s: a wrong expected version %" PRId64
				    " where the stream is at that version",
				    stream, expected);
	}
	return pv_error_set(err, PV_ERR_CONFLICT,
			    "kurrentdb: append to %s: wrong expected version %" PRId64
			    " (the stream is at %" PRId64 ")",
			    stream, expected, *version);
}

static bool revision_fits(uint64_t revision, int64_t expected, size_t count)
{
	if (revision < count - 1)
		return false;
	return expected < 0 || revision == (uint64_t)expected + count;
}

static enum pv_err append_answer(struct pv_grpc_reply *r, const char *stream, int64_t expected,
				 size_t count, int64_t *version, struct pv_error *err)
{
	const uint8_t *msg;
	size_t len;
	AppendResp *resp;
	enum pv_err rc = pv_grpc_reply_next(r, &msg, &len, err);

	if (rc != PV_OK)
		return pv_error_prefix(err, "kurrentdb: append to %s", stream);
	if (!msg)
		return pv_error_set(err, PV_ERR_PROTOCOL, "kurrentdb: append to %s: no answer",
				    stream);
	resp = event_store__client__streams__append_resp__unpack(NULL, len, msg);
	if (!resp)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "kurrentdb: append to %s: protobuf-c cannot unpack the "
				    "AppendResp",
				    stream);
	if (resp->result_case == EVENT_STORE__CLIENT__STREAMS__APPEND_RESP__RESULT_SUCCESS &&
	    resp->success &&
	    resp->success->current_revision_option_case ==
		    EVENT_STORE__CLIENT__STREAMS__APPEND_RESP__SUCCESS__CURRENT_REVISION_OPTION_CURRENT_REVISION &&
	    resp->success->current_revision <= INT64_MAX &&
	    revision_fits(resp->success->current_revision, expected, count)) {
		*version = (int64_t)resp->success->current_revision;
	} else if (
		resp->result_case ==
			EVENT_STORE__CLIENT__STREAMS__APPEND_RESP__RESULT_WRONG_EXPECTED_VERSION &&
		resp->wrong_expected_version) {
		const EventStore__Client__Streams__AppendResp__WrongExpectedVersion *w =
			resp->wrong_expected_version;
		*version = -1;
		if (w->current_revision_option_case ==
			    EVENT_STORE__CLIENT__STREAMS__APPEND_RESP__WRONG_EXPECTED_VERSION__CURRENT_REVISION_OPTION_CURRENT_REVISION &&
		    w->current_revision <= INT64_MAX)
			*version = (int64_t)w->current_revision;
		else if (
			w->current_revision_option_case ==
				EVENT_STORE__CLIENT__STREAMS__APPEND_RESP__WRONG_EXPECTED_VERSION__CURRENT_REVISION_OPTION__NOT_SET &&
			w->current_revision_option_20_6_0_case ==
				EVENT_STORE__CLIENT__STREAMS__APPEND_RESP__WRONG_EXPECTED_VERSION__CURRENT_REVISION_OPTION_20_6_0_CURRENT_REVISION_20_6_0 &&
			w->current_revision_20_6_0 <= INT64_MAX)
			*version = (int64_t)w->current_revision_20_6_0; /* a server before 21.x */
		rc = append_conflict(stream, expected, version, err);
	} else {
		rc = pv_error_set(err, PV_ERR_PROTOCOL,
				  "kurrentdb: append to %s: an AppendResp with neither a revision "
				  "that fits the %zu events appended nor a wrong expected version",
				  stream, count);
	}
	event_store__client__streams__append_resp__free_unpacked(resp, NULL);
	return rc;
}

/* The framed AppendReq messages of one stream's append. */
static enum pv_err append_body(const char *stream, int64_t expected,
			       const struct pv_es_new_event *events, size_t count,
			       struct pv_buf *body, struct pv_error *err)
{
	AppendReq req = EVENT_STORE__CLIENT__STREAMS__APPEND_REQ__INIT;
	AppendOptions options = EVENT_STORE__CLIENT__STREAMS__APPEND_REQ__OPTIONS__INIT;
	StreamId id;
	Empty empty = EVENT_STORE__CLIENT__EMPTY__INIT;
	enum pv_err rc;

	rc = check_append(stream, expected, events, count, err);
	if (rc != PV_OK)
		return rc;

	stream_id(&id, stream);
	options.stream_identifier = &id;
	struct expected_fields f = EXPECTED_FIELDS(options, APPEND);
	set_expected(&f, expected, &empty);
	req.content_case = EVENT_STORE__CLIENT__STREAMS__APPEND_REQ__CONTENT_OPTIONS;
	req.options = &options;
	pv_grpc_frame(body, &req.base);

	for (size_t i = 0; i < count; i++) {
		Proposed p = EVENT_STORE__CLIENT__STREAMS__APPEND_REQ__PROPOSED_MESSAGE__INIT;
		ProposedMeta type =
			EVENT_STORE__CLIENT__STREAMS__APPEND_REQ__PROPOSED_MESSAGE__METADATA_ENTRY__INIT;
		ProposedMeta ctype =
			EVENT_STORE__CLIENT__STREAMS__APPEND_REQ__PROPOSED_MESSAGE__METADATA_ENTRY__INIT;
		ProposedMeta *meta[2] = {&type, &ctype};
		Uuid uuid = EVENT_STORE__CLIENT__UUID__INIT;
		char *data, *metadata = NULL;
		size_t data_len, meta_len = 0;

		uuid.value_case = EVENT_STORE__CLIENT__UUID__VALUE_STRING;
		uuid.string = (char *)events[i].id;
		type.key = "type";
		type.value = (char *)events[i].type;
		ctype.key = "content-type";
		ctype.value = "application/json";
		data = dump(events[i].data, &data_len);
		if (events[i].metadata)
			metadata = dump(events[i].metadata, &meta_len);
		p.id = &uuid;
		p.n_metadata = 2;
		p.metadata = meta;
		p.data.data = (uint8_t *)data;
		p.data.len = data_len;
		p.custom_metadata.data = (uint8_t *)metadata;
		p.custom_metadata.len = meta_len;
		req = (AppendReq)EVENT_STORE__CLIENT__STREAMS__APPEND_REQ__INIT;
		req.content_case =
			EVENT_STORE__CLIENT__STREAMS__APPEND_REQ__CONTENT_PROPOSED_MESSAGE;
		req.proposed_message = &p;
		pv_grpc_frame(body, &req.base);
		free(data);
		free(metadata);
	}

	return PV_OK;
}

/* What an append's call gave (rc, and the reply when PV_OK): the stream's
 * version, or the error. */
static enum pv_err append_outcome(struct kdb *k, enum pv_err rc, struct pv_grpc_reply *reply,
				  const char *stream, int64_t expected, size_t count,
				  int64_t *version, struct pv_error *err)
{
	if (rc == PV_ERR_CONFLICT) {
		/* In the trailers ("exception: wrong-expected-version"), not in an AppendResp. */
		*version = k->actual_version;
		return append_conflict(stream, expected, version, err);
	}
	if (rc != PV_OK)
		return rc;
	rc = append_answer(reply, stream, expected, count, version, err);
	pv_grpc_reply_clear(reply);
	return rc;
}

static enum pv_err kdb_append(struct pv_es *es, const char *stream, int64_t expected,
			      const struct pv_es_new_event *events, size_t count, int64_t *version,
			      struct pv_error *err)
{
	struct kdb *k = (struct kdb *)es;
	struct pv_buf body = PV_BUF_INIT;
	struct pv_grpc_reply reply;
	enum pv_err rc;
	char what[300];

	*version = -1;
	rc = append_body(stream, expected, events, count, &body, err);
	if (rc != PV_OK) {
		pv_buf_free(&body);
		return rc;
	}
	snprintf(what, sizeof what, "append to %.250s", stream);
	k->actual_version = -1;
	rc = call(k, PATH_APPEND, &body, 0, what, &reply, err);
	pv_buf_free(&body);
	return append_outcome(k, rc, &reply, stream, expected, count, version, err);
}

/* ---- reads ---------------------------------------------------------------------- */

/* One Read call: the messages of the answer decoded in turn by fn. */
typedef enum pv_err read_fn(void *ctx, const ReadResp *resp, struct pv_error *err);

/* The framed ReadReq of options. */
static void read_body(ReadOptions *options, struct pv_buf *body)
{
	ReadReq req = EVENT_STORE__CLIENT__STREAMS__READ_REQ__INIT;
	UuidOption uuid = EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__UUIDOPTION__INIT;
	Empty empty = EVENT_STORE__CLIENT__EMPTY__INIT;

	uuid.content_case =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__UUIDOPTION__CONTENT_STRING;
	uuid.string = &empty;
	options->uuid_option = &uuid;
	req.options = options;
	pv_grpc_frame(body, &req.base);
	options->uuid_option = NULL;
}

/* The ReadResp messages of a Read's answer, each decoded in turn by fn;
 * clears the reply. */
static enum pv_err read_messages(struct pv_grpc_reply *reply, const char *what, read_fn *fn,
				 void *ctx, struct pv_error *err)
{
	enum pv_err rc;

	for (;;) {
		const uint8_t *msg;
		size_t len;
		ReadResp *resp;

		rc = pv_grpc_reply_next(reply, &msg, &len, err);
		if (rc != PV_OK || !msg)
			break;
		resp = event_store__client__streams__read_resp__unpack(NULL, len, msg);
		if (!resp) {
			rc = pv_error_set(err, PV_ERR_PROTOCOL,
					  "kurrentdb: %s: protobuf-c cannot unpack a ReadResp",
					  what);
			break;
		}
		rc = fn(ctx, resp, err);
		event_store__client__streams__read_resp__free_unpacked(resp, NULL);
		if (rc != PV_OK)
			break;
	}
	pv_grpc_reply_clear(reply);
	return rc;
}

static enum pv_err read_call(struct kdb *k, ReadOptions *options, long deadline_ms,
			     const char *what, read_fn *fn, void *ctx, struct pv_error *err)
{
	struct pv_buf body = PV_BUF_INIT;
	struct pv_grpc_reply reply;
	enum pv_err rc;

	read_body(options, &body);
	rc = call(k, PATH_READ, &body, deadline_ms, what, &reply, err);
	pv_buf_free(&body);
	if (rc != PV_OK)
		return rc;
	return read_messages(&reply, what, fn, ctx, err);
}

static void event_free(struct pv_es_event *e)
{
	free(e->type);
	free(e->stream);
	free(e->created);
	json_decref(e->data);
	json_decref(e->metadata);
	memset(e, 0, sizeof *e);
}

/* Keeps the first n events of the page. */
static void page_truncate(struct pv_es_page *page, size_t n)
{
	while (page->count > n)
		event_free(&page->events[--page->count]);
}

struct stream_read {
	struct pv_es_page *page;
	const char *stream; /* the one asked for */
	const char *shown;  /* its name escaped, for messages */
	size_t cap;
	bool not_found;
};

static enum pv_err on_stream_message(void *ctx, const ReadResp *resp, struct pv_error *err)
{
	struct stream_read *s = ctx;
	struct pv_es_page *page = s->page;

	if (resp->content_case ==
	    EVENT_STORE__CLIENT__STREAMS__READ_RESP__CONTENT_STREAM_NOT_FOUND) {
		s->not_found = true;
		return PV_OK;
	}
	if (resp->content_case != EVENT_STORE__CLIENT__STREAMS__READ_RESP__CONTENT_EVENT)
		return PV_OK; /* first/last stream positions and the like */
	if (!resp->event || !resp->event->event)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "kurrentdb: a ReadEvent without its event");
	if (page->count == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		page->events = pv_xreallocarray(page->events, s->cap, sizeof *page->events);
	}
	enum pv_err rc = recorded_event(resp->event->event, -1, &page->events[page->count], err);
	if (rc != PV_OK)
		return rc;
	page->count++;
	/* Another stream's events (a proxy's mix-up) must not be folded into this one. */
	if (strcmp(page->events[page->count - 1].stream, s->stream) != 0)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "kurrentdb: a read of %s holds an event of another stream",
				    s->shown);
	return PV_OK;
}

/* The framed Read of up to max events of stream from `from` (see
 * pv_es_read_stream). */
static void stream_read_body(const char *stream, int64_t from, size_t max, bool backward,
			     struct pv_buf *body)
{
	ReadOptions options = EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__INIT;
	ReadStreamOptions so =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__STREAM_OPTIONS__INIT;
	Empty empty = EVENT_STORE__CLIENT__EMPTY__INIT;
	StreamId id;

	stream_id(&id, stream);
	so.stream_identifier = &id;
	if (from < 0 && backward) {
		so.revision_option_case =
			EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__STREAM_OPTIONS__REVISION_OPTION_END;
		so.end = &empty;
	} else {
		so.revision_option_case =
			EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__STREAM_OPTIONS__REVISION_OPTION_REVISION;
		so.revision = from < 0 ? 0 : (uint64_t)from;
	}
	options.stream_option_case =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__STREAM_OPTION_STREAM;
	options.stream = &so;
	options.read_direction =
		backward
			? EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__READ_DIRECTION__Backwards
			: EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__READ_DIRECTION__Forwards;
	options.count_option_case =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__COUNT_OPTION_COUNT;
	options.count = max + 1; /* one more tells whether there is more */
	options.filter_option_case =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__FILTER_OPTION_NO_FILTER;
	options.no_filter = &empty;
	read_body(&options, body);
}

/* The page a stream read's answer gives (rc: the call's; the reply holds
 * the answer when PV_OK), as pv_es_read_stream answers it. */
static enum pv_err stream_read_page(enum pv_err rc, struct pv_grpc_reply *reply, const char *stream,
				    const char *shown, const char *what, int64_t from, size_t max,
				    bool backward, struct pv_es_page *page, struct pv_error *err)
{
	struct stream_read s = {.page = page, .stream = stream, .shown = shown};

	if (rc == PV_OK)
		rc = read_messages(reply, what, on_stream_message, &s, err);
	if (rc == PV_OK && s.not_found)
		rc = pv_error_set(err, PV_ERR_NOT_FOUND, "kurrentdb: %s: no such stream", what);
	if (rc != PV_OK) {
		pv_es_page_clear(page);
		return rc;
	}
	bool more = page->count > max;
	if (more)
		page_truncate(page, max);
	page->end_of_stream = !more;
	if (backward)
		page->next = more ? page->events[page->count - 1].number - 1 : -1;
	else
		page->next = page->count ? page->events[page->count - 1].number + 1 : from;
	rc = pv_es_check_stream_page("kurrentdb", page, shown, from, max, backward, err);
	if (rc != PV_OK)
		pv_es_page_clear(page);
	return rc;
}

static enum pv_err kdb_read_stream(struct pv_es *es, const char *stream, int64_t from, size_t max,
				   bool backward, struct pv_es_page *page, struct pv_error *err)
{
	struct kdb *k = (struct kdb *)es;
	struct pv_buf body = PV_BUF_INIT;
	struct pv_grpc_reply reply;
	enum pv_err rc;
	char what[300], shown[256];

	*page = (struct pv_es_page){.next = -1};
	if (!stream || !*stream)
		return pv_error_set(err, PV_ERR_INVALID, "kurrentdb: read: empty stream name");
	if (max == 0 || max > KDB_PAGE_MAX)
		max = KDB_PAGE_MAX;
	if (from < 0 && !backward)
		from = 0;
	stream_read_body(stream, from, max, backward, &body);
	/* The stream list reads the heads of streams the server named. */
	pv_log_escape(shown, sizeof shown, stream, strlen(stream));
	snprintf(what, sizeof what, "read %s %s", shown, backward ? "backwards" : "forwards");
	rc = call(k, PATH_READ, &body, 0, what, &reply, err);
	pv_buf_free(&body);
	return stream_read_page(rc, &reply, stream, shown, what, from, max, backward, page, err);
}

/* ---- the unit's calls, concurrently ---------------------------------------------- */

/* A job of pv_grpc_call_many as call() would have answered it: PV_OK with
 * the OK answer moved into reply, or the error.  A "not leader" answer
 * makes the call again through call(), which follows it to the leader. */
static enum pv_err job_outcome(struct kdb *k, struct pv_grpc_job *job, const char *what,
			       struct pv_grpc_reply *reply, struct pv_error *err)
{
	const char *exception;
	enum pv_err rc;

	memset(reply, 0, sizeof *reply);
	if (job->code != PV_OK) {
		*err = job->err;
		pv_grpc_reply_clear(&job->reply);
		if (job->code == PV_ERR_UNAVAILABLE)
			next_host(k);
		return pv_error_prefix(err, "kurrentdb: %s", what);
	}
	if (job->reply.status == PV_GRPC_OK) {
		*reply = job->reply;
		memset(&job->reply, 0, sizeof job->reply);
		return PV_OK;
	}
	exception = pv_grpc_reply_meta(&job->reply, "exception");
	if (exception && strcmp(exception, "not-leader") == 0) {
		pv_grpc_reply_clear(&job->reply);
		return call(k, job->path, job->request, 0, what, reply, err);
	}
	rc = status_error(k, &job->reply, what, err);
	pv_grpc_reply_clear(&job->reply);
	return rc;
}

/* A unit's calls of one kind, made at once: their framed requests and
 * their outcomes. */
struct call_set {
	struct pv_buf *bodies;
	struct pv_grpc_job *jobs;
	size_t n;
};

static void call_set_init(struct call_set *set, const char *path, size_t n)
{
	set->bodies = pv_xcalloc(n, sizeof *set->bodies);
	set->jobs = pv_xcalloc(n, sizeof *set->jobs);
	set->n = n;
	for (size_t i = 0; i < n; i++) {
		set->jobs[i].path = path;
		set->jobs[i].request = &set->bodies[i];
	}
}

static void call_set_send(struct kdb *k, struct call_set *set)
{
	struct pv_error err;

	if (k->conn.discover && !k->discovered && discover(k, &err) != PV_OK) {
		for (size_t i = 0; i < set->n; i++) {
			set->jobs[i].code = err.code;
			set->jobs[i].err = err;
		}
		return;
	}
	pv_grpc_call_many(k->grpc, set->jobs, set->n, node_headers(k), k->deadline_ms,
			  KDB_ANSWER_MAX, k->in_flight);
}

/* Frees the requests and the answers not taken. */
static void call_set_free(struct call_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		pv_grpc_reply_clear(&set->jobs[i].reply);
		pv_buf_free(&set->bodies[i]);
	}
	free(set->bodies);
	free(set->jobs);
}

/* An append expecting no stream that did not start at 0 went on from a
 * soft-deleted stream's numbering (eventstore.h); r->version is set. */
static bool continued(const struct pv_es_append_req *r)
{
	return r->expected == PV_ES_NO_STREAM && r->version != (int64_t)r->count - 1;
}

/* Appends to n streams, one Append call per stream, the calls at once
 * (pv_grpc_call_many).  Each stream's append is atomic on its own, as the
 * server makes it; the first failure in request order is the answer. */
static enum pv_err append_each(struct kdb *k, struct pv_es_append_req *reqs, size_t n,
			       size_t *failed, struct pv_error *err)
{
	struct call_set set;
	enum pv_err rc = PV_OK;

	call_set_init(&set, PATH_APPEND, n);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		reqs[i].continued = false;
		reqs[i].version = -1;
		rc = append_body(reqs[i].stream, reqs[i].expected, reqs[i].events, reqs[i].count,
				 &set.bodies[i], err);
		if (rc != PV_OK)
			*failed = i;
	}
	if (rc == PV_OK)
		call_set_send(k, &set);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		struct pv_es_append_req *r = &reqs[i];
		struct pv_grpc_reply reply;
		char what[300];

		snprintf(what, sizeof what, "append to %.250s", r->stream);
		k->actual_version = -1;
		rc = job_outcome(k, &set.jobs[i], what, &reply, err);
		rc = append_outcome(k, rc, &reply, r->stream, r->expected, r->count, &r->version,
				    err);
		if (rc != PV_OK)
			*failed = i;
		else
			r->continued = continued(r);
	}
	call_set_free(&set);
	return rc;
}

/* ---- multi-stream appends (AppendSession) ---------------------------------------- */

#define PATH_SESSION "/kurrentdb.protocol.v2.streams.StreamsService/AppendSession"
#define PATH_FEATURES "/event_store.client.server_features.ServerFeatures/GetSupportedMethods"
/* Framed bytes of one session: MaxAppendSize's default before 25.1 (1 MiB),
 * the lowest a server that offers sessions may have been left at.  The
 * server counts data, properties and type, a little less than the frames. */
#define KDB_SESSION_MAX (1024u * 1024u)

typedef EventStore__Client__ServerFeatures__SupportedMethods SupportedMethods;
typedef Kurrentdb__Protocol__V2__Streams__AppendRequest SessionReq;
typedef Kurrentdb__Protocol__V2__Streams__AppendRecord SessionRecord;
typedef Kurrentdb__Protocol__V2__Streams__SchemaInfo SchemaInfo;
typedef Kurrentdb__Protocol__V2__Streams__AppendSessionResponse SessionResp;
typedef Kurrentdb__Protocol__V2__Streams__AppendResponse SessionOut;

/* Whether the node in use offers AppendSession, as its ServerFeatures say
 * (asked once per node; the official clients ask the same). */
static bool offers_sessions(struct kdb *k)
{
	struct pv_buf body = PV_BUF_INIT;
	Empty empty = EVENT_STORE__CLIENT__EMPTY__INIT;
	struct pv_grpc_reply reply;
	struct pv_error err;
	const uint8_t *msg;
	size_t len;
	SupportedMethods *m;
	enum pv_err rc;

	if (k->sessions_off)
		return false;
	if (k->sessions >= 0)
		return k->sessions == 1;
	pv_grpc_frame(&body, &empty.base);
	rc = call(k, PATH_FEATURES, &body, 0, "its server features", &reply, &err);
	pv_buf_free(&body);
	if (rc == PV_OK && pv_grpc_reply_next(&reply, &msg, &len, &err) == PV_OK && msg &&
	    (m = event_store__client__server_features__supported_methods__unpack(NULL, len, msg))) {
		k->sessions = 0;
		for (size_t i = 0; i < m->n_methods; i++)
			if (m->methods[i]->service_name && m->methods[i]->method_name &&
			    strcasecmp(m->methods[i]->service_name,
				       "kurrentdb.protocol.v2.streams.streamsservice") == 0 &&
			    strcasecmp(m->methods[i]->method_name, "appendsession") == 0)
				k->sessions = 1;
		event_store__client__server_features__supported_methods__free_unpacked(m, NULL);
		pv_log_info("kurrentdb", "%s %s", pv_grpc_target(k->grpc),
			    k->sessions ? "offers AppendSession: a batch's streams go in one call"
					: "offers no AppendSession: one Append call per stream");
	} else {
		if (rc == PV_OK)
			pv_error_set(&err, PV_ERR_PROTOCOL,
				     "kurrentdb: its server features: no SupportedMethods");
		/* Refused (an answer came): asked again on another node only. */
		if (k->last_status > 0 || rc == PV_OK)
			k->sessions = 0;
		pv_log_warnx("kurrentdb", "%s; one Append call per stream", err.msg);
	}
	pv_grpc_reply_clear(&reply);
	return k->sessions == 1;
}

/* Sessions can carry the unit: more than one stream, and metadata that
 * comes back the same from properties (kurrentdb_props.h). */
static bool session_fits(const struct pv_es_append_req *reqs, size_t n)
{
	if (n < 2)
		return false;
	for (size_t i = 0; i < n; i++)
		for (size_t e = 0; e < reqs[i].count; e++)
			if (!pv_kdb_props_exact(reqs[i].events[e].metadata))
				return false;
	return true;
}

/* The framed AppendRequest of one stream's share of a session. */
static enum pv_err session_frame(const struct pv_es_append_req *r, struct pv_buf *out,
				 struct pv_error *err)
{
	SessionReq req = KURRENTDB__PROTOCOL__V2__STREAMS__APPEND_REQUEST__INIT;
	struct pv_kdb_props mem = {0};
	SessionRecord *records;
	SchemaInfo *schemas;
	char **datas;
	enum pv_err rc;

	rc = check_append(r->stream, r->expected, r->events, r->count, err);
	if (rc != PV_OK)
		return rc;

	records = pv_xcalloc(r->count, sizeof *records);
	schemas = pv_xcalloc(r->count, sizeof *schemas);
	datas = pv_xcalloc(r->count, sizeof *datas);
	req.records = pv_xcalloc(r->count, sizeof *req.records);
	req.stream = (char *)r->stream;
	/* The v2 constants are the same numbers: -1 no stream, -2 any, -4 exists. */
	req.has_expected_revision = 1;
	req.expected_revision = r->expected;
	for (size_t i = 0; i < r->count; i++) {
		SessionRecord *rec = &records[i];
		size_t len;

		kurrentdb__protocol__v2__streams__append_record__init(rec);
		kurrentdb__protocol__v2__streams__schema_info__init(&schemas[i]);
		schemas[i].has_format = 1;
		schemas[i].format =
			KURRENTDB__PROTOCOL__V2__STREAMS__SCHEMA_FORMAT__SCHEMA_FORMAT_JSON;
		schemas[i].name = (char *)r->events[i].type;
		datas[i] = dump(r->events[i].data, &len);
		rec->record_id = (char *)r->events[i].id;
		rec->schema = &schemas[i];
		rec->has_data = 1;
		rec->data.data = (uint8_t *)datas[i];
		rec->data.len = len;
		rec->properties =
			pv_kdb_props_build(r->events[i].metadata, &rec->n_properties, &mem);
		req.records[req.n_records++] = rec;
	}
	pv_grpc_frame(out, &req.base);
	for (size_t i = 0; i < r->count; i++)
		free(datas[i]);
	free(datas);
	free(schemas);
	free(records);
	free(req.records);
	pv_kdb_props_free(&mem);
	return PV_OK;
}

/* A session's answer: each stream's revision, in the order sent. */
static enum pv_err session_answer(struct pv_grpc_reply *reply, struct pv_es_append_req *reqs,
				  size_t n, size_t *failed, struct pv_error *err)
{
	const uint8_t *msg;
	size_t len;
	SessionResp *resp;
	enum pv_err rc = pv_grpc_reply_next(reply, &msg, &len, err);

	*failed = 0;
	if (rc != PV_OK)
		return pv_error_prefix(err, "kurrentdb: append session");
	if (!msg)
		return pv_error_set(err, PV_ERR_PROTOCOL, "kurrentdb: append session: no answer");
	resp = kurrentdb__protocol__v2__streams__append_session_response__unpack(NULL, len, msg);
	if (!resp)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "kurrentdb: append session: protobuf-c cannot unpack the "
				    "AppendSessionResponse");
	if (resp->n_output != n)
		rc = pv_error_set(err, PV_ERR_PROTOCOL,
				  "kurrentdb: append session: %zu streams answered for %zu sent",
				  resp->n_output, n);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		const SessionOut *o = resp->output[i];
		struct pv_es_append_req *r = &reqs[i];
		/* proto3 leaves a revision of 0 out */
		int64_t rev = o->has_stream_revision ? o->stream_revision : 0;

		if (!o->stream || strcmp(o->stream, r->stream) != 0 || rev < 0 ||
		    !revision_fits((uint64_t)rev, r->expected, r->count)) {
			*failed = i;
			rc = pv_error_set(err, PV_ERR_PROTOCOL,
					  "kurrentdb: append session: the answer for %s (stream "
					  "%zu) names another stream or a revision that does not "
					  "fit the %zu events appended",
					  r->stream, i, r->count);
			break;
		}
		r->version = rev;
		r->continued = continued(r);
	}
	kurrentdb__protocol__v2__streams__append_session_response__free_unpacked(resp, NULL);
	return rc;
}

/* Statuses with which a server refuses a session before it writes any of it
 * (a conflict, a tombstone, a size, a request it does not take): the
 * streams can go again one call each, which gives each its own verdict.
 * Any other (a deadline, unavailable, internal) leaves the outcome open. */
static const int session_refusals[] = {
	PV_GRPC_INVALID_ARGUMENT,  PV_GRPC_NOT_FOUND,          PV_GRPC_ALREADY_EXISTS,
	PV_GRPC_PERMISSION_DENIED, PV_GRPC_RESOURCE_EXHAUSTED, PV_GRPC_FAILED_PRECONDITION,
	PV_GRPC_ABORTED,           PV_GRPC_OUT_OF_RANGE,       PV_GRPC_UNIMPLEMENTED,
	PV_GRPC_UNAUTHENTICATED,
};

static bool session_refused(int status)
{
	for (size_t i = 0; i < sizeof session_refusals / sizeof session_refusals[0]; i++)
		if (session_refusals[i] == status)
			return true;
	return false;
}

/* One session: the n streams' frames in one AppendSession call. */
static enum pv_err one_session(struct kdb *k, struct pv_es_append_req *reqs,
			       const struct pv_buf *frames, size_t n, size_t *failed,
			       struct pv_error *err)
{
	struct pv_buf body = PV_BUF_INIT;
	struct pv_grpc_reply reply;
	char what[300];
	enum pv_err rc;

	for (size_t i = 0; i < n; i++)
		pv_buf_append(&body, frames[i].data, frames[i].len);
	snprintf(what, sizeof what, "append session of %zu streams (%.200s, ...)", n,
		 reqs[0].stream);
	rc = call(k, PATH_SESSION, &body, 0, what, &reply, err);
	pv_buf_free(&body);
	if (rc == PV_OK) {
		rc = session_answer(&reply, reqs, n, failed, err);
		pv_grpc_reply_clear(&reply);
		return rc;
	}
	*failed = 0;
	if (!session_refused(k->last_status))
		return rc;
	if (k->last_status == PV_GRPC_UNIMPLEMENTED)
		k->sessions = 0;
	pv_log_info("kurrentdb", "%s; the %zu streams go again one call each", err->msg, n);
	return append_each(k, reqs, n, failed, err);
}

/* The streams in sessions of at most KDB_SESSION_MAX bytes, in order; a
 * stream is in a session once (the server's rule). */
static enum pv_err append_sessions(struct kdb *k, struct pv_es_append_req *reqs, size_t n,
				   size_t *failed, struct pv_error *err)
{
	struct pv_buf *frames = pv_xcalloc(n, sizeof *frames);
	enum pv_err rc = PV_OK;

	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		reqs[i].continued = false;
		reqs[i].version = -1;
		rc = session_frame(&reqs[i], &frames[i], err);
		if (rc != PV_OK)
			*failed = i;
	}
	for (size_t i = 0, j; i < n && rc == PV_OK; i = j) {
		size_t size = frames[i].len, sub;

		for (j = i + 1; j < n && size + frames[j].len <= KDB_SESSION_MAX; j++) {
			bool again = false;
			for (size_t x = i; x < j && !again; x++)
				again = strcasecmp(reqs[x].stream, reqs[j].stream) == 0;
			if (again)
				break;
			size += frames[j].len;
		}
		rc = one_session(k, reqs + i, frames + i, j - i, &sub, err);
		if (rc != PV_OK)
			*failed = i + sub;
	}
	for (size_t i = 0; i < n; i++)
		pv_buf_free(&frames[i]);
	free(frames);
	return rc;
}

/* The unit's appends (eventstore.h): in AppendSession calls where the node
 * offers them, each atomic over its streams; otherwise one Append call per
 * stream.  The first failure in request order is the unit's answer. */
static enum pv_err kdb_append_many(struct pv_es *es, struct pv_es_append_req *reqs, size_t n,
				   size_t *failed, struct pv_error *err)
{
	struct kdb *k = (struct kdb *)es;

	if (session_fits(reqs, n) && offers_sessions(k))
		return append_sessions(k, reqs, n, failed, err);
	return append_each(k, reqs, n, failed, err);
}

/* The version of a stream that a backward read of one gave (rc, reply):
 * -1 for none; a stream deleted for good is a conflict.  shown: the
 * stream's name escaped; what: the read, for messages. */
static enum pv_err head_version(enum pv_err rc, struct pv_grpc_reply *reply, const char *stream,
				const char *shown, const char *what, int64_t *now,
				struct pv_error *err)
{
	struct pv_es_page page = {.next = -1};

	*now = -1;
	rc = stream_read_page(rc, reply, stream, shown, what, -1, 1, true, &page, err);
	if (rc == PV_ERR_GONE)
		rc = pv_error_set(err, PV_ERR_CONFLICT, "%s is deleted for good", shown);
	else if (rc == PV_ERR_NOT_FOUND)
		rc = PV_OK;
	else if (rc == PV_OK && page.count > 0)
		*now = page.events[0].number;
	pv_es_page_clear(&page);
	return rc;
}

/* Each stream's head, read at once (a backward page of one). */
static enum pv_err kdb_check_versions(struct pv_es *es, const struct pv_es_expect *x, size_t n,
				      size_t *failed, struct pv_error *err)
{
	struct kdb *k = (struct kdb *)es;
	struct call_set set;
	enum pv_err rc = PV_OK;

	call_set_init(&set, PATH_READ, n);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		*failed = i;
		if (!x[i].stream || !*x[i].stream)
			rc = pv_error_set(err, PV_ERR_INVALID,
					  "kurrentdb: read: empty stream name");
		else
			stream_read_body(x[i].stream, -1, 1, true, &set.bodies[i]);
	}
	if (rc == PV_OK)
		call_set_send(k, &set);
	for (size_t i = 0; i < n && rc == PV_OK; i++) {
		struct pv_grpc_reply reply;
		int64_t now;
		char what[300], shown[256];

		*failed = i;
		pv_log_escape(shown, sizeof shown, x[i].stream, strlen(x[i].stream));
		snprintf(what, sizeof what, "read %s backwards", shown);
		rc = job_outcome(k, &set.jobs[i], what, &reply, err);
		rc = head_version(rc, &reply, x[i].stream, shown, what, &now, err);
		if (rc == PV_OK && now != x[i].version)
			rc = pv_error_set(err, PV_ERR_CONFLICT,
					  "%s is no longer at version %" PRId64 " (now %" PRId64
					  ")",
					  shown, x[i].version, now);
	}
	call_set_free(&set);
	return rc;
}

/* ---- $all, filtered by a stream name prefix ---------------------------------- */

struct all_read {
	struct all_record *recs;
	size_t count, cap;
	size_t raw;         /* event messages received, skipped ones included */
	bool unfiltered;    /* every stream's: $-streams count as system records */
	const char *prefix; /* of the streams asked for, NULL: every stream's */
	uint64_t after;     /* skip records with prepare <= after (has_after) */
	bool has_after;
};

static void all_read_free(struct all_read *a)
{
	for (size_t i = 0; i < a->count; i++)
		event_free(&a->recs[i].ev);
	free(a->recs);
	memset(a, 0, sizeof *a);
}

static enum pv_err on_all_message(void *ctx, const ReadResp *resp, struct pv_error *err)
{
	struct all_read *a = ctx;
	const Recorded *r;
	struct all_record *rec;

	if (resp->content_case != EVENT_STORE__CLIENT__STREAMS__READ_RESP__CONTENT_EVENT)
		return PV_OK;
	if (!resp->event || !(r = resp->event->event))
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "kurrentdb: a ReadEvent without its event");
	/* Counted before the skip: the server's count includes the record a
	 * read resumes from, and a full page must be seen as full, or its last
	 * append would not be trimmed and the next page, starting after a
	 * record inside that append, would miss the append's other records. */
	a->raw++;
	if (a->has_after && r->prepare_position <= a->after)
		return PV_OK;
	/* The next page starts at the last position + 1. */
	if (r->prepare_position >= INT64_MAX || r->commit_position >= INT64_MAX)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "kurrentdb: a $all position at 2^63 - 1 or over");
	/* The skip above and the pages' positions rely on it (see the top). */
	if (a->count > 0 && r->prepare_position <= a->recs[a->count - 1].prepare)
		return pv_error_set(err, PV_ERR_PROTOCOL,
				    "kurrentdb: $all positions out of order (%" PRIu64
				    " after %" PRIu64 ")",
				    r->prepare_position, a->recs[a->count - 1].prepare);
	if (a->count == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->recs = pv_xreallocarray(a->recs, a->cap, sizeof *a->recs);
	}
	rec = &a->recs[a->count];
	memset(rec, 0, sizeof *rec);
	rec->commit = r->commit_position;
	rec->prepare = r->prepare_position;
	const char *type = recorded_meta(r, "type");
	rec->system = !type || type[0] == '$' ||
		      (a->unfiltered && r->stream_identifier &&
		       r->stream_identifier->stream_name.len > 0 &&
		       r->stream_identifier->stream_name.data[0] == '$');
	if (!rec->system) {
		enum pv_err rc = recorded_event(r, (int64_t)r->prepare_position, &rec->ev, err);
		if (rc != PV_OK)
			return rc;
		/* The server's filter is trusted no further than this: another
		 * category's events must not reach this one's readers. */
		if (a->prefix && strncmp(rec->ev.stream, a->prefix, strlen(a->prefix)) != 0) {
			event_free(&rec->ev);
			return pv_error_set(err, PV_ERR_PROTOCOL,
					    "kurrentdb: a read of the streams %s... holds an event "
					    "of another stream",
					    a->prefix);
		}
	}
	a->count++;
	return PV_OK;
}

/* Reads up to count records of streams named prefix... from $all, forwards
 * from (commit, prepare) (both 0: the start), skipping those at or before
 * `after` when has_after. */
static enum pv_err read_all(struct kdb *k, const char *prefix, uint64_t commit, uint64_t prepare,
			    size_t count, struct all_read *a, struct pv_error *err)
{
	ReadOptions options = EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__INIT;
	ReadAllOptions all = EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__ALL_OPTIONS__INIT;
	ReadPosition pos = EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__POSITION__INIT;
	FilterOptions filter =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__FILTER_OPTIONS__INIT;
	FilterExpr expr =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__FILTER_OPTIONS__EXPRESSION__INIT;
	Empty empty = EVENT_STORE__CLIENT__EMPTY__INIT;
	char *prefixes[1] = {(char *)prefix};
	char what[300];

	a->unfiltered = !prefix;
	a->prefix = prefix;

	if (commit == 0 && prepare == 0) {
		all.all_option_case =
			EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__ALL_OPTIONS__ALL_OPTION_START;
		all.start = &empty;
	} else {
		pos.commit_position = commit;
		pos.prepare_position = prepare;
		all.all_option_case =
			EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__ALL_OPTIONS__ALL_OPTION_POSITION;
		all.position = &pos;
	}
	expr.n_prefix = 1;
	expr.prefix = prefixes;
	filter.filter_case =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__FILTER_OPTIONS__FILTER_STREAM_IDENTIFIER;
	filter.stream_identifier = &expr;
	filter.window_case =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__FILTER_OPTIONS__WINDOW_COUNT;
	filter.count = &empty;
	filter.checkpointintervalmultiplier = 1;
	options.stream_option_case =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__STREAM_OPTION_ALL;
	options.all = &all;
	options.read_direction =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__READ_DIRECTION__Forwards;
	options.count_option_case =
		EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__COUNT_OPTION_COUNT;
	options.count = count;
	if (prefix) {
		options.filter_option_case =
			EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__FILTER_OPTION_FILTER;
		options.filter = &filter;
	} else {
		options.filter_option_case =
			EVENT_STORE__CLIENT__STREAMS__READ_REQ__OPTIONS__FILTER_OPTION_NO_FILTER;
		options.no_filter = &empty;
	}
	snprintf(what, sizeof what, "read $all (streams %.250s...)", prefix ? prefix : "");
	return read_call(k, &options, 0, what, on_all_message, a, err);
}

/* One page of the feed from `from` (see the top of the file): the records
 * after the one at prepare position from - 1, ending with a whole append. */
static enum pv_err category_page(struct kdb *k, const char *prefix, int64_t from, size_t max,
				 struct all_read *a, bool *caught_up, struct pv_error *err)
{
	uint64_t at = from > 0 ? (uint64_t)from - 1 : 0;
	size_t asked = max;
	enum pv_err rc;

	a->has_after = from > 0;
	a->after = at;
	rc = read_all(k, prefix, at, at, asked, a, err);
	if (rc != PV_OK)
		return rc;
	*caught_up = a->raw < asked;
	if (*caught_up || a->count == 0)
		return PV_OK;
	uint64_t last_commit = a->recs[a->count - 1].commit;
	size_t first_of_last = a->count;
	while (first_of_last > 0 && a->recs[first_of_last - 1].commit == last_commit)
		first_of_last--;
	if (first_of_last > 0) {
		/* The last append may go on past the page: it comes next time. */
		while (a->count > first_of_last)
			event_free(&a->recs[--a->count].ev);
		return PV_OK;
	}
	/* One append fills the page: read on to its end. */
	for (;;) {
		struct all_read more = {.has_after = true, .after = a->recs[a->count - 1].prepare};
		bool ended = false;
		rc = read_all(k, prefix, last_commit, more.after, KDB_PAGE_MAX, &more, err);
		if (rc != PV_OK) {
			all_read_free(&more);
			return rc;
		}
		for (size_t i = 0; i < more.count; i++) {
			if (more.recs[i].commit != last_commit) {
				ended = true;
				event_free(&more.recs[i].ev);
				continue;
			}
			if (a->count == a->cap) {
				a->cap *= 2;
				a->recs = pv_xreallocarray(a->recs, a->cap, sizeof *a->recs);
			}
			a->recs[a->count++] = more.recs[i];
		}
		ended = ended || more.count < KDB_PAGE_MAX;
		free(more.recs);
		if (ended)
			return PV_OK;
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

static enum pv_err kdb_read_category(struct pv_es *es, const char *category, int64_t from,
				     size_t max, int wait_ms, struct pv_es_page *page,
				     struct pv_error *err)
{
	struct kdb *k = (struct kdb *)es;
	char *prefix;
	int64_t deadline = now_ms() + (wait_ms > 0 ? wait_ms : 0);
	enum pv_err rc;

	*page = (struct pv_es_page){.next = -1};
	if (!category || !*category || strchr(category, '-'))
		return pv_error_set(err, PV_ERR_INVALID,
				    "kurrentdb: a category is a name without '-'");
	if (from < 0)
		from = 0;
	if (max == 0 || max > KDB_PAGE_MAX)
		max = KDB_PAGE_MAX;
	prefix = pv_xasprintf("%s-", category);
	for (;;) {
		struct all_read a = {0};
		bool caught_up = false;
		size_t delivered = 0;

		rc = category_page(k, prefix, from, max, &a, &caught_up, err);
		if (rc != PV_OK) {
			all_read_free(&a);
			break;
		}
		for (size_t i = 0; i < a.count; i++)
			delivered += !a.recs[i].system;
		if (delivered > 0 || (a.count > 0 && !caught_up) || now_ms() >= deadline) {
			page->events = pv_xcalloc(delivered ? delivered : 1, sizeof *page->events);
			for (size_t i = 0; i < a.count; i++)
				if (!a.recs[i].system)
					page->events[page->count++] = a.recs[i].ev;
				else
					event_free(&a.recs[i].ev);
			page->next = a.count ? (int64_t)a.recs[a.count - 1].prepare + 1 : from;
			page->end_of_stream = caught_up;
			free(a.recs);
			break;
		}
		/* Nothing, or only system records: step over them, wait, look again. */
		if (a.count > 0)
			from = (int64_t)a.recs[a.count - 1].prepare + 1;
		all_read_free(&a);
		int64_t left = deadline - now_ms();
		if (left > 0)
			sleep_ms(left < KDB_POLL_MS ? (int)left : KDB_POLL_MS);
	}
	free(prefix);
	return rc;
}

/* ---- the stream list ------------------------------------------------------------ */

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum pv_err kdb_list_streams(struct pv_es *es, const char *category,
				    struct pv_es_stream_list *list, struct pv_error *err)
{
	struct kdb *k = (struct kdb *)es;
	char **names = NULL, *prefix;
	size_t count = 0, cap = 0;
	int64_t from = 0;
	enum pv_err rc = PV_OK;

	memset(list, 0, sizeof *list);
	if (category && (!*category || strchr(category, '-')))
		return pv_error_set(err, PV_ERR_INVALID,
				    "kurrentdb: a category is a name without '-'");
	/* NULL: every stream but the server's own ($-streams). */
	prefix = category ? pv_xasprintf("%s-", category) : NULL;
	/* Every stream (of the category) that has an event in $all. */
	for (;;) {
		struct all_read a = {0};
		bool caught_up;
		rc = category_page(k, prefix, from, KDB_SCAN_PAGE, &a, &caught_up, err);
		if (rc != PV_OK) {
			all_read_free(&a);
			goto out;
		}
		for (size_t i = 0; i < a.count; i++) {
			if (a.recs[i].system)
				continue;
			if (count == cap) {
				cap = cap ? cap * 2 : 64;
				names = pv_xreallocarray(names, cap, sizeof *names);
			}
			names[count++] = a.recs[i].ev.stream;
			a.recs[i].ev.stream = NULL;
		}
		if (a.count)
			from = (int64_t)a.recs[a.count - 1].prepare + 1;
		bool done = caught_up || a.count == 0;
		all_read_free(&a);
		if (done)
			break;
		/* Sorted and made unique as we go, so that memory follows streams. */
		if (count > 1)
			qsort(names, count, sizeof *names, by_name);
		size_t u = 0;
		for (size_t i = 0; i < count; i++)
			if (u == 0 || strcmp(names[u - 1], names[i]) != 0)
				names[u++] = names[i];
			else
				free(names[i]);
		count = u;
	}
	if (count > 1)
		qsort(names, count, sizeof *names, by_name);
	/* Each stream's head: soft-deleted and tombstoned ones are left out. */
	list->streams = pv_xcalloc(count ? count : 1, sizeof *list->streams);
	for (size_t i = 0; i < count; i++) {
		struct pv_es_page head;
		if (i > 0 && strcmp(names[i - 1], names[i]) == 0)
			continue;
		rc = kdb_read_stream(es, names[i], -1, 1, true, &head, err);
		if (rc == PV_ERR_NOT_FOUND || rc == PV_ERR_GONE) {
			rc = PV_OK;
			continue;
		}
		if (rc != PV_OK)
			goto out;
		if (head.count > 0) {
			struct pv_es_stream_info *info = &list->streams[list->count++];
			info->name = pv_xstrdup(names[i]);
			info->version = head.events[0].number;
			info->updated = pv_xstrdup(head.events[0].created);
		}
		pv_es_page_clear(&head);
	}
out:
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	free(prefix);
	if (rc != PV_OK)
		pv_es_stream_list_clear(list);
	return rc;
}

/* ---- delete ------------------------------------------------------------------------ */

static enum pv_err kdb_delete_stream(struct pv_es *es, const char *stream, int64_t expected,
				     bool hard, struct pv_error *err)
{
	struct kdb *k = (struct kdb *)es;
	Empty empty = EVENT_STORE__CLIENT__EMPTY__INIT;
	StreamId id;
	struct pv_buf body = PV_BUF_INIT;
	struct pv_grpc_reply reply;
	char what[300];
	enum pv_err rc;

	if (!stream || !*stream)
		return pv_error_set(err, PV_ERR_INVALID, "kurrentdb: delete: empty stream name");
	if (expected < PV_ES_STREAM_EXISTS || expected == -3)
		return pv_error_set(err, PV_ERR_INVALID,
				    "kurrentdb: delete %s: expected version %" PRId64 " is not one",
				    stream, expected);
	stream_id(&id, stream);
	if (hard) {
		TombstoneReq req = EVENT_STORE__CLIENT__STREAMS__TOMBSTONE_REQ__INIT;
		TombstoneOptions o = EVENT_STORE__CLIENT__STREAMS__TOMBSTONE_REQ__OPTIONS__INIT;
		struct expected_fields f = EXPECTED_FIELDS(o, TOMBSTONE);
		o.stream_identifier = &id;
		set_expected(&f, expected, &empty);
		req.options = &o;
		pv_grpc_frame(&body, &req.base);
	} else {
		DeleteReq req = EVENT_STORE__CLIENT__STREAMS__DELETE_REQ__INIT;
		DeleteOptions o = EVENT_STORE__CLIENT__STREAMS__DELETE_REQ__OPTIONS__INIT;
		struct expected_fields f = EXPECTED_FIELDS(o, DELETE);
		o.stream_identifier = &id;
		set_expected(&f, expected, &empty);
		req.options = &o;
		pv_grpc_frame(&body, &req.base);
	}
	snprintf(what, sizeof what, "%s %.250s", hard ? "tombstone" : "delete", stream);
	rc = call(k, hard ? PATH_TOMBSTONE : PATH_DELETE, &body, 0, what, &reply, err);
	pv_buf_free(&body);
	if (rc == PV_OK)
		pv_grpc_reply_clear(&reply);
	return rc;
}

/* ---- open and close ----------------------------------------------------------------- */

static void kdb_close(struct pv_es *es)
{
	struct kdb *k = (struct kdb *)es;

	pv_grpc_close(k->grpc);
	pv_kdb_conn_clear(&k->conn);
	free(k->user);
	free(k);
}

static const struct pv_es_ops kdb_ops = {
	.name = "kurrentdb",
	.append = kdb_append,
	.read_stream = kdb_read_stream,
	.read_category = kdb_read_category,
	.list_streams = kdb_list_streams,
	.delete_stream = kdb_delete_stream,
	.close = kdb_close,
	.append_many = kdb_append_many,
	.check_versions = kdb_check_versions,
};

enum pv_err pv_es_kurrentdb_open(const struct pv_es_options *opts, struct pv_es **out,
				 struct pv_error *err)
{
	struct kdb *k;
	struct pv_grpc_options g = {0};
	enum pv_err rc;

	*out = NULL;
	if (!opts->url || !pv_kdb_conn_is_string(opts->url))
		return pv_error_set(err, PV_ERR_CONFIG,
				    "kurrentdb: [eventstore] url must be a connection string "
				    "(kurrentdb://host:2113?tls=false, esdb://...)");
	k = pv_xcalloc(1, sizeof *k);
	rc = pv_kdb_conn_parse(opts->url, &k->conn, err);
	if (rc != PV_OK) {
		free(k);
		return rc;
	}
	k->deadline_ms = k->conn.deadline_ms > 0 ? k->conn.deadline_ms
			 : opts->timeout_ms > 0  ? opts->timeout_ms
						 : KDB_DEFAULT_DEADLINE_MS;
	k->in_flight = opts->in_flight > 0 ? (size_t)opts->in_flight : 8;
	k->sessions_off = opts->one_call_per_stream;
	k->sessions = -1;
	k->last_status = -1;
	g.host = k->conn.hosts[0].host;
	g.port = k->conn.hosts[0].port;
	g.tls = k->conn.tls;
	g.tls_verify = k->conn.tls_verify;
	g.ca_file = k->conn.ca_file ? k->conn.ca_file : opts->ca_file;
	g.username = k->conn.username ? k->conn.username : opts->username;
	g.password = k->conn.username ? k->conn.password : opts->password;
	g.connect_timeout_ms = 5000;
	if (g.tls && g.username)
		k->user = pv_xstrdup(g.username);
	rc = pv_grpc_open(&g, &k->grpc, err);
	if (rc != PV_OK) {
		pv_kdb_conn_clear(&k->conn);
		free(k->user);
		free(k);
		return pv_error_prefix(err, "kurrentdb");
	}
	k->base.ops = &kdb_ops;
	*out = &k->base;
	return PV_OK;
}

void pv_es_kurrentdb_set_transport(struct pv_es *es, pv_grpc_transport_fn *fn, void *ctx)
{
	pv_grpc_set_transport(((struct kdb *)es)->grpc, fn, ctx);
}
