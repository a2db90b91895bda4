/**
 * A small SVG line chart: a few series over a time window, a y axis from 0 to a round
 * maximum, a legend. Drawn with DOM calls (no markup from data), redrawn whole each time.
 */
const SVG = 'http://www.w3.org/2000/svg';
const W = 560;
const H = 180;
const PAD = { left: 48, right: 10, top: 10, bottom: 22 };

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** 1, 2, 5 × 10^n at or above `v` (at least 1). */
export function niceMax(v) {
  if (!(v > 1)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function short(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(v < 10 ? 1 : 0)}`;
}

/**
 * Draws `series` (`[{name, className, points: [{at, value}]}]`) over the `windowMs` up
 * to `now` into `container`, replacing what was there.
 */
export function drawChart(container, series, now, windowMs) {
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.value))));
  const x = (at) => PAD.left + ((at - (now - windowMs)) / windowMs) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart-svg' });
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    svg.append(el('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(el('text', { x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, short(v)));
  }
  const minutes = Math.round(windowMs / 60000);
  svg.append(el('text', { x: PAD.left, y: H - 6, class: 'axis' }, `−${minutes} min`));
  svg.append(el('text', { x: W - PAD.right, y: H - 6, 'text-anchor': 'end', class: 'axis' }, 'now'));
  let lx = PAD.left + 70;
  for (const s of series) {
    const pts = s.points.filter((p) => p.at >= now - windowMs);
    if (pts.length > 0) {
      const d = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
      svg.append(el('path', { d, class: `line ${s.className}` }));
    }
    const last = pts.length > 0 ? pts[pts.length - 1].value : null;
    svg.append(el('rect', { x: lx, y: H - 15, width: 10, height: 10, class: `swatch ${s.className}` }));
    svg.append(el('text', { x: lx + 14, y: H - 6, class: 'legend' }, `${s.name}${last === null ? '' : ` ${short(last)}`}`));
    lx += 150;
  }
  container.replaceChildren(svg);
}
