// WebSocket attacks for bench/abuse.py, with the real `ws` client installed in tests/interop
// (`cd tests/interop && npm ci`). graphql-transport-ws only. Prints JSON lines on stdout.
//
//   node bench/abuse_ws.mjs --scenario replays --url ws://HOST:PORT/graphql --sockets 200
//        --query 'subscription { reportChanged(afterRevision: 0) { revision } }'
//        --until-revision HEAD [--timeout-ms 120000] [--local-address 127.0.0.2]
//     N sockets, one subscription each. Prints {"type":"subscribed"} once every socket is
//     acknowledged and subscribed, then, when every socket has received an event with a
//     revision >= HEAD (its replay is complete) or at the timeout, one summary line:
//     {"type":"done","sockets","acked","complete","events","errors","codes","closes",
//      "ackMs":{p50,max},"firstEventMs":{p50,max},"completeMs":{p50,max},"timeout"}.
//
//   node bench/abuse_ws.mjs --scenario flood --url ws://HOST:PORT/graphql --rate 5000
//        --seconds 10 [--query '{ __typename }'] [--local-address 127.0.0.2]
//     One socket sending `subscribe` messages (a fresh id each) at --rate a second for
//     --seconds; every answer is read; a socket the server closes is replaced by a new one (as
//     an attacker would). Summary: {"type":"done","sent","answered","next","errors","codes",
//     "closes","heldBack","latencyMs":{p50,p99,max},"unanswered"}.
//
// Everything is bounded in time; the process exits by itself.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/interop/package.json', import.meta.url));
const WebSocket = require('ws');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const url = arg('url');
const scenario = arg('scenario', 'replays');
const localAddress = arg('local-address');
const options = localAddress ? { localAddress } : {};
const print = (line) => console.log(JSON.stringify(line));

function stats(values) {
  if (values.length === 0) return { p50: null, p99: null, max: null };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] };
}

function errorCode(message) {
  const errors = message.type === 'error'
    ? (Array.isArray(message.payload) ? message.payload : [message.payload])
    : (message.payload && message.payload.errors) || [];
  const first = errors[0];
  return (first && first.extensions && first.extensions.code) || (errors.length ? 'ERROR' : null);
}

function count(map, key) {
  map[key] = (map[key] || 0) + 1;
}

function replays() {
  const sockets = Number(arg('sockets', '200'));
  const query = arg('query');
  const until = Number(arg('until-revision', '1'));
  const timeout = Number(arg('timeout-ms', '120000'));
  const start = Date.now();
  const state = [];
  const codes = {};
  const closes = {};
  let acked = 0;
  let subscribed = false;
  let complete = 0;
  let events = 0;
  let errors = 0;
  let finished = false;

  const finish = (timedOut) => {
    if (finished) return;
    finished = true;
    const ms = (key) => stats(state.filter((s) => s[key] !== undefined).map((s) => s[key] - start));
    print({
      type: 'done', sockets, acked, complete, events, errors, codes, closes,
      ackMs: ms('ack'), firstEventMs: ms('first'), completeMs: ms('complete'), timeout: timedOut,
    });
    for (const s of state) s.ws.terminate();
    setTimeout(() => process.exit(0), 100);
  };
  setTimeout(() => finish(true), timeout);

  for (let i = 0; i < sockets; i += 1) {
    const s = { ws: new WebSocket(url, 'graphql-transport-ws', options) };
    state.push(s);
    s.ws.on('open', () => s.ws.send(JSON.stringify({ type: 'connection_init', payload: {} })));
    s.ws.on('message', (raw) => {
      const message = JSON.parse(raw.toString());
      if (message.type === 'connection_ack') {
        s.ack = Date.now();
        acked += 1;
        s.ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query } }));
        if (acked === sockets && !subscribed) {
          subscribed = true;
          print({ type: 'subscribed', ms: Date.now() - start });
        }
        return;
      }
      const code = errorCode(message);
      if (code) {
        errors += 1;
        count(codes, code);
      }
      if (message.type === 'next') {
        events += 1;
        if (s.first === undefined) s.first = Date.now();
        const data = message.payload && message.payload.data;
        const change = data && Object.values(data)[0];
        if (change && change.revision >= until && s.complete === undefined) {
          s.complete = Date.now();
          complete += 1;
          if (complete === sockets) finish(false);
        }
      }
    });
    s.ws.on('close', (code) => {
      count(closes, code);
      if (s.complete === undefined && Object.values(closes).reduce((a, b) => a + b, 0) === sockets) {
        finish(false);
      }
    });
    s.ws.on('error', (e) => count(codes, `socket: ${e.code || e.message}`));
  }
}

function flood() {
  const rate = Number(arg('rate', '5000'));
  const seconds = Number(arg('seconds', '10'));
  const query = arg('query', '{ __typename }');
  const end = Date.now() + seconds * 1000;
  const codes = {};
  const closes = {};
  const latencies = [];
  let sent = 0;
  let answered = 0;
  let next = 0;
  let errors = 0;
  let heldBack = 0;
  let pending = new Map();
  let ws;
  let id = 0;
  let unanswered = 0;

  const connect = () => {
    const socket = new WebSocket(url, 'graphql-transport-ws', options);
    const mine = new Map();
    socket.ready = false;
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: {} })));
    socket.on('message', (raw) => {
      const message = JSON.parse(raw.toString());
      if (message.type === 'connection_ack') {
        socket.ready = true;
        return;
      }
      const sentAt = mine.get(message.id);
      if (sentAt !== undefined) {
        latencies.push(Date.now() - sentAt);
        mine.delete(message.id);
        answered += 1;
      }
      if (message.type === 'next') next += 1;
      const code = errorCode(message);
      if (code) {
        errors += 1;
        count(codes, code);
      }
    });
    socket.on('close', (code) => {
      count(closes, code);
      unanswered += mine.size;
      mine.clear();
      if (ws === socket && Date.now() < end) ws = connect();
    });
    socket.on('error', (e) => count(codes, `socket: ${e.code || e.message}`));
    pending = mine;
    return socket;
  };
  ws = connect();

  const tick = setInterval(() => {
    if (Date.now() >= end) {
      clearInterval(tick);
      // Give the last answers a second, then report.
      setTimeout(() => {
        unanswered += pending.size;
        print({
          type: 'done', sent, answered, next, errors, codes, closes, heldBack,
          latencyMs: stats(latencies), unanswered,
        });
        ws.terminate();
        setTimeout(() => process.exit(0), 100);
      }, 1000);
      return;
    }
    if (!ws.ready || ws.readyState !== WebSocket.OPEN) return;
    for (let i = 0; i < rate / 100; i += 1) {
      // A client that stops being read is not an unbounded buffer here either.
      if (ws.bufferedAmount > 1 << 20) {
        heldBack += 1;
        continue;
      }
      id += 1;
      pending.set(String(id), Date.now());
      ws.send(JSON.stringify({ id: String(id), type: 'subscribe', payload: { query } }));
      sent += 1;
    }
  }, 10);
}

if (scenario === 'replays') replays();
else if (scenario === 'flood') flood();
else {
  print({ type: 'done', error: `unknown scenario ${scenario}` });
  process.exit(2);
}
