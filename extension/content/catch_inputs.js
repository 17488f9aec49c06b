// MAIN-world hooks, part 3 of 4: file inputs and forms. Whether or not the input is in the document,
// whatever listens (the window, the input itself, its onchange) and however the page reads it (the
// event, `input.files` at any time), the page only ever sees the files the service worker answered for:
// the field is emptied at once and refilled with them before the page hears about it.
(function () {
  'use strict';

  const api = window[Symbol.for('photoShield.pageHooks')];
  if (!api) return;
  const { verifyFiles, verified, siteProtected, isFileInput, stop, listen } = api;

  const filesProperty = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'files');
  const nativeFiles = filesProperty.get;
  const setNativeFiles = filesProperty.set;
  const setNativeValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  const NativeFormData = window.FormData;
  const inputsAtWork = new Map(); // input -> promise of its files being answered for, while that runs

  const unanswered = (input) => Array.from(nativeFiles.call(input) || []).filter((file) => !verified.has(file));
  const needsWork = (input) => siteProtected() && (inputsAtWork.has(input) || unanswered(input).length > 0);

  function fileListOf(files) {
    const transfer = new DataTransfer();
    for (const file of files) transfer.items.add(file);
    return transfer.files;
  }

  /** Replaces the input's files by the answered ones; resolves false if nothing may reach the page. */
  function protectInput(input) {
    if (inputsAtWork.has(input)) return inputsAtWork.get(input);
    const files = Array.from(nativeFiles.call(input));
    setNativeValue.call(input, ''); // nothing unanswered stays in the field (or in a form submit) meanwhile
    const job = verifyFiles(files).then((results) => {
      inputsAtWork.delete(input);
      if (!results) return false;
      setNativeFiles.call(input, fileListOf(results));
      return true;
    }, () => {
      inputsAtWork.delete(input);
      return false;
    });
    inputsAtWork.set(input, job);
    return job;
  }

  /** Protects the input, then tells the page again, with events it can see. */
  function protectThenTell(input) {
    if (inputsAtWork.has(input)) return;
    protectInput(input).then((ok) => {
      if (!ok) return;
      input.dispatchEvent(new Event('input', { bubbles: true, composed: true }));
      input.dispatchEvent(new Event('change', { bubbles: true }));
    });
  }

  function fileInputWithFilesIn(root) {
    for (const element of root.querySelectorAll('*')) {
      if (isFileInput(element) && needsWork(element)) return element;
      const inner = api.shadowRootOf(element);
      const found = inner && fileInputWithFilesIn(inner);
      if (found) return found;
    }
    return null;
  }

  /** The file input behind an event; a closed shadow root shows us only its host, so look inside. */
  function fileInputOf(event) {
    const first = event.composedPath()[0];
    if (isFileInput(first)) return first;
    const root = first && first.nodeType === Node.ELEMENT_NODE && api.shadowRootOf(first);
    return root ? fileInputWithFilesIn(root) : null;
  }

  function onFileInputEvent(event) {
    const input = fileInputOf(event);
    if (!input || !needsWork(input)) return;
    stop(event);
    protectThenTell(input);
  }

  // The page's own listeners on the input, its parents or the window, added with addEventListener or
  // as on-properties: held while the files are unanswered.
  api.gate(['input', 'change'], (event) => {
    const input = event.target;
    if (!isFileInput(input) || !needsWork(input)) return false;
    protectThenTell(input);
    return true;
  });

  const fileInputsOf = (form) => Array.from(form.elements).filter(isFileInput);

  // A page may fill an input by script and submit without any change event: protect before submitting.
  function onSubmit(event) {
    const form = event.target;
    if (!siteProtected() || !form || form.nodeName !== 'FORM') return;
    const waiting = fileInputsOf(form).filter(needsWork);
    if (waiting.length === 0) return;
    event.preventDefault();
    stop(event);
    const submitter = event.submitter;
    Promise.all(waiting.map(protectInput)).then((results) => {
      if (!results.every(Boolean) || !form.isConnected) return;
      try {
        form.requestSubmit(submitter || undefined);
      } catch (_) {
        form.requestSubmit(); // the button that submitted has left the form meanwhile
      }
    });
  }

  // new FormData(form) while a file input of the form is still being answered for (the page's Upload clicked
  // the moment the photo was picked): the form data holds an empty file there. Sent with fetch or XHR, it
  // waits for the answer and carries the answered files instead (or is not sent: the notice says why).
  // The form data the page holds is a copy of the event's, with the same entries: known by its empty file.
  const placeholders = new WeakMap(); // the empty file standing for a field at work -> { input, job }
  const isPlaceholder = (value) => api.isFile(value) && placeholders.has(value);

  function notePlaceholders(form, formData) {
    for (const input of fileInputsOf(form)) {
      if (!input.name || !inputsAtWork.has(input)) continue;
      for (const value of formData.getAll(input.name)) {
        if (api.isFile(value) && value.size === 0) placeholders.set(value, { input, job: inputsAtWork.get(input) });
      }
    }
  }

  api.addBodyGuard({
    needs(body) {
      if (!api.isFormData(body)) return false;
      for (const [, value] of body) if (isPlaceholder(value)) return true;
      return false;
    },
    async protect(body) {
      const safe = new NativeFormData();
      for (const [name, value] of body) {
        if (!isPlaceholder(value)) {
          safe.append(name, value);
          continue;
        }
        const { input, job } = placeholders.get(value);
        if (!(await job)) throw api.blockedError();
        for (const file of nativeFiles.call(input)) safe.append(name, file, file.name);
      }
      return safe;
    },
  });

  // Last line for form.submit() and new FormData(form), which cannot wait: a file nobody answered for
  // (a photo, a video, anything the worker has not decided on yet) is taken out of the form data rather
  // than sent as it is.
  function onFormData(event) {
    if (!siteProtected()) return;
    if (event.target && event.target.nodeName === 'FORM') notePlaceholders(event.target, event.formData);
    let removed = false;
    for (const [name, value] of Array.from(event.formData.entries())) {
      if (api.isFile(value) && value.size > 0 && !verified.has(value)) {
        const kept = event.formData.getAll(name).filter((entry) => entry !== value);
        event.formData.delete(name);
        for (const entry of kept) event.formData.append(name, entry);
        removed = true;
      }
    }
    if (removed) api.notify('not_protected_yet');
  }

  // The page's answer to a click or key (its Upload button) found the field empty: the photo is still being
  // protected. Say so once per photo, or the upload would vanish without a word. (Reads from timers, as
  // pages polling the field make, are not an upload being lost.)
  const ACTIONS = ['click', 'submit', 'keydown', 'keyup', 'pointerup', 'mouseup', 'touchend'];
  const toldEarly = new WeakSet();

  function noteEarlyRead(input) {
    const job = inputsAtWork.get(input);
    const current = window.event;
    if (!job || toldEarly.has(job) || !current || !ACTIONS.includes(current.type)) return;
    toldEarly.add(job);
    api.notify('not_ready_yet');
  }

  function hookInputs(win) {
    const prototype = win.HTMLInputElement.prototype;
    // Read at any time (polling, after a focus event): unanswered files are not shown; they are
    // answered for, and the page told with input/change events, as if the person had just picked them.
    Object.defineProperty(prototype, 'files', {
      ...filesProperty,
      get() {
        if (isFileInput(this) && needsWork(this)) {
          protectThenTell(this);
          noteEarlyRead(this);
        }
        return nativeFiles.call(this);
      },
    });
    // A file input that is never added to the document: its events never reach the window.
    for (const method of ['click', 'showPicker']) {
      const native = prototype[method];
      if (typeof native !== 'function') continue;
      prototype[method] = function () {
        if (isFileInput(this) && !this.isConnected) {
          listen(this, 'input', onFileInputEvent);
          listen(this, 'change', onFileInputEvent);
        }
        return native.apply(this, arguments);
      };
    }
  }

  api.addPart({
    hooks: hookInputs,
    listeners(win) {
      listen(win, 'input', onFileInputEvent);
      listen(win, 'change', onFileInputEvent);
      listen(win, 'submit', onSubmit);
      listen(win, 'formdata', onFormData);
    },
  });
})();
