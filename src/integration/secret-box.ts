import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

// Layout of a sealed secret: format byte, key id, nonce, ciphertext, tag.
const FORMAT_VERSION = 2;
const KEY_ID_BYTES = 8;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES + NONCE_BYTES;

/** Decryption failed: unknown key, or the ciphertext was altered or moved to another row. */
export class SecretDecryptionError extends Error {
  constructor(reason: string, cause?: unknown) {
    super(
      `A stored HaloPSA client secret could not be decrypted: ${reason}. Set the key it was ` +
        'encrypted with in DMARCDESK_SECRET_KEY or DMARCDESK_PREVIOUS_SECRET_KEYS, or connect again.',
      { cause },
    );
    this.name = 'SecretDecryptionError';
  }
}

function keyIdOf(key: Buffer): Buffer {
  return createHash('sha256')
    .update('dmarcdesk secret key id')
    .update(key)
    .digest()
    .subarray(0, KEY_ID_BYTES);
}

/**
 * AES-256-GCM for secrets at rest, with key rotation: the current key encrypts, and previous
 * keys still decrypt what they sealed. Each ciphertext names its key by an id derived from the
 * key, and its associated data binds it to the context it belongs to (account and HaloPSA URL),
 * so a ciphertext copied to another row fails to decrypt.
 */
export class SecretBox {
  private readonly currentId: Buffer;
  private readonly keys = new Map<string, Buffer>();

  constructor(
    private readonly current: Buffer,
    previous: readonly Buffer[] = [],
  ) {
    for (const key of [current, ...previous]) {
      if (key.length !== 32)
        throw new Error(`SecretBox needs 32-byte keys, got ${key.length} bytes.`);
      this.keys.set(keyIdOf(key).toString('hex'), key);
    }
    this.currentId = keyIdOf(current);
  }

  encrypt(plaintext: string, associatedData: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current, nonce);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([
      Buffer.from([FORMAT_VERSION]),
      this.currentId,
      nonce,
      ciphertext,
      cipher.getAuthTag(),
    ]);
  }

  decrypt(sealed: Buffer, associatedData: string): string {
    if (sealed.length < HEADER_BYTES + TAG_BYTES || sealed[0] !== FORMAT_VERSION) {
      throw new SecretDecryptionError('the stored value is not in a known format');
    }
    const keyId = sealed.subarray(1, 1 + KEY_ID_BYTES).toString('hex');
    const key = this.keys.get(keyId);
    if (!key)
      throw new SecretDecryptionError(
        `it was encrypted with a key that is not configured (key id ${keyId})`,
      );

    try {
      const nonce = sealed.subarray(1 + KEY_ID_BYTES, HEADER_BYTES);
      const tag = sealed.subarray(sealed.length - TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([
        decipher.update(sealed.subarray(HEADER_BYTES, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch (error) {
      throw new SecretDecryptionError(
        'the stored value was altered or belongs to another account or URL',
        error,
      );
    }
  }

  /** Tell whether `sealed` was encrypted with a key other than the current one. */
  isSealedWithOldKey(sealed: Buffer): boolean {
    return !sealed.subarray(1, 1 + KEY_ID_BYTES).equals(this.currentId);
  }
}

/** The associated data of a HaloPSA client secret. */
export function halopsaSecretContext(accountId: string, baseUrl: string): string {
  return `dmarcdesk/halopsa-client-secret/v1/${accountId}/${baseUrl}`;
}
