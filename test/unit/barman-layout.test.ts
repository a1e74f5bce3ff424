// barman-cloud's object layout and backup.info, on fixtures written to the letter of barman's source
// (github.com/EnterpriseDB/barman): blob names as barman/clients/cloud_walarchive.py upload_wal and
// barman/cloud.py CloudBackup._upload_backup_info make them, backup.info as barman/infofile.py FieldListFile.save
// writes it (every Field, sorted by name, `name=value`, None for unset; backup_name and snapshots_info left out
// when unset), and the base backup CloudNativePG picks (cloudnative-pg/barman-cloud pkg/catalog/catalog.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  barmanBackupUsable,
  barmanServerRoot,
  barmanTime,
  parseBackupInfo,
  parseWalBlobName,
  readBarmanListing,
} from '../../lib/backup/barman-layout.ts';
import { chooseBaseBackup, type ArchiveView, type BaseBackup } from '../../lib/adapters/kubernetes/cnpg-archive.ts';

/** A barman-cloud-backup of PostgreSQL 15 as CloudNativePG runs it (--name set to the Backup object's name). */
const DONE_INFO = `backup_label='START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\\nCHECKPOINT LOCATION: 0/5000060\\nBACKUP METHOD: streamed\\nBACKUP FROM: primary\\nSTART TIME: 2026-12-04 16:59:58 UTC\\nLABEL: Barman backup cloud 20261204T165958\\nSTART TIMELINE: 1\\n'
backup_name=pg-backup-1
begin_offset=40
begin_time=2026-12-04 16:59:58.123456+00:00
begin_wal=000000010000000000000005
begin_xlog=0/5000028
children_backup_ids=None
cluster_size=None
compression=None
config_file=/var/lib/postgresql/data/pgdata/postgresql.conf
copy_stats=None
data_checksums=on
deduplicated_size=None
encryption=None
end_offset=312
end_time=2026-12-04 17:00:03.654321+00:00
end_wal=000000010000000000000005
end_xlog=0/5000138
error=None
hba_file=/var/lib/postgresql/data/pgdata/pg_hba.conf
ident_file=/var/lib/postgresql/data/pgdata/pg_ident.conf
included_files=['/var/lib/postgresql/data/pgdata/custom.conf']
mode=concurrent
parent_backup_id=None
pgdata=/var/lib/postgresql/data/pgdata
server_name=cloud
size=None
status=DONE
summarize_wal=None
systemid=7445353186040045591
tablespaces=None
timeline=1
version=150010
xlog_segment_size=16777216
`;

test('backup.info as barman-cloud writes it: status, positions, times, system id; None is unset', () => {
  const i = parseBackupInfo(DONE_INFO);
  assert.equal(i.status, 'DONE');
  assert.equal(i.beginWal, '000000010000000000000005');
  assert.equal(i.endWal, '000000010000000000000005');
  assert.equal(i.beginLsn, '0/5000028');
  assert.equal(i.endLsn, '0/5000138');
  assert.equal(i.timeline, 1);
  assert.equal(i.systemId, '7445353186040045591');
  assert.equal(i.beginTime, '2026-12-04T16:59:58.123Z');
  assert.equal(i.endTime, '2026-12-04T17:00:03.654Z');
  assert.equal(i.error, null);
  assert.equal(i.fields.backup_name, 'pg-backup-1');
  // The backup ID is the folder's name: barman does not write it into backup.info.
  assert.equal('backup_id' in i.fields, false);
  assert.equal(barmanBackupUsable(i), null);
});

test("barman's own test fixture (tests/test_infofile.py BASE_BACKUP_INFO): an offset time, tablespaces as a Python literal", () => {
  const i = parseBackupInfo(`backup_label=None
begin_offset=40
begin_time=2014-12-22 09:25:22.561207+01:00
begin_wal=000000010000000000000004
begin_xlog=0/4000028
children_backup_ids=None
config_file=/fakepath/postgresql.conf
end_offset=184
end_time=2014-12-22 09:25:27.410470+01:00
end_wal=000000010000000000000004
end_xlog=0/40000B8
error=None
hba_file=/fakepath/pg_hba.conf
ident_file=/fakepath/pg_ident.conf
mode=default
parent_backup_id=None
pgdata=/fakepath/data
server_name=fake-9.4-server
size=20935690
status=DONE
tablespaces=[('fake_tbs', 16384, '/fake_tmp/tbs')]
timeline=1
version=90400`);
  assert.equal(i.beginTime, '2014-12-22T08:25:22.561Z');
  assert.equal(i.endLsn, '0/40000B8');
  assert.equal(i.fields.tablespaces, "[('fake_tbs', 16384, '/fake_tmp/tbs')]");
  assert.equal(barmanBackupUsable(i), null);
});

test('FieldListFile.load rules: spaces around "=", comments and blank lines; a line without "=" is refused; no status is EMPTY', () => {
  const i = parseBackupInfo('# written by hand\n\n status = FAILED \nerror = failure uploading data (connection reset)\n');
  assert.equal(i.status, 'FAILED');
  assert.equal(barmanBackupUsable(i), 'status FAILED (failure uploading data (connection reset))');
  assert.equal(parseBackupInfo('timeline=1\n').status, 'EMPTY');
  assert.throws(() => parseBackupInfo('status DONE\n'), /invalid backup.info line "status DONE"/);
  assert.match(barmanBackupUsable(parseBackupInfo(DONE_INFO.replace('end_xlog=0/5000138', 'end_xlog=None')))!, /end_xlog None/);
  assert.equal(barmanTime('2026-12-04 17:00:03'), '2026-12-04T17:00:03.000Z');
  assert.equal(barmanTime('yesterday'), null);
});

