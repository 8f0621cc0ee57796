// PeerSession: the peer's incarnation told by the source of its datagrams.
import { describe, expect, it } from 'vitest';
import { PeerSession } from '../../src/sync/recv-seq.js';

const src = (port: number, address = '10.0.0.2') => ({ address, port });

describe('PeerSession', () => {
  it('the first source is the session; another one is new until a message from it is accepted', () => {
    const s = new PeerSession();
    s.see(src(40000), 0);
    expect(s.isNew).toBe(false);
    s.accepted(false);
    s.see(src(40000), 1);
    expect(s.isNew).toBe(false);
    s.see(src(40001), 2);
    expect(s.isNew).toBe(true);
    s.see(src(40000, '10.0.0.3'), 2);
    expect(s.isNew).toBe(true);
  });

  it('a restart kills the old source for DEAD_MS; a path change (no restart) does not', () => {
    const s = new PeerSession();
    s.see(src(40000), 0);
    s.accepted(false);
    s.see(src(40001), 10);
    s.accepted(false); // a reconnect: same incarnation
    s.see(src(40000), 20);
    expect(s.isDead).toBe(false);
    expect(s.isNew).toBe(true);
    s.see(src(40002), 30);
    s.accepted(true); // a restart from 40002: 40001 is dead
    s.see(src(40001), 40);
    expect(s.isDead).toBe(true);
    expect(s.isNew).toBe(false);
    // A later incarnation may get the port again: the mark expires.
    s.see(src(40001), 30 + PeerSession.DEAD_MS);
    expect(s.isDead).toBe(false);
    expect(s.isNew).toBe(true);
  });

  it('an unknown source gives no signal and changes nothing', () => {
    const s = new PeerSession();
    s.see(undefined, 0);
    s.accepted(true);
    expect(s.isNew).toBe(false);
    s.see(src(40000), 1);
    expect(s.isNew).toBe(false); // still no session: the first known source becomes it
    s.accepted(false);
    s.see(undefined, 2);
    expect(s.isNew || s.isDead).toBe(false);
  });
});
