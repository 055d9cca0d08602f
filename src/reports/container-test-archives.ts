import zlib from 'node:zlib';

/**
 * Builders of hostile and ordinary archives for the container tests. They write the bytes of
 * PKWARE's APPNOTE zip format and of RFC 1951/1952 directly, so that a test can make archives no
 * zip tool would: lying sizes, overlapping members, bombs of gigabytes in a few megabytes.
 */

export interface ZipEntrySpec {
  name: string;
  data?: Buffer;
  /** 0 (stored) or 8 (deflate, the default). */
  method?: 0 | 8;
  /** Overrides the uncompressed size written in both headers. */
  declaredSize?: number;
  /** Sets the "encrypted" flag bit without encrypting anything. */
  encryptedFlag?: boolean;
  /** Compressed bytes to store as they are, instead of deflating data. */
  rawCompressed?: Buffer;
}

interface WrittenEntry {
  spec: ZipEntrySpec;
  offset: number;
  crc: number;
  compressedSize: number;
  uncompressedSize: number;
  flags: number;
  method: number;
}

function localHeader(entry: WrittenEntry, name: Buffer): Buffer {
  const header = Buffer.alloc(30);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(20, 4);
  header.writeUInt16LE(entry.flags, 6);
  header.writeUInt16LE(entry.method, 8);
  header.writeUInt32LE(0, 10);
  header.writeUInt32LE(entry.crc, 14);
  header.writeUInt32LE(entry.compressedSize, 18);
  header.writeUInt32LE(entry.uncompressedSize, 22);
  header.writeUInt16LE(name.length, 26);
  header.writeUInt16LE(0, 28);
  return Buffer.concat([header, name]);
}

function centralHeader(entry: WrittenEntry, name: Buffer): Buffer {
  const header = Buffer.alloc(46);
  header.writeUInt32LE(0x02014b50, 0);
  header.writeUInt16LE(20, 4);
  header.writeUInt16LE(20, 6);
  header.writeUInt16LE(entry.flags, 8);
  header.writeUInt16LE(entry.method, 10);
  header.writeUInt32LE(0, 12);
  header.writeUInt32LE(entry.crc, 16);
  header.writeUInt32LE(entry.compressedSize, 20);
  header.writeUInt32LE(entry.uncompressedSize, 24);
  header.writeUInt16LE(name.length, 28);
  header.writeUInt32LE(entry.offset, 42);
  return Buffer.concat([header, name]);
}

function endOfCentralDirectory(count: number, size: number, offset: number): Buffer {
  const record = Buffer.alloc(22);
  record.writeUInt32LE(0x06054b50, 0);
  record.writeUInt16LE(count, 8);
  record.writeUInt16LE(count, 10);
  record.writeUInt32LE(size, 12);
  record.writeUInt32LE(offset, 16);
  return record;
}

/**
 * Builds a zip archive. With `centralEntries`, the central directory lists those entries (by
 * index into `entries`) in place of one per entry, which makes overlapping members.
 */
export function buildZip(entries: ZipEntrySpec[], centralEntries?: number[]): Buffer {
  const parts: Buffer[] = [];
  const written: WrittenEntry[] = [];
  let offset = 0;
  for (const spec of entries) {
    const data = spec.data ?? Buffer.alloc(0);
    const method = spec.method ?? 8;
    const compressed = spec.rawCompressed ?? (method === 8 ? zlib.deflateRawSync(data) : data);
    const entry: WrittenEntry = {
      spec,
      offset,
      crc: zlib.crc32(data),
      compressedSize: compressed.length,
      uncompressedSize: spec.declaredSize ?? data.length,
      flags: spec.encryptedFlag ? 1 : 0,
      method,
    };
    const header = localHeader(entry, Buffer.from(spec.name));
    parts.push(header, compressed);
    offset += header.length + compressed.length;
    written.push(entry);
  }
  const listed = (centralEntries ?? written.map((_, index) => index)).map(
    (index) => written[index] as WrittenEntry,
  );
  const central = Buffer.concat(
    listed.map((entry) => centralHeader(entry, Buffer.from(entry.spec.name))),
  );
  parts.push(central, endOfCentralDirectory(listed.length, central.length, offset));
  return Buffer.concat(parts);
}

/**
 * Returns raw deflate data that expands to `mebibytes` MiB of zeros, made by repeating one
 * fully flushed block, so a bomb of gigabytes costs a few megabytes and no time to build.
 * The stream has no final block, as the test stops reading long before its end.
 */
export function deflateZerosBomb(mebibytes: number): Buffer {
  const block = zlib.deflateRawSync(Buffer.alloc(1024 * 1024), {
    finishFlush: zlib.constants.Z_FULL_FLUSH,
  });
  return Buffer.concat(Array.from({ length: mebibytes }, () => block));
}

/** Wraps raw deflate data in a gzip member header; the trailer is left out (see above). */
export function gzipHeaderWith(deflateData: Buffer): Buffer {
  const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  return Buffer.concat([header, deflateData]);
}
