// SM3 and SM2 verification for the console, over the pinned, bundled sm-crypto (vendor/,
// scripts/console-vendor.sh): the library does the hash and the curve arithmetic; this module
// feeds it only checked input. No WebCrypto (absent outside secure contexts), no randomness:
// the console verifies, it never signs.
//
// What is checked here, not in the library (sm-crypto's doVerifySignature does none of it):
// strict DER of the signature (GM/T 0009 SM2Signature, minimal INTEGERs), r and s in [1, n-1]
// (GB/T 32918.2-2016 §7.1 B1, B2), the public key an uncompressed point on the curve with
// coordinates below p, and the user ID as bytes (ZA is computed here, so an ID that is not
// UTF-8 is hashed as it is).

const lib = () => {
  const sm2 = globalThis.sm2;
  const sm3 = globalThis.sm3;
  if (!sm2 || !sm3) throw new Error('vendor/sm2.js and vendor/sm3.js are not loaded');
  return { sm2, sm3 };
};

// GB/T 32918.5-2017: the recommended curve.
const P = 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn;
const N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n;
const CURVE_ABGXY =
  'fffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffc' +
  '28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93' +
  '32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7' +
  'bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0';

/** The default SM2 user ID (GB/T 35276-2017 §10). */
export const DEFAULT_USER_ID = new TextEncoder().encode('1234567812345678');

export function hex(bytes) {
  let s = '';
  for (const b of bytes) s += (b < 16 ? '0' : '') + b.toString(16);
  return s;
}

export function unhex(s) {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) {
    throw new Error('not lower-case hex of whole bytes');
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
  return out;
}

export function b64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function concat(...parts) {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const ascii = (s) => new TextEncoder().encode(s);

/** SM3 (GB/T 32905-2016) of bytes; returns 32 bytes. */
export function sm3(bytes) {
  return unhex(lib().sm3(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes)));
}

/** SM3 of the parts in order (a domain tag, then an encoding). */
export const sm3Parts = (...parts) => sm3(concat(...parts));

/** ZA = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA), GB/T 32918.2-2016 §5.5. */
export function za(publicKey, userId) {
  const bits = userId.length * 8;
  if (bits > 0xffff) throw new Error('user ID longer than 8191 bytes');
  return sm3Parts(new Uint8Array([bits >> 8, bits & 0xff]), userId, unhex(CURVE_ABGXY), publicKey.subarray(1));
}

function readDerInteger(der, o) {
  if (der[o] !== 0x02) return null;
  const len = der[o + 1];
  if (len === undefined || len === 0 || len > 33 || o + 2 + len > der.length) return null;
  const v = der.subarray(o + 2, o + 2 + len);
  if (v[0] & 0x80) return null; // negative
  if (len > 1 && v[0] === 0 && !(v[1] & 0x80)) return null; // not minimal
  return { value: BigInt('0x' + hex(v)), next: o + 2 + len };
}

/** Parses a strict-DER SM2Signature; returns {r, s} as BigInt, or null. */
export function parseSignature(der) {
  if (der.length < 8 || der.length > 72 || der[0] !== 0x30 || der[1] !== der.length - 2) return null;
  const r = readDerInteger(der, 2);
  if (!r) return null;
  const s = readDerInteger(der, r.next);
  if (!s || s.next !== der.length) return null;
  return { r: r.value, s: s.value };
}

/** Whether `key` (65 bytes, 04 ‖ x ‖ y) is a point of the curve. */
export function validPublicKey(key) {
  if (!(key instanceof Uint8Array) || key.length !== 65 || key[0] !== 0x04) return false;
  const x = BigInt('0x' + hex(key.subarray(1, 33)));
  const y = BigInt('0x' + hex(key.subarray(33)));
  if (x >= P || y >= P) return false;
  return lib().sm2.verifyPublicKey(hex(key));
}

/**
 * Verifies an SM2 signature (strict DER) of `message` by `publicKey` (65 bytes) with
 * `userId` (bytes): e = SM3(ZA ‖ M), GB/T 32918.2-2016 §7.1. Returns true or false; never
 * throws on adversarial input.
 */
export function sm2Verify(publicKey, userId, message, signatureDer) {
  try {
    if (!validPublicKey(publicKey)) return false;
    const sig = parseSignature(signatureDer);
    if (!sig) return false;
    // §7.1 B1, B2: r, s in [1, n-1].
    if (sig.r < 1n || sig.r >= N || sig.s < 1n || sig.s >= N) return false;
    const e = sm3Parts(za(publicKey, userId), message);
    const raw = sig.r.toString(16).padStart(64, '0') + sig.s.toString(16).padStart(64, '0');
    // hash: false: the library takes e itself (as a plain array: its hex helper maps arrays).
    return lib().sm2.doVerifySignature(Array.from(e), raw, hex(publicKey), { der: false, hash: false }) === true;
  } catch {
    return false;
  }
}
