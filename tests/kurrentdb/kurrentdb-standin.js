#!/usr/bin/env node
// Test equipment: a KurrentDB stand-in speaking the server's gRPC API
// (event_store.client.streams.Streams and ServerFeatures), served by
// @grpc/grpc-js with the service definitions generated from the server's
// protos that the official client package @kurrent/kurrentdb-client ships.
// Never a default of the product.
//
// Semantics follow the server's code (kurrent-io/KurrentDB
// src/KurrentDB.Core/Services/Transport/Grpc/Streams.*.cs, RpcExceptions.cs,
// Storage/ReaderIndex/IndexWriter.cs) and reference/protocols.md sections 1-4:
//  - expected revisions any / no_stream / stream_exists / a revision; a wrong
//    one is AppendResp.wrong_expected_version (current and expected, in the
//    20.6.0 fields too), for Delete/Tombstone a FAILED_PRECONDITION with the
//    "exception: wrong-expected-version" trailers;
//  - idempotence by event id: a revision or no_stream already passed whose
//    ids sit at the next places succeeds with the original numbers; with any
//    or stream_exists the ids are looked up in the stream (the server's cache
//    of recent commits, never evicted here);
//  - soft delete (Delete: a metadata record in $$<stream>; reads answer
//    stream_not_found; no_stream appends recreate it, numbering going on) and
//    tombstone (a $streamDeleted record in the stream; every later call on it
//    is FAILED_PRECONDITION "exception: stream-deleted");
//  - $all: every record of the log in order with commit/prepare positions
//    (an append's events share the commit position, the log position of its
//    first record; each has its own prepare position), forwards, backwards,
//    filtered by stream prefix, regex or event type prefix, and subscriptions
//    (confirmation, catch-up, checkpoints, caught_up, live events);
//  - a $all read from a position whose commit position is not where a record
//    starts is INVALID_ARGUMENT "Trying to read from an invalid position.";
//  - the total size of an append is limited to 1 MiB (MaxAppendSize's
//    default): INVALID_ARGUMENT "exception: maximum-append-size-exceeded";
//  - without --tls it behaves as a server started with --insecure (which
//    drops TLS, authentication and authorization); with --tls CERT KEY it
//    serves HTTP/2 over TLS (ALPN h2) and authenticates every call as the
//    server's AuthenticationMiddleware does for gRPC (KurrentDB.Core
//    Services/Transport/Http/AuthenticationMiddleware.cs): a Basic
//    Authorization header is checked against the users (--user NAME:PASSWORD,
//    repeatable; by default the server's own admin:changeit and ops:changeit),
//    and a wrong one ends the call UNAUTHENTICATED "Unauthenticated"; a call
//    without one is the anonymous user's (AnonymousHttpAuthenticationProvider),
//    which stream reads, appends and deletes refuse as the server does when
//    anonymous stream access is off (its default): PERMISSION_DENIED "Access
//    Denied" with the "exception: access-denied" trailer
//    (RpcExceptions.AccessDenied).  Every authenticated user may do
//    everything: ACLs are not modelled;
//  - --follower HOST:PORT: acts as a follower whose leader is HOST:PORT:
//    every write, and every read sent with "requires-leader: true", is
//    answered NOT_FOUND "exception: not-leader" with leader-endpoint-host/port;
//  - deadlines (grpc-timeout) are grpc-js's: an expired call ends with
//    DEADLINE_EXCEEDED; --append-delay-ms N holds each append N ms first.
//  - Gossip.Read (allowed to the anonymous user, as on the server) names
//    this node, Leader, or with --follower a Follower and its leader;
//    --gossip-state STATE makes this node another VNodeState (CatchingUp,
//    ShuttingDown, ...); --gossip-member HOST:PORT:STATE[:dead] names the
//    other members instead of the --follower leader.
//  - the v2 multi-stream append (kurrentdb.protocol.v2.streams.StreamsService
//    AppendSession, the server's src/KurrentDB.Api.V2/Modules/Streams/
//    StreamsService.cs and Validators/, and the storage writer's commit
//    checks): one AppendRequest per stream, all written in one transaction
//    (the records share one commit position) or none; a stream twice is
//    ABORTED, an invalid request INVALID_ARGUMENT "The 'AppendRequest' is
//    invalid: ...", a tombstoned stream or a wrong expected revision (the
//    first) FAILED_PRECONDITION, over MaxAppendSize ABORTED, each with the
//    google.rpc.Status in grpc-status-details-bin (an ErrorInfo, then the
//    streams error's details).  A session sent again whose every stream finds
//    its records where it expected them succeeds with their revisions
//    (idempotent); some found and some new is a wrong expected revision.
//    Properties are kept as the metadata a v1 read gives: their JSON with
//    "$schema.name" (the type) and "$schema.format" ("Json") added.
//    ServerFeatures offers AppendSession; --no-sessions acts as a server
//    before 25.1, which neither offers nor serves it (UNIMPLEMENTED);
// Not done: client certificates, BatchAppend, AppendRecords (26.1), links
// and resolve_links, stream metadata other than soft deletes, ACLs.
//
// Usage: kurrentdb-standin.js [--data FILE] [--follower HOST:PORT]
//                             [--gossip-state STATE] [--gossip-member HOST:PORT:STATE[:dead]]...
//                             [--append-delay-ms N] [--stats FILE] [--no-sessions]
//                             [--tls CERT KEY [--user NAME:PASSWORD]...] PORT
// (--stats: the Append and Read calls answered, as JSON, for benchmarks.)
// Prints "listening on 127.0.0.1:PORT" once it serves (PORT 0: a free one).
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const here = __dirname;
function need(name) {
	return require(require.resolve(name, {paths: [here, process.cwd()]}));
}
const grpc = need('@grpc/grpc-js');
const gen = path.join(path.dirname(require.resolve('@kurrent/kurrentdb-client/package.json',
	{paths: [here, process.cwd()]})), 'generated/kurrentdb/protocols/v1');
