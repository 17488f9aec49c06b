// "Download all": a ZIP archive that stores (never recompresses) the server's protected files byte for byte.
// STORE only, no ZIP64: the page refuses archives of 4 GB or more.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function dosDateTime(date) {
  const time = (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1);
  const day = ((date.getFullYear() - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate();
  return [time, day];
}

function record(size, fields) {
  const view = new DataView(new ArrayBuffer(size));
  for (const [at, value, width] of fields) {
    if (width === 4) view.setUint32(at, value, true); else view.setUint16(at, value, true);
  }
  return view;
}

/** files: [{ name, blob }] -> a Blob of type application/zip. Names must be unique. */
export async function storeZip(files, now = new Date()) {
  if (files.length > 0xffff) throw new Error("too many files for one archive");
  const encoder = new TextEncoder();
  const [time, day] = dosDateTime(now);
  const parts = [];
  const central = [];
  let offset = 0;
  for (const { name, blob } of files) {
    const data = new Uint8Array(await blob.arrayBuffer());
    const nameBytes = encoder.encode(name);
    const crc = crc32(data);
    // signature, version 2.0, flags (bit 11: UTF-8 names), method 0 (store), time, date, crc, sizes, name length
    const local = record(30, [[0, 0x04034b50, 4], [4, 20, 2], [6, 0x0800, 2], [8, 0, 2], [10, time, 2],
      [12, day, 2], [14, crc, 4], [18, data.length, 4], [22, data.length, 4], [26, nameBytes.length, 2], [28, 0, 2]]);
    const entry = record(46, [[0, 0x02014b50, 4], [4, 20, 2], [6, 20, 2], [8, 0x0800, 2], [10, 0, 2], [12, time, 2], [14, day, 2],
      [16, crc, 4], [20, data.length, 4], [24, data.length, 4], [28, nameBytes.length, 2], [30, 0, 2],
      [32, 0, 2], [34, 0, 2], [36, 0, 2], [38, 0, 4], [42, offset, 4]]);
    parts.push(local, nameBytes, data);
    central.push(entry, nameBytes);
    offset += 30 + nameBytes.length + data.length;
    if (offset >= 0xffffffff) throw new Error("too large for one archive");
  }
  const centralSize = central.reduce((sum, part) => sum + part.byteLength, 0);
  const end = record(22, [[0, 0x06054b50, 4], [4, 0, 2], [6, 0, 2], [8, files.length, 2], [10, files.length, 2],
    [12, centralSize, 4], [16, offset, 4], [20, 0, 2]]);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}
