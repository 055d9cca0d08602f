// The rules of the step-2 table, without a browser: completeness, selections that are no
// longer valid, matching by name, and what blocks the step from moving on.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HaloClientOption } from '../../src/contract/halopsa.ts';
import type { CustomerView } from '../../src/contract/platform.ts';
import { fieldMessage } from '../../web/src/api.ts';
import {
  blockerForNext,
  checkRow,
  checkRows,
  completeMappings,
  emptyRow,
  mappingSetKey,
  missingText,
  rowsForUnmappedCustomers,
  type Lookups,
  type MappingRow,
} from '../../web/src/halopsa/mapping-rows.ts';

const customer = (id: string, name: string): CustomerView => ({
  id,
  accountId: 'account',
  name,
  createdAt: '2026-12-01T00:00:00.000Z',
  domainCount: 1,
  billableDomainCount: 1,
});
const client = (id: number, name: string): HaloClientOption => ({ id, name, inactive: false });

const customers = [customer('c1', 'Acme Dental'), customer('c2', 'Stalwart Labs')];
const clients = [client(12, 'Acme Dental'), client(13, 'Brightpath Engineering')];
const lookups: Lookups = {
  customers: new Map(customers.map((entry) => [entry.id, entry])),
  clients: new Map(clients.map((entry) => [entry.id, entry])),
  items: new Map([[31, { id: 31, name: 'DMARC Monitoring (per domain)', recurring: true }]]),
};

function row(customerId: string | null, haloClientId: number | null, haloItemId: number | null) {
  return { ...emptyRow(), customerId, haloClientId, haloItemId } satisfies MappingRow;
}

describe('mapping rows', () => {
  test('complete row needs all three', () => {
    assert.equal(checkRow(row('c1', 12, 31), lookups).complete, true);
    assert.deepEqual(checkRow(row('c1', null, 31), lookups).missing, ['haloClientId']);
    assert.equal(checkRow(row('c1', null, 31), lookups).complete, false);
    assert.equal(checkRow(row(null, null, null), lookups).blank, true);
  });

  test('removed records are marked, not cleared', () => {
    const stale = { ...row('c9', 99, 77), customerName: 'Gone Ltd', haloClientName: 'Old Client' };
    const check = checkRow(stale, lookups);
    assert.equal(check.complete, false);
    assert.deepEqual(check.missing, []);
    assert.equal(
      check.problems.customerId,
      'The customer account “Gone Ltd” no longer exists in dmarcdesk. Remove this row.',
    );
    assert.equal(
      check.problems.haloClientId,
      'HaloPSA customer “Old Client” (id 99) is no longer in HaloPSA, or is inactive. Choose another.',
    );
    assert.equal(
      check.problems.haloItemId,
      'HaloPSA item “77” (id 77) is no longer in HaloPSA. Choose another.',
    );
  });

  test('only complete rows are sent', () => {
    const rows = [row('c1', 12, 31), row('c2', null, 31), row('c2', 99, 31)];
    const { rowKeys, body } = completeMappings(rows, lookups);
    assert.deepEqual(rowKeys, [rows[0]!.key]);
    assert.deepEqual(body.mappings, [{ customerId: 'c1', haloClientId: 12, haloItemId: 31 }]);
  });

  test('set key ignores row order', () => {
    const a = { customerId: 'c1', haloClientId: 12, haloItemId: 31 };
    const b = { customerId: 'c2', haloClientId: 13, haloItemId: 31 };
    assert.equal(mappingSetKey([a, b]), mappingSetKey([b, a]));
    assert.notEqual(mappingSetKey([a, b]), mappingSetKey([a, { ...b, haloItemId: 32 }]));
  });

  test('Add All matches names and skips mapped customers', () => {
    const extra = customer('c3', '  BRIGHTPATH engineering ');
    const { added, matched } = rowsForUnmappedCustomers(
      [row('c2', 99, 31)],
      [customers[0]!, customers[1]!, extra],
      clients,
      31,
    );
    assert.deepEqual(
      added.map((entry) => [entry.customerId, entry.haloClientId, entry.haloItemId]),
      [
        ['c1', 12, 31],
        ['c3', 13, 31],
      ],
    );
    assert.equal(matched, 2);
  });

  test('Add All matches a HaloPSA customer once', () => {
    const again = customer('c3', 'acme dental');
    const { added, matched } = rowsForUnmappedCustomers(
      [row('c2', 13, 31)],
      [customers[0]!, again, customer('c4', 'Brightpath Engineering')],
      clients,
      31,
    );
    assert.deepEqual(
      added.map((entry) => entry.haloClientId),
      [12, null, null],
    );
    assert.equal(matched, 1);
  });

  test('second row of one customer and item is marked', () => {
    const rows = [row('c1', 12, 31), row('c2', 12, 31)];
    const checks = checkRows(rows, lookups);
    assert.equal(checks.get(rows[0]!.key)!.complete, true);
    assert.equal(checks.get(rows[1]!.key)!.complete, false);
    assert.equal(
      checks.get(rows[1]!.key)!.problems.haloClientId,
      'Row 1 already bills HaloPSA customer “Acme Dental” with this item. Choose another HaloPSA customer or item.',
    );
    assert.deepEqual(completeMappings(rows, lookups).rowKeys, [rows[0]!.key]);
  });

  test('Add All matches no ambiguous name', () => {
    const twins = [client(12, 'Acme Dental'), client(14, 'acme dental')];
    const { added, matched } = rowsForUnmappedCustomers([], [customers[0]!], twins, null);
    assert.equal(added[0]!.haloClientId, null);
    assert.equal(matched, 0);
  });

  test('Next names the first unfinished row', () => {
    assert.equal(
      blockerForNext([row('c1', 12, 31), row(null, null, null), row('c2', null, null)], lookups),
      'Row 3 is incomplete: choose a HaloPSA customer and an item, or remove the row.',
    );
    assert.match(blockerForNext([row('c1', 99, 31)], lookups)!, /^Row 1: HaloPSA customer “99”/);
    assert.equal(
      blockerForNext([row(null, null, null)], lookups),
      'Map at least one customer account before going on to step 3.',
    );
    assert.equal(blockerForNext([row('c1', 12, 31), row(null, null, null)], lookups), null);
  });

  test('missing fields read as a list', () => {
    assert.equal(missingText(['haloItemId']), 'choose an item');
    assert.equal(
      missingText(['customerId', 'haloClientId', 'haloItemId']),
      'choose a customer account, a HaloPSA customer and an item',
    );
  });
});

describe('field messages', () => {
  test('validation prefix becomes the label', () => {
    assert.equal(
      fieldMessage('HaloPSA URL', 'Field "url": is required'),
      'HaloPSA URL is required.',
    );
    assert.equal(
      fieldMessage(
        'Client secret',
        'Field "clientSecret": enter the client secret; it is required whenever the URL or client ID changes.',
      ),
      'Enter the client secret; it is required whenever the URL or client ID changes.',
    );
  });

  test('other messages pass unchanged', () => {
    const message = 'HaloPSA rejected the client ID or secret.';
    assert.equal(fieldMessage('Client secret', message), message);
  });
});
