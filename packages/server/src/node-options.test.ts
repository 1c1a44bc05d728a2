import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVER_ENVIRONMENT, SERVER_NODE_OPTIONS } from './node-options.js';

const file = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');

describe('the node options tufa-server runs with', () => {
  it('are passed by the bin, npm start (both), the image and the benchmarks', () => {
    const pkg = JSON.parse(file('../package.json'));
    // The committed bin file npm links (npx tufa-server, an installed package); its #! line runs node.
    expect(pkg.bin['tufa-server']).toBe('bin/tufa-server.js');
    const shebang = file('../bin/tufa-server.js').split('\n')[0]!;
    const starts = [
      pkg.scripts.start as string,
      JSON.parse(file('../../../package.json')).scripts.start as string,
    ];
    const entrypoint = /^ENTRYPOINT (.*)$/m.exec(file('../../../Dockerfile'))![1]!;
    const assignments = Object.entries(SERVER_ENVIRONMENT).map(([name, value]) => `${name}=${value}`);
    expect(assignments.length).toBeGreaterThan(0);
    const command = `${assignments.join(' ')} node ${SERVER_NODE_OPTIONS.join(' ')}`;
    expect(shebang).toBe(`#!/usr/bin/env -S ${command}`);
    expect(SERVER_NODE_OPTIONS.length).toBeGreaterThan(0);
    for (const option of SERVER_NODE_OPTIONS) {
      for (const start of starts) expect(start).toContain(`${command} `);
      expect(JSON.parse(entrypoint)).toContain(option);
    }
    for (const assignment of assignments)
      expect(file('../../../Dockerfile')).toMatch(new RegExp(`^ENV ${assignment}$`, 'm'));
    // src/bin.ts, when it keeps a #! line (it is no longer what npm links), agrees too.
    const source = file('./bin.ts').split('\n')[0]!;
    if (source.startsWith('#!')) expect(source).toBe(shebang);
    for (const bench of ['../../../bench/run.ts', '../../../bench/soak.ts']) {
      expect(file(bench)).toContain('...SERVER_NODE_OPTIONS,');
      expect(file(bench)).toContain('...SERVER_ENVIRONMENT,');
    }
  });
});
