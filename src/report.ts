// The HTML report of a run: one self-contained page (no script, no external resource) with the
// methods × metrics table, every metric's curves with their spread over samples, per-sample score
// distributions, the agreement between metrics and the provenance. Charts are Apache ECharts
// rendered on the server to SVG strings (`renderToSVGString`): a maintained charting library with
// box plots, stacked bands and heat maps built in, and a server-side renderer with no DOM and no
// native dependency, so the page needs no JavaScript to show its charts and works offline.
import * as echarts from 'echarts'

import type { ComparisonTable } from './facade.js'
import type { Comparison } from './compare.js'
import type { Curves } from './metrics/curve.js'
import type { MetricResult } from './metrics/protocol.js'

/** What the report reads: the `results.json` of a run, decoded. */
export interface ReportInput {
  version: string
  partial: boolean
  first: number
  samples: number
  requested: number
  methods: string[]
  metrics: {
    id: string
    name: string
    version: number
    higherIsBetter: boolean
    params: Record<string, unknown>
    attributions: string
    cost: string
    reference: string
    results: Record<string, MetricResult & Record<string, unknown>>
  }[]
  comparisons: Comparison[]
  agreement: { metrics: string[]; rho: number[][] }
  skipped: { id: string; reason: string }[]
  provenance: Record<string, unknown>
  /** The demo's second table: built-in explainers and precomputed maps on the `ExplanationMetrics` facade's metrics. */
  explainerComparison?: Omit<ComparisonTable, 'toString'> & { explainers: Record<string, Record<string, unknown>> }
}

/** One chart: its title, the SVG, and how many data points were given to it. */
export interface Chart {
  id: string
  title: string
  svg: string
  points: number
}

const WIDTH = 640
const HEIGHT = 360

function render(option: echarts.EChartsCoreOption, width = WIDTH, height = HEIGHT): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height })
  try {
    chart.setOption({ animation: false, backgroundColor: '#fff', ...option })
    return chart.renderToSVGString()
  } finally {
    chart.dispose()
  }
}

/** ECharts' default palette, set per method so a method's band and line share a colour. */
const PALETTE = ['#5470c6', '#91cc75', '#fac858', '#ee6666', '#73c0de', '#3ba272', '#fc8452', '#9a60b4', '#ea7ccc']

const fmt = (v: number, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : String(v))

/** Curves of a result with a per-sample spread: its `curves`, and soundness/completeness's own shapes. */
function curvesOf(r: Record<string, unknown>): Record<string, Curves> {
  const out: Record<string, Curves> = {}
  const curves = r.curves as Record<string, Curves> | undefined
  if (curves && typeof curves === 'object') {
    for (const [name, c] of Object.entries(curves)) if (c?.x instanceof Float64Array && c.values instanceof Float64Array) out[name] = c
  }
  const curve = r.curve as Record<string, unknown> | undefined
  if (curve?.ratios instanceof Float64Array && r.ratios instanceof Float64Array) {
    out.soundness = { x: curve.ratios, values: r.ratios, points: curve.ratios.length }
  }
  if (curve?.thresholds instanceof Float64Array && r.values instanceof Float64Array) {
    // Completeness: the per-sample indicator after imputing above each threshold (column 0 is the clean input).
    const t = curve.thresholds.length
    const values = r.values
    const n = values.length / (t + 1)
    const imputed = new Float64Array(n * t)
    for (let i = 0; i < n; i++) imputed.set(values.subarray(i * (t + 1) + 1, (i + 1) * (t + 1)), i * t)
    out.indicator = { x: curve.thresholds, values: imputed, points: t }
  }
  return out
}