const streamsPb = require(path.join(gen, 'streams_pb'));
const streamsGrpc = require(path.join(gen, 'streams_grpc_pb'));
const sharedPb = require(path.join(gen, 'shared_pb'));
const featuresPb = require(path.join(gen, 'serverfeatures_pb'));
const featuresGrpc = require(path.join(gen, 'serverfeatures_grpc_pb'));
const gossipPb = require(path.join(gen, 'gossip_pb'));
const gossipGrpc = require(path.join(gen, 'gossip_grpc_pb'));
const genV2 = path.join(gen, '../v2/streams');
const v2Pb = require(path.join(genV2, 'streams_pb'));
const v2Grpc = require(path.join(genV2, 'streams_grpc_pb'));
const v2ErrorsPb = require(path.join(genV2, 'errors_pb'));
const jspb = need('google-protobuf');
const {Struct} = need('google-protobuf/google/protobuf/struct_pb.js');
const {Any} = need('google-protobuf/google/protobuf/any_pb.js');

const {ReadReq, ReadResp, AppendReq, AppendResp, DeleteResp, TombstoneResp} = streamsPb;
const {Empty, UUID, StreamIdentifier} = sharedPb;

const MAX_APPEND_SIZE = 1024 * 1024;
const TICKS_PER_MS = 10000n; // "created": 100 ns ticks since the Unix epoch

const ANY = -2n, NO_STREAM = -1n, STREAM_EXISTS = -4n;

// ---- options ----------------------------------------------------------
const opts = {data: null, follower: null, appendDelayMs: 0, stats: null, port: null, tls: null,
	users: [], gossipState: null, gossipMembers: [], sessions: true};
for (let i = 2; i < process.argv.length; i++) {
	const a = process.argv[i];
	if (a === '--data') opts.data = process.argv[++i];
	else if (a === '--follower') opts.follower = process.argv[++i];
	else if (a === '--gossip-state') opts.gossipState = process.argv[++i];
	else if (a === '--gossip-member') opts.gossipMembers.push(process.argv[++i]);
	else if (a === '--append-delay-ms') opts.appendDelayMs = Number(process.argv[++i]);
	else if (a === '--stats') opts.stats = process.argv[++i];
	else if (a === '--no-sessions') opts.sessions = false;
	else if (a === '--tls') {
		opts.tls = {cert: process.argv[++i], key: process.argv[++i]};
	} else if (a === '--user') opts.users.push(process.argv[++i]);
	else if (opts.port === null && /^[0-9]+$/.test(a)) opts.port = Number(a);
	else {
		process.stderr.write(`kurrentdb-standin: unknown argument ${a}\n`);
		process.exit(2);
	}
}
if (opts.port === null) {
	process.stderr.write('usage: kurrentdb-standin.js [--data FILE] [--follower HOST:PORT] ' +
		'[--gossip-state STATE] [--gossip-member HOST:PORT:STATE[:dead]]... [--append-delay-ms N] [--stats FILE] [--no-sessions] [--tls CERT KEY [--user NAME:PASSWORD]...] PORT\n');
	process.exit(2);
}
// A VNodeState's number from its name, any case (null: no such state).
function vnodeState(name) {
	const v = gossipPb.MemberInfo.VNodeState[String(name).toUpperCase()];
	return v === undefined ? null : v;
}
const members = [];
for (const m of opts.gossipMembers) {
	const [host, port, state, dead] = m.split(':');
	if (!host || !/^[0-9]+$/.test(port || '') || vnodeState(state) === null ||
	    (dead !== undefined && dead !== 'dead')) {
		process.stderr.write(`kurrentdb-standin: --gossip-member ${m} is not HOST:PORT:STATE[:dead]\n`);
		process.exit(2);
	}
	members.push({address: `${host}:${port}`, state: vnodeState(state), alive: dead === undefined});
}
if (opts.gossipState !== null && vnodeState(opts.gossipState) === null) {
	process.stderr.write(`kurrentdb-standin: --gossip-state ${opts.gossipState} is no VNodeState\n`);
	process.exit(2);
}
if (opts.tls && opts.users.length === 0) opts.users = ['admin:changeit', 'ops:changeit'];

// ---- the log ------------------------------------------------------------
// Records: {stream, number, id, type, contentType, data (Buffer), meta
// (Buffer), commit, prepare, created (BigInt ticks)}.  Positions are bytes
// of a notional log: a record takes a header plus its payload.
const log = [];
const streams = new Map(); // name -> {events: [], tb, soft, hard}
let logEnd = 0n;
const recordAt = new Set(); // the positions where records start
const waiters = new Set(); // live subscriptions: functions called on each commit
let journal = null;

function streamOf(name) {
	return streams.get(name);
}

function version(s) {
	if (!s || s.soft) return -1n;
	return BigInt(s.events.length - 1);
}

function record(stream, type, contentType, data, meta, id, commit, created) {
	const s = streams.get(stream) || {events: [], tb: 0, soft: false, hard: false};
	streams.set(stream, s);
	const r = {
		stream, number: BigInt(s.events.length), id, type, contentType, data, meta,
		commit: commit === null ? logEnd : commit, prepare: logEnd, created,
	};
	logEnd += 128n + BigInt(Buffer.byteLength(stream) + data.length + meta.length + type.length);
	s.events.push(r);
	log.push(r);
	recordAt.add(r.prepare);
	return r;
}

function writeEvents(name, events, created, commit = null) {
	const s = streams.get(name);
	if (s && s.soft) {
		// Recreating a soft-deleted stream: numbering goes on, what was
		// there stays truncated away.
		s.soft = false;
		s.tb = s.events.length;
	}
	const out = [];
	for (const e of events) {
		const r = record(name, e.type, e.contentType, Buffer.from(e.data, 'base64'),
			Buffer.from(e.meta, 'base64'), e.id, commit, created);
		if (commit === null) commit = r.commit;
		out.push(r);
	}
	return out;
}

