// The CLI from a checkout (bin/webpushd, npm start): the sources run as TypeScript, which the
// pinned Node.js 24 strips; any other Node.js is told so in one line first.
import { requireNode } from '../src/cli/require-node.js';

requireNode(24, 15, 'From a checkout, `npm ci` installs the pinned Node.js 24 into node_modules (it needs install scripts: not with --ignore-scripts); or put Node.js 24.15 or later first on the PATH.');
await import('../src/cli/main.ts');
