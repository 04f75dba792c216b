/**
 * The classes whose instances a kernel's state is made of, by a name that stays when a bundler
 * renames classes: what a snapshot may hold. (The facade adds its Kernel and Process.)
 */
import { Pin, PinRegistry, GupFastInFlight } from "../mm/gup.js";
import { WpHelperSet } from "../mm/memory.js";
import { AnonVma, AnonVmaChain, AnonVmaRegistry } from "../mm/rmap.js";
import { ShmemFile, ShmemRegistry, MemfdDescriptor } from "../mm/shmem.js";
import { Stats } from "../mm/stats.js";
import { Vma, VmaInner, VmaLeaf, VmaList } from "../mm/vma.js";
import { WaitQueue, WaitQueues } from "../mm/wait.js";
import { DirectIo, FixedBuffers, MemoryRegion, Pipe, UserPages, GupFastRace } from "../users/users.js";
import { Dmirror } from "../users/dmirror.js";
import { DevPagemap } from "../mm/migrate_device.js";
import { Journal } from "../oracle/journal.js";
import { Oracle } from "../oracle/oracle.js";
import { Chunk, ShadowSpace, SharedShadow } from "../oracle/shadow.js";
import { Rng } from "../util/rng.js";

type Class = abstract new (...args: never[]) => unknown;

export const STATE_CLASSES: ReadonlyMap<string, Class> = new Map<string, Class>([
  ["Pin", Pin], ["PinRegistry", PinRegistry], ["GupFastInFlight", GupFastInFlight], ["WpHelperSet", WpHelperSet],
  ["AnonVma", AnonVma], ["AnonVmaChain", AnonVmaChain], ["AnonVmaRegistry", AnonVmaRegistry],
  ["ShmemFile", ShmemFile], ["ShmemRegistry", ShmemRegistry], ["MemfdDescriptor", MemfdDescriptor], ["Stats", Stats],
  ["Vma", Vma], ["VmaInner", VmaInner], ["VmaLeaf", VmaLeaf], ["VmaList", VmaList],
  ["WaitQueue", WaitQueue], ["WaitQueues", WaitQueues],
  ["Pipe", Pipe], ["FixedBuffers", FixedBuffers], ["MemoryRegion", MemoryRegion], ["DirectIo", DirectIo], ["UserPages", UserPages], ["GupFastRace", GupFastRace],
  ["Journal", Journal], ["Oracle", Oracle], ["ShadowChunk", Chunk], ["ShadowSpace", ShadowSpace], ["SharedShadow", SharedShadow],
  ["Dmirror", Dmirror], ["DevPagemap", DevPagemap],
  ["Rng", Rng],
]);
