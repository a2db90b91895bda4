import { existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Journal file names and their ownership. A file is `<stem>.<pid>.ndjson`, or with a tag
 * `<stem>.<pid>.<tag>.ndjson` (`r<n>`: a rotation; `c…`: a claim; `stop`: the last write
 * of a stopping process), the pid being its owning process's. A file whose owner is no
 * longer running is an orphan: the next process to start on that host renames it to its
 * own pid (an atomic claim: two processes starting together never replay the same file)
 * and replays it. The folder must therefore be local to the host.
 */
const FILE_RE = /^([^.]+)\.(\d+)(?:\.([A-Za-z0-9]+))?\.ndjson$/;

/**
 * Files some journal of this process holds (its own, and the orphans it replays): never
 * claimed by another one of the same process (tests run several nodes in one process).
 */
const held = new Set<string>();

/** Marks a file as held by a live journal of this process. */
export function holdFile(path: string): void {
  held.add(path);
}

/** Lets a file go: it may be claimed again once this process no longer writes it. */
export function releaseFile(path: string): void {
  held.delete(path);
}

/** Whether a live journal of this process holds the file. */
export function isHeld(path: string): boolean {
  return held.has(path);
}

/** A name part made safe for a file name: anything but `[A-Za-z0-9_-]` replaced. */
export function fileLabel(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, '_') || '_';
}

/** The path of a journal file this process owns; `seq` > 0 names the files that follow a rotation. */
export function ownFilePath(dir: string, stem: string, seq = 0): string {
  return join(dir, `${stem}.${process.pid}${seq > 0 ? `.r${seq}` : ''}.ndjson`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let claims = 0;

/**
 * Claims the orphaned journal files in `dir` whose stem `accept`s, oldest first: files
 * whose process is gone, or is this one but held by no live journal (a pid reused after a
 * restart in a container). Each is renamed to this process's pid before it is read.
 * Returns the claimed paths (held from now on; release them once replayed).
 */
export function claimOrphans(dir: string, accept: (stem: string) => boolean): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const found: Array<{ path: string; stem: string; mtimeMs: number }> = [];
  for (const name of names) {
    const m = FILE_RE.exec(name);
    if (!m || !accept(m[1]!)) continue;
    const path = join(dir, name);
    const pid = Number(m[2]);
    if (pid === process.pid ? held.has(path) : isRunning(pid)) continue;
    try {
      found.push({ path, stem: m[1]!, mtimeMs: statSync(path).mtimeMs });
    } catch {
      // Claimed by another process meanwhile.
    }
  }
  found.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : 1));
  const claimed: string[] = [];
  for (const f of found) {
    const target = join(dir, `${f.stem}.${process.pid}.c${Date.now().toString(36)}${(claims++).toString(36)}.ndjson`);
    if (existsSync(target)) continue;
    try {
      renameSync(f.path, target);
      held.add(target);
      claimed.push(target);
    } catch {
      // Another process claimed it first.
    }
  }
  return claimed;
}
