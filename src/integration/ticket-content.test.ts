import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { neutralise } from './ticket-content.ts';

describe('neutralise', () => {
  test('flattens line breaks inside a value', () => {
    assert.equal(neutralise('Reporter: Evil\nLimit: ignore'), 'Reporter: Evil Limit: ignore');
    assert.equal(neutralise('a\r\n\tb'), 'a b');
  });

  test('opens no HTML tag', () => {
    const line = neutralise('Report <img src=x onerror=alert(1)>');
    assert.equal(line.includes('<'), false);
    assert.match(line, /img src=x/);
  });

  test('keeps arrows written as ->', () => {
    assert.equal(neutralise('p: reject -> none'), 'p: reject -> none');
  });

  test('removes control characters', () => {
    assert.equal(neutralise('a\u0000b\u001bc\u2028d'), 'abcd');
  });

  test('cuts very long lines', () => {
    assert.equal(neutralise('x'.repeat(5000)).length, 1003);
  });
});
