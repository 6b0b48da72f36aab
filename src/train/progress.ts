// Progress for long work: a bar with rate and ETA on a terminal, plain
// periodic lines otherwise (logs, CI).

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

export class Progress {
  private readonly start = Date.now();
  private lastLine = 0;
  private readonly tty: boolean;

  constructor(private readonly label: string, private readonly total: number, private readonly unit: string,
    private readonly stream: NodeJS.WriteStream = process.stderr, private readonly quiet = false) {
    this.tty = Boolean(stream.isTTY);
  }

  update(done: number, extra = ""): void {
    if (this.quiet) return;
    const elapsed = (Date.now() - this.start) / 1000;
    const rate = done / Math.max(elapsed, 1e-9);
    const eta = (this.total - done) / rate;
    const text = `${this.label} ${done}/${this.total} ${extra} ${rate.toFixed(2)} ${this.unit}/s ETA ${clock(eta)}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round((width * done) / Math.max(this.total, 1));
      this.stream.write(`\r[${"=".repeat(filled)}${" ".repeat(width - filled)}] ${text}\x1b[K`);
      if (done >= this.total) this.stream.write("\n");
    } else if (Date.now() - this.lastLine > 10_000 || done >= this.total) {
      this.lastLine = Date.now();
      this.stream.write(`${text}\n`);
    }
  }
}
