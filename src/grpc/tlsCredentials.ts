// TLS for TCP listeners, with certificates that reload without a restart. The files are read and
// checked (certificate and key belong together, the client CA parses) before they replace what is
// served; a bad or half-replaced set is logged and the previous one stays in use.
import { X509Certificate } from "node:crypto";
import { promises as fs, readFileSync } from "node:fs";
import { createSecureContext, type SecureContextOptions } from "node:tls";
import { ServerCredentials } from "@grpc/grpc-js";
import type { Logger } from "../log.js";

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** With a client CA, callers must present a certificate it signed (mutual TLS). */
  clientCaFile: string | undefined;
}

interface Material {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
}

export class ReloadingTlsCredentials extends ServerCredentials {
  #current: Material;
  #timer: NodeJS.Timeout | undefined;

  /** Reads and checks the files now; throws a message naming the file at fault. */
  static load(files: TlsFiles, logger: Logger): ReloadingTlsCredentials {
    return new ReloadingTlsCredentials(readMaterialSync(files), files, logger);
  }

  private constructor(
    material: Material,
    private readonly files: TlsFiles,
    private readonly logger: Logger,
  ) {
    const mutual = files.clientCaFile !== undefined;
    super({ requestCert: mutual, rejectUnauthorized: mutual }, toContext(material));
    this.#current = material;
  }

  override _equals(other: ServerCredentials): boolean {
    return this === other;
  }

  /** The served certificate's SHA-256 fingerprint, for logs and tests. */
  get fingerprint(): string {
    return new X509Certificate(this.#current.cert).fingerprint256;
  }

  /** Re-reads the files; true when something changed and is now served. Never throws. */
  async reload(): Promise<boolean> {
    let next: Material;
    try {
      next = await readMaterial(this.files);
      checkMaterial(next, this.files);
    } catch (err) {
      this.logger.log("error", "TLS files not reloaded; the previous certificate stays in use", {
        error: (err as Error).message,
      });
      return false;
    }
    const same =
      next.cert.equals(this.#current.cert) &&
      next.key.equals(this.#current.key) &&
      (next.ca ?? Buffer.alloc(0)).equals(this.#current.ca ?? Buffer.alloc(0));
    if (same) return false;
    this.#current = next;
    this.updateSecureContextOptions(toContext(next));
    this.logger.log("info", "TLS certificate reloaded", { fingerprint: this.fingerprint });
    return true;
  }

  /** Re-reads the files every `intervalMs` (0: never). */
  watch(intervalMs: number): void {
    this.stop();
    if (intervalMs <= 0) return;
    this.#timer = setInterval(() => void this.reload(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function toContext(m: Material): SecureContextOptions {
  return { cert: m.cert, key: m.key, ...(m.ca ? { ca: m.ca } : {}) };
}

function readMaterialSync(files: TlsFiles): Material {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`${what} ${path} cannot be read: ${(err as Error).message}`);
    }
  };
  const material = {
    cert: read(files.certFile, "tls-cert"),
    key: read(files.keyFile, "tls-key"),
    ca: files.clientCaFile === undefined ? undefined : read(files.clientCaFile, "tls-client-ca"),
  };
  checkMaterial(material, files);
  return material;
}

async function readMaterial(files: TlsFiles): Promise<Material> {
  const [cert, key, ca] = await Promise.all([
    fs.readFile(files.certFile),
    fs.readFile(files.keyFile),
    files.clientCaFile === undefined ? undefined : fs.readFile(files.clientCaFile),
  ]);
  return { cert, key, ca };
}

function checkMaterial(m: Material, files: TlsFiles): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(m.cert);
  } catch (err) {
    throw new Error(`tls-cert ${files.certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  if (m.ca !== undefined) {
    try {
      new X509Certificate(m.ca);
    } catch (err) {
      throw new Error(
        `tls-client-ca ${files.clientCaFile} is not a PEM certificate: ${(err as Error).message}`,
      );
    }
  }
  try {
    createSecureContext(toContext(m));
  } catch (err) {
    throw new Error(
      `tls-key ${files.keyFile} does not fit tls-cert ${files.certFile} (${(err as Error).message})`,
    );
  }
  if (new Date(cert.validTo).getTime() < Date.now()) {
    throw new Error(`tls-cert ${files.certFile} expired on ${cert.validTo}`);
  }
}
