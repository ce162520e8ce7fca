// A model's open/closed state, shared by the backends: once closed, a model refuses new calls
// with CLOSED and the calls still waiting on it reject with CLOSED at once, instead of hanging or
// starting the backend again.
import { setMaxListeners } from 'node:events'

import { unlessAborted, XaiEvalError } from '../errors.js'

export class Lifecycle {
  private readonly gate = new AbortController()

  constructor() {
    // One listener per call in flight, from every evaluation sharing the model: not a leak.
    setMaxListeners(1024, this.gate.signal)
  }

  get closed(): boolean {
    return this.gate.signal.aborted
  }

  /** Throws CLOSED once the model is closed. */
  check(): void {
    if (this.closed) throw closedError()
  }

  /** `work`, or CLOSED as soon as the model closes; the late outcome of `work` is dropped. */
  guard<T>(work: Promise<T>): Promise<T> {
    return unlessAborted(work, this.gate.signal, closedError)
  }

  /** Marks the model closed; true the first time only. */
  close(): boolean {
    if (this.closed) return false
    this.gate.abort()
    return true
  }
}

export function closedError(): XaiEvalError {
  return new XaiEvalError('CLOSED', 'model', 'the model is closed')
}
