// Plain JavaScript, loaded before anything else of the CLI: on a Node.js too old for webpushd
// (or the system's node when the pinned one is missing) it says in one line which Node.js is
// needed, instead of failing with a stack trace at the first newer feature.
/**
 * Exits 1 with one line on stderr unless this Node.js is at least major.minor.
 * @param {number} major @param {number} minor @param {string} advice what to do about it
 */
export function requireNode(major, minor, advice) {
  const [have, haveMinor] = process.versions.node.split('.').map(Number);
  if (have > major || (have === major && haveMinor >= minor)) return;
  const wanted = minor ? `${major}.${minor}` : String(major);
  process.stderr.write(`webpushd needs Node.js ${wanted} or later; this is ${process.version} (${process.execPath}). ${advice}\n`);
  process.exit(1);
}
