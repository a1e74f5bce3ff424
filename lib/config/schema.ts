import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { parseThreshold } from './threshold.ts';
import { parseStopCondition } from './stop-condition.ts';
import { show } from './messages.ts';
import { isTimeZone, minuteOfDay, weekdayIndex } from './maintenance.ts';
import {
  KUBE_DATABASE_DEFAULTS,
  LAB_DATABASE_DEFAULTS,
  LIMITS,
  LOAD_DEFAULTS,
  POLICY_DEFAULTS,
  REGION_DEFAULTS,
  SCENARIO_DEFAULTS,
  SERVICE_DEFAULTS,
  TARGET_DEFAULTS,
} from './defaults.ts';

/**
 * The drill file as written (durations and thresholds still strings, defaults not yet filled).
 * One strict schema: every unknown key is an error, because a misspelt key silently falling back
 * to a default is how a drill ends up measuring something other than what its author meant.
 * The descriptions double as editor help in drills/drill.schema.json.
 */

/** A value the schema needs when it is missing: the loader prefixes `missing required key "x"; `. */
function required(hint: string): { error: (iss: z.core.$ZodRawIssue) => string | undefined } {
  return {
    error: (iss) => {
      if (iss.input === undefined) return `expected ${hint}`;
      // `load:` with nothing after it: the author meant to fill it in, so say what belongs there.
      if (iss.input === null) return `expected ${hint}, got an empty value`;
      return undefined;
    },
  };
}

const DURATION_HELP = 'expected a duration like 500ms, 30s, 15m or 1h';
const DURATION_PATTERN = '^\\s*(\\d+(\\.\\d+)?(ms|s|m|h|d))+\\s*$';

function durationProblem(input: unknown): string {
  // A bare number gets parseDuration's own wording, so `timeout: 10` and `timeout: "10"` read the same.
  if (typeof input === 'number') {
    try {
      parseDuration(String(input));
    } catch (e) {
      return (e as Error).message;
    }
  }
  return `${DURATION_HELP}, got ${show(input)}`;
}

function duration(description: string, opts: { positive?: boolean; default?: string; minMs?: number } = {}) {
  return z
    .string({ error: (iss) => (iss.input === undefined ? DURATION_HELP : durationProblem(iss.input)) })
    .superRefine((text, ctx) => {
      let ms: number;
      try {
        ms = parseDuration(text);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message, input: text });
        return;
      }
      if (opts.positive && ms <= 0)
        ctx.addIssue({ code: 'custom', message: `expected a duration greater than 0, got ${show(text)}`, input: text });
      else if (opts.minMs !== undefined && ms < opts.minMs)
        ctx.addIssue({ code: 'custom', message: `expected at least ${opts.minMs / 1000}s, got ${show(text)}`, input: text });
    })
    .meta({ description, pattern: DURATION_PATTERN, ...(opts.default === undefined ? {} : { default: opts.default }) });
}

type ThresholdFamily = 'availability' | 'errors' | 'latency';
const LATENCY_AGGREGATES = new Set(['percentile', 'avg', 'min', 'max', 'med']);

