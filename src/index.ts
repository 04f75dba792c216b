/**
 * cowsim: a Linux-faithful simulator of anonymous memory and copy-on-write.
 *
 * Every export is listed here by name: this is the public API.
 * @packageDocumentation
 */
export { createKernel, Kernel } from "./mm/kernel.js";
export type { KernelOptions, TransientOptions } from "./mm/kernel.js";
export { Process } from "./mm/process.js";
export type { MapsEntry } from "./mm/process.js";
export { FOLL_GET, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, FOLL_FORCE, Pin } from "./mm/gup.js";
export type { PinContract } from "./mm/gup.js";
export { GupUser, Pipe, FixedBuffers, MemoryRegion, DirectIo, UserPages } from "./users/users.js";
export { compareStrategies } from "./compare.js";
export type { StrategyResult } from "./compare.js";
export { STRATEGIES, STRATEGY_IDS, makeStrategy } from "./policy/index.js";
export type {
  StrategyId, StrategyInfo, CowStrategy, KnobSpec, WpFacts, WpHelpers, WpDecision, GupFacts,
} from "./policy/index.js";
export type { Finding, FindingKind } from "./oracle/oracle.js";
export type { ChainStep, JournalEntry } from "./oracle/journal.js";
export type {
  InvariantViolation, LatentMissedCow, HeldFrame, FrameHolder, UsedSwapSlot,
} from "./oracle/invariants.js";
export { describeHolder } from "./oracle/invariants.js";
export { ReferenceJudge } from "./oracle/reference.js";
export type { ReferenceVerdict } from "./oracle/reference.js";
export { TraceBus } from "./trace/events.js";
export { fuzz, runSequence, FUZZ_KERNEL } from "./fuzz/fuzz.js";
export type { FuzzOptions, FuzzReport, FuzzFailure, FuzzFailureKind, FuzzProgress } from "./fuzz/fuzz.js";
export { failureScenario } from "./fuzz/scenario.js";
export type { FuzzRunSpec } from "./fuzz/scenario.js";
export { opsArb, World } from "./fuzz/ops.js";
export type { Op, OpSet, ScenarioStep } from "./fuzz/ops.js";
export type { TraceEvents, TraceName, WpPageCopyEvent } from "./trace/events.js";
export { COUNTER_DESCRIPTIONS } from "./mm/stats.js";
export type { Counters } from "./mm/stats.js";
export {
  PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS,
  MAP_NORESERVE, MAP_POPULATE, MAP_FIXED_NOREPLACE, MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL,
  MADV_WILLNEED, MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK,
  MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE, MREMAP_MAYMOVE, MREMAP_FIXED,
  MREMAP_DONTUNMAP, PAGE_SIZE, TASK_SIZE,
} from "./mm/uapi.js";
export {
  parseScenarios, loadScenarioFile, ScenarioError, formatDiagnostic, MAX_ALIAS_VALUES, MAX_DEPTH, MAX_FILE_BYTES,
} from "./scenario/load.js";
export { validateKernelOptions, formatOptionProblems, formatSize, KERNEL_OPTION_LIMITS, KERNEL_OPTION_DEFAULTS } from "./mm/options.js";
export type { OptionProblem, KernelOptionValues, KernelOptionsCheck, KernelCoreSizes } from "./mm/options.js";
export type { Diagnostic } from "./scenario/load.js";
export { loadScenarios, scenarioFiles, CATALOG_DIR, loadCatalogScenario, catalogNames } from "./scenario/catalog.js";
export { runScenario, outcomeFor } from "./scenario/run.js";
export type { ScenarioResult, RunResult, RunOptions, StepRecord, Failure, ScenarioFinding, ExplainedLink } from "./scenario/run.js";
export { chromeTrace } from "./scenario/trace.js";
export type { ChromeTrace, TraceEvent } from "./scenario/trace.js";
export { SCENARIO_SCHEMA } from "./scenario/schema.js";
export type { Scenario, LoadedScenario, Step, Outcome, Reference, RunSpec, PerRun } from "./scenario/types.js";
export { CowsimError, InvariantError, errnoName } from "./errno.js";
export type { ErrnoName } from "./errno.js";
export * from "./core/index.js";
