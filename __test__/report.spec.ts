// The report in a real browser: Debian's chromium driven by playwright-core (no downloaded browser).
// The page loads with no console error and no request but itself, every chart has data and drew
// marks, and the table has a cell for every method × metric. `.ci/run` installs chromium when missing.
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

import test from 'ava'
import { chromium } from 'playwright-core'

const run = promisify(execFile)
const cli = join(import.meta.dirname, '..', 'dist', 'cli.js')
const CHROMIUM = '/usr/bin/chromium'
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
]

test('report.html: self-contained, no console errors, no requests, every chart has data, every method × metric in the table', async (t) => {
  if (!existsSync(CHROMIUM)) return t.fail(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`)
  const out = mkdtempSync(join(tmpdir(), 'xai-eval-report-'))
  await run('node', [cli, 'demo', '--samples', '0:16', '--metrics', 'srg,deletion,road,soundness,completeness', '--quiet', '--out', out])
  const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
    methods: string[]
    metrics: { id: string }[]
    explainerComparison: { methods: string[]; metrics: { id: string }[] }
  }
  const html = readFileSync(join(out, 'report.html'), 'utf8')
  t.notRegex(html, /<script|<link|<img|(src|href)\s*=\s*["']?https?:|url\((?!#)/i, 'no scripts, stylesheets or remote resources')

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const problems: string[] = []
  const requests: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text())
  })
  page.on('pageerror', (e) => problems.push(e.message))
  page.on('request', (r) => requests.push(r.url()))
  const url = pathToFileURL(join(out, 'report.html')).href
  await page.goto(url, { waitUntil: 'load' })
  t.deepEqual(problems, [])
  t.deepEqual(requests, [url])

  const charts = await page.$$eval('figure.chart', (figs) =>
    figs.map((f) => ({
      id: f.id,
      points: Number(f.getAttribute('data-points')),
      marks: f.querySelectorAll('svg path').length,
      width: f.querySelector('svg')?.getBoundingClientRect().width ?? 0,
    })),
  )
  // Curves: srg (mif, lif), deletion, road (correct, probability), soundness, completeness; box plots; agreement.
  t.is(charts.length, 7 + doc.metrics.length + 1)
  for (const c of charts) {
    t.true(c.points > 0, `${c.id} has data`)
    t.true(c.marks > 5, `${c.id} drew marks`)
    t.true(c.width > 100, `${c.id} is laid out`)
  }
  const cells = await page.$$eval('#comparison td', (tds) => tds.map((td) => `${td.dataset.method}|${td.dataset.metric}|${td.textContent}`))
  t.is(cells.length, doc.methods.length * doc.metrics.length)
  for (const m of doc.methods) {
    for (const e of doc.metrics) {
      const cell = cells.find((c) => c.startsWith(`${m}|${e.id}|`))
      t.regex(cell ?? '', /\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]/, `${m} × ${e.id}`)
    }
  }
  t.is(await page.$$eval('#comparison td.best', (tds) => new Set(tds.map((td) => td.dataset.metric)).size), doc.metrics.length)
  // The demo's explainer table: every method × explanation metric, a number or n/a (maps that would have to re-explain).
  const ex = doc.explainerComparison
  const exCells = await page.$$eval('#explainer-comparison td', (tds) =>
    tds.map((td) => `${td.dataset.method}|${td.dataset.metric}|${td.textContent}`),
  )
  t.is(exCells.length, ex.methods.length * ex.metrics.length)
  for (const c of exCells) t.regex(c, /\|(\n?-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]|n\/a$)/, c)
  t.is(await page.$$eval('#explainer-comparison td.best', (tds) => new Set(tds.map((td) => td.dataset.metric)).size), ex.metrics.length)

  // `report` re-renders the same page from results.json alone; --png writes one PNG per chart.
  await run('node', [cli, 'report', out, '--png'])
  t.is(
    readFileSync(join(out, 'report.html'), 'utf8'),
    html.replace(/"createdAt"[^<]*/, (m) => m),
  )
  const png = readFileSync(join(out, 'plots', `${charts[0]!.id}.png`))
  t.is(png.subarray(1, 4).toString(), 'PNG')
})
