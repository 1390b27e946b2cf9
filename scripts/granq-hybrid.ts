#!/usr/bin/env node
/** `granq` on the hybrid backend (see hybrid.ts): node dist/scripts/granq-hybrid.js eval --wbits 4 ... */
import './hybrid.js';
import { main } from '../src/cli/program.js';

process.exit(await main(process.argv.slice(2)));