function softDelete(name, id, created) {
	const s = streams.get(name) || {events: [], tb: 0, soft: false, hard: false};
	streams.set(name, s);
	const tb = s.events.length;
	s.soft = true;
	s.tb = tb;
	const meta = Buffer.from(JSON.stringify({$tb: tb}));
	return record('$$' + name, '$metadata', 'application/json', meta, Buffer.alloc(0), id, null,
		created);
}

function tombstone(name, id, created) {
	const r = record(name, '$streamDeleted', 'application/json', Buffer.alloc(0),
		Buffer.alloc(0), id, null, created);
	streams.get(name).hard = true;
	return r;
}

function apply(op, created) {
	if (op.op === 'append') return writeEvents(op.stream, op.events, created);
	if (op.op === 'session') {
		// One transaction: every record has the commit position of its first.
		let commit = null;
		return op.appends.map((a) => {
			const out = writeEvents(a.stream, a.events, created, commit);
			if (commit === null) commit = out[0].commit;
			return out;
		});
	}
	if (op.op === 'delete') return softDelete(op.stream, op.id, created);
	return tombstone(op.stream, op.id, created);
}

// One commit: the records of an append, a soft delete or a tombstone,
// journalled (--data) before they are answered.  Everything a record holds is
// in the journal (a delete's record id and the time too), and positions follow
// from the records in order, so a restart replays the same log: the same
// revisions, ids and $all positions, and a client's checkpoint stays valid.
function commit(op) {
	op.created = (BigInt(Date.now()) * TICKS_PER_MS).toString();
	if (op.op !== 'append') op.id = crypto.randomUUID();
	if (journal !== null) {
		fs.writeSync(journal, JSON.stringify(op) + '\n');
		fs.fsyncSync(journal);
	}
	const out = apply(op, BigInt(op.created));
	for (const w of [...waiters]) w();
	return out;
}

if (opts.data) {
	let text = '';
	try {
		text = fs.readFileSync(opts.data, 'utf8');
	} catch (e) {
		if (e.code !== 'ENOENT') throw e;
	}
	let good = 0;
	const lines = text.split('\n');
	// The last piece has no newline: torn by a kill, that commit was never
	// answered (or empty).
	for (const line of lines.slice(0, -1)) {
		let op;
		try {
			op = JSON.parse(line);
		} catch (e) {
			break;
		}
		apply(op, BigInt(op.created));
		good += Buffer.byteLength(line) + 1;
	}
	journal = fs.openSync(opts.data, 'a+');
	fs.ftruncateSync(journal, good);
}

// ---- errors, as RpcExceptions builds them ---------------------------------
function rpcError(code, details, meta) {
	const md = new grpc.Metadata();
	for (const [k, v] of Object.entries(meta || {})) md.set(k, v);
	return {code, details, metadata: md};
}
const errors = {
	streamDeleted: (name) => rpcError(grpc.status.FAILED_PRECONDITION,
		`Event stream '${name}' is deleted.`, {'exception': 'stream-deleted', 'stream-name': name}),
	wrongExpectedVersion: (op, name, expected, actual) => rpcError(
		grpc.status.FAILED_PRECONDITION,
		`${op} failed due to WrongExpectedVersion. Stream: ${name}, Expected version: ` +
		`${expected}, Actual version: ${actual}`,
		{
			'exception': 'wrong-expected-version', 'stream-name': name,
			'expected-version': expected.toString(), 'actual-version': actual.toString(),
		}),
	notLeader: (host, port) => rpcError(grpc.status.NOT_FOUND, 'Leader info available', {
		'exception': 'not-leader', 'leader-endpoint-host': host,
		'leader-endpoint-port': String(port),
	}),
	maxAppendSize: () => rpcError(grpc.status.INVALID_ARGUMENT,
		`Maximum Append Size of ${MAX_APPEND_SIZE} Exceeded.`,
		{'exception': 'maximum-append-size-exceeded',
			'maximum-append-size': String(MAX_APPEND_SIZE)}),
	missingMetadata: (prop) => rpcError(grpc.status.INVALID_ARGUMENT,
		`Required Metadata Property '${prop}' is missing`,
		{'exception': 'missing-required-metadata-property',
			'required-metadata-properties': 'type,content-type'}),
	invalid: (msg) => rpcError(grpc.status.INVALID_ARGUMENT, msg),
	unauthenticated: () => rpcError(grpc.status.UNAUTHENTICATED, 'Unauthenticated'),
	accessDenied: () => rpcError(grpc.status.PERMISSION_DENIED, 'Access Denied',
		{'exception': 'access-denied'}),
};

// With --tls: who makes the call.  Answers 'anonymous', a user's name, or
// the UNAUTHENTICATED error; without --tls (--insecure) null: no one is
// asked.  A header of another scheme is no provider's, so the call is the
// anonymous user's, as on the server.
function authenticate(call) {
	if (!opts.tls) return null;
	const h = call.metadata.get('authorization');
	const m = h.length > 0 ? /^Basic (.*)$/i.exec(String(h[0])) : null;
	if (!m) return 'anonymous';
	const pair = Buffer.from(m[1].trim(), 'base64').toString('utf8');
	return opts.users.includes(pair) ? pair.slice(0, pair.indexOf(':')) : errors.unauthenticated();
}

// A call on a stream: authentication first (the middleware runs before the
// service), then with --follower the leader's address.  Answers an error or
// null.
function gate(call, write) {
	const who = authenticate(call);
	if (who && who.code) return who;
	if (who === 'anonymous') return errors.accessDenied();
	if (opts.follower) {
		const leader = call.metadata.get('requires-leader');
		if (write || (leader.length > 0 && String(leader[0]) === 'true')) {
			const at = opts.follower.lastIndexOf(':');
			return errors.notLeader(opts.follower.slice(0, at), Number(opts.follower.slice(at + 1)));
		}
	}
	return null;
}

