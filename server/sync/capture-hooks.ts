import { v7 as uuidv7 } from 'uuid'
import type { EntityManager, EventArgs, EventSubscriber, FlushEventArgs, TransactionEventArgs } from '@mikro-orm/core'
import type { Run } from './run.js'
import { entityProperties, type ResourceSide, type SourceRow, type SyncedResource } from './resource.js'

/** Runs statements inside the flush's own transaction (the same connection: never a second one). */
export function runner (em: EntityManager): Run {
  const conn = em.getConnection()
  const trx = em.getTransactionContext()
  return async (sql, params = []) => await conn.execute(sql, params as any[], 'all', trx)
}

export function globalIdOf (r: SyncedResource, entity: object): string {
  return String((entity as Record<string, unknown>)[r.globalIdProperty])
}

/** Gives an entity being created a global id when it has none. */
export function ensureGlobalId (r: SyncedResource, entity: object): void {
  const e = entity as Record<string, unknown>
  if (e[r.globalIdProperty] == null) e[r.globalIdProperty] = uuidv7()
}

/** What an update changed: synced attributes, the soft-delete column. */
export function changed (args: EventArgs<any>, r: SyncedResource): { synced: boolean, soft: boolean } {
  const payload = args.changeSet?.payload ?? {}
  return { synced: r.attributes.some((a) => Object.hasOwn(payload, a)), soft: r.softDeletes && Object.hasOwn(payload, 'deletedAt') }
}

/** The entity of an event, as `shouldSync` and `creationDefaults` see a row. */
export function sourceRow (side: ResourceSide, args: EventArgs<any>): SourceRow {
  return entityProperties(side, args.entity as object)
}

/** The same entity as it was before the update (its original values over the current ones). */
export function sourceRowBefore (side: ResourceSide, args: EventArgs<any>): SourceRow {
  const now = sourceRow(side, args)
  const original = (args.changeSet?.originalEntity ?? {}) as Record<string, unknown>
  for (const prop of Object.keys(now)) if (Object.hasOwn(original, prop)) now[prop] = original[prop]
  return now
}

/**
 * What a capture recorded in each transaction, handed on once that
 * transaction commits (awaited, so an inline change reaches the other copies
 * before the flush resolves) and dropped when it rolls back. A nested
 * transaction (a savepoint) has no commit event of its own: what it recorded
 * stays queued for a worker.
 */
export class PerTransaction<T> {
  private readonly pending = new WeakMap<EntityManager, T[]>()
  private readonly onCommit: (items: T[]) => Promise<void>

  constructor (onCommit: (items: T[]) => Promise<void>) {
    this.onCommit = onCommit
  }

  add (em: EntityManager, items: T[]): void {
    const list = this.pending.get(em)
    if (list === undefined) this.pending.set(em, [...items])
    else list.push(...items)
  }

  has (em: EntityManager): boolean {
    return this.pending.has(em)
  }

  hooks (): Pick<EventSubscriber, 'afterFlush' | 'afterTransactionCommit' | 'afterTransactionRollback'> {
    const take = async (em: EntityManager): Promise<void> => {
      const items = this.pending.get(em)
      this.pending.delete(em)
      if (items !== undefined) await this.onCommit(items)
    }
    return {
      afterFlush: async (args: FlushEventArgs) => { if (!args.em.isInTransaction()) await take(args.em) },
      afterTransactionCommit: async (args: TransactionEventArgs) => { await take(args.em) },
      afterTransactionRollback: async (args: TransactionEventArgs) => { this.pending.delete(args.em) }
    }
  }
}
