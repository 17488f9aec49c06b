// Isolated world: hands a video to the service worker over a runtime Port in pieces it asks for, shows
// the job's progress with a Cancel button, and puts the protected clip together from the pieces it sends
// back. Resolves with the worker's answer; a 'protected' answer carries the clip as `file`.
(function (global) {
  'use strict';

  const PORT_NAME = 'photo-shield-video';

  const { blobToBase64 } = PhotoShieldBytes;

  function protect(file, described, head) {
    const port = chrome.runtime.connect({ name: PORT_NAME });
    const progress = PhotoShieldNotice.showProgress(file.name);
    const pieces = [];
    return new Promise((resolve) => {
      let finished = false;
      const finish = (answer) => {
        if (finished) return;
        finished = true;
        progress.close();
        port.disconnect();
        resolve(answer);
      };
      let cancelled = false;
      progress.cancelled.then(() => {
        cancelled = true;
        if (!finished) port.postMessage({ type: 'cancel' });
      });
      port.onDisconnect.addListener(() => finish({ action: 'blocked', reason: 'extension_error', canUploadOriginal: false }));
      port.onMessage.addListener(async (message) => {
        if (message.type === 'need') {
          const data = await blobToBase64(file.slice(message.offset, message.offset + message.length));
          if (!finished) port.postMessage({ type: 'piece', offset: message.offset, data });
        } else if (message.type === 'progress') {
          progress.update(message.phase, message.share);
        } else if (message.type === 'result') {
          pieces.push(PhotoShieldBytes.fromBase64(message.data));
        } else if (message.type === 'answer') {
          const answer = message.answer || { action: 'blocked', reason: 'extension_error' };
          const whole = pieces.reduce((sum, piece) => sum + piece.length, 0);
          // Cancel means nothing is uploaded, even when the clip was ready a moment before the click.
          if (cancelled) finish({ action: 'blocked', reason: 'video_cancelled', canUploadOriginal: false });
          else if (answer.action !== 'protected') finish(answer);
          else if (whole !== answer.size) finish({ action: 'blocked', reason: 'extension_error', canUploadOriginal: false });
          else finish({ ...answer, file: new File(pieces, answer.name, { type: answer.type, lastModified: Date.now() }) });
        }
      });
      port.postMessage({ type: 'start', ...described, head });
    });
  }

  global.PhotoShieldVideoTransfer = { protect };
})(globalThis);
