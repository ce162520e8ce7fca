// When no native addon loads, importing xai-eval throws one typed XaiEvalError that names the
// platform, what was looked for and how to build from source, never napi-rs's bare Error.
// Each case runs in a child process: the addon loads once per process.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import test from 'ava'

import { nativePlatform, PREBUILT_PLATFORMS } from '../src/native.js'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Imports src/native.ts in a fresh Node with `env` added; resolves with what the import threw. */
function importError(env: Record<string, string>): Promise<{ name: string; code: string; arg: string; message: string } | null> {
  const script = `
    try { await import('./src/native.ts'); console.log('null') }
    catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, arg: e.arg, message: e.message })) }`
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import=tsx', '--input-type=module', '-e', script],
      { cwd: root, env: { ...process.env, ...env } },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout.trim()))),
    )
  })
}

test("the platform name matches the file napi build wrote and package.json's targets", async (t) => {
  t.true(existsSync(join(root, 'native', `xai-eval.${nativePlatform()}.node`)), nativePlatform())
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    optionalDependencies: Record<string, string>
    napi: { targets: string[] }
  }
  t.deepEqual(Object.keys(pkg.optionalDependencies).sort(), PREBUILT_PLATFORMS.map((p) => `xai-eval-${p}`).sort())
  t.is(pkg.napi.targets.length, PREBUILT_PLATFORMS.length)
})

test('an addon that does not load is a NATIVE_LOAD error naming the platform, the package and the source build', async (t) => {
  const e = await importError({ NAPI_RS_NATIVE_LIBRARY_PATH: '/nonexistent/xai-eval.node' })
  t.truthy(e)
  if (!e) return
  t.is(e.name, 'XaiEvalError')
  t.is(e.code, 'NATIVE_LOAD')
  t.is(e.arg, 'native')
  const platform = nativePlatform()
  t.regex(e.message, new RegExp(`on ${platform} \\(Node v`))
  t.true(e.message.includes(`xai-eval-${platform}`), 'names the platform package')
  t.true(e.message.includes('NAPI_RS_NATIVE_LIBRARY_PATH=/nonexistent/xai-eval.node'), 'names the override it tried')
  t.regex(e.message, /Rust >= 1\.\d+ with cargo/)
  t.true(e.message.includes("Cannot find module '/nonexistent/xai-eval.node'"), 'keeps the underlying load error')
})

test('the local build loads when nothing overrides it', async (t) => {
  t.is(await importError({}), null)
})