function streamName(identifier) {
	if (!identifier) return '';
	return Buffer.from(identifier.getStreamName_asU8()).toString('utf8');
}

function identifier(name) {
	const id = new StreamIdentifier();
	id.setStreamName(Buffer.from(name, 'utf8'));
	return id;
}

function uuidText(u) {
	if (!u) return '';
	if (u.hasStructured()) {
		const s = u.getStructured();
		const hex = (v) => (BigInt.asUintN(64, BigInt(v))).toString(16).padStart(16, '0');
		const h = hex(s.getMostSignificantBits()) + hex(s.getLeastSignificantBits());
		return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
	}
	return u.getString().toLowerCase();
}

function uuidMessage(text, structured) {
	const u = new UUID();
	if (structured) {
		const h = text.replace(/-/g, '');
		const s = new UUID.Structured();
		s.setMostSignificantBits(BigInt.asIntN(64, BigInt('0x' + h.slice(0, 16))).toString());
		s.setLeastSignificantBits(BigInt.asIntN(64, BigInt('0x' + h.slice(16))).toString());
		u.setStructured(s);
	} else {
		u.setString(text);
	}
	return u;
}

// The expected revision of an Append/Delete/Tombstone's options.
function expectedOf(o) {
	if (o.hasRevision()) return BigInt(o.getRevision());
	if (o.hasNoStream()) return NO_STREAM;
	if (o.hasStreamExists()) return STREAM_EXISTS;
	if (o.hasAny()) return ANY;
	return null;
}

// ---- Append -------------------------------------------------------------
// IndexWriter.CheckCommit's verdict: {ok: records} (new or found again) or
// {wrong: current} or {deleted: true}.
function judgeAppend(name, expected, ids) {
	const s = streamOf(name);
	if (s && s.hard) return {deleted: true};
	const cur = version(s);
	const existingFrom = (start) => {
		if (!s || start < 0n || start + BigInt(ids.length) - 1n >= BigInt(s.events.length))
			return null;
		const out = [];
		for (let i = 0; i < ids.length; i++) {
			const r = s.events[Number(start) + i];
			if (r.id !== ids[i]) return null;
			out.push(r);
		}
		return out;
	};
	if (expected >= 0n || expected === NO_STREAM) {
		if (cur === expected) return {write: true};
		const found = cur > expected ? existingFrom(expected + 1n) : null;
		return found ? {ok: found} : {wrong: cur};
	}
	if (expected === STREAM_EXISTS && cur === -1n) return {wrong: cur};
	if (s) {
		const first = s.events.findIndex((r) => r.id === ids[0]);
		if (first >= 0) {
			const found = existingFrom(BigInt(first));
			return found ? {ok: found} : {wrong: cur};
		}
	}
	return {write: true};
}

function setExpected(w, expected, legacy) {
	if (expected >= 0n) {
		w.setExpectedRevision(expected.toString());
		if (legacy) w.setExpectedRevision2060(expected.toString());
	} else if (expected === NO_STREAM) {
		w.setExpectedNoStream(new Empty());
	} else if (expected === STREAM_EXISTS) {
		w.setExpectedStreamExists(new Empty());
		if (legacy) w.setStreamExists2060(new Empty());
	} else {
		w.setExpectedAny(new Empty());
		if (legacy) w.setAny2060(new Empty());
	}
}

function append(call, callback) {
	const denied = gate(call, true);
	let options = null;
	const proposed = [];
	let size = 0;
	let failed = null;
	call.on('data', (req) => {
		if (failed) return;
		if (req.hasOptions()) {
			options = req.getOptions();
			return;
		}
		if (!req.hasProposedMessage() || options === null) {
			failed = errors.invalid('the first message of an Append must be its options');
			return;
		}
		const m = req.getProposedMessage();
		const md = m.getMetadataMap();
		for (const prop of ['type', 'content-type']) {
			if (!md.has(prop)) {
				failed = errors.missingMetadata(prop);
				return;
			}
		}
		const data = Buffer.from(m.getData_asU8());
		const meta = Buffer.from(m.getCustomMetadata_asU8());
		size += data.length + meta.length;
		if (size > MAX_APPEND_SIZE) {
			failed = errors.maxAppendSize();
			return;
		}
		proposed.push({
			id: uuidText(m.getId()), type: md.get('type'), contentType: md.get('content-type'),
			data: data.toString('base64'), meta: meta.toString('base64'),
		});
	});
	call.on('error', () => {});
	call.on('end', () => {
		setTimeout(() => finishAppend(call, callback, denied || failed, options, proposed),
			opts.appendDelayMs);
	});
}

// Calls answered, for the benchmark (--stats FILE: written twice a second).
const stats = {appends: 0, sessions: 0, reads: 0};
if (opts.stats) {
	// Whole or not at all: a reader never meets the file half written.
	setInterval(() => {
		fs.writeFileSync(opts.stats + '.tmp', JSON.stringify(stats) + '\n');
		fs.renameSync(opts.stats + '.tmp', opts.stats);
	}, 500).unref();
}

function finishAppend(call, callback, failed, options, proposed) {
	if (call.cancelled) return;
	stats.appends++;
	if (failed) return callback(failed);
	if (options === null) return callback(errors.invalid('an Append without options'));
	const name = streamName(options.getStreamIdentifier());
	const expected = expectedOf(options);
	if (name === '') return callback(errors.invalid('an empty stream name'));
	if (expected === null) return callback(errors.invalid('no expected stream revision'));
	const resp = new AppendResp();
	if (proposed.length === 0) {
		// An empty append checks the expected revision and writes nothing.
		const s = streamOf(name);
		if (s && s.hard) return callback(errors.streamDeleted(name));
		const cur = version(s);
		const fits = expected === ANY || (expected === STREAM_EXISTS ? cur !== -1n : cur === expected);
		if (!fits) return callback(null, wrongVersion(resp, cur, expected));
		return callback(null, success(resp, cur, null));
	}
	const verdict = judgeAppend(name, expected, proposed.map((p) => p.id));
	if (verdict.deleted) return callback(errors.streamDeleted(name));
	if (verdict.wrong !== undefined) return callback(null, wrongVersion(resp, verdict.wrong, expected));
	const records = verdict.ok ||
		commit({op: 'append', stream: name, events: proposed});
	const last = records[records.length - 1];
	return callback(null, success(resp, last.number, records[0]));
}

