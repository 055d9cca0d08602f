// A searchable single-choice list (the ARIA 1.2 combobox pattern with a listbox popup) for
// option lists of thousands of entries, such as HaloPSA customers. Only the visible options
// are in the DOM, so opening and filtering stay fast at any list size.
import { useVirtualizer } from '@tanstack/react-virtual';
import {
  memo,
  useCallback,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  type KeyboardEvent,
} from 'react';
import { createPortal } from 'react-dom';

export interface ComboboxOption {
  value: string;
  label: string;
  /** Extra text shown after the label, such as a domain count. */
  hint?: string;
}

export interface ComboboxProps {
  id: string;
  /** The accessible name, when no visible label names the input. */
  ariaLabel?: string;
  ariaLabelledBy?: string;
  options: readonly ComboboxOption[];
  value: string | null;
  /** Text shown for a value that is not among the options, such as a removed record. */
  valueLabel?: string | null;
  onChange(value: string): void;
  /** Values hidden from the list, except the current value. */
  exclude?: ReadonlySet<string>;
  placeholder?: string;
  invalid?: boolean;
  describedBy?: string;
  disabled?: boolean;
  /** The noun for one option, used in the empty-list text: "No HaloPSA customer matches …". */
  noun: string;
}

const OPTION_HEIGHT = 36;
const LIST_MAX_HEIGHT = 288;

interface Position {
  left: number;
  top: number;
  width: number;
  maxHeight: number;
}

/** Compute where the popup goes: below the input, or above it when there is more room there. */
function popupPosition(input: HTMLElement): Position | null {
  const rect = input.getBoundingClientRect();
  if (rect.bottom < 0 || rect.top > window.innerHeight) return null;
  const below = window.innerHeight - rect.bottom - 8;
  const above = rect.top - 8;
  if (below >= Math.min(LIST_MAX_HEIGHT, 160) || below >= above) {
    return {
      left: rect.left,
      top: rect.bottom + 2,
      width: rect.width,
      maxHeight: Math.min(LIST_MAX_HEIGHT, below),
    };
  }
  const maxHeight = Math.min(LIST_MAX_HEIGHT, above);
  return { left: rect.left, top: rect.top - 2 - maxHeight, width: rect.width, maxHeight };
}

