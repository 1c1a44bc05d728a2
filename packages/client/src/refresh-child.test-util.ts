/** Child process for the concurrency test: refreshes one cache folder again and again. */
import { createClient } from '@tufa/client';

const [metadataUrl, cacheDir, rounds, now] = process.argv.slice(2) as [string, string, string, string];
const versions: number[] = [];
for (let i = 0; i < Number(rounds); i++) {
  const client = createClient(
    { metadataUrl },
    { repositoryCacheDir: cacheDir, clock: () => Number(now), trust: { allowTofu: true } },
  );
  const result = await client.refresh();
  await client.getTarget('releases/r1');
  versions.push(result.timestamp);
}
process.stdout.write(JSON.stringify(versions));
