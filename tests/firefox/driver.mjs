// Drives Debian's Firefox ESR with the Photo Shield extension installed, for the Python tests
// (tests/firefox/driver.py). Reads one JSON job from the file named first (or stdin), prints one JSON
// answer on stdout.
//
// Job: { extension: "/abs/extension", timeoutMs, scenarios: [ { settings, storage, steps: [...] } ] }
//   extension: a folder or a package (.zip/.xpi), installed as a temporary add-on (what about:debugging's Load
//   Temporary Add-on does); with permanent: true, installed for good like about:addons' Install Add-on From
//   File (Firefox then requires a signature unless prefs say {"xpinstall.signatures.required": false}).
//   prefs: more Firefox preferences. headless: false opens a real window (on the X display in $DISPLAY:
//   Firefox's headless clipboard holds text only). extension "": nothing installed (the add-on comes from a policy).
// Each scenario starts from fresh extension storage ({settings} and any other {storage} keys), in a new tab;
// bare: true leaves storage alone (for a run with no extension installed).
// Steps (each answers one entry of `results`):
//   { goto: url }                               open the url in the scenario's tab
//   { upload: selector, files: [paths] }        pick files in a file input (a real upload over WebDriver BiDi)
//   { click: selector }                         a real mouse click
//   { press: key }                              a real key press (on what has the focus); "Control+V" holds Control
//   { imageOnClipboard: path }                  the page writes that PNG to the clipboard (navigator.clipboard.write,
//                                               right after a real click gave it user activation): as after copying
//                                               an image. Needs a real window (headless: false, on Xvfb)
//   { wheel: "js expression -> [x, y]", deltaY } a real wheel turn with the pointer at [x, y]
//   { drag: "js expression -> [x0, y0, x1, y1]" } a real left-button drag from [x0, y0] to [x1, y1]
//   { evaluate: "js expression" }               value of an expression in the page (promises awaited)
//   { waitFor: "js expression", timeoutMs }     until it is truthy in the page
//   { extension: "js expression" }              value in an extension page (moz-extension://<uuid>/options/options.html),
//                                               where `browser`/`chrome` APIs are available
//   { waitForExtension: "js expression", timeoutMs }
//   { notice: true, timeoutMs }                 waits for the Photo Shield notice: { reason, text, buttons }
//   { answerNotice: "original" | "dismiss" }    clicks that notice button for real (once it is armed)
//   { pages: true }                             the URLs of every open tab
//   { closeExtension: true }                    closes the extension page the steps above used
//   { sleep: ms }
// `click`, `evaluate` and `waitFor` take `tab: "part of a URL"` to act in another open tab instead (the first
// whose URL contains it, waited for up to 10 s), e.g. a page the extension opened by itself.
// Answer: { ok, extensionId, results: [[...per step...] per scenario], error? }
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const FIREFOX = process.env.SHIELD_FIREFOX || '/usr/bin/firefox-esr';
const GECKO_ID = 'photo-shield@photoshield.local';
const UUID = '2f8f9a52-5e2c-4a55-9d62-6c1f0c9e7a11'; // fixed so that the extension's pages have a known URL

const job = JSON.parse(readFileSync(process.argv[2] || 0, 'utf8'));
const extensionOrigin = `moz-extension://${UUID}`;

async function open(page, url) {
  // Firefox's BiDi may never report the load of an extension page: what matters is that it loaded.
  try {
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 10000 });
  } catch (error) {
    if (!url.startsWith('moz-extension:')) throw error;
  }
}

async function evaluate(page, expression) {
  return page.evaluate(`(async () => (${expression}))()`);
}

async function waitFor(page, expression, timeoutMs) {
  await page.waitForFunction(`(() => { try { return Boolean(${expression}); } catch (_) { return false; } })()`,
    { timeout: timeoutMs || 15000, polling: 100 });
  return true;
}

const NOTICE = `(() => {
  const host = document.getElementById('photo-shield-notice');
  const panel = host && host.shadowRoot && [...host.shadowRoot.querySelectorAll('.panel')].pop();
  if (!panel) return null;
  return { reason: panel.dataset.reason || panel.dataset.kind || '', text: panel.innerText,
    buttons: [...panel.querySelectorAll('button')].map((b) => ({ choice: b.dataset.choice, disabled: b.disabled })) };
})()`;

async function answerNotice(page, choice) {
  const point = `(() => {
    const host = document.getElementById('photo-shield-notice');
    const panel = host && host.shadowRoot && [...host.shadowRoot.querySelectorAll('.panel')].pop();
    const button = panel && panel.querySelector('button[data-choice="${choice}"]');
    if (!button || button.disabled) return null;
    const r = button.getBoundingClientRect();
    return [r.x + r.width / 2, r.y + r.height / 2];
  })()`;
  await page.waitForFunction(point, { timeout: 5000, polling: 100 });
  const [x, y] = await page.evaluate(point);
  await page.mouse.click(x, y); // a real click: the notice ignores clicks made by scripts
  return true;
}

