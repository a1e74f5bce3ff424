import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import {
  AZURITE_ACCOUNT,
  AZURITE_ACCOUNT_KEY,
  BlobConfigError,
  BlobTransferError,
  blobServiceFromEnv,
  createAccountSasToken,
  createBlobSasToken,
  describeBlobTarget,
  downloadToFileParallel,
  listBackups,
  startAzurite,
  uploadStream,
  type AzuriteHandle,
  type BlobServiceClient,
} from '../../lib/adapters/blob/index.ts';
import { redactSecrets } from '../../lib/util/secrets.ts';

let dir = '';
let az: AzuriteHandle | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drill-blob-client-'));
  az = await startAzurite({ dir: join(dir, 'azurite') });
});

after(async () => {
  await az?.stop();
  await rm(dir, { recursive: true, force: true });
});

function azurite(): AzuriteHandle {
  assert.ok(az, 'Azurite did not start');
  return az;
}

/** Create a container, write and read a blob through the client: the configuration really works. */
async function roundTrip(service: BlobServiceClient, containerName: string): Promise<void> {
  const c = service.getContainerClient(containerName);
  await c.create();
  const up = await uploadStream(c, 'probe.bin', Readable.from([randomBytes(100_000)]), { blockSize: 40_000 });
  const down = await downloadToFileParallel(c.getBlobClient('probe.bin'), join(dir, `${containerName}.bin`), { rangeSize: 30_000 });
  assert.equal(down.sha256, up.sha256);
}

test('connection string from the environment', async () => {
  const env = { AZURE_STORAGE_CONNECTION_STRING: azurite().connectionString };
  await roundTrip(blobServiceFromEnv(env), 'cfg-connstr');
  assert.deepEqual(describeBlobTarget(env), { accountName: AZURITE_ACCOUNT, endpoint: azurite().blobEndpoint, auth: 'connection-string' });
});

test('account URL + account SAS from the environment', async () => {
  const sas = createAccountSasToken({ accountName: AZURITE_ACCOUNT, accountKey: AZURITE_ACCOUNT_KEY });
  // A leading `?`, as the portal copies it, is accepted.
  const env = { AZURE_STORAGE_ACCOUNT_URL: azurite().blobEndpoint, AZURE_STORAGE_SAS_TOKEN: `?${sas}` };
  await roundTrip(blobServiceFromEnv(env), 'cfg-sas');
  assert.deepEqual(describeBlobTarget(env), { accountName: AZURITE_ACCOUNT, endpoint: azurite().blobEndpoint, auth: 'sas-token' });
});

test('account URL + account name + key from the environment', async () => {
  const env = {
    AZURE_STORAGE_ACCOUNT_URL: `${azurite().blobEndpoint}/`,
    AZURE_STORAGE_ACCOUNT: AZURITE_ACCOUNT,
    AZURE_STORAGE_KEY: AZURITE_ACCOUNT_KEY,
  };
  const service = blobServiceFromEnv(env);
  await roundTrip(service, 'cfg-key');
  assert.deepEqual(describeBlobTarget(service), { accountName: AZURITE_ACCOUNT, endpoint: azurite().blobEndpoint, auth: 'shared-key' });
});

test('a connection string carrying a SAS instead of a key works too', async () => {
  const sas = createAccountSasToken({ accountName: AZURITE_ACCOUNT, accountKey: AZURITE_ACCOUNT_KEY });
  const env = { AZURE_STORAGE_CONNECTION_STRING: `BlobEndpoint=${azurite().blobEndpoint};SharedAccessSignature=${sas}` };
  await roundTrip(blobServiceFromEnv(env), 'cfg-connstr-sas');
});

