// Greedy and slow WebSocket clients, with the real `ws` client, for the server's socket
// discipline tests (tests/tests/websocket_discipline.rs).
//
//   node discipline.mjs --url ws://HOST:PORT/graphql --scenario flood|stall|mute
//        [--protocol graphql-transport-ws|graphql-ws] [--operations N] [--token SECRET]
//        [--query QUERY] [--timeout-ms 15000] [--wide N] [--wide-init]
//
// flood: connection_init (with `{"Authorization":"Bearer SECRET"}` when --token is given), then
//   N operations (`subscribe`, or `start` in graphql-ws) of --query (default `{ __typename }`)
//   sent at once; every answer is read. Prints one JSON line when the server closes the socket
//   (or at the timeout): {"acked":bool,"answers":{ID:{"type":first answer type,"code":error
//   code}},"code":close code,"reason":close reason}.
// stall: connection_init, then N operations of --query sent at once, then the socket is no
//   longer read (paused); prints {"type":"stalled"} and holds the connection open, never
//   reading, until it is killed.
// --wide N: every operation carries a variable the query never uses holding N empty objects
//   (with --wide-init, connection_init's payload carries them instead).
// mute: connection_init, then nothing: the client reads but answers no ping (no automatic
//   pong); prints the result line when the server closes the socket.
import WebSocket from 'ws';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const url = arg('url');
const scenario = arg('scenario', 'flood');
const protocol = arg('protocol', 'graphql-transport-ws');
const operations = Number(arg('operations', '20'));
const token = arg('token');
const query = arg('query', '{ __typename }');
const timeout = Number(arg('timeout-ms', '15000'));
const legacy = protocol === 'graphql-ws';
const wide = Number(arg('wide', '0'));
const wideInit = process.argv.includes('--wide-init');
const padding = wide ? { unused: Array.from({ length: wide }, () => ({})) } : undefined;

const result = { scenario, acked: false, answers: {} };
const done = (extra) => {
  console.log(JSON.stringify({ ...result, ...extra }));
  process.exit(0);
};
if (scenario !== 'stall') setTimeout(() => done({ timeout: true }), timeout);

const ws = new WebSocket(url, protocol, { autoPong: scenario !== 'mute' });
ws.on('ping', () => { result.pings = (result.pings || 0) + 1; });
ws.on('unexpected-response', (_req, res) => done({ status: res.statusCode }));
ws.on('error', (e) => done({ error: e.message }));
ws.on('open', () => {
  const payload = token ? { Authorization: `Bearer ${token}` } : {};
  if (wideInit) payload.padding = padding;
  ws.send(JSON.stringify({ type: 'connection_init', payload }));
});
ws.on('message', (data) => {
  const message = JSON.parse(data.toString());
  if (message.type === 'connection_ack') {
    result.acked = true;
    if (scenario === 'mute') return;
    for (let i = 0; i < operations; i += 1) {
      ws.send(JSON.stringify({
        id: String(i),
        type: legacy ? 'start' : 'subscribe',
        payload: wideInit ? { query } : { query, variables: padding },
      }));
    }
    if (scenario === 'stall') {
      ws._socket.pause();
      console.log(JSON.stringify({ type: 'stalled' }));
      // Hold the connection, never reading, until killed.
      setInterval(() => {}, 1000);
    }
    return;
  }
  if (message.id !== undefined && result.answers[message.id] === undefined) {
    let code;
    if (message.type === 'error') {
      const errors = Array.isArray(message.payload) ? message.payload : [message.payload];
      code = errors[0] && errors[0].extensions && errors[0].extensions.code;
    }
    result.answers[message.id] = { type: message.type, code };
  }
});
ws.on('close', (code, reason) => done({ code, reason: reason.toString() }));
