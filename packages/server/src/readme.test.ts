import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

it('the README shows the example file as it is, and the example runs', () => {
  const readme = readFileSync(here('../README.md'), 'utf8');
  const example = readFileSync(here('../examples/publish-and-read.ts'), 'utf8');
  expect(readme).toContain(example);
  const out = execFileSync(
    process.execPath,
    ['--conditions=tufa-source', '--import', 'tsx', here('../examples/publish-and-read.ts')],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  expect(out).toContain(
    'publish: 200 {"gun":"registry.example.com/team/app","versions":{"root":1,"targets":1,"snapshot":1,"timestamp":1}}',
  );
  expect(out).toMatch(/^timestamp v1 names snapshot v1$/m);
});