/** Mean and population std of each curve point over the samples (NaN left out). */
function pointStats(c: Curves): { mean: number[]; std: number[] } {
  const n = c.values.length / c.points
  const mean: number[] = []
  const std: number[] = []
  for (let p = 0; p < c.points; p++) {
    let s = 0
    let s2 = 0
    let k = 0
    for (let i = 0; i < n; i++) {
      const v = c.values[i * c.points + p]!
      if (Number.isFinite(v)) {
        s += v
        s2 += v * v
        k++
      }
    }
    const m = k ? s / k : Number.NaN
    mean.push(m)
    std.push(k ? Math.sqrt(Math.max(0, s2 / k - m * m)) : Number.NaN)
  }
  return { mean, std }
}

function curveChart(metric: string, name: string, methods: string[], byMethod: Record<string, Curves>): Chart {
  const first = byMethod[methods[0]!]!
  const xs = Array.from(first.x, (v) => fmt(v, 2))
  const series: unknown[] = []
  let points = 0
  for (const [k, m] of methods.entries()) {
    const c = byMethod[m]
    if (!c) continue
    const color = PALETTE[k % PALETTE.length]
    const { mean, std } = pointStats(c)
    points += mean.filter(Number.isFinite).length
    const lo = mean.map((v, i) => v - std[i]!)
    const band = std.map((s) => 2 * s)
    series.push(
      { name: m, type: 'line', data: lo, stack: m, color, lineStyle: { opacity: 0 }, symbol: 'none', silent: true },
      {
        name: m,
        type: 'line',
        data: band,
        stack: m,
        color,
        lineStyle: { opacity: 0 },
        areaStyle: { opacity: 0.12 },
        symbol: 'none',
        silent: true,
      },
      { name: m, type: 'line', data: mean, color, symbol: 'none', lineStyle: { width: 2 } },
    )
  }
  return {
    id: `curve-${metric}-${name}`,
    title: `${metric}: ${name} (mean ± std over samples)`,
    points,
    svg: render({
      legend: { top: 0, data: methods },
      grid: { left: 56, right: 16, top: 36, bottom: 40 },
      xAxis: { type: 'category', data: xs, name: 'x', nameLocation: 'middle', nameGap: 26, boundaryGap: false },
      yAxis: { type: 'value', scale: true },
      series,
    }),
  }
}

/** Five-number summary for a box plot (quartiles by linear interpolation). */
function fiveNumbers(values: ArrayLike<number>): number[] {
  const v = Float64Array.from(Array.from(values).filter(Number.isFinite)).sort()
  if (v.length === 0) return []
  const q = (p: number) => {
    const h = (v.length - 1) * p
    const lo = Math.floor(h)
    return v[lo]! + (h - lo) * (v[Math.min(lo + 1, v.length - 1)]! - v[lo]!)
  }
  return [v[0]!, q(0.25), q(0.5), q(0.75), v[v.length - 1]!]
}

function boxChart(entry: ReportInput['metrics'][number], methods: string[]): Chart {
  const data = methods.map((m) => fiveNumbers(entry.results[m]!.scores))
  return {
    id: `box-${entry.id}`,
    title: `${entry.id}: per-sample scores (${entry.higherIsBetter ? 'higher' : 'lower'} is better)`,
    points: data.filter((d) => d.length === 5).length,
    svg: render(
      {
        grid: { left: 56, right: 16, top: 16, bottom: 40 },
        xAxis: { type: 'category', data: methods },
        yAxis: { type: 'value', scale: true },
        series: [{ type: 'boxplot', data }],
      },
      WIDTH,
      300,
    ),
  }
}

function agreementChart(a: ReportInput['agreement']): Chart {
  const data: [number, number, number | '-'][] = []
  for (const [i, row] of a.rho.entries()) {
    for (const [j, v] of row.entries()) data.push([j, i, Number.isFinite(v) ? Number(v.toFixed(2)) : '-'])
  }
  const size = Math.max(320, 80 + 56 * a.metrics.length)
  return {
    id: 'agreement',
    title: "Agreement between metrics: Spearman's ρ of the methods' ranks",
    points: data.length,
    svg: render(
      {
        grid: { left: 150, right: 16, top: 16, bottom: 110 },
        xAxis: { type: 'category', data: a.metrics, axisLabel: { rotate: 45 } },
        yAxis: { type: 'category', data: a.metrics },
        visualMap: { min: -1, max: 1, show: false, inRange: { color: ['#b2182b', '#f7f7f7', '#2166ac'] } },
        series: [{ type: 'heatmap', data, label: { show: true } }],
      },
      size,
      size,
    ),
  }
}

