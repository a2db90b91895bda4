/**
 * The zenconn admin dashboard: signs in with an admin token (kept in sessionStorage,
 * sent as `Authorization: Bearer`), polls the admin API every second and draws what it
 * answers. Every value from the server goes into the page as text, never as markup.
 */
import { CounterHistory } from './rates.js';
import { drawChart } from './chart.js';

const TOKEN_KEY = 'zenconn.adminToken';
const POLL_MS = 1000;
const WINDOW_MS = 5 * 60 * 1000;
/** Rates are taken over this span: under an agent the counters move once a second, as the page polls. */
const RATE_SPAN_MS = 3000;

const $ = (id) => document.getElementById(id);
const history = new CounterHistory(WINDOW_MS);
let token = sessionStorage.getItem(TOKEN_KEY);
let pollTimer = null;
let polling = false;

/** Thrown for an answer that is not 2xx. */
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...(init.headers ?? {}), Authorization: `Bearer ${token}` }, cache: 'no-store' });
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) throw new ApiError(res.status, (body && body.error) || `HTTP ${res.status}`);
  return body;
}

// --- sign-in ---------------------------------------------------------------

function showSignIn(message) {
  stopPolling();
  $('dashboard').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  $('whoami').textContent = '';
  $('status').textContent = '';
  $('sign-in-error').textContent = message ?? '';
}

async function signIn(candidate) {
  token = candidate;
  try {
    await api('/api/admin/overview?channels=1');
  } catch (err) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    const why = err instanceof ApiError && err.status === 403 ? 'this token has no admin grant' : err instanceof ApiError && err.status === 401 ? `token refused: ${err.message}` : `cannot reach the server: ${err.message}`;
    showSignIn(why);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $('sign-in').hidden = true;
  $('dashboard').hidden = false;
  $('sign-out').hidden = false;
  $('whoami').textContent = tokenSubject(candidate);
  void loadAudit('first').catch(() => undefined);
  startPolling();
}

/** `signed in as <sub>` from the token's payload (not verified here: the server does that). */
function tokenSubject(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const sub = JSON.parse(atob(part)).sub;
    return typeof sub === 'string' ? `signed in as ${sub}` : 'signed in';
  } catch {
    return 'signed in';
  }
}

$('sign-in-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void signIn($('token').value.trim());
});
$('sign-out').addEventListener('click', () => {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  showSignIn('signed out');
});

// --- polling -----------------------------------------------------------------

function startPolling() {
  stopPolling();
  polling = true;
  void tick();
}

function stopPolling() {
  polling = false;
  if (pollTimer !== null) clearTimeout(pollTimer);
  pollTimer = null;
}

async function tick() {
  if (!polling) return;
  try {
    await Promise.all([refreshOverview(), refreshSessions(), auditLive() ? loadAudit('refresh') : null]);
    $('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
    $('status').className = '';
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(`signed out: ${err.message}`);
      return;
    }
    $('status').textContent = `update failed: ${err.message}`;
    $('status').className = 'error';
  }
  if (polling) pollTimer = setTimeout(() => void tick(), POLL_MS);
}

// --- overview ----------------------------------------------------------------

function setNumber(id, value, digits = 0) {
  const e = $(id);
  e.dataset.value = value === null ? '' : String(value);
  e.textContent = value === null ? '–' : value.toFixed(digits);
}

