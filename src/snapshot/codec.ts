/**
 * A codec for a graph of TypeScript objects: plain objects, arrays, Maps, Sets, typed arrays and
 * instances of registered classes, with shared references and cycles kept. Instances come back
 * with their class's prototype and their own fields, without running a constructor. Functions
 * are not data: one met on the way is an error naming where it sits, unless the caller's
 * `replace` hook says what to do with the field.
 */

/** A field the hook leaves out. */
export const SKIP: unique symbol = Symbol("skip");

export interface EncodeOptions {
  /** Registered classes by name: instances of others are an error. */
  readonly classes: ReadonlyMap<string, abstract new (...args: never[]) => unknown>;
  /** Called for every field of every instance and plain object: the value to keep, or SKIP. */
  readonly replace?: (holder: object, key: string, value: unknown) => unknown;
}

/** The encoded graph: a JSON-able table and the typed arrays' bytes. */
export interface EncodedGraph {
  readonly json: string;
  readonly blob: Uint8Array;
}

type Encoded = number | string | boolean | null | { readonly $: string; readonly v?: string } | { readonly "@": number };
type Entry =
  | { t: "O"; f: Record<string, Encoded> }
  /** `v` holds runs of holes as { $: "_", v: count }. */
  | { t: "A"; n: number; v: Encoded[] }
  | { t: "M"; v: [Encoded, Encoded][] }
  | { t: "S"; v: Encoded[] }
  | { t: "C"; c: string; f: Record<string, Encoded> }
  | { t: "T"; c: string; o: number; n: number };

const TYPED = {
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array,
} as const;
type TypedName = keyof typeof TYPED;
type Typed = InstanceType<(typeof TYPED)[TypedName]>;

/** A graph that cannot be encoded: what, and where (the path of fields from the root). */
export class GraphError extends Error {}

/** Encodes the graph reachable from `root`. */
export function encodeGraph(root: object, o: EncodeOptions): EncodedGraph {
  const nameOf = new Map<object, string>();
  for (const [name, cls] of o.classes) nameOf.set(cls.prototype as object, name);
  const ids = new Map<object, number>();
  const table: Entry[] = [];
  const chunks: Uint8Array[] = [];
  let blobBytes = 0;
  // an explicit stack: graphs here are deep (B-tree nodes, anon_vma chains) and wide
  const work: { obj: object; id: number; path: string }[] = [];

  const ref = (v: object, path: string): Encoded => {
    let id = ids.get(v);
    if (id === undefined) {
      id = table.length;
      ids.set(v, id);
      table.push(null as unknown as Entry);
      work.push({ obj: v, id, path });
    }
    return { "@": id };
  };
  const value = (v: unknown, path: string): Encoded => {
    switch (typeof v) {
      case "number":
        if (Number.isNaN(v)) return { $: "NaN" };
        if (v === Infinity) return { $: "+Inf" };
        if (v === -Infinity) return { $: "-Inf" };
        if (Object.is(v, -0)) return { $: "-0" };
        return v;
      case "string": case "boolean": return v;
      case "undefined": return { $: "u" };
      case "bigint": return { $: "n", v: v.toString() };
      case "object": return v === null ? null : ref(v, path);
      default: throw new GraphError(`${path}: a ${typeof v} is not data`);
    }
  };
  const fields = (obj: object, path: string): Record<string, Encoded> => {
    const f: Record<string, Encoded> = {};
    for (const key of Object.keys(obj)) {
      let v: unknown = (obj as Record<string, unknown>)[key];
      if (o.replace) {
        v = o.replace(obj, key, v);
        if (v === SKIP) continue;
      }
      f[key] = value(v, `${path}.${key}`);
    }
    return f;
  };

  value(root, "root");
  while (work.length > 0) {
    const { obj, id, path } = work.pop()!;
    let e: Entry;
    if (Array.isArray(obj)) {
      // rings and tables are mostly empty: a run of holes is one entry
      const v: Encoded[] = [];
      for (let i = 0; i < obj.length;) {
        if (!(i in obj)) {
          let j = i + 1;
          while (j < obj.length && !(j in obj)) j++;
          v.push({ $: "_", v: String(j - i) });
          i = j;
        } else {
          v.push(value(obj[i], `${path}[${i}]`));
          i++;
        }
      }
      e = { t: "A", n: obj.length, v };
    } else if (obj instanceof Map) {
      const v: [Encoded, Encoded][] = [];
      let i = 0;
      for (const [k, x] of obj) { v.push([value(k, `${path}<key ${i}>`), value(x, `${path}<${String(k)}>`)]); i++; }
      e = { t: "M", v };
    } else if (obj instanceof Set) {
      const v: Encoded[] = [];
      let i = 0;
      for (const x of obj) v.push(value(x, `${path}{${i++}}`));
      e = { t: "S", v };
    } else if (ArrayBuffer.isView(obj) && !(obj instanceof DataView)) {
      const c = obj.constructor.name as TypedName;
      if (!(c in TYPED)) throw new GraphError(`${path}: a ${c} is not data`);
      const t = obj as Typed;
      const bytes = new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
      // aligned for every element size, so decoding can view the bytes in place
      const pad = (8 - (blobBytes % 8)) % 8;
      if (pad) { chunks.push(new Uint8Array(pad)); blobBytes += pad; }
      chunks.push(bytes.slice());
      e = { t: "T", c, o: blobBytes, n: t.length };
      blobBytes += bytes.byteLength;
    } else {
      const proto = Object.getPrototypeOf(obj) as object | null;
      if (proto === Object.prototype || proto === null) e = { t: "O", f: fields(obj, path) };
      else {
        const c = nameOf.get(proto);
        if (c === undefined) throw new GraphError(`${path}: an instance of ${(obj.constructor as { name?: string }).name ?? "an unknown class"} is not registered`);
        e = { t: "C", c, f: fields(obj, path) };
      }
    }
    table[id] = e;
  }
  const blob = new Uint8Array(blobBytes);
  let at = 0;
  for (const c of chunks) { blob.set(c, at); at += c.byteLength; }
  return { json: JSON.stringify(table), blob };
}

