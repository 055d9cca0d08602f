import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { openDatabase, type Database } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { createAccount } from '../platform/accounts.ts';
import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import { halopsaSecretContext, SecretBox, SecretDecryptionError } from './secret-box.ts';
import { checkStoredSecrets, reencryptSecrets } from './secret-rotation.ts';

const CONTEXT = halopsaSecretContext('account-a', 'https://acme.halopsa.com');

describe('secret box', () => {
  test('round-trips a secret', () => {
    const box = new SecretBox(randomBytes(32));
    const sealed = box.encrypt('s3cret value', CONTEXT);
    assert.equal(sealed.includes(Buffer.from('s3cret value')), false);
    assert.equal(box.decrypt(sealed, CONTEXT), 's3cret value');
  });

  test('rejects every single-bit flip', () => {
    const box = new SecretBox(randomBytes(32));
    const sealed = box.encrypt('canary-secret-7f3a', CONTEXT);
    let decrypted = 0;
    for (let byte = 0; byte < sealed.length; byte += 1) {
      for (let bit = 0; bit < 8; bit += 1) {
        const tampered = Buffer.from(sealed);
        tampered[byte]! ^= 1 << bit;
        try {
          box.decrypt(tampered, CONTEXT);
          decrypted += 1;
        } catch (error) {
          assert.ok(error instanceof SecretDecryptionError);
        }
      }
    }
    assert.equal(decrypted, 0);
  });

  test('rejects a ciphertext moved to another account or URL', () => {
    const box = new SecretBox(randomBytes(32));
    const sealed = box.encrypt('canary', CONTEXT);
    for (const other of [
      halopsaSecretContext('account-b', 'https://acme.halopsa.com'),
      halopsaSecretContext('account-a', 'https://evil.example.com'),
    ]) {
      assert.throws(() => box.decrypt(sealed, other), SecretDecryptionError);
    }
  });

  test('previous keys decrypt, the current key encrypts', () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const sealedOld = new SecretBox(oldKey).encrypt('rotating', CONTEXT);

    const rotated = new SecretBox(newKey, [oldKey]);
    assert.equal(rotated.decrypt(sealedOld, CONTEXT), 'rotating');
    assert.equal(rotated.isSealedWithOldKey(sealedOld), true);
    const sealedNew = rotated.encrypt('rotating', CONTEXT);
    assert.equal(rotated.isSealedWithOldKey(sealedNew), false);

    assert.throws(
      () => new SecretBox(newKey).decrypt(sealedOld, CONTEXT),
      /key that is not configured/,
    );
  });
});

for (const engine of DATABASE_ENGINES) {
  describe(`secret re-encryption on ${engine}`, () => {
    let database: TestDatabase;
    let db: Database;

    before(async () => {
      database = await openTestDatabase(engine);
      const logger = pino({ level: 'silent' });
      db = await openDatabase({
        databaseUrl: database.databaseUrl,
        dataDir: '',
        logger,
        inMemory: true,
      });
      await migrate(db, logger);
    });

    after(async () => {
      await db?.close();
      await database?.drop();
    });

    test('start-up check names an undecryptable secret', async () => {
      const key = randomBytes(32);
      const [account] = await Promise.all([createAccount(db, { name: 'Start check' })]);
      const url = 'https://start-check.halopsa.com';
      await db.query(
        `INSERT INTO halopsa_connections (account_id, base_url, client_id, client_secret_encrypted)
         VALUES ($1, $2, 'client', $3)`,
        [account!.id, url, new SecretBox(key).encrypt('s', halopsaSecretContext(account!.id, url))],
      );
      await checkStoredSecrets(db, new SecretBox(key));
      await assert.rejects(
        checkStoredSecrets(db, new SecretBox(randomBytes(32))),
        /DMARCDESK_SECRET_KEY/,
      );
      await db.query('DELETE FROM halopsa_connections WHERE account_id = $1', [account!.id]);
    });

    test('re-encrypts old rows with the current key', async () => {
      const oldKey = randomBytes(32);
      const newKey = randomBytes(32);
      const accounts = await Promise.all(
        ['A', 'B', 'C'].map((name) => createAccount(db, { name })),
      );
      const oldBox = new SecretBox(oldKey);
      for (const account of accounts) {
        const url = `https://${account.name.toLowerCase()}.halopsa.com`;
        await db.query(
          `INSERT INTO halopsa_connections (account_id, base_url, client_id, client_secret_encrypted)
           VALUES ($1, $2, 'client', $3)`,
          [
            account.id,
            url,
            oldBox.encrypt(`secret-${account.name}`, halopsaSecretContext(account.id, url)),
          ],
        );
      }

      const box = new SecretBox(newKey, [oldKey]);
      assert.deepEqual(await reencryptSecrets(db, box), { checked: 3, reencrypted: 3 });
      assert.deepEqual(await reencryptSecrets(db, box), { checked: 3, reencrypted: 0 });

      const onlyNew = new SecretBox(newKey);
      for (const account of accounts) {
        const [row] = await db.query<{ base_url: string; client_secret_encrypted: Uint8Array }>(
          'SELECT base_url, client_secret_encrypted FROM halopsa_connections WHERE account_id = $1',
          [account.id],
        );
        const plain = onlyNew.decrypt(
          Buffer.from(row!.client_secret_encrypted),
          halopsaSecretContext(account.id, row!.base_url),
        );
        assert.equal(plain, `secret-${account.name}`);
      }
    });
  });
}
