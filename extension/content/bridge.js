// Isolated-world content script, kept thin: hands every file the page obtains to the service worker and
// gives back only what it answers. The MAIN-world parts (page_hooks.js, page_gate.js, catch_inputs.js,
// catch_transfers.js) catch files at their source and in uploads, and ask us over postMessage.
(function () {
  'use strict';

  const TAG = '__photoShield';

  // Until the service worker says this site is not covered, treat it as covered (fail closed).
  let siteProtected = true;

  function refreshSiteStatus() {
    chrome.runtime.sendMessage({ type: 'siteStatus' })
      .then((answer) => { siteProtected = !answer || answer.protect !== false; })
      .catch(() => { siteProtected = true; })
      .then(() => window.postMessage({ [TAG]: 'site-status', protect: siteProtected }, '*'));
  }
  refreshSiteStatus();
  chrome.storage.onChanged.addListener((changes, area) => {
    if (area === 'managed' || 'settings' in changes) refreshSiteStatus();
  });

  // ---- talking to the service worker -----------------------------------------------------------

  const { blobToBase64 } = PhotoShieldBytes;

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
    if (answer.action === 'video_job') answer = await PhotoShieldVideoTransfer.protect(file, described, data || head);
    // Review: the dialog answers with the worker's last word (the protected file, cancelled, or blocked).
    if (answer.action === 'review') answer = await PhotoShieldNotice.review(file.name, answer);
    if (answer.action === 'cancelled') return null;
    if (answer.action === 'pass' || answer.action === 'already') return file;
    if (answer.action === 'protected' && answer.file) return answer.file; // a protected video
    if (answer.action === 'protected') {
      return new File([PhotoShieldBytes.fromBase64(answer.data)], answer.name,
        { type: answer.type, lastModified: Date.now() });
    }
    const choice = await PhotoShieldNotice.showBlocked(answer.reason,
      { canUploadOriginal: answer.canUploadOriginal === true, fileName: file.name });
    if (choice !== 'original') return null;
    const payload = { ...described, ...(data ? { data } : { head }) };
    const allowed = await askWorker({ type: 'allowOriginalOnce', ...payload });
    if (!allowed.ok) return null;
    // The page gets the file now and will not show it to us again: use the allowance at once, so it
    // cannot let the same bytes through later.
    const again = await askWorker({ type: 'protect', ...payload });
    return again.action === 'pass' ? file : null;
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

  // ---- requests from the MAIN-world parts ------------------------------------------------------

  // A piece of a photo the page holds unprotected (a chunked upload of an original) must not go out:
  // the page is told no, and the person why.
  async function answerPart(file) {
    const result = await processFile(file);
    const isOriginalPhoto = Boolean(result) && result !== file;
    if (isOriginalPhoto) PhotoShieldNotice.showBlocked('photo_in_pieces', { canUploadOriginal: false, fileName: file.name });
    return isOriginalPhoto ? null : result;
  }

  const NOTICES_FROM_PAGE = ['not_protected_yet', 'camera_expired', 'not_ready_yet'];

  function onPageMessage(event) {
    const message = event.data;
    if (event.source !== window || !message) return;
    if (message[TAG] === 'notice' && NOTICES_FROM_PAGE.includes(message.reason)) {
      if (siteProtected) PhotoShieldNotice.showBlocked(message.reason, { canUploadOriginal: false });
      return;
    }
    if (message[TAG] !== 'protect-request') return;
    const { id, blob, name, part } = message;
    if (!(blob instanceof Blob)) return;
    const file = blob instanceof File ? blob : new File([blob], name || 'file', { type: blob.type });
    (part ? answerPart(file) : processFile(file)).then((result) => {
      const changed = Boolean(result) && result !== file;
      window.postMessage({ [TAG]: 'protect-reply', id, ok: Boolean(result), changed, file: changed ? result : null }, '*');
    });
  }

  // document.open() erases every listener on the window, ours too; it also empties the document, which
  // a MutationObserver (not erased) sees: listen again then.
  function listen() {
    window.addEventListener('message', onPageMessage);
  }
  listen();
  new MutationObserver(listen).observe(document, { childList: true });
})();
