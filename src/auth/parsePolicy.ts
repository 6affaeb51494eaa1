// The policy file (JSON) read into a Policy, validated in full before use, so that a typo is a
// start-up error naming its place, never a silently wider (or narrower) grant.
import type { OptionClass } from "../domain/criuOptions.js";
import {
  adminGrant,
  type ForwardedIdentityConfig,
  type Grant,
  type IdentitySelector,
  type Limits,
  NO_PROCESSES,
  type Policy,
  type ProcessGrant,
} from "./policy.js";
import {
  array,
  boolean,
  count,
  id32,
  type Json,
  nonEmpty,
  object,
  PolicyError,
  positivePid,
  string,
} from "./policyJson.js";

export { PolicyError } from "./policyJson.js";

/**
 * Parses and validates a policy document (JSON). `knownRpcs` are the RPC names a grant may list.
 * Throws PolicyError naming the place of the first mistake.
 */
export function parsePolicy(text: string, source: string, knownRpcs: readonly string[]): Policy {
  let doc: Json;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PolicyError(`${source}: not valid JSON: ${(err as Error).message}`);
  }
  const at = (path: string) => `${source}: ${path}`;
  const root = object(doc, at("the document"), ["grants", "forwarded_identity", "limits"]);
  const grantsJson = array(root.grants, at("grants"));
  if (grantsJson.length === 0) throw new PolicyError(`${at("grants")}: at least one grant is needed`);
  const names = new Set<string>();
  const grants = grantsJson.map((g, i) => {
    const grant = parseGrant(g, at(`grants[${i}]`), knownRpcs);
    if (names.has(grant.name))
      throw new PolicyError(`${at(`grants[${i}].name`)}: "${grant.name}" is used twice`);
    names.add(grant.name);
    return grant;
  });
  let forwarded: ForwardedIdentityConfig | undefined;
  if (root.forwarded_identity !== undefined) {
    const f = object(root.forwarded_identity, at("forwarded_identity"), ["header", "trusted_peers"]);
    const header =
      f.header === undefined ? "x-forwarded-client-cert" : string(f.header, at("forwarded_identity.header"));
    if (!/^[a-z0-9-]+$/.test(header.toLowerCase()) || header.startsWith("grpc-") || header.startsWith(":")) {
      throw new PolicyError(`${at("forwarded_identity.header")}: "${header}" is not a usable header name`);
    }
    const peers = array(f.trusted_peers, at("forwarded_identity.trusted_peers")).map((s, i) =>
      parseSelector(s, at(`forwarded_identity.trusted_peers[${i}]`)),
    );
    if (peers.length === 0) {
      throw new PolicyError(`${at("forwarded_identity.trusted_peers")}: name at least one trusted proxy`);
    }
    if (peers.some((p) => p.anonymous || p.forwardedName !== undefined)) {
      throw new PolicyError(
        `${at("forwarded_identity.trusted_peers")}: a trusted proxy must be identified by unix credentials or a client certificate`,
      );
    }
    forwarded = { header: header.toLowerCase(), trustedPeers: peers };
  }
  const limits = root.limits === undefined ? {} : parseLimits(root.limits, at("limits"));
  return { source, grants, forwarded, limits };
}

function parseGrant(json: Json, at: string, knownRpcs: readonly string[]): Grant {
  const g = object(json, at, [
    "name",
    "identities",
    "admin",
    "rpcs",
    "processes",
    "checkpoints",
    "option_classes",
    "limits",
  ]);
  const name = string(g.name, `${at}.name`);
  if (!name) throw new PolicyError(`${at}.name: must not be empty`);
  const identities = array(g.identities, `${at}.identities`).map((s, i) =>
    parseSelector(s, `${at}.identities[${i}]`),
  );
  if (identities.length === 0) throw new PolicyError(`${at}.identities: at least one selector is needed`);
  const limits = g.limits === undefined ? {} : parseLimits(g.limits, `${at}.limits`);
  const admin = g.admin === undefined ? false : boolean(g.admin, `${at}.admin`);
  if (admin) {
    for (const key of ["rpcs", "processes", "checkpoints", "option_classes"]) {
      if (g[key] !== undefined) {
        throw new PolicyError(`${at}.${key}: an admin grant may do everything; drop "${key}" or "admin"`);
      }
    }
    return adminGrant(name, identities, limits);
  }
  let rpcs: ReadonlySet<string> | "all" = new Set();
  if (g.rpcs !== undefined) {
    const list = array(g.rpcs, `${at}.rpcs`).map((r, i) => string(r, `${at}.rpcs[${i}]`));
    if (list.includes("*")) rpcs = "all";
    else {
      for (const [i, r] of list.entries()) {
        if (!knownRpcs.includes(r)) {
          throw new PolicyError(
            `${at}.rpcs[${i}]: "${r}" is not an RPC; known: ${knownRpcs.join(", ")}, or "*"`,
          );
        }
      }
      rpcs = new Set(list);
    }
  }
  const processes = g.processes === undefined ? NO_PROCESSES : parseProcesses(g.processes, `${at}.processes`);
  const checkpoints: Grant["checkpoints"] = { read: [], write: [], delete: [] };
  if (g.checkpoints !== undefined) {
    const c = object(g.checkpoints, `${at}.checkpoints`, ["read", "write", "delete"]);
    for (const access of ["read", "write", "delete"] as const) {
      if (c[access] === undefined) continue;
      const list = array(c[access], `${at}.checkpoints.${access}`).map((p, i) => {
        const prefix = string(p, `${at}.checkpoints.${access}[${i}]`);
        if (prefix !== "*" && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(prefix)) {
          throw new PolicyError(
            `${at}.checkpoints.${access}[${i}]: "${prefix}" is neither "*" nor a checkpoint id prefix (letters, digits, ".", "_", "-"; not starting with "." "_" "-")`,
          );
        }
        return prefix;
      });
      checkpoints[access] = list.includes("*") ? "all" : list;
    }
  }
  const optionClasses = new Set<OptionClass>(["safe"]);
  if (g.option_classes !== undefined) {
    optionClasses.clear();
    for (const [i, c] of array(g.option_classes, `${at}.option_classes`).entries()) {
      const cls = string(c, `${at}.option_classes[${i}]`);
      if (cls === "never") {
        throw new PolicyError(
          `${at}.option_classes[${i}]: "never" options (config_file, exec_cmd, log_file, …) are refused for everyone; no policy can grant them`,
        );
      }
      if (cls !== "safe" && cls !== "admin") {
        throw new PolicyError(`${at}.option_classes[${i}]: "${cls}" is not an option class (safe, admin)`);
      }
      optionClasses.add(cls);
    }
  }
  return { name, identities, admin: false, rpcs, processes, checkpoints, optionClasses, limits };
}