test('blob names: base/<id>/ folders, wals/<16 hex>/<segment>[.compression], histories in wals/, everything else ignored', () => {
  const root = barmanServerRoot('cnpg/', 'pg');
  assert.equal(root, 'cnpg/pg/');
  const l = readBarmanListing(root, [
    'cnpg/pg/base/20261204T165958/backup.info',
    'cnpg/pg/base/20261204T165958/data.tar',
    'cnpg/pg/base/20261204T165958/16385.tar',
    'cnpg/pg/base/20261204T171500/data.tar.gz', // still uploading: no backup.info yet
    'cnpg/pg/wals/0000000100000000/000000010000000000000005.gz',
    'cnpg/pg/wals/0000000100000000/000000010000000000000005.00000028.backup.gz',
    'cnpg/pg/wals/0000000100000000/000000010000000000000006.bz2',
    'cnpg/pg/wals/0000000100000000/000000010000000000000007',
    'cnpg/pg/wals/0000000200000000/000000020000000000000007.partial.zst',
    'cnpg/pg/wals/00000002.history.gz',
    'cnpg/pg/wals/0000000100000000/000000010000000000000008.zip',
    'cnpg/pg/wals/0000000100000000/readme.gz',
    'cnpg/pg/elsewhere/base.tar',
    'cnpg/pgx/wals/0000000100000000/000000010000000000000009',
  ]);
  assert.deepEqual(
    l.bases.map((b) => [b.backupId, b.folder, b.info, b.files.length]),
    [
      ['20261204T165958', 'cnpg/pg/base/20261204T165958/', 'cnpg/pg/base/20261204T165958/backup.info', 2],
      ['20261204T171500', 'cnpg/pg/base/20261204T171500/', null, 1],
    ],
  );
  assert.deepEqual([...l.wals.values()].map((w) => [w.name, w.kind, w.compression]).sort(), [
    ['000000010000000000000005', 'segment', 'gzip'],
    ['000000010000000000000005.00000028.backup', 'backup-label', 'gzip'],
    ['000000010000000000000006', 'segment', 'bzip2'],
    ['000000010000000000000007', 'segment', null],
    ['00000002.history', 'history', 'gzip'],
    ['000000020000000000000007.partial', 'partial', 'zstd'],
  ]);
  assert.equal(l.wals.get('00000002.history')!.blob, 'cnpg/pg/wals/00000002.history.gz');
  for (const [suffix, name] of [
    ['.xz', 'xz'],
    ['.snappy', 'snappy'],
    ['.lz4', 'lz4'],
  ])
    assert.equal(parseWalBlobName(`p/wals/0000000100000000/000000010000000000000005${suffix}`)?.compression, name);
  assert.equal(parseWalBlobName('p/wals/0000000100000000/000000010000000000000005.gz.gz'), null);
});

const backup = (id: string, beginLsn: string, endLsn: string, unusable: string | null = null): BaseBackup => ({
  id,
  blob: `cnpg/pg/base/${id}/backup.info`,
  folder: `cnpg/pg/base/${id}/`,
  takenAt: `2026-12-04T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}.000Z`,
  bytes: 1,
  beginLsn,
  endLsn,
  startSegment: `0000000100000000000000${beginLsn.slice(2, 4).padStart(2, '0')}`,
  unusable,
});

test('the base backup CloudNativePG picks: newest complete one begun before targetLSN; a failed one never; one ending past the target named', () => {
  const view = (layout: ArchiveView['layout'], backups: BaseBackup[]): ArchiveView => ({
    layout,
    serverName: 'pg',
    barmanLookedAt: null,
    where: 'https://acct.blob.core.windows.net/cnpg/pg/',
    backups,
    archived: [],
    walBlobs: new Map(),
    newestWalAt: null,
  });
  const a = backup('20261204T160000', '0/10000028', '0/10000138');
  const b = backup('20261204T170000', '0/20000028', '0/20000138');
  const failed = backup('20261204T180000', '0/30000028', '0/30000138', 'status FAILED');
  const v = view('barman-cloud', [a, b, failed]);
  assert.equal(chooseBaseBackup(v, 'latest').backup, b);
  assert.equal(chooseBaseBackup(v, { lsn: '0/30000200', inclusive: false }).backup, b);
  assert.deepEqual(chooseBaseBackup(v, { lsn: '0/1FFFFFFF', inclusive: false }), { backup: a, problem: null });
  const inside = chooseBaseBackup(v, { lsn: '0/20000100', inclusive: false });
  assert.equal(inside.backup, b);
  assert.match(
    inside.problem!,
    /would restore cnpg\/pg\/base\/20261204T170000\/backup.info, which began before 0\/20000100 but ended at 0\/20000138/,
  );
  // The project's own layout (the stand-in operator): the newest one ended by the target.
  assert.equal(chooseBaseBackup(view('drill', [a, b]), { lsn: '0/20000100', inclusive: false }).backup, a);
  const none = chooseBaseBackup(v, { lsn: '0/10000000', inclusive: false });
  assert.equal(none.backup, null);
  assert.match(
    none.problem!,
    /no physical base backup of pg from before 0\/10000000 under the barman-cloud layout .*not usable: .*20261204T180000.*status FAILED/,
  );
});
