/**
 * Writes the body of an update carrying one signed targets document of N targets at VERSION to
 * FILE: `node --import tsx bench/lib/large-body.ts N VERSION FILE`. A child process, so that the
 * soak's own event loop (which measures read latency) never builds or signs a 30 MB document.
 */
import { writeFileSync } from 'node:fs';
import { serializeMetadata } from '@tufa/core';
import { sign } from '@tufa/testing';
import { body, keys } from '@tufa/testing/publisher';
import { targetsWith } from './tufa.js';

const [n, version, file] = process.argv.slice(2);
const doc = serializeMetadata(sign(targetsWith(Number(n), Number(version)), keys.targets));
writeFileSync(file!, body({ targets: doc }));
