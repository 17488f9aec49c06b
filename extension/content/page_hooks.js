// MAIN-world hooks, part 1 of 4 (then catch_inputs.js, catch_transfers.js, page_gate.js): the channel
// to bridge.js, which hands every file to the service worker, and the second line, uploads the page
// builds itself (fetch, XMLHttpRequest, sendBeacon with Blob, File, FormData, bytes or streams).
// Files reach the page already protected (the other parts); what is sent here is checked again.
(function () {
  'use strict';

  const TAG = '__photoShield';
  const API = Symbol.for('photoShield.pageHooks');
  const HOOKED = Symbol.for('photoShield.hooked');
  // A frame the parent's hooks reached first (hookFrameWindow below) is theirs already.
  if (Object.prototype.hasOwnProperty.call(window, HOOKED)) return;

  // Captured before any page script runs, so later page changes cannot unhook us.
  const post = window.postMessage.bind(window);
  const nativeAddListener = EventTarget.prototype.addEventListener;
  const { Blob: NativeBlob, File: NativeFile, FormData: NativeFormData, Request: NativeRequest,
    Headers: NativeHeaders, Response: NativeResponse, ReadableStream: NativeStream } = window;

  // Brand checks instead of instanceof: a Blob, FormData or Request made in another frame of the page
  // (a same-origin iframe's realm) is not an instance of this frame's classes but must be caught too.
  function brandCheck(prototype, property) {
    const getter = Object.getOwnPropertyDescriptor(prototype, property).get;
    return (value) => {
      if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
      try { getter.call(value); return true; } catch (_) { return false; }
    };
  }
  const isBlob = brandCheck(NativeBlob.prototype, 'size');
  const isFile = brandCheck(NativeFile.prototype, 'name');
  const isArrayBuffer = brandCheck(ArrayBuffer.prototype, 'byteLength');
  const isStream = brandCheck(NativeStream.prototype, 'locked');
  const isRequest = brandCheck(NativeRequest.prototype, 'method');
  const formDataHas = NativeFormData.prototype.has;
  const isFormData = (value) => {
    if (value === null || typeof value !== 'object') return false;
    try { formDataHas.call(value, ''); return true; } catch (_) { return false; }
  };

  // ---- the channel to bridge.js -----------------------------------------------------------------

  // Blobs and buffers the service worker has answered for (protected, or let through as they are), and
  // everything cut or copied whole from them: sending those again needs no second look.
  const verified = new WeakSet();
  // A piece (slice, copy) of a file nobody has answered for yet -> that whole file.
  const wholeOf = new WeakMap();
  let siteProtected = true; // until bridge.js says this site is not covered (fail closed)

  const requestPrefix = Math.random().toString(36).slice(2);
  let lastRequestId = 0;
  const waiting = new Map();

  function ask(blob, part) {
    return new Promise((resolve) => {
      const id = `${requestPrefix}-${++lastRequestId}`;
      waiting.set(id, resolve);
      post({ [TAG]: 'protect-request', id, blob, name: isFile(blob) ? blob.name : '', part }, '*');
    });
  }

  /** The file the page may have instead of `file` (protected, or the same one), or null: nothing. */
  async function verifyFile(file) {
    if (verified.has(file)) return file;
    const reply = await ask(file, false);
    if (!reply.ok) return null;
    const result = reply.changed ? reply.file : file;
    if (!isBlob(result)) return null;
    if (reply.changed && file.webkitRelativePath) {
      Object.defineProperty(result, 'webkitRelativePath', { value: file.webkitRelativePath });
    }
    verified.add(result);
    return result;
  }

  const PARALLEL_FILES = 2; // the server works on two photos at a time

  /** Every file verified, in order, or null if any one must not reach the page (the whole batch stops). */
  async function verifyFiles(files) {
    const results = new Array(files.length);
    let next = 0;
    let failed = false;
    async function work() {
      while (!failed && next < files.length) {
        const index = next++;
        results[index] = await verifyFile(files[index]);
        if (!results[index]) failed = true;
      }
    }
    await Promise.all(Array.from({ length: Math.min(PARALLEL_FILES, files.length) }, work));
    return failed ? null : results;
  }

  function listen(win) {
    nativeAddListener.call(win, 'message', onMessage, true);
  }

  function onMessage(event) {
    const message = event.data;
    if (event.source !== window || !message || typeof message !== 'object') return;
    if (message[TAG] === 'protect-reply') {
      const settle = waiting.get(message.id);
      if (settle) {
        waiting.delete(message.id);
        settle(message);
      }
    } else if (message[TAG] === 'site-status') {
      siteProtected = message.protect !== false;
    }
  }
  listen(window);

  // ---- pieces of files: slices, copies and bytes --------------------------------------------------

  /** `result` was cut or copied from `source`: verified if that was; a true piece of an unanswered
   *  file is remembered (a full copy is simply looked at like any other file). */
  function markDerived(result, source) {
    if (verified.has(source)) {
      verified.add(result);
      return;
    }
    const whole = wholeOf.get(source) || (isBlob(source) ? source : null);
    if (whole && isBlob(result) && result.size < whole.size) wholeOf.set(result, whole);
  }

  /** Slices, bytes and re-wrapped copies of a verified file are verified; of any other, remembered. */
  function trackPieces(win) {
    const blobPrototype = win.Blob.prototype;
    const nativeSlice = blobPrototype.slice;
    blobPrototype.slice = function slice() {
      const piece = nativeSlice.apply(this, arguments);
      markDerived(piece, this);
      return piece;
    };
    for (const method of ['arrayBuffer', 'bytes']) {
      const native = blobPrototype[method];
      if (typeof native !== 'function') continue;
      blobPrototype[method] = function () {
        const blob = this;
        return native.apply(blob, arguments).then((bytes) => {
          if (verified.has(blob)) {
            verified.add(bytes);
            if (ArrayBuffer.isView(bytes)) verified.add(bytes.buffer);
          }
          return bytes;
        });
      };
    }
    // formData.append(name, blob, filename) stores a new File made from the blob (Dropzone's chunks): the
    // stored entry carries the blob's standing.
    const formPrototype = win.FormData.prototype;
    const nativeGetAll = formPrototype.getAll;
    for (const method of ['append', 'set']) {
      const native = formPrototype[method];
      formPrototype[method] = function (name, value) {
        const result = native.apply(this, arguments);
        if (isBlob(value) && (verified.has(value) || wholeOf.has(value))) {
          const entries = nativeGetAll.call(this, name);
          const stored = entries[entries.length - 1];
          if (stored !== value && isBlob(stored) && stored.size === value.size) {
            if (verified.has(value)) verified.add(stored);
            else wholeOf.set(stored, wholeOf.get(value));
          }
        }
        return result;
      };
    }
    // new Blob([piece]) / new File([piece], ...) of one piece carries the piece's standing.
    for (const name of ['Blob', 'File']) {
      const Native = win[name];
      win[name] = new Proxy(Native, {
        construct(target, args, newTarget) {
          const made = Reflect.construct(target, args, newTarget === win[name] ? target : newTarget);
          const parts = Array.isArray(args[0]) ? args[0] : [];
          if (parts.length && parts.every((part) => verified.has(part))) verified.add(made);
          else if (parts.length === 1) markDerived(made, parts[0]);
          return made;
        },
      });
    }
  }

  // One answer per whole file, however many pieces of it are sent (in parallel, by chunked uploads).
  const wholeVerdicts = new WeakMap();

  /** A piece of a file nobody answered for: sent only if the whole file may go out as it is. */
  function judgePiece(whole) {
    if (!wholeVerdicts.has(whole)) {
      wholeVerdicts.set(whole, ask(whole, true).then((reply) => reply.ok && !reply.changed));
    }
    return wholeVerdicts.get(whole);
  }

  // ---- uploads the page builds itself ----------------------------------------------------------

  function blockedError() {
    // fetch rejects with TypeError on network failure; pages already handle that shape.
    return new TypeError('Photo Shield blocked this upload: the file could not be protected.');
  }

  /** The body part to send instead of `blob`; rejects when it must not be sent. */
  async function safeBlob(blob) {
    if (verified.has(blob)) return blob;
    if (wholeOf.has(blob)) {
      if (await judgePiece(wholeOf.get(blob))) return blob;
      throw blockedError();
    }
    if (isFile(blob)) {
      const result = await verifyFile(blob);
      if (!result) throw blockedError();
      return result;
    }
    const asFile = new NativeFile([blob], 'file', { type: blob.type });
    const result = await verifyFile(asFile);
    if (!result) throw blockedError();
    const safe = result === asFile ? blob : new NativeBlob([result], { type: result.type });
    verified.add(safe);
    return safe;
  }

  const isBytes = (body) => isArrayBuffer(body) || ArrayBuffer.isView(body);
  // A File may be one of the person's; a plain Blob the page made (JSON, text, an analytics beacon) is
  // looked at only when it may hold a picture or a video.
  const MAY_HOLD_PICTURES = /^(image|video)\/|octet-stream$/i;
  const needsLookBlob = (value) => isBlob(value) && !verified.has(value) &&
    (isFile(value) || wholeOf.has(value) || !value.type || MAY_HOLD_PICTURES.test(value.type));

  // Other checks on bodies (catch_camera.js: text made from a camera): { needs(body), protect(body) }.
  const bodyGuards = [];
  const guarded = (body) => body != null && bodyGuards.some((guard) => guard.needs(body));

  /** needsLook, or a guard wants to see the body. */
  const mustCheck = (body) => needsLook(body) || guarded(body);

  /** The body with every guard's changes, then files answered for (protectBody). */
  async function checkBody(body) {
    let safe = body;
    for (const guard of bodyGuards) if (guard.needs(safe)) safe = await guard.protect(safe);
    return needsLook(safe) ? protectBody(safe) : safe;
  }

  /** Cheap synchronous test: could this body carry a file nobody has answered for? */
  function needsLook(body) {
    if (body == null || !siteProtected) return false;
    if (isBlob(body)) return needsLookBlob(body);
    if (isFormData(body)) {
      for (const [, value] of body) if (needsLookBlob(value)) return true;
      return false;
    }
    if (isBytes(body)) return !verified.has(body) && !verified.has(body.buffer);
    return isStream(body);
  }

  /** The same body with every file in it replaced by what the service worker answered. */
  async function protectBody(body) {
    if (isBlob(body)) return needsLookBlob(body) ? safeBlob(body) : body;
    if (isFormData(body)) {
      const safe = new NativeFormData();
      for (const [key, value] of body) {
        if (needsLookBlob(value)) {
          const result = await safeBlob(value);
          safe.append(key, result, result.name || value.name);
        } else {
          safe.append(key, value);
        }
      }
      return safe;
    }
    if (isBytes(body)) {
      const original = new NativeBlob([body]);
      const result = await safeBlob(original);
      return result === original ? body : result.arrayBuffer();
    }
    if (isStream(body)) return safeBlob(await new NativeResponse(body).blob());
    return body;
  }

  async function protectRequest(request) {
    if (bodyGuards.length) {
      const whole = await request.clone().blob();
      if (guarded(whole)) {
        const safe = await checkBody(whole);
        if (safe !== whole) request = new NativeRequest(request, { body: safe });
      }
    }
    const contentType = request.headers.get('content-type') || '';
    if (/^multipart\/form-data/i.test(contentType)) {
      const form = await request.clone().formData();
      if (!needsLook(form)) return request;
      const headers = new NativeHeaders(request.headers);
      headers.delete('content-type'); // the new body brings its own boundary
      return new NativeRequest(request, { body: await protectBody(form), headers });
    }
    const whole = await request.clone().blob();
    if (!needsLookBlob(whole)) return request;
    const result = await safeBlob(whole);
    if (result === whole) return request;
    const headers = new NativeHeaders(request.headers);
    if (/^image\//i.test(contentType)) headers.set('content-type', result.type);
    return new NativeRequest(request, { body: result, headers });
  }

  const asyncRequests = new WeakMap();

  /** Wraps fetch, XMLHttpRequest and sendBeacon of `win` (this window, or a same-origin frame's). */
  function hookNetwork(win) {
    const nativeFetch = win.fetch;
    const xhrPrototype = win.XMLHttpRequest.prototype;
    const nativeOpen = xhrPrototype.open;
    const nativeSend = xhrPrototype.send;
    const nativeBeacon = win.navigator.sendBeacon;

    win.fetch = function fetch(input, init) {
      const initBody = init && init.body != null ? init.body : null;
      if (initBody !== null) {
        if (!mustCheck(initBody)) return nativeFetch.call(win, input, init);
        return checkBody(initBody).then((body) => nativeFetch.call(win, input, { ...init, body }));
      }
      if (isRequest(input) && input.body !== null && siteProtected) {
        return protectRequest(new NativeRequest(input, init)).then((request) => nativeFetch.call(win, request));
      }
      return nativeFetch.call(win, input, init);
    };

    xhrPrototype.open = function open(method, url, isAsync) {
      asyncRequests.set(this, arguments.length < 3 || isAsync !== false);
      return nativeOpen.apply(this, arguments);
    };

    xhrPrototype.send = function send(body) {
      if (!mustCheck(body)) return nativeSend.call(this, body);
      if (asyncRequests.get(this) === false) {
        // A synchronous request cannot wait for the shield: refuse it rather than send the original.
        throw new DOMException('Photo Shield blocked a synchronous file upload.', 'NetworkError');
      }
      const request = this;
      checkBody(body).then(
        (safe) => nativeSend.call(request, safe),
        () => {
          request.dispatchEvent(new ProgressEvent('error'));
          request.dispatchEvent(new ProgressEvent('loadend'));
        });
    };

    if (typeof nativeBeacon === 'function') {
      win.navigator.sendBeacon = function sendBeacon(url, data) {
        if (!mustCheck(data)) return nativeBeacon.call(win.navigator, url, data);
        checkBody(data).then((safe) => nativeBeacon.call(win.navigator, url, safe), () => {});
        return true; // queued, as a beacon would be
      };
    }
  }

  // ---- every window of the page: this one, and same-origin frames reached before their own hooks ---

  // Each part: hooks (once per window) and listeners (again after document.open() erased them).
  const parts = [{ hooks(win) { hookNetwork(win); trackPieces(win); }, listeners(win) { if (win === window) listen(win); } }];

  function install(win) {
    Object.defineProperty(win, HOOKED, { value: true });
    for (const part of parts) part.hooks(win);
    rearm(win);
  }

  function rearm(win) {
    for (const part of parts) if (part.listeners) part.listeners(win);
  }

  // A frame that is still loading (src or srcdoc iframes, about:blank frames a page writes into) shows
  // the page a window with the browser's own functions until its copy of these hooks arrives: hook it
  // ourselves the moment the page reaches it.
  function hookFrameWindow(win) {
    try {
      if (win && win !== window && !Object.prototype.hasOwnProperty.call(win, HOOKED)) install(win);
    } catch (_) {
      // Another origin: its own content scripts take care of it.
    }
  }
  for (const FrameElement of [HTMLIFrameElement, HTMLFrameElement, HTMLObjectElement]) {
    for (const property of ['contentWindow', 'contentDocument']) {
      const descriptor = Object.getOwnPropertyDescriptor(FrameElement.prototype, property);
      if (!descriptor || !descriptor.get) continue;
      const nativeGet = descriptor.get;
      Object.defineProperty(FrameElement.prototype, property, {
        ...descriptor,
        get() {
          const value = nativeGet.call(this);
          hookFrameWindow(property === 'contentWindow' ? value : value && value.defaultView);
          return value;
        },
      });
    }
  }

  // Shared with the other MAIN-world parts.
  const api = {
    isBlob, isFile, isFormData, isBytes, verifyFile, verifyFiles, verified, rearm, nativeAddListener, blockedError,
    /** Adds a check on every body fetch, XHR and beacons send (and Requests): { needs(body), protect(body) }. */
    addBodyGuard: (guard) => bodyGuards.push(guard),
    siteProtected: () => siteProtected,
    /** Asks bridge.js to show the notice for `reason` (an upload the page tried that was stopped). */
    notify: (reason) => post({ [TAG]: 'notice', reason }, '*'),
    /** Adds a part: `hooks(win)` once per window, `listeners(win)` also after document.open(). */
    addPart(part) {
      parts.push(part);
      part.hooks(window);
      if (part.listeners) part.listeners(window);
    },
  };
  Object.defineProperty(window, API, { value: api });
  install(window);
})();
