export { DAY, GUN, NOW, text } from './constants.js';
export {
  bytesOf,
  rolesOf,
  sign,
  signBytes,
  signedBytes,
  signRaw,
  type TestKey,
  testCrypto,
  testKey,
} from './keys.js';
export { codeOf, refusal, refusedUpdate } from './refusals.js';
export {
  buildRepo,
  type DelegatedState,
  endless,
  type Handler,
  hang,
  RepoSim,
  type RepoSimOptions,
  status,
  type TopLevelRole,
  trickle,
} from './repository.js';
