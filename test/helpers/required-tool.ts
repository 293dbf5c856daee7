// Tests that drive a real outside client (firefox-esr, nghttp) skip where it is not installed,
// but not under CI: there a missing client fails the file, so a green CI always means the real
// clients ran (.ci/run installs them and sets CI=true).

/** Whether the tests run under CI (`CI` set, as CI services do, and not `0`/`false`). */
export function underCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI !== undefined && env.CI !== '' && !/^(0|false)$/i.test(env.CI);
}

/**
 * The `skip` option for tests that need a tool: false when it is `installed`; else `missing` (why,
 * and how to install it), or under CI an error thrown instead.
 */
export function skipUnlessInstalled(installed: boolean, missing: string, env: NodeJS.ProcessEnv = process.env): false | string {
  if (installed) return false;
  if (underCi(env)) throw new Error(`${missing}: under CI this is a failure, not a skip`);
  return missing;
}
