#!/usr/bin/env node
// Keeps the KurrentDB stand-in honest: the official Node client
// (@kurrent/kurrentdb-client; its reads go through its Rust bridge, a second
// client no one here wrote) against the stand-in at the connection string in
// argv[2], checking what the client's documentation says each call gives;
// given two more connection strings to the same secure server (a wrong
// password, no credentials), that it refuses both; with PV_KDB_DISCOVER set
// (a kurrentdb+discover:// string whose seed's gossip names the stand-in as
// its leader, and whose own "not leader" answers lead nowhere), that the
// client finds the leader through the stand-ins' gossip.  Prints TAP.
'use strict';

const path = require('path');
const crypto = require('crypto');
const here = __dirname;
const kdb = require(require.resolve('@kurrent/kurrentdb-client', {paths: [here, process.cwd()]}));
const {
	KurrentDBClient, jsonEvent, NO_STREAM, ANY, STREAM_EXISTS, FORWARDS, BACKWARDS, START, END,
	streamNameFilter,
} = kdb;

const {ok, run, rejects, collect, show} = require('./tap.js');
const ev = (type, data) => jsonEvent({type, data, id: crypto.randomUUID()});

async function main() {
	const client = KurrentDBClient.connectionString(process.argv[2]);
	const run = crypto.randomUUID().replace(/-/g, '').slice(0, 12);
	const s = `Test${run}-a`;

	// Appends with each kind of expected revision.
	const first = [ev('Created', {n: 0}), ev('Voted', {n: 1})];
	let r = await client.appendToStream(s, first, {streamState: NO_STREAM});
	ok(r.success && r.nextExpectedRevision === 1n, 'append no_stream: next expected revision 1',
		show(r));
	ok(typeof r.position?.commit === 'bigint' && r.position.prepare >= r.position.commit,
		'append: the position has commit and prepare');
	r = await client.appendToStream(s, ev('Voted', {n: 2}), {streamState: 1n});
	ok(r.nextExpectedRevision === 2n, 'append at revision 1: next expected revision 2');
	r = await client.appendToStream(s, ev('Voted', {n: 3}), {streamState: STREAM_EXISTS});
	ok(r.nextExpectedRevision === 3n, 'append stream_exists: next expected revision 3');
	r = await client.appendToStream(s, ev('Voted', {n: 4}), {streamState: ANY});
	ok(r.nextExpectedRevision === 4n, 'append any: next expected revision 4');

	// Idempotence: the same ids at the same place are the same append.
	r = await client.appendToStream(s, first, {streamState: NO_STREAM});
	ok(r.nextExpectedRevision === 1n, 'the first append again (same ids, no_stream) succeeds with revision 1');

	// Wrong expected versions and their details.
	let e = await rejects(client.appendToStream(s, ev('Voted', {}), {streamState: 2n}));
	ok(e && e.type === 'wrong-expected-version' && e.streamName === s &&
		e.expectedState === 2n && e.actualState === 4n,
	'append at a stale revision: WrongExpectedVersionError, expected 2, actual 4', e);
	e = await rejects(client.appendToStream(s, ev('Voted', {}), {streamState: NO_STREAM}));
	ok(e && e.type === 'wrong-expected-version' && e.expectedState === NO_STREAM &&
		e.actualState === 4n, 'append no_stream to an existing stream: expected no_stream, actual 4', e);
	e = await rejects(client.appendToStream(`Test${run}-none`, ev('Voted', {}),
		{streamState: STREAM_EXISTS}));
	ok(e && e.type === 'wrong-expected-version' && e.expectedState === STREAM_EXISTS &&
		e.actualState === NO_STREAM,
	'append stream_exists to a missing stream: expected stream_exists, actual no_stream', e);

	// Reads forwards and backwards.
	let got = await collect(client.readStream(s, {direction: FORWARDS, fromRevision: START}));
	ok(got.length === 5 && got.map((x) => Number(x.event.revision)).join() === '0,1,2,3,4',
		'read forwards from the start: revisions 0..4', got.length);
	ok(got[0].event.type === 'Created' && got[0].event.data.n === 0 && got[0].event.isJson &&
		got[0].event.created instanceof Date && Math.abs(got[0].event.created - Date.now()) < 60000,
	'an event: type, JSON data, created time', show(got[0]?.event));
	got = await collect(client.readStream(s, {direction: BACKWARDS, fromRevision: END, maxCount: 2}));
	ok(got.map((x) => Number(x.event.revision)).join() === '4,3', 'read backwards from the end, 2: 4,3');
	got = await collect(client.readStream(s, {direction: FORWARDS, fromRevision: 3n, maxCount: 10}));
	ok(got.map((x) => Number(x.event.revision)).join() === '3,4', 'read forwards from revision 3: 3,4');
	e = await rejects(collect(client.readStream(`Test${run}-none`)));
	ok(e && e.type === 'stream-not-found', 'a missing stream: StreamNotFoundError', e);

	// Soft delete: gone for reads, recreated by the next append, numbering on.
	e = await rejects(client.deleteStream(s, {expectedRevision: 1n}));
	ok(e && e.type === 'wrong-expected-version' && e.expectedState === 1n && e.actualState === 4n,
		'delete at a stale revision: WrongExpectedVersionError, expected 1, actual 4', e);
	const del = await client.deleteStream(s, {expectedRevision: 4n});
	ok(del && typeof del.position?.commit === 'bigint', 'delete at revision 4: a position');
	e = await rejects(collect(client.readStream(s)));
	ok(e && e.type === 'stream-not-found', 'a soft-deleted stream reads as not found', e);
	r = await client.appendToStream(s, ev('Voted', {n: 5}), {streamState: NO_STREAM});
	ok(r.nextExpectedRevision === 5n, 'append no_stream to the soft-deleted stream: revision 5');
	got = await collect(client.readStream(s));
	ok(got.map((x) => Number(x.event.revision)).join() === '5', 'the recreated stream holds only 5');

	// Tombstone: deleted for good.
	const t = `Test${run}-t`;
	await client.appendToStream(t, ev('Created', {}), {streamState: NO_STREAM});
	await client.tombstoneStream(t);
	e = await rejects(collect(client.readStream(t)));
	ok(e && e.type === 'stream-deleted', 'a tombstoned stream: StreamDeletedError on read', e);
	e = await rejects(client.appendToStream(t, ev('Voted', {}), {streamState: ANY}));
	ok(e && e.type === 'stream-deleted' && e.streamName === t,
		'a tombstoned stream: StreamDeletedError on append', e);

	// $all: filtered reads and a filtered subscription by stream prefix.
	const other = `Other${run}-x`;
	await client.appendToStream(other, ev('Noise', {}), {streamState: ANY});
	const prefix = `Test${run}-`;
	got = await collect(client.readAll({direction: FORWARDS, fromPosition: START,
		filter: streamNameFilter({prefixes: [prefix]})}));
	const names = new Set(got.map((x) => x.event.streamId));
	ok(got.length > 0 && [...names].every((x) => x.startsWith(prefix)),
		'$all read filtered by prefix: only those streams', [...names].join());
	let sorted = true;
	for (let i = 1; i < got.length; i++) {
		const a = got[i - 1].event.position, b = got[i].event.position;
		if (b.commit < a.commit || (b.commit === a.commit && b.prepare <= a.prepare)) sorted = false;
	}
	ok(sorted, '$all forwards: positions increase');
	const back = await collect(client.readAll({direction: BACKWARDS, fromPosition: END, maxCount: 3}));
	ok(back.length === 3 && back[0].event.streamId === other,
		'$all backwards from the end: the last append first', back[0]?.event?.streamId);

	const sub = client.subscribeToAll({fromPosition: START,
		filter: streamNameFilter({prefixes: [prefix]})});
	const seen = [];
	let live = null;
	const done = new Promise((resolve, reject) => {
		sub.on('data', (x) => {
			seen.push(x.event);
			if (live && x.event.id === live) resolve();
		});
		sub.on('error', reject);
		setTimeout(() => reject(new Error('no live event within 10 s')), 10000);
	});
	await new Promise((resolve) => setTimeout(resolve, 300));
	const liveEvent = ev('Voted', {live: true});
	live = liveEvent.id;
	await client.appendToStream(`Test${run}-live`, liveEvent, {streamState: NO_STREAM});
	await client.appendToStream(other, ev('Noise', {}), {streamState: ANY});
	const subErr = await rejects(done);
	await sub.unsubscribe();
	ok(!subErr && seen.length >= got.length + 1 &&
		seen.every((x) => x.streamId.startsWith(prefix)),
	'filtered $all subscription: the past, then a live event, no other stream', subErr || seen.length);

	await sessions(client, run);
	if (process.argv.length > 3) await refusals(client, process.argv[3], process.argv[4], run);
	if (process.env.PV_KDB_DISCOVER) await discovery(client, process.env.PV_KDB_DISCOVER, run);
	await client.dispose();
}

