// The zenconn demo console: connect, subscribe, broadcast, and watch what happens.
// It is built on the client library, served by zenconn at /zenconn/client.js
// (docs/client.md): reconnects with backoff and recovers missed events on its own.
import { connect } from '/zenconn/client.js';

const $ = (id) => document.getElementById(id);
let client = null;
const subs = new Map();

function log(text, cls) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
  if (cls) li.className = cls;
  $('log').prepend(li);
  while ($('log').children.length > 500) $('log').lastChild.remove();
}
const show = (v) => JSON.stringify(v, (_, x) => (x instanceof Uint8Array ? `<${x.length} bytes>` : x));

function setOpen(state) {
  const open = state === 'connected';
  $('status').textContent = state === 'connected' ? `connected (${client.protocol})` : state;
  $('status').classList.toggle('open', open);
  for (const id of ['refresh', 'subscribe', 'unsubscribe', 'broadcast', 'history', 'presence']) $(id).disabled = !open;
  $('disconnect').disabled = state === 'closed';
  $('connect').disabled = state !== 'closed';
}

$('connect').onclick = () => {
  const token = $('token').value.trim();
  client = connect('/', {
    protocol: $('protocol').value,
    ...(token ? { token } : {}),
    // A private channel's token comes from `zenconn sign` (normally from the application's backend).
    signChannel: () => $('chtoken').value.trim()
  });
  client.on('state', (s) => {
    setOpen(s.state);
    $('session').textContent = client.session ?? '—';
    log(`state ${s.state}${s.code !== undefined ? ` (${s.code}${s.reason ? ' ' + s.reason : ''})` : ''}`, s.state === 'connected' ? '' : 'error');
  });
  client.on('message', (e) => log(`← event ${e.channel} ${show(e.data)}`));
  client.on('error', (err) => log(`error ${err.message}`, 'error'));
  setOpen(client.state);
};
$('disconnect').onclick = () => {
  client?.close();
  subs.clear();
};
// Sends the token field as a fresh token for the open session (same user; see docs/protocol.md).
$('refresh').onclick = () =>
  client.refreshToken($('token').value.trim()).then(
    (exp) => log(`← refreshed exp ${exp}`),
    (err) => log(`refresh: ${err.message}`, 'error')
  );
$('subscribe').onclick = () => {
  const channel = $('channel').value;
  if (subs.has(channel)) return;
  const sub = client.subscribe(channel, (e) => log(`← event ${channel}${e.offset !== undefined ? ` #${e.offset}` : ''} ${show(e.data)}`));
  subs.set(channel, sub);
  log(`→ subscribe ${channel}`, 'out');
  sub.on('subscribed', (s) => log(`← subscribed ${channel} ${show(s)}`));
  sub.on('unrecovered', (u) => log(`← not recovered ${channel}: missed events are lost ${show(u)}`, 'error'));
  sub.on('joined', (m) => log(`← joined ${channel} ${show(m)}`));
  sub.on('left', (m) => log(`← left ${channel} ${show(m)}`));
  sub.on('unauthorized', () => log(`← unauthorized ${channel}`, 'error'));
  sub.on('error', (e) => log(`← error ${channel} ${e.errors.join(', ')}`, 'error'));
};
$('unsubscribe').onclick = () => {
  const channel = $('channel').value;
  subs.get(channel)?.unsubscribe();
  subs.delete(channel);
  log(`→ unsubscribe ${channel}`, 'out');
};
$('broadcast').onclick = () => {
  let data;
  try {
    data = JSON.parse($('data').value);
  } catch {
    data = $('data').value;
  }
  const channel = $('channel').value;
  log(`→ broadcast ${channel} ${show(data)}`, 'out');
  client.broadcast(channel, data).then(
    (r) => log(`← received ${channel} count ${r.count}`),
    (err) => log(`broadcast ${channel}: ${err.message}`, 'error')
  );
};
$('history').onclick = () => {
  const channel = $('channel').value;
  client.history(channel, { limit: 20 }).then(
    (h) => log(`← history ${channel}: ${h.events.length} events up to #${h.offset} ${show(h.events.map((e) => e.data))}`),
    (err) => log(`history ${channel}: ${err.message}`, 'error')
  );
};
$('presence').onclick = () => {
  const channel = $('channel').value;
  client.presence(channel).then(
    (p) => log(`← presence ${channel}: ${show(p.members)}${p.truncated ? ' (truncated)' : ''}`),
    (err) => log(`presence ${channel}: ${err.message}`, 'error')
  );
};
