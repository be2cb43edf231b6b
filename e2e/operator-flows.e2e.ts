import { test, expect, type Page } from '@playwright/test'
import { E2E, centralDbUrl } from './env.js'
import { dialog, expectNotice, keepScreenshot, makeAdmin, signIn, sql, tenantDb } from './helpers.js'

/**
 * What an operator does beyond visiting pages, clicked through in Chromium:
 * bulk actions with their confirmations, the fleet page, the audit log,
 * confirmations that name what will happen, a refused change shown on its
 * field, list search/sort/paging, and an admin without manage_tenant_groups.
 * Flows that create tenants (a database each) run at 1280 px light and
 * 390 px dark; the cheap ones in all four modes. Each step leaves a
 * screenshot in e2e/artifacts/screenshots/flows/<mode>/.
 */
const MODES = [
  { name: 'desktop-light', width: 1280, height: 900, colorScheme: 'light' as const, heavy: true },
  { name: 'desktop-dark', width: 1280, height: 900, colorScheme: 'dark' as const, heavy: false },
  { name: 'phone-light', width: 390, height: 844, colorScheme: 'light' as const, heavy: false },
  { name: 'phone-dark', width: 390, height: 844, colorScheme: 'dark' as const, heavy: true }
]

// One run's names never meet another run's (the demo's data dir may be reused).
const RUN = Date.now().toString(36).slice(-5)

async function createTenant (page: Page, identifier: string, name: string): Promise<string> {
  await page.goto('/admin/tenants/new')
  await page.getByLabel('Identifier').fill(identifier)
  await page.getByLabel('Name').fill(name)
  await page.getByRole('button', { name: 'Create tenant' }).click()
  await expect(page.locator('#tenant-status')).toHaveText('active')
  return String(page.url().split('/').pop())
}

async function createCluster (page: Page, name: string): Promise<string> {
  await page.goto('/admin/clusters/new')
  await page.getByLabel('Name').fill(name)
  await page.getByRole('button', { name: 'Save' }).click()
  await expectNotice(page, 'created')
  return String(page.url().replace(/\?.*$/, '').split('/').pop())
}

/** Selects the tenants on the (searched) list, picks the bulk action and applies it, stopping at the confirmation (a dialog). */
async function bulk (page: Page, search: string, identifiers: string[], action: string, cluster?: string): Promise<void> {
  await page.goto(`/admin/tenants?q=${search}`)
  for (const id of identifiers) await page.getByRole('checkbox', { name: `Select ${id}` }).check()
  await page.getByLabel('Action').selectOption({ label: action })
  if (cluster !== undefined) await page.getByLabel('Tenant Cluster (for Attach)').selectOption({ label: cluster })
  await page.getByRole('button', { name: 'Apply…' }).click()
  await expect(dialog(page)).toBeVisible()
}

// Flows of many steps with axe runs: minutes each on a loaded machine.
test.describe.configure({ mode: 'serial', timeout: 900_000 })

