// The review editor: a protected preview with every region outlined, where a person adds regions the
// detector missed (drag with mouse, pen or finger, or the keyboard) and unticks detections.
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
  detection: "Detected face, replaced (click to keep it as it is)",
  fixedDetection: "Detected face, replaced",
  keptDetection: "Detected face, kept as it is (click to replace it)",
  region: "Added region (arrows move, Shift+arrows resize, Delete removes)",
  working: "Protecting…",
};
const MIN_DRAG_PX = 4;  // on screen: a shorter drag is a click, not a region
const CHANGE_DELAY_MS = 500;  // keyboard moves are sent once the keys rest

const sameBox = (a, b) => a.every((value, i) => value === b[i]);

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
  let drag = null;

  const root = element("div", "shield-editor");
  const stage = element("div", "shield-editor-stage");
  const image = element("img");
  image.alt = "";
  image.draggable = false;
  const spinner = element("div", "shield-editor-spinner");
  spinner.setAttribute("role", "status");
  spinner.setAttribute("aria-label", words.working);
  const layer = element("div", "shield-editor-layer");
  stage.append(image, layer, spinner);
  const tools = element("div", "shield-editor-tools");
  const addButton = button(words.addRegion, "shield-editor-add");
  const undoButton = button(words.undo, "shield-editor-undo");
  const hint = element("p", "shield-editor-hint");
  hint.textContent = words.hint;
  if (allowAdd) tools.append(addButton);
  tools.append(undoButton);
  if (!allowAdd) stage.style.cursor = "default";
  root.append(stage, tools, hint);
  container.replaceChildren(root);

  function element(tag, className) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  function button(label, className) {
    const node = element("button", className);
    node.type = "button";
    node.textContent = label;
    return node;
  }

  const size = () => ({ width: shownReport.width, height: shownReport.height });

  function place(node, [x0, y0, x1, y1]) {
    const { width, height } = size();
    node.style.left = `${(100 * x0) / width}%`;
    node.style.top = `${(100 * y0) / height}%`;
    node.style.width = `${(100 * (x1 - x0)) / width}%`;
    node.style.height = `${(100 * (y1 - y0)) / height}%`;
  }

  function clampBox([x0, y0, x1, y1]) {
    const { width, height } = size();
    const left = Math.max(0, Math.min(Math.floor(Math.min(x0, x1)), width - 1));
    const top = Math.max(0, Math.min(Math.floor(Math.min(y0, y1)), height - 1));
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
      node.addEventListener("pointerdown", (event) => event.stopPropagation());
      if (allowUntick || kept) {
        node.addEventListener("click", (event) => { if (event.isTrusted) toggleKeep(detection.box); });
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
      node.addEventListener("pointerdown", (event) => { event.stopPropagation(); select(index); });
      node.addEventListener("focus", () => { if (selected !== index) select(index); });
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
    if (focused !== undefined) layer.querySelector(`[data-index="${focused}"]`)?.focus();
    undoButton.disabled = history.length === 0;
  }

  function select(index) {
    selected = index;
    render();
    layer.querySelector(`[data-index="${index}"]`)?.focus();
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
      root.focus();
      return;
    }
    if (!(event.key in moves)) return;
    event.preventDefault();
    const { width, height } = size();
    const step = Math.max(1, Math.round(Math.max(width, height) / 100));
    const [dx, dy] = moves[event.key].map((unit) => unit * step);
    const [x0, y0, x1, y1] = current.regions[index];
    if (changeTimer === null) remember();  // one undo step per burst of keys
    if (event.shiftKey) {
      current.regions[index] = clampBox([x0, y0, Math.max(x0 + 1, x1 + dx), Math.max(y0 + 1, y1 + dy)]);
    } else {
      const sx = Math.max(-x0, Math.min(dx, width - x1));
      const sy = Math.max(-y0, Math.min(dy, height - y1));
      current.regions[index] = [x0 + sx, y0 + sy, x1 + sx, y1 + sy];
    }
    changedSoon();
  }

  function toImage(event) {
    const rect = stage.getBoundingClientRect();
    const { width, height } = size();
    return [Math.max(0, Math.min(width, ((event.clientX - rect.left) * width) / rect.width)),
      Math.max(0, Math.min(height, ((event.clientY - rect.top) * height) / rect.height))];
  }

  stage.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || !event.isTrusted || !allowAdd) return;
    event.preventDefault();
    stage.setPointerCapture(event.pointerId);
    drag = { id: event.pointerId, start: toImage(event), x: event.clientX, y: event.clientY, box: null };
  });
  stage.addEventListener("pointermove", (event) => {
    if (!drag || event.pointerId !== drag.id) return;
    if (Math.hypot(event.clientX - drag.x, event.clientY - drag.y) < MIN_DRAG_PX) return;
    drag.box = clampBox([...drag.start, ...toImage(event)]);
    render();
  });
  const endDrag = (event, commit) => {
    if (!drag || event.pointerId !== drag.id) return;
    const box = commit && Math.hypot(event.clientX - drag.x, event.clientY - drag.y) >= MIN_DRAG_PX
      ? clampBox([...drag.start, ...toImage(event)]) : null;
    drag = null;
    if (box) addRegion(box); else render();
  };
  stage.addEventListener("pointerup", (event) => endDrag(event, event.isTrusted));
  stage.addEventListener("pointercancel", (event) => endDrag(event, false));

  addButton.addEventListener("click", (event) => {
    if (!event.isTrusted) return;
    const { width, height } = size();
    addRegion([width * 0.4, height * 0.4, width * 0.6, height * 0.6]);
    select(current.regions.length - 1);
  });
  undoButton.addEventListener("click", (event) => { if (event.isTrusted) undo(); });
  root.tabIndex = -1;
  root.addEventListener("keydown", (event) => {
    if (event.isTrusted && (event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undo();
    }
  });

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
    shownReport = newReport;
    image.src = url;
    render();
  }

  function setBusy(busy) {
    root.classList.toggle("shield-busy", busy);
  }

  update(imageUrl, report);
  return { update, setBusy, state, destroy: () => { clearTimeout(changeTimer); root.remove(); } };
}
