// Every export of the package's entry points says what it is (TSDoc), so the API reference
// (npm run docs) has no blank entries.
import { describe, it, expect } from "vitest";
import ts from "typescript";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const root = fileURLToPath(new URL("..", import.meta.url));
const ENTRIES = ["src/index.ts", "src/node.ts", "src/core/index.ts"];

describe("the API reference", () => {
  it("documents every export of cowsim, cowsim/node and cowsim/core", () => {
    const program = ts.createProgram(ENTRIES.map((e) => join(root, e)), {
      module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true,
    });
    const checker = program.getTypeChecker();
    const missing: string[] = [];
    for (const entry of ENTRIES) {
      const file = program.getSourceFile(join(root, entry))!;
      const mod = checker.getSymbolAtLocation(file)!;
      for (const exp of checker.getExportsOfModule(mod)) {
        const sym = exp.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exp) : exp;
        const documented = sym.getDocumentationComment(checker).length > 0 ||
          (sym.declarations ?? []).some((d) => ts.getJSDocCommentsAndTags(d).length > 0);
        if (!documented) missing.push(`${entry}: ${exp.name}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