function ComboboxImpl(props: ComboboxProps) {
  const { id, options, value, onChange, exclude, noun } = props;
  const inputRef = useRef<HTMLInputElement>(null);
  const listRef = useRef<HTMLDivElement>(null);
  const [open, setOpen] = useState(false);
  const [query, setQuery] = useState('');
  const [active, setActive] = useState(0);
  const [position, setPosition] = useState<Position | null>(null);

  const lowerLabels = useMemo(() => options.map((option) => option.label.toLowerCase()), [options]);
  const selected = useMemo(
    () => (value === null ? null : (options.find((option) => option.value === value) ?? null)),
    [options, value],
  );
  const shownLabel = selected?.label ?? props.valueLabel ?? '';

  // Filtering runs only while the list is open; a substring test over 5,000 labels takes well
  // under a millisecond, so it runs on every keystroke.
  const filtered = useMemo(() => {
    if (!open) return [];
    const needle = query.trim().toLowerCase();
    const result: ComboboxOption[] = [];
    options.forEach((option, index) => {
      if (exclude?.has(option.value) && option.value !== value) return;
      if (needle && !lowerLabels[index]!.includes(needle)) return;
      result.push(option);
    });
    return result;
  }, [open, query, options, lowerLabels, exclude, value]);

  const virtualizer = useVirtualizer({
    count: filtered.length,
    getScrollElement: () => listRef.current,
    estimateSize: () => OPTION_HEIGHT,
    overscan: 6,
  });

  const listboxId = `${id}-listbox`;
  const optionId = (index: number) => `${id}-option-${index}`;

  const openList = useCallback((initialQuery: string) => {
    setQuery(initialQuery);
    setOpen(true);
    if (inputRef.current) setPosition(popupPosition(inputRef.current));
  }, []);

  const close = useCallback(() => {
    setOpen(false);
    setQuery('');
  }, []);

  // Start at the selected option when the list opens without a query.
  useEffect(() => {
    if (!open) return;
    if (query === '' && value !== null) {
      const index = filtered.findIndex((option) => option.value === value);
      setActive(Math.max(index, 0));
    } else {
      setActive(0);
    }
    // Only when the list opens or the query changes, not each time `filtered` is recomputed.
  }, [open, query]);

  useEffect(() => {
    if (open && filtered.length > 0) virtualizer.scrollToIndex(active, { align: 'auto' });
  }, [open, active, filtered.length, virtualizer]);

  // Follow the input while the page or a table scrolls; close when it leaves the window.
  useLayoutEffect(() => {
    if (!open) return;
    const update = (event?: Event) => {
      if (event && listRef.current?.contains(event.target as Node)) return;
      const next = inputRef.current ? popupPosition(inputRef.current) : null;
      if (next === null) close();
      else setPosition(next);
    };
    window.addEventListener('scroll', update, true);
    window.addEventListener('resize', update);
    return () => {
      window.removeEventListener('scroll', update, true);
      window.removeEventListener('resize', update);
    };
  }, [open, close]);

  const choose = (option: ComboboxOption | undefined) => {
    if (!option) return;
    if (option.value !== value) onChange(option.value);
    close();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    switch (event.key) {
      case 'ArrowDown':
        event.preventDefault();
        if (!open) openList('');
        else setActive((index) => Math.min(index + 1, filtered.length - 1));
        break;
      case 'ArrowUp':
        event.preventDefault();
        if (!open) openList('');
        else setActive((index) => Math.max(index - 1, 0));
        break;
      case 'PageDown':
        if (!open) return;
        event.preventDefault();
        setActive((index) => Math.min(index + 8, filtered.length - 1));
        break;
      case 'PageUp':
        if (!open) return;
        event.preventDefault();
        setActive((index) => Math.max(index - 8, 0));
        break;
      case 'Enter':
        if (!open) return;
        event.preventDefault();
        choose(filtered[active]);
        break;
      case 'Escape':
        if (!open) return;
        event.preventDefault();
        close();
        break;
      case 'Tab':
        if (open) close();
        break;
      default:
        break;
    }
  };

  const activeOption = open && filtered.length > 0 ? optionId(active) : undefined;

  return (
    <div className={`combobox ${props.invalid ? 'combobox--invalid' : ''}`}>
      <input
        ref={inputRef}
        id={id}
        className="input combobox__input"
        role="combobox"
        type="text"
        autoComplete="off"
        spellCheck={false}
        aria-label={props.ariaLabel}
        aria-labelledby={props.ariaLabelledBy}
        aria-autocomplete="list"
        aria-expanded={open}
        aria-controls={open ? listboxId : undefined}
        aria-activedescendant={activeOption}
        aria-invalid={props.invalid ? true : undefined}
        aria-describedby={props.describedBy}
        placeholder={props.placeholder}
        disabled={props.disabled}
        value={open ? query : shownLabel}
        onChange={(event) => openList(event.target.value)}
        onClick={() => (open ? undefined : openList(''))}
        onKeyDown={onKeyDown}
        onBlur={close}
      />
      {open && position
        ? createPortal(
            <div
              ref={listRef}
              id={listboxId}
              role="listbox"
              aria-label={props.ariaLabel ?? noun}
              className="combobox__list"
              style={{
                left: position.left,
                top: position.top,
                width: Math.max(position.width, 240),
                maxHeight: position.maxHeight,
              }}
              // Keep the focus in the input while the pointer picks an option.
              onMouseDown={(event) => event.preventDefault()}
            >
              {filtered.length === 0 ? (
                <div className="combobox__empty" role="option" aria-selected={false} aria-disabled>
                  {query.trim()
                    ? `No ${noun} matches “${query.trim()}”.`
                    : `No ${noun} is left to choose.`}
                </div>
              ) : (
                <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
                  {virtualizer.getVirtualItems().map((item) => {
                    const option = filtered[item.index]!;
                    return (
                      <div
                        key={option.value}
                        id={optionId(item.index)}
                        role="option"
                        aria-selected={option.value === value}
                        aria-setsize={filtered.length}
                        aria-posinset={item.index + 1}
                        data-active={item.index === active || undefined}
                        className="combobox__option"
                        style={{ height: OPTION_HEIGHT, transform: `translateY(${item.start}px)` }}
                        onMouseEnter={() => setActive(item.index)}
                        onClick={() => choose(option)}
                      >
                        <span className="combobox__label">{option.label}</span>
                        {option.hint ? <span className="combobox__hint">{option.hint}</span> : null}
                      </div>
                    );
                  })}
                </div>
              )}
            </div>,
            document.body,
          )
        : null}
    </div>
  );
}

/** A searchable, virtualised single-choice list; see the file comment. */
export const Combobox = memo(ComboboxImpl);
