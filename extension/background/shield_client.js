// Talks to the local Photo Shield server. Every answer that is not a clean success becomes a
// ShieldFailure with a reason code the notice can explain; callers never get unprotected bytes back.
(function (global) {
  'use strict';

  class ShieldFailure extends Error {
    constructor(reason, detail) {
      super(detail || reason);
      this.reason = reason;
    }
  }

  const REASON_FOR_STATUS = {
    400: 'bad_request', 401: 'not_paired', 403: 'forbidden', 413: 'too_large',
    415: 'unsupported', 422: 'undecodable', 429: 'busy', 503: 'busy',
  };

  function baseUrl(settings) {
    return `http://127.0.0.1:${settings.port}`;
  }

  async function call(settings, path, init) {
    if (!settings.token) throw new ShieldFailure('not_paired', 'no pairing token');
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), settings.timeoutSeconds * 1000);
    try {
      const response = await fetch(baseUrl(settings) + path, {
        ...init,
        headers: { ...(init.headers || {}), 'X-Shield-Token': settings.token },
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

  /** Sends image bytes to /v1/protect; resolves only with a checked, protected image. */
  async function protectImage(settings, bytes, contentType) {
    const query = new URLSearchParams({
      fill: settings.fill, color: settings.color, margin: String(settings.margin),
      format: 'same', mode: settings.mode,
    });
    const { response, body } = await call(settings, `/v1/protect?${query}`, {
      method: 'POST',
      headers: { 'Content-Type': contentType || 'application/octet-stream' },
      body: bytes,
    });
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
    const { response, body } = await call(settings, '/v1/health', { method: 'GET' });
    if (response.status !== 200) throw failureFrom(response, body);
    let info;
    try { info = JSON.parse(new TextDecoder().decode(body)); } catch (_) { info = null; }
    if (!info || info.status !== 'ready') throw new ShieldFailure('unexpected_answer', 'server not ready');
    return info;
  }

  global.PhotoShieldClient = { protectImage, health, ShieldFailure };
})(globalThis);
