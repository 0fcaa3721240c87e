// What the browser scripts (page.mjs, graphiql.mjs) share: their arguments, Debian's Chromium
// launched the way this machine needs (no background networking: the closed network refuses it),
// and the report, one JSON line per check, then {"done": true} and the exit code.

import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

/// Reads `--url --token --screenshots [--chromium]`; `script` names the caller in the usage line.
export function setUp(script) {
  const { values: args } = parseArgs({
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      screenshots: { type: 'string' },
      chromium: { type: 'string', default: process.env.CHROMIUM ?? '/usr/bin/chromium' },
    },
  });
  if (!args.url || !args.token || !args.screenshots) {
    process.stderr.write(`usage: node ${script} --url http://HOST:PORT --token SECRET --screenshots DIR\n`);
    process.exit(1);
  }
  mkdirSync(args.screenshots, { recursive: true });
  let failures = 0;
  const report = (check, ok, details = {}) => {
    if (!ok) failures += 1;
    process.stdout.write(`${JSON.stringify({ check, ok, ...details })}\n`);
  };
  return { args, origin: new URL(args.url).origin, report, failed: () => failures > 0 };
}

/// Runs `checks(browser)` in a headless Chromium: an exception is a failed check (with a
/// screenshot of every open page as `${name}-failure.png`), then the browser closes and the
/// process exits 0 only when every check passed.
export async function runChecks({ args, report, failed }, name, checks) {
  const browser = await chromium.launch({
    executablePath: args.chromium,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    await checks(browser);
  } catch (error) {
    report('the run', false, { error: String(error && error.stack ? error.stack : error) });
    for (const context of browser.contexts()) {
      for (const open of context.pages()) {
        await open.screenshot({ path: `${args.screenshots}/${name}-failure.png` }).catch(() => {});
      }
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify({ done: true })}\n`);
  process.exit(failed() ? 1 : 0);
}
