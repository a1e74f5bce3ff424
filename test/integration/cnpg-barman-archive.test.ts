// The kubernetes data-loss preflight (checkArchive, what createCnpgLiveRestore's preflight calls) and the restore's
// base-backup choice against a real Azurite holding an archive in barman-cloud's layout, as a real CloudNativePG
// cluster writes it: <path>/<serverName>/base/<backupID>/backup.info + data.tar, wals/<16 hex>/<segment>.gz, and
// the .history file in wals/ itself (barman/clients/cloud_walarchive.py, barman/cloud.py, barman/xlog.py hash_dir).
//
// The byte content is NOT real: data.tar is a placeholder and each segment is a gzipped placeholder, not 16 MB of
// WAL. Only blob names, dates, backup.info and .history files are read by the code under test, so this tests the
// layout reading, the choice and the gap check, not that CloudNativePG could restore from this archive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { blobServiceFromEnv, startAzurite } from '../../lib/adapters/blob/index.ts';
import { backupStoreFromEnv, type BackupStore } from '../../lib/adapters/postgres/backup/store.ts';
import { checkArchive, chooseBaseBackup, planFromBackup, readArchiveView } from '../../lib/adapters/kubernetes/cnpg-archive.ts';
import { segmentName } from '../../lib/backup/wal-names.ts';
import { makeTempDir } from '../support/tmp.ts';

/** backup.info as barman/infofile.py FieldListFile.save writes it (sorted `name=value`, None for unset). */
function backupInfo(o: { status: string; begin: string; end: string; beginWal: string; error?: string; day: string }): string {
  return `backup_label=None
backup_name=pg-${o.day}
begin_offset=40
begin_time=2026-12-04 ${o.day}:00:00.000000+00:00
begin_wal=${o.beginWal}
begin_xlog=${o.begin}
children_backup_ids=None
cluster_size=None
compression=None
config_file=/var/lib/postgresql/data/pgdata/postgresql.conf
copy_stats=None
data_checksums=on
deduplicated_size=None
encryption=None
end_offset=312
end_time=2026-12-04 ${o.day}:00:05.000000+00:00
end_wal=${o.beginWal}
end_xlog=${o.end}
error=${o.error ?? 'None'}
hba_file=/var/lib/postgresql/data/pgdata/pg_hba.conf
ident_file=/var/lib/postgresql/data/pgdata/pg_ident.conf
included_files=None
mode=concurrent
parent_backup_id=None
pgdata=/var/lib/postgresql/data/pgdata
server_name=cloud
size=None
status=${o.status}
summarize_wal=None
systemid=7445353186040045591
tablespaces=None
timeline=1
version=150010
xlog_segment_size=16777216
`;
}

const seg = (tl: number, n: number) => segmentName({ timeline: tl, segno: BigInt(n) });

async function put(store: BackupStore, name: string, body: Buffer | string) {
  await store.container.getBlockBlobClient(store.prefix + name).uploadData(typeof body === 'string' ? Buffer.from(body) : body);
}

/** barman-cloud-wal-archive --gzip: wals/<timeline+log>/<segment>.gz */
const walBlob = (name: string) => `pg/wals/${name.slice(0, 16)}/${name}.gz`;

