// Isolated-world content script, kept thin: catch image files on their way into the page
// (file inputs, drop, paste), hand them to the service worker, and put back only what it returns.
// Uploads the page builds itself are caught by page_hooks.js (MAIN world), which asks us over postMessage.
(function () {
  'use strict';

  const TAG = '__photoShield';
  const types = PhotoShieldImageTypes;

  // Until the service worker says this site is not covered, treat it as covered (fail closed).
  let siteProtected = true;
  let redispatching = false;
  const inputsAtWork = new Map(); // input -> promise of its protection, while it runs

  function refreshSiteStatus() {
    chrome.runtime.sendMessage({ type: 'siteStatus' })
      .then((answer) => { siteProtected = !answer || answer.protect !== false; })
      .catch(() => { siteProtected = true; });
  }
  refreshSiteStatus();
  chrome.storage.onChanged.addListener(refreshSiteStatus);

  // ---- talking to the service worker -----------------------------------------------------------

  function blobToBase64(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  function base64ToBytes(text) {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  async function askWorker(message) {
    const answer = await chrome.runtime.sendMessage(message);
    return answer || { action: 'blocked', reason: 'extension_error' };
  }

  async function decide(file) {
    if (!(await types.isImage(file))) return file;
    // sendMessage would turn an ArrayBuffer into {} in Chromium, so bytes travel as base64.
    const data = await blobToBase64(file);
    const answer = await askWorker({ type: 'protect', name: file.name || '', mime: file.type, data });
    if (answer.action === 'pass' || answer.action === 'already') return file;
    if (answer.action === 'protected') {
      const result = new File([base64ToBytes(answer.data)], answer.name, { type: answer.type, lastModified: Date.now() });
      if (answer.review && (await PhotoShieldNotice.review(result, answer.report)) !== 'upload') return null;
      return result;
    }
    const choice = await PhotoShieldNotice.showBlocked(answer.reason,
      { canUploadOriginal: answer.canUploadOriginal === true, fileName: file.name });
    if (choice !== 'original') return null;
    // The page's own upload code will show these bytes to the shield again: let them through once.
    const allowed = await askWorker({ type: 'allowOriginalOnce', data });
    return allowed.ok ? file : null;
  }

  /** The file to use instead (protected, or untouched if not an image), or null: upload nothing. */
  async function processFile(file) {
    try {
      return await decide(file);
    } catch (error) {
      PhotoShieldNotice.showBlocked('extension_error', { canUploadOriginal: false, fileName: file.name });
      return null;
    }
  }

  /** All files replaced, or null if any one of them must not go out (the whole batch stops). */
  async function processFiles(files) {
    const results = [];
    for (const file of files) {
      const result = await processFile(file);
      if (!result) return null;
      results.push(result);
    }
    return results;
  }

  const mayBeImage = (file) => types.classify(file) !== 'other';

  function stop(event) {
    event.stopImmediatePropagation();
    event.stopPropagation();
  }

  function fileListOf(files) {
    const transfer = new DataTransfer();
    for (const file of files) transfer.items.add(file);
    return transfer.files;
  }

  // ---- file inputs and forms -------------------------------------------------------------------

  // Files this script put into inputs (protected, not images, or originals the person allowed).
  const approved = new WeakSet();
  const unapprovedImages = (input) => Array.from(input.files || []).filter((f) => !approved.has(f) && mayBeImage(f));

  /** Replaces the input's files by their protected versions; resolves false if the upload must not happen. */
  function protectInput(input) {
    const files = Array.from(input.files || []);
    input.value = ''; // nothing unprotected stays in the field (or in a form submit) while we work
    const job = processFiles(files).then((results) => {
      inputsAtWork.delete(input);
      if (!results) return false;
      input.files = fileListOf(results);
      for (const file of input.files) approved.add(file);
      return true;
    });
    inputsAtWork.set(input, job);
    return job;
  }

  // Content scripts may open closed shadow roots (Chromium: chrome.dom; Firefox: openOrClosedShadowRoot).
  function shadowRootOf(element) {
    if (globalThis.chrome && chrome.dom && chrome.dom.openOrClosedShadowRoot) {
      return chrome.dom.openOrClosedShadowRoot(element);
    }
    return element.openOrClosedShadowRoot || element.shadowRoot;
  }

  const isFileInput = (node) => node instanceof HTMLInputElement && node.type === 'file';

  function fileInputWithImagesIn(root) {
    for (const element of root.querySelectorAll('*')) {
      if (isFileInput(element) && unapprovedImages(element).length) return element;
      const inner = shadowRootOf(element);
      const found = inner && fileInputWithImagesIn(inner);
      if (found) return found;
    }
    return null;
  }

  /** The file input behind an event; a closed shadow root shows us only its host, so look inside. */
  function fileInputOf(event) {
    const first = event.composedPath()[0];
    if (isFileInput(first)) return first;
    const root = first instanceof Element && shadowRootOf(first);
    return root ? fileInputWithImagesIn(root) : null;
  }

  // `change` does not leave a shadow root, so we also listen inside each root we meet.
  const watchedRoots = new WeakSet();

  function watchRootOf(input) {
    const root = input.getRootNode();
    if (root === document || watchedRoots.has(root)) return;
    watchedRoots.add(root);
    root.addEventListener('change', onFileInputEvent, true);
  }

  function onFileInputEvent(event) {
    if (redispatching) return;
    const input = fileInputOf(event);
    if (!input) return;
    if (inputsAtWork.has(input)) return stop(event); // the `change` that follows the `input` we took
    if (!siteProtected || unapprovedImages(input).length === 0) return;
    stop(event);
    watchRootOf(input);
    protectInput(input).then((ok) => {
      if (!ok) return;
      redispatching = true;
      try {
        input.dispatchEvent(new Event('input', { bubbles: true, composed: true }));
        input.dispatchEvent(new Event('change', { bubbles: true }));
      } finally {
        redispatching = false;
      }
    });
  }

  window.addEventListener('input', onFileInputEvent, true);
  window.addEventListener('change', onFileInputEvent, true);

  const fileInputsOf = (form) => Array.from(form.elements).filter(isFileInput);

  // A page may fill an input by script and submit without any change event: protect before submitting.
  window.addEventListener('submit', (event) => {
    const form = event.target;
    if (!siteProtected || !(form instanceof HTMLFormElement)) return;
    const waiting = fileInputsOf(form).filter((input) => inputsAtWork.has(input) || unapprovedImages(input).length);
    if (waiting.length === 0) return;
    event.preventDefault();
    stop(event);
    const submitter = event.submitter;
    Promise.all(waiting.map((input) => inputsAtWork.get(input) || protectInput(input))).then((results) => {
      if (results.every(Boolean) && form.isConnected) form.requestSubmit(submitter || undefined);
    });
  }, true);

  // Last line for form.submit() and new FormData(form), which cannot wait: an image we have not
  // approved is taken out of the form data rather than sent unprotected.
  window.addEventListener('formdata', (event) => {
    if (!siteProtected) return;
    let removed = false;
    for (const [name, value] of Array.from(event.formData.entries())) {
      if (value instanceof File && value.size > 0 && mayBeImage(value) && !approved.has(value)) {
        const kept = event.formData.getAll(name).filter((entry) => entry !== value);
        event.formData.delete(name);
        for (const entry of kept) event.formData.append(name, entry);
        removed = true;
      }
    }
    if (removed) PhotoShieldNotice.showBlocked('not_protected_yet', { canUploadOriginal: false });
  }, true);

  // ---- drop and paste --------------------------------------------------------------------------

  function stringsOf(transfer) {
    const strings = {};
    for (const type of transfer.types) {
      if (type !== 'Files') strings[type] = transfer.getData(type);
    }
    return strings;
  }

  /** The element really under the pointer / holding focus, through closed shadow roots too. */
  function deepTarget(event) {
    let element = event.composedPath()[0];
    if (!(element instanceof Element)) return document.documentElement;
    for (let root = shadowRootOf(element); root; root = shadowRootOf(element)) {
      const inner = event.type === 'drop' ? root.elementFromPoint(event.clientX, event.clientY) : root.activeElement;
      if (!inner || inner === element) break;
      element = inner;
    }
    return element;
  }

  function insideClosedShadow(element) {
    for (let root = element.getRootNode(); root instanceof ShadowRoot; root = root.host.getRootNode()) {
      if (root.mode === 'closed') return true;
    }
    return false;
  }

  function replacementEvent(eventType, files, strings, init) {
    const transfer = new DataTransfer();
    for (const file of files) transfer.items.add(file);
    for (const [type, value] of Object.entries(strings)) transfer.setData(type, value);
    const common = { bubbles: true, cancelable: true, composed: true };
    return eventType === 'drop'
      ? new DragEvent('drop', { ...init, ...common, dataTransfer: transfer })
      : new ClipboardEvent('paste', { ...common, clipboardData: transfer });
  }

  /** The page's replacement event is built in the MAIN world (Firefox hides our DataTransfer from the
   *  page), except inside closed shadow roots, which only we can reach. */
  function redispatch(eventType, target, files, strings, init) {
    if (insideClosedShadow(target)) {
      target.dispatchEvent(replacementEvent(eventType, files, strings, init));
      return;
    }
    const nonce = crypto.randomUUID();
    target.setAttribute('data-photo-shield-target', nonce);
    window.postMessage({ [TAG]: 'redispatch', nonce, eventType, files, strings, init }, '*');
  }

  function onTransfer(event, transfer, init) {
    // Our own replacement events are untrusted; a page's synthetic events carry files it already has.
    if (!event.isTrusted || !siteProtected || !transfer) return;
    const target = deepTarget(event);
    // Dropped on a file input: the browser fills the input, and the input hook takes it from there.
    if (isFileInput(target)) return;
    const files = Array.from(transfer.files || []);
    if (!files.some(mayBeImage)) return;
    event.preventDefault();
    stop(event);
    const strings = stringsOf(transfer);
    processFiles(files).then((results) => {
      if (results) redispatch(event.type, target, results, strings, init);
    });
  }

  window.addEventListener('drop', (event) => onTransfer(event, event.dataTransfer, {
    clientX: event.clientX, clientY: event.clientY, screenX: event.screenX, screenY: event.screenY,
    ctrlKey: event.ctrlKey, shiftKey: event.shiftKey, altKey: event.altKey, metaKey: event.metaKey,
  }), true);
  window.addEventListener('paste', (event) => onTransfer(event, event.clipboardData, {}), true);

  // ---- uploads the page builds itself (requests from page_hooks.js) ----------------------------

  window.addEventListener('message', (event) => {
    const message = event.data;
    if (event.source !== window || !message || message[TAG] !== 'protect-request') return;
    const { id, blob, name } = message;
    if (!(blob instanceof Blob)) return;
    const file = blob instanceof File ? blob : new File([blob], name || 'image', { type: blob.type });
    processFile(file).then((result) => {
      const changed = Boolean(result) && result !== file;
      window.postMessage({ [TAG]: 'protect-reply', id, ok: Boolean(result), changed, file: changed ? result : null }, '*');
    });
  });
})();
