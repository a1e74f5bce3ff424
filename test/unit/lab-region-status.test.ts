/**
 * What `drill lab status` says about the regions, from the facts it gathered: once the global front serves the
 * secondary, one plain sentence (not the dead primary's parts as breakage); while it serves the primary, a
 * global front that is missing, dead or pointing at the wrong port is a problem.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GlobalFrontStatus } from '../../lib/lab/regions/global-front.ts';
import { globalFrontProblems, regionsStatus } from '../../lib/lab/status.ts';
import type { DaemonStatus, LabConfig, LabFacts } from '../../lib/lab/types.ts';

const config: LabConfig = {
  version: 1,
  createdAt: '2026-12-04T00:00:00Z',
  replicas: 2,
  primary: 'n1',
  nodes: { n1: { port: 5432 } },
  regions: 2,
};
const gf = (o: Partial<GlobalFrontStatus> = {}): GlobalFrontStatus => ({
  pid: 100,
  port: 18000,
  controlPort: 40000,
  active: 'primary',
  upstreamPort: 41000,
  switchedAt: null,
  updatedAt: '2026-12-04T00:00:00Z',
  alive: true,
  ...o,
});
const downCompute = {
  up: false,
  frontPort: null,
  ready: 0,
  desired: 0,
  daemonPid: null,
  controlPort: null,
  dbEndpointPort: null,
  dbPort: null,
  logShipperPid: null,
};

function facts(o: {
  front?: GlobalFrontStatus | null;
  primaryFront?: number | null;
  daemonAlive?: boolean;
  nodeAlive?: boolean;
}): LabFacts {
  const live = o.primaryFront ? ({ front: { port: o.primaryFront, paused: false } } as DaemonStatus) : null;
  return {
    config,
    nodes: [
      { name: 'n1', role: 'primary', host: '127.0.0.1', port: 5432, dataDir: '/x', log: '/x.log', pid: null, alive: o.nodeAlive ?? false },
    ],
    daemon: null,
    daemonAlive: o.daemonAlive ?? false,
    live,
    pgPid: null,
    pgAlive: false,
    replicaPids: [],
    azurite: { up: false, alive: false, azurite: null },
    secondary: { up: true, alive: true, azurite: null },
    regions: { globalFront: o.front ?? null, compute: downCompute, db: null },
  };
}

test('serving from the secondary after a region loss: one plain sentence naming when', () => {
  const s = regionsStatus(facts({ front: gf({ active: 'secondary', switchedAt: '2026-12-04T23:10:00.000Z' }) }))!;
  assert.equal(s.active, 'secondary');
  assert.equal(s.note, 'serving from the secondary region since 2026-12-04T23:10:00.000Z; primary region down');
  assert.equal(s.secondary.compute.walArchiver, false);
  assert.equal(s.secondary.compute.replicator, false);
  const rebuilding = regionsStatus(facts({ front: gf({ active: 'secondary', switchedAt: 'T' }), nodeAlive: true }))!;
  assert.equal(rebuilding.note, 'serving from the secondary region since T; primary region partly running again, not serving');
});

test('serving from the primary: no sentence; a missing, dead or misdirected global front is a problem', () => {
  assert.equal(regionsStatus(facts({ front: gf(), primaryFront: 41000, daemonAlive: true }))!.note, null);
  assert.deepEqual(globalFrontProblems(facts({ front: gf(), primaryFront: 41000, daemonAlive: true })), []);
  assert.match(globalFrontProblems(facts({ front: null, primaryFront: 41000 }))[0]!.detail, /no global front runs/);
  assert.match(
    globalFrontProblems(facts({ front: gf({ alive: false }), primaryFront: 41000 }))[0]!.detail,
    /pid 100, port 18000\) is not running/,
  );
  assert.match(
    globalFrontProblems(facts({ front: gf({ upstreamPort: 41001 }), primaryFront: 41000 }))[0]!.detail,
    /to port 41001, but the primary's front is on port 41000/,
  );
  assert.equal(regionsStatus({ ...facts({}), regions: undefined }), undefined, 'a one-region lab has no regions view');
});