for (const mode of MODES) {
  test.describe(mode.name, () => {
    test.use({ viewport: { width: mode.width, height: mode.height }, colorScheme: mode.colorScheme })
    // Every step fits the width (tables scroll in their own box) and is kept as a screenshot.
    const shot = async (page: Page, step: string): Promise<void> => {
      // Measured once the stylesheet has loaded: before that, the table is not yet in its scrolling box.
      await page.waitForLoadState('load')
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
      expect(overflow, `${step} scrolls sideways by ${overflow}px`).toBeLessThanOrEqual(0)
      await keepScreenshot(page, `flows/${mode.name}/${step}`)
    }
    const tag = `${RUN}${mode.name.replace(/[^a-z]/g, '').slice(0, 3)}${mode.name.endsWith('dark') ? 'd' : 'l'}`
    const a = `of-${tag}-a`
    const b = `of-${tag}-b`

    test(`bulk suspend, activate, migrate and attach, each after a confirmation naming the tenants; the audit log shows them and filters (${mode.name})`, async ({ page }) => {
      test.skip(!mode.heavy, 'creates tenants: run at 1280 light and 390 dark only')
      await signIn(page)
      await createTenant(page, a, `Alpha ${tag}`)
      await createTenant(page, b, `Beta ${tag}`)

      // Search narrows the list to this run's two tenants.
      await page.goto('/admin/tenants')
      await page.getByRole('searchbox', { name: 'Search' }).fill(tag)
      await page.getByRole('button', { name: 'Filter' }).click()
      await expect(page.getByText('2 tenants', { exact: true })).toBeVisible()
      await shot(page, '01-search')

      await bulk(page, tag, [a, b], 'Suspend')
      await expect(dialog(page).getByRole('heading', { name: 'Suspend 2 tenant(s)?' })).toBeVisible()
      await expect(dialog(page).getByText(`${a}, ${b} will answer 403 to every request until activated again.`)).toBeVisible()
      await shot(page, '02-bulk-suspend-confirm')
      await dialog(page).getByRole('button', { name: 'Suspend 2 tenant(s)' }).click()
      await expectNotice(page, `Suspended: ${a}, ${b}.`)
      await expect(page.getByRole('row', { name: new RegExp(a) }).getByText('suspended')).toBeVisible()
      await expect(page.getByRole('row', { name: new RegExp(b) }).getByText('suspended')).toBeVisible()
      await shot(page, '03-bulk-suspended')

      await bulk(page, tag, [a, b], 'Activate')
      await expect(dialog(page).getByText(`${a}, ${b} will serve requests again.`)).toBeVisible()
      await dialog(page).getByRole('button', { name: 'Activate 2 tenant(s)' }).click()
      await expectNotice(page, `Activated: ${a}, ${b}.`)
      await expect(page.getByRole('row', { name: new RegExp(a) }).getByText('active')).toBeVisible()
      await shot(page, '04-bulk-activated')

      await bulk(page, tag, [a], 'Migrate')
      await expect(dialog(page).getByText(`Pending migrations run in the databases of ${a}.`)).toBeVisible()
      await shot(page, '05-bulk-migrate-confirm')
      await dialog(page).getByRole('button', { name: 'Migrate 1 tenant(s)' }).click()
      await expectNotice(page, `Migrated: ${a}.`)

      const cluster = `Flows ${tag}`
      await createCluster(page, cluster)
      await bulk(page, tag, [a, b], 'Attach to a Tenant Cluster', cluster)
      await expect(dialog(page).getByRole('heading', { name: `Attach 2 tenant(s) to "${cluster}"?` })).toBeVisible()
      await expect(dialog(page).getByText(`${a}, ${b} move to "${cluster}"; ${a} becomes its Parent Tenant.`)).toBeVisible()
      await shot(page, '06-bulk-attach-confirm')
      await dialog(page).getByRole('button', { name: `Attach 2 tenant(s) to "${cluster}"` }).click()
      await expectNotice(page, `Attached to "${cluster}": ${a}, ${b}.`)
      await expect(page.getByRole('row', { name: new RegExp(b) })).toContainText(cluster)
      await shot(page, '07-bulk-attached')

      // The audit log: the suspension is there, and the filters narrow to it.
      await page.goto('/admin/audit')
      await page.getByLabel('Admin (email)').fill(E2E.adminEmail)
      await page.getByLabel('Action').selectOption('tenant.suspend')
      await page.getByRole('button', { name: 'Filter' }).click()
      const rows = page.getByRole('region', { name: 'Audit log entries' }).getByRole('row')
      await expect(rows.filter({ hasText: a })).toHaveCount(1)
      await expect(rows.filter({ hasText: 'tenant.activate' })).toHaveCount(0)
      await shot(page, '08-audit-filtered')
      await rows.filter({ hasText: a }).getByRole('link', { name: /^only this tenant/ }).click()
      await expect(page.getByText('Showing one tenant only.')).toBeVisible()
      const actions = await page.getByRole('region', { name: 'Audit log entries' }).locator('tbody tr > td:nth-child(3)').allTextContents()
      expect(new Set(actions)).toEqual(new Set(['tenant.create', 'tenant.suspend', 'tenant.activate', 'tenant.migrate', 'cluster.attach']))
      await expect(page.getByRole('region', { name: 'Audit log entries' }).getByRole('row').filter({ hasText: b })).toHaveCount(0)
      await shot(page, '09-audit-one-tenant')
    })

    test(`confirmations name what will happen, and a refused change shows the form again with the reason on the field (${mode.name})`, async ({ page }) => {
      test.skip(!mode.heavy, 'uses the tenants the bulk flow made')
      await signIn(page)
      const [keyA] = (await sql<{ key: string }>(centralDbUrl(), 'select key from tenancy.tenants where identifier = $1', [a])).map((r) => r.key)
      const cluster = `Flows ${tag}`

      // A refused cluster change: a is the Parent Tenant of its cluster while b remains.
      const other = `Other ${tag}`
      await createCluster(page, other)
      await page.goto(`/admin/tenants/${String(keyA)}/edit`)
      await page.getByLabel('Name').fill(`Renamed ${tag}`)
      await page.getByLabel('Tenant Cluster').selectOption({ label: other })
      await page.getByRole('button', { name: 'Save' }).click()
      const select = page.getByLabel('Tenant Cluster')
      await expect(select).toHaveAttribute('aria-invalid', 'true')
      await expect(page.locator('#cluster-error')).toContainText('Parent Tenant')
      await expect(page.getByLabel('Name')).toHaveValue(`Renamed ${tag}`)
      await shot(page, '10-refused-on-field')
      await page.goto(`/admin/tenants/${String(keyA)}`)
      await expect(page.getByRole('heading', { name: `Alpha ${tag}` })).toBeVisible()
      await expect(page.getByRole('link', { name: cluster }).first()).toBeVisible()

      // Parent Tenant change: the confirmation says who takes over from whom.
      await page.getByRole('link', { name: cluster }).first().click()
      await page.getByRole('switch', { name: `Parent Tenant: ${b}` }).click()
      await expect(dialog(page).getByRole('heading', { name: `Make ${b} the Parent Tenant of "${cluster}"?` })).toBeVisible()
      await expect(dialog(page).getByText(`instead of ${a}`)).toBeVisible()
      await shot(page, '11-parent-confirm')
      await dialog(page).getByRole('button', { name: `Make ${b} the Parent Tenant` }).click()
      await expect(page.getByRole('switch', { name: `Parent Tenant: ${b}` })).toHaveAttribute('aria-checked', 'true')
      await expect(page.getByRole('switch', { name: `Parent Tenant: ${a}` })).toHaveAttribute('aria-checked', 'false')

      // Domain removal names the domain and the tenant it stops reaching.
      const domain = `${a}.example.test`
      await page.goto(`/admin/tenants/${String(keyA)}?tab=domains`)
      await page.getByLabel('Add a domain').fill(domain)
      await page.getByRole('button', { name: 'Add domain' }).click()
      await expectNotice(page, `Domain ${domain} added.`)
      await page.getByRole('button', { name: `Remove ${domain}` }).click()
      await expect(dialog(page).getByRole('heading', { name: `Remove ${domain} from ${a}?` })).toBeVisible()
      await expect(dialog(page).getByText(`Requests to ${domain} will no longer reach ${a} there: for the next 90 day(s) they are redirected (301)`)).toBeVisible()
      await shot(page, '12-domain-confirm')
      await dialog(page).getByRole('button', { name: `Remove ${domain}` }).click()
      await expectNotice(page, `Domain ${domain} removed.`)
      await expect(page.getByText('No domains; the tenant is reached by its subdomain.')).toBeVisible()

      // Detach a user: "removes <name>'s copy from <tenant>'s database".
      const userName = `Ada ${tag}`
      await page.goto('/admin/users/new')
      await page.getByLabel('Name').fill(userName)
      await page.getByLabel('Email').fill(`ada-${tag}@example.test`)
      await page.getByLabel('Password').fill('analytical engine')
      await page.getByRole('button', { name: 'Create user' }).click()
      await page.getByLabel('Find tenants to attach to').fill(a)
      await page.getByRole('checkbox', { name: `${a} — Alpha ${tag}` }).check()
      await page.getByRole('button', { name: 'Attach', exact: true }).click()
      await expectNotice(page, `Attached to ${a}`)
      await page.getByRole('button', { name: `Detach ${a}` }).click()
      await expect(dialog(page).getByText(`This removes ${userName}'s copy from ${a}'s database.`)).toBeVisible()
      await shot(page, '13-detach-confirm')
      await dialog(page).getByRole('button', { name: `Detach from ${a}` }).click()
      await expect(page.getByRole('button', { name: `Detach ${a}` })).toHaveCount(0)
      expect(await sql(await tenantDb(String(keyA)), 'select 1 from users where email = $1', [`ada-${tag}@example.test`])).toEqual([])
    })

    test(`the tenant list sorts with aria-sort and an indicator, and a searched list pages (${mode.name})`, async ({ page }) => {
      await signIn(page)
      await page.goto('/admin/tenants')
      const identifier = page.getByRole('columnheader', { name: /Identifier/ })
      await expect(identifier).toHaveAttribute('aria-sort', 'ascending')
      await expect(identifier.locator('.sort-indicator')).toHaveText('▲')
      await expect(page.getByRole('columnheader', { name: /Name/ })).not.toHaveAttribute('aria-sort', /.*/)
      const firstCells = async (): Promise<string[]> => await page.locator('table tbody tr td:nth-child(2)').allTextContents()
      const ascending = await firstCells()
      await identifier.getByRole('link').click()
      await expect(identifier).toHaveAttribute('aria-sort', 'descending')
      await expect(identifier.locator('.sort-indicator')).toHaveText('▼')
      const descending = await firstCells()
      expect(descending[0]! >= descending[descending.length - 1]!).toBe(true)
      expect(ascending[0]! < ascending[ascending.length - 1]!).toBe(true)
      expect(descending[0]! >= ascending[ascending.length - 1]!).toBe(true)
      await shot(page, '14-sorted-descending')

      // Paging, with the search kept: more than a page (25) of admins match "limited".
      const have = Number((await sql(centralDbUrl(), "select count(*) as n from tenancy.admins where email like 'limited-%'"))[0]?.n)
      await Promise.all(Array.from({ length: Math.max(0, 26 - have) }, async () => await makeAdmin(['manage_tenants'])))
      await page.goto('/admin/admins')
      await page.getByRole('searchbox').fill('limited')
      await page.getByRole('searchbox').press('Enter')
      const pager = page.getByRole('navigation', { name: 'Pages' })
      await expect(pager).toContainText(/Page 1 of \d+/)
      await expect(page.getByRole('columnheader', { name: /Name/ })).toHaveAttribute('aria-sort', 'ascending')
      await pager.getByRole('link', { name: 'Next' }).click()
      await expect(pager).toContainText('Page 2 of')
      await expect(page).toHaveURL(/q=limited/)
      await expect(page.getByRole('row', { name: /Limited Admin/ }).first()).toBeVisible()
      await expect(pager.getByRole('link', { name: 'Previous' })).toBeVisible()
      await shot(page, '15-admins-page-2')
    })

    test(`an admin without manage_tenant_groups sees no cluster anywhere (${mode.name})`, async ({ page }) => {
      const limited = await makeAdmin(['manage_tenants'])
      await signIn(page, limited.email, limited.password)
      await expect(page.getByRole('link', { name: 'Tenant Clusters' })).toHaveCount(0)
      await page.goto('/admin/tenants')
      await expect(page.getByRole('columnheader', { name: 'Tenant Cluster' })).toHaveCount(0)
      await expect(page.getByLabel('Tenant Cluster', { exact: true })).toHaveCount(0)
      await expect(page.getByLabel('Action').locator('option')).toHaveText(['Suspend', 'Activate', 'Migrate'])
      await shot(page, '16-limited-tenants')
      await page.getByRole('link', { name: 'acme' }).first().click()
      await expect(page.getByText('Tenant Cluster', { exact: true })).toHaveCount(0)
      await shot(page, '17-limited-tenant')
      await page.getByRole('button', { name: 'Edit' }).click()
      await expect(page.getByLabel('Tenant Cluster')).toHaveCount(0)
      await page.goto('/admin/audit')
      await expect(page.getByRole('columnheader', { name: 'Tenant Cluster' })).toHaveCount(0)
      await expect(page.getByLabel('Action').locator('option', { hasText: 'any Tenant Cluster action' })).toHaveCount(0)
      await shot(page, '18-limited-audit')
    })
  })
}

