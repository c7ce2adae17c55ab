// Which cluster serves a request: by its `model`, except that a single cluster takes any model.
import type { ClusterConfig } from '../config/index.js';
import type { ConfigSnapshot } from '../config/store.js';
import { RouterError } from '../errors.js';

export function pickCluster(
  snapshot: Pick<ConfigSnapshot, 'config' | 'clusterByModel'>,
  model: unknown,
): ClusterConfig {
  const clusters = snapshot.config.clusters;
  if (clusters.length === 0) {
    throw new RouterError('NOT_CONFIGURED', 'the router has no configuration yet: no cluster to route to');
  }
  if (clusters.length === 1) return clusters[0]!;
  const served = [...snapshot.clusterByModel.keys()].join(', ');
  if (typeof model !== 'string' || model.length === 0) {
    throw new RouterError(
      'MODEL_REQUIRED',
      `\`model\` is required: this router serves several clusters (models: ${served})`,
    );
  }
  const cluster = snapshot.clusterByModel.get(model);
  if (!cluster) {
    throw new RouterError(
      'MODEL_NOT_FOUND',
      `The model \`${model}\` does not exist. Served models: ${served}`,
    );
  }
  return cluster;
}
