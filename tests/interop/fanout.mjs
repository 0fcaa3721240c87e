#!/usr/bin/env node
// A fleet of GraphQL subscribers for the fan-out benchmark: N WebSocket subscriptions spread
// round-robin over one or more servers, and the time from a trigger to each one's first event.
//
// Usage:
//   node fanout.mjs --urls ws://H:P1/graphql[,ws://H:P2/graphql...] --subscribers N
//                   --query 'subscription { ... }' [--variables JSON] [--operation-name NAME]
//                   [--protocol graphql-transport-ws|graphql-ws|sse|multipart] [--token SECRET]
//                   [--timeout-ms 60000] [--batch 100] [--retries 5] [--settle-ms 500]
//
// Each subscriber is its own `ws` socket speaking the protocol as the real clients do:
//   graphql-transport-ws: connection_init -> connection_ack -> subscribe{id} -> next... / error /
//                         complete, answering `ping` with `pong`;
//   graphql-ws (legacy):  connection_init -> connection_ack -> start{id} -> data... / error /
//                         complete, ignoring `ka`.
//   sse:                  a POST with Accept: text/event-stream (GraphQL over SSE, distinct
//                         connections mode) on a connection of its own; `event: next`...
//   multipart:            a POST with Accept: multipart/mixed;subscriptionSpec="1.0" (Apollo's
//                         multipart subscriptions) on a connection of its own; payload parts...
//                         (for these two, --urls are http:// URLs and "acknowledged" is the 200)
// With --token, the connection_init payload is exactly { "Authorization": "Bearer SECRET" }
// (over HTTP, the Authorization header).
// Sockets are opened --batch at a time (at most that many handshakes in flight, which keeps
// loopback accept queues from overflowing); a subscriber whose socket fails or closes before
// connection_ack is retried up to --retries times.
//
// Protocol with the orchestrator:
//   stdout  {"type":"ready","subscribers":N}   every socket acknowledged and its subscribe sent,
//                                              then --settle-ms waited so the server has
//                                              registered them (the protocol has no
//                                              subscribe acknowledgement)
//   stdin   {"sentAt": EPOCH_MS}               written right before sending the trigger; a
//                                              float or integer of milliseconds since the Unix
//                                              epoch from the wall clock (Node: Date.now();
//                                              Rust: SystemTime::now().duration_since(UNIX_EPOCH)
//                                              .as_secs_f64() * 1000.0)
//   stdout  {"type":"result","subscribers":N,"received":K,"firstMs":..,"p50Ms":..,"p95Ms":..,
//            "lastMs":..,"p99Ms":..,"meanMs":..,"withErrors":E,"failed":F}
//           latencies (ms, 3 decimals) from sentAt to each subscriber's first event, taken on
//           the same wall clock with sub-millisecond resolution; percentiles are nearest-rank
//           over the K subscribers that got an event. `withErrors` counts first events that
//           carried GraphQL `errors`; `failed` counts subscriptions that ended (error, complete,
//           socket closed) before their first event. Latency fields are null without sentAt.
//   stdout  {"type":"error","error":{...}}     the fleet could not be set up; exit 1
// Diagnostics go to stderr.
//
// Exit codes: 0 when all N got their first event; 2 when --timeout-ms (counted from `ready`)
// expired with K < N; 1 when set-up failed (also bounded by --timeout-ms), when every
// subscription that did not get an event has failed, or when no sentAt arrived.

import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import http from 'node:http';
import WebSocket from 'ws';

const USAGE =
  'usage: node fanout.mjs --urls ws://H:P1/graphql[,ws://H:P2/graphql] --subscribers N ' +
  "--query 'subscription { ... }' [--variables JSON] [--operation-name NAME] " +
  '[--protocol graphql-transport-ws|graphql-ws|sse|multipart] [--token SECRET] [--timeout-ms 60000] ' +
  '[--batch 100] [--retries 5] [--settle-ms 500]';

