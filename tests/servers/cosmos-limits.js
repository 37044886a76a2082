'use strict';
// Cosmos DB's size limits in front of the stand-in, which enforces none of them:
//
//   require('./cosmos-limits').enforce(server)   // server: the stand-in's http(s).Server
//
// The service refuses, with 413 RequestEntityTooLarge:
//   - an item whose stored JSON is over 2 MB (2,097,152 bytes, UTF-8), counted with the system
//     properties it adds (_rid, _self, _etag, _attachments, _ts), on create, upsert and replace;
//   - any request body over 2 MB (its "maximum request size" of one operation).
// The answer is shaped as the service's: {"code": "RequestEntityTooLarge", "message":
// "Message: {\"Errors\":[\"Request size is too large\"]}\r\nActivityId: ..."}.  Everything
// the gate lets through reaches the stand-in unchanged (the body is handed on as it came).
// PV_TEST_COSMOS_ITEM_MAX overrides the item limit (bytes), for a test of the gate itself.
//
// Throttling on demand (the service answers 429 when a request would pass the provisioned
// request units; the stand-in never does): `POST /_pv_test/throttle?db=NAME&count=N&retry_after_ms=MS`
// makes the next N requests for database NAME (paths under /dbs/NAME/) answer 429 with the
// service's body, `x-ms-retry-after-ms: MS` and `x-ms-substatus: 3200`; it answers 204.  Per
// database, so that tests sharing the server do not throttle each other.  Test equipment only.
// Not checked: patch and transactional batch, which PhotoVote does not send.
const { Readable } = require('stream');
const { randomUUID } = require('crypto');

const MB2 = 2 * 1024 * 1024;
const ITEM_MAX = Number(process.env.PV_TEST_COSMOS_ITEM_MAX) || MB2;
const REQUEST_MAX = MB2;
// The system properties the service stores with every item, at their real lengths.
const SYSTEM = {
	_rid: 'AAAAAAAAAAABAAAAAAAAAA==',
	_self: 'dbs/AAAAAA==/colls/AAAAAAAAAAA=/docs/AAAAAAAAAAABAAAAAAAAAA==/',
	_etag: '"00000000-0000-0000-0000-000000000000"',
	_attachments: 'attachments/',
	_ts: 1700000000,
};
const DOCS = /^\/dbs\/[^/]+\/colls\/[^/]+\/docs\/?$/;
const DOC = /^\/dbs\/[^/]+\/colls\/[^/]+\/docs\/[^/]+\/?$/;

function isQuery(req) {
	const h = req.headers['x-ms-documentdb-isquery'];
	return (h && h.toLowerCase() === 'true') ||
		(req.headers['content-type'] || '').startsWith('application/query+json');
}

// The item a request stores, or null (not a write of an item).
function storedItem(req, body) {
	const path = req.url.split('?')[0];
	const write = (req.method === 'POST' && DOCS.test(path) && !isQuery(req)) ||
		(req.method === 'PUT' && DOC.test(path));
	if (!write)
		return null;
	try {
		const doc = JSON.parse(body.toString('utf8'));
		return doc && typeof doc === 'object' && !Array.isArray(doc) ? doc : null;
	} catch (e) {
		return null; // the stand-in answers bad JSON itself
	}
}

function tooLarge(req, res, why) {
	const activity = randomUUID();
	console.log(`cosmos-limits: 413 ${req.method} ${req.url}: ${why}`);
	res.statusCode = 413;
	res.setHeader('content-type', 'application/json');
	res.setHeader('x-ms-activity-id', activity);
	res.setHeader('x-ms-request-charge', '0');
	res.end(JSON.stringify({
		code: 'RequestEntityTooLarge',
		message: 'Message: {"Errors":["Request size is too large"]}\r\nActivityId: ' +
			`${activity}, Request URI: ${req.url}, RequestStats: , ` +
			'SDK: Microsoft.Azure.Documents.Common/2.14.0',
	}));
}

