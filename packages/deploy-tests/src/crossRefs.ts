import { readFileSync } from 'node:fs';
import path from 'node:path';
import { acceptedEnv, binaryOf, HELPER_ENV, type Launcher, launchers, repoRoot } from './binaries.js';
import { type Container, podTemplateOf, type Resource } from './kustomize.js';
import { ADDRESS_RE, expand, resolveEnv, Topology } from './topology.js';

/** Mandatory options' env twins of a binary (commander `.makeOptionMandatory()`). */
function mandatoryEnv(launcher: Launcher, root: string): string[] {
  const text = readFileSync(path.join(root, launcher.source), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/new Option\(([\s\S]*?)\.addOption|new Option\(([\s\S]*?)\);/g)) {
    const body = m[1] ?? m[2] ?? '';
    const env = /\.env\(\s*'(OMNIDICT_[A-Z0-9_]+)'\s*,?\s*\)/.exec(body);
    if (env && body.includes('.makeOptionMandatory()')) out.push(env[1]!);
  }
  return out;
}

/** Variables a `sh -c` wrapper exports before exec'ing the binary. */
function wrapperExports(c: Container): string[] {
  const script = c.command?.[0] === 'sh' ? (c.command[c.command.length - 1] ?? '') : '';
  return [...script.matchAll(/export\s+([A-Z_][A-Z0-9_]*)=/g)].map((m) => m[1]!);
}

/**
 * checkCrossReferences lists every broken reference in a rendered overlay: env names the binary
 * does not read, mandatory settings left unset, $(VAR) and ConfigMap references, addresses that
 * lead to no Service/pod/port, probe ports that are not the gRPC port, data dirs off the volume,
 * Service and PDB selectors, and the operational minimums (probes, resources, grace period).
 * Returns human-readable problems; empty means consistent.
 */
