// The kernel options' rules (src/mm/options.ts): one set, which the loader applies to a scenario's
// `kernel:` block at its lines, before anything runs — no run may be the first to find out that
// its machine cannot be built.
import { describe, it, expect } from "vitest";
import { parseScenarios, ScenarioError, runScenario } from "../../src/index.js";
import { validateKernelOptions, formatOptionProblems, formatSize, KERNEL_OPTION_LIMITS } from "../../src/mm/options.js";
import { kernelOptionsOf } from "../../src/scenario/resolve.js";
import type { LoadedScenario } from "../../src/scenario/types.js";

const head = "name: t\nreference: [{ commit: 17839856fd58 }]\n";
const steps = "steps: [{ op: mmap, as: a, pages: 1 }]\n";

/** The diagnostics of a `kernel:` block, as "line:col: message". */
function kernelProblems(block: string): string[] {
  try {
    parseScenarios("t.yaml", `${head}kernel: ${block}\n${steps}`);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).diagnostics.map((d) => `${d.line}:${d.col}: ${d.message}`);
  }
  throw new Error("the scenario loaded");
}
const messages = (o: object) => validateKernelOptions(o).problems.map((p) => [p.option, p.message]);

describe("validateKernelOptions", () => {
  it("memory: from 64K (16 pages) to 256G, in sizes, never in frames", () => {
    expect(messages({ memory: 0 })).toEqual([["memory", "memory must be at least 64K (16 pages), not 0"]]);
    expect(messages({ memory: 4096 })).toEqual([["memory", "memory must be at least 64K (16 pages), not 4096"]]);
    expect(messages({ memory: "4K" })).toEqual([["memory", 'memory must be at least 64K (16 pages), not "4K"']]);
    expect(messages({ memory: "1.5K" })).toEqual([["memory", 'memory must be at least 64K (16 pages), not "1.5K"']]);
    expect(messages({ memory: "1T" })).toEqual([["memory", 'memory must be at most 256G, not "1T"']]);
    expect(messages({ memory: "lots" })).toEqual([["memory", 'memory must be bytes, a size such as "16M" or a number of pages such as "4 pages", not "lots"']]);
    expect(messages({ memory: -1 })).toEqual([["memory", 'memory must be bytes, a size such as "16M" or a number of pages such as "4 pages", not -1']]);
    expect(messages({ memory: "64K" })).toEqual([]);
    expect(messages({ memory: "16 pages" })).toEqual([]);
    expect(validateKernelOptions({ memory: "16 pages" }).values!.memory).toBe(65536);
  });

  it("the whole machine must fit in the 4 GiB of a wasm32 memory: the most that fits is said", () => {
    expect(messages({ memory: "16G", dataBytes: 4096 })).toEqual([["memory",
      "memory 16G does not fit in the simulator with dataBytes 4096: the machine would need 32.3 GiB, more than the 4 GiB a wasm32 memory can address; at most 2025M fits"]]);
    expect(messages({ memory: "2025M", dataBytes: 4096 })).toEqual([]);
    expect(messages({ memory: "2026M", dataBytes: 4096 })[0]![0]).toBe("memory");
    // the option to lower is the one whose lowering alone would do
    expect(messages({ memory: "16M", maxProcesses: 2 ** 20 })).toEqual([["maxProcesses",
      "maxProcesses 1048576 does not fit in the simulator with memory 16M: the machine would need 4.1 GiB, more than the 4 GiB a wasm32 memory can address; at most 261063 processes fit"]]);
    expect(messages({ memory: "16M", swap: "511G", dataBytes: 4096 })).toEqual([["swap",
      "swap 511G does not fit in the simulator with memory 16M, dataBytes 4096: the machine would need 513.0 GiB, more than the 4 GiB a wasm32 memory can address; at most 4059M fits"]]);
  });

  it("swap: 0 to 511G; the default is as much as memory", () => {
    expect(messages({ swap: "1T" })).toEqual([["swap", 'swap must be at most 511G, not "1T"']]);
    expect(validateKernelOptions({ memory: "8M" }).values!.swap).toBe(8 * 2 ** 20);
    expect(validateKernelOptions({ memory: "8M", swap: 0 }).values!.core.swapSlots).toBe(1);
  });

  it("every other option: its range, in the user's words", () => {
    expect(messages({
      dataBytes: 4097, seed: -1, transient: { lruBatch: 33, isolation: 1.5 }, maxProcesses: 1e8, maxMapCount: -1,
      pageTables: 2, checkInvariants: "yes", oracle: 1, explain: null, build: "fast",
    })).toEqual([
      ["dataBytes", "dataBytes must be a whole number of bytes from 0 to 4096, not 4097"],
      ["seed", "seed must be a whole number from 0 to 4294967295, not -1"],
      ["transient.lruBatch", "transient.lruBatch must be true (the strategy's batch size), false, or a batch size from 0 to 32 folios, not 33"],
      ["transient.isolation", "transient.isolation must be a probability from 0 to 1, not 1.5"],
      ["maxProcesses", "maxProcesses must be a whole number from 1 to 1048576, not 100000000"],
      ["maxMapCount", "maxMapCount must be a whole number from 0 to 2147483647 (the range of vm.max_map_count), not -1"],
      ["pageTables", "pageTables must be a whole number of page tables from 4 to 1048576, not 2"],
      ["checkInvariants", 'checkInvariants must be true or false, not "yes"'],
      ["oracle", "oracle must be true or false, not 1"],
      ["explain", "explain must be true or false, not null"],
      ["build", 'build must be "release" or "debug", not "fast"'],
    ]);
    expect(messages({ transient: 3 })).toEqual([["transient", "transient must be { lruBatch, isolation, migration } (any may be left out), not 3"]]);
    expect(messages({ transient: { migration: -0.5 } })).toEqual([["transient.migration", "transient.migration must be a probability from 0 to 1, not -0.5"]]);
    expect(messages({ transient: { compaction: 1 } })).toEqual([["transient.compaction", "transient.compaction is no option of transient (lruBatch, isolation, migration)"]]);
    expect(messages({ transient: { isolation: NaN } })).toEqual([["transient.isolation", "transient.isolation must be a probability from 0 to 1, not NaN"]]);
    expect(messages({ seed: 2 ** 32 })).toEqual([["seed", "seed must be a whole number from 0 to 4294967295, not 4294967296"]]);
  });

  it("the limits' ends are allowed", () => {
    expect(messages({
      memory: "64K", swap: 0, dataBytes: 4096, seed: 2 ** 32 - 1, transient: { lruBatch: 32, isolation: 1 }, maxProcesses: 1, maxMapCount: 0, pageTables: 4,
    })).toEqual([]);
    expect(messages({ memory: "256M", maxMapCount: 2 ** 31 - 1, maxProcesses: 4096, transient: { lruBatch: true } })).toEqual([]);
    expect(messages({ strategy: "pagecount", knobs: { anything: true } })).toEqual([]); // judged by makeStrategy()
  });

  it("values: defaults filled in, and the machine Core.create() is asked for", () => {
    const v = validateKernelOptions({}).values!;
    expect(v).toEqual({
      memory: 256 * 2 ** 20, swap: 256 * 2 ** 20, dataBytes: 0, seed: 1, lruBatch: 0, isolation: 0, migration: 0, maxProcesses: 256, maxMapCount: 65530,
      checkInvariants: false, oracle: true, explain: true, build: "release",
      thp: { enabled: "always", always: 0, madvise: 0, inherit: 512, useZeroPage: true },
      core: { frames: 65536, swapSlots: 65537, pageTables: 1600, maxMms: 256, maxThreads: 4, dataBytes: 0, build: "release" },
    });
    expect(validateKernelOptions({ transient: { lruBatch: true } }).values!.lruBatch).toBe(true);
    expect(validateKernelOptions({ pageTables: 10 }).values!.core.pageTables).toBe(10);
  });

  it("a misspelt option is a problem, not its default in silence", () => {
    expect(messages({ memroy: "8M", transient: { lruBatsh: true }, memory: "8M", oracle: undefined })).toEqual([
      ["memroy", "memroy is no option of createKernel() (did you mean memory?); the options are strategy, knobs, memory, swap, dataBytes, seed, transient, maxProcesses, maxMapCount, pageTables, oracle, explain, checkInvariants, build, wasm, thp"],
      ["transient.lruBatsh", "transient.lruBatsh is no option of transient (lruBatch, isolation, migration)"],
    ]);
  });

  it("problems as one message, for EINVAL", () => {
    const { problems } = validateKernelOptions({ memory: 0, maxMapCount: -1 });
    expect(formatOptionProblems(problems)).toBe(
      "memory must be at least 64K (16 pages), not 0; maxMapCount must be a whole number from 0 to 2147483647 (the range of vm.max_map_count), not -1");
    expect(formatOptionProblems([])).toBe("");
  });

  it("sizes as a person writes them", () => {
    expect([formatSize(65536), formatSize(KERNEL_OPTION_LIMITS.memory.max), formatSize(KERNEL_OPTION_LIMITS.swap.max), formatSize(1536), formatSize(2 ** 40)])
      .toEqual(["64K", "256G", "511G", "1536 bytes", "1T"]);
  });
});

