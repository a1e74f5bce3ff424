import { crashMatrixRow } from '../../support/crash-matrix.ts';

crashMatrixRow('exec (pause-front)');
