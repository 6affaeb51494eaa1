// The permission model a confined restore is judged by, and the images it reads before CRIU runs.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import protobuf from "protobufjs";
import { afterAll, describe, expect, it } from "vitest";
import {
  type Credentials,
  checkImagesForConfinedRestore,
  checkRestoredTree,
  credentialsOf,
  mayAccess,
} from "../../src/auth/restoreConfinement.js";
import {
  boundUnixSockets,
  encodeImage,
  FILES_MAGIC,
  IMG_COMMON_MAGIC,
  ImageFormatError,
} from "../../src/criu/images.js";
import { GatewayError } from "../../src/domain/errors.js";

const user: Credentials = { fsuid: 1000, fsgid: 1000, groups: [1000, 27], capEff: 0n };
const file = (uid: number, gid: number, mode: number) => ({ uid, gid, mode, isDirectory: false });
const dir = (uid: number, gid: number, mode: number) => ({ uid, gid, mode, isDirectory: true });

describe("mayAccess: the kernel's mode bits and DAC capabilities", () => {
  it("takes the owner's bits for the owner, even when the group or others have more", () => {
    expect(mayAccess(user, file(1000, 0, 0o600), { read: true, write: true })).toBe(true);
    expect(mayAccess(user, file(1000, 1000, 0o066), { read: true })).toBe(false);
  });

  it("takes the group's bits for the file's group or a supplementary group", () => {
    expect(mayAccess(user, file(0, 27, 0o640), { read: true })).toBe(true);
    expect(mayAccess(user, file(0, 27, 0o640), { write: true })).toBe(false);
    expect(mayAccess(user, file(0, 1000, 0o660), { read: true, write: true })).toBe(true);
    expect(mayAccess(user, file(0, 42, 0o660), { read: true })).toBe(false);
  });

  it("takes the others' bits for everyone else", () => {
    expect(mayAccess(user, file(0, 0, 0o644), { read: true })).toBe(true);
    expect(mayAccess(user, file(0, 0, 0o644), { write: true })).toBe(false);
    expect(mayAccess(user, dir(0, 0, 0o711), { search: true })).toBe(true);
    expect(mayAccess(user, dir(0, 0, 0o700), { search: true })).toBe(false);
  });

  it("lets CAP_DAC_OVERRIDE past the bits, and CAP_DAC_READ_SEARCH past them for reading only", () => {
    const override = { ...user, capEff: 1n << 1n };
    const readSearch = { ...user, capEff: 1n << 2n };
    expect(mayAccess(override, file(0, 0, 0o000), { read: true, write: true })).toBe(true);
    expect(mayAccess(readSearch, file(0, 0, 0o000), { read: true })).toBe(true);
    expect(mayAccess(readSearch, file(0, 0, 0o000), { write: true })).toBe(false);
    expect(mayAccess(readSearch, dir(0, 0, 0o000), { search: true })).toBe(true);
  });

  it("holds uid 0 without capabilities to the bits like anyone", () => {
    const caplessRoot: Credentials = { fsuid: 0, fsgid: 0, groups: [], capEff: 0n };
    expect(mayAccess(caplessRoot, file(0, 0, 0o600), { read: true, write: true })).toBe(true);
    expect(mayAccess(caplessRoot, file(65534, 65534, 0o600), { read: true })).toBe(false);
  });
});

