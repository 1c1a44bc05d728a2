/**
 * python-tuf's signature layer as an independent verifier: Debian's python3-securesystemslib
 * (0.26, the library python-tuf verifies signatures with; python-tuf itself is not packaged by
 * Debian and PyPI is out of reach). It canonicalises `signed` with its own encoder and checks each
 * signature with its own key code, as python-tuf's Metadata.verify_delegate does.
 */
import { runProcess } from './process.js';

/** Debian's interpreter, where apt puts python3-securesystemslib (not a pyenv or venv python). */
export const DEBIAN_PYTHON = '/usr/bin/python3';

const VERIFY_DELEGATE = `
import json, sys
from securesystemslib.formats import encode_canonical
from securesystemslib.keys import verify_signature
request = json.load(sys.stdin)
delegator, role, doc = request["delegator"]["signed"], request["role"], request["doc"]
if "roles" in delegator and isinstance(delegator["roles"], dict):
    entry, keys = delegator["roles"][role], delegator["keys"]
else:
    entry = next(r for r in delegator["delegations"]["roles"] if r["name"] == role)
    keys = delegator["delegations"]["keys"]
data = encode_canonical(doc["signed"]).encode("utf-8")
valid = []
for signature in doc["signatures"]:
    keyid = signature["keyid"]
    if keyid not in entry["keyids"] or keyid in valid:
        continue
    key = dict(keys[keyid])
    key["keyid"] = keyid
    try:
        if verify_signature(key, signature, data):
            valid.append(keyid)
    except Exception as error:
        print(json.dumps({"error": type(error).__name__ + ": " + str(error)}), file=sys.stderr)
print(json.dumps({"valid": valid, "threshold": entry["threshold"]}))
`;

/** Which of `doc`'s signatures securesystemslib accepts for `role` as `delegator` (a root or targets document) delegates it. */
export async function securesystemslibVerifyDelegate(
  delegator: unknown,
  role: string,
  doc: unknown,
): Promise<{ valid: string[]; threshold: number }> {
  const r = await runProcess(DEBIAN_PYTHON, ['-c', VERIFY_DELEGATE], {
    env: { PATH: process.env.PATH ?? '' },
    input: JSON.stringify({ delegator, role, doc }),
  });
  if (r.code !== 0) throw new Error(`securesystemslib exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { valid: string[]; threshold: number };
}
