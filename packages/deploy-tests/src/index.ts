export { acceptedEnv, binaryOf, HELPER_ENV, type Launcher, launchers, repoRoot } from './binaries.js';
export { checkCrossReferences } from './crossRefs.js';
export { parseDockerfile, type Stage } from './dockerfile.js';
export { type Container, KustomizeError, type Resource, readResources, render } from './kustomize.js';
export { grpcHealth, LocalCluster, type LocalClusterOptions, type LocalProcess } from './localFromManifests.js';
export { expand, type Pod, resolveEnv, Topology } from './topology.js';
export { validateSchemas } from './validateSchemas.js';
