// One WebSocket scenario against a GraphQL server, with the real `ws` client; prints what
// happened as one JSON line: {"opened":bool,"status":HTTP status if refused,"acked":bool,
// "code":close code,"reason":close reason}.
//
//   node wsprobe.mjs --url ws://HOST:PORT/graphql --scenario silent|bad-token|double-init|hold
//        [--protocol graphql-transport-ws|graphql-ws] [--timeout-ms 15000]
//
// silent: connect and say nothing (the server should close with 4408);
// bad-token: connection_init with a token the server does not know (4403);
// double-init: connection_init twice (4429);
// hold: connection_init, then wait until the server closes the socket (1001 at shutdown);
// huge: connection_init, then a message of --megabytes MB (default 10) in 64 KB fragments that
// never ends (the server should close with 1009 once it is over its cap).
// A refused upgrade prints its HTTP status and the body's error code ("errorCode").
// Prints {"type":"open"} when the socket is open (and acknowledged, for hold) so a caller can
// act while it is held.
import WebSocket from 'ws';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const url = arg('url');
const scenario = arg('scenario', 'hold');
const protocol = arg('protocol', 'graphql-transport-ws');
const timeout = Number(arg('timeout-ms', '15000'));
const result = { scenario, opened: false, acked: false };

const done = (extra) => {
  console.log(JSON.stringify({ ...result, ...extra }));
  process.exit(0);
};
setTimeout(() => done({ timeout: true }), timeout);

const ws = new WebSocket(url, protocol);
ws.on('unexpected-response', (_req, res) => {
  let body = '';
  res.on('data', (chunk) => { body += chunk; });
  res.on('end', () => {
    let code;
    try { code = JSON.parse(body).errors[0].extensions.code; } catch (_) {}
    done({ status: res.statusCode, errorCode: code });
  });
});
ws.on('error', (e) => done({ error: e.message }));
ws.on('open', () => {
  result.opened = true;
  if (scenario === 'silent') {
    console.log(JSON.stringify({ type: 'open' }));
    return;
  }
  const payload = scenario === 'bad-token' ? { Authorization: 'Bearer pgt_not_a_token' } : {};
  ws.send(JSON.stringify({ type: 'connection_init', payload }));
});
ws.on('message', (data) => {
  const message = JSON.parse(data.toString());
  if (message.type === 'connection_ack') {
    result.acked = true;
    if (scenario === 'double-init') {
      ws.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    } else if (scenario === 'hold') {
      console.log(JSON.stringify({ type: 'open' }));
    } else if (scenario === 'huge') {
      const chunk = Buffer.alloc(64 * 1024, 32);
      const count = Math.ceil((Number(arg('megabytes', '10')) * 1024 * 1024) / chunk.length);
      (async () => {
        for (let i = 0; i < count && ws.readyState === WebSocket.OPEN; i++) {
          await new Promise((resolve) => ws.send(chunk, { fin: false, binary: false }, resolve));
        }
      })();
    }
  }
});
ws.on('close', (code, reason) => done({ code, reason: reason.toString() }));
