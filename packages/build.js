// Builds one package, run in its folder by its `build` script (and so by `npm pack`, through
// `prepack`): its tsconfig.json compiles what the package needs of ../../src into dist/
// (JavaScript and .d.ts, the same paths as in src/). The other files the code reads at run time
// (web pages, the Redis functions, the plain-JavaScript Node.js check) come along: each file of
// src/ that is not TypeScript is copied when the package compiled the folder it belongs to (its
// nearest folder holding TypeScript).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(import.meta.resolve('../src'));
rmSync('dist', { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const { status } = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (status !== 0) process.exit(status ?? 1);

const files = readdirSync(SRC, { recursive: true, withFileTypes: true }).filter((f) => f.isFile());
const hasTypeScript = new Set(files.filter((f) => f.name.endsWith('.ts')).map((f) => f.parentPath));
for (const file of files) {
  if (file.name.endsWith('.ts')) continue;
  let owner = file.parentPath;
  while (!hasTypeScript.has(owner) && owner !== SRC) owner = dirname(owner);
  const from = join(file.parentPath, file.name);
  if (existsSync(join('dist', owner.slice(SRC.length)))) cpSync(from, join('dist', from.slice(SRC.length)));
}