function success(resp, current, first) {
	const ok = new AppendResp.Success();
	if (current >= 0n) ok.setCurrentRevision(current.toString());
	else ok.setNoStream(new Empty());
	if (first) {
		const p = new AppendResp.Position();
		p.setCommitPosition(first.commit.toString());
		p.setPreparePosition(first.prepare.toString());
		ok.setPosition(p);
	} else {
		ok.setNoPosition(new Empty());
	}
	resp.setSuccess(ok);
	return resp;
}

function wrongVersion(resp, current, expected) {
	const w = new AppendResp.WrongExpectedVersion();
	if (current >= 0n) {
		w.setCurrentRevision(current.toString());
		w.setCurrentRevision2060(current.toString());
	} else {
		w.setCurrentNoStream(new Empty());
		w.setNoStream2060(new Empty());
	}
	setExpected(w, expected, true);
	resp.setWrongExpectedVersion(w);
	return resp;
}

// ---- AppendSession (v2) ---------------------------------------------------------
// The server's errors (RpcExceptions.Create in src/KurrentDB.Api.V2): the
// google.rpc.Status in grpc-status-details-bin holds a google.rpc.ErrorInfo
// (reason, domain) and then the error's details.
function anyOf(typeName, bytes) {
	const a = new Any();
	a.setTypeUrl('type.googleapis.com/' + typeName);
	a.setValue(bytes);
	return a;
}

function v2Error(code, message, reason, domain, details) {
	const info = new jspb.BinaryWriter();
	info.writeString(1, reason);
	info.writeString(2, domain);
	const all = [anyOf('google.rpc.ErrorInfo', info.getResultBuffer())];
	if (details) all.push(details);
	const w = new jspb.BinaryWriter();
	w.writeInt32(1, code);
	w.writeString(2, message);
	for (const a of all) w.writeMessage(3, a, Any.serializeBinaryToWriter);
	const md = new grpc.Metadata();
	md.set('grpc-status-details-bin', Buffer.from(w.getResultBuffer()));
	return {code, details: message, metadata: md};
}

const E2 = v2ErrorsPb;
const v2errors = {
	invalid: (msg) => v2Error(grpc.status.INVALID_ARGUMENT,
		`The 'AppendRequest' is invalid: ${msg}`, 'BAD_REQUEST', 'server', null),
	revisionConflict: (stream, expected, actual) => {
		const d = new E2.StreamRevisionConflictErrorDetails();
		d.setStream(stream);
		d.setExpectedRevision(expected.toString());
		d.setActualRevision(actual.toString());
		return v2Error(grpc.status.FAILED_PRECONDITION,
			`Append failed due to a revision conflict on stream '${stream}'. Expected revision: ` +
			`${expected}. Actual revision: ${actual}.`, 'STREAM_REVISION_CONFLICT', 'streams',
			anyOf('kurrentdb.protocol.v2.streams.errors.StreamRevisionConflictErrorDetails',
				d.serializeBinary()));
	},
	tombstoned: (stream) => {
		const d = new E2.StreamTombstonedErrorDetails();
		d.setStream(stream);
		return v2Error(grpc.status.FAILED_PRECONDITION,
			`Stream '${stream}' has been tombstoned. It has been permanently removed from the ` +
			'system and cannot be restored.', 'STREAM_TOMBSTONED', 'streams',
			anyOf('kurrentdb.protocol.v2.streams.errors.StreamTombstonedErrorDetails',
				d.serializeBinary()));
	},
	alreadyInSession: (stream) => {
		const d = new E2.StreamAlreadyInAppendSessionErrorDetails();
		d.setStream(stream);
		return v2Error(grpc.status.ABORTED,
			`Stream '${stream}' is already in the append session.`,
			'STREAM_ALREADY_IN_APPEND_SESSION', 'streams',
			anyOf('kurrentdb.protocol.v2.streams.errors.StreamAlreadyInAppendSessionErrorDetails',
				d.serializeBinary()));
	},
	tooLarge: (size) => {
		const d = new E2.AppendTransactionSizeExceededErrorDetails();
		d.setSize(size);
		d.setMaxSize(MAX_APPEND_SIZE);
		return v2Error(grpc.status.ABORTED,
			`Transaction size (${size} bytes) exceeded the maximum allowed size of ` +
			`${MAX_APPEND_SIZE} bytes by ${size - MAX_APPEND_SIZE} bytes.`,
			'APPEND_TRANSACTION_SIZE_EXCEEDED', 'streams',
			anyOf('kurrentdb.protocol.v2.streams.errors.AppendTransactionSizeExceededErrorDetails',
				d.serializeBinary()));
	},
	noRequests: () => v2Error(grpc.status.FAILED_PRECONDITION,
		'An append session was started, but no append requests were sent.',
		'APPEND_SESSION_NO_REQUESTS', 'streams', null),
};

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SCHEMA_NAME = /^[\p{L}\p{N}_.$:-]+$/u;
const FORMATS = {1: 'Json', 2: 'Protobuf', 3: 'Avro', 4: 'Bytes'};

function valueKindSet(v) {
	const k = v.getKindCase();
	if (k === 0) return false;
	if (v.hasStructValue()) {
		const m = v.getStructValue().getFieldsMap();
		return m.getEntryList().every(([k]) => valueKindSet(m.get(k)));
	}
	if (v.hasListValue()) return v.getListValue().getValuesList().every(valueKindSet);
	return true;
}

