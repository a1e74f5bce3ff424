import { crashMatrixRow } from '../../support/crash-matrix.ts';

crashMatrixRow('data-loss (drop-table)');
