// File inputs and forms: the field is emptied at once and refilled with the protected files
// before the page hears about them.
(function () {
  'use strict';

  const { processFiles, mayBeImage, stop, shadowRootOf, isFileInput, siteProtected } = PhotoShieldBridge;
  let redispatching = false;
  const inputsAtWork = new Map(); // input -> promise of its protection, while it runs

  function fileListOf(files) {
    const transfer = new DataTransfer();
    for (const file of files) transfer.items.add(file);
    return transfer.files;
  }

  // Files this script put into inputs (protected, not images, or originals the person allowed).
  const approved = new WeakSet();
  const unapprovedImages = (input) => Array.from(input.files || []).filter((f) => !approved.has(f) && mayBeImage(f));

  /** Replaces the input's files by their protected versions; resolves false if the upload must not happen. */
  function protectInput(input) {
    const files = Array.from(input.files || []);
    input.value = ''; // nothing unprotected stays in the field (or in a form submit) while we work
    const job = processFiles(files).then((results) => {
      inputsAtWork.delete(input);
      if (!results) return false;
      input.files = fileListOf(results);
      for (const file of input.files) approved.add(file);
      return true;
    });
    inputsAtWork.set(input, job);
    return job;
  }

  function fileInputWithImagesIn(root) {
    for (const element of root.querySelectorAll('*')) {
      if (isFileInput(element) && unapprovedImages(element).length) return element;
      const inner = shadowRootOf(element);
      const found = inner && fileInputWithImagesIn(inner);
      if (found) return found;
    }
    return null;
  }

  /** The file input behind an event; a closed shadow root shows us only its host, so look inside. */
  function fileInputOf(event) {
    const first = event.composedPath()[0];
    if (isFileInput(first)) return first;
    const root = first instanceof Element && shadowRootOf(first);
    return root ? fileInputWithImagesIn(root) : null;
  }

  // `change` does not leave a shadow root, so we also listen inside each root we meet.
  const watchedRoots = new WeakSet();

  function watchRootOf(input) {
    const root = input.getRootNode();
    if (root === document || watchedRoots.has(root)) return;
    watchedRoots.add(root);
    root.addEventListener('change', onFileInputEvent, true);
  }

  function onFileInputEvent(event) {
    if (redispatching) return;
    const input = fileInputOf(event);
    if (!input) return;
    if (inputsAtWork.has(input)) return stop(event); // the `change` that follows the `input` we took
    if (!siteProtected() || unapprovedImages(input).length === 0) return;
    stop(event);
    watchRootOf(input);
    protectInput(input).then((ok) => {
      if (!ok) return;
      redispatching = true;
      try {
        input.dispatchEvent(new Event('input', { bubbles: true, composed: true }));
        input.dispatchEvent(new Event('change', { bubbles: true }));
      } finally {
        redispatching = false;
      }
    });
  }

  window.addEventListener('input', onFileInputEvent, true);
  window.addEventListener('change', onFileInputEvent, true);

  const fileInputsOf = (form) => Array.from(form.elements).filter(isFileInput);

  // A page may fill an input by script and submit without any change event: protect before submitting.
  window.addEventListener('submit', (event) => {
    const form = event.target;
    if (!siteProtected() || !(form instanceof HTMLFormElement)) return;
    const waiting = fileInputsOf(form).filter((input) => inputsAtWork.has(input) || unapprovedImages(input).length);
    if (waiting.length === 0) return;
    event.preventDefault();
    stop(event);
    const submitter = event.submitter;
    Promise.all(waiting.map((input) => inputsAtWork.get(input) || protectInput(input))).then((results) => {
      if (!results.every(Boolean) || !form.isConnected) return;
      try {
        form.requestSubmit(submitter || undefined);
      } catch (_) {
        form.requestSubmit(); // the button that submitted has left the form meanwhile
      }
    });
  }, true);

  // Last line for form.submit() and new FormData(form), which cannot wait: an image we have not
  // approved is taken out of the form data rather than sent unprotected.
  window.addEventListener('formdata', (event) => {
    if (!siteProtected()) return;
    let removed = false;
    for (const [name, value] of Array.from(event.formData.entries())) {
      if (value instanceof File && value.size > 0 && mayBeImage(value) && !approved.has(value)) {
        const kept = event.formData.getAll(name).filter((entry) => entry !== value);
        event.formData.delete(name);
        for (const entry of kept) event.formData.append(name, entry);
        removed = true;
      }
    }
    if (removed) PhotoShieldNotice.showBlocked('not_protected_yet', { canUploadOriginal: false });
  }, true);
})();
