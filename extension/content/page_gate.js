// MAIN-world hooks, part 2 of 4: the gate in front of the page's own listeners. A file event the
// window-level catchers could not see first (a file input never added to the document, a control in a
// closed shadow root, a listener added while document.open() had erased ours) is held here instead of
// reaching the page. Also: closed shadow roots made visible to the catchers, and document.open() /
// document.write() re-arming every listener they erase (per the HTML standard, all of them).
(function () {
  'use strict';

  const api = window[Symbol.for('photoShield.pageHooks')];
  if (!api) return;
  const { nativeAddListener } = api;

  // The events that hand a page files. event type -> [hold(event): true when a catcher took the event]
  const holds = new Map(['change', 'input', 'drop', 'paste'].map((type) => [type, []]));
  const closedRoots = new WeakMap(); // host -> its closed shadow root
  const wrappers = new WeakMap(); // the page's listener -> the gated one

  /** True (and the event stopped for everyone after) when a catcher took the event. */
  function held(event) {
    for (const hold of holds.get(event.type) || []) {
      if (hold(event)) {
        event.stopImmediatePropagation();
        return true;
      }
    }
    return false;
  }

  function gated(listener) {
    if (!wrappers.has(listener)) {
      wrappers.set(listener, function (event) {
        if (held(event)) return undefined;
        return typeof listener === 'function' ? listener.call(this, event) : listener.handleEvent(event);
      });
    }
    return wrappers.get(listener);
  }

  const isListener = (value) => typeof value === 'function' || (value !== null && typeof value === 'object');
  const captureOf = (options) => (typeof options === 'boolean' ? options : Boolean(options && options.capture));
  // A one-shot listener must survive an event we hold, so it is added as an ordinary one that removes
  // itself once it has really run: listener -> [{ target, type, capture, wrapper }].
  const oneShots = new WeakMap();

  function gatedOnce(target, type, listener, options, nativeRemove) {
    const capture = captureOf(options);
    const wrapper = function (event) {
      if (held(event)) return undefined;
      nativeRemove.call(target, type, wrapper, capture);
      oneShots.set(listener, oneShots.get(listener).filter((shot) => shot.wrapper !== wrapper));
      return typeof listener === 'function' ? listener.call(this, event) : listener.handleEvent(event);
    };
    if (!oneShots.has(listener)) oneShots.set(listener, []);
    oneShots.get(listener).push({ target, type, capture, wrapper });
    return wrapper;
  }

  function gateListeners(win) {
    const prototype = win.EventTarget.prototype;
    const nativeAdd = prototype.addEventListener;
    const nativeRemove = prototype.removeEventListener;
    prototype.addEventListener = function addEventListener(type, listener, options) {
      if (!holds.has(String(type)) || !isListener(listener)) return nativeAdd.call(this, type, listener, options);
      if (options && typeof options === 'object' && options.once) {
        const wrapper = gatedOnce(this, String(type), listener, options, nativeRemove);
        return nativeAdd.call(this, type, wrapper, { ...options, once: false });
      }
      return nativeAdd.call(this, type, gated(listener), options);
    };
    prototype.removeEventListener = function removeEventListener(type, listener, options) {
      if (!holds.has(String(type)) || !isListener(listener)) return nativeRemove.call(this, type, listener, options);
      const capture = captureOf(options);
      for (const shot of oneShots.get(listener) || []) {
        if (shot.target === this && shot.type === String(type) && shot.capture === capture) {
          nativeRemove.call(this, type, shot.wrapper, options);
        }
      }
      return nativeRemove.call(this, type, wrappers.get(listener) || listener, options);
    };
    // onchange = ..., ondrop = ... on elements, documents and the window itself.
    for (const target of [win.HTMLElement.prototype, win.SVGElement.prototype, win.Document.prototype, win]) {
      for (const type of holds.keys()) {
        const descriptor = Object.getOwnPropertyDescriptor(target, 'on' + type);
        if (!descriptor || !descriptor.set) continue;
        const originals = new WeakMap();
        Object.defineProperty(target, 'on' + type, {
          ...descriptor,
          get() { return originals.has(this) ? originals.get(this) : descriptor.get.call(this); },
          set(value) {
            originals.set(this, value);
            descriptor.set.call(this, typeof value === 'function' ? gated(value) : value);
          },
        });
      }
    }
  }

  function recordClosedRoots(win) {
    const nativeAttach = win.Element.prototype.attachShadow;
    win.Element.prototype.attachShadow = function attachShadow(init) {
      const root = nativeAttach.apply(this, arguments);
      if (init && init.mode === 'closed') closedRoots.set(this, root);
      return root;
    };
  }

  function rearmAfterRewrite(win) {
    const prototype = win.Document.prototype;
    for (const method of ['open', 'write', 'writeln']) {
      const native = prototype[method];
      prototype[method] = function () {
        const result = native.apply(this, arguments);
        const view = this.defaultView;
        if (view) api.rearm(view);
        return result;
      };
    }
  }

  api.addPart({
    hooks(win) {
      gateListeners(win);
      recordClosedRoots(win);
      rearmAfterRewrite(win);
    },
  });

  Object.assign(api, {
    /** Catchers register here before any page script runs: `hold(event)` for each of `types`. */
    gate(types, hold) {
      for (const type of types) holds.get(type).push(hold);
    },
    shadowRootOf: (element) => element.shadowRoot || closedRoots.get(element) || null,
    isFileInput(node) {
      return Boolean(node) && node.nodeName === 'INPUT' && String(node.type).toLowerCase() === 'file';
    },
    stop(event) {
      event.stopImmediatePropagation();
      event.stopPropagation();
    },
    /** Adds `listener` in the capture phase of `target` where the page cannot gate or remove it. */
    listen(target, type, listener) {
      nativeAddListener.call(target, type, listener, true);
    },
  });
})();