describe("a scenario's kernel: block", () => {
  it("is judged by the same rules at load time, each problem at its value", () => {
    expect(kernelProblems("{ memory: 0 }")).toEqual(["3:19: kernel.memory must be at least 64K (16 pages), not 0"]);
    expect(kernelProblems("{ memory: 4K }")).toEqual(['3:19: kernel.memory must be at least 64K (16 pages), not "4K"']);
    expect(kernelProblems("{ memory: 1.5K }")).toEqual(['3:19: kernel.memory must be at least 64K (16 pages), not "1.5K"']);
    expect(kernelProblems("{ memory: 1T }")).toEqual(['3:19: kernel.memory must be at most 256G, not "1T"']);
    expect(kernelProblems("{ maxProcesses: 1e8 }")).toEqual(["3:25: kernel.maxProcesses must be a whole number from 1 to 1048576, not 100000000"]);
    expect(kernelProblems("{ maxMapCount: -1 }")).toEqual(["3:24: kernel.maxMapCount must be a whole number from 0 to 2147483647 (the range of vm.max_map_count), not -1"]);
    expect(kernelProblems("{ memory: 16G, dataBytes: 4096 }")).toEqual([
      "3:19: kernel.memory 16G does not fit in the simulator with dataBytes 4096: the machine would need 32.3 GiB, more than the 4 GiB a wasm32 memory can address; at most 2025M fits",
    ]);
  });

  it("every problem at once, in one voice: the rules speak for values, the schema for unknown keys", () => {
    expect(kernelProblems("{ seed: 1.5, transient: { lruBatch: 33, isolatoin: 1 }, checkInvariants: 1, memory: [1], swapp: 0 }")).toEqual([
      "3:17: kernel.seed must be a whole number from 0 to 4294967295, not 1.5",
      "3:45: kernel.transient.lruBatch must be true (the strategy's batch size), false, or a batch size from 0 to 32 folios, not 33",
      '3:49: unknown key "isolatoin" in kernel.transient (did you mean "isolation"?); expected one of lruBatch, isolation, migration',
      "3:82: kernel.checkInvariants must be true or false, not 1",
      '3:93: kernel.memory must be bytes, a size such as "16M" or a number of pages such as "4 pages", not [1]',
      '3:98: unknown key "swapp" in kernel (did you mean "swap"?); expected one of memory, swap, dataBytes, seed, transient, maxProcesses, maxMapCount, checkInvariants, thp',
    ]);
  });

  it("the processes it starts with must fit in maxProcesses", () => {
    expect(() => parseScenarios("t.yaml", `${head}processes: [a, b]\nkernel: { maxProcesses: 1 }\n${steps}`)).toThrow(
      "t.yaml:4:25: error: kernel.maxProcesses 1 is fewer than the 2 processes the scenario starts with");
  });

  it("sizes may be pages, as everywhere in a scenario", () => {
    const [l] = parseScenarios("t.yaml", `${head}kernel: { memory: 32 pages, swap: 2 pages }\n${steps}`);
    expect(kernelOptionsOf(l!.scenario.kernel)).toMatchObject({ memory: "32 pages", swap: "2 pages", checkInvariants: true, oracle: true });
    expect(runScenario(l!).runs.map((r) => [r.run, r.pass])).toEqual([["mapcount", true], ["pagecount", true], ["anon-exclusive", true]]);
  });

  it("a scenario made by a program, not loaded, is refused before its runs with the same message", () => {
    const ls: LoadedScenario = {
      file: "made.yaml", index: 0, at: { line: 1, col: 1 }, stepAt: [{ line: 2, col: 1 }],
      scenario: { name: "m", reference: [{ cve: "CVE-2020-29374" }], kernel: { memory: "4K" }, strategies: ["mapcount"], steps: [{ op: "mmap", as: "a", pages: 1 }] },
    };
    expect(runScenario(ls).runs.map((r) => [r.pass, r.failures.map((f) => f.message)])).toEqual([
      [false, ['EINVAL: memory must be at least 64K (16 pages), not "4K"']],
    ]);
  });
});
