import { crashMatrixRow } from '../../support/crash-matrix.ts';

crashMatrixRow('db-failover');
