// Certificates made for a test with openssl: a CA, and server and client certificates it signs.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface CertFiles {
  cert: string;
  key: string;
}

export interface Pem {
  cert: Buffer;
  key: Buffer;
}

/** openssl req's arguments for a new P-256 key, unencrypted, written to `keyOut`. */
function newKey(keyOut: string): string[] {
  return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyOut];
}

function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** A self-signed CA valid for two days. */
export function makeCa(dir: string, name: string): CertFiles {
  const files = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  openssl([
    "req",
    "-x509",
    ...newKey(files.key),
    "-out",
    files.cert,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return files;
}

/**
 * A certificate for `commonName` with the given SANs ("DNS:x", "IP:1.2.3.4", "URI:spiffe://…"),
 * each taken whole after its type, commas included.
 */
export function issue(
  dir: string,
  ca: CertFiles,
  name: string,
  commonName: string,
  sans: string[],
): CertFiles {
  const files = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  openssl(["req", ...newKey(files.key), "-out", csr, "-subj", `/CN=${commonName}`]);
  writeFileSync(
    ext,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth,clientAuth",
      // A section, whose values are taken whole: a SAN may then contain commas.
      ...(sans.length > 0 ? ["subjectAltName=@sans", "[sans]"] : []),
      ...sans.map((san, i) => {
        const colon = san.indexOf(":");
        return `${san.slice(0, colon)}.${i + 1}=${san.slice(colon + 1)}`;
      }),
    ].join("\n"),
  );
  openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-out",
    files.cert,
    "-days",
    "2",
    "-extfile",
    ext,
  ]);
  return files;
}

export function pem(files: CertFiles): Pem {
  return { cert: readFileSync(files.cert), key: readFileSync(files.key) };
}
