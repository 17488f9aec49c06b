// The test site's own upload code: every way a real site sends a photo.
'use strict';

const statusLine = document.getElementById('status');
const report = (text) => { statusLine.textContent = text; };

function sendWithFetch(via, body) {
  return fetch('/upload?via=' + via, { method: 'POST', body })
    .then((response) => report('uploaded:' + via + ':' + response.status))
    .catch((error) => report('error:' + via + ':' + error.message));
}

function sendWithXhr(via, body) {
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open('POST', '/upload?via=' + via);
    request.onload = () => { report('uploaded:' + via + ':' + request.status); resolve(); };
    request.onerror = () => { report('error:' + via); resolve(); };
    request.send(body);
  });
}

function formWith(files) {
  const form = new FormData();
  form.append('caption', 'hello');
  for (const file of files) form.append('photo', file);
  return form;
}

document.getElementById('js-input').addEventListener('change', (event) => {
  const files = event.target.files;
  if (files.length) sendWithFetch('input', formWith(files));
});

document.getElementById('json-input')?.addEventListener('change', (event) => {
  const reader = new FileReader();
  reader.onload = () => sendWithFetch('json', JSON.stringify({ name: event.target.files[0].name, image: reader.result }));
  reader.readAsDataURL(event.target.files[0]);
});

const dropzone = document.getElementById('dropzone');
if (dropzone) dropzone.addEventListener('dragover', (event) => event.preventDefault());
dropzone.addEventListener('drop', (event) => {
  event.preventDefault();
  const files = event.dataTransfer.files;
  if (files.length) sendWithFetch('drop', formWith(files));
});

document.getElementById('pastezone')?.addEventListener('paste', (event) => {
  const files = event.clipboardData.files;
  if (!files.length) return;
  event.preventDefault();
  sendWithXhr('paste', formWith(files));
});

function bytesFromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

// Uploads the page builds from bytes it already holds (as a canvas export or an editor would).
window.pageUpload = function pageUpload(kind, base64, type, name) {
  const bytes = bytesFromBase64(base64);
  const blob = new Blob([bytes], { type });
  const file = new File([bytes], name, { type });
  switch (kind) {
    case 'fetch-formdata': return sendWithFetch(kind, formWith([file]));
    case 'fetch-blob': return sendWithFetch(kind, blob);
    case 'fetch-arraybuffer': return sendWithFetch(kind, bytes.buffer);
    case 'fetch-request': {
      const request = new Request('/upload?via=' + kind, { method: 'POST', body: formWith([file]) });
      return fetch(request).then((r) => report('uploaded:' + kind + ':' + r.status), (e) => report('error:' + kind + ':' + e.message));
    }
    case 'xhr-formdata': return sendWithXhr(kind, formWith([file]));
    case 'xhr-blob': return sendWithXhr(kind, blob);
    case 'beacon': report(String(navigator.sendBeacon('/upload?via=beacon', blob))); return Promise.resolve();
    default: throw new Error('unknown kind ' + kind);
  }
};

// A page that fills a file input by script and submits the form without any change event.
window.scriptFillForm = function scriptFillForm(base64, name, type, how) {
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytesFromBase64(base64)], name, { type }));
  const input = document.getElementById('form-input');
  input.files = transfer.files;
  const form = document.getElementById('form');
  if (how === 'requestSubmit') form.requestSubmit();
  else form.submit();
};

// A component keeping its file input and drop zone in its own shadow root; page code keeps references.
window.shadowParts = {};
customElements.define('shadow-uploader', class extends HTMLElement {
  constructor() {
    super();
    const root = this.attachShadow({ mode: this.dataset.mode });
    const input = document.createElement('input');
    input.type = 'file';
    const drop = document.createElement('div');
    drop.textContent = 'drop here (' + this.dataset.mode + ' shadow root)';
    drop.style.cssText = 'width: 300px; height: 80px; border: 2px dotted #888;';
    root.append(input, drop);
    input.addEventListener('change', () => {
      if (input.files.length) sendWithFetch(this.id + '-input', formWith(input.files));
    });
    drop.addEventListener('dragover', (event) => event.preventDefault());
    drop.addEventListener('drop', (event) => {
      event.preventDefault();
      if (event.dataTransfer.files.length) sendWithFetch(this.id + '-drop', formWith(event.dataTransfer.files));
    });
    window.shadowParts[this.id] = { input, drop };
  }
});
