import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../ui/render.js'
import { confirmPage } from '../ui/confirm.js'
import { field } from '../ui/forms.js'
import { RolloutRuns } from './rollout-runs.js'
import { rolloutDetail } from './rollout-view.js'
import { parseCanary } from '../../rollouts/rollout-input.js'
import { RolloutBusyError, RolloutFinishedError } from '../../errors.js'
import type { Rollout, RolloutInput } from '../../rollouts/rollout-types.js'

/** Rollouts are migrations over the fleet: the Fleet page's permission. */
const ADMIN = { admin: 'manage_tenants' as const }
/** Refusals the ledger answers with, shown to the admin as they are worded, never as a 500. */
const REFUSALS = new Set(['FST_TENANCY_INVALID_ROLLOUT', 'FST_TENANCY_ROLLOUT_FINISHED', 'FST_TENANCY_ROLLOUT_BUSY', 'FST_TENANCY_ROLLOUT_NOT_FOUND', 'FST_TENANCY_MISCONFIGURED'])
const refusal = (error: unknown): string | null => REFUSALS.has((error as { code?: string }).code ?? '') ? (error as Error).message : null

/** The start form's fields as the ledger takes them: numbers where they are digits, else as typed (the ledger says what is wrong). */
function inputOf (body: unknown): RolloutInput {
  const canary = field(body, 'canary')
  const maxFailures = field(body, 'maxFailures')
  const concurrency = field(body, 'concurrency')
  return {
    operation: 'migrate',
    ...(canary === '' ? {} : { canary: parseCanary(canary) }),
    ...(maxFailures === '' ? {} : { maxFailures }),
    ...(concurrency === '' ? {} : { concurrency: (/^[0-9]{1,6}$/.test(concurrency) ? Number(concurrency) : concurrency) as number })
  }
}

/**
 * Rollouts from the Fleet page: a form to start one (a migrate, with an
 * optional canary wave, error budget and concurrency per host), run in the
 * background by this instance; its page follows the ledger until it is
 * done, with Halt and Resume behind the same confirmations as other actions.
 */
