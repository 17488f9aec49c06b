// The review editor: a protected preview with every region outlined, where a person adds regions the
// detector missed (drag with mouse, pen or finger, or the keyboard) and unticks detections, zoomed in as far
// as a face of a few pixels needs (wheel, pinch, buttons, keys) and moved around (two fingers, the Move button,
// Space or middle-button drag, arrow keys).
// Standalone ES module, no globals, and the one copy: the extension's review dialog imports it from here and
// the local page's shield_server/web/editor.js is a link to it. It never draws the photo itself: the host
// re-protects the original on the server with state() and shows the server's output through update().
// Only the person's own (trusted) input changes anything: a page script cannot untick a face for them.
// Styles: editor.css.

const DEFAULT_TEXT = {
  addRegion: "Add a region",
  undo: "Undo",
  hint: "Drag on the photo to cover something more; click an outlined face to leave it as it is. " +
    "Keyboard: select a region, arrows move it, Shift+arrows resize it, Delete removes it.",
  zoomHint: "Zoom in to cover a small face: wheel, pinch, the + and − buttons, or the + − 0 keys. Move around " +
    "with two fingers, the Move button, Space+drag or the arrow keys.",
  detection: "Detected face, replaced (click to keep it as it is)",
  fixedDetection: "Detected face, replaced",
  keptDetection: "Detected face, kept as it is (click to replace it)",
  region: "Added region (arrows move, Shift+arrows resize, Delete removes)",
  working: "Protecting…",
  photo: "The protected photo: drag to cover something more; + and − zoom, 0 shows it whole, arrows move it",
  zoomIn: "Zoom in",
  zoomOut: "Zoom out",
  zoomFit: "Whole photo",
  zoomFitLabel: "Whole photo: show all of it",
  move: "Move",
  moveLabel: "Move the photo (a drag moves it instead of drawing)",
  zoomLevel: "Zoom",
};
const MIN_DRAG_PX = 4;  // on screen: a shorter drag is a click, not a region
const CHANGE_DELAY_MS = 500;  // keyboard moves are sent once the keys rest
const MAX_SCALE = 8;  // screen pixels per photo pixel at the closest zoom: a 12 px face shown 96 px wide
const ZOOM_STEP = 2;  // per button press or key
const WHEEL_PX_PER_DOUBLING = 300;  // a wheel notch (~100 px) zooms by ~1.26x
const PIXELATED_FROM = 3;  // from this zoom on, photo pixels are drawn as crisp squares
const VIEW_HEIGHT = 0.6;  // of the window, at most

const PERCENT = new Intl.NumberFormat(globalThis.navigator?.language,
  { style: "percent", maximumFractionDigits: 0 });

const sameBox = (a, b) => a.every((value, i) => value === b[i]);
const clamp = (value, low, high) => Math.max(low, Math.min(high, value));

/**
 * container: an element the editor fills. options: { imageUrl, report (the server's X-Shield-Report),
 * onChange(state) called after every change, text: labels overriding DEFAULT_TEXT, allowAdd and
 * allowUntick: what the person may do (both true unless said; the host's server side enforces them too) }.
 * Returns { update(imageUrl, report), setBusy(busy), state(), destroy() }; state() is
 * { regions: [[x0, y0, x1, y1]...], keep: [[x0, y0, x1, y1]...] } in pixels of the upright photo.
 */
