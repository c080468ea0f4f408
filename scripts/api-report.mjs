// The public API of each entry point, as API Extractor reports it (api/*.api.md, checked in).
// `npm run api` fails when an entry point's API differs from its report; `npm run api -- --update`
// rewrites the reports, to be reviewed and committed with the change that made them.
import { Extractor, ExtractorConfig, ExtractorLogLevel } from '@microsoft/api-extractor';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const update = process.argv.includes('--update');
/**
 * package.json export → its declaration file, report name, and whether each type in its signatures
 * must be exported by it: health and metrics name the root's types (Peer, P2PConfig, MetricsSink).
 */
const entries = [
  ['nestjs-p2p', 'dist/index.d.ts', 'nestjs-p2p', true],
  ['nestjs-p2p/core', 'dist/core.d.ts', 'nestjs-p2p.core', true],
  ['nestjs-p2p/health', 'dist/nest/p2p.health.d.ts', 'nestjs-p2p.health', false],
  ['nestjs-p2p/metrics', 'dist/nest/p2p.metrics.d.ts', 'nestjs-p2p.metrics', false],
  ['nestjs-p2p/sim', 'dist/sim/index.d.ts', 'nestjs-p2p.sim', true],
];
mkdirSync(join(root, 'api'), { recursive: true });
mkdirSync(join(root, 'dist', 'api'), { recursive: true });
let failed = 0;
for (const [name, entry, report, selfContained] of entries) {
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: root,
      mainEntryPointFilePath: join(root, entry),
      compiler: { tsconfigFilePath: join(root, 'tsconfig.build.json') },
      apiReport: { enabled: true, reportFileName: `${report}.api.md`, reportFolder: join(root, 'api'), reportTempFolder: join(root, 'dist', 'api') },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        extractorMessageReporting: {
          default: { logLevel: ExtractorLogLevel.Warning },
          // A type in a public signature that its entry point does not export is a hole in the API.
          'ae-forgotten-export': { logLevel: selfContained ? ExtractorLogLevel.Error : ExtractorLogLevel.None, addToApiReportFile: false },
          // Documentation coverage is typedoc's check (npm run docs), not the report's.
          'ae-undocumented': { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
          'ae-missing-release-tag': { logLevel: ExtractorLogLevel.None },
          'ae-internal-missing-underscore': { logLevel: ExtractorLogLevel.None },
        },
        tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
      },
    },
    configObjectFullPath: join(root, 'api', `${report}.json`),
    packageJsonFullPath: join(root, 'package.json'),
  });
  const result = Extractor.invoke(config, { localBuild: update, showVerboseMessages: false });
  if (!result.succeeded) {
    failed += 1;
    console.error(`${name}: ${result.apiReportChanged ? `its API differs from api/${report}.api.md (npm run api -- --update, review the diff, commit it)` : 'API Extractor reported errors'}`);
  } else console.log(`${name}: API as in api/${report}.api.md${result.apiReportChanged ? ' (report updated)' : ''}`);
}
process.exit(failed ? 1 : 0);
