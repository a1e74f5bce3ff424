import { crashMatrixRow } from '../../support/crash-matrix.ts';

// The longest row (26 kill points, about 11 minutes alone): two parts on two labs, run side by side.
crashMatrixRow('data-loss (drop-table)', { part: 1, of: 2 });
