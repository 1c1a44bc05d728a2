import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

it('the README shows the example file as it is, and the example runs', () => {
  const readme = readFileSync(here('../README.md'), 'utf8');
  const example = readFileSync(here('../examples/create-and-verify.ts'), 'utf8');
  expect(readme).toContain(example);
  const out = execFileSync(
    process.execPath,
    ['--conditions=tufa-source', '--import', 'tsx', here('../examples/create-and-verify.ts')],
    {
      encoding: 'utf8',
    },
  );
  expect(out).toMatch(/^app\/1\.0 -> sha256:[0-9a-f]{64} \(17 bytes\), trusted$/m);
  expect(out).toMatch(/^refused: HASH_MISMATCH: /m);
});