test('"Migrate all" starts a rollout whose page shows progress that survives a reload, and a failed tenant with its reason', async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 900 })
  await signIn(page)
  // A tenant whose database is gone fails to migrate; the fleet says why.
  const broken = `of-${RUN}-broken`
  const key = await createTenant(page, broken, `Broken ${RUN}`)
  const database = new URL(await tenantDb(key))
  const name = database.pathname.slice(1)
  database.pathname = '/postgres'
  await sql(database.toString(), `drop database "${name}" with (force)`)
  // The page shows what was recorded (up to date at its creation); a check reads the database and finds it gone.
  await page.goto(`/admin/fleet?page=${1 + Math.floor(Number((await sql(centralDbUrl(), 'select count(*) as n from tenancy.tenants where identifier < $1', [broken]))[0]?.n) / 25)}`)
  await expect(page.getByRole('row', { name: new RegExp(broken) })).toContainText('up to date')
  await page.getByRole('button', { name: 'Check these tenants' }).click()
  await expectNotice(page, /Checked \d+ tenant database\(s\)/)
  await expect(page.getByRole('row', { name: new RegExp(broken) })).toContainText('failed')
  // Migrate all is a rollout: its page follows it to the outcome, which a reload still shows.
  await page.getByRole('button', { name: 'Migrate all' }).click()
  await expect(page).toHaveURL(/\/admin\/fleet\/rollouts\/\d+$/)
  await expectNotice(page, /Migrating all tenants as rollout \d+/)
  await expect(page.locator('#rollout-count')).toContainText(/\d+ done, \d+ failed/)
  await keepScreenshot(page, 'flows/fleet-running')
  await page.reload()
  await expect(page.getByRole('heading', { level: 1 })).toContainText('Rollout')
  await expect(page.locator('hgroup')).toContainText('by e2e-admin@example.test')
  await expect(page.locator('#rollout-status')).toHaveText('finished with failures', { timeout: 45_000 })
  await expect(page.getByRole('heading', { name: 'Failed tenants' })).toBeVisible()
  await expect(page.getByRole('listitem').filter({ hasText: broken })).toContainText('does not exist')
  await page.goto(`/admin/fleet?page=${1 + Math.floor(Number((await sql(centralDbUrl(), 'select count(*) as n from tenancy.tenants where identifier < $1', [broken]))[0]?.n) / 25)}`)
  await expect(page.getByRole('row', { name: new RegExp(broken) })).toContainText('failed')
  await keepScreenshot(page, 'flows/fleet-finished')
  // Leave the demo as it was for the specs after this one.
  await page.goto(`/admin/tenants/${key}/delete`)
  await page.getByLabel(/Type/).fill(broken)
  await page.getByRole('button', { name: /Delete/ }).click()
  await expectNotice(page, broken)
})
