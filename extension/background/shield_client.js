// Talks to the local Photo Shield server. Every answer that is not a clean success becomes a
// ShieldFailure with a reason code the notice can explain; callers never get unprotected bytes back.
(function (global) {
  'use strict';

  const { toHex } = PhotoShieldBytes;

  class ShieldFailure extends Error {
    constructor(reason, detail) {
      super(detail || reason);
      this.reason = reason;
    }
  }

  const REASON_FOR_STATUS = {
    400: 'bad_request', 401: 'not_paired', 403: 'forbidden', 404: 'not_found', 413: 'too_large',
    415: 'unsupported', 422: 'undecodable', 429: 'busy', 503: 'busy',
  };

  function baseUrl(settings) {
    return `http://127.0.0.1:${settings.port}`;
  }

  /** The moment a whole exchange (identity check, then the request) must be over: the one deadline setting. */
  function deadlineFor(settings) {
    return Date.now() + settings.timeoutSeconds * 1000;
  }

  async function call(settings, path, init, { deadline, sendToken = true }) {
    if (sendToken && !settings.token) throw new ShieldFailure('not_paired', 'no pairing token');
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(deadline - Date.now(), 0));
    try {
      const response = await fetch(baseUrl(settings) + path, {
        ...init,
        headers: { ...(init.headers || {}), ...(sendToken ? { 'X-Shield-Token': settings.token } : {}) },
        signal: controller.signal,
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
      });
      // The body is read under the same deadline as the headers.
      const body = await response.arrayBuffer();
      return { response, body };
    } catch (error) {
      if (controller.signal.aborted) throw new ShieldFailure('timeout', 'no answer in time');
      throw new ShieldFailure('server_unreachable', String(error));
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Makes the program on the port prove it holds our pairing token (GET /v1/identify, docs/API.md) before
   * it is sent the token or a photo. A program squatting on the port while Photo Shield is stopped cannot,
   * so it never sees a photo and cannot answer one with the original.
   */
  async function checkIdentity(settings, deadline) {
    if (!settings.token) throw new ShieldFailure('not_paired', 'no pairing token');
    const challenge = toHex(crypto.getRandomValues(new Uint8Array(24)));
    const { response, body } = await call(settings, `/v1/identify?challenge=${challenge}`, { method: 'GET' },
      { deadline, sendToken: false });
    let proof = null;
    try { proof = JSON.parse(new TextDecoder().decode(body)).proof; } catch (_) { /* not JSON */ }
    const encoder = new TextEncoder();
    const key = await crypto.subtle.importKey('raw', encoder.encode(settings.token),
      { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const expected = toHex(await crypto.subtle.sign('HMAC', key, encoder.encode('photo-shield-proof:' + challenge)));
    if (response.status !== 200 || proof !== expected) {
      throw new ShieldFailure('not_photo_shield', `no proof of the pairing token (${response.status})`);
    }
  }

  /** A busy server (429/503) says when to come back (Retry-After); the photo tries again if that is still
   *  before the deadline, else the busy answer stands (and the upload is blocked). */
  function busyWait(response, deadline) {
    if (response.status !== 429 && response.status !== 503) return null;
    const seconds = Number(response.headers.get('Retry-After'));
    const wait = (Number.isFinite(seconds) && seconds > 0 ? seconds : 1) * 1000;
    return Date.now() + wait < deadline ? wait : null;
  }

  function failureFrom(response, body) {
    let detail = '';
    try { detail = JSON.parse(new TextDecoder().decode(body)).message || ''; } catch (_) { /* not JSON */ }
    return new ShieldFailure(REASON_FOR_STATUS[response.status] || 'server_error',
      `${response.status} ${detail}`.trim());
  }

  function parseReport(header) {
    let report;
    try { report = JSON.parse(header || ''); } catch (_) { return null; }
    if (!report || !Number.isInteger(report.faces) || report.faces < 0) return null;
    if (!Array.isArray(report.boxes)) report.boxes = [];
    return report;
  }

  /** Sends image bytes to /v1/protect; resolves only with a checked, protected image. `choices`: the
   *  review's {regions, keep} (docs/API.md), boxes in pixels of the upright photo. */
  async function protectImage(settings, bytes, contentType, choices = {}) {
    const query = new URLSearchParams({
      fill: settings.fill, color: settings.color, margin: String(settings.margin),
      format: 'same', mode: settings.mode,
    });
    if (settings.fill === 'sticker') query.set('sticker', settings.sticker);
    for (const key of ['regions', 'keep']) {
      if (choices[key] && choices[key].length) query.set(key, JSON.stringify(choices[key]));
    }
    const deadline = deadlineFor(settings);
    await checkIdentity(settings, deadline);
    let response, body;
    for (;;) {
      ({ response, body } = await call(settings, `/v1/protect?${query}`, {
        method: 'POST',
        headers: { 'Content-Type': contentType || 'application/octet-stream' },
        body: bytes,
      }, { deadline }));
      const wait = busyWait(response, deadline);
      if (wait === null) break;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    if (response.status !== 200) throw failureFrom(response, body);
    const type = (response.headers.get('Content-Type') || '').split(';')[0].trim().toLowerCase();
    const report = parseReport(response.headers.get('X-Shield-Report'));
    const sniffed = PhotoShieldImageTypes.sniffBytes(new Uint8Array(body, 0, Math.min(32, body.byteLength)));
    if (!report || !type.startsWith('image/') || body.byteLength === 0 || !sniffed) {
      throw new ShieldFailure('unexpected_answer', 'the server answer was not a protected image');
    }
    return { bytes: body, type: sniffed, report };
  }

  async function health(settings) {
    const deadline = deadlineFor(settings);
    await checkIdentity(settings, deadline);
    const { response, body } = await call(settings, '/v1/health', { method: 'GET' }, { deadline });
    if (response.status !== 200) throw failureFrom(response, body);
    let info;
    try { info = JSON.parse(new TextDecoder().decode(body)); } catch (_) { info = null; }
    if (!info || info.status !== 'ready') throw new ShieldFailure('unexpected_answer', 'server not ready');
    return info;
  }

  async function jsonFrom(response, body) {
    if (response.status !== 200) throw failureFrom(response, body);
    try { return JSON.parse(new TextDecoder().decode(body)); } catch (_) {
      throw new ShieldFailure('unexpected_answer', 'not JSON');
    }
  }

  /** One-click pairing (docs/API.md): opens a request; the person allows it in the server's /connect page. */
  async function openPairing(settings) {
    const { response, body } = await call(settings, '/v1/pairing', { method: 'POST' },
      { deadline: deadlineFor(settings), sendToken: false });
    return jsonFrom(response, body);
  }

  /** {status: 'pending' | 'allowed' | 'refused', token?}; a 404 means expired or gone. */
  async function collectPairing(settings, id, secret) {
    const { response, body } = await call(settings, `/v1/pairing/${encodeURIComponent(id)}`,
      { method: 'GET', headers: { 'X-Shield-Pairing-Secret': secret } },
      { deadline: deadlineFor(settings), sendToken: false });
    return jsonFrom(response, body);
  }

  /** Whether any program answers on the port: sends no token and trusts nothing it says. Only tells a
   * never-paired browser's pages which step comes first (start Photo Shield, or connect to it). */
  async function answers(settings) {
    try {
      await call(settings, '/v1/health', { method: 'GET' }, { deadline: deadlineFor(settings), sendToken: false });
      return true;
    } catch (error) {
      return false;
    }
  }

  global.PhotoShieldClient = {
    protectImage, health, answers, openPairing, collectPairing, ShieldFailure,
    call, checkIdentity, failureFrom, // for the video jobs (video_jobs.js)
  };
})(globalThis);