// multiStreamAppend (KurrentDB 25.1's AppendSession, which the client uses
// when ServerFeatures offers it): several streams in one call, atomically;
// the revisions it answers; a wrong expected revision is the client's
// WrongExpectedVersionError, read from the details the server sends
// (grpc-status-details-bin), and nothing of the session is written; the
// same session again is recognised; a v1 read gives the properties as JSON
// metadata with the schema added.
async function sessions(client, run) {
	const a = `Test${run}-msa`, b = `Test${run}-msb`;
	const first = [
		{streamName: a, expectedState: NO_STREAM,
			events: [jsonEvent({type: 'Voted', data: {n: 1}, metadata: {user: 'alice'},
				id: crypto.randomUUID()})]},
		{streamName: b, expectedState: NO_STREAM,
			events: [ev('Created', {n: 1}), ev('Voted', {n: 2})]},
	];
	let r = await client.multiStreamAppend(first);
	ok(r.responses.length === 2 && r.responses[0].streamName === a &&
		r.responses[0].revision === 0n && r.responses[1].revision === 1n &&
		typeof r.position === 'bigint',
	'multiStreamAppend: each stream\'s revision, and a position', show(r));
	r = await client.multiStreamAppend(first);
	ok(r.responses.length === 2 && r.responses[1].revision === 1n,
		'multiStreamAppend again with the same ids: recognised, the same revisions', show(r));
	const c = `Test${run}-msc`;
	const e = await rejects(client.multiStreamAppend([
		{streamName: c, expectedState: NO_STREAM, events: [ev('Created', {})]},
		{streamName: b, expectedState: 0n, events: [ev('Voted', {n: 3})]},
	]));
	ok(e && e.type === 'wrong-expected-version' && e.streamName === b &&
		e.expectedState === 0n && e.actualState === 1n,
	'multiStreamAppend at a stale revision: WrongExpectedVersionError, expected 0, actual 1', e);
	const none = await rejects(collect(client.readStream(c)));
	ok(none && none.type === 'stream-not-found',
		'the refused session wrote nothing (its other stream does not exist)', none);
	const twice = await rejects(client.multiStreamAppend([
		{streamName: c, expectedState: ANY, events: [ev('Voted', {})]},
		{streamName: c, expectedState: ANY, events: [ev('Voted', {})]},
	]));
	ok(twice && twice.code === 10, 'a stream twice in one session is ABORTED', twice);
	const got = await collect(client.readStream(a));
	const meta = got.length === 1 ? got[0].event.metadata : null;
	ok(meta && meta.user === 'alice' && meta['$schema.name'] === 'Voted' &&
		meta['$schema.format'] === 'Json',
	'a v1 read: the properties as metadata, with $schema.name and $schema.format', show(meta));
}

