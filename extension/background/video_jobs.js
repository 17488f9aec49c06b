// Videos the server protects: the content side hands the clip over a runtime Port in pieces, this uploads
// it as a /v1/video job (docs/API.md), relays the job's progress, fetches the protected MP4 and hands it
// back in pieces. Anything but a checked MP4 ends in a refusal: nothing of the original goes back.
(function (global) {
  'use strict';

  const { ShieldFailure } = PhotoShieldClient;
  const { toBase64, fromBase64 } = PhotoShieldBytes;
  const PORT_NAME = 'photo-shield-video';
  // Pieces of a few MiB: one runtime message tops out at 64 MiB and bytes travel as base64.
  const PIECE_BYTES = 4 * 1024 * 1024;
  const POLL_MS = 500;
  // A clip takes seconds to minutes: two minutes, plus four seconds per MiB (a 100 MiB clip: about 9 min).
  const BASE_DEADLINE_MS = 120000;
  const DEADLINE_MS_PER_MIB = 4000;

  function deadlineFor(size) {
    return Date.now() + BASE_DEADLINE_MS + DEADLINE_MS_PER_MIB * size / (1024 * 1024);
  }

  /** Whether this video goes to the server; the worker's helpers decide what happens otherwise. */
  function wanted(settings) {
    return settings.videoAction === 'protect';
  }

  class Cancelled extends Error {}

  /** One clip's trip over one port. */
  class Transfer {
    constructor(port) {
      this.port = port;
      this.cancelled = false;
      this.gone = false; // the page went away: nobody to answer
      this.waiting = null; // the resolver of the piece asked for
      this.jobPath = '';
      port.onMessage.addListener((message) => this.onMessage(message));
      port.onDisconnect.addListener(() => { this.gone = true; this.cancel(); });
    }

    onMessage(message) {
      if (message?.type === 'cancel') this.cancel();
      else if (message?.type === 'piece' && this.waiting) this.waiting(message);
    }

    cancel() {
      this.cancelled = true;
      if (this.waiting) this.waiting(null);
    }

    send(message) {
      if (!this.gone) this.port.postMessage(message);
    }

    check() {
      if (this.cancelled) throw new Cancelled();
    }

    /** The page's bytes [offset, offset + length). */
    async piece(offset, length) {
      const answer = await new Promise((resolve) => {
        this.waiting = resolve;
        this.send({ type: 'need', offset, length });
      });
      this.waiting = null;
      this.check();
      const bytes = typeof answer.data === 'string' ? fromBase64(answer.data) : null;
      if (!bytes || answer.offset !== offset || bytes.length !== length) {
        throw new ShieldFailure('extension_error', 'the page sent a wrong piece');
      }
      return bytes;
    }
  }

  async function request(settings, path, init, deadline) {
    const { response, body } = await PhotoShieldClient.call(settings, path, init, { deadline });
    return { response, body };
  }

  async function jobStatus(response, body) {
    if (response.status !== 202 && response.status !== 200) throw PhotoShieldClient.failureFrom(response, body);
    try { return JSON.parse(new TextDecoder().decode(body)); } catch (_) {
      throw new ShieldFailure('unexpected_answer', 'not JSON');
    }
  }

  /** Uploads the clip in pieces; returns the job's path, or null when the server has no video jobs. */
  async function upload(transfer, settings, size, deadline) {
    const query = new URLSearchParams({ fill: settings.fill, color: settings.color, margin: String(settings.margin) });
    let offset = 0;
    do {
      const length = Math.min(PIECE_BYTES, size - offset);
      const bytes = await transfer.piece(offset, length);
      const more = offset + length < size ? '&more=1' : '';
      const path = transfer.jobPath ? `${transfer.jobPath}/part?offset=${offset}${more}` : `/v1/video?${query}${more}`;
      const { response, body } = await request(settings, path,
        { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: bytes }, deadline);
      if (!transfer.jobPath && (response.status === 404 || response.status === 405)) return null;
      const status = await jobStatus(response, body);
      if (!transfer.jobPath) {
        if (typeof status.id !== 'string' || !/^[\w-]+$/.test(status.id)) throw new ShieldFailure('unexpected_answer', 'no job id');
        transfer.jobPath = `/v1/video/${status.id}`;
      }
      offset += length;
      transfer.send({ type: 'progress', phase: 'upload', share: offset / size });
    } while (offset < size);
    return transfer.jobPath;
  }

  async function waitUntilDone(transfer, settings, deadline) {
    for (;;) {
      transfer.check();
      if (Date.now() > deadline) throw new ShieldFailure('timeout', 'the video took too long');
      const { response, body } = await request(settings, transfer.jobPath, { method: 'GET' }, deadline);
      const status = await jobStatus(response, body);
      if (status.state === 'done') return;
      if (status.state === 'failed') throw new ShieldFailure('video_failed', `${status.error || ''} ${status.message || ''}`.trim());
      if (status.state === 'cancelled') throw new Cancelled();
      transfer.send({ type: 'progress', phase: 'protect', share: Number(status.progress) || 0 });
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** The protected clip, checked: an MP4 by its own bytes, with a report. */
  async function fetchResult(transfer, settings, deadline) {
    const { response, body } = await request(settings, `${transfer.jobPath}/result`, { method: 'GET' }, deadline);
    if (response.status !== 200) throw PhotoShieldClient.failureFrom(response, body);
    transfer.jobPath = ''; // fetched: the server has removed the job
    const type = (response.headers.get('Content-Type') || '').split(';')[0].trim().toLowerCase();
    let report = null;
    try { report = JSON.parse(response.headers.get('X-Shield-Report') || ''); } catch (_) { /* not JSON */ }
    if (!report || !Number.isInteger(report.frames) || report.frames <= 0) report = null;
    const bytes = new Uint8Array(body);
    if (!report || type !== 'video/mp4' || PhotoShieldFileKinds.sniffVideo(bytes.subarray(0, 64)) !== 'video/mp4') {
      throw new ShieldFailure('unexpected_answer', 'the server answer was not a protected video');
    }
    return { bytes, report };
  }

  function mp4Name(name) {
    const base = String(name || 'video').replace(/\.[^./\\]{1,5}$/, '');
    return `${base || 'video'}.mp4`;
  }

  /**
   * Runs one clip. `helpers` comes from the worker: `blocked(reason, state, detail)`,
   * `decideUnprotectable(file, state, videoAction?)` for a video the server will not protect, and
   * `rememberVideo(bytes)` so that the protected clip is not protected again.
   */
  async function run(transfer, start, sender, helpers) {
    const state = await PhotoShieldSettings.load();
    const { settings } = state;
    const size = Number(start.size);
    const head = fromBase64(typeof start.head === 'string' ? start.head : '');
    const file = { head: head.subarray(0, PhotoShieldFileKinds.HEAD_BYTES), size, kind: PhotoShieldFileKinds.kindOf(head, start.mime, start.name) };
    if (!Number.isSafeInteger(size) || size <= 0 || file.kind !== 'video') return helpers.blocked('extension_error', state, 'not a video');
    if (!settings.enabled || !PhotoShieldSettings.siteCovered(settings, sender.url)) return { action: 'pass' };
    if (!wanted(settings)) return helpers.decideUnprotectable(file, state);
    const deadline = deadlineFor(size);
    try {
      await PhotoShieldClient.checkIdentity(settings, Math.min(deadline, Date.now() + settings.timeoutSeconds * 1000));
      PhotoShieldStatus.noteConnection(true);
      // A server too old for video jobs: as before video protection, ask (never on a locked profile) or block.
      if (!(await upload(transfer, settings, size, deadline))) return helpers.decideUnprotectable(file, state, 'ask');
      await waitUntilDone(transfer, settings, deadline);
      const result = await fetchResult(transfer, settings, deadline);
      transfer.check();
      await helpers.rememberVideo(result.bytes);
      for (let offset = 0; offset < result.bytes.length; offset += PIECE_BYTES) {
        transfer.send({ type: 'result', offset, data: toBase64(result.bytes.subarray(offset, offset + PIECE_BYTES)) });
      }
      transfer.check();
      return {
        action: 'protected', type: 'video/mp4', name: mp4Name(start.name), size: result.bytes.length,
        report: { frames: result.report.frames, faces_max: result.report.faces_max, width: result.report.width, height: result.report.height },
      };
    } catch (error) {
      if (error instanceof Cancelled || transfer.cancelled) return { ...helpers.blocked('video_cancelled', state), canUploadOriginal: false };
      const reason = error instanceof ShieldFailure ? error.reason : 'server_error';
      if (reason === 'server_unreachable' || reason === 'not_photo_shield') PhotoShieldStatus.noteConnection(false, reason);
      return helpers.blocked(reason, state, error.message);
    } finally {
      if (transfer.jobPath) {
        // Cancelled, failed or timed out: the job and its files go now, not when the server expires them.
        PhotoShieldClient.call(settings, transfer.jobPath, { method: 'DELETE' }, { deadline: Date.now() + 10000 }).catch(() => {});
      }
    }
  }

  /** Listens for the content side's video ports; `helpers` as for run(). */
  function listen(helpers) {
    chrome.runtime.onConnect.addListener((port) => {
      if (port.name !== PORT_NAME || port.sender?.id !== chrome.runtime.id) return;
      const transfer = new Transfer(port);
      const started = new Promise((resolve) => {
        const first = (message) => {
          if (message?.type !== 'start') return;
          port.onMessage.removeListener(first);
          resolve(message);
        };
        port.onMessage.addListener(first);
      });
      started
        .then((start) => run(transfer, start, port.sender, helpers))
        .catch((error) => ({ action: 'blocked', reason: 'extension_error', canUploadOriginal: false, detail: String(error) }))
        .then((answer) => transfer.send({ type: 'answer', answer }));
    });
  }

  global.PhotoShieldVideoJobs = { listen, wanted, deadlineFor, PORT_NAME, PIECE_BYTES };
})(globalThis);
