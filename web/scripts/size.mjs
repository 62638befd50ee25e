// Prints the initial JavaScript of a built client (the scripts and module preloads index.html
// names), raw and gzipped at level 9, and fails when the gzipped total exceeds the budget
// (issue 7: 250 KB). Usage: node scripts/size.mjs [dist] [budget-bytes]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dist = process.argv[2] ?? 'dist';
const budget = Number(process.argv[3] ?? 250 * 1000);
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const srcs = [...html.matchAll(/<script[^>]*\ssrc="([^"]+\.js)"|<link[^>]*rel="modulepreload"[^>]*href="([^"]+\.js)"/g)].map((m) => m[1] ?? m[2]);
let raw = 0;
let gz = 0;
for (const src of srcs) {
  const bytes = readFileSync(join(dist, src));
  const zipped = gzipSync(bytes, { level: 9 }).length;
  raw += bytes.length;
  gz += zipped;
  console.log(`${src}: ${bytes.length} B, gzip ${zipped} B`);
}
console.log(`initial JS: ${srcs.length} file(s), ${raw} B, gzip ${gz} B (budget ${budget} B)`);
if (srcs.length === 0 || gz > budget) process.exit(1);
