#!/usr/bin/env node
// The installed `webpushd` command: first the Node.js check (one line instead of a stack trace on
// an older Node.js), then the CLI built into dist/.
const { requireNode } = await import('../dist/cli/require-node.js').catch(() => {
  // only in a checkout, where this package's build has not run (bin/webpushd runs the sources)
  process.stderr.write('webpushd: this package is not built: run `npm run build`, or bin/webpushd in a checkout\n');
  process.exit(1);
});
requireNode(24, 15, 'Install Node.js 24 (the LTS line), 24.15 or later: its raw EC key formats and node:sqlite are needed.');
await import('../dist/cli/main.js');
