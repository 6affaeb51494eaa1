// What a lazy-pages daemon asks its page server (criu/page-xfer.c): a stream of fixed-size
// requests, struct page_server_iov { u32 cmd; u64 nr_pages; u64 vaddr; u64 dst_id } (32 bytes on
// 64-bit hosts, the cmd padded to 8), the command in the low 16 bits of cmd. A daemon that has
// every page sends PS_IOV_FORCE_CLOSE (it reaches its server through a socket it was handed), or
// PS_IOV_CLOSE, as its last request.

const IOV_BYTES = 32;
const PS_CMD_MASK = 0xffff;
const PS_IOV_CLOSE = 0x1023;
const PS_IOV_FORCE_CLOSE = 0x1024;

/** Follows the requests a daemon writes, to tell a finished daemon from one cut off. */
export class PageRequestWatcher {
  #partial = 0;
  #lastCommand: number | undefined;
  readonly #head = new Uint8Array(4);

  /** Takes the next bytes the daemon wrote, in order. */
  feed(data: Uint8Array): void {
    for (let at = 0; at < data.length; ) {
      const take = Math.min(IOV_BYTES - this.#partial, data.length - at);
      for (let i = 0; i < take && this.#partial + i < 4; i++)
        this.#head[this.#partial + i] = data[at + i] ?? 0;
      this.#partial += take;
      at += take;
      if (this.#partial === IOV_BYTES) {
        this.#lastCommand = new DataView(this.#head.buffer).getUint32(0, true) & PS_CMD_MASK;
        this.#partial = 0;
      }
    }
  }

  /** Whether the daemon's last whole request closed the connection: it had every page. */
  get closed(): boolean {
    return (
      this.#partial === 0 && (this.#lastCommand === PS_IOV_FORCE_CLOSE || this.#lastCommand === PS_IOV_CLOSE)
    );
  }
}
