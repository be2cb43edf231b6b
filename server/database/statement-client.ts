import pg from 'pg'

/**
 * What a statement on a connection that many tenants share must carry: whose
 * statement it is, and the statement that sets up its transaction for that
 * tenant (strategy `schema`: its search_path; strategy `shared`: the tenant
 * proof and the search_path), with its values sent as bind parameters.
 */
export interface StatementSetup {
  /** The tenant whose statement this is: a connection that served another is reset first. */
  readonly owner: string
  readonly text: string
  readonly values: readonly unknown[]
}

export interface StatementClientOptions {
  /** The setup of a statement sent now, from the running tenant context; null outside one. */
  setup: () => StatementSetup | null
  /**
   * Reset the session (DISCARD ALL) before a statement of another tenant than
   * the connection's last one. Off behind a transaction-mode pooler, whose
   * own reset runs after every transaction (and whose server connections this
   * client cannot see change hands).
   */
  reset: boolean
  /** Turns a failure of the connection itself (the server went away) into the error the caller sees. */
  fault: (error: Error) => Error
  /** Returns the error a statement sent now gets instead of running (a tenant database's connection in another tenant's context), or null. */
  refuse?: () => Error | null
}

/** Statements that start a transaction: their setup follows them (inside the transaction), once for all it runs. */
const BEGIN = /^\s*(?:begin|start\s+transaction)\b/i
/** Other transaction control (knex's COMMIT, ROLLBACK, savepoints): nothing it runs reads a table, so no setup. */
const CONTROL = /^\s*(?:commit|end|rollback|abort|savepoint|release|prepare\s+transaction|set\s+transaction)\b/i
/**
 * Always the first step of its pipeline (a transaction another tenant left
 * open is rolled back before it, on a Sync of its own): PostgreSQL then runs
 * it and commits it at once, before the statements after it, so a failing
 * statement of the next tenant cannot roll the reset back.
 */
const RESET: Step = { text: 'DISCARD ALL', values: [] }

type Callback = (error: Error | null, result?: unknown) => void
interface Step { readonly text: string, readonly values: readonly unknown[] }

// pg's Query, as the Submittable it is (its handlers are declared in no typings).
interface PgQuery {
  text: string
  callback: Callback | undefined
  submit (connection: any): Error | null
  handleDataRow (msg: unknown): void
  handleCommandComplete (msg: unknown, connection: unknown): void
  handleError (error: Error, connection: unknown): void
}
const Query = pg.Query as unknown as new (config: pg.QueryConfig) => PgQuery

/**
 * One statement with the steps that must run in its transaction: `before`
 * it (a reset, its tenant's setup), or `after` it (the setup of a
 * transaction it begins). All are pipelined before one Sync (Parse, Bind,
 * Execute each), so they cost no round trip, their values travel as bind
 * parameters (in no query text another session can read, nor in any error
 * message), and they land on the same server connection behind a pooler in
 * transaction mode. The steps' own results are passed over. Errors that
 * mean the connection itself failed come back as `fault` makes them.
 */
class SetupQuery extends Query {
  private readonly before: readonly Step[]
  private readonly after: readonly Step[]
  /** Results still to pass over before the statement's own. */
  private skipping: number
  /** True once the statement's own result is complete (what follows is `after`'s). */
  private done = false
  private readonly fault: (error: Error) => Error

  constructor (config: pg.QueryConfig, before: readonly Step[], after: readonly Step[], fault: (error: Error) => Error) {
    // With steps in front, the extended protocol even without parameters: one transaction for them and the statement.
    super(before.length > 0 ? { ...config, queryMode: 'extended' } as pg.QueryConfig : config)
    this.before = before
    this.after = after
    this.skipping = before.length
    this.fault = fault
  }

  override submit (connection: any): Error | null {
    if (this.before.length === 0 && this.after.length === 0) return super.submit(connection)
    // One write for every message (pg corks its own part too; corks nest).
    connection.stream.cork?.()
    try {
      for (const step of this.before) sendStep(connection, step)
      if (this.after.length === 0) return super.submit(connection)
      // A statement with steps after it has no parameters and no rows (it begins a transaction).
      sendStep(connection, { text: this.text, values: [] })
      for (const step of this.after) sendStep(connection, step)
      connection.sync()
      return null
    } finally {
      connection.stream.uncork?.()
    }
  }

  override handleDataRow (msg: unknown): void {
    if (this.skipping > 0 || this.done) return
    super.handleDataRow(msg)
  }

  override handleCommandComplete (msg: unknown, connection: unknown): void {
    if (this.skipping > 0) { this.skipping--; return }
    if (this.done) return
    if (this.after.length > 0) this.done = true
    super.handleCommandComplete(msg, connection)
  }

  override handleError (error: Error, connection: unknown): void {
    super.handleError(this.fault(error), connection)
  }
}

function sendStep (connection: any, step: Step): void {
  connection.parse({ text: step.text })
  connection.bind({ values: step.values })
  connection.execute({})
}