function threshold(family: ThresholdFamily) {
  return z.string().superRefine((text, ctx) => {
    let kind: string;
    try {
      kind = parseThreshold(text).aggregate.kind;
    } catch (e) {
      // k6 spells percentiles p(95); `p95<500` is the typo everyone makes once.
      const hint = /^\s*p\d/.test(text) ? '; percentiles are written p(95), not p95' : '';
      ctx.addIssue({ code: 'custom', message: (e as Error).message + hint, input: text });
      return;
    }
    if (family === 'latency' && !LATENCY_AGGREGATES.has(kind)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a latency threshold like p(95)<500ms, avg<200ms or max<2s, got ${show(text)}`,
        input: text,
      });
    } else if (family !== 'latency' && kind !== 'rate') {
      const example = family === 'availability' ? 'rate>=99.9%' : 'rate<0.1%';
      ctx.addIssue({
        code: 'custom',
        message: `expected a rate threshold like ${example} (${family} is a share of requests), got ${show(text)}`,
        input: text,
      });
    }
  });
}

function thresholds(family: ThresholdFamily, description: string) {
  return z
    .array(threshold(family))
    .optional()
    .meta({ description, default: [...POLICY_DEFAULTS.slo[family]] });
}

const NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;
function identifier(what: string, example: string) {
  return z.string(required(`${what} of lowercase letters, digits and hyphens, e.g. ${example}`)).regex(NAME, {
    error: (iss) => `expected lowercase letters, digits and hyphens (like ${example}), got ${show(iss.input)}`,
  });
}

const TIERS = ['critical', 'important', 'standard'] as const;
const DATA_CLASSES = ['database', 'file-storage', 'logs'] as const;
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD'] as const;
// undici refuses these on every request (lib/load/templates.ts); refusing them here points at the line.
const UNSENDABLE_HEADERS = new Set(['transfer-encoding', 'keep-alive', 'upgrade', 'expect', 'content-length']);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const ServiceSchema = z.strictObject({
  name: z.string().min(1).optional().meta({ description: 'Service under test, for records.', default: SERVICE_DEFAULTS.name }),
  tier: z.enum(TIERS).optional().meta({ description: 'Service tier: picks the RTO target.', default: SERVICE_DEFAULTS.tier }),
  dataClass: z
    .enum(DATA_CLASSES)
    .optional()
    .meta({ description: 'Class of the data the service keeps: picks the RPO target.', default: SERVICE_DEFAULTS.dataClass }),
});

const httpUrl = z
  .string(required('the service base URL, e.g. url: http://127.0.0.1:8080'))
  .superRefine((text, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(text);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      ctx.addIssue({
        code: 'custom',
        message: `expected an http:// or https:// URL like http://127.0.0.1:8080, got ${show(text)}`,
        input: text,
      });
    } else if (url.search || url.hash) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a base URL without a query or fragment (put them in load.requests paths), got ${show(text)}`,
        input: text,
      });
    }
  })
  .meta({ description: 'Base URL of the running service (http or https).', format: 'uri' });

/**
 * Faults that destroy data on the live database (a DROP TABLE, a DELETE without WHERE) run only on a target
 * the drill file marks as allowing them, with the reason written beside it: the plan shows both.
 */
const dataLossGuard = {
  allowDataLoss: z.boolean().optional().meta({
    description:
      'Allow faults that destroy data on the live database (data-loss: drop-table, delete-rows); the drill then restores it from Blob. Needs dataLossReason.',
    default: false,
  }),
  dataLossReason: z
    .string()
    .trim()
    .min(1)
    .optional()
    .meta({ description: "Why destroying this target's data is acceptable (shown by `drill plan`); required with allowDataLoss: true." }),
};

function requireDataLossReason(t: { allowDataLoss?: boolean; dataLossReason?: string }, ctx: z.RefinementCtx): void {
  if (t.allowDataLoss === true && t.dataLossReason === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['allowDataLoss'],
      message: "allowDataLoss: true needs dataLossReason beside it: say why destroying this target's data is acceptable",
    });
  if (t.allowDataLoss !== true && t.dataLossReason !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['dataLossReason'],
      message: 'dataLossReason is given but allowDataLoss is not true: set allowDataLoss: true, or drop the reason',
    });
}

export const LabTargetSchema = z
  .strictObject({
    kind: z.literal('lab'),
    replicas: z
      .number()
      .int()
      .min(1)
      .max(LIMITS.maxReplicas)
      .optional()
      .meta({ description: 'Replica processes of the sample service behind the lab front.', default: TARGET_DEFAULTS.replicas }),
    labDir: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Where the lab keeps its state (default: DRILL_LAB_DIR or the OS temp dir).' }),
    archiveLag: duration(
      "How far the lab's continuous WAL archive may lag behind the primary (the archiver closes a segment at half of it); at least 2s.",
      { positive: true, default: '60s', minMs: 2000 },
    ).optional(),
    logShipInterval: duration(
      "How often the lab's log shipper uploads the service replicas' request logs to Blob (the logs data class); at least 1s.",
      { positive: true, default: '60s', minMs: 1000 },
    ).optional(),
    regions: z
      .literal([1, 2], {
        error: (iss) => `expected 1 or 2 (2 runs a secondary region's storage and a replicator into it), got ${show(iss.input)}`,
      })
      .optional()
      .meta({
        description:
          "Regions of the lab: 1, or 2 for a secondary region's storage (its own Azurite account) that a replicator fills from the primary's.",
        default: REGION_DEFAULTS.regions,
      }),
    replicationLag: duration(
      "How long a blob exists in the primary region's storage before the replicator copies it to the secondary (regions: 2); at least 1s. 15m is what Azure states for geo-redundant storage.",
      { positive: true, default: REGION_DEFAULTS.replicationLag, minMs: 1000 },
    ).optional(),
    database: z
      .strictObject({
        replication: z.enum(['async', 'sync']).optional().meta({
          description: 'Streaming replication to the standby: async, or sync (every commit waits for the standby, synchronous_commit=on).',
          default: LAB_DATABASE_DEFAULTS.replication,
        }),
        provider: z.enum(['pg-promote', 'patroni']).optional().meta({
          description: 'Who fails the database over: pg-promote (pg_promote() on the standby, then repoint the endpoint) or patroni.',
          default: LAB_DATABASE_DEFAULTS.provider,
        }),
      })
      .optional()
      .meta({ description: "The lab's PostgreSQL primary and hot standby." }),
    ...dataLossGuard,
  })
  .superRefine(requireDataLossReason)
  .superRefine((t, ctx) => {
    if (t.replicationLag !== undefined && t.regions !== 2)
      ctx.addIssue({
        code: 'custom',
        path: ['replicationLag'],
        message:
          'replicationLag is given but regions is not 2: a lab of one region replicates nothing; set regions: 2, or drop replicationLag',
      });
  })
  .meta({ description: 'The embedded lab: PostgreSQL pair, Azurite and the sample service on loopback.' });

