/**
 * Text analysis for full-text (BM25) search: text in, the terms to index or query out.
 * Browser-safe (no `node:` imports): it runs on every upsert, in Node and in browsers alike.
 *
 * The built-in analyzers follow Lucene's, so that BM25 scores and evaluation figures can be checked
 * against Anserini/Lucene runs of the same collection:
 * - `english` (the default): Lucene's EnglishAnalyzer / Anserini's DefaultEnglishAnalyzer pipeline —
 *   StandardTokenizer (UAX#29 word breaks), English possessive removal, lowercasing, the 33-word
 *   English stop set, Porter stemming (the `stemmer` package implements Porter's algorithm with the
 *   same two departures — `-bli`→`-ble`, `-logi`→`-log` — as Lucene's PorterStemmer).
 * - `standard`: tokenize + lowercase only.
 * - `french`, `german`, `spanish`: tokenize, (French) elision of l', d', qu'..., lowercase, the
 *   Snowball stop list, the Snowball stemmer of the language (@orama/stemmers: generated from the
 *   Snowball sources). Lucene's own FrenchAnalyzer/GermanAnalyzer/SpanishAnalyzer use "light"
 *   stemmers instead (and German adds umlaut normalization), so these three match Lucene's
 *   SnowballFilter-based chains (e.g. Elasticsearch's `snowball` analyzer), not the language analyzers.
 *
 * Tokenization: Lucene's StandardTokenizer implements UAX#29 word breaks; so does ICU, behind
 * `Intl.Segmenter`. Text that is all ASCII (the common case) takes a hand-written scanner of the
 * ASCII subset of UAX#29, several times faster than the segmenter and tested equal to it; other text
 * goes through `Intl.Segmenter`, corrected where ICU departs from Lucene:
 * - a segment of connector punctuation only (`___`) is word-like for ICU but no token for Lucene;
 * - Han ideographs and Hiragana: ICU groups them into dictionary words, Lucene emits one token per
 *   character; we follow Lucene (a query then matches any document holding the same characters).
 * Remaining known departures: Thai, Lao, Khmer and Myanmar runs are split into dictionary words by
 * ICU where Lucene emits the whole run as one token (ICU's split is the useful one for search);
 * emoji are tokens for Lucene and not for ICU; JavaScript's toLowerCase maps a final capital sigma to
 * ς and İ to "i̇" where Java's per-character lowercasing gives σ and i.
 * Tokens longer than 255 UTF-16 units are cut into pieces of 255, as StandardTokenizer does.
 */
import { stemmer as porterStem } from 'stemmer';
import { stemmer as frenchSnowballStem } from '@orama/stemmers/french';
import { stemmer as germanSnowballStem } from '@orama/stemmers/german';
import { stemmer as spanishSnowballStem } from '@orama/stemmers/spanish';
import { stopwords as frenchSnowballStopWords } from '@orama/stopwords/french';
import { stopwords as germanSnowballStopWords } from '@orama/stopwords/german';
import { QuiverError } from '../errors.js';
import { ENGLISH_STOP_WORDS, SPANISH_STOP_WORDS } from './stopwords.js';

export interface Analyzer {
  /** Stable name recorded in a collection's schema, e.g. 'english', 'standard'. */
  readonly name: string;
  /** Text -> the terms to index or query, in order (duplicates kept: term frequency matters). */
  analyze(text: string): string[];
}

/** Lucene's StandardTokenizer default maxTokenLength. */
export const MAX_TOKEN_LENGTH = 255;

// ---------------------------------------------------------------------------------------------
// Tokenizer: ASCII fast path

// Word_Break classes of the ASCII characters (UAX#29 table 3); everything else breaks.
const OTHER = 0;
const LETTER = 1; // ALetter: A-Z a-z
const DIGIT = 2; // Numeric: 0-9
const CONNECTOR = 3; // ExtendNumLet: _
const MID_LETTER = 4; // MidLetter: ':' joins letters only
const MID_NUM = 5; // MidNum: ',' ';' join digits only
const MID_NUM_LET = 6; // MidNumLet '.' and Single_Quote "'": join letters, or digits

