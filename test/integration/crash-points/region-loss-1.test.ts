import { crashMatrixRow } from '../../support/crash-matrix.ts';

// Each kill point starts from a fresh two-region lab (purged, up, its secondary filled): two parts side by side.
crashMatrixRow('region-loss', { part: 1, of: 2 });
