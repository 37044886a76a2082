#!/usr/bin/env node
// Writes the seed corpus of fuzz-kurrentdb from real exchanges with the
// KurrentDB gRPC stand-in (tests/kurrentdb/kurrentdb-standin.js), which it
// starts itself (twice: a leader, and a follower of it for the "not
// leader" answers):
//
//   cd tests/kurrentdb && npm ci            # the stand-in's packages, once
//   node tests/fuzz/capture-kurrentdb.js tests/fuzz/corpus-kurrentdb
//
// Each file is what the target reads (tests/fuzz/fuzz-kurrentdb.c): a line
// naming the backend operation, then the server's answers to the calls that
// operation makes, in order, separated by lines "--"; an answer is the
// status line and headers as libcurl hands them over ("HTTP/2 200", the
// header lines), an empty line, the trailer lines, an empty line, then the
// body (the framed messages) as it came.  The requests sent here are the
// ones lib/eventstore/kurrentdb.c sends for that operation (same paths,
// headers and messages, built with the official client's generated
// classes), over Node's own HTTP/2 client, so the answers are the server's
// bytes.
'use strict';

const fs = require('fs');
const http2 = require('http2');
const path = require('path');
const {spawn} = require('child_process');

const standinDir = path.join(__dirname, '..', 'kurrentdb');
function need(name) {
	return require(require.resolve(name, {paths: [standinDir, process.cwd()]}));
}
const gen = path.join(path.dirname(require.resolve('@kurrent/kurrentdb-client/package.json',
	{paths: [standinDir, process.cwd()]})), 'generated/kurrentdb/protocols/v1');
const {AppendReq, ReadReq, ReadResp, DeleteReq, TombstoneReq} = require(path.join(gen, 'streams_pb'));
const {Empty, UUID, StreamIdentifier} = require(path.join(gen, 'shared_pb'));
const v2 = require(path.join(gen, '../v2/streams/streams_pb'));
const {Value} = need('google-protobuf/google/protobuf/struct_pb.js');
need('@grpc/grpc-js'); // the stand-in's packages are there

const ELECTION = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
const STREAM = 'Election-' + ELECTION;
const OTHER = 'Election-01ARZ3NDEKTSV4RRFFQ69G5FAW';
const SVC = '/event_store.client.streams.Streams/';
const FEATURES = '/event_store.client.server_features.ServerFeatures/GetSupportedMethods';
const SESSION = '/kurrentdb.protocol.v2.streams.StreamsService/AppendSession';
// The "many" unit's streams and ids (tests/fuzz/store.c).
const MANY = [STREAM, 'Election-01ARZ3NDEKTSV4RRFFQ69G5FB2', 'Election-01ARZ3NDEKTSV4RRFFQ69G5FB3',
	'Election-01ARZ3NDEKTSV4RRFFQ69G5FB4'];
const MANY_IDS = [1, 2, 3, 4].map((i) => `5b1c2a9e-8b7d-4c6e-9a5b-00000000000${i}`);

// ---- the stand-in ---------------------------------------------------------
function start(args) {
	return new Promise((resolve, reject) => {
		const p = spawn(process.execPath, [path.join(standinDir, 'kurrentdb-standin.js'),
			...args, '0'], {cwd: standinDir, stdio: ['ignore', 'pipe', 'inherit']});
		let out = '';
		p.stdout.on('data', (d) => {
			out += d;
			const m = /listening on 127\.0\.0\.1:([0-9]+)/.exec(out);
			if (m) resolve({proc: p, port: Number(m[1])});
		});
		p.on('exit', (code) => reject(new Error(`the stand-in exited (${code})`)));
	});
}

// ---- one call --------------------------------------------------------------
function frame(msgs) {
	return Buffer.concat(msgs.map((m) => {
		const b = Buffer.from(m.serializeBinary());
		const prefix = Buffer.alloc(5);
		prefix.writeUInt32BE(b.length, 1);
		return Buffer.concat([prefix, b]);
	}));
}

function lines(headers) {
	let s = '';
	for (const [k, v] of Object.entries(headers)) {
		if (k.startsWith(':')) continue;
		for (const one of Array.isArray(v) ? v : [v]) s += `${k}: ${one}\r\n`;
	}
	return s;
}

