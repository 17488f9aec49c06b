// Who may change settings: with a PIN set, every change needs it, and wrong guesses are slowed down.
// The count of wrong guesses lives in storage, so restarting the service worker does not reset it.
(function (global) {
  'use strict';

  const FREE_ATTEMPTS = 3; // wrong PINs allowed before the first wait
  const FIRST_WAIT_MS = 30000; // then 30 s, doubling after each wrong PIN, up to an hour
  const MAX_WAIT_MS = 3600000;

  function waitAfter(failures) {
    if (failures < FREE_ATTEMPTS) return 0;
    return Math.min(FIRST_WAIT_MS * 2 ** (failures - FREE_ATTEMPTS), MAX_WAIT_MS);
  }

  // One check at a time: parallel guesses must not each see the old count.
  let queue = Promise.resolve();

  async function check(pin) {
    const { pin: record, pinAttempts } = await chrome.storage.local.get(['pin', 'pinAttempts']);
    if (!record) return (await PhotoShieldSettings.load()).policyLocked ? { error: 'managed' } : null;
    if (!pin) return { error: 'pin_required' };
    const attempts = pinAttempts || { failures: 0, until: 0 };
    const now = Date.now();
    if (attempts.until > now) return { error: 'pin_wait', waitSeconds: Math.ceil((attempts.until - now) / 1000) };
    if (await PhotoShieldPin.checkPin(pin, record)) {
      if (attempts.failures) await chrome.storage.local.remove('pinAttempts');
      return null;
    }
    const failures = attempts.failures + 1;
    const wait = waitAfter(failures);
    await chrome.storage.local.set({ pinAttempts: { failures, until: wait ? now + wait : 0 } });
    return wait ? { error: 'pin_wait', waitSeconds: Math.ceil(wait / 1000) } : { error: 'pin_wrong' };
  }

  /** null when the change may go ahead, else { error, waitSeconds? }. A profile locked by policy with no
   *  PIN is changed by policy only. */
  function authorize(pin) {
    const result = queue.then(() => check(pin));
    queue = result.catch(() => {});
    return result;
  }

  global.PhotoShieldPinGuard = { authorize, waitAfter, FREE_ATTEMPTS };
})(globalThis);
