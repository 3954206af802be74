// Odometer's dashboard: a small single-page app over the JSON API. No
// build step and no library: the DOM is made with h(), charts are SVG
// drawn by chart(), and every text from the API goes in as text, never as
// HTML. See docs/DASHBOARD.md.
'use strict';
(() => {
  const params = new URLSearchParams(location.search);
  // ?refresh=SECONDS changes how often live pages poll (10 s by default).
  const REFRESH = Math.max(1, Number(params.get('refresh')) || 10) * 1000;
  const KEY = 'odometer.key';
  const WHO = 'odometer.who';
  const API = new URL('..', location.href).pathname; // the API is the parent of /ui/
  const WINDOWS = ['hour', 'day', 'week', 'month'];
  // Each range: its label, and how many of which period it spans, the
  // current one included.
  const RANGES = {
    '24h': ['Last 24 hours', 24, 'hour'], '7d': ['Last 7 days', 7, 'day'], '30d': ['Last 30 days', 30, 'day'],
    '90d': ['Last 90 days', 90, 'day'], '12m': ['Last 12 months', 12, 'month'],
  };
  const OPS = {
    sum: 'sum of values', count: 'count of events', avg: 'average', min: 'minimum', max: 'maximum', first: 'first value', last: 'last value',
    unique: 'distinct values', p50: 'median (p50)', p90: '90th percentile', p95: '95th percentile', p99: '99th percentile',
    integral: 'value held × time', twa: 'time-weighted average',
  };
  // Ops whose values add up across windows, groups and customers.
  const ADDITIVE = ['sum', 'count', 'integral'];
  const PERIOD_OF = { hour: 'hourly', day: 'daily', week: 'weekly', month: 'monthly', year: 'yearly' };

  const S = {
    key: sessionStorage.getItem(KEY) || '',
    who: readJSON(sessionStorage.getItem(WHO)),
    config: null,
    skew: 0, // server clock minus this browser's
    gen: 0, // bumped by every route change: stale answers are dropped
    timer: 0,
    charts: [],
    refreshes: 0,
  };

  function readJSON(s) {
    try { return JSON.parse(s); } catch (e) { return null; }
  }

  // ---- DOM ----------------------------------------------------------------

  const SVGNS = 'http://www.w3.org/2000/svg';

  // h makes an element: h('p', {class: 'x'}, 'text', child). A tag 'svg:x'
  // is made in the SVG namespace. Strings become text nodes.
  function h(tag, attrs, ...kids) {
    const svg = tag.startsWith('svg:');
    const el = svg ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids.flat(Infinity)) {
      if (k == null || k === false) continue;
      el.append(k instanceof Node ? k : String(k));
    }
    return el;
  }

  const $ = (sel, root) => (root || document).querySelector(sel);
  const view = () => $('#view');

  // mount replaces the page. The control that had the focus (a range or
  // window picker that changed the route) has it again in the new page.
  function mount(...kids) {
    S.charts = [];
    const focused = document.activeElement && document.activeElement.id;
    view().replaceChildren(...kids.flat(Infinity).filter((k) => k != null && k !== false));
    const again = focused && document.getElementById(focused);
    if (again && view().contains(again)) again.focus();
  }

  function message(text, isError) {
    const m = $('#msg');
    if (!text) { m.hidden = true; m.textContent = ''; return; }
    m.hidden = false;
    m.className = isError ? 'error' : '';
    m.textContent = text;
  }

  // ---- API ----------------------------------------------------------------

  class APIError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  async function api(path, method) {
    let res;
    try {
      res = await fetch(API + path, { method: method || 'GET', cache: 'no-store',
        headers: { 'x-apikey': S.key, accept: 'application/json' } });
    } catch (e) {
      throw new APIError(0, 'The server cannot be reached.');
    }
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) throw new APIError(res.status, (body && body.error) || res.statusText);
    return { body, next: res.headers.get('X-Next-Cursor') || '' };
  }

  const q = (o) => Object.entries(o).filter(([, v]) => v != null && v !== '')
    .map(([k, v]) => encodeURIComponent(k) + '=' + encodeURIComponent(v)).join('&');

  async function loadConfig() {
    if (!S.config) S.config = (await api('config')).body;
    setZone(S.config.timezone || 'UTC');
    return S.config;
  }

  const eventTypes = () => Object.keys(S.config.events || {}).sort();

  // meterList returns every meter: each event type (a meter of its own
  // name, over value), then the meters section in the file's order.
  function meterList() {
    const out = eventTypes().map((t) => Object.assign({ name: t, eventType: t }, S.config.events[t]));
    for (const [name, m] of Object.entries(S.config.meters || {})) out.push(Object.assign({ name }, m));
    for (const m of out) {
      m.gauge = m.op === 'integral' || m.op === 'twa';
      m.groupBy = m.groupBy || [];
      m.additive = ADDITIVE.includes(m.op);
    }
    return out;
  }

  // opText says what a meter's numbers are: "sum of values", "value held
  // × hours".
  function opText(m) {
    if (m.op === 'integral') return 'value held × ' + (m.unit || 'hour') + 's';
    return OPS[m.op] || m.op;
  }

  function groupName(g) {
    const vals = Object.entries(g || {});
    if (!vals.length) return '(all)';
    return vals.map(([k, v]) => (vals.length > 1 ? k + '=' : '') + (v === '' ? '(none)' : v)).join(', ');
  }

  // syncClock reads the server's clock, so that "now" and the current
  // period are the server's, not this browser's.
  async function syncClock() {
    const t0 = Date.now();
    const r = await fetch(API + 'ping', { cache: 'no-store' });
    const b = await r.json();
    const t1 = Date.now();
    S.skew = Date.parse(b.timestamp) - (t0 + t1) / 2;
  }
  const now = () => Date.now() + S.skew;

  // ---- Time in the configured zone --------------------------------------

  let zone = 'UTC';
  let partsFmt;
  const fmts = {};

  function setZone(tz) {
    if (tz === zone && partsFmt) return;
    zone = tz;
    partsFmt = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', weekday: 'short', year: 'numeric',
      month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    for (const k of Object.keys(fmts)) delete fmts[k];
  }

  const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

  // parts returns the wall-clock fields of an instant in the zone; wd is
  // 0 for Monday.
  function parts(ms) {
    const o = {};
    for (const p of partsFmt.formatToParts(new Date(ms))) o[p.type] = p.value;
    return { y: +o.year, mo: +o.month, d: +o.day, h: +o.hour % 24, mi: +o.minute, s: +o.second, wd: WEEKDAYS.indexOf(o.weekday) };
  }

  function offset(ms) {
    const p = parts(ms);
    const whole = Math.floor(ms / 1000) * 1000;
    return Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s) - whole;
  }

  // zoned returns the instant of a wall-clock time in the zone. Fields may
  // overflow (day 0, month 13) as with Date.UTC.
  function zoned(y, mo, d, hh) {
    const guess = Date.UTC(y, mo - 1, d, hh || 0);
    let t = guess - offset(guess);
    const o2 = offset(t);
    if (o2 !== guess - t) t = guess - o2;
    return t;
  }

  function startOf(unit, ms) {
    const p = parts(ms);
    switch (unit) {
      case 'minute': return Math.floor(ms / 60000) * 60000;
      case 'hour': return zoned(p.y, p.mo, p.d, p.h);
      case 'day': return zoned(p.y, p.mo, p.d);
      case 'week': return zoned(p.y, p.mo, p.d - p.wd);
      case 'month': return zoned(p.y, p.mo, 1);
      case 'year': return zoned(p.y, 1, 1);
    }
    throw new Error('unit ' + unit);
  }

  // add moves a period start by n periods.
  function add(unit, ms, n) {
    const p = parts(ms);
    switch (unit) {
      case 'minute': return ms + n * 60000;
      case 'hour': return ms + n * 3600000;
      case 'day': return zoned(p.y, p.mo, p.d + n, p.h);
      case 'week': return zoned(p.y, p.mo, p.d + 7 * n, p.h);
      case 'month': return zoned(p.y, p.mo + n, p.d, p.h);
      case 'year': return zoned(p.y + n, p.mo, p.d, p.h);
    }
    throw new Error('unit ' + unit);
  }

  const pad = (n) => String(n).padStart(2, '0');
  const monthKey = (ms) => { const p = parts(ms); return p.y + pad(p.mo); };

  function fmtTime(ms, kind) {
    if (!fmts[kind]) {
      const o = {
        time: { hour: '2-digit', minute: '2-digit' },
        clock: { hour: '2-digit', minute: '2-digit', second: '2-digit' },
        day: { day: 'numeric', month: 'short' },
        weekday: { weekday: 'short', day: 'numeric', month: 'short' },
        month: { month: 'short' },
        monthYear: { month: 'long', year: 'numeric' },
        shortMonthYear: { month: 'short', year: 'numeric' },
        year: { year: 'numeric' },
        full: { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' },
      }[kind];
      fmts[kind] = new Intl.DateTimeFormat(undefined, Object.assign({ timeZone: zone, hourCycle: 'h23' }, o));
    }
    return fmts[kind].format(new Date(ms));
  }

  // ---- Numbers --------------------------------------------------------------

  const numFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });
  const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
  const fmtNum = (v) => numFmt.format(v);

  function fmtDuration(s) {
    if (s < 1) return '0 s';
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.round((s % 86400) / 3600) + ' h';
  }

  // niceTicks returns round tick values spanning [lo, hi].
  function niceTicks(lo, hi, n) {
    if (hi === lo) hi = lo + 1;
    const raw = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    const step = (f >= 7.5 ? 10 : f >= 3.5 ? 5 : f >= 1.5 ? 2 : 1) * mag;
    const out = [];
    for (let v = Math.floor(lo / step) * step; v <= Math.ceil(hi / step) * step + step / 2; v += step) {
      out.push(Math.abs(v) < step / 1e6 ? 0 : v);
    }
    return out;
  }

  // ---- Charts ---------------------------------------------------------------

  // The calendar unit of the lines that mark period boundaries, for each
  // window: the next larger period.
  const BOUNDARY = { minute: 'hour', hour: 'day', day: 'month', week: 'month', month: 'year' };
  const TICKS = [
    ['minute', 10, 600e3], ['hour', 1, 3600e3], ['hour', 3, 3 * 3600e3], ['hour', 6, 6 * 3600e3], ['hour', 12, 12 * 3600e3],
    ['day', 1, 864e5], ['day', 2, 2 * 864e5], ['week', 1, 7 * 864e5], ['month', 1, 30 * 864e5], ['month', 3, 91 * 864e5],
    ['month', 6, 182 * 864e5], ['year', 1, 365 * 864e5],
  ];

  // calendar returns the starts of unit in (from, to), every step-th.
  function calendar(unit, step, from, to) {
    const out = [];
    let t = startOf(unit, from);
    if (t <= from) t = add(unit, t, 1);
    for (let i = 0; t < to && i < 5000; i++, t = add(unit, t, 1)) {
      const p = parts(t);
      const n = { minute: p.mi, hour: p.h, day: p.d - 1, week: 0, month: p.mo - 1, year: p.y }[unit];
      if (n % step === 0) out.push(t);
    }
    return out;
  }

  function tickLabel(unit, t) {
    const p = parts(t);
    switch (unit) {
      case 'minute': case 'hour': return p.h === 0 && p.mi === 0 ? fmtTime(t, 'day') : fmtTime(t, 'time');
      case 'day': case 'week': return p.d === 1 && p.mo === 1 ? fmtTime(t, 'shortMonthYear') : fmtTime(t, 'day');
      case 'month': return p.mo === 1 ? fmtTime(t, 'shortMonthYear') : fmtTime(t, 'month');
      default: return fmtTime(t, 'year');
    }
  }

  function boundLabel(unit, t) {
    switch (unit) {
      case 'hour': return fmtTime(t, 'time');
      case 'day': return fmtTime(t, 'weekday');
      case 'month': return fmtTime(t, 'shortMonthYear');
      default: return fmtTime(t, 'year');
    }
  }

  function windowLabel(win, start, end) {
    switch (win) {
      case 'minute': return fmtTime(start, 'time');
      case 'hour': return fmtTime(start, 'weekday') + ' ' + fmtTime(start, 'time') + '–' + fmtTime(end, 'time');
      case 'day': return fmtTime(start, 'weekday');
      case 'week': return 'week of ' + fmtTime(start, 'day');
      case 'month': return fmtTime(start, 'monthYear');
      default: return fmtTime(start, 'year');
    }
  }

  // chart draws spec into its element and keeps it, to draw again at
  // another width. spec: {el, points: [{key, start, end, value, count}],
  // from, to, window, bars, unit (the y axis), label (a point's value)}.
  function chart(spec) {
    S.charts.push(spec);
    draw(spec);
  }

  function draw(spec) {
    const { el, points, from, to } = spec;
    const W = Math.max(260, Math.round(el.clientWidth || 600));
    const H = W < 500 ? 190 : 230;
    const m = { l: 52, r: 10, t: 20, b: 26 };
    const pw = W - m.l - m.r;
    const ph = H - m.t - m.b;
    const x = (t) => m.l + ((t - from) / (to - from)) * pw;
    let lo = 0;
    let hi = 0;
    for (const p of points) { lo = Math.min(lo, p.value); hi = Math.max(hi, p.value); }
    // Lines per group: the axis spans every group's values too.
    if (spec.series) for (const sr of spec.series) for (const p of sr.points) { lo = Math.min(lo, p.value); hi = Math.max(hi, p.value); }
    const yt = niceTicks(lo, hi, H < 200 ? 3 : 4);
    const y0 = yt[0];
    const y1 = yt[yt.length - 1];
    const y = (v) => m.t + ph - ((v - y0) / (y1 - y0)) * ph;
    const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': spec.unit });

    const grid = h('svg:g', {});
    for (const v of yt) {
      grid.append(h('svg:line', { class: v === 0 ? 'axis' : 'gridline', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }),
        h('svg:text', { x: m.l - 6, y: y(v) + 3.5, 'text-anchor': 'end' }, compactFmt.format(v)));
    }
    svg.append(grid);
    svg.append(h('svg:text', { class: 'ytitle', transform: `translate(11 ${m.t + ph / 2}) rotate(-90)`, 'text-anchor': 'middle' }, spec.unit));

    // Ticks under the x axis: the finest calendar step that leaves room.
    const room = Math.max(2, Math.floor(pw / 55));
    let tick = TICKS[TICKS.length - 1];
    for (const t of TICKS) {
      if ((to - from) / t[2] <= room) { tick = t; break; }
    }
    for (const t of calendar(tick[0], tick[1], from - 1, to + 1)) {
      svg.append(h('svg:line', { class: 'axis', x1: x(t), x2: x(t), y1: m.t + ph, y2: m.t + ph + 4 }),
        h('svg:text', { x: x(t), y: H - 8, 'text-anchor': 'middle' }, tickLabel(tick[0], t)));
    }
    svg.append(h('svg:line', { class: 'axis', x1: m.l, x2: W - m.r, y1: m.t + ph, y2: m.t + ph }));

    // Period boundaries: a dashed line at each start of the next larger
    // period, labelled while they are few enough to read.
    const bu = BOUNDARY[spec.window];
    if (bu) {
      const bs = calendar(bu, 1, from, to);
      if (bs.length <= pw / 5) {
        const labelled = bs.length <= pw / 80;
        for (const t of bs) {
          svg.append(h('svg:line', { class: 'bound', x1: x(t), x2: x(t), y1: m.t - 4, y2: m.t + ph, 'data-boundary': new Date(t).toISOString() }));
          if (labelled) svg.append(h('svg:text', { class: 'boundlabel', x: x(t) + 3, y: m.t - 7 }, boundLabel(bu, t)));
        }
      }
    }

    const g = h('svg:g', { class: 'points' });
    const attrs = (p) => ({ class: 'pt', 'data-key': p.key, 'data-start': new Date(p.start).toISOString(),
      'data-value': p.value, 'data-count': p.count });
    const title = (p) => h('svg:title', {}, spec.label(p));
    if (spec.kind === 'bars' || spec.kind === 'stacked') {
      for (const p of points) {
        const x0 = x(p.start);
        const w = Math.max(1, x(p.end) - x0 - (x(p.end) - x0 > 4 ? 1 : 0));
        const top = y(Math.max(p.value, 0));
        const height = Math.max(p.value === 0 ? 0 : 1, Math.abs(y(p.value) - y(0)));
        if (spec.kind === 'stacked' && p.stack) {
          // Each group's share, stacked from the axis up in the legend's
          // order; the window's total is the hover target above them.
          let base = 0;
          for (const sg of p.stack) {
            if (!(sg.value > 0)) continue;
            g.append(h('svg:rect', { class: 'seg c' + sg.color, x: x0, y: y(base + sg.value), width: w,
              height: Math.max(0.5, y(base) - y(base + sg.value)), 'data-key': p.key, 'data-group': sg.name, 'data-value': sg.value }));
            base += sg.value;
          }
          g.append(h('svg:rect', Object.assign(attrs(p), { class: 'pt hit', x: x0, y: top, width: w, height }), title(p)));
        } else {
          g.append(h('svg:rect', Object.assign(attrs(p), { x: x0, y: top, width: w, height }), title(p)));
        }
      }
    } else {
      // A line through the windows' middles, broken where a window has no
      // events; or, for a gauge, the value held over each window (a step
      // line), broken where no value was held.
      const step = spec.kind === 'step';
      const path = (pts) => {
        let d = '';
        let prevEnd = null;
        for (const p of pts) {
          const join = prevEnd === p.start ? 'L' : 'M';
          if (step) d += join + x(p.start).toFixed(1) + ' ' + y(p.value).toFixed(1) + 'L' + x(p.end).toFixed(1) + ' ' + y(p.value).toFixed(1);
          else d += join + ((x(p.start) + x(p.end)) / 2).toFixed(1) + ' ' + y(p.value).toFixed(1);
          prevEnd = p.end;
        }
        return d;
      };
      for (const sr of spec.series || []) {
        const d = path(sr.points);
        if (d) svg.append(h('svg:path', { class: 'line thin c' + sr.color, d, 'data-group': sr.name }));
      }
      const r = points.length > 120 ? 1.6 : step ? 2.2 : 3;
      for (const p of points) {
        g.append(h('svg:circle', Object.assign(attrs(p), { cx: (x(p.start) + x(p.end)) / 2, cy: y(p.value), r }), title(p)));
      }
      const d = path(points);
      if (d) svg.append(h('svg:path', { class: 'line', d }));
    }
    svg.append(g);
    if (points.length === 0) {
      svg.append(h('svg:text', { class: 'empty', x: m.l + pw / 2, y: m.t + ph / 2, 'text-anchor': 'middle' }, 'No events in this range'));
    }
    const readout = spec.readout;
    svg.addEventListener('pointerover', (e) => pick(e, spec, readout));
    svg.addEventListener('click', (e) => pick(e, spec, readout));
    el.replaceChildren(svg);
  }

  function pick(e, spec, readout) {
    const t = e.target;
    if (!t.classList || !t.classList.contains('pt') || !readout) return;
    for (const s of spec.el.querySelectorAll('.pt.sel')) s.classList.remove('sel');
    t.classList.add('sel');
    const p = spec.points.find((p) => p.key === t.getAttribute('data-key'));
    if (p) readout.textContent = spec.label(p);
  }

  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { for (const s of S.charts) if (s.el.isConnected) draw(s); }, 150);
  });

  // ---- Live pages -------------------------------------------------------------

  // poll runs load now and every REFRESH until the route changes.
  async function poll(gen, load) {
    if (gen !== S.gen) return;
    if (document.visibilityState !== 'hidden') {
      try {
        await load();
        if (gen === S.gen) {
          S.refreshes++;
          document.body.dataset.refreshes = S.refreshes;
          const u = $('#updated');
          if (u) u.textContent = 'Updated ' + fmtTime(now(), 'clock') + ' · refreshes every ' + REFRESH / 1000 + ' s';
          message('');
        }
      } catch (e) {
        if (gen === S.gen) failed(e);
      }
    }
    if (gen === S.gen) S.timer = setTimeout(() => poll(gen, load), REFRESH);
  }

  function failed(e) {
    if (e.status === 401) {
      signOut('The key was refused: ' + e.message);
      return;
    }
    message(e.message || String(e), true);
  }

  // ---- Sign-in ------------------------------------------------------------------

  function signOut(why) {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(WHO);
    S.key = '';
    S.who = null;
    S.config = null;
    if (location.hash !== '#/signin') location.hash = '#/signin';
    else route();
    message(why || '', !!why);
  }

  // identify finds what the key may see: GET /stats answers a read or admin
  // key with its scope, and a key pinned to a customer with 404; GET /usage
  // without a customer then names that customer.
  async function identify() {
    try {
      const r = await api('stats');
      return { scope: r.body.scope };
    } catch (e) {
      if (e.status === 403) throw new APIError(403, 'This key may not read usage. Sign in with a read or admin key.');
      if (e.status !== 404) throw e;
    }
    await loadConfig();
    const types = eventTypes();
    if (!types.length) throw new Error('No event types are configured.');
    const r = await api('usage?' + q({ eventType: types[0], window: 'month' }));
    return { scope: 'read', customer: r.body.customerId };
  }

  function signInView() {
    document.body.dataset.view = 'signin';
    const input = h('input', { id: 'apikey', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
      placeholder: 'odo_…', 'aria-label': 'API key' });
    const button = h('button', { class: 'primary', type: 'submit', id: 'signin' }, 'Sign in');
    const form = h('form', { class: 'card signin', id: 'signin-form' },
      h('h1', {}, 'Sign in'),
      h('p', {}, 'Paste an API key with read or admin scope. A read key pinned to a customer shows that customer\u2019s usage only.'),
      input, button,
      h('p', {}, 'The key stays in this browser tab (session storage) and goes only to this server, in the x-apikey header.'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      button.disabled = true;
      S.key = input.value.trim();
      S.config = null;
      try {
        const who = await identify();
        sessionStorage.setItem(KEY, S.key);
        sessionStorage.setItem(WHO, JSON.stringify(who));
        S.who = who;
        message('');
        const target = sessionStorage.getItem('odometer.after');
        sessionStorage.removeItem('odometer.after');
        go(target || home());
      } catch (err) {
        S.key = '';
        message(err.status === 401 ? 'This key was refused.' : err.message, true);
        button.disabled = false;
      }
    });
    mount(form);
    input.focus();
  }

  // go shows the page of hash, even when it is the current one.
  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  const home = () => (S.who && S.who.customer ? '#/customer/' + encodeURIComponent(S.who.customer) : '#/overview');

  function header(page) {
    const who = S.who || {};
    $('#nav').hidden = !S.key;
    $('#who').hidden = !S.key;
    $('#who-label').textContent = who.customer ? 'Customer ' + who.customer : (who.scope === 'admin' ? 'Admin key' : 'Read key');
    for (const a of document.querySelectorAll('#nav a')) {
      const n = a.dataset.nav;
      a.classList.toggle('on', n === page);
      if (n === 'overview') a.hidden = !!who.customer;
      if (n === 'customers') a.hidden = !!who.customer;
      if (n === 'deliveries') a.hidden = who.scope !== 'admin';
      if (n === 'customer') a.href = who.customer ? '#/customer/' + encodeURIComponent(who.customer) : '#/customer';
    }
  }

  // ---- Router ---------------------------------------------------------------------

  function route() {
    clearTimeout(S.timer);
    const gen = ++S.gen;
    const hash = location.hash.replace(/^#\/?/, '');
    const [path, query] = hash.split('?');
    const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
    const args = new URLSearchParams(query || '');
    if (!S.key) {
      if (seg[0] && seg[0] !== 'signin') sessionStorage.setItem('odometer.after', location.hash);
      header('');
      return signInView();
    }
    if (!S.who) {
      identify().then((who) => {
        S.who = who;
        sessionStorage.setItem(WHO, JSON.stringify(who));
        if (gen === S.gen) route();
      }, (e) => { if (gen === S.gen) failed(e); });
      return;
    }
    if (!seg[0] || seg[0] === 'signin') {
      location.replace(home());
      return;
    }
    header(seg[0]);
    document.body.dataset.view = seg[0];
    delete document.body.dataset.ready;
    const pages = { overview: overviewPage, customers: directoryPage, customer: customerEntry, deliveries: deliveriesPage, config: configPage };
    const page = pages[seg[0]];
    if (!page) return notFound('There is no page “' + seg[0] + '”.');
    loadConfig().then(() => {
      if (gen === S.gen) page(gen, seg.slice(1), args);
    }, (e) => { if (gen === S.gen) failed(e); });
  }

  function notFound(text) {
    mount(h('div', { class: 'card notfound', id: 'not-found' }, h('h1', {}, 'Not found'), h('p', {}, text),
      h('p', {}, h('a', { href: home() }, 'Back'))));
  }

  function ready(id) {
    document.body.dataset.ready = id;
    if (performance.mark) performance.mark('odometer:' + id);
  }

  // ---- Shared pieces ----------------------------------------------------------

  // scrollBox wraps a wide table in a box that scrolls on its own and that
  // a keyboard can reach and scroll.
  const scrollBox = (label, table) => h('div', { class: 'table-card scroll', tabindex: 0, role: 'region', 'aria-label': label }, table);

  // controlsFor returns the range and window pickers; each change goes
  // through setArg (the route), and the picker keeps the focus.
  function rangeControls(prefix, range, win, setArg) {
    const rangeSel = h('select', { id: prefix + 'range', onchange: (e) => setArg('range', e.target.value) },
      Object.entries(RANGES).map(([k, v]) => h('option', { value: k, selected: k === range }, v[0])));
    const winSel = h('select', { id: prefix + 'window', onchange: (e) => setArg('window', e.target.value) },
      WINDOWS.map((w) => h('option', { value: w, selected: w === win }, 'per ' + w)));
    return [h('label', {}, 'Range', rangeSel), h('label', {}, 'Window', winSel)];
  }

  function rangeStartOf(range, win) {
    const [, n, unit] = RANGES[range];
    return startOf(win, add(unit, startOf(unit, now()), 1 - n));
  }

  // dataTable is a chart's numbers as a table, behind a disclosure: what
  // the chart shows, reachable by keyboard and by a screen reader.
  function dataTable(m, win, points, groups) {
    const head = [h('th', {}, 'Window'), h('th', { class: 'num' }, opText(m)), h('th', { class: 'num' }, 'Events')]
      .concat((groups || []).map((g) => h('th', { class: 'num' }, g.name)));
    const rows = points.length ? points.map((p) => h('tr', { 'data-key': p.key, 'data-value': p.value },
      h('td', {}, windowLabel(win, p.start, p.end)), h('td', { class: 'num' }, fmtNum(p.value)), h('td', { class: 'num' }, fmtNum(p.count)),
      (groups || []).map((g) => {
        const v = (p.byGroup || {})[g.name];
        return h('td', { class: 'num' }, v == null ? '—' : fmtNum(v));
      }))) : [h('tr', {}, h('td', { colspan: 3 + (groups || []).length, class: 'meta' }, 'No values in this range.'))];
    return h('details', { class: 'datatable' }, h('summary', {}, 'Numbers as a table'),
      scrollBox('Numbers of ' + m.name, h('table', { class: 'data' }, h('thead', {}, h('tr', {}, head)), h('tbody', {}, rows))));
  }

  // stackOf picks the groups a chart shows one by one: the largest over
  // the range, six at most; the rest are one "other".
  function stackOf(points) {
    const totals = new Map();
    for (const p of points) {
      for (const gv of p.groups || []) {
        const n = groupName(gv.group);
        totals.set(n, (totals.get(n) || 0) + Math.abs(gv.value));
      }
    }
    const names = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map((e) => e[0]);
    const shown = names.slice(0, 6).map((name, i) => ({ name, color: i }));
    if (names.length > 6) shown.push({ name: 'other', color: 6, other: true });
    for (const p of points) {
      p.byGroup = {};
      for (const gv of p.groups || []) {
        const n = groupName(gv.group);
        const key = shown.some((s) => s.name === n && !s.other) ? n : 'other';
        p.byGroup[key] = (p.byGroup[key] || 0) + gv.value;
      }
      p.stack = shown.map((s) => ({ name: s.name, color: s.color, value: p.byGroup[s.name] || 0 }));
    }
    return shown;
  }

  function legend(groups) {
    return h('ul', { class: 'legend' }, groups.map((g) => h('li', {}, h('span', { class: 'swatch c' + g.color, 'aria-hidden': 'true' }), g.name)));
  }

  // drawMeter draws one meter's points into its figure: bars for sums and
  // counts (stacked by group for a grouped one), a step line for a gauge,
  // a line for the other ops (with a thin line per group).
  function drawMeter(c, win, points, from, to) {
    const m = c.meter;
    let groups = [];
    const spec = { el: c.plot, readout: c.readout, points, from, to, window: win, unit: (m.op === 'count' ? 'events' : m.op) + ' of ' + m.name,
      label: (p) => windowLabel(win, p.start, p.end) + ': ' + fmtNum(p.value) + ' (' + opText(m) + ' of ' + fmtNum(p.count) + ' events)' +
        (p.byGroup ? '; ' + Object.entries(p.byGroup).map(([n, v]) => n + ' ' + fmtNum(v)).join(', ') : '') };
    const grouped = m.groupBy.length && points.some((p) => p.groups && p.groups.length);
    if (m.gauge) spec.kind = 'step';
    else if (m.op === 'sum' || m.op === 'count') spec.kind = grouped ? 'stacked' : 'bars';
    else spec.kind = 'line';
    // Groups as the answer has them: none in the totals across customers.
    if (grouped) {
      groups = stackOf(points);
      if (spec.kind !== 'stacked') {
        spec.series = groups.filter((g) => !g.other).map((g) => ({ name: g.name, color: g.color,
          points: points.filter((p) => p.byGroup[g.name] != null).map((p) => ({ start: p.start, end: p.end, value: p.byGroup[g.name] })) }));
        groups = groups.filter((g) => !g.other);
      }
    }
    S.charts = S.charts.filter((s) => s.el !== c.plot);
    chart(spec);
    c.legend.replaceChildren(...(groups.length ? [legend(groups)] : []));
    c.table.replaceChildren(dataTable(m, win, points, groups));
  }

  // allAggregations reads every page of GET /aggregations for params.
  async function allAggregations(params) {
    let out = [];
    let cursor = '';
    for (let i = 0; i < 50; i++) {
      const r = await api('aggregations?' + q(Object.assign({}, params, { limit: 1000, cursor })));
      out = out.concat(r.body);
      cursor = r.next;
      if (!cursor) break;
    }
    return out.sort((a, b) => Date.parse(a.periodStart) - Date.parse(b.periodStart));
  }

  // gaugePoints are a gauge's windows from its aggregations.
  function gaugePoints(aggs, name) {
    return aggs.filter((a) => name in a.events).map((a) => ({ key: a.periodKey, start: Date.parse(a.periodStart),
      end: Date.parse(a.periodEnd) + 1, value: a.events[name], count: a.eventCounts[name] || 0, groups: (a.groups || {})[name] }));
  }

  // gaugeOver is a gauge's value over [from, to) from windows that tile
  // it: an integral adds up; a time-weighted average is the mean over the
  // span, a window without an aggregation holding nothing.
  function gaugeOver(m, points, from, to) {
    const inside = points.filter((p) => p.start >= from && p.start < to);
    if (!inside.length) return null;
    const count = inside.reduce((a, p) => a + p.count, 0);
    if (m.op === 'integral') return { value: inside.reduce((a, p) => a + p.value, 0), count };
    const span = Math.max(1, to - from);
    return { value: inside.reduce((a, p) => a + p.value * (Math.min(p.end, to) - p.start), 0) / span, count };
  }

  // ---- Customer directory -------------------------------------------------------

  // directoryTrail holds the cursors of the directory's pages before the
  // one shown ('' for the first), for Previous. A new search, sort or
  // order starts it afresh.
  const directoryTrail = [];

  // directoryPage is #/customers: every customer, by id, or by a meter's
  // usage in each customer's current cycle (GET /customers?sort=usage),
  // searched by a prefix of the id or name, a page at a time.
  function directoryPage(gen, seg, args) {
    if (S.who && S.who.customer) return notFound('The customer directory lists every customer; this key sees one customer only.');
    const meters = meterList();
    const periods = S.config.periods || [];
    // The cycle's usage comes from the billing period's aggregations, or
    // the month's.
    const cycle = periods.includes('billing') ? 'billing' : (periods.includes('monthly') ? 'monthly' : '');
    let meter = cycle ? meters.find((m) => m.name === args.get('meter')) : null;
    if (cycle && !meter && args.get('sort') !== 'id') meter = meters[0] || null;
    const order = args.get('order') === 'asc' ? 'asc' : 'desc';
    const text = (args.get('q') || '').trim();
    const cursor = args.get('cursor') || '';
    // The first page has no page before it, however it was reached (the
    // nav's link, or back to it).
    if (!cursor) directoryTrail.length = 0;
    const limit = Math.min(1000, Math.max(1, Math.floor(Number(args.get('limit'))) || 50));
    const setArgs = (changes) => {
      const a = new URLSearchParams(args);
      for (const [k, v] of Object.entries(changes)) {
        if (v) a.set(k, v); else a.delete(k);
      }
      location.hash = '#/customers?' + a.toString();
    };
    const restart = (changes) => {
      directoryTrail.length = 0;
      setArgs(Object.assign({ cursor: '' }, changes));
    };
    const search = h('input', { id: 'dir-q', type: 'search', value: text, autocomplete: 'off', spellcheck: 'false',
      placeholder: 'Id or name, e.g. cust_1' });
    const form = h('form', { class: 'inline', role: 'search', id: 'dir-search' },
      h('label', { for: 'dir-q', class: 'vh' }, 'Search customers by the start of their id or name'), search,
      h('button', { type: 'submit', class: 'primary' }, 'Search'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      restart({ q: search.value.trim() });
    });
    const sortSel = h('select', { id: 'dir-sort', onchange: (e) => restart(e.target.value === 'id' ? { sort: 'id', meter: '' } : { sort: 'usage', meter: e.target.value }) },
      h('option', { value: 'id', selected: !meter }, 'Customer id'),
      cycle ? meters.map((m) => h('option', { value: m.name, selected: meter && m.name === meter.name }, m.name + ' this cycle')) : null);
    const orderSel = h('select', { id: 'dir-order', onchange: (e) => restart({ order: e.target.value }) },
      h('option', { value: 'desc', selected: order === 'desc' }, 'Highest first'),
      h('option', { value: 'asc', selected: order === 'asc' }, 'Lowest first'));
    const prev = h('button', { type: 'button', id: 'dir-prev', 'aria-disabled': directoryTrail.length || cursor ? null : 'true' }, 'Previous page');
    const next = h('button', { type: 'button', id: 'dir-next', 'aria-disabled': 'true' }, 'Next page');
    const pageNo = h('span', { class: 'meta', id: 'dir-page' }, 'Page ' + (cursor ? directoryTrail.length + 1 : 1));
    const note = h('p', { class: 'meta', id: 'dir-note' });
    const body = h('tbody', {});
    const head = [h('th', {}, 'Customer'), h('th', {}, 'Name')];
    if (meter) head.push(h('th', { class: 'num' }, meter.name + ', this cycle'), h('th', { class: 'num' }, 'Events'), h('th', {}, 'Cycle'));
    mount(
      h('h1', {}, 'Customers'),
      note,
      h('div', { class: 'controls' }, form, h('label', {}, 'Sort by', sortSel), meter ? h('label', {}, 'Order', orderSel) : null),
      scrollBox('Customers', h('table', { id: 'directory', 'data-sort': meter ? 'usage' : 'id', 'data-meter': meter ? meter.name : null, 'data-order': meter ? order : null },
        h('thead', {}, h('tr', {}, head)), body)),
      h('div', { class: 'actions' }, prev, pageNo, next));

    prev.addEventListener('click', () => {
      if (prev.getAttribute('aria-disabled') === 'true') return;
      setArgs({ cursor: directoryTrail.length ? directoryTrail.pop() : '' });
    });
    const params = meter ? { sort: 'usage', meter: meter.name, order, q: text, limit, cursor } : { q: text, limit, cursor };
    return api('customers?' + q(params)).then((r) => {
      if (gen !== S.gen) return;
      const list = r.body || [];
      body.replaceChildren(...list.map((c) => directoryRow(c, meter)));
      if (!list.length) {
        const why = text ? ['No customer matches \u201c' + text + '\u201d: no usage recorded for such a customer. ',
          h('a', { href: '#/customer/' + encodeURIComponent(text) }, 'Open \u201c' + text + '\u201d anyway')]
          : (meter ? 'No customer has usage recorded in this cycle yet.' : 'No usage recorded for any customer yet.');
        body.append(h('tr', {}, h('td', { colspan: head.length, class: 'meta', id: 'dir-empty' }, why)));
      }
      if (r.next) {
        next.removeAttribute('aria-disabled');
        next.addEventListener('click', () => {
          directoryTrail.push(cursor);
          setArgs({ cursor: r.next });
        });
      }
      const what = meter ? meter.name + ' (' + opText(meter) + ') in each customer\u2019s ' +
        (cycle === 'billing' ? 'current billing cycle' : 'current calendar month (' + zone + ')') : '';
      const asOf = list.length && list[0].usage ? ', as of the last aggregation run (read ' + fmtTime(Date.parse(list[0].usage.computedAt), 'clock') + ')' : '';
      note.textContent = meter ? 'Customers with usage this cycle, by ' + what + asOf + '. Sorted by id, the directory lists every customer.'
        : 'Every customer, by id: those with a profile and those seen through their events.' +
          (cycle ? '' : ' Sorting by usage needs the billing or monthly period in the configuration.');
      ready('customers');
    }, (e) => { if (gen === S.gen) failed(e); });
  }

  function directoryRow(c, meter) {
    const u = c.usage;
    const cells = [h('td', {}, h('a', { href: '#/customer/' + encodeURIComponent(c.id) }, c.id)), h('td', {}, c.name || '')];
    if (meter && u) {
      cells.push(h('td', { class: 'num value' }, fmtNum(u.value)), h('td', { class: 'num count' }, fmtNum(u.count)),
        h('td', { class: 'when' }, daysText(u.periodStart, u.periodEnd, u.timezone || zone)));
    }
    return h('tr', { 'data-customer': c.id, 'data-value': u ? u.value : null, 'data-count': u ? u.count : null }, cells);
  }

  // customerEntry opens a customer's page, or says plainly that no usage
  // is recorded for an id the server does not know (GET /customers/{id}
  // answers 404: neither a profile nor an event). A pinned key's page
  // opens as it is: to it, 404 means another customer, "Not found".
  function customerEntry(gen, seg, args) {
    if (!seg[0] || (S.who && S.who.customer)) return customerPage(gen, seg, args);
    return api('customers/' + encodeURIComponent(seg[0])).then(() => {
      if (gen === S.gen) customerPage(gen, seg, args);
    }, (e) => {
      if (gen !== S.gen) return;
      if (e.status === 404) unknownCustomer(seg[0]);
      else customerPage(gen, seg, args);
    });
  }

  function unknownCustomer(id) {
    mount(h('h1', { 'data-customer': id }, 'Customer ', h('code', {}, id)),
      h('div', { class: 'card', id: 'no-usage' },
        h('h2', {}, 'No usage recorded'),
        h('p', {}, 'No event has been received for the customer id \u201c', h('code', {}, id), '\u201d, and it has no profile. ' +
          'Ids are compared exactly, capitals and spaces included. Once an event for it arrives, its usage shows here.'),
        h('p', {}, h('a', { href: '#/customers?' + q({ q: id }) }, 'Search the customers for ids starting with \u201c' + id + '\u201d'))),
      h('h2', {}, 'Open another customer'), customerLookup());
    ready('customer-unknown');
  }

  // ---- Overview -----------------------------------------------------------------

  function overviewPage(gen, seg, args) {
    if (S.who && S.who.customer) return notFound('The overview covers every customer; this key sees one customer only.');
    const meters = meterList();
    const meterName = meters.some((m) => m.name === args.get('meter')) ? args.get('meter') : (meters[0] || {}).name;
    const meter = meters.find((m) => m.name === meterName);
    const range = RANGES[args.get('range')] ? args.get('range') : '30d';
    const win = WINDOWS.includes(args.get('window')) ? args.get('window') : 'day';
    const setArg = (k, v) => {
      const a = new URLSearchParams(args);
      a.set(k, v);
      location.hash = '#/overview?' + a.toString();
    };
    const tiles = h('div', { class: 'tiles' });
    const epm = h('div', { class: 'plot', id: 'epm' });
    const readout = h('p', { class: 'readout', 'aria-live': 'polite' });
    const top = h('div', { class: 'grid', id: 'top' });
    const topTitle = h('h2', {}, 'Top customers this month');
    const meterSel = h('select', { id: 'ov-meter', onchange: (e) => setArg('meter', e.target.value) },
      meters.map((m) => h('option', { value: m.name, selected: m.name === meterName }, m.name)));
    const totals = meter && {
      meter, plot: h('div', { class: 'plot' }), readout: h('p', { class: 'readout', 'aria-live': 'polite' }), legend: h('div', {}), table: h('div', {}),
    };
    const totalsNote = h('p', { class: 'meta', id: 'totals-note' });
    const topRange = h('tbody', {});
    const topRangeHead = h('caption', {}, 'Top customers');
    mount(
      h('h1', {}, 'Overview'), h('p', { class: 'meta', id: 'updated' }, 'Loading…'),
      tiles,
      meter ? [
        h('h2', {}, 'Usage across customers'),
        h('div', { class: 'controls' }, h('label', {}, 'Meter', meterSel), rangeControls('ov-', range, win, setArg),
          h('span', { class: 'meta' }, 'Times in ' + zone)),
        h('div', { class: 'split' },
          totals.fig = h('figure', { class: 'chart card', id: 'totals', 'data-meter': meter.name },
            h('figcaption', {}, h('b', {}, meter.name), h('span', {}, opText(meter) + ' over every customer, per ' + win),
              meter.description ? h('span', { class: 'desc' }, meter.description) : null),
            totals.plot, totals.readout, totals.legend, totals.table, totalsNote),
          h('div', { class: 'card' }, h('table', { id: 'top-range', class: 'compact' }, topRangeHead,
            h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Customer'), h('th', { class: 'num' }, 'Value'))), topRange))),
      ] : null,
      h('h2', {}, 'Events stored per minute'),
      h('figure', { class: 'chart card' },
        h('figcaption', {}, h('b', {}, 'Events per minute'), h('span', {}, 'last 60 minutes, counted by the server that answers')),
        epm, readout),
      topTitle, h('p', { class: 'meta' }, 'Ranked by the value of each event type\u2019s op in the current monthly period, as of the last aggregation run.'),
      top,
      h('h2', {}, 'Open a customer'), customerLookup());
    return poll(gen, async () => {
      // The range is the server's: read its clock first. The totals read
      // many aggregations: the rest of the page does not wait for them.
      const [r] = await Promise.all([api('stats'), syncClock()]);
      const from = meter ? rangeStartOf(range, win) : 0;
      const totals = meter ? api('stats/usage?' + q({ meter: meter.name, window: win, from: new Date(from).toISOString() })).catch((e) => e) : null;
      if (gen !== S.gen) return;
      const st = r.body;
      setZone(st.timezone);
      const minutes = st.eventsPerMinute.map((m) => ({ key: m.minute, start: Date.parse(m.minute), end: Date.parse(m.minute) + 60000, value: m.count, count: m.count }));
      const total = minutes.reduce((a, m) => a + m.value, 0);
      const d = st.deliveries || {};
      const admin = S.who && S.who.scope === 'admin';
      const monthName = fmtTime(Date.parse(st.month.periodStart), 'monthYear');
      tiles.replaceChildren(
        tile('tile-events', 'Events stored, last hour', fmtNum(total), 'by this server since it started'),
        tile('tile-lag', 'Aggregation lag', fmtDuration(st.lagSeconds), fmtNum(st.backlog) + ' events waiting', st.lagSeconds > 900),
        tile('tile-deliveries', 'Failing webhook deliveries', fmtNum(d.failed || 0),
          [fmtNum(d.pending || 0) + ' pending · ' + fmtNum(d.delivered || 0) + ' delivered', admin ? [' · ', h('a', { href: '#/deliveries' }, 'see all')] : null],
          (d.failed || 0) > 0),
        tile('tile-customers', 'Customers this month', fmtNum(st.customers), monthName));
      S.charts = S.charts.filter((c) => c.el !== epm);
      chart({ el: epm, readout, points: minutes, from: minutes[0].start, to: minutes[minutes.length - 1].end, window: 'minute', kind: 'bars',
        unit: 'events per minute', label: (p) => fmtTime(p.start, 'time') + ': ' + fmtNum(p.value) + ' events' });
      topTitle.textContent = 'Top customers in ' + monthName;
      const cards = eventTypes().map((t) => topCard(t, st.topCustomers[t] || []));
      if (st.note) cards.unshift(h('p', { class: 'meta' }, 'No ranking: ' + st.note + '.'));
      top.replaceChildren(...cards);
      ready('overview');
      if (meter) {
        const tot = await totals;
        if (gen !== S.gen) return;
        showTotals(tot);
      }
      ready('overview-totals');
    });

    function showTotals(tot) {
      if (tot instanceof Error) {
        totalsNote.textContent = 'No totals: ' + tot.message;
        S.charts = S.charts.filter((s) => s.el !== totals.plot);
        totals.plot.replaceChildren();
        topRange.replaceChildren();
        return;
      }
      const u = tot.body;
      const points = u.usage.map((p) => ({ key: p.key, start: Date.parse(p.start), end: Date.parse(p.end) + 1, value: p.value, count: p.count, groups: p.groups }));
      totals.fig.dataset.from = u.from;
      totals.fig.dataset.to = u.to;
      totals.fig.dataset.window = u.window;
      drawMeter(totals, win, points, Date.parse(u.from), Date.parse(u.to));
      totalsNote.textContent = fmtNum(u.customers) + ' customers with usage in the range. From the aggregations, as of the last aggregation run (' +
        fmtTime(Date.parse(u.computedAt), 'clock') + '); the current ' + win + ' is in progress.';
      topRangeHead.textContent = 'Top customers, ' + RANGES[range][0].toLowerCase();
      topRange.replaceChildren(...(u.topCustomers.length ? u.topCustomers.map((c, i) => h('tr', { 'data-customer': c.customerId, 'data-value': c.value },
        h('td', { class: 'meta' }, i + 1), h('td', {}, h('a', { href: '#/customer/' + encodeURIComponent(c.customerId) }, c.customerId)),
        h('td', { class: 'num', title: fmtNum(c.count) + ' events' }, fmtNum(c.value)))) : [h('tr', {}, h('td', { colspan: 3, class: 'meta' }, 'No usage in this range.'))]));
    }
  }

  function tile(id, label, value, sub, bad) {
    return h('div', { class: 'card tile' + (bad ? ' bad' : ''), id },
      h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), h('div', { class: 'sub' }, sub));
  }

  function topCard(type, rows) {
    const op = S.config.events[type].op;
    const maxv = rows.reduce((a, r) => Math.max(a, Math.abs(r.value)), 0) || 1;
    const list = h('ol', { class: 'ranking' }, rows.map((r, i) => {
      const bar = h('i', {});
      bar.style.width = Math.max(1, (Math.abs(r.value) / maxv) * 100).toFixed(1) + '%';
      return h('li', { 'data-customer': r.customerId, 'data-value': r.value },
        h('span', { class: 'rank' }, i + 1), h('a', { href: '#/customer/' + encodeURIComponent(r.customerId), title: r.customerId }, r.customerId),
        h('span', { class: 'num' }, fmtNum(r.value)), h('span', { class: 'bar', 'aria-hidden': 'true' }, bar));
    }));
    return h('div', { class: 'card', 'data-event-type': type },
      h('h3', {}, type, ' ', h('span', { class: 'pill' }, op)),
      rows.length ? list : h('p', { class: 'meta' }, 'No usage this month yet.'));
  }

  function customerLookup() {
    const input = h('input', { id: 'customer-id', placeholder: 'Customer id, e.g. cust_123', required: true, autocomplete: 'off', 'aria-label': 'Customer id' });
    const form = h('form', { class: 'inline' }, input, h('button', { type: 'submit', class: 'primary' }, 'Open'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (input.value.trim()) location.hash = '#/customer/' + encodeURIComponent(input.value.trim());
    });
    return form;
  }

  // ---- Customer -----------------------------------------------------------------

  function customerPage(gen, seg, args) {
    const id = seg[0];
    if (!id) {
      mount(h('h1', {}, 'Customer'), h('p', { class: 'meta' }, 'Open a customer by id, or pick one from the overview\u2019s top customers.'), customerLookup());
      return;
    }
    // A key pinned to a customer sees what its customer sees: the portal
    // view of its usage, not the operator's page. Another customer is the
    // API's to refuse (404).
    if (S.who && S.who.customer) {
      if (id === S.who.customer) return toPortal();
      api('customers/' + encodeURIComponent(id)).then(() => { if (gen === S.gen) toPortal(); }, (e) => {
        if (gen !== S.gen) return;
        if (e.status !== 404) return failed(e);
        notFound('There is no customer \u201c' + id + '\u201d for this key.');
        ready('not-found');
      });
      return;
    }
    const range = RANGES[args.get('range')] ? args.get('range') : '30d';
    const win = WINDOWS.includes(args.get('window')) ? args.get('window') : 'day';
    const meters = meterList();
    const periods = S.config.periods || [];
    const setArg = (k, v) => {
      const a = new URLSearchParams(args);
      a.set(k, v);
      location.hash = '#/customer/' + encodeURIComponent(id) + '?' + a.toString();
    };
    const curHead = h('th', { class: 'num' }, 'This month');
    const sameHead = h('th', { class: 'num' }, 'Last month, same point');
    const prevHead = h('th', { class: 'num wide' }, 'Last month');
    const compareNote = h('p', { class: 'meta', id: 'compare-note' });
    const currentBody = h('tbody', {});
    const charts = meters.map((m) => {
      const c = { meter: m, plot: h('div', { class: 'plot' }), readout: h('p', { class: 'readout', 'aria-live': 'polite' }), legend: h('div', {}),
        table: h('div', {}), groups: h('div', {}) };
      c.fig = h('figure', { class: 'chart card', id: 'chart-' + m.name, 'data-meter': m.name, 'data-event-type': m.name === m.eventType && S.config.events[m.name] ? m.name : null },
        h('figcaption', {}, h('b', {}, m.name), h('span', {}, opText(m) + ' per ' + win + (m.gauge ? ', held values' : '')),
          m.groupBy.length ? h('span', {}, 'by ' + m.groupBy.join(', ')) : null,
          m.description ? h('span', { class: 'desc' }, m.description) : null),
        c.plot, c.readout, c.legend, c.groups, c.table);
      return c;
    });
    const aggs = aggregationsSection(gen, id);
    const cycle = cycleSection(gen, id, meters);
    const alerts = alertsSection(gen, id);
    mount(
      h('h1', { 'data-customer': id }, 'Customer ', h('code', {}, id)),
      h('p', { class: 'meta', id: 'updated' }, 'Loading…'),
      h('h2', {}, 'This month so far, against last month at the same point'),
      compareNote,
      scrollBox('This month against last month', h('table', { id: 'current' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Meter'), curHead, sameHead, h('th', { class: 'num' }, 'Change'), prevHead)),
        currentBody)),
      cycle.section,
      alerts.section,
      h('h2', {}, 'Usage over time'),
      h('div', { class: 'controls' }, rangeControls('', range, win, setArg), h('span', { class: 'meta' }, 'Times in ' + zone)),
      h('div', { class: 'charts' }, charts.map((c) => c.fig)),
      aggs.section);

    return poll(gen, async () => {
      try {
        await show();
      } catch (e) {
        if (e.status !== 404) throw e;
        // A key pinned to another customer: the API answers as if this
        // one did not exist.
        S.gen++;
        notFound('There is no customer “' + id + '” for this key.');
        document.body.dataset.ready = 'not-found';
      }
    });

    async function show() {
      await syncClock();
      const t = now();
      const cur = startOf('month', t);
      const prev = add('month', cur, -1);
      // The same point of last month: the same day and time of day, or
      // the month's end if it is shorter.
      const p = parts(t);
      const same = Math.min(zoned(p.y, p.mo - 1, p.d, p.h) + (t - startOf('hour', t)), cur);
      const from = rangeStartOf(range, win);
      const iso = (ms) => new Date(ms).toISOString();
      const plain = meters.filter((m) => !m.gauge);
      const gauges = meters.filter((m) => m.gauge);
      const gaugePeriod = PERIOD_OF[win];
      const fine = ['hourly', 'daily'].find((x) => periods.includes(x));
      const groupBy = (m) => (m.groupBy.length ? m.groupBy.join(',') : null);
      const [months, sames, series, gaugeSeries, gaugeFine] = await Promise.all([
        Promise.all(plain.map((m) => api('usage?' + q({ customerId: id, meter: m.name, window: 'month', from: iso(prev), groupBy: groupBy(m) })))),
        Promise.all(plain.map((m) => api('usage?' + q({ customerId: id, meter: m.name, window: 'month', from: iso(prev), to: iso(same) })))),
        Promise.all(plain.map((m) => api('usage?' + q({ customerId: id, meter: m.name, window: win, from: iso(from), groupBy: groupBy(m) })))),
        gauges.length && periods.includes(gaugePeriod) ? allAggregations({ customerId: id, period: gaugePeriod, from: iso(from) }) : null,
        gauges.length && fine ? allAggregations({ customerId: id, period: fine, from: iso(prev) }) : null,
        aggs.refresh(),
        cycle.refresh(),
        alerts.refresh(),
      ]);
      if (gen !== S.gen) return;
      const dayRange = (a, b) => {
        const last = parts(b - 1);
        return parts(a).d === last.d ? fmtTime(a, 'day') : fmtTime(a, 'day') + '–' + last.d;
      };
      curHead.replaceChildren(dayRange(cur, t), ' ', h('span', { class: 'progress' }, '(in progress)'));
      sameHead.textContent = dayRange(prev, same);
      prevHead.textContent = fmtTime(prev, 'shortMonthYear') + ', whole month';
      compareNote.textContent = 'The open month, to ' + fmtTime(t, 'clock') + ', against last month to the same day and time (' +
        fmtTime(same, 'full') + '), at 15-minute resolution' + (gauges.length ? '; gauges at the resolution of their ' + (fine || 'hourly') + ' aggregations.' : '.');
      const rows = [];
      plain.forEach((m, i) => {
        const pts = months[i].body.usage;
        const c = pts.find((x) => x.key === monthKey(cur));
        const pv = pts.find((x) => x.key === monthKey(prev));
        const sp = sames[i].body.usage.find((x) => x.key === monthKey(prev));
        rows.push(meterRow(m, c, sp, pv));
      });
      const finePts = {};
      for (const m of gauges) {
        finePts[m.name] = gaugeFine ? gaugePoints(gaugeFine, m.name) : [];
        const fp = finePts[m.name];
        rows.push(meterRow(m, gaugeOver(m, fp, cur, t), gaugeOver(m, fp, prev, same), gaugeOver(m, fp, prev, cur)));
      }
      // In the order of the charts: the event types, then the meters.
      const order = meters.map((m) => m.name);
      rows.sort((a, b) => order.indexOf(a.dataset.meter) - order.indexOf(b.dataset.meter));
      currentBody.replaceChildren(...rows);

      for (const c of charts) {
        const m = c.meter;
        let points;
        let u;
        if (m.gauge) {
          if (!gaugeSeries) {
            c.plot.replaceChildren(h('p', { class: 'meta' }, 'A gauge is drawn from its aggregations: the ' + gaugePeriod + ' period is not configured.'));
            continue;
          }
          points = gaugePoints(gaugeSeries, m.name);
          const to = add(win, startOf(win, t), 1);
          u = { from: iso(from), to: iso(to), window: win };
        } else {
          u = series[plain.indexOf(m)].body;
          points = u.usage.map((x) => ({ key: x.key, start: Date.parse(x.start), end: Date.parse(x.end) + 1, value: x.value, count: x.count, groups: x.groups }));
        }
        c.fig.dataset.from = u.from;
        c.fig.dataset.to = u.to;
        c.fig.dataset.window = u.window;
        drawMeter(c, win, points, Date.parse(u.from), Date.parse(u.to));
        if (m.groupBy.length) {
          const month = m.gauge ? gaugeMonthGroups(gaugeSeries, m, cur) : (months[plain.indexOf(m)].body.usage.find((x) => x.key === monthKey(cur)) || {}).groups;
          const last = m.gauge ? null : (months[plain.indexOf(m)].body.usage.find((x) => x.key === monthKey(prev)) || {}).groups;
          c.groups.replaceChildren(groupsTable(m, month || [], last, fmtTime(cur, 'shortMonthYear'), fmtTime(prev, 'shortMonthYear')));
        }
      }
      ready('customer');
    }
  }

  // gaugeMonthGroups sums a grouped integral's groups over the windows of
  // the current month in view; a time-weighted average's groups are not
  // added up.
  function gaugeMonthGroups(aggs, m, cur) {
    if (!aggs || m.op !== 'integral') return null;
    const by = new Map();
    for (const a of aggs) {
      if (Date.parse(a.periodStart) < cur) continue;
      for (const gv of (a.groups || {})[m.name] || []) {
        const k = JSON.stringify(gv.group);
        const e = by.get(k) || { group: gv.group, value: 0, count: 0 };
        e.value += gv.value;
        e.count += gv.count;
        by.set(k, e);
      }
    }
    return [...by.values()];
  }

  function groupsTable(m, cur, prev, curName, prevName) {
    const prevBy = new Map((prev || []).map((g) => [JSON.stringify(g.group), g]));
    const total = cur.reduce((a, g) => a + g.value, 0);
    const rows = cur.slice().sort((a, b) => b.value - a.value).map((g) => {
      const p = prevBy.get(JSON.stringify(g.group));
      return h('tr', { 'data-group': groupName(g.group), 'data-value': g.value, 'data-count': g.count },
        h('td', {}, groupName(g.group)), h('td', { class: 'num' }, fmtNum(g.value)), h('td', { class: 'num' }, fmtNum(g.count)),
        m.additive ? h('td', { class: 'num wide' }, total ? (100 * g.value / total).toFixed(1) + '%' : '') : null,
        prev ? h('td', { class: 'num wide' }, p ? fmtNum(p.value) : '—') : null);
    });
    return scrollBox('Groups of ' + m.name, h('table', { class: 'groups compact', 'data-meter': m.name },
      h('caption', {}, 'Groups in ' + curName + ' so far'),
      h('thead', {}, h('tr', {}, h('th', {}, m.groupBy.join(', ')), h('th', { class: 'num' }, 'Value'), h('th', { class: 'num' }, 'Events'),
        m.additive ? h('th', { class: 'num wide' }, 'Share') : null, prev ? h('th', { class: 'num wide' }, prevName) : null)),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 5, class: 'meta' }, 'No usage this month yet.')))));
  }

  function meterRow(m, c, same, prev) {
    return h('tr', { 'data-meter': m.name, 'data-event-type': S.config.events[m.name] ? m.name : null },
      h('td', {}, h('span', { class: 'mname' }, m.name), ' ', h('span', { class: 'pill' }, m.op),
        h('br', {}), h('span', { class: 'meta' }, m.description ? m.description + ' · ' + opText(m) : opText(m))),
      valueCell('cur', c), valueCell('same', same), changeCell(c, same), valueCell('prev wide', prev));
  }

  function valueCell(which, p) {
    if (!p) return h('td', { class: 'num ' + which, 'data-value': '', 'data-count': 0 }, '—');
    return h('td', { class: 'num ' + which, 'data-value': p.value, 'data-count': p.count, title: fmtNum(p.count) + ' events' }, fmtNum(p.value));
  }

  // changeCell is the change from the same point of last month: a number,
  // never coloured as good or bad (more usage is neither).
  function changeCell(c, p) {
    if (!c || !p || p.value === 0) return h('td', { class: 'num change' }, c && p ? 'new' : '');
    const r = (c.value - p.value) / Math.abs(p.value);
    return h('td', { class: 'num change', 'data-change': r }, (r > 0 ? '+' : r < 0 ? '−' : '±') + Math.abs(r * 100).toFixed(Math.abs(r) < 0.1 ? 1 : 0) + '%');
  }

  // aggregationsSection lists a customer's aggregations, newest period
  // first, a page at a time. Refresh reloads the first page unless more
  // pages were asked for.
  function aggregationsSection(gen, id) {
    const periods = (S.config.periods || []).slice();
    let period = '';
    let cursor = '';
    let paged = false;
    const names = meterList().map((m) => m.name);
    const body = h('tbody', {});
    const more = h('button', { type: 'button', hidden: true, id: 'aggs-more' }, 'Load more');
    const sel = h('select', { id: 'agg-period' }, h('option', { value: '' }, 'every period'), periods.map((p) => h('option', { value: p }, p)));
    const load = async (append) => {
      const r = await api('aggregations?' + q({ customerId: id, period, limit: 25, cursor: append ? cursor : '' }));
      if (gen !== S.gen) return;
      const rows = r.body.map((a) => aggRow(a, names));
      if (append) body.append(...rows); else body.replaceChildren(...rows);
      if (!append && rows.length === 0) body.append(h('tr', {}, h('td', { colspan: 4, class: 'meta' }, 'No aggregations yet: they appear after the next aggregation run.')));
      cursor = r.next;
      more.hidden = !cursor;
    };
    sel.addEventListener('change', () => { period = sel.value; paged = false; load(false).catch(failed); });
    more.addEventListener('click', () => { paged = true; load(true).catch(failed); });
    const section = h('section', {},
      h('h2', {}, 'Aggregations'),
      h('div', { class: 'controls' }, h('label', {}, 'Period', sel)),
      scrollBox('Aggregations', h('table', { id: 'aggregations' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Period'), h('th', {}, 'Values (events)'), h('th', { class: 'num' }, 'Revision'),
          h('th', {}, 'State'))), body)),
      h('div', { class: 'actions' }, more));
    return { section, refresh: () => (paged ? Promise.resolve() : load(false)) };
  }

  function aggRow(a, types) {
    const names = types.filter((t) => t in a.events).concat(Object.keys(a.events).filter((t) => !types.includes(t)).sort());
    const win = { hourly: 'hour', daily: 'day', weekly: 'week', monthly: 'month', yearly: 'year' }[a.period];
    return h('tr', { 'data-id': a._id, 'data-revision': a.revision },
      h('td', {}, win ? windowLabel(win, Date.parse(a.periodStart), Date.parse(a.periodEnd) + 1) : daysText(a.periodStart, a.periodEnd, zone), h('br', {}),
        h('span', { class: 'meta' }, a.period + ' ', h('span', { class: 'mono' }, a.periodKey))),
      h('td', {}, h('ul', { class: 'vals' }, names.map((t) => h('li', { 'data-event-type': t, 'data-value': a.events[t] },
        h('span', { class: 'meta' }, t + ' '), fmtNum(a.events[t]), h('span', { class: 'meta' }, ' (' + fmtNum(a.eventCounts[t] || 0) + ')'))))),
      h('td', { class: 'num' }, a.revision),
      h('td', {}, a.complete ? h('span', { class: 'pill ok' }, 'complete') : h('span', { class: 'pill' }, 'open, in progress'), ' ', webhookCell(a)));
  }

  function webhookCell(a) {
    const w = a.webhookStatus || {};
    if (!a.complete) return null;
    if (w.delivered) {
      return h('span', { class: 'pill ok', title: w.deliveredAt ? 'at ' + fmtTime(Date.parse(w.deliveredAt), 'full') : null },
        w.dryRun ? 'webhook: dry run' : 'webhook delivered');
    }
    if (w.lastError) return [h('span', { class: 'pill bad' }, 'webhook failing'), h('div', { class: 'err' }, w.attempts + ' attempts: ' + w.lastError)];
    return h('span', { class: 'pill warn' }, w.attempts ? 'webhook retrying (' + w.attempts + ' attempts)' : 'webhook pending');
  }

  // ---- The customer's billing cycle and alerts ------------------------------------

  // toPortal leaves the dashboard for the portal view, which shows a key
  // pinned to a customer what its customer sees (portal.js).
  function toPortal() {
    location.replace(new URL('portal.html', location.href).href);
  }

  // dayIn is the calendar day of an instant in a time zone, YYYY-MM-DD.
  function dayIn(ms, tz) {
    const p = {};
    for (const x of new Intl.DateTimeFormat('en-US', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(new Date(ms))) p[x.type] = x.value;
    return p.year + '-' + p.month + '-' + p.day;
  }

  // daysText is a period's first and last day in a zone: "2026-01-05 to
  // 2026-02-04", or one day.
  function daysText(start, end, tz) {
    const a = dayIn(Date.parse(start), tz);
    const b = dayIn(Date.parse(end), tz);
    return a === b ? a : a + ' to ' + b;
  }

  // cycleSection shows the customer's billing settings and its current
  // billing cycle, with each meter's usage in it so far (GET
  // /customers/{id}: the cycle's bounds and values are the server's).
  function cycleSection(gen, id, meters) {
    const dates = h('p', { id: 'cycle-dates' }, '…');
    const settings = h('dl', { class: 'kv', id: 'billing-settings' });
    const body = h('tbody', {});
    const section = h('section', { id: 'billing-cycle' },
      h('h2', {}, 'Billing cycle'),
      h('div', { class: 'card' }, dates, settings),
      scrollBox('Usage in this billing cycle', h('table', { id: 'cycle-usage', class: 'compact' },
        h('caption', { class: 'meta' }, 'Usage in this billing cycle so far'),
        h('thead', {}, h('tr', {}, h('th', {}, 'Meter'), h('th', { class: 'num' }, 'So far'), h('th', { class: 'num' }, 'Events'))), body)));
    const refresh = async () => {
      const c = (await api('customers/' + encodeURIComponent(id))).body;
      if (gen !== S.gen) return;
      const cyc = c.currentCycle;
      const tz = cyc.timezone;
      dates.replaceChildren(h('b', {}, daysText(cyc.periodStart, cyc.periodEnd, tz)), ' ', h('span', { class: 'pill' }, 'in progress'),
        h('span', { class: 'meta' }, ' \u00b7 from ' + fmtTime(Date.parse(cyc.periodStart), 'full') + ' to ' + fmtTime(Date.parse(cyc.periodEnd) + 1, 'full') + ' (' + zone + ')'));
      Object.assign(dates.dataset, { periodStart: cyc.periodStart, periodEnd: cyc.periodEnd, periodKey: cyc.periodKey, timezone: tz });
      const profile = !!c.createdAt;
      const interval = c.billingInterval || 'month';
      settings.dataset.profile = profile;
      settings.replaceChildren(
        h('dt', {}, 'Settings'), h('dd', {}, profile ? 'the customer\u2019s profile' : 'the default (no billing profile)'),
        h('dt', {}, 'Anchor'), h('dd', { id: 'billing-anchor' }, c.billingAnchor ? dayIn(Date.parse(c.billingAnchor), tz) + ' (cycles start on that day)' : 'none: cycles follow the calendar ' + interval),
        h('dt', {}, 'Interval'), h('dd', { id: 'billing-interval' }, 'every ' + interval),
        h('dt', {}, 'Time zone'), h('dd', { id: 'billing-zone' }, c.timezone || tz + ' (the configuration\u2019s)'));
      const rows = meters.filter((m) => m.name in cyc.events).map((m) => h('tr', { 'data-meter': m.name, 'data-value': cyc.events[m.name] },
        h('td', {}, h('span', { class: 'mname' }, m.name), ' ', h('span', { class: 'meta' }, opText(m))),
        h('td', { class: 'num' }, fmtNum(cyc.events[m.name])), h('td', { class: 'num' }, fmtNum(cyc.eventCounts[m.name] || 0))));
      body.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 3, class: 'meta' }, 'No usage in this cycle yet.'))]));
    };
    return { section, refresh };
  }

  // alertsSection lists the alerts that apply to the customer (its own and
  // those of every customer), each with its usage in its current period
  // against the threshold, and whether and when it fired in that period
  // (GET /customers/{id}/alerts: the evaluator's record).
  function alertsSection(gen, id) {
    const body = h('tbody', {});
    const section = h('section', { id: 'alerts-section' },
      h('h2', {}, 'Usage alerts'),
      h('p', { class: 'meta' }, 'An alert fires once per period, when the customer\u2019s value of its meter first reaches the threshold: a usage.threshold_reached notification.'),
      scrollBox('Usage alerts', h('table', { id: 'alerts' },
        h('thead', {}, h('tr', {}, ['Meter', 'Period', 'Applies to', 'This period', 'Usage so far', 'Threshold', 'Fired'].map((x, i) =>
          h('th', { class: i === 4 || i === 5 ? 'num' : null }, x)))), body)));
    const refresh = async () => {
      const r = (await api('customers/' + encodeURIComponent(id) + '/alerts')).body;
      if (gen !== S.gen) return;
      const rows = r.alerts.map((a) => alertRow(a));
      body.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 7, class: 'meta' }, 'No alert applies to this customer.'))]));
    };
    return { section, refresh };
  }

  function alertRow(a) {
    const share = a.threshold > 0 ? Math.min(1, a.value / a.threshold) : 0;
    const fired = a.fired;
    return h('tr', { 'data-alert-id': a.id, 'data-period-key': a.periodKey || '', 'data-value': a.value, 'data-threshold': a.threshold,
      'data-fired-at': fired ? fired.firedAt : '' },
      h('td', { class: 'mono' }, a.meter),
      h('td', {}, a.period),
      h('td', {}, a.customerId ? 'this customer' : 'every customer'),
      h('td', { class: 'period' }, a.active ? [daysText(a.periodStart, a.periodEnd, a.timezone || zone),
        h('br', {}), h('span', { class: 'meta' }, a.period + ' ' + a.periodKey)] : h('span', { class: 'meta' }, 'asleep: the configuration lacks its meter or period')),
      h('td', { class: 'num usage' }, a.active ? [fmtNum(a.value), h('br', {}),
        h('progress', { max: 1, value: share, 'aria-label': a.meter + ': ' + Math.round(share * 100) + '% of the threshold' }),
        h('span', { class: 'meta' }, ' ' + Math.floor((a.value / a.threshold) * 100) + '%')] : '—'),
      h('td', { class: 'num' }, fmtNum(a.threshold)),
      h('td', { class: 'fired' }, fired ? [h('span', { class: 'pill ok' }, 'fired'), ' ', fmtTime(Date.parse(fired.firedAt), 'full'),
        h('br', {}), h('span', { class: 'meta' }, 'at ' + fmtNum(fired.value))] : h('span', { class: 'pill' }, a.active ? 'not yet' : 'asleep')));
  }

  // ---- Webhooks and deliveries ----------------------------------------------------

  function endpointState(e) {
    if (e.state === 'off') return [h('span', { class: 'pill' }, 'off'), h('div', { class: 'meta' }, 'enabled is false in the configuration')];
    if (e.state === 'disabled') {
      return [h('span', { class: 'pill bad' }, 'disabled'),
        h('div', { class: 'err' }, (e.disabledReason || '') + (e.disabledAt ? ', since ' + fmtTime(Date.parse(e.disabledAt), 'full') : '') +
          '. Its deliveries wait until one of them is retried.')];
    }
    return h('span', { class: 'pill ok' }, 'active');
  }

  function deliveriesPage(gen) {
    if (!S.who || S.who.scope !== 'admin') return notFound('Webhook deliveries need an admin key.');
    const f = { endpoint: '', status: 'failed' };
    let cursor = '';
    let paged = false;
    let endpoints = [];
    const epBody = h('tbody', {});
    const body = h('tbody', {});
    const more = h('button', { type: 'button', hidden: true, id: 'deliveries-more' }, 'Load more');
    const epSel = h('select', { id: 'dl-endpoint' }, h('option', { value: '' }, 'every endpoint'),
      (S.config.webhooks || []).map((w) => h('option', { value: w.url }, w.url)));
    const stSel = h('select', { id: 'dl-status' }, ['failed', 'pending', 'delivered', ''].map((v) => h('option', { value: v, selected: v === f.status }, v || 'any state')));
    const count = h('span', { class: 'meta', id: 'deliveries-count' });
    const onFilter = () => {
      f.endpoint = epSel.value;
      f.status = stSel.value;
      paged = false;
      loadList(false).then(() => ready('deliveries'), failed);
    };
    epSel.addEventListener('change', onFilter);
    stSel.addEventListener('change', onFilter);
    more.addEventListener('click', () => { paged = true; loadList(true).catch(failed); });
    mount(h('h1', {}, 'Webhooks'), h('p', { class: 'meta', id: 'updated' }, 'Loading…'),
      h('h2', {}, 'Endpoints'),
      h('p', { class: 'meta' }, 'Whether the server sends to each endpoint now, and how its deliveries fare. A 410 Gone disables an endpoint until a delivery to it is retried; "Retry failed" makes every failed delivery of the endpoint due now and enables it again.'),
      scrollBox('Webhook endpoints', h('table', { id: 'endpoints' }, h('thead', {}, h('tr', {},
        ['Endpoint', 'State', 'Last success', 'Last try', 'Failing, last 24 h', 'Pending', 'Failed', 'Delivered'].map((c, i) => h('th', { class: i >= 5 ? 'num' : null }, c)),
        h('th', {}, h('span', { class: 'vh' }, 'Actions')))), epBody)),
      h('h2', {}, 'Deliveries'),
      h('div', { class: 'controls' }, h('label', {}, 'Endpoint', epSel), h('label', {}, 'State', stSel), count),
      scrollBox('Deliveries', h('table', { id: 'deliveries' },
        h('thead', {}, h('tr', {}, h('th', {}, h('span', { class: 'vh' }, 'Actions')), ['Delivery', 'Customer', 'Endpoint', 'Attempts', 'Last response', 'When'].map((c) => h('th', {}, c)))), body)),
      h('div', { class: 'actions' }, more));

    const loadEndpoints = async () => {
      const r = await api('webhooks');
      if (gen !== S.gen) return;
      endpoints = r.body;
      epBody.replaceChildren(...(endpoints.length ? endpoints.map(endpointRow) : [h('tr', {}, h('td', { colspan: 9, class: 'meta' }, 'No webhook endpoints are configured.'))]));
    };
    const endpointRow = (e) => {
      const n = e.deliveries.failed || 0;
      // aria-disabled rather than disabled: a button that just retried
      // everything keeps the focus.
      const b = h('button', { type: 'button', class: 'retry-all', 'data-url': e.url, 'aria-disabled': n === 0 ? 'true' : null }, 'Retry failed (' + fmtNum(n) + ')');
      b.addEventListener('click', () => { if (b.getAttribute('aria-disabled') !== 'true') retryAll(e.url, b); });
      const tried = (e.last24h.delivered || 0) + (e.last24h.failed || 0) + (e.last24h.retrying || 0);
      return h('tr', { 'data-url': e.url, 'data-state': e.state },
        h('td', { class: 'mono endpoint' }, e.url),
        h('td', {}, endpointState(e)),
        h('td', { class: 'when' }, e.lastSuccessAt ? fmtTime(Date.parse(e.lastSuccessAt), 'full') : 'never'),
        h('td', { class: 'when' }, e.lastAttemptAt ? fmtTime(Date.parse(e.lastAttemptAt), 'full') : 'never'),
        h('td', { class: 'num', 'data-rate': e.failureRate == null ? '' : e.failureRate },
          e.failureRate == null ? 'no tries' : (100 * e.failureRate).toFixed(1) + '% of ' + fmtNum(tried)),
        h('td', { class: 'num' }, fmtNum(e.deliveries.pending || 0)), h('td', { class: 'num' }, fmtNum(n)),
        h('td', { class: 'num' }, fmtNum(e.deliveries.delivered || 0)), h('td', {}, b));
    };
    const loadList = async (append) => {
      const r = await api('deliveries?' + q({ status: f.status, endpoint: f.endpoint, limit: 50, cursor: append ? cursor : '' }));
      if (gen !== S.gen) return;
      const rows = r.body.map((d) => deliveryRow(d, endpoints));
      if (append) body.append(...rows); else body.replaceChildren(...rows);
      if (!append && !rows.length) body.append(h('tr', {}, h('td', { colspan: 7, class: 'meta' }, 'None.')));
      cursor = r.next;
      more.hidden = !r.next;
      const ep = endpoints.filter((e) => !f.endpoint || e.url === f.endpoint);
      count.textContent = f.status ? fmtNum(ep.reduce((a, e) => a + (e.deliveries[f.status] || 0), 0)) + ' ' + f.status : '';
    };
    const all = async () => {
      await Promise.all([syncClock(), loadEndpoints()]);
      if (!paged) await loadList(false);
    };
    const retryAll = async (url, button) => {
      button.setAttribute('aria-disabled', 'true');
      try {
        const r = await api('webhooks/retry?' + q({ endpoint: url }), 'POST');
        message(fmtNum(r.body.retried) + ' failed deliveries to ' + url + ' will be tried again now.');
        paged = false;
        await all();
        ready('deliveries');
        const again = epBody.querySelector('button.retry-all[data-url="' + CSS.escape(url) + '"]');
        if (again) again.focus();
      } catch (e) {
        button.removeAttribute('aria-disabled');
        failed(e);
      }
    };
    S.retry = async (id, button) => {
      button.disabled = true;
      try {
        await api('deliveries/' + encodeURIComponent(id) + '/retry', 'POST');
        message('Delivery ' + id + ' will be tried again now.');
        paged = false;
        await all();
        ready('deliveries');
      } catch (e) {
        button.disabled = false;
        failed(e);
      }
    };
    return poll(gen, async () => { await all(); ready('deliveries'); });
  }

  function deliveryRow(d, endpoints) {
    const ep = endpoints.find((e) => e.url === d.endpoint);
    const parked = d.status === 'pending' && ep && ep.state !== 'active';
    let when = '';
    if (d.status === 'delivered') when = d.deliveredAt ? 'delivered ' + fmtTime(Date.parse(d.deliveredAt), 'full') : 'delivered';
    else if (d.status === 'failed') when = d.lastAttemptAt ? 'gave up ' + fmtTime(Date.parse(d.lastAttemptAt), 'full') : 'gave up';
    else if (parked) when = 'waiting: the endpoint is ' + (ep.state === 'off' ? 'off in the configuration' : 'disabled (' + (ep.disabledReason || '') + ')');
    else if (d.nextAttemptAt) when = (Date.parse(d.nextAttemptAt) <= now() ? 'due since ' : 'next try ') + fmtTime(Date.parse(d.nextAttemptAt), 'full');
    const retry = d.status === 'delivered' ? null : h('button', { type: 'button', class: 'retry', 'data-id': d.id }, 'Retry');
    if (retry) retry.addEventListener('click', () => S.retry(d.id, retry));
    const more = h('button', { type: 'button', class: 'details', 'aria-expanded': 'false', 'data-id': d.id }, 'Details');
    const row = h('tr', { 'data-id': d.id, 'data-status': d.status, 'data-endpoint': d.endpoint },
      h('td', {}, h('div', { class: 'btns' }, retry, more)),
      h('td', {}, h('span', { class: 'mono' }, d.aggregationId), h('br', {}),
        h('span', { class: 'meta' }, d.type + (d.revision > 1 ? ', revision ' + d.revision : '') + ' · ', h('span', { class: 'mono' }, d.id))),
      h('td', {}, h('a', { href: '#/customer/' + encodeURIComponent(d.customerId) }, d.customerId)),
      h('td', { class: 'mono endpoint' }, d.endpoint),
      h('td', { class: 'num' }, d.attempts),
      h('td', { class: 'err' }, d.lastError ? (d.lastStatus ? 'HTTP ' + d.lastStatus + ': ' : '') + d.lastError : (d.attempts ? '' : 'not tried yet')),
      h('td', { class: 'when' }, when));
    let detail = null;
    more.addEventListener('click', async () => {
      if (detail) {
        detail.remove();
        detail = null;
        more.setAttribute('aria-expanded', 'false');
        return;
      }
      try {
        const full = (await api('deliveries/' + encodeURIComponent(d.id))).body;
        detail = deliveryDetail(full);
        row.after(detail);
        more.setAttribute('aria-expanded', 'true');
      } catch (e) { failed(e); }
    });
    return row;
  }

  function deliveryDetail(d) {
    const t = (v) => (v ? fmtTime(Date.parse(v), 'full') : '—');
    return h('tr', { class: 'detail', 'data-detail': d.id }, h('td', { colspan: 7 }, h('div', { class: 'detailgrid' },
      h('div', {}, h('h3', {}, 'Last response'), h('dl', { class: 'kv' },
        h('dt', {}, 'HTTP status'), h('dd', { class: 'last-status' }, d.lastStatus ? String(d.lastStatus) : 'none (no answer, or not tried)'),
        h('dt', {}, 'Error'), h('dd', { class: 'last-error' }, d.lastError || '—'),
        h('dt', {}, 'Tries'), h('dd', {}, String(d.attempts)),
        h('dt', {}, 'Last try'), h('dd', {}, t(d.lastAttemptAt)),
        h('dt', {}, 'Next try'), h('dd', {}, d.status === 'pending' ? t(d.nextAttemptAt) : '—'),
        h('dt', {}, 'Created'), h('dd', {}, t(d.createdAt)))),
      h('div', {}, h('h3', {}, 'Payload'), h('pre', { class: 'payload', tabindex: 0, 'aria-label': 'Payload of ' + d.id }, JSON.stringify(d.payload, null, 2))))));
  }

  // ---- Configuration --------------------------------------------------------

  function configPage(gen) {
    // The configuration is the vendor's: a pinned key sees its usage only.
    if (S.who && S.who.customer) return toPortal();
    const c = S.config;
    const meters = meterList();
    const hooks = c.webhooks || [];
    const dur = (v) => (v === '0' || !v ? 'none' : v);
    const pinnedKey = S.who && S.who.customer;
    const hookBody = h('tbody', {});
    const showHooks = (health) => {
      hookBody.replaceChildren(...(hooks.length ? hooks.map((w) => {
        const e = (health || []).find((x) => x.url === w.url);
        return h('tr', { 'data-url': w.url, 'data-state': e ? e.state : (w.enabled ? 'enabled' : 'off') }, h('td', { class: 'mono endpoint' }, w.url),
          h('td', {}, e ? endpointState(e) : (w.enabled ? h('span', { class: 'pill' }, 'enabled in the file') : h('span', { class: 'pill' }, 'off'))),
          h('td', { class: 'mono' }, w.secret || ''));
      }) : [h('tr', {}, h('td', { colspan: 3, class: 'meta' }, 'None configured.'))]));
    };
    showHooks(null);
    const filterText = (f) => Object.entries(f || {}).map(([k, v]) => k + ' ∈ ' + v.map((x) => JSON.stringify(x)).join(', ')).join('; ');
    mount(
      h('h1', {}, 'Configuration'),
      h('p', { class: 'meta' }, 'The configuration in force (GET /config). Webhook secrets are never shown.'),
      h('div', { class: 'card' }, h('dl', { class: 'kv', id: 'settings' },
        h('dt', {}, 'Time zone'), h('dd', {}, c.timezone || 'UTC'),
        h('dt', {}, 'Oldest event accepted'), h('dd', {}, dur(c.maxEventAge)),
        h('dt', {}, 'Grace period'), h('dd', {}, dur(c.gracePeriod)),
        h('dt', {}, 'Raw events kept'), h('dd', {}, c.retention && c.retention.events !== '0' ? c.retention.events : 'for ever'))),
      h('h2', {}, 'Periods'),
      h('p', { id: 'periods' }, (c.periods || []).map((p) => [h('span', { class: 'pill' }, p), ' '])),
      h('h2', {}, 'Meters'),
      h('p', { class: 'meta' }, 'Each event type is a meter of its own name over the event\u2019s value; the meters section adds meters over its metadata.'),
      scrollBox('Meters', h('table', { id: 'meters' },
        h('thead', {}, h('tr', {}, ['Meter', 'Event type', 'Op', 'Value', 'Grouped by', 'Filter', 'Description'].map((x) => h('th', {}, x)))),
        h('tbody', {}, meters.map((m) => h('tr', { 'data-meter': m.name }, h('td', { class: 'mono' }, m.name), h('td', { class: 'mono' }, m.eventType),
          h('td', {}, h('span', { class: 'pill' }, m.op), ' ', h('span', { class: 'meta' }, opText(m))),
          h('td', { class: 'mono' }, m.value || 'value'), h('td', { class: 'mono' }, m.groupBy.join(', ')),
          h('td', { class: 'mono' }, filterText(m.filter)), h('td', {}, m.description || '')))))),
      h('h2', {}, 'Event types'),
      scrollBox('Event types', h('table', { id: 'event-types' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Event type'), h('th', {}, 'Op'), h('th', {}, 'Description'))),
        h('tbody', {}, eventTypes().map((t) => h('tr', { 'data-event-type': t }, h('td', { class: 'mono' }, t),
          h('td', {}, h('span', { class: 'pill' }, c.events[t].op), ' ', h('span', { class: 'meta' }, OPS[c.events[t].op] || '')),
          h('td', {}, c.events[t].description || '')))))),
      pinnedKey ? null : [
        h('h2', {}, 'Webhook endpoints'),
        h('p', { class: 'meta' }, 'The state is the server\u2019s: an endpoint enabled in the file is disabled after it answers 410 Gone.'),
        scrollBox('Webhook endpoints', h('table', { id: 'webhooks' },
          h('thead', {}, h('tr', {}, h('th', {}, 'URL'), h('th', {}, 'State'), h('th', {}, 'Secret'))), hookBody))]);
    if (pinnedKey || !hooks.length) return ready('config');
    api('webhooks').then((r) => {
      if (gen !== S.gen) return;
      showHooks(r.body);
      ready('config');
    }, (e) => { if (gen === S.gen) { failed(e); ready('config'); } });
  }

  // ---- Start ------------------------------------------------------------------

  $('#signout').addEventListener('click', () => signOut(''));
  window.addEventListener('hashchange', route);
  route();
})();
