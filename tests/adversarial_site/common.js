// Shared by every page of the adversarial site. Each page uploads a file the way one real upload
// pattern does and reports in window.advState: 'ready' (no file yet), 'busy' (got a file, sending),
// 'sent' (the receiver acknowledged everything) or 'failed' (an upload was refused or errored).
'use strict';

window.advState = 'ready';
window.advDetail = '';

const adv = {
  async run(work) {
    window.advState = 'busy';
    try {
      await work();
      window.advState = 'sent';
    } catch (error) {
      window.advDetail = String(error && error.message || error);
      window.advState = 'failed';
    }
  },
  async post(path, body, headers) {
    const response = await fetch(path, { method: 'POST', body, headers });
    if (!response.ok) throw new Error('HTTP ' + response.status);
  },
  form(files) {
    const form = new FormData();
    form.append('caption', 'hello');
    for (const file of files) form.append('photo', file, file.webkitRelativePath || file.name);
    return form;
  },
  /** A "Choose photo" button as upload libraries make it: an input that never joins the document,
   *  heard through a one-shot capturing listener, its onchange property, or by polling input.files
   *  (opened then by a dispatched click, as some libraries do, rather than by input.click()). */
  detachedInput(onFiles, how = 'once') {
    const input = document.createElement('input');
    input.type = 'file';
    const handler = () => { if (input.files.length) onFiles(Array.from(input.files)); };
    if (how === 'property') input.onchange = handler;
    else if (how === 'once') input.addEventListener('change', handler, { once: true, capture: true });
    else {
      const timer = setInterval(() => { if (input.files.length) { clearInterval(timer); handler(); } }, 50);
      input.dispatchEvent(new MouseEvent('click'));
      return;
    }
    input.click();
  },
  /** Sends each file over a WebSocket; resolves when the receiver acknowledged them all. */
  socket(files) {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(window.WS_URL);
      let acknowledged = 0;
      socket.onopen = () => { for (const file of files) socket.send(file); };
      socket.onmessage = (e) => { if (e.data === 'ok' && ++acknowledged === files.length) { socket.close(); resolve(); } };
      socket.onerror = () => reject(new Error('websocket error'));
    });
  },
  /** Posts the files as data: URLs inside a JSON text body. */
  async json(path, files) {
    const images = await Promise.all(files.map((file) => adv.readAsDataURL(file)));
    await adv.post(path, JSON.stringify({ names: files.map((file) => file.name), images }), { 'Content-Type': 'application/json' });
  },
  readAsDataURL(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  },
  /** Dropzone-style chunking: 20 KB pieces, each a multipart POST with the upload's fields and the piece as
   *  its last part: `form.append('file', piece, name)` (Dropzone), or the piece re-wrapped first as
   *  `new File([piece], name)` (other uploaders). */
  async multipartChunks(file, rewrap) {
    const CHUNK = 20000;
    const id = Math.random().toString(36).slice(2);
    const count = Math.ceil(file.size / CHUNK);
    for (let index = 0; index < count; index++) {
      const offset = index * CHUNK;
      const piece = file.slice(offset, offset + CHUNK);
      const form = new FormData();
      form.append('dzuuid', id);
      form.append('dzchunkindex', String(index));
      form.append('dztotalchunkcount', String(count));
      form.append('dzchunkbyteoffset', String(offset));
      if (rewrap) form.append('file', new File([piece], file.name, { type: file.type }));
      else form.append('file', piece, file.name);
      await adv.post('/upload/dropzone', form, { 'X-Upload-Id': id, 'X-Offset': String(offset) });
    }
  },
  /** Chunked upload: pieces of CHUNK bytes, each a POST with the upload id and the piece's offset. */
  async chunked(file, parallel) {
    const CHUNK = 65536;
    const id = Math.random().toString(36).slice(2);
    const send = (offset) => adv.post('/upload/chunk', file.slice(offset, offset + CHUNK),
      { 'X-Upload-Id': id, 'X-Offset': String(offset), 'X-Total': String(file.size) });
    const offsets = [];
    for (let offset = 0; offset < file.size; offset += CHUNK) offsets.push(offset);
    if (parallel) await Promise.all(offsets.map(send));
    else for (const offset of offsets) await send(offset);
  },
};
