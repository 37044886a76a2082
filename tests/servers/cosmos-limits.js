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

function enforce(server) {
	const handlers = server.listeners('request');
	server.removeAllListeners('request');
	const pass = (req, res) => handlers.forEach((h) => h.call(server, req, res));
	server.on('request', (req, res) => {
		if (req.method !== 'POST' && req.method !== 'PUT') {
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
