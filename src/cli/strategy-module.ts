/**
 * `--strategy-module FILE`: a program's own strategies on the command line. The module is
 * imported and what it exports as `default` (or as `strategies`) — a strategy, a strategy
 * definition, or an array of them — is registered, so scenario files and `--strategy` can name
 * them like the built-in ones.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { CowsimError } from "../errno.js";
import { registerStrategy, StrategyError } from "../kernel.js";

/** Imports and registers; returns the ids registered, or throws a message to print. */
export async function loadStrategyModule(file: string): Promise<string[]> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(file)).href)) as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ERR_MODULE_NOT_FOUND" && err.message.includes(resolve(file)) ? "no such file (ENOENT)" : err.message.split("\n")[0];
    throw new Error(`${file}: cannot load the strategy module: ${why}`);
  }
  const exported = mod.default ?? mod.strategies;
  const list = Array.isArray(exported) ? exported : exported === undefined ? [] : [exported];
  if (list.length === 0) {
    throw new Error(`${file}: the module exports no strategy (export default a strategy, a strategy definition, or an array of them)`);
  }
  const ids: string[] = [];
  for (const def of list) {
    try {
      ids.push(registerStrategy(def as Parameters<typeof registerStrategy>[0]).id);
    } catch (e) {
      if (e instanceof StrategyError) throw new Error(`${file}: ${e.detail.replace(/\n/g, "\n  ")}`);
      if (e instanceof CowsimError) throw new Error(`${file}: ${e.detail}`);
      throw new Error(`${file}: making the strategy threw: ${(e as Error).message}`);
    }
  }
  return ids;
}
