import { OPTIONS, envName, flagName, type Config } from '../config/options.js';

/** One flag of a command besides the config options. */
export interface CommandFlag {
  name: string;
  value: string;
  doc: string;
  default?: string;
}

/** A command's own flags and the config options it reads: drives its parsing and its --help. */
export interface CommandSpec {
  usage: string;
  flags: readonly CommandFlag[];
  /** Config options the command reads; `required` ones it cannot run without. */
  config: ReadonlyArray<{ key: keyof Config; required?: boolean }>;
}

const STATUS_FLAGS: readonly CommandFlag[] = [
  { name: 'token', value: 'JWT', doc: 'a token with the admin grant' },
  { name: 'json', value: '', doc: 'print the answer as JSON', default: 'false' },
  { name: 'cluster', value: '', doc: 'every live node of the shared database', default: 'false' }
];

/** The commands with their own --help (serve and agent use the general one). */
export const COMMAND_SPECS: Record<'audit' | 'status' | 'reload' | 'sign' | 'token', CommandSpec> = {
  audit: {
    usage: 'zenconn audit [options]: query the audit trail in the database (no server needed)',
    flags: [
      { name: 'since', value: 'T', doc: 'rows at or after T (ISO-8601, or a duration ago: 15m, 2h, 7d)' },
      { name: 'until', value: 'T', doc: 'rows before T (exclusive)' },
      { name: 'channel', value: 'C', doc: 'rows of this channel' },
      { name: 'session', value: 'ID', doc: 'rows of this session' },
      { name: 'user', value: 'U', doc: 'rows of this user' },
      { name: 'type', value: 'T', doc: 'rows of this frame type' },
      { name: 'direction', value: 'in|out|system', doc: 'rows of this direction' },
      { name: 'message', value: 'ID', doc: 'rows of this message' },
      { name: 'order', value: 'desc|asc', doc: 'newest or oldest first', default: 'desc' },
      { name: 'limit', value: 'N', doc: 'rows printed (0 = all)', default: '100' },
      { name: 'format', value: 'table|json|ndjson', doc: 'output format', default: 'table' }
    ],
    config: [{ key: 'database' }, { key: 'auditJournalDir' }, { key: 'config' }]
  },
  status: {
    usage: "zenconn status [options]: print an agent's workers and sessions",
    flags: STATUS_FLAGS,
    config: [{ key: 'host' }, { key: 'port' }, { key: 'tlsCert' }, { key: 'database' }, { key: 'staleServerMs' }, { key: 'config' }]
  },
  reload: {
    usage: "zenconn reload [options]: rolling restart of an agent's workers",
    flags: STATUS_FLAGS,
    config: [{ key: 'host' }, { key: 'port' }, { key: 'tlsCert' }, { key: 'jwtSecret' }, { key: 'config' }]
  },
  sign: {
    usage: "zenconn sign --session ID --channel NAME: print a private channel's token for a session",
    flags: [
      { name: 'session', value: 'ID', doc: 'the session id (a canonical UUID); required' },
      { name: 'channel', value: 'NAME', doc: 'the private channel; required' }
    ],
    config: [{ key: 'channelSecret', required: true }, { key: 'config' }]
  },
  token: {
    usage: 'zenconn token --sub USER [options]: mint an HS256 JWT (development)',
    flags: [
      { name: 'sub', value: 'USER', doc: 'the user id; required' },
      { name: 'grants', value: 'a,b', doc: 'comma-separated grants', default: 'none' },
      { name: 'expires-in', value: 'DURATION', doc: 'lifetime (1h, 30m, 7d)', default: '1h' }
    ],
    config: [{ key: 'jwtSecret', required: true }, { key: 'config' }]
  }
};

/** The default of a command's flag, as its --help prints it. */
export function flagDefault(command: keyof typeof COMMAND_SPECS, name: string): string {
  const d = COMMAND_SPECS[command].flags.find((f) => f.name === name)?.default;
  if (d === undefined) throw new Error(`${command} --${name} has no default`);
  return d;
}

/** The flag names a command accepts besides the config options. */
export function commandFlags(command: keyof typeof COMMAND_SPECS): string[] {
  return COMMAND_SPECS[command].flags.map((f) => f.name);
}

/** The --help of one command, from its spec and the option table. */
export function commandHelp(command: keyof typeof COMMAND_SPECS): string {
  const spec = COMMAND_SPECS[command];
  const lines = [`Usage: ${spec.usage}`, '', 'Options:'];
  for (const f of spec.flags) {
    lines.push(`  ${`--${f.name}${f.value ? ' ' + f.value : ''}`.padEnd(32)} ${f.doc}${f.default !== undefined ? ` (default: ${f.default})` : ''}`);
  }
  lines.push('', 'Configuration it reads (flag, env var):');
  for (const { key, required } of spec.config) {
    const o = OPTIONS[key];
    const def = required ? ' (required)' : o.default === null ? ' (default: unset)' : ` (default: ${String(o.default)})`;
    lines.push(`  ${flagName(key).padEnd(32)} ${o.doc}${def}`);
    lines.push(`  ${''.padEnd(32)} env ${envName(key)}`);
  }
  lines.push('', 'Every option of `zenconn --help` is accepted too.');
  return lines.join('\n') + '\n';
}
