// Option parsers shared by the commands of the application-server and user-agent sides.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option } from 'commander';

/** `--ca <file>`: the PEM file's contents. */
export function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new InvalidArgumentError(`cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A parser of an http(s) URL option; `what` completes "expected the http(s) URL of …". */
export function httpUrl(what: string): (value: string) => string {
  return (value) => {
    if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) throw new InvalidArgumentError(`expected the http(s) URL of ${what}`);
    return value;
  };
}

/** A parser of an integer option of at least `min`. */
export function integer(min: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
      throw new InvalidArgumentError(`expected an integer of at least ${min}`);
    }
    return Number(value);
  };
}

/** `--ca <file>`, read as it is parsed. */
export const caOption = () => new Option('--ca <file>', 'trust this PEM certificate (e.g. a self-signed test server)').argParser(readCa);

/** `--timeout <ms>` of one request. */
export const timeoutOption = (defaultMs: number) => new Option('--timeout <ms>', 'give up after this many milliseconds').argParser(integer(1)).default(defaultMs);
