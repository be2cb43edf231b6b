import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { freePort } from '../server/demo/embedded-postgres.js'

/**
 * On a machine with two or more cores, the servers run on core 0 and the load
 * generator on core 1, so they do not take turns on one core (the same for
 * both sides of a comparison). Where taskset is missing this is skipped.
 */
export function pin (pid: number, core: number): void {
  if (cpus().length < 2) return
  try { execFileSync('taskset', ['-acp', String(core), String(pid)], { stdio: 'ignore' }) } catch {}
}

/** Forks a bench server script (`args[0]` is its mode, then the port it gets, then the rest), pinned to core 0, and waits until it listens. */
export async function startServer (script: URL, args: string[]): Promise<{ port: number, child: ChildProcess }> {
  const port = await freePort()
  const child = fork(fileURLToPath(script), [args[0] as string, String(port), ...args.slice(1)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  pin(child.pid as number, 0)
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve())
    child.once('exit', (code) => reject(new Error(`bench server ${fileURLToPath(script)} exited with ${String(code)}`)))
  })
  return { port, child }
}

/** Asks a bench server to stop, and kills it if it has not after 3 s. */
export async function stopServer (child: ChildProcess): Promise<void> {
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.send('stop')
    setTimeout(() => child.kill('SIGKILL'), 3000).unref()
  })
}
