// The zenconn demo console: connect, subscribe, broadcast, and watch the frames.
// Binary protocol frames are MessagePack arrays (see docs/protocol.md); msgpackr is
// served by zenconn itself at /zenconn/msgpackr.js.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const KIND = ['accepted', 'subscribe', 'subscribed', 'unauthorized', 'unsubscribe', 'unsubscribed', 'broadcast', 'received', 'event', 'joined', 'left', 'error', 'refresh', 'refreshed'];
  let ws = null;
  let protocol = 'json';

  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  const uuid = (b) => { const h = hex(b); return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`; };

  function log(text, cls) {
    const li = document.createElement('li');
    li.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
    if (cls) li.className = cls;
    $('log').prepend(li);
    while ($('log').children.length > 500) $('log').lastChild.remove();
  }

  function decodeBinary(buf) {
    const a = msgpackr.unpack(new Uint8Array(buf));
    const type = KIND[a[0]];
    switch (type) {
      case 'accepted': return { type, data: uuid(a[1]) };
      case 'received': return { type, channel: a[1], count: a[2] };
      case 'event': return { type, channel: a[1], data: a[2], from: a[3] ? uuid(a[3]) : null, id: uuid(a[4]) };
      case 'joined': case 'left': return { type, channel: a[1], data: { session: uuid(a[2]), user: a[3] ?? null } };
      case 'error': return { type, channel: a[1], errors: a[2] };
      case 'refreshed': return { type, exp: a[1] ?? null };
      default: return { type, channel: a[1] };
    }
  }

  function encode(frame) {
    if (protocol === 'json') return JSON.stringify(frame);
    switch (frame.type) {
      case 'subscribe': return msgpackr.pack(frame.token ? [1, frame.channel, frame.token] : [1, frame.channel]);
      case 'unsubscribe': return msgpackr.pack([4, frame.channel]);
      case 'broadcast': return msgpackr.pack([6, frame.channel, frame.data]);
      case 'refresh': return msgpackr.pack([12, frame.token]);
    }
  }

  function send(frame) {
    log('→ ' + JSON.stringify(frame), 'out');
    ws.send(encode(frame));
  }

  function setOpen(open) {
    $('status').textContent = open ? `connected (${protocol})` : 'disconnected';
    $('status').classList.toggle('open', open);
    for (const id of ['disconnect', 'refresh', 'subscribe', 'unsubscribe', 'broadcast']) $(id).disabled = !open;
    $('connect').disabled = open;
  }

  $('connect').onclick = () => {
    protocol = $('protocol').value;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const q = new URLSearchParams({ protocol });
    if ($('token').value.trim()) q.set('access_token', $('token').value.trim());
    ws = new WebSocket(`${scheme}://${location.host}/?${q}`);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => setOpen(true);
    ws.onclose = (e) => { setOpen(false); log(`closed ${e.code} ${e.reason}`, 'error'); $('session').textContent = '—'; };
    ws.onmessage = (e) => {
      const f = typeof e.data === 'string' ? JSON.parse(e.data) : decodeBinary(e.data);
      if (f.type === 'accepted') $('session').textContent = f.data;
      log('← ' + JSON.stringify(f), f.type === 'error' || f.type === 'unauthorized' ? 'error' : '');
    };
  };
  $('disconnect').onclick = () => ws && ws.close(1000);
  // Sends the token field as a fresh token for the open session (same user; see docs/protocol.md).
  $('refresh').onclick = () => send({ type: 'refresh', token: $('token').value.trim() });
  $('subscribe').onclick = () => {
    const token = $('chtoken').value.trim();
    send(token ? { type: 'subscribe', channel: $('channel').value, token } : { type: 'subscribe', channel: $('channel').value });
  };
  $('unsubscribe').onclick = () => send({ type: 'unsubscribe', channel: $('channel').value });
  $('broadcast').onclick = () => {
    let data;
    try { data = JSON.parse($('data').value); } catch { data = $('data').value; }
    send({ type: 'broadcast', channel: $('channel').value, data });
  };
})();