// A request object for the stand-in that reads `body` as the original would have.
function replay(req, body) {
	const r = Readable.from(body.length ? [body] : []);
	for (const k of ['headers', 'rawHeaders', 'url', 'method', 'httpVersion', 'socket',
		'connection', 'trailers'])
		r[k] = req[k];
	return r;
}

const THROTTLE = /^\/_pv_test\/throttle\/?$/;
const throttles = new Map(); // database -> { count, retryAfterMs }

// A throttle order: answers it and returns true.
function throttleOrder(req, res) {
	const url = new URL(req.url, 'http://gate');
	if (req.method !== 'POST' || !THROTTLE.test(url.pathname))
		return false;
	const db = url.searchParams.get('db');
	const count = Number(url.searchParams.get('count'));
	const retryAfterMs = Number(url.searchParams.get('retry_after_ms') || '0');
	if (!db || !Number.isInteger(count) || count < 0 || !Number.isInteger(retryAfterMs) ||
		retryAfterMs < 0) {
		res.statusCode = 400;
		res.end('usage: POST /_pv_test/throttle?db=NAME&count=N&retry_after_ms=MS\n');
		return true;
	}
	throttles.set(db, { count, retryAfterMs });
	console.log(`cosmos-limits: the next ${count} requests for database ${db} answer 429`);
	res.statusCode = 204;
	res.end();
	return true;
}

// Answers 429 and returns true when the request's database is being throttled.
function throttled(req, res) {
	const m = /^\/dbs\/([^/?]+)/.exec(req.url);
	const t = m && throttles.get(decodeURIComponent(m[1]));
	if (!t || t.count <= 0)
		return false;
	t.count--;
	const activity = randomUUID();
	console.log(`cosmos-limits: 429 ${req.method} ${req.url} (${t.count} more)`);
	res.statusCode = 429;
	res.setHeader('content-type', 'application/json');
	res.setHeader('x-ms-activity-id', activity);
	res.setHeader('x-ms-retry-after-ms', String(t.retryAfterMs));
	res.setHeader('x-ms-substatus', '3200');
	res.setHeader('x-ms-request-charge', '0');
	res.end(JSON.stringify({
		code: '429',
		message: 'Message: {"Errors":["Request rate is large. More Request Units may be ' +
			'needed, so no changes were made. Please retry this request later. Learn more: ' +
			'http://aka.ms/cosmosdb-error-429"]}\r\nActivityId: ' + `${activity}, Request URI: ` +
			`${req.url}, RequestStats: , SDK: Microsoft.Azure.Documents.Common/2.14.0`,
	}));
	return true;
}

function enforce(server) {
	const handlers = server.listeners('request');
	server.removeAllListeners('request');
	const pass = (req, res) => handlers.forEach((h) => h.call(server, req, res));
	server.on('request', (req, res) => {
		if (throttleOrder(req, res))
			return;
		if (req.method !== 'POST' && req.method !== 'PUT') {
			if (!throttled(req, res))
				pass(req, res);
			return;
		}
		const chunks = [];
		let size = 0;
		req.on('data', (c) => {
			size += c.length;
			if (size <= REQUEST_MAX + 1)
				chunks.push(c); // past the limit only counted, never held
		});
		req.on('error', () => res.destroy());
		req.on('end', () => {
			if (size > REQUEST_MAX) {
				tooLarge(req, res, `request body of ${size} bytes`);
				return;
			}
			if (throttled(req, res))
				return;
			const body = Buffer.concat(chunks);
			const item = storedItem(req, body);
			if (item) {
				const stored = Buffer.byteLength(JSON.stringify({ ...item, ...SYSTEM }));
				if (stored > ITEM_MAX) {
					tooLarge(req, res, `item of ${stored} bytes stored`);
					return;
				}
			}
			pass(replay(req, body), res);
		});
	});
	return server;
}

module.exports = { enforce, ITEM_MAX, REQUEST_MAX };
