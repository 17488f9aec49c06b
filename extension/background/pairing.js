// One-click pairing, the extension's side (docs/SECURITY.md, "One-click pairing"): open a request, open the
// server's /connect page where the person allows it, collect the token, check the server's proof of it, keep it.
(function (global) {
  'use strict';

  const { ShieldFailure } = PhotoShieldClient;
  let open = null; // { id, secret, port }: the request of this worker; its secret never leaves the worker

  function failure(error) {
    return { ok: false, reason: error instanceof ShieldFailure ? error.reason : 'server_error' };
  }

  async function start(settings) {
    try {
      const request = await PhotoShieldClient.openPairing(settings);
      open = { id: request.id, secret: request.secret, port: settings.port };
      await chrome.tabs.create({ url: `http://127.0.0.1:${settings.port}/connect` });
      return { ok: true, code: request.code };
    } catch (error) {
      return failure(error);
    }
  }

  /** {ok, status}; on 'allowed' the token is checked against the server before it is returned. */
  async function poll(settings) {
    if (!open || open.port !== settings.port) return { ok: false, reason: 'pairing_expired' };
    let answer;
    try {
      answer = await PhotoShieldClient.collectPairing(settings, open.id, open.secret);
    } catch (error) {
      open = null;
      return error.reason === 'not_found' ? { ok: false, reason: 'pairing_expired' } : failure(error);
    }
    if (answer.status === 'pending') return { ok: true, status: 'pending' };
    open = null;
    if (answer.status !== 'allowed' || typeof answer.token !== 'string') return { ok: true, status: 'refused' };
    try {
      await PhotoShieldClient.health({ ...settings, token: answer.token });
    } catch (error) {
      return failure(error);
    }
    return { ok: true, status: 'allowed', token: answer.token };
  }

  global.PhotoShieldPairing = { start, poll };
})(globalThis);
