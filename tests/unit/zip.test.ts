// The export zip is checked by real readers: Info-ZIP's `unzip -t` (CRC of every member) and Python's zipfile.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32, zipFiles } from '../../src/export/zip.ts';

const enc = (s: string) => new TextEncoder().encode(s);

describe('zip', () => {
  it('crc32 of known strings', () => {
    expect(crc32(enc(''))).toBe(0);
    expect(crc32(enc('123456789'))).toBe(0xcbf43926);
  });

  it('real readers list and verify every member byte for byte', () => {
    const big = new Uint8Array(300_001);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    const files = [
      { path: 'config.json', bytes: enc('{"a": 1}\n') },
      { path: 'onnx/model.onnx', bytes: big },
      { path: 'empty.txt', bytes: new Uint8Array(0) },
      { path: 'naïve/ünïcode.txt', bytes: enc('héllo') },
    ];
    const dir = mkdtempSync(join(tmpdir(), 'zip-'));
    const zip = join(dir, 'x.zip');
    writeFileSync(zip, zipFiles(files, { folder: 'model' }));
    expect(execFileSync('unzip', ['-t', zip], { encoding: 'utf8' })).toMatch(/No errors detected/);
    const py = `import zipfile,sys,json,hashlib
z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None
print(json.dumps({i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()}))`;
    const got = JSON.parse(execFileSync('python3', ['-c', py, zip], { encoding: 'utf8' })) as Record<string, string>;
    expect(got).toEqual(Object.fromEntries(files.map((f) => [`model/${f.path}`, createHash('sha256').update(f.bytes).digest('hex')])));
  });

  it('refuses bad or duplicate paths', () => {
    const b = new Uint8Array(1);
    expect(() => zipFiles([{ path: '../x', bytes: b }])).toThrow(/bad file path/);
    expect(() => zipFiles([{ path: '/x', bytes: b }])).toThrow(/bad file path/);
    expect(() => zipFiles([{ path: 'a', bytes: b }, { path: 'a', bytes: b }])).toThrow(/twice/);
  });
});
