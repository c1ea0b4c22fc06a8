import cliProgress from 'cli-progress';

/**
 * A progress bar that appears only once work has taken more than `delayMs` (default 1 s), on
 * stderr so stdout stays parseable. On a non-TTY stream it prints a plain line every few seconds.
 */
export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly started = Date.now();
  private value = 0;

  constructor(private readonly label: string, private total: number, private readonly unit = 'items', private readonly delayMs = 1000) {}

  update(value: number, total = this.total): void {
    this.value = value;
    this.total = total;
    if (!this.bar && Date.now() - this.started >= this.delayMs) {
      this.bar = new cliProgress.SingleBar({
        format: `${this.label} [{bar}] {percentage}% | {value}/{total} ${this.unit} | {rate}/s | eta {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
        noTTYOutput: true,
        notTTYSchedule: 3000,
        etaBuffer: 50,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(this.total, value, { rate: this.rate() });
    }
    this.bar?.update(value, { rate: this.rate() });
    if (this.bar && total !== this.bar.getTotal()) this.bar.setTotal(total);
  }

  increment(by = 1): void { this.update(this.value + by); }

  stop(): void {
    if (this.bar) { this.bar.update(this.value, { rate: this.rate() }); this.bar.stop(); }
    this.bar = null;
  }

  private rate(): string {
    const s = (Date.now() - this.started) / 1000;
    return s > 0 ? formatCount(this.value / s) : '-';
  }
}

export function formatCount(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(x >= 100 ? 0 : 1);
}

export function formatBytes(b: number): string {
  if (b >= 1 << 30) return `${(b / (1 << 30)).toFixed(2)} GiB`;
  if (b >= 1 << 20) return `${(b / (1 << 20)).toFixed(1)} MiB`;
  if (b >= 1 << 10) return `${(b / (1 << 10)).toFixed(1)} KiB`;
  return `${b} B`;
}
