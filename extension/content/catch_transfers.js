// MAIN-world hooks, part 4 of 4: files handed over by drag-and-drop, paste, the async clipboard and the
// File System Access API. A trusted drop or paste carrying files is cancelled and replayed with the
// answered files, offering the same ways to read them (files, items, getAsFile, webkitGetAsEntry,
// getAsFileSystemHandle); clipboard.read(), FileSystemFileHandle.getFile() and FileSystemFileEntry.file()
// yield only answered files.
(function () {
  'use strict';

  const api = window[Symbol.for('photoShield.pageHooks')];
  if (!api) return;
  const { verifyFile, verifyFiles, siteProtected, isFileInput, stop, listen } = api;

  const itemPrototype = DataTransferItem.prototype;
  const nativeGetAsFile = itemPrototype.getAsFile;
  const nativeGetAsEntry = itemPrototype.webkitGetAsEntry;
  const nativeGetAsHandle = itemPrototype.getAsFileSystemHandle;

  const blocked = () => new DOMException('Photo Shield blocked this file: it could not be protected.', 'NotAllowedError');

  // ---- drop and paste ---------------------------------------------------------------------------

  /** Everything a page could read from the transfer, taken while the event is live. */
  function snapshot(transfer) {
    const items = [];
    for (const item of Array.from(transfer.items)) {
      if (item.kind !== 'file') continue;
      const file = nativeGetAsFile.call(item);
      const entry = nativeGetAsEntry ? nativeGetAsEntry.call(item) : null;
      hookEntry(entry);
      let handle = null;
      if (nativeGetAsHandle) {
        try { handle = nativeGetAsHandle.call(item); handle.catch(() => {}); } catch (_) { handle = null; }
      }
      if (file) items.push({ file, entry, handle, directory: Boolean(entry && entry.isDirectory) });
    }
    const strings = {};
    for (const type of transfer.types) if (type !== 'Files') strings[type] = transfer.getData(type);
    return { items, strings };
  }

  /** The element really under the pointer / holding focus, through closed shadow roots too. */
  function deepTarget(event) {
    let element = event.composedPath()[0];
    if (!element || element.nodeType !== Node.ELEMENT_NODE) return document.documentElement;
    for (let root = api.shadowRootOf(element); root; root = api.shadowRootOf(element)) {
      const inner = event.type === 'drop' ? root.elementFromPoint(event.clientX, event.clientY) : root.activeElement;
      if (!inner || inner === element) break;
      element = inner;
    }
    return element;
  }

  // Answered file in a replayed transfer -> how the page may read it as an entry or a handle (a folder
  // keeps the browser's own entry and handle: the files inside are answered for when read).
  const replayed = new WeakMap();

  function replay(event, target, { items, strings }, answered) {
    const transfer = new DataTransfer();
    let next = 0;
    for (const item of items) {
      const file = item.directory ? item.file : answered[next++];
      transfer.items.add(file);
      replayed.set(file, item.directory ? { entry: item.entry, handle: item.handle } : { file });
    }
    for (const [type, value] of Object.entries(strings)) transfer.setData(type, value);
    const common = { bubbles: true, cancelable: true, composed: true };
    if (event.type === 'drop') {
      const init = {
        clientX: event.clientX, clientY: event.clientY, screenX: event.screenX, screenY: event.screenY,
        ctrlKey: event.ctrlKey, shiftKey: event.shiftKey, altKey: event.altKey, metaKey: event.metaKey,
      };
      target.dispatchEvent(carrying(new DragEvent('drop', { ...init, ...common, dataTransfer: transfer }), 'dataTransfer', transfer));
      return;
    }
    const paste = carrying(new ClipboardEvent('paste', { ...common, clipboardData: transfer }), 'clipboardData', transfer);
    // Unless the page took the paste, the browser would now offer it as an edit: editors that read a paste
    // there (beforeinput, inputType insertFromPaste, as Slate does) get the answered files the same way.
    if (target.dispatchEvent(paste) && target.isContentEditable) {
      target.dispatchEvent(carrying(new InputEvent('beforeinput',
        { ...common, inputType: 'insertFromPaste', dataTransfer: transfer }), 'dataTransfer', transfer));
    }
  }

  /** The event, reading `transfer` as `name`. Firefox's ClipboardEvent (and maybe other) constructors ignore
   *  a DataTransfer handed to them and give the page an empty one: the paste would reach it with 0 files. */
  function carrying(replayEvent, name, transfer) {
    if (replayEvent[name] !== transfer) {
      Object.defineProperty(replayEvent, name, { value: transfer, enumerable: true, configurable: true });
    }
    return replayEvent;
  }

  /** Takes a trusted drop/paste carrying files; true when taken. Our replays are untrusted. */
  function takeTransfer(event) {
    const transfer = event.type === 'drop' ? event.dataTransfer : event.clipboardData;
    if (!event.isTrusted || !siteProtected() || !transfer || !Array.from(transfer.types).includes('Files')) return false;
    const target = deepTarget(event);
    // Dropped on a file input: the browser fills the input, and the input hooks take it from there.
    if (isFileInput(target)) return false;
    const taken = snapshot(transfer);
    if (taken.items.length === 0) return false;
    event.preventDefault();
    stop(event);
    verifyFiles(taken.items.filter((item) => !item.directory).map((item) => item.file)).then((answered) => {
      if (answered) replay(event, target, taken, answered);
    });
    return true;
  }

  api.gate(['drop', 'paste'], takeTransfer);

  // ---- reading a replayed item, an entry or a handle ----------------------------------------------

  // Chromium does not expose the entry interfaces (FileSystemFileEntry...) as globals: their prototypes
  // are hooked when a dropped entry first shows them. A file read through an entry (a dropped folder's
  // files) is answered for before the page gets it.
  const hookedPrototypes = new WeakSet();
  let fileEntryPrototype = null;

  function hookOnce(prototype, name, hook) {
    if (!prototype || hookedPrototypes.has(prototype) || typeof prototype[name] !== 'function') return;
    hookedPrototypes.add(prototype);
    prototype[name] = hook(prototype[name]);
  }

  function hookEntry(entry) {
    if (!entry || typeof entry !== 'object') return;
    const prototype = Object.getPrototypeOf(entry);
    if (entry.isFile) {
      fileEntryPrototype = fileEntryPrototype || prototype;
      hookOnce(prototype, 'file', (nativeFile) => function file(success, failure) {
        nativeFile.call(this, (original) => {
          if (!siteProtected()) return success(original);
          verifyFile(original).then((answered) => {
            if (answered) success(answered);
            else if (typeof failure === 'function') failure(blocked());
          });
        }, failure);
      });
    } else if (entry.isDirectory) {
      const hookFound = (nativeFind) => function (path, options, success, failure) {
        return nativeFind.call(this, path, options, (found) => { hookEntry(found); if (success) success(found); }, failure);
      };
      if (!hookedPrototypes.has(prototype)) {
        const nativeGetFile = prototype.getFile;
        const nativeGetDirectory = prototype.getDirectory;
        if (typeof nativeGetFile === 'function') prototype.getFile = hookFound(nativeGetFile);
        if (typeof nativeGetDirectory === 'function') prototype.getDirectory = hookFound(nativeGetDirectory);
      }
      hookOnce(prototype, 'createReader', (nativeCreateReader) => function createReader() {
        const reader = nativeCreateReader.apply(this, arguments);
        hookOnce(Object.getPrototypeOf(reader), 'readEntries', (nativeRead) => function readEntries(success, failure) {
          return nativeRead.call(this, (found) => { for (const inner of found) hookEntry(inner); success(found); }, failure);
        });
        return reader;
      });
    }
  }

  const fakes = new WeakMap(); // answered file -> { entry, handle }

  function define(object, values) {
    for (const [name, value] of Object.entries(values)) {
      Object.defineProperty(object, name, { value, enumerable: true });
    }
    return object;
  }

  function fakesOf(win, file) {
    if (!fakes.has(file)) {
      const entry = define(Object.create(fileEntryPrototype || Object.prototype), {
        isFile: true, isDirectory: false, name: file.name, fullPath: '/' + file.name, filesystem: null,
        file(success) { setTimeout(() => success(file)); },
        getParent(success) { setTimeout(() => success(entry)); },
      });
      const handlePrototype = win.FileSystemFileHandle ? win.FileSystemFileHandle.prototype : Object.prototype;
      const handle = define(Object.create(handlePrototype), {
        kind: 'file', name: file.name,
        getFile: () => Promise.resolve(file),
        isSameEntry: (other) => Promise.resolve(other === handle),
        queryPermission: () => Promise.resolve('granted'),
        requestPermission: () => Promise.resolve('granted'),
        createWritable: () => Promise.reject(new DOMException('Read only.', 'NotAllowedError')),
      });
      fakes.set(file, { entry, handle });
    }
    return fakes.get(file);
  }

  function hookReaders(win) {
    const items = win.DataTransferItem.prototype;
    const replayOf = (item) => {
      const file = nativeGetAsFile.call(item);
      return file ? replayed.get(file) : undefined;
    };
    if (nativeGetAsEntry) {
      items.webkitGetAsEntry = function webkitGetAsEntry() {
        const found = replayOf(this);
        if (!found) return nativeGetAsEntry.call(this);
        return found.file ? fakesOf(win, found.file).entry : found.entry;
      };
    }
    if (nativeGetAsHandle) {
      items.getAsFileSystemHandle = function getAsFileSystemHandle() {
        const found = replayOf(this);
        if (!found) return nativeGetAsHandle.call(this);
        return found.file ? Promise.resolve(fakesOf(win, found.file).handle) : (found.handle || Promise.resolve(null));
      };
    }

    // A file read through a handle (showOpenFilePicker(), showDirectoryPicker(), a dropped item's
    // handle) is answered for before the page gets it.
    if (win.FileSystemFileHandle) {
      const handles = win.FileSystemFileHandle.prototype;
      const nativeGetFile = handles.getFile;
      handles.getFile = async function getFile() {
        const original = await nativeGetFile.apply(this, arguments);
        if (!siteProtected()) return original;
        const answered = await verifyFile(original);
        if (!answered) throw blocked();
        return answered;
      };
    }

    // navigator.clipboard.read(): each item's files are answered for when the page asks for them.
    if (win.Clipboard && win.ClipboardItem && typeof win.Clipboard.prototype.read === 'function') {
      const nativeRead = win.Clipboard.prototype.read;
      const nativeGetType = win.ClipboardItem.prototype.getType;
      win.Clipboard.prototype.read = function read() {
        return nativeRead.apply(this, arguments).then((clipboardItems) => {
          for (const item of clipboardItems) {
            Object.defineProperty(item, 'getType', {
              value: async function getType(type) {
                const blob = await nativeGetType.call(item, type);
                if (!siteProtected() || /^text\//i.test(String(type))) return blob;
                const answered = await verifyFile(new File([blob], 'clipboard', { type: blob.type }));
                if (!answered) throw blocked();
                return answered;
              },
            });
          }
          return clipboardItems;
        });
      };
    }
  }

  api.addPart({
    hooks: hookReaders,
    listeners(win) {
      listen(win, 'drop', takeTransfer);
      listen(win, 'paste', takeTransfer);
    },
  });
})();