// The answer as the fuzz target reads it (see the top).
function call(port, method, msgs, leader = true) {
	return new Promise((resolve, reject) => {
		const client = http2.connect(`http://127.0.0.1:${port}`);
		client.on('error', reject);
		const req = client.request({
			':method': 'POST', ':path': method.startsWith('/') ? method : SVC + method,
			'content-type': 'application/grpc', 'te': 'trailers',
			'grpc-accept-encoding': 'identity', 'grpc-timeout': '10000m',
			'requires-leader': leader ? 'true' : 'false',
		});
		let head = '', trailers = '';
		const body = [];
		req.on('response', (h) => { head = `HTTP/2 ${h[':status']}\r\n` + lines(h); });
		req.on('data', (d) => body.push(d));
		req.on('trailers', (t) => { trailers = lines(t); });
		req.on('end', () => {
			client.close();
			const b = Buffer.concat(body);
			if (b.includes('\n--\n'))
				return reject(new Error(`${method}: the body holds the separator line`));
			resolve(Buffer.concat([Buffer.from(head + '\r\n' + trailers + '\r\n'), b]));
		});
		req.on('error', reject);
		req.end(frame(msgs));
	});
}

// ---- the messages kurrentdb.c sends -----------------------------------------
function id(name) {
	const s = new StreamIdentifier();
	s.setStreamName(Buffer.from(name));
	return s;
}

function setExpected(o, expected) {
	if (expected >= 0) o.setRevision(String(expected));
	else if (expected === -1) o.setNoStream(new Empty());
	else if (expected === -4) o.setStreamExists(new Empty());
	else o.setAny(new Empty());
}

let idCount = 0;
function newId() {
	idCount++;
	return `3f1c2a9e-8b7d-4c6e-9a5b-${String(idCount).padStart(12, '0')}`;
}

function append(stream, expected, n, ids, size = 0) {
	const o = new AppendReq.Options();
	o.setStreamIdentifier(id(stream));
	setExpected(o, expected);
	const first = new AppendReq();
	first.setOptions(o);
	const msgs = [first];
	for (let i = 0; i < n; i++) {
		const p = new AppendReq.ProposedMessage();
		const u = new UUID();
		u.setString(ids ? ids[i] : newId());
		p.setId(u);
		p.getMetadataMap().set('type', i === 0 ? 'ElectionCreated' : 'ElectionOpened');
		p.getMetadataMap().set('content-type', 'application/json');
		const data = {election_id: ELECTION, name: size ? 'x'.repeat(size) : `Photo ${i}`};
		p.setData(Buffer.from(JSON.stringify(data)));
		p.setCustomMetadata(Buffer.from(JSON.stringify({user: 'alice@example.org'})));
		const r = new AppendReq();
		r.setProposedMessage(p);
		msgs.push(r);
	}
	return msgs;
}

// A session as kurrentdb.c sends it: one AppendRequest per stream, each
// with one record (the metadata as properties).
function session(n, expected) {
	return MANY.slice(0, n).map((stream, i) => {
		const r = new v2.AppendRequest();
		r.setStream(stream);
		r.setExpectedRevision(String(expected));
		const rec = new v2.AppendRecord();
		rec.setRecordId(MANY_IDS[i]);
		const schema = new v2.SchemaInfo();
		schema.setFormat(v2.SchemaFormat.SCHEMA_FORMAT_JSON);
		schema.setName('ElectionCreated');
		rec.setSchema(schema);
		rec.setData(Buffer.from(JSON.stringify({election_id: ELECTION})));
		const user = new Value();
		user.setStringValue('alice@example.org');
		rec.getPropertiesMap().set('user', user);
		r.addRecords(rec);
		return r;
	});
}

// The v1 Appends the backend sends after a refused session: one per stream.
function perStream(n, expected) {
	return MANY.slice(0, n).map((stream, i) => append(stream, expected, 1, [MANY_IDS[i]]));
}

function readOptions(count) {
	const o = new ReadReq.Options();
	const u = new ReadReq.Options.UUIDOption();
	u.setString(new Empty());
	o.setUuidOption(u);
	o.setCount(String(count));
	return o;
}

function readStream(stream, from, max, backward) {
	const o = readOptions(max + 1);
	const so = new ReadReq.Options.StreamOptions();
	so.setStreamIdentifier(id(stream));
	if (from < 0 && backward) so.setEnd(new Empty());
	else so.setRevision(String(from < 0 ? 0 : from));
	o.setStream(so);
	o.setReadDirection(backward ? ReadReq.Options.ReadDirection.BACKWARDS
		: ReadReq.Options.ReadDirection.FORWARDS);
	o.setNoFilter(new Empty());
	const r = new ReadReq();
	r.setOptions(o);
	return [r];
}