/** Every chart of the report, in page order. */
export function charts(input: ReportInput): Chart[] {
  const out: Chart[] = []
  for (const e of input.metrics) {
    const perMethod = Object.fromEntries(input.methods.map((m) => [m, curvesOf(e.results[m]!)]))
    const names = Object.keys(perMethod[input.methods[0]!] ?? {})
    for (const name of names) {
      out.push(curveChart(e.id, name, input.methods, Object.fromEntries(input.methods.map((m) => [m, perMethod[m]![name]!]))))
    }
  }
  for (const e of input.metrics) out.push(boxChart(e, input.methods))
  if (input.agreement.metrics.length > 1) out.push(agreementChart(input.agreement))
  return out
}

const html = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function table(input: ReportInput): string {
  const byMetric = new Map(input.comparisons.map((c) => [c.metric, c]))
  const head = input.metrics.map((e) => `<th title="${html(e.name)}">${html(e.id)} ${e.higherIsBetter ? '↑' : '↓'}</th>`).join('')
  const rows = input.methods.map((m) => {
    const cells = input.metrics.map((e) => {
      const c = byMetric.get(e.id)?.methods.find((x) => x.method === m)
      if (!c) return `<td data-method="${html(m)}" data-metric="${html(e.id)}">–</td>`
      const reps = byMetric.get(e.id)!.reps
      const p = c.p < 1 / reps ? `p < ${1 / reps}` : `p = ${fmt(c.p, 3)}`
      const sig = c.best
        ? '★ best'
        : Number.isNaN(c.p)
          ? 'not tested (fewer than 2 paired samples)'
          : c.significant
            ? `worse than best, ${p}`
            : `n.s. vs best (${p})`
      return `<td data-method="${html(m)}" data-metric="${html(e.id)}" class="${c.best ? 'best' : c.significant ? 'sig' : 'ns'}">
<b>${fmt(c.mean)}</b> <small>[${fmt(c.ci[0])}, ${fmt(c.ci[1])}]</small><br><small>rank ${c.rank} · ${sig}</small></td>`
    })
    return `<tr><th>${html(m)}</th>${cells.join('')}</tr>`
  })
  return `<table id="comparison"><thead><tr><th>method</th>${head}</tr></thead><tbody>${rows.join('\n')}</tbody></table>`
}

/** The methods × explanation-metrics table of the demo (`explainerComparison` in results.json). */
function explainerTable(c: NonNullable<ReportInput['explainerComparison']>): string {
  const head = c.metrics.map((m) => `<th>${html(m.id)} ${m.higherIsBetter ? '↑' : '↓'}</th>`).join('')
  const rows = c.methods.map((method) => {
    const cells = c.metrics.map((m) => {
      const x = c.cells.find((y) => y.method === method && y.metric === m.id)
      const at = `data-method="${html(method)}" data-metric="${html(m.id)}"`
      if (!x || x.error !== undefined) return `<td ${at} title="${html(x?.error ?? '')}">n/a</td>`
      const sig = x.best ? '★ best' : x.significant ? `worse than best, p = ${fmt(x.pValue, 3)}` : `n.s. vs best (p = ${fmt(x.pValue, 3)})`
      return `<td ${at} class="${x.best ? 'best' : x.significant ? 'sig' : 'ns'}">
<b>${fmt(x.mean)}</b> <small>[${fmt(x.ci[0])}, ${fmt(x.ci[1])}]</small><br><small>rank ${x.rank} · ${sig}</small></td>`
    })
    return `<tr><th>${html(method)}</th>${cells.join('')}</tr>`
  })
  const settingRows = [
    ...Object.entries(c.explainers).map(([name, o]) => [`${name} (built-in explainer)`, o] as const),
    ...c.metrics.map((m) => [m.id, c.settings[m.id] ?? {}] as const),
  ]
    .map(([name, o]) => `<tr><td>${html(name)}</td><td><code>${html(JSON.stringify(o))}</code></td></tr>`)
    .join('')
  return `<p>The built-in explainers next to the precomputed maps (<i>NAME (maps)</i>), every method scored by the
<code>ExplanationMetrics</code> facade on the same samples; each method's explanations are computed once and shared by every
metric. n/a: precomputed maps cannot explain new (noisy or randomized) inputs. ${c.explanations.computed} explanations computed,
${c.explanations.reused} reused.</p>
<table id="explainer-comparison"><thead><tr><th>method</th>${head}</tr></thead><tbody>${rows.join('\n')}</tbody></table>
<table><thead><tr><th>explainer / metric</th><th>settings</th></tr></thead><tbody>${settingRows}</tbody></table>`
}

