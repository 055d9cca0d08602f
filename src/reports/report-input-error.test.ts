import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { quoteForMessage, ReportInputError } from './report-input-error.ts';

describe('ReportInputError', () => {
  it('keeps the code and capitalises the message', () => {
    const error = new ReportInputError('corrupt_zip', 'zip member "a.xml" is damaged.');
    assert.equal(error.code, 'corrupt_zip');
    assert.equal(error.name, 'ReportInputError');
    assert.equal(error.message, 'Zip member "a.xml" is damaged.');
    assert.ok(error instanceof Error);
  });

  it('keeps the cause', () => {
    const cause = new Error('inner');
    assert.equal(new ReportInputError('empty', 'x', { cause }).cause, cause);
  });
});

describe('quoteForMessage', () => {
  it('replaces control characters', () => {
    assert.equal(quoteForMessage('a\nb\u0000c'), '"a?b?c"');
  });

  it('shortens long values', () => {
    assert.equal(quoteForMessage('x'.repeat(100), 10), `"${'x'.repeat(10)}..."`);
  });
});
