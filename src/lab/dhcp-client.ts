/**
 * A real DHCPv4 client for simulated virts (the lab, tests): busybox `udhcpc` in the virt's
 * namespace, with a script that applies the lease with `ip` (address, default route, MTU).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Kernel } from '../kernel/exec.js';

const SCRIPT = `#!/bin/sh
# udhcpc lease script written by lsdn: apply the lease with ip.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set dev "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    echo "lease ip=$ip mask=$mask router=$router mtu=$mtu dns=$dns"
    ;;
esac
exit 0
`;

let scriptPath: string | undefined;
function script(): string {
  if (!scriptPath) {
    const dir = `${tmpdir()}/lsdn-udhcpc-${process.pid}`;
    mkdirSync(dir, { recursive: true });
    scriptPath = `${dir}/lease.sh`;
    writeFileSync(scriptPath, SCRIPT, { mode: 0o755 });
  }
  return scriptPath;
}

export interface Lease {
  ip: string;
  mask: number;
  router?: string;
  mtu?: number;
  dns: string[];
}

/**
 * Ask for a lease on `dev` in namespace `netns` (tries `tries` discovers, 1 s apart). Returns
 * the lease applied, or undefined when no server answered.
 */
export async function dhcpLease(netns: string, dev = 'eth0', tries = 3): Promise<Lease | undefined> {
  const k = new Kernel({ netns, timeoutMs: (tries + 5) * 1000 });
  let out: string;
  try {
    ({ stdout: out } = await k.run('busybox', ['udhcpc', '-i', dev, '-n', '-q', '-f', '-t', String(tries), '-T', '1', '-O', 'mtu', '-s', script()]));
  } catch {
    return undefined;
  }
  const m = /lease ip=(\S+) mask=(\S*) router=(\S*) mtu=(\S*) dns=(.*)$/m.exec(out);
  if (!m) return undefined;
  return {
    ip: m[1] as string,
    mask: Number(m[2] || 24),
    ...(m[3] ? { router: m[3] } : {}),
    ...(m[4] ? { mtu: Number(m[4]) } : {}),
    dns: (m[5] ?? '').trim().split(/\s+/).filter(Boolean),
  };
}