// One AppendRequest as the stand-in keeps it, or the error that refuses
// the session (AppendRequestValidator, AppendRecordValidator).
function sessionRequest(req, seen, size) {
	const stream = req.getStream();
	if (stream === '') return {error: v2errors.invalid('Stream must not be empty.')};
	if (stream === '$$') return {error: v2errors.invalid("Stream must not be '$$'.")};
	const expected = req.hasExpectedRevision() ? BigInt(req.getExpectedRevision()) : ANY;
	if (expected < 0n && expected !== ANY && expected !== NO_STREAM && expected !== STREAM_EXISTS)
		return {error: v2errors.invalid('Expected revision must be positive or one of the allowed ' +
			'constants: NoStream (-1), Any (-2) or Exists (-4).')};
	if (req.getRecordsList().length === 0)
		return {error: v2errors.invalid('Stream append request must contain at least one record')};
	if (seen.has(stream.toLowerCase())) return {error: v2errors.alreadyInSession(stream)};
	seen.add(stream.toLowerCase());
	const events = [];
	for (const rec of req.getRecordsList()) {
		const id = rec.hasRecordId() ? rec.getRecordId() : crypto.randomUUID();
		if (!GUID.test(id) || /^[0-]+$/.test(id))
			return {error: v2errors.invalid('Record ID must be a valid and non-empty UUID.')};
		const schema = rec.getSchema();
		const name = schema ? schema.getName() : '';
		if (name === '') return {error: v2errors.invalid('Schema name must not be empty')};
		if (!SCHEMA_NAME.test(name) || name.normalize('NFC') !== name)
			return {error: v2errors.invalid('Schema name can only contain unicode letters, digits, ' +
				`underscores, dashes, periods, colons, and dollar signs. Attempted Value: ${name}`)};
		const format = schema.getFormat();
		if (!FORMATS[format]) return {error: v2errors.invalid("'Format' must not be equal to 'Unspecified'.")};
		const props = new Struct();
		const fields = props.getFieldsMap();
		const given = rec.getPropertiesMap();
		for (const [k] of given.getEntryList()) {
			const v = given.get(k);
			if (k === '') return {error: v2errors.invalid('Property keys must not be empty.')};
			if (!valueKindSet(v)) return {error: v2errors.invalid('Property values must have a type set.')};
			fields.set(k, v);
		}
		const data = Buffer.from(rec.getData_asU8());
		size.total += data.length + props.serializeBinary().length + Buffer.byteLength(name);
		if (size.total > MAX_APPEND_SIZE) return {error: v2errors.tooLarge(size.total)};
		// What a v1 read gives (EventRecord.SynthesizeMetadataFromProperties).
		const meta = props.toJavaScript();
		meta['$schema.name'] = name;
		meta['$schema.format'] = FORMATS[format];
		events.push({
			id: id.toLowerCase(), type: name,
			contentType: format === 1 ? 'application/json' : 'application/octet-stream',
			data: data.toString('base64'), meta: Buffer.from(JSON.stringify(meta)).toString('base64'),
		});
	}
	return {stream, expected, events};
}

function appendSession(call, callback) {
	const denied = gate(call, true);
	const reqs = [];
	const seen = new Set();
	const size = {total: 0};
	let failed = null;
	call.on('data', (req) => {
		if (failed || denied) return;
		const r = sessionRequest(req, seen, size);
		if (r.error) failed = r.error;
		else reqs.push(r);
	});
	call.on('error', () => {});
	call.on('end', () => {
		setTimeout(() => finishSession(call, callback, denied || failed, reqs), opts.appendDelayMs);
	});
}

function finishSession(call, callback, failed, reqs) {
	if (call.cancelled) return;
	stats.sessions++;
	if (failed) return callback(failed);
	if (reqs.length === 0) return callback(v2errors.noRequests());
	const verdicts = reqs.map((r) => judgeAppend(r.stream, r.expected, r.events.map((e) => e.id)));
	for (let i = 0; i < reqs.length; i++) {
		if (verdicts[i].deleted) return callback(v2errors.tombstoned(reqs[i].stream));
		if (verdicts[i].wrong !== undefined)
			return callback(v2errors.revisionConflict(reqs[i].stream, reqs[i].expected, verdicts[i].wrong));
	}
	const found = verdicts.filter((v) => v.ok).length;
	const resp = new v2Pb.AppendSessionResponse();
	let records;
	if (found === reqs.length) {
		records = verdicts.map((v) => v.ok); // all there already: idempotent
	} else if (found > 0) {
		// Some there, some not: the storage writer's commit checks fail.
		const i = verdicts.findIndex((v) => v.ok);
		return callback(v2errors.revisionConflict(reqs[i].stream, reqs[i].expected,
			version(streamOf(reqs[i].stream))));
	} else {
		records = commit({op: 'session',
			appends: reqs.map((r) => ({stream: r.stream, events: r.events}))});
	}
	let position = 0n;
	reqs.forEach((r, i) => {
		const last = records[i][records[i].length - 1];
		const o = new v2Pb.AppendResponse();
		o.setStream(r.stream);
		o.setStreamRevision(last.number.toString());
		resp.addOutput(o);
		if (last.prepare > position) position = last.prepare;
	});
	resp.setPosition((found === reqs.length ? position : records[0][0].commit).toString());
	return callback(null, resp);
}

// ---- Delete and Tombstone ------------------------------------------------
function deleteCall(hard) {
	return (call, callback) => {
		const denied = gate(call, true);
		if (denied) return callback(denied);
		const o = call.request.getOptions();
		const name = o ? streamName(o.getStreamIdentifier()) : '';
		const expected = o ? expectedOf(o) : null;
		if (name === '' || expected === null)
			return callback(errors.invalid('a stream and an expected revision are required'));
		const s = streamOf(name);
		if (s && s.hard) return callback(errors.streamDeleted(name));
		const cur = version(s);
		const fits = expected === ANY ||
			(expected === NO_STREAM ? cur === -1n
				: expected === STREAM_EXISTS ? cur !== -1n : cur === expected);
		if (!fits)
			return callback(errors.wrongExpectedVersion('Delete', name, expected, cur));
		const r = commit({op: hard ? 'tombstone' : 'delete', stream: name});
		const resp = hard ? new TombstoneResp() : new DeleteResp();
		const P = hard ? TombstoneResp.Position : DeleteResp.Position;
		const p = new P();
		p.setCommitPosition(r.commit.toString());
		p.setPreparePosition(r.prepare.toString());
		resp.setPosition(p);
		return callback(null, resp);
	};
}

