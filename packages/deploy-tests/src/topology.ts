import { type Container, containersOf, podTemplateOf, type Resource } from './kustomize.js';

/** One pod the rendered manifests would create. Deployment pods are named `<name>-<i>` here. */
export interface Pod {
  name: string;
  namespace: string;
  ordinal: number;
  workload: Resource;
  labels: Record<string, string>;
  containers: Container[];
  /** A stand-in for status.podIP, unique per pod (10.244.0.<n>). */
  podIp: string;
}

export interface Service {
  name: string;
  headless: boolean;
  selector: Record<string, string>;
  ports: { name?: string; port: number; targetPort?: number | string }[];
}

/** Where an address in the manifests leads: a pod and one of its container ports. */
export interface Endpoint {
  pod: Pod;
  containerPort: number;
}

const CLUSTER_DOMAIN = 'cluster.local';

/** Topology: the pods and Services of a rendered overlay, and how names and ports resolve. */
export class Topology {
  readonly pods: Pod[] = [];
  readonly services = new Map<string, Service>();
  readonly configMaps = new Map<string, Record<string, string>>();

  constructor(readonly resources: Resource[]) {
    let ip = 10;
    for (const r of resources) {
      const namespace = r.metadata.namespace ?? 'default';
      if (r.kind === 'ConfigMap') this.configMaps.set(r.metadata.name, (r.data ?? {}) as Record<string, string>);
      if (r.kind === 'Service') {
        const spec = r.spec as {
          clusterIP?: string;
          selector?: Record<string, string>;
          ports?: Service['ports'];
        };
        this.services.set(r.metadata.name, {
          name: r.metadata.name,
          headless: spec.clusterIP === 'None',
          selector: spec.selector ?? {},
          ports: spec.ports ?? [],
        });
      }
      if (r.kind !== 'StatefulSet' && r.kind !== 'Deployment') continue;
      const replicas = ((r.spec as { replicas?: number }).replicas ?? 1) as number;
      const labels = ((podTemplateOf(r)?.metadata as { labels?: Record<string, string> } | undefined)?.labels ??
        {}) as Record<string, string>;
      for (let i = 0; i < replicas; i++) {
        this.pods.push({
          name: `${r.metadata.name}-${i}`,
          namespace,
          ordinal: i,
          workload: r,
          labels,
          containers: containersOf(r),
          podIp: `10.244.0.${ip++}`,
        });
      }
    }
  }

  /** Pods a Service (or PDB) selector picks. */
  selected(selector: Record<string, string>): Pod[] {
    const entries = Object.entries(selector);
    if (entries.length === 0) return [];
    return this.pods.filter((p) => entries.every(([k, v]) => p.labels[k] === v));
  }

  /** The container port a Service's targetPort (number or port name) names on a pod, if any. */
  targetPort(pod: Pod, target: number | string): number | undefined {
    for (const c of pod.containers) {
      for (const p of c.ports ?? []) {
        if (typeof target === 'number' ? p.containerPort === target : p.name === target) return p.containerPort;
      }
    }
    return undefined;
  }

