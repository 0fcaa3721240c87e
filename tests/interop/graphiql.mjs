#!/usr/bin/env node
// GraphiQL (Ruru, served from the plangraph binary) in a real browser, offline: every request
// to anything but the server is blocked and recorded. It must load, complete a field name,
// show the documentation of `Report`, run a query, and receive a subscription event.
//
//   node graphiql.mjs --url http://127.0.0.1:PORT --token SECRET --screenshots DIR
//                     [--chromium /usr/bin/chromium]
//
// stdout: one JSON object per check, {"check": NAME, "ok": BOOL, ...details}, then
// {"done": true}; exit code 0 when every check passed. tests/tests/pages.rs runs it.

import { setUp, runChecks } from './browser.mjs';

const run = setUp('graphiql.mjs');
const { args, origin, report } = run;
const isMac = process.platform === 'darwin';
const modifier = isMac ? 'Meta' : 'Control';

await runChecks(run, 'graphiql', async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const blocked = [];
  const failed = [];
  const consoleErrors = [];
  // Offline: only the server answers.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin !== origin) {
      blocked.push(url);
      return route.abort();
    }
    return route.continue();
  });
  const page = await context.newPage();
  page.on('response', (response) => {
    if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
  });
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  const response = await page.goto(`${origin}/graphql`, { waitUntil: 'networkidle' });
  await page.waitForSelector('.graphiql-container', { timeout: 15000 });
  report('GraphiQL loads offline', response.status() === 200, {
    csp: response.headers()['content-security-policy'],
  });

  // The editor: replace the welcome text with a query, typed.
  const editor = page.locator('.graphiql-query-editor .monaco-editor').first();
  await editor.click();
  await page.keyboard.press(`${modifier}+A`);
  await page.keyboard.press('Delete');
  await page.keyboard.type('{ coun', { delay: 20 });
  // Completion: the suggestion list offers the root fields that start so.
  await page.keyboard.press('Control+Space');
  const suggestion = page.locator('.suggest-widget .monaco-list-row', { hasText: 'countries' });
  await suggestion.first().waitFor({ timeout: 10000 });
  const suggested = await page.locator('.suggest-widget .monaco-list-row').allInnerTexts();
  report('completes a field name', suggested.some((s) => s.includes('countries')), {
    suggested: suggested.slice(0, 5),
  });
  await page.keyboard.press('Escape');

  // Run a query.
  await page.keyboard.press(`${modifier}+A`);
  await page.keyboard.press('Delete');
  await page.keyboard.type('{ country(iso3: "PER") { name report(year: 2023) { title } } }', { delay: 5 });
  await page.keyboard.press('Escape');
  await page.locator('.graphiql-execute-button').click();
  const result = page.locator('.graphiql-response');
  await result.getByText('END-YEAR REPORT 2023').first().waitFor({ timeout: 10000 });
  report('runs a query', (await result.innerText()).includes('Peru'));
  await page.screenshot({ path: `${args.screenshots}/graphiql.png` });

  // The documentation of `Report`.
  await page.locator('[aria-label="Show Documentation Explorer"]').click();
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.getByText('All Schema Types').waitFor({ timeout: 10000 });
  await docs.getByRole('link', { name: 'Report', exact: true }).first().click();
  await docs.getByText('Every printed row of the key-figures table').waitFor({ timeout: 10000 });
  const title = await docs.locator('.graphiql-doc-explorer-title').first().innerText();
  report('shows the docs of Report', title.trim() === 'Report', { title });

  // A subscription: its event arrives when a change is written.
  const revisionAnswer = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: '{ country(iso3: "PER") { report(year: 2023) { id revision sector(code: "EDU") { printed { peopleReached } } } } }',
    }),
  }).then((r) => r.json());
  const { id, revision, sector } = revisionAnswer.data.country.report;
  // A value the row does not have yet, so the write is a change (an equal one is not).
  const reached = sector.printed.peopleReached === '40.1 K' ? '40.2 K' : '40.1 K';
  await editor.click();
  await page.keyboard.press(`${modifier}+A`);
  await page.keyboard.press('Delete');
  await page.keyboard.type(
    `subscription Live { reportChanged(reportId: "${id}", afterRevision: ${revision}) { revision summary } }`,
    { delay: 5 },
  );
  await page.keyboard.press('Escape');
  // GraphiQL parses the document a moment after the last keystroke; it sends a subscription
  // over the socket only once it knows the operation is one.
  await page.waitForTimeout(1500);
  await page.locator('.graphiql-execute-button').click();
  await page.waitForTimeout(1000);
  const written = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${args.token}` },
    body: JSON.stringify({
      query: `mutation { setSectorFigures(reportId: "${id}", expectedRevision: ${revision}, sectorCode: "EDU", figures: { peopleReached: "${reached}" }) { revision } }`,
    }),
  }).then((r) => r.json());
  const next = written.data.setSectorFigures.revision;
  await result.getByText(`${next}`).first().waitFor({ timeout: 10000 });
  report('receives a subscription event', (await result.innerText()).includes('revision'), {
    revision: next,
  });

  // A token pasted into the headers pane writes.
  await page.locator('.graphiql-execute-button').click(); // stops the subscription
  await page.getByRole('button', { name: 'Headers' }).click();
  const headers = page.locator('.graphiql-editor-tool .monaco-editor').last();
  await headers.click();
  await page.keyboard.press(`${modifier}+A`);
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${args.token}` }));
  await editor.click();
  await page.keyboard.press(`${modifier}+A`);
  await page.keyboard.press('Delete');
  const again = reached === '40.1 K' ? '40.2 K' : '40.1 K';
  await page.keyboard.insertText(
    `mutation Write { setSectorFigures(reportId: "${id}", expectedRevision: ${next}, sectorCode: "EDU", figures: { peopleReached: "${again}" }) { revision } }`,
  );
  await page.waitForTimeout(1500);
  await page.locator('.graphiql-execute-button').click();
  await result.getByText('setSectorFigures').first().waitFor({ timeout: 10000 });
  const answer = await result.innerText();
  report('a token in the headers pane writes', answer.includes(`${next + 1}`) && !answer.includes('UNAUTHENTICATED'), {
    answer: answer.replace(/\s+/g, ' ').slice(0, 200),
  });

  report('nothing was asked of anything but the server', blocked.length === 0, { blocked });
  report('every request to the server was answered', failed.length === 0, { failed });
  report('no console error', consoleErrors.length === 0, { consoleErrors });
  await context.close();
});
