// Bounds checks on the pages of a Parquet file before hyparquet decodes them (used by parquet.ts on import).
// hyparquet trusts a page's counts: an RLE run in a level or dictionary-index stream is written out `count` times
// whatever the page's value count, so one corrupt run header makes it fill an array of up to 2^31 entries (seconds of
// CPU and gigabytes of memory; found by the corruption fuzz in tests/unit/parquet.test.ts). This walks every page
// of the columns to be read the way hyparquet's column reader does (page headers parsed by hyparquet's own
// parquetHeader; levels and dictionary indices as RLE/bit-packed hybrid streams) without materialising anything,
// and refuses a chunk whose values exceed what its rows allow, a page whose count exceeds its chunk's, or a run
// longer than the values left in its page. Page bodies are decompressed through the caller's bounded decompressor;
// snappyDecompress below is that decompressor for SNAPPY (hyparquet's own trusts a corrupt literal length).
import type { AsyncBuffer, FileMetaData, PageHeader } from 'hyparquet';
import { parquetHeader } from 'hyparquet/src/column.js';
import { getMaxDefinitionLevel, getMaxRepetitionLevel, getSchemaPath } from 'hyparquet/src/schema.js';

/** Decompresses one page body to `size` bytes (must itself refuse impossible sizes). */
export type PageDecompressor = (bytes: Uint8Array, size: number, codec: string) => Uint8Array;

export interface PageLimits {
  /** A column chunk may hold at most this many values (levels included) per row of its row group. */
  maxValuesPerRow: number;
  /** ... and at most this many in all. */
  maxValuesPerChunk: number;
}

export const DEFAULT_PAGE_LIMITS: PageLimits = { maxValuesPerRow: 4096, maxValuesPerChunk: 1 << 26 };

interface Stream {
  view: DataView;
  at: number;
  end: number;
}

const bitWidth = (v: number): number => 32 - Math.clz32(v);

/** hyparquet's varint (32-bit arithmetic, so the same header values), bounded by the stream's end. */
function varint(s: Stream, where: string): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (s.at >= s.end) throw new Error(`${where}: a run header runs past the end of its stream`);
    const byte = s.view.getUint8(s.at++);
    result |= (byte & 0x7f) << shift;
    if (!(byte & 0x80)) return result;
    shift += 7;
    if (shift > 63) throw new Error(`${where}: a run header is longer than 10 bytes`);
  }
}

/**
 * Walks an RLE/bit-packed hybrid stream of `n` values of `width` bits; refuses runs past `n`. Returns how many of
 * the n values equal `target` (for definition levels: the non-null values that follow in the page).
 */
function checkHybrid(s: Stream, width: number, n: number, where: string, target = -1): number {
  let seen = 0;
  let hits = 0;
  const bytes = (width + 7) >> 3;
  while (seen < n) {
    const header = varint(s, where);
    if (header & 1) {
      // Bit-packed: groups of 8 values in `width` bytes each; hyparquet caps at n, and reads one byte up front
      // when there is one (at width 0 too, where the values take no bytes).
      const groups = header >>> 1;
      const need = groups * width;
      if (s.at + need > s.end) throw new Error(`${where}: the stream runs past the end of its page`);
      if (target >= 0) {
        const count = Math.min(groups * 8, n - seen);
        for (let i = 0; i < count; i++) {
          let v = 0;
          for (let b = 0; b < width; b++) {
            const bit = i * width + b;
            v |= ((s.view.getUint8(s.at + (bit >> 3)) >> (bit & 7)) & 1) << b;
          }
          if (v === target) hits++;
        }
      }
      seen += groups * 8;
      s.at += need > 0 ? need : s.at < s.end ? 1 : 0;
    } else {
      const count = header >>> 1;
      if (count > n - seen) throw new Error(`${where}: a run of ${count} values where only ${n - seen} remain in the page (corrupt page)`);
      if (s.at + bytes > s.end) throw new Error(`${where}: the stream runs past the end of its page`);
      let v = 0;
      for (let i = 0; i < bytes; i++) v |= s.view.getUint8(s.at + i) << (8 * i);
      if (v === target) hits += count;
      seen += count;
      s.at += bytes;
    }
  }
  return hits;
}

function stream(bytes: Uint8Array, at = 0, end = bytes.length): Stream {
  return { view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), at, end };
}