// The official client's own discovery reads the seed's Gossip.Read, picks the
// leader it names and appends there: the stand-in's gossip is what a client expects.
async function discovery(leader, url, run) {
	const client = KurrentDBClient.connectionString(url);
	const s = `Test${run}-discovered`;
	const e = ev('Voted', {through: 'gossip'});
	let r = await rejects(client.appendToStream(s, e, {streamState: NO_STREAM}));
	ok(r === null, 'kurrentdb+discover://: the append finds the leader through gossip', r);
	const got = await collect(leader.readStream(s));
	ok(got.length === 1 && got[0].event.id === e.id, 'the event is on the leader', got.length);
	await client.dispose();
}

// A secure server (the stand-in's --tls): a wrong password and no credentials are refused as
// the client's documentation says (AccessDeniedError for both), and nothing is appended.
async function refusals(good, wrongPassword, anonymous, run) {
	const s = `Test${run}-refused`;
	for (const [url, who, says] of [[wrongPassword, 'a wrong password', 'Unauthenticated'],
		[anonymous, 'no credentials', 'Access Denied']]) {
		const client = KurrentDBClient.connectionString(url);
		let e = await rejects(client.appendToStream(s, ev('Voted', {}), {streamState: ANY}));
		ok(e instanceof kdb.AccessDeniedError && String(e.message).includes(says),
			`${who}: the append is refused, AccessDeniedError "${says}"`, e);
		e = await rejects(collect(client.readStream(s)));
		ok(e instanceof kdb.AccessDeniedError, `${who}: the read is refused, AccessDeniedError`, e);
		await client.dispose();
	}
	const e = await rejects(collect(good.readStream(s)));
	ok(e instanceof kdb.StreamNotFoundError, 'nothing was appended by the refused calls', e);
}

run(main, 'the client');
