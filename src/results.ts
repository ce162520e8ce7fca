// What a run leaves on disk: results.json (everything, rebuildable with `readResults`), scores.csv
// (one row per sample × method × metric) and report.html. Each is written under a temporary name in
// the output folder and renamed at the end, so an interrupted or failed run never leaves a
// half-written file behind.
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

import { XaiEvalError } from './errors.js'
import type { JobResult } from './job.js'
import type { ReportInput } from './report.js'
import { decode, encode } from './serial.js'

export const RESULTS_FORMAT = 1

/** The results document: the job's results plus the configuration and provenance. */
export function resultsDocument(job: JobResult, version: string, config: unknown, provenance: Record<string, unknown>) {
  return {
    format: RESULTS_FORMAT,
    version,
    partial: job.partial,
    first: job.first,
    samples: job.samples,
    requested: job.requested,
    methods: job.methods,
    config,
    provenance,
    timings: { totalMs: job.ms, perMetricMs: Object.fromEntries(job.metrics.map((m) => [m.id, m.ms])) },
    forwardRows: job.forwardRows,
    metrics: job.metrics,
    comparisons: job.comparisons,
    agreement: job.agreement,
    skipped: job.skipped,
  }
}

/**
 * One CSV row per sample × method × metric: `sample,method,metric,score` (NaN where undefined), as
 * UTF-8 bytes encoded in blocks of lines: a million rows never exist as a million strings at once.
 */
export function scoresCsv(job: Pick<JobResult, 'metrics' | 'methods'>): Buffer {
  const blocks: Buffer[] = []
  let lines = ['sample,method,metric,score']
  const flush = () => {
    blocks.push(Buffer.from(`${lines.join('\n')}\n`))
    lines = []
  }
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s)
  for (const e of job.metrics) {
    for (const m of job.methods) {
      const r = e.results[m]!
      for (let i = 0; i < r.scores.length; i++) {
        lines.push(`${r.firstSample + i},${q(m)},${e.id},${r.scores[i]}`)
        if (lines.length === 4096) flush()
      }
    }
  }
  if (lines.length > 0) flush()
  return Buffer.concat(blocks)
}

/** Checks that `dir` can be created and written, before any work is done. */
export async function checkWritable(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true })
    const probe = await mkdtemp(join(dir, '.xai-eval-'))
    await rm(probe, { recursive: true })
  } catch (e) {
    throw new XaiEvalError('INVALID_OPTION', 'out', `cannot write to ${dir}: ${(e as Error).message}`, { cause: e })
  }
}

/** Writes `files` (name → text) into `dir`, each first under a temporary name, then renamed. */
export async function writeAtomically(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  await checkWritable(dir)
  const tmp = await mkdtemp(join(dir, '.xai-eval-'))
  try {
    for (const [name, body] of Object.entries(files)) await writeFile(join(tmp, name), body)
    for (const name of Object.keys(files)) await rename(join(tmp, name), join(dir, name))
  } catch (e) {
    throw new XaiEvalError('INVALID_OPTION', 'out', `cannot write the results to ${dir}: ${(e as Error).message}`, { cause: e })
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

/** JSON text of the results (typed arrays as base64, NaN exact). */
export function resultsJson(doc: unknown): string {
  return `${JSON.stringify(encode(doc), null, 1)}\n`
}

/** Reads a results folder's results.json back (for `xai-eval report`). */
export async function readResults(dir: string): Promise<ReportInput> {
  const path = join(dir, 'results.json')
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    throw new XaiEvalError('INVALID_OPTION', 'results', `cannot read ${path}: ${(e as Error).message}`, { cause: e })
  }
  let doc: Record<string, unknown>
  try {
    doc = decode(JSON.parse(text)) as Record<string, unknown>
  } catch (e) {
    throw new XaiEvalError('INVALID_OPTION', 'results', `${path} is not a results file: ${(e as Error).message}`, { cause: e })
  }
  if (doc?.format !== RESULTS_FORMAT || !Array.isArray(doc.metrics) || !Array.isArray(doc.methods)) {
    throw new XaiEvalError('INVALID_OPTION', 'results', `${path} is not a results file of format ${RESULTS_FORMAT}`)
  }
  return doc as unknown as ReportInput
}