function parseSelector(json: Json, at: string): IdentitySelector {
  const s = object(json, at, ["unix_uid", "unix_gid", "cert_cn", "cert_san", "forwarded_name", "anonymous"]);
  const selector: IdentitySelector = {};
  if (s.unix_uid !== undefined) selector.unixUid = id32(s.unix_uid, `${at}.unix_uid`);
  if (s.unix_gid !== undefined) selector.unixGid = id32(s.unix_gid, `${at}.unix_gid`);
  if (s.cert_cn !== undefined) selector.certCn = nonEmpty(s.cert_cn, `${at}.cert_cn`);
  if (s.cert_san !== undefined) selector.certSan = nonEmpty(s.cert_san, `${at}.cert_san`);
  if (s.forwarded_name !== undefined)
    selector.forwardedName = nonEmpty(s.forwarded_name, `${at}.forwarded_name`);
  if (s.anonymous !== undefined) {
    if (s.anonymous !== true) throw new PolicyError(`${at}.anonymous: only true is meaningful`);
    selector.anonymous = true;
  }
  const kinds = new Set(
    Object.keys(s).map((k) => (k.startsWith("unix_") ? "unix" : k.startsWith("cert_") ? "cert" : k)),
  );
  if (kinds.size === 0)
    throw new PolicyError(`${at}: an empty selector would match nobody; name an identity`);
  if (kinds.size > 1) {
    throw new PolicyError(
      `${at}: ${Object.keys(s).join(" and ")} describe different kinds of caller and can never match together; use two selectors`,
    );
  }
  return selector;
}

function parseProcesses(json: Json, at: string): ProcessGrant {
  const p = object(json, at, ["any", "uids", "cgroups", "pids"]);
  const any = p.any === undefined ? false : boolean(p.any, `${at}.any`);
  const uids =
    p.uids === undefined ? [] : array(p.uids, `${at}.uids`).map((u, i) => id32(u, `${at}.uids[${i}]`));
  const cgroups =
    p.cgroups === undefined
      ? []
      : array(p.cgroups, `${at}.cgroups`).map((c, i) => {
          const path = string(c, `${at}.cgroups[${i}]`);
          if (
            !path.startsWith("/") ||
            path.split("/").includes("..") ||
            (path.length > 1 && path.endsWith("/"))
          ) {
            throw new PolicyError(
              `${at}.cgroups[${i}]: "${path}" must be an absolute cgroup v2 path like /system.slice/app.service, without ".." or a trailing "/"`,
            );
          }
          return path;
        });
  const pids =
    p.pids === undefined
      ? []
      : array(p.pids, `${at}.pids`).map((r, i): [number, number] => {
          const where = `${at}.pids[${i}]`;
          if (typeof r === "number") {
            const pid = positivePid(r, where);
            return [pid, pid];
          }
          const m = typeof r === "string" ? /^(\d+)-(\d+)$/.exec(r) : null;
          if (!m) throw new PolicyError(`${where}: must be a pid (4242) or an inclusive range ("2000-2999")`);
          const lo = positivePid(Number(m[1]), where);
          const hi = positivePid(Number(m[2]), where);
          if (lo > hi) throw new PolicyError(`${where}: "${r}" ends before it starts`);
          return [lo, hi];
        });
  if (!any && uids.length === 0 && cgroups.length === 0 && pids.length === 0) {
    throw new PolicyError(
      `${at}: grants no process; give uids, cgroups, pids or "any": true, or leave it out`,
    );
  }
  return { any, uids, cgroups, pids };
}

function parseLimits(json: Json, at: string): Limits {
  const l = object(json, at, ["concurrent_operations", "subscribers", "max_request_bytes"]);
  const limits: Limits = {};
  if (l.max_request_bytes !== undefined) {
    limits.maxRequestBytes = count(l.max_request_bytes, `${at}.max_request_bytes`);
    if (limits.maxRequestBytes < 1024) {
      throw new PolicyError(
        `${at}.max_request_bytes: ${limits.maxRequestBytes} is too small for any request; give at least 1024`,
      );
    }
  }
  if (l.concurrent_operations !== undefined)
    limits.concurrentOperations = count(l.concurrent_operations, `${at}.concurrent_operations`);
  if (l.subscribers !== undefined) limits.subscribers = count(l.subscribers, `${at}.subscribers`);
  return limits;
}