// The category feed's read of $all: from the record at (commit, prepare).
function readAll(commit, prepare, count) {
	const o = readOptions(count);
	const all = new ReadReq.Options.AllOptions();
	if (commit === 0n && prepare === 0n) {
		all.setStart(new Empty());
	} else {
		const p = new ReadReq.Options.Position();
		p.setCommitPosition(commit.toString());
		p.setPreparePosition(prepare.toString());
		all.setPosition(p);
	}
	o.setAll(all);
	o.setReadDirection(ReadReq.Options.ReadDirection.FORWARDS);
	const f = new ReadReq.Options.FilterOptions();
	const e = new ReadReq.Options.FilterOptions.Expression();
	e.addPrefix('Election-');
	f.setStreamIdentifier(e);
	f.setCount(new Empty());
	f.setCheckpointintervalmultiplier(1);
	o.setFilter(f);
	const r = new ReadReq();
	r.setOptions(o);
	return [r];
}

function del(stream, expected, hard) {
	const T = hard ? TombstoneReq : DeleteReq;
	const o = new T.Options();
	o.setStreamIdentifier(id(stream));
	setExpected(o, expected);
	const r = new T();
	r.setOptions(o);
	return [r];
}

// The positions of the category's events (prepare positions, in order).
function positions(answer) {
	const body = answer.subarray(answer.indexOf('\r\n\r\n') + 4);
	const b = body.subarray(body.indexOf('\r\n\r\n') + 4);
	const out = [];
	for (let at = 0; at + 5 <= b.length;) {
		const n = b.readUInt32BE(at + 1);
		const m = ReadResp.deserializeBinary(b.subarray(at + 5, at + 5 + n));
		if (m.hasEvent()) {
			const r = m.getEvent().getEvent();
			out.push({commit: BigInt(r.getCommitPosition()), prepare: BigInt(r.getPreparePosition())});
		}
		at += 5 + n;
	}
	return out;
}

function write(dir, name, op, answers) {
	const parts = [Buffer.from(op + '\n')];
	answers.forEach((a, i) => {
		if (i) parts.push(Buffer.from('\n--\n'));
		parts.push(a);
	});
	fs.writeFileSync(path.join(dir, name), Buffer.concat(parts));
}

