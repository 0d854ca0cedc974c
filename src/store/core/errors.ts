// Constructors for the StoreErrors every backend raises, so the messages stay uniform.

import { StoreError, StoreErrorCode, isStoreError } from '../store.ts';

export const notFound = (key: string): StoreError =>
  new StoreError(StoreErrorCode.NOT_FOUND, `key not found: ${key}`, key);

export const alreadyExists = (key: string): StoreError =>
  new StoreError(StoreErrorCode.ALREADY_EXISTS, `key already exists: ${key}`, key);

export const conflict = (key: string, expected: number, actual: number): StoreError =>
  new StoreError(
    StoreErrorCode.CONFLICT,
    `key ${key} is at revision ${actual}, not the expected ${expected}`,
    key,
  );

export const gone = (message: string): StoreError => new StoreError(StoreErrorCode.GONE, message);

export const invalid = (message: string, key?: string): StoreError =>
  new StoreError(StoreErrorCode.INVALID, message, key);

export const unavailable = (message: string, cause?: unknown): StoreError => {
  const detail = cause instanceof Error ? `: ${cause.message}` : cause === undefined ? '' : `: ${String(cause)}`;
  const err = new StoreError(StoreErrorCode.UNAVAILABLE, message + detail);
  if (cause !== undefined) (err as Error & { cause?: unknown }).cause = cause;
  return err;
};

export const storeClosed = (name: string): StoreError => unavailable(`${name} store is closed`);

/** Passes StoreErrors through and wraps anything else (I/O, driver bugs) as UNAVAILABLE. */
export const asStoreError = (err: unknown, what: string): StoreError =>
  isStoreError(err) ? err : unavailable(what, err);
