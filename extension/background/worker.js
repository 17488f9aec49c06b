// Service worker: every decision and every call to the local server happens here.
// Content scripts only hand over files and put back what this returns.
if (typeof importScripts === 'function') {
  // Chromium runs this file as a service worker; Firefox loads the same files from background.scripts.
  importScripts('../common/bytes.js', '../common/settings.js', '../common/pin.js', '../common/image_types.js',
    '../common/file_kinds.js', 'shield_client.js', 'pin_guard.js', 'status.js', 'pairing.js', 'video_jobs.js');
}

(function () {
  'use strict';

  const { ShieldFailure } = PhotoShieldClient;
  const { toBase64, fromBase64 } = PhotoShieldBytes;
  const EXTENSION_ORIGIN = chrome.runtime.getURL('');
  const MAX_REMEMBERED_OUTPUTS = 500;
  PhotoShieldSettings.readManaged(); // start the slow first policy read now, not on the first upload
  PhotoShieldStatus.start();

  // ---- helpers -------------------------------------------------------------------------------

  async function digestOf(bytes) {
    const hash = await crypto.subtle.digest('SHA-256', bytes);
    return toBase64(hash);
  }

  // Outputs we produced, so a protected file that the page uploads again is not protected twice.
  const protectedOutputs = new Set();

  async function rememberOutput(digest) {
    protectedOutputs.add(digest);
    if (protectedOutputs.size > MAX_REMEMBERED_OUTPUTS) {
      protectedOutputs.delete(protectedOutputs.values().next().value);
    }
    if (chrome.storage.session) {
      await chrome.storage.session.set({ protectedOutputs: [...protectedOutputs] }).catch(() => {});
    }
  }

  const outputsRestored = (async () => {
    if (!chrome.storage.session) return;
    const { protectedOutputs: saved } = await chrome.storage.session.get('protectedOutputs').catch(() => ({}));
    for (const digest of saved || []) protectedOutputs.add(digest);
  })();

  /** What the content side sent: the whole file (`data`) and/or its first bytes (`head`), both base64. */
  function readFile(message) {
    const data = typeof message.data === 'string' ? fromBase64(message.data) : null;
    const head = data ? data.subarray(0, PhotoShieldFileKinds.HEAD_BYTES)
      : fromBase64(typeof message.head === 'string' ? message.head : '').subarray(0, PhotoShieldFileKinds.HEAD_BYTES);
    const size = data ? data.length : Number(message.size) || 0;
    return { data, head, size, kind: PhotoShieldFileKinds.kindOf(head, message.mime, message.name) };
  }

  /** Photos are known by their whole content; other files, which may be far too big to send here, by
   *  their size and first bytes (a page that already holds a file gains nothing by imitating it). */
  async function identityOf(file) {
    if (file.kind === 'image') return file.data ? digestOf(file.data) : null;
    const sized = new Uint8Array(file.head.length + 16);
    sized.set(new TextEncoder().encode(String(file.size).padStart(16, '0')));
    sized.set(file.head, 16);
    return 'head:' + await digestOf(sized);
  }

  // Originals the person chose to upload once (unlocked profiles only), by identity, for a minute.
  const originalsAllowedOnce = new Map();
  const ALLOW_ONCE_MS = 60000;

  async function allowOriginalOnce(message) {
    const state = await PhotoShieldSettings.load();
    if (state.locked) return { ok: false };
    const identity = await identityOf(readFile(message));
    if (!identity) return { ok: false };
    originalsAllowedOnce.set(identity, Date.now() + ALLOW_ONCE_MS);
    return { ok: true };
  }

  function takeAllowance(digest) {
    const until = originalsAllowedOnce.get(digest);
    originalsAllowedOnce.delete(digest);
    return until !== undefined && until > Date.now();
  }

  // One update at a time, so that photos protected together in several tabs are all counted.
  let statsUpdate = Promise.resolve();

  function countProtected(faces) {
    statsUpdate = statsUpdate.then(async () => {
      const { stats } = await chrome.storage.local.get('stats');
      await chrome.storage.local.set({ stats: { photos: (stats?.photos || 0) + 1, faces: (stats?.faces || 0) + faces } });
    }).catch(() => {});
    return statsUpdate;
  }

  // ---- uploads -------------------------------------------------------------------------------

  async function siteStatus(sender) {
    const { settings } = await PhotoShieldSettings.load();
    return { protect: settings.enabled && PhotoShieldSettings.siteCovered(settings, sender.url) };
  }

  function blocked(reason, state, detail) {
    return {
      action: 'blocked',
      reason,
      detail: detail || '',
      // A locked (parental) profile never gets the way around the shield.
      canUploadOriginal: !state.locked,
    };
  }

  /** Videos the server does not protect, and other files: the settings say pass, ask or block. */
  async function decideUnprotectable(file, state, videoAction = state.settings.videoAction) {
    const action = file.kind === 'video' ? videoAction : state.settings.otherFileAction;
    if (action === 'allow') return { action: 'pass' };
    const prefix = file.kind === 'video' ? 'video' : 'file';
    // Only a person at an unlocked profile may say yes; a locked profile blocks what it would ask about.
    const mayAsk = action === 'ask' && !state.locked;
    if (mayAsk && takeAllowance(await identityOf(file))) return { action: 'pass' };
    return { ...blocked(`${prefix}_${mayAsk ? 'ask' : 'blocked'}`, state), canUploadOriginal: mayAsk, kind: file.kind };
  }

  /** Every face found, kept ones included: `faceAction: block` stops a photo with a face in it, and unticking
   *  a face in review must not let it through. */
  const facesFound = (report) => (Array.isArray(report.detections) ? report.detections.length : report.faces);

  /** One call to the server: { result } or the blocked answer to give the page. */
  async function protectWith(state, bytes, declared, choices) {
    let result;
    try {
      result = await PhotoShieldClient.protectImage(state.settings, bytes, declared, choices);
      PhotoShieldStatus.noteConnection(true);
    } catch (error) {
      const reason = error instanceof ShieldFailure ? error.reason : 'server_error';
      PhotoShieldStatus.noteConnection(false, reason);
      return blocked(reason, state, error.message);
    }
    if (state.settings.faceAction === 'block' && facesFound(result.report) > 0) {
      return blocked('faces_found', state, String(facesFound(result.report)));
    }
    return { result };
  }

  /** The protected file handed to the page: a server output, remembered so it is not protected twice. */
  async function deliver(result, name, inputDigest) {
    const outputDigest = await digestOf(result.bytes);
    if (outputDigest !== inputDigest) await rememberOutput(outputDigest); // an echo must never whitelist its input
    await countProtected(result.report.faces);
    return {
      action: 'protected',
      data: toBase64(result.bytes),
      type: result.type,
      name: PhotoShieldImageTypes.protectedName(name, result.type),
    };
  }

  /** A video the server will protect: the content side sends it over a port (video_jobs.js). */
  async function routeVideo(file, state) {
    await outputsRestored;
    const identity = await identityOf(file);
    if (protectedOutputs.has(identity)) return { action: 'already' };
    if (!state.locked && takeAllowance(identity)) return { action: 'pass' };
    return { action: 'video_job' };
  }

  PhotoShieldVideoJobs.listen({
    blocked,
    decideUnprotectable,
    rememberVideo: async (bytes) => rememberOutput(await identityOf({
      kind: 'video', size: bytes.length, head: bytes.subarray(0, PhotoShieldFileKinds.HEAD_BYTES),
    })),
  });

  async function protect(message, sender) {
    const state = await PhotoShieldSettings.load();
    const { settings } = state;
    if (!settings.enabled || !PhotoShieldSettings.siteCovered(settings, sender.url)) return { action: 'pass' };

    let file;
    try {
      file = readFile(message);
    } catch (_) {
      return blocked('extension_error', state, 'file could not be read');
    }
    if (file.kind === 'video' && PhotoShieldVideoJobs.wanted(settings)) return routeVideo(file, state);
    if (file.kind !== 'image') return decideUnprotectable(file, state);
    if (!file.data) return { action: 'need_data' };
    const bytes = file.data;
    await outputsRestored;
    const digest = await digestOf(bytes);
    if (protectedOutputs.has(digest)) return { action: 'already' };
    if (!state.locked && takeAllowance(digest)) return { action: 'pass' };

    const declared = /^image\/[\w.+-]+$/i.test(message.mime || '') ? message.mime : 'application/octet-stream';
    if (settings.review) return openReview({ bytes, declared, digest, name: message.name }, state, sender);
    const outcome = await protectWith(state, bytes, declared, {});
    return outcome.result ? deliver(outcome.result, message.name, digest) : outcome;
  }

  // ---- review (settings.review) -----------------------------------------------------------------
  // The page's dialog opens at once ("protecting…") and asks for previews: each one a server output made
  // from the original with the person's regions and unticked faces. The original stays here, in memory
  // only, while its review is open, and Upload hands the page the latest server output. What a profile
  // may do in review (reviewAddRegions, reviewUntick) is checked here, not only in the dialog.

  const reviews = new Map();
  const REVIEW_IDLE_MS = 10 * 60 * 1000; // the dialog says it is alive every 20 s while open
  const MAX_BOXES = 200; // the server's own limit per list

  function openReview(file, state, sender) {
    const id = PhotoShieldBytes.toHex(crypto.getRandomValues(new Uint8Array(16)));
    reviews.set(id, { ...file, tabId: sender.tab && sender.tab.id, frameId: sender.frameId, latest: null,
      requested: 0, work: Promise.resolve(), timer: null });
    reviewOf({ reviewId: id }, sender);
    return { action: 'review', reviewId: id, allowAdd: state.settings.reviewAddRegions,
      allowUntick: state.settings.reviewUntick };
  }

  function endReview(id) {
    const review = reviews.get(id);
    if (review) clearTimeout(review.timer);
    reviews.delete(id);
  }

  /** The open review this frame owns (and keeps alive by asking), or null. */
  function reviewOf({ reviewId }, sender) {
    const review = reviews.get(reviewId);
    if (!review || review.tabId !== (sender.tab && sender.tab.id) || review.frameId !== sender.frameId) return null;
    clearTimeout(review.timer);
    review.timer = setTimeout(() => endReview(reviewId), REVIEW_IDLE_MS);
    return review;
  }

  const isBoxList = (list) => Array.isArray(list) && list.length <= MAX_BOXES &&
    list.every((box) => Array.isArray(box) && box.length === 4 && box.every(Number.isFinite));

  async function reviewRender(message, sender) {
    const state = await PhotoShieldSettings.load();
    const review = reviewOf(message, sender);
    if (!review) return blocked('review_expired', state);
    const choices = { regions: message.regions || [], keep: message.keep || [] };
    if (!isBoxList(choices.regions) || !isBoxList(choices.keep)) return { action: 'refused', reason: 'bad_request' };
    if ((choices.regions.length && !state.settings.reviewAddRegions) ||
        (choices.keep.length && !state.settings.reviewUntick)) {
      return { action: 'refused', reason: 'review_refused' };
    }
    const ticket = ++review.requested;
    review.latest = null; // until this answer is in, no output matches the person's choices
    const run = review.work.then(() => protectWith(state, review.bytes, review.declared, choices));
    review.work = run.catch(() => {});
    const outcome = await run;
    if (!outcome.result) {
      if (outcome.reason === 'faces_found' || !review.shown) endReview(message.reviewId);
      return outcome;
    }
    review.shown = true;
    if (ticket === review.requested) review.latest = outcome.result;
    const { faces, detections, added, kept, width, height } = outcome.result.report;
    return { action: 'preview', data: toBase64(outcome.result.bytes), type: outcome.result.type,
      report: { faces, detections: detections || [], added: added || [], kept: kept || [], width, height,
        detections_reused: outcome.result.report.detections_reused === true } };
  }

  async function reviewFinish(message, sender) {
    const review = reviewOf(message, sender);
    if (message.choice !== 'upload') {
      if (review) endReview(message.reviewId);
      return { action: 'cancelled' };
    }
    if (!review) return blocked('review_expired', await PhotoShieldSettings.load());
    await review.work;
    if (!review.latest) return { action: 'refused', reason: 'not_ready' };
    endReview(message.reviewId);
    return deliver(review.latest, review.name, review.digest);
  }

  async function reviewAlive(message, sender) {
    return { ok: Boolean(reviewOf(message, sender)) };
  }

  // ---- settings (extension pages only) -------------------------------------------------------

  async function publicState() {
    const state = await PhotoShieldSettings.load();
    const { stats, siteAccessLost, pinAttempts } = await chrome.storage.local.get(['stats', 'siteAccessLost', 'pinAttempts']);
    return {
      ...state,
      stats: { photos: stats?.photos || 0, faces: stats?.faces || 0 },
      siteAccessLost: Boolean(siteAccessLost),
            pinWaitSeconds: pinAttempts && pinAttempts.until > Date.now() ? Math.ceil((pinAttempts.until - Date.now()) / 1000) : 0,
    };
  }

  /** When a lock is on, every change needs the PIN (wrong guesses slow down); policy-enforced keys never
   *  change here. The refusal, if any, is the answer to send back. */
  async function authorize(pin) {
    const refusal = await PhotoShieldPinGuard.authorize(pin);
    return refusal && { ok: false, ...refusal };
  }

  async function saveSettings({ patch, pin }) {
    const refusal = await authorize(pin);
    if (refusal) return refusal;
    const clean = PhotoShieldSettings.validate(patch);
    if (Object.keys(clean).length !== Object.keys(patch || {}).length) return { ok: false, error: 'invalid' };
    const managed = PhotoShieldSettings.validate(await PhotoShieldSettings.readManaged());
    if (Object.keys(clean).some((key) => key in managed)) return { ok: false, error: 'managed' };
    const { settings: stored } = await chrome.storage.local.get('settings');
    await chrome.storage.local.set({ settings: { ...(stored || {}), ...clean } });
    return { ok: true };
  }

  async function setPin({ newPin, pin }) {
    const refusal = await authorize(pin);
    if (refusal) return refusal;
    if (!PhotoShieldPin.isAcceptablePin(newPin)) return { ok: false, error: 'pin_invalid' };
    await chrome.storage.local.set({ pin: await PhotoShieldPin.makePinRecord(newPin) });
    return { ok: true };
  }

  async function removePin({ pin }) {
    const refusal = await authorize(pin);
    if (refusal) return refusal;
    await chrome.storage.local.remove('pin');
    return { ok: true };
  }

  async function testConnection({ port, token }) {
    const { settings } = await PhotoShieldSettings.load();
    const trial = { ...settings, ...PhotoShieldSettings.validate({ port, token }), timeoutSeconds: 5 };
    const current = trial.port === settings.port && trial.token === settings.token;
    try {
      const info = await PhotoShieldClient.health(trial);
      if (current) PhotoShieldStatus.noteConnection(true);
      return { ok: true, version: info.version || '', detectors: info.detectors || [] };
    } catch (error) {
      if (current) PhotoShieldStatus.noteConnection(false, error.reason);
      let reason = error.reason || 'server_error';
      if (!trial.token && !(await PhotoShieldClient.answers(trial))) reason = 'server_unreachable';
      return { ok: false, reason, detail: error.message };
    }
  }

  // One-click pairing. In a locked profile it needs the PIN: pairing to a program squatting on the port
  // would hand it the photos, so a child must not be able to re-pair alone.
  async function startPairing({ pin }) {
    const refusal = await authorize(pin);
    if (refusal) return { ...refusal, reason: refusal.error };
    const state = await PhotoShieldSettings.load();
    if (state.managedKeys.includes('token')) return { ok: false, reason: 'managed' };
    return PhotoShieldPairing.start(state.settings);
  }

  async function pollPairing({ pin }) {
    const answer = await PhotoShieldPairing.poll((await PhotoShieldSettings.load()).settings);
    if (answer.status !== 'allowed') return answer;
    const saved = await saveSettings({ patch: { token: answer.token }, pin });
    return saved.ok ? { ok: true, status: 'allowed' } : { ok: false, reason: saved.error };
  }

  chrome.runtime.onInstalled.addListener(async ({ reason }) => {
    if (reason !== 'install') return;
    const { settings } = await PhotoShieldSettings.load();
    if (!settings.token) chrome.tabs.create({ url: chrome.runtime.getURL('welcome/welcome.html') });
  });

  async function resetStats({ pin }) {
    const refusal = await authorize(pin);
    if (refusal) return refusal;
    await chrome.storage.local.set({ stats: { photos: 0, faces: 0 } });
    return { ok: true };
  }

  async function checkSiteAccess() {
    return { ok: true, lost: await PhotoShieldStatus.checkSiteAccess() };
  }

  // ---- routing -------------------------------------------------------------------------------

  const PAGE_MESSAGES = {
    siteStatus: (m, s) => siteStatus(s), protect, allowOriginalOnce, reviewRender, reviewFinish, reviewAlive,
  };
  const EXTENSION_PAGE_MESSAGES = {
    getState: publicState, saveSettings, setPin, removePin, testConnection, resetStats, checkSiteAccess,
    startPairing, pollPairing,
  };

  chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
    if (sender.id !== chrome.runtime.id || !message || typeof message.type !== 'string') return false;
    const fromExtensionPage = typeof sender.url === 'string' && sender.url.startsWith(EXTENSION_ORIGIN);
    const handler = PAGE_MESSAGES[message.type] ||
      (fromExtensionPage ? EXTENSION_PAGE_MESSAGES[message.type] : undefined);
    if (!handler) return false;
    Promise.resolve()
      .then(() => handler(message, sender))
      .then(sendResponse, (error) => sendResponse({ action: 'blocked', ok: false, reason: 'server_error', error: String(error) }));
    return true;
  });
})();
