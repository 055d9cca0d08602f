import { useEffect, useRef, type ReactNode } from 'react';

/**
 * Render the page's h1 and focus it when the page opens, so that keyboard and screen-reader
 * users start at the new page's title after a navigation inside the app.
 */
export function PageHeading({ children }: { children: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus({ preventScroll: true });
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1} className="page__title">
      {children}
    </h1>
  );
}