export function rolloutRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const rollouts = ctx.tenancy.rollouts
  const runs = new RolloutRuns(rollouts, app.log)
  app.addHook('onClose', async () => { await runs.settled() })
  const fleet = `${ctx.prefix}/fleet`
  const base = `${fleet}/rollouts`
  const crumbs = (label: string, id?: string): Array<{ label: string, href: string | null }> => [
    { label: 'Dashboard', href: ctx.prefix },
    { label: 'Fleet', href: fleet },
    ...(id === undefined ? [] : [{ label: `Rollout ${id}`, href: `${base}/${id}` }]),
    { label, href: null }
  ]

  const form = async (
    request: FastifyRequest, reply: FastifyReply, values: Record<string, string>, error: string | null, status = 200
  ): Promise<FastifyReply> =>
    await renderPage(ctx, request, reply, 'fleet/rollout-new', 'Start a rollout', { values, error, crumbs: crumbs('Start a rollout') }, status)

  /** The rollout of the URL, or a 404 page (an id no rollout has, or not an id). */
  const load = async (request: FastifyRequest, reply: FastifyReply): Promise<Rollout | null> => {
    try {
      return await rollouts.get((request.params as { id: string }).id)
    } catch (error) {
      if ((error as { code?: string }).code !== 'FST_TENANCY_ROLLOUT_NOT_FOUND') throw error
      await renderPage(ctx, request, reply, 'error', 'Not found', { message: (error as Error).message }, 404)
      return null
    }
  }

  app.get('/fleet/rollouts/new', { config: ADMIN }, async (request, reply) => await form(request, reply, { canary: '', maxFailures: '', concurrency: '' }, null))

  app.post('/fleet/rollouts/new', { config: ADMIN }, async (request, reply) => {
    const values = { canary: field(request.body, 'canary').slice(0, 200), maxFailures: field(request.body, 'maxFailures').slice(0, 40), concurrency: field(request.body, 'concurrency').slice(0, 40) }
    let rollout: Rollout
    try {
      rollout = await rollouts.start({ ...inputOf(values), startedBy: request.admin?.email ?? 'admin' })
    } catch (error) {
      const text = refusal(error)
      if (text === null) throw error
      return await form(request, reply, values, text, 422)
    }
    runs.start(rollout.id, false)
    const total = rollout.counts.pending
    await ctx.audit.recordFor(request, 'fleet.rollout.start', { change: { rollout: rollout.id, operation: rollout.operation, tenants: total, skipped: rollout.counts.skipped, canary: values.canary || null, maxFailures: values.maxFailures || null, concurrency: values.concurrency || null } })
    return await redirectWith(ctx, request, reply, `${base}/${rollout.id}`, { type: 'success', text: `Rollout ${rollout.id} started: ${total} tenant(s) to migrate, ${rollout.counts.skipped} up to date already.` })
  })

  const migrateShared = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const results = await ctx.tenancy.migrate()
    const failed = results.filter((r) => !r.ok)
    await ctx.audit.recordFor(request, 'fleet.migrate', { change: { tenants: results.length, failed: failed.length } })
    return await redirectWith(ctx, request, reply, fleet, failed.length === 0
      ? { type: 'success', text: 'Migrated the shared tables.' }
      : { type: 'error', text: `The migration failed: ${failed.map((f) => f.error ?? 'failed').join('; ').slice(0, 500)}` })
  }

  // "Migrate all": a rollout with the defaults (every tenant behind, no canary), the one path a fleet migrate takes from the admin.
  app.post('/fleet/migrate', { config: ADMIN }, async (request, reply) => {
    const { rollouts: recent } = await rollouts.list({ page: 1, perPage: 20 })
    const going = recent.find((r) => r.status === 'running' || r.status === 'waiting')
    if (going !== undefined) return await redirectWith(ctx, request, reply, `${base}/${going.id}`, { type: 'info', text: `Rollout ${going.id} is going on already: halt it or let it finish before migrating all tenants again.` })
    // Strategy shared: its one set of tables is migrated once, not tenant by tenant.
    if (ctx.sharedTables) return await migrateShared(request, reply)
    let rollout: Rollout
    try {
      rollout = await rollouts.start({ operation: 'migrate', startedBy: request.admin?.email ?? 'admin' })
    } catch (error) {
      const text = refusal(error)
      if (text === null) throw error
      return await redirectWith(ctx, request, reply, fleet, { type: 'error', text })
    }
    runs.start(rollout.id, false)
    await ctx.audit.recordFor(request, 'fleet.rollout.start', { change: { rollout: rollout.id, operation: rollout.operation, tenants: rollout.counts.pending, skipped: rollout.counts.skipped, migrateAll: true } })
    return await redirectWith(ctx, request, reply, `${base}/${rollout.id}`, { type: 'success', text: `Migrating all tenants as rollout ${rollout.id}: ${rollout.counts.pending} tenant(s) to migrate, ${rollout.counts.skipped} up to date already.` })
  })

  app.get('/fleet/rollouts/:id', { config: ADMIN }, async (request, reply) => {
    const rollout = await load(request, reply)
    if (rollout === null) return reply
    const view = rolloutDetail(rollout, runs.isRunning(rollout.id))
    return await renderPage(ctx, request, reply, 'fleet/rollout', `Rollout ${rollout.id}`, {
      rollout: view,
      crumbs: crumbs(`Rollout ${rollout.id}`),
      // While it runs, the page looks again every 2 s (admin.js redraws it in place; without JavaScript, a meta refresh).
      // A run this process has just begun counts too: a resumed rollout reads "halted" until its runner takes the lease.
      refresh: rollout.status === 'running' || runs.isRunning(rollout.id) ? 2 : false,
      refreshMain: true
    })
  })

  for (const action of ['halt', 'resume'] as const) {
    app.get(`/fleet/rollouts/:id/${action}`, { config: ADMIN }, async (request, reply) => {
      const rollout = await load(request, reply)
      if (rollout === null) return reply
      // Nothing to confirm on a rollout the action cannot apply to: its page says why.
      const finished = rollout.status === 'done' || rollout.status === 'failed'
      if (finished || (action === 'halt' && rollout.status === 'halted')) {
        const text = finished ? `Rollout ${rollout.id} has finished (${rollout.status === 'done' ? 'done' : 'with failures'}); start a new rollout to run its tenants again.` : `Rollout ${rollout.id} is halted already.`
        return await redirectWith(ctx, request, reply, `${base}/${rollout.id}`, { type: 'info', text })
      }
      const pending = rollout.counts.pending
      return await confirmPage(ctx, request, reply, action === 'halt'
        ? {
            question: `Halt rollout ${rollout.id}?`,
            consequence: `The tenants being migrated now finish; the ${pending} pending tenant(s) wait until the rollout is resumed.`,
            action: `${base}/${rollout.id}/halt`,
            confirmLabel: `Halt rollout ${rollout.id}`,
            cancel: `${base}/${rollout.id}`,
            danger: true
          }
        : {
            question: `Resume rollout ${rollout.id}?`,
            consequence: rollout.status === 'waiting'
              ? `Its canary wave went well: the other ${pending} pending tenant(s) are migrated now.`
              : `Its ${pending} pending tenant(s) are migrated now, each at most once.`,
            action: `${base}/${rollout.id}/resume`,
            confirmLabel: `Resume rollout ${rollout.id}`,
            cancel: `${base}/${rollout.id}`,
            busy: 'Resuming the rollout…'
          })
    })
  }

  app.post('/fleet/rollouts/:id/halt', { config: ADMIN }, async (request, reply) => {
    const rollout = await load(request, reply)
    if (rollout === null) return reply
    const url = `${base}/${rollout.id}`
    // Halted meanwhile (another session): said so, and no second audit entry.
    if (rollout.status === 'halted') return await redirectWith(ctx, request, reply, url, { type: 'info', text: `Rollout ${rollout.id} is halted already.` })
    try {
      await rollouts.halt(rollout.id, `halted by ${request.admin?.email ?? 'an admin'}`)
    } catch (error) {
      const text = refusal(error)
      if (text === null) throw error
      return await redirectWith(ctx, request, reply, url, { type: 'error', text })
    }
    await ctx.audit.recordFor(request, 'fleet.rollout.halt', { change: { rollout: rollout.id } })
    return await redirectWith(ctx, request, reply, url, { type: 'success', text: `Rollout ${rollout.id} halted: the tenants in flight finish, no more start.` })
  })

  app.post('/fleet/rollouts/:id/resume', { config: ADMIN }, async (request, reply) => {
    const rollout = await load(request, reply)
    if (rollout === null) return reply
    const url = `${base}/${rollout.id}`
    // This process's run of a halted rollout lets go of it once its tenants in flight finish; then resume takes it again.
    if (rollout.status === 'halted') await runs.stopped(rollout.id)
    const now = await rollouts.get(rollout.id)
    let refused: Error | null = null
    if (now.status === 'done' || now.status === 'failed') refused = new RolloutFinishedError(now.id, now.status)
    else if (runs.isRunning(now.id)) refused = new RolloutBusyError(now.id, 'this server', now.leaseUntil?.toISOString() ?? 'now')
    else if (now.owner !== null && now.owner !== '' && now.leaseUntil !== null && now.leaseUntil.getTime() > Date.now()) refused = new RolloutBusyError(now.id, now.owner, now.leaseUntil.toISOString())
    if (refused !== null) return await redirectWith(ctx, request, reply, url, { type: 'error', text: refused.message })
    runs.start(now.id, true)
    await ctx.audit.recordFor(request, 'fleet.rollout.resume', { change: { rollout: now.id, status: now.status } })
    return await redirectWith(ctx, request, reply, url, { type: 'success', text: `Rollout ${now.id} resumed: its ${now.counts.pending} pending tenant(s) are migrated now.` })
  })
}
