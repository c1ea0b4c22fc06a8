import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Collection } from '../node.js';
import type { SearchGate } from './limits.js';

/**
 * Prometheus metrics of one server (its own Registry, so that several servers in a process, as in
 * tests, do not share counters). Request metrics are labelled by route pattern, never by URL,
 * so that ids and names cannot grow the label set. Collection gauges are read from info() at
 * each scrape.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly duration: Histogram<'method' | 'route' | 'status'>;
  private readonly requests: Counter<'method' | 'route' | 'status'>;

  constructor(openCollections: () => [string, Collection][], gate: SearchGate) {
    collectDefaultMetrics({ register: this.registry, prefix: 'quiver_' });
    this.duration = new Histogram({
      name: 'quiver_http_request_duration_seconds',
      help: 'HTTP request latency by route pattern, method and status',
      labelNames: ['method', 'route', 'status'],
      // from a cached health check to a large batch upsert with its fsync
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.requests = new Counter({
      name: 'quiver_http_requests_total',
      help: 'HTTP requests by route pattern, method and status (rate() of it is QPS)',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    const perCollection = (name: string, help: string, read: (c: Collection) => number) => new Gauge({
      name, help, labelNames: ['collection'], registers: [this.registry],
      collect() {
        this.reset(); // collections dropped since the last scrape disappear
        for (const [n, c] of openCollections()) {
          try {
            this.set({ collection: n }, read(c));
          } catch {
            // closed meanwhile: no sample
          }
        }
      },
    });
    perCollection('quiver_collection_records', 'live records', (c) => c.count());
    perCollection('quiver_collection_segments', 'segments holding live records', (c) => c.info().segments);
    perCollection('quiver_collection_wal_bytes', 'bytes in the current write-ahead log file', (c) => c.info().walBytes);
    perCollection('quiver_collection_index_bytes', 'bytes the indexes hold in memory', (c) => c.info().indexBytes);
    perCollection('quiver_collection_kernel_memory_bytes', 'kernel memory (WASM) the segments hold', (c) => c.info().kernelMemoryBytes);
    new Gauge({ name: 'quiver_collections_open', help: 'collections this server holds open', registers: [this.registry], collect() { this.set(openCollections().length); } });
    new Gauge({ name: 'quiver_searches_running', help: 'searches running', registers: [this.registry], collect() { this.set(gate.inFlight); } });
    new Gauge({ name: 'quiver_searches_queued', help: 'searches waiting for a slot', registers: [this.registry], collect() { this.set(gate.queueLength); } });
  }

  /** Records one finished request. */
  observe(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.duration.observe(labels, seconds);
    this.requests.inc(labels);
  }
}
