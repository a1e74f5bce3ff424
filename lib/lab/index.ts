/**
 * The embedded lab: PostgreSQL on loopback, an orders service run as supervised replica processes, a
 * front (the Service), a DB endpoint (the primary's stable address) and a control API, all in one
 * directory. `drill lab up|down|status` and `drill run` on a `lab` target use these functions.
 */
export { labDown, labUp, type LabUpOptions } from './lifecycle.ts';
export { labStatus } from './status.ts';
export { defaultLabDir, labPaths } from './paths.ts';
export { getDaemonStatus, labEvents, pauseFront, resumeFront, scaleReplicas, setDbPrimary, type PauseResult } from './daemon/client.ts';
export type {
  DaemonStatus,
  LabComponent,
  LabDownResult,
  LabEvent,
  LabInfo,
  LabPart,
  LabProblem,
  LabReplicationStatus,
  LabSecondaryView,
  LabStatus,
  ReplicaView,
} from './types.ts';
export { labSecondaryBlobEnv, labSecondaryBlobSource, REPLICATED_CONTAINERS, secondaryPaths } from './regions/secondary.ts';
