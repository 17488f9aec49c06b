// MAIN-world hooks: uploads the page builds itself (fetch, XMLHttpRequest, sendBeacon with Blob,
// File, FormData, bytes or streams) wait here while bridge.js gets the photo protected; a photo that
// cannot be protected is never sent. Also replays protected drop/paste events the page can read.
(function () {
  'use strict';

  const TAG = '__photoShield';

  // Captured before any page script runs, so later page changes cannot unhook us.
  const post = window.postMessage.bind(window);
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

  const requestPrefix = Math.random().toString(36).slice(2);
  let lastRequestId = 0;
  const waiting = new Map();

  function blockedError() {
    // fetch rejects with TypeError on network failure; pages already handle that shape.
    return new TypeError('Photo Shield blocked this upload: the photo could not be protected.');
  }

  function protectBlob(blob) {
    return new Promise((resolve, reject) => {
      const id = `${requestPrefix}-${++lastRequestId}`;
      waiting.set(id, (reply) => {
        if (!reply.ok) reject(blockedError());
        else if (!reply.changed) resolve(blob); // not an image, or already protected: the page's own object
        else if (isBlob(reply.file)) resolve(reply.file);
        else reject(blockedError());
      });
      post({ [TAG]: 'protect-request', id, blob, name: isFile(blob) ? blob.name : '' }, '*');
    });
  }

  const isBytes = (body) => isArrayBuffer(body) || ArrayBuffer.isView(body);

  // A first, generous filter (Chrome injects each extension file into one world only, so the shared
  // image_types.js is not here): bridge.js looks at the bytes and hands anything else back unchanged.
  const IMAGE_NAME = /\.(jpe?g|jfif|png|gif|webp|bmp|tiff?|heic|heif|avif|svg|ico)$/i;
  function mayBeImage(blob) {
    if (!isBlob(blob)) return false;
    const type = blob.type.toLowerCase();
    return !type || type.startsWith('image/') || type.endsWith('octet-stream') ||
      (isFile(blob) && IMAGE_NAME.test(blob.name));
  }

  /** Cheap synchronous test: could this body carry a photo? */
  function needsLook(body) {
    if (body == null) return false;
    if (isBlob(body)) return mayBeImage(body);
    if (isFormData(body)) {
      for (const [, value] of body) if (mayBeImage(value)) return true;
      return false;
    }
    return isBytes(body) || isStream(body);
  }

  async function protectedBlobLike(original) {
    const result = await protectBlob(original);
    if (result === original) return original;
    return isFile(original) ? result : new NativeBlob([result], { type: result.type });
  }

  /** The same body with every photo in it replaced by its protected version. */
  async function protectBody(body) {
    if (isBlob(body)) return mayBeImage(body) ? protectedBlobLike(body) : body;
    if (isFormData(body)) {
      const safe = new NativeFormData();
      for (const [key, value] of body) {
        if (mayBeImage(value)) {
          const result = await protectBlob(value);
          safe.append(key, result, result.name || value.name);
        } else {
          safe.append(key, value);
        }
      }
      return safe;
    }
    if (isBytes(body)) {
      const original = new NativeBlob([body]);
      const result = await protectBlob(original);
      return result === original ? body : result.arrayBuffer();
    }
    if (isStream(body)) return protectBlob(await new NativeResponse(body).blob());
    return body;
  }

  async function protectRequest(request) {
    const contentType = request.headers.get('content-type') || '';
    if (/^multipart\/form-data/i.test(contentType)) {
      const form = await request.clone().formData();
      if (!needsLook(form)) return request;
      const headers = new NativeHeaders(request.headers);
      headers.delete('content-type'); // the new body brings its own boundary
      return new NativeRequest(request, { body: await protectBody(form), headers });
    }
    const whole = await request.clone().blob();
    if (!mayBeImage(whole)) return request;
    const result = await protectBlob(whole);
    if (result === whole) return request;
    const headers = new NativeHeaders(request.headers);
    if (/^image\//i.test(contentType)) headers.set('content-type', result.type);
    return new NativeRequest(request, { body: result, headers });
  }

  const asyncRequests = new WeakMap();

  /** Wraps fetch, XMLHttpRequest and sendBeacon of `win` (this window, or a same-origin frame's). */
  function hookWindow(win) {
    const nativeFetch = win.fetch;
    const xhrPrototype = win.XMLHttpRequest.prototype;
    const nativeOpen = xhrPrototype.open;
    const nativeSend = xhrPrototype.send;
    const nativeBeacon = win.navigator.sendBeacon;

    win.fetch = function fetch(input, init) {
      const initBody = init && init.body != null ? init.body : null;
      if (initBody !== null) {
        if (!needsLook(initBody)) return nativeFetch.call(win, input, init);
        return protectBody(initBody).then((body) => nativeFetch.call(win, input, { ...init, body }));
      }
      if (isRequest(input) && input.body !== null) {
        return protectRequest(new NativeRequest(input, init)).then((request) => nativeFetch.call(win, request));
      }
      return nativeFetch.call(win, input, init);
    };

    xhrPrototype.open = function open(method, url, isAsync) {
      asyncRequests.set(this, arguments.length < 3 || isAsync !== false);
      return nativeOpen.apply(this, arguments);
    };

    xhrPrototype.send = function send(body) {
      if (!needsLook(body)) return nativeSend.call(this, body);
      if (asyncRequests.get(this) === false) {
        // A synchronous request cannot wait for the shield: refuse it rather than send the original.
        throw new DOMException('Photo Shield blocked a synchronous photo upload.', 'NetworkError');
      }
      const request = this;
      protectBody(body).then(
        (safe) => nativeSend.call(request, safe),
        () => {
          request.dispatchEvent(new ProgressEvent('error'));
          request.dispatchEvent(new ProgressEvent('loadend'));
        });
    };

    if (typeof nativeBeacon === 'function') {
      win.navigator.sendBeacon = function sendBeacon(url, data) {
        if (!needsLook(data)) return nativeBeacon.call(win.navigator, url, data);
        protectBody(data).then((safe) => nativeBeacon.call(win.navigator, url, safe), () => {});
        return true; // queued, as a beacon would be
      };
    }
  }

  hookWindow(window);

  // A frame that is still loading (src or srcdoc iframes) shows the page a window with the browser's
  // own fetch until its copy of these hooks arrives: hook it ourselves the moment the page reaches it.
  const nativeSource = Function.prototype.toString;
  function hookFrameWindow(win) {
    try {
      if (win && win !== window && nativeSource.call(win.fetch).includes('[native code]')) hookWindow(win);
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

  // ---- replaying drop / paste with protected files -------------------------------------------

  function findTarget(root, nonce) {
    const selector = `[data-photo-shield-target="${nonce}"]`;
    const direct = root.querySelector(selector);
    if (direct) return direct;
    for (const element of root.querySelectorAll('*')) {
      if (element.shadowRoot) {
        const found = findTarget(element.shadowRoot, nonce);
        if (found) return found;
      }
    }
    return null;
  }

  function replay({ nonce, eventType, files, strings, init }) {
    if (typeof nonce !== 'string' || !/^[0-9a-f-]{36}$/.test(nonce) || !Array.isArray(files)) return;
    const target = findTarget(document, nonce);
    if (!target) return;
    target.removeAttribute('data-photo-shield-target');
    const transfer = new DataTransfer();
    for (const file of files) if (isFile(file)) transfer.items.add(file);
    for (const [type, value] of Object.entries(strings || {})) transfer.setData(type, String(value));
    const common = { bubbles: true, cancelable: true, composed: true };
    const event = eventType === 'drop'
      ? new DragEvent('drop', { ...init, ...common, dataTransfer: transfer })
      : new ClipboardEvent('paste', { ...common, clipboardData: transfer });
    target.dispatchEvent(event);
  }

  window.addEventListener('message', (event) => {
    const message = event.data;
    if (event.source !== window || !message || typeof message !== 'object') return;
    if (message[TAG] === 'protect-reply') {
      const settle = waiting.get(message.id);
      if (settle) {
        waiting.delete(message.id);
        settle(message);
      }
    } else if (message[TAG] === 'redispatch') {
      replay(message);
    }
  }, true);
})();
