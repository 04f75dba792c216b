/**
 * The weak-memory explorer: Linux C litmus tests explored exhaustively under SC, x86-TSO and the
 * Linux-kernel memory model. Node-and-browser safe: it reads no files.
 */
export { parseLitmus } from "./parse.js";
export { ExploreError, type Program, type Condition } from "./ir.js";
export { explore, type ExploreResult, type ModelResult, type ExploreOptions, type Witness } from "./explore.js";
export { MODELS, MODEL_TITLE, type ModelName } from "./models.js";
export { formatHerd, resultJson, type FormatOptions } from "./herd.js";
