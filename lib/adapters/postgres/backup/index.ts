/** PostgreSQL backups in Blob: take (logical, physical + WAL archive), list, restore into a scratch cluster, verify. */
export { parseSourceUrl, describeSource, type PgSource } from './source.ts';
export { backupStoreFromEnv, containerNameProblem, type BackupStore } from './store.ts';
export { takeLogicalBackup, type TakeBackupOptions, type TakenBackup } from './logical.ts';
export { takePhysicalBackup } from './physical.ts';
export { archiveWal, archiveSlotHolder, listArchivedWal, releaseArchivedWal, ARCHIVE_SLOT, type WalArchiveResult } from './wal.ts';
export { readCatalog, pickBackup, type CatalogEntry, type CatalogFilter } from './catalog.ts';
export { restoreBackup, type RestoreOutcome, type RestoreRequest, type RestoreCheck } from './restore.ts';
export { scratchRoot, makeScratchRoot, dropScratch, type ScratchCluster } from './scratch.ts';
