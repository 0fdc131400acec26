import { describe, expect, it } from 'vitest';
import { applyRoutes, bridgeUrls } from '../src/routes';

const id = 'ab'.repeat(32);
const rec = {
  id,
  bridges: bridgeUrls(id, ['http://192.168.1.20:40123/'], 'https://app.example.org'),
  relays: ['http://192.168.1.20:40123/'],
};
const routes = (relay_urls: string[]) => ({ relay_urls, direct_addrs: [], relay_cert_sha256: null, relay_token: null });

describe('host routes', () => {
  it('bridges come from the page origin, then the relays', () => {
    expect(rec.bridges).toEqual([
      `wss://app.example.org/bridge/${id}`,
      `ws://192.168.1.20:40123/bridge/${id}`,
    ]);
  });

  it('a host on another relay gets new bridges; the same routes change nothing', () => {
    const next = applyRoutes(rec, routes(['https://relay.example.org/peer/', 'http://192.168.1.20:40999/']), 'https://app.example.org');
    expect(next?.relays).toEqual(['https://relay.example.org/peer/', 'http://192.168.1.20:40999/']);
    expect(next?.bridges).toEqual([
      `wss://app.example.org/bridge/${id}`,
      `wss://relay.example.org/peer/bridge/${id}`,
      `ws://192.168.1.20:40999/bridge/${id}`,
    ]);
    expect(next && applyRoutes(next, routes(next.relays ?? []), 'https://app.example.org')).toBeNull();
  });

  it('junk and empty routes leave the record alone', () => {
    expect(applyRoutes(rec, routes([]), 'https://app.example.org')).toBeNull();
    expect(applyRoutes(rec, routes(['javascript:alert(1)', 'not a url']), 'https://app.example.org')).toBeNull();
    const five = ['1', '2', '3', '4', '5'].map((n) => `http://10.0.0.${n}/`);
    expect(applyRoutes(rec, routes(five), 'https://app.example.org')?.relays).toHaveLength(4);
  });
});
