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
  };

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

  function mount(...kids) {
    S.charts = [];
    view().replaceChildren(...kids.flat(Infinity).filter((k) => k != null && k !== false));
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
    if (spec.bars) {
      for (const p of points) {
        const x0 = x(p.start);
        const w = Math.max(1, x(p.end) - x0 - (x(p.end) - x0 > 4 ? 1 : 0));
        const top = y(Math.max(p.value, 0));
        g.append(h('svg:rect', Object.assign(attrs(p), { x: x0, y: top, width: w, height: Math.max(p.value === 0 ? 0 : 1, Math.abs(y(p.value) - y(0))) }), title(p)));
      }
    } else {
      // A line through the windows' middles, broken where a window has no
      // events.
      let d = '';
      let prevEnd = null;
      const r = points.length > 120 ? 1.6 : 3;
      for (const p of points) {
        const cx = (x(p.start) + x(p.end)) / 2;
        d += (prevEnd === p.start ? 'L' : 'M') + cx.toFixed(1) + ' ' + y(p.value).toFixed(1);
        prevEnd = p.end;
        g.append(h('svg:circle', Object.assign(attrs(p), { cx, cy: y(p.value), r }), title(p)));
      }
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
    const pages = { overview: overviewPage, customer: customerPage, deliveries: deliveriesPage, config: configPage };
    const page = pages[seg[0]];
    if (!page) return notFound('There is no page “' + seg[0] + '”.');
    loadConfig().then(() => {
      if (gen === S.gen) page(gen, seg.slice(1), args);
    }, (e) => { if (gen === S.gen) failed(e); });
  }

  function notFound(text) {
    mount(h('div', { class: 'card notfound', id: 'not-found' }, h('h2', {}, 'Not found'), h('p', {}, text),
      h('p', {}, h('a', { href: home() }, 'Back'))));
  }

  function ready(id) {
    document.body.dataset.ready = id;
    if (performance.mark) performance.mark('odometer:' + id);
  }

  // ---- Overview -----------------------------------------------------------------

  function overviewPage(gen) {
    if (S.who && S.who.customer) return notFound('The overview covers every customer; this key sees one customer only.');
    const tiles = h('div', { class: 'tiles' });
    const epm = h('div', { class: 'plot', id: 'epm' });
    const readout = h('p', { class: 'readout' });
    const top = h('div', { class: 'grid', id: 'top' });
    const topTitle = h('h2', {}, 'Top customers this month');
    const lookup = customerLookup();
    mount(
      h('h1', {}, 'Overview'), h('p', { class: 'meta', id: 'updated' }, 'Loading…'),
      tiles,
      h('h2', {}, 'Events stored per minute'),
      h('figure', { class: 'chart card' },
        h('figcaption', {}, h('b', {}, 'Events per minute'), h('span', {}, 'last 60 minutes, counted by the server that answers')),
        epm, readout),
      topTitle, h('p', { class: 'meta' }, 'Ranked by the value of each event type\u2019s op in the current monthly period, as of the last aggregation run.'),
      top,
      h('h2', {}, 'Open a customer'), lookup);
    return poll(gen, async () => {
      const [r] = await Promise.all([api('stats'), syncClock()]);
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
      chart({ el: epm, readout, points: minutes, from: minutes[0].start, to: minutes[minutes.length - 1].end, window: 'minute', bars: true,
        unit: 'events per minute', label: (p) => fmtTime(p.start, 'time') + ': ' + fmtNum(p.value) + ' events' });
      topTitle.textContent = 'Top customers in ' + monthName;
      const cards = eventTypes().map((t) => topCard(t, st.topCustomers[t] || []));
      if (st.note) cards.unshift(h('p', { class: 'meta' }, 'No ranking: ' + st.note + '.'));
      top.replaceChildren(...cards);
      ready('overview');
    });
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
        h('span', { class: 'num' }, fmtNum(r.value)), h('span', { class: 'bar' }, bar));
    }));
    return h('div', { class: 'card', 'data-event-type': type },
      h('h3', {}, type, ' ', h('span', { class: 'pill' }, op)),
      rows.length ? list : h('p', { class: 'meta' }, 'No usage this month yet.'));
  }

  function customerLookup() {
    const input = h('input', { id: 'customer-id', placeholder: 'Customer id, e.g. cust_123', required: true, autocomplete: 'off' });
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
    const range = RANGES[args.get('range')] ? args.get('range') : '30d';
    const win = WINDOWS.includes(args.get('window')) ? args.get('window') : 'day';
    const types = eventTypes();
    const setArg = (k, v) => {
      const a = new URLSearchParams(args);
      a.set(k, v);
      location.hash = '#/customer/' + encodeURIComponent(id) + '?' + a.toString();
    };
    const rangeSel = h('select', { id: 'range', onchange: (e) => setArg('range', e.target.value) },
      Object.entries(RANGES).map(([k, v]) => h('option', { value: k, selected: k === range }, v[0])));
    const winSel = h('select', { id: 'window', onchange: (e) => setArg('window', e.target.value) },
      WINDOWS.map((w) => h('option', { value: w, selected: w === win }, 'per ' + w)));
    const curHead = h('th', { class: 'num' }, 'This month');
    const prevHead = h('th', { class: 'num' }, 'Last month');
    const currentBody = h('tbody', {});
    const charts = types.map((t) => {
      const plot = h('div', { class: 'plot' });
      const readout = h('p', { class: 'readout' });
      const op = S.config.events[t].op;
      const fig = h('figure', { class: 'chart card', id: 'chart-' + t, 'data-event-type': t },
        h('figcaption', {}, h('b', {}, t), h('span', {}, (OPS[op] || op) + ' per ' + win)), plot, readout);
      return { type: t, op, fig, plot, readout };
    });
    const aggs = aggregationsSection(gen, id);
    mount(
      h('h1', { 'data-customer': id }, 'Customer ', h('code', {}, id)),
      h('p', { class: 'meta', id: 'updated' }, 'Loading…'),
      h('h2', {}, 'This month so far, beside last month'),
      h('div', { class: 'table-card scroll' }, h('table', { id: 'current' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Event type'), curHead, prevHead, h('th', { class: 'num wide' }, 'Change'))),
        currentBody)),
      h('h2', {}, 'Usage over time'),
      h('div', { class: 'controls' }, h('label', {}, 'Range', rangeSel), h('label', {}, 'Window', winSel),
        h('span', { class: 'meta' }, 'Times in ' + zone)),
      h('div', { class: 'charts' }, charts.map((c) => c.fig)),
      aggs.section);

    const rangeStart = () => {
      const [, n, unit] = RANGES[range];
      return startOf(win, add(unit, startOf(unit, now()), 1 - n));
    };
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
      const from = rangeStart();
      const [table, series] = await Promise.all([
        Promise.all(types.map((et) => api('usage?' + q({ customerId: id, eventType: et, window: 'month', from: new Date(prev).toISOString() })))),
        Promise.all(types.map((et) => api('usage?' + q({ customerId: id, eventType: et, window: win, from: new Date(from).toISOString() })))),
        aggs.refresh(),
      ]);
      if (gen !== S.gen) return;
      curHead.textContent = fmtTime(cur, 'shortMonthYear') + ' so far';
      prevHead.textContent = fmtTime(prev, 'shortMonthYear');
      currentBody.replaceChildren(...types.map((et, i) => {
        const pts = table[i].body.usage;
        const c = pts.find((p) => p.key === monthKey(cur));
        const p = pts.find((p) => p.key === monthKey(prev));
        return h('tr', { 'data-event-type': et },
          h('td', {}, et, ' ', h('span', { class: 'pill' }, table[i].body.op)),
          valueCell('cur', c), valueCell('prev', p), changeCell(c, p));
      }));
      for (let i = 0; i < charts.length; i++) {
        const c = charts[i];
        const u = series[i].body;
        const points = u.usage.map((p) => ({ key: p.key, start: Date.parse(p.start), end: Date.parse(p.end) + 1, value: p.value, count: p.count }));
        c.fig.dataset.from = u.from;
        c.fig.dataset.to = u.to;
        c.fig.dataset.window = u.window;
        S.charts = S.charts.filter((s) => s.el !== c.plot);
        chart({ el: c.plot, readout: c.readout, points, from: Date.parse(u.from), to: Date.parse(u.to), window: win,
          bars: c.op === 'sum' || c.op === 'count', unit: (c.op === 'count' ? 'events' : c.op) + ' of ' + c.type,
          label: (p) => windowLabel(win, p.start, p.end) + ': ' + fmtNum(p.value) + ' (' + (OPS[c.op] || c.op) + ' of ' + fmtNum(p.count) + ' events)' });
      }
      ready('customer');
    }
  }

  function valueCell(which, p) {
    if (!p) return h('td', { class: 'num ' + which, 'data-value': '', 'data-count': 0 }, '—');
    return h('td', { class: 'num ' + which, 'data-value': p.value, 'data-count': p.count, title: fmtNum(p.count) + ' events' }, fmtNum(p.value));
  }

  function changeCell(c, p) {
    if (!c || !p || p.value === 0) return h('td', { class: 'num wide' }, '');
    const r = (c.value - p.value) / Math.abs(p.value);
    return h('td', { class: 'num wide ' + (r >= 0 ? 'up' : 'down') }, (r >= 0 ? '+' : '') + (r * 100).toFixed(0) + '%');
  }

  // aggregationsSection lists a customer's aggregations, newest period
  // first, a page at a time. Refresh reloads the first page unless more
  // pages were asked for.
  function aggregationsSection(gen, id) {
    const periods = (S.config.periods || []).slice();
    let period = '';
    let cursor = '';
    let paged = false;
    const types = eventTypes();
    const body = h('tbody', {});
    const more = h('button', { type: 'button', hidden: true, id: 'aggs-more' }, 'Load more');
    const sel = h('select', { id: 'agg-period' }, h('option', { value: '' }, 'every period'), periods.map((p) => h('option', { value: p }, p)));
    const load = async (append) => {
      const r = await api('aggregations?' + q({ customerId: id, period, limit: 25, cursor: append ? cursor : '' }));
      if (gen !== S.gen) return;
      const rows = r.body.map((a) => aggRow(a, types));
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
      h('div', { class: 'table-card scroll' }, h('table', { id: 'aggregations' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Period'), h('th', {}, 'Values (events)'), h('th', { class: 'num' }, 'Revision'),
          h('th', {}, 'State'))), body)),
      h('div', { class: 'actions' }, more));
    return { section, refresh: () => (paged ? Promise.resolve() : load(false)) };
  }

  function aggRow(a, types) {
    const names = types.filter((t) => t in a.events).concat(Object.keys(a.events).filter((t) => !types.includes(t)).sort());
    const win = { hourly: 'hour', daily: 'day', weekly: 'week', monthly: 'month', yearly: 'year' }[a.period];
    return h('tr', { 'data-id': a._id, 'data-revision': a.revision },
      h('td', {}, windowLabel(win, Date.parse(a.periodStart), Date.parse(a.periodEnd) + 1), h('br', {}),
        h('span', { class: 'meta' }, a.period + ' ', h('span', { class: 'mono' }, a.periodKey))),
      h('td', {}, h('ul', { class: 'vals' }, names.map((t) => h('li', { 'data-event-type': t, 'data-value': a.events[t] },
        h('span', { class: 'meta' }, t + ' '), fmtNum(a.events[t]), h('span', { class: 'meta' }, ' (' + fmtNum(a.eventCounts[t] || 0) + ')'))))),
      h('td', { class: 'num' }, a.revision),
      h('td', {}, a.complete ? h('span', { class: 'pill ok' }, 'complete') : h('span', { class: 'pill' }, 'open'), ' ', webhookCell(a)));
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

  // ---- Deliveries -------------------------------------------------------------

  function deliveriesPage(gen) {
    if (!S.who || S.who.scope !== 'admin') return notFound('Deliveries need an admin key.');
    const sections = {};
    const make = (status, title, note) => {
      const body = h('tbody', {});
      const more = h('button', { type: 'button', hidden: true }, 'Load more');
      const count = h('span', { class: 'pill' });
      sections[status] = { body, more, count, cursor: '', paged: false };
      more.addEventListener('click', () => { sections[status].paged = true; loadList(status, true).catch(failed); });
      return h('section', { id: 'deliveries-' + status },
        h('h2', {}, title, ' ', count), h('p', { class: 'meta' }, note),
        h('div', { class: 'table-card scroll' }, h('table', {},
          h('thead', {}, h('tr', {}, ['', 'Delivery', 'Customer', 'Endpoint', 'Attempts', 'Last error', status === 'failed' ? 'Last attempt' : 'Next attempt']
            .map((c) => h('th', {}, c)))), body)),
        h('div', { class: 'actions' }, more));
    };
    const loadList = async (status, append) => {
      const s = sections[status];
      const r = await api('deliveries?' + q({ status, limit: 50, cursor: append ? s.cursor : '' }));
      if (gen !== S.gen) return;
      const rows = r.body.map(deliveryRow);
      if (append) s.body.append(...rows); else s.body.replaceChildren(...rows);
      if (!append && !rows.length) s.body.append(h('tr', {}, h('td', { colspan: 7, class: 'meta' }, 'None.')));
      s.cursor = r.next;
      s.more.hidden = !r.next;
    };
    const counts = async () => {
      try {
        const st = (await api('stats')).body;
        if (gen !== S.gen) return;
        sections.failed.count.textContent = fmtNum(st.deliveries.failed);
        sections.pending.count.textContent = fmtNum(st.deliveries.pending);
      } catch (e) { /* the lists still show */ }
    };
    mount(h('h1', {}, 'Webhook deliveries'), h('p', { class: 'meta', id: 'updated' }, 'Loading…'),
      make('failed', 'Failed', 'Given up after every retry, or refused with 410 Gone. Retry sends one more try now.'),
      make('pending', 'Pending', 'Waiting for their first try or for a retry; the last error is the previous try\u2019s.'));
    const all = () => Promise.all([syncClock(), counts(), ...Object.keys(sections).map((s) => (sections[s].paged ? null : loadList(s, false)))]);
    S.retry = async (id, button) => {
      button.disabled = true;
      try {
        await api('deliveries/' + encodeURIComponent(id) + '/retry', 'POST');
        message('Delivery ' + id + ' will be tried again now.');
        for (const s of Object.values(sections)) s.paged = false;
        await all();
        ready('deliveries');
      } catch (e) {
        button.disabled = false;
        failed(e);
      }
    };
    return poll(gen, async () => { await all(); ready('deliveries'); });
  }

  function deliveryRow(d) {
    const when = d.status === 'failed' ? d.lastAttemptAt : d.nextAttemptAt;
    const button = h('button', { type: 'button', class: 'retry', 'data-id': d.id }, 'Retry');
    button.addEventListener('click', () => S.retry(d.id, button));
    return h('tr', { 'data-id': d.id, 'data-status': d.status },
      h('td', {}, button),
      h('td', {}, h('span', { class: 'mono' }, d.aggregationId), h('br', {}),
        h('span', { class: 'meta' }, d.type + (d.revision > 1 ? ', revision ' + d.revision : '') + ' · ', h('span', { class: 'mono' }, d.id))),
      h('td', {}, h('a', { href: '#/customer/' + encodeURIComponent(d.customerId) }, d.customerId)),
      h('td', { class: 'mono endpoint', title: d.endpoint }, d.endpoint),
      h('td', { class: 'num' }, d.attempts),
      h('td', { class: 'err' }, d.lastError ? (d.lastStatus ? 'HTTP ' + d.lastStatus + ': ' : '') + d.lastError : ''),
      h('td', { class: 'when' }, when ? fmtTime(Date.parse(when), 'full') : ''));
  }

  // ---- Configuration --------------------------------------------------------

  function configPage() {
    const c = S.config;
    const types = eventTypes();
    const hooks = c.webhooks || [];
    const dur = (v) => (v === '0' || !v ? 'none' : v);
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
      h('h2', {}, 'Event types'),
      h('div', { class: 'table-card scroll' }, h('table', { id: 'event-types' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Event type'), h('th', {}, 'Op'), h('th', {}, 'Description'))),
        h('tbody', {}, types.map((t) => h('tr', { 'data-event-type': t }, h('td', { class: 'mono' }, t),
          h('td', {}, h('span', { class: 'pill' }, c.events[t].op), ' ', h('span', { class: 'meta' }, OPS[c.events[t].op] || '')),
          h('td', {}, c.events[t].description || '')))))),
      S.who && S.who.customer ? null : [
        h('h2', {}, 'Webhook endpoints'),
        h('div', { class: 'table-card scroll' }, h('table', { id: 'webhooks' },
          h('thead', {}, h('tr', {}, h('th', {}, 'URL'), h('th', {}, 'State'), h('th', {}, 'Secret'))),
          h('tbody', {}, hooks.length ? hooks.map((w) => h('tr', {}, h('td', { class: 'mono' }, w.url),
            h('td', {}, w.enabled ? h('span', { class: 'pill ok' }, 'enabled') : h('span', { class: 'pill' }, 'disabled')),
            h('td', { class: 'mono' }, w.secret || ''))) : h('tr', {}, h('td', { colspan: 3, class: 'meta' }, 'None configured.')))))]);
    ready('config');
  }

  // ---- Start ------------------------------------------------------------------

  $('#signout').addEventListener('click', () => signOut(''));
  window.addEventListener('hashchange', route);
  route();
})();
