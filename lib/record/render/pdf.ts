/**
 * PDF through Chromium's print (Playwright's page.pdf), for the auditor's folder. Playwright is a dev
 * dependency and Debian's Chromium the browser: both are looked for at run time, and their absence is
 * a clear message rather than a crash.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { UserError } from '../../errors.ts';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-dev-shm-usage',
];

export function chromiumPath(env: Record<string, string | undefined> = process.env): string {
  return env.DRILL_CHROMIUM ?? '/usr/bin/chromium';
}

export async function htmlToPdf(htmlFile: string, pdfFile: string): Promise<void> {
  const exe = chromiumPath();
  if (!existsSync(exe)) {
    throw new UserError(`cannot write the PDF: no Chromium at ${exe}`, {
      untouched: 'record.json, record.md and record.html are written',
      next: 'apt-get install -y chromium, or set DRILL_CHROMIUM to a Chromium binary',
    });
  }
  let chromium: typeof import('@playwright/test').chromium;
  try {
    ({ chromium } = await import('@playwright/test'));
  } catch {
    throw new UserError('cannot write the PDF: @playwright/test is not installed', {
      untouched: 'record.json, record.md and record.html are written',
      next: 'npm ci (it is a dev dependency of drill)',
    });
  }
  const browser = await chromium.launch({ executablePath: exe, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    // The report is self-contained; anything it would fetch is refused so printing never waits on the network.
    await page.route(/^(?!file:)/, (route) => route.abort());
    await page.goto(pathToFileURL(htmlFile).href, { waitUntil: 'load' });
    await page.pdf({
      path: pdfFile,
      format: 'A4',
      printBackground: true,
      margin: { top: '12mm', bottom: '12mm', left: '10mm', right: '10mm' },
    });
  } finally {
    await browser.close();
  }
}
