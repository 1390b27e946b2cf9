/**
 * The one error type of granq. Its message is one line that names the argument, what was expected and what was
 * got; the CLI prints it without a stack trace and exits non-zero.
 */
export class GranqError extends Error {
  override readonly name = 'GranqError';
  constructor(message: string) {
    super(message);
  }
}

/** Throws a GranqError when `cond` is false. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new GranqError(typeof message === 'string' ? message : message());
}
