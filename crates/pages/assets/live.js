// Keeps a report page live: subscribes to the report's changes over graphql-transport-ws
// (the page's own origin, /graphql) from the revision the page was rendered at, and writes
// each new figure into the element that shows it, marking it for a moment. After a drop it
// reconnects with the last revision it applied, so the server replays what it missed.
//
// The page says what to run in <script type="application/json" id="plangraph-live">:
// {"reportId", "revision", "query"}. Elements carry data-field="KEY" (their text) or
// data-meter="KEY" (a <meter>'s value); keys are "totals.NAME", "sector.CODE.NAME" and
// "revision".

const config = JSON.parse(document.getElementById('plangraph-live').textContent);
const status = document.getElementById('live-status');
let revision = config.revision;
let retries = 0;
let socket = null;

// Read by the browser tests: what the page has applied, and whether it is subscribed.
window.plangraphLive = {
  get revision() {
    return revision;
  },
  get subscribed() {
    return socket !== null && socket.subscribed === true;
  },
};

function connect() {
  const url = new URL('/graphql', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(url, 'graphql-transport-ws');
  socket = ws;
  ws.subscribed = false;
  ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'connection_init' })));
  ws.addEventListener('message', (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (message.type) {
      case 'connection_ack':
        ws.send(
          JSON.stringify({
            id: 'report',
            type: 'subscribe',
            payload: {
              query: config.query,
              variables: { reportId: config.reportId, afterRevision: revision },
            },
          }),
        );
        ws.subscribed = true;
        say('live');
        // The pause before a reconnection starts over once the socket has stayed up a while
        // (a server that accepts and then refuses at once keeps the pauses growing).
        setTimeout(() => {
          if (socket === ws) retries = 0;
        }, 5000);
        break;
      case 'next': {
        const change = message.payload && message.payload.data && message.payload.data.reportChanged;
        if (change && change.revision > revision) {
          if (change.report) apply(change.report);
          revision = change.revision;
          set('revision', String(revision));
        }
        break;
      }
      case 'ping':
        ws.send(JSON.stringify({ type: 'pong' }));
        break;
      case 'error':
      case 'complete':
        ws.close();
        break;
      default:
        break;
    }
  });
  ws.addEventListener('close', () => {
    if (socket !== ws) return;
    socket = null;
    say('reconnecting');
    const delay = Math.min(15000, 250 * 2 ** retries) + Math.random() * 250;
    retries += 1;
    setTimeout(connect, delay);
  });
}

function say(state) {
  if (!status) return;
  status.dataset.state = state;
}

// Writes `report`'s figures (the LIVE query's Figures fragment) into the page.
function apply(report) {
  const printed = report.totals.printed;
  for (const key of Object.keys(printed)) set(`totals.${key}`, printed[key]);
  for (const row of report.sectors) {
    const code = row.sector.code;
    for (const key of Object.keys(row.printed)) {
      if (key !== 'heading') set(`sector.${code}.${key}`, row.printed[key]);
    }
    meter(`sector.${code}.reachedPercent`, row.reachedPercent);
    meter(`sector.${code}.fundedPercent`, row.fundedPercent);
  }
}

function elements(attribute, key) {
  return document.querySelectorAll(`[${attribute}="${CSS.escape(key)}"]`);
}

function set(key, value) {
  const text = value === null || value === undefined ? '—' : String(value);
  for (const element of elements('data-field', key)) {
    if (element.textContent !== text) {
      element.textContent = text;
      mark(element);
    }
  }
}

function meter(key, percent) {
  if (typeof percent !== 'number') return;
  const value = Math.min(100, Math.max(0, percent));
  for (const element of elements('data-meter', key)) {
    if (Number(element.value) !== value) element.value = value;
  }
}

function mark(element) {
  element.classList.remove('changed');
  // Restart the mark when a figure changes twice in a row.
  void element.offsetWidth;
  element.classList.add('changed');
  setTimeout(() => element.classList.remove('changed'), 2000);
}

connect();
