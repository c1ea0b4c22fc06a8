import { QuiverError, checkPositiveInt } from '../errors.js';
import { describe } from '../util/strings.js';
import { abortReason, checkBatchSize, checkEmbedOptions, checkEmbeddingRows, checkTexts, closedError } from './checks.js';
import type { EmbedOptions, Embedder } from './types.js';

/**
 * An Embedder over transformers.js (`@huggingface/transformers`, ONNX models from the Hugging Face
 * hub or a local folder) through its feature-extraction pipeline. The package is an optional peer
 * dependency imported at run time: it pulls in native ONNX binaries that most users of QuiverDB
 * do not need, so quiverdb neither installs it nor names it in a static import.
 */

export interface TransformersEmbedderOptions {
  /** Hub model id or folder name under localPath, e.g. 'Xenova/all-MiniLM-L6-v2'. */
  model: string;
  /** Expected output dimension; checked against a probe embedding at create(). Default: whatever the probe gives. */
  dimension?: number;
  /** How token vectors become one text vector; default 'mean' (sentence-transformers models), 'cls' for BGE-style models. */
  pooling?: 'mean' | 'cls';
  /** Scale every vector to unit length; default true. */
  normalize?: boolean;
  /**
   * Folder holding `<model>/` (config, tokenizer, onnx/). Sets transformers.js's global
   * `env.localModelPath` and, unless allowRemoteModels is given, forbids hub downloads.
   */
  localPath?: string;
  /** Sets transformers.js's global `env.allowRemoteModels` (default: false with localPath, untouched without). */
  allowRemoteModels?: boolean;
  /** Texts per pipeline call; default 16. */
  batchSize?: number;
  /** Weights to load, e.g. 'fp32', 'fp16', 'q8' (transformers.js's own default when absent). */
  dtype?: string;
  /**
   * The module itself, already imported: for bundlers and browsers that cannot resolve the bare
   * specifier of a run-time import. Default: `import('@huggingface/transformers')`.
   */
  transformers?: unknown;
}

/** The few parts of @huggingface/transformers this file uses (typed here: the package may be absent). */
interface TransformersModule {
  pipeline(task: 'feature-extraction', model: string, options?: Record<string, unknown>): Promise<FeatureExtractor>;
  env: { localModelPath?: string; allowRemoteModels?: boolean; allowLocalModels?: boolean };
}
interface FeatureExtractor {
  (texts: string[], options: { pooling: 'mean' | 'cls'; normalize: boolean }): Promise<{ dims: number[]; data: ArrayLike<number> }>;
  dispose?: () => Promise<unknown>;
}

const PACKAGE = '@huggingface/transformers';
const INSTALL = `npm install ${PACKAGE}`;
const PROBE_TEXT = 'dimension probe';

export class TransformersEmbedder implements Embedder {
  private closed = false;

  private constructor(
    readonly model: string,
    readonly dimension: number,
    readonly batchSize: number,
    /** The hub or folder name the pipeline was loaded from. */
    readonly sourceModel: string,
    private readonly extractor: FeatureExtractor,
    private readonly pooling: 'mean' | 'cls',
    private readonly normalize: boolean,
  ) {}

  /**
   * Loads the pipeline and embeds one probe text to learn (or check) the dimension. The id is
   * `hf:<model>`, with `:cls` and/or `:unnormalized` appended for non-default settings: those give
   * other vectors from the same weights, and queries must be embedded exactly like their documents.
   */
  static async create(options: TransformersEmbedderOptions): Promise<TransformersEmbedder> {
    if (options === null || typeof options !== 'object') {
      throw new QuiverError('INVALID_ARGUMENT', `TransformersEmbedder options must be an object, got ${describe(options)}`, { name: 'options', received: describe(options) });
    }
    const { model, localPath, dtype } = options;
    if (typeof model !== 'string' || model.length === 0) {
      throw new QuiverError('INVALID_ARGUMENT', `model must be a non-empty string, got ${describe(model)}`, { name: 'model', received: describe(model) });
    }
    const pooling = options.pooling ?? 'mean';
    if (pooling !== 'mean' && pooling !== 'cls') {
      throw new QuiverError('INVALID_ARGUMENT', `pooling must be 'mean' or 'cls', got ${describe(pooling)}`, { name: 'pooling', expected: "'mean' | 'cls'", received: describe(pooling) });
    }
    const normalize = options.normalize ?? true;
    if (typeof normalize !== 'boolean') {
      throw new QuiverError('INVALID_ARGUMENT', `normalize must be a boolean, got ${describe(normalize)}`, { name: 'normalize', received: describe(normalize) });
    }
    for (const [name, value] of [['localPath', localPath], ['dtype', dtype]] as const) {
      if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
        throw new QuiverError('INVALID_ARGUMENT', `${name} must be a non-empty string, got ${describe(value)}`, { name, received: describe(value) });
      }
    }
    if (options.allowRemoteModels !== undefined && typeof options.allowRemoteModels !== 'boolean') {
      throw new QuiverError('INVALID_ARGUMENT', `allowRemoteModels must be a boolean, got ${describe(options.allowRemoteModels)}`, { name: 'allowRemoteModels', received: describe(options.allowRemoteModels) });
    }
    const batchSize = checkBatchSize(options.batchSize ?? 16, 4096);
    const expectedDimension = options.dimension === undefined ? undefined : checkPositiveInt(options.dimension, 'dimension', 65536);

    const transformers = asTransformersModule(options.transformers ?? await importTransformers());
    if (localPath !== undefined) {
      transformers.env.localModelPath = localPath;
      transformers.env.allowLocalModels = true;
      transformers.env.allowRemoteModels = options.allowRemoteModels ?? false;
    } else if (options.allowRemoteModels !== undefined) {
      transformers.env.allowRemoteModels = options.allowRemoteModels;
    }

