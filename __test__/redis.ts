// A throwaway redis-server per test: a free loopback port, no persistence unless asked, stopped by pid.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

export interface RedisServer {
  url: string
  port: number
  /** Stops the server (SIGKILL: nothing is saved unless `appendonly`). */
  stop(): Promise<void>
  /** Starts it again on the same port and directory. */
  start(): Promise<void>
}

/** Starts redis-server on a free loopback port; `appendonly` keeps the data across restarts. */
export async function startRedis(opts: { appendonly?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'xai-eval-redis-'))
  let proc: ChildProcess | undefined
  const start = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir]
    args.push('--appendonly', opts.appendonly ? 'yes' : 'no')
    if (opts.appendonly) args.push('--appendfsync', 'always')
    const p = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    proc = p
    await new Promise<void>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000)
      p.on('error', (e) => {
        clearTimeout(timer)
        reject(new Error(`cannot start redis-server (apt-get install -y redis-server): ${e.message}`))
      })
      p.stdout!.on('data', (b: Buffer) => {
        out += b.toString()
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
  }
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    async stop() {
      const p = proc
      if (!p || p.exitCode !== null) return
      const exited = new Promise((resolve) => p.once('exit', resolve))
      p.kill('SIGKILL')
      await exited
    },
  }
}
