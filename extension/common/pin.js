// Parental lock PIN: only a salted PBKDF2-SHA-256 hash is ever stored.
(function (global) {
  'use strict';

  const ITERATIONS = 210000;

  const { toHex, fromHex } = PhotoShieldBytes;

  async function derive(pin, salt, iterations) {
    const key = await crypto.subtle.importKey(
      'raw', new TextEncoder().encode(pin), 'PBKDF2', false, ['deriveBits']);
    const bits = await crypto.subtle.deriveBits(
      { name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, 256);
    return toHex(bits);
  }

  async function makePinRecord(pin) {
    const salt = crypto.getRandomValues(new Uint8Array(16));
    return { salt: toHex(salt), iterations: ITERATIONS, hash: await derive(pin, salt, ITERATIONS) };
  }

  async function checkPin(pin, record) {
    if (!record || typeof pin !== 'string' || !pin) return false;
    const candidate = await derive(pin, fromHex(record.salt), record.iterations);
    // Same length hex strings; compare every character so timing says nothing.
    let diff = candidate.length ^ record.hash.length;
    for (let i = 0; i < candidate.length; i++) diff |= candidate.charCodeAt(i) ^ record.hash.charCodeAt(i);
    return diff === 0;
  }

  function isAcceptablePin(pin) {
    return typeof pin === 'string' && /^\S{4,64}$/.test(pin);
  }

  global.PhotoShieldPin = { makePinRecord, checkPin, isAcceptablePin };
})(globalThis);
