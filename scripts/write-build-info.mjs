// Writes dist/build-info.json after `tsc` (npm run build): the package version and the git commit the build was made
// from (null outside a git checkout), with whether tracked files differed from it. result.json files record it
// (src/run/build-info.ts), so a run copied elsewhere still says which code made it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const git = (...args) => {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
};
const commit = git('rev-parse', 'HEAD');
const status = commit === null ? null : git('status', '--porcelain', '--untracked-files=no');
const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
mkdirSync('dist', { recursive: true });
writeFileSync('dist/build-info.json', `${JSON.stringify({ version, commit, dirty: status === null ? null : status !== '' })}\n`);