test('a blob SAS reaches its one blob and nothing else', async () => {
  const admin = blobServiceFromEnv({ AZURE_STORAGE_CONNECTION_STRING: azurite().connectionString });
  const c = admin.getContainerClient('cfg-blobsas');
  await c.create();
  const up = await uploadStream(c, 'granted.dump', Readable.from([randomBytes(50_000)]));
  await uploadStream(c, 'other.dump', Readable.from([randomBytes(10)]));
  const sas = createBlobSasToken({
    accountName: AZURITE_ACCOUNT,
    accountKey: AZURITE_ACCOUNT_KEY,
    container: 'cfg-blobsas',
    blob: 'granted.dump',
    permissions: 'r',
  });
  const narrow = blobServiceFromEnv({ AZURE_STORAGE_ACCOUNT_URL: azurite().blobEndpoint, AZURE_STORAGE_SAS_TOKEN: sas }).getContainerClient(
    'cfg-blobsas',
  );
  const down = await downloadToFileParallel(narrow.getBlobClient('granted.dump'), join(dir, 'granted.dump'));
  assert.equal(down.sha256, up.sha256);
  await assert.rejects(downloadToFileParallel(narrow.getBlobClient('other.dump'), join(dir, 'other.dump')), (e: unknown) => {
    assert.ok(e instanceof BlobTransferError);
    assert.equal(e.statusCode, 403);
    assert.match(
      e.message,
      /cannot read properties of cfg-blobsas\/other\.dump: HTTP 403 Auth\w+: the configured credential does not allow this/,
    );
    return true;
  });
});