/** Decodes what encodeGraph() made; returns the root. */
export function decodeGraph(g: EncodedGraph, classes: ReadonlyMap<string, abstract new (...args: never[]) => unknown>): unknown {
  const table = JSON.parse(g.json) as Entry[];
  const objs: unknown[] = new Array(table.length);
  // first every object (so references can be made), then their contents
  table.forEach((e, i) => {
    switch (e.t) {
      case "O": objs[i] = {}; break;
      case "A": objs[i] = new Array(e.n); break;
      case "M": objs[i] = new Map(); break;
      case "S": objs[i] = new Set(); break;
      case "C": {
        const cls = classes.get(e.c);
        if (!cls) throw new GraphError(`the snapshot holds a ${e.c}, which this version of cowsim does not know`);
        objs[i] = Object.create(cls.prototype as object);
        break;
      }
      case "T": {
        const T = TYPED[e.c as TypedName];
        if (!T) throw new GraphError(`the snapshot holds a ${e.c}`);
        const bytes = g.blob.slice(e.o, e.o + e.n * T.BYTES_PER_ELEMENT);
        objs[i] = new T(bytes.buffer, 0, e.n);
        break;
      }
    }
  });
  const value = (v: Encoded): unknown => {
    if (v === null || typeof v !== "object") return v;
    if ("@" in v) return objs[v["@"]];
    switch (v.$) {
      case "NaN": return NaN;
      case "+Inf": return Infinity;
      case "-Inf": return -Infinity;
      case "-0": return -0;
      case "u": return undefined;
      case "n": return BigInt(v.v!);
      default: throw new GraphError(`the snapshot holds an unknown value ${JSON.stringify(v)}`);
    }
  };
  table.forEach((e, i) => {
    const obj = objs[i];
    switch (e.t) {
      case "O": case "C": for (const [k, v] of Object.entries(e.f)) (obj as Record<string, unknown>)[k] = value(v); break;
      case "A": {
        let j = 0;
        for (const v of e.v) {
          if (v !== null && typeof v === "object" && "$" in v && v.$ === "_") j += Number(v.v);
          else (obj as unknown[])[j++] = value(v);
        }
        break;
      }
      case "M": for (const [k, v] of e.v) (obj as Map<unknown, unknown>).set(value(k), value(v)); break;
      case "S": for (const v of e.v) (obj as Set<unknown>).add(value(v)); break;
      case "T": break;
    }
  });
  return objs[0];
}