export const HttpTargetSchema = z
  .strictObject({ kind: z.literal('http'), url: httpUrl })
  .meta({ description: 'An existing HTTP service: loaded and acted on through runbook commands only (exec-type scenarios).' });

const K8S_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const namespaceName = z
  .string()
  .max(63)
  .regex(K8S_NAME, {
    error: (iss) => `expected a Kubernetes namespace name (lowercase letters, digits and hyphens), got ${show(iss.input)}`,
  })
  .refine((n) => n !== 'kube-system', {
    error: 'kube-system is never a drill target: it runs the cluster itself; list only the namespaces of the workloads under test',
  });

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const K8S_NAME_OR_PATH = /^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$/;

const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
/** A Secret key the operator reads in the cluster (a SecretKeySelector): never the credential itself. */
const secretRef = z
  .strictObject(
    {
      name: z
        .string()
        .max(253)
        .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, {
          error: (iss) => `expected a Secret name (lowercase letters, digits, '-' and '.'), got ${show(iss.input)}`,
        }),
      key: z
        .string()
        .regex(SECRET_KEY, { error: (iss) => `expected a key of the Secret (letters, digits, '-', '_', '.'), got ${show(iss.input)}` }),
    },
    {
      error: (iss) =>
        iss.code === 'invalid_type'
          ? `expected a Secret reference { name, key }, got ${typeof iss.input === 'string' ? 'a value written inline' : show(iss.input)}: the credential stays in a Secret of the cluster, the drill file only names it`
          : undefined,
    },
  )
  .meta({ description: "A key of a Secret in the Cluster's namespace: { name, key }. Never the credential itself." });

const KubeRestoreSchema = z
  .strictObject({
    destinationPath: z
      .string(
        required(
          'the Blob container URL and path the cluster backs up to, e.g. destinationPath: https://ACCOUNT.blob.core.windows.net/pg-backups',
        ),
      )
      .regex(/^https?:\/\/[^/]+\/[^/]+/, {
        error: (iss) =>
          `expected the Blob container URL and path, like https://ACCOUNT.blob.core.windows.net/CONTAINER[/PATH], got ${show(iss.input)}`,
      })
      .meta({
        description: "The source cluster's barmanObjectStore.destinationPath: Blob container URL and path of its base backups and WAL.",
      }),
    serverName: z
      .string()
      .max(63)
      .regex(K8S_NAME_OR_PATH, { error: (iss) => `expected the folder name the cluster archives under, got ${show(iss.input)}` })
      .optional()
      .meta({ description: "The source cluster's barmanObjectStore.serverName (default: the Cluster's name)." }),
    azureCredentials: z
      .strictObject(
        {
          connectionString: secretRef.optional(),
          storageAccount: secretRef.optional(),
          storageKey: secretRef.optional(),
          storageSasToken: secretRef.optional(),
        },
        required(
          'Secret references for the Blob credentials, e.g. azureCredentials: { connectionString: { name: pg-backup-creds, key: AZURE_CONNECTION_STRING } }',
        ),
      )
      .superRefine((a, ctx) => {
        const ok = a.connectionString || (a.storageAccount && (a.storageKey || a.storageSasToken));
        if (!ok)
          ctx.addIssue({
            code: 'custom',
            message:
              'expected connectionString, or storageAccount with storageKey or storageSasToken, each a Secret reference { name, key }',
            input: a,
          });
      })
      .meta({ description: 'Blob credentials of the recovery object store, as Secret references (barman-cloud azureCredentials).' }),
    service: z
      .string(
        required(
          'the Service the application reaches the database through, e.g. service: orders-db (the operator owns <cluster>-rw and would undo a change to it)',
        ),
      )
      .max(63)
      .regex(K8S_NAME, { error: (iss) => `expected a Service name (lowercase letters, digits and hyphens), got ${show(iss.input)}` })
      .meta({
        description:
          "The Service the application uses for its database, in the Cluster's namespace: the restore points its selector at the recovery cluster's primary.",
      }),
    instances: z
      .number()
      .int()
      .min(1)
      .max(9)
      .optional()
      .meta({ description: "Instances of the recovery cluster (default: the damaged cluster's)." }),
  })
  .meta({
    description:
      'Point-in-time restore of this CloudNativePG cluster (data-loss): a recovery Cluster bootstrapped from its Blob object store, then the named Service repointed at it.',
  });

