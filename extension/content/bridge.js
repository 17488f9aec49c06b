// Isolated-world content script, kept thin: hands image files to the service worker and gives back
// only what it answers. catch_inputs.js and catch_transfers.js catch files on their way into the page;
// page_hooks.js (MAIN world) asks us, over postMessage, about uploads the page builds itself.
(function (global) {
  'use strict';

  const TAG = '__photoShield';

  // Until the service worker says this site is not covered, treat it as covered (fail closed).
  let siteProtected = true;

  function refreshSiteStatus() {
    chrome.runtime.sendMessage({ type: 'siteStatus' })
      .then((answer) => { siteProtected = !answer || answer.protect !== false; })
      .catch(() => { siteProtected = true; });
  }
  refreshSiteStatus();
  chrome.storage.onChanged.addListener((changes, area) => {
    if (area === 'managed' || 'settings' in changes) refreshSiteStatus();
  });

  // ---- talking to the service worker -----------------------------------------------------------

  function blobToBase64(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  async function askWorker(message) {
    const answer = await chrome.runtime.sendMessage(message);
    return answer || { action: 'blocked', reason: 'extension_error' };
  }

  // The worker decides about every file from its first bytes; it asks for the whole file only to protect it.
  const HEAD_BYTES = 65536;

  async function decide(file) {
    // sendMessage would turn an ArrayBuffer into {} in Chromium, so bytes travel as base64.
    const described = { name: file.name || '', mime: file.type, size: file.size };
    const head = await blobToBase64(file.slice(0, HEAD_BYTES));
    let data = file.size <= HEAD_BYTES ? head : null;
    let answer = await askWorker({ type: 'protect', ...described, ...(data ? { data } : { head }) });
    if (answer.action === 'need_data') {
      data = await blobToBase64(file);
      answer = await askWorker({ type: 'protect', ...described, data });
    }
    // Review: the dialog answers with the worker's last word (the protected file, cancelled, or blocked).
    if (answer.action === 'review') answer = await PhotoShieldNotice.review(file.name, answer);
    if (answer.action === 'cancelled') return null;
    if (answer.action === 'pass' || answer.action === 'already') return file;
    if (answer.action === 'protected') {
      return new File([PhotoShieldBytes.fromBase64(answer.data)], answer.name,
        { type: answer.type, lastModified: Date.now() });
    }
    const choice = await PhotoShieldNotice.showBlocked(answer.reason,
      { canUploadOriginal: answer.canUploadOriginal === true, fileName: file.name });
    if (choice !== 'original') return null;
    // The page's own upload code will show these bytes to the shield again: let them through once.
    const allowed = await askWorker({ type: 'allowOriginalOnce', ...described, ...(data ? { data } : { head }) });
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

  const PARALLEL_PHOTOS = 2; // the server works on two photos at a time

  /** All files replaced, in order, or null if any one of them must not go out (the whole batch stops). */
  async function processFiles(files) {
    const results = new Array(files.length);
    let next = 0;
    let failed = false;
    async function work() {
      while (!failed && next < files.length) {
        const index = next++;
        results[index] = await processFile(files[index]);
        if (!results[index]) failed = true;
      }
    }
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PHOTOS, files.length) }, work));
    return failed ? null : results;
  }

  // Every file goes to the worker, which decides (photos protected; videos and other files by the settings).
  const mayBeImage = (file) => file instanceof Blob;

  function stop(event) {
    event.stopImmediatePropagation();
    event.stopPropagation();
  }

  // Content scripts may open closed shadow roots (Chromium: chrome.dom; Firefox: openOrClosedShadowRoot).
  function shadowRootOf(element) {
    if (globalThis.chrome && chrome.dom && chrome.dom.openOrClosedShadowRoot) {
      return chrome.dom.openOrClosedShadowRoot(element);
    }
    return element.openOrClosedShadowRoot || element.shadowRoot;
  }

  const isFileInput = (node) => node instanceof HTMLInputElement && node.type === 'file';

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

  global.PhotoShieldBridge = {
    processFile, processFiles, mayBeImage, stop, shadowRootOf, isFileInput, TAG,
    siteProtected: () => siteProtected,
  };
})(globalThis);
