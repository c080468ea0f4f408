#!/usr/bin/env node
// `nestjs-p2p`: run a standalone node from a JSON config, or print the peer id of a key file.
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { loadIdentityFile } from '../common/identity.js';
import { formatStatus, formatTopology, getAdmin } from './admin-client.js';
import { parseAdminListen, type health } from './admin-server.js';
import type { AdminPeerRow, AdminTopology } from './admin-views.js';
import { CLI_LOG_LEVELS } from './cli-logger.js';
import { runNode, type RunNodeOptions } from './run-node.js';

// dist/cli/main.js -> the package's own package.json, in a clone as in node_modules.
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('nestjs-p2p')
  .description('Peer-to-peer transport for NestJS: run a node, or manage its identity.')
  .version(version, '-V, --version', 'print the nestjs-p2p version')
  .showHelpAfterError();

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
const json = (value: string): string => {
  if (!value.endsWith('.json')) throw new InvalidArgumentError('expected a .json file');
  return value;
};

const adminListen = (value: string): string => {
  const parsed = parseAdminListen(value);
  if (typeof parsed === 'string') throw new InvalidArgumentError(parsed);
  return value;
};

program
  .command('node')
  .description('start a standalone node (a Nest app with P2PModule) and run until SIGINT/SIGTERM')
  .option('-c, --config <file>', 'JSON file with P2PModule options (validated like forRoot)', json)
  .option('-l, --listen <host:port>', 'listen address (overrides the config)')
  .option('-p, --peer <address>', 'peer to dial, host:port or <peerId>@host:port; repeatable (replaces the config list)', collect)
  .option('-k, --key-file <file>', 'private key file, created (mode 0600) when missing (overrides the config)')
  .option('-s, --peer-store <file>', 'file where the node remembers the peers it connected to, and redials them after a restart (overrides the config)')
  .option('-e, --external-address <host:port>', 'address other peers should dial, when it differs from --listen (overrides the config)')
  .option('--admin-listen <host:port>', 'serve /metrics, /health, /peers, /topology (read-only HTTP) here; a port alone binds 127.0.0.1 (default: off)', adminListen)
  .option('--json', 'log one JSON object per line instead of human-readable lines; a line about a peer has peerId and address fields', false)
  .addOption(new Option('--log-level <level>', 'most verbose level logged').choices(CLI_LOG_LEVELS).default('log'))
  .option('-v, --verbose', 'log debug lines too (peer exchange, redials, refusals): --log-level debug', false)
  .action(async (options: RunNodeOptions) => {
    process.exitCode = await runNode(options);
  });

program
  .command('id')
  .description('print the peer id of a key file, creating the key (mode 0600) when the file is missing')
  .requiredOption('-k, --key-file <file>', 'private key file (PEM)')
  .action((options: { keyFile: string }) => {
    const { identity, created } = loadIdentityFile(options.keyFile);
    if (created) process.stderr.write(`wrote a new key to ${options.keyFile}\n`);
    process.stdout.write(`${identity.peerId}\n`);
  });

program
  .command('status')
  .description("print a node's health and peer table (id, address, direction, RTT, score, bytes, since) from its admin endpoint")
  .argument('<admin>', 'the node\'s --admin-listen address: host:port, a port (127.0.0.1), or a URL')
  .action(async (admin: string) => {
    const [state, { peers }] = await Promise.all([getAdmin<ReturnType<typeof health>>(admin, 'health'), getAdmin<{ peers: AdminPeerRow[] }>(admin, 'peers')]);
    process.stdout.write(formatStatus(state, peers));
  });

program
  .command('topology')
  .description('print the graph a node knows from its admin endpoint: its neighbours and those their peer exchange named')
  .argument('<admin>', 'the node\'s --admin-listen address: host:port, a port (127.0.0.1), or a URL')
  .action(async (admin: string) => {
    process.stdout.write(formatTopology(await getAdmin<AdminTopology>(admin, 'topology')));
  });

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`nestjs-p2p: ${err.message}\n`);
  process.exitCode = 1;
});