export function createEditor(container, { imageUrl, report, onChange = () => {}, text = {}, allowAdd = true,
  allowUntick = true }) {
  const words = { ...DEFAULT_TEXT, ...text };
  let current = { regions: [], keep: (report.kept || []).map((box) => [...box]) };
  let shownReport = report;
  let selected = -1;
  let history = [];
  let changeTimer = null;
  let drag = null;  // drawing a region: { id, start, x, y, box }
  let pan = null;  // moving the photo with one pointer: { id, x, y, left, top }
  let pinch = null;  // two pointers: { distance, scale, point (photo pixel under their middle) }
  const pointers = new Map();  // every pointer down on the photo: id -> [clientX, clientY]
  const view = { scale: 1, fit: 1, left: 0, top: 0 };  // screen px per photo px; the stage's offset in the viewport
  let moved = false;  // the last press moved the photo: the click it ends is not a toggle
  let moveTool = false;
  let spaceHeld = false;

  const root = element("div", "shield-editor");
  const viewport = element("div", "shield-editor-view");
  viewport.tabIndex = 0;
  viewport.setAttribute("role", "group");
  viewport.setAttribute("aria-label", words.photo);
  const stage = element("div", "shield-editor-stage");
  const image = element("img");
  image.alt = "";
  image.draggable = false;
  const spinner = element("div", "shield-editor-spinner");
  spinner.setAttribute("role", "status");
  spinner.setAttribute("aria-label", words.working);
  const layer = element("div", "shield-editor-layer");
  stage.append(image, layer);
  viewport.append(stage, spinner);
  const tools = element("div", "shield-editor-tools");
  const addButton = button(words.addRegion, "shield-editor-add");
  const undoButton = button(words.undo, "shield-editor-undo");
  const zoomTools = element("div", "shield-editor-zoom");
  zoomTools.setAttribute("role", "group");
  zoomTools.setAttribute("aria-label", words.zoomLevel);
  const zoomOutButton = button("−", "shield-editor-zoom-out", words.zoomOut);
  const zoomLevel = element("output", "shield-editor-zoom-level");
  zoomLevel.setAttribute("aria-label", words.zoomLevel);
  const zoomInButton = button("+", "shield-editor-zoom-in", words.zoomIn);
  const fitButton = button(words.zoomFit, "shield-editor-zoom-fit", words.zoomFitLabel);
  const moveButton = button(words.move, "shield-editor-move", words.moveLabel);
  moveButton.setAttribute("aria-pressed", "false");
  zoomTools.append(zoomOutButton, zoomLevel, zoomInButton, fitButton);
  if (allowAdd) zoomTools.append(moveButton);
  const hint = element("p", "shield-editor-hint");
  hint.textContent = words.hint;
  const zoomHint = element("p", "shield-editor-hint");
  zoomHint.textContent = words.zoomHint;
  if (allowAdd) tools.append(addButton);
  tools.append(undoButton, zoomTools);
  root.append(viewport, tools, hint, zoomHint);
  container.replaceChildren(root);

  function element(tag, className) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  function button(label, className, name) {
    const node = element("button", className);
    node.type = "button";
    node.textContent = label;
    if (name) {
      node.setAttribute("aria-label", name);
      node.title = name;
    }
    return node;
  }

  const size = () => ({ width: shownReport.width, height: shownReport.height });

  // ---- zoom and pan ----------------------------------------------------------------------------
  // The stage is the photo at view.scale, placed at (view.left, view.top) in the viewport, which keeps the
  // size of the whole photo at its fitting scale. Outlines are placed in percent of the stage, so they follow.

  const viewCentre = () => [viewport.clientWidth / 2, viewport.clientHeight / 2];

  function layout() {
    const { width, height } = size();
    const available = root.clientWidth;
    if (!available) return;  // not shown yet: the resize observer calls again
    const maxHeight = Math.max(120, window.innerHeight * VIEW_HEIGHT);
    const [cx, cy] = viewCentre();
    const centre = [(cx - view.left) / view.scale, (cy - view.top) / view.scale];  // stays in the middle
    const relative = view.scale / view.fit;
    view.fit = Math.min(1, available / width, maxHeight / height);
    view.scale = clamp(view.fit * relative, view.fit, maxScale());
    viewport.style.height = `${Math.round(height * view.fit)}px`;
    const [nx, ny] = viewCentre();
    view.left = nx - centre[0] * view.scale;
    view.top = ny - centre[1] * view.scale;
    placeStage();
  }

  const maxScale = () => Math.max(MAX_SCALE, view.fit);

  /** Zoom to `scale`, keeping the photo pixel under the viewport point (x, y) where it is. */
  function zoomTo(scale, x, y) {
    const next = clamp(scale, view.fit, maxScale());
    view.left = x - ((x - view.left) / view.scale) * next;
    view.top = y - ((y - view.top) / view.scale) * next;
    view.scale = next;
    placeStage();
  }

  function panBy(dx, dy) {
    view.left += dx;
    view.top += dy;
    placeStage();
  }

  function placeStage() {
    const { width, height } = size();
    const stageWidth = width * view.scale;
    const stageHeight = height * view.scale;
    const viewWidth = viewport.clientWidth;
    const viewHeight = viewport.clientHeight;
    // A photo narrower than the viewport is centred; a wider one cannot be moved past its edges.
    view.left = stageWidth <= viewWidth ? (viewWidth - stageWidth) / 2 : clamp(view.left, viewWidth - stageWidth, 0);
    view.top = stageHeight <= viewHeight ? (viewHeight - stageHeight) / 2
      : clamp(view.top, viewHeight - stageHeight, 0);
    stage.style.width = `${stageWidth}px`;
    stage.style.height = `${stageHeight}px`;
    stage.style.left = `${view.left}px`;
    stage.style.top = `${view.top}px`;
    const atFit = view.scale <= view.fit * 1.0001;
    const atMax = view.scale >= maxScale() * 0.9999;
    zoomOutButton.disabled = atFit;
    fitButton.disabled = atFit;
    zoomInButton.disabled = atMax;
    zoomLevel.textContent = PERCENT.format(view.scale);
    root.dataset.zoom = view.scale.toFixed(4);
    root.classList.toggle("shield-zoomed", !atFit);
    stage.classList.toggle("shield-pixelated", view.scale >= PIXELATED_FROM);
  }

  function zoomBy(factor) {
    zoomTo(view.scale * factor, ...viewCentre());
  }

  function fitAll() {
    zoomTo(view.fit, ...viewCentre());
  }

  /** The part of the photo in sight, in photo pixels. */
  function visibleBox() {
    const { width, height } = size();
    return [clamp(-view.left / view.scale, 0, width), clamp(-view.top / view.scale, 0, height),
      clamp((viewport.clientWidth - view.left) / view.scale, 0, width),
      clamp((viewport.clientHeight - view.top) / view.scale, 0, height)];
  }

  /** Moves the photo just enough for the box (photo pixels) to be in sight. */
  function reveal([x0, y0, x1, y1]) {
    const margin = 16;
    const viewWidth = viewport.clientWidth;
    const viewHeight = viewport.clientHeight;
    const left = view.left + x0 * view.scale;
    const right = view.left + x1 * view.scale;
    const top = view.top + y0 * view.scale;
    const bottom = view.top + y1 * view.scale;
    let dx = 0;
    let dy = 0;
    if (right > viewWidth - margin) dx = viewWidth - margin - right;
    if (left + dx < margin) dx = margin - left;
    if (bottom > viewHeight - margin) dy = viewHeight - margin - bottom;
    if (top + dy < margin) dy = margin - top;
    if (dx || dy) panBy(dx, dy);
  }

  // ---- outlines --------------------------------------------------------------------------------

  function place(node, [x0, y0, x1, y1]) {
    const { width, height } = size();
    node.style.left = `${(100 * x0) / width}%`;
    node.style.top = `${(100 * y0) / height}%`;
    node.style.width = `${(100 * (x1 - x0)) / width}%`;
    node.style.height = `${(100 * (y1 - y0)) / height}%`;
  }

  function clampBox([x0, y0, x1, y1]) {
    const { width, height } = size();
    const left = clamp(Math.floor(Math.min(x0, x1)), 0, width - 1);
    const top = clamp(Math.floor(Math.min(y0, y1)), 0, height - 1);
    return [left, top, Math.min(width, Math.max(Math.ceil(Math.max(x0, x1)), left + 1)),
      Math.min(height, Math.max(Math.ceil(Math.max(y0, y1)), top + 1))];
  }

  function render() {
    // Outlines are rebuilt on each change; the focused one gets the focus back (keyboard moves go on).
    const active = root.getRootNode().activeElement;  // the shadow root's own when the editor lives in one
    const focused = layer.contains(active) ? active.dataset.index : undefined;
    const boxes = [];
    for (const detection of shownReport.detections || []) {
      const kept = current.keep.some((box) => sameBox(box, detection.box));
      const node = button("", `shield-box shield-detection${kept ? " shield-kept" : ""}`);
      node.setAttribute("role", "checkbox");
      node.setAttribute("aria-checked", String(!kept));
      const label = kept ? words.keptDetection : allowUntick ? words.detection : words.fixedDetection;
      node.setAttribute("aria-label", label);
      node.title = node.getAttribute("aria-label");
      node.addEventListener("pointerdown", (event) => { if (!panning(event)) event.stopPropagation(); });
      if (allowUntick || kept) {
        node.addEventListener("click", (event) => { if (event.isTrusted && !moved) toggleKeep(detection.box); });
      } else {
        node.setAttribute("aria-disabled", "true");
      }
      place(node, detection.box);
      boxes.push(node);
    }
    current.regions.forEach((box, index) => {
      const node = element("div", `shield-box shield-region${index === selected ? " shield-selected" : ""}`);
      node.tabIndex = 0;
      node.setAttribute("role", "button");
      node.setAttribute("aria-label", words.region);
      node.title = words.region;
      node.dataset.index = String(index);
      node.addEventListener("pointerdown", (event) => {
        if (panning(event)) return;
        event.stopPropagation();
        select(index);
      });
      node.addEventListener("focus", () => {
        reveal(current.regions[index]);
        if (selected !== index) select(index);
      });
      node.addEventListener("keydown", (event) => onRegionKey(event, index));
      place(node, box);
      boxes.push(node);
    });
    if (drag && drag.box) {
      const node = element("div", "shield-box shield-drawing");
      place(node, drag.box);
      boxes.push(node);
    }
    layer.replaceChildren(...boxes);
    if (focused !== undefined) layer.querySelector(`[data-index="${focused}"]`)?.focus({ preventScroll: true });
    undoButton.disabled = history.length === 0;
  }

  function select(index) {
    selected = index;
    render();
    layer.querySelector(`[data-index="${index}"]`)?.focus({ preventScroll: true });
  }

  function remember() {
    history.push(JSON.stringify(current));
  }

  function changed() {
    clearTimeout(changeTimer);
    changeTimer = null;
    render();
    onChange(state());
  }

  function changedSoon() {
    render();
    clearTimeout(changeTimer);
    changeTimer = setTimeout(changed, CHANGE_DELAY_MS);
  }

  function toggleKeep(box) {
    remember();
    const kept = current.keep.some((other) => sameBox(other, box));
    current.keep = kept ? current.keep.filter((other) => !sameBox(other, box)) : [...current.keep, [...box]];
    changed();
  }

  function addRegion(box) {
    remember();
    current.regions.push(clampBox(box));
    selected = current.regions.length - 1;
    changed();
  }

  function onRegionKey(event, index) {
    if (!event.isTrusted) return;
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      remember();
      current.regions.splice(index, 1);
      selected = -1;
      changed();
      viewport.focus({ preventScroll: true });
      return;
    }
    if (!(event.key in moves)) return;
    event.preventDefault();
    const { width, height } = size();
    // 1% of the photo's longer side when it is shown whole, finer as it is zoomed in (down to one pixel).
    const step = Math.max(1, Math.round((Math.max(width, height) / 100) * (view.fit / view.scale)));
    const [dx, dy] = moves[event.key].map((unit) => unit * step);
    const [x0, y0, x1, y1] = current.regions[index];
    if (changeTimer === null) remember();  // one undo step per burst of keys
    if (event.shiftKey) {
      current.regions[index] = clampBox([x0, y0, Math.max(x0 + 1, x1 + dx), Math.max(y0 + 1, y1 + dy)]);
    } else {
      const sx = clamp(dx, -x0, width - x1);
      const sy = clamp(dy, -y0, height - y1);
      current.regions[index] = [x0 + sx, y0 + sy, x1 + sx, y1 + sy];
    }
    reveal(current.regions[index]);
    changedSoon();
  }

  // ---- pointers: draw, move, pinch -------------------------------------------------------------

  function toImage(event) {
    const rect = stage.getBoundingClientRect();
    const { width, height } = size();
    return [clamp(((event.clientX - rect.left) * width) / rect.width, 0, width),
      clamp(((event.clientY - rect.top) * height) / rect.height, 0, height)];
  }

  function toViewport(clientX, clientY) {
    const rect = viewport.getBoundingClientRect();
    return [clientX - rect.left - viewport.clientLeft, clientY - rect.top - viewport.clientTop];
  }

  /** Whether a primary press moves the photo instead of drawing (Move tool, Space held, middle button). */
  const panning = (event) => event.button === 1 || ((moveTool || spaceHeld || !allowAdd) && event.button === 0);

  function pinchState() {
    const [[ax, ay], [bx, by]] = [...pointers.values()];
    const [mx, my] = toViewport((ax + bx) / 2, (ay + by) / 2);
    return { distance: Math.max(1, Math.hypot(ax - bx, ay - by)), mx, my };
  }

  // Every pointer is counted before the outlines see it (capture), so a second finger always starts a pinch.
  viewport.addEventListener("pointerdown", (event) => {
    if (!event.isTrusted) return;
    if (event.isPrimary) pointers.clear();  // a first pointer: none other is down (one lost outside is forgotten)
    moved = false;
    pointers.set(event.pointerId, [event.clientX, event.clientY]);
    if (pointers.size === 2) {
      drag = null;  // the first finger's drawing was the start of a pinch
      pan = null;
      const { distance, mx, my } = pinchState();
      moved = true;
      pinch = { distance, scale: view.scale, point: [(mx - view.left) / view.scale, (my - view.top) / view.scale] };
      render();
    }
  }, { capture: true });

  viewport.addEventListener("pointerdown", (event) => {
    if (!event.isTrusted || pinch || pointers.size > 1) return;
    if (panning(event)) {
      event.preventDefault();
      viewport.setPointerCapture(event.pointerId);
      pan = { id: event.pointerId, x: event.clientX, y: event.clientY, left: view.left, top: view.top };
      root.classList.add("shield-panning");
      return;
    }
    if (event.button !== 0 || !allowAdd) return;
    event.preventDefault();
    viewport.dataset.pointerFocus = "";  // keys reach the editor; no focus ring for a mouse or a finger
    viewport.focus({ preventScroll: true });
    viewport.setPointerCapture(event.pointerId);
    drag = { id: event.pointerId, start: toImage(event), x: event.clientX, y: event.clientY, box: null };
  });

  viewport.addEventListener("pointermove", (event) => {
    if (pointers.has(event.pointerId)) pointers.set(event.pointerId, [event.clientX, event.clientY]);
    if (pinch && pointers.size >= 2) {
      const { distance, mx, my } = pinchState();
      view.scale = clamp(pinch.scale * (distance / pinch.distance), view.fit, maxScale());
      view.left = mx - pinch.point[0] * view.scale;  // the photo pixel between the fingers stays between them
      view.top = my - pinch.point[1] * view.scale;
      placeStage();
      return;
    }
    if (pan && event.pointerId === pan.id) {
      moved ||= Math.hypot(event.clientX - pan.x, event.clientY - pan.y) >= MIN_DRAG_PX;
      view.left = pan.left + event.clientX - pan.x;
      view.top = pan.top + event.clientY - pan.y;
      placeStage();
      return;
    }
    if (!drag || event.pointerId !== drag.id) return;
    if (Math.hypot(event.clientX - drag.x, event.clientY - drag.y) < MIN_DRAG_PX) return;
    drag.box = clampBox([...drag.start, ...toImage(event)]);
    render();
  });

  const endPointer = (event, commit) => {
    pointers.delete(event.pointerId);
    if (pinch) {
      if (pointers.size === 0) pinch = null;  // until every finger is up, nothing is drawn
      return;
    }
    if (pan && event.pointerId === pan.id) {
      pan = null;
      root.classList.remove("shield-panning");
      return;
    }
    if (!drag || event.pointerId !== drag.id) return;
    const box = commit && Math.hypot(event.clientX - drag.x, event.clientY - drag.y) >= MIN_DRAG_PX
      ? clampBox([...drag.start, ...toImage(event)]) : null;
    drag = null;
    if (box) addRegion(box); else render();
  };
  viewport.addEventListener("pointerup", (event) => endPointer(event, event.isTrusted));
  viewport.addEventListener("pointercancel", (event) => endPointer(event, false));

  viewport.addEventListener("wheel", (event) => {
    if (!event.isTrusted) return;
    const lines = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? viewport.clientHeight : 1;
    const factor = 2 ** (-(event.deltaY * lines) / WHEEL_PX_PER_DOUBLING);
    const atFit = view.scale <= view.fit * 1.0001;
    if (factor < 1 && atFit) return;  // zoomed out as far as it goes: the page scrolls on
    event.preventDefault();
    zoomTo(view.scale * factor, ...toViewport(event.clientX, event.clientY));
  }, { passive: false });

  // ---- buttons and keys ------------------------------------------------------------------------

  const onClick = (node, action) => node.addEventListener("click", (event) => { if (event.isTrusted) action(); });
  onClick(addButton, () => {
    const [x0, y0, x1, y1] = visibleBox();  // in the middle of what is in sight, a fifth of it
    const [w, h] = [x1 - x0, y1 - y0];
    addRegion([x0 + w * 0.4, y0 + h * 0.4, x0 + w * 0.6, y0 + h * 0.6]);
    select(current.regions.length - 1);
  });
  onClick(undoButton, () => undo());
  onClick(zoomInButton, () => zoomBy(ZOOM_STEP));
  onClick(zoomOutButton, () => zoomBy(1 / ZOOM_STEP));
  onClick(fitButton, () => fitAll());
  onClick(moveButton, () => {
    moveTool = !moveTool;
    moveButton.setAttribute("aria-pressed", String(moveTool));
    root.classList.toggle("shield-move-tool", moveTool);
  });

  root.tabIndex = -1;
  root.addEventListener("keydown", (event) => {
    if (!event.isTrusted || event.defaultPrevented) return;
    delete viewport.dataset.pointerFocus;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undo();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const onPhoto = event.target === viewport || layer.contains(event.target);
    const zooms = { "+": () => zoomBy(ZOOM_STEP), "=": () => zoomBy(ZOOM_STEP), "-": () => zoomBy(1 / ZOOM_STEP),
      "0": fitAll };
    if (onPhoto && event.key in zooms) {
      event.preventDefault();
      zooms[event.key]();
      return;
    }
    const pans = { ArrowLeft: [1, 0], ArrowRight: [-1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (event.target === viewport && event.key in pans) {
      event.preventDefault();
      const [dx, dy] = pans[event.key];
      panBy((dx * viewport.clientWidth) / 5, (dy * viewport.clientHeight) / 5);
      return;
    }
    if (event.target === viewport && event.key === " ") {
      event.preventDefault();  // held: a drag moves the photo
      spaceHeld = true;
      root.classList.add("shield-space");
    }
  });
  const releaseSpace = () => {
    spaceHeld = false;
    root.classList.remove("shield-space");
  };
  root.addEventListener("keyup", (event) => { if (event.key === " ") releaseSpace(); });
  viewport.addEventListener("blur", releaseSpace);

  const resizes = new ResizeObserver(() => layout());
  resizes.observe(root);
  const onWindowResize = () => layout();
  window.addEventListener("resize", onWindowResize);

  function undo() {
    if (!history.length) return;
    current = JSON.parse(history.pop());
    selected = -1;
    changed();
  }

  function state() {
    return { regions: current.regions.map((box) => [...box]), keep: current.keep.map((box) => [...box]) };
  }

  function update(url, newReport) {
    const resized = newReport.width !== shownReport.width || newReport.height !== shownReport.height;
    shownReport = newReport;
    if (image.getAttribute("src") !== url) image.src = url;
    if (resized) {
      view.scale = view.fit;  // another photo size: shown whole again
      layout();
    }
    render();
  }

  function setBusy(busy) {
    root.classList.toggle("shield-busy", busy);
  }

  update(imageUrl, report);
  layout();
  return {
    update, setBusy, state,
    destroy: () => {
      clearTimeout(changeTimer);
      resizes.disconnect();
      window.removeEventListener("resize", onWindowResize);
      root.remove();
    },
  };
}
