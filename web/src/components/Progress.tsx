import { useEffect, useState } from 'react';

/**
 * Render a busy indicator for a call that may take a while: a spinner, the label, and after a
 * few seconds the time spent so far, announced politely to screen readers.
 */
export function Progress({ label, className }: { label: string; className?: string }) {
  const [seconds, setSeconds] = useState(0);
  useEffect(() => {
    const started = Date.now();
    const timer = window.setInterval(
      () => setSeconds(Math.floor((Date.now() - started) / 1000)),
      1000,
    );
    return () => window.clearInterval(timer);
  }, [label]);
  return (
    <p className={`progress ${className ?? ''}`} role="status">
      <span className="spinner" aria-hidden="true" />
      {label}
      {seconds >= 3 ? <span className="progress__time"> ({seconds} s so far)</span> : null}
    </p>
  );
}