  /**
   * resolve says where `host:port` leads when dialled from `self`, or why it leads nowhere.
   * Hosts: a wildcard or loopback (self), the pod IP stand-in, `<pod>.<headless svc>[.<ns>.svc[.cluster.local]]`,
   * `<svc>[.<ns>.svc[.cluster.local]]` (its first selected pod).
   */
  resolve(self: Pod, host: string, port: number): Endpoint | string {
    const direct = (pod: Pod): Endpoint | string =>
      pod.containers.some((c) => (c.ports ?? []).some((p) => p.containerPort === port))
        ? { pod, containerPort: port }
        : `${host}:${port}: pod ${pod.name} has no container port ${port}`;
    if (['0.0.0.0', '::', '[::]', 'localhost', '127.0.0.1'].includes(host)) return direct(self);
    const byIp = this.pods.find((p) => p.podIp === host);
    if (byIp) return direct(byIp);
    let labels = host.split('.');
    // `<name>.<ns>.svc` and `<name>.<ns>.svc.cluster.local`: strip the suffix, check the namespace.
    for (const suffix of [`svc.${CLUSTER_DOMAIN}`, 'svc']) {
      const n = suffix.split('.').length;
      if (labels.length > n + 1 && labels.slice(-n).join('.') === suffix) {
        const ns = labels[labels.length - n - 1];
        if (ns !== self.namespace) return `${host}: namespace '${ns}' is not the pods' namespace '${self.namespace}'`;
        labels = labels.slice(0, -n - 1);
        break;
      }
    }
    if (labels.length === 2) {
      const [podName, svcName] = labels as [string, string];
      const svc = this.services.get(svcName);
      if (!svc) return `${host}: no Service '${svcName}'`;
      if (!svc.headless) return `${host}: Service '${svcName}' is not headless, pods have no DNS names under it`;
      const pod = this.selected(svc.selector).find((p) => p.name === podName);
      if (!pod) return `${host}: Service '${svcName}' selects no pod '${podName}'`;
      if ((pod.workload.spec as { serviceName?: string }).serviceName !== svcName) {
        return `${host}: ${pod.workload.kind} ${pod.workload.metadata.name} does not name '${svcName}' as its serviceName`;
      }
      if (!svc.ports.some((p) => p.port === port && this.targetPort(pod, p.targetPort ?? p.port) === port)) {
        return `${host}:${port}: Service '${svcName}' has no port ${port} onto the same container port`;
      }
      return direct(pod);
    }
    if (labels.length === 1) {
      const svc = this.services.get(labels[0]!);
      if (!svc) return `${host}: no Service '${labels[0]}'`;
      const sp = svc.ports.find((p) => p.port === port);
      if (!sp) return `${host}:${port}: Service '${svc.name}' has no port ${port}`;
      const pod = this.selected(svc.selector)[0];
      if (!pod) return `${host}: Service '${svc.name}' selects no pod`;
      const cp = this.targetPort(pod, sp.targetPort ?? sp.port);
      if (cp === undefined) return `${host}:${port}: targetPort ${sp.targetPort} is not a port of ${pod.name}`;
      return { pod, containerPort: cp };
    }
    return `${host}: not a name this cluster defines`;
  }
}

/** Matches `host:port` in an env value (hosts are DNS names, IPv4, or [IPv6]). */
export const ADDRESS_RE = /(\[[0-9a-fA-F:]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})\b/g;

export interface ResolvedEnv {
  /** In the container's order, after field refs, config map refs and $(VAR) expansion. */
  vars: [string, string][];
  /** References that did not resolve: `$(X)` to an undefined or later variable, missing config maps. */
  problems: string[];
}

/**
 * expand applies Kubernetes' $(VAR) expansion: `$$` is a literal `$`, `$(NAME)` is the value of a
 * variable defined so far, and an unknown `$(NAME)` stays as written (reported by the caller).
 */
export function expand(s: string, vars: Map<string, string>, unknown: (name: string) => void = () => {}): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch !== '$' || i + 1 >= s.length) {
      out += ch;
      continue;
    }
    const next = s[i + 1]!;
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = s.indexOf(')', i + 2);
      const name = close < 0 ? '' : s.slice(i + 2, close);
      if (close >= 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && vars.has(name)) {
        out += vars.get(name)!;
        i = close;
      } else {
        if (close >= 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) unknown(name);
        out += ch;
      }
    } else {
      out += ch;
    }
  }
  return out;
}

/** resolveEnv computes a container's environment as the kubelet would for `pod`. */
export function resolveEnv(topology: Topology, pod: Pod, c: Container): ResolvedEnv {
  const vars = new Map<string, string>();
  const problems: string[] = [];
  for (const e of c.env ?? []) {
    let value: string | undefined;
    if (e.value !== undefined) {
      value = expand(String(e.value), vars, (n) =>
        problems.push(`${e.name}: $(${n}) is not defined before it (Kubernetes leaves it unexpanded)`),
      );
    } else if (e.valueFrom?.fieldRef) {
      const f = e.valueFrom.fieldRef.fieldPath;
      value =
        f === 'metadata.name'
          ? pod.name
          : f === 'metadata.namespace'
            ? pod.namespace
            : f === 'status.podIP'
              ? pod.podIp
              : undefined;
      if (value === undefined) problems.push(`${e.name}: unsupported fieldRef ${f}`);
    } else if (e.valueFrom?.configMapKeyRef) {
      const { name, key } = e.valueFrom.configMapKeyRef;
      value = topology.configMaps.get(name)?.[key];
      if (value === undefined) problems.push(`${e.name}: ConfigMap ${name} has no key '${key}'`);
    } else {
      problems.push(`${e.name}: neither value nor a supported valueFrom`);
    }
    if (value !== undefined) vars.set(e.name, value);
  }
  return { vars: [...vars], problems };
}
