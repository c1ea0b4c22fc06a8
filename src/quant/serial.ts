import { QuiverError } from '../errors.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { crc32c } from '../util/crc32c.js';
import type { QuantMetric } from './types.js';

/**
 * Envelope of a serialized quantizer (Quantizer.serialize / deserializeQuantizer).
 *
 * Byte layout (little-endian):
 *   0  u32  magic 0x5A515651 ("QVQZ")
 *   4  u16  envelope version (1)
 *   6  u16  reserved (0)
 *   8  str  spec (u32 length + UTF-8), e.g. "RaBitQ4"
 *   .  u32  dimension
 *   .  u8   metric: 0 dot, 1 l2
 *   .  blob payload (u32 length + bytes): the family's own parameters, versioned by the family
 *   .  u32  CRC-32C of every preceding byte
 */
export const QUANTIZER_MAGIC = 0x5a515651;
export const QUANTIZER_ENVELOPE_VERSION = 1;

export interface QuantizerEnvelope {
  spec: string;
  dimension: number;
  metric: QuantMetric;
  payload: Uint8Array;
}

export function writeQuantizerEnvelope(e: QuantizerEnvelope): Uint8Array {
  const w = new ByteWriter(64 + e.payload.length);
  w.u32(QUANTIZER_MAGIC).u16(QUANTIZER_ENVELOPE_VERSION).u16(0).string(e.spec).u32(e.dimension).u8(e.metric === 'dot' ? 0 : 1).blob(e.payload);
  const body = w.finish();
  w.u32(crc32c(body));
  return w.finish().slice();
}

/** Parses and checks an envelope; CORRUPT_FILE on a bad magic, version, truncation or checksum. */
export function readQuantizerEnvelope(bytes: Uint8Array, source = '<quantizer>'): QuantizerEnvelope {
  if (!(bytes instanceof Uint8Array)) {
    throw new QuiverError('INVALID_ARGUMENT', 'a serialized quantizer must be a Uint8Array', { received: typeof bytes });
  }
  const r = new ByteReader(bytes, source);
  if (r.u32('magic') !== QUANTIZER_MAGIC) r.fail('not a serialized quantizer (bad magic)', { expected: 'QVQZ' });
  const version = r.u16('version');
  if (version !== QUANTIZER_ENVELOPE_VERSION) {
    throw new QuiverError('UNSUPPORTED_FORMAT', `${source}: quantizer envelope version ${version} is not supported (read: ${QUANTIZER_ENVELOPE_VERSION})`, {
      file: source, expected: QUANTIZER_ENVELOPE_VERSION, received: version,
    });
  }
  r.u16('reserved');
  const spec = r.string('spec');
  const dimension = r.u32('dimension');
  const m = r.u8('metric');
  if (m > 1) r.fail(`unknown metric code ${m}`);
  const payload = r.blob('payload');
  const bodyEnd = r.pos;
  const stored = r.u32('checksum');
  const actual = crc32c(bytes, 0, 0, bodyEnd);
  if (stored !== actual) r.fail('checksum mismatch: the serialized quantizer is corrupt', { expected: stored, received: actual });
  return { spec, dimension, metric: m === 0 ? 'dot' : 'l2', payload: payload.slice() };
}
