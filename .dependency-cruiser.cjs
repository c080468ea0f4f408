// Layers of src/, bottom to top: a file may import from its own folder and the folders below it,
// never from a folder above (src/README.md says what each one holds). `npm run lint:deps` checks
// this and import cycles; CI runs it.
const layers = [
  ['common'],
  ['wire', 'ring'],
  ['connection'],
  ['trust'],
  ['discovery', 'broadcast', 'directory'],
  ['node', 'sim'],
  ['nest'],
  ['cli'],
];
const rank = new Map(layers.flatMap((names, i) => names.map((name) => [name, i])));
const forbidden = [
  { name: 'no-circular', severity: 'error', comment: 'Import cycles make the layers meaningless.', from: {}, to: { circular: true } },
  {
    name: 'core-without-nest',
    severity: 'error',
    comment: 'The transport core runs without Nest: only src/nest and src/cli (and the Nest entry point) may import @nestjs/*.',
    from: { path: '^src/(common|wire|ring|connection|trust|discovery|broadcast|directory|node|sim)/' },
    to: { path: '@nestjs/' },
  },
];
for (const [name, i] of rank) {
  const above = [...rank].filter(([other, j]) => j > i || (j === i && other !== name)).map(([other]) => other);
  if (above.length === 0) continue;
  forbidden.push({
    name: `${name}-imports-only-below`,
    severity: 'error',
    comment: `src/${name}/ may import only from its own layer's folder and the layers below it.`,
    from: { path: `^src/${name}/` },
    to: { path: `^src/(${above.join('|')})/` },
  });
}
// Nothing in the runtime imports the simulator.
forbidden.push({ name: 'sim-not-in-runtime', severity: 'error', from: { path: '^src/', pathNot: '^src/sim/' }, to: { path: '^src/sim/' } });

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.build.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
