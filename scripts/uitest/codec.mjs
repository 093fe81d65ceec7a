// codec.mjs checks, in headless Chromium, that the Temporal web UI shows a workflow's payloads
// decoded through usersync's codec server (starter codec-server) and only once this browser
// is signed in to it. The UI is pointed at the codec server by the dev server's
// --ui-codec-endpoint; the codec server wants its token, which the UI cannot send as a header,
// so the ops person signs in on the codec server's /login page (a session cookie) and turns on
// "Include cross-origin credentials" in the UI's Codec Server settings.
//
//   UITEST_CODEC_TOKEN=<token> node scripts/uitest/codec.mjs <ui-url> <codec-url> <workflow-id> <run-id> <text>
//
// <text> is a value of the workflow's input (the actor) that only decoding reveals. It prints
// "before sign-in: <text> not shown" and "after sign-in: <text> shown", a screenshot per step.
// Environment: CHROMIUM_PATH, UITEST_ARTIFACTS as for retry.mjs; UITEST_CODEC_TOKEN (not an
// argument: arguments are visible to every local user).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [uiURL, codecURL, workflowID, runID, text] = process.argv.slice(2);
const token = process.env.UITEST_CODEC_TOKEN;
if (!uiURL || !codecURL || !workflowID || !runID || !text || !token) {
  console.error('usage: UITEST_CODEC_TOKEN=<token> node codec.mjs <ui-url> <codec-url> <workflow-id> <run-id> <text>');
  process.exit(2);
}
const artifacts = process.env.UITEST_ARTIFACTS || mkdtempSync(join(tmpdir(), 'usersync-uitest-'));
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
page.setDefaultTimeout(45_000); // a loaded CI machine renders the UI slowly
let step = 0;
const started = Date.now();
const shot = async (name) => {
  const path = join(artifacts, `codec-${String(++step).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`${((Date.now() - started) / 1000).toFixed(1)}s screenshot: ${path}`);
};
// Every decode request the UI sends and what the codec server answered.
const decodes = [];
page.on('response', (r) => {
  if (r.url().startsWith(codecURL) && r.request().method() === 'POST') decodes.push(r.status());
});

// The workflow's page, its input shown (decoded or not) once the UI has asked the codec server.
const openWorkflow = async () => {
  const asked = decodes.length;
  await page.goto(`${uiURL}/namespaces/default/workflows/${encodeURIComponent(workflowID)}/${runID}/history`,
    { waitUntil: 'domcontentloaded' });
  await page.getByRole('heading', { level: 1, name: workflowID }).waitFor();
  for (let deadline = Date.now() + 45_000; decodes.length === asked; await page.waitForTimeout(200)) {
    if (Date.now() > deadline) throw new Error('the UI sent no decode request to the codec server');
  }
  await page.getByRole('heading', { name: 'Input', exact: true }).filter({ visible: true }).waitFor();
  await page.waitForTimeout(1000); // the payloads render after the answers
};

try {
  // Pointed at the codec server, not signed in: the codec server refuses, the UI shows ciphertext.
  await openWorkflow();
  if (!decodes.every((s) => s === 401)) throw new Error(`codec server answered ${decodes} before sign-in, want 401`);
  if ((await page.getByText(text).count()) > 0) throw new Error(`"${text}" shown before sign-in`);
  await shot('before-sign-in');
  console.log(`before sign-in: ${text} not shown (codec server answered ${[...new Set(decodes)]})`);

  // The codec server's sign-in page.
  await page.goto(`${codecURL}/login`, { waitUntil: 'domcontentloaded' });
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in').waitFor();
  await shot('codec-signed-in');

  // The UI's Codec Server settings: send this browser's credentials (cookies) to it.
  await page.goto(`${uiURL}/namespaces/default/workflows`, { waitUntil: 'domcontentloaded' });
  // The dev server's --ui-codec-endpoint sets the endpoint only (a self-hosted UI also has
  // TEMPORAL_CODEC_INCLUDE_CREDENTIALS): this browser's setting, with credentials, overrides it.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: /^Codec Server/ }).click();
  await page.getByRole('textbox', { name: 'Codec Server browser endpoint' }).fill(codecURL);
  // The switch's input is covered by its styling: its label is what a person clicks.
  await page.getByText('Include cross-origin credentials', { exact: true }).click();
  if (!(await page.getByRole('switch', { name: 'Include cross-origin credentials' }).isChecked())) {
    throw new Error('"Include cross-origin credentials" did not turn on');
  }
  // The choice between the Cluster-level setting and this browser's: a menu of two radios.
  await page.getByRole('button', { name: /^Use Cluster-level setting/ }).click();
  const mine = page.getByRole('radio', { name: /^Use my browser setting/ });
  await mine.click({ force: true }); // its label, styled over it, would take the click the same
  if (!(await mine.isChecked())) throw new Error('"Use my browser setting" did not turn on');
  await shot('codec-settings');
  await page.getByRole('button', { name: 'Apply' }).click();

  // Signed in: the same page shows the decoded input.
  decodes.length = 0;
  await openWorkflow();
  await page.getByText(text).first().waitFor();
  if (!decodes.includes(200)) throw new Error(`codec server answered ${decodes} after sign-in, want 200`);
  await page.getByText(text).first().scrollIntoViewIfNeeded();
  await shot('after-sign-in');
  console.log(`after sign-in: ${text} shown`);
} catch (err) {
  await shot('failure').catch(() => {});
  writeFileSync(join(artifacts, 'codec-failure-aria.txt'), await page.locator('body').ariaSnapshot().catch((e) => String(e)));
  console.error(`ui codec test failed at ${page.url()}: ${err.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  console.log(`artifacts: ${artifacts}`);
}
