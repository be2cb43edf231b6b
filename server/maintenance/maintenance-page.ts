const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** The small page a browser gets while its tenant is in maintenance (no template engine needed). */
export function maintenancePage (message: string, until: Date | null): string {
  const back = until === null ? '' : `<p>Expected back by <time datetime="${until.toISOString()}">${until.toUTCString()}</time>.</p>`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Down for maintenance</title>
<style>body{font:1.1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#1b1b1b}h1{font-size:1.6rem}</style>
</head><body><main><h1>Down for maintenance</h1><p>${escape(message)}</p>${back}</main></body></html>`
}
