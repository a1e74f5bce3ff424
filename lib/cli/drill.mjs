#!/usr/bin/env node
// The bin stays plain JavaScript so `npx drill` works straight after `npm ci`, with no build step:
// it registers tsx for this process only and hands over to the TypeScript entry point.
import { register } from 'tsx/esm/api';

// tsx compiles in a loader thread that takes a copy of our environment when it starts, and the esbuild
// process it runs inherits that copy for as long as we live: it gets none of the user's credentials.
const ours = { ...process.env };
const compilerNeeds = (name) => /^(PATH|HOME|LANG|LC_ALL|TMPDIR|TZ)$|^(TSX|NODE|ESBUILD)_/.test(name);
for (const name of Object.keys(ours)) if (!compilerNeeds(name)) delete process.env[name];
register();
Object.assign(process.env, ours);
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
