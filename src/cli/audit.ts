import { existsSync } from 'node:fs';
import type { ParsedArgs } from '../config/load.js';
import { ZenError } from '../errors.js';
import { createStore } from '../store/open-store.js';
import { parseStoreUrl } from '../store/store-url.js';
import type { AuditRecord, Store } from '../store/store.js';
import { journalKey } from '../audit/audit-journal.js';
import { AuditWriter } from '../audit/audit-writer.js';
import { iterateAudit, parseFilter, parseLimit, rowView, type AuditFilter } from '../audit/audit-query.js';
import { commandFlags, flagDefault } from './command-help.js';
import { configOrExit, fail } from './common.js';

const FORMATS = ['table', 'json', 'ndjson'] as const;
type Format = (typeof FORMATS)[number];

/** Rows printed when `--limit` is not given. */
const DEFAULT_LIMIT = Number(flagDefault('audit', 'limit'));

/**
 * `zenconn audit [--since T] [--until T] [--channel C] [--session ID] [--user U] [--type T]
 * [--direction in|out|system] [--message ID] [--order desc|asc] [--limit N] [--format table|json|ndjson]`
 *
 * Reads the audit trail straight from the database `serve` uses (`--database`,
 * `--config`, `ZENCONN_DATABASE`); no server needs to run. Times are ISO-8601 or a
 * duration ago (`15m`, `2h`, `7d`); `--until` is exclusive. Newest first by default;
 * `--limit` defaults to 100, `--limit 0` prints every matching row. `json` is an array of
 * rows keyed by the `audit` table's column names, `ndjson` one such object per line,
 * `table` a summary for a terminal (ids shortened to their last 8 characters).
 *
 * Journal files a crashed server left for this database on this host are replayed
 * into it first, so every acknowledged row is there to read.
 */
export async function audit(args: ParsedArgs): Promise<void> {
  const config = configOrExit(args, commandFlags('audit'));
  const get = (name: string): string | null => {
    const v = args.flags.get(name);
    if (v === undefined) return null;
    if (typeof v !== 'string') fail(new ZenError('ERR_CONFIG_INVALID', `--${name}: expects a value`));
    return v;
  };
  let filter: AuditFilter;
  let limit: number;
  try {
    filter = parseFilter(get);
    limit = parseLimit(get('limit'), DEFAULT_LIMIT, 0, Number.MAX_SAFE_INTEGER);
  } catch (err) {
    fail(new ZenError('ERR_CONFIG_INVALID', `--${(err as Error).message}`));
  }
  const format = (get('format') ?? flagDefault('audit', 'format')) as Format;
  if (!FORMATS.includes(format)) fail(new ZenError('ERR_CONFIG_INVALID', `--format: expected table, json or ndjson, got "${format}"`));

  let where;
  try {
    where = parseStoreUrl(config.database);
  } catch (err) {
    fail(err);
  }
  // Reading must not create an empty database where there was none (a mistyped path).
  if (where.kind === 'sqlite' && where.path !== ':memory:' && !existsSync(where.path)) {
    fail(new ZenError('ERR_STORE_UNREACHABLE', `sqlite:${where.path}`, 'no such database file'));
  }
  const store = createStore(config.database);
  try {
    await store.open();
  } catch (err) {
    fail(err);
  }
  try {
    await replayOrphans(store, config.auditJournalDir, journalKey(config.database));
    await print(store, filter, limit, format);
  } catch (err) {
    await store.close().catch(() => undefined);
    fail(err);
  }
  await store.close();
}

async function replayOrphans(store: Store, dir: string, key: string): Promise<void> {
  const writer = new AuditWriter({ store, serverId: 'cli', journalKey: key, journalDir: dir });
  const files = writer.claimOrphans();
  if (files === 0) return;
  const done = await writer.flush(60_000);
  await writer.close();
  process.stderr.write(
    done
      ? `zenconn: replayed ${files} audit journal file(s) a stopped server left in ${dir}\n`
      : `zenconn: some audit journal files in ${dir} could not be replayed yet; the rows below may be incomplete\n`
  );
}

function write(text: string): Promise<void> {
  if (process.stdout.write(text)) return Promise.resolve();
  return new Promise((resolve) => process.stdout.once('drain', () => resolve()));
}

async function print(store: Store, filter: AuditFilter, limit: number, format: Format): Promise<void> {
  const rows = iterateAudit(store, filter, limit);
  if (format === 'ndjson') {
    for await (const r of rows) await write(JSON.stringify(rowView(r, false)) + '\n');
    return;
  }
  if (format === 'json') {
    let first = true;
    await write('[');
    for await (const r of rows) {
      await write((first ? '\n  ' : ',\n  ') + JSON.stringify(rowView(r, false)));
      first = false;
    }
    await write(first ? ']\n' : '\n]\n');
    return;
  }
  const all: AuditRecord[] = [];
  for await (const r of rows) all.push(r);
  await write(table(all));
}

/** Last 8 characters of an id (a UUID v7 starts with its timestamp, so the end is what tells them apart). */
function shortId(id: string | null): string {
  if (id === null) return '-';
  return id.length > 9 ? '…' + id.slice(-8) : id;
}

function clip(text: string, max: number): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

/** A fixed-width table: one line per row, columns as wide as their widest value (capped). */
function table(rows: AuditRecord[]): string {
  const head = ['AT', 'DIR', 'TYPE', 'CHANNEL', 'SESSION', 'USER', 'RCPT', 'MESSAGE', 'PAYLOAD'];
  const caps = [24, 6, 16, 24, 9, 16, 7, 9, 60];
  const lines = rows.map((r) => {
    const v = rowView(r, false);
    return [
      v.at,
      v.direction,
      v.type,
      v.channel ?? '-',
      shortId(v.session_id),
      v.user_id ?? '-',
      v.recipients === null ? '-' : String(v.recipients),
      shortId(v.message_id),
      v.payload === null ? '-' : JSON.stringify(v.payload)
    ].map((cell, i) => clip(cell, caps[i]!));
  });
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 6 ? c.padStart(widths[i]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd() + '\n';
  return fmt(head) + lines.map(fmt).join('') + `(${rows.length} row${rows.length === 1 ? '' : 's'})\n`;
}