// ---- Read -----------------------------------------------------------------
function readEvent(r, structured, withPosition) {
	const re = new ReadResp.ReadEvent.RecordedEvent();
	re.setId(uuidMessage(r.id, structured));
	re.setStreamIdentifier(identifier(r.stream));
	re.setStreamRevision(r.number.toString());
	re.setPreparePosition(r.prepare.toString());
	re.setCommitPosition(r.commit.toString());
	const md = re.getMetadataMap();
	md.set('type', r.type);
	md.set('content-type', r.contentType);
	md.set('created', r.created.toString());
	re.setCustomMetadata(r.meta);
	re.setData(r.data);
	const ev = new ReadResp.ReadEvent();
	ev.setEvent(re);
	if (withPosition) ev.setCommitPosition(r.commit.toString());
	else ev.setNoPosition(new Empty());
	const resp = new ReadResp();
	resp.setEvent(ev);
	return resp;
}

function filterOf(o) {
	if (!o.hasFilter()) return () => true;
	const f = o.getFilter();
	const expr = f.hasStreamIdentifier() ? f.getStreamIdentifier() : f.getEventType();
	const field = f.hasStreamIdentifier() ? (r) => r.stream : (r) => r.type;
	const prefixes = expr.getPrefixList();
	const regex = expr.getRegex() ? new RegExp(expr.getRegex()) : null;
	return (r) => {
		const v = field(r);
		if (prefixes.length > 0) return prefixes.some((p) => v.startsWith(p));
		return regex ? regex.test(v) : true;
	};
}

function cmpPos(r, c, p) {
	if (r.commit !== c) return r.commit < c ? -1 : 1;
	return r.prepare < p ? -1 : r.prepare > p ? 1 : 0;
}

// $all from a position: the index of the first record at or after it
// (forwards), or of the last record before it (backwards).
function allStart(o, backward) {
	const a = o.getAll();
	if (a.hasStart()) return backward ? -1 : 0;
	if (a.hasEnd()) return backward ? log.length - 1 : log.length;
	const pos = a.getPosition();
	const c = BigInt(pos.getCommitPosition()), p = BigInt(pos.getPreparePosition());
	// The server reads the log from the commit position: it must be where a
	// record starts (or the end), else "Trying to read from an invalid
	// position." (RpcExceptions.InvalidPositionException).
	if (c !== 0n && c !== logEnd && !recordAt.has(c)) return null;
	if (!backward) {
		let i = 0;
		while (i < log.length && cmpPos(log[i], c, p) < 0) i++;
		return i;
	}
	let i = log.length - 1;
	while (i >= 0 && cmpPos(log[i], c, p) >= 0) i--;
	return i;
}

function read(call) {
	const denied = gate(call, false);
	if (denied) {
		call.emit('error', denied);
		return;
	}
	stats.reads++;
	const o = call.request.getOptions();
	if (!o) {
		call.emit('error', errors.invalid('a Read without options'));
		return;
	}
	const backward = o.getReadDirection() === ReadReq.Options.ReadDirection.BACKWARDS;
	const structured = o.hasUuidOption() && o.getUuidOption().hasStructured();
	if (o.hasSubscription()) return subscribe(call, o, structured);
	const count = o.hasCount() ? BigInt(o.getCount()) : 0n;
	const out = [];
	if (o.hasStream()) {
		const so = o.getStream();
		const name = streamName(so.getStreamIdentifier());
		const s = streamOf(name);
		if (s && s.hard) {
			call.emit('error', errors.streamDeleted(name));
			return;
		}
		if (!s || s.soft || s.events.length <= s.tb || s.events.length === 0) {
			const nf = new ReadResp.StreamNotFound();
			nf.setStreamIdentifier(identifier(name));
			const resp = new ReadResp();
			resp.setStreamNotFound(nf);
			call.write(resp);
			call.end();
			return;
		}
		const last = s.events.length - 1;
		let i = so.hasStart() ? (backward ? -1 : s.tb) : so.hasEnd() ? (backward ? last : last + 1)
			: Number(BigInt(so.getRevision()) > BigInt(last + 1) ? BigInt(last + 1)
				: BigInt(so.getRevision()));
		if (backward && i > last) i = last;
		if (!backward && i < s.tb) i = s.tb;
		while (BigInt(out.length) < count && i >= s.tb && i <= last) {
			out.push(s.events[i]);
			i += backward ? -1 : 1;
		}
		for (const r of out) call.write(readEvent(r, structured, true));
		call.end();
		return;
	}
	if (!o.hasAll()) {
		call.emit('error', errors.invalid('a Read of neither a stream nor $all'));
		return;
	}
	const keep = filterOf(o);
	let i = allStart(o, backward);
	if (i === null) {
		call.emit('error', errors.invalid('Trying to read from an invalid position.'));
		return;
	}
	while (BigInt(out.length) < count && i >= 0 && i < log.length) {
		if (keep(log[i])) out.push(log[i]);
		i += backward ? -1 : 1;
	}
	for (const r of out) call.write(readEvent(r, structured, true));
	call.end();
}

