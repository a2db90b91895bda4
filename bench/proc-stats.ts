/**
 * CPU time and memory of server processes, read from Linux's /proc.
 *
 * A row's server may be one process (`serve`) or a tree (an agent and its workers, or
 * two nodes): every reader here takes a list of root pids and sums over each root and
 * all of its live descendants, so a multi-process row is measured as a whole.
 *
 * CPU comes from `/proc/<pid>/stat` utime + stime, in clock ticks (CLK_TCK = 100 on
 * Linux, so one tick is 10 ms). Over a 10 s window at one busy core that is ±0.1 %.
 * CPU of a descendant that exits during the window is lost (it is not waited for),
 * which a bench run does not do.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Linux USER_HZ: what `getconf CLK_TCK` prints on every Linux architecture node runs on. */
export const CLOCK_TICKS_PER_SECOND = 100;

/** Pids of every live process in the trees rooted at `roots` (roots included, each once). */
export function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (stat === undefined) continue;
    const list = children.get(stat.ppid);
    if (list === undefined) children.set(stat.ppid, [pid]);
    else list.push(pid);
  }
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    for (const child of children.get(pid) ?? []) stack.push(child);
  }
  return [...seen].filter((pid) => existsPid(pid));
}

/** CPU time (user + system) used so far by the trees rooted at `roots`, in microseconds. */
export function cpuMicros(roots: readonly number[]): number {
  let ticks = 0;
  for (const pid of processTree(roots)) {
    const stat = readStat(pid);
    if (stat !== undefined) ticks += stat.utime + stat.stime;
  }
  return (ticks * 1e6) / CLOCK_TICKS_PER_SECOND;
}

/** CPU time and context switches of one process so far. */
export interface ProcessCpu {
  pid: number;
  /** User + system, µs. */
  cpuMicros: number;
  /** Voluntary + involuntary context switches (/proc/<pid>/status): wake-ups and preemptions. */
  contextSwitches: number;
}

/** CPU and context switches of each live process in the trees rooted at `roots`. */
export function cpuByProcess(roots: readonly number[]): ProcessCpu[] {
  const out: ProcessCpu[] = [];
  for (const pid of processTree(roots)) {
    const stat = readStat(pid);
    if (stat === undefined) continue;
    let switches = 0;
    try {
      const text = readFileSync(`/proc/${pid}/status`, 'utf8');
      for (const m of text.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) switches += Number(m[1]);
    } catch {
      // Exited between the two reads.
    }
    out.push({ pid, cpuMicros: ((stat.utime + stat.stime) * 1e6) / CLOCK_TICKS_PER_SECOND, contextSwitches: switches });
  }
  return out;
}

/** Memory figures of one process, in bytes, from /proc/<pid>/status (0 when absent). */
export interface MemoryStatus {
  /** Resident set size (VmRSS). */
  rssBytes: number;
  /** Resident anonymous memory (RssAnon): the JS heap, malloc arenas and buffers. */
  rssAnonBytes: number;
  /** Size of the data + stack segments (VmData): what malloc and V8 have mapped. */
  dataBytes: number;
  /** Open file descriptors (sockets included). */
  fds: number;
}

/** VmRSS + RssAnon + VmData + fd count, summed over the trees rooted at `roots`. */
export function memoryStatus(roots: readonly number[]): MemoryStatus {
  const total: MemoryStatus = { rssBytes: 0, rssAnonBytes: 0, dataBytes: 0, fds: 0 };
  for (const pid of processTree(roots)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    total.rssBytes += statusKiB(text, 'VmRSS') * 1024;
    total.rssAnonBytes += statusKiB(text, 'RssAnon') * 1024;
    total.dataBytes += statusKiB(text, 'VmData') * 1024;
    try {
      total.fds += readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // The process exited between the two reads, or is not ours to look into.
    }
  }
  return total;
}

/** Resident set size of the trees rooted at `roots`, in bytes. */
export function rssBytes(roots: readonly number[]): number {
  return memoryStatus(roots).rssBytes;
}

/** Resident size of the `[heap]` mapping (the brk heap malloc grows) summed over the trees. */
export function brkHeapBytes(roots: readonly number[]): number {
  let total = 0;
  for (const pid of processTree(roots)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
    } catch {
      continue;
    }
    const at = text.indexOf(' [heap]\n');
    if (at < 0) continue;
    const rss = /\nRss:\s+(\d+) kB/.exec(text.slice(at));
    if (rss !== null) total += Number(rss[1]) * 1024;
  }
  return total;
}

interface Stat {
  ppid: number;
  utime: number;
  stime: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces or parentheses:
  // the fields after it start after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]) };
}

function existsPid(pid: number): boolean {
  return readStat(pid) !== undefined;
}

function statusKiB(text: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match === null ? 0 : Number(match[1]);
}

/**
 * CPU time the whole machine has been busy (all CPUs: user, nice, system, irq, softirq,
 * steal), from the first line of /proc/stat, in microseconds. Minus the bench's own
 * processes' CPU over the same span, it tells whether something else was running.
 */
export function machineBusyMicros(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0);
  return (busy * 1e6) / CLOCK_TICKS_PER_SECOND;
}
