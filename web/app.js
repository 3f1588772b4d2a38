/* app.js — weir's live page: status, parameters and live results.
 *
 * Everything comes from weir's own HTTP API (/api/v1). The Server-Sent
 * Events stream pushes the status (at most every 100 ms) and the version of
 * every result; the page fetches a result only when its version changed, at
 * most MAX_FPS times a second and only from requestAnimationFrame — a hidden
 * tab fetches nothing, a slow browser skips versions, and weir never waits
 * for the page (it serves committed snapshots, the page only reads them).
 * 1-D results are drawn with uPlot, 2-D results on a canvas with a
 * viridis colour scale (fetched as .npy: raw numbers, no JSON for images).
 *
 * What is shown is also exposed for tests: each result's card carries
 * data-version, data-params-hash, data-points and data-last (data-min and
 * data-max for images), and window.weirView.plotted(name) returns the
 * values a plot draws. */
'use strict';
(() => {
  const API = '/api/v1';
  const MAX_FPS = 10;
  const PROGRESS_MS = 500;
  const $ = (id) => document.getElementById(id);

  const view = {
    status: null,
    results: new Map(), // name -> {meta, want, have, kind, card, ...}
    versions: {},
  };

  /* ---------- HTTP ---------- */

  const token = () => sessionStorage.getItem('weir-token') || '';

  async function api(path, { method = 'GET', body, raw = false } = {}) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && token()) headers.Authorization = 'Bearer ' + token();
    const r = await fetch(API + path, {
      method, headers, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.ok && raw) return r.arrayBuffer();
    const text = await r.text();
    let data = text;
    try { data = text ? JSON.parse(text) : null; } catch (e) { /* not JSON: keep the text */ }
    if (!r.ok) {
      const err = new Error((data && data.error) || text || `${r.status} ${r.statusText}`);
      err.status = r.status;
      throw err;
    }
    return data;
  }

  function showMessage(text, isError = true) {
    const m = $('message');
    m.textContent = text || '';
    m.hidden = !text;
    m.classList.toggle('error', isError);
  }

  function authHint(err) {
    if (err.status === 401 || err.status === 403) {
      $('token').focus();
      return `${err.message} — the server needs a token: enter it in the Token field.`;
    }
    return err.message;
  }

  /* ---------- formatting ---------- */

  function si(n, unit = '') {
    if (n === null || n === undefined || !Number.isFinite(+n)) return '–';
    n = +n;
    const a = Math.abs(n);
    for (const [f, p] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']])
      if (a >= f) return `${(n / f).toFixed(a / f < 10 ? 2 : 1)} ${p}${unit}`;
    return (Number.isInteger(n) ? String(n) : n.toFixed(a < 10 ? 2 : 1)) + (unit ? ' ' + unit : '');
  }

  function num(v) {
    if (typeof v !== 'number') return v === null || v === undefined ? '–' : String(v);
    if (Number.isInteger(v)) return v.toLocaleString('en-US');
    return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : v.toFixed(3);
  }

  const label = (key) => key.replace(/_/g, ' ');
  const el = (tag, text, cls) => Object.assign(document.createElement(tag), { textContent: text, className: cls || '' });

  /* Per-stage rows: counters as weir reports them plus a rate computed
   * here from the change of events out between two status messages. */
  const STAGE_COLS = ['events in → out', 'events/s', 'bytes in → out', 'results', 'rejected', 'queue',
    'user s', 'blocked s'];
  let prevStatus = null;

  function stageRow(name, st, dt) {
    const prev = prevStatus && prevStatus.stages && prevStatus.stages[name];
    const rate = prev && dt > 0 ? (st.events_out - prev.events_out) / dt : null;
    const tr = document.createElement('tr');
    tr.dataset.stage = name;
    tr.append(el('th', name));
    tr.append(el('td', `${num(st.events_in)} → ${num(st.events_out)}`, 'n'));
    tr.append(el('td', si(rate), 'n'));
    tr.append(el('td', `${si(st.bytes_in, 'B')} → ${si(st.bytes_out, 'B')}`, 'n'));
    tr.append(el('td', num(st.results), 'n'));
    const reasons = (st.reasons || []).map((r) => `${r.reason} ×${r.count}`).join('; ');
    const rej = el('td', num(st.rejected) + (reasons ? ` (${reasons})` : ''), st.rejected ? 'bad' : '');
    tr.append(rej);
    const q = document.createElement('td');
    const meter = Object.assign(document.createElement('meter'),
      { min: 0, max: st.queue_capacity || 1, value: st.queue_fill || 0 });
    q.append(meter, ` ${num(st.queue_fill)}/${num(st.queue_capacity)} (max ${num(st.queue_max)})`);
    tr.append(q);
    for (const v of [st.user_seconds, st.blocked_seconds]) tr.append(el('td', (v || 0).toFixed(3), 'n'));
    return tr;
  }

  /* Per-stream counters (live sources): every numeric field weir sends. */
  function streamTable(streams) {
    const keys = Object.keys(streams[0]).filter((k) => typeof streams[0][k] === 'number');
    const head = document.createElement('tr');
    head.append(el('th', 'stream'), ...keys.map((k) => el('th', label(k))));
    const rows = streams.map((st) => {
      const tr = document.createElement('tr');
      tr.append(el('th', `${st.name}${st.protocol ? ' (' + st.protocol + ')' : ''}`));
      for (const k of keys) tr.append(el('td', k === 'bytes' ? si(st[k], 'B') : num(st[k]), 'n'));
      return tr;
    });
    $('streams').replaceChildren(head, ...rows);
  }

  /* ---------- status and progress ---------- */

  function renderStatus(now) {
    const s = view.status;
    if (!s) return;
    const state = s.state || 'unknown';
    $('state').textContent = state;
    $('state').className = 'state ' + state;
    document.body.dataset.state = state;
    document.body.dataset.paramsHash = s.params_hash || '';
    const items = [
      ['events/s', si(s.events_per_s)],
      ['bytes/s', si(s.bytes_per_s, 'B')],
      ['workers alive', `${num(s.workers_alive)}${s.nworkers ? ' / ' + num(s.nworkers) : ''}`],
      ['wall time', s.wall_seconds ? num(s.wall_seconds) + ' s' : '–'],
      ['params hash', s.params_hash || '–'],
    ];
    if (s.error) items.push(['error', s.error]);
    $('summary').replaceChildren(...items.map(([k, v]) => {
      const div = document.createElement('div');
      div.append(el('dt', k), el('dd', v, k === 'error' ? 'error' : ''));
      return div;
    }));
    const dt = prevStatus ? (now - prevStatus.at) / 1000 : 0;
    const head = document.createElement('tr');
    head.append(el('th', 'stage'), ...STAGE_COLS.map((c) => el('th', c)));
    const stages = Object.entries(s.stages || {}).map(([name, st]) => stageRow(name, st, dt));
    $('stages').replaceChildren(head, ...stages);
    const streams = Array.isArray(s.streams) ? s.streams : [];
    $('streams').hidden = streams.length === 0;
    if (streams.length) streamTable(streams);
    prevStatus = { at: now, stages: s.stages };
  }

  /* /progress is not in the SSE stream: fetched after status updates, at
   * most every PROGRESS_MS, and once more after the last update. */
  let progressAt = -Infinity;
  let progressTimer = 0;
  function requestProgress() {
    if (progressTimer) return;
    const wait = Math.max(0, progressAt + PROGRESS_MS - performance.now());
    progressTimer = setTimeout(() => { progressTimer = 0; loadProgress(); }, wait);
  }

  async function loadProgress() {
    progressAt = performance.now();
    try {
      const p = await api('/progress');
      // completed/total measure the source (bytes of a replay): the bar;
      // completed_events/total_events (an estimate while running): the text.
      const frac = p.finished ? 1 : p.total ? Math.min(1, p.completed / p.total) : 0;
      const bar = $('progress-bar');
      bar.style.width = (100 * frac).toFixed(1) + '%';
      bar.parentElement.classList.toggle('unknown', !p.total && !p.finished);
      bar.parentElement.dataset.completedEvents = p.completed_events;
      $('progress-text').textContent = `${num(p.completed_events)}` +
        (p.total_events ? ` / ${p.finished ? '' : '~'}${num(p.total_events)}` : '') +
        ` events${p.finished ? ' · finished' : ''}`;
    } catch (e) {
      $('progress-text').textContent = 'progress: ' + e.message;
    }
  }

  /* ---------- parameters ---------- */

  function paramInput(p) {
    const input = document.createElement('input');
    const value = p.value ?? p.default ?? '';
    input.id = 'param-' + p.name;
    input.name = p.name;
    input.dataset.type = p.type;
    if (p.type === 'bool') {
      input.type = 'checkbox';
      input.checked = value === true || value === 'true' || value === '1' || value === 1;
      input.dataset.orig = String(input.checked);
    } else {
      // Text, not type=number: whatever is typed reaches weir, whose
      // validation message names the parameter and the type it expects.
      input.type = 'text';
      if (p.type === 'int') input.inputMode = 'numeric';
      if (p.type === 'float') input.inputMode = 'decimal';
      input.value = String(value);
      input.dataset.orig = input.value;
    }
    return input;
  }

  async function loadParams() {
    const list = await api('/parameters');
    const rows = (list || []).map((p) => {
      const row = document.createElement('div');
      row.className = 'form-row';
      const lab = Object.assign(document.createElement('label'), { htmlFor: 'param-' + p.name, textContent: p.name });
      const hint = document.createElement('small');
      hint.textContent = [p.type, p.description, p.default !== undefined && p.default !== null ? `default ${p.default}` : '']
        .filter(Boolean).join(' · ');
      row.append(lab, paramInput(p), hint);
      return row;
    });
    if (!rows.length) rows.push(Object.assign(document.createElement('p'), { textContent: 'no parameters' }));
    $('param-fields').replaceChildren(...rows);
  }

  /* Typed as declared when the text parses; otherwise sent as typed so
   * weir's own validation names the parameter and the expected type. */
  function paramValue(input) {
    const t = input.dataset.type;
    const v = input.value.trim();
    if (t === 'bool') return input.checked;
    if (t === 'int' && /^[+-]?\d+$/.test(v)) return Number(v);
    if (t === 'float' && v !== '' && Number.isFinite(Number(v))) return Number(v);
    return input.value;
  }

  async function submitParams(ev) {
    ev.preventDefault();
    const err = $('params-error');
    const ok = $('params-ok');
    err.hidden = ok.hidden = true;
    const body = {};
    for (const input of $('param-fields').querySelectorAll('input')) {
      input.classList.remove('invalid');
      const cur = input.type === 'checkbox' ? String(input.checked) : input.value;
      if (cur !== input.dataset.orig) body[input.name] = paramValue(input);
    }
    if (!Object.keys(body).length) {
      ok.textContent = 'nothing changed';
      ok.hidden = false;
      return;
    }
    try {
      const r = await api('/parameters', { method: 'POST', body });
      ok.textContent = `applied (${Object.keys(body).join(', ')}) — parameters hash ${r && r.params_hash}`;
      ok.hidden = false;
      document.body.dataset.submittedHash = (r && r.params_hash) || '';
      await loadParams();
    } catch (e) {
      err.textContent = authHint(e);
      err.hidden = false;
      for (const name of Object.keys(body))
        if (e.message.includes(name)) $('param-' + name).classList.add('invalid');
    }
  }

  /* ---------- results ---------- */

  const VIRIDIS = (() => {
    // Polynomial fit of matplotlib's viridis (public domain coefficients).
    const c = [[0.2777, 0.0054, 0.3341], [0.1051, 1.4046, 1.3846], [-0.3309, 0.2148, 0.0951],
      [-4.6342, -5.7991, -19.3324], [6.2283, 14.1799, 56.6906], [4.7764, -13.7451, -65.3530],
      [-5.4355, 4.6459, 26.3124]];
    const lut = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const t = i / 255;
      for (let k = 0; k < 3; k++) {
        let v = c[6][k];
        for (let j = 5; j >= 0; j--) v = v * t + c[j][k];
        lut[3 * i + k] = Math.round(255 * v);
      }
    }
    return lut;
  })();

  function card(r, cls) {
    const el = document.createElement('section');
    el.className = 'card result ' + cls;
    el.dataset.name = r.meta.name;
    el.innerHTML = '<h2></h2><p class="meta"></p>';
    el.querySelector('h2').textContent = r.meta.name;
    $('plots').append(el);
    return el;
  }

  function setMeta(r, extra = '') {
    const m = r.meta;
    r.card.dataset.version = r.have;
    r.card.dataset.paramsHash = r.paramsHash || '';
    r.card.querySelector('.meta').textContent =
      `${m.dtype || ''} ${JSON.stringify(m.shape || [])} · version ${r.have}` +
      (r.paramsHash ? ` · params ${r.paramsHash}` : '') + extra;
  }

  function widgetKind(meta) {
    if (meta.kind !== 'array') return 'value';
    const dims = (meta.shape || []).length;
    return dims === 1 ? 'line' : dims === 2 ? 'image' : 'other';
  }

  function dropResult(r) {
    if (r.plot) r.plot.destroy();
    if (r.card) r.card.remove();
    if (r.row) r.row.remove();
    view.results.delete(r.meta.name);
  }

  function syncList(list) {
    const seen = new Set();
    for (const meta of list || []) {
      seen.add(meta.name);
      let r = view.results.get(meta.name);
      const kind = widgetKind(meta);
      if (r && r.kind !== kind) { dropResult(r); r = null; }
      if (!r) {
        r = { kind, have: null, meta };
        view.results.set(meta.name, r);
        if (kind === 'image') imageCard(r);
        else if (kind === 'value') valueRow(r);
        else r.card = card(r, kind);
      }
      r.meta = meta;
      r.want = view.versions[meta.name] ?? meta.version;
    }
    for (const r of [...view.results.values()]) if (!seen.has(r.meta.name)) dropResult(r);
    $('values-card').hidden = ![...view.results.values()].some((r) => r.kind === 'value');
  }

  function onVersions(versions) {
    view.versions = versions || {};
    const names = Object.keys(view.versions);
    if (names.length !== view.results.size) needList = true;
    for (const name of names) {
      const r = view.results.get(name);
      if (!r) needList = true;
      else r.want = view.versions[name];
    }
    kick();
  }

  async function loadResult(r) {
    const name = encodeURIComponent(r.meta.name);
    const want = r.want;
    if (r.kind === 'image') {
      r.array = parseNpy(await api(`/results/${name}.npy`, { raw: true }));
      r.have = want;
      r.meta.shape = r.array.shape;
      r.paramsHash = view.status && view.status.params_hash;
      drawImage(r);
      return;
    }
    const j = await api(`/results/${name}`);
    r.have = j.version ?? want;
    Object.assign(r.meta, { shape: j.shape, dtype: j.dtype });
    r.paramsHash = j.params_hash || '';
    if (r.kind === 'line') drawLine(r, j);
    else if (r.kind === 'value') drawValue(r, j);
    else drawOther(r);
  }

  /* 1-D: uPlot, x from the result's "x" when given, else the index. Axis
   * labels from the result's metadata when it has any. */
  function drawLine(r, j) {
    const y = (j.data || []).map((v) => (typeof v === 'number' ? v : null));
    const x = Array.isArray(j.x) && j.x.length === y.length ? j.x : y.map((_, i) => i);
    if (!r.plot) {
      r.box = document.createElement('div');
      r.card.append(r.box);
      const xl = j.xlabel || (j.axes && j.axes[0]) || (j.shape && j.shape.length === 1 ? 'index' : '');
      const yl = j.ylabel || (j.axes && j.axes[1]) || j.unit || r.meta.name;
      r.plot = new uPlot({
        width: Math.max(300, r.box.clientWidth), height: 260,
        scales: { x: { time: false } },
        axes: [{ label: xl }, { label: yl }],
        series: [{ label: xl }, { label: r.meta.name, stroke: '#2a6fdb', width: 1.5 }],
        legend: { live: true },
      }, [[], []], r.box);
    }
    r.plot.setData([x, y]);
    let last = null;
    let points = 0;
    for (const v of y) if (v !== null) { points++; last = v; }
    r.card.dataset.points = points;
    r.card.dataset.last = last === null ? '' : String(last);
    setMeta(r, ` · ${points} points`);
  }

  function valueRow(r) {
    r.row = document.createElement('tr');
    r.row.innerHTML = '<th></th><td class="n"></td><td class="meta"></td>';
    r.row.firstChild.textContent = r.meta.name;
    r.row.dataset.name = r.meta.name;
    $('values').append(r.row);
  }

  function drawValue(r, j) {
    const v = j.value;
    r.row.children[1].textContent = typeof v === 'number' ? num(v) : String(v ?? '–');
    r.row.children[2].textContent = `version ${r.have}` + (r.paramsHash ? ` · params ${r.paramsHash}` : '');
    r.row.dataset.version = r.have;
    r.row.dataset.value = String(v);
    r.row.dataset.paramsHash = r.paramsHash;
  }

  function drawOther(r) {
    setMeta(r, ' · not drawn (only 1-D and 2-D arrays are)');
  }

  /* .npy: magic, version, a little-endian header length, then a Python dict
   * literal with descr, fortran_order and shape; the data follows. */
  function parseNpy(buf) {
    const b = new Uint8Array(buf);
    if (b[0] !== 0x93 || String.fromCharCode(...b.subarray(1, 6)) !== 'NUMPY') throw new Error('not an .npy file');
    const dv = new DataView(buf);
    const off = b[6] === 1 ? 10 : 12;
    const hlen = b[6] === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
    const header = new TextDecoder().decode(b.subarray(off, off + hlen));
    const descr = (/'descr':\s*'([^']+)'/.exec(header) || [])[1] || '';
    const shape = ((/'shape':\s*\(([^)]*)\)/.exec(header) || [])[1] || '')
      .split(',').filter((s) => s.trim()).map(Number);
    const types = { f4: Float32Array, f8: Float64Array, u1: Uint8Array, i1: Int8Array, b1: Uint8Array,
      u2: Uint16Array, i2: Int16Array, u4: Uint32Array, i4: Int32Array, u8: BigUint64Array, i8: BigInt64Array };
    const T = types[descr.slice(1)];
    if (!T || descr[0] === '>' || /'fortran_order':\s*True/.test(header))
      throw new Error(`.npy layout not shown: ${descr}`);
    const n = shape.reduce((a, d) => a * d, 1);
    const start = off + hlen;
    let data = new T(buf.slice(start, start + n * T.BYTES_PER_ELEMENT)); // copy: aligned
    if (T === BigInt64Array || T === BigUint64Array) data = Float64Array.from(data, Number);
    return { shape, data };
  }

  /* Scaling limits: min/max, or percentiles of (a sample of) the finite values. */
  function limits(data, mode, log) {
    const val = (i) => (log ? Math.log10(data[i]) : data[i]);
    if (mode === 'minmax') {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < data.length; i++) {
        const v = val(i);
        if (!Number.isFinite(v)) continue; // NaN, log of 0
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      return lo <= hi ? [lo, hi] : [0, 1];
    }
    const step = Math.max(1, Math.floor(data.length / 65536));
    const vals = [];
    for (let i = 0; i < data.length; i += step) if (Number.isFinite(val(i))) vals.push(val(i));
    if (!vals.length) return [0, 1];
    vals.sort((a, b) => a - b);
    const at = (q) => vals[Math.min(vals.length - 1, Math.max(0, Math.round(q / 100 * (vals.length - 1))))];
    return [at(Number(mode)), at(100 - Number(mode))];
  }

  function imageCard(r) {
    r.card = card(r, 'image');
    const tools = document.createElement('div');
    tools.className = 'tools';
    tools.innerHTML = '<label>scale <select><option value="minmax">min–max</option>' +
      '<option value="1">1–99 %</option><option value="0.1">0.1–99.9 %</option></select></label>' +
      '<label><input type="checkbox"> log</label>';
    const wrap = document.createElement('div');
    wrap.className = 'image-wrap';
    r.canvas = document.createElement('canvas');
    const bar = document.createElement('div');
    bar.className = 'cbar';
    const cb = document.createElement('canvas');
    cb.width = 1;
    cb.height = 256;
    const img = cb.getContext('2d').createImageData(1, 256);
    for (let i = 0; i < 256; i++) {
      img.data.set(VIRIDIS.subarray(3 * (255 - i), 3 * (255 - i) + 3), 4 * i);
      img.data[4 * i + 3] = 255;
    }
    cb.getContext('2d').putImageData(img, 0, 0);
    r.ticks = document.createElement('div');
    r.ticks.className = 'ticks';
    bar.append(cb, r.ticks);
    wrap.append(r.canvas, bar);
    r.card.append(tools, wrap);
    tools.addEventListener('change', () => drawImage(r));
    r.scale = tools.querySelector('select');
    r.log = tools.querySelector('input');
  }

  function drawImage(r) {
    const { shape, data } = r.array;
    const [h, w] = shape;
    const log = r.log.checked;
    const [lo, hi] = limits(data, r.scale.value, log);
    const span = hi > lo ? hi - lo : 1;
    if (r.canvas.width !== w || r.canvas.height !== h) {
      r.canvas.width = w;
      r.canvas.height = h;
      r.canvas.style.aspectRatio = `${w} / ${h}`;
    }
    const ctx = r.canvas.getContext('2d');
    const img = ctx.createImageData(w, h);
    const px = img.data;
    for (let i = 0; i < w * h; i++) {
      const v = log ? Math.log10(data[i]) : data[i];
      if (!Number.isFinite(v)) continue; // transparent: shows the background
      const k = 3 * Math.max(0, Math.min(255, Math.floor((v - lo) / span * 255.999)));
      px[4 * i] = VIRIDIS[k];
      px[4 * i + 1] = VIRIDIS[k + 1];
      px[4 * i + 2] = VIRIDIS[k + 2];
      px[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    const fmt = (v) => num(log ? 10 ** v : v);
    r.ticks.replaceChildren(...[hi, (lo + hi) / 2, lo].map((v) =>
      Object.assign(document.createElement('span'), { textContent: fmt(v) })));
    Object.assign(r.card.dataset, { points: w * h, min: fmt(lo), max: fmt(hi) });
    setMeta(r);
  }

  /* ---------- the update loop ---------- */

  let needList = true;
  let statusDirty = false;
  let frameQueued = false;
  let busy = false;
  let lastFetch = -Infinity;
  let timer = 0;

  function kick() {
    if (!frameQueued) {
      frameQueued = true;
      requestAnimationFrame(frame);
    }
  }

  function frame(now) {
    frameQueued = false;
    if (statusDirty) {
      statusDirty = false;
      renderStatus(now);
      requestProgress();
    }
    const stale = [...view.results.values()].some((r) => r.want !== r.have);
    if (busy || !(needList || stale) || timer) return;
    const wait = lastFetch + 1000 / MAX_FPS - now;
    if (wait > 0) {
      timer = setTimeout(() => { timer = 0; kick(); }, wait);
      return;
    }
    busy = true;
    lastFetch = now;
    refresh().catch((e) => {
      needList = true; // a result may have gone (a new acquisition): list again
      showMessage('results: ' + e.message);
    }).finally(() => { busy = false; kick(); });
  }

  async function refresh() {
    if (needList) {
      needList = false;
      syncList(await api('/results'));
    }
    const stale = [...view.results.values()].filter((r) => r.want !== r.have);
    await Promise.all(stale.map(loadResult));
    if ($('message').textContent.startsWith('results:')) showMessage('');
  }

  function connect() {
    const es = new EventSource(API + '/events');
    const conn = $('conn');
    es.onopen = () => { conn.textContent = 'live'; conn.className = 'conn live'; };
    es.onerror = () => { conn.textContent = 'reconnecting…'; conn.className = 'conn down'; };
    es.addEventListener('status', (e) => {
      view.status = JSON.parse(e.data);
      statusDirty = true;
      kick();
    });
    es.addEventListener('results', (e) => onVersions(JSON.parse(e.data).versions));
  }

  /* ---------- start ---------- */

  window.weirView = {
    plotted: (name) => {
      const r = view.results.get(name);
      return r && r.plot ? Array.from(r.plot.data[1]) : null;
    },
    image: (name) => {
      const r = view.results.get(name);
      return r && r.array ? { shape: r.array.shape, data: Array.from(r.array.data) } : null;
    },
  };

  $('token').value = token();
  $('token').addEventListener('input', (e) => sessionStorage.setItem('weir-token', e.target.value));
  $('params').addEventListener('submit', submitParams);
  for (const b of document.querySelectorAll('[data-control]')) {
    b.addEventListener('click', async () => {
      try {
        await api('/control/' + b.dataset.control, { method: 'POST', body: {} });
        showMessage('');
      } catch (e) {
        showMessage(`${b.dataset.control}: ${authHint(e)}`);
      }
    });
  }
  window.addEventListener('resize', () => {
    for (const r of view.results.values())
      if (r.plot) r.plot.setSize({ width: Math.max(300, r.box.clientWidth), height: 260 });
  });

  loadParams().catch((e) => {
    $('params-error').textContent = 'parameters: ' + e.message;
    $('params-error').hidden = false;
  });
  loadProgress();
  connect();
  kick();
})();
