/**
 * What is wrong with a scenario file, as compilers say it — the part of loading that reading
 * files and the command line need without the parser (which brings YAML and the schema
 * validator with it: the CLI loads those only for a file the build did not load already).
 */

/** One problem in a scenario file. @public */
export interface Diagnostic {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

/** A scenario file that cannot run: every problem found in it. @public */
export class ScenarioError extends Error {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
    this.name = "ScenarioError";
    this.diagnostics = diagnostics;
  }
}

/**
 * A diagnostic as compilers print one (GCC, clang): `file:line:col: error: message`, which
 * editors and CI annotators already know how to jump to. `label` may colour "error:".
 */
export function formatDiagnostic(d: Diagnostic, label: (text: string) => string = (t) => t): string {
  return `${d.file}:${d.line}:${d.col}: ${label("error:")} ${d.message}`;
}

/** The largest scenario file read. @public */
export const MAX_FILE_BYTES = 64 * 2 ** 20;

/** What loading says of a file too large to be a scenario. */
export function tooLarge(file: string, bytes: number): ScenarioError {
  return new ScenarioError([{ file, line: 1, col: 1, message: `the file is too large for a scenario: ${(bytes / 2 ** 20).toFixed(0)} MiB, at most ${MAX_FILE_BYTES / 2 ** 20} MiB` }]);
}
