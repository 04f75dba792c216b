// @ts-check
// Scenarios from a program: one written inline (parseScenarios works anywhere, a browser too)
// and one of the built-in catalog, read from the package's scenarios/ (cowsim/node: Node only).
// Each runs under the three strategies and is checked against what the real kernels do.
//
//   node examples/scenario.js
import { parseScenarios, runScenario } from "cowsim";
import { loadCatalogScenario } from "cowsim/node";

const yaml = `
name: "The parent exits, the child writes: nobody else maps the page, so it is reused"
reference:
  - { commit: 09854ba94c6aad7886996bfbee2530b3d8a7f4f4, subject: "mm: do_wp_page() simplification" }
processes: [parent]
steps:
  - { op: mmap, as: buf, pages: 1 }
  - { op: write, addr: buf, value: 7 }
  - { op: fork, as: child }
  - { op: exit, process: parent }
  - { op: write, process: child, addr: buf, value: 8 }
  - { op: read, process: child, addr: buf, expect: 8 }
expect:
  all: { findings: [], counters: { copies: 0, reuses: 1 } }
`;

/** One line per run: the strategy, PASS (as its kernels behave) or FAIL, its findings and copies. */
function report(result) {
  console.log(result.name);
  for (const run of result.runs) {
    const findings = run.findings.map((f) => f.kind).join(", ") || "no findings";
    console.log(`  ${run.pass ? "PASS" : "FAIL"} ${run.run.padEnd(14)} ${run.kernels.padEnd(18)} copies ${run.counters.copies}, reuses ${run.counters.reuses}, ${findings}`);
    for (const failure of run.failures) console.log(`    line ${failure.line}: ${failure.message}`);
  }
}

const [mine] = parseScenarios("inline.yaml", yaml);
report(runScenario(mine));

const [cve] = loadCatalogScenario("cve-2020-29374");
const result = runScenario(cve);
report(result);
const missed = result.runs.find((r) => r.run === "mapcount")?.findings[0];
if (missed) console.log(`mapcount's finding: ${missed.summary}`);
