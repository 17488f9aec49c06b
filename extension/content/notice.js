// In-page notices (upload blocked) and the review dialog, drawn in a shadow root so the page's
// styles cannot hide or restyle them. Buttons only obey real (trusted) clicks, never page scripts.
(function (global) {
  'use strict';

  const HOST_ID = 'photo-shield-notice';
  const t = (key, subs) => chrome.i18n.getMessage(key, subs) || key;

  const STYLE = `
    :host { all: initial; }
    .panel { position: fixed; top: 16px; right: 16px; z-index: 2147483647; max-width: 420px;
      font: 14px/1.4 system-ui, sans-serif; color: #1b1b1b; background: #fff8e6; border: 2px solid #b45309;
      border-radius: 8px; padding: 12px 14px; box-shadow: 0 4px 16px rgba(0,0,0,.25); }
    .panel.review { background: #fff; border-color: #1d4ed8; box-sizing: border-box;
      width: min(720px, calc(100vw - 40px)); max-width: none; max-height: calc(100vh - 40px); overflow: auto; }
    .waiting { display: none; width: 32px; height: 32px; margin: 8px auto; border: 4px solid #ccc;
      border-top-color: #1d4ed8; border-radius: 50%; animation: shield-wait 0.8s linear infinite; }
    .review[data-state=protecting] .waiting { display: block; }
    @keyframes shield-wait { to { transform: rotate(360deg); } }
    .review[data-state=failed] .status { color: #b91c1c; }
    h2 { font-size: 15px; margin: 0 0 6px; }
    p { margin: 0 0 8px; }
    .buttons { display: flex; gap: 8px; justify-content: flex-end; flex-wrap: wrap; }
    button { font: inherit; padding: 4px 10px; border-radius: 4px; border: 1px solid #666; background: #fff; cursor: pointer; }
    button.primary { background: #1d4ed8; color: #fff; border-color: #1d4ed8; }
    button:disabled { cursor: not-allowed; opacity: 1; background: #e5e7eb; color: #4b5563; border-color: #9ca3af; }
  `;

  let host = null;
  let root = null;

  function ensureRoot() {
    if (host && host.isConnected) return root;
    host = document.createElement('div');
    host.id = HOST_ID;
    host.setAttribute('style', 'all: initial !important; position: static !important; display: block !important;');
    // Open so that tests (and assistive tools) can read it; the page could read it anyway.
    root = host.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = STYLE;
    root.append(style);
    (document.body || document.documentElement).append(host);
    return root;
  }

  function element(tag, attrs = {}, text = '') {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  /** Shows a panel; resolves with the `value` of the button the person really clicked, or with
   *  `expire.value` when nobody answered within `expire.ms`. */
  function showPanel(panel, buttons, expire) {
    const container = ensureRoot();
    const row = element('div', { class: 'buttons' });
    return new Promise((resolve) => {
      if (expire) {
        setTimeout(() => {
          if (!panel.isConnected) return;
          panel.remove();
          resolve(expire.value);
        }, expire.ms);
      }
      for (const { label, value, primary, armAfterMs } of buttons) {
        const button = element('button', { type: 'button', 'data-choice': value, class: primary ? 'primary' : '' }, label);
        if (armAfterMs) {
          // A click the page lined up in advance (clickjacking) cannot land on it the moment it appears.
          button.disabled = true;
          setTimeout(() => { button.disabled = false; }, armAfterMs);
        }
        button.addEventListener('click', (event) => {
          if (!event.isTrusted) return;
          panel.remove();
          resolve(value);
        });
        row.append(button);
      }
      panel.append(row);
      container.append(panel);
    });
  }

  const REASONS = ['server_unreachable', 'timeout', 'not_paired', 'forbidden', 'too_large', 'unsupported',
    'undecodable', 'busy', 'bad_request', 'faces_found', 'unexpected_answer', 'not_photo_shield', 'server_error',
    'extension_error', 'not_protected_yet', 'video_blocked', 'video_ask', 'file_blocked', 'file_ask',
    'photo_in_pieces', 'review_refused', 'review_expired', 'video_failed', 'video_cancelled',
    'camera_expired', 'not_ready_yet'];
  // Questions about files nothing can protect (videos...): unanswered, the answer is no.
  const QUESTIONS = ['video_ask', 'file_ask'];
  const QUESTION_EXPIRES_MS = 120000;

  /** Why an upload was stopped and what to do; resolves 'original' only on an explicit choice. */
  function showBlocked(reason, { canUploadOriginal, fileName }) {
    const known = REASONS.includes(reason) ? reason : 'server_error';
    const question = QUESTIONS.includes(known) && canUploadOriginal;
    const panel = element('div', { class: 'panel', role: 'alert', 'data-reason': known });
    panel.append(element('h2', {}, t(question ? 'noticeAskTitle' : 'noticeBlockedTitle')));
    panel.append(element('p', { class: 'why' }, t('reason_' + known)));
    panel.append(element('p', { class: 'todo' }, t('todo_' + known)));
    if (fileName) panel.append(element('p', { class: 'file' }, t('noticeFile', [fileName])));
    if (question) {
      return showPanel(panel, [
        { label: t('buttonDontSend'), value: 'dismiss', primary: true },
        { label: t('buttonSendAsItIs'), value: 'original', armAfterMs: 1000 },
      ], { ms: QUESTION_EXPIRES_MS, value: 'dismiss' });
    }
    const buttons = [{ label: t('buttonDismiss'), value: 'dismiss', primary: true }];
    if (canUploadOriginal) buttons.push({ label: t('buttonUploadOriginal'), value: 'original', armAfterMs: 1000 });
    return showPanel(panel, buttons);
  }

  /** A video on its way through the server: {update(phase, share), close(), cancelled} where
   *  `cancelled` resolves when the person clicks Cancel. */
  function showProgress(fileName) {
    const panel = element('div', { class: 'panel', role: 'status', 'data-kind': 'progress' });
    panel.append(element('h2', {}, t('videoProgressTitle')));
    const line = element('p', { class: 'progress' }, t('videoProgress_upload', ['0']));
    panel.append(line);
    if (fileName) panel.append(element('p', { class: 'file' }, t('noticeFile', [fileName])));
    const cancelled = showPanel(panel, [{ label: t('buttonCancel'), value: 'cancel' }]);
    return {
      update(phase, share) {
        const percent = String(Math.max(0, Math.min(100, Math.floor(Number(share) * 100) || 0)));
        line.textContent = t(phase === 'upload' ? 'videoProgress_upload' : 'videoProgress_protect', [percent]);
      },
      close() { panel.remove(); },
      cancelled,
    };
  }

  // ---- review ----------------------------------------------------------------------------------
  // The editor is the one shared with the local web page (review/editor.js, an ES module), imported into
  // this content script; its styles go into the same shadow root. It only sends the person's choices: every
  // preview and the file uploaded are the server's output, held by the worker.

  const REVIEW_ALIVE_MS = 20000; // the worker forgets a review that stops saying it is open
  let editorParts = null;

  function loadEditor() {
    if (!editorParts) {
      editorParts = Promise.all([
        import(chrome.runtime.getURL('review/editor.js')),
        fetch(chrome.runtime.getURL('review/editor.css')).then((response) => response.text()),
      ]).catch((error) => { editorParts = null; throw error; });
    }
    return editorParts;
  }

  function editorText(fileName, allowAdd, allowUntick) {
    const hint = allowAdd ? (allowUntick ? 'editorHint' : 'editorHintAddOnly')
      : (allowUntick ? 'editorHintUntickOnly' : 'editorHintNone');
    return {
      addRegion: t('editorAddRegion'), undo: t('editorUndo'), hint: t(hint), detection: t('editorDetection'),
      fixedDetection: t('editorDetectionFixed'), keptDetection: t('editorKeptDetection'),
      region: t('editorRegion'), working: t('reviewProtecting', [fileName]), zoomHint: t('editorZoomHint'),
      photo: t('editorPhoto'), zoomIn: t('editorZoomIn'), zoomOut: t('editorZoomOut'), zoomFit: t('editorZoomFit'),
      zoomFitLabel: t('editorZoomFitLabel'), move: t('editorMove'), moveLabel: t('editorMoveLabel'),
      zoomLevel: t('editorZoomLevel'),
    };
  }

  const reasonText = (reason) => t(REASONS.includes(reason) ? 'reason_' + reason : 'reason_server_error');

  /** The review dialog, shown at once in its "protecting…" state; then the server's protected photo in the
   *  editor, protected again from the original after each change. Resolves with the worker's last answer:
   *  the protected file (Upload), `cancelled`, or why it was blocked (the first protection failed). */
  function review(fileName, { reviewId, allowAdd, allowUntick }) {
    const panel = element('div', { class: 'panel review', role: 'dialog', 'data-kind': 'review',
      'data-state': 'protecting', 'aria-busy': 'true' });
    const status = element('p', { class: 'status', role: 'status' }, t('reviewProtecting', [fileName]));
    const slot = element('div', { class: 'editor-slot' });
    panel.append(element('h2', {}, t('reviewTitle')), status, element('div', { class: 'waiting' }), slot);
    const ask = async (message) => (await chrome.runtime.sendMessage({ ...message, reviewId })) ||
      { action: 'blocked', reason: 'extension_error' };
    const alive = setInterval(() => ask({ type: 'reviewAlive' }).catch(() => {}), REVIEW_ALIVE_MS);
    let editor = null;
    let previewUrl = null;
    let asked = 0;
    let finish;
    const finished = new Promise((resolve) => { finish = resolve; });
    const chosen = showPanel(panel, [
      { label: t('buttonUpload'), value: 'upload', primary: true },
      { label: t('buttonCancel'), value: 'cancel' },
    ]);
    const uploadButton = panel.querySelector('button[data-choice=upload]');

    function setState(state) {
      panel.dataset.state = state;
      panel.setAttribute('aria-busy', String(state === 'protecting'));
      // Only a server output answering the current choices goes out; until it is there the button says why.
      uploadButton.disabled = state !== 'ready';
      uploadButton.textContent = t(state === 'protecting' ? 'buttonUploadWaiting' : 'buttonUpload');
      if (editor) editor.setBusy(state === 'protecting');
    }
    setState('protecting');

    async function show(answer) {
      const [{ createEditor }, css] = await loadEditor();
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = URL.createObjectURL(new Blob([PhotoShieldBytes.fromBase64(answer.data)], { type: answer.type }));
      const report = answer.report;
      const { count } = PhotoShieldPlural;
      status.textContent = t('reviewSummary', [fileName, count('reviewFacesReplaced', report.faces),
        count('reviewRegionsAdded', report.added.length), count('reviewFacesKept', report.kept.length)]);
      if (editor) {
        editor.update(previewUrl, report);
        return;
      }
      const style = element('style');
      style.textContent = css;
      panel.querySelector('.waiting').replaceWith(style);
      editor = createEditor(slot, { imageUrl: previewUrl, report, allowAdd, allowUntick,
        text: editorText(fileName, allowAdd, allowUntick), onChange: render });
    }

    async function render(choices = {}) {
      const ticket = ++asked;
      setState('protecting');
      let answer;
      try {
        answer = await ask({ type: 'reviewRender', regions: choices.regions || [], keep: choices.keep || [] });
        if (ticket !== asked) return; // a newer change is on its way
        if (answer.action === 'preview') {
          await show(answer);
          if (ticket === asked) setState('ready');
          return;
        }
      } catch (error) {
        answer = { action: 'blocked', reason: 'extension_error', canUploadOriginal: false };
      }
      if (editor && answer.reason !== 'review_expired') {
        // A later change failed: the last preview stays, Upload waits for a change that works (or Undo).
        status.textContent = t('reviewChangeFailed', [reasonText(answer.reason)]);
        setState('failed');
        return;
      }
      panel.remove(); // the first protection failed: the page shows the notice saying why
      finish(answer);
    }

    chosen.then(async (choice) => {
      const answer = await ask({ type: 'reviewFinish', choice }).catch(() => null);
      finish(answer && answer.action !== 'refused' ? answer : { action: 'blocked', reason: 'extension_error' });
    });
    render();
    return finished.then((answer) => {
      clearInterval(alive);
      if (editor) editor.destroy();
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      return answer;
    });
  }

  global.PhotoShieldNotice = { showBlocked, review, showProgress };
})(globalThis);
