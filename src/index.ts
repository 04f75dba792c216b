/**
 * cowsim: a Linux-faithful simulator of anonymous memory and copy-on-write.
 *
 * Every export is listed here by name: this is the public API (the machine without the kernel
 * is `cowsim/core`; scenario files on a disk and the built-in catalog are `cowsim/node`).
 * @packageDocumentation
 * @module cowsim
 */

// ---- the kernel and its processes ------------------------------------------------------------
export { createKernel, Kernel, Process } from "./kernel.js";
export type { KernelOptions, TransientOptions, MapsEntry, SmapsEntry, LatentMissedCow, KernelEvent } from "./kernel.js";
export type { ThpOptions, ThpEnabled, ThpSizeEnabled, ThpSize } from "./kernel.js";
export type { MthpStats, SplitHugePagesResult, SplitOutcome } from "./kernel.js";
export { THP_SIZE_ORDERS } from "./kernel.js";
export {
  PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS,
  MAP_NORESERVE, MAP_POPULATE, MAP_FIXED_NOREPLACE, MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL,
  MADV_WILLNEED, MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK,
  MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_COLLAPSE, MREMAP_MAYMOVE, MREMAP_FIXED,
  MREMAP_DONTUNMAP, PAGE_SIZE, TASK_SIZE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_HWPOISON,
  MADV_REMOVE, MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB, MFD_NOEXEC_SEAL, MFD_EXEC, FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE,
} from "./kernel.js";
/** shmem files (memfd_create()) and the page-cache seams userfaultfd uses. */
export { ShmemFile, shmem_get_entry, shmem_get_folio, shmem_add_to_page_cache } from "./kernel.js";
export type { ShmemEntry, ShmemSgp } from "./kernel.js";
export {
  validateKernelOptions, formatOptionProblems, formatSize, KERNEL_OPTION_LIMITS, KERNEL_OPTION_DEFAULTS,
} from "./kernel.js";
export type { OptionProblem, KernelOptionValues, KernelOptionsCheck, KernelCoreSizes } from "./kernel.js";
export { COUNTER_DESCRIPTIONS } from "./kernel.js";
export type { Counters } from "./kernel.js";
export { WaitQueue, Access } from "./kernel.js";
export type { WaitReason, AccessState } from "./kernel.js";
export { Migration } from "./kernel.js";

// ---- userfaultfd -------------------------------------------------------------------------------
export { Userfaultfd, UffdRangeError } from "./kernel.js";
export type { UffdMsg, UffdHandler, UffdioCopyOptions } from "./kernel.js";
export {
  UFFD_API, UFFD_API_FEATURES, UFFD_FEATURE_PAGEFAULT_FLAG_WP, UFFD_FEATURE_EVENT_FORK, UFFD_FEATURE_EVENT_REMAP,
  UFFD_FEATURE_EVENT_REMOVE, UFFD_FEATURE_MISSING_HUGETLBFS, UFFD_FEATURE_MISSING_SHMEM, UFFD_FEATURE_EVENT_UNMAP,
  UFFD_FEATURE_SIGBUS, UFFD_FEATURE_THREAD_ID, UFFD_FEATURE_MINOR_HUGETLBFS, UFFD_FEATURE_MINOR_SHMEM,
  UFFD_FEATURE_EXACT_ADDRESS, UFFD_FEATURE_WP_HUGETLBFS_SHMEM, UFFD_FEATURE_WP_UNPOPULATED, UFFD_FEATURE_POISON,
  UFFD_FEATURE_WP_ASYNC, UFFD_FEATURE_MOVE, UFFDIO_REGISTER_MODE_MISSING, UFFDIO_REGISTER_MODE_WP,
  UFFDIO_REGISTER_MODE_MINOR, UFFDIO_COPY_MODE_DONTWAKE, UFFDIO_COPY_MODE_WP, UFFDIO_ZEROPAGE_MODE_DONTWAKE,
  UFFDIO_WRITEPROTECT_MODE_WP, UFFDIO_WRITEPROTECT_MODE_DONTWAKE, UFFDIO_CONTINUE_MODE_DONTWAKE,
  UFFDIO_CONTINUE_MODE_WP, UFFDIO_POISON_MODE_DONTWAKE, UFFDIO_MOVE_MODE_DONTWAKE, UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES,
  UFFD_EVENT_PAGEFAULT, UFFD_EVENT_FORK, UFFD_EVENT_REMAP, UFFD_EVENT_REMOVE, UFFD_EVENT_UNMAP,
  UFFD_PAGEFAULT_FLAG_WRITE, UFFD_PAGEFAULT_FLAG_WP, UFFD_PAGEFAULT_FLAG_MINOR, O_NONBLOCK, O_CLOEXEC, UFFD_USER_MODE_ONLY,
  UFFD_API_IOCTLS, UFFD_API_RANGE_IOCTLS,
} from "./kernel.js";
export type { MigrateOptions, MigrateStatus } from "./kernel.js";
export { HugePageSplit } from "./kernel.js";
export type { HugePageSplitStatus, SplitHugePageOptions } from "./kernel.js";

