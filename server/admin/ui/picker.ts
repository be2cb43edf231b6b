/** One choice of a searchable picker (views/admin/partials/picker.eta). */
export interface PickerOption {
  value: string
  label: string
  /** A word after the label ("now in West; attaching moves it"). */
  hint?: string | null
}

/** How many choices a picker shows at once: enough to pick from, few enough to stay quick over thousands. */
export const PICKER_SIZE = 10

/** The picker's search term from the query string (`find`). */
export function readFind (query: unknown): string {
  const value = (typeof query === 'object' && query !== null ? (query as Record<string, unknown>).find : undefined)
  return typeof value === 'string' ? value.trim().slice(0, 100) : ''
}

/** The line above the choices: how many there are and what to do about the rest. */
export function pickerCount (shown: number, total: number, find: string, noun: string): string {
  if (total === 0) return find === '' ? `No ${noun} left to attach.` : `No ${noun.replace(/s$/, '')} matches "${find}".`
  if (shown >= total) return `${total} ${total === 1 ? noun.replace(/s$/, '') : noun} ${find === '' ? 'to choose from' : `${total === 1 ? 'matches' : 'match'} "${find}"`}.`
  return `Showing ${shown} of ${total} ${noun}${find === '' ? '' : ` matching "${find}"`}: search to narrow.`
}

/** What a picker's JSON source answers admin.js. */
export function pickerJson (options: PickerOption[], total: number, find: string, noun: string): { total: number, countText: string, options: PickerOption[] } {
  return { total, countText: pickerCount(options.length, total, find, noun), options }
}

/**
 * The picker that attaches tenants to the thing at `url` (a Tenant Cluster,
 * a user): its search posts back to `url`, its type-ahead reads
 * `url/candidates`, its choices go to `url/attach`.
 */
export function tenantAttachPicker (
  url: string, text: { heading: string, label: string, legend: string, noun: string },
  q: string, find: string, found: { options: PickerOption[], total: number }
): Record<string, unknown> {
  return {
    id: 'attach',
    heading: text.heading,
    label: text.label,
    legend: text.legend,
    placeholder: 'Identifier, name or domain',
    name: 'tenants',
    source: `${url}/candidates`,
    searchAction: url,
    keep: { q },
    find,
    postAction: `${url}/attach`,
    submitLabel: 'Attach',
    options: found.options,
    countText: pickerCount(found.options.length, found.total, find, text.noun)
  }
}