/**
 * Checks every page of the columns in `columns` (top-level names) of every row group. Throws an Error naming the
 * column, row group and what is wrong; returns normally when hyparquet can decode the pages within bounds.
 */
export async function checkColumnPages(
  file: AsyncBuffer, meta: FileMetaData, columns: string[], decompress: PageDecompressor, limits: PageLimits = DEFAULT_PAGE_LIMITS,
): Promise<void> {
  for (const [g, group] of meta.row_groups.entries()) {
    const rows = Number(group.num_rows);
    for (const chunk of group.columns) {
      const md = chunk.meta_data;
      if (!md || !columns.includes(md.path_in_schema[0] ?? '')) continue;
      const name = md.path_in_schema.join('.');
      const where = `column "${name}", row group ${g}`;
      const total = Number(md.num_values);
      if (!Number.isSafeInteger(total) || total < 0 || total > Math.min(limits.maxValuesPerChunk, Math.max(1, rows) * limits.maxValuesPerRow)) {
        throw new Error(`${where}: declares ${String(md.num_values)} values for ${rows} rows (over the limit)`);
      }
      const start = Number(md.dictionary_page_offset || md.data_page_offset);
      const end = start + Number(md.total_compressed_size);
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 4 || end <= start || end > file.byteLength - 8) {
        throw new Error(`${where}: its byte range ${start}–${end} lies outside the file's data (${file.byteLength} bytes)`);
      }
      const schemaPath = getSchemaPath(meta.schema, md.path_in_schema);
      const maxRep = getMaxRepetitionLevel(schemaPath);
      const maxDef = getMaxDefinitionLevel(schemaPath);
      const bytes = new Uint8Array(await file.slice(start, end));
      const reader = { view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset: 0 };
      let seen = 0;
      let page = 0;
      while (reader.offset < bytes.length - 1) {
        const at = `${where}, page ${page++}`;
        let header: PageHeader;
        try {
          header = parquetHeader(reader);
        } catch (e) {
          throw new Error(`${at}: unreadable page header (${(e as Error).message})`);
        }
        const size = header.compressed_page_size;
        const usize = header.uncompressed_page_size;
        if (!Number.isInteger(size) || size < 0 || reader.offset + size > bytes.length || !Number.isInteger(usize) || usize < 0) {
          throw new Error(`${at}: page sizes ${size}/${usize} do not fit the column chunk`);
        }
        const body = bytes.subarray(reader.offset, reader.offset + size);
        reader.offset += size;
        if (header.type === 'DICTIONARY_PAGE') {
          const n = header.dictionary_page_header?.num_values ?? 0;
          if (!Number.isInteger(n) || n < 0 || n > usize) throw new Error(`${at}: a dictionary of ${n} values in ${usize} bytes`);
          continue;
        }
        const v1 = header.type === 'DATA_PAGE' ? header.data_page_header : undefined;
        const v2 = header.type === 'DATA_PAGE_V2' ? header.data_page_header_v2 : undefined;
        if (!v1 && !v2) continue; // index pages: hyparquet skips them
        const n = (v1 ?? v2)!.num_values;
        if (!Number.isInteger(n) || n < 0 || seen + n > total) {
          throw new Error(`${at}: ${n} values after ${seen}, but the chunk holds ${total} (corrupt page header)`);
        }
        seen += n;
        const encoding = (v1 ?? v2)!.encoding;
        const dictionary = encoding === 'RLE_DICTIONARY' || encoding === 'PLAIN_DICTIONARY';
        if (v1) {
          const data = decompress(body, usize, md.codec);
          const s = stream(data);
          let values = n;
          for (const [max, what] of [[maxRep, 'repetition levels'], [maxDef, 'definition levels']] as const) {
            if (!max) continue;
            if (s.at + 4 > s.end) throw new Error(`${at}: ${what} truncated`);
            const len = s.view.getUint32(s.at, true);
            const from = s.at + 4;
            if (from + len > s.end) throw new Error(`${at}: ${what} of ${len} bytes run past the page`);
            const hits = checkHybrid({ view: s.view, at: from, end: from + len }, bitWidth(max), n, `${at}, ${what}`, max);
            if (what === 'definition levels') values = hits;
            s.at = from + len;
          }
          if (dictionary || encoding === 'RLE') {
            const width = md.type === 'BOOLEAN' ? 1 : s.at < s.end ? s.view.getUint8(s.at++) : 0;
            if (md.type === 'BOOLEAN') s.at += 4; // hyparquet reads a length prefix for boolean RLE
            if (width) checkHybrid(s, width, values, `${at}, values`);
          }
        } else {
          const h = v2!;
          const repLen = h.repetition_levels_byte_length;
          const defLen = h.definition_levels_byte_length;
          if (!Number.isInteger(repLen) || !Number.isInteger(defLen) || repLen < 0 || defLen < 0 || repLen + defLen > body.length || h.num_nulls < 0 || h.num_nulls > n) {
            throw new Error(`${at}: level lengths ${repLen}/${defLen} do not fit the page`);
          }
          if (maxRep) checkHybrid(stream(body, 0, repLen), bitWidth(maxRep), n, `${at}, repetition levels`);
          if (maxDef) checkHybrid(stream(body, repLen, repLen + defLen), bitWidth(maxDef), n, `${at}, definition levels`);
          if (dictionary || encoding === 'RLE') {
            const rest = body.subarray(repLen + defLen);
            const data = h.is_compressed === false ? rest : decompress(rest, usize - repLen - defLen, md.codec);
            const s = stream(data);
            if (md.type === 'BOOLEAN') s.at += 4; // a length prefix, as hyparquet reads it
            const width = md.type === 'BOOLEAN' ? 1 : s.at < s.end ? s.view.getUint8(s.at++) : 0;
            checkHybrid(s, width, n - h.num_nulls, `${at}, values`); // hyparquet walks v2 indices even at width 0
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------ bounded snappy

/**
 * Decompresses a raw snappy block (the format Parquet's SNAPPY codec uses) into exactly `size` bytes, checking
 * every element against the input and output bounds. Written here because hyparquet's decoder trusts a literal's
 * 4-byte length (a negative one walks back through the input for seconds); this one is linear in its input.
 * Format (google/snappy format_description.txt): varint uncompressed length, then elements whose tag's low two
 * bits say literal (length in the tag or in 1–4 following bytes) or copy (1-, 2- or 4-byte offset back).
 */
export function snappyDecompress(input: Uint8Array, size: number): Uint8Array {
  const fail = (why: string): never => { throw new Error(`corrupt SNAPPY page: ${why}`); };
  // A snappy element of n ≥ 2 input bytes emits at most 64 output bytes (a 3-byte copy): ratio < 22.
  if (!Number.isInteger(size) || size < 0 || size > 22 * input.length + 64) fail(`declares ${size} bytes from ${input.length} compressed bytes`);
  let pos = 0;
  let declared = 0;
  for (let shift = 0; ; shift += 7) {
    if (pos >= input.length || shift > 28) fail('bad length header');
    const b = input[pos++]!;
    declared += (b & 0x7f) * 2 ** shift;
    if (!(b & 0x80)) break;
  }
  if (declared !== size) fail(`holds ${declared} bytes, the page header says ${size}`);
  const out = new Uint8Array(size);
  let o = 0;
  while (pos < input.length) {
    const tag = input[pos++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let len = (tag >>> 2) + 1;
      if (len > 60) {
        const nb = len - 60;
        if (pos + nb > input.length) fail('literal length runs past the input');
        len = 0;
        for (let i = 0; i < nb; i++) len += input[pos + i]! * 2 ** (8 * i);
        len += 1;
        pos += nb;
      }
      if (pos + len > input.length || o + len > size) fail('literal runs past the input or output');
      out.set(input.subarray(pos, pos + len), o);
      pos += len;
      o += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      if (pos + 1 > input.length) fail('copy runs past the input');
      len = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | input[pos++]!;
    } else {
      const nb = kind === 2 ? 2 : 4;
      if (pos + nb > input.length) fail('copy runs past the input');
      len = (tag >>> 2) + 1;
      offset = 0;
      for (let i = 0; i < nb; i++) offset += input[pos + i]! * 2 ** (8 * i);
      pos += nb;
    }
    if (offset === 0 || offset > o || o + len > size) fail(`copy of ${len} bytes from ${offset} back at output byte ${o}`);
    for (let i = 0; i < len; i++, o++) out[o] = out[o - offset]!; // overlapping copies repeat bytes
  }
  if (o !== size) fail(`ends after ${o} of ${size} bytes`);
  return out;
}
