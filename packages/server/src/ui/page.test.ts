/**
 * The status page's packaging and switches: every asset is a file the package ships (npm pack),
 * none ships unserved, the flags parse, and a server started with --no-ui has no /ui/.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RunningServer } from '@tufa/server';
import { REPO, startTestServer, tempDir } from '@tufa/testing/server';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../config.js';
import { ASSET_TYPES, ASSETS_DIR } from './assets.js';
import { expiryState } from './page.js';

const DAY = 86_400_000;

describe('the status page assets', () => {
  it('are exactly the files of src/ui/assets, and npm pack ships them', () => {
    const files = readdirSync(fileURLToPath(ASSETS_DIR)).sort();
    expect(files).toEqual(Object.keys(ASSET_TYPES).sort());
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--workspace', 'packages/server'], {
        cwd: REPO,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    ) as { files: { path: string }[] }[];
    const paths = packed[0]!.files.map((f) => f.path);
    for (const file of files) expect(paths, file).toContain(`src/ui/assets/${file}`);
    expect(paths).toContain('dist/ui/page.js');
  });
});

describe('the switches', () => {
  it('--no-ui and TUFA_NO_UI turn the page off; --metrics-collections bounds the series', () => {
    expect(parseCommandLine([], {}).config.ui).toBe(true);
    expect(parseCommandLine(['--no-ui'], {}).config.ui).toBe(false);
    expect(parseCommandLine([], { TUFA_NO_UI: '1' }).config.ui).toBe(false);
    expect(parseCommandLine([], { TUFA_NO_UI: 'off' }).config.ui).toBe(true);
    expect(parseCommandLine([], {}).config.metricsCollections).toBe(1000);
    expect(parseCommandLine(['--metrics-collections', '0'], {}).config.metricsCollections).toBe(0);
    expect(parseCommandLine([], { TUFA_METRICS_COLLECTIONS: '25' }).config.metricsCollections).toBe(25);
    expect(() => parseCommandLine(['--metrics-collections', 'all'], {})).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => parseCommandLine([], { TUFA_NO_UI: 'of' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('expiry states: expired, within 7 days, within 30 days, fine; a server-signed role only expired or fine', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(expiryState(now, now)).toBe('expired');
    expect(expiryState(now + 7 * DAY, now)).toBe('week');
    expect(expiryState(now + 7 * DAY + 1, now)).toBe('month');
    expect(expiryState(now + 30 * DAY, now)).toBe('month');
    expect(expiryState(now + 30 * DAY + 1, now)).toBe('fine');
    expect(expiryState(now + DAY, now, true)).toBe('fine');
    expect(expiryState(now - 1, now, true)).toBe('expired');
  });
});

describe('a server started with --no-ui', () => {
  let server: RunningServer | undefined;
  afterAll(async () => {
    await server?.close();
  });

  it('answers 404 under /ui/ and still serves /metrics', async () => {
    server = await startTestServer({ dataDir: tempDir(), ui: false });
    for (const path of ['/ui/', '/ui/app.js', '/ui/api/collections']) {
      const res = await fetch(`${server.url}${path}`);
      expect([res.status, ((await res.json()) as { error: { code: string } }).error.code], path).toEqual([
        404,
        'NOT_FOUND',
      ]);
    }
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
  }, 60_000);
});
