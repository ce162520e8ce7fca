#!/usr/bin/env node
// Checks what the npm tarballs contain and that they stay within a size budget.
//
//   node scripts/check-pack.mjs                       # dry-run pack of the main package
//   node scripts/check-pack.mjs main.json platform.json   # the `npm pack --json` output of real packs
//
// A JSON file whose package name is xai-eval-<platform> is checked as a platform package. Exits 1
// with one line per violation. The budgets are today's sizes plus headroom: a tarball that grows
// past them (a stray build folder, a binary in the main package, a new data file) is a decision to
// make on purpose, by raising the number here.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const MiB = 1024 * 1024
const BUDGET = {
  // Today: ~1.2 MiB packed, ~2.0 MiB unpacked: the demo's float32 data (data/demo, 1.2 MiB), the
  // compiled TypeScript of 33 metrics, the CLI and report, and the README (0.1 MiB).
  main: { packed: 1.5 * MiB, unpacked: 3 * MiB },
  // Today: the stripped linux-x64-gnu addon, ~1 MiB unpacked, ~0.4 MiB packed.
  platform: { packed: 1.5 * MiB, unpacked: 4 * MiB },
}
const MAIN_REQUIRED = [
  'package.json',
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  'index.d.ts',
  'dist/index.js',
  'dist/index.d.ts',
  'dist/cli.js',
  'native/binding.cjs',
  'native/binding.d.cts',
  'data/demo/manifest.json',
  'data/demo/model.onnx',
]
// Never in the main tarball: sources, tests, build output of other tools, binaries.
const MAIN_FORBIDDEN = [/\.node$/, /^src\//, /^crates\//, /^target\//, /^__test__\//, /^benches\//, /^scripts\//, /\.map$/, /\.tgz$/]

const fmt = (n) => `${(n / MiB).toFixed(2)} MiB`

function packs() {
  const files = process.argv.slice(2)
  if (files.length === 0) {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' })
    return JSON.parse(out)
  }
  return files.flatMap((f) => JSON.parse(readFileSync(f, 'utf8')))
}

const problems = []
for (const p of packs()) {
  const paths = p.files.map((f) => f.path)
  const platform = /^xai-eval-(.+)$/.exec(p.name)?.[1]
  const kind = platform ? 'platform' : 'main'
  const budget = BUDGET[kind]
  console.log(`${p.filename}: ${fmt(p.size)} packed (budget ${fmt(budget.packed)}), ${fmt(p.unpackedSize)} unpacked (budget ${fmt(budget.unpacked)}), ${p.entryCount} files`)
  if (p.size > budget.packed) problems.push(`${p.filename}: ${fmt(p.size)} packed is over the ${fmt(budget.packed)} budget`)
  if (p.unpackedSize > budget.unpacked) problems.push(`${p.filename}: ${fmt(p.unpackedSize)} unpacked is over the ${fmt(budget.unpacked)} budget`)
  if (platform) {
    // Exactly what napi create-npm-dirs + napi artifacts lay out, plus the licence.
    const expected = ['LICENSE', 'README.md', `xai-eval.${platform}.node`, 'package.json']
    for (const f of expected) if (!paths.includes(f)) problems.push(`${p.filename}: missing ${f}`)
    for (const f of paths) if (!expected.includes(f)) problems.push(`${p.filename}: unexpected ${f}`)
  } else {
    for (const f of MAIN_REQUIRED) if (!paths.includes(f)) problems.push(`${p.filename}: missing ${f}`)
    for (const f of paths) if (MAIN_FORBIDDEN.some((re) => re.test(f))) problems.push(`${p.filename}: must not ship ${f}`)
  }
}
for (const line of problems) console.error(line)
process.exit(problems.length > 0 ? 1 : 0)
