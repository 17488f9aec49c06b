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
    .panel.review { background: #fff; border-color: #1d4ed8; max-width: 560px; }
    h2 { font-size: 15px; margin: 0 0 6px; }
    p { margin: 0 0 8px; }
    .buttons { display: flex; gap: 8px; justify-content: flex-end; flex-wrap: wrap; }
    button { font: inherit; padding: 4px 10px; border-radius: 4px; border: 1px solid #666; background: #fff; cursor: pointer; }
    button.primary { background: #1d4ed8; color: #fff; border-color: #1d4ed8; }
    canvas { max-width: 100%; max-height: 60vh; display: block; margin: 0 auto 8px; border: 1px solid #ccc; }
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
    'extension_error', 'not_protected_yet', 'video_blocked', 'video_ask', 'file_blocked', 'file_ask', 'photo_in_pieces',
    'video_failed', 'video_cancelled'];
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

  function drawReview(canvas, image, report) {
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    const scaleX = report.width ? image.naturalWidth / report.width : 1;
    const scaleY = report.height ? image.naturalHeight / report.height : 1;
    context.lineWidth = Math.max(2, Math.round(image.naturalWidth / 200));
    context.strokeStyle = '#e11d48';
    for (const [x0, y0, x1, y1] of report.boxes || []) {
      context.strokeRect(x0 * scaleX, y0 * scaleY, (x1 - x0) * scaleX, (y1 - y0) * scaleY);
    }
  }

  /** Shows the protected photo with the replaced faces marked; resolves 'upload' or 'cancel'. */
  function review(file, report) {
    const panel = element('div', { class: 'panel review', role: 'dialog', 'data-kind': 'review' });
    panel.append(element('h2', {}, t('reviewTitle')));
    panel.append(element('p', {}, t('reviewFaces', [file.name, String(report.faces)])));
    const canvas = element('canvas');
    panel.append(canvas);
    const url = URL.createObjectURL(file);
    const image = new Image();
    image.onload = () => { drawReview(canvas, image, report); URL.revokeObjectURL(url); };
    image.onerror = () => { canvas.remove(); URL.revokeObjectURL(url); };
    image.src = url;
    return showPanel(panel, [
      { label: t('buttonUpload'), value: 'upload', primary: true },
      { label: t('buttonCancel'), value: 'cancel' },
    ]);
  }

  global.PhotoShieldNotice = { showBlocked, review, showProgress };
})(globalThis);