const KubeDatabaseSchema = z
  .strictObject({
    provider: z
      .literal('cnpg', {
        error: (iss) =>
          `expected provider: cnpg (CloudNativePG, the only database provider on a Kubernetes target), got ${show(iss.input)}`,
      })
      .meta({ description: 'Who runs and fails over the database: cnpg (CloudNativePG).' }),
    cluster: z
      .string(required('the CloudNativePG Cluster resource name, e.g. cluster: orders-db'))
      .max(63)
      .regex(K8S_NAME, {
        error: (iss) => `expected a Kubernetes resource name (lowercase letters, digits and hyphens), got ${show(iss.input)}`,
      })
      .meta({ description: 'Name of the CloudNativePG Cluster resource (postgresql.cnpg.io/v1).' }),
    namespace: namespaceName
      .optional()
      .meta({ description: "Namespace of the Cluster (default: the target's namespace); must be one of the target's namespaces." }),
    mode: z.enum(['promote', 'delete-primary']).optional().meta({
      description:
        'After the primary pod is deleted: delete-primary lets the operator fail over on its own (failoverDelay applies); promote has the drill promote the most advanced replica through the Cluster status, as `kubectl cnpg promote` does.',
      default: KUBE_DATABASE_DEFAULTS.mode,
    }),
    host: z
      .string(
        required(
          "the address of the cluster's -rw Service as reachable from where the drill runs, e.g. host: orders-db-rw.prod-orders.svc",
        ),
      )
      .min(1)
      .meta({
        description:
          'Host of the -rw Service as reachable from where the drill runs (in-cluster DNS name, a LoadBalancer, a port-forward).',
      }),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .meta({ description: 'Port of the -rw Service.', default: KUBE_DATABASE_DEFAULTS.port }),
    database: z.string().min(1).optional().meta({
      description: "Database holding the service's writes (the write ledger is read back from it).",
      default: KUBE_DATABASE_DEFAULTS.database,
    }),
    user: z.string().min(1).optional().meta({
      description: 'Role the drill connects as; it needs pg_monitor (or superuser) to read pg_stat_replication.',
      default: KUBE_DATABASE_DEFAULTS.user,
    }),
    passwordEnv: z
      .string()
      .regex(ENV_NAME, {
        error: (iss) =>
          `expected the name of an environment variable (letters, digits, underscores), got ${show(iss.input)}; the password itself never goes in the drill file`,
      })
      .optional()
      .meta({
        description: 'Environment variable holding the password (never the password itself).',
        default: KUBE_DATABASE_DEFAULTS.passwordEnv,
      }),
    restore: KubeRestoreSchema.optional(),
  })
  .meta({ description: 'A CloudNativePG cluster db-failover acts on: its pods are the database nodes, its -rw Service the endpoint.' });

