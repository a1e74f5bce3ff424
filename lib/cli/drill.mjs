#!/usr/bin/env node
// The bin stays plain JavaScript so `npx drill` works straight after `npm ci`, with no build step:
// it registers tsx for this process only and hands over to the TypeScript entry point.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
