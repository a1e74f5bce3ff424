/**
 * The region-loss drill the tests run on the two-region lab, and that lab, from one set of figures: the drill file's
 * target and `lab up` cannot drift apart (a drill whose replicationLag differs from the lab's judges the wrong lag).
 */
import { writeFileSync } from 'node:fs';
import { labDown, labUp, type LabUpOptions } from '../../lib/lab/index.ts';
import { keepLabCopy, putLabCopyBack } from './lab-copy.ts';
import { waitForSecondaryCaughtUp, waitForSecondaryCopy } from './secondary-copy.ts';

export interface RegionDrill {
  name: string;
  /** Seconds; 2 unless the test is about the lag. */
  replicationLagS?: number;
  /** Seconds between log segments shipped; 3. */
  logShipS?: number;
  /** Seconds of load before the region is lost; 4. */
  baselineS?: number;
  cooldownS?: number;
  rate?: number;
  /** A share of requests uploads an attachment (the file-storage ledger); on unless turned off. */
  attachments?: boolean;
  failback?: boolean;
}

const ARCHIVE_LAG_S = 4;

export function regionDrillYaml(o: RegionDrill): string {
  const lag = o.replicationLagS ?? 2;
  return `name: region-loss-${o.name}
kind: annual
service: { name: orders, tier: critical, dataClass: database }
target: { kind: lab, replicas: 2, regions: 2, replicationLag: ${lag}s, archiveLag: ${ARCHIVE_LAG_S}s, logShipInterval: ${o.logShipS ?? 3}s }
# The region is down until the front switches: the SLOs of the fault phase are missed by design; loose latency,
# since replicas of the secondary load the storage SDK on their first upload.
policy:
  recoveryWindow: 3s
  slo: { availability: ['rate>=90%'], errors: ['rate<10%'], latency: ['p(95)<4s'] }
load:
  rate: ${o.rate ?? 40}
  requests:
    - { method: GET, path: '/orders?limit=10', weight: 6 }
    - { method: POST, path: /orders, body: { item: widget, token: '{{token}}', seq: '{{seq}}' }, weight: 4 }
${o.attachments === false ? '' : '  attachments: { share: 0.2 }\n'}  timeout: 4s
  baseline: ${o.baselineS ?? 4}s
  cooldown: ${o.cooldownS ?? 2}s
scenarios:
  - scenario: region-loss
    name: lose-primary
    params: { ${o.failback ? 'failback: true, ' : ''}restoreTimeout: 5m, detectTimeout: 20s }
    timeout: 2m
`;
}

/** Writes the drill file. */
export function writeRegionDrill(path: string, o: RegionDrill): void {
  writeFileSync(path, regionDrillYaml(o));
}

/** `lab up`'s options for a region drill's figures. */
export const regionLabOptions = (o: RegionDrill): Omit<LabUpOptions, 'dir'> => ({
  replicas: 2,
  regions: 2,
  replicationLagMs: (o.replicationLagS ?? 2) * 1000,
  archiveLagMs: ARCHIVE_LAG_S * 1000,
  logShipIntervalMs: (o.logShipS ?? 3) * 1000,
});

/**
 * `lab up` with the drill's figures, then until the secondary holds a base backup and `segments` WAL segments after
 * its start (a region lost before that has nothing to restore from).
 */
export async function upRegionLab(lab: string, o: RegionDrill, segments = 2): Promise<{ serviceUrl: string; start: string }> {
  const info = await labUp({ dir: lab, ...regionLabOptions(o) });
  const { start } = await waitForSecondaryCopy(lab, info.serviceUrl, segments);
  return { serviceUrl: info.serviceUrl, start };
}

/** The lab figures each folder's kept copy was made with (upRegionLabInTurn). */
const keptWith = new Map<string, string>();

/**
 * `upRegionLab` for tests of one file that take the same folder in turn: the first call with a set of lab figures
 * brings the lab up and keeps a stopped copy (lab-copy.ts); each later call with the same figures puts that copy
 * back, so every such test starts from the same lab, whatever the test before it did to it.
 */
export async function upRegionLabInTurn(lab: string, o: RegionDrill, segments = 2): Promise<{ serviceUrl: string; start: string }> {
  const figures = JSON.stringify(regionLabOptions(o));
  if (keptWith.get(lab) === figures) await putLabCopyBack(lab);
  else {
    // A lab kept here with other figures goes; a running one with these figures is kept as it is.
    if (keptWith.has(lab)) await labDown({ dir: lab, purge: true });
    await upRegionLab(lab, o, segments);
    await keepLabCopy(lab);
    keptWith.set(lab, figures);
  }
  const info = await labUp({ dir: lab, ...regionLabOptions(o) });
  const { start } = await waitForSecondaryCopy(lab, info.serviceUrl, segments);
  await waitForSecondaryCaughtUp(lab, (ARCHIVE_LAG_S + (o.replicationLagS ?? 2)) * 1000);
  return { serviceUrl: info.serviceUrl, start };
}
