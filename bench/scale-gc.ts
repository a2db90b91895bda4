/**
 * A full GC in every server process of a scale row, from outside, with no hook in the
 * product: the bench starts the servers with `--inspect=0` (an agent's workers inherit
 * it, each on its own random port, all on 127.0.0.1), reads the inspector addresses
 * they print ("Debugger listening on ws://…"), and asks each over the DevTools
 * protocol for `HeapProfiler.collectGarbage` (V8's low-memory notification: a full,
 * compacting GC that gives free pages back). Each answer also carries the process's
 * pid and `process.memoryUsage()`, so the row can say which process holds what.
 *
 * Also here: per-process RSS of a tree (/proc), labelled root (the agent, or the only
 * server process) and child (a worker).
 */
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { processTree } from './proc-stats.js';

/** Node flags that give every process of the tree an inspector on a random loopback port. */
export const GC_NODE_ARGS = ['--inspect=0'] as const;

const INSPECTOR_RE = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/g;

/** Every inspector address in `output` (the processes' stderr), added to `into`. */
export function inspectorUrls(output: string, into: Set<string>): Set<string> {
  for (const m of output.matchAll(INSPECTOR_RE)) into.add(m[1]!);
  return into;
}

/** What one process said after its GC. */
export interface GcAnswer {
  pid: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  rssBytes: number;
}

/** One DevTools session: each call is sent with its own id and resolved by the reply with that id. */
function cdp(url: string, timeoutMs: number): Promise<{ call: (method: string, params?: object) => Promise<unknown>; close: () => void }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
    let nextId = 1;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`inspector ${url}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    ws.on('error', (err) => {
      clearTimeout(timer);
      for (const p of pending.values()) p.reject(err);
      reject(err);
    });
    ws.on('message', (raw: Buffer) => {
      const msg = JSON.parse(raw.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      if (msg.id === undefined) return;
      const p = pending.get(msg.id);
      if (p === undefined) return;
      pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(msg.error.message));
      else p.resolve(msg.result);
    });
    ws.on('open', () =>
      resolve({
        call: (method, params = {}) =>
          new Promise((res, rej) => {
            const id = nextId++;
            pending.set(id, { resolve: res, reject: rej });
            ws.send(JSON.stringify({ id, method, params }));
          }),
        close: () => {
          clearTimeout(timer);
          ws.close();
        }
      })
    );
  });
}

/**
 * Full GC in every process behind `urls` (one after the other, so they do not compete
 * for the cores); processes that are gone are skipped. Resolves with what each said.
 */
export async function collectGarbage(urls: Iterable<string>, timeoutMs = 60_000): Promise<GcAnswer[]> {
  const answers: GcAnswer[] = [];
  for (const url of urls) {
    let session: Awaited<ReturnType<typeof cdp>>;
    try {
      session = await cdp(url, timeoutMs);
    } catch {
      continue; // a worker that exited (or was replaced) since it printed its address
    }
    try {
      await session.call('HeapProfiler.collectGarbage');
      const r = (await session.call('Runtime.evaluate', {
        expression: 'JSON.stringify({ pid: process.pid, ...process.memoryUsage() })',
        returnByValue: true
      })) as { result: { value: string } };
      const m = JSON.parse(r.result.value) as { pid: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number; rss: number };
      answers.push({ pid: m.pid, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external, arrayBuffersBytes: m.arrayBuffers, rssBytes: m.rss });
    } finally {
      session.close();
    }
  }
  return answers;
}

/** RSS of one process of a tree. */
export interface ProcessRss {
  pid: number;
  /** `root`: the agent (or the only server process); `child`: a worker. */
  role: 'root' | 'child';
  rssBytes: number;
  /** Resident part of the brk heap (`[heap]`: glibc malloc's main arena). */
  brkBytes: number;
  /** Resident anonymous mappings other than the brk heap and stacks: V8's heap pages, malloc's mmap'd arenas and large blocks. */
  anonBytes: number;
  /** Resident file-backed mappings (code, shared libraries, SQLite's shared memory). */
  fileBytes: number;
  /** Proportional set size: RSS with pages shared between processes (the node binary's code) split among them. */
  pssBytes: number;
}

/** VmRSS of every live process in the tree rooted at `root`, the root first, then by pid. */
export function rssByProcess(root: number): ProcessRss[] {
  const out: ProcessRss[] = [];
  for (const pid of processTree([root]).sort((a, b) => (a === root ? -1 : b === root ? 1 : a - b))) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    const m = /^VmRSS:\s+(\d+) kB/m.exec(text);
    out.push({ pid, role: pid === root ? 'root' : 'child', rssBytes: m === null ? 0 : Number(m[1]) * 1024, ...mappings(pid) });
  }
  return out;
}

/** Resident bytes of `pid`'s mappings by kind, from /proc/<pid>/smaps. */
function mappings(pid: number): { brkBytes: number; anonBytes: number; fileBytes: number; pssBytes: number } {
  const out = { brkBytes: 0, anonBytes: 0, fileBytes: 0, pssBytes: 0 };
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return out;
  }
  let kind: keyof typeof out | null = null;
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head !== null) {
      const name = head[1]!;
      kind = name === '[heap]' ? 'brkBytes' : name === '' ? 'anonBytes' : name.startsWith('/') ? 'fileBytes' : null;
      continue;
    }
    if (line.startsWith('Pss:')) out.pssBytes += Number(/(\d+)/.exec(line)![1]) * 1024;
    else if (kind !== null && line.startsWith('Rss:')) out[kind] += Number(/(\d+)/.exec(line)![1]) * 1024;
  }
  return out;
}

/** `agent 120 | w1 300 | w2 310` (MiB), for the printed row. */
export function formatByProcess(list: readonly ProcessRss[]): string {
  let worker = 0;
  const mib = (n: number): string => (n / (1024 * 1024)).toFixed(0);
  const line = list.map((p) => `${p.role === 'root' ? 'root' : `w${++worker}`} ${mib(p.rssBytes)} [brk ${mib(p.brkBytes)} anon ${mib(p.anonBytes)} file ${mib(p.fileBytes)}]`).join(' | ');
  return list.length > 1 ? `${line} | PSS of all ${mib(list.reduce((n, p) => n + p.pssBytes, 0))}` : line;
}
