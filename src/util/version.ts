/**
 * The package's version, from its package.json — two levels above every module, in src/, dist/
 * and dist/bundle/ alike. Node-only: the CLI and the catalog's loader read it.
 */
import { readFileSync } from "node:fs";

export const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
