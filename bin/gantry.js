#!/usr/bin/env node
// The installed `gantry` command: runs the compiled CLI (built by `npm install` via `prepare`).
// Exits explicitly once a command is done: idle keep-alive sockets must not hold the process.
import { main } from '../dist/cli/main.js';
main(process.argv).then((code) => process.exit(code));
