// The host's routes (frame HostRoutes, right after HostHello on every socket): the relays it is
// reachable through now. The app keeps them in the host's record and derives its bridge URLs
// from them, so a host that moved to other relays stays reachable from this phone.
import type { HostRoutes } from './gen/protocol';

/** Most relays a record keeps (the pairing payload carries four). */
const MAX_RELAYS = 4;

/** Candidate bridge URLs: this page's own origin first, then the relays. */
export function bridgeUrls(hostIdHex: string, relays: string[], origin: string): string[] {
  const path = `bridge/${hostIdHex}`;
  const ws = (base: string) => base.replace(/^http/, 'ws').replace(/\/?$/, '/') + path;
  const out = [ws(origin + '/'), ...relays.map(ws)];
  return [...new Set(out)];
}

/** The part of a host record the routes change. */
export interface RoutedRecord {
  id: string;
  bridges: string[];
  relays?: string[];
}

/**
 * The record as the host's routes make it, or null when they change nothing (or name no relay
 * the app could use: then the record keeps what it has). Only http(s) relay URLs are taken.
 */
export function applyRoutes<R extends RoutedRecord>(rec: R, routes: HostRoutes, origin: string): R | null {
  const relays = routes.relay_urls
    .filter((u) => {
      try {
        const p = new URL(u).protocol;
        return p === 'http:' || p === 'https:';
      } catch {
        return false;
      }
    })
    .slice(0, MAX_RELAYS);
  if (relays.length === 0) return null;
  const bridges = bridgeUrls(rec.id, relays, origin);
  const same = (a: string[] | undefined, b: string[]) => !!a && a.length === b.length && a.every((x, i) => x === b[i]);
  if (same(rec.relays, relays) && same(rec.bridges, bridges)) return null;
  return { ...rec, relays, bridges };
}
