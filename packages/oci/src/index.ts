export {
  type CredentialSource,
  type DockerCredentialOptions,
  dockerConfigKey,
  dockerCredentials,
  type RegistryCredentials,
  staticCredentials,
  withoutTufaSecrets,
} from './credentials.js';
export {
  imageCustom,
  inspectImage,
  type ResolvedImage,
  resolveImage,
  type TrustSource,
  type VerifiedImage,
  verifyImage,
} from './image.js';
export {
  checkManifestDigest,
  DOCKER_HUB,
  DOCKER_HUB_API,
  type ImageReference,
  parseImageReference,
  pinnedReference,
} from './reference.js';
export {
  DEFAULT_MAX_MANIFEST_BYTES,
  DEFAULT_REGISTRY_TIMEOUT_MS,
  MANIFEST_MEDIA_TYPES,
  type Manifest,
  MEDIA_TYPES,
  parseChallenge,
  RegistryClient,
  type RegistryOptions,
} from './registry.js';