async function main() {
	const dir = process.argv[2];
	if (!dir) {
		process.stderr.write('usage: capture-kurrentdb.js OUTDIR\n');
		process.exit(2);
	}
	fs.mkdirSync(dir, {recursive: true});
	const leader = await start([]);
	const follower = await start(['--follower', `127.0.0.1:${leader.port}`]);
	const old = await start(['--no-sessions']);
	const P = leader.port;
	try {
		// "many": the server features, then the session (or the Appends).
		const features = await call(P, FEATURES, [new Empty()]);
		write(dir, 'many-session', 'many -1 3', [features, await call(P, SESSION, session(3, -1))]);
		write(dir, 'many-session-idempotent', 'many -1 3',
			[features, await call(P, SESSION, session(3, -1))]);
		const refused = await call(P, SESSION, session(4, -1));
		const each = [];
		for (const msgs of perStream(4, -1)) each.push(await call(P, 'Append', msgs));
		write(dir, 'many-session-refused', 'many -1 4', [features, refused, ...each]);
		const oldFeatures = await call(old.port, FEATURES, [new Empty()]);
		const oldEach = [];
		for (const msgs of perStream(2, -1)) oldEach.push(await call(old.port, 'Append', msgs));
		write(dir, 'many-no-sessions', 'many -1 2', [oldFeatures, ...oldEach]);
		write(dir, 'many-session-not-leader', 'many 0 2',
			[await call(follower.port, FEATURES, [new Empty()]),
				await call(follower.port, SESSION, session(2, 0)),
				await call(P, SESSION, session(2, 0))]);
		write(dir, 'forward-missing-stream', 'forward 0 20', [await call(P, 'Read', readStream(STREAM, 0, 20, false))]);
		write(dir, 'category-empty', 'category 0 100', [await call(P, 'Read', readAll(0n, 0n, 100))]);
		const ids = [newId(), newId()];
		write(dir, 'append-created', 'append -1 2', [await call(P, 'Append', append(STREAM, -1, 2, ids))]);
		write(dir, 'append-idempotent', 'append -1 2', [await call(P, 'Append', append(STREAM, -1, 2, ids))]);
		write(dir, 'append-wrong-expected-version', 'append -1 2', [await call(P, 'Append', append(STREAM, -1, 2))]);
		write(dir, 'append-at-1', 'append 1 2', [await call(P, 'Append', append(STREAM, 1, 2))]);
		write(dir, 'append-wrong-revision', 'append 1 2', [await call(P, 'Append', append(STREAM, 1, 2))]);
		write(dir, 'append-stream-exists-missing', 'append -4 1', [await call(P, 'Append', append(OTHER + 'X', -4, 1))]);
		write(dir, 'append-any', 'append -2 1', [await call(P, 'Append', append(STREAM, -2, 1))]);
		write(dir, 'append-too-large', 'append -2 1', [await call(P, 'Append', append(STREAM, -2, 1, null, 1100000))]);
		await call(P, 'Append', append(OTHER, -1, 2));
		write(dir, 'forward-page', 'forward 0 20', [await call(P, 'Read', readStream(STREAM, 0, 20, false))]);
		write(dir, 'forward-partial-page', 'forward 1 2', [await call(P, 'Read', readStream(STREAM, 1, 2, false))]);
		write(dir, 'forward-past-end', 'forward 9 20', [await call(P, 'Read', readStream(STREAM, 9, 20, false))]);
		write(dir, 'backward-head', 'backward -1 20', [await call(P, 'Read', readStream(STREAM, -1, 20, true))]);
		write(dir, 'backward-page', 'backward 3 2', [await call(P, 'Read', readStream(STREAM, 3, 2, true))]);
		const whole = await call(P, 'Read', readAll(0n, 0n, 100));
		write(dir, 'category-page', 'category 0 100', [whole]);
		const pos = positions(whole);
		// From the third event on, three: the third is another append, left
		// for the next page, which ends with a whole append.
		const at = pos[1].prepare;
		write(dir, 'category-partial-page', `category ${at + 1n} 3`,
			[await call(P, 'Read', readAll(at, at, 3))]);
		// One append fills a page of one: the read goes on to its end.
		const first = await call(P, 'Read', readAll(0n, 0n, 1));
		const more = await call(P, 'Read', readAll(pos[0].commit, pos[0].prepare, 4096));
		write(dir, 'category-append-fills-page', 'category 0 1', [first, more]);
		const last = pos[pos.length - 1].prepare;
		write(dir, 'category-caught-up', `category ${last + 1n} 100`,
			[await call(P, 'Read', readAll(last, last, 100))]);
		write(dir, 'category-invalid-position', `category ${last + 2n} 100`,
			[await call(P, 'Read', readAll(last + 1n, last + 1n, 100))]);
		write(dir, 'list-streams', 'list', [await call(P, 'Read', readAll(0n, 0n, 1000)),
			await call(P, 'Read', readStream(STREAM, -1, 1, true)),
			await call(P, 'Read', readStream(OTHER, -1, 1, true))]);
		write(dir, 'append-not-leader', 'append 4 1', [await call(follower.port, 'Append', append(STREAM, 4, 1)),
			await call(P, 'Append', append(STREAM, 4, 1))]);
		write(dir, 'forward-not-leader', 'forward 0 2', [await call(follower.port, 'Read', readStream(STREAM, 0, 2, false)),
			await call(P, 'Read', readStream(STREAM, 0, 2, false))]);
		write(dir, 'delete-wrong-version', 'delete 2 1', [await call(P, 'Delete', del(STREAM, 2, false))]);
		write(dir, 'delete-soft', 'delete 5 1', [await call(P, 'Delete', del(STREAM, 5, false))]);
		write(dir, 'forward-soft-deleted', 'forward 0 20', [await call(P, 'Read', readStream(STREAM, 0, 20, false))]);
		write(dir, 'append-after-soft-delete', 'append -1 1', [await call(P, 'Append', append(STREAM, -1, 1))]);
		write(dir, 'delete-hard', 'delete -2 2', [await call(P, 'Tombstone', del(STREAM, -2, true))]);
		write(dir, 'forward-gone', 'forward 0 20', [await call(P, 'Read', readStream(STREAM, 0, 20, false))]);
		write(dir, 'append-gone', 'append -2 1', [await call(P, 'Append', append(STREAM, -2, 1))]);
		write(dir, 'delete-gone', 'delete -2 1', [await call(P, 'Delete', del(STREAM, -2, false))]);
		write(dir, 'list-after-tombstone', 'list', [await call(P, 'Read', readAll(0n, 0n, 1000)),
			await call(P, 'Read', readStream(STREAM, -1, 1, true)),
			await call(P, 'Read', readStream(OTHER, -1, 1, true))]);
	} finally {
		leader.proc.removeAllListeners('exit');
		follower.proc.removeAllListeners('exit');
		old.proc.removeAllListeners('exit');
		old.proc.kill();
		leader.proc.kill();
		follower.proc.kill();
	}
}

main().catch((e) => {
	process.stderr.write(`capture-kurrentdb: ${e.stack || e}\n`);
	process.exit(1);
});
