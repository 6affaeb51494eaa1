// What CRIU and the kernel can do: VERSION, CHECK and FEATURE_CHECK, with the answers the
// gateway itself needs kept (CRIU's version for checkpoints' metadata, the kernel's features).

import type { CriuOptions } from "../../../gen/criu/gateway/v1/gateway.js";
import { criuBinaryIdentity } from "../../criu/criuBinary.js";
import { CriuReqType } from "../../criu/wire.js";
import { criuRefused } from "../criuFailure.js";
import { findingRefusal, requirePageServing, systemReaders } from "../hostDoctor.js";
import { memTrackFinding } from "../hostFindings.js";
import type { OperationContext } from "./operationContext.js";
import type { OperationKit } from "./operationKit.js";
import { trackOperation } from "./trackOperation.js";

export interface CriuVersion {
  majorNumber: number;
  minorNumber: number;
  sublevel: number | undefined;
  extra: number | undefined;
  gitid: string;
  name: string;
}

export interface Features {
  memTrack: boolean;
  lazyPages: boolean;
  pidfdStore: boolean;
}

export type Probes = ReturnType<typeof createProbes>;

const NO_TARGET = { pid: 0, checkpointId: "" };

export function createProbes(kit: OperationKit) {
  const hostReaders = kit.deps.hostReaders ?? systemReaders(kit.deps.criuBin);
  /**
   * CRIU's VERSION answer depends on nothing but its binary: it is kept under the binary's identity,
   * re-checked (one stat) on every call, so that a call needs no worker until the binary changes.
   */
  let keptVersion: { identity: string; version: CriuVersion } | undefined;
  /** Kernel features do not change while the gateway runs: asked once, when first needed. */
  let cachedFeatures: Promise<Features> | undefined;

  async function currentVersion(signal?: AbortSignal): Promise<CriuVersion> {
    // Taken before asking: a binary replaced meanwhile is asked again on the next call.
    const identity = criuBinaryIdentity(kit.deps.criuBin);
    if (identity !== undefined && keptVersion?.identity === identity) return keptVersion.version;
    const version = await versionNow(signal);
    if (identity !== undefined) keptVersion = { identity, version };
    return version;
  }

  async function versionNow(signal?: AbortSignal): Promise<CriuVersion> {
    const context = { action: "report its version", logTail: [] };
    const resp = await kit.exchangeKept({ type: CriuReqType.VERSION }, { signal }, context);
    if (!resp.success || !resp.version) throw criuRefused(resp, context);
    const v = resp.version;
    return {
      majorNumber: v.majorNumber,
      minorNumber: v.minorNumber,
      sublevel: v.sublevel,
      extra: v.extra,
      gitid: v.gitid ?? "",
      name: v.name ?? "",
    };
  }

  async function checkNow(options: CriuOptions | undefined, ctx: OperationContext): Promise<void> {
    kit.validate({ options }, ctx);
    const scratch = await kit.store.scratch("check");
    try {
      const context = { action: "confirm the kernel supports checkpoint/restore", logTail: [] as string[] };
      const place = { dir: scratch, logFile: "check.log" };
      await kit.exchangeIn(CriuReqType.CHECK, options, place, ctx.signal, context);
    } finally {
      await scratch.discard();
    }
  }

  async function featureCheckNow(signal?: AbortSignal): Promise<Features> {
    const context = { action: "check features", logTail: [] };
    const resp = await kit.exchangeKept(
      { type: CriuReqType.FEATURE_CHECK, features: { memTrack: true, lazyPages: true, pidfdStore: true } },
      { signal },
      context,
    );
    if (!resp.success) throw criuRefused(resp, context);
    const features = {
      memTrack: resp.features?.memTrack ?? false,
      lazyPages: resp.features?.lazyPages ?? false,
      pidfdStore: resp.features?.pidfdStore ?? false,
    };
    cachedFeatures ??= Promise.resolve(features);
    return features;
  }

  async function memTrackAvailable(signal?: AbortSignal): Promise<boolean> {
    if (!cachedFeatures) {
      const asking = featureCheckNow(signal);
      cachedFeatures = asking;
      // A failed check is not remembered: the next call asks again.
      asking.catch(() => {
        if (cachedFeatures === asking) cachedFeatures = undefined;
      });
    }
    return (await cachedFeatures).memTrack;
  }

  return {
    version: (ctx: OperationContext = { caller: "gateway" }): Promise<CriuVersion> =>
      trackOperation(kit, "version", ctx, NO_TARGET, () => currentVersion(ctx.signal)),

    check: (options: CriuOptions | undefined, ctx: OperationContext): Promise<void> =>
      trackOperation(kit, "check", ctx, NO_TARGET, () => checkNow(options, ctx)),

    featureCheck: (ctx: OperationContext): Promise<Features> =>
      trackOperation(kit, "feature-check", ctx, NO_TARGET, () => featureCheckNow(ctx.signal)),

    /** CRIU's version as checkpoints record it ("4.2.1"): of the binary as it is now. */
    async criuVersionString(): Promise<string> {
      const v = await currentVersion();
      return [v.majorNumber, v.minorNumber, v.sublevel].filter((n) => n !== undefined).join(".");
    },

    /**
     * Dirty-memory tracking is asked for by track_mem and always used by a pre-dump (CRIU turns
     * track_mem on for it). Without the kernel's soft-dirty bits CRIU refuses track_mem, and a
     * pre-dump aborts CRIU outright (a BUG() in CRIU 4.1 and 4.2.1), so the gateway refuses first,
     * naming the host finding (hostFindings.ts).
     */
    async requireMemTrack(kind: "dump" | "pre-dump", options: CriuOptions | undefined, signal?: AbortSignal) {
      if (kind === "dump" && options?.trackMem !== true) return;
      if (await memTrackAvailable(signal)) return;
      throw kind === "pre-dump"
        ? findingRefusal(
            memTrackFinding(false),
            "a pre-dump needs dirty-memory tracking",
            "dump without a pre-dump",
          )
        : findingRefusal(
            memTrackFinding(false),
            "options.track_mem needs dirty-memory tracking",
            "leave track_mem unset",
          );
    },

    /** lazy_pages makes CRIU serve pages, which some hosts' pipe limits forbid (hostDoctor.ts). */
    async requireLazyPageServing(options: CriuOptions | undefined, what: string): Promise<void> {
      if (options?.lazyPages === true) await requirePageServing(hostReaders, `${what} with lazy_pages`);
    },
  };
}
