/**
 * A start or end tag as XML 1.0 writes it, with ASCII names (DMARC reports use no others).
 * Matched at one position with the sticky flag.
 */
const TAG = /<\/?[A-Za-z_:][\w.:-]*(?:\s+[A-Za-z_:][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*\s*\/?>/y;
/** A character reference or a named entity reference. */
const REFERENCE = /&(?:[A-Za-z_:][\w.:-]*|#[0-9]+|#x[0-9A-Fa-f]+);/y;

/** The result of escapeStrayMarkup. */
export interface RepairedXml {
  text: string;
  /** How many "<" and "&" were escaped. */
  escaped: number;
}

/**
 * Escapes each "<" that does not begin a tag, comment, CDATA section, processing instruction or
 * declaration, and each "&" that does not begin a reference, so that a report whose generator
 * wrote values such as `<email><bad@example.net></email>` without escaping can be read. Veeam
 * has been seen to send such reports; lxml's recovery mode, which parsedmarc uses, reads them the
 * same way. Tags that are well formed but mismatched, and truncated documents, stay broken.
 */
export function escapeStrayMarkup(text: string): RepairedXml {
  const parts: string[] = [];
  let escaped = 0;
  let copied = 0;
  let position = 0;
  while (position < text.length) {
    const lessThan = text.indexOf('<', position);
    const ampersand = text.indexOf('&', position);
    if (lessThan < 0 && ampersand < 0) break;
    const at = lessThan < 0 ? ampersand : ampersand < 0 ? lessThan : Math.min(lessThan, ampersand);

    if (text[at] === '&') {
      REFERENCE.lastIndex = at;
      if (REFERENCE.test(text)) {
        position = REFERENCE.lastIndex;
        continue;
      }
      parts.push(text.slice(copied, at), '&amp;');
    } else {
      const end = endOfMarkup(text, at);
      if (end !== null) {
        position = end;
        continue;
      }
      parts.push(text.slice(copied, at), '&lt;');
    }
    escaped += 1;
    copied = at + 1;
    position = at + 1;
  }
  if (escaped === 0) return { text, escaped };
  parts.push(text.slice(copied));
  return { text: parts.join(''), escaped };
}

/** Returns the index after the markup that starts at `at`, or null when "<" starts none. */
function endOfMarkup(text: string, at: number): number | null {
  const closing = (open: string, close: string): number | null => {
    if (!text.startsWith(open, at)) return null;
    const end = text.indexOf(close, at + open.length);
    // An unterminated comment or section is left for the parser to report.
    return end < 0 ? text.length : end + close.length;
  };
  const special =
    closing('<!--', '-->') ?? closing('<![CDATA[', ']]>') ?? closing('<?', '?>') ?? null;
  if (special !== null) return special;
  // A DOCTYPE or other declaration is kept, so that the parser rejects it as before.
  if (text.startsWith('<!', at)) return at + 2;
  TAG.lastIndex = at;
  return TAG.test(text) ? TAG.lastIndex : null;
}
