import { crashMatrixRow } from '../../support/crash-matrix.ts';

crashMatrixRow('blob-restore');
