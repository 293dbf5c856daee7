// Builds one package, run in its folder by its `build` script (and so by `npm pack`, through
// `prepack`): its tsconfig.json compiles what the package needs of ../../src into dist/
// (JavaScript and .d.ts, the same paths as in src/); each argument is a file or folder of src/
// copied as it is (the web pages, the plain-JavaScript Node.js check).
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

rmSync('dist', { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const { status } = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (status !== 0) process.exit(status ?? 1);
for (const path of process.argv.slice(2)) cpSync(fileURLToPath(import.meta.resolve(`../src/${path}`)), `dist/${path}`, { recursive: true });