export function checkCrossReferences(resources: Resource[], root = repoRoot()): string[] {
  const problems: string[] = [];
  const topology = new Topology(resources);
  const bins = launchers(root);
  const workloads = resources.filter((r) => r.kind === 'StatefulSet' || r.kind === 'Deployment');

  for (const svc of topology.services.values()) {
    const pods = topology.selected(svc.selector);
    if (pods.length === 0) problems.push(`Service ${svc.name}: selector matches no pod`);
    for (const p of svc.ports) {
      for (const pod of pods.slice(0, 1)) {
        if (topology.targetPort(pod, p.targetPort ?? p.port) === undefined) {
          problems.push(
            `Service ${svc.name}: targetPort ${p.targetPort ?? p.port} is not a container port of ${pod.name}`,
          );
        }
      }
    }
  }
  for (const pdb of resources.filter((r) => r.kind === 'PodDisruptionBudget')) {
    const sel = (pdb.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels ?? {};
    if (topology.selected(sel).length === 0) problems.push(`PodDisruptionBudget ${pdb.metadata.name}: selects no pod`);
  }

  for (const w of workloads) {
    const where = `${w.kind} ${w.metadata.name}`;
    const spec = w.spec as {
      serviceName?: string;
      volumeClaimTemplates?: { metadata: { name: string } }[];
      selector?: { matchLabels?: Record<string, string> };
    };
    const podSpec = podTemplateOf(w)?.spec;
    if (!podSpec) {
      problems.push(`${where}: no pod template`);
      continue;
    }
    const templateLabels =
      (podTemplateOf(w)?.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {};
    for (const [k, v] of Object.entries(spec.selector?.matchLabels ?? {})) {
      if (templateLabels[k] !== v) problems.push(`${where}: selector ${k}=${v} does not match its pod template`);
    }
    if (!resources.some((r) => r.kind === 'PodDisruptionBudget' && podsOf(topology, r).some((p) => p.workload === w))) {
      problems.push(`${where}: no PodDisruptionBudget covers its pods`);
    }
    if (w.kind === 'StatefulSet') {
      const svc = spec.serviceName ? topology.services.get(spec.serviceName) : undefined;
      if (!svc?.headless) problems.push(`${where}: serviceName '${spec.serviceName}' is not a headless Service`);
      if ((podSpec.terminationGracePeriodSeconds ?? 30) < 30) {
        problems.push(`${where}: terminationGracePeriodSeconds < 30 leaves no time for a leader transfer`);
      }
    }
    const claims = new Set((spec.volumeClaimTemplates ?? []).map((v) => v.metadata.name));
    const volumes = new Set([...claims, ...(podSpec.volumes ?? []).map((v) => v.name)]);
    const pod = topology.pods.find((p) => p.workload === w);
    for (const c of podSpec.containers) {
      const cw = `${where} container ${c.name}`;
      const bin = binaryOf(c);
      const launcher = bin ? bins.get(bin) : undefined;
      if (!launcher) {
        problems.push(
          `${cw}: runs '${bin}', which is not one of the image's launchers (${[...bins.keys()].join(', ')})`,
        );
        continue;
      }
      const accepted = acceptedEnv(launcher, root);
      const exported = wrapperExports(c);
      const seen = new Set<string>();
      for (const e of c.env ?? []) {
        if (seen.has(e.name)) problems.push(`${cw}: env ${e.name} set twice`);
        seen.add(e.name);
        if (!accepted.has(e.name) && !HELPER_ENV.has(e.name)) {
          problems.push(`${cw}: env ${e.name} is not read by ${bin} (it reads ${[...accepted].join(', ')})`);
        }
      }
      for (const name of exported) {
        if (!accepted.has(name)) problems.push(`${cw}: the wrapper exports ${name}, which ${bin} does not read`);
      }
      for (const name of mandatoryEnv(launcher, root)) {
        if (!seen.has(name) && !exported.includes(name)) problems.push(`${cw}: mandatory ${name} is not set`);
      }
      for (const kind of ['readinessProbe', 'livenessProbe'] as const) {
        if (!c[kind]?.grpc) problems.push(`${cw}: no gRPC ${kind}`);
      }
      if (
        !c.resources ||
        !(c.resources as { requests?: unknown }).requests ||
        !(c.resources as { limits?: unknown }).limits
      ) {
        problems.push(`${cw}: resources need both requests and limits`);
      }
      if (!pod) continue;
      const env = resolveEnv(topology, pod, c);
      problems.push(...env.problems.map((p) => `${cw}: ${p}`));
      const vars = new Map(env.vars);
      for (const part of [...(c.command ?? []), ...(c.args ?? [])]) {
        expand(part, vars, (n) => problems.push(`${cw}: command refers to undefined $(${n})`));
      }
      const ports = new Set((c.ports ?? []).map((p) => p.containerPort));
      for (const [name, value] of env.vars) {
        for (const m of value.matchAll(ADDRESS_RE)) {
          const r = topology.resolve(pod, m[1]!, Number(m[2]));
          if (typeof r === 'string') problems.push(`${cw}: ${name}: ${r}`);
        }
        if (/_PORT$/.test(name) && !ports.has(Number(value))) {
          problems.push(`${cw}: ${name}=${value} is not a container port`);
        }
      }
      // An advertised address must lead back to this pod, on the port its listen twin binds.
      for (const [adv, lis] of [
        ['OMNIDICT_ADVERTISE', 'OMNIDICT_LISTEN'],
        ['OMNIDICT_RAFT_ADVERTISE', 'OMNIDICT_RAFT_LISTEN'],
      ] as const) {
        const a = vars.get(adv);
        const l = vars.get(lis);
        if (a === undefined) continue;
        const r = topology.resolve(pod, a.slice(0, a.lastIndexOf(':')), Number(a.slice(a.lastIndexOf(':') + 1)));
        const listenPort = l === undefined ? undefined : Number(l.slice(l.lastIndexOf(':') + 1));
        if (typeof r !== 'string' && (r.pod !== pod || r.containerPort !== listenPort)) {
          problems.push(`${cw}: ${adv}=${a} does not lead back to this pod's ${lis} port ${listenPort}`);
        }
      }
      const listen = vars.get('OMNIDICT_LISTEN');
      const listenPort = listen ? Number(listen.slice(listen.lastIndexOf(':') + 1)) : undefined;
      if (listenPort === undefined) problems.push(`${cw}: OMNIDICT_LISTEN is not set (the default binds 127.0.0.1)`);
      if (listen && !/^(0\.0\.0\.0|\[::\]|::):/.test(listen))
        problems.push(`${cw}: OMNIDICT_LISTEN=${listen} is not reachable from outside the pod`);
      for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe'] as const) {
        const port = c[kind]?.grpc?.port;
        if (port === undefined) continue;
        if (!ports.has(port)) problems.push(`${cw}: ${kind} port ${port} is not a container port`);
        if (listenPort !== undefined && port !== listenPort) {
          problems.push(`${cw}: ${kind} port ${port} is not the gRPC port ${listenPort} (OMNIDICT_LISTEN)`);
        }
      }
      const dataDir = vars.get('OMNIDICT_DATA_DIR');
      if (dataDir !== undefined) {
        const mount = (c.volumeMounts ?? []).find(
          (m) => dataDir === m.mountPath || dataDir.startsWith(`${m.mountPath.replace(/\/$/, '')}/`),
        );
        if (!mount) problems.push(`${cw}: OMNIDICT_DATA_DIR=${dataDir} is on no volume mount`);
        else if (!volumes.has(mount.name)) problems.push(`${cw}: volume mount '${mount.name}' has no volume`);
        else if (w.kind === 'StatefulSet' && !claims.has(mount.name)) {
          problems.push(`${cw}: OMNIDICT_DATA_DIR is on '${mount.name}', which is not a persistent volume claim`);
        }
      }
      const peers = vars.get('OMNIDICT_PEERS');
      if (peers !== undefined && exported.includes('OMNIDICT_PD_ID')) {
        // The wrapper makes the id ordinal + 1; --peers must list every replica under that id.
        const replicas = topology.pods.filter((p) => p.workload === w);
        for (const p of replicas) {
          const entry = peers.split(',').find((e) => e.startsWith(`${p.ordinal + 1}=`));
          const addr = entry?.slice(entry.indexOf('=') + 1) ?? '';
          const host = addr.slice(0, addr.lastIndexOf(':'));
          const r = entry ? topology.resolve(pod, host, Number(addr.slice(addr.lastIndexOf(':') + 1))) : undefined;
          if (!r || typeof r === 'string' || r.pod !== p) {
            problems.push(`${cw}: OMNIDICT_PEERS has no entry ${p.ordinal + 1}=<${p.name}'s Raft address>`);
          }
        }
        if (peers.split(',').length !== replicas.length) {
          problems.push(`${cw}: OMNIDICT_PEERS lists ${peers.split(',').length} peers for ${replicas.length} replicas`);
        }
      }
    }
  }
  return problems;
}

function podsOf(topology: Topology, pdb: Resource) {
  const sel = (pdb.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels ?? {};
  return topology.selected(sel);
}
