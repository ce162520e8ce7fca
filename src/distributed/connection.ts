// One way to reach Redis for workers, submitters and `cancel`: a `redis://host:port` URL or
// ioredis options. BullMQ needs `maxRetriesPerRequest: null` on the connections it blocks on.
import { Redis, type RedisOptions } from 'ioredis'

import { XaiEvalError } from '../errors.js'

/** `'redis://host:port'` (optionally `/db`), or ioredis options. */
export type Connection = string | RedisOptions

export function connect(connection: Connection, arg = 'connection'): Redis {
  const options: RedisOptions = { maxRetriesPerRequest: null, lazyConnect: false }
  if (typeof connection === 'string') {
    if (!/^rediss?:\/\//.test(connection)) {
      throw new XaiEvalError('INVALID_OPTION', arg, `expected a redis://host:port URL, got '${connection}'`)
    }
    return quiet(new Redis(connection, options))
  }
  if (connection === null || typeof connection !== 'object' || Array.isArray(connection)) {
    throw new XaiEvalError('INVALID_OPTION', arg, 'expected a redis://host:port URL or ioredis options')
  }
  return quiet(new Redis({ ...connection, ...options }))
}

/**
 * ioredis reconnects by itself and reports each failed attempt as an 'error' event, printed as
 * "Unhandled error event" when nobody listens. What matters to a run (a job Redis lost) is
 * detected where the jobs are read, so these are dropped here.
 */
export function quiet(redis: Redis): Redis {
  redis.on('error', () => {})
  return redis
}
