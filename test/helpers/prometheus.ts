/** One sample of a Prometheus text exposition. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A parsed exposition: the declared type of each family and every sample. */
export interface PromExposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: PromSample[];
  /** The sum of the samples named `name` whose labels include `match` (0 when none). */
  sum(name: string, match?: Record<string, string>): number;
  /** The samples named `name` whose labels include `match`. */
  find(name: string, match?: Record<string, string>): PromSample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;

function unescape(v: string): string {
  return v.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

/** A sample value as Prometheus reads it (Go's ParseFloat: NaN and Inf in any case; prom-client writes `Nan`). */
function parseValue(v: string, line: string): number {
  const lower = v.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  if (lower === 'nan') return NaN;
  const n = Number(v);
  if (v === '' || Number.isNaN(n)) throw new Error(`bad sample value: ${line}`);
  return n;
}

/** The family a sample belongs to (`x_bucket`, `x_sum`, `x_count` of a histogram or summary are `x`). */
function familyOf(name: string, types: Map<string, string>): string {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count', '_created']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const t = types.get(base);
      if (t === 'histogram' || t === 'summary') return base;
    }
  }
  return name;
}

/**
 * Parses the Prometheus text format (version 0.0.4), strictly: a line that is not a
 * comment, a `# HELP`/`# TYPE` line or a well-formed sample throws, as does a sample of a
 * family without a `# TYPE`, a family typed twice, a label set seen twice in a family,
 * or a histogram whose buckets are not cumulative.
 */
export function parsePrometheus(text: string): PromExposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: PromSample[] = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(.*)$/.exec(line);
      if (m === null) continue; // a plain comment
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]!)) throw new Error(`bad type: ${line}`);
        if (types.has(m[2]!)) throw new Error(`family typed twice: ${line}`);
        types.set(m[2]!, m[3]!);
      } else help.set(m[2]!, m[3]!);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`not a sample: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < body.length) {
      const at = LABEL.lastIndex;
      const l = LABEL.exec(body);
      if (l === null || LABEL.lastIndex === at) throw new Error(`bad labels: ${line}`);
      if (l[1]! in labels) throw new Error(`label twice: ${line}`);
      labels[l[1]!] = unescape(l[2]!);
    }
    const name = m[1]!;
    if (!types.has(familyOf(name, types))) throw new Error(`sample without a TYPE: ${line}`);
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (seen.has(key)) throw new Error(`series twice: ${line}`);
    seen.add(key);
    samples.push({ name, labels, value: parseValue(m[3]!, line) });
  }
  const find = (name: string, match: Record<string, string> = {}): PromSample[] =>
    samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
  // Histogram buckets are cumulative and end with +Inf = _count.
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const groups = new Map<string, PromSample[]>();
    for (const s of find(`${family}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const k = JSON.stringify(Object.entries(rest).sort());
      groups.set(k, [...(groups.get(k) ?? []), s]);
    }
    for (const [k, buckets] of groups) {
      const sorted = [...buckets].sort((a, b) => parseValue(a.labels.le!, '') - parseValue(b.labels.le!, ''));
      for (let i = 1; i < sorted.length; i++) if (sorted[i]!.value < sorted[i - 1]!.value) throw new Error(`${family}${k}: buckets not cumulative`);
      const last = sorted[sorted.length - 1]!;
      if (last.labels.le !== '+Inf') throw new Error(`${family}${k}: no +Inf bucket`);
      const count = samples.find((s) => s.name === `${family}_count` && JSON.stringify(Object.entries(s.labels).sort()) === k);
      if (count === undefined || count.value !== last.value) throw new Error(`${family}${k}: _count is not the +Inf bucket`);
    }
  }
  return { types, help, samples, find, sum: (name, match) => find(name, match).reduce((n, s) => n + s.value, 0) };
}