function settings(input: ReportInput): string {
  const rows = input.metrics.map(
    (e) =>
      `<tr><td>${html(e.id)}</td><td>${e.higherIsBetter ? 'higher' : 'lower'} is better</td><td><code>${html(JSON.stringify(e.params))}</code></td><td>${html(e.attributions)}</td><td>${html(e.cost)}</td><td>${html(e.reference)}</td></tr>`,
  )
  return `<table><thead><tr><th>metric</th><th>direction</th><th>settings</th><th>maps</th><th>cost</th><th>reference</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
}

/** The whole page. */
export function renderReport(input: ReportInput, all: Chart[] = charts(input)): string {
  const c0 = input.comparisons[0]
  const figures = all
    .map(
      (c) =>
        `<figure class="chart" id="${html(c.id)}" data-points="${c.points}">${c.svg}<figcaption>${html(c.title)}</figcaption></figure>`,
    )
    .join('\n')
  const provenance = Object.entries(input.provenance)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `<tr><th>${html(k)}</th><td><code>${html(typeof v === 'string' ? v : String(JSON.stringify(v)))}</code></td></tr>`)
    .join('')
  const skipped = input.skipped.map((s) => `<li>${html(s.id)}: ${html(s.reason)}</li>`).join('')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xai-eval report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
td.best{background:#e6f4ea}td.sig{color:#555}code{font-size:12px;word-break:break-all}
.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #eee;padding:4px}figcaption{font-size:12px;color:#555}
.partial{background:#fff3cd;padding:8px;border:1px solid #e0c36b}
</style></head><body>
<h1>xai-eval: attribution methods compared</h1>
${input.partial ? `<p class="partial">Partial results: the run was interrupted after ${input.samples} of ${input.requested} samples.</p>` : ''}
<p>${input.methods.length} methods × ${input.metrics.length} metrics on samples ${input.first}…${input.first + input.samples - 1}.
Mean with its 95 % percentile bootstrap interval${c0 ? ` (${c0.reps} paired resamples, seed ${c0.seed})` : ''}; rank 1 is best in the metric's direction (↑ higher, ↓ lower is better);
★ marks the best method per metric, and every other method is tested against it on the paired per-sample scores
(bootstrap of the mean difference: significant when its 95 % interval excludes 0).</p>
<h2>Comparison</h2>
${table(input)}
${skipped ? `<p>Not run:</p><ul>${skipped}</ul>` : ''}
${input.explainerComparison ? `<h2>Explanation methods</h2>\n${explainerTable(input.explainerComparison)}` : ''}
<h2>Settings</h2>
${settings(input)}
<h2>Curves, distributions and agreement</h2>
<div class="charts">
${figures}
</div>
<h2>Provenance</h2>
<table id="provenance">${provenance}</table>
</body></html>
`
}
