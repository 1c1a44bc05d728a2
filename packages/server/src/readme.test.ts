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

it("the README's exit-status table is the one tufa-server uses", async () => {
  const { SERVER_EXIT, serverExitStatus } = await import('./exit.js');
  const { ERROR_CODES } = await import('@tufa/core');
  const readme = readFileSync(here('../README.md'), 'utf8');
  const from = readme.indexOf('### Exit status');
  const section = readme.slice(from, readme.indexOf('\n#', from + 1));
  const rows = [...section.matchAll(/^\| (\d) \| (.+) \|$/gm)].map((m) => ({
    status: Number(m[1]),
    text: m[2]!,
  }));
  expect(rows.map((r) => r.status)).toEqual(Object.values(SERVER_EXIT).sort());
  let codes = 0;
  for (const row of rows) {
    for (const m of row.text.matchAll(/`([A-Z_]+)`/g)) {
      if (!(ERROR_CODES as readonly string[]).includes(m[1]!)) continue; // a variable, not a code
      expect(serverExitStatus(m[1] as Parameters<typeof serverExitStatus>[0]), m[1]).toBe(row.status);
      codes++;
    }
  }
  expect(codes).toBeGreaterThanOrEqual(7);
});
