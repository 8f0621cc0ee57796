// AES-256-GCM over SecureChannel's datagram layout: [header = associated data]
// [ciphertext][16-byte tag]. Two implementations of one seam: the addon's,
// which sets a session key up once and then costs one pass over the bytes
// (0.8 us to seal a 1400-byte datagram, 0.65 to open, measured), and Node's
// crypto API, which builds and tears down a cipher object per datagram (~5 us
// each way) and serves where the addon was built without OpenSSL's headers.
// Both produce the same bytes (test/unit/channel-aead.test.ts checks each
// opens what the other sealed).
import type * as Crypto from 'node:crypto';
import type { NativeBinding } from '../netlink/native.js';

export const AEAD_TAG_SIZE = 16;

declare const preparedKey: unique symbol;
/**
 * A session key as one implementation prepared it (the addon's contexts, or
 * the bytes for Node's API); only that implementation can use it. The addon's
 * form keeps no copy of the key bytes in the JS heap.
 */
export type AeadKey = { readonly [preparedKey]: true };

export interface Aead {
  readonly name: 'native' | 'node';
  key(bytes: Buffer): AeadKey;
  /** Encrypts out[aadLen, aadLen + len) in place (authenticating out[0, aadLen) too) and writes the tag after it. */
  seal(k: AeadKey, out: Buffer, aadLen: number, len: number, nonce: Buffer): void;
  /** The plaintext of d[aadLen, d.length - tag), or null when the tag does not match. */
  open(k: AeadKey, d: Buffer, aadLen: number, nonce: Buffer): Buffer | null;
}

type NativeGcm = Required<Pick<NativeBinding, 'gcmKey' | 'gcmSeal' | 'gcmOpen'>>;

export class NativeAead implements Aead {
  readonly name = 'native' as const;
  constructor(private readonly gcm: NativeGcm) {}

  key(bytes: Buffer): AeadKey {
    return this.gcm.gcmKey(bytes) as AeadKey;
  }

  seal(k: AeadKey, out: Buffer, aadLen: number, len: number, nonce: Buffer): void {
    this.gcm.gcmSeal(k, out, aadLen, len, nonce);
  }

  open(k: AeadKey, d: Buffer, aadLen: number, nonce: Buffer): Buffer | null {
    const len = d.length - aadLen - AEAD_TAG_SIZE;
    const plain = Buffer.allocUnsafe(len);
    return this.gcm.gcmOpen(k, d, aadLen, len, nonce, plain) ? plain : null;
  }
}

export class NodeAead implements Aead {
  readonly name = 'node' as const;
  constructor(private readonly crypto: typeof Crypto) {}

  key(bytes: Buffer): AeadKey {
    return bytes as unknown as AeadKey;
  }

  seal(k: AeadKey, out: Buffer, aadLen: number, len: number, nonce: Buffer): void {
    const c = this.crypto.createCipheriv('aes-256-gcm', k as unknown as Buffer, nonce, { authTagLength: AEAD_TAG_SIZE });
    c.setAAD(out.subarray(0, aadLen));
    let off = aadLen;
    off += c.update(out.subarray(aadLen, aadLen + len)).copy(out, off);
    off += c.final().copy(out, off);
    c.getAuthTag().copy(out, off);
  }

  open(k: AeadKey, d: Buffer, aadLen: number, nonce: Buffer): Buffer | null {
    try {
      const dc = this.crypto.createDecipheriv('aes-256-gcm', k as unknown as Buffer, nonce, { authTagLength: AEAD_TAG_SIZE });
      dc.setAAD(d.subarray(0, aadLen));
      dc.setAuthTag(d.subarray(d.length - AEAD_TAG_SIZE));
      const head = dc.update(d.subarray(aadLen, d.length - AEAD_TAG_SIZE));
      const tail = dc.final();
      return tail.length ? Buffer.concat([head, tail]) : head;
    } catch {
      return null;
    }
  }
}

/** The addon's AEAD when it has one, else Node's. */
export function chooseAead(native: Partial<NativeBinding> | null, crypto: () => typeof Crypto): Aead {
  if (native?.gcmKey && native.gcmSeal && native.gcmOpen) {
    return new NativeAead({ gcmKey: native.gcmKey, gcmSeal: native.gcmSeal, gcmOpen: native.gcmOpen });
  }
  return new NodeAead(crypto());
}