// ---- GUP and its users ---------------------------------------------------------------------
export { FOLL_GET, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, FOLL_FORCE, Pin } from "./kernel.js";
export type { PinContract } from "./kernel.js";
export { GupUser, Pipe, FixedBuffers, MemoryRegion, DirectIo, UserPages, GupFastRace } from "./kernel.js";
export type { PartialGup } from "./kernel.js";

// ---- device memory (HMM) ---------------------------------------------------------------------
export { Dmirror } from "./kernel.js";
export type { DeviceStatus } from "./kernel.js";

// ---- strategies ------------------------------------------------------------------------------
export {
  STRATEGIES, STRATEGY_IDS, makeStrategy, defineStrategy, registerStrategy, unregisterStrategy, strategies,
  strategyInfo, StrategyError,
} from "./policy/index.js";
export type {
  StrategyId, StrategyInfo, StrategyDefinition, StrategyMembers, CowStrategy, KnobSpec, WpFacts, HugeWpFacts, WpHelpers, WpDecision, GupFacts,
  SwapinFacts, SwapinHelpers, SwapinDecision,
} from "./policy/index.js";
export { compareStrategies } from "./compare.js";
export type { StrategyResult } from "./compare.js";

// ---- the oracle, the judges, the invariants --------------------------------------------------
export type { Finding, FindingKind, ChainStep, JournalEntry } from "./kernel.js";
export { ReferenceJudge } from "./kernel.js";
export type { ReferenceVerdict, JudgedKernel } from "./kernel.js";
export type { InvariantViolation, HeldFrame, FrameHolder, UsedSwapSlot } from "./kernel.js";
export { describeHolder } from "./kernel.js";
export type { MemoryFailureOutcome, MfResult } from "./kernel.js";
export { PM_PRESENT, PM_SWAP, PM_FILE, PM_MMAP_EXCLUSIVE, PM_UFFD_WP, PM_SOFT_DIRTY } from "./kernel.js";

// ---- tracepoints -----------------------------------------------------------------------------
export { TraceBus } from "./trace/events.js";
export type {
  TraceEvents, TraceName, AnyListener, SubscribeOptions, WpPageCopyEvent, CopyFacts, PinView, PinnedPages, VpnRange, TraceLogReader,
} from "./trace/events.js";
export type { KernelView, ProcessView, VmaView } from "./trace/view.js";

// ---- scenarios ------------------------------------------------------------------------------
export {
  parseScenarios, parseScenarioBytes, ScenarioError, formatDiagnostic, MAX_ALIAS_VALUES, MAX_DEPTH, MAX_FILE_BYTES,
} from "./scenario/load.js";
export type { Diagnostic, LoadOptions } from "./scenario/load.js";
export { MATRIX_SCHEMA, cellName } from "./scenario/matrix.js";
export type { MatrixCell, MatrixDescription } from "./scenario/matrix.js";
export { runScenario, outcomeFor } from "./scenario/run.js";
export type { ScenarioResult, RunResult, RunOptions, StepRecord, Failure, ScenarioFinding, ExplainedLink } from "./scenario/run.js";
export { chromeTrace } from "./scenario/trace.js";
export type { ChromeTrace, TraceEvent } from "./scenario/trace.js";
export { SCENARIO_SCHEMA } from "./scenario/schema.js";
export type { Scenario, LoadedScenario, Step, Outcome, Reference, RunSpec, PerRun } from "./scenario/types.js";

// ---- the fuzzer ------------------------------------------------------------------------------
export { fuzz, runSequence, FUZZ_KERNEL } from "./fuzz/fuzz.js";
export type { FuzzOptions, FuzzReport, FuzzFailure, FuzzFailureKind, FuzzProgress } from "./fuzz/fuzz.js";
export { failureScenario } from "./fuzz/scenario.js";
export type { FuzzRunSpec } from "./fuzz/scenario.js";
export { opsArb, World } from "./fuzz/ops.js";
export type { Op, OpSet, ScenarioStep } from "./fuzz/ops.js";

// ---- the weak-memory explorer ------------------------------------------------------------------
export { parseLitmus, explore, formatHerd, resultJson, ExploreError, MODELS, MODEL_TITLE } from "./explore/index.js";
export type { Program, Condition, ExploreResult, ModelResult, ExploreOptions, Witness, ModelName, FormatOptions } from "./explore/index.js";
export { interleavings } from "./explore/operational.js";
export type { InterleavingResult } from "./explore/operational.js";
export { VARIANTS as SEED001_VARIANTS, STEPS as SEED001_STEPS, BARRIERS as SEED001_BARRIERS, seed001Litmus } from "./explore/protocols/seed001.js";
export type { Variant as Seed001Variant, Step as Seed001Step, Barrier as Seed001Barrier } from "./explore/protocols/seed001.js";

// ---- errors and the machine's constants --------------------------------------------------------
export { CowsimError, InvariantError, errnoName, ERRNO } from "./errno.js";
export type { ErrnoName } from "./errno.js";
export { C, CoreCheckError, loadCore } from "./core/index.js";
export type { FailKind, FailureInjection, CoreBuild, CoreWasm, LoadCoreOptions } from "./core/index.js";
