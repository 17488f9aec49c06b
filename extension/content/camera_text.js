// MAIN-world hooks, part 5 of 6: camera stills that travel as text. `canvas.toDataURL()` is synchronous,
// so a canvas holding a camera frame (catch_camera.js) cannot hand the page a protected copy the first
// time it is asked. It hands the page its own data URL, remembers it here and has it protected at once;
// every body a page sends (fetch, XHR, beacons, WebSocket messages, form data) is looked at for that text
// (whole, or any piece of it ≥ 56 characters, as standard, URL-safe or percent-encoded base64) and held
// until the protected copy is ready, which takes its place. Pieces of one still sent apart (a split upload)
// are each replaced by the matching share of the protected copy, so that put together again they are
// exactly the protected still. A still that cannot be protected is never sent (the notice says why).
// Pages that never drew a camera frame pay nothing: with no still remembered, no body is looked at.
(function () {
  'use strict';

  const api = window[Symbol.for('photoShield.pageHooks')];
  if (!api) return;
  const { isBlob, isFormData, isBytes, verifyFile, verified, siteProtected } = api;
  const { File: NativeFile, Blob: NativeBlob, FormData: NativeFormData, URLSearchParams: NativeParams } = window;
  const nativeAtob = window.atob.bind(window);
  const nativeBtoa = window.btoa.bind(window);

  const WINDOW = 24; // characters per indexed window
  const STEP = 32; // a window every STEP characters of a still; a piece of WINDOW + STEP characters holds one
  const MIN_PIECE = WINDOW + STEP;
  const SAMPLE_STEP = 31; // in long runs of text look every 31st character (31 and 32 share no factor)
  const LONG_RUN = 4096;
  const HEADER = 1024; // an image's first bytes are much the same in any copy: no windows there
  const MAX_STILLS = 48; // remembered with their windows; older ones keep a sample that blocks
  const MAX_SCANNED_BYTES = 64 * 1024 * 1024;
  const RUN = /[A-Za-z0-9+/_%=-]{56,}/g;

  const stills = []; // oldest first: { variants: [text, ...], mime, result: null | {ok, base64, type}, job }
  const byBase64 = new Map(); // standard base64 -> its still
  // window -> [still, variant index, position]; a window seen twice (plain areas of a picture repeat
  // themselves) -> null: it cannot say where a piece belongs, so it anchors nothing.
  const windows = new Map();
  const retired = new Set(); // sample windows of stills no longer remembered: never sent

  const percentEncoded = (text) => text.replace(/\+/g, '%2B').replace(/\//g, '%2F').replace(/=/g, '%3D');
  const urlSafe = (text) => text.replace(/\+/g, '-').replace(/\//g, '_');
  const VARIANTS = [(text) => text, urlSafe, percentEncoded];

  function bytesToBase64(bytes) {
    let binary = '';
    for (let i = 0; i < bytes.length; i += 32768) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 32768));
    return nativeBtoa(binary);
  }

  function parseDataUrl(url) {
    const match = /^data:([^;,]*)(?:;[^,]*)?;base64,/.exec(url);
    return match ? { mime: match[1] || 'application/octet-stream', base64: url.slice(match[0].length) } : null;
  }

  /** The protected copy of a still (starting the work if nobody has yet): { ok, base64, type }. */
  function protectStill(still) {
    if (!still.job) {
      clearTimeout(still.timer);
      still.job = (async () => {
        const binary = nativeAtob(still.variants[0]);
        const bytes = new Uint8Array(binary.length);
        for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
        const file = new NativeFile([bytes], 'camera.' + (still.mime.split('/')[1] || 'png'), { type: still.mime });
        const result = await verifyFile(file).catch(() => null);
        if (!result) return { ok: false };
        const base64 = result === file ? still.variants[0] : bytesToBase64(new Uint8Array(await result.arrayBuffer()));
        return { ok: true, base64, type: result.type || still.mime };
      })().then((result) => { still.result = result; return result; });
    }
    return still.job;
  }

  function forget(still) {
    for (const [variant, text] of still.variants.entries()) {
      for (let at = HEADER; at + WINDOW <= text.length; at += STEP) {
        const key = text.substr(at, WINDOW);
        const place = windows.get(key);
        if (place && place[0] === still) windows.delete(key);
        if (variant === 0 && at % (STEP * 16) === 0 && retired.size < 200000) retired.add(key);
      }
    }
    byBase64.delete(still.variants[0]);
  }

  let eager = null; // the still about to be protected ahead, unless a newer one comes first

  /** A data URL made from a camera frame. Returns what the page gets: the protected data URL if it is
   *  ready, else this one, remembered and protected right away (its text is held at every sink). */
  function remember(url) {
    const parsed = parseDataUrl(url);
    if (!parsed || parsed.base64.length < MIN_PIECE) return url;
    const known = byBase64.get(parsed.base64);
    if (known) {
      return known.result && known.result.ok ? `data:${known.result.type};base64,${known.result.base64}` : url;
    }
    const still = { variants: VARIANTS.map((variant) => variant(parsed.base64)), mime: parsed.mime, result: null, job: null };
    stills.push(still);
    byBase64.set(parsed.base64, still);
    for (const [variant, text] of still.variants.entries()) {
      for (let at = HEADER; at + WINDOW <= text.length; at += STEP) {
        const key = text.substr(at, WINDOW);
        windows.set(key, windows.has(key) ? null : [still, variant, at]);
      }
    }
    if (stills.length > MAX_STILLS) forget(stills.shift());
    // Protect ahead, so that the upload seldom waits; a page taking stills many times a second has only its
    // latest one protected ahead (the others are protected if they are ever sent).
    if (eager && !eager.job) clearTimeout(eager.timer);
    eager = still;
    still.timer = setTimeout(() => protectStill(still), 150);
    return url;
  }

  const isRemembered = (url) => typeof url === 'string' && stills.length > 0 && Boolean(parseDataUrl(url)) &&
    byBase64.has(parseDataUrl(url).base64);

  /** The whole run is a piece of a still (the usual case: a data URL, or one piece of a split upload). */
  function wholeRun(run, at) {
    for (const still of stills) {
      for (const [variant, source] of still.variants.entries()) {
        const from = source.indexOf(run);
        if (from >= 0) return { start: at, end: at + run.length, still, variant, from, to: from + run.length };
      }
    }
    return null;
  }

  /** Pieces inside a run that holds other text too (`image=data%3A…`), found from their windows. Where a
   *  picture repeats itself a window may also match at the wrong place, so the longest matches win. */
  function piecesInsideRun(text, runStart, runEnd) {
    const candidates = [];
    const stride = runEnd - runStart > LONG_RUN ? SAMPLE_STEP : 1;
    for (let at = runStart; at + WINDOW <= runEnd; at += stride) {
      const key = text.substr(at, WINDOW);
      if (retired.has(key)) return null;
      const place = windows.get(key);
      if (!place) continue;
      const [still, variant, position] = place;
      const source = still.variants[variant];
      let start = at;
      let from = position;
      while (start > runStart && from > 0 && text.charCodeAt(start - 1) === source.charCodeAt(from - 1)) { start--; from--; }
      let end = at + WINDOW;
      let to = position + WINDOW;
      while (end < runEnd && to < source.length && text.charCodeAt(end) === source.charCodeAt(to)) { end++; to++; }
      candidates.push({ start, end, still, variant, from, to });
      if (end - start >= LONG_RUN || end === runEnd) at = end - stride; // surely the place: go on after it
    }
    const chosen = [];
    for (const piece of candidates.sort((a, b) => (b.end - b.start) - (a.end - a.start))) {
      if (chosen.every((other) => piece.end <= other.start || piece.start >= other.end)) chosen.push(piece);
    }
    return chosen.sort((a, b) => a.start - b.start);
  }

  /** Where `text` holds a piece of a remembered still: [{ start, end, still, variant, from, to }], in
   *  order; null if it holds a piece of a still no longer remembered. */
  function piecesIn(text) {
    const found = [];
    RUN.lastIndex = 0;
    let run;
    while ((run = RUN.exec(text))) {
      const whole = wholeRun(run[0], run.index);
      if (whole) {
        found.push(whole);
        continue;
      }
      const inside = piecesInsideRun(text, run.index, run.index + run[0].length);
      if (inside === null) return null;
      found.push(...inside);
    }
    return found;
  }

  /** The share of the protected still that stands in for the piece [from, to) of the original: cut at
   *  the same proportions, so pieces put together again make exactly the protected still. */
  function stand_in(piece, result) {
    const protectedText = VARIANTS[piece.variant](result.base64);
    const whole = piece.still.variants[piece.variant].length;
    const at = (offset) => (offset >= whole ? protectedText.length : Math.floor(offset * protectedText.length / whole));
    return protectedText.slice(at(piece.from), at(piece.to));
  }

  const blocked = () => api.blockedError();

  /** `text` with every piece of a still replaced by its protected share; rejects if one cannot be protected. */
  async function safeText(text) {
    const pieces = piecesIn(text);
    if (pieces === null) {
      api.notify('camera_expired');
      throw blocked();
    }
    if (!pieces.length) return text;
    let safe = '';
    let last = 0;
    for (const piece of pieces) {
      const result = await protectStill(piece.still);
      if (!result.ok) throw blocked();
      let before = text.slice(last, piece.start);
      // The data URL's type follows the protected copy (the server may change it).
      if (piece.from === 0) before = before.replace(/data:[\w.+-]+\/[\w.+-]+(;base64,)$/, `data:${result.type}$1`);
      safe += before + stand_in(piece, result);
      last = piece.end;
    }
    return safe + text.slice(last);
  }

  const latin1 = new TextDecoder('latin1');
  const MAY_HOLD_TEXT = (blob) => !verified.has(blob) && blob.size >= MIN_PIECE && blob.size <= MAX_SCANNED_BYTES;

  function needs(body) {
    if (stills.length === 0 && retired.size === 0) return false;
    if (!siteProtected()) return false;
    if (typeof body === 'string') return body.length >= MIN_PIECE;
    if (body instanceof NativeParams) return true;
    if (isBlob(body)) return MAY_HOLD_TEXT(body);
    if (isBytes(body)) return body.byteLength >= MIN_PIECE && body.byteLength <= MAX_SCANNED_BYTES;
    if (isFormData(body)) {
      for (const [, value] of body) if (typeof value === 'string' ? value.length >= MIN_PIECE : MAY_HOLD_TEXT(value)) return true;
    }
    return false;
  }

  /** Bytes read as Latin-1 (one character per byte), changed, and written back the same way. */
  async function safeBytes(bytes) {
    const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const text = latin1.decode(view);
    const safe = await safeText(text);
    if (safe === text) return null;
    const out = new Uint8Array(safe.length);
    for (let i = 0; i < safe.length; i++) out[i] = safe.charCodeAt(i);
    return out;
  }

  async function protect(body) {
    if (typeof body === 'string') return safeText(body);
    if (body instanceof NativeParams) {
      const safe = new NativeParams();
      for (const [key, value] of body) safe.append(key, await safeText(value));
      return safe;
    }
    if (isBlob(body)) {
      if (!MAY_HOLD_TEXT(body)) return body;
      const changed = await safeBytes(new Uint8Array(await body.arrayBuffer()));
      if (!changed) return body;
      const safe = body.name !== undefined ? new NativeFile([changed], body.name, { type: body.type }) : new NativeBlob([changed], { type: body.type });
      verified.add(safe);
      return safe;
    }
    if (isBytes(body)) return (await safeBytes(body)) || body;
    if (isFormData(body)) {
      const safe = new NativeFormData();
      for (const [key, value] of body) {
        if (typeof value === 'string') safe.append(key, await safeText(value));
        else {
          const checked = await protect(value);
          safe.append(key, checked, value.name);
        }
      }
      return safe;
    }
    return body;
  }

  api.addBodyGuard({ needs, protect });

  // ---- WebSocket: messages go out in order, each after its check ----------------------------------

  function hookSockets(win) {
    if (!win.WebSocket) return;
    const nativeSend = win.WebSocket.prototype.send;
    const queues = new WeakMap();
    win.WebSocket.prototype.send = function send(data) {
      const socket = this;
      if (!queues.has(socket) && !needs(data)) return nativeSend.call(socket, data);
      const queue = queues.get(socket) || Promise.resolve();
      const next = queue.then(() => (needs(data) ? protect(data) : data)).then(
        (safe) => nativeSend.call(socket, safe),
        () => {}); // not sent: the notice says why
      queues.set(socket, next);
      next.then(() => { if (queues.get(socket) === next) queues.delete(socket); });
      return undefined;
    };
  }

  // ---- form submits: data URLs in form fields -----------------------------------------------------

  /** form.submit() cannot wait: a field holding a still is given the protected copy if it is ready, or
   *  taken out of the form (the notice says why). */
  function onFormData(event) {
    if (!needs('x'.repeat(MIN_PIECE))) return;
    for (const [name, value] of Array.from(event.formData.entries())) {
      if (typeof value !== 'string' || value.length < MIN_PIECE) continue;
      const pieces = piecesIn(value);
      if (pieces && !pieces.length) continue;
      const ready = pieces && pieces.every((piece) => piece.still.result && piece.still.result.ok);
      const values = event.formData.getAll(name);
      event.formData.delete(name);
      for (const entry of values) {
        if (entry !== value) event.formData.append(name, entry);
        else if (ready) {
          let safe = '';
          let last = 0;
          for (const piece of pieces) {
            safe += value.slice(last, piece.start) + stand_in(piece, piece.still.result);
            last = piece.end;
          }
          event.formData.append(name, (safe + value.slice(last)).replace(/^data:[\w.+-]+\/[\w.+-]+;base64,/,
            `data:${pieces[0].still.result.type};base64,`));
        }
      }
      if (!ready) {
        if (pieces) pieces.forEach((piece) => protectStill(piece.still));
        api.notify('not_protected_yet');
      }
    }
  }

  api.addPart({
    hooks: hookSockets,
    listeners(win) { api.listen(win, 'formdata', onFormData); },
  });

  Object.assign(api, { cameraTexts: { remember, isRemembered } });
})();
