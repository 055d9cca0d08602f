import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const FORMAT_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** Decryption failed: wrong key, or the ciphertext was moved to another account or URL. */
export class SecretDecryptionError extends Error {
  constructor(cause: unknown) {
    super(
      'A stored HaloPSA client secret could not be decrypted: the secret key has changed, or ' +
        'the stored row was altered. Set the original DMARCDESK_SECRET_KEY, or connect again.',
      { cause },
    );
    this.name = 'SecretDecryptionError';
  }
}

/**
 * AES-256-GCM for secrets at rest. The associated data binds each ciphertext to the context it
 * belongs to (account and HaloPSA URL), so a ciphertext copied to another row fails to decrypt.
 * Layout: version byte, 12-byte random nonce, ciphertext, 16-byte tag.
 */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32)
      throw new Error(`SecretBox needs a 32-byte key, got ${key.length} bytes.`);
  }

  encrypt(plaintext: string, associatedData: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([FORMAT_VERSION]), nonce, ciphertext, cipher.getAuthTag()]);
  }

  decrypt(sealed: Buffer, associatedData: string): string {
    try {
      if (sealed[0] !== FORMAT_VERSION || sealed.length < 1 + NONCE_BYTES + TAG_BYTES) {
        throw new Error(`unknown secret format version ${sealed[0]}`);
      }
      const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
      const tag = sealed.subarray(sealed.length - TAG_BYTES);
      const ciphertext = sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', this.key, nonce);
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new SecretDecryptionError(error);
    }
  }
}

/** The associated data of a HaloPSA client secret. */
export function halopsaSecretContext(accountId: string, baseUrl: string): string {
  return `dmarcdesk/halopsa-client-secret/v1/${accountId}/${baseUrl}`;
}
