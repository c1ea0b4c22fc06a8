import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ANALYZERS, DEFAULT_ANALYZER, MAX_TOKEN_LENGTH, createAnalyzer, getAnalyzer, registerAnalyzer, tokenize, tokenizeUnicode,
} from '../src/text/analyzer.js';
import { isQuiverError } from '../src/errors.js';

const english = getAnalyzer('english');

test('tokenize follows UAX#29 word breaks as Lucene StandardTokenizer does on ASCII', () => {
  assert.deepEqual(
    tokenize("e.g. U.S.A. 3.14 1,000,000 1;2 don't a:b 2:57 foo_bar __x__ ___ a.1 x--y wi-fi a..b 1.2.3 rock'n'roll O'Neil's end."),
    ['e.g', 'U.S.A', '3.14', '1,000,000', '1;2', "don't", 'a:b', '2', '57', 'foo_bar', '__x__', 'a', '1', 'x', 'y', 'wi', 'fi',
      'a', 'b', '1.2.3', "rock'n'roll", "O'Neil's", 'end'],
  );
  assert.deepEqual(tokenize(''), []);
  assert.deepEqual(tokenize(' \n\t.,;'), []);
});

test('the ASCII scanner equals the Intl.Segmenter path on random ASCII strings', () => {
  // Every character that has a Word_Break class of its own, plus breaking punctuation.
  const alphabet = "aZ09_.':,;\" -!@#\n\t/\\()[]{}?$%&*+=<>|`~^\r";
  let seed = 987654321;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let k = 0; k < 20_000; k++) {
    const length = 1 + Math.floor(random() * 10);
    let s = '';
    for (let i = 0; i < length; i++) s += alphabet[Math.floor(random() * alphabet.length)];
    assert.deepEqual(tokenize(s), tokenizeUnicode(s), JSON.stringify(s));
  }
});

test('non-ASCII text: Lucene-style ideographs, no connector-only tokens, accents kept', () => {
  assert.deepEqual(tokenize('東京大学 カタカナ naïve café ＿＿ Ünïcödé'), ['東', '京', '大', '学', 'カタカナ', 'naïve', 'café', 'Ünïcödé']);
  // The ASCII part of a mixed text is tokenized exactly as on its own.
  assert.deepEqual(tokenize("café e.g. 3.14 don't ___"), ['café', 'e.g', '3.14', "don't"]);
});

test('tokens longer than 255 characters are cut into pieces of 255, as StandardTokenizer does', () => {
  const long = 'x'.repeat(MAX_TOKEN_LENGTH * 2 + 10);
  assert.deepEqual(tokenize(`a ${long} b`).map((t) => t.length), [1, 255, 255, 10, 1]);
  assert.deepEqual(tokenize(`é ${long}`).map((t) => t.length), [1, 255, 255, 10]);
});

test('english: possessives, lowercase, the 33 Lucene stop words, Porter stems', () => {
  assert.deepEqual(
    english.analyze("The Computer's algorithms are running in relational databases; John’s generalizations"),
    ['comput', 'algorithm', 'run', 'relat', 'databas', 'john', 'gener'],
  );
  // Duplicates are kept: term frequency matters.
  assert.deepEqual(english.analyze('Cats cat CATS'), ['cat', 'cat', 'cat']);
  // Stop words are matched after lowercasing, and only Lucene's 33 (e.g. "would", "i" are kept).
  assert.deepEqual(english.analyze('THE And would i'), ['would', 'i']);
  for (const stop of 'a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with'.split(' ')) {
    assert.deepEqual(english.analyze(stop), [], stop);
  }
});

test('english Porter stems match Lucene PorterStemmer on Porter\'s examples', () => {
  const expected: Record<string, string> = {
    caresses: 'caress', ponies: 'poni', ties: 'ti', cats: 'cat', feed: 'feed', agreed: 'agre', disabled: 'disabl', matting: 'mat',
    mating: 'mate', meeting: 'meet', milling: 'mill', messing: 'mess', happy: 'happi', relational: 'relat', conditional: 'condit',
    valenci: 'valenc', digitizer: 'digit', conformabli: 'conform', radicalli: 'radic', analogousli: 'analog', vietnamization: 'vietnam',
    operator: 'oper', feudalism: 'feudal', hopefulness: 'hope', formaliti: 'formal', sensibiliti: 'sensibl', triplicate: 'triplic',
    electrical: 'electr', goodness: 'good', replacement: 'replac', adoption: 'adopt', homologou: 'homolog', effective: 'effect',
    bowdlerize: 'bowdler', controll: 'control', roll: 'roll', generalizations: 'gener', oscillators: 'oscil',
    // Lucene's two departures from the 1980 paper, and its fix for a suffix without a stem.
    archaeologi: 'archaeolog', possibli: 'possibl', eed: 'eed',
  };
  for (const [word, stem] of Object.entries(expected)) assert.deepEqual(english.analyze(word), [stem], word);
});

test('standard: tokenize and lowercase only', () => {
  assert.deepEqual(getAnalyzer('standard').analyze("The Cats' running E.G."), ['the', 'cats', 'running', 'e.g']);
});

test('french, german, spanish: elision, Snowball stop words and stems', () => {
  assert.deepEqual(getAnalyzer('french').analyze("L'avion qu'il a pris était magnifique"), ['avion', 'a', 'pris', 'magnif']);
  assert.deepEqual(getAnalyzer('german').analyze('Die Häuser der Stadt waren größer'), ['haus', 'stadt', 'gross']);
  assert.deepEqual(getAnalyzer('spanish').analyze('Los niños estaban corriendo por las calles'), ['niñ', 'corr', 'call']);
});

test('registry: built-in names, unknown names, custom analyzers', () => {
  assert.deepEqual([...ANALYZERS], ['english', 'standard', 'french', 'german', 'spanish']);
  assert.equal(DEFAULT_ANALYZER, 'english');
  assert.ok(Object.isFrozen(ANALYZERS));
  assert.throws(() => getAnalyzer('klingon'), (e: unknown) => isQuiverError(e, 'UNKNOWN_SPEC') && /english, standard/.test(e.message)
    && Array.isArray(e.details.known));

  const reversed = { name: 'test-reversed', analyze: (text: string) => text.split(' ').reverse() };
  registerAnalyzer(reversed);
  assert.equal(getAnalyzer('test-reversed'), reversed);
  registerAnalyzer(reversed); // the same object again is harmless
  assert.throws(() => registerAnalyzer({ name: 'english', analyze: () => [] }), (e: unknown) => isQuiverError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => registerAnalyzer({ name: 'Bad Name', analyze: () => [] }), (e: unknown) => isQuiverError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => registerAnalyzer({ name: 'x' } as never), (e: unknown) => isQuiverError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => english.analyze(42 as never), (e: unknown) => isQuiverError(e, 'INVALID_ARGUMENT'));

  const custom = createAnalyzer({ name: 'test-custom', stopWords: ['skip'], stem: (t) => t.slice(0, 3), stemCacheSize: 2 });
  // More distinct words than the stem cache holds: results must not depend on the cache.
  assert.deepEqual(custom.analyze('Alpha skip Bravo charlie alpha delta bravo'), ['alp', 'bra', 'cha', 'alp', 'del', 'bra']);
});
