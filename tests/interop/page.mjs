#!/usr/bin/env node
// The report page in a real browser (Debian's Chromium, headless, driven by playwright-core):
// what it shows against what the API answers, with JavaScript on and off; a change made
// through the API appearing without a reload; a dropped socket catching up; nothing loaded
// from outside the origin; no console error and no CSP violation; axe-core's accessibility
// rules; screenshots at desktop and phone widths (of the report as published: taken before the
// test writes anything).
//
//   node page.mjs --url http://127.0.0.1:PORT --token SECRET --screenshots DIR
//                 [--chromium /usr/bin/chromium]
//
// stdout: one JSON object per check, {"check": NAME, "ok": BOOL, ...details}, then
// {"done": true}. Exit code 0 when every check passed, 1 otherwise. The test that runs this
// (tests/tests/pages.rs) owns the server and the store.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setUp, runChecks } from './browser.mjs';

const run = setUp('page.mjs');
const { args, origin, report } = run;
const pageUrl = `${origin}/reports/PER/2023`;

async function graphql(query, token) {
  const response = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const FIGURES = `{ country(iso3: "PER") { report(year: 2023) { id revision
  totals { printed { peopleInNeed peopleTargeted peopleReached requirementsUsd fundingUsd fundedPercent } }
  sectors { sector { code } printed { peopleTargeted peopleReached reachedPercent requirementsUsd fundingUsd fundedPercent } } } } }`;

// What the page shows: every data-field's text, by key.
async function shown(page) {
  return page.evaluate(() => {
    const out = {};
    for (const element of document.querySelectorAll('[data-field]')) {
      out[element.dataset.field] = element.textContent;
    }
    return out;
  });
}

// What the page should show, from the API.
function expected(report) {
  const out = {};
  for (const [key, value] of Object.entries(report.totals.printed)) out[`totals.${key}`] = value;
  for (const row of report.sectors) {
    for (const [key, value] of Object.entries(row.printed)) {
      out[`sector.${row.sector.code}.${key}`] = value;
    }
  }
  return out;
}

function compare(check, page, api) {
  const missing = Object.keys(api).filter((key) => !(key in page));
  const different = Object.keys(api).filter((key) => key in page && page[key] !== api[key]);
  report(check, missing.length === 0 && different.length === 0, {
    compared: Object.keys(api).length,
    missing,
    different: different.map((key) => ({ key, page: page[key], api: api[key] })),
  });
}

await runChecks(run, 'page', async (browser) => {
  const api = (await graphql(FIGURES)).country.report;

  // JavaScript off: the server-rendered page alone.
  {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const response = await page.goto(pageUrl);
    report('loads without JavaScript', response.status() === 200, { status: response.status() });
    compare('figures without JavaScript equal the API', await shown(page), expected(api));
    await context.close();
  }

  // JavaScript on: the live page.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const outside = [];
  const consoleErrors = [];
  context.on('request', (request) => {
    if (new URL(request.url()).origin !== origin) outside.push(request.url());
  });
  const page = await context.newPage();
  page.on('websocket', (ws) => {
    const url = new URL(ws.url());
    if (`http://${url.host}` !== origin) outside.push(ws.url());
  });
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  // The page's socket goes through this route, so the test can drop it.
  let socketRoute = null;
  await page.routeWebSocket(`${origin.replace('http', 'ws')}/graphql`, (ws) => {
    socketRoute = ws;
    ws.connectToServer();
  });
  await page.goto(pageUrl);
  compare('figures with JavaScript equal the API', await shown(page), expected(api));
  // Screenshots of the report as published, before the test changes anything.
  await page.screenshot({ path: `${args.screenshots}/report-desktop.png` });
  await page.screenshot({ path: `${args.screenshots}/report-desktop-full.png`, fullPage: true });
  {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const small = await phone.newPage();
    await small.goto(pageUrl);
    await small.screenshot({ path: `${args.screenshots}/report-phone.png` });
    await small.screenshot({ path: `${args.screenshots}/report-phone-full.png`, fullPage: true });
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    report('the page fits a phone width (only the sector table scrolls)', overflow <= 0, { overflow });
    await phone.close();
  }
  // Printed on A4 (the print stylesheet: no site header, no live status).
  {
    await page.emulateMedia({ media: 'print' });
    const pdf = (await page.pdf({ format: 'A4', preferCSSPageSize: true })).toString('latin1');
    await page.emulateMedia({ media: 'screen' });
    const pages = (pdf.match(/\/Type\s*\/Page[^s]/g) ?? []).length;
    const a4 = /\/MediaBox\s*\[\s*0 0 59[45](\.\d+)? 841(\.\d+)?\s*\]/.test(pdf);
    report('prints on A4', pages >= 1 && a4, { pages });
  }
  await page.waitForFunction(() => window.plangraphLive && window.plangraphLive.subscribed, null, {
    timeout: 10000,
  });

  // A change through the API appears in place, without a reload, within a second.
  const write = (revision, reached) =>
    graphql(
      `mutation { setSectorFigures(reportId: "${api.id}", expectedRevision: ${revision}, sectorCode: "EDU", figures: { peopleReached: "${reached}" }) { revision } }`,
      args.token,
    );
  const started = Date.now();
  const first = await write(api.revision, '40.1 K');
  await page.waitForFunction(
    () => document.querySelector('[data-field="sector.EDU.peopleReached"]').textContent === '40.1 K',
    null,
    { timeout: 5000 },
  );
  const tookMs = Date.now() - started;
  report('a change appears within 1 s', tookMs < 1000, { tookMs });
  const marked = await page.evaluate(() =>
    document.querySelector('[data-field="sector.EDU.peopleReached"]').classList.contains('changed'),
  );
  report('the changed figure is marked', marked);

  // The socket drops; a change made meanwhile arrives once the page has reconnected.
  await socketRoute.close({ code: 1006 });
  const second = await write(first.setSectorFigures.revision, '40.2 K');
  const dropped = Date.now();
  await page.waitForFunction(
    () => document.querySelector('[data-field="sector.EDU.peopleReached"]').textContent === '40.2 K',
    null,
    { timeout: 20000 },
  );
  const revisionShown = await page.evaluate(() => window.plangraphLive.revision);
  report('a dropped page catches up after reconnecting', revisionShown === second.setSectorFigures.revision, {
    tookMs: Date.now() - dropped,
    revision: revisionShown,
  });
  compare(
    'after the changes, figures equal the API',
    await shown(page),
    expected((await graphql(FIGURES)).country.report),
  );

  // Accessibility: axe-core (evaluated through the DevTools protocol, which the page's CSP
  // does not govern), on the report and on the index.
  const require = createRequire(import.meta.url);
  const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  for (const [name, url] of [
    ['report', pageUrl],
    ['index', `${origin}/reports`],
  ]) {
    if (page.url() !== url) await page.goto(url);
    await page.evaluate(axeSource);
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ['violations'] });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
    });
    const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    report(`axe: no serious or critical violation on the ${name}`, serious.length === 0, { violations });
  }

  await page.goto(pageUrl);
  await page.waitForTimeout(300);
  const csp = await page.evaluate(() => window.cspViolations);
  report('no request leaves the origin', outside.length === 0, { outside });
  report('no console error', consoleErrors.length === 0, { consoleErrors });
  report('no CSP violation', csp.length === 0, { csp });
  await context.close();
});
