import { resolve } from 'node:path';
import { ZenError } from '../errors.js';
import { maskUrl } from '../log.js';

/** A parsed database URL: which backend, and where. */
export type StoreLocation =
  | { kind: 'sqlite'; /** Absolute path, or `:memory:`. */ path: string }
  | { kind: 'postgres'; url: string };

/**
 * Parses `sqlite:PATH` (PATH relative to the current directory, or `:memory:`) and
 * `postgres://…` / `postgresql://…`. Anything else throws `ERR_STORE_URL`.
 */
export function parseStoreUrl(url: string): StoreLocation {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw new ZenError('ERR_STORE_URL', url);
    return { kind: 'sqlite', path: path === ':memory:' ? path : resolve(path) };
  }
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url };
  throw new ZenError('ERR_STORE_URL', maskUrl(url));
}

