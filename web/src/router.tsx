// A small router over the History API: the app has a handful of pages, and each wizard step
// has its own path so that a reload opens the same step.
import {
  useEffect,
  useSyncExternalStore,
  type AnchorHTMLAttributes,
  type MouseEvent,
  type ReactNode,
} from 'react';

const listeners = new Set<() => void>();
/** Messages of the pages with unsaved changes; while any is set, leaving needs a confirmation. */
const leaveGuards = new Set<{ message: string }>();

function emit(): void {
  for (const listener of listeners) listener();
}

window.addEventListener('popstate', emit);

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function snapshot(): string {
  return `${window.location.pathname}${window.location.search}`;
}

/** Return the current path, query and history state, and re-render when they change. */
export function useLocation(): { path: string; query: URLSearchParams; state: unknown } {
  const href = useSyncExternalStore(subscribe, snapshot);
  const url = new URL(href, window.location.origin);
  return { path: url.pathname, query: url.searchParams, state: window.history.state as unknown };
}

/**
 * Go to `to` inside the app. Returns false when a page with unsaved changes asked to stay and
 * the user agreed. `force` skips that question, for a page that has just saved everything.
 */
export function navigate(
  to: string,
  options: { replace?: boolean; state?: unknown; force?: boolean } = {},
): boolean {
  if (!options.force) {
    for (const guard of leaveGuards) {
      if (!window.confirm(`${guard.message} Leave this page anyway?`)) return false;
    }
  }
  if (options.replace) window.history.replaceState(options.state ?? null, '', to);
  else window.history.pushState(options.state ?? null, '', to);
  window.scrollTo(0, 0);
  emit();
  return true;
}

/**
 * Warn before the page is left while `message` is set: the browser's own prompt on reload or
 * close (beforeunload), and a confirmation on navigation inside the app.
 */
export function useLeaveGuard(message: string | null): void {
  useEffect(() => {
    if (!message) return;
    const guard = { message };
    const onBeforeUnload = (event: BeforeUnloadEvent) => {
      event.preventDefault();
      // Chromium shows its own text, but still needs returnValue set to show the prompt.
      event.returnValue = message;
    };
    leaveGuards.add(guard);
    window.addEventListener('beforeunload', onBeforeUnload);
    return () => {
      leaveGuards.delete(guard);
      window.removeEventListener('beforeunload', onBeforeUnload);
    };
  }, [message]);
}

type LinkProps = Omit<AnchorHTMLAttributes<HTMLAnchorElement>, 'href'> & {
  to: string;
  children: ReactNode;
};

/** Render a link that navigates inside the app; modified clicks still open a new tab. */
export function Link({ to, onClick, children, ...rest }: LinkProps) {
  const handleClick = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={handleClick} {...rest}>
      {children}
    </a>
  );
}
