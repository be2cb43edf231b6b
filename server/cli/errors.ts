/** An error the command reports as one sentence, with the exit code it means (1: a failure, 2: wrong usage or configuration). */
export class CliError extends Error {
  readonly exitCode: number
  constructor (message: string, exitCode = 1) {
    super(message)
    this.exitCode = exitCode
  }
}