export const KubernetesTargetSchema = z
  .strictObject({
    kind: z.literal('kubernetes'),
    kubeconfig: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config). Not with inCluster.' }),
    context: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'kubeconfig context to use (default: its current-context). Not with inCluster.' }),
    inCluster: z
      .boolean()
      .optional()
      .meta({ description: 'Use the service account of the pod the drill runs in (a Job or CronJob in the cluster).', default: false }),
    namespace: namespaceName
      .optional()
      .meta({ description: 'Namespace the drill acts in (default: the first of namespaces); must be one of namespaces.' }),
    namespaces: z
      .array(namespaceName, required('the namespaces this drill may touch, e.g. namespaces: [orders]'))
      .min(1, 'expected at least one namespace the drill may touch, e.g. namespaces: [orders]')
      .meta({ description: 'Allowlist: the only namespaces any action may touch. kube-system is always refused.' }),
    blastRadius: z.number().int().min(1).max(LIMITS.maxBlastRadius).optional().meta({
      description: 'The most pods one action may delete (and the most down at once because of the drill).',
      default: TARGET_DEFAULTS.blastRadius,
    }),
    url: httpUrl.meta({
      description: 'Base URL of the service under test, where the load goes (its Service or ingress, reachable from where the drill runs).',
      format: 'uri',
    }),
    database: KubeDatabaseSchema.optional(),
    ...dataLossGuard,
  })
  .superRefine(requireDataLossReason)
  .superRefine((t, ctx) => {
    if (t.namespace !== undefined && !t.namespaces.includes(t.namespace)) {
      ctx.addIssue({
        code: 'custom',
        path: ['namespace'],
        message: `namespace ${show(t.namespace)} is not in namespaces (${t.namespaces.join(', ')}): add it there if the drill is meant to act in it`,
        input: t.namespace,
      });
    }
    const dbNamespace = t.database?.namespace ?? t.namespace ?? t.namespaces[0];
    if (t.database && dbNamespace !== undefined && !t.namespaces.includes(dbNamespace)) {
      ctx.addIssue({
        code: 'custom',
        path: ['database', 'namespace'],
        message: `namespace ${show(dbNamespace)} of CloudNativePG cluster ${show(t.database.cluster)} is not in namespaces (${t.namespaces.join(', ')}): add it there if the drill is meant to fail this database over`,
        input: dbNamespace,
      });
    }
    if (t.inCluster && (t.kubeconfig !== undefined || t.context !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['inCluster'],
        message: "inCluster uses the pod's service account: remove kubeconfig and context, or set inCluster: false",
        input: t.inCluster,
      });
    }
  })
  .meta({
    description:
      'A Kubernetes cluster through its API (kubeconfig context or in-cluster service account), with a namespace allowlist and a blast-radius cap.',
  });

export const BlobTargetSchema = z
  .strictObject({
    kind: z.literal('blob'),
    container: z
      .string(required('the Blob container holding the backups, e.g. container: pg-backups'))
      .regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, {
        error: (iss) => `expected a Blob container name (3-63 lowercase letters, digits and single hyphens), got ${show(iss.input)}`,
      })
      .meta({
        description:
          'Blob container holding the backups. The account and its credential come from the environment (AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_URL with AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY), never from the drill file.',
      }),
    prefix: z
      .string()
      .optional()
      .meta({ description: 'Folder inside the container the backups were written under (drill backup --prefix).', default: '' }),
    scratchDir: z.string().min(1).optional().meta({
      description:
        'Where scratch clusters for restores are made (default: the OS temp dir). Needs room for the backup and the restored database.',
    }),
  })
  .meta({
    description:
      'Backups in an Azure Blob container (Azurite or a real storage account): restore drills and backup policy checks. No service, so no load.',
  });

export const TargetSchema = z
  .discriminatedUnion(
    'kind',
    [LabTargetSchema, HttpTargetSchema, KubernetesTargetSchema, BlobTargetSchema],
    required(
      'a target mapping like { kind: lab, replicas: 3 }, { kind: http, url: http://host:port } or { kind: kubernetes, context: aks-prod, namespaces: [orders], url: http://... }',
    ),
  )
  .meta({ description: 'Where the drill acts.' });

const RequestSchema = z.strictObject({
  method: z.enum(METHODS, required(`an HTTP method (${METHODS.join(', ')})`)).meta({ description: 'HTTP method.' }),
  path: z
    .string(required('a request path starting with "/", e.g. path: /orders'))
    .superRefine((text, ctx) => {
      if (!text.startsWith('/'))
        ctx.addIssue({ code: 'custom', message: `expected a path starting with "/", got ${show(text)}`, input: text });
      else if (/[^\u0021-\u00ff]/.test(text)) {
        ctx.addIssue({
          code: 'custom',
          message: `expected a path without spaces or characters that need percent-encoding, got ${show(text)}`,
          input: text,
        });
      }
    })
    .meta({ description: 'Path and query, joined to the target URL, e.g. /orders?limit=10.' }),
  body: z.unknown().optional().meta({ description: 'JSON body; string values may hold {{seq}} and {{token}}, filled per request.' }),
  headers: z
    .record(z.string(), z.string())
    .superRefine((headers, ctx) => {
      for (const [name, value] of Object.entries(headers)) {
        if (!HEADER_NAME.test(name))
          ctx.addIssue({ code: 'custom', path: [name], message: `expected a valid HTTP header name, got ${show(name)}`, input: name });
        else if (UNSENDABLE_HEADERS.has(name.toLowerCase()))
          ctx.addIssue({ code: 'custom', path: [name], message: 'the HTTP client sets this header itself; remove it', input: name });
        else if (/[\r\n\0]/.test(value))
          ctx.addIssue({ code: 'custom', path: [name], message: 'expected a header value without line breaks', input: value });
      }
    })
    .optional()
    .meta({ description: 'Extra request headers.' }),
  weight: z.number().min(0).optional().meta({ description: 'Relative share of the arrival rate.', default: 1 }),
});

