#!/usr/bin/env node
// The installed `gantry` command: runs the compiled CLI (built by `npm install` via `prepare`).
import { main } from '../dist/cli/main.js';
main(process.argv).then((code) => { process.exitCode = code; });
