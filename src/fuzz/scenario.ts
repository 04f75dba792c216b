/**
 * A fuzzer failure as a scenario file: the transcript of calls, the kernel it ran on, and the
 * outcome it had as expectations — so `cowsim run FILE` replays it and shows the same finding.
 * @packageDocumentation
 */
import { Document, isMap, isSeq } from "yaml";
import type { KernelOptions } from "../kernel.js";
import type { FuzzFailure } from "./fuzz.js";
import { FUZZ_KERNEL } from "./fuzz.js";

/** How the failing run was made. @public */
export interface FuzzRunSpec {
  readonly strategy: string;
  readonly knobs?: Readonly<Record<string, boolean>>;
  readonly kernel?: Readonly<Omit<KernelOptions, "strategy" | "knobs">>;
}

/** The scenario file (YAML) that replays `failure`. @public */
export function failureScenario(failure: FuzzFailure, run: FuzzRunSpec): string {
  const kernel = { ...FUZZ_KERNEL, ...run.kernel };
  const runName = run.knobs && Object.keys(run.knobs).length ? `${run.strategy}-fuzzed` : run.strategy;
  const expectation: Record<string, unknown> = { findings: failure.findings };
  if (failure.kind === "latent-missed-cow" || failure.latentMissedCows > 0) expectation.latentMissedCows = failure.latentMissedCows;
  const doc = {
    name: `fuzz: ${failure.signature} under ${run.strategy}`,
    description: `Found by cowsim fuzz (search seed ${failure.seed}) in a sequence of ${failure.foundSteps} steps, shrunk to ` +
      `${failure.steps.length - 1}. ${describeKind(failure)} ${failure.message.split("\n")[0]}`,
    reference: [{ url: "https://man7.org/linux/man-pages/", title: "cowsim fuzz: a replay of a failure it found" }],
    strategies: [runName === run.strategy ? run.strategy : { name: runName, strategy: run.strategy, knobs: run.knobs }],
    kernel: {
      memory: kernel.memory, swap: kernel.swap, maxProcesses: kernel.maxProcesses,
      ...(failure.kind === "invariant" || failure.kind === "teardown" ? {} : { checkInvariants: false }),
    },
    processes: ["main"],
    steps: failure.steps,
    expect: { [runName]: expectation },
  };
  // one step per line, as the catalog writes them
  const yaml = new Document(doc);
  const steps = yaml.get("steps", true);
  if (isSeq(steps)) for (const item of steps.items) if (isMap(item)) item.flow = true;
  return yaml.toString({ lineWidth: 0 });
}

function describeKind(f: FuzzFailure): string {
  switch (f.kind) {
    case "finding": return "The oracle reports a finding at the last step:";
    case "latent-missed-cow": return "After the last step a page holds what its process must not see:";
    case "invariant": return "After the last step an invariant is broken (replaying fails with it):";
    case "judges": return "After the last step the oracle and the reference judge disagree:";
    case "crash": return "The last step crashed:";
    case "teardown": return "Once every process exited, something was left:";
  }
}
