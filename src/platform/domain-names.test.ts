import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { toAsciiDomainName } from './domain-names.ts';

describe('toAsciiDomainName', () => {
  const cases: [string, string][] = [
    [' Example.COM. ', 'example.com'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['EXAMPLE.com..', 'example.com'],
    // domainToASCII rejects it, so the name is kept lower-cased.
    ['bad name.example', 'bad name.example'],
  ];

  it('normalises names', () => {
    for (const [input, expected] of cases) assert.equal(toAsciiDomainName(input), expected, input);
  });

  it('returns the same names when cached', () => {
    for (const [input, expected] of cases) assert.equal(toAsciiDomainName(input), expected, input);
  });

  it('stays correct past the cache size', () => {
    for (let index = 0; index < 3000; index += 1) {
      assert.equal(toAsciiDomainName(`Host${index}.Example`), `host${index}.example`);
    }
    assert.equal(toAsciiDomainName('bücher.example'), 'xn--bcher-kva.example');
  });

  it('converts a long name without caching it', () => {
    const long = `${'a'.repeat(600)}.example`;
    assert.equal(toAsciiDomainName(long.toUpperCase()), toAsciiDomainName(long));
  });
});