const ASCII_WORD_BREAK = new Uint8Array(128);
for (let c = 65; c <= 90; c++) ASCII_WORD_BREAK[c] = LETTER;
for (let c = 97; c <= 122; c++) ASCII_WORD_BREAK[c] = LETTER;
for (let c = 48; c <= 57; c++) ASCII_WORD_BREAK[c] = DIGIT;
ASCII_WORD_BREAK[95] = CONNECTOR;
ASCII_WORD_BREAK[58] = MID_LETTER;
ASCII_WORD_BREAK[44] = MID_NUM;
ASCII_WORD_BREAK[59] = MID_NUM;
ASCII_WORD_BREAK[46] = MID_NUM_LET;
ASCII_WORD_BREAK[39] = MID_NUM_LET;

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** Appends `text.slice(start, end)` to `out`, cut into pieces of at most MAX_TOKEN_LENGTH. */
function pushToken(out: string[], text: string, start: number, end: number): void {
  while (end - start > MAX_TOKEN_LENGTH) {
    out.push(text.slice(start, start + MAX_TOKEN_LENGTH));
    start += MAX_TOKEN_LENGTH;
  }
  out.push(text.slice(start, end));
}

/**
 * UAX#29 word tokens of an all-ASCII text (rules WB5-WB13b restricted to ASCII): runs of letters,
 * digits and `_`, joined across one ':' between letters, one ',' or ';' between digits, and one '.'
 * or "'" between two letters or two digits. A run of `_` alone is no token (Lucene).
 */
function tokenizeAscii(text: string, out: string[]): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    let cls = ASCII_WORD_BREAK[text.charCodeAt(i)];
    if (cls === OTHER || cls >= MID_LETTER) { i++; continue; }
    const start = i;
    let hasLetterOrDigit = false;
    for (;;) {
      if (cls === LETTER || cls === DIGIT) hasLetterOrDigit = true;
      else if (cls !== CONNECTOR) {
        // A middle character joins only if the characters on both sides are letters (or digits).
        if (i + 1 >= n || cls === OTHER) break;
        const before = ASCII_WORD_BREAK[text.charCodeAt(i - 1)];
        const after = ASCII_WORD_BREAK[text.charCodeAt(i + 1)];
        const joins = before === after && (
          (before === LETTER && (cls === MID_LETTER || cls === MID_NUM_LET))
          || (before === DIGIT && (cls === MID_NUM || cls === MID_NUM_LET)));
        if (!joins) break;
      }
      if (++i >= n) break;
      cls = ASCII_WORD_BREAK[text.charCodeAt(i)];
    }
    if (hasLetterOrDigit) pushToken(out, text, start, i);
  }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer: any text, through Intl.Segmenter

let wordSegmenter: Intl.Segmenter | undefined;
/** Created once: constructing a segmenter costs far more than segmenting a short text. */
function getWordSegmenter(): Intl.Segmenter {
  if (wordSegmenter) return wordSegmenter;
  if (typeof Intl === 'undefined' || typeof Intl.Segmenter !== 'function') {
    throw new QuiverError('MISSING_DEPENDENCY', 'text analysis of non-ASCII text needs Intl.Segmenter (Node 16+, current browsers)', {});
  }
  // The root locale: word breaks must not depend on the machine's default locale.
  wordSegmenter = new Intl.Segmenter('und', { granularity: 'word' });
  return wordSegmenter;
}

const CONNECTORS_ONLY = /^[\p{Pc}\u202F]+$/u;
const HAN_OR_HIRAGANA = /[\p{sc=Han}\p{sc=Hiragana}]/u;
const HAN_OR_HIRAGANA_CHAR = /^[\p{sc=Han}\p{sc=Hiragana}]$/u;

/** A segment holding Han or Hiragana characters: each of those is a token, other runs stay whole. */
function splitIdeographs(segment: string, out: string[]): void {
  let run = '';
  for (const ch of segment) {
    if (HAN_OR_HIRAGANA_CHAR.test(ch)) {
      if (run) { out.push(run); run = ''; }
      out.push(ch);
    } else {
      run += ch;
    }
  }
  if (run && !CONNECTORS_ONLY.test(run)) out.push(run);
}

