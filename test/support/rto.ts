/**
 * One way every test judges an RTO: the record's figure must be exactly what its own marks say
 * (`recovered` − `fault-injected`, rounded to the millisecond as the score rounds it), and inside the bounds
 * the caller justifies. Tying the figure to the marks catches an RTO measured from the wrong mark or with the
 * recovery window added; the bounds catch a wait that degraded to slow polling.
 */
import assert from 'node:assert/strict';

interface MarkLike {
  name: string;
  ms: number;
}

export interface RecordWithRto {
  marks: MarkLike[];
  objectives: { rto: { measuredSeconds: number | null } };
}

/** Returns the RTO in seconds after checking it against the marks and `min` < RTO < `max` (seconds). */
export function assertRto(record: RecordWithRto, bounds: { max: number; min?: number; why?: string }): number {
  const fault = record.marks.find((m) => m.name === 'fault-injected');
  const recovered = record.marks.find((m) => m.name === 'recovered');
  assert.ok(fault, `no fault-injected mark in ${JSON.stringify(record.marks.map((m) => m.name))}`);
  assert.ok(recovered, `no recovered mark in ${JSON.stringify(record.marks.map((m) => m.name))}`);
  const rto = record.objectives.rto.measuredSeconds;
  assert.equal(typeof rto, 'number', 'RTO was not measured');
  const fromMarks = Math.round(recovered.ms - fault.ms) / 1000;
  assert.ok(Math.abs((rto as number) - fromMarks) <= 0.001, `RTO ${rto} s is not recovered − fault-injected = ${fromMarks} s`);
  const min = bounds.min ?? 0;
  assert.ok(
    (rto as number) > min && (rto as number) < bounds.max,
    `RTO ${rto} s outside (${min}, ${bounds.max}) s${bounds.why ? `: ${bounds.why}` : ''}`,
  );
  return rto as number;
}
