// Records (--write) or checks (--check) the hash of the sources dist/ was built from.
// The Go test console.TestDistIsFresh computes the same hash: for each input file in
// byte order of its slash-separated path, the line "<path> <sha256 of content>\n";
// the hash is the sha256 of those lines.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const inputs = ['index.html', 'package-lock.json', 'package.json', 'tsconfig.json', 'vite.config.ts', 'src'];

function walk(p, out) {
  if (statSync(p).isDirectory()) {
    for (const e of readdirSync(p)) walk(join(p, e), out);
  } else if (!/\.test\.tsx?$/.test(p)) {
    out.push(relative(root, p).split(sep).join('/'));
  }
}

export function sourceHash() {
  const files = [];
  for (const i of inputs) walk(join(root, i), files);
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f} ${createHash('sha256').update(readFileSync(join(root, f))).digest('hex')}\n`);
  }
  return h.digest('hex');
}

const file = join(root, 'dist', 'source-hash');
const got = sourceHash();
if (process.argv.includes('--write')) {
  writeFileSync(file, got + '\n');
  console.log(`dist/source-hash: ${got}`);
} else {
  const want = readFileSync(file, 'utf8').trim();
  if (want !== got) {
    console.error(`console/web/dist is stale (built from ${want}, sources are ${got}): run npm run build`);
    process.exit(1);
  }
}
