import { crashMatrixRow } from '../../support/crash-matrix.ts';

// Each kill point starts from the same stopped copy of a two-region lab whose secondary holds a copy (crash-points.ts).
crashMatrixRow('region-loss');
