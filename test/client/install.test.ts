/**
 * @tufa/core and @tufa/client as a tool outside this repository gets them: `npm pack`, installed
 * into a fresh project in a temp folder from the tarballs and the npm cache only, type-checked with
 * no @types/node, and the client README's example compiled and run against a real tufa server.
 */
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend_, Home, PASSPHRASES, startBackend } from '../cli/harness.test-util.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = userEnv()): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
    );
  });
}

async function ok(file: string, args: string[], cwd: string): Promise<string> {
  const r = await run(file, args, cwd);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The test runner's environment without what `npm test` and vitest add (npm_*, NODE_ENV=test). */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|INIT_CWD$|NODE_ENV$|NODE_OPTIONS$|VITEST)/.test(k)) env[k] = v;
  }
  return env;
}

const TSC = join(REPO, 'node_modules/typescript/bin/tsc');
const GUN = 'registry.example.com/team/app';
const TAG = 'v1.2.3';
const PACKAGES = ['core', 'client'] as const;

interface Packed {
  name: string;
  filename: string;
  files: { path: string }[];
}

let project: string;
let packed: Packed[];
let backend: Backend_;
let publisher: Home;
let digest: string;

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), 'tufa-consumer-'));
  const tarballs = join(project, 'tarballs');
  mkdirSync(tarballs);
  packed = JSON.parse(
    await ok(
      'npm',
      [
        'pack',
        '--json',
        '--pack-destination',
        tarballs,
        ...PACKAGES.flatMap((p) => ['--workspace', `@tufa/${p}`]),
      ],
      REPO,
    ),
  ) as Packed[];
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'consumer', private: true, type: 'module' })}\n`,
  );
  await ok(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      ...packed.map((p) => `./tarballs/${p.filename}`),
    ],
    project,
  );

  // A publisher with the tufa CLI: a collection with one tag, as the README example expects.
  backend = await startBackend('embedded');
  publisher = new Home(backend.server.url, { ...PASSPHRASES, TUFA_TOKEN: backend.token });
  writeFileSync(join(publisher.dir, 'app.tar'), 'the app, version 1.2.3\n');
  await publisher.ok(['init', GUN]);
  await publisher.ok(['add', GUN, TAG, join(publisher.dir, 'app.tar')]);
  await publisher.ok(['publish', GUN]);
  digest = (await publisher.ok(['lookup', GUN, TAG])).trim();
}, 180_000);

afterAll(async () => {
  publisher?.remove();
  await backend?.stop();
  if (project !== undefined) rmSync(project, { recursive: true, force: true });
});

const installed = (pkg: string) => join(project, 'node_modules/@tufa', pkg);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe('the tarballs', () => {
  it('install together, one @tufa/core from its tarball, outside the workspace', () => {
    expect(relative(REPO, project).startsWith('..')).toBe(true);
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8'));
    for (const p of PACKAGES) {
      const entry = lock.packages[`node_modules/@tufa/${p}`];
      expect(entry.resolved).toBe(`file:tarballs/tufa-${p}-0.1.0.tgz`);
    }
    expect(Object.keys(lock.packages).filter((k) => k.endsWith('/@tufa/core'))).toEqual([
      'node_modules/@tufa/core',
    ]);
  });

  it('ship every file their exports name, the sources their maps name, and no .tsbuildinfo', () => {
    for (const p of PACKAGES) {
      const files = new Set(packed.find((x) => x.name === `@tufa/${p}`)!.files.map((f) => f.path));
      expect([...files].filter((f) => f.endsWith('.tsbuildinfo') || /\.test(-util)?\.ts$/.test(f))).toEqual(
        [],
      );
      const exports = JSON.parse(readFileSync(join(installed(p), 'package.json'), 'utf8')).exports as Record<
        string,
        Record<string, string>
      >;
      for (const conditions of Object.values(exports)) {
        for (const target of Object.values(conditions)) expect(files).toContain(target.replace(/^\.\//, ''));
      }
      const maps = filesUnder(join(installed(p), 'dist')).filter((f) => f.endsWith('.map'));
      expect(maps.length).toBeGreaterThan(0);
      for (const map of maps) {
        for (const source of JSON.parse(readFileSync(map, 'utf8')).sources as string[]) {
          expect(existsSync(resolve(dirname(map), source)), `${map} -> ${source}`).toBe(true);
        }
      }
    }
  });

  it('have types that need no @types/node and say Uint8Array, not Buffer', async () => {
    expect(existsSync(join(project, 'node_modules/@types/node'))).toBe(false);
    for (const p of PACKAGES) {
      for (const file of filesUnder(join(installed(p), 'dist')).filter((f) => f.endsWith('.d.ts'))) {
        const text = readFileSync(file, 'utf8');
        expect(text, file).not.toMatch(/(?<![A-Za-z])Buffer\b|from 'node:|reference types="node"/);
      }
    }
    const check = join(project, 'types-check');
    mkdirSync(check);
    writeFileSync(
      join(check, 'check.ts'),
      [
        "import { canonicalBytes, type Metadata, type Root, TufaError } from '@tufa/core';",
        "import { isTufaError as isCoreError } from '@tufa/core/errors';",
        "import { createNodeCrypto } from '@tufa/core/node';",
        "import { createNobleCrypto } from '@tufa/core/noble';",
        "import { type ClientOptions, createClient, type TufaClient, type VerifiedTarget } from '@tufa/client';",
        "import { isTufaError } from '@tufa/client/errors';",
        "const options: ClientOptions = { trust: { rootKeyIds: ['00'] }, ca: new Uint8Array(0), crypto: createNobleCrypto() };",
        "const client: TufaClient = createClient({ server: 'http://127.0.0.1:1', gun: 'example.com/app' }, options);",
        "export const target: Promise<VerifiedTarget> = client.verifyDigest('v1', 'sha256:00');",
        'export const root: Metadata<Root> | undefined = undefined;',
        'export const bytes: Uint8Array = canonicalBytes({ a: 1 });',
        "export const refused: boolean = isTufaError(new TufaError('NOT_FOUND', 'x'), 'NOT_FOUND') && isCoreError(0);",
        'export const provider: string = createNobleCrypto().name + createNodeCrypto().name;',
        '',
      ].join('\n'),
    );
    // Strict, the default libraries, no ambient types, and the libraries' .d.ts checked too.
    writeFileSync(
      join(check, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          types: [],
          skipLibCheck: false,
        },
        files: ['check.ts'],
      }),
    );
    const tsc = await run(process.execPath, [TSC, '-p', check], project);
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);
  });
});

describe("the client README's example", () => {
  it('compiles and runs as written, with the root the publisher pinned', async () => {
    const readme = readFileSync(join(REPO, 'packages/client/README.md'), 'utf8');
    const example = /## Example\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    for (const literal of [
      "'https://notary.example.com'",
      `gun: '${GUN}'`,
      "'./root.json'",
      "'v1.2.3'",
      "'sha256:4f2a…'",
    ]) {
      expect(example).toContain(literal);
    }
    // Where the client README says a user gets the root: `tufa root export GUN` in the publisher's home.
    const exported = await publisher.run(['root', 'export', GUN]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toMatch(/^tufa: root v1 of \S+ \(keys [0-9a-f]{12}, threshold 1\), expires /m);
    writeFileSync(join(project, 'root.json'), exported.stdout);
    await ok(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--save-dev', typesNode()],
      project,
    );
    const write = (name: string, digestLiteral: string) =>
      writeFileSync(
        join(project, name),
        example!
          .replace("'https://notary.example.com'", `'${backend.server.url}'`)
          .replace("'sha256:4f2a…'", `'${digestLiteral}'`),
      );
    write('example.ts', digest);
    write('example-wrong.ts', `sha256:${'0'.repeat(64)}`);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          types: ['node'],
        },
        files: ['example.ts', 'example-wrong.ts'],
      }),
    );
    const tsc = await run(process.execPath, [TSC, '-p', project], project);
    expect(tsc.stdout + tsc.stderr).toBe('');
    const env = { PATH: process.env.PATH ?? '', HOME: project };
    const trusted = await run(process.execPath, ['example.js'], project, env);
    expect(trusted).toEqual({ code: 0, stdout: `pull ${GUN}@${digest}\n`, stderr: '' });
    const wrong = await run(process.execPath, ['example-wrong.js'], project, env);
    expect(wrong.code).toBe(1);
    expect(JSON.parse(wrong.stderr).code).toBe('HASH_MISMATCH');
  });
});

/** The workspace's own @types/node version (from the npm cache). */
function typesNode(): string {
  return `@types/node@${JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).devDependencies['@types/node']}`;
}