test('barman-cloud layout in Azurite: the DONE backup is found, a FAILED newer one is not picked, a removed segment is the gap, a timeline switch is followed', async () => {
  const tmp = await makeTempDir('cnpg-barman');
  const az = await startAzurite({ dir: join(tmp.path, 'azurite') });
  try {
    const env = { AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
    await blobServiceFromEnv(env).getContainerClient('cnpg').create();
    const store = backupStoreFromEnv('cnpg', 'cluster-example', env);
    const destinationPath = `${az.blobEndpoint}/cnpg/cluster-example`;

    // A complete backup at 0/3000028..0/3000138 and a newer failed one (barman-cloud writes backup.info with
    // status FAILED when the upload fails after the backup started; end_time and end_xlog may be set).
    await put(
      store,
      'pg/base/20261204T160000/backup.info',
      backupInfo({ status: 'DONE', begin: '0/3000028', end: '0/3000138', beginWal: seg(1, 3), day: '16' }),
    );
    await put(store, 'pg/base/20261204T160000/data.tar', 'placeholder, not a tar');
    await put(
      store,
      'pg/base/20261204T170000/backup.info',
      backupInfo({
        status: 'FAILED',
        begin: '0/7000028',
        end: '0/7000138',
        beginWal: seg(1, 7),
        day: '17',
        error: 'failure uploading data (connection reset)',
      }),
    );
    await put(store, 'pg/base/20261204T170000/data.tar', 'placeholder');
    // Timeline 1 up to 0/8000000, then timeline 2 (a promotion): its history file lies in wals/ itself.
    for (const n of [3, 4, 6, 7]) await put(store, walBlob(seg(1, n)), gzipSync(`placeholder for ${seg(1, n)}`));
    for (const n of [8, 9]) await put(store, walBlob(seg(2, n)), gzipSync(`placeholder for ${seg(2, n)}`));
    await put(store, 'pg/wals/00000002.history.gz', gzipSync('1\t0/8000000\tno recovery target specified\n'));

    const gap = await checkArchive(store, 'pg', destinationPath);
    assert.equal(gap.layout, 'barman-cloud');
    assert.equal(gap.backup?.id, '20261204T160000', 'the FAILED newer backup is not picked');
    assert.equal(gap.backup?.blob, 'cluster-example/pg/base/20261204T160000/backup.info');
    assert.deepEqual(gap.missing, [seg(1, 5)]);
    assert.equal(gap.problems.length, 1, gap.problems.join('\n'));
    assert.match(
      gap.problems[0]!,
      new RegExp(
        `the WAL archive in the barman-cloud layout at ${az.blobEndpoint}/cnpg/cluster-example/pg/ misses ${seg(1, 5)} between cluster-example/pg/base/20261204T160000/backup.info's first segment ${seg(1, 3)} and ${seg(2, 9)}`,
      ),
    );
    assert.ok(gap.archiveLagSeconds !== null && gap.archiveLagSeconds >= 0 && gap.archiveLagSeconds < 120, String(gap.archiveLagSeconds));

    // A target inside the failed backup's range: the operator's choice is still the DONE one.
    const view = await readArchiveView(store, 'pg', destinationPath);
    assert.equal(chooseBaseBackup(view, { lsn: '0/7000100', inclusive: false }).backup?.id, '20261204T160000');

    // The segment arrives: no problem, and the plan follows the history file onto timeline 2.
    await put(store, walBlob(seg(1, 5)), gzipSync('placeholder'));
    const whole = await checkArchive(store, 'pg', destinationPath);
    assert.deepEqual(whole.problems, []);
    const v = await readArchiveView(store, 'pg', destinationPath);
    const { plan } = await planFromBackup(store, v, whole.backup!, { lsn: '0/9000100', inclusive: false });
    assert.deepEqual(plan.needed, [seg(1, 3), seg(1, 4), seg(1, 5), seg(1, 6), seg(1, 7), seg(2, 8), seg(2, 9)]);
    assert.deepEqual(plan.missing, []);
    // The archive wait re-reads only the WAL side, and plans the same from the backup it already chose.
    const walOnly = await readArchiveView(store, 'pg', destinationPath, false);
    assert.deepEqual(walOnly.backups, []);
    assert.deepEqual(
      (await planFromBackup(store, walOnly, whole.backup!, { lsn: '0/9000100', inclusive: false })).plan.needed,
      plan.needed,
    );

    // A history file compressed with something the drill cannot read is named, not guessed around.
    await put(store, 'pg/wals/00000003.history.bz2', 'placeholder');
    const unreadable = await checkArchive(store, 'pg', destinationPath);
    assert.equal(unreadable.problems.length, 1, unreadable.problems.join('\n'));
    assert.match(
      unreadable.problems[0]!,
      /cluster-example\/pg\/wals\/00000003\.history\.bz2 is compressed with bzip2, which the drill cannot read/,
    );

    // Nothing of either layout under another serverName: both places are named.
    const none = await checkArchive(store, 'other', destinationPath);
    assert.equal(none.layout, 'drill');
    assert.match(
      none.problems.join('\n'),
      new RegExp(
        `no physical base backup of other under the drill's backup layout at ${az.blobEndpoint}/cnpg/cluster-example/postgres/other/ \\(nothing in barman-cloud's at ${az.blobEndpoint}/cnpg/cluster-example/other/\\)`,
      ),
    );
    assert.match(none.problems.join('\n'), /WAL archive of other .* is empty/);
  } finally {
    await az.stop();
    await tmp.remove();
  }
});