async function tabWith(browser, urlPart) {
  const deadline = Date.now() + 10000;
  const address = (tab) => Promise.race([tab.evaluate('location.href'),
    new Promise((resolve) => setTimeout(() => resolve(tab.url()), 1000))]).catch(() => tab.url());
  for (;;) {
    // Puppeteer does not learn the URL of a tab that an extension opened: the page itself is asked.
    for (const tab of await browser.pages()) if ((await address(tab)).includes(urlPart)) return tab;
    if (Date.now() > deadline) throw new Error('no tab at ' + urlPart);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function runStep(context, step) {
  const { extensionPage } = context;
  const page = step.tab ? await tabWith(context.browser, step.tab) : context.page;
  if (step.goto) return open(page, step.goto).then(() => page.url());
  if (step.upload) {
    const input = await page.waitForSelector(step.upload, { timeout: 10000 });
    await input.uploadFile(...step.files);
    return true;
  }
  if (step.click) {
    await page.click(step.click);
    return true;
  }
  if (step.press) {
    // "Control+V" holds Control; a lone "+" (or "Control++") is the plus key itself.
    const keys = step.press.split(/\+(?=.)/);
    const key = keys.pop();
    for (const held of keys) await page.keyboard.down(held);
    await page.keyboard.press(key);
    for (const held of keys.reverse()) await page.keyboard.up(held);
    return true;
  }
  if (step.imageOnClipboard) {
    const png = readFileSync(step.imageOnClipboard).toString('base64');
    await evaluate(page, `(async () => {
      const bytes = Uint8Array.from(atob('${png}'), (c) => c.charCodeAt(0));
      await navigator.clipboard.write([new ClipboardItem({ 'image/png': new Blob([bytes], { type: 'image/png' }) })]);
      return true;
    })()`);
    return true;
  }
  if (step.wheel) {
    const [x, y] = await evaluate(page, step.wheel);
    await page.mouse.move(x, y);
    await page.mouse.wheel({ deltaY: step.deltaY });
    return true;
  }
  if (step.drag) {
    const [x0, y0, x1, y1] = await evaluate(page, step.drag);
    await page.mouse.move(x0, y0);
    await page.mouse.down();
    await page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, { steps: 4 });
    await page.mouse.move(x1, y1, { steps: 4 });
    await page.mouse.up();
    return true;
  }
  if (step.evaluate) return evaluate(page, step.evaluate);
  if (step.waitFor) return waitFor(page, step.waitFor, step.timeoutMs);
  if (step.extension) return evaluate(await extensionPage(), step.extension);
  if (step.waitForExtension) return waitFor(await extensionPage(), step.waitForExtension, step.timeoutMs);
  if (step.notice) {
    await waitFor(page, NOTICE, step.timeoutMs || 15000);
    return page.evaluate(NOTICE);
  }
  if (step.answerNotice) return answerNotice(page, step.answerNotice);
  if (step.closeExtension) return context.closeExtensionPage();
  if (step.pages) return Promise.all((await context.browser.pages()).map((tab) => tab.url()));
  if (step.sleep) return new Promise((resolve) => setTimeout(() => resolve(true), step.sleep));
  throw new Error('unknown step ' + JSON.stringify(step));
}

async function runScenario(browser, scenario) {
  let extensionTab = null;
  const extensionPage = async () => {
    if (!extensionTab || extensionTab.isClosed()) {
      extensionTab = await browser.newPage();
      await open(extensionTab, `${extensionOrigin}/options/options.html`);
      await waitFor(extensionTab, 'typeof chrome !== "undefined" && chrome.storage', 10000);
    }
    return extensionTab;
  };
  const closeExtensionPage = async () => {
    if (extensionTab) await extensionTab.close();
    extensionTab = null;
    return true;
  };
  const setup = scenario.bare ? null : await extensionPage();
  if (setup) await setup.evaluate(async (settings, storage) => {
    await chrome.storage.local.clear();
    if (chrome.storage.session) await chrome.storage.session.clear();
    await chrome.storage.local.set({ settings, ...storage });
  }, scenario.settings || {}, scenario.storage || {});
  const page = await browser.newPage();
  const results = [];
  try {
    for (const step of scenario.steps) {
      try {
        results.push(await runStep({ browser, page, extensionPage, closeExtensionPage }, step));
      } catch (error) {
        results.push({ error: String(error && error.message || error) });
        if (!step.optional) break;
      }
    }
  } finally {
    await page.close().catch(() => {});
    if (extensionTab) await extensionTab.close().catch(() => {});
  }
  return results;
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), 'photo-shield-firefox-'));
  let browser = null;
  const answer = { ok: false, results: [] };
  const deadline = setTimeout(() => {
    process.stdout.write(JSON.stringify({ ...answer, error: 'driver deadline passed' }));
    process.exit(3);
  }, job.timeoutMs || 120000);
  try {
    browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      headless: job.headless !== false,
      userDataDir: profile,
      args: ['--remote-allow-system-access'],
      extraPrefsFirefox: {
        'extensions.webextensions.uuids': JSON.stringify({ [GECKO_ID]: UUID }),
        // Only loopback traffic: no updates, telemetry or safe-browsing lookups.
        'app.update.enabled': false, 'datareporting.policy.dataSubmissionEnabled': false,
        'browser.safebrowsing.malware.enabled': false, 'browser.safebrowsing.phishing.enabled': false,
        'extensions.update.enabled': false, 'network.captive-portal-service.enabled': false,
        ...(job.prefs || {}),
      },
    });
    if (job.permanent) {
      const { result } = await browser.connection.send('webExtension.install',
        { extensionData: { type: 'archivePath', path: job.extension }, 'moz:permanent': true });
      answer.extensionId = result.extension;
    } else if (job.extension) { // none: the add-on comes from elsewhere (e.g. a policy)
      answer.extensionId = await browser.installExtension(job.extension);
    }
    for (const scenario of job.scenarios) answer.results.push(await runScenario(browser, scenario));
    answer.ok = true;
  } catch (error) {
    answer.error = String(error && error.stack || error);
  } finally {
    clearTimeout(deadline);
    if (browser) await browser.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(answer));
}

main();
