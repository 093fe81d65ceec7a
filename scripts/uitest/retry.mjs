// retry.mjs drives the Temporal web UI in headless Chromium as an ops person would: list the
// workflows with failed users (the UsersyncFailedUsers > 0 filter), open the organization's
// workflow usersync/<org>, send the `retry` Update (out_of_licenses) from the UI's "Send an
// Update" form and read its answer in the history. It prints the run the update started
// ("retry answered: run <id>") and saves a screenshot of each step.
//
//   node scripts/uitest/retry.mjs <ui-url> <org>
//
// Environment: CHROMIUM_PATH (default /usr/bin/chromium, Debian's), UITEST_ARTIFACTS (screenshots;
// default: a new temporary directory), UITEST_ACTOR (the update's actor; default ops-ui).
// Selectors are the UI's roles and labels (Temporal UI 2.42), found with Playwright's aria
// snapshots of the pages.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [uiURL, org] = process.argv.slice(2);
if (!uiURL || !org) {
  console.error('usage: node retry.mjs <ui-url> <org>');
  process.exit(2);
}
const workflowID = `usersync/${org}`;
const actor = process.env.UITEST_ACTOR || 'ops-ui';
const artifacts = process.env.UITEST_ARTIFACTS || mkdtempSync(join(tmpdir(), 'usersync-uitest-'));
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  // Chromium's sandbox refuses to run as root (tests run as root in CI).
  args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
page.setDefaultTimeout(45_000); // a loaded CI machine renders the UI slowly
let step = 0;
const started = Date.now();
const shot = async (name) => {
  const path = join(artifacts, `${String(++step).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path });
  console.log(`${((Date.now() - started) / 1000).toFixed(1)}s screenshot: ${path}`);
};

try {
  // The workflows list, filtered as ops would from "Add Filter": organizations with failed users.
  await page.goto(`${uiURL}/namespaces/default/workflows`, { waitUntil: 'domcontentloaded' });
  await page.getByRole('button', { name: 'Add Filter' }).click();
  await page.getByRole('textbox', { name: 'Search' }).fill('UsersyncFailedUsers');
  await page.getByRole('menuitem', { name: /^UsersyncFailedUsers / }).click();
  await page.getByRole('button', { name: '>', exact: true }).click();
  await page.getByRole('textbox', { name: 'Value' }).fill('0');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByRole('button', { name: 'UsersyncFailedUsers > 0' }).waitFor();
  const orgLink = page.getByRole('table', { name: 'Workflows' }).getByRole('link', { name: workflowID, exact: true });
  await orgLink.waitFor();
  console.log(`filtered by UsersyncFailedUsers > 0: ${workflowID} listed`);
  await shot('failed-users-filter');

  // The organization's workflow, then its "Send an Update" form. The list refreshes itself
  // while the runs' search attributes settle: a click on a row being replaced is lost (CI once
  // saw the list go from 4 to 2 workflows under the click), so it is clicked again.
  for (let i = 1; ; i++) {
    await orgLink.click();
    try {
      await page.getByRole('heading', { level: 1, name: workflowID }).waitFor({ timeout: 15_000 });
      break;
    } catch (e) {
      if (i >= 3) throw e;
      console.log(`click ${i} on ${workflowID} did not open it: the list was refreshing; again`);
    }
  }
  // `starter enable` was an update too: its answer is in the history, which has then loaded.
  // The events table is below the fold: scrolled to, it renders its rows.
  const completed = page.getByRole('row', { name: /Workflow Execution Update Completed/ });
  const historyLoaded = async () => {
    await page.getByRole('heading', { level: 1, name: workflowID }).waitFor();
    await page.getByRole('heading', { name: 'Event History' }).scrollIntoViewIfNeeded();
    await page.mouse.wheel(0, 1500);
    await completed.first().waitFor({ state: 'attached', timeout: 30_000 });
  };
  await historyLoaded();
  const before = await completed.count();
  await page.mouse.wheel(0, -5000);
  await shot('org-workflow');
  await page.getByRole('button', { name: 'More Actions' }).click();
  await page.getByRole('menuitem', { name: 'Send an Update' }).click();
  const form = page.getByRole('dialog', { name: 'Send an Update' });
  await form.getByRole('button', { name: 'Select an Update' }).click();
  // The workflow lists its updates with their payloads (the SDK's metadata query).
  await form.getByRole('option', { name: /^retry / }).click();
  // The Data editor (CodeMirror) is the form's third textbox, after the name and update ID.
  await form.getByRole('textbox').nth(2).fill(JSON.stringify({ actor, filter: { type: 'out_of_licenses' } }));
  await page.keyboard.press('Tab'); // the form takes the editor's value when it loses focus
  await shot('retry-update-form');
  await form.getByRole('button', { name: 'Submit' }).click();
  await form.waitFor({ state: 'hidden' });

  // The update's answer, in the history (newest first): the run it started.
  // The page does not show new events by itself: reload until the answer is there.
  for (let deadline = Date.now() + 30_000; ; await page.waitForTimeout(1000)) {
    await page.reload({ waitUntil: 'domcontentloaded' });
    await historyLoaded();
    if ((await completed.count()) > before) break;
    if (Date.now() > deadline) throw new Error(`no answer to the update in the history after 30s (${before} before)`);
  }
  const answer = completed.first();
  if (!(await answer.textContent()).includes('Success')) throw new Error(`the update failed: ${await answer.textContent()}`);
  await answer.scrollIntoViewIfNeeded();
  await answer.click(); // expanded, it shows the whole result
  const result = page.getByText(/"runId":\s*"[^"]+"/).last();
  await result.waitFor();
  const runID = (await result.textContent()).match(/"runId":\s*"([^"]+)"/)[1];
  await shot('retry-answered');
  console.log(`retry answered: run ${runID}`);
} catch (err) {
  await shot('failure').catch(() => {});
  writeFileSync(join(artifacts, 'failure-aria.txt'), await page.locator('body').ariaSnapshot().catch((e) => String(e)));
  console.error(`ui test failed at ${page.url()}: ${err.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  console.log(`artifacts: ${artifacts}`);
}
