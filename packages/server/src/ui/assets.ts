/**
 * The status page's static files, read once at start from `assets/` beside this module's source
 * (the same folder from src/ and from dist/, which the package's `files` and the image ship).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface Asset {
  readonly bytes: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** Served name → content type; nothing else under /ui/ is a file. */
export const ASSET_TYPES: Readonly<Record<string, string>> = Object.freeze({
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
});

/** `src/ui/assets/`, found from src/ui/ and from dist/ui/ alike. */
export const ASSETS_DIR = new URL('../../src/ui/assets/', import.meta.url);

/** Read when the page is switched on (a server started with --no-ui never reads them). */
export function loadAssets(): ReadonlyMap<string, Asset> {
  return new Map(
    Object.entries(ASSET_TYPES).map(([name, type]) => {
      const bytes = readFileSync(new URL(name, ASSETS_DIR));
      return [
        name,
        { bytes, type, etag: `"${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}"` },
      ];
    }),
  );
}
