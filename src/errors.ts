/** Machine-readable reason of an {@link XaiEvalError}. */
export type ErrorCode =
  /** Lengths or shapes of the inputs disagree. */
  | 'SHAPE_MISMATCH'
  /** An option or a label is out of its range. */
  | 'INVALID_OPTION'
  /** NaN or ±Inf in an input. */
  | 'NON_FINITE'
  /** Nothing to evaluate. */
  | 'EMPTY_INPUT'
  /** The model's output is not `[rows, classes]`, or the model failed. */
  | 'MODEL_OUTPUT'
  /** The model file or provider could not be loaded. */
  | 'MODEL_LOAD'
  /** An explainer failed or answered something that is not attributions. */
  | 'EXPLAINER'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** The model was closed: before the call, or while the call waited on it. */
  | 'CLOSED'
  /** No native addon loads on this platform: no prebuilt package and no local build. */
  | 'NATIVE_LOAD'
  /** The job queue (Redis) of a distributed run lost or failed work. */
  | 'QUEUE'
  /** A bug in xai-eval (a Rust panic is reported this way, never as a crash). */
  | 'INTERNAL'

/** Every error xai-eval raises on purpose: a code, the argument at fault and a readable message. */
export class XaiEvalError extends Error {
  override readonly name = 'XaiEvalError'

  constructor(
    readonly code: ErrorCode,
    /** The argument or option at fault, e.g. `'a'`, `'featuresInStep'`, `'model.output'`. */
    readonly arg: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${arg}: ${message}`, options)
  }
}

const CODES = new Set<string>([
  'SHAPE_MISMATCH',
  'INVALID_OPTION',
  'NON_FINITE',
  'EMPTY_INPUT',
  'MODEL_OUTPUT',
  'MODEL_LOAD',
  'EXPLAINER',
  'ABORTED',
  'CLOSED',
  'QUEUE',
  'INTERNAL',
])

/** Turns an error thrown by the native binding (`"CODE|arg|message"`) or an abort into an XaiEvalError. */
export function fromNative(err: unknown): unknown {
  if (err instanceof XaiEvalError) return err
  if (!(err instanceof Error)) return err
  if (err.name === 'AbortError' || (/abort/i.test(err.message) && !err.message.includes('|'))) {
    return new XaiEvalError('ABORTED', 'signal', 'the evaluation was aborted', { cause: err })
  }
  const [code, arg, ...rest] = err.message.split('|')
  if (code !== undefined && CODES.has(code) && arg !== undefined && rest.length > 0) {
    return new XaiEvalError(code as ErrorCode, arg, rest.join('|'), { cause: err })
  }
  // N-API's own conversion errors (a wrong type where a typed array or number was expected).
  return new XaiEvalError('INVALID_OPTION', 'argument', `an argument has the wrong type: ${err.message}`, { cause: err })
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedBy(signal)
}

/**
 * `work`, or a rejection with `reason()` as soon as `signal` fires, whichever comes first. Work
 * that never settles (a model call that hangs) is abandoned there: its late result or failure is
 * dropped, never reported.
 */
export function unlessAborted<T>(work: Promise<T>, signal: AbortSignal | undefined, reason: () => XaiEvalError): Promise<T> {
  if (!signal) return work
  if (signal.aborted) {
    work.catch(() => {})
    return Promise.reject(reason())
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reason())
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

/** The ABORTED error of `signal`. */
export function abortedBy(signal: AbortSignal | undefined): XaiEvalError {
  return new XaiEvalError('ABORTED', 'signal', 'the evaluation was aborted', { cause: signal?.reason })
}
