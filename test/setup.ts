// Run first by `npm test`: what the tests need beyond Node. As root it installs what is missing (the way CI
// runs on a fresh Debian machine); otherwise it prints the apt-get line to run and stops the test run.
import { spawnSync } from 'node:child_process';
import { UserError, formatUserError } from '../lib/errors.ts';
import { ensureDebianPackages, isExecutable, onPath, type DebianNeed } from '../lib/util/system-packages.ts';

// The image's python3 may be a pyenv one with its own packages; Debian's python3-jsonschema lives under /usr/bin/python3.
const pythonHas = (module: string) =>
  ['python3', '/usr/bin/python3'].some((py) => spawnSync(py, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0);

const needs: DebianNeed[] = [
  {
    package: 'postgresql-15',
    present: () => isExecutable('/usr/lib/postgresql/15/bin/initdb'),
    why: 'the lab and the backup tests run real clusters',
  },
  { package: 'util-linux', present: () => onPath('runuser'), why: 'PostgreSQL runs as postgres when the tests run as root' },
  { package: 'kubernetes-client', present: () => onPath('kubectl'), why: 'kubectl is driven against the test API server' },
  { package: 'patroni', present: () => onPath('patroni'), why: 'the Patroni failover provider is tested on a real cluster' },
  { package: 'etcd-server', present: () => onPath('etcd'), why: "Patroni's store" },
  {
    package: 'chromium',
    present: () => isExecutable(process.env.DRILL_CHROMIUM ?? '/usr/bin/chromium'),
    why: 'the HTML report is checked in a browser',
  },
  {
    package: 'python3-jsonschema',
    present: () => pythonHas('jsonschema'),
    why: 'drills/drill.schema.json is checked by a real JSON Schema implementation',
  },
  {
    package: 'python3-icalendar',
    present: () => pythonHas('icalendar'),
    why: "`drill announce`'s iCalendar event is read back by a strict RFC 5545 parser",
  },
  { package: 'poppler-utils', present: () => onPath('pdftotext'), why: 'the PDF record is read back as text' },
];

try {
  ensureDebianPackages(needs, (line) => console.log(`test set-up: ${line}`));
} catch (e) {
  if (!(e instanceof UserError)) throw e;
  console.error(formatUserError(e));
  process.exit(1);
}