function die(message) {
  process.stderr.write(`fanout.mjs: ${message}\n${USAGE}\n`);
  process.exit(1);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      urls: { type: 'string' },
      url: { type: 'string' },
      subscribers: { type: 'string' },
      query: { type: 'string' },
      variables: { type: 'string' },
      'operation-name': { type: 'string' },
      protocol: { type: 'string', default: 'graphql-transport-ws' },
      token: { type: 'string' },
      'timeout-ms': { type: 'string', default: '60000' },
      batch: { type: 'string', default: '100' },
      retries: { type: 'string', default: '5' },
      'settle-ms': { type: 'string', default: '500' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  die(e.message);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const urls = (args.urls ?? args.url ?? '').split(',').map((u) => u.trim()).filter(Boolean);
if (!urls.length) die('--urls is required');
if (!args.query) die('--query is required');
const positiveInt = (name, min = 1) => {
  const v = Number(args[name]);
  if (!(Number.isInteger(v) && v >= min)) die(`--${name} must be an integer >= ${min}`);
  return v;
};
if (args.subscribers === undefined) die('--subscribers is required');
const N = positiveInt('subscribers');
const timeoutMs = positiveInt('timeout-ms');
const batch = positiveInt('batch');
const retries = positiveInt('retries', 0);
const settleMs = positiveInt('settle-ms', 0);
const protocol = args.protocol;
if (!['graphql-transport-ws', 'graphql-ws', 'sse', 'multipart'].includes(protocol)) {
  die(`unknown --protocol ${JSON.stringify(protocol)}`);
}
const legacy = protocol === 'graphql-ws';
const overHttp = protocol === 'sse' || protocol === 'multipart';
let variables;
if (args.variables !== undefined) {
  try {
    variables = JSON.parse(args.variables);
  } catch (e) {
    die(`--variables is not JSON: ${e.message}`);
  }
}
const payload = { query: args.query };
if (variables !== undefined) payload.variables = variables;
if (args['operation-name'] !== undefined) payload.operationName = args['operation-name'];
const initMessage = JSON.stringify(
  args.token !== undefined
    ? { type: 'connection_init', payload: { Authorization: `Bearer ${args.token}` } }
    : { type: 'connection_init' },
);
// one subscription per socket, so every socket can use the same operation id
const OP_ID = '1';
const subscribeMessage = JSON.stringify({ id: OP_ID, type: legacy ? 'start' : 'subscribe', payload });
const HANDSHAKE_TIMEOUT_MS = Math.min(10000, timeoutMs);

// ---------------------------------------------------------------------------------------------
// Wall clock with sub-millisecond resolution: performance.now() anchored to Date.now() at the
// moment Date.now() ticks over, so `now()` agrees with Date.now() to well under a millisecond.

const clockOffset = (() => {
  const start = Date.now();
  let d = start;
  while (d === start) d = Date.now();
  return d - performance.now();
})();
const now = () => clockOffset + performance.now();

const log = (message) => process.stderr.write(`fanout.mjs: ${message}\n`);
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------

const subs = Array.from({ length: N }, (_, i) => ({
  index: i,
  url: urls[i % urls.length],
  ws: null,
  ready: false,
  firstAt: null, // epoch ms of the first next/data
  firstHadErrors: false,
  ended: null, // why the subscription ended before its first event
}));

let phase = 'setup'; // setup -> waiting -> done
let sentAt = null;
let readyAt = null;
let deadline = now() + timeoutMs;
let lastFailure = null;

function onSocketMessage(sub, raw) {
  const t = now(); // before parsing: parsing is client cost, not latency
  let msg;
  try {
    msg = JSON.parse(raw);
  } catch {
    sub.ended ??= { message: `unparseable message: ${String(raw).slice(0, 200)}` };
    return;
  }
  switch (msg.type) {
    case 'next':
    case 'data':
      if (sub.firstAt === null) {
        sub.firstAt = t;
        sub.firstHadErrors = Array.isArray(msg.payload?.errors) && msg.payload.errors.length > 0;
        check();
      }
      return;
    case 'ping':
      if (!legacy) sub.ws.send(JSON.stringify({ type: 'pong', ...(msg.payload ? { payload: msg.payload } : {}) }));
      return;
    case 'error':
      if (sub.firstAt === null) {
        sub.ended ??= { message: 'error', errors: msg.payload };
        check();
      }
      return;
    case 'complete':
      if (sub.firstAt === null) {
        sub.ended ??= { message: 'complete before the first event' };
        check();
      }
      return;
    default:
      // pong, ka, connection_ack after a reconnect: nothing to do
      return;
  }
}

// Opens one socket and resolves once the server acknowledged it and the subscribe was sent.
function connectOnce(sub) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const ws = new WebSocket(sub.url, protocol, { perMessageDeflate: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
    const fail = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners('message');
      ws.terminate();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error('no connection_ack in time')), HANDSHAKE_TIMEOUT_MS);
    ws.on('open', () => ws.send(initMessage));
    ws.on('error', (err) => fail(err));
    ws.on('close', (code, reason) => {
      if (!settled) fail(new Error(`socket closed before connection_ack: ${code} ${reason}`));
      else if (sub.ws === ws && sub.firstAt === null && phase !== 'done') {
        // only the attempt that was acknowledged counts; a failed attempt's close does not
        sub.ended ??= { message: `socket closed: ${code} ${reason}`, code };
        check();
      }
    });
    ws.on('message', (raw) => {
      if (settled) return onSocketMessage(sub, raw);
      let msg;
      try {
        msg = JSON.parse(raw);
      } catch {
        return fail(new Error('unparseable message before connection_ack'));
      }
      if (msg.type === 'connection_ack') {
        settled = true;
        clearTimeout(timer);
        sub.ws = ws;
        ws.send(subscribeMessage, (err) => {
          if (err) {
            sub.ended ??= { message: `subscribe not sent: ${err.message}` };
            reject(err);
          } else {
            sub.ready = true;
            resolve();
          }
        });
      } else if (msg.type === 'connection_error') {
        fail(new Error(`connection_error: ${JSON.stringify(msg.payload)}`));
      } else if (msg.type === 'ping' && !legacy) {
        ws.send(JSON.stringify({ type: 'pong' }));
      }
    });
  });
}

