// The dashboard (served on the admin listener): polls /api/stats every second and redraws the
// numbers and a hand-drawn <canvas> chart of messages per second. No libraries, no build step.
// With --admin-token, /api/stats needs the token: the page takes it once from its URL's fragment
// (/dashboard#token=…; a fragment reaches no server, log or Referer), keeps it for this tab only
// and drops it from the address bar.
'use strict';

const POLL_MS = 1000;
const WINDOW_S = 120;
const TOKEN_KEY = 'webpushd-admin-token';

const given = new URLSearchParams(location.hash.slice(1)).get('token');
if (given) {
  sessionStorage.setItem(TOKEN_KEY, given);
  history.replaceState(null, '', location.pathname + location.search);
}
const token = sessionStorage.getItem(TOKEN_KEY);

const $ = (id) => document.getElementById(id);
const fmt = (n) => (Number.isInteger(n) ? n.toLocaleString('en') : n.toFixed(2));

function set(id, value) {
  const el = $(id);
  if (el) el.textContent = fmt(value);
}

function render(s) {
  for (const [k, v] of Object.entries(s.messages)) set(`msg-${k}`, v);
  for (const [k, v] of Object.entries(s.connections)) set(`conn-${k}`, v);
  $('stored-now').textContent = s.storedNow === null ? '–' : fmt(s.storedNow);
  set('fanouts', s.fanoutsInProgress);
  $('aggregates').textContent = s.aggregates === null ? '–' : fmt(s.aggregates);
  for (const [k, v] of Object.entries(s.rates)) set(`rate-${k}`, v);
  const last = s.history[s.history.length - 1];
  set('rate-now', last ? last.accepted : 0);
  const table = $('responses');
  table.replaceChildren();
  const codes = Object.keys(s.responses).sort();
  if (codes.length === 0) table.insertRow().insertCell().textContent = 'none yet';
  for (const code of codes) {
    const row = table.insertRow();
    row.insertCell().textContent = code;
    const n = row.insertCell();
    n.className = 'n';
    n.id = `code-${code}`;
    n.textContent = fmt(s.responses[code]);
  }
  draw(s);
  $('status').textContent = `live · up ${s.uptimeSeconds} s · updated ${new Date(s.time).toLocaleTimeString()}`;
}

function draw(s) {
  const canvas = $('chart');
  // the points drawn, readable in the page (the browser test reads it)
  canvas.dataset.points = String(s.history.length);
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, w, h);
  const left = 44;
  const bottom = h - 20;
  const top = 8;
  const right = w - 8;
  const max = Math.max(1, ...s.history.map((p) => Math.max(p.accepted, p.delivered)));
  const scale = niceCeil(max);
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#5a6275';
  g.strokeStyle = '#e3e6ec';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = bottom - ((bottom - top) * i) / 4;
    g.beginPath();
    g.moveTo(left, y);
    g.lineTo(right, y);
    g.stroke();
    g.fillText(fmt((scale * i) / 4), 4, y + 4);
  }
  for (const sec of [120, 90, 60, 30, 0]) {
    const x = right - ((right - left) * sec) / WINDOW_S;
    g.fillText(sec === 0 ? 'now' : `-${sec}s`, sec === 0 ? x - 22 : x - 12, h - 4);
  }
  const x = (t) => right - ((right - left) * (s.time - t)) / 1000 / WINDOW_S;
  const y = (v) => bottom - ((bottom - top) * v) / scale;
  // accepted drawn wide underneath: when every message is delivered at once the lines coincide
  for (const [key, color, width] of [['accepted', '#2f6fde', 5], ['delivered', '#1f9d55', 2]]) {
    g.strokeStyle = color;
    g.lineWidth = width;
    g.beginPath();
    s.history.forEach((p, i) => (i === 0 ? g.moveTo(x(p.t), y(p[key])) : g.lineTo(x(p.t), y(p[key]))));
    g.stroke();
  }
}

function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

async function poll() {
  try {
    const res = await fetch('/api/stats', { cache: 'no-store', headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (res.status === 401) throw new Error(`${token ? 'the admin token was refused' : 'this listener needs its admin token'}: open /dashboard#token=<token>`);
    if (!res.ok) throw new Error(`/api/stats answered ${res.status}`);
    render(await res.json());
  } catch (err) {
    $('status').textContent = `not updating: ${err.message}`;
  }
  setTimeout(poll, POLL_MS);
}

poll();
