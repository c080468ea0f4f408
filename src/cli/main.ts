#!/usr/bin/env node
// `nestjs-p2p`: run a standalone node from a JSON config, or print the peer id of a key file.
import { Command, InvalidArgumentError } from 'commander';
import { loadIdentityFile } from '../core/identity.js';
import { runNode } from './run-node.js';

const program = new Command()
  .name('nestjs-p2p')
  .description('Peer-to-peer transport for NestJS: run a node, or manage its identity.')
  .showHelpAfterError();

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
const json = (value: string): string => {
  if (!value.endsWith('.json')) throw new InvalidArgumentError('expected a .json file');
  return value;
};

program
  .command('node')
  .description('start a standalone node (a Nest app with P2PModule) and run until SIGINT/SIGTERM')
  .option('-c, --config <file>', 'JSON file with P2PModule options (validated like forRoot)', json)
  .option('-l, --listen <host:port>', 'listen address (overrides the config)')
  .option('-p, --peer <address>', 'peer to dial, host:port or <peerId>@host:port; repeatable (replaces the config list)', collect)
  .option('-k, --key-file <file>', 'private key file, created (mode 0600) when missing (overrides the config)')
  .option('--json', 'log one JSON object per line instead of human-readable lines', false)
  .action(async (options: { config?: string; listen?: string; peer?: string[]; keyFile?: string; json: boolean }) => {
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

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`nestjs-p2p: ${err.message}\n`);
  process.exitCode = 1;
});
