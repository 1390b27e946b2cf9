#!/usr/bin/env -S node --single-threaded-gc
/**
 * Entry point of the `granq` command (see program.ts). Exits explicitly so no stray timer keeps it alive.
 * --single-threaded-gc: V8's parallel GC helpers would compete with the kernel threads for the cores (V8 refuses to
 * change this flag after start-up, so it is set here and in package.json's scripts).
 */
import { main } from './program.js';

process.exit(await main(process.argv.slice(2)));
