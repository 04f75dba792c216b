/**
 * The bytes of a snapshot: a header (what made it, which machine), the TypeScript state as an
 * encoded object graph, and the machine's memory — the pages of it that are not all zero.
 *
 *   "COWSIMSN" · u32 version · u32 n + header JSON · u32 n + graph JSON · u32 n + graph blob
 *   · u32 memory pages · u32 ctx · u32 chunks · chunks × (u32 index) · chunks × 64 KiB
 *
 * Numbers are little-endian; the blob and the pages start 8-byte aligned.
 */
import type { MemoryImage } from "../core/index.js";
import type { EncodedGraph } from "./codec.js";

const MAGIC = "COWSIMSN";
export const SNAPSHOT_VERSION = 1;
const WASM_PAGE = 65536;

/** What a snapshot says about itself. */
export interface SnapshotHeader {
  readonly version: number;
  /** A fingerprint of the core's ABI: a snapshot restores only into the same core. */
  readonly abi: string;
  readonly build: "release" | "debug";
  readonly strategy: { readonly id: string; readonly knobs: Readonly<Record<string, boolean>> };
}

export interface SnapshotParts {
  readonly header: SnapshotHeader;
  readonly graph: EncodedGraph;
  readonly memory: MemoryImage;
}

/** Why bytes are not a snapshot this cowsim can restore. */
export class SnapshotFormatError extends Error {}

const pad8 = (n: number) => (8 - (n % 8)) % 8;

export function writeSnapshot(p: SnapshotParts): Uint8Array {
  const enc = new TextEncoder();
  const header = enc.encode(JSON.stringify(p.header));
  const graph = enc.encode(p.graph.json);
  const chunks = p.memory.chunks;
  let size = 8 + 4;
  size += 4 + header.byteLength;
  size += 4 + graph.byteLength;
  size += 4; size += pad8(size); size += p.graph.blob.byteLength;
  size += 12 + 4 * chunks.length; size += pad8(size); size += chunks.length * WASM_PAGE;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  let at = 0;
  for (let i = 0; i < 8; i++) out[at++] = MAGIC.charCodeAt(i);
  const u32 = (v: number) => { dv.setUint32(at, v, true); at += 4; };
  const bytes = (b: Uint8Array) => { out.set(b, at); at += b.byteLength; };
  u32(SNAPSHOT_VERSION);
  u32(header.byteLength); bytes(header);
  u32(graph.byteLength); bytes(graph);
  u32(p.graph.blob.byteLength); at += pad8(at); bytes(p.graph.blob);
  u32(p.memory.pages); u32(p.memory.ctx); u32(chunks.length);
  for (const c of chunks) u32(c.index);
  at += pad8(at);
  for (const c of chunks) bytes(c.bytes);
  return out;
}

export function readSnapshot(b: Uint8Array): SnapshotParts {
  if (!(b instanceof Uint8Array)) throw new SnapshotFormatError("a snapshot is a Uint8Array of bytes");
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 0;
  const need = (n: number) => { if (at + n > b.byteLength) throw new SnapshotFormatError(`it ends early (at byte ${at} of ${b.byteLength})`); };
  need(12);
  let magic = "";
  for (let i = 0; i < 8; i++) magic += String.fromCharCode(b[at++]!);
  if (magic !== MAGIC) throw new SnapshotFormatError("these bytes are not a cowsim snapshot");
  const u32 = () => { need(4); const v = dv.getUint32(at, true); at += 4; return v; };
  const version = u32();
  if (version !== SNAPSHOT_VERSION) throw new SnapshotFormatError(`snapshot format ${version}; this cowsim reads format ${SNAPSHOT_VERSION}`);
  const dec = new TextDecoder("utf-8", { fatal: true });
  const text = () => { const n = u32(); need(n); const s = dec.decode(b.subarray(at, at + n)); at += n; return s; };
  let header: SnapshotHeader;
  try {
    header = JSON.parse(text()) as SnapshotHeader;
  } catch (e) {
    throw e instanceof SnapshotFormatError ? e : new SnapshotFormatError("its header is damaged");
  }
  const json = text();
  const blobBytes = u32();
  at += pad8(at);
  need(blobBytes);
  const blob = b.slice(at, at + blobBytes);
  at += blobBytes;
  const pages = u32();
  const ctx = u32();
  const n = u32();
  const indices: number[] = [];
  for (let i = 0; i < n; i++) indices.push(u32());
  at += pad8(at);
  need(n * WASM_PAGE);
  const chunks = indices.map((index, i) => ({ index, bytes: b.subarray(at + i * WASM_PAGE, at + (i + 1) * WASM_PAGE) }));
  at += n * WASM_PAGE;
  if (at !== b.byteLength) throw new SnapshotFormatError(`${b.byteLength - at} bytes follow its end`);
  return { header, graph: { json, blob }, memory: { pages, ctx, chunks } };
}
