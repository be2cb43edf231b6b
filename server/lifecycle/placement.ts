/** A database host and how many tenants it holds, for the placement function. */
export interface HostLoad {
  name: string
  tenants: number
}

/** The default placement: the host with the fewest tenants (the first such, in the order of `database.hosts`). */
export function fewestTenants (hosts: HostLoad[]): string {
  let best = hosts[0] as HostLoad
  for (const host of hosts) if (host.tenants < best.tenants) best = host
  return best.name
}