test('missing variables are named', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{}, /^no Blob storage configured: missing AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL$/],
    [{ AZURE_STORAGE_CONNECTION_STRING: '  ' }, /missing AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL/],
    [
      { AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net' },
      /credential is incomplete: missing AZURE_STORAGE_SAS_TOKEN, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY$/,
    ],
    [
      { AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net', AZURE_STORAGE_ACCOUNT: 'acct' },
      /credential is incomplete: missing AZURE_STORAGE_KEY$/,
    ],
    [
      { AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net', AZURE_STORAGE_KEY: 'a2V5a2V5a2V5a2V5' },
      /credential is incomplete: missing AZURE_STORAGE_ACCOUNT$/,
    ],
    [
      { AZURE_STORAGE_ACCOUNT: 'acct', AZURE_STORAGE_KEY: 'a2V5a2V5a2V5a2V5' },
      /missing AZURE_STORAGE_ACCOUNT_URL \(AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY are set, but without AZURE_STORAGE_ACCOUNT_URL\)/,
    ],
    [{ AZURE_STORAGE_SAS_TOKEN: 'sv=2024&sig=c2lnc2lnc2lnc2ln' }, /missing AZURE_STORAGE_ACCOUNT_URL \(AZURE_STORAGE_SAS_TOKEN is set/],
    [
      { AZURE_STORAGE_ACCOUNT_URL: 'acct.blob.core.windows.net', AZURE_STORAGE_SAS_TOKEN: 'sv=1' },
      /AZURE_STORAGE_ACCOUNT_URL is not a URL/,
    ],
    [
      { AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net/?sv=1&sig=cGFzdGVkLWludG8tdXJs' },
      /must not carry a query string; put the SAS token in AZURE_STORAGE_SAS_TOKEN/,
    ],
  ];
  for (const [env, expected] of cases) {
    assert.throws(
      () => blobServiceFromEnv(env),
      (e: unknown) => {
        assert.ok(e instanceof BlobConfigError, `not a BlobConfigError for ${Object.keys(env).join(',')}`);
        assert.equal(e.exitCode, 2);
        assert.match(e.message, expected);
        for (const v of Object.values(env))
          if (v.length > 12 && !v.startsWith('http')) assert.ok(!e.message.includes(v), 'a secret leaked into the message');
        assert.doesNotMatch(e.message, /cGFzdGVkLWludG8tdXJs/);
        return true;
      },
    );
  }
  assert.throws(
    () => blobServiceFromEnv({}),
    (e: unknown) =>
      e instanceof BlobConfigError && /or AZURE_STORAGE_ACCOUNT_URL with AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY/.test(e.next ?? ''),
  );
});

test('redactSecrets masks keys and signatures in real connection strings and URLs', () => {
  const cs = azurite().connectionString;
  assert.ok(cs.includes(AZURITE_ACCOUNT_KEY), 'precondition: the connection string carries the key');
  const masked = redactSecrets(`connecting with ${cs}`);
  assert.ok(!masked.includes(AZURITE_ACCOUNT_KEY));
  assert.match(masked, /AccountKey=\*\*\*;BlobEndpoint=http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1;/);

  // A key this process has never seen is still masked where it sits in a connection string.
  const foreignKey = randomBytes(64).toString('base64');
  const foreign = `DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=${foreignKey};EndpointSuffix=core.windows.net`;
  assert.equal(redactSecrets(foreign), 'DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=***;EndpointSuffix=core.windows.net');
  // ...and anywhere else when the caller knows it.
  assert.equal(redactSecrets(`key is ${foreignKey}.`, [foreignKey]), 'key is ***.');

  const sas = createAccountSasToken({ accountName: AZURITE_ACCOUNT, accountKey: AZURITE_ACCOUNT_KEY });
  const sig = new URLSearchParams(sas).get('sig') ?? '';
  assert.ok(sig.length > 20);
  const sasCs = `BlobEndpoint=${azurite().blobEndpoint};SharedAccessSignature=${sas}`;
  assert.equal(redactSecrets(sasCs), `BlobEndpoint=${azurite().blobEndpoint};SharedAccessSignature=***`);
  const url = `${azurite().blobEndpoint}/c/b?${sas}`;
  assert.ok(!redactSecrets(url).includes(sig) && !redactSecrets(url).includes(encodeURIComponent(sig)));
  assert.match(redactSecrets(url), /&sig=\*\*\*/);
  // Registered secrets are masked in free text too, raw or URL-encoded.
  assert.equal(redactSecrets(`sig was ${sig} / ${encodeURIComponent(sig)}`), 'sig was *** / ***');
  assert.equal(
    redactSecrets('Authorization: SharedKey devstoreaccount1:c2lnbmF0dXJlc2lnbmF0dXJl'),
    'Authorization: SharedKey devstoreaccount1:***',
  );
  assert.equal(redactSecrets('nothing to hide here'), 'nothing to hide here');
});

test('canary: a SAS signature never appears in what the adapter returns, throws or prints', async () => {
  const sas = createAccountSasToken({ accountName: AZURITE_ACCOUNT, accountKey: AZURITE_ACCOUNT_KEY, permissions: 'rwlac' });
  const sig = new URLSearchParams(sas).get('sig') ?? '';
  const needles = [sig, encodeURIComponent(sig)];
  const env = { AZURE_STORAGE_ACCOUNT_URL: azurite().blobEndpoint, AZURE_STORAGE_SAS_TOKEN: sas };
  const readOnly = createAccountSasToken({ accountName: AZURITE_ACCOUNT, accountKey: AZURITE_ACCOUNT_KEY, permissions: 'rl' });
  needles.push(new URLSearchParams(readOnly).get('sig') ?? '');

  const printed: string[] = [];
  const origOut = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  const capture = (orig: typeof origOut) =>
    ((chunk: unknown, ...rest: unknown[]) => {
      printed.push(String(chunk));
      return (orig as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stdout.write;
  process.stdout.write = capture(origOut);
  process.stderr.write = capture(origErr);
  const seen: unknown[] = [];
  const failures: unknown[] = [];
  try {
    const service = blobServiceFromEnv(env);
    // Positive control: the client itself carries the signature, so the needles would be found if leaked.
    assert.ok(service.url.includes(encodeURIComponent(sig)) || service.url.includes(sig));
    seen.push(describeBlobTarget(env), describeBlobTarget(service));
    const c = service.getContainerClient('canary');
    await c.create();
    seen.push(
      await uploadStream(c, 'secret-run.dump', Readable.from([randomBytes(300_000)]), {
        blockSize: 64 * 1024,
        metadata: { backup_timestamp: new Date().toISOString() },
        onProgress: (p) => seen.push(p),
      }),
    );
    seen.push(
      await downloadToFileParallel(c.getBlobClient('secret-run.dump'), join(dir, 'canary.dump'), {
        rangeSize: 100_000,
        onProgress: (p) => seen.push(p),
      }),
    );
    seen.push(await listBackups(c, ''));
    for (const attempt of [
      () => downloadToFileParallel(c.getBlobClient('absent.dump'), join(dir, 'absent.dump')),
      () => uploadStream(service.getContainerClient('missing-canary'), 'x', Readable.from([Buffer.from('x')])),
      () => listBackups(service.getContainerClient('missing-canary'), ''),
      // Permission failure: the SDK's error carries the request, URL and all.
      () =>
        uploadStream(
          blobServiceFromEnv({ ...env, AZURE_STORAGE_SAS_TOKEN: readOnly }).getContainerClient('canary'),
          'denied.dump',
          Readable.from([Buffer.from('x')]),
        ),
    ]) {
      await attempt().then(
        () => assert.fail('expected a failure'),
        (e: unknown) => failures.push(e),
      );
    }
  } finally {
    process.stdout.write = origOut;
    process.stderr.write = origErr;
  }
  assert.equal(failures.length, 4);
  const denied = failures[3];
  assert.ok(denied instanceof BlobTransferError && denied.statusCode === 403, inspect(denied));
  assert.match(denied.message, /upload of canary\/denied\.dump failed after 1 bytes read; nothing was committed: HTTP 403 \w+/);
  const haystack = [
    JSON.stringify(seen),
    ...failures.map(
      (e) => `${String(e)}\n${(e as Error).stack}\n${inspect(e, { depth: Infinity, showHidden: true })}\n${JSON.stringify(e)}`,
    ),
    printed.join(''),
  ].join('\n');
  assert.match(haystack, /canary\/absent\.dump/, 'the haystack holds the errors it should');
  assert.match(haystack, /"sha256":"[0-9a-f]{64}"/, 'the haystack holds the results it should');
  for (const needle of needles) {
    assert.ok(needle.length > 20);
    assert.ok(
      !haystack.includes(needle),
      `SAS signature leaked: ${redactSecrets(haystack.slice(Math.max(0, haystack.indexOf(needle) - 200), haystack.indexOf(needle) + 50))}`,
    );
  }
  assert.ok(!haystack.includes(AZURITE_ACCOUNT_KEY), 'account key leaked');
});

function answersHttp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

test('stop() ends Azurite by pid; data written before a SIGTERM survives a restart', async () => {
  const own = join(dir, 'azurite-restart');
  const first = await startAzurite({ dir: own });
  const env = { AZURE_STORAGE_CONNECTION_STRING: first.connectionString };
  let second: AzuriteHandle | undefined;
  try {
    const c = blobServiceFromEnv(env).getContainerClient('persist');
    await c.create();
    const up = await uploadStream(c, 'kept.dump', Readable.from([randomBytes(123_456)]));
    await first.stop();
    assert.throws(() => process.kill(first.pid, 0), { code: 'ESRCH' });
    assert.equal(await answersHttp(first.port), false);
    await first.stop(); // a second stop is harmless

    second = await startAzurite({ dir: own, port: first.port });
    assert.equal(second.port, first.port);
    const again = blobServiceFromEnv({ AZURE_STORAGE_CONNECTION_STRING: second.connectionString }).getContainerClient('persist');
    const down = await downloadToFileParallel(again.getBlobClient('kept.dump'), join(dir, 'kept.dump'));
    assert.equal(down.sha256, up.sha256);
  } finally {
    await first.stop();
    await second?.stop();
  }
});
