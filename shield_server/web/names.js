// Names of the page's downloads and zip entries, in the CLI's scheme (photo.protected.jpg, photo.protected-2.jpg,
// IMG_1.heic.protected.jpg), made from an upload's name that may be hostile. What comes out is always a plain
// base name: no folder of any platform, no "..", no control, bidi or other invisible characters, bounded length.

const INVISIBLE = /[\p{C}\p{Zl}\p{Zp}]/gu;  // controls, format (RLO, LRM, zero-width...), private use, unassigned
const RESERVED = /[<>:"|?*]/g;  // not allowed in a Windows name (":" also picks a drive or a stream)
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com\d|lpt\d|conin\$|conout\$)$/i;
const MAX_STEM_BYTES = 120;  // UTF-8; the whole name stays far under the 255 bytes file systems allow
const encoder = new TextEncoder();

function trimDotsAndSpaces(name) {
  return name.replace(/^[\s.]+|[\s.]+$/g, "");
}

function bounded(stem) {
  let out = "";
  for (const character of stem) {
    if (encoder.encode(out + character).length > MAX_STEM_BYTES) break;
    out += character;
  }
  return trimDotsAndSpaces(out);
}

/** The upload's name as a plain base name (its extension kept), or "" when nothing usable is left. */
export function plainName(name) {
  const last = String(name).split(/[/\\]/).pop();  // the last part of a path of any platform
  const cleaned = last.normalize("NFC").replace(INVISIBLE, "").replace(RESERVED, "_").replace(/\.{2,}/g, ".");
  return trimDotsAndSpaces(cleaned);
}

function safeStem(stem, fallback) {
  const cut = bounded(stem);
  if (!cut) return fallback;
  return WINDOWS_DEVICE.test(cut.replace(/\..*$/, "")) ? `_${cut}` : cut;
}

function stemOf(name) {
  return plainName(name).replace(/\.[^.]*$/, "");
}

/** The one download's name: photo.jpg -> photo.protected.jpg (the format the server wrote decides the extension). */
export function protectedName(name, extension, fallback = "photo") {
  return `${safeStem(stemOf(name), fallback)}.protected.${extension}`;
}

/** Names for several downloads at once (the zip), unique even on a case-blind file system, as the CLI
 *  names a batch: IMG_1.jpg and IMG_1.heic keep their whole names (IMG_1.jpg.protected.jpg,
 *  IMG_1.heic.protected.jpg); a name still taken gets -2, -3, ... (a.protected.png, a.protected-2.png).
 *  entries: [{ name, extension, fallback }] -> [name] in the same order. */
export function protectedNames(entries) {
  const key = (stem) => stem.toLowerCase();
  const stems = entries.map(({ name, fallback }) => safeStem(stemOf(name), fallback));
  const counts = new Map();
  stems.forEach((stem) => counts.set(key(stem), (counts.get(key(stem)) || 0) + 1));
  const extensions = new Map();
  entries.forEach(({ name }, i) => {
    const seen = extensions.get(key(stems[i])) || new Set();
    seen.add(plainName(name).toLowerCase());
    extensions.set(key(stems[i]), seen);
  });
  const wanted = stems.map((stem, i) => (counts.get(key(stem)) > 1 && extensions.get(key(stem)).size > 1
    ? safeStem(plainName(entries[i].name), entries[i].fallback) : stem));
  const planned = new Set(wanted.map((stem, i) => key(`${stem}.protected.${entries[i].extension}`)));
  const used = new Set();
  return wanted.map((stem, i) => {
    const extension = entries[i].extension;
    let name = `${stem}.protected.${extension}`;
    for (let n = 2; used.has(key(name)) || (n > 2 && planned.has(key(name))); n++) {
      name = `${stem}.protected-${n}.${extension}`;
    }
    used.add(key(name));
    return name;
  });
}
