export { ClusterTwin, type ClusterTwinOptions, NodeTwin, type SeenRequest, type TwinShard } from './clusterTwin.js';
export { globToRegExp } from './glob.js';
export { PdTwin } from './pdTwin.js';