// Opens one HTTP stream (SSE or multipart) and resolves once the server answered 200; the first
// result in the body is the subscriber's first event. `sub.ws` gets the two methods the rest of
// the fleet calls on a socket.
function connectHttpOnce(sub) {
  return new Promise((resolve, reject) => {
    const url = new URL(sub.url);
    const body = JSON.stringify(payload);
    const headers = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      accept: protocol === 'sse' ? 'text/event-stream' : 'multipart/mixed;subscriptionSpec="1.0"',
    };
    if (args.token !== undefined) headers.authorization = `Bearer ${args.token}`;
    let settled = false;
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      agent: false,
      headers,
    });
    const timer = setTimeout(() => req.destroy(new Error('no answer in time')), HANDSHAKE_TIMEOUT_MS);
    const ended = (message) => {
      if (sub.ws?.req === req && sub.firstAt === null && phase !== 'done') {
        sub.ended ??= { message };
        check();
      }
    };
    req.on('error', (err) => {
      clearTimeout(timer);
      if (!settled) {
        settled = true;
        reject(err);
      } else ended(`stream failed: ${err.message}`);
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        res.resume();
        settled = true;
        return reject(new Error(`answered ${res.statusCode}`));
      }
      settled = true;
      sub.ws = {
        req,
        readyState: WebSocket.OPEN,
        close: () => req.destroy(),
        terminate: () => req.destroy(),
        once: (_event, done) => req.once('close', done),
      };
      sub.ready = true;
      resolve();
      // SSE: `event: next` then its `data:` line; multipart: a part whose body has `payload`
      const marker =
        protocol === 'sse' ? /event: next\ndata: (.*)\n/ : /\r\n\r\n(\{"payload".*)\r\n--graphql/;
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        const t = now(); // before parsing: parsing is client cost, not latency
        if (sub.firstAt !== null) return;
        buffer += chunk;
        const match = buffer.match(marker);
        if (match) {
          let result;
          try {
            result = JSON.parse(match[1]);
          } catch {
            result = {};
          }
          if (protocol === 'multipart') result = result.payload;
          sub.firstAt = t;
          sub.firstHadErrors = Array.isArray(result?.errors) && result.errors.length > 0;
          buffer = '';
          check();
        } else if (buffer.length > 1 << 20) {
          buffer = buffer.slice(-65536);
        }
      });
      res.on('end', () => ended('the stream ended before the first event'));
      res.on('error', (err) => ended(`stream failed: ${err.message}`));
    });
    req.end(body);
  });
}

async function connect(sub) {
  for (let attempt = 0; ; attempt++) {
    if (now() > deadline) throw new Error('set-up timed out');
    try {
      return await (overHttp ? connectHttpOnce(sub) : connectOnce(sub));
    } catch (err) {
      lastFailure = err;
      if (sub.ended || attempt >= retries) throw err;
      await sleep(50 * 2 ** attempt + Math.random() * 50);
    }
  }
}

async function setUp() {
  let next = 0;
  let failed = null;
  const worker = async () => {
    while (failed === null && next < N) {
      const sub = subs[next++];
      try {
        await connect(sub);
      } catch (err) {
        failed ??= { message: err.message, subscriber: sub.index, url: sub.url };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(batch, N) }, worker));
  return failed;
}

// ---------------------------------------------------------------------------------------------

const round = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

let timer = null;
let finishing = false;

