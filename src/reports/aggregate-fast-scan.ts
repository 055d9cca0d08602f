/** The events of the scanner, which are those saxes emits for the same markup. */
export interface FastScanEvents {
  openTag(name: string): void;
  closeTag(): void;
  text(text: string): void;
  /** Whether the element that is open keeps its text, so that other text need not be cut out. */
  wantsText(): boolean;
}

/**
 * Characters from which on the scanner hands the document to saxes. They are the "&" of entity
 * and character references, carriage returns (which saxes turns into line feeds), and every
 * character that XML 1.0 forbids or that lies outside the Basic Multilingual Plane. "]]>" is
 * handed over too, because XML forbids it in text.
 */
const HANDED_OVER = /[&\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]/g;
const CDATA_END = ']]>';
/** Characters searched for HANDED_OVER at once; see scan. */
const SEARCH_WINDOW_CHARS = 4096;
/**
 * ASCII characters that may start an XML name, and those that may continue one, by code. A name
 * with any other character, as no DMARC report element has, goes to saxes.
 */
const NAME_START = asciiTable(/[A-Za-z_:]/);
const NAME_PART = asciiTable(/[\w.:-]/);

/**
 * Returns the offset of the first character in [from, to) of `text` that saxes must read, or
 * `to` when there is none. A "]]>" that starts up to two characters before `from` counts too,
 * so that one cut by the edge of the window before is found.
 */
function firstSpecial(text: string, from: number, to: number): number {
  const window = text.slice(from, to);
  HANDED_OVER.lastIndex = 0;
  const special = HANDED_OVER.exec(window);
  const end = special === null ? to : from + special.index;
  const reach = Math.max(from - 2, 0);
  const cdataEnd = text.slice(reach, end).indexOf(CDATA_END);
  return cdataEnd < 0 ? end : reach + cdataEnd;
}

function asciiTable(pattern: RegExp): Uint8Array {
  const table = new Uint8Array(128);
  for (let code = 0; code < 128; code += 1) {
    if (pattern.test(String.fromCharCode(code))) table[code] = 1;
  }
  return table;
}
/**
 * Maximum length of a construct that the scanner keeps searching or carries to the next chunk.
 * A longer one goes to saxes, so that rescanning it stays bounded.
 */
const MAX_CARRY_CHARS = 64 * 1024;
const GREATER_THAN = 0x3e;
const SLASH = 0x2f;
const LINE_FEED = '\n';

/**
 * Scans the inside of a document's root element for the markup DMARC reports consist of:
 * start tags without attributes, matching end tags, empty-element tags and text without
 * references. These are read with indexOf and a table of name characters instead of one
 * state-machine step per character. The first construct outside that subset ends the scan,
 * and `scan` returns the text from there on for saxes, which rejects it or reads it. Before
 * that, saxes must be brought to the same open elements and position (see openNames, line and
 * column). The end tag of the outermost element is handed over too, so that saxes checks what
 * follows it.
 *
 * Every construct the scanner accepts is well-formed XML 1.0 and yields the events saxes would
 * yield, so a document parses to the same result, warnings and errors either way.
 */
export class FastElementScanner {
  /** Names of the open elements, the outermost first; the scanner never closes that one. */
  readonly openNames: string[];
  /** Line (1-based) and column (0-based, in characters) of the first character not scanned. */
  private baseLine: number;
  private baseColumn: number;
  private carry = '';
  /** The text being scanned and the scan's offset in it, for the position of an error. */
  private buffer = '';
  private offset = 0;

  /** `openNames` are the elements open where the scan starts, the outermost first. */
  constructor(
    openNames: readonly string[],
    line: number,
    column: number,
    private readonly events: FastScanEvents,
  ) {
    this.openNames = [...openNames];
    this.baseLine = line;
    this.baseColumn = column;
  }

  /** The line of the character being scanned, as saxes counts lines. */
  get line(): number {
    return this.positionAt(this.offset).line;
  }

  /** The column of the character being scanned, as saxes counts columns. */
  get column(): number {
    return this.positionAt(this.offset).column;
  }

