#!/usr/bin/env node
/**
 * The `cowsim` command. Until the scenario runner lands it prints the core's self-description.
 */
import { Core } from "../core/core.js";
import { describeCore } from "../core/describe.js";

const core = Core.create();
process.stdout.write(describeCore(core) + "\n");