export const LoadSchema = z
  .strictObject(
    {
      rate: z
        .number(required('the arrival rate in requests per second, e.g. rate: 200'))
        .gt(0)
        .max(LIMITS.maxRate)
        .meta({
          description: `Arrival rate in requests per second (open model: independent of how fast the service answers); at most ${LIMITS.maxRate}.`,
        }),
      requests: z
        .array(RequestSchema)
        .min(1)
        .max(LIMITS.maxRequestTemplates)
        .superRefine((list, ctx) => {
          // An empty list already has its own problem (min 1); the sum would only repeat it.
          if (list.length > 0 && list.reduce((sum, r) => sum + (r.weight ?? 1), 0) <= 0) {
            ctx.addIssue({
              code: 'custom',
              message: 'expected at least one request with a weight above 0: the weights add up to 0',
              input: list,
            });
          }
        })
        .optional()
        .meta({
          description: "Request mix; each request takes its weight's share of the rate.",
          default: LOAD_DEFAULTS.requests.map((r) => ({ ...r })),
        }),
      timeout: duration('Request timeout, timed from the scheduled send.', { positive: true, default: LOAD_DEFAULTS.timeout }).optional(),
      maxInFlight: z.number().int().min(1).optional().meta({
        description: 'Cap on requests in flight; a request due while it is reached counts as dropped.',
        default: LOAD_DEFAULTS.maxInFlight,
      }),
      connections: z
        .number()
        .int()
        .min(1)
        .optional()
        .meta({ description: 'HTTP connection pool size.', default: LOAD_DEFAULTS.connections }),
      baseline: duration('Load before injection; steady state is judged over it.', {
        positive: true,
        default: LOAD_DEFAULTS.baseline,
      }).optional(),
      cooldown: duration('Load kept running after verification.', { default: LOAD_DEFAULTS.cooldown }).optional(),
      attachments: z
        .strictObject({
          share: z.number().min(0).lt(1).meta({
            description:
              'Share of all requests that upload an order attachment (PUT /orders/<token>/attachment), ledgered in files.tsv: the file-storage data class. 0 = none.',
          }),
        })
        .optional()
        .meta({ description: 'Attachment uploads mixed into the load (the lab service stores them in Blob). Default: none.' }),
    },
    required('a load mapping, e.g. load: { rate: 200 }'),
  )
  .meta({ description: 'The load profile, running from before injection until after verification.' });

function perKey<K extends string>(keys: readonly K[], spelled: Record<K, string>, what: string) {
  const shape = {} as Record<K, z.ZodOptional<ReturnType<typeof duration>>>;
  for (const k of keys) shape[k] = duration(`${what} for ${k}.`, { default: spelled[k] }).optional();
  return z.strictObject(shape);
}

function percent(description: string, fallback: string) {
  return z
    .union([z.number(), z.string()], { error: () => `expected a percentage like ${fallback}` })
    .superRefine((v, ctx) => {
      const n = typeof v === 'number' ? v : /^\s*\d+(\.\d+)?\s*%\s*$/.test(v) ? Number(v.trim().replace(/%$/, '')) : NaN;
      if (!(n > 0 && n <= 100))
        ctx.addIssue({
          code: 'custom',
          message: `expected a percentage above 0 and at most 100, like ${fallback}, got ${show(v)}`,
          input: v,
        });
    })
    .optional()
    .meta({ description, default: fallback });
}

