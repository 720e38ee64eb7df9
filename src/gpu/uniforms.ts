// Uniform structs declared once in TS: the WGSL `struct` text and the byte packing come from the same field
// list, so a launcher and its shader cannot disagree on the layout.
export type ScalarType = 'u32' | 'i32' | 'f32';

/** A value for every field of a struct. */
export type UniformValues<F extends Record<string, ScalarType>> = { [K in keyof F]: number };

export interface UniformStruct<F extends Record<string, ScalarType>> {
  name: string;
  fields: F;
  /** WGSL declaration, to be prepended to a kernel's source. */
  wgsl: string;
  /** Bytes, rounded up to 16 (uniform buffer granularity). */
  size: number;
  pack(values: UniformValues<F>): ArrayBuffer;
}

export function uniformStruct<F extends Record<string, ScalarType>>(name: string, fields: F): UniformStruct<F> {
  const entries = Object.entries(fields) as [keyof F & string, ScalarType][];
  if (entries.length === 0) throw new Error(`uniform struct ${name}: no fields`);
  const wgsl = `struct ${name} {\n${entries.map(([k, t]) => `  ${k}: ${t},`).join('\n')}\n};\n`;
  const size = Math.ceil((entries.length * 4) / 16) * 16;
  return {
    name,
    fields,
    wgsl,
    size,
    pack(values) {
      const buf = new ArrayBuffer(size);
      const view = new DataView(buf);
      entries.forEach(([k, t], i) => {
        const v = values[k];
        if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`uniform ${name}.${k}: expected a number, got ${v}`);
        if (t === 'f32') view.setFloat32(i * 4, v, true);
        else {
          const lo = t === 'u32' ? 0 : -(2 ** 31);
          const hi = t === 'u32' ? 2 ** 32 - 1 : 2 ** 31 - 1;
          if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`uniform ${name}.${k}: ${v} is not a valid ${t}`);
          if (t === 'u32') view.setUint32(i * 4, v, true);
          else view.setInt32(i * 4, v, true);
        }
      });
      return buf;
    },
  };
}