// A subscription: confirmation, the past from the position, a checkpoint
// and caught_up, then each new record as it is committed, until the client
// goes (or its deadline passes).
function subscribe(call, o, structured) {
	const conf = new ReadResp.SubscriptionConfirmation();
	conf.setSubscriptionId(crypto.randomUUID());
	const first = new ReadResp();
	first.setConfirmation(conf);
	call.write(first);
	let next;
	let keep = () => true;
	let name = null;
	if (o.hasAll()) {
		keep = filterOf(o);
		next = allStart(o, false);
		if (next === null) {
			call.emit('error', errors.invalid('Trying to read from an invalid position.'));
			return;
		}
	} else {
		const so = o.getStream();
		name = streamName(so.getStreamIdentifier());
		const s = streamOf(name);
		next = so.hasStart() ? 0 : so.hasEnd() ? (s ? s.events.length : 0)
			: Number(so.getRevision()) + 1;
	}
	const pump = () => {
		if (call.cancelled || call.destroyed) return;
		if (name === null) {
			for (; next < log.length; next++)
				if (keep(log[next])) call.write(readEvent(log[next], structured, true));
		} else {
			const s = streamOf(name);
			for (; s && next < s.events.length; next++)
				if (next >= s.tb) call.write(readEvent(s.events[next], structured, true));
		}
	};
	pump();
	if (name === null) {
		const cp = new ReadResp.Checkpoint();
		const end = log.length ? log[log.length - 1] : null;
		cp.setCommitPosition((end ? end.commit : 0n).toString());
		cp.setPreparePosition((end ? end.prepare : 0n).toString());
		const r = new ReadResp();
		r.setCheckpoint(cp);
		call.write(r);
	}
	const caught = new ReadResp();
	caught.setCaughtUp(new ReadResp.CaughtUp());
	call.write(caught);
	waiters.add(pump);
	const stop = () => waiters.delete(pump);
	call.on('cancelled', stop);
	call.on('close', stop);
	call.on('error', stop);
}

// ---- ServerFeatures ---------------------------------------------------------
function getSupportedMethods(call, callback) {
	const who = authenticate(call);
	if (who && who.code) {
		callback(who);
		return;
	}
	const resp = new featuresPb.SupportedMethods();
	for (const m of ['read', 'append', 'delete', 'tombstone']) {
		const sm = new featuresPb.SupportedMethod();
		sm.setMethodName(m);
		sm.setServiceName('event_store.client.streams.streams');
		resp.addMethods(sm);
	}
	if (opts.sessions) {
		const sm = new featuresPb.SupportedMethod();
		sm.setMethodName('appendsession');
		sm.setServiceName('kurrentdb.protocol.v2.streams.streamsservice');
		resp.addMethods(sm);
	}
	resp.setEventStoreServerVersion(opts.sessions ? '25.1.0' : '25.0.0');
	callback(null, resp);
}

// ---- Gossip -------------------------------------------------------------------
// The client-facing gossip (Gossip.cs): every member with its state, liveness
// and HTTP end point.  A wrong password is still refused; no credentials are
// the anonymous user's, which may read it (Operations.Node.Gossip.ClientRead).
const {ClusterInfo, MemberInfo, EndPoint} = gossipPb;
const instanceId = crypto.randomUUID();
let boundPort = 0;

function member(address, state, alive, id) {
	const m = new MemberInfo();
	const at = address.lastIndexOf(':');
	const ep = new EndPoint();
	ep.setAddress(address.slice(0, at));
	ep.setPort(Number(address.slice(at + 1)));
	m.setInstanceId(uuidMessage(id, true));
	m.setTimeStamp((BigInt(Date.now()) * TICKS_PER_MS).toString());
	m.setState(state);
	m.setIsAlive(alive);
	m.setHttpEndPoint(ep);
	return m;
}

function gossipRead(call, callback) {
	const who = authenticate(call);
	if (who && who.code) {
		callback(who);
		return;
	}
	const S = MemberInfo.VNodeState;
	const own = opts.gossipState !== null ? vnodeState(opts.gossipState)
		: opts.follower ? S.FOLLOWER : S.LEADER;
	const info = new ClusterInfo();
	info.addMembers(member(`127.0.0.1:${boundPort}`, own, true, instanceId));
	if (members.length > 0) {
		for (const m of members)
			info.addMembers(member(m.address, m.state, m.alive, crypto.randomUUID()));
	} else if (opts.follower) {
		info.addMembers(member(opts.follower, S.LEADER, true, crypto.randomUUID()));
	}
	callback(null, info);
}

// ---- the server ---------------------------------------------------------------
const server = new grpc.Server();
server.addService(streamsGrpc.StreamsService, {
	read, append, delete: deleteCall(false), tombstone: deleteCall(true),
	batchAppend: (call) => call.emit('error', rpcError(grpc.status.UNIMPLEMENTED,
		'BatchAppend is not offered by this stand-in')),
});
server.addService(featuresGrpc.ServerFeaturesService, {getSupportedMethods});
if (opts.sessions) server.addService(v2Grpc.StreamsServiceService, {appendSession});
server.addService(gossipGrpc.GossipService, {read: gossipRead});
// grpc-js offers h2 by ALPN on TLS, as the server's Kestrel does.
const credentials = opts.tls
	? grpc.ServerCredentials.createSsl(null, [{cert_chain: fs.readFileSync(opts.tls.cert),
		private_key: fs.readFileSync(opts.tls.key)}], false)
	: grpc.ServerCredentials.createInsecure();
server.bindAsync(`127.0.0.1:${opts.port}`, credentials,
	(err, port) => {
		if (err) {
			process.stderr.write(`kurrentdb-standin: ${err.message}\n`);
			process.exit(1);
		}
		boundPort = port;
		process.stdout.write(`listening on 127.0.0.1:${port}\n`);
	});
// A graceful stop waits for the calls in progress, and a client that keeps
// its connection (the appender, the projector) may outlive the test that
// stops us: after a short grace the stand-in goes anyway, or the test's
// teardown would wait for it for ever.
for (const sig of ['SIGTERM', 'SIGINT'])
	process.on(sig, () => {
		server.tryShutdown(() => process.exit(0));
		setTimeout(() => {
			server.forceShutdown();
			process.exit(0);
		}, 1000).unref();
	});