const ReplicaPolicySchema = z
  .strictObject({
    min: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: "Fewest replicas a Deployment (and its HPA's minReplicas) may run.", default: POLICY_DEFAULTS.replicas.min }),
    max: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: 'Most replicas its HPA may scale to.', default: POLICY_DEFAULTS.replicas.max }),
    cpu: percent('HPA CPU utilisation target.', POLICY_DEFAULTS.replicas.cpu),
    memory: percent('HPA memory utilisation target.', POLICY_DEFAULTS.replicas.memory),
  })
  .superRefine((r, ctx) => {
    if (r.min !== undefined && r.max !== undefined && r.max < r.min)
      ctx.addIssue({ code: 'custom', path: ['max'], message: `expected max (${r.max}) at least min (${r.min})`, input: r.max });
  });

const MAINTENANCE = POLICY_DEFAULTS.maintenance;

function clockTime(description: string, fallback: string) {
  return z
    .string({ error: () => `expected a time of day like ${fallback}` })
    .superRefine((text, ctx) => {
      if (minuteOfDay(text) === null)
        ctx.addIssue({
          code: 'custom',
          message: `expected a time of day HH:MM (00:00 to 24:00), like ${fallback}, got ${show(text)}`,
          input: text,
        });
    })
    .optional()
    .meta({ description, default: fallback, pattern: '^\\s*\\d{1,2}:\\d{2}\\s*$' });
}

const MaintenanceSchema = z
  .strictObject({
    days: z
      .array(
        z.string().superRefine((d, ctx) => {
          if (weekdayIndex(d) < 0)
            ctx.addIssue({
              code: 'custom',
              message: `expected a day of the week (sunday ... saturday, or sun ... sat), got ${show(d)}`,
              input: d,
            });
        }),
      )
      .min(1, 'expected at least one day, e.g. [sunday]')
      .optional()
      .meta({ description: 'Days of the week a window opens, in its time zone.', default: [...MAINTENANCE.days] }),
    start: clockTime('When the window opens (HH:MM, local to timeZone).', MAINTENANCE.start),
    end: clockTime('When it closes (HH:MM, up to 24:00); after start, on the same day.', MAINTENANCE.end),
    timeZone: z
      .string()
      .superRefine((zone, ctx) => {
        if (!isTimeZone(zone))
          ctx.addIssue({ code: 'custom', message: `expected an IANA time zone like UTC or Europe/Berlin, got ${show(zone)}`, input: zone });
      })
      .optional()
      .meta({ description: 'IANA time zone the days and times are in.', default: MAINTENANCE.timeZone }),
    notice: duration('How long before a drill its notice (`drill announce`) must go out.', {
      default: MAINTENANCE.notice,
    }).optional(),
  })
  .superRefine((m, ctx) => {
    const start = minuteOfDay(m.start ?? MAINTENANCE.start);
    const end = minuteOfDay(m.end ?? MAINTENANCE.end);
    if (start !== null && end !== null && end <= start)
      ctx.addIssue({
        code: 'custom',
        path: [m.end === undefined ? 'start' : 'end'],
        message: `expected end after start (${m.start ?? MAINTENANCE.start}); a window ends on the day it starts`,
        input: m.end ?? m.start,
      });
  });

export const PolicySchema = z
  .strictObject({
    rto: perKey(TIERS, POLICY_DEFAULTS.rto, 'Recovery time objective')
      .optional()
      .meta({ description: "RTO per service tier; keys given here replace the organisation's." }),
    rpo: perKey(DATA_CLASSES, POLICY_DEFAULTS.rpo, 'Recovery point objective')
      .optional()
      .meta({ description: "RPO per data class; keys given here replace the organisation's." }),
    slo: z
      .strictObject({
        availability: thresholds(
          'availability',
          'Availability SLOs: rate thresholds over successful / scheduled requests, e.g. rate>=99.9%.',
        ),
        latency: thresholds('latency', 'Latency SLOs in k6 syntax, e.g. p(95)<500ms.'),
        errors: thresholds('errors', 'Error SLOs: rate thresholds over failed / scheduled requests, e.g. rate<0.1%.'),
      })
      .optional()
      .meta({ description: 'Service level objectives; a list given here replaces that whole list.' }),
    recoveryWindow: duration('How long the SLOs must hold, uninterrupted, for the service to count as recovered.', {
      positive: true,
      default: POLICY_DEFAULTS.recoveryWindow,
    }).optional(),
    budgetPeriod: duration('Error budget period (default a mean month).', {
      positive: true,
      default: POLICY_DEFAULTS.budgetPeriod,
    }).optional(),
    replicas: ReplicaPolicySchema.optional().meta({
      description:
        'Production autoscaling policy the replica-floor probe checks a Deployment and its HPA against (replicaFloor: true in a scenario).',
    }),
    maintenance: MaintenanceSchema.optional().meta({
      description:
        "When drills may run on a target other than the lab, and how long ahead they are announced. Default: the organisation's, Sundays 02:00-04:00 UTC with 48h notice.",
    }),
  })
  .meta({ description: "Objectives; every key is optional and defaults to the organisation's numbers." });

