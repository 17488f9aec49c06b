// Telling images apart from other files, and naming protected files after what they now are.
(function (global) {
  'use strict';

  const IMAGE_EXTENSIONS = /\.(jpe?g|jfif|pjpeg|png|gif|webp|bmp|dib|tiff?|heic|heif|avif|svg|ico)$/i;
  const EXTENSION_FOR_TYPE = {
    'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'image/gif': 'gif',
    'image/bmp': 'bmp', 'image/tiff': 'tif', 'image/heic': 'heic', 'image/heif': 'heif', 'image/avif': 'avif',
  };
  const ACCEPTED_EXTENSIONS = { jpg: ['jpg', 'jpeg', 'jfif', 'jpe'], tif: ['tif', 'tiff'] };

  /** Quick, synchronous guess from the declared type and name. Unknown types get a look at the bytes. */
  function classify(blob) {
    const type = (blob.type || '').toLowerCase();
    const name = typeof blob.name === 'string' ? blob.name : '';
    if (type.startsWith('image/') || IMAGE_EXTENSIONS.test(name)) return 'image';
    if (!type || type === 'application/octet-stream' || type === 'binary/octet-stream') return 'unknown';
    return 'other';
  }

  function startsWith(bytes, signature, offset = 0) {
    return signature.every((value, i) => bytes[offset + i] === value);
  }

  const ascii = (text) => Array.from(text, (c) => c.charCodeAt(0));

  /** Image format from the first bytes, like the server's own sniffing; '' when not an image. */
  function sniffBytes(bytes) {
    if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'image/jpeg';
    if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
    if (startsWith(bytes, ascii('GIF8'))) return 'image/gif';
    if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'image/webp';
    if (startsWith(bytes, ascii('BM'))) return 'image/bmp';
    if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'image/tiff';
    if (startsWith(bytes, ascii('ftyp'), 4)) {
      const brand = String.fromCharCode(...bytes.slice(8, 12));
      if (/^avi[fs]$/.test(brand)) return 'image/avif';
      if (/^(hei[cxms]|hev[cx]|mif1|msf1)$/.test(brand)) return 'image/heic';
    }
    return '';
  }

  async function sniffBlob(blob) {
    return sniffBytes(new Uint8Array(await blob.slice(0, 32).arrayBuffer()));
  }

  /** Is this blob an image we must protect? Declared images always are; unknown ones if their bytes say so. */
  async function isImage(blob) {
    const kind = classify(blob);
    if (kind === 'image') return true;
    if (kind === 'other') return false;
    return (await sniffBlob(blob)) !== '';
  }

  /** `photo.heic` + image/jpeg -> `photo.jpg`; names that already fit the type are kept. */
  function protectedName(name, type) {
    const wanted = EXTENSION_FOR_TYPE[type];
    const base = name || 'photo';
    if (!wanted) return base;
    const match = /\.([a-z0-9]{1,5})$/i.exec(base);
    const current = match ? match[1].toLowerCase() : '';
    if (current === wanted || (ACCEPTED_EXTENSIONS[wanted] || []).includes(current)) return base;
    return (match ? base.slice(0, match.index) : base) + '.' + wanted;
  }

  global.PhotoShieldImageTypes = { classify, sniffBytes, sniffBlob, isImage, protectedName };
})(globalThis);