async function finish(exitCode) {
  if (finishing) return;
  finishing = true;
  phase = 'done';
  clearTimeout(timer);
  const got = subs.filter((s) => s.firstAt !== null);
  const lat = sentAt === null ? [] : got.map((s) => s.firstAt - sentAt).sort((a, b) => a - b);
  const result = {
    type: 'result',
    subscribers: N,
    received: got.length,
    firstMs: round(percentile(lat, 0)),
    p50Ms: round(percentile(lat, 0.5)),
    p95Ms: round(percentile(lat, 0.95)),
    lastMs: round(lat.length ? lat[lat.length - 1] : null),
    p99Ms: round(percentile(lat, 0.99)),
    meanMs: round(lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : null),
    withErrors: got.filter((s) => s.firstHadErrors).length,
    failed: subs.filter((s) => s.firstAt === null && s.ended).length,
  };
  emit(result);
  if (sentAt === null) log('no {"sentAt": ...} line arrived on stdin: latencies are null');
  const firstEnded = subs.find((s) => s.firstAt === null && s.ended);
  if (firstEnded) log(`subscriber ${firstEnded.index} (${firstEnded.url}) failed: ${JSON.stringify(firstEnded.ended)}`);
  await closeAll();
  process.exit(exitCode);
}

async function closeAll() {
  const open = subs.map((s) => s.ws).filter((ws) => ws && ws.readyState === WebSocket.OPEN);
  const closed = Promise.all(open.map((ws) => new Promise((r) => ws.once('close', r))));
  for (const ws of open) ws.close(1000);
  await Promise.race([closed, sleep(2000)]);
  for (const ws of open) ws.terminate();
}

// Called whenever a subscriber's state changes once events may flow.
function check() {
  if (phase !== 'waiting') return;
  const received = subs.filter((s) => s.firstAt !== null).length;
  if (received === N) {
    if (sentAt !== null) finish(0);
    else if (stdinClosed) finish(1);
    // else: wait for the sentAt line (or the timeout)
    return;
  }
  const outstanding = subs.filter((s) => s.firstAt === null && !s.ended).length;
  if (outstanding === 0) finish(1);
}

// stdin: {"sentAt": ...} lines; the last one wins. EOF is fine.
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  line = line.trim();
  if (!line) return;
  try {
    const v = JSON.parse(line);
    if (typeof v?.sentAt === 'number' && Number.isFinite(v.sentAt)) {
      sentAt = v.sentAt;
      check();
    } else {
      log(`ignoring stdin line without a numeric sentAt: ${line.slice(0, 200)}`);
    }
  } catch {
    log(`ignoring stdin line that is not JSON: ${line.slice(0, 200)}`);
  }
});
let stdinClosed = false;
rl.on('close', () => {
  stdinClosed = true;
  check();
});

process.on('uncaughtException', (err) => {
  log(`uncaught: ${err && err.stack ? err.stack : err}`);
  if (phase === 'setup') {
    emit({ type: 'error', error: { message: String(err && err.message) } });
    process.exit(1);
  }
});

// ---------------------------------------------------------------------------------------------

const setupTimer = setTimeout(() => {
  if (phase !== 'setup') return;
  const ready = subs.filter((s) => s.ready).length;
  emit({ type: 'error', error: { message: `set-up timed out after ${timeoutMs} ms`, ready, subscribers: N } });
  process.exit(1);
}, timeoutMs + 1000);

const t0 = now();
const failure = await setUp();
clearTimeout(setupTimer);
if (failure) {
  const ready = subs.filter((s) => s.ready).length;
  emit({ type: 'error', error: { ...failure, ready, subscribers: N } });
  if (lastFailure && lastFailure.message !== failure.message) log(`last failure: ${lastFailure.message}`);
  for (const s of subs) s.ws?.terminate();
  process.exit(1);
}
log(`${N} subscribers over ${urls.length} server(s) set up in ${Math.round(now() - t0)} ms`);
if (settleMs) await sleep(settleMs);
const endedEarly = subs.find((s) => s.ended);
if (endedEarly) {
  // e.g. a validation error: every subscription is refused; say so before claiming ready
  const count = subs.filter((s) => s.ended).length;
  emit({ type: 'error', error: { ...endedEarly.ended, subscriber: endedEarly.index, url: endedEarly.url, endedSubscribers: count } });
  await closeAll();
  process.exit(1);
}
const early = subs.filter((s) => s.firstAt !== null).length;
if (early) log(`${early} subscribers had an event before ready (the first event may not be the trigger's)`);
phase = 'waiting';
readyAt = now();
deadline = readyAt + timeoutMs;
emit({ type: 'ready', subscribers: N });
timer = setTimeout(() => finish(2), timeoutMs);
check();
