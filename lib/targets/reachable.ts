import { UserError } from '../errors.ts';

export async function assertReachable(url: string): Promise<void> {
  try {
    // Any HTTP answer proves the address is right; a failing service is what the drill is for.
    await fetch(url, { method: 'GET', signal: AbortSignal.timeout(5000) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new UserError(`target ${url} is unreachable (${cause})`, {
      untouched: 'nothing: no load was sent and no action ran',
      next: 'check target.url in the drill file and that the service is up, then run again',
    });
  }
}