    let extractor: FeatureExtractor;
    try {
      extractor = await transformers.pipeline('feature-extraction', model, dtype === undefined ? {} : { dtype });
    } catch (e) {
      throw new QuiverError('IO_ERROR', `transformers.js could not load ${model}${localPath === undefined ? '' : ` from ${localPath}`}: ${e instanceof Error ? e.message : String(e)}`, {
        model, localPath, allowRemoteModels: transformers.env.allowRemoteModels,
      }, { cause: e });
    }
    const id = `hf:${model}${pooling === 'cls' ? ':cls' : ''}${normalize ? '' : ':unnormalized'}`;
    try {
      const probe = await runPipeline(extractor, [PROBE_TEXT], pooling, normalize, id);
      const dimension = Array.isArray(probe.dims) ? probe.dims[probe.dims.length - 1] : undefined;
      if (typeof dimension !== 'number' || !Number.isInteger(dimension) || dimension < 1) {
        throw new QuiverError('INVALID_VECTOR', `${id} returned a tensor of shape [${String(probe.dims)}] for one text`, { model: id, received: probe.dims });
      }
      if (expectedDimension !== undefined && dimension !== expectedDimension) {
        throw new QuiverError('INVALID_VECTOR', `${id} returns vectors of dimension ${dimension}, but dimension ${expectedDimension} was declared`, { model: id, expected: expectedDimension, received: dimension });
      }
      const embedder = new TransformersEmbedder(id, dimension, batchSize, model, extractor, pooling, normalize);
      embedder.checkOutput(probe, 1);
      return embedder;
    } catch (e) {
      await extractor.dispose?.().catch(() => undefined);
      throw e;
    }
  }

  async embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array> {
    checkTexts(texts);
    const { signal, onProgress } = checkEmbedOptions(options);
    if (this.closed) throw closedError(this.model);
    if (signal?.aborted) throw abortReason(signal);
    const total = texts.length, d = this.dimension;
    const out = new Float32Array(total * d);
    for (let start = 0; start < total; start += this.batchSize) {
      const batch = texts.slice(start, start + this.batchSize);
      // a pipeline call cannot be interrupted; the caller stops waiting and its result is dropped
      const output = await raceAbort(runPipeline(this.extractor, batch, this.pooling, this.normalize, this.model), signal);
      if (this.closed) throw closedError(this.model);
      out.set(this.checkOutput(output, batch.length), start * d);
      onProgress?.(start + batch.length, total);
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.extractor.dispose?.();
  }

  /** The pipeline's [rows, dimension] tensor as float32, or INVALID_VECTOR. */
  private checkOutput(output: { dims: number[]; data: ArrayLike<number> }, rows: number): Float32Array {
    const { dims, data } = output;
    if (!Array.isArray(dims) || dims.length !== 2 || dims[0] !== rows || dims[1] !== this.dimension) {
      throw new QuiverError('INVALID_VECTOR', `${this.model} returned a tensor of shape [${String(dims)}], expected [${rows}, ${this.dimension}]`, { model: this.model, expected: [rows, this.dimension], received: dims });
    }
    // fp16 models may hand back another typed array; the index stores float32
    const values = data instanceof Float32Array ? data : Float32Array.from(data);
    checkEmbeddingRows(values, rows, this.dimension, this.model);
    return values;
  }
}

async function runPipeline(extractor: FeatureExtractor, texts: string[], pooling: 'mean' | 'cls', normalize: boolean, id: string): Promise<{ dims: number[]; data: ArrayLike<number> }> {
  let output: { dims: number[]; data: ArrayLike<number> } | undefined;
  try {
    output = await extractor(texts, { pooling, normalize });
  } catch (e) {
    throw new QuiverError('INTERNAL', `transformers.js failed to embed ${texts.length} texts with ${id}: ${e instanceof Error ? e.message : String(e)}`, { model: id }, { cause: e });
  }
  if (output === null || typeof output !== 'object' || output.data === undefined) {
    throw new QuiverError('INVALID_VECTOR', `${id} returned ${describe(output)} instead of a tensor`, { model: id, received: describe(output) });
  }
  return output;
}

function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    if (signal.aborted) { onAbort(); return; }
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function asTransformersModule(m: unknown): TransformersModule {
  const candidate = m as Partial<TransformersModule> | null;
  if (candidate === null || typeof candidate !== 'object' || typeof candidate.pipeline !== 'function' || candidate.env === null || typeof candidate.env !== 'object') {
    throw new QuiverError('INVALID_ARGUMENT', `transformers must be the ${PACKAGE} module (with pipeline and env), got ${describe(m)}`, { name: 'transformers', received: describe(m) });
  }
  return candidate as TransformersModule;
}

async function importTransformers(): Promise<unknown> {
  // A specifier in a variable: TypeScript does not resolve it, so quiverdb type-checks and builds
  // without the package, and bundlers do not try to pull it in.
  const specifier: string = PACKAGE;
  try {
    return await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier);
  } catch (e) {
    const missing = (e as { code?: unknown } | null)?.code === 'ERR_MODULE_NOT_FOUND' || /Cannot find (module|package)|Failed to resolve module specifier/.test(String((e as Error)?.message));
    throw new QuiverError('MISSING_DEPENDENCY', missing
      ? `transformers.js is an optional peer dependency of quiverdb that is not installed: run \`${INSTALL}\` (in a browser or bundle, pass the imported module as options.transformers)`
      : `${PACKAGE} is installed but could not be loaded (${e instanceof Error ? e.message : String(e)}); reinstall it with \`${INSTALL}\``, {
      package: PACKAGE, install: INSTALL,
    }, { cause: e });
  }
}
