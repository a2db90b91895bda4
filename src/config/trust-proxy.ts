/**
 * `--trust-proxy`, compiled once: which hops of `X-Forwarded-For` are proxies trusted to
 * report the address they saw (http/client-address.ts walks the header with it).
 */
import proxyAddr from 'proxy-addr';

/** Whether hop `i` (0 = the socket's peer) at `addr` is a trusted proxy. */
export type TrustFunction = (addr: string, i: number) => boolean;

/**
 * Compiles a `--trust-proxy` setting: null (trust none: the socket's address is the
 * client), a hop count (`1`: the socket's peer is the one proxy), or a comma-separated
 * list of addresses, CIDRs and the names `loopback`, `linklocal`, `uniquelocal`.
 * Throws (from proxy-addr) on an address or range it cannot parse.
 */
export function compileTrust(setting: string | null): TrustFunction | null {
  if (setting === null) return null;
  const s = setting.trim();
  if (/^\d+$/.test(s)) {
    const hops = Number(s);
    return hops === 0 ? null : (_addr, i) => i < hops;
  }
  return proxyAddr.compile(s.split(',').map((x) => x.trim()).filter((x) => x !== ''));
}
