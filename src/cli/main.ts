#!/usr/bin/env node
/** Entry point of the `granq` command (see program.ts). Exits explicitly so no stray timer keeps it alive. */
import { main } from './program.js';

process.exit(await main(process.argv.slice(2)));
