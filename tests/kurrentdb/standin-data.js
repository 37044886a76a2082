#!/usr/bin/env node
// The KurrentDB stand-in's --data FILE, seen by the official Node client
// (@kurrent/kurrentdb-client): what was appended, soft-deleted and
// tombstoned survives a kill -9 and a restart with the same revisions, ids and
// $all positions (a reader's checkpoint from before the restart still reads
// on from where it was); a torn last line, a commit never answered, is
// dropped; idempotent retries and appends go on; without --data a restart
// forgets.  Runs its own stand-ins (argv[2]: a folder for the data file).
// Prints TAP.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const {spawn} = require('child_process');
const here = __dirname;
const kdb = require(require.resolve('@kurrent/kurrentdb-client', {paths: [here, process.cwd()]}));
const {KurrentDBClient, jsonEvent, NO_STREAM, ANY, FORWARDS, START} = kdb;

const {ok, run, rejects, collect, show} = require('./tap.js');

// A stand-in of our own: {proc, client}; started on a free port, or on PORT
// (a restart keeps its address, as a server does).
async function start(args, port) {
	const proc = spawn(process.execPath, [path.join(here, 'kurrentdb-standin.js'), ...args,
		String(port || 0)], {stdio: ['ignore', 'pipe', 'inherit']});
	const bound = await new Promise((resolve, reject) => {
		let out = '';
		const timer = setTimeout(() => reject(new Error('the stand-in did not start in 60 s')),
			60000);
		proc.stdout.on('data', (b) => {
			out += b;
			const m = /listening on 127\.0\.0\.1:([0-9]+)\n/.exec(out);
			if (m) {
				clearTimeout(timer);
				resolve(Number(m[1]));
			}
		});
		proc.on('exit', (code) => reject(new Error(`the stand-in exited with ${code}`)));
	});
	return {proc, port: bound,
		client: KurrentDBClient.connectionString(`kurrentdb://127.0.0.1:${bound}?tls=false`)};
}
async function stop(s, signal) {
	await s.client.dispose();
	const gone = new Promise((resolve) => s.proc.on('exit', resolve));
	s.proc.kill(signal);
	await gone;
}

const ev = (type, data, id) => jsonEvent({type, data, id: id || crypto.randomUUID()});
// The whole log as a client sees it: every record of $all with its position.
const all = async (client) => (await collect(client.readAll({direction: FORWARDS,
	fromPosition: START}))).map((r) => show([r.event.streamId, r.event.revision, r.event.id,
	r.event.type, r.event.position]));

async function main() {
	const data = path.join(process.argv[2], 'standin.data');
	let s = await start(['--data', data]);
	const port = s.port;
	const a = [ev('Created', {n: 0}), ev('Voted', {n: 1})];
	await s.client.appendToStream('Persist-a', a, {streamState: NO_STREAM});
	await s.client.appendToStream('Persist-b', ev('Created', {n: 2}), {streamState: NO_STREAM});
	await s.client.appendToStream('Gone-x', ev('Created', {}), {streamState: NO_STREAM});
	await s.client.deleteStream('Gone-x');
	await s.client.appendToStream('Tomb-x', ev('Created', {}), {streamState: NO_STREAM});
	await s.client.tombstoneStream('Tomb-x');
	const before = await all(s.client);
	const b = await collect(s.client.readStream('Persist-b'));
	const checkpoint = b[0].event.position;
	await stop(s, 'SIGKILL');
	// A kill in the middle of a commit: a line with no end, never answered.
	fs.appendFileSync(data, '{"op":"append","stream":"Persist-a","events":[{"id":"');

	s = await start(['--data', data], port);
	const after = await all(s.client);
	ok(before.length === 7 && show(after) === show(before),
		'--data: after a kill -9, $all holds the same records with the same revisions, ids and ' +
		'positions (soft-delete and tombstone records included)', `${show(before)}\n${show(after)}`);
	const got = await collect(s.client.readStream('Persist-a'));
	ok(show(got.map((r) => [r.event.revision, r.event.id, r.event.type, r.event.data])) ===
		show([[0n, a[0].id, 'Created', {n: 0}], [1n, a[1].id, 'Voted', {n: 1}]]),
	'--data: a stream\'s events, ids, revisions and data survive', show(got));
	let e = await rejects(collect(s.client.readStream('Gone-x')));
	ok(e && e.type === 'stream-not-found', '--data: a soft-deleted stream stays deleted', e);
	e = await rejects(s.client.appendToStream('Tomb-x', ev('Voted', {}), {streamState: ANY}));
	ok(e && e.type === 'stream-deleted', '--data: a tombstoned stream stays tombstoned', e);
	let r = await s.client.appendToStream('Persist-a', a, {streamState: NO_STREAM});
	ok(r.success && r.nextExpectedRevision === 1n,
		'--data: an idempotent retry of the first append (same ids, no_stream) finds it', show(r));
	// The projector reads $all from its checkpoint, a position taken before the
	// restart; the server refuses one where no record starts.
	const from = await collect(s.client.readAll({direction: FORWARDS, fromPosition: checkpoint}));
	const want = before.slice(before.findIndex((x) => JSON.parse(x)[0] === 'Persist-b'));
	ok(show(from.map((x) => show([x.event.streamId, x.event.revision, x.event.id, x.event.type,
		x.event.position]))) === show(want),
	'--data: $all read from a position taken before the restart gives the same records',
	`${show(want)}\n${show(from)}`);
	const live = ev('Voted', {n: 3});
	r = await s.client.appendToStream('Persist-a', live, {streamState: 1n});
	const end = BigInt(JSON.parse(before[before.length - 1])[4].commit);
	ok(r.nextExpectedRevision === 2n && r.position.commit > end,
		'--data: appends go on after the torn line (revision 2, a position after the old log)',
		show(r));
	await stop(s, 'SIGTERM');

	s = await start(['--data', data], port);
	const last = await collect(s.client.readStream('Persist-a'));
	ok(last.length === 3 && last[2].event.id === live.id,
		'--data: the append made after the torn line is kept too', last.length);
	await stop(s, 'SIGTERM');

	s = await start([]);
	e = await rejects(collect(s.client.readStream('Persist-a')));
	ok(e && e.type === 'stream-not-found', 'without --data a fresh stand-in is empty', e);
	await stop(s, 'SIGTERM');
}

run(main, 'the test');