  /**
   * Scans the next text of the document. Returns null when all of it was scanned or carried to
   * the next call. Otherwise it returns the text from the first construct the scanner does not
   * read, which then goes to saxes, and the scanner must not be used after that.
   */
  scan(input: string): string | null {
    const buffer = this.carry === '' ? input : this.carry + input;
    this.carry = '';
    this.buffer = buffer;
    let position = 0;
    // The text is searched for characters saxes must read one window at a time. A search of
    // the whole text would be wasted on a scan that hands over early, so a document that hands
    // over at every record would take time quadratic in the length of its chunks.
    let windowEnd = 0;
    for (;;) {
      const windowStart = windowEnd;
      windowEnd = Math.min(windowStart + SEARCH_WINDOW_CHARS, buffer.length);
      const limit = firstSpecial(buffer, windowStart, windowEnd);
      const stop = this.scanTo(buffer, position, limit);
      if (stop < 0) return this.handOver(-1 - stop);
      position = stop;
      // A construct that reaches `limit` either contains a character saxes must read, or is
      // cut by the window or by the end of the text, when it is scanned again with more text.
      if (limit < windowEnd) return this.handOver(position);
      if (windowEnd - position > MAX_CARRY_CHARS) return this.handOver(position);
      if (windowEnd === buffer.length) break;
    }
    this.advance(position);
    this.carry = buffer.slice(position);
    this.buffer = '';
    this.offset = 0;
    return null;
  }

  /**
   * Scans the complete constructs from `start` that end before `limit`. Returns the offset of
   * the first construct that does not end before it. A construct that saxes must read is
   * returned as -1 - its offset instead.
   */
  private scanTo(buffer: string, start: number, limit: number): number {
    const events = this.events;
    const names = this.openNames;
    let position = start;

    while (position < limit) {
      this.offset = position;
      const open = buffer.indexOf('<', position);
      if (open < 0 || open >= limit) break;
      if (open > position) {
        // saxes emits text once it has read the "<" after it.
        this.offset = open + 1;
        if (events.wantsText()) events.text(buffer.slice(position, open));
        position = open;
        this.offset = position;
      }

      if (buffer.charCodeAt(open + 1) === SLASH) {
        // Only the name of the innermost open element may follow, then ">". The end tag of
        // the outermost element is left to saxes.
        if (names.length <= 1) return -1 - position;
        const name = names[names.length - 1] as string;
        const close = open + 2 + name.length;
        if (close >= limit) break;
        if (buffer.charCodeAt(close) !== GREATER_THAN || !buffer.startsWith(name, open + 2)) {
          return -1 - position;
        }
        names.pop();
        events.closeTag();
        position = close + 1;
        continue;
      }

      // A start tag is an ASCII name, then ">" or "/>". Comments, CDATA, processing
      // instructions, a DOCTYPE, attributes, spaces and other names are left to saxes.
      let nameEnd = open + 1;
      if (nameEnd >= limit) break;
      const first = buffer.charCodeAt(nameEnd);
      if (first >= 128 || NAME_START[first] === 0) return -1 - position;
      nameEnd += 1;
      while (nameEnd < limit) {
        const code = buffer.charCodeAt(nameEnd);
        if (code >= 128 || NAME_PART[code] === 0) break;
        nameEnd += 1;
      }
      const empty = buffer.charCodeAt(nameEnd) === SLASH;
      const close = empty ? nameEnd + 1 : nameEnd;
      if (close >= limit) break;
      if (buffer.charCodeAt(close) !== GREATER_THAN) return -1 - position;
      const name = buffer.slice(open + 1, nameEnd);
      // A tag's characters were checked above, so its position is advanced before the event,
      // as saxes reports an element once its ">" is read.
      this.offset = close + 1;
      events.openTag(name);
      if (empty) events.closeTag();
      else names.push(name);
      position = close + 1;
    }
    return position;
  }

  /** Returns the text that is still held, for saxes at the end of the document. */
  finish(): string {
    const rest = this.carry;
    this.carry = '';
    return rest;
  }

  private handOver(position: number): string {
    this.advance(position);
    const rest = this.buffer.slice(position);
    this.buffer = '';
    this.offset = 0;
    return rest;
  }

  /** Moves the base position to `position` of the buffer. */
  private advance(position: number): void {
    const { line, column } = this.positionAt(position);
    this.baseLine = line;
    this.baseColumn = column;
  }

  private positionAt(position: number): { line: number; column: number } {
    const buffer = this.buffer;
    let line = this.baseLine;
    let lastLineFeed = -1;
    for (let at = buffer.indexOf(LINE_FEED); at >= 0 && at < position;) {
      line += 1;
      lastLineFeed = at;
      at = buffer.indexOf(LINE_FEED, at + 1);
    }
    const column = lastLineFeed < 0 ? this.baseColumn + position : position - lastLineFeed - 1;
    return { line, column };
  }
}
