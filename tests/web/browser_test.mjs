/* browser_test.mjs — weir's live page in a real browser: Debian's headless
 * Chromium, driven by playwright-core, during a replay of the dranspose
 * tutorial capture (roi_mean_worker + tutorial_reducer, till_x=3, from_y=7).
 *
 *  1. The page loads with no console errors, and no request leaves
 *     127.0.0.1 (every other request is aborted and fails the test).
 *  2. The ROI trace plot shows exactly the values /api/v1/results/roi_mean
 *     serves (fetched here, not by the page), with the same version and
 *     params hash, and those values equal the means of frame[:till_x,
 *     from_y:] computed here from the frames `weir inspect --npy` exports —
 *     independent of the worker, the reducer and the HTTP server.
 *  3. weir runs with --token: a change without the token shows weir's 401
 *     message; with the token typed in the form (kept in sessionStorage)
 *     an invalid till_x shows weir's own validation message.
 *  4. till_x changed in the form, then Start (a new acquisition of the
 *     kept-alive replay): later results carry another params hash, and the
 *     plotted values equal the means for the new till_x.
 *  5. A screenshot goes to <out>/screenshot.png; weir is stopped.
 *
 * Nothing here sleeps to wait: every wait is for a condition, with a
 * deadline. Missing Chromium or data fails the test; it never skips.
 *
 * usage: node browser_test.mjs --build DIR --data DIR --deps DIR --out DIR */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const BUILD = path.resolve(args.build || 'build');
const DATA = path.resolve(args.data || '../shared/data');
const DEPS = path.resolve(args.deps || path.join(BUILD, 'web-test/deps'));
const OUT = path.resolve(args.out || path.join(BUILD, 'web-test'));
const CHROMIUM = process.env.WEIR_CHROMIUM || '/usr/bin/chromium';
const CAPTURE = path.join(DATA, 'dranspose/dump_xrd.cbors');
const WEIR = path.join(BUILD, 'weir');
const WORKER = path.join(BUILD, 'examples/roi_mean_worker.so');
const REDUCER = path.join(BUILD, 'examples/tutorial_reducer.so');
const TILL_X = 3, FROM_Y = 7, NEW_TILL_X = 5;
const TOKEN = 'browser-test-token';
const WAIT_MS = 30000;

let weir = null;
let browser = null;