/** pg's query arguments as one config and its callback (text, values, callback in any of pg's shapes). */
function normalize (config: string | pg.QueryConfig, values?: unknown, callback?: unknown): { config: pg.QueryConfig, callback: Callback | undefined } {
  const base: pg.QueryConfig = typeof config === 'string' ? { text: config } : { ...config }
  let cb = (config as { callback?: Callback }).callback
  if (typeof values === 'function') cb = values as Callback
  else {
    if (values !== undefined) base.values = values as unknown[]
    if (typeof callback === 'function') cb = callback as Callback
  }
  return { config: base, callback: cb }
}

/**
 * A node-postgres Client for the pools of tenant connections that tenants
 * share. Every statement carries its tenant's setup in the same round trip
 * and transaction: a statement outside a transaction has it in front (so it
 * must be one command, the extended protocol's rule); a transaction gets it
 * right after its BEGIN and needs none after (its statements may be
 * anything). When the connection last served another tenant, the session is
 * reset first (DISCARD ALL: temporary tables, cursors, session settings,
 * prepared statements, advisory locks; nothing crosses tenants), and a
 * transaction another tenant left open is rolled back.
 */
export function statementClient (options: StatementClientOptions): typeof pg.Client {
  return class StatementClient extends pg.Client {
    /** The tenant of the last statement; undefined while the session is fresh. */
    private owner: string | null | undefined = undefined
    /** True while the open transaction has its tenant's setup. */
    private setUp = false

    override query (config: any, values?: any, callback?: any): any {
      // A Submittable (a cursor, a stream) goes as it is, after a reset if one is due.
      if (config == null || typeof config.submit === 'function') {
        if (this.changeOwner(options.setup()?.owner ?? null) === 'reset') this.send(RESET)
        return super.query(config, values, callback)
      }
      const { config: normalized, callback: cb } = normalize(config, values, callback)
      const refused = options.refuse?.() ?? null
      if (refused !== null) {
        if (cb !== undefined) { process.nextTick(cb, refused); return undefined }
        return Promise.reject(refused)
      }
      const setup = options.setup()
      const change = this.changeOwner(setup?.owner ?? null)
      const before: Step[] = change === 'reset' ? [RESET] : []
      let after: Step[] = []
      // After a change of tenant, or the end of a lease, the connection is out of any transaction (one left open is rolled back first).
      const status = change !== 'same' || this.rolledBack ? 'I' : this.getTransactionStatus()
      this.rolledBack = false
      if (status !== 'T' && status !== 'E') this.setUp = false
      if (setup !== null && status !== 'E' && !this.setUp) {
        const text = normalized.text
        if (BEGIN.test(text)) {
          after = [setup]
          this.setUp = true
        } else if (!CONTROL.test(text)) {
          if (status === 'T') {
            // A transaction begun without it (another way than BEGIN): its setup goes first, once.
            this.send(setup)
            this.setUp = true
          } else {
            before.push(setup)
          }
        }
      }
      const query = new SetupQuery(normalized, before, after, options.fault)
      if (cb !== undefined) {
        query.callback = cb
        super.query(query)
        return undefined
      }
      return new Promise((resolve, reject) => {
        query.callback = (error, result) => { if (error !== null && error !== undefined) reject(error); else resolve(result) }
        super.query(query)
      })
    }

    /**
     * Ends a transaction left open on the connection (a route's raw `BEGIN`
     * with no COMMIT) as it goes back to its pool: the next lease, of this
     * tenant or another, starts outside it. Behind a transaction-mode pooler
     * this matters most: the pooler keeps the server connection, session and
     * transaction with this client while the transaction is open.
     */
    endLease (): void {
      if (this.endOpenTransaction()) this.rolledBack = true
    }

    /** Set once a ROLLBACK is queued, until the next statement (the status the server reports lags until it ran). */
    private rolledBack = false

    /**
     * Records `owner` as the session's. When the session served another
     * tenant, a transaction left open is rolled back whatever the pooling
     * (its statements ran with the other tenant's setup), and 'reset' says a
     * DISCARD ALL must go first (not behind a transaction-mode pooler, whose
     * own reset runs after every transaction).
     */
    private changeOwner (owner: string | null): 'same' | 'changed' | 'reset' {
      const previous = this.owner
      this.owner = owner
      if (previous === undefined || previous === owner) return 'same'
      // A transaction another tenant left open ends first (DISCARD ALL cannot run inside one either).
      this.endOpenTransaction()
      return options.reset ? 'reset' : 'changed'
    }

    /** Queues a ROLLBACK when the connection is inside a transaction (or a failed one); true when it did. */
    private endOpenTransaction (): boolean {
      this.setUp = false
      const status = this.getTransactionStatus()
      if (status !== 'T' && status !== 'E') return false
      this.send({ text: 'ROLLBACK', values: [] })
      return true
    }

    /**
     * Queues a statement of its own ahead of the caller's. Its failure needs
     * no report of its own: the caller's statement, next on the connection,
     * then fails (an aborted transaction) or runs without a tenant (and RLS
     * shows it nothing).
     */
    private send (step: Step): void {
      const query = new SetupQuery({ text: step.text, values: step.values as unknown[] }, [], [], options.fault)
      query.callback = () => {}
      super.query(query)
    }
  }
}
