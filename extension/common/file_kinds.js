// What kind of file this is: 'image' (the server protects it), 'video' (nothing can protect it yet) or
// 'other' (documents, audio, archives...). The bytes decide first; the declared type and name only when
// the bytes say nothing, so a video named photo.jpg is still a video.
(function (global) {
  'use strict';

  const VIDEO_EXTENSIONS = /\.(mp4|m4v|mov|qt|webm|mkv|avi|wmv|asf|flv|f4v|3gp|3g2|mpe?g|mpg4|m2ts|mts|ts|ogv|vob|mxf)$/i;
  // ISO base media brands that are sound only; every other non-image brand may carry pictures.
  const AUDIO_BRANDS = /^(M4A |M4B |M4P |F4A |F4B |mp4a|dash)$/;

  function startsWith(bytes, signature, offset = 0) {
    return signature.every((value, i) => bytes[offset + i] === value);
  }

  const ascii = (text) => Array.from(text, (c) => c.charCodeAt(0));

  function contains(bytes, text, limit = 256) {
    const needle = ascii(text);
    const end = Math.min(bytes.length, limit) - needle.length;
    for (let i = 0; i <= end; i++) if (startsWith(bytes, needle, i)) return true;
    return false;
  }

  /** Video container from the first bytes; '' when the bytes are not a video. */
  function sniffVideo(bytes) {
    if (startsWith(bytes, ascii('ftyp'), 4)) {
      const brand = String.fromCharCode(...bytes.slice(8, 12));
      return AUDIO_BRANDS.test(brand) ? '' : (brand === 'qt  ' ? 'video/quicktime' : 'video/mp4');
    }
    // QuickTime files that start with another top-level atom.
    if (['moov', 'mdat', 'wide', 'free', 'skip', 'pnot'].some((atom) => startsWith(bytes, ascii(atom), 4)) &&
        contains(bytes, 'moov', 64)) return 'video/quicktime';
    if (startsWith(bytes, [0x1a, 0x45, 0xdf, 0xa3])) return contains(bytes, 'webm', 64) ? 'video/webm' : 'video/x-matroska';
    if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('AVI '), 8)) return 'video/x-msvideo';
    if (startsWith(bytes, [0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11])) return 'video/x-ms-wmv';
    if (startsWith(bytes, ascii('FLV')) && bytes[3] === 1) return 'video/x-flv';
    if (startsWith(bytes, [0x00, 0x00, 0x01, 0xba]) || startsWith(bytes, [0x00, 0x00, 0x01, 0xb3])) return 'video/mpeg';
    if (bytes.length > 376 && bytes[0] === 0x47 && bytes[188] === 0x47 && bytes[376] === 0x47) return 'video/mp2t';
    if (startsWith(bytes, ascii('OggS')) && contains(bytes, 'theora', 128)) return 'video/ogg';
    return '';
  }

  /** 'image', 'video' or 'other' from the first bytes (64 KiB is plenty), the declared type and the name. */
  function kindOf(head, mime, name) {
    const bytes = head instanceof Uint8Array ? head : new Uint8Array(head || []);
    if (PhotoShieldImageTypes.sniffBytes(bytes)) return 'image';
    if (sniffVideo(bytes)) return 'video';
    const type = String(mime || '').toLowerCase();
    const fileName = String(name || '');
    if (type.startsWith('video/') || VIDEO_EXTENSIONS.test(fileName)) return 'video';
    if (PhotoShieldImageTypes.classify({ type, name: fileName }) === 'image') return 'image';
    return 'other';
  }

  global.PhotoShieldFileKinds = { kindOf, sniffVideo, HEAD_BYTES: 65536 };
})(globalThis);
