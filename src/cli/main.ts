import { readFileSync } from 'node:fs';
import { parseArgv, type ParsedArgs } from '../config/load.js';
import { OPTIONS, envName, flagName } from '../config/options.js';
import { COMMAND_SPECS, commandHelp } from './command-help.js';
import { serve } from './serve.js';
import { sign } from './sign.js';
import { token } from './token.js';

/** A CLI command: runs with the parsed arguments. */
type Command = (args: ParsedArgs) => void | Promise<void>;

const COMMANDS: Record<string, { run: () => Promise<Command>; summary: string }> = {
  serve: { run: async () => serve, summary: 'serve static files and WebSocket sessions in one process' },
  agent: { run: async () => (await import('./agent.js')).agent, summary: 'supervise worker processes that hold the connections' },
  status: { run: async () => (await import('./status.js')).status, summary: "print an agent's workers and sessions" },
  reload: { run: async () => (await import('./status.js')).reload, summary: "rolling restart of an agent's workers (as SIGHUP does)" },
  audit: { run: async () => (await import('./audit.js')).audit, summary: 'query the audit trail in the database (no server needed)' },
  sign: { run: async () => sign, summary: 'print the token of a private channel for a session' },
  token: { run: async () => token, summary: 'mint an HS256 JWT with the configured secret (development)' }
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function help(): string {
  const lines = [
    `zenconn ${version()} — a realtime WebSocket server`,
    '',
    'Usage: zenconn <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`),
    '',
    'Options (flag, env var; precedence: flag > env > --config file > default):'
  ];
  for (const [key, spec] of Object.entries(OPTIONS)) {
    const def = spec.default === null ? '' : ` (default: ${Array.isArray(spec.default) ? spec.default.join(',') || 'none' : String(spec.default)})`;
    lines.push(`  ${flagName(key).padEnd(28)} ${spec.doc}${key === 'accessLogFormat' ? ' (default: combined)' : def}`);
    lines.push(`  ${''.padEnd(28)} env ${envName(key)}`);
  }
  lines.push('', 'sign:  --session ID --channel NAME', 'token: --sub USER [--grants a,b] [--expires-in 1h]', 'Docs: README.md, docs/operations.md, docs/protocol.md');
  return lines.join('\n') + '\n';
}

/** The CLI entry point (bin/zenconn.js). */
export async function main(argv: string[]): Promise<void> {
  const args = parseArgv(argv);
  if (args.flags.get('version') === true || args.command === 'version') {
    process.stdout.write(version() + '\n');
    return;
  }
  if (args.flags.get('help') === true && args.command !== null && args.command in COMMAND_SPECS) {
    process.stdout.write(commandHelp(args.command as keyof typeof COMMAND_SPECS));
    return;
  }
  if (args.flags.get('help') === true || args.command === null || args.command === 'help') {
    process.stdout.write(help());
    return;
  }
  const cmd = COMMANDS[args.command];
  if (!cmd) {
    process.stderr.write(`zenconn: unknown command "${args.command}" (see zenconn --help)\n`);
    process.exit(2);
  }
  await (await cmd.run())(args);
}
