// Drag-and-drop and paste of images: the trusted event is cancelled and replayed with protected files.
(function () {
  'use strict';

  const { processFiles, mayBeImage, stop, shadowRootOf, isFileInput, siteProtected, TAG } = PhotoShieldBridge;

  function stringsOf(transfer) {
    const strings = {};
    for (const type of transfer.types) {
      if (type !== 'Files') strings[type] = transfer.getData(type);
    }
    return strings;
  }

  /** The element really under the pointer / holding focus, through closed shadow roots too. */
  function deepTarget(event) {
    let element = event.composedPath()[0];
    if (!(element instanceof Element)) return document.documentElement;
    for (let root = shadowRootOf(element); root; root = shadowRootOf(element)) {
      const inner = event.type === 'drop' ? root.elementFromPoint(event.clientX, event.clientY) : root.activeElement;
      if (!inner || inner === element) break;
      element = inner;
    }
    return element;
  }

  function insideClosedShadow(element) {
    for (let root = element.getRootNode(); root instanceof ShadowRoot; root = root.host.getRootNode()) {
      if (root.mode === 'closed') return true;
    }
    return false;
  }

  function replacementEvent(eventType, files, strings, init) {
    const transfer = new DataTransfer();
    for (const file of files) transfer.items.add(file);
    for (const [type, value] of Object.entries(strings)) transfer.setData(type, value);
    const common = { bubbles: true, cancelable: true, composed: true };
    return eventType === 'drop'
      ? new DragEvent('drop', { ...init, ...common, dataTransfer: transfer })
      : new ClipboardEvent('paste', { ...common, clipboardData: transfer });
  }

  /** The page's replacement event is built in the MAIN world (Firefox hides our DataTransfer from the
   *  page), except inside closed shadow roots, which only we can reach. */
  function redispatch(eventType, target, files, strings, init) {
    if (insideClosedShadow(target)) {
      target.dispatchEvent(replacementEvent(eventType, files, strings, init));
      return;
    }
    const nonce = crypto.randomUUID();
    target.setAttribute('data-photo-shield-target', nonce);
    window.postMessage({ [TAG]: 'redispatch', nonce, eventType, files, strings, init }, '*');
  }

  function onTransfer(event, transfer, init) {
    // Our own replacement events are untrusted; a page's synthetic events carry files it already has.
    if (!event.isTrusted || !siteProtected() || !transfer) return;
    const target = deepTarget(event);
    // Dropped on a file input: the browser fills the input, and the input hook takes it from there.
    if (isFileInput(target)) return;
    const files = Array.from(transfer.files || []);
    if (!files.some(mayBeImage)) return;
    event.preventDefault();
    stop(event);
    const strings = stringsOf(transfer);
    processFiles(files).then((results) => {
      if (results) redispatch(event.type, target, results, strings, init);
    });
  }

  window.addEventListener('drop', (event) => onTransfer(event, event.dataTransfer, {
    clientX: event.clientX, clientY: event.clientY, screenX: event.screenX, screenY: event.screenY,
    ctrlKey: event.ctrlKey, shiftKey: event.shiftKey, altKey: event.altKey, metaKey: event.metaKey,
  }), true);
  window.addEventListener('paste', (event) => onTransfer(event, event.clipboardData, {}), true);
})();