/** UAX#29 word tokens of any text through ICU, with Lucene's StandardTokenizer corrections. */
export function tokenizeUnicode(text: string, out: string[] = []): string[] {
  for (const s of getWordSegmenter().segment(text)) {
    if (!s.isWordLike) continue;
    const segment = s.segment;
    if (CONNECTORS_ONLY.test(segment)) continue;
    if (HAN_OR_HIRAGANA.test(segment)) splitIdeographs(segment, out);
    else pushToken(out, segment, 0, segment.length);
  }
  return out;
}

/**
 * The word tokens of `text` as Lucene's StandardTokenizer finds them (see the file comment for the
 * known departures), in order, case kept.
 */
export function tokenize(text: string, out: string[] = []): string[] {
  if (NON_ASCII.test(text)) return tokenizeUnicode(text, out);
  tokenizeAscii(text, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Token filters and the analyzers built from them

export interface AnalyzerOptions {
  /** Stable name recorded in a collection's schema. */
  name: string;
  /** Strip a trailing 's / ’s / ＇s before lowercasing (Lucene's EnglishPossessiveFilter). */
  stripPossessive?: boolean;
  /**
   * Lowercased prefixes removed with the apostrophe that follows them ("l'avion" → "avion"),
   * as Lucene's ElisionFilter does.
   */
  elisions?: Iterable<string>;
  /** Lowercased words dropped after lowercasing (and elision). */
  stopWords?: Iterable<string>;
  /** Applied to each remaining lowercased term. */
  stem?: (term: string) => string;
  /**
   * How many stems to remember (default 50,000): stemmers cost microseconds per word while a
   * collection's vocabulary is small next to its token count. The cache is cleared when full, which
   * bounds its memory without bookkeeping per hit.
   */
  stemCacheSize?: number;
}

const APOSTROPHES = /['\u2019\uFF07]/;

class PipelineAnalyzer implements Analyzer {
  readonly name: string;
  private readonly stripPossessive: boolean;
  private readonly elisions: ReadonlySet<string> | null;
  private readonly stopWords: ReadonlySet<string> | null;
  private readonly stem: ((term: string) => string) | null;
  private readonly stemCache = new Map<string, string>();
  private readonly stemCacheSize: number;

  constructor(options: AnalyzerOptions) {
    this.name = options.name;
    this.stripPossessive = options.stripPossessive ?? false;
    this.elisions = options.elisions ? new Set(options.elisions) : null;
    this.stopWords = options.stopWords ? new Set(options.stopWords) : null;
    this.stem = options.stem ?? null;
    this.stemCacheSize = options.stemCacheSize ?? 50_000;
  }

  analyze(text: string): string[] {
    if (typeof text !== 'string') {
      throw new QuiverError('INVALID_ARGUMENT', `analyze() takes a string, got ${typeof text}`, { expected: 'string', received: typeof text });
    }
    // Filters rewrite the token array in place: one array per call, no intermediate ones.
    const terms = tokenize(text);
    let kept = 0;
    for (let t = 0; t < terms.length; t++) {
      let term = terms[t];
      if (this.stripPossessive && term.length >= 2) {
        const last = term.charCodeAt(term.length - 1);
        const beforeLast = term.charCodeAt(term.length - 2);
        if ((last === 115 || last === 83) && (beforeLast === 39 || beforeLast === 0x2019 || beforeLast === 0xff07)) {
          term = term.slice(0, -2);
        }
      }
      term = term.toLowerCase();
      if (this.elisions) term = this.elide(term);
      if (term.length === 0 || this.stopWords?.has(term)) continue;
      if (this.stem) term = this.stemCached(term);
      terms[kept++] = term;
    }
    terms.length = kept;
    return terms;
  }

  private elide(term: string): string {
    const match = APOSTROPHES.exec(term);
    if (match === null) return term;
    return this.elisions!.has(term.slice(0, match.index)) ? term.slice(match.index + 1) : term;
  }

  private stemCached(term: string): string {
    let stemmed = this.stemCache.get(term);
    if (stemmed === undefined) {
      stemmed = this.stem!(term);
      if (this.stemCache.size >= this.stemCacheSize) this.stemCache.clear();
      this.stemCache.set(term, stemmed);
    }
    return stemmed;
  }
}

const ANALYZER_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;

function checkAnalyzerName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !ANALYZER_NAME.test(name)) {
    throw new QuiverError('INVALID_ARGUMENT', `an analyzer name must match ${ANALYZER_NAME} (it is stored in schemas), got ${JSON.stringify(name)}`, {
      expected: String(ANALYZER_NAME), received: name,
    });
  }
}

/**
 * Builds an analyzer from the standard tokenizer and the given filters, in Lucene's order:
 * possessive removal, lowercasing, elision, stop words, stemming. Register it with
 * `registerAnalyzer` to make it available by name.
 */
export function createAnalyzer(options: AnalyzerOptions): Analyzer {
  checkAnalyzerName(options?.name);
  return new PipelineAnalyzer(options);
}

/** Lucene's FrenchAnalyzer.DEFAULT_ARTICLES. */
const FRENCH_ELISIONS = ['l', 'm', 't', 'qu', 'n', 's', 'j', 'd', 'c', 'jusqu', 'quoiqu', 'lorsqu', 'puisqu'];

/**
 * Porter stemming exactly as Lucene's PorterStemmer: the `stemmer` package agrees with a port of
 * Lucene's code on every word of the CACM vocabulary and Porter's examples but one, "eed", which
 * Lucene keeps (its step 1 sees the suffix "eed" with an empty stem of measure 0) and the package
 * turns into "e".
 */
function lucenePorterStem(term: string): string {
  return term === 'eed' ? term : porterStem(term);
}

const registry = new Map<string, Analyzer>();
for (const analyzer of [
  createAnalyzer({ name: 'english', stripPossessive: true, stopWords: ENGLISH_STOP_WORDS, stem: lucenePorterStem }),
  createAnalyzer({ name: 'standard' }),
  createAnalyzer({ name: 'french', elisions: FRENCH_ELISIONS, stopWords: frenchSnowballStopWords.filter((w) => w.length > 0), stem: frenchSnowballStem }),
  createAnalyzer({ name: 'german', stopWords: germanSnowballStopWords, stem: germanSnowballStem }),
  createAnalyzer({ name: 'spanish', stopWords: SPANISH_STOP_WORDS, stem: spanishSnowballStem }),
]) registry.set(analyzer.name, analyzer);

/** The built-in analyzer names; `english` is the default. */
export const ANALYZERS: readonly string[] = Object.freeze([...registry.keys()]);

/** The analyzer a collection uses when its schema names none. */
export const DEFAULT_ANALYZER = 'english';

/** The analyzer registered under `name`; UNKNOWN_SPEC listing the known names otherwise. */
export function getAnalyzer(name: string): Analyzer {
  const analyzer = registry.get(name);
  if (analyzer === undefined) {
    const known = [...registry.keys()];
    throw new QuiverError('UNKNOWN_SPEC', `unknown analyzer ${JSON.stringify(name)}; known analyzers: ${known.join(', ')}`, {
      received: name, known,
    });
  }
  return analyzer;
}

/**
 * Makes `analyzer` available to `getAnalyzer` under its name. A name can be registered once: a
 * collection's index is only valid under the analyzer that built it, so silently replacing one
 * would corrupt search. Register custom analyzers before opening collections that name them.
 */
export function registerAnalyzer(analyzer: Analyzer): void {
  if (analyzer === null || typeof analyzer !== 'object' || typeof analyzer.analyze !== 'function') {
    throw new QuiverError('INVALID_ARGUMENT', 'registerAnalyzer takes an object with a name and an analyze(text) method', { received: typeof analyzer });
  }
  checkAnalyzerName(analyzer.name);
  const existing = registry.get(analyzer.name);
  if (existing !== undefined && existing !== analyzer) {
    throw new QuiverError('INVALID_ARGUMENT', `an analyzer named ${JSON.stringify(analyzer.name)} is already registered`, { name: analyzer.name });
  }
  registry.set(analyzer.name, analyzer);
}
