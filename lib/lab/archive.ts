/** The lab's continuous WAL archive: what it may lag by default. The archiver is daemon/wal-archiver.ts. */
export const DEFAULT_ARCHIVE_LAG_MS = 60_000;
