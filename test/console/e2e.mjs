// Drives the Wasmbed console in headless Chromium: sign in with a token, create an
// Application from the C blink example, watch it reach Running on every virtual
// device, open a device's page, approve the waiting step of another Application's
// rollout. Screenshots go to $ARTIFACTS. Run by console_test.go.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const { CONSOLE_URL, TOKEN, BLINK_FILE, ARTIFACTS, CHROMIUM, DEVICES, APP, GATED } = process.env;
const devices = Number(DEVICES);
const step = (s) => console.log(`e2e: ${s}`);

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
let page;
try {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  page = await ctx.newPage();
  const external = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(CONSOLE_URL) && !r.url().startsWith('data:')) external.push(r.url());
  });
  page.on('pageerror', (e) => console.log(`e2e: page error: ${e.message}`));
  page.setDefaultTimeout(20000);

  step('sign in');
  await page.goto(CONSOLE_URL);
  await page.getByTestId('token-input').fill(TOKEN);
  await page.screenshot({ path: join(ARTIFACTS, '01-login.png') });
  await page.getByTestId('login-button').click();
  await page.getByTestId('nav-devices').waitFor();
  await page.getByTestId('stream-state').filter({ hasText: 'live' }).waitFor();
  await page.getByTestId('by-phase').waitFor();
  await page.screenshot({ path: join(ARTIFACTS, '02-overview.png'), fullPage: true });

  step('create the application from the C blink example');
  await page.getByTestId('nav-applications').click();
  await page.getByTestId('new-app').click();
  await page.getByTestId('app-name').fill(APP);
  await page.getByTestId('code').fill(readFileSync(BLINK_FILE, 'utf8'));
  await page.screenshot({ path: join(ARTIFACTS, '03-create.png'), fullPage: true });
  await page.getByTestId('submit-app').click();
  await page.getByTestId('app-title').waitFor();

  step(`wait for Running on ${devices} devices (live, no reload)`);
  await page.getByTestId('phase-chip').filter({ hasText: /^Running$/ }).first().waitFor({ timeout: 60000 });
  await page.getByTestId('progress-text').filter({ hasText: `${devices}/${devices}` }).waitFor();
  await page.getByTestId('status-chip').filter({ hasText: /^Ready$/ }).first().waitFor();
  await page.getByTestId('app-devices').getByText('Running').nth(devices - 1).waitFor();
  await page.screenshot({ path: join(ARTIFACTS, '04-application-running.png'), fullPage: true });

  step('open a device');
  await page.getByTestId('app-devices').getByRole('link', { name: 'sim-0' }).click();
  await page.getByTestId('device-title').waitFor();
  await page.getByTestId('device-apps').getByText(APP).waitFor();
  await page.getByTestId('device-apps').getByRole('row').filter({ hasText: APP }).getByText('Running').waitFor();
  await page.getByTestId('device-log').getByText('blink: started').waitFor({ timeout: 20000 });
  await page.screenshot({ path: join(ARTIFACTS, '05-device.png'), fullPage: true });

  await page.getByTestId('nav-devices').click();
  await page.getByTestId('devices-table').waitFor();
  await page.screenshot({ path: join(ARTIFACTS, '06-devices.png'), fullPage: true });
  step(`approve step 2 of ${GATED}'s rollout`);
  await page.goto(`${CONSOLE_URL}/#/applications/default/${GATED}`);
  await page.getByTestId('rollout-waiting').filter({ hasText: 'waiting for approval of step 2 of 2' }).waitFor({ timeout: 60000 });
  await page.getByTestId('rollout-policy').filter({ hasText: 'approval before step 2' }).waitFor();
  await page.screenshot({ path: join(ARTIFACTS, '07-waiting-for-approval.png'), fullPage: true });
  await page.getByTestId('approve').click();
  await page.getByTestId('confirm').click();
  await page.getByTestId('status-chip').filter({ hasText: /^Ready$/ }).first().waitFor({ timeout: 60000 });
  await page.getByTestId('progress-text').filter({ hasText: `${devices}/${devices}` }).waitFor();
  await page.screenshot({ path: join(ARTIFACTS, '08-approved.png'), fullPage: true });

  if (external.length > 0) throw new Error(`the UI fetched from elsewhere: ${external.join(', ')}`);
  step('ok');
} catch (e) {
  if (page) await page.screenshot({ path: join(ARTIFACTS, 'failure.png'), fullPage: true }).catch(() => {});
  console.error(`e2e: FAILED: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
