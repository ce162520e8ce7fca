#!/usr/bin/env node
// xai-eval's command line. `evaluate` compares attribution methods of a data set on the registry's
// metrics and writes results.json, scores.csv and report.html; `demo` does the same on the embedded
// data; `report` re-renders a report from saved results; `metrics` lists the metrics and their
// default settings. Every failure is one line naming the file or flag at fault, and a non-zero exit.
import { readFileSync, statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import { type DemoData, loadDemo } from './data.js'
import { compareDemoMethods, DEMO_EXPLAINERS, type DemoComparison, type DemoExplainer, MAPS_SUFFIX } from './demo.js'
import { DISTRIBUTED_USAGE, distributedCli } from './distributed/cli.js'
import { XaiEvalError } from './errors.js'
import type { FacadeProgress } from './facade.js'
import { channelsLastModel, type Layout, openFiles } from './io/files.js'
import { openImages } from './io/images.js'
import { type JobResult, type MetricSpec, parseSamples, runJob, type Source, sha256File } from './job.js'
import type { Model } from './models/model.js'
import { OnnxModel, PROVIDERS } from './models/onnx-model.js'
import { progressPrinter } from './progress.js'
import { closest, describeValue, parseOptions, z } from './options.js'
import { registry } from './registry.js'
import { charts, renderReport } from './report.js'
import { checkWritable, readResults, resultsDocument, resultsJson, scoresCsv, writeAtomically } from './results.js'

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** The metrics run when `--metrics` is not given: the perturbation-curve and imputation families. */
const DEFAULT_METRICS = ['srg', 'pixel-flipping', 'deletion', 'insertion', 'road', 'soundness', 'completeness']

/** The demo's own preset (printed with the settings): coarser SRG/MIF steps keep it under seconds. */
const DEMO_OPTIONS: Record<string, Record<string, unknown>> = {
  srg: { featuresInStep: 8 },
  'pixel-flipping': { featuresInStep: 8 },
}

function usage(): string {
  const ids = [...registry.values()].map((c) => `${c.meta.id} ${c.meta.higherIsBetter ? '↑' : '↓'}`)
  return `xai-eval ${VERSION}: compare feature-attribution methods with faithfulness metrics.

Usage:
  xai-eval evaluate --model M.onnx --x X.npy --y Y.npy --a NAME=FILE [--a NAME=FILE …] [options]
  xai-eval evaluate --config run.json [options]
  xai-eval demo [options]            the embedded shape classifier: its five precomputed methods on the
                                     faithfulness metrics, then the built-in explainers next to them on
                                     the explanation metrics (deletion, insertion, sensitivity-N,
                                     randomization checks, pointing game on the object masks)
  xai-eval report RESULTS_DIR        re-render RESULTS_DIR/report.html from its results.json
  xai-eval metrics                   every metric with its direction, cost and default settings
  xai-eval --version | --help

evaluate scores every attribution method (--a) with every metric (--metrics), prints the methods ×
metrics table (mean, 95 % bootstrap interval, rank, best marked, significance against the best) and
writes results.json, scores.csv and report.html to --out.

Data (NumPy .npy files, or FILE.npz:KEY members; float16/32/64, C or Fortran order, any byte order):
  --x FILE               inputs [N, C, H, W] or [N, H, W, C]
  --y FILE               integer labels [N]
  --a NAME=FILE          one attribution method's maps [N, C|1, H, W] (or [N, H, W]); repeat per method
  --x DIR                or a folder of PNG/JPEG/WebP/TIFF images (class subfolders give the labels, else
                         --y); --a then takes an array or a folder of per-image NAME.npy files.
                         Preprocessing: --resize N (shorter side), --crop N (centre square), --mean
                         0.485,0.456,0.406 --std 0.229,0.224,0.225 (after scaling to [0, 1]), --grayscale
  --samples START:END    evaluate samples START…END−1 only (quick runs, shards), e.g. 0:1000
  --chunk N              samples read and evaluated at a time (default: 64 MiB of inputs)

Metrics:
  --metrics LIST         comma-separated ids or 'all' (default: ${DEFAULT_METRICS.join(',')})
                         ${ids.join(', ')}
  --set ID.OPTION=VALUE  a metric option (VALUE is JSON, or a plain string), e.g. --set deletion.baseline=blur
                         --set srg.featuresInStep=8 --set road.percentages=[0.1,0.5,0.9]; repeatable
  --seed N               seed of every metric's random draws and of the bootstrap (default 0)
  --reps N               bootstrap resamples (default 2000)
  --explainers LIST      demo only: built-in explainers compared with the precomputed maps
                         (default ${DEMO_EXPLAINERS.join(',')}; 'none' skips the second table)

Model:
  --model FILE           ONNX classifier
  --layout nchw|nhwc     the inputs' layout (default: from the model's input shape or the channel axis; refused when ambiguous)
  --input-name NAME      graph input (default: the first)
  --output-name NAME     graph output (default: the first)
  --output KIND          logits|probabilities: what the metrics score (default probabilities)
  --provider NAME        ${PROVIDERS.join('|')} (default cpu; falls back to cpu with a warning)
  --batch-size N|auto    rows per forward call (default auto: measured)
  --workers N|auto       ONNX Runtime sessions (default 2 on CPU; auto: the pool shape, sessions × threads, measured)

Output:
  --out DIR              results folder (default xai-eval-results; demo writes only when given)
  --png                  also write each chart as DIR/plots/NAME.png
  --json                 print the results document on stdout instead of the table
  --quiet                no progress output
  --config FILE          a JSON file with any of these settings (keys as in the flags, in camelCase:
                         model, x, y, a {NAME: FILE}, metrics [ids], options {ID: {OPTION: VALUE}},
                         layout, inputName, outputName, output, provider, batchSize, workers, seed,
                         reps, samples, chunk, out); flags override it

Exit codes: 0 done, 1 bad input or failure (one line on stderr), 2 bad usage, 130 interrupted
(Ctrl-C stops within a batch and writes the finished samples, marked partial).

Distributed runs (BullMQ over Redis):
${DISTRIBUTED_USAGE}`
}

const configSchema = z.strictObject({
  model: z.string().optional(),
  x: z.string().optional(),
  y: z.string().optional(),
  a: z.record(z.string(), z.string()).optional(),
  metrics: z.array(z.string()).optional(),
  options: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  layout: z.enum(['nchw', 'nhwc']).optional(),
  inputName: z.string().optional(),
  outputName: z.string().optional(),
  output: z.enum(['logits', 'probabilities']).optional(),
  provider: z.enum(PROVIDERS).optional(),
  batchSize: z.union([z.int().min(1), z.literal('auto')]).optional(),
  workers: z.union([z.int().min(1), z.literal('auto')]).optional(),
  seed: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  reps: z.int().min(100).max(1_000_000).optional(),
  samples: z.string().optional(),
  chunk: z.int().min(1).optional(),
  out: z.string().optional(),
  resize: z.int().min(1).optional(),
  crop: z.int().min(1).optional(),
  mean: z.array(z.number()).optional(),
  std: z.array(z.number()).optional(),
  grayscale: z.boolean().optional(),
})
type Config = z.output<typeof configSchema>

const FLAGS = {
  config: { type: 'string' },
  model: { type: 'string' },
  x: { type: 'string' },
  y: { type: 'string' },
  a: { type: 'string', multiple: true },
  metrics: { type: 'string' },
  set: { type: 'string', multiple: true },
  layout: { type: 'string' },
  'input-name': { type: 'string' },
  'output-name': { type: 'string' },
  output: { type: 'string' },
  provider: { type: 'string' },
  'batch-size': { type: 'string' },
  workers: { type: 'string' },
  seed: { type: 'string' },
  reps: { type: 'string' },
  explainers: { type: 'string' },
  samples: { type: 'string' },
  chunk: { type: 'string' },
  out: { type: 'string' },
  resize: { type: 'string' },
  crop: { type: 'string' },
  mean: { type: 'string' },
  std: { type: 'string' },
  grayscale: { type: 'boolean' },
  png: { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const

/** A usage error: exit code 2. */
class UsageError extends Error {}

const int = (flag: string, text: string, min: number) => {
  const v = Number(text)
  if (!/^\d+$/.test(text) || v < min)
    throw new XaiEvalError('INVALID_OPTION', `--${flag}`, `expected an integer ≥ ${min}, got ${describeValue(text)}`)
  return v
}

/** `ID.OPTION=VALUE` into the options map (VALUE parsed as JSON when it is JSON). */
function applySet(options: Record<string, Record<string, unknown>>, text: string): void {
  const m = /^([^.=]+)\.([^=]+)=(.*)$/s.exec(text)
  if (!m) throw new XaiEvalError('INVALID_OPTION', '--set', `expected ID.OPTION=VALUE, got ${describeValue(text)}`)
  const [, id, key, raw] = m as unknown as [string, string, string, string]
  if (!registry.has(id)) {
    const hint = closest(id, [...registry.keys()])
    throw new XaiEvalError('INVALID_OPTION', '--set', `unknown metric '${id}'${hint ? ` (did you mean '${hint}'?)` : ''}`)
  }
  let value: unknown = raw
  try {
    value = JSON.parse(raw)
  } catch {
    // a plain string, e.g. blur
  }
  options[id] = { ...options[id], [key]: value }
}

interface Settings extends Config {
  metricList: string[]
  /** Metrics of `--metrics all` left out, and why. */
  notRun: { id: string; reason: string }[]
  options: Record<string, Record<string, unknown>>
  /** The demo's built-in explainers (none: no explainer comparison). */
  explainers: DemoExplainer[]
  png: boolean
  json: boolean
  quiet: boolean
}

/** `--explainers LIST|none` (demo only). */
function explainersOf(text: string | undefined, command: string): DemoExplainer[] {
  if (text === undefined) return command === 'demo' ? [...DEMO_EXPLAINERS] : []
  if (command !== 'demo') throw new XaiEvalError('INVALID_OPTION', '--explainers', 'is for xai-eval demo only')
  if (text.trim() === 'none') return []
  const list = text.split(',').map((t) => t.trim())
  for (const [i, name] of list.entries()) {
    if (!DEMO_EXPLAINERS.includes(name as DemoExplainer)) {
      const hint = closest(name, [...DEMO_EXPLAINERS])
      throw new XaiEvalError(
        'INVALID_OPTION',
        '--explainers',
        `unknown explainer ${describeValue(name)}${hint ? ` (did you mean '${hint}'?)` : ''}: ${DEMO_EXPLAINERS.join(', ')} or none`,
      )
    }
    if (list.indexOf(name) !== i) throw new XaiEvalError('INVALID_OPTION', '--explainers', `'${name}' is given twice`)
  }
  return list as DemoExplainer[]
}

async function settingsOf(values: Record<string, unknown>, command: string): Promise<Settings> {
  let config: Config = {}
  if (typeof values.config === 'string') {
    let text: string
    try {
      text = await readFile(values.config, 'utf8')
    } catch (e) {
      throw new XaiEvalError('INVALID_OPTION', '--config', `cannot read ${values.config}: ${(e as Error).message}`)
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (e) {
      throw new XaiEvalError('INVALID_OPTION', '--config', `${values.config} is not JSON: ${(e as Error).message}`)
    }
    config = parseOptions(configSchema, parsed, `config ${values.config}`)
  }
  const s = { ...config } as Settings
  const str = (flag: string) => values[flag] as string | undefined
  for (const [flag, key] of [
    ['model', 'model'],
    ['x', 'x'],
    ['y', 'y'],
    ['input-name', 'inputName'],
    ['output-name', 'outputName'],
    ['samples', 'samples'],
    ['out', 'out'],
  ] as const) {
    if (str(flag) !== undefined) s[key] = str(flag)
  }
  const choice = <T extends string>(flag: string, allowed: readonly T[]): T | undefined => {
    const v = str(flag)
    if (v === undefined) return undefined
    if (!allowed.includes(v as T)) {
      throw new XaiEvalError('INVALID_OPTION', `--${flag}`, `expected one of ${allowed.join(', ')}, got ${describeValue(v)}`)
    }
    return v as T
  }
  s.layout = choice('layout', ['nchw', 'nhwc'] as const) ?? s.layout
  s.output = choice('output', ['logits', 'probabilities'] as const) ?? s.output
  s.provider = choice('provider', PROVIDERS) ?? s.provider
  if (str('batch-size') !== undefined) s.batchSize = str('batch-size') === 'auto' ? 'auto' : int('batch-size', str('batch-size')!, 1)
  if (str('workers') !== undefined) s.workers = str('workers') === 'auto' ? 'auto' : int('workers', str('workers')!, 1)
  if (str('seed') !== undefined) s.seed = int('seed', str('seed')!, 0)
  if (str('reps') !== undefined) s.reps = int('reps', str('reps')!, 100)
  if (str('chunk') !== undefined) s.chunk = int('chunk', str('chunk')!, 1)
  if (str('resize') !== undefined) s.resize = int('resize', str('resize')!, 1)
  if (str('crop') !== undefined) s.crop = int('crop', str('crop')!, 1)
  for (const k of ['mean', 'std'] as const) {
    const v = str(k)
    if (v === undefined) continue
    const list = v.split(',').map(Number)
    if (list.some((x) => !Number.isFinite(x)))
      throw new XaiEvalError('INVALID_OPTION', `--${k}`, `expected numbers separated by commas, got ${describeValue(v)}`)
    s[k] = list
  }
  if (values.grayscale === true) s.grayscale = true
  const a = values.a as string[] | undefined
  if (a) {
    s.a = {}
    for (const spec of a) {
      const m = /^([^=]+)=(.+)$/.exec(spec)
      if (!m) throw new XaiEvalError('INVALID_OPTION', '--a', `expected NAME=FILE (e.g. gradient=a1.npy), got ${describeValue(spec)}`)
      if (m[1]! in s.a) throw new XaiEvalError('INVALID_OPTION', '--a', `method '${m[1]}' is given twice`)
      s.a[m[1]!] = m[2]!
    }
  }
  const list =
    str('metrics')
      ?.split(',')
      .map((t) => t.trim()) ??
    config.metrics ??
    DEFAULT_METRICS
  s.notRun = []
  if (list.length === 1 && list[0] === 'all') {
    // Every metric that runs on its defaults; the wrappers (qge, random-baseline-gap) need their metric.
    s.metricList = []
    for (const [id, cls] of registry) {
      try {
        new cls(config.options?.[id])
        s.metricList.push(id)
      } catch {
        const needs = cls.meta.needs.filter((n) => n !== 'attributions')
        s.notRun.push({
          id,
          reason:
            needs.length > 0
              ? `needs ${needs.join(' and ')}, which this run does not give`
              : `needs options without defaults (see xai-eval metrics; e.g. --metrics ${id} --set ${id}.metric='{"id":"srg"}')`,
        })
      }
    }
  } else s.metricList = list
  s.options = {}
  if (command === 'demo') {
    for (const [id, o] of Object.entries(DEMO_OPTIONS)) if (s.metricList.includes(id)) s.options[id] = { ...o }
  }
  for (const [id, o] of Object.entries(config.options ?? {})) {
    if (!registry.has(id)) throw new XaiEvalError('INVALID_OPTION', `config options.${id}`, `unknown metric '${id}'`)
    s.options[id] = { ...s.options[id], ...o }
  }
  for (const t of (values.set as string[] | undefined) ?? []) applySet(s.options, t)
  for (const id of Object.keys(s.options)) {
    if (!s.metricList.includes(id))
      throw new XaiEvalError('INVALID_OPTION', '--set', `'${id}' is not among the metrics run (${s.metricList.join(', ')})`)
  }
  s.explainers = explainersOf(str('explainers'), command)
  s.png = values.png === true
  s.json = values.json === true
  s.quiet = values.quiet === true
  return s
}

/** Metric specs with the seed applied to every metric that has one (unless set explicitly). */
function metricSpecs(s: Settings): MetricSpec[] {
  return s.metricList.map((id) => {
    if (!registry.has(id)) {
      const hint = closest(id, [...registry.keys()])
      throw new XaiEvalError(
        'INVALID_OPTION',
        '--metrics',
        `unknown metric '${id}'${hint ? ` (did you mean '${hint}'?)` : ''}; see xai-eval metrics`,
      )
    }
    const options = { ...s.options[id] }
    if (s.seed !== undefined && !('seed' in options)) {
      try {
        if ('seed' in new (registry.get(id)!)().params) options.seed = s.seed
      } catch {
        // a metric without defaults (e.g. qge needs its metric): its seed is set with --set
      }
    }
    return { id, options }
  })
}

/** A mean's interval as printed; none from fewer than two paired samples. */
const interval = (ci: readonly number[]) => (Number.isNaN(ci[0]) ? '[no interval: n < 2]' : `[${ci[0]!.toFixed(3)}, ${ci[1]!.toFixed(3)}]`)

function printTable(job: JobResult, header: string[], forwardCalls: number): void {
  for (const line of header) console.log(line)
  const byMetric = new Map(job.comparisons.map((c) => [c.metric, c]))
  const head = ['method', ...job.metrics.map((m) => `${m.id} ${m.higherIsBetter ? '↑' : '↓'}`)]
  const rows = job.methods.map((method) => [
    method,
    ...job.metrics.map((e) => {
      const c = byMetric.get(e.id)?.methods.find((x) => x.method === method)
      if (!c) return '–'
      const mark = c.best ? ' ★' : c.significant ? ' *' : '  '
      return `${c.mean.toFixed(3)} ${interval(c.ci)} #${c.rank}${mark}`
    }),
  ])
  const widths = head.map((_, i) => Math.max(...[head, ...rows].map((r) => [...r[i]!].length)))
  const line = (r: string[]) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
  console.log(line(head))
  console.log(widths.map((w) => '─'.repeat(w)).join('  '))
  for (const r of rows) console.log(line(r))
  const c0 = job.comparisons[0]
  console.log(
    `\nmean [95 % bootstrap interval, ${c0?.reps ?? 0} paired resamples] #rank; ★ best per metric (↑ higher / ↓ lower is better); * significantly worse than the best (paired bootstrap, 5 %)`,
  )
  for (const s of job.skipped) console.log(`not run: ${s.id}: ${s.reason}`)
  console.log(`${job.forwardRows} model rows in ${forwardCalls} forward calls, ${(job.ms / 1000).toFixed(1)} s.`)
}

/** Aligned text table: the first column left-aligned, the others right-aligned. */
function tableText(head: string[], rows: string[][]): string[] {
  const widths = head.map((_, i) => Math.max(...[head, ...rows].map((r) => [...r[i]!].length)))
  const line = (r: string[]) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
  return [line(head), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)]
}

const settingText = (params: Record<string, unknown>) =>
  Object.entries(params)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ')

/** The demo's methods × explanation-metrics table, in the style of the faithfulness table. */
function printComparison(c: DemoComparison, first: number): void {
  const { table } = c
  const n = Math.max(0, ...table.cells.map((x) => x.n))
  console.log(
    `\nexplanation methods: ${table.methods.length} methods × ${table.metrics.length} metrics (ExplanationMetrics) on samples ${first}…${first + n - 1}: the built-in explainers next to the demo's precomputed maps ('NAME${MAPS_SUFFIX}')`,
  )
  console.log('settings:')
  for (const [name, o] of Object.entries(c.explainers)) console.log(`  ${name} (built-in explainer): ${settingText(o)}`)
  for (const m of table.metrics) {
    // The randomized copies are of the demo model itself: its path and load options are left out here (results.json has them).
    const { onnx: _, modelOptions: __, ...params } = table.settings[m.id] ?? {}
    console.log(`  ${m.id} (${m.higherIsBetter ? 'higher' : 'lower'} is better): ${settingText(params)}`)
  }
  console.log('')
  const head = ['method', ...table.metrics.map((m) => `${m.id} ${m.higherIsBetter ? '↑' : '↓'}`)]
  const rows = table.methods.map((method) => [
    method,
    ...table.metrics.map((m) => {
      const x = table.cells.find((cell) => cell.method === method && cell.metric === m.id)!
      if (x.error) return 'n/a  '
      const mark = x.best ? ' ★' : x.significant ? ' *' : '  '
      return `${x.mean.toFixed(3)} ${interval(x.ci)} #${x.rank}${mark}`
    }),
  ])
  for (const line of tableText(head, rows)) console.log(line)
  console.log(
    `\nmean [${Math.round(100 * table.confidence)} % paired bootstrap interval] #rank (ties share the mean rank); ★ best per metric; * significantly worse than the best; n/a: precomputed maps cannot explain new (noisy or randomized) inputs`,
  )
  if (table.metrics.some((m) => m.id === 'sensitivity')) {
    console.log(
      table.settings.sensitivity?.normalise
        ? 'sensitivity: the mean absolute change of the map, each map divided by its peak |value| (normalise)'
        : "sensitivity: the mean absolute change of a method's own map values: compare it across methods whose maps share a scale",
    )
  }
  console.log(
    `${table.explanations.computed} explanations computed, ${table.explanations.reused} reused from the cache; ${c.modelRows} model rows (randomized copies not counted), ${(c.ms / 1000).toFixed(1)} s.`,
  )
}

/** The comparison as it goes into results.json. */
function comparisonDocument(c: DemoComparison) {
  const { toString: _, ...table } = c.table
  return { ...table, explainers: c.explainers, modelRows: c.modelRows, ms: c.ms }
}

function settingsLines(job: JobResult): string[] {
  return job.metrics.map(
    (e) =>
      `  ${e.id} (${e.higherIsBetter ? 'higher' : 'lower'} is better${e.attributions === '|a|' ? ', on |a|' : ''}): ${Object.entries(
        e.params,
      )
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(' ')}`,
  )
}

async function writePngs(dir: string, list: ReturnType<typeof charts>): Promise<Record<string, Uint8Array>> {
  // resvg (a maintained Rust SVG renderer with prebuilt npm binaries) turns the same SVGs into PNGs.
  const { Resvg } = await import('@resvg/resvg-js')
  void dir
  return Object.fromEntries(
    list.map((c) => [`${c.id}.png`, new Resvg(c.svg, { fitTo: { mode: 'zoom', value: 2 }, background: 'white' }).render().asPng()]),
  )
}

async function run(command: string, values: Record<string, unknown>, positionals: string[]): Promise<void> {
  if (command === 'metrics') {
    for (const cls of registry.values()) {
      let defaults = '(needs options, e.g. its metric)'
      try {
        defaults = JSON.stringify(new cls().params)
      } catch {}
      console.log(
        `${cls.meta.id} ${cls.meta.higherIsBetter ? '↑' : '↓'}  ${cls.meta.name} v${cls.meta.version}; ${cls.meta.cost}\n    defaults ${defaults}\n    ${cls.meta.reference}`,
      )
    }
    return
  }
  if (command === 'report') {
    const dir = positionals[1] ?? (values.out as string | undefined)
    if (!dir) throw new UsageError('report needs the results folder: xai-eval report RESULTS_DIR')
    const input = await readResults(dir)
    const list = charts(input)
    const files: Record<string, string | Uint8Array> = { 'report.html': renderReport(input, list) }
    await writeAtomically(dir, files)
    if (values.png === true) await writeAtomically(join(dir, 'plots'), await writePngs(dir, list))
    console.log(`${join(dir, 'report.html')} written (${list.length} charts).`)
    return
  }
  const s = await settingsOf(values, command)
  const specs = metricSpecs(s)
  const outDir = s.out ?? (command === 'evaluate' ? 'xai-eval-results' : undefined)
  let model: Model | undefined
  let source: Source & { close?(): Promise<void> }
  let demo: DemoData | undefined
  let describe: Record<string, unknown>
  let modelPath: string
  try {
    if (command === 'demo') {
      const d = await loadDemo()
      demo = d
      modelPath = demo.modelPath
      const [n, c, h, w] = demo.shape
      const plane = c * h * w
      source = {
        n,
        rowShape: [c, h, w],
        methods: Object.keys(demo.attributions),
        aChannels: Object.fromEntries(Object.keys(demo.attributions).map((m) => [m, 1])),
        read: async (start, end) => ({
          x: d.x.subarray(start * plane, end * plane),
          y: d.y.subarray(start, end),
          a: Object.fromEntries(Object.entries(d.attributions).map(([m, a]) => [m, a.subarray(start * h * w, end * h * w)])),
        }),
      }
      describe = { data: 'embedded demo', classes: demo.classes, shape: demo.shape }
    } else {
      for (const k of ['model', 'x'] as const) if (!s[k]) throw new XaiEvalError('INVALID_OPTION', `--${k}`, 'is required')
      if (!s.a || Object.keys(s.a).length === 0) throw new XaiEvalError('INVALID_OPTION', '--a', 'is required (NAME=FILE, once per method)')
      modelPath = s.model!
      describe = { x: s.x, y: s.y, a: s.a }
      source = undefined as unknown as Source
    }
    if (outDir) await checkWritable(outDir)
    const onnx = await OnnxModel.load(modelPath, {
      maxBatchSize: s.batchSize ?? 'auto',
      ...(s.workers === 'auto' ? { workers: 'auto', threads: 'auto' } : { workers: s.workers }),
      executionProviders: s.provider ? [s.provider] : undefined,
      output: s.output,
      inputName: s.inputName,
      outputName: s.outputName,
    })
    model = onnx
    if (onnx.outputNames.length > 1 && !s.outputName) {
      throw new XaiEvalError(
        'INVALID_OPTION',
        '--output-name',
        `${modelPath} has ${onnx.outputNames.length} outputs (${onnx.outputNames.join(', ')}): name the one to score`,
      )
    }
    let layout: Layout = 'nchw'
    if (command === 'evaluate' && statSync(s.x!, { throwIfNoEntry: false })?.isDirectory()) {
      const images = await openImages(s.x!, s.y, s.a!, {
        resize: s.resize,
        crop: s.crop,
        mean: s.mean,
        std: s.std,
        channels: s.grayscale ? 1 : 3,
      })
      source = images
      const [, c, h, w] = images.xShape
      const m = onnx.inputShape
      layout = s.layout ?? (m?.length === 4 && m[3] === c && m[1] !== c ? 'nhwc' : 'nchw')
      if (layout === 'nhwc') model = channelsLastModel(onnx)
      describe = {
        ...describe,
        images: images.n,
        preprocessing: { resize: s.resize, crop: s.crop, mean: s.mean, std: s.std, channels: c },
        xShape: [images.n, c, h, w],
      }
    } else if (command === 'evaluate') {
      if (!s.y) throw new XaiEvalError('INVALID_OPTION', '--y', 'is required')
      const files = await openFiles({ x: s.x!, y: s.y!, a: s.a! }, onnx.inputShape, s.layout)
      source = files
      layout = files.layout
      if (layout === 'nhwc') model = channelsLastModel(onnx)
      describe = { ...describe, xShape: files.xShape, layout }
    }
    const range = s.samples ? parseSamples(s.samples, source.n) : { first: 0, count: source.n }
    const controller = new AbortController()
    const onSigint = () => {
      if (controller.signal.aborted) process.exit(130)
      process.stderr.write(
        '\nxai-eval: interrupted; finishing the current batch and writing the finished samples (Ctrl-C again to quit now)\n',
      )
      controller.abort()
    }
    process.on('SIGINT', onSigint)
    const progress = s.quiet || s.json ? undefined : progressPrinter(process.stderr, source.methods.length)
    let job: JobResult
    let comparison: DemoComparison | undefined
    let comparisonInterrupted = false
    try {
      job = await runJob(model, source, {
        metrics: specs,
        first: range.first,
        count: range.count,
        chunk: s.chunk,
        reps: s.reps,
        seed: s.seed,
        signal: controller.signal,
        onProgress: progress?.onProgress,
      })
      // The demo's second table: the built-in explainers next to the precomputed maps, through the facade.
      if (demo && s.explainers.length > 0 && !job.partial) {
        progress?.finish() // its lines start on a clean line, not on the bar
        if (!s.quiet && !s.json) {
          process.stderr.write(
            `xai-eval: explaining with ${s.explainers.join(', ')} and scoring every method on the explanation metrics…\n`,
          )
        }
        try {
          comparison = await compareDemoMethods(onnx, demo, {
            first: range.first,
            count: range.count,
            explainers: s.explainers,
            seed: s.seed ?? 0,
            reps: s.reps,
            signal: controller.signal,
            ...(s.quiet || s.json
              ? {}
              : {
                  onProgress: (p: FacadeProgress) =>
                    process.stderr.write(
                      `xai-eval: ${p.metric} done for every method (${p.done} of ${p.total} explanation metrics, ${(p.ms / 1000).toFixed(1)} s)\n`,
                    ),
                }),
          })
        } catch (e) {
          if (!(e instanceof XaiEvalError && e.code === 'ABORTED')) throw e
          comparisonInterrupted = true
        }
      }
    } finally {
      progress?.finish()
      process.off('SIGINT', onSigint)
      await source.close?.()
    }
    const provenance = {
      xaiEval: VERSION,
      command,
      model: modelPath,
      modelSha256: await sha256File(modelPath),
      onnxruntime: (await import('onnxruntime-node')).env.versions.common,
      provider: onnx.provider,
      batchSize: onnx.maxBatchSize,
      workers: onnx.concurrency,
      seed: s.seed ?? 0,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      createdAt: new Date().toISOString(),
      ...describe,
    }
    const config = {
      metrics: specs.map((m) => m.id),
      options: Object.fromEntries(job.metrics.map((e) => [e.id, e.params])),
      samples: `${range.first}:${range.first + range.count}`,
      layout,
      inputName: onnx.inputName,
      outputName: onnx.outputName,
      output: onnx.output,
      provider: onnx.provider,
      batchSize: s.batchSize ?? 'auto',
      workers: onnx.concurrency,
      seed: s.seed ?? 0,
      reps: job.comparisons[0]?.reps ?? s.reps ?? 2000,
      ...(s.chunk ? { chunk: s.chunk } : {}),
      ...(command === 'demo' ? { explainers: s.explainers } : {}),
      ...(command === 'evaluate' ? { model: s.model, x: s.x, y: s.y, a: s.a } : {}),
    }
    job.skipped.push(...s.notRun)
    const doc = {
      ...resultsDocument(job, VERSION, config, provenance),
      ...(comparison ? { explainerComparison: comparisonDocument(comparison) } : {}),
    }
    if (s.json) console.log(resultsJson(doc))
    else {
      printTable(
        job,
        [
          `xai-eval ${command}: ${job.methods.length} methods × ${job.metrics.length} metrics on samples ${job.first}…${job.first + job.samples - 1}${job.partial ? ` (PARTIAL: ${job.samples} of ${job.requested})` : ''}; model on ${onnx.provider}, batch ${onnx.maxBatchSize} × ${onnx.concurrency} workers`,
          'settings:',
          ...settingsLines(job),
          '',
        ],
        onnx.stats.forwardPasses,
      )
      if (comparison) printComparison(comparison, range.first)
      if (comparisonInterrupted) console.log('\nexplainer comparison interrupted: not shown, not written')
    }
    if (outDir) {
      const list = charts(doc as never)
      await writeAtomically(outDir, {
        'results.json': resultsJson(doc),
        'scores.csv': scoresCsv(job),
        'report.html': renderReport(doc as never, list),
      })
      if (s.png) await writeAtomically(join(outDir, 'plots'), await writePngs(outDir, list))
      if (!s.json)
        console.log(`wrote ${join(outDir, 'results.json')}, scores.csv and report.html${s.png ? ` and ${list.length} PNGs in plots/` : ''}`)
    }
    if (job.partial || comparisonInterrupted) process.exitCode = 130
  } finally {
    await model?.close()
  }
}

async function main(argv: string[]): Promise<void> {
  if (await distributedCli(argv)) return
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof FLAGS; allowPositionals: true; tokens: true }>>
  try {
    parsed = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, tokens: true })
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
  const { values, positionals, tokens } = parsed
  const seen = new Set<string>()
  for (const t of tokens) {
    if (t.kind !== 'option') continue
    const flag = FLAGS[t.name as keyof typeof FLAGS] as { multiple?: boolean }
    if (!flag.multiple && seen.has(t.name)) throw new UsageError(`--${t.name} is given twice (it takes one value)`)
    seen.add(t.name)
  }
  if (values.version) {
    console.log(VERSION)
    return
  }
  const command = positionals[0]
  if (values.help || command === 'help') {
    console.log(usage())
    return
  }
  if (command === undefined) throw new UsageError('no command given: evaluate, demo, report or metrics')
  if (!['evaluate', 'demo', 'report', 'metrics'].includes(command)) {
    const hint = closest(command, ['evaluate', 'demo', 'report', 'metrics'])
    throw new UsageError(`unknown command '${command}'${hint ? ` (did you mean '${hint}'?)` : ''}: evaluate, demo, report or metrics`)
  }
  if (positionals.length > (command === 'report' ? 2 : 1)) throw new UsageError(`unexpected argument '${positionals.at(-1)}'`)
  await run(command, values as Record<string, unknown>, positionals)
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof XaiEvalError) {
    if (e.code === 'ABORTED') {
      console.error('xai-eval: interrupted before any samples finished; nothing written')
      process.exitCode = 130
      return
    }
    console.error(`xai-eval: ${e.message.split('\n')[0]} (${e.code})`)
    process.exitCode = 1
  } else if (e instanceof UsageError) {
    console.error(`xai-eval: ${e.message}; see xai-eval --help`)
    process.exitCode = 2
  } else {
    console.error(`xai-eval: unexpected error: ${(e as Error)?.stack ?? String(e)}`)
    process.exitCode = 1
  }
})
