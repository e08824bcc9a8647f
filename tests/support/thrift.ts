/**
 * A Thrift compact-protocol encoder for the structs `readThriftStruct` (src/data/parquet.ts)
 * decodes: the parquet tests decode a footer or a page header, change a field, and encode it
 * back.
 *
 * @module
 */

import { readThriftStruct, type ThriftStruct, type ThriftValue } from "../../src/data/parquet.ts";

function varint(out: number[], v: bigint): void {
  let x = v;
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
}

function zigzag(out: number[], v: bigint): void {
  varint(out, v >= 0n ? v << 1n : ((-v) << 1n) - 1n);
}

function elemType(v: ThriftValue): number {
  if (typeof v === "boolean") return 1;
  if (typeof v === "bigint") return 6;
  if (typeof v === "number") return 5;
  if (v instanceof Uint8Array) return 8;
  if (Array.isArray(v)) return 9;
  return 12;
}

function value(out: number[], type: number, v: ThriftValue): void {
  switch (type) {
    case 1:
    case 2:
      return; // the value is in the field header
    case 3:
      out.push(Number(v) & 0xff);
      return;
    case 4:
    case 5:
      zigzag(out, BigInt(v as number));
      return;
    case 6:
      zigzag(out, BigInt(v as bigint));
      return;
    case 7:
      out.push(0, 0, 0, 0, 0, 0, 0, 0);
      return;
    case 8: {
      const b = v as Uint8Array;
      varint(out, BigInt(b.length));
      out.push(...b);
      return;
    }
    case 9:
    case 10: {
      const list = v as ThriftValue[];
      const et = list.length ? elemType(list[0]) : 5;
      if (list.length < 15) out.push((list.length << 4) | et);
      else {
        out.push(0xf0 | et);
        varint(out, BigInt(list.length));
      }
      for (const x of list) {
        if (et === 1) out.push(x ? 1 : 2);
        else value(out, et, x);
      }
      return;
    }
    case 12:
      struct(out, v as ThriftStruct);
      return;
    default:
      throw new Error(`cannot encode type ${type}`);
  }
}

function struct(out: number[], s: ThriftStruct): void {
  let last = 0;
  for (const id of [...s.keys()].sort((a, b) => a - b)) {
    const { type, value: v } = s.get(id)!;
    const t = type === 1 || type === 2 ? (v ? 1 : 2) : type;
    const delta = id - last;
    if (delta > 0 && delta <= 15) out.push((delta << 4) | t);
    else {
      out.push(t);
      zigzag(out, BigInt(id));
    }
    value(out, t, v);
    last = id;
  }
  out.push(0);
}

/**
 * Encodes a struct in the Thrift compact protocol.
 *
 * @param s The struct (field id → type and value).
 * @returns Its bytes.
 */
export function encodeThriftStruct(s: ThriftStruct): Uint8Array {
  const out: number[] = [];
  struct(out, s);
  return Uint8Array.from(out);
}

/**
 * A parquet file's footer, decoded, and where it starts.
 *
 * @param bytes The file.
 * @returns The footer's struct and its offset.
 */
export function parquetFooter(bytes: Uint8Array): { struct: ThriftStruct; start: number } {
  const n = bytes.length;
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(n - 8, true);
  return { struct: readThriftStruct(bytes, n - 8 - len, n - 8).struct, start: n - 8 - len };
}

/**
 * A parquet file with its footer replaced (length and magic rewritten).
 *
 * @param bytes The file.
 * @param start Where its footer starts.
 * @param footer The new footer's bytes.
 * @returns The new file.
 */
export function withParquetFooter(
  bytes: Uint8Array,
  start: number,
  footer: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(start + footer.length + 8);
  out.set(bytes.subarray(0, start));
  out.set(footer, start);
  new DataView(out.buffer).setUint32(start + footer.length, footer.length, true);
  out.set([0x50, 0x41, 0x52, 0x31], start + footer.length + 4);
  return out;
}
