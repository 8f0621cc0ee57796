// The sealed link's two AES-256-GCM implementations (src/channel/aead.ts): the
// addon's and Node's crypto API must produce the same bytes, so each opens
// what the other sealed, and both refuse any change to header, ciphertext or
// tag, or the wrong nonce or key. Lengths cover the empty probe datagram, a
// block boundary and a full sync datagram.
import { createCipheriv, randomBytes } from 'node:crypto';
import * as nodeCrypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AEAD_TAG_SIZE, NativeAead, NodeAead, chooseAead, type Aead } from '../../src/channel/aead.js';
import { loadNative } from '../../src/netlink/native.js';

const native = chooseAead(loadNative(), () => nodeCrypto);
const node = new NodeAead(nodeCrypto);
const AAD = 26;

function sealed(a: Aead, key: Buffer, nonce: Buffer, header: Buffer, plain: Buffer): Buffer {
  const out = Buffer.alloc(AAD + plain.length + AEAD_TAG_SIZE);
  header.copy(out, 0);
  plain.copy(out, AAD);
  a.seal(a.key(key), out, AAD, plain.length, nonce);
  return out;
}

describe('AES-256-GCM for the sealed link', () => {
  it('the addon provides it (built with Node\'s OpenSSL headers)', () => {
    expect(native).toBeInstanceOf(NativeAead);
  });

  const lengths = [0, 1, 15, 16, 17, 100, 1400, 1429];
  for (const [from, to] of [[native, node], [node, native], [native, native], [node, node]] as const) {
    it(`${from.name} seals, ${to.name} opens: every length, and nothing altered gets through`, () => {
      for (const len of lengths) {
        const key = randomBytes(32);
        const nonce = randomBytes(12);
        const header = randomBytes(AAD);
        const plain = randomBytes(len);
        const d = sealed(from, key, nonce, header, plain);
        expect(d.subarray(0, AAD)).toEqual(header);
        // Not for 1 byte: its ciphertext equals the plaintext under one key in 256 (CI met it).
        if (len >= 15) expect(d.subarray(AAD, AAD + len)).not.toEqual(plain);
        expect(to.open(to.key(key), d, AAD, nonce)).toEqual(plain);
        // Any flipped bit: header (associated data), ciphertext, tag.
        for (const at of [0, AAD - 1, AAD, AAD + len - 1, d.length - AEAD_TAG_SIZE, d.length - 1]) {
          if (at < 0 || at >= d.length || (len === 0 && at >= AAD && at < AAD + len)) continue;
          const bad = Buffer.from(d);
          bad[at]! ^= 0x10;
          expect(to.open(to.key(key), bad, AAD, nonce), `len ${len} flip @${at}`).toBeNull();
        }
        const otherNonce = Buffer.from(nonce);
        otherNonce[11]! ^= 1;
        expect(to.open(to.key(key), d, AAD, otherNonce)).toBeNull();
        expect(to.open(to.key(randomBytes(32)), d, AAD, nonce)).toBeNull();
      }
    });
  }

  it('equals a one-shot AES-256-GCM of Node\'s, byte for byte', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const header = randomBytes(AAD);
    const plain = randomBytes(1000);
    const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    c.setAAD(header);
    const want = Buffer.concat([header, c.update(plain), c.final(), c.getAuthTag()]);
    expect(sealed(native, key, nonce, header, plain)).toEqual(want);
  });

  it('a prepared key seals many datagrams with their own nonces (the IV reset keeps the key)', () => {
    const key = randomBytes(32);
    const k = native.key(key);
    for (let i = 0; i < 50; i++) {
      const nonce = Buffer.alloc(12);
      nonce.writeUInt32BE(i, 8);
      const plain = randomBytes(64 + i);
      const out = Buffer.alloc(AAD + plain.length + AEAD_TAG_SIZE);
      plain.copy(out, AAD);
      native.seal(k, out, AAD, plain.length, nonce);
      expect(node.open(node.key(key), out, AAD, nonce)).toEqual(plain);
    }
  });

  it('without the addon\'s functions (built without OpenSSL\'s headers, or no addon) Node\'s crypto seals', () => {
    expect(chooseAead(null, () => nodeCrypto)).toBeInstanceOf(NodeAead);
    expect(chooseAead({ gcmKey: loadNative().gcmKey }, () => nodeCrypto)).toBeInstanceOf(NodeAead);
  });

  it('the addon checks its arguments instead of writing past a buffer', () => {
    const b = loadNative();
    const k = b.gcmKey!(randomBytes(32));
    expect(() => b.gcmKey!(randomBytes(16))).toThrow(TypeError);
    expect(() => b.gcmSeal!(k, Buffer.alloc(40), 26, 10, Buffer.alloc(12))).toThrow(TypeError); // 26+10+16 > 40
    expect(() => b.gcmSeal!(k, Buffer.alloc(60), 26, 10, Buffer.alloc(8))).toThrow(TypeError); // nonce must be 12
    expect(() => b.gcmOpen!(k, Buffer.alloc(60), 26, 10, Buffer.alloc(12), Buffer.alloc(5))).toThrow(TypeError);
    expect(() => b.gcmSeal!({}, Buffer.alloc(60), 26, 10, Buffer.alloc(12))).toThrow(TypeError);
    // Another of the addon's handles (a netlink socket) is not a key.
    const nl = b.open(12);
    try {
      expect(() => b.gcmSeal!(nl, Buffer.alloc(60), 26, 10, Buffer.alloc(12))).toThrow(/expected a key from gcmKey/);
    } finally {
      b.close(nl);
    }
  });
});
