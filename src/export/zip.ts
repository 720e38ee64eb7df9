// A minimal ZIP writer for exports downloaded from the app: every file STORED (no compression — weights do not
// compress), CRC-32 per file, local headers + central directory + end record, UTF-8 names. ZIP64 is not written:
// archives over 4 GiB (or 65,535 files) are refused with a clear error instead of being written corrupt.
import type { ExportFile } from './types.ts';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const LIMIT = 0xffffffff;

/** DOS date/time of a Date (local fields, as unzip tools read them). */
function dosTime(d: Date): { time: number; date: number } {
  const year = Math.max(1980, d.getFullYear());
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

/** One .zip holding `files` under their relative paths (optionally inside a top folder). */
export function zipFiles(files: ExportFile[], opts: { folder?: string; date?: Date } = {}): Uint8Array {
  if (files.length > 0xffff) throw new Error(`zip: ${files.length} files; at most 65,535 without ZIP64`);
  const seen = new Set<string>();
  const enc = new TextEncoder();
  const { time, date } = dosTime(opts.date ?? new Date());
  const entries = files.map((f) => {
    const path = (opts.folder ? `${opts.folder}/${f.path}` : f.path);
    if (!path || path.startsWith('/') || path.split('/').some((p) => p === '..' || p === '')) throw new Error(`zip: bad file path '${path}'`);
    if (seen.has(path)) throw new Error(`zip: '${path}' appears twice`);
    seen.add(path);
    if (f.bytes.length >= LIMIT) throw new Error(`zip: '${path}' is ${f.bytes.length} bytes; files of 4 GiB and more need ZIP64 (download the folder instead)`);
    return { name: enc.encode(path), bytes: f.bytes, crc: crc32(f.bytes) };
  });
  const localSize = entries.reduce((s, e) => s + 30 + e.name.length + e.bytes.length, 0);
  const centralSize = entries.reduce((s, e) => s + 46 + e.name.length, 0);
  if (localSize + centralSize + 22 >= LIMIT) throw new Error(`zip: archive would be ${localSize + centralSize + 22} bytes; 4 GiB and more need ZIP64 (download the folder instead)`);
  const out = new Uint8Array(localSize + centralSize + 22);
  const v = new DataView(out.buffer);
  let p = 0;
  const offsets: number[] = [];
  for (const e of entries) {
    offsets.push(p);
    v.setUint32(p, 0x04034b50, true);
    v.setUint16(p + 4, 20, true); // version needed
    v.setUint16(p + 6, 0x0800, true); // UTF-8 names
    v.setUint16(p + 8, 0, true); // stored
    v.setUint16(p + 10, time, true);
    v.setUint16(p + 12, date, true);
    v.setUint32(p + 14, e.crc, true);
    v.setUint32(p + 18, e.bytes.length, true);
    v.setUint32(p + 22, e.bytes.length, true);
    v.setUint16(p + 26, e.name.length, true);
    v.setUint16(p + 28, 0, true);
    out.set(e.name, p + 30);
    out.set(e.bytes, p + 30 + e.name.length);
    p += 30 + e.name.length + e.bytes.length;
  }
  const cdStart = p;
  entries.forEach((e, i) => {
    v.setUint32(p, 0x02014b50, true);
    v.setUint16(p + 4, 20, true); // made by
    v.setUint16(p + 6, 20, true);
    v.setUint16(p + 8, 0x0800, true);
    v.setUint16(p + 10, 0, true);
    v.setUint16(p + 12, time, true);
    v.setUint16(p + 14, date, true);
    v.setUint32(p + 16, e.crc, true);
    v.setUint32(p + 20, e.bytes.length, true);
    v.setUint32(p + 24, e.bytes.length, true);
    v.setUint16(p + 28, e.name.length, true);
    // extra length, comment length, disk number, internal attributes: 0
    v.setUint32(p + 38, 0, true); // external attributes
    v.setUint32(p + 42, offsets[i]!, true);
    out.set(e.name, p + 46);
    p += 46 + e.name.length;
  });
  v.setUint32(p, 0x06054b50, true);
  v.setUint16(p + 8, entries.length, true);
  v.setUint16(p + 10, entries.length, true);
  v.setUint32(p + 12, p - cdStart, true);
  v.setUint32(p + 16, cdStart, true);
  return out;
}
