/**
 * cowsim: a Linux-faithful simulator of anonymous memory and copy-on-write.
 * @packageDocumentation
 */
export * from "./core/index.js";
export { CowsimError, errnoName } from "./errno.js";
export type { ErrnoName } from "./errno.js";