function log(...m) { console.log('[browser_test]', ...m); }

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  browser = null;
  if (weir && weir.exitCode === null) {
    const gone = new Promise((r) => weir.once('exit', r));
    weir.kill('SIGINT');
    const t = setTimeout(() => weir.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
}

async function fail(msg) {
  console.error('[browser_test] FAIL:', msg);
  const logf = path.join(OUT, 'weir.log');
  if (fs.existsSync(logf)) console.error('--- weir log (tail) ---\n' + fs.readFileSync(logf, 'utf8').slice(-3000));
  await cleanup();
  process.exit(1);
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

/* ---- the independent reference: frames from `weir inspect --npy` ---- */

function readNpy(file, b = fs.readFileSync(file)) {
  check(b.subarray(1, 6).toString('latin1') === 'NUMPY', `${file}: not an .npy file`);
  const off = b[6] === 1 ? 10 : 12;
  const hlen = b[6] === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const header = b.subarray(off, off + hlen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').filter((s) => s.trim()).map(Number);
  check(!/True/.test(header), `${file}: Fortran order`);
  const T = { '<u2': Uint16Array, '|u1': Uint8Array, '<u4': Uint32Array, '<i4': Int32Array,
    '<f8': Float64Array }[descr];
  check(T, `${file}: dtype ${descr} not handled by the test`);
  const body = b.subarray(off + hlen);
  const data = new T(body.buffer.slice(body.byteOffset, body.byteOffset + body.length));
  return { shape, data };
}

/* Frames by event number (null: the event has no image). */
function exportFrames() {
  const dir = path.join(OUT, 'frames');
  fs.mkdirSync(dir, { recursive: true });
  const info = spawnSync(WEIR, ['inspect', CAPTURE], { encoding: 'utf8' });
  const m = /events: (\d+)/.exec(info.stdout || '');
  check(info.status === 0 && m, `weir inspect failed: ${info.stderr}`);
  const frames = [];
  for (let ev = 0; ev < Number(m[1]); ev++) {
    const file = path.join(dir, `event${ev}.npy`);
    const r = spawnSync(WEIR, ['inspect', CAPTURE, '--event', String(ev), '--stream', 'xrd', '--npy', file],
      { encoding: 'utf8' });
    if (r.status === 0) frames.push(readNpy(file));
    else if (/not an image/.test(r.stderr)) frames.push(null);
    else throw new Error(`weir inspect --event ${ev}: ${r.stderr}`);
  }
  return frames;
}

/* numpy's frame[:tillX, fromY:].mean() for non-negative bounds (exact:
 * integer sum, one division, as the worker does). */
function roiMean({ shape: [h, w], data }, tillX, fromY) {
  let sum = 0, n = 0;
  for (let r = 0; r < Math.min(tillX, h); r++)
    for (let c = Math.min(fromY, w); c < w; c++, n++) sum += data[r * w + c];
  return n ? sum / n : null;
}

/* The trace the tutorial reducer should publish: value per event number,
 * null where there is none, up to the last event with an image. */
function expectedTrace(frames, tillX, fromY) {
  const t = frames.map((f) => (f ? roiMean(f, tillX, fromY) : null));
  while (t.length && t[t.length - 1] === null) t.pop();
  return t;
}

/* ---- helpers ---- */

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function until(what, fn, ms = WAIT_MS) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
    if (weir && weir.exitCode !== null) throw new Error(`weir exited (${weir.exitCode}) while waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50)); // poll interval, not a wait for time to pass
  }
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/* weir prints JSON numbers so that they read back exactly (and NaN as
 * null): the served JSON must equal the means computed here to the bit. */
const close = same;

async function main() {
  // Preconditions fail loudly: a missing browser or data set is a broken
  // test set-up, never a reason to pass.
  check(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; scripts/deps.sh test)`);
  check(fs.existsSync(CAPTURE), `${CAPTURE} is missing: the shared sample data is needed (WEIR_SHARED_DATA)`);
  for (const f of [WEIR, WORKER, REDUCER, path.join(BUILD, 'web/index.html'), path.join(BUILD, 'web/uPlot.iife.min.js')])
    check(fs.existsSync(f), `${f} is missing: build weir first (cmake --build)`);
  let chromium;
  try {
    ({ chromium } = createRequire(path.join(DEPS, 'package.json'))('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core not found in ${DEPS} (the test_web_browser_setup fixture installs it): ${e.message}`);
  }
  fs.mkdirSync(OUT, { recursive: true });

  const frames = exportFrames();
  const want1 = expectedTrace(frames, TILL_X, FROM_Y);
  const want2 = expectedTrace(frames, NEW_TILL_X, FROM_Y);
  const nimages = frames.filter(Boolean).length;
  check(nimages > 0 && !same(want1, want2), 'the capture should have images whose ROI means depend on till_x');
  log(`${frames.length} events, ${nimages} images; expected roi_mean: ${JSON.stringify(want1)}`);

  const params = path.join(OUT, 'params.json');
  fs.writeFileSync(params, JSON.stringify([{ name: 'till_x', data: String(TILL_X) }, { name: 'from_y', data: String(FROM_Y) }]));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const logfd = fs.openSync(path.join(OUT, 'weir.log'), 'w');
  weir = spawn(WEIR, ['replay', '-w', WORKER, '-r', REDUCER, '-f', CAPTURE, '-p', params,
    '--port', String(port), '--keep-alive', '--rate', '20', '--no-progress', '--token', TOKEN,
    '--output-dir', path.join(OUT, 'output')], { stdio: ['ignore', logfd, logfd] });
  const getNpy = async (name) => {
    const r = await fetch(`${base}/api/v1/results/${name}.npy`);
    check(r.ok, `GET ${name}.npy: ${r.status}`);
    const { data } = readNpy(name + '.npy', Buffer.from(await r.arrayBuffer()));
    return Array.from(data, (v) => (Number.isNaN(v) ? null : v));
  };
  const get = async (p) => {
    const r = await fetch(base + p);
    check(r.ok, `GET ${p}: ${r.status}`);
    return r.json();
  };
  await until('weir to serve /api/v1/status', () => get('/api/v1/status'));

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
  const external = [];
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if ((u.protocol === 'http:' || u.protocol === 'https:') && u.hostname === '127.0.0.1') return route.continue();
    if (u.protocol === 'data:') return route.continue();
    external.push(u.href);
    return route.abort();
  });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));

  // 1 + 2: the first acquisition, as the page shows it.
  await page.goto(base + '/');
  const card = page.locator('section.result[data-name="roi_mean"]');
  const nWant1 = want1.filter((v) => v !== null).length;
  await until('the ROI trace to show every value', async () =>
    (await card.getAttribute('data-points')) === String(nWant1));
  const served = await get('/api/v1/results/roi_mean');
  const plotted = await page.evaluate(() => window.weirView.plotted('roi_mean'));
  check(same(plotted, served.data), `plotted ${JSON.stringify(plotted)} != served ${JSON.stringify(served.data)}`);
  check(close(served.data, want1), `served ${JSON.stringify(served.data)} != computed ${JSON.stringify(want1)}`);
  const npy1 = await getNpy('roi_mean');
  check(same(npy1, want1), `served .npy ${JSON.stringify(npy1)} != computed ${JSON.stringify(want1)}`);
  check(await card.getAttribute('data-version') === String(served.version), 'the card shows another version');
  const hash1 = served.params_hash;
  check(hash1 && await card.getAttribute('data-params-hash') === hash1, 'the card shows another params hash');
  check(await card.getAttribute('data-last') === String(want1.filter((v) => v !== null).pop()), 'data-last');
  const events = page.locator('#values tr[data-name="events"]');
  await until('the events counter', async () => (await events.getAttribute('data-value')) === String(nimages));
  await until('the status', async () => (await page.locator('body').getAttribute('data-params-hash')) === hash1);
  check(errors.length === 0, `console errors: ${errors.join(' | ')}`);
  check(external.length === 0, `requests left 127.0.0.1: ${external.join(' ')}`);
  log(`first run: plotted = served = computed, params hash ${hash1}`);

  // 3: weir answers 401 and 400 here, so the browser logs failed requests
  // from now on; console errors were checked above.
  const post = (body, token) => fetch(base + '/api/v1/parameters', {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: 'Bearer ' + token } : {}) } });
  const errorShown = (msg) => until(`the form to show "${msg}"`, async () =>
    (await page.isVisible('#params-error')) && (await page.textContent('#params-error')).includes(msg));
  const till = page.locator('#param-till_x');
  check(await till.inputValue() === String(TILL_X), `the form shows till_x=${await till.inputValue()}`);
  // Without the token.
  const noauth = await post({ till_x: 'three' });
  check(noauth.status === 401, `POST without the token answered ${noauth.status}`);
  const noauthMsg = (await noauth.json()).error;
  await till.fill('three');
  await page.click('#params button[type=submit]');
  await errorShown(noauthMsg);
  // With the token typed in the form: weir's validation message.
  const bad = await post({ till_x: 'three' }, TOKEN);
  check(bad.status === 400, `POST till_x="three" answered ${bad.status}`);
  const badMsg = (await bad.json()).error;
  check(badMsg.includes('till_x'), `weir's message does not name the parameter: ${badMsg}`);
  await page.fill('#token', TOKEN);
  check(await page.evaluate(() => sessionStorage.getItem('weir-token')) === TOKEN, 'the token is not kept for the tab');
  await page.click('#params button[type=submit]');
  await errorShown(badMsg);

  // 4: a valid change, then a new acquisition; later results use it.
  await till.fill(String(NEW_TILL_X));
  await page.click('#params button[type=submit]');
  await page.locator('#params-ok').waitFor({ state: 'visible', timeout: WAIT_MS });
  const hash2 = await page.locator('body').getAttribute('data-submitted-hash');
  check(hash2 && hash2 !== hash1, `a new parameter set should have another hash (${hash1} -> ${hash2})`);
  const p = (await get('/api/v1/parameters')).find((x) => x.name === 'till_x');
  check(String(p.value) === String(NEW_TILL_X), `weir has till_x=${p.value} after the form`);
  await until('the first acquisition to finish', async () => (await get('/api/v1/status')).state === 'finished');
  await page.click('button[data-control="start"]');
  const nWant2 = want2.filter((v) => v !== null).length;
  await until('the ROI trace of the new parameters', async () =>
    (await card.getAttribute('data-params-hash')) === hash2 &&
    (await card.getAttribute('data-points')) === String(nWant2) &&
    (await get('/api/v1/status')).state === 'finished');
  const served2 = await get('/api/v1/results/roi_mean');
  await until('the page to show the final version', async () =>
    (await card.getAttribute('data-version')) === String(served2.version));
  const plotted2 = await page.evaluate(() => window.weirView.plotted('roi_mean'));
  check(served2.params_hash === hash2, `served params hash ${served2.params_hash}, want ${hash2}`);
  check(same(plotted2, served2.data), `plotted ${JSON.stringify(plotted2)} != served ${JSON.stringify(served2.data)}`);
  check(close(served2.data, want2), `served ${JSON.stringify(served2.data)} != computed ${JSON.stringify(want2)} (till_x=${NEW_TILL_X})`);
  const npy2 = await getNpy('roi_mean');
  check(same(npy2, want2), `served .npy ${JSON.stringify(npy2)} != computed ${JSON.stringify(want2)}`);
  check(external.length === 0, `requests left 127.0.0.1: ${external.join(' ')}`);
  const unexpected = errors.filter((e) => !/status of 40[01]/.test(e));
  check(unexpected.length === 0, `console errors: ${unexpected.join(' | ')}`);
  log(`second run: till_x=${NEW_TILL_X}, params hash ${hash2}, plotted = served = computed`);

  // The progress bar ends full, with the number of events weir read.
  const progress = await get('/api/v1/progress');
  await until('the progress bar to show the end', async () =>
    (await page.textContent('#progress-text')).includes('finished') &&
    (await page.locator('.progress').getAttribute('data-completed-events')) === String(progress.completed_events));
  check(progress.finished && progress.completed_events === frames.length,
    `progress: ${JSON.stringify(progress)}, the capture has ${frames.length} events`);

  // 5
  const shot = path.join(OUT, 'screenshot.png');
  await page.screenshot({ path: shot, fullPage: true });
  log(`screenshot: ${shot}`);
  await cleanup();
  log('PASS');
}

main().catch((e) => fail(e.stack || String(e)));
