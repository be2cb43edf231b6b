import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** SQL that reads or writes the `tenants` or `domains` table. */
const TOUCHES = /\b(from|join|into|update|table)\s+"?(tenants|domains)\b/i

function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [])
}

/** The code without its comments (a comment may say "removed from tenants"). */
function code (text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
}

test('the pattern finds the SQL the admin used to run', () => {
  for (const old of ['select count(*)::int as n from tenants t', 'insert into domains (domain, tenant_key)', 'update tenants set status = ?', 'left join tenants p on p.key', 'delete from domains where id = ?', 'select tenant_key, domain from DOMAINS order by']) {
    assert.match(old, TOUCHES, old)
  }
  assert.doesNotMatch('select 1 from tenant_users p join users u on u.global_id = p.global_user_id', TOUCHES)
})

test('no file under server/admin or server/cli runs SQL against tenants or domains', () => {
  const offending: string[] = []
  for (const file of [...sources('server/admin'), ...sources('server/cli')]) {
    code(readFileSync(file, 'utf8')).split('\n').forEach((line, i) => { if (TOUCHES.test(line)) offending.push(`${file}:${i + 1}: ${line.trim()}`) })
  }
  assert.deepEqual(offending, [], 'use app.tenancy (update, suspend, activate, domains, list, counts) or the central entities')
})
