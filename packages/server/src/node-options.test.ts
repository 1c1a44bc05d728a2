import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVER_NODE_OPTIONS } from './node-options.js';

const file = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');

describe('the node options tufa-server runs with', () => {
  it('are passed by the bin, npm start (both), the image and the benchmarks', () => {
    const shebang = file('./bin.ts').split('\n')[0]!;
    const starts = [
      JSON.parse(file('../package.json')).scripts.start as string,
      JSON.parse(file('../../../package.json')).scripts.start as string,
    ];
    const entrypoint = /^ENTRYPOINT (.*)$/m.exec(file('../../../Dockerfile'))![1]!;
    expect(shebang.startsWith('#!/usr/bin/env -S node ')).toBe(true);
    expect(SERVER_NODE_OPTIONS.length).toBeGreaterThan(0);
    for (const option of SERVER_NODE_OPTIONS) {
      expect(shebang).toContain(` ${option}`);
      for (const start of starts) expect(start).toContain(`node ${SERVER_NODE_OPTIONS.join(' ')} `);
      expect(JSON.parse(entrypoint)).toContain(option);
    }
    expect(file('../../../bench/run.ts')).toContain('...SERVER_NODE_OPTIONS,');
  });
});