export const ScenarioEntrySchema = z.strictObject({
  scenario: z
    .string(required('a scenario module name, e.g. scenario: pod-kill'))
    .min(1)
    .meta({ description: 'Scenario module name under scenarios/.' }),
  name: identifier('an entry name', 'kill-one')
    .optional()
    .meta({ description: 'Entry id for --scenario and run folders; unique in the drill. Default: the scenario name.' }),
  params: z.record(z.string(), z.unknown()).optional().meta({ description: "Parameters, checked against the scenario's own schema." }),
  timeout: duration('Longest wait for recovery before the RTO counts as missed.', {
    positive: true,
    default: SCENARIO_DEFAULTS.timeout,
  }).optional(),
  tier: z
    .enum(TIERS)
    .optional()
    .meta({ description: "Tier for this entry. Default: service.tier if given, else the scenario's own, else critical." }),
  dataClass: z
    .enum(DATA_CLASSES)
    .optional()
    .meta({ description: "Data class for this entry. Default: service.dataClass if given, else the scenario's own, else database." }),
});

export const DrillFileSchema = z
  .strictObject(
    {
      name: identifier('a drill name', 'lab-pod-kill').meta({ description: 'Drill name: lowercase letters, digits and hyphens.' }),
      kind: z
        .enum(['quarterly', 'monthly', 'annual', 'adhoc'], required('the drill kind: quarterly, monthly, annual or adhoc'))
        .meta({ description: 'Which schedule this drill belongs to.' }),
      description: z.string().optional().meta({ description: 'What the drill is for, in a sentence or two.' }),
      owner: z.string().min(1).optional().meta({ description: 'Team or person that owns the drill.' }),
      participants: z.array(z.string().min(1)).optional().meta({ description: 'People taking part.', default: [] }),
      approver: z.string().min(1).optional().meta({ description: 'Who approved running it.' }),
      service: ServiceSchema.optional().meta({ description: 'The service under test.' }),
      target: TargetSchema,
      policy: PolicySchema.optional(),
      load: LoadSchema,
      stopConditions: z
        .array(
          z.string().superRefine((text, ctx) => {
            try {
              parseStopCondition(text);
            } catch (e) {
              ctx.addIssue({ code: 'custom', message: (e as Error).message, input: text });
            }
          }),
        )
        .optional()
        .meta({
          description: 'Abort when one holds: `<metric> <op> <value> for <duration>`, e.g. "error_rate > 50% for 10s".',
          default: [],
        }),
      scenarios: z
        .array(ScenarioEntrySchema, required('a list of scenario entries, e.g. - scenario: pod-kill'))
        .min(1, 'expected at least one scenario entry, e.g. - scenario: pod-kill')
        .meta({ description: 'Scenarios to run, in order.' }),
    },
    {
      error: (iss) => {
        if (iss.code !== 'invalid_type') return undefined;
        const got = iss.input === null || iss.input === undefined ? 'an empty file' : show(iss.input);
        return `expected a drill mapping (name, kind, target, load, scenarios), got ${got}`;
      },
    },
  )
  .meta({ title: 'drill', description: 'A chaos / disaster-recovery drill: a target, a load profile, policy and the scenarios to run.' });

export type DrillFile = z.output<typeof DrillFileSchema>;

/**
 * A drill on a blob target (a restore from backups) has no service, so no load: its schema is the
 * drill's without `load`, and a `load:` there is refused as an unknown key.
 */
export const BlobDrillFileSchema = DrillFileSchema.omit({ load: true });
export type BlobDrillFile = z.output<typeof BlobDrillFileSchema>;

/** The schema a drill file is checked against, chosen by its target kind. */
export function drillFileSchemaFor(value: unknown): typeof DrillFileSchema | typeof BlobDrillFileSchema {
  const target = value !== null && typeof value === 'object' ? (value as { target?: unknown }).target : undefined;
  const kind = target !== null && typeof target === 'object' ? (target as { kind?: unknown }).kind : undefined;
  return kind === 'blob' ? BlobDrillFileSchema : DrillFileSchema;
}
export type TargetFile = z.output<typeof TargetSchema>;
