import { crashMatrixRow } from '../../support/crash-matrix.ts';

crashMatrixRow('pod-kill');