function bytes(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

const time = (iso) => new Date(iso).toLocaleTimeString();

/** Fills `table`'s body with one row per item; `cells` gives strings or nodes; `key` marks the row. */
function fillTable(table, items, cells, key) {
  const rows = items.map((item) => {
    const tr = document.createElement('tr');
    if (key) tr.dataset.key = key(item);
    for (const c of cells(item)) {
      const td = document.createElement('td');
      if (c instanceof Node) td.append(c);
      else td.textContent = c === null || c === undefined ? '' : String(c);
      tr.append(td);
    }
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = table.tHead.rows[0].cells.length;
    td.className = 'empty';
    td.textContent = 'none';
    tr.append(td);
    rows.push(tr);
  }
  table.tBodies[0].replaceChildren(...rows);
}

async function refreshOverview() {
  const o = await api('/api/admin/overview');
  history.add(o.at, { ...o.counters, open: o.sessions });
  setNumber('sum-sessions', o.sessions);
  setNumber('sum-channels', o.channels.total);
  setNumber('sum-in', o.counters.messagesIn);
  setNumber('sum-out', o.counters.messagesOut);
  setNumber('sum-opened', o.counters.sessionsOpened);
  setNumber('sum-closed', o.counters.sessionsClosed);
  setNumber('sum-in-rate', history.lastRate('messagesIn', RATE_SPAN_MS), 1);
  setNumber('sum-out-rate', history.lastRate('messagesOut', RATE_SPAN_MS), 1);
  const role = o.agent.workers === 0 ? 'single process' : `agent with ${o.agent.workers} workers`;
  $('whoami').dataset.node = o.agent.id;
  $('whoami').title = `${role}, node ${o.agent.id}, pid ${o.agent.pid}, up ${duration(o.agent.uptimeMs)}`;

  drawChart($('chart-messages'), [
    { name: 'in /s', className: 's1', points: history.rates('messagesIn', RATE_SPAN_MS) },
    { name: 'deliveries /s', className: 's2', points: history.rates('messagesOut', RATE_SPAN_MS) }
  ], o.at, WINDOW_MS);
  drawChart($('chart-sessions'), [
    { name: 'opened /s', className: 's1', points: history.rates('sessionsOpened', RATE_SPAN_MS) },
    { name: 'closed /s', className: 's3', points: history.rates('sessionsClosed', RATE_SPAN_MS) },
    { name: 'open', className: 's2', points: history.series('open') }
  ], o.at, WINDOW_MS);

  fillTable($('nodes'), o.nodes ?? [], (n) => [n.id, n.role, n.hostname, n.pid, n.address, n.workers, time(n.startedAt), time(n.lastSeenAt)], (n) => n.id);
  fillTable($('workers'), o.workers, (w) => [
    w.slot, w.pid, w.state, w.sessions, w.channels, w.messagesInPerSec, w.messagesOutPerSec, bytes(w.rssBytes), bytes(w.heapUsedBytes), `${w.loopLagMs} ms`, w.restarts, duration(w.uptimeMs)
  ], (w) => String(w.pid));
  fillTable($('channels'), o.channels.top, (c) => [c.channel, c.members], (c) => c.channel);
  $('channels-note').textContent = o.channels.total > o.channels.top.length ? `(the ${o.channels.top.length} largest of ${o.channels.total})` : '';
}

// --- sessions ----------------------------------------------------------------

/** Counts session searches: an answer that a later search overtook is dropped. */
let sessionsSeq = 0;

async function refreshSessions() {
  const seq = ++sessionsSeq;
  const q = $('session-search').value.trim();
  const r = await api(`/api/admin/sessions?limit=200&q=${encodeURIComponent(q)}`);
  if (seq !== sessionsSeq) return;
  fillTable($('sessions'), r.sessions, (s) => {
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'close-session';
    close.textContent = 'Close';
    close.addEventListener('click', () => void closeSession(s.id, close));
    return [s.id, s.user ?? '(anonymous)', s.remoteAddr, s.protocol, s.pid, time(s.connectedAt), s.channels.join(', '), close];
  }, (s) => s.id);
  $('sessions-note').textContent = r.truncated ? '(first 200 shown: narrow the search)' : `(${r.sessions.length})`;
}

async function closeSession(id, button) {
  button.disabled = true;
  try {
    await api('/api/admin/sessions/close', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ session: id }) });
    $('status').textContent = `closing session ${id}`;
  } catch (err) {
    $('status').textContent = `could not close ${id}: ${err.message}`;
    $('status').className = 'error';
    button.disabled = false;
  }
}

$('sessions-form').addEventListener('submit', (e) => e.preventDefault());
$('session-search').addEventListener('input', () => void refreshSessions().catch(() => undefined));

// --- audit trail -------------------------------------------------------------

/** Cursors of the pages seen: `cursors[i]` opens page i+1 (null for the first). */
let cursors = [null];
let nextCursor = null;
/** Counts audit loads: an answer to a load that a later one overtook is dropped. */
let auditSeq = 0;

function auditLive() {
  return $('audit-live').checked && cursors.length === 1;
}

/** The filters as last searched: paging and the live refresh keep them while the form is edited. */
let auditFilters = new URLSearchParams();

function readAuditForm() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($('audit-form'))) if (typeof value === 'string' && value.trim() !== '') params.set(name, value.trim());
  return params;
}

function auditQuery(cursor) {
  const params = new URLSearchParams(auditFilters);
  if (cursor !== null) params.set('cursor', cursor);
  return params;
}

/** `first`: page 1 again; `next`: the following page; `refresh`: the current page again. */
async function loadAudit(which) {
  if (which === 'first') {
    cursors = [null];
    auditFilters = readAuditForm();
  }
  const cursor = which === 'next' ? nextCursor : cursors[cursors.length - 1];
  if (which === 'next' && cursor === null) return;
  const seq = ++auditSeq;
  let page;
  try {
    page = await api(`/api/audit?${auditQuery(cursor)}`);
    if (seq !== auditSeq) return;
  } catch (err) {
    if (seq !== auditSeq) return;
    if (err instanceof ApiError && err.status === 403) {
      $('audit-error').textContent = 'the audit trail needs a token with the audit grant';
      $('audit-live').checked = false;
    } else if (err instanceof ApiError && err.status === 401) throw err;
    else $('audit-error').textContent = err.message;
    return;
  }
  $('audit-error').textContent = '';
  if (which === 'next') cursors.push(cursor);
  nextCursor = page.next;
  fillTable($('audit'), page.rows, (r) => [new Date(r.at).toLocaleString(), r.direction, r.type, r.channel, r.session_id, r.user_id, r.recipients, r.payload === null || r.payload === undefined ? '' : JSON.stringify(r.payload).slice(0, 200)], (r) => r.id);
  $('audit-page').textContent = `page ${cursors.length}`;
  $('audit-next').disabled = nextCursor === null;
}

// A 401 on these is left to the next poll, which signs out.
$('audit-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void loadAudit('first').catch(() => undefined);
});
$('audit-first').addEventListener('click', () => void loadAudit('first').catch(() => undefined));
$('audit-next').addEventListener('click', () => void loadAudit('next').catch(() => undefined));

// --- start -------------------------------------------------------------------

if (token) void signIn(token);
else showSignIn();