describe("credentialsOf: what a dump recorded", () => {
  it("reads the filesystem uid and gid, the groups and the effective capabilities", () => {
    expect(
      credentialsOf({
        pid: 7,
        uids: [1000, 1000, 1000, 1001],
        gids: [100, 100, 100, 101],
        groups: [27],
        capEff: "0000000000000006",
        cgroup: "/",
      }),
    ).toEqual({ fsuid: 1001, fsgid: 101, groups: [27], capEff: 6n });
  });

  it("has none for a record kept before credentials were, so the restore is an administrator's", async () => {
    const old = { pid: process.pid, uids: [0, 0, 0, 0], cgroup: "/" };
    expect(credentialsOf(old)).toBeUndefined();
    const err = await checkRestoredTree(process.pid, [old]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe("PERMISSION_DENIED");
    expect((err as GatewayError).message).toMatch(/lacks their credentials.*only an administrator/);
  });
});

/** A file_entry (files.img) holding a unix_sk_entry with this name and name_dir. */
function unixSocketEntry(name: Uint8Array, nameDir?: string): Uint8Array {
  const usk = protobuf.Writer.create()
    .uint32((1 << 3) | 0)
    .uint32(3); // id
  usk.uint32((11 << 3) | 2).bytes(name);
  if (nameDir !== undefined) usk.uint32((14 << 3) | 2).string(nameDir);
  return protobuf.Writer.create()
    .uint32((1 << 3) | 0)
    .uint32(5) // UNIXSK
    .uint32((2 << 3) | 0)
    .uint32(3)
    .uint32((16 << 3) | 2)
    .bytes(usk.finish())
    .finish();
}

const regularFileEntry = protobuf.Writer.create()
  .uint32((1 << 3) | 0)
  .uint32(1)
  .uint32(16)
  .uint32(9)
  .finish();
const text = new TextEncoder();

describe("boundUnixSockets: files.img", () => {
  it("finds sockets bound to paths, without the kernel's terminating NUL, with their directory", () => {
    const image = encodeImage(IMG_COMMON_MAGIC, FILES_MAGIC, [
      regularFileEntry,
      unixSocketEntry(text.encode("/run/app.sock\0")),
      unixSocketEntry(text.encode("rel.sock"), "/srv/app"),
    ]);
    expect(boundUnixSockets(image)).toEqual([
      { path: "/run/app.sock", dir: "" },
      { path: "rel.sock", dir: "/srv/app" },
    ]);
  });

  it("leaves out abstract and unnamed sockets", () => {
    const image = encodeImage(IMG_COMMON_MAGIC, FILES_MAGIC, [
      unixSocketEntry(new Uint8Array([0, ...text.encode("abstract")])),
      unixSocketEntry(new Uint8Array()),
    ]);
    expect(boundUnixSockets(image)).toEqual([]);
  });

  it("refuses an image of another kind or a damaged entry", () => {
    expect(() => boundUnixSockets(encodeImage(IMG_COMMON_MAGIC, 0x12345678, []))).toThrow(ImageFormatError);
    const damaged = encodeImage(IMG_COMMON_MAGIC, FILES_MAGIC, [new Uint8Array([(16 << 3) | 2, 50, 1])]);
    expect(() => boundUnixSockets(damaged)).toThrow(ImageFormatError);
  });
});

describe("checkImagesForConfinedRestore", () => {
  const root = mkdtempSync(join(tmpdir(), "confined-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function outcome(files: Record<string, Uint8Array>): Promise<unknown> {
    const d = mkdtempSync(join(root, "cp-"));
    for (const [name, data] of Object.entries(files)) writeFileSync(join(d, name), data);
    return checkImagesForConfinedRestore(d, "cp").then(
      () => "allowed",
      (e: unknown) => e,
    );
  }

  it("allows images without path-bound sockets", async () => {
    const image = encodeImage(IMG_COMMON_MAGIC, FILES_MAGIC, [regularFileEntry]);
    expect(await outcome({ "files.img": image })).toBe("allowed");
  });

  it("refuses a relative socket name with the directory CRIU would bind it in", async () => {
    const image = encodeImage(IMG_COMMON_MAGIC, FILES_MAGIC, [
      unixSocketEntry(text.encode("s.sock"), "/srv"),
    ]);
    const err = (await outcome({ "files.img": image })) as GatewayError;
    expect(err.code).toBe("PERMISSION_DENIED");
    expect(err.message).toContain("bound to /srv/s.sock");
  });

  it("refuses images without files.img, and says a damaged one is damaged", async () => {
    expect(((await outcome({})) as GatewayError).code).toBe("PERMISSION_DENIED");
    const damaged = encodeImage(IMG_COMMON_MAGIC, FILES_MAGIC, [new Uint8Array([(16 << 3) | 2, 50])]);
    const err = (await outcome({ "files.img": damaged })) as GatewayError;
    expect(err.code).toBe("FAILED_PRECONDITION");
    expect(err.message).toMatch(/files\.img is damaged/);
  });
});
