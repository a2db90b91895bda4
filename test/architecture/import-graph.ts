// Reads the import graph of src/ and checks it against the layer order of issue #11 (STYLE.md habit 12).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * The layer order, top first: a file may import its own area or an area of a lower tier.
 * errors.ts sits in the bottom tier with log.ts and timeout.ts (not beside protocol … config,
 * as the issue's list has it): it is the error catalogue every area throws from, and STYLE.md
 * habit 12 places it there. client/ (the client library, `zenconn/client`) sits there too: it
 * runs in browsers and imports nothing of the server, so nothing below it may be imported.
 */
export const TIERS: readonly (readonly string[])[] = [
  ['cli'],
  ['cluster'],
  ['node'],
  ['metrics'],
  ['session'],
  ['channels'],
  ['bus', 'audit', 'http', 'webhooks'],
  ['protocol', 'auth', 'store', 'transport', 'config'],
  ['errors', 'log', 'timeout', 'client']
];

/** Imports between two areas of one tier that are allowed, each with its reason. */
export const SAME_TIER_ALLOWED: ReadonlyArray<{ from: string; to: string; why: string }> = [
  {
    from: 'store',
    to: 'protocol',
    why: 'session rows record the protocol a session spoke: ProtocolName lives in protocol/ and store/ names it (issue #11 item 3)'
  },
  {
    from: 'audit',
    to: 'http',
    why: "API routes live with their domain (issue #11 item 3): audit/audit-api.ts is built on http/'s router, guard and replies"
  }
];

/** Store backends: only store/ itself picks one (the audit trail reaches storage through the Store interface). */
export const STORE_BACKENDS: readonly string[] = ['store/sqlite-store.ts', 'store/postgres-store.ts'];

/** One import: from a file, its specifier as written, and the file it resolves to (paths relative to src/). */
export interface ImportEdge {
  from: string;
  spec: string;
  to: string;
}

/**
 * The module specifiers of a TypeScript source: `import … from '…'`, `export … from '…'`,
 * `import '…'` and `import('…')`, type-only ones included. Comments are skipped.
 */
export function importSpecifiers(source: string): string[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  const patterns = [
    /(?:^|[\s;}])(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /(?:^|[\s;}])import\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) out.push(m[1]!);
  return out;
}

/** The area of a file (path relative to src/, `/`-separated): its folder, or the file's own name at the top. */
export function areaOf(file: string): string {
  const slash = file.indexOf('/');
  return slash === -1 ? file.replace(/\.ts$/, '') : file.slice(0, slash);
}

function tierOf(area: string): number {
  return TIERS.findIndex((t) => t.includes(area));
}

/** Every .ts file under `srcDir`, relative to it with `/` separators. */
export function sourceFiles(srcDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(relative(srcDir, p).split(sep).join('/'));
    }
  };
  walk(srcDir);
  return out.sort();
}

/** The relative imports of every file under `srcDir`, resolved to files (`.js` → `.ts`). */
export function readGraph(srcDir: string): { files: string[]; edges: ImportEdge[] } {
  const files = sourceFiles(srcDir);
  const edges: ImportEdge[] = [];
  for (const from of files) {
    for (const spec of importSpecifiers(readFileSync(join(srcDir, from), 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const abs = resolve(dirname(join(srcDir, from)), spec).replace(/\.js$/, '.ts');
      edges.push({ from, spec, to: relative(srcDir, abs).split(sep).join('/') });
    }
  }
  return { files, edges };
}

/** One line per import that breaks the layer rules; empty when the graph keeps them. */
export function layerViolations(edges: readonly ImportEdge[], files: readonly string[]): string[] {
  const known = new Set(files);
  const out: string[] = [];
  for (const f of files) {
    if (tierOf(areaOf(f)) === -1) out.push(`src/${f}: area '${areaOf(f)}' is not in the layer order (add it to TIERS)`);
  }
  for (const e of edges) {
    const line = `src/${e.from} imports '${e.spec}' (src/${e.to})`;
    if (!known.has(e.to)) {
      out.push(`${line}: ${e.to.startsWith('../') ? 'src/ may not import from outside it' : 'no such file under src/'}`);
      continue;
    }
    const a = areaOf(e.from);
    const b = areaOf(e.to);
    if (STORE_BACKENDS.includes(e.to) && a !== 'store') {
      out.push(`${line}: a store backend is picked only inside store/; use the Store interface`);
    }
    if (a === b) continue;
    const ta = tierOf(a);
    const tb = tierOf(b);
    if (ta === -1 || tb === -1) continue;
    if (tb < ta) out.push(`${line}: ${a} may not import ${b}, a layer above it`);
    else if (tb === ta && !SAME_TIER_ALLOWED.some((x) => x.from === a && x.to === b)) {
      out.push(`${line}: ${a} and ${b} share a layer and may not import each other`);
    }
  }
  return out;
}

/** The import cycles between files, each as `a → b → … → a` (one per back edge of a depth-first walk). */
export function importCycles(edges: readonly ImportEdge[]): string[] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    const list = next.get(e.from) ?? [];
    if (!list.includes(e.to)) list.push(e.to);
    next.set(e.from, list);
  }
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const seen = new Set<string>();
  const cycles: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of next.get(f) ?? []) {
      const s = state.get(t);
      if (s === 'open') {
        const ring = stack.slice(stack.indexOf(t));
        // The same ring reached from another start is reported once.
        const key = [...ring].sort().join(' ');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...ring, t].map((x) => `src/${x}`).join(' → '));
        }
      } else if (s === undefined) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...next.keys()].sort()) if (!state.has(f)) visit(f);
  return cycles;
}
