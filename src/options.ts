// Options are checked where they are given, against one schema per metric or entry point: types,
// ranges, enums and defaults in one place. Schemas are zod's (the ecosystem's standard validator,
// which also gives the CLI its types); this file turns its issues into typed XaiEvalErrors that
// name the option, and suggests the closest valid key for a misspelled one.
import { z } from 'zod'

import { XaiEvalError } from './errors.js'

export { z }

/** Levenshtein distance, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!
    prev[0] = i
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1))
      diag = up
    }
  }
  return prev[b.length]!
}

/** The valid key closest to `key`, when it is close enough to be a likely misspelling. */
export function closest(key: string, valid: readonly string[]): string | undefined {
  let best: string | undefined
  let bestD = Number.POSITIVE_INFINITY
  for (const v of valid) {
    const d = distance(key, v)
    if (d < bestD) [best, bestD] = [v, d]
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined
}

/** The schema under wrappers: defaults, optionals and the input side of transforms. */
function unwrapSchema(s: unknown): unknown {
  for (;;) {
    if (s && typeof s === 'object' && 'in' in s && (s as { in: unknown }).in) s = (s as { in: unknown }).in
    else if (s && typeof s === 'object' && 'unwrap' in s && typeof (s as { unwrap: unknown }).unwrap === 'function') {
      s = (s as { unwrap(): unknown }).unwrap()
    } else return s
  }
}

function keysOf(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: unknown = unwrapSchema(schema)
  for (const p of path) s = unwrapSchema((s as { shape?: Record<string, unknown> }).shape?.[String(p)])
  const shape = (s as { shape?: Record<string, unknown> } | undefined)?.shape
  return shape ? Object.keys(shape) : []
}

/** A short readable form of any value, for error messages (never throws). */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'function') return 'a function'
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`
  if (typeof v === 'symbol') return v.toString()
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return Object.prototype.toString.call(v)
  }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input
  for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p] : undefined
  return v
}

/**
 * Parses `input` (`undefined` = no options) with `schema`, or throws `INVALID_OPTION` naming the
 * option (`prefix.key`): an unknown key with the closest valid one, a wrong type or range with
 * what was expected and what was given.
 */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.output<S> {
  const name = (path: readonly PropertyKey[]) => [prefix, ...path.map(String)].filter(Boolean).join('.') || 'options'
  if (input === null || (input !== undefined && (typeof input !== 'object' || Array.isArray(input)))) {
    throw new XaiEvalError('INVALID_OPTION', prefix || 'options', `expected an options object or undefined, got ${describeValue(input)}`)
  }
  const r = schema.safeParse(input ?? {})
  if (r.success) return r.data
  const issue = r.error.issues[0]!
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!
    const valid = keysOf(schema, issue.path)
    const hint = closest(key, valid)
    throw new XaiEvalError(
      'INVALID_OPTION',
      name([...issue.path, key]),
      `unknown option${hint ? ` (did you mean '${hint}'?)` : ''}; valid options: ${valid.join(', ') || 'none'}`,
    )
  }
  const got = valueAt(input, issue.path)
  throw new XaiEvalError('INVALID_OPTION', name(issue.path), `${issue.message.replace(/^Invalid input: /, '')}, got ${describeValue(got)}`)
}

// ---------------------------------------------------------------------------------------------
// Shared schemas

/** A seed: a non-negative safe integer. */
export const seed = z.int().min(0, 'expected a non-negative integer seed').max(Number.MAX_SAFE_INTEGER)

/** A count ≥ 1 with an upper bound that keeps allocations sane. */
export const count = (max = 1_000_000) => z.int().min(1).max(max)

/** A finite number. */
export const finite = z.number().refine(Number.isFinite, 'expected a finite number')
