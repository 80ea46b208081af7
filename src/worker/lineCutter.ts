// A command's output, split into lines as it is read, each line cut at
// MAX_LINE_BYTES: the rest of a longer line, up to its newline, is dropped and
// counted in a mark at its end. Memory stays bounded whatever a job prints
// (one 100 MB line with no newline is 16 KiB held, not 100 MB), and time is
// linear. bin/gantry-launcher cuts the same way, with the same mark.

/** A line keeps at most this many bytes. */
export const MAX_LINE_BYTES = 16 * 1024;

/** What ends a cut line. */
export const cutMark = (dropped: number) => ` [gantry: line cut, ${dropped} bytes dropped]`;

export class LineCutter {
  /** the unfinished line's bytes kept so far (at most MAX_LINE_BYTES in all) */
  private parts: Buffer[] = [];
  private kept = 0;
  private dropped = 0;

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      if (nl !== -1 && this.kept === 0 && this.dropped === 0 && end - start <= MAX_LINE_BYTES) {
        this.onLine(chunk.toString('utf8', start, end)); // the common case: a whole line in one chunk
      } else {
        this.keep(chunk, start, end);
        if (nl !== -1) this.flush();
      }
      if (nl === -1) return;
      start = nl + 1;
    }
  }

  /** The output ended: an unfinished last line is passed on. */
  end(): void {
    if (this.kept > 0 || this.dropped > 0) this.flush();
  }

  private keep(chunk: Buffer, start: number, end: number): void {
    if (this.dropped > 0) {
      this.dropped += end - start;
      return;
    }
    const room = MAX_LINE_BYTES - this.kept;
    let take = Math.min(room, end - start);
    if (take < end - start) {
      // not in the middle of a UTF-8 character
      for (let back = 0; back < 3 && take > 0 && (chunk[start + take]! & 0xc0) === 0x80; back++) take--;
      this.dropped = end - start - take;
    }
    if (take > 0) {
      // a copy: the chunk's memory is not held for a few bytes of it
      this.parts.push(Buffer.from(chunk.subarray(start, start + take)));
      this.kept += take;
    }
  }

  private flush(): void {
    const text = (this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts)).toString('utf8');
    this.onLine(this.dropped > 0 ? text + cutMark(this.dropped) : text);
    this.parts = [];
    this.kept = 0;
    this.dropped = 0;
  }
}
