/**
 * cowsim/core: the Wasm core and its typed binding, for embedding programs that want the
 * machine without the kernel semantics on top.
 * @packageDocumentation
 * @module cowsim/core
 */
export { Core, PAGE_SIZE, abiFingerprint } from "./core.js";
export { FrameTable } from "./frames.js";
export { CoreOps } from "./ops.js";
export type { WpFaultInfo, SwapEntryInfo, MigrationEntryInfo } from "./ops.js";
export type { CoreOptions, CoreLayout, CoreRecord, SharedCore, FailKind, FailureInjection, MemoryImage, GupFastBegun } from "./core.js";
export type { CoreBuild, CoreWasm, LoadCoreOptions } from "./wasm.js";
export { CoreCheckError, loadCore } from "./wasm.js";
export { tsTranslate } from "./ts-walk.js";
export { pinFast, unpinRecord, livePinRecords, setProtocolBreaks, PinCursor } from "./pins.js";
export type { PinRecord, PinFastResult } from "./pins.js";
export {
  C, PTE_BITS, SWP_BITS, PTE_FIELDS, SWP_TYPES, PTE_MARKERS, PTE_KINDS, PAGE_FLAGS, VMSTAT_ITEMS,
  ERRNO_CODES, RECORD_KINDS, GUP_FAST_REASONS, FOLL_FLAGS, RSS_MEMBERS, FAIL_KINDS, DEBUG_CHECKS,
} from "./abi.generated.js";
export type { CoreExports, TaggedConstant } from "./abi.generated.js";
export { describeCore } from "./describe.js";
