// A crowd of subscriptions, then plain HTTP queries: the queries must still be answered.
// Prints one JSON line: {"acks":n,"subscriptionErrors":n,"answers":[{"ok":bool,"ms":n}],...}.
//
//   node crowd.mjs --url ws://HOST:PORT/graphql --sockets 20 --subscriptions 100 [--pause]
//
// Each socket sends connection_init, then all its `subscribe` messages at once (more than the
// server's per-socket input queue holds); with --pause the client then stops reading its
// sockets. Two seconds after the last acknowledgement it sends five HTTP queries one after
// another (10 s timeout each) and reports how each went.
import WebSocket from 'ws';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const url = arg('url');
const sockets = Number(arg('sockets', '20'));
const perSocket = Number(arg('subscriptions', '100'));
const pause = process.argv.includes('--pause');
const http = url.replace(/^ws/, 'http');
const query = 'subscription { reportChanged(countryIso3: "PER") { revision report { title sectors { sector { code name } peopleReached } partners { name } } } }';

let acks = 0;
let subscriptionErrors = 0;
const open = [];
const finish = async () => {
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const answers = [];
  for (let i = 0; i < 5; i += 1) {
    const started = Date.now();
    try {
      const response = await fetch(http, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: `{ q${i}: report(id: "1") { id title } }` }),
        signal: AbortSignal.timeout(10000),
      });
      const body = await response.json();
      answers.push({ ok: Boolean(body.data && body.data[`q${i}`]), ms: Date.now() - started, errors: body.errors });
    } catch (error) {
      answers.push({ ok: false, ms: Date.now() - started, error: String(error) });
    }
  }
  console.log(JSON.stringify({ acks, subscriptionErrors, answers }));
  for (const ws of open) ws.terminate();
  process.exit(0);
};
setTimeout(() => { console.log(JSON.stringify({ acks, subscriptionErrors, timeout: true })); process.exit(0); }, 60000);

for (let s = 0; s < sockets; s += 1) {
  const ws = new WebSocket(url, 'graphql-transport-ws');
  open.push(ws);
  ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} })));
  ws.on('message', (raw) => {
    const message = JSON.parse(raw.toString());
    if (message.type === 'connection_ack') {
      for (let i = 0; i < perSocket; i += 1) {
        ws.send(JSON.stringify({ id: String(i), type: 'subscribe', payload: { query } }));
      }
      if (pause) setTimeout(() => ws._socket.pause(), 200);
      acks += 1;
      if (acks === sockets) finish();
    } else if (message.type === 'error' || (message.type === 'next' && message.payload.errors)) {
      subscriptionErrors += 1;
    }
  });
  ws.on('error', () => { subscriptionErrors += 1; });
}
