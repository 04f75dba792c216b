/**
 * Errors are errno: every failing call throws a {@link CowsimError} carrying the Linux errno
 * name, and leaves the simulated state as it was.
 */

/** The errno names cowsim uses. @public */
export type ErrnoName =
  | "EPERM" | "ENOENT" | "ESRCH" | "EIO" | "EBADF" | "EAGAIN" | "ENOMEM" | "EACCES" | "EFAULT"
  | "EBUSY" | "EEXIST" | "EINVAL" | "ENOSPC" | "EDEADLK" | "ENOSYS"
  | "EFBIG" | "EOVERFLOW" | "EOPNOTSUPP" | "EHWPOISON";

/** Linux's numbers (include/uapi/asm-generic/errno-base.h, errno.h); the core returns the same. */
export const ERRNO: Readonly<Record<ErrnoName, number>> = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14,
  EBUSY: 16, EEXIST: 17, EINVAL: 22, EFBIG: 27, ENOSPC: 28, EDEADLK: 35, ENOSYS: 38,
  EOVERFLOW: 75, EOPNOTSUPP: 95, EHWPOISON: 133,
};
const byNumber = new Map<number, ErrnoName>(Object.entries(ERRNO).map(([name, n]) => [n, name as ErrnoName]));
const byName = new Map<ErrnoName, number>(Object.entries(ERRNO) as [ErrnoName, number][]);

/** A failed simulated call. @public */
export class CowsimError extends Error {
  /** The errno name, e.g. `"ENOMEM"`. */
  readonly errno: ErrnoName;
  /** The Linux errno number, e.g. 12. */
  readonly code: number;
  /** The message without its errno name. */
  readonly detail: string;

  constructor(errno: ErrnoName, message: string) {
    super(`${errno}: ${message}`);
    this.name = "CowsimError";
    this.errno = errno;
    this.detail = message;
    this.code = byName.get(errno) ?? 0;
  }
}

/** The errno name of a negative return value of the core. */
export function errnoName(ret: number): ErrnoName {
  const name = byNumber.get(-ret);
  if (!name) throw new Error(`the core returned ${ret}, which is no errno cowsim knows`);
  return name;
}

/** Throws a CowsimError for a negative core return value; returns non-negative ones. */
export function check(ret: number, what: string): number {
  if (ret < 0) throw new CowsimError(errnoName(ret), what);
  return ret;
}

/**
 * The simulator broke one of its own invariants (a bug of cowsim or of a custom strategy, not a
 * bad call): thrown after a step when the kernel checks invariants after every step. @public
 */
export class InvariantError extends Error {
  /** Each violated invariant, with what the state showed. */
  readonly violations: readonly { readonly invariant: string; readonly detail: string }[];
  /** The step after which they were found. */
  readonly after: string;

  constructor(after: string, violations: readonly { readonly invariant: string; readonly detail: string }[]) {
    super(`cowsim invariant violated after ${after}:\n` + violations.map((x) => `  ${x.invariant}: ${x.detail}`).join("\n"));
    this.name = "InvariantError";
    this.violations = violations;
    this.after = after;
  }
}
