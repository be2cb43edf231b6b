import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { renderPage } from './render.js'

export interface Confirmation {
  /** The question, naming what and whom: "Detach Ada from acme?" */
  question: string
  /** What will happen, in words an operator checks before saying yes. */
  consequence: string
  /** Where the confirmed form posts. */
  action: string
  /** Hidden fields the form carries. */
  fields?: Record<string, string>
  confirmLabel: string
  cancel: string
  /** Loses data: the button is drawn as dangerous. */
  danger?: boolean
  /** What the dialog says while a slow action runs ("Migrating 3 tenants…"). */
  busy?: string
}

/**
 * A page that asks before an action that loses data or changes the Parent
 * Tenant. Each such action has a GET at its own URL that renders this, and
 * the POST at the same URL that does it: no JavaScript needed. admin.js
 * shows the same `article.confirm` in a modal dialog instead of a new page.
 */
export async function confirmPage (ctx: AdminContext, request: FastifyRequest, reply: FastifyReply, confirmation: Confirmation): Promise<FastifyReply> {
  return await renderPage(ctx, request, reply, 'confirm', confirmation.question, { ...confirmation })
}
